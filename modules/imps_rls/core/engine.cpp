#include "engine.hpp"

#include "inflate.hpp"
#include "rlmi.hpp"

#include "imps/hash.hpp"
#include "imps/clock.hpp"
#include "imps/log.hpp"
#include "imps/lua.hpp"
#include "imps/redis.hpp"
#include "imps/sip_text.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <set>
#include <stdexcept>

namespace imps::rls {
namespace {

const char *kRlsServices = "rls-services";

Response reply(int code, std::string reason, std::vector<std::string> headers = {})
{
	Response r;
	r.code = code;
	r.reason = std::move(reason);
	r.headers = std::move(headers);
	return r;
}

std::string host_of(const std::string &uri)
{
	std::string p = presentity_of(uri);
	size_t at = p.rfind('@');
	return at == std::string::npos ? std::string("rls") : p.substr(at + 1);
}

// "active;expires=60" -> active; "terminated;reason=rejected" -> terminated, rejected
void parse_state(const std::string &v, std::string &state, std::string &reason)
{
	state = lower(trim(v.substr(0, v.find(';'))));
	reason.clear();
	size_t r = lower(v).find("reason=");
	if (r != std::string::npos) {
		reason = v.substr(r + 7);
		reason = reason.substr(0, reason.find(';'));
	}
}

long long subs_now_ms() { return imps::wall_ms(); }

std::string xui_of_path(const std::string &path)
{
	size_t a = path.find("/users/");
	if (a == std::string::npos) return {};
	size_t x = a + 7, e = path.find('/', x);
	return e == std::string::npos ? std::string() : path.substr(x, e - x);
}

}  // namespace

// The services of every user (rls-services documents), found by URI; read again whenever the
// List and Policy Server's change count moved.
struct Engine::Services {
	unsigned long generation = ~0ul;
	std::map<std::string, Service> by_uri;  // canonical service URI (presentity_of) -> service
};

class Engine::ListPackage final : public subs::Package {
public:
	explicit ListPackage(Engine &e) : e_(e) {}
	std::string name() const override { return "presence"; }
	std::vector<std::string> content_types() const override { return {"multipart/related"}; }
	subs::Notification full_state(const Subscription &s, long long now) override { return e_.list_state(s, "", now); }
	subs::Notification final_state(const Subscription &s, const std::string &reason, long long now) override
	{
		return e_.list_state(s, reason, now);
	}
	void ended(const Subscription &s, const std::string &reason, long long now_ms) override
	{
		e_.list_ended(s, reason, now_ms);
	}
	std::string refreshed(Subscription &s, long long now_ms) override { return e_.list_refreshed(s, now_ms); }

private:
	Engine &e_;
};

Engine::Engine(Config cfg, Redis &redis, std::string key_prefix, Host &host)
	: cfg_(std::move(cfg)),
	  host_(host),
	  prefix_(key_prefix),
	  subs_(redis, subs::Keys(std::move(key_prefix)), cfg_.notify_busy_ms, cfg_.node, cfg_.epoch),
	  delivery_(std::make_unique<subs::HostDelivery<Host>>(host)),
	  package_(std::make_unique<ListPackage>(*this)),
	  services_(std::make_unique<Services>())
{
	notifier_ = std::make_unique<subs::Notifier>(subs::notifier_config_of(cfg_), subs_, *delivery_,
			[this](subs::Counter c, long long d) {
				switch (c) {
				case subs::Counter::Sent: host_.stat(Stat::NotifiesSent, d); break;
				case subs::Counter::Failed: host_.stat(Stat::NotifiesFailed, d); break;
				case subs::Counter::TimerErrors: host_.stat(Stat::TimerErrors, d); break;
				case subs::Counter::Active: break;
				}
			});
	notifier_->add(*package_);
}

Engine::~Engine() = default;

std::string Engine::backend_key(const std::string &owner, const std::string &member) const
{
	return owner + "|" + member;
}

bool Engine::find_service(const std::string &uri, Service &out)
{
	unsigned long gen = host_.xcap_generation();
	if (gen != services_->generation) {
		std::vector<std::pair<std::string, std::string>> docs;
		if (!host_.xcap_list(kRlsServices, docs)) {
			// keep what was read before (if anything): the next request tries again
			if (services_->generation == ~0ul && services_->by_uri.empty())
				throw std::runtime_error("the rls-services documents cannot be listed");
			IMPS_WARN("the rls-services documents cannot be listed: the services read before stay");
		} else {
			std::map<std::string, Service> by;
			std::set<std::string> clash;
			bool complete = true;
			for (const auto &[path, etag] : docs) {
				std::string xui = xui_of_path(path), body;
				if (xui.empty()) continue;
				if (host_.xcap_get(path, body) != 200) {
					complete = false;
					continue;
				}
				for (auto &s : parse_services(body, xui, path)) {
					std::string key = presentity_of(s.uri);
					auto it = by.find(key);
					if (it != by.end() && lower(it->second.owner_xui) != lower(xui)) clash.insert(key);
					by[key] = std::move(s);
				}
			}
			// one URI claimed by two users (spelled apart): nobody's, until one gives it up
			for (const auto &k : clash) {
				IMPS_WARN("service %s is declared by more than one user: not served", k.c_str());
				by.erase(k);
			}
			services_->by_uri.swap(by);
			services_->generation = complete ? gen : ~0ul;
		}
	}
	auto it = services_->by_uri.find(presentity_of(uri));
	if (it == services_->by_uri.end()) return false;
	out = it->second;
	return true;
}

// ---- SUBSCRIBE --------------------------------------------------------------------------------

Response Engine::subscribe(const SubscribeRequest &req)
{
	notifier_->discard();
	subs::Notifier::Request r;
	r.event = req.event;
	r.has_event = req.has_event;
	r.has_accept = req.has_accept;
	r.accept = req.accept;
	r.expires = req.expires;
	r.in_dialog = req.in_dialog;
	r.now = req.now;
	r.now_ms = req.now_ms;
	r.sub.dialog = req.dialog;
	if (req.in_dialog) {
		std::string sid = subs::subscription_id(req.dialog.callid, req.dialog.remote_tag, req.dialog.local_tag);
		r.sub.resource = subs_.resource_of(sid);
		if (r.sub.resource.empty()) {
			Response no;
			no.mine = false;  // not a list subscription: imps_presence's, or unknown
			return no;
		}
		auto nr = notifier_->subscribe(r, *package_, cfg_.max_list_subscriptions);
		Response out = reply(nr.code, nr.reason, nr.headers);
		if (nr.code == 200) {
			out.headers.push_back("Require: eventlist");
			// the members' watches live as long as the longest list: refreshed with it
			Subscription cur;
			Node tree;
			if (!nr.removed && show(nr.sub.sid.empty() ? sid : nr.sub.sid, cur, tree)) {
				attach(cur, tree, cfg_.max_expires, req.now_ms);
				pending_changes_.insert(pending_changes_.end(), deferred_.begin(), deferred_.end());
				deferred_.clear();
			}
		}
		return out;
	}
	if (req.recipient_list) {
		std::string p = presentity_of(req.service);
		if (lower(p.substr(0, p.find('@'))) == lower(cfg_.adhoc_user)) return subscribe_adhoc(req, r);
	}
	Service svc;
	bool found = false;
	try {
		found = find_service(req.service, svc);
	} catch (const std::exception &e) {
		IMPS_ERR("list services not known (%s): %s left to the presence application", e.what(), req.service.c_str());
	}
	if (!found) {
		Response no;
		no.mine = false;
		return no;
	}
	std::string pkg = lower(trim(req.event.substr(0, req.event.find(';'))));
	if (!req.has_event || pkg != "presence")
		return reply(489, "Bad Event", {"Allow-Events: presence"});
	if (!svc.packages.empty() && std::find(svc.packages.begin(), svc.packages.end(), "presence") == svc.packages.end())
		return reply(489, "Bad Event (the list does not offer presence)", {"Allow-Events: presence"});
	if (!req.eventlist) return reply(421, "Extension Required", {"Require: eventlist"});
	// RFC 4662 4.4: the list is its owner's
	if (lower(xui_of_path(svc.path)) != lower("sip:" + req.watcher))
		return reply(403, "Forbidden (only the list's owner may subscribe to it)");
	subs::Notifier::Response nr;
	if (!notifier_->check(r, *package_, nr)) return reply(nr.code, nr.reason, nr.headers);

	Resolved res = resolve(svc, cfg_.xcap_root,
			[this](const std::string &path, std::string &body) { return host_.xcap_get(path, body); }, cfg_.limits);
	for (const auto &e : res.errors) IMPS_WARN("list %s: %s", svc.uri.c_str(), e.c_str());
	if (!res.errors.empty()) host_.stat(Stat::ListErrors, static_cast<long long>(res.errors.size()));
	res.root.uri = svc.uri;
	return start_list(req, r, presentity_of(svc.uri), res.root, "Forbidden (too many subscriptions of this list)");
}

// RFC 5367: a list subscription whose list is the SUBSCRIBE's body (linphone's friend list).
Response Engine::subscribe_adhoc(const SubscribeRequest &req, subs::Notifier::Request &r)
{
	std::string pkg = lower(trim(req.event.substr(0, req.event.find(';'))));
	if (!req.has_event || pkg != "presence") return reply(489, "Bad Event", {"Allow-Events: presence"});
	if (!req.eventlist) return reply(421, "Extension Required", {"Require: eventlist"});
	if (req.body.empty()) return reply(400, "Bad Request (recipient-list-subscribe without a resource list body)");
	if (req.content_type != "application/resource-lists+xml")
		return reply(415, "Unsupported Media Type", {"Accept: application/resource-lists+xml"});
	if (req.content_disposition != "recipient-list")
		return reply(400, "Bad Request (the list body needs Content-Disposition: recipient-list)");
	std::string body;
	if (req.content_encoding.empty() || req.content_encoding == "identity") {
		body = req.body;
	} else if (req.content_encoding == "deflate") {
		if (!inflate(req.body, body, cfg_.max_body_size))
			return reply(400, "Bad Request (the deflate body does not inflate within the size bound)");
	} else {
		return reply(415, "Unsupported Media Type (Content-Encoding)", {"Accept-Encoding: deflate"});
	}
	if (body.size() > cfg_.max_body_size) return reply(413, "Request Entity Too Large");
	subs::Notifier::Response nr;
	if (!notifier_->check(r, *package_, nr)) return reply(nr.code, nr.reason, nr.headers);
	std::string why;
	Resolved res = resolve_body(body, req.service, "sip:" + req.watcher, cfg_.xcap_root,
			[this](const std::string &path, std::string &b) { return host_.xcap_get(path, b); }, cfg_.limits, why);
	if (!why.empty()) return reply(400, "Bad Request (" + why + ")");
	for (const auto &e : res.errors) IMPS_WARN("ad-hoc list of %s: %s", req.watcher.c_str(), e.c_str());
	if (!res.errors.empty()) host_.stat(Stat::ListErrors, static_cast<long long>(res.errors.size()));
	// the subscriber's own: keyed by it, so its devices' lists stand beside each other
	bool compat = cfg_.client_compat && lower(req.user_agent).find("linphone") != std::string::npos;
	return start_list(req, r, (compat ? "adhoc-compat|" : "adhoc|") + req.watcher, res.root,
			"Forbidden (too many list subscriptions of this user)");
}

// A new list subscription of resource over tree: the members' watches first (their states are
// in the store before the first NOTIFY is built), then the subscription.
Response Engine::start_list(const SubscribeRequest &req, subs::Notifier::Request &r, const std::string &resource,
		const Node &tree, const char *too_many)
{
	Subscription &s = r.sub;
	s.sid = subs::subscription_id(s.dialog.callid, s.dialog.remote_tag, s.dialog.local_tag);
	s.resource = resource;
	s.watcher = req.watcher;
	s.watcher_uri = req.dialog.remote_uri;
	s.display_name = req.display_name;
	s.dialog.event_id = event_id(req.event);
	s.status = "active";
	s.data = encode(tree);
	int expires = notifier_->expires_of(r);
	if (expires > 0) attach(s, tree, expires, req.now_ms);
	auto nr = notifier_->subscribe(r, *package_, cfg_.max_list_subscriptions);
	if (nr.code != 200) {
		Subscription probe;
		Node t;
		if (expires > 0 && !show(s.sid, probe, t)) detach(req.watcher, s.sid, members_of(tree), req.now_ms);
		if (nr.code == 403) return reply(403, too_many);
		return reply(nr.code, nr.reason, nr.headers);
	}
	if (nr.created) host_.stat(Stat::ListSubscriptions, 1);
	if (expires == 0) detach(req.watcher, s.sid, members_of(tree), req.now_ms);
	// other lists' changes that came along: after this reply's NOTIFY
	pending_changes_.insert(pending_changes_.end(), deferred_.begin(), deferred_.end());
	deferred_.clear();
	Response out = reply(200, "OK", nr.headers);
	out.headers.push_back("Require: eventlist");
	return out;
}

void Engine::flush()
{
	notifier_->flush();
	if (!pending_changes_.empty()) {
		deferred_ = std::move(pending_changes_);
		pending_changes_.clear();
		run_deferred(subs_now_ms());
	}
}

void Engine::run_deferred(long long now_ms)
{
	for (int round = 0; round < 8 && !deferred_.empty(); ++round) {
		auto d = std::move(deferred_);
		deferred_.clear();
		for (const auto &c : d) member_changed(c.bkey, c.member, now_ms, c.except);
	}
}

// ---- back-end watches ------------------------------------------------------------------------

std::string Engine::be_key(const std::string &bkey, const char *what) const
{
	return subs_.keys().resource("be:" + bkey, what);
}

// A member not watched (a cap): shown terminated, counted.
bool Engine::refuse(const std::string &bkey, const std::string &owner, const std::string &p, const char *why)
{
	Redis &r = subs_.redis();
	r.command({"HSET", be_key(bkey, "state"), "state", "terminated", "reason", "noresource"});
	// not one of the back-ends counted
	r.command({"SREM", prefix_ + ":backends", bkey});
	r.command({"SREM", prefix_ + ":user:" + owner, bkey});
	host_.stat(Stat::BackendsRefused, 1);
	IMPS_WARN("%s: %s not watched", why, p.c_str());
	return true;
}

void Engine::attach(const Subscription &s, const Node &tree, int expires, long long now_ms)
{
	Redis &r = subs_.redis();
	const std::string ref = s.resource + "\t" + s.sid;
	const std::string owner = s.watcher;
	int index = 0;
	for (const auto &m : members_of(tree)) {
		std::string p = presentity_of(m);
		if (p.empty()) continue;  // not a SIP URI: shown terminated (noresource)
		std::string bkey = backend_key(owner, p);
		std::string hk = be_key(bkey, "state");
		std::string rk = be_key(bkey, "refs");
		bool over_list = ++index > cfg_.max_backends_per_list;
		// the reference and the record in one step (rls_attach.lua)
		auto a = r.eval(lua_script("rls_attach"), {hk, rk}, {ref, m, p, owner});
		bool fresh = a && a->type == REDIS_REPLY_ARRAY && a->elements == 2 && reply_int(a->element[0]) == 1;
		bool remote = is_remote(p);
		if (remote && is_remote(owner)) {
			// an ad-hoc list of another network's user: we assert only our own users
			if (fresh) {
				r.command({"HSET", hk, "state", "terminated", "reason", "rejected"});
				host_.stat(Stat::BackendsRefused, 1);
			}
			continue;
		}
		if (fresh) {
			if (over_list) {
				refuse(bkey, owner, p, ("more than " + std::to_string(cfg_.max_backends_per_list) + " members in list " + s.resource).c_str());
				continue;
			}
			auto added = r.command({"SADD", prefix_ + ":backends", bkey});
			if (added && reply_int(added.get()) == 1) {
				auto n = r.command({"SCARD", prefix_ + ":backends"});
				r.command({"SADD", prefix_ + ":user:" + owner, bkey});
				auto un = r.command({"SCARD", prefix_ + ":user:" + owner});
				if (n && reply_int(n.get()) > cfg_.max_backends) {
					refuse(bkey, owner, p, ("more than " + std::to_string(cfg_.max_backends) + " back-end watches").c_str());
					continue;
				}
				if (un && reply_int(un.get()) > cfg_.max_backends_per_user) {
					refuse(bkey, owner, p, ("more than " + std::to_string(cfg_.max_backends_per_user) + " back-end watches of " + owner).c_str());
					continue;
				}
				host_.stat(Stat::Backends, 1);
				if (remote) host_.stat(Stat::BackendsRemote, 1);
			}
		}
		if (remote) {
			// a member of another domain: one SUBSCRIBE dialog for the owner's lists, made
			// when the first list takes it, refreshed by the timer (remote_due)
			if (fresh) remote_start(bkey, now_ms);
			continue;
		}
		if (!fresh) {
			auto st = r.command({"HMGET", hk, "state", "reason", "id"});
			// refused by a cap: stays unwatched while any list holds it
			if (st && st->elements == 3 && reply_str(st->element[0]) == "terminated" &&
					reply_str(st->element[1]) == "noresource" && reply_str(st->element[2]).empty())
				continue;
		}
		std::string id;
		in_watch_ = true;
		in_watch_sid_ = s.sid;
		int rc = -1;
		try {
			// shared by the owner's lists: as long as the longest one can live, so a shorter
			// list never shortens it (detach ends it when the last list lets go)
			rc = host_.watch(p, owner, bkey, std::max(expires, cfg_.max_expires) + 30, id);
		} catch (...) {
			in_watch_ = false;
			throw;
		}
		in_watch_ = false;
		if (rc == 200) {
			r.command({"HSET", hk, "id", id});
		} else {
			// RFC 6665 reasons: blocked by the member (rejected), else try later (probation)
			r.command({"HSET", hk, "state", "terminated", "reason", rc == 403 ? "rejected" : "probation", "ctype", "", "body", ""});
		}
	}
}

void Engine::detach(const std::string &owner, const std::string &sid, const std::vector<std::string> &members,
		long long)
{
	Redis &r = subs_.redis();
	for (const auto &m : members) {
		std::string p = presentity_of(m);
		if (p.empty()) continue;
		std::string bkey = backend_key(owner, p);
		std::string hk = be_key(bkey, "state");
		std::string rk = be_key(bkey, "refs");
		// the reference, and with the last one the record, in one step (rls_detach.lua)
		auto d = r.eval(lua_script("rls_detach"), {hk, rk}, {sid});
		if (!d || d->type != REDIS_REPLY_ARRAY || d->elements < 2 || reply_int(d->element[0]) != 1) continue;
		std::string wid = reply_str(d->element[1]);
		auto removed = r.command({"SREM", prefix_ + ":backends", bkey});
		r.command({"SREM", prefix_ + ":user:" + owner, bkey});
		bool remote = d->elements == 12 && reply_str(d->element[2]) == "1";
		if (removed && reply_int(removed.get()) == 1) {
			host_.stat(Stat::Backends, -1);
			if (remote) host_.stat(Stat::BackendsRemote, -1);
		}
		if (remote) {
			std::vector<std::string> dialog;
			for (size_t i = 3; i < 12; ++i) dialog.push_back(reply_str(d->element[i]));
			remote_end(bkey, dialog);
		} else if (!wid.empty()) {
			host_.unwatch(p, wid);
		}
	}
}

int Engine::member_notify(const std::string &bkey, const std::string &presentity, const std::string &state_hdr,
		const std::string &content_type, const std::string &body, long long now_ms)
{
	Redis &r = subs_.redis();
	std::string hk = subs_.keys().resource("be:" + bkey, "state");
	std::string rk = subs_.keys().resource("be:" + bkey, "refs");
	std::string state, reason;
	parse_state(state_hdr, state, reason);
	// stored only while a list holds the watch (rls_member.lua)
	auto m = r.eval(lua_script("rls_member"), {hk, rk}, {state, reason, content_type, body});
	if (!m || m->type != REDIS_REPLY_ARRAY || m->elements != 2) return 500;
	long long changed = reply_int(m->element[0]);
	if (changed < 0) return 481;  // no list holds it any more: the watch ends
	std::string member = reply_str(m->element[1]);
	if (member.empty()) member = "sip:" + presentity;
	if (changed == 0) return 200;  // a refresh: nothing new
	if (in_watch_) {
		// a watch is being made: the other lists holding this back-end (and any other
		// back-end's change that came along) are told once it is done
		deferred_.push_back({bkey, member, in_watch_sid_});
		return 200;
	}
	member_changed(bkey, member, now_ms);
	if (state == "terminated") {
		// the watch is over: a later list refresh watches the member again
		r.command({"HDEL", hk, "id"});
	}
	return 200;
}

// The list subscriptions holding the back-end learn of its change: a partial NOTIFY naming
// it, at most one per batch_ms per subscription (changes meanwhile wait and go together).
void Engine::member_changed(const std::string &bkey, const std::string &member_uri, long long now_ms,
		const std::string &except_sid)
{
	std::string rk = subs_.keys().resource("be:" + bkey, "refs");
	auto refs = subs_.redis().command({"SMEMBERS", rk});
	std::map<std::string, std::vector<std::string>> by_res;
	for (size_t i = 0; refs && i < refs->elements; ++i) {
		std::string v = reply_str(refs->element[i]);
		size_t t = v.find('\t');
		if (t != std::string::npos && v.substr(t + 1) != except_sid) by_res[v.substr(0, t)].push_back(v.substr(t + 1));
	}
	long long now = now_ms / 1000;
	for (const auto &[res, sids] : by_res) {
		try {
			subs::Batch b = subs_.turn(res, sids, "", cfg_.batch_ms, now_ms, member_uri);
			for (auto &w : b.send) {
				if (!w.pending_overflow) w.pending_deltas += (w.pending_deltas.empty() ? "" : "\n") + member_uri;
				try {
					notifier_->queue(w, list_state(w, "", now), subs::subscription_state(w, now));
				} catch (const std::exception &e) {
					// numbered and leased: sent without a body rather than left waiting
					host_.stat(Stat::TimerErrors, 1);
					IMPS_ERR("list %s: NOTIFY body not built (%s): state only", res.c_str(), e.what());
					notifier_->queue(w, {}, subs::subscription_state(w, now));
				}
			}
			for (const auto &x : b.removed) notifier_->queue_final(x, now, now_ms);
		} catch (const std::exception &e) {
			host_.stat(Stat::TimerErrors, 1);
			IMPS_ERR("list %s: change of %s not notified: %s", res.c_str(), member_uri.c_str(), e.what());
		}
	}
	flush();
}

// ---- NOTIFY bodies ---------------------------------------------------------------------------

namespace {

struct MemberState {
	std::string state = "pending", reason, ctype, body;
	bool known = false;
};

struct Build {
	const std::map<std::string, MemberState> &states;  // by member URI
	const std::set<std::string> *changed;              // partial: the member URIs; null: full
	std::string host;
	unsigned long long version;
	size_t budget;                      // member state bytes one NOTIFY carries at most
	size_t used = 0;
	bool any = false;                   // one member's state is in (progress, whatever its size)
	std::vector<std::string> deferred;  // active members left for the next NOTIFY
};

// The RLMI lines of a resource, about
size_t line_cost(const Node &n) { return n.uri.size() + n.name.size() + 120; }

size_t lines_cost(const Node &list)
{
	size_t c = 0;
	for (const auto &n : list.children) c += line_cost(n) + (n.is_list ? lines_cost(n) + 400 : 0);
	return c;
}

// The parts of one list level: its RLMI root first, then a part per active member and per
// nested list shown. Empty when a partial NOTIFY has nothing of this level to show.
std::vector<Part> build_level(const Node &list, Build &b, std::string &root_cid)
{
	std::vector<Resource> resources;
	std::vector<Part> parts(1);
	for (const auto &c : list.children) {
		Resource r;
		r.uri = c.uri;
		r.name = c.name;
		if (c.is_list) {
			std::string sub_cid;
			std::vector<Part> sub = build_level(c, b, sub_cid);
			if (sub.empty()) continue;
			std::string boundary = new_boundary(sub);
			Part p;
			p.content_id = sub_cid;
			p.content_type = multipart_type(sub[0].content_id, boundary);
			p.body = multipart_body(boundary, sub);
			p.content_id = random_token(6) + "@" + b.host;
			r.instances.push_back({sha1_hex(c.uri).substr(0, 12), "active", "", p.content_id});
			parts.push_back(std::move(p));
			resources.push_back(std::move(r));
			continue;
		}
		if (b.changed && !b.changed->count(c.uri)) continue;
		auto it = b.states.find(c.uri);
		MemberState ms = it == b.states.end() ? MemberState{} : it->second;
		if (presentity_of(c.uri).empty()) {
			ms.state = "terminated";
			ms.reason = "noresource";
		}
		Instance in;
		in.id = sha1_hex(c.uri).substr(0, 12);
		in.state = ms.state == "active" || ms.state == "terminated" ? ms.state : "pending";
		in.reason = ms.reason;
		// what it adds to the body: its part when active, and in a partial NOTIFY its RLMI
		// lines (a full one's are counted before: they are all in, whatever the bound)
		bool has_state = in.state == "active" && !ms.body.empty();
		size_t cost = (b.changed ? line_cost(c) : 0) + (has_state ? ms.body.size() + 130 + c.uri.size() : 0);
		if (has_state && b.any && b.used + cost > b.budget) {
			// over the size bound: its state goes in the next NOTIFY; a full-state NOTIFY
			// still lists it (pending), a partial one leaves it out (unchanged for the watcher)
			b.deferred.push_back(c.uri);
			if (b.changed) continue;
			in.state = "pending";
		} else if (has_state) {
			b.used += cost;
			b.any = true;
			Part p;
			p.content_id = random_token(6) + "@" + b.host;
			// a member's own list (another domain's RLS) keeps its multipart parameters
			p.content_type = ms.ctype.empty() ? "application/pidf+xml;charset=\"UTF-8\""
					: ms.ctype.find(';') != std::string::npos ? ms.ctype
															   : ms.ctype + ";charset=\"UTF-8\"";
			p.body = ms.body;
			in.cid = p.content_id;
			parts.push_back(std::move(p));
		} else {
			b.used += cost;
			if (in.state == "active") in.state = "pending";  // no state to show yet
		}
		r.instances.push_back(in);
		resources.push_back(std::move(r));
	}
	if (b.changed && resources.empty()) return {};
	root_cid = random_token(6) + "@" + b.host;
	parts[0].content_id = root_cid;
	parts[0].content_type = "application/rlmi+xml;charset=\"UTF-8\"";
	parts[0].body = rlmi_document(list.uri, b.version, b.changed == nullptr, list.name, resources);
	return parts;
}

}  // namespace

subs::Notification Engine::list_state(const Subscription &s, const std::string &reason, long long)
{
	if (!reason.empty()) return {};
	Node tree;
	if (!decode(s.data, tree)) throw std::runtime_error("list subscription " + s.sid + " has no list");
	bool partial = !s.pending_deltas.empty() && !s.pending_overflow;
	std::set<std::string> changed;
	if (partial) {
		auto all = members_of(tree);
		size_t from = 0;
		while (from < s.pending_deltas.size()) {
			size_t nl = s.pending_deltas.find('\n', from);
			if (nl == std::string::npos) nl = s.pending_deltas.size();
			std::string d = s.pending_deltas.substr(from, nl - from);
			if (!d.empty() && d[0] == '#') {
				size_t i = std::strtoul(d.c_str() + 1, nullptr, 10);
				if (i < all.size()) changed.insert(all[i]);
			} else {
				changed.insert(d);
			}
			from = nl + 1;
		}
	}
	// the members' states, in one round trip
	std::vector<std::string> uris;
	for (const auto &m : members_of(tree))
		if (!partial || changed.count(m)) uris.push_back(m);
	std::vector<std::vector<std::string>> cmds;
	std::vector<std::string> keys;
	for (const auto &m : uris) {
		std::string p = presentity_of(m);
		keys.push_back(p.empty() ? std::string() : subs_.keys().resource("be:" + backend_key(s.watcher, p), "state"));
	}
	std::vector<std::vector<std::string_view>> views;
	for (const auto &k : keys)
		if (!k.empty()) views.push_back({"HMGET", k, "state", "reason", "ctype", "body"});
	std::map<std::string, MemberState> states;
	if (!views.empty()) {
		auto replies = subs_.redis().pipeline(views);
		size_t j = 0;
		for (size_t i = 0; i < uris.size(); ++i) {
			if (keys[i].empty()) continue;
			const auto &rep = replies[j++];
			MemberState ms;
			if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 4 && rep->element[0]->type == REDIS_REPLY_STRING) {
				ms.known = true;
				ms.state = reply_str(rep->element[0]);
				ms.reason = reply_str(rep->element[1]);
				ms.ctype = reply_str(rep->element[2]);
				ms.body = reply_str(rep->element[3]);
			}
			states[uris[i]] = ms;
		}
	}
	Build b{states, partial ? &changed : nullptr, host_of(s.dialog.local_uri.empty() ? tree.uri : s.dialog.local_uri),
			s.version, cfg_.max_notify_size, partial ? 0 : lines_cost(tree), false, {}};
	std::string root_cid;
	std::vector<Part> parts = build_level(tree, b, root_cid);
	if (parts.empty()) {
		// a partial NOTIFY whose members left the list meanwhile: full state instead
		b.changed = nullptr;
		parts = build_level(tree, b, root_cid);
	}
	if (!b.deferred.empty()) {
		// the members left out follow in the next NOTIFY, once this one is answered; named by
		// their place in the list ("#12"), so that 200 of them stay well within what a
		// record keeps of waiting changes
		auto all = members_of(tree);
		std::string delta;
		for (const auto &m : b.deferred) {
			auto it = std::find(all.begin(), all.end(), m);
			delta += (delta.empty() ? "#" : "\n#") + std::to_string(it - all.begin());
		}
		subs_.turn(s.resource, {s.sid}, "", 0, subs_now_ms(), delta);
	}
	std::string boundary = new_boundary(parts);
	subs::Notification n;
	// liblinphone: its list handler wants "Event: Presence" and Content-IDs as the RLMI cids
	bool compat = s.resource.rfind("adhoc-compat|", 0) == 0;
	n.content_type = multipart_type(root_cid, boundary);
	n.body = multipart_body(boundary, parts, !compat);
	n.headers = {"Require: eventlist"};
	if (compat) n.headers.push_back("Event: Presence");
	host_.stat(Stat::NotifyBytes, static_cast<long long>(n.body.size()));
	return n;
}

