#include "engine.hpp"

#include "imps/hash.hpp"
#include "imps/sip_text.hpp"
#include "imps/log.hpp"
#include "imps/redis.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace imps::reginfo {
namespace {

std::string strip_angle(const std::string &s)
{
	if (s.size() >= 2 && s.front() == '<' && s.back() == '>') return s.substr(1, s.size() - 2);
	return s;
}

}  // namespace

std::string Binding::key() const
{
	if (!instance.empty()) return instance + ";reg-id=" + std::to_string(reg_id);
	return uri;
}

std::string subscription_id(const std::string &callid, const std::string &remote_tag,
		const std::string &local_tag)
{
	return sha256_hex(callid + '\n' + remote_tag + '\n' + local_tag).substr(0, 24);
}

bool Engine::authorized(const std::string &aor, const std::string &watcher) const
{
	if (lower(watcher) == lower(aor)) return true;
	for (const auto &t : cfg_.trusted_watchers)
		if (lower(t) == lower(watcher)) return true;
	return false;
}

ContactEntry Engine::entry(const std::string &aor, const Binding &b, const BindingMeta *meta,
		long long now) const
{
	ContactEntry e;
	e.id = contact_id(aor, b.key());
	e.active = true;
	e.event = "registered";
	e.expires = b.expires_at > 0 ? std::max(0LL, b.expires_at - now) : -1;
	e.duration_registered = meta && meta->first_registered > 0 ? std::max(0LL, now - meta->first_registered) : 0;
	e.q = b.q;
	e.callid = b.callid;
	e.cseq = b.cseq;
	e.uri = b.uri;
	const std::string &dn = b.has_msg_info ? b.display_name : (meta ? meta->display_name : b.display_name);
	const std::string &pr = b.has_msg_info ? b.params : (meta ? meta->params : b.params);
	e.display_name = dn;
	e.params = parse_contact_params(pr);
	if (!b.instance.empty()) {
		auto has = [&](const char *n) {
			return std::any_of(e.params.begin(), e.params.end(),
					[&](const ContactParam &p) { return lower(p.name) == n; });
		};
		if (!has("+sip.instance")) e.params.push_back({"+sip.instance", b.instance});
		if (b.reg_id > 0 && !has("reg-id")) e.params.push_back({"reg-id", std::to_string(b.reg_id)});
		e.pub_gruu = "sip:" + aor + ";gr=" + strip_angle(b.instance);
		if (!b.temp_gruu.empty()) {
			e.temp_gruu = b.temp_gruu;
			e.temp_gruu_first_cseq = meta && meta->first_cseq > 0 ? meta->first_cseq : b.cseq;
		}
	}
	return e;
}

Document Engine::full_document(const std::string &aor, const std::vector<Binding> &bindings,
		bool record_exists, const std::map<std::string, BindingMeta> &meta, long long now)
{
	Document d;
	d.aor = "sip:" + aor;
	d.reg_id = registration_id(aor);
	d.full = true;
	for (const auto &b : bindings) {
		auto it = meta.find(contact_id(aor, b.key()));
		d.contacts.push_back(entry(aor, b, it == meta.end() ? nullptr : &it->second, now));
	}
	if (!d.contacts.empty()) d.state = RegState::Active;
	else d.state = record_exists ? RegState::Terminated : RegState::Init;
	return d;
}

void Engine::send(const Subscription &s, const std::string &body, const std::string &state)
{
	if (host_.send_notify(s, body, state)) {
		host_.stat(Stat::NotifiesSent, 1);
	} else {
		host_.stat(Stat::NotifiesFailed, 1);
		IMPS_WARN("reg NOTIFY to %s for %s could not be sent", s.remote_target.c_str(), s.aor.c_str());
	}
}

void Engine::flush()
{
	std::vector<Pending> out;
	out.swap(outbox_);
	for (const auto &p : out) send(p.sub, p.body, p.state);
}

