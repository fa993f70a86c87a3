#include "engine.hpp"

#include "pidf.hpp"
#include "winfo_doc.hpp"
#include "xcap_diff.hpp"

#include "imps/hash.hpp"
#include "imps/clock.hpp"
#include "imps/log.hpp"
#include "imps/redis.hpp"
#include "imps/sip_text.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <optional>
#include <stdexcept>

namespace imps::presence {
namespace {

long long subs_now_ms() { return imps::wall_ms(); }

const char *kPidf = "application/pidf+xml";
const char *kWinfo = "application/watcherinfo+xml";
const char *kXcapDiff = "application/xcap-diff+xml";
const char *kResourceLists = "application/resource-lists+xml";

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

// The URI list of an xcap-diff SUBSCRIBE body (RFC 5875 4.4) as stored with the subscription
// (data); the refusal when it is not one the subscriber (xui) may have.
std::optional<Response> read_selection(const SubscribeRequest &req, const std::string &root, const std::string &xui,
		size_t max_size, std::string &data)
{
	if (req.content_type != kResourceLists)
		return reply(415, "Unsupported Media Type", {std::string("Accept: ") + kResourceLists});
	if (req.body.size() > max_size) return reply(413, "Request Entity Too Large");
	std::vector<std::string> sel;
	std::string why;
	if (!xcapdiff::parse_selection(req.body, root, xui, sel, why))
		return why.rfind("no XCAP", 0) == 0 ? reply(403, "Forbidden (" + why + ")") : reply(400, "Bad Request (" + why + ")");
	data = xcapdiff::join(sel);
	return std::nullopt;
}

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

// ---- the packages on the shared layer -------------------------------------------------------

class Engine::PresencePackage final : public subs::Package {
public:
	explicit PresencePackage(Engine &e) : e_(e) {}
	std::string name() const override { return "presence"; }
	std::vector<std::string> content_types() const override { return {kPidf}; }
	subs::Notification full_state(const Subscription &s, long long now) override
	{
		return e_.presence_state(s, "", now);
	}
	subs::Notification final_state(const Subscription &s, const std::string &reason, long long now) override
	{
		return e_.presence_state(s, reason, now);
	}
	void ended(const Subscription &s, const std::string &reason, long long now_ms) override
	{
		e_.presence_ended(s, reason, now_ms);
	}
	std::string refreshed(Subscription &s, long long now_ms) override
	{
		return e_.presence_refreshed(s, now_ms);
	}

private:
	Engine &e_;
};

class Engine::WinfoPackage final : public subs::Package {
public:
	explicit WinfoPackage(Engine &e) : e_(e) {}
	std::string name() const override { return "presence.winfo"; }
	std::vector<std::string> content_types() const override { return {kWinfo}; }
	subs::Notification full_state(const Subscription &s, long long now) override
	{
		return e_.winfo_state(s, "", now);
	}
	subs::Notification final_state(const Subscription &s, const std::string &reason, long long now) override
	{
		return e_.winfo_state(s, reason, now);
	}
	void ended(const Subscription &s, const std::string &, long long) override
	{
		e_.host_.account(s, false);  // its Start was sent when it was created
	}

private:
	Engine &e_;
};

// xcap-diff (RFC 5875): the subscriber's own documents; its resource is the subscriber.
class Engine::XcapDiffPackage final : public subs::Package {
public:
	explicit XcapDiffPackage(Engine &e) : e_(e) {}
	std::string name() const override { return "xcap-diff"; }
	std::vector<std::string> content_types() const override { return {kXcapDiff}; }
	subs::Notification full_state(const Subscription &s, long long now) override
	{
		return e_.xcap_diff_state(s, "", now);
	}
	subs::Notification final_state(const Subscription &s, const std::string &reason, long long now) override
	{
		return e_.xcap_diff_state(s, reason, now);
	}
	void ended(const Subscription &s, const std::string &, long long) override { e_.host_.account(s, false); }

private:
	Engine &e_;
};

// SIP through the host's tm sender, or in process to the consumer of a watch (its dialog's
// remote target is "local:<consumer>", its Call-ID "local:<consumer>:<key>"): the consumer's
// answer is its final response, reported once the NOTIFYs of this flush are out.
class Engine::Delivery final : public subs::Delivery {
public:
	explicit Delivery(Engine &e) : e_(e) {}
	bool deliver(const subs::Outgoing &n) override
	{
		const auto &d = n.sub.dialog;
		if (d.remote_target.rfind("local:", 0) != 0) return e_.host_.send_notify(n);
		std::string consumer = d.remote_target.substr(6);
		std::string prefix = "local:" + consumer + ":";
		std::string key = d.callid.rfind(prefix, 0) == 0 ? d.callid.substr(prefix.size()) : d.callid;
		int code = e_.host_.deliver_local(consumer, key, n);
		e_.local_done_.push_back({n.sub.resource, n.sub.sid, n.sub.cseq, code});
		return true;
	}

private:
	Engine &e_;
};

Engine::Engine(Config cfg, Redis &redis, std::string key_prefix, Host &host)
	: cfg_(std::move(cfg)),
	  host_(host),
	  subs_(redis, subs::Keys(std::move(key_prefix)), cfg_.notify_busy_ms, cfg_.node, cfg_.epoch),
	  pubs_(subs_),
	  delivery_(std::make_unique<Delivery>(*this)),
	  presence_(std::make_unique<PresencePackage>(*this)),
	  winfo_(std::make_unique<WinfoPackage>(*this))
{
	using Mode = PolicyConfig::Mode;
	if (cfg_.policy.mode == Mode::Local)
		policy_ = std::make_unique<Policy>(cfg_.policy,
				[this](const std::string &path, std::string &body, std::string &etag) {
					return host_.xcap_get(path, body, etag);
				},
				[this] { return host_.xcap_generation(); });
	else {
		// copies read over HTTP are shared through the state store, kept a day
		Policy::Shared sh;
		sh.load = [this](const std::string &p, std::string &blob) {
			try {
				auto r = subs_.redis().command({"GET", subs_.keys().resource(p, "prules")});
				if (r && r->type == REDIS_REPLY_STRING) {
					blob.assign(r->str, r->len);
					return true;
				}
			} catch (const std::exception &e) {
				IMPS_WARN("pres-rules copy of %s not read: %s", p.c_str(), e.what());
			}
			return false;
		};
		sh.save = [this](const std::string &p, const std::string &blob) {
			try {
				subs_.redis().command({"SET", subs_.keys().resource(p, "prules"), blob, "EX", "86400"});
			} catch (const std::exception &e) {
				IMPS_WARN("pres-rules copy of %s not stored: %s", p.c_str(), e.what());
			}
		};
		policy_ = std::make_unique<Policy>(cfg_.policy, Policy::Get{}, Policy::Generation{}, std::move(sh));
	}
	if (cfg_.xcap_diff) xcap_diff_ = std::make_unique<XcapDiffPackage>(*this);
	notifier_ = std::make_unique<subs::Notifier>(subs::notifier_config_of(cfg_), subs_, *delivery_, [this](subs::Counter c, long long d) {
		switch (c) {
		case subs::Counter::Sent: host_.stat(Stat::NotifiesSent, d); break;
		case subs::Counter::Failed: host_.stat(Stat::NotifiesFailed, d); break;
		case subs::Counter::Active: break;  // read from the store
		case subs::Counter::TimerErrors: host_.stat(Stat::TimerErrors, d); break;
		}
	});
	notifier_->add(*presence_);
	notifier_->add(*winfo_);
	if (xcap_diff_) notifier_->add(*xcap_diff_);
}

Engine::~Engine() = default;

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

// The composed document of the live publications, cached per process: every publication
// version has an ETag of its own (96 random bits), so the ETags name the document's sources
// (the generation alone does not: it starts again when a presentity's keys went away).
std::string Engine::document_of(const std::string &pres, unsigned long long,
		const std::vector<Publication> &live)
{
	std::vector<std::string> tags;
	tags.reserve(live.size());
	for (const auto &p : live) tags.push_back(p.etag);
	std::sort(tags.begin(), tags.end());
	std::string key;
	for (const auto &t : tags) key += t + ',';
	auto it = doc_cache_.find(pres);
	if (it != doc_cache_.end() && it->second.sources == key) return it->second.doc;
	std::string doc = compose_now(pres, live);
	if (doc_cache_.size() >= 4096) doc_cache_.clear();
	doc_cache_[pres] = {key, doc};
	return doc;
}

std::string Engine::current_document(const std::string &pres)
{
	unsigned long long gen = 0;
	auto live = pubs_.publications(pres, time(nullptr), gen);
	return document_of(pres, gen, live);
}

// The presence NOTIFY a subscription's status gives it (reason: a final one).
subs::Notification Engine::presence_state(const Subscription &s, const std::string &reason, long long)
{
	if (reason == "rejected" || reason == "deactivated") return {};
	if (s.status == "pending") return {};
	if (s.status == "polite") return {offline(s.resource), kPidf, {}};
	return {visible(s, current_document(s.resource), subs_now_ms()), kPidf, {}};
}

// RFC 5025 3.3: what the watcher's grant lets through of the presentity's document. Only the
// presentity's own rules filter: a watcher the operator's rules (or the default) let in sees
// the whole document; a presentity whose rules cannot be read shows the offline document.
std::string Engine::visible(const Subscription &s, const std::string &doc, long long now_ms)
{
	if (!policy_->enabled()) return doc;
	return visible_with(policy_->of(s.resource, now_ms), s, doc, now_ms, nullptr);
}

// visible() with the presentity's rules read already; filtered: the documents filtered so far
// in this batch by grant, shared by watchers with the same grant (null: none kept).
std::string Engine::visible_with(const UserRules &ur, const Subscription &s, const std::string &doc,
		long long now_ms, std::map<std::string, std::string> *filtered)
{
	if (lower(s.watcher) == lower(s.resource) || ur.state == UserRules::State::None) return doc;
	if (ur.state == UserRules::State::Error) return offline(s.resource);
	Grant g = evaluate(ur.rules, s.watcher, now_ms / 1000);
	if (!decision(g)) return doc;
	std::string key = filtered ? grant_key(g) : std::string();
	if (filtered) {
		auto it = filtered->find(key);
		if (it != filtered->end()) return it->second;
	}
	std::string f = filter_document(doc, g);
	if (f.empty()) f = offline(s.resource);
	if (filtered) filtered->emplace(key, f);
	return f;
}

Engine::Decision Engine::decide(const std::string &p, const std::string &w, long long now_ms)
{
	Decision d;
	if (lower(w) == lower(p)) {
		d.action = Action::Allow;  // its own presence
		return d;
	}
	if (!policy_->enabled()) {
		d.action = host_.rule(p, w);
		return d;
	}
	// the operator's layer first: its block and polite-block stand whatever the user says
	auto op = host_.operator_rule(p, w);
	if (op && (*op == Action::Unknown || *op == Action::Block || *op == Action::PoliteBlock)) {
		d.action = *op;
		return d;
	}
	// then the presentity's own rules, when one of them matches the watcher
	const UserRules &ur = policy_->of(p, now_ms);
	if (ur.state == UserRules::State::Found) {
		Grant g = evaluate(ur.rules, w, now_ms / 1000);
		if (auto a = decision(g)) {
			d.action = *a;
			d.by_user = true;
			d.grant = std::move(g);
			return d;
		}
	} else if (ur.state == UserRules::State::Error && !op) {
		d.action = Action::Unknown;  // unreadable, and nothing else speaks
		return d;
	}
	// else the operator's allow or confirm, else the default
	d.action = op ? *op : host_.default_action;
	return d;
}

namespace {

// A watcher-info change as it waits on a winfo subscription's record (Store::turn's delta):
// one line per watcher, tab separated.
std::string clean(std::string v)
{
	for (auto &c : v)
		if (c == '\t' || c == '\n' || c == '\r') c = ' ';
	return v;
}

std::string encode_change(const Subscription &s, const std::string &status, const std::string &event)
{
	return clean(s.sid) + '\t' + clean(status) + '\t' + clean(event) + '\t' + clean(s.watcher) + '\t'
			+ clean(s.watcher_uri) + '\t' + clean(s.display_name) + '\t' + std::to_string(s.created_at)
			+ '\t' + std::to_string(s.expires_at);
}

// the changes that waited, oldest first, the latest one per watcher
std::vector<WatcherEntry> decode_changes(const std::string &lines, long long now)
{
	std::vector<WatcherEntry> out;
	size_t from = 0;
	while (from < lines.size()) {
		size_t nl = lines.find('\n', from);
		std::string line = lines.substr(from, nl == std::string::npos ? std::string::npos : nl - from);
		from = nl == std::string::npos ? lines.size() : nl + 1;
		std::vector<std::string> f;
		size_t a = 0;
		for (size_t t; (t = line.find('\t', a)) != std::string::npos; a = t + 1) f.push_back(line.substr(a, t - a));
		f.push_back(line.substr(a));
		if (f.size() != 8) continue;
		Subscription s;
		s.sid = f[0];
		s.watcher = f[3];
		s.watcher_uri = f[4];
		s.display_name = f[5];
		s.created_at = std::strtoll(f[6].c_str(), nullptr, 10);
		s.expires_at = std::strtoll(f[7].c_str(), nullptr, 10);
		WatcherEntry e = entry_of(s, f[1], f[2], now);
		out.erase(std::remove_if(out.begin(), out.end(), [&](const WatcherEntry &o) { return o.id == e.id; }),
				out.end());
		out.push_back(std::move(e));
	}
	return out;
}

}  // namespace

// A winfo NOTIFY: the changes that waited for it (partial state) when there are any, else
// the whole list.
subs::Notification Engine::winfo_state(const Subscription &s, const std::string &reason, long long now)
{
	if (!reason.empty()) return {};
	if (!s.pending_deltas.empty() && !s.pending_overflow)
		return {winfo_document(s.version, false, "sip:" + s.resource, decode_changes(s.pending_deltas, now)),
				kWinfo, {}};
	return {winfo_full(s, now), kWinfo, {}};
}

// A refresh of a presence subscription: the owner's rules as they are now decide the NOTIFY
// it gets (SQL may have changed them): a block ends it with this NOTIFY (rejected), another
// status is stored and shown, both sides' watcher info told.
std::string Engine::presence_refreshed(Subscription &s, long long now_ms)
{
	Action a = action_for(s);
	if (a == Action::Unknown) return {};  // rules unreadable: keep what the watcher has
	if (a == Action::Block) return "rejected";
	std::string status = status_for(a);
	if (status == s.status) return {};
	if (!subs_.set_status(s.resource, s.sid, status)) return {};
	s.status = status;
	status_changed(s, now_ms);
	return {};
}

// The owner's rule for a subscription's watcher (its own presence: always allowed).
Action Engine::action_for(const Subscription &s)
{
	return decide(s.resource, s.watcher, subs_now_ms()).action;
}

// The owner's watcher info learns the status a rule gave an existing subscription.
void Engine::status_changed(const Subscription &s, long long now_ms)
{
	if (s.status == "active") winfo_changed(s.resource, {{s, "active", "approved"}}, now_ms);
	else if (s.status == "polite") winfo_changed(s.resource, {{s, "terminated", "rejected"}}, now_ms);
	else winfo_changed(s.resource, {{s, "pending", "subscribe"}}, now_ms);
}

void Engine::presence_ended(const Subscription &s, const std::string &reason, long long now_ms)
{
	host_.account(s, false);
	winfo_changed(s.resource, {{s, "terminated", reason}}, now_ms);
}

void Engine::flush()
{
	notifier_->flush();
	// in-process NOTIFYs were answered at once: their responses free the dialogs, and a
	// NOTIFY that waited for one goes now (bounded: a consumer answering forever ends)
	for (int round = 0; round < 64 && !local_done_.empty(); ++round) {
		std::vector<LocalDone> done;
		done.swap(local_done_);
		for (const auto &d : done) {
			try {
				notifier_->complete(d.presentity, d.sid, d.cseq, d.code, false, subs_now_ms());
			} catch (const std::exception &e) {
				host_.stat(Stat::TimerErrors, 1);
				IMPS_ERR("response of an in-process NOTIFY to %s not recorded: %s", d.presentity.c_str(), e.what());
			}
		}
		notifier_->flush();
	}
}

// The active watchers that got their turn from a change of the publications: the new
// document, composed once.
void Engine::notify_document(const std::string &pres, const subs::Batch &b, unsigned long long gen,
		const std::vector<Publication> &live, long long now_ms)
{
	if (b.send.empty()) return;
	std::string doc = document_of(pres, gen, live);
	long long now = now_ms / 1000;
	if (!policy_->enabled()) {
		for (const auto &s : b.send) notifier_->queue(s, {doc, kPidf, {}}, subs::subscription_state(s, now));
		return;
	}
	// each watcher's grant filters the document; watchers with the same grant share the result
	const UserRules &ur = policy_->of(pres, now_ms);
	std::map<std::string, std::string> filtered;
	for (const auto &s : b.send)
		notifier_->queue(s, {visible_with(ur, s, doc, now_ms, &filtered), kPidf, {}}, subs::subscription_state(s, now));
}

// ---- PUBLISH --------------------------------------------------------------------------------

Response Engine::publish(const PublishRequest &req)
{
	notifier_->discard();
	return publish_checked(req, false);
}

Response Engine::publish_checked(const PublishRequest &req, bool admin)
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
	// one atomic step: the publication stored under the new ETag (or the old one consumed)
	// exactly when the script ran, which is when the answer carries the new ETag
	// A reply lost after the script was sent (a Redis timeout or reconnect) leaves it unknown
	// whether it ran: it is sent once more as a replay, which the script recognises by the new
	// ETag: applied already, it does nothing twice and the answer carries that ETag; not
	// applied, it is applied now. So the ETag the client gets is the one stored.
	PublishResult r;
	try {
		r = pubs_.publish(req.presentity, op, req.if_match, etag,
				op == PubOp::Remove ? std::string() : req.body, admin ? "rpc" : req.source,
				expires_at, req.now, cfg_.max_publications, cfg_.min_notify_interval_ms, req.now_ms);
	} catch (const RedisError &e) {
		if (op == PubOp::Remove || std::string(e.what()).find("may have run") == std::string::npos) throw;
		IMPS_WARN("PUBLISH of %s: %s; sent again, keyed by its ETag", req.presentity.c_str(), e.what());
		subs_.redis().retry_now();  // one more wait for Redis: the ETag must be known
		r = pubs_.publish(req.presentity, op, req.if_match, etag, req.body, admin ? "rpc" : req.source,
				expires_at, req.now, cfg_.max_publications, cfg_.min_notify_interval_ms, req.now_ms, true);
	}
	if (r.outcome == 0) {
		host_.stat(Stat::Rejected412, 1);
		return reply(412, "Conditional Request Failed");
	}
	if (r.outcome < 0) return reply(403, "Forbidden (too many publications for this presentity)");
	host_.stat(Stat::Publications, 1);
	try {
		if (r.changed) notify_document(req.presentity, r.batch, r.gen, r.live, req.now_ms);
	} catch (const std::exception &e) {
		// the publication is stored and its ETag must reach the client
		host_.stat(Stat::TimerErrors, 1);
		IMPS_ERR("NOTIFYs for the PUBLISH of %s not built: %s", req.presentity.c_str(), e.what());
	}
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
	notifier_->discard();
	Response r = publish_checked(req, true);
	flush();
	return r;
}

// ---- SUBSCRIBE ------------------------------------------------------------------------------

Response Engine::subscribe(const SubscribeRequest &req)
{
	notifier_->discard();
	return subscribe_checked(req);
}

Response Engine::subscribe_checked(const SubscribeRequest &req)
{
	std::string pkg_name = req.has_event ? package_of(req.event) : std::string();
	bool diff = pkg_name == "xcap-diff" && xcap_diff_;
	if (pkg_name != "presence" && pkg_name != "presence.winfo" && !diff)
		return reply(489, "Bad Event",
				{std::string("Allow-Events: presence, presence.winfo") + (xcap_diff_ ? ", xcap-diff" : "")});
	bool winfo = pkg_name == "presence.winfo";
	subs::Package &pkg = diff ? static_cast<subs::Package &>(*xcap_diff_)
			: winfo ? static_cast<subs::Package &>(*winfo_) : *presence_;

	subs::Notifier::Request r;
	r.event = req.event;
	r.has_event = true;
	r.has_accept = req.has_accept;
	r.accept = req.accept;
	r.expires = req.expires;
	r.in_dialog = req.in_dialog;
	r.now = req.now;
	r.now_ms = req.now_ms;
	r.sub.dialog = req.dialog;
	subs::Notifier::Response nr;
	if (!notifier_->check(r, pkg, nr)) {
		if (nr.code == 406) nr.reason = "Not Acceptable";
		return reply(nr.code, nr.reason, nr.headers);
	}

	if (req.in_dialog) {
		std::string sid = subs::subscription_id(req.dialog.callid, req.dialog.remote_tag, req.dialog.local_tag);
		r.sub.resource = subs_.resource_of(sid);
		if (r.sub.resource.empty()) return reply(481, "Subscription Does Not Exist");
		if (diff && !req.body.empty()) {
			// RFC 5875 4.4: a refresh may change the URI list; the NOTIFY it gets uses the new one
			std::string data;
			if (auto refused = read_selection(req, cfg_.xcap_root, xui_of(r.sub.resource), cfg_.max_body_size, data))
				return *refused;
			if (!subs_.set_data(r.sub.resource, sid, data)) return reply(481, "Subscription Does Not Exist");
		}
		// the rules as they are now apply to the NOTIFY of the refresh (PresencePackage::refreshed)
		nr = notifier_->subscribe(r, pkg, cfg_.max_watchers);
		return reply(nr.code, nr.reason, nr.headers);
	}

	if (req.presentity.empty()) return reply(400, "Bad Request (Request-URI has no presentity)");
	Subscription &s = r.sub;
	if (diff) {
		// RFC 5875 4.4: the URI list in the body; the subscriber's own documents (and global ones)
		if (req.body.empty()) return reply(400, "Bad Request (xcap-diff SUBSCRIBE without a resource-lists body)");
		std::string data;
		if (auto refused = read_selection(req, cfg_.xcap_root, xui_of(req.watcher), cfg_.max_body_size, data))
			return *refused;
		s.resource = req.watcher;
		s.watcher = req.watcher;
		s.watcher_uri = req.dialog.remote_uri;
		s.display_name = req.display_name;
		s.dialog.event_id = event_id(req.event);
		s.status = "active";
		s.data = data;
		nr = notifier_->subscribe(r, pkg, cfg_.max_watchers);
		if (nr.code == 403) return reply(403, "Forbidden (too many xcap-diff subscriptions)");
		if (nr.code != 200) return reply(nr.code, nr.reason, nr.headers);
		if (nr.created) host_.account(nr.sub, true);
		return reply(200, "OK", nr.headers);
	}
	s.resource = req.presentity;
	s.watcher = req.watcher;
	s.watcher_uri = req.dialog.remote_uri;
	s.display_name = req.display_name;
	s.dialog.event_id = event_id(req.event);
	bool own = lower(req.watcher) == lower(req.presentity);
	if (winfo) {
		if (!own) return reply(403, "Forbidden (only the presentity may watch its watchers)");
		s.status = "active";
	} else {
		Action a = decide(req.presentity, req.watcher, req.now_ms).action;
		if (a == Action::Block) return reply(403, "Forbidden (blocked by the presentity)");
		s.status = status_for(a);
	}
	nr = notifier_->subscribe(r, pkg, cfg_.max_watchers);
	if (nr.code == 403) return reply(403, "Forbidden (too many watchers of this presentity)");
	if (nr.code != 200) return reply(nr.code, nr.reason, nr.headers);
	if (nr.created) {  // not a retransmission, not a fetch
		pubs_.remember(req.presentity);
		host_.account(nr.sub, true);
		if (!winfo)
			winfo_changed(req.presentity,
					{{nr.sub, s.status == "pending" ? "pending" : s.status == "polite" ? "terminated" : "active",
							s.status == "polite" ? "rejected" : "subscribe"}},
					req.now_ms);
	}
	return reply(200, "OK", nr.headers);
}

// ---- in-process watches ----------------------------------------------------------------------

Response Engine::watch(const std::string &presentity, const std::string &watcher,
		const std::string &consumer, const std::string &key, int expires, long long now,
		long long now_ms, std::string &sid)
{
	notifier_->discard();
	SubscribeRequest req;
	req.has_event = true;
	req.event = "presence";
	req.expires = expires;
	req.presentity = presentity;
	req.watcher = watcher;
	req.now = now;
	req.now_ms = now_ms;
	subs::Dialog &d = req.dialog;
	d.callid = "local:" + consumer + ":" + key;
	d.remote_tag = "local-" + consumer;
	d.local_tag = "imps-presence";
	d.remote_uri = "sip:" + watcher;
	d.local_uri = "sip:" + presentity;
	d.remote_target = "local:" + consumer;
	sid = subs::subscription_id(d.callid, d.remote_tag, d.local_tag);
	Response r = subscribe_checked(req);
	flush();
	return r;
}

bool Engine::unwatch(const std::string &presentity, const std::string &sid, long long now_ms)
{
	notifier_->discard();
	subs::Batch b;
	if (!subs_.take(presentity, sid, "timeout", true, now_ms, b)) return false;
	notifier_->handle(b, now_ms / 1000, now_ms);
	flush();
	return true;
}

// ---- watcher info ---------------------------------------------------------------------------

std::string Engine::winfo_full(const Subscription &winfo_sub, long long now)
{
	std::vector<WatcherEntry> list;
	auto subs = subs_.of(winfo_sub.resource, "presence");
	std::sort(subs.begin(), subs.end(), [](const Subscription &a, const Subscription &b) {
		return a.created_at != b.created_at ? a.created_at < b.created_at : a.sid < b.sid;
	});
	for (const auto &s : subs) {
		if (s.status == "active") list.push_back(entry_of(s, "active", "approved", now));
		else if (s.status == "pending") list.push_back(entry_of(s, "pending", "subscribe", now));
	}
	return winfo_document(winfo_sub.version, true, "sip:" + winfo_sub.resource, list);
}

// The owner's watcher-info subscriptions learn of changes of its watchers: a partial document
// to every one whose turn it is (the others get the full list after their outstanding NOTIFY).
void Engine::winfo_changed(const std::string &pres, const std::vector<WinfoChange> &changes, long long now_ms)
{
	std::string delta;
	for (const auto &c : changes) delta += (delta.empty() ? "" : "\n") + encode_change(c.sub, c.status, c.event);
	subs::Batch b = subs_.turn(pres, {"pkg:presence.winfo"}, "", 0, now_ms, delta);
	long long now = now_ms / 1000;
	for (const auto &w : b.send) {
		if (w.pending_overflow) {
			notifier_->queue(w, {winfo_full(w, now), kWinfo, {}}, subs::subscription_state(w, now));
			continue;
		}
		// what waited (a NOTIFY was outstanding when it changed) and this change
		auto list = decode_changes(w.pending_deltas + (w.pending_deltas.empty() ? "" : "\n") + delta, now);
		notifier_->queue(w, {winfo_document(w.version, false, "sip:" + pres, list), kWinfo, {}},
				subs::subscription_state(w, now));
	}
}

// ---- timer, failures, rules, RPC ------------------------------------------------------------

void Engine::tick(long long now, long long now_ms, bool expiry)
{
	if (expiry) {
		int errors = 0;
		std::vector<ExpiredPublications> expired;
		try {
			expired = pubs_.expire(now, now_ms, cfg_.min_notify_interval_ms, 500, errors);
		} catch (const std::exception &e) {
			++errors;
			IMPS_ERR("timer: expired publications failed: %s", e.what());
		}
		if (errors) host_.stat(Stat::TimerErrors, errors);
		for (const auto &e : expired) {
			try {
				notify_document(e.presentity, e.batch, e.gen, e.live, now_ms);
			} catch (const std::exception &ex) {
				host_.stat(Stat::TimerErrors, 1);
				IMPS_ERR("timer: NOTIFYs for the expired publications of %s failed: %s",
						e.presentity.c_str(), ex.what());
			}
		}
		flush();
		notifier_->expire(now, now_ms);
		flush();
	}
	notifier_->send_due(now_ms);
	flush();
	if (policy_->config().mode == PolicyConfig::Mode::Http) revalidate_rules(now_ms);
}

// One page of the registry per run: every presentity's copy used again (Policy::of reads the
// shared copy, or asks the server conditionally once it is stale); one whose ETags moved since
// this process last held it changed on the server: its watchers are decided again.
void Engine::revalidate_rules(long long now_ms)
{
	if (now_ms < revalidate_next_ms_) return;
	const long long stop_ms = subs_now_ms() + 200;  // the timer has other work: at most this long
	try {
		for (const auto &p : pubs_.scan(revalidate_bucket_, revalidate_cursor_, 50)) {
			if (subs_now_ms() > stop_ms) break;  // the rest of the page in a later round
			if (subs_.of(p, "presence").empty()) continue;
			std::string before = policy_->held(p);
			std::string after = "+" + policy_->of(p, now_ms).etags;
			if (!before.empty() && before != after) {
				IMPS_INFO("pres-rules of %s changed on the List and Policy Server: applying them", p.c_str());
				notifier_->discard();
				rules_changed(p, now_ms);
				flush();
			}
		}
	} catch (const std::exception &e) {
		host_.stat(Stat::TimerErrors, 1);
		IMPS_ERR("timer: pres-rules not checked again: %s", e.what());
	}
	if (revalidate_cursor_ == 0) {
		revalidate_bucket_ = (revalidate_bucket_ + 1) % subs_.keys().buckets();
		// a whole round of the registry at most once per copy lifetime
		if (revalidate_bucket_ == 0) revalidate_next_ms_ = now_ms + std::max(1000LL, cfg_.policy.ttl_ms);
	}
}

void Engine::complete(const std::string &presentity, const std::string &sid, unsigned long long cseq,
		int code, bool retry_after, long long now_ms)
{
	notifier_->complete(presentity, sid, cseq, code, retry_after, now_ms);
	flush();
}

void Engine::complete_many(const std::vector<subs::Store::Response> &responses, long long now_ms)
{
	notifier_->complete_many(responses, now_ms);
	flush();
}

// The owner's rule for an existing presence subscription applied now: a changed status is
// stored and notified to both sides (a block ends the subscription). True when it changed.
bool Engine::apply_rule(const Subscription &s, long long now_ms)
{
	Action a = action_for(s);
	if (a == Action::Unknown) return false;  // rules unreadable: keep what the watcher has
	if (a == Action::Block) {
		subs::Batch b;
		if (!subs_.take(s.resource, s.sid, "rejected", true, now_ms, b)) return false;
		notifier_->handle(b, now_ms / 1000, now_ms);  // final NOTIFY, winfo, accounting
		return true;
	}
	std::string status = status_for(a);
	if (status == s.status) return false;
	subs::Batch b = subs_.turn(s.resource, {s.sid}, status, 0, now_ms);
	notifier_->handle(b, now_ms / 1000, now_ms);
	Subscription n = s;
	n.status = status;
	status_changed(n, now_ms);
	return true;
}

int Engine::reauthorize_one(const std::string &presentity, const std::string &watcher, long long now_ms)
{
	int changed = 0;
	for (const auto &s : subs_.of(presentity, "presence")) {
		if (!watcher.empty() && lower(s.watcher) != lower(watcher) && lower(domain_of(s.watcher)) != lower(watcher))
			continue;
		if (apply_rule(s, now_ms)) ++changed;
	}
	flush();
	return changed;
}

int Engine::reauthorize(const std::string &presentity, const std::string &watcher, long long now_ms)
{
	notifier_->discard();
	if (presentity.find('@') != std::string::npos) return reauthorize_one(presentity, watcher, now_ms);
	// a domain's rule: every presentity of the domain with state here, through the registry
	// bucket by bucket, page by page (SSCAN), each presentity its own small script: no
	// command runs over all of them, so other processes' commands keep their latency
	int changed = 0;
	const int page = std::max(1, cfg_.reauthorize_batch);
	for (int b = 0; b < subs_.keys().buckets(); ++b) {
		unsigned long long cursor = 0;
		do {
			for (const auto &p : pubs_.scan(b, cursor, page))
				if (lower(domain_of(p)) == lower(presentity)) changed += reauthorize_one(p, watcher, now_ms);
		} while (cursor != 0);
	}
	return changed;
}

bool Engine::terminate(const std::string &sid, long long now_ms)
{
	std::string pres = subs_.resource_of(sid);
	if (pres.empty()) return false;
	subs::Batch b;
	notifier_->discard();
	if (!subs_.take(pres, sid, "deactivated", true, now_ms, b)) return false;
	notifier_->handle(b, now_ms / 1000, now_ms);
	flush();
	return true;
}

PresentityView Engine::show(const std::string &presentity, long long now)
{
	PresentityView v;
	unsigned long long gen = 0;
	v.publications = pubs_.publications(presentity, now, gen);
	v.document = document_of(presentity, gen, v.publications);
	return v;
}

std::vector<Summary> Engine::list(int limit) { return pubs_.list(limit, time(nullptr)); }

// ---- the List and Policy Server's changes ----------------------------------------------------

void Engine::document_changed(const std::string &path, const std::string &old_etag,
		const std::string &new_etag, long long now_ms)
{
	notifier_->discard();
	// "<auid>/users/<xui>/<document>": a user's
	size_t a = path.find("/users/");
	if (a == std::string::npos || a == 0) return;
	size_t x = a + 7, e = path.find('/', x);
	if (e == std::string::npos) return;
	std::string owner = presentity_of_xui(path.substr(x, e - x));
	if (owner.empty()) return;
	try {
		if (policy_->enabled() && policy_->owner_of_rules(path) == owner) rules_changed(owner, now_ms);
	} catch (const std::exception &ex) {
		host_.stat(Stat::TimerErrors, 1);
		IMPS_ERR("pres-rules of %s changed, watchers not updated: %s", owner.c_str(), ex.what());
	}
	try {
		diff_changed(owner, path, old_etag, new_etag, now_ms);
	} catch (const std::exception &ex) {
		host_.stat(Stat::TimerErrors, 1);
		IMPS_ERR("xcap-diff NOTIFYs for %s not sent: %s", path.c_str(), ex.what());
	}
	flush();
}

// The presentity's rules changed: every watcher decided again (a changed status is stored and
// notified, a block ends the subscription) and every other active one gets its document as
// the new rules filter it.
void Engine::rules_changed(const std::string &owner, long long now_ms)
{
	policy_->forget(owner);
	std::vector<std::string> resend;
	for (const auto &s : subs_.of(owner, "presence")) {
		if (lower(s.watcher) == lower(owner)) continue;
		try {
			if (apply_rule(s, now_ms)) continue;
			if (s.status == "active") resend.push_back(s.sid);
		} catch (const std::exception &e) {
			host_.stat(Stat::TimerErrors, 1);
			IMPS_ERR("pres-rules of %s: watcher %s not updated: %s", owner.c_str(), s.watcher.c_str(), e.what());
		}
	}
	if (resend.empty()) return;
	subs::Batch b = subs_.turn(owner, resend, "", 0, now_ms);
	notifier_->handle(b, now_ms / 1000, now_ms);
}

namespace {

// one change of a document as it waits on an xcap-diff subscription's record
std::string encode_diff(const std::string &path, const std::string &old_etag, const std::string &new_etag)
{
	return clean(path) + '\t' + clean(old_etag) + '\t' + clean(new_etag);
}

}  // namespace

void Engine::diff_changed(const std::string &owner, const std::string &path, const std::string &old_etag,
		const std::string &new_etag, long long now_ms)
{
	if (!xcap_diff_) return;
	const std::string xui = xui_of(owner);
	std::vector<std::string> sids;
	for (const auto &s : subs_.of(owner, "xcap-diff"))
		for (const auto &sel : xcapdiff::split(s.data))
			if (xcapdiff::covers(sel, path, xui)) {
				sids.push_back(s.sid);
				break;
			}
	if (sids.empty()) return;
	const std::string delta = encode_diff(path, old_etag, new_etag);
	subs::Batch b = subs_.turn(owner, sids, "", 0, now_ms, delta);
	long long now = now_ms / 1000;
	for (auto &w : b.send) {
		if (!w.pending_overflow) {
			// what waited (a NOTIFY was outstanding) and this change
			w.pending_deltas += (w.pending_deltas.empty() ? "" : "\n") + delta;
		}
		notifier_->queue(w, xcap_diff_state(w, "", now), subs::subscription_state(w, now));
	}
	for (const auto &r : b.removed) notifier_->queue_final(r, now, now_ms);
}

// An xcap-diff NOTIFY (RFC 5874, no-patching): the changes that waited, in order, each
// document with its previous and new ETag and every selected component of it as it is now;
// else (first NOTIFY, refresh, too many changes) every selected document that exists, with
// its ETag, and every selected component that exists.
subs::Notification Engine::xcap_diff_state(const Subscription &s, const std::string &reason, long long)
{
	if (!reason.empty()) return {};
	using Item = xcapdiff::Item;
	const std::string xui = xui_of(s.resource);
	const auto sels = xcapdiff::split(s.data);
	std::vector<Item> items;
	auto component = [&](const std::string &sel) {
		Item it;
		it.kind = xcapdiff::is_attribute(sel) ? Item::Kind::Attribute : Item::Kind::Element;
		it.sel = sel;
		std::string body, etag;
		int st = host_.xcap_get(sel, body, etag);
		it.exists = st == 200;
		if (it.exists) {
			it.content = body;
			if (it.kind == Item::Kind::Element) {
				std::string doc, tag;
				if (host_.xcap_get(xcapdiff::document_of(sel), doc, tag) == 200)
					it.ns_decls = xcapdiff::root_namespaces(doc);
			}
		}
		return it;
	};
	if (!s.pending_deltas.empty() && !s.pending_overflow) {
		for (const auto &line : xcapdiff::split(s.pending_deltas)) {
			size_t t1 = line.find('\t'), t2 = t1 == std::string::npos ? t1 : line.find('\t', t1 + 1);
			if (t2 == std::string::npos) continue;
			std::string path = line.substr(0, t1);
			Item d;
			d.sel = path;
			d.previous_etag = line.substr(t1 + 1, t2 - t1 - 1);
			d.new_etag = line.substr(t2 + 1);
			bool doc_selected = false;
			std::vector<Item> parts;
			for (const auto &sel : sels) {
				if (!xcapdiff::covers(sel, path, xui)) continue;
				if (xcapdiff::is_component(sel)) parts.push_back(component(sel));
				else doc_selected = true;
			}
			if (doc_selected) items.push_back(std::move(d));
			for (auto &p : parts) items.push_back(std::move(p));
		}
	} else {
		std::vector<std::string> seen;
		auto add_doc = [&](const std::string &path, const std::string &etag) {
			for (const auto &p : seen)
				if (p == path) return;
			seen.push_back(path);
			Item d;
			d.sel = path;
			d.new_etag = etag;
			items.push_back(std::move(d));
		};
		for (const auto &sel : sels) {
			if (xcapdiff::is_component(sel)) {
				Item it = component(sel);
				if (it.exists) items.push_back(std::move(it));
			} else if (xcapdiff::is_collection(sel)) {
				std::string auid = sel.substr(0, sel.find('/'));
				std::vector<std::pair<std::string, std::string>> docs;
				if (!host_.xcap_list(auid, xui, docs)) throw std::runtime_error("the XCAP documents cannot be listed");
				std::sort(docs.begin(), docs.end());
				for (const auto &[path, etag] : docs)
					if (xcapdiff::covers(sel, path, xui)) add_doc(path, etag);
			} else {
				std::string body, etag;
				int st = host_.xcap_get(sel, body, etag);
				if (st == 200) add_doc(sel, etag);
				else if (st < 0) throw std::runtime_error("the XCAP document " + sel + " cannot be read");
			}
		}
	}
	return {xcapdiff::document(cfg_.xcap_root, items), kXcapDiff, {}};
}

}  // namespace imps::presence