void Engine::list_ended(const Subscription &s, const std::string &, long long now_ms)
{
	Node tree;
	if (decode(s.data, tree)) detach(s.watcher, s.sid, members_of(tree), now_ms);
	host_.stat(Stat::ListSubscriptions, -1);
}

// A refresh: nothing to decide (the members' watches are refreshed by subscribe()).
std::string Engine::list_refreshed(Subscription &, long long) { return {}; }

// ---- list changes ----------------------------------------------------------------------------

int Engine::refresh(const std::string &service, long long now_ms)
{
	services_->generation = ~0ul;
	notifier_->discard();
	int n = 0;
	std::vector<std::string> uris;
	if (!service.empty()) uris.push_back(service);
	else {
		Service probe;
		find_service("", probe);
		for (const auto &[k, v] : services_->by_uri) uris.push_back(v.uri);
	}
	for (const auto &uri : uris) {
		Service svc;
		if (!find_service(uri, svc)) {
			// the service is gone (its document or entry deleted): its subscriptions end
			std::string res = presentity_of(uri);
			for (const auto &s : subs_.of(res, "presence")) {
				subs::Batch b;
				if (subs_.take(res, s.sid, "noresource", true, now_ms, b)) {
					notifier_->handle(b, now_ms / 1000, now_ms);
					++n;
				}
			}
			continue;
		}
		std::string res = presentity_of(svc.uri);
		for (auto s : subs_.of(res, "presence")) {
			Node old_tree;
			decode(s.data, old_tree);
			Resolved r = resolve(svc, cfg_.xcap_root,
					[this](const std::string &path, std::string &body) { return host_.xcap_get(path, body); }, cfg_.limits);
			r.root.uri = svc.uri;
			std::string data = encode(r.root);
			if (data == s.data) continue;
			auto before = members_of(old_tree), after = members_of(r.root);
			std::vector<std::string> gone, added;
			for (const auto &m : before)
				if (std::find(after.begin(), after.end(), m) == after.end()) gone.push_back(m);
			if (!subs_.set_data(res, s.sid, data)) continue;
			s.data = data;
			int expires = static_cast<int>(std::max(0LL, s.expires_at - now_ms / 1000));
			if (expires > 0) attach(s, r.root, expires, now_ms);
			detach(s.watcher, s.sid, gone, now_ms);
			run_deferred(now_ms);
			// the list changed as a whole: full state
			subs::Batch b = subs_.turn(res, {s.sid}, "", 0, now_ms, "*");
			notifier_->handle(b, now_ms / 1000, now_ms);
			++n;
		}
	}
	flush();
	return n;
}

