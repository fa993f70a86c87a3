#include "engine.hpp"

#include "imps/log.hpp"
#include "imps/redis.hpp"
#include "imps/sip_text.hpp"

#include <algorithm>
#include <climits>
#include <cstring>

namespace imps::reginfo {
namespace {

const char *kReginfo = "application/reginfo+xml";

std::string strip_angle(const std::string &s)
{
	if (s.size() >= 2 && s.front() == '<' && s.back() == '>') return s.substr(1, s.size() - 2);
	return s;
}

}  // namespace

// ---- the package on the shared layer --------------------------------------------------------

class Engine::Package final : public subs::Package {
public:
	explicit Package(Engine &e) : e_(e) {}
	std::string name() const override { return "reg"; }
	std::vector<std::string> content_types() const override { return {kReginfo}; }
	subs::Notification full_state(const subs::Subscription &s, long long now) override
	{
		return e_.full_state(s, now);
	}

private:
	Engine &e_;
};

Engine::Engine(Config cfg, Redis &redis, std::string key_prefix, Host &host)
	: cfg_(std::move(cfg)),
	  host_(host),
	  subs_(redis, subs::Keys(std::move(key_prefix)), cfg_.notify_busy_ms, cfg_.node, cfg_.epoch),
	  bindings_(subs_),
	  delivery_(std::make_unique<subs::HostDelivery<Host>>(host)),
	  package_(std::make_unique<Package>(*this))
{
	notifier_ = std::make_unique<subs::Notifier>(subs::notifier_config_of(cfg_), subs_, *delivery_, [this](subs::Counter c, long long d) {
		switch (c) {
		case subs::Counter::Sent: host_.stat(Stat::NotifiesSent, d); break;
		case subs::Counter::Failed: host_.stat(Stat::NotifiesFailed, d); break;
		case subs::Counter::Active: host_.stat(Stat::ActiveSubscriptions, d); break;
		case subs::Counter::TimerErrors: host_.stat(Stat::TimerErrors, d); break;
		}
	});
	notifier_->add(*package_);
}

Engine::~Engine() = default;

std::string temp_gruu(const std::string &ruid, unsigned int aor_hash, const std::string &aor)
{
	size_t at = aor.find('@');
	if (ruid.empty() || at == std::string::npos || at + 1 >= aor.size()) return {};
	std::string g = "sip:" + ruid + "-";
	for (; aor_hash != 0; aor_hash >>= 4) g += "0123456789abcdef"[aor_hash & 0x0f];
	return g + "@" + aor.substr(at + 1) + ";gr";
}

std::string Binding::key() const
{
	if (!instance.empty()) return instance + ";reg-id=" + std::to_string(reg_id);
	return uri;
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

// The AoR's state now: usrloc copied (its lock held only for the copy), then the metadata
// read from Redis with no lock held.
subs::Notification Engine::full_state(const subs::Subscription &s, long long now)
{
	std::vector<Binding> bindings;
	bool exists = host_.get_bindings(s.resource, bindings);
	std::map<std::string, BindingMeta> meta;
	if (!bindings.empty()) {
		try {
			meta = bindings_.bindings(s.resource);
		} catch (const std::exception &e) {
			IMPS_WARN("reg NOTIFY for %s without binding metadata: %s", s.resource.c_str(), e.what());
		}
	}
	Document d = full_document(s.resource, bindings, exists, meta, now);
	d.version = s.version;
	return {build(d), kReginfo, {}};
}

void Engine::flush() { notifier_->flush(); }

SubscribeResponse Engine::subscribe(const SubscribeRequest &req)
{
	SubscribeResponse res;
	notifier_->discard();
	std::string package = trim(req.event.substr(0, req.event.find(';')));
	if (!req.has_event || package != "reg") {
		res.code = 489;
		res.reason = req.has_event ? "Bad Event (package not supported here)" : "Bad Event (Event header missing)";
		res.headers.push_back("Allow-Events: reg");
		return res;
	}
	subs::Notifier::Request r;
	r.event = req.event;
	r.has_event = true;
	r.has_accept = req.has_accept;
	r.accept = req.accept;
	r.expires = req.expires;
	r.in_dialog = req.in_dialog;
	r.now = req.now;
	r.now_ms = req.now_ms ? req.now_ms : req.now * 1000;
	r.sub.dialog = req.dialog;
	r.sub.watcher = req.watcher;
	r.sub.resource = req.aor;
	subs::Notifier::Response nr;
	if (!notifier_->check(r, *package_, nr)) {
		res.code = nr.code;
		res.reason = nr.reason;
		res.headers = nr.headers;
		if (res.code == 406) res.reason = "Not Acceptable (Accept must allow application/reginfo+xml)";
		return res;
	}
	if (req.in_dialog) {
		std::string sid = subs::subscription_id(req.dialog.callid, req.dialog.remote_tag, req.dialog.local_tag);
		r.sub.resource = subs_.resource_of(sid);
		if (r.sub.resource.empty()) {
			res.code = 481;
			res.reason = "Subscription Does Not Exist";
			return res;
		}
	} else {
		r.sub.dialog.event_id = event_id(req.event);
		if (!authorized(req.aor, req.watcher)) {
			res.code = 403;
			res.reason = "Forbidden (watcher not authorized for this AoR)";
			return res;
		}
	}
	nr = notifier_->subscribe(r, *package_, INT_MAX);
	res.code = nr.code;
	res.reason = nr.reason;
	res.headers = nr.headers;
	res.notify = nr.code < 300;
	return res;
}

void Engine::binding_changed(const std::string &aor, const Binding &changed, Change change,
		Cause cause, const std::string &admin_event, const std::vector<Binding> &current,
		long long now, long long change_ms)
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

	long long now_ms = std::max(now * 1000, change_ms);
	BindingChangeResult r = bindings_.binding_changed(aor, cid, removed, meta, !changed.has_msg_info, ttl,
			now_ms, change_ms);
	if (r.batch.send.empty()) return;

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

	for (const auto &s : r.batch.send) {
		// a NOTIFY that waited (its predecessor outstanding) carries full state later; this
		// one follows the previous one directly, so the partial state is enough
		Document &d = cfg_.partial_state ? partial : full;
		d.version = s.version;
		notifier_->queue(s, {build(d), kReginfo, {}}, subs::subscription_state(s, now));
	}
	notifier_->flush();
}

void Engine::expire(long long now, long long now_ms)
{
	notifier_->expire(now, now_ms);
	notifier_->flush();
}

void Engine::send_due(long long now_ms)
{
	notifier_->send_due(now_ms);
	notifier_->flush();
}

void Engine::complete(const std::string &aor, const std::string &sid, unsigned long long cseq,
		int code, bool retry_after, long long now_ms)
{
	notifier_->complete(aor, sid, cseq, code, retry_after, now_ms);
	notifier_->flush();
}

void Engine::complete_many(const std::vector<subs::Store::Response> &responses, long long now_ms)
{
	notifier_->complete_many(responses, now_ms);
	notifier_->flush();
}

std::string Engine::show(const std::string &aor, long long now)
{
	std::vector<Binding> bindings;
	bool exists = host_.get_bindings(aor, bindings);
	auto meta = bindings.empty() ? std::map<std::string, BindingMeta>{} : bindings_.bindings(aor);
	return build(full_document(aor, bindings, exists, meta, now));
}

std::vector<subs::Subscription> Engine::list(const std::string &aor, int limit)
{
	if (!aor.empty()) {
		auto v = subs_.of(aor, "reg");
		if (static_cast<int>(v.size()) > limit) v.resize(limit);
		return v;
	}
	std::vector<subs::Subscription> out;
	for (int b = 0; b < subs_.keys().buckets() && static_cast<int>(out.size()) < limit; ++b) {
		unsigned long long cursor = 0;
		do {
			for (auto &s : subs_.scan(cursor, b, 100))
				if (static_cast<int>(out.size()) < limit) out.push_back(std::move(s));
		} while (cursor != 0 && static_cast<int>(out.size()) < limit);
	}
	return out;
}

// ---- a binding change handed between processes ---------------------------------------------

namespace {

void put_str(std::string &o, const std::string &s)
{
	uint32_t n = static_cast<uint32_t>(s.size());
	o.append(reinterpret_cast<const char *>(&n), sizeof(n));
	o += s;
}

void put_int(std::string &o, long long v) { o.append(reinterpret_cast<const char *>(&v), sizeof(v)); }

struct Reader {
	const std::string &b;
	size_t pos = 0;
	bool ok = true;
	std::string str()
	{
		uint32_t n = 0;
		if (pos + sizeof(n) > b.size()) return ok = false, std::string();
		std::memcpy(&n, b.data() + pos, sizeof(n));
		pos += sizeof(n);
		if (pos + n > b.size()) return ok = false, std::string();
		std::string s = b.substr(pos, n);
		pos += n;
		return s;
	}
	long long num()
	{
		long long v = 0;
		if (pos + sizeof(v) > b.size()) return ok = false, 0;
		std::memcpy(&v, b.data() + pos, sizeof(v));
		pos += sizeof(v);
		return v;
	}
};

void put_binding(std::string &o, const Binding &b)
{
	for (const auto *s : {&b.uri, &b.callid, &b.instance, &b.temp_gruu, &b.display_name, &b.params})
		put_str(o, *s);
	for (long long v : {static_cast<long long>(b.reg_id), b.expires_at, static_cast<long long>(b.q), b.cseq,
				 static_cast<long long>(b.has_msg_info)})
		put_int(o, v);
}

Binding get_binding(Reader &r)
{
	Binding b;
	for (auto *s : {&b.uri, &b.callid, &b.instance, &b.temp_gruu, &b.display_name, &b.params}) *s = r.str();
	b.reg_id = static_cast<unsigned>(r.num());
	b.expires_at = r.num();
	b.q = static_cast<int>(r.num());
	b.cseq = r.num();
	b.has_msg_info = r.num() != 0;
	return b;
}

}  // namespace

std::string BindingChange::serialize() const
{
	std::string o = "RC1";
	put_str(o, aor);
	put_binding(o, changed);
	put_int(o, static_cast<long long>(change));
	put_int(o, static_cast<long long>(cause));
	put_str(o, admin_event);
	put_int(o, now);
	put_int(o, now_ms);
	put_int(o, static_cast<long long>(current.size()));
	for (const auto &b : current) put_binding(o, b);
	return o;
}

bool BindingChange::parse(const std::string &blob, BindingChange &out)
{
	if (blob.compare(0, 3, "RC1") != 0) return false;
	Reader r{blob};
	r.pos = 3;
	out.aor = r.str();
	out.changed = get_binding(r);
	long long change = r.num(), cause = r.num();
	if (change < static_cast<long long>(Change::Insert) || change > static_cast<long long>(Change::Expire)
			|| cause < static_cast<long long>(Cause::Register) || cause > static_cast<long long>(Cause::Other))
		return false;
	out.change = static_cast<Change>(change);
	out.cause = static_cast<Cause>(cause);
	out.admin_event = r.str();
	out.now = r.num();
	out.now_ms = r.num();
	long long n = r.num();
	if (!r.ok || n < 0 || n > 10000) return false;
	out.current.clear();
	for (long long i = 0; i < n && r.ok; ++i) out.current.push_back(get_binding(r));
	return r.ok && r.pos == blob.size();
}

}  // namespace imps::reginfo
