#include "engine.hpp"

#include "pidf.hpp"
#include "winfo_doc.hpp"

#include "imps/hash.hpp"
#include "imps/sip_text.hpp"
#include "imps/log.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <functional>
#include <stdexcept>

namespace imps::presence {
namespace {

const char *kPidf = "application/pidf+xml";
const char *kWinfo = "application/watcherinfo+xml";

std::string package_of(const std::string &event) { return lower(trim(event.substr(0, event.find(';')))); }

// The stored status of a presence subscription the owner's rule (not block) gives it.
const char *status_for(Action a)
{
	return a == Action::Allow ? "active" : a == Action::PoliteBlock ? "polite" : "pending";
}

std::string domain_of(const std::string &identity)
{
	size_t at = identity.rfind('@');
	return at == std::string::npos ? identity : identity.substr(at + 1);
}

Response reply(int code, std::string reason, std::vector<std::string> headers = {})
{
	Response r;
	r.code = code;
	r.reason = std::move(reason);
	r.headers = std::move(headers);
	return r;
}

}  // namespace

const char *action_name(Action a)
{
	switch (a) {
	case Action::Allow: return "allow";
	case Action::Block: return "block";
	case Action::PoliteBlock: return "polite-block";
	case Action::Confirm: return "confirm";
	case Action::Unknown: return "unknown";
	}
	return "confirm";
}

bool parse_action(const std::string &s, Action &out)
{
	std::string v = lower(trim(s));
	if (v == "allow") out = Action::Allow;
	else if (v == "block") out = Action::Block;
	else if (v == "polite-block") out = Action::PoliteBlock;
	else if (v == "confirm") out = Action::Confirm;
	else return false;
	return true;
}

std::string subscription_id(const std::string &callid, const std::string &remote_tag,
		const std::string &local_tag)
{
	return sha256_hex(callid + '\n' + remote_tag + '\n' + local_tag).substr(0, 24);
}

std::string new_etag()
{
	unsigned char b[12];
	if (RAND_bytes(b, sizeof(b)) != 1) throw std::runtime_error("no randomness for an ETag");
	static const char hex[] = "0123456789abcdef";
	std::string out;
	for (unsigned char c : b) {
		out += hex[c >> 4];
		out += hex[c & 15];
	}
	return out;
}

std::string Engine::offline(const std::string &presentity) const
{
	std::string entity = "sip:" + presentity;
	if (cfg_.offline_document.empty()) return offline_document(entity);
	std::string d = cfg_.offline_document;
	for (size_t pos; (pos = d.find("%ENTITY%")) != std::string::npos;) d.replace(pos, 8, entity);
	return d;
}

std::string Engine::compose_now(const std::string &presentity, const std::vector<Publication> &pubs) const
{
	if (pubs.empty()) return offline(presentity);
	std::vector<Source> src;
	src.reserve(pubs.size());
	for (const auto &p : pubs) src.push_back({p.etag, p.body, p.published_at});
	return compose("sip:" + presentity, src);
}

std::string Engine::current_document(const std::string &pres)
{
	std::string d = store_.document(pres);
	if (!d.empty()) return d;
	unsigned long long gen = 0;
	return compose_now(pres, store_.publications(pres, time(nullptr), gen));
}

std::string Engine::subscription_state(const Subscription &s, long long now) const
{
	long long left = std::max(0LL, s.expires_at - now);
	return (s.status == "pending" ? "pending;expires=" : "active;expires=") + std::to_string(left);
}

void Engine::queue(const Subscription &s, std::string body, std::string ctype, std::string state)
{
	outbox_.push_back({s, std::move(body), std::move(ctype), std::move(state)});
}

// A presence NOTIFY with the body the subscription's status gives it.
void Engine::queue_presence(const Subscription &s, const std::string &state, const std::string &doc)
{
	if (s.status == "pending") queue(s, "", "", state);
	else if (s.status == "polite") queue(s, offline(s.presentity), kPidf, state);
	else queue(s, doc, kPidf, state);
}

void Engine::flush()
{
	std::vector<Pending> out;
	out.swap(outbox_);
	for (const auto &p : out) {
		bool sent = false;
		try {
			sent = host_.send_notify(p.sub, p.body, p.content_type, p.state);
		} catch (const std::exception &e) {
			// one NOTIFY that cannot be built or handed over never keeps the others back
			host_.stat(Stat::TimerErrors, 1);
			IMPS_ERR("NOTIFY to %s for %s failed: %s", p.sub.remote_target.c_str(),
					p.sub.presentity.c_str(), e.what());
		}
		if (sent) {
			host_.stat(Stat::NotifiesSent, 1);
		} else {
			host_.stat(Stat::NotifiesFailed, 1);
			IMPS_WARN("NOTIFY to %s for %s could not be sent", p.sub.remote_target.c_str(),
					p.sub.presentity.c_str());
		}
	}
}

void Engine::recompose(const std::string &pres, std::vector<Publication> live,
		unsigned long long gen, long long now_ms)
{
	std::string doc = compose_now(pres, live);
	DocumentChange ch = store_.set_document(pres, gen, doc, sha1_hex(doc), now_ms, cfg_.min_notify_interval_ms);
	long long now = now_ms / 1000;
	for (const auto &s : ch.notify) queue_presence(s, subscription_state(s, now), doc);
}

// Runs f with the presentity locked and sends the NOTIFYs it queued before unlocking; on an
// exception nothing queued is sent.
void Engine::with_lock(const std::string &pres, const std::function<void()> &f)
{
	host_.lock(pres);
	try {
		f();
		flush();
	} catch (...) {
		outbox_.clear();
		host_.unlock(pres);
		throw;
	}
	host_.unlock(pres);
}

// ---- PUBLISH --------------------------------------------------------------------------------

Response Engine::publish(const PublishRequest &req) { return publish_locked(req, false); }

Response Engine::publish_locked(const PublishRequest &req, bool admin)
{
	if (!req.has_event || package_of(req.event) != "presence")
		return reply(489, "Bad Event", {"Allow-Events: presence"});
	if (req.has_body && lower(req.content_type) != kPidf)
		return reply(415, "Unsupported Media Type", {std::string("Accept: ") + kPidf});
	int expires = req.expires < 0 ? cfg_.pub_default_expires : req.expires;
	if (expires > 0 && expires < cfg_.pub_min_expires)
		return reply(423, "Interval Too Brief", {"Min-Expires: " + std::to_string(cfg_.pub_min_expires)});
	expires = std::min(expires, cfg_.pub_max_expires);
	if (req.presentity.empty()) return reply(400, "Bad Request (Request-URI has no presentity)");
	if (lower(req.identity) != lower(req.presentity))
		return reply(403, "Forbidden (only the presentity may publish its presence)");

	PubOp op;
	if (req.if_match.empty()) {
		if (!req.has_body) return reply(400, "Bad Request (PUBLISH without body or SIP-If-Match)");
		if (expires == 0) return reply(400, "Bad Request (Expires 0 without SIP-If-Match)");
		op = PubOp::Initial;
	} else if (expires == 0) {
		op = PubOp::Remove;
	} else {
		op = req.has_body ? PubOp::Modify : PubOp::Refresh;
	}
	if (req.has_body && op != PubOp::Remove) {
		std::string why = validate_pidf(req.body, req.presentity, cfg_.max_body_size);
		if (!why.empty()) {
			host_.stat(Stat::RejectedBodies, 1);
			return reply(400, "Bad Request (" + why + ")");
		}
	}
	std::string etag = op == PubOp::Remove ? std::string() : new_etag();
	long long expires_at = req.now + expires;
	PublishResult r = store_.publish(req.presentity, op, req.if_match, etag,
			op == PubOp::Remove ? std::string() : req.body, admin ? "rpc" : req.source,
			expires_at, req.now, cfg_.max_publications);
	if (r.outcome == 0) {
		host_.stat(Stat::Rejected412, 1);
		return reply(412, "Conditional Request Failed");
	}
	if (r.outcome < 0)
		return reply(403, "Forbidden (too many publications for this presentity)");
	host_.stat(Stat::Publications, 1);
	if (r.changed && r.watched) recompose(req.presentity, std::move(r.live), r.gen, req.now_ms);
	if (op == PubOp::Remove) return reply(200, "OK", {"Expires: 0"});
	return reply(200, "OK", {"SIP-ETag: " + etag, "Expires: " + std::to_string(expires)});
}

Response Engine::admin_publish(const std::string &presentity, const std::string &body,
		int expires, const std::string &etag, long long now, long long now_ms)
{
	PublishRequest req;
	req.has_event = true;
	req.event = "presence";
	req.has_body = !body.empty();
	req.content_type = kPidf;
	req.body = body;
	req.if_match = etag;
	req.expires = expires;
	req.presentity = presentity;
	req.identity = presentity;
	req.now = now;
	req.now_ms = now_ms;
	Response r;
	with_lock(presentity, [&] { r = publish_locked(req, true); });
	return r;
}

// ---- SUBSCRIBE ------------------------------------------------------------------------------

Response Engine::subscribe(const SubscribeRequest &req)
{
	Response r = subscribe_checked(req);
	if (r.code < 300 && !req.dialog.local_contact.empty())
		r.headers.push_back("Contact: <" + req.dialog.local_contact + ">");
	return r;
}

Response Engine::subscribe_checked(const SubscribeRequest &req)
{
	std::string pkg = req.has_event ? package_of(req.event) : std::string();
	if (pkg != "presence" && pkg != "presence.winfo")
		return reply(489, "Bad Event", {"Allow-Events: presence, presence.winfo"});
	bool winfo = pkg == "presence.winfo";
	const char *ctype = winfo ? kWinfo : kPidf;
	if (req.has_accept && !accepts(req.accept, ctype))
		return reply(406, "Not Acceptable", {std::string("Accept: ") + ctype});
	int expires = req.expires < 0 ? cfg_.default_expires : req.expires;
	if (expires > 0 && expires < cfg_.min_expires)
		return reply(423, "Interval Too Brief", {"Min-Expires: " + std::to_string(cfg_.min_expires)});
	expires = std::min(expires, cfg_.max_expires);
	long long now = req.now;

	Subscription s = req.dialog;
	s.sid = subscription_id(s.callid, s.remote_tag, s.local_tag);
	s.expires_at = now + expires;

	if (req.in_dialog) {
		s.last_notify_ms = req.now_ms;
		SubscribeOutcome o = store_.refresh(s, expires == 0);
		if (o == SubscribeOutcome::NoSuchDialog) return reply(481, "Subscription Does Not Exist");
		if (o == SubscribeOutcome::CseqOutOfOrder) return reply(500, "Server Internal Error (CSeq out of order)");
		if (expires == 0) {
			ended(s, "timeout", "timeout", true, req.now_ms);
		} else if (s.event == "presence.winfo") {
			queue(s, winfo_full(s, s.presentity, now), kWinfo, subscription_state(s, now));
		} else {
			// the rules as they are now (an admin may have changed them in SQL)
			std::string doc;
			if (!apply_rule(s, req.now_ms, doc))
				queue_presence(s, subscription_state(s, now), current_document(s.presentity));
		}
		return reply(200, "OK", {"Expires: " + std::to_string(expires)});
	}

	if (req.presentity.empty()) return reply(400, "Bad Request (Request-URI has no presentity)");
	s.presentity = req.presentity;
	s.event = pkg;
	s.watcher = req.watcher;
	s.display_name = req.display_name;
	s.event_id = event_id(req.event);
	s.created_at = now;
	s.last_notify_ms = req.now_ms;
	bool own = lower(req.watcher) == lower(req.presentity);
	if (winfo) {
		if (!own) return reply(403, "Forbidden (only the presentity may watch its watchers)");
		s.status = "active";
	} else {
		Action a = own ? Action::Allow : host_.rule(req.presentity, req.watcher);
		if (a == Action::Block) return reply(403, "Forbidden (blocked by the presentity)");
		s.status = status_for(a);
	}
	if (expires == 0) {  // a fetch: one NOTIFY with the state now, nothing stored
		s.version = 0;
		s.cseq = 1;
		if (winfo) queue(s, winfo_full(s, s.presentity, now), kWinfo, "terminated;reason=timeout");
		else queue_presence(s, "terminated;reason=timeout", current_document(s.presentity));
		return reply(200, "OK", {"Expires: 0"});
	}
	if (!store_.create(s, cfg_.max_watchers))
		return reply(403, "Forbidden (too many watchers of this presentity)");
	if (s.version == 0) host_.account(s, true);  // not a retransmission
	if (winfo) {
		queue(s, winfo_full(s, s.presentity, now), kWinfo, subscription_state(s, now));
	} else {
		queue_presence(s, subscription_state(s, now), current_document(s.presentity));
		if (s.version == 0)  // not a retransmission
			winfo_changed(s.presentity,
					{{s, s.status == "pending" ? "pending" : s.status == "polite" ? "terminated" : "active",
							s.status == "polite" ? "rejected" : "subscribe"}},
					req.now_ms);
	}
	return reply(200, "OK", {"Expires: " + std::to_string(expires)});
}

// A subscription that was taken out of the store: final NOTIFY, and the owner's watchers told.
void Engine::ended(const Subscription &s, const std::string &reason, const std::string &winfo_event,
		bool send_final, long long now_ms)
{
	std::string state = "terminated;reason=" + reason;
	host_.account(s, false);
	if (send_final) {
		if (s.event == "presence.winfo") {
			queue(s, "", "", state);
		} else if (reason == "rejected" || reason == "deactivated") {
			queue(s, "", "", state);
		} else {
			queue_presence(s, state, current_document(s.presentity));
		}
	}
	if (s.event != "presence.winfo") winfo_changed(s.presentity, {{s, "terminated", winfo_event}}, now_ms);
}

// ---- watcher info ---------------------------------------------------------------------------

namespace {
WatcherEntry entry_of(const Subscription &s, const std::string &status, const std::string &event, long long now)
{
	WatcherEntry e;
	e.id = s.sid;
	// the identity the watcher was authenticated as (asserted), not its From URI
	e.uri = s.watcher.empty() ? s.watcher_uri : "sip:" + s.watcher;
	e.display_name = s.display_name;
	e.status = status;
	e.event = event;
	e.duration_subscribed = s.created_at > 0 ? std::max(0LL, now - s.created_at) : 0;
	if (status != "terminated") e.expiration = std::max(0LL, s.expires_at - now);
	return e;
}
}  // namespace

std::string Engine::winfo_full(const Subscription &winfo_sub, const std::string &pres, long long now)
{
	std::vector<WatcherEntry> list;
	auto subs = store_.subscriptions(pres, "presence");
	std::sort(subs.begin(), subs.end(), [](const Subscription &a, const Subscription &b) {
		return a.created_at != b.created_at ? a.created_at < b.created_at : a.sid < b.sid;
	});
	for (const auto &s : subs) {
		if (s.status == "active") list.push_back(entry_of(s, "active", "approved", now));
		else if (s.status == "pending") list.push_back(entry_of(s, "pending", "subscribe", now));
	}
	return winfo_document(winfo_sub.version, true, "sip:" + pres, list);
}

void Engine::winfo_changed(const std::string &pres, const std::vector<WinfoChange> &changes, long long now_ms)
{
	auto wsubs = store_.subscriptions(pres, "presence.winfo");
	if (wsubs.empty()) return;
	std::vector<std::string> sids;
	for (const auto &w : wsubs) sids.push_back(w.sid);
	long long now = now_ms / 1000;
	std::vector<WatcherEntry> list;
	for (const auto &c : changes) list.push_back(entry_of(c.sub, c.status, c.event, now));
	for (const auto &w : store_.bump(sids, "", now_ms))
		queue(w, winfo_document(w.version, false, "sip:" + pres, list), kWinfo, subscription_state(w, now));
}

// ---- timer, failures, rules, RPC ------------------------------------------------------------

// One item of a timer batch: an error is logged and counted, and the batch goes on.
template <class F>
void Engine::each_item(const char *what, const std::string &key, F &&f)
{
	try {
		f();
	} catch (const std::exception &e) {
		host_.stat(Stat::TimerErrors, 1);
		IMPS_ERR("timer: %s of %s failed: %s", what, key.c_str(), e.what());
	}
}

void Engine::tick(long long now, long long now_ms)
{
	std::vector<std::string> expired;
	each_item("expired publications", "*", [&] { expired = store_.expire_publications(now, 500); });
	for (const auto &pres : expired) {
		each_item("recomposition", pres, [&] {
			with_lock(pres, [&] {
				unsigned long long gen = 0;
				auto live = store_.publications(pres, now, gen);
				recompose(pres, std::move(live), gen, now_ms);
			});
		});
	}
	std::vector<Subscription> ended_subs;
	each_item("expired subscriptions", "*", [&] { ended_subs = store_.claim_expired(now, 500); });
	for (const auto &s : ended_subs) {
		// a pending subscription nobody decided on: giveup (RFC 3857)
		const char *why = s.status == "pending" ? "giveup" : "timeout";
		each_item("final NOTIFY", s.sid, [&] {
			with_lock(s.presentity, [&] { ended(s, why, why, true, now_ms); });
		});
	}
	std::vector<Subscription> due_list;
	each_item("coalesced NOTIFYs", "*", [&] { due_list = store_.claim_due(now_ms, 1000); });
	for (const auto &due : due_list) {
		each_item("coalesced NOTIFY", due.sid, [&] {
			with_lock(due.presentity, [&] {
				for (const auto &s : store_.bump({due.sid}, "", now_ms))
					if (s.status == "active")
						queue_presence(s, subscription_state(s, now), current_document(s.presentity));
			});
		});
	}
}

void Engine::notify_failed(const std::string &sid, int code, bool retry_after, long long now_ms)
{
	if (code < 300) return;
	host_.stat(Stat::NotifiesFailed, 1);
	if (code != 481 && retry_after) return;
	Subscription s;
	if (!store_.take(sid, false, s)) return;
	IMPS_INFO("subscription %s of %s to %s removed: NOTIFY answered %d", sid.c_str(),
			s.watcher.c_str(), s.presentity.c_str(), code);
	with_lock(s.presentity, [&] { ended(s, "timeout", "timeout", false, now_ms); });
}

// The owner's rule for an existing presence subscription applied now: a changed status is
// stored and notified to both sides (a block ends the subscription). True when it changed.
bool Engine::apply_rule(const Subscription &s, long long now_ms, std::string &doc)
{
	long long now = now_ms / 1000;
	bool own = lower(s.watcher) == lower(s.presentity);
	Action a = own ? Action::Allow : host_.rule(s.presentity, s.watcher);
	if (a == Action::Unknown) return false;  // rules unreadable: keep what the watcher has
	if (a == Action::Block) {
		Subscription t;
		if (!store_.take(s.sid, true, t)) return false;
		ended(t, "rejected", "rejected", true, now_ms);
		return true;
	}
	std::string status = status_for(a);
	if (status == s.status) return false;
	bool changed = false;
	for (const auto &n : store_.bump({s.sid}, status, now_ms)) {
		if (status == "active" && doc.empty()) doc = current_document(s.presentity);
		queue_presence(n, subscription_state(n, now), doc);
		if (status == "active") winfo_changed(s.presentity, {{n, "active", "approved"}}, now_ms);
		else if (status == "polite") winfo_changed(s.presentity, {{n, "terminated", "rejected"}}, now_ms);
		else winfo_changed(s.presentity, {{n, "pending", "subscribe"}}, now_ms);
		changed = true;
	}
	return changed;
}

int Engine::reauthorize(const std::string &presentity, const std::string &watcher, long long now_ms)
{
	if (presentity.find('@') == std::string::npos) {
		// a domain's rule: every presentity of the domain with state here
		int changed = 0;
		for (const auto &p : store_.list(1000000))
			if (lower(domain_of(p.presentity)) == lower(presentity))
				changed += reauthorize(p.presentity, watcher, now_ms);
		return changed;
	}
	int changed = 0;
	with_lock(presentity, [&] {
		std::string doc;
		for (const auto &s : store_.subscriptions(presentity, "presence")) {
			if (!watcher.empty() && lower(s.watcher) != lower(watcher) && lower(domain_of(s.watcher)) != lower(watcher))
				continue;
			if (apply_rule(s, now_ms, doc)) ++changed;
		}
	});
	return changed;
}

bool Engine::terminate(const std::string &sid, long long now_ms)
{
	Subscription s;
	if (!store_.take(sid, true, s)) return false;
	with_lock(s.presentity, [&] { ended(s, "deactivated", "deactivated", true, now_ms); });
	return true;
}

PresentityView Engine::show(const std::string &presentity, long long now)
{
	PresentityView v;
	unsigned long long gen = 0;
	v.publications = store_.publications(presentity, now, gen);
	v.document = store_.document(presentity);
	if (v.document.empty()) v.document = compose_now(presentity, v.publications);
	return v;
}

}  // namespace imps::presence