void Engine::document_changed(const std::string &path, long long now_ms)
{
	if (path.rfind("rls-services/", 0) != 0 && path.rfind("resource-lists/", 0) != 0) return;
	std::string xui = xui_of_path(path);
	if (xui.empty()) return;
	// the services of the owner of the changed document, before and after the change (a
	// resource-lists document is referenced by its owner's services; a deleted service's
	// subscriptions end)
	std::set<std::string> uris;
	for (const auto &[k, v] : services_->by_uri)
		if (lower(v.owner_xui) == lower(xui)) uris.insert(v.uri);
	services_->generation = ~0ul;
	Service probe;
	find_service("", probe);
	for (const auto &[k, v] : services_->by_uri)
		if (lower(v.owner_xui) == lower(xui)) uris.insert(v.uri);
	for (const auto &u : uris) refresh(u, now_ms);
}

// ---- timer, RPC ------------------------------------------------------------------------------

void Engine::tick(long long now, long long now_ms, bool expiry)
{
	if (expiry) {
		notifier_->expire(now, now_ms);
		flush();
		if (!cfg_.local_domains.empty()) remote_due(now_ms);
	}
	notifier_->send_due(now_ms);
	flush();
}

void Engine::complete_many(const std::vector<subs::Store::Response> &responses, long long now_ms)
{
	notifier_->complete_many(responses, now_ms);
	flush();
}