SubscribeResponse Engine::subscribe(const SubscribeRequest &req)
{
	SubscribeResponse res;
	outbox_.clear();
	std::string package = trim(req.event.substr(0, req.event.find(';')));
	if (!req.has_event || package != "reg") {
		res.code = 489;
		res.reason = req.has_event ? "Bad Event (package not supported here)" : "Bad Event (Event header missing)";
		res.headers.push_back("Allow-Events: reg");
		return res;
	}
	if (req.has_accept && !accepts(req.accept, "application/reginfo+xml")) {
		res.code = 406;
		res.reason = "Not Acceptable (Accept must allow application/reginfo+xml)";
		res.headers.push_back("Accept: application/reginfo+xml");
		return res;
	}
	int expires = req.expires < 0 ? cfg_.default_expires : req.expires;
	if (expires > 0 && expires < cfg_.min_expires) {
		res.code = 423;
		res.reason = "Interval Too Brief";
		res.headers.push_back("Min-Expires: " + std::to_string(cfg_.min_expires));
		return res;
	}
	if (expires > cfg_.max_expires) expires = cfg_.max_expires;

	Subscription s = req.dialog;
	s.sid = subscription_id(s.callid, s.remote_tag, s.local_tag);
	s.expires_at = expires > 0 ? req.now + expires : 0;
	std::string state;

	if (req.in_dialog) {
		SubscribeOutcome o = store_.refresh(s, expires == 0);
		if (o == SubscribeOutcome::NoSuchDialog) {
			res.code = 481;
			res.reason = "Subscription Does Not Exist";
			return res;
		}
		if (o == SubscribeOutcome::CseqOutOfOrder) {
			res.code = 500;
			res.reason = "CSeq Out of Order";
			return res;
		}
		if (expires == 0) {
			state = "terminated";
			host_.stat(Stat::ActiveSubscriptions, -1);
		} else {
			state = "active;expires=" + std::to_string(expires);
		}
	} else {
		s.aor = req.aor;
		s.aor_uri = "sip:" + req.aor;
		s.event_id = event_id(req.event);
		s.watcher = req.watcher;
		if (!authorized(req.aor, req.watcher)) {
			res.code = 403;
			res.reason = "Forbidden (watcher not authorized for this AoR)";
			return res;
		}
		store_.create(s, expires > 0);
		if (expires > 0) {
			state = "active;expires=" + std::to_string(expires);
			host_.stat(Stat::ActiveSubscriptions, 1);
		} else {
			state = "terminated;reason=timeout";  // a fetch: one NOTIFY, nothing kept
		}
	}

	std::vector<Binding> bindings;
	bool exists = host_.get_bindings(s.aor, bindings);
	auto meta = bindings.empty() ? std::map<std::string, BindingMeta>{} : store_.bindings(s.aor);
	Document d = full_document(s.aor, bindings, exists, meta, req.now);
	d.version = s.version;
	outbox_.push_back({s, build(d), state});

	res.code = 200;
	res.reason = "OK";
	res.headers.push_back("Expires: " + std::to_string(expires));
	if (!s.local_contact.empty()) res.headers.push_back("Contact: <" + s.local_contact + ">");
	res.notify = true;
	return res;
}