std::vector<Subscription> Engine::list_subscriptions()
{
	std::vector<Subscription> out;
	for (int b = 0; b < subs_.keys().buckets(); ++b) {
		unsigned long long cursor = 0;
		do {
			for (auto &s : subs_.scan(cursor, b, 200)) out.push_back(std::move(s));
		} while (cursor != 0 && out.size() < 10000);
	}
	return out;
}

bool Engine::show(const std::string &sid, Subscription &out, Node &tree)
{
	std::string res = subs_.resource_of(sid);
	if (res.empty()) return false;
	for (auto &s : subs_.of(res, "presence"))
		if (s.sid == sid) {
			out = s;
			decode(s.data, tree);
			return true;
		}
	return false;
}

std::vector<Backend> Engine::backends()
{
	std::vector<Backend> out;
	Redis &r = subs_.redis();
	auto keys = r.command({"SMEMBERS", prefix_ + ":backends"});
	for (size_t i = 0; keys && i < keys->elements && i < 10000; ++i) {
		Backend b;
		b.key = reply_str(keys->element[i]);
		auto h = r.command({"HMGET", be_key(b.key, "state"), "member", "owner", "id", "state", "reason", "remote"});
		if (h && h->elements == 6) {
			b.member = reply_str(h->element[0]);
			b.owner = reply_str(h->element[1]);
			b.id = reply_str(h->element[2]);
			b.state = reply_str(h->element[3]);
			b.reason = reply_str(h->element[4]);
			b.remote = reply_str(h->element[5]) == "1";
		}
		if (b.remote) {
			auto due = r.command({"ZSCORE", prefix_ + ":rdue", b.key});
			if (due && due->type == REDIS_REPLY_STRING) b.next_ms = std::atoll(reply_str(due.get()).c_str());
		}
		auto n = r.command({"SCARD", subs_.keys().resource("be:" + b.key, "refs")});
		b.refs = n ? reply_int(n.get()) : 0;
		out.push_back(std::move(b));
	}
	std::sort(out.begin(), out.end(), [](const Backend &a, const Backend &b) { return a.key < b.key; });
	return out;
}

}  // namespace imps::rls