void Engine::binding_changed(const std::string &aor, const Binding &changed, Change change,
		Cause cause, const std::string &admin_event, const std::vector<Binding> &current,
		long long now)
{
	const bool removed = change == Change::Delete || change == Change::Expire;
	const std::string cid = contact_id(aor, changed.key());
	BindingMeta meta;
	meta.first_registered = now;
	meta.expires_at = changed.expires_at;
	meta.first_cseq = changed.cseq > 0 ? changed.cseq : 0;
	meta.display_name = changed.display_name;
	meta.params = changed.params;
	// The metadata outlives the longest binding by an hour; a permanent binding (expires 0)
	// keeps it without expiry (ttl 0).
	long long ttl = removed || changed.expires_at > 0 ? std::max(3600LL, changed.expires_at - now + 3600) : 0;
	for (const auto &b : current) {
		if (ttl == 0 || b.expires_at == 0) {
			ttl = 0;
			break;
		}
		ttl = std::max(ttl, b.expires_at - now + 3600);
	}

	BindingChangeResult r = store_.binding_changed(aor, cid, removed, meta, !changed.has_msg_info, ttl);
	if (r.subs.empty()) return;

	const BindingMeta *prev = r.previous ? &*r.previous : nullptr;
	ContactEntry ce = entry(aor, changed, prev, now);
	if (prev == nullptr) ce.duration_registered = 0;
	ce.event = contact_event(change, cause, prev ? prev->expires_at : 0, changed.expires_at, admin_event);
	ce.active = !removed;
	if (removed) ce.expires = 0;
	if (!removed && !changed.has_msg_info && prev) {
		ce.display_name = prev->display_name;
		ce.params = parse_contact_params(prev->params);
	}

	Document full;
	full.aor = "sip:" + aor;
	full.reg_id = registration_id(aor);
	bool any_active = !removed;
	for (const auto &b : current) {
		const std::string id = contact_id(aor, b.key());  // one SHA-256 per binding
		if (id == cid) continue;
		auto it = r.all.find(id);
		full.contacts.push_back(entry(aor, b, it == r.all.end() ? nullptr : &it->second, now));
		any_active = true;
	}
	full.contacts.push_back(ce);
	full.state = any_active ? RegState::Active : RegState::Terminated;

	Document partial;
	if (cfg_.partial_state) {
		partial.aor = full.aor;
		partial.reg_id = full.reg_id;
		partial.state = full.state;
		partial.full = false;
		partial.contacts.push_back(ce);
	}

	for (const auto &s : r.subs) {
		Document &d = cfg_.partial_state ? partial : full;
		d.version = s.version;
		long long left = std::max(0LL, s.expires_at - now);
		send(s, build(d), "active;expires=" + std::to_string(left));
	}
}

int Engine::expire(long long now, int limit)
{
	std::vector<Subscription> subs = store_.claim_expired(now, limit);
	for (const auto &s : subs) {
		// claimed (and removed) already: each final NOTIFY goes out even if another fails
		try {
			std::vector<Binding> bindings;
			bool exists = host_.get_bindings(s.aor, bindings);
			std::map<std::string, BindingMeta> meta;
			try {
				if (!bindings.empty()) meta = store_.bindings(s.aor);
			} catch (const std::exception &e) {
				IMPS_WARN("final NOTIFY for %s without binding metadata: %s", s.aor.c_str(), e.what());
			}
			Document d = full_document(s.aor, bindings, exists, meta, now);
			d.version = s.version;
			host_.stat(Stat::ActiveSubscriptions, -1);
			send(s, build(d), "terminated;reason=timeout");
		} catch (const std::exception &e) {
			IMPS_ERR("final NOTIFY of subscription %s to %s failed: %s", s.sid.c_str(), s.aor.c_str(), e.what());
		}
	}
	return static_cast<int>(subs.size());
}

void Engine::notify_failed(const std::string &sid, const std::string &aor, int code, bool retry_after)
{
	host_.stat(Stat::NotifiesFailed, 1);
	bool drop = code == 481 || (code == 408 ? cfg_.remove_on_timeout : !retry_after);
	if (!drop) return;
	if (store_.remove(sid, aor)) {
		host_.stat(Stat::ActiveSubscriptions, -1);
		IMPS_INFO("reg subscription %s of %s removed after NOTIFY answered %d", sid.c_str(), aor.c_str(), code);
	}
}

std::string Engine::show(const std::string &aor, long long now)
{
	std::vector<Binding> bindings;
	bool exists = host_.get_bindings(aor, bindings);
	auto meta = bindings.empty() ? std::map<std::string, BindingMeta>{} : store_.bindings(aor);
	return build(full_document(aor, bindings, exists, meta, now));
}

}  // namespace imps::reginfo
