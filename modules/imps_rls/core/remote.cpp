// Back-end subscriptions to members of other domains (seed 7.2.3, RFC 4662 section 4.3): the
// resource list server is then a subscriber itself. One SUBSCRIBE dialog per (list owner,
// member), shared by every list subscription of that owner holding the member (reference
// counted with the local watches: rls_attach.lua, rls_detach.lua), sent through this
// domain's HSP (which takes it to the operator edge proxy) with the owner's identity asserted,
// refreshed before it expires, ended with the last reference. A domain that refuses or does
// not answer leaves the member terminated with a reason (rejected, noresource, probation) and
// the dialog is tried again later; the other members are not touched.
//
// The dialog lives in the back-end's state hash (remote 1, callid, ltag, rtag, cseq, rset,
// target, from, to); <prefix>:rdlg:<callid> finds it from a NOTIFY; <prefix>:rdue orders the
// back-ends by when they are refreshed or tried again. SIP workers send (tm never waits for the
// answer); the final responses reach backend_responses() in the module's timer process.
#include "engine.hpp"

#include "rlmi.hpp"

#include "imps/log.hpp"
#include "imps/redis.hpp"
#include "imps/sip_text.hpp"

#include <algorithm>
#include <cstdlib>

namespace imps::rls {
namespace {

enum Field { kRemote, kCallid, kLtag, kRtag, kCseq, kRset, kTarget, kFrom, kTo, kOwner, kFields };
const char *const kNames[kFields] = {"remote", "callid", "ltag", "rtag", "cseq", "rset", "target", "from", "to", "owner"};

std::vector<std::string> read_dialog(Redis &r, const std::string &hk)
{
	std::vector<std::string_view> argv = {"HMGET", hk};
	for (auto n : kNames) argv.push_back(n);
	auto rep = r.command(argv);
	std::vector<std::string> out(kFields);
	for (size_t i = 0; rep && rep->type == REDIS_REPLY_ARRAY && i < rep->elements && i < kFields; ++i)
		out[i] = reply_str(rep->element[i]);
	return out;
}

std::string host_part(const std::string &presentity)
{
	size_t at = presentity.rfind('@');
	return at == std::string::npos ? std::string() : lower(presentity.substr(at + 1));
}

// RFC 6665 section 4.2.2 reasons for a member whose domain answered code (0: not sent)
std::string reason_of(int code)
{
	if (code == 403 || code == 603) return "rejected";
	if (code == 404 || code == 484 || code == 489 || code == 604) return "noresource";
	return "probation";  // unreachable, timed out, overloaded: tried again later
}

// the headers of a back-end SUBSCRIBE (initial or refresh): RFC 4662 4.3, the owner asserted
std::string subscribe_headers(const std::string &owner_uri, int expires, const std::string &contact)
{
	return "Event: presence\r\n"
		   "Accept: application/pidf+xml, application/rlmi+xml, multipart/related\r\n"
		   "Supported: eventlist\r\n"
		   "Expires: " + std::to_string(expires) + "\r\n"
		   "Contact: <" + contact + ">\r\n"
		   "P-Asserted-Identity: <" + owner_uri + ">\r\n";
}

}  // namespace

bool Engine::is_remote(const std::string &presentity) const
{
	if (cfg_.local_domains.empty()) return false;
	std::string h = host_part(presentity);
	return std::find(cfg_.local_domains.begin(), cfg_.local_domains.end(), h) == cfg_.local_domains.end();
}

// A new dialog for the back-end (first reference, or after a failure / a terminated one).
void Engine::remote_start(const std::string &bkey, long long now_ms)
{
	Redis &r = subs_.redis();
	std::string hk = be_key(bkey, "state");
	auto d = read_dialog(r, hk);
	auto who = r.command({"HMGET", hk, "presentity", "owner"});
	if (!who || who->elements != 2 || who->element[0]->type != REDIS_REPLY_STRING) return;  // let go meanwhile
	std::string p = reply_str(who->element[0]), owner = reply_str(who->element[1]);
	if (!d[kCallid].empty()) r.command({"DEL", prefix_ + ":rdlg:" + d[kCallid]});
	BackendRequest q;
	q.bkey = bkey;
	q.callid = random_token(12) + "@" + (cfg_.local_domains.empty() ? "rls" : cfg_.local_domains[0]);
	q.local_tag = random_token(8);
	q.from_uri = "sip:" + owner;
	q.to_uri = "sip:" + p;
	q.target = q.to_uri;
	q.dst_uri = cfg_.outbound_proxy;
	q.cseq = 1;
	r.command({"HSET", hk, "remote", "1", "callid", q.callid, "ltag", q.local_tag, "rtag", "", "cseq", "1", "rset", "",
			"target", q.target, "from", q.from_uri, "to", q.to_uri, "id", q.callid});
	if (d[kRemote].empty()) {
		// pending until the member's domain answers
		r.command({"HSETNX", hk, "state", "pending"});
	}
	r.command({"SET", prefix_ + ":rdlg:" + q.callid, bkey});
	// leased: tried again if no answer is ever handled
	r.command({"ZADD", prefix_ + ":rdue", std::to_string(now_ms + cfg_.remote_retry_ms + 35000), bkey});
	q.headers = subscribe_headers(q.from_uri, cfg_.remote_expires, cfg_.contact);
	if (!host_.send_backend(q)) remote_failed(bkey, "probation", cfg_.remote_retry_ms, now_ms);
}

// The member's domain refused or did not answer: the member terminated with reason, the
// dialog dropped, a new one tried after delay_ms. The lists holding it are told.
void Engine::remote_failed(const std::string &bkey, const std::string &reason, long long delay_ms, long long now_ms)
{
	Redis &r = subs_.redis();
	std::string hk = be_key(bkey, "state");
	auto old = r.command({"HMGET", hk, "member", "state", "reason", "callid"});
	if (!old || old->elements != 4 || old->element[0]->type != REDIS_REPLY_STRING) return;  // let go
	host_.stat(Stat::BackendFailures, 1);
	std::string callid = reply_str(old->element[3]);
	if (!callid.empty()) r.command({"DEL", prefix_ + ":rdlg:" + callid});
	r.command({"HSET", hk, "state", "terminated", "reason", reason, "ctype", "", "body", "", "callid", "", "rtag", "",
			"rset", "", "id", ""});
	r.command({"ZADD", prefix_ + ":rdue", std::to_string(now_ms + delay_ms), bkey});
	if (reply_str(old->element[1]) != "terminated" || reply_str(old->element[2]) != reason)
		member_changed(bkey, reply_str(old->element[0]), now_ms);
}

// The last list let go: the dialog ends (SUBSCRIBE Expires: 0) when it was established.
void Engine::remote_end(const std::string &bkey, const std::vector<std::string> &d)
{
	Redis &r = subs_.redis();
	r.command({"ZREM", prefix_ + ":rdue", bkey});
	if (d.size() < 9) return;
	// d: callid, ltag, rtag, cseq, rset, target, from, to, owner (remote left out)
	const std::string &callid = d[0];
	if (callid.empty()) return;
	r.command({"DEL", prefix_ + ":rdlg:" + callid});
	if (d[2].empty()) return;  // never answered: nothing to end
	BackendRequest q;
	q.bkey = bkey;
	q.callid = callid;
	q.local_tag = d[1];
	q.remote_tag = d[2];
	q.cseq = std::strtoull(d[3].c_str(), nullptr, 10) + 1;
	q.route_set = d[4];
	q.target = d[5];
	q.from_uri = d[6];
	q.to_uri = d[7];
	if (q.route_set.empty()) q.dst_uri = cfg_.outbound_proxy;
	q.headers = "Event: presence\r\nExpires: 0\r\nContact: <" + cfg_.contact + ">\r\n";
	host_.send_backend(q);
}

void Engine::backend_responses(const std::vector<BackendResponse> &rs, long long now_ms)
{
	Redis &r = subs_.redis();
	for (const auto &x : rs) {
		try {
			std::string hk = be_key(x.bkey, "state");
			auto d = read_dialog(r, hk);
			if (d[kRemote].empty() || d[kCallid] != x.callid) continue;  // let go, or an older dialog
			if (x.code >= 200 && x.code < 300) {
				// the 2xx's Record-Route is the route set (RFC 6665 4.1.2.4), also when a
				// NOTIFY came first and made the dialog
				if (d[kRtag].empty() && !x.remote_tag.empty()) r.command({"HSET", hk, "rtag", x.remote_tag});
				if ((d[kRtag].empty() || d[kRtag] == x.remote_tag) && !x.route_set.empty())
					r.command({"HSET", hk, "rset", x.route_set});
				if (d[kRtag].empty() && !x.target.empty()) r.command({"HSET", hk, "target", x.target});
				int granted = x.expires >= 0 ? x.expires : cfg_.remote_expires;
				if (granted == 0) continue;
				// refreshed at three quarters of what the member's domain granted
				long long next = now_ms + std::max(1000LL, granted * 750LL);
				r.command({"ZADD", prefix_ + ":rdue", std::to_string(next), x.bkey});
				continue;
			}
			if (x.code == 481 && !d[kRtag].empty()) {
				// the member's domain lost the dialog: a new one at once
				IMPS_INFO("back-end %s: 481, subscribing again", x.bkey.c_str());
				r.command({"HSET", hk, "callid", "", "rtag", ""});
				r.command({"DEL", prefix_ + ":rdlg:" + x.callid});
				remote_start(x.bkey, now_ms);
				continue;
			}
			std::string reason = reason_of(x.code);
			IMPS_WARN("back-end SUBSCRIBE for %s answered %d: %s, tried again later", x.bkey.c_str(), x.code,
					reason.c_str());
			long long delay = reason == "probation" ? cfg_.remote_retry_ms : 10 * cfg_.remote_retry_ms;
			remote_failed(x.bkey, reason, delay, now_ms);
		} catch (const std::exception &e) {
			host_.stat(Stat::TimerErrors, 1);
			IMPS_ERR("back-end %s: response %d not handled: %s", x.bkey.c_str(), x.code, e.what());
		}
	}
	flush();
}

int Engine::backend_notify(const BackendNotify &n, long long now_ms)
{
	Redis &r = subs_.redis();
	auto b = r.command({"GET", prefix_ + ":rdlg:" + n.callid});
	if (!b || b->type != REDIS_REPLY_STRING) return 481;
	std::string bkey = reply_str(b.get());
	std::string hk = be_key(bkey, "state");
	auto d = read_dialog(r, hk);
	if (d[kLtag] != n.local_tag) return 481;
	if (d[kRtag].empty()) {
		// the NOTIFY came before the SUBSCRIBE's 200 (RFC 6665 4.1.2.4): it makes the dialog
		r.command({"HSET", hk, "rtag", n.remote_tag});
		if (!n.route_set.empty()) r.command({"HSET", hk, "rset", n.route_set});
		if (!n.target.empty()) r.command({"HSET", hk, "target", n.target});
	} else if (d[kRtag] != n.remote_tag) {
		return 481;  // a second dialog forked from our SUBSCRIBE: one is enough
	}
	auto who = r.command({"HGET", hk, "presentity"});
	int rc = member_notify(bkey, who ? reply_str(who.get()) : std::string(), n.state, n.content_type, n.body, now_ms);
	if (rc == 481) {
		r.command({"DEL", prefix_ + ":rdlg:" + n.callid});
		return rc;
	}
	std::string state = lower(trim(n.state.substr(0, n.state.find(';'))));
	if (state == "terminated") {
		// over on the member's side: a new dialog later (at once when deactivated)
		std::string l = lower(n.state), reason;
		size_t at = l.find("reason=");
		if (at != std::string::npos) reason = l.substr(at + 7, l.find(';', at) == std::string::npos ? std::string::npos : l.find(';', at) - at - 7);
		long long delay = reason == "deactivated" || reason == "timeout" ? 0
				: reason == "rejected" || reason == "noresource" || reason == "invariant" ? 10 * cfg_.remote_retry_ms
																						  : cfg_.remote_retry_ms;
		r.command({"DEL", prefix_ + ":rdlg:" + n.callid});
		r.command({"HSET", hk, "callid", "", "rtag", "", "rset", ""});
		r.command({"ZADD", prefix_ + ":rdue", std::to_string(now_ms + delay), bkey});
	}
	return rc;
}

// Refreshes and new attempts now due (the module's timer process), at most 200 per call.
void Engine::remote_due(long long now_ms)
{
	Redis &r = subs_.redis();
	auto due = r.command({"ZRANGEBYSCORE", prefix_ + ":rdue", "-inf", std::to_string(now_ms), "LIMIT", "0", "200"});
	for (size_t i = 0; due && due->type == REDIS_REPLY_ARRAY && i < due->elements; ++i) {
		std::string bkey = reply_str(due->element[i]);
		try {
			std::string hk = be_key(bkey, "state");
			auto d = read_dialog(r, hk);
			if (d[kRemote].empty()) {
				r.command({"ZREM", prefix_ + ":rdue", bkey});  // let go
				continue;
			}
			if (d[kRtag].empty() || d[kCallid].empty()) {
				remote_start(bkey, now_ms);
				continue;
			}
			// leased until the answer: a refresh never answered is tried again
			r.command({"ZADD", prefix_ + ":rdue", std::to_string(now_ms + cfg_.remote_retry_ms + 35000), bkey});
			auto c = r.command({"HINCRBY", hk, "cseq", "1"});
			BackendRequest q;
			q.bkey = bkey;
			q.callid = d[kCallid];
			q.local_tag = d[kLtag];
			q.remote_tag = d[kRtag];
			q.cseq = c ? static_cast<unsigned long long>(reply_int(c.get())) : 2;
			q.route_set = d[kRset];
			q.target = d[kTarget];
			q.from_uri = d[kFrom];
			q.to_uri = d[kTo];
			if (q.route_set.empty()) q.dst_uri = cfg_.outbound_proxy;
			q.headers = subscribe_headers(q.from_uri, cfg_.remote_expires, cfg_.contact);
			if (!host_.send_backend(q)) remote_failed(bkey, "probation", cfg_.remote_retry_ms, now_ms);
		} catch (const std::exception &e) {
			host_.stat(Stat::TimerErrors, 1);
			IMPS_ERR("back-end %s: refresh not sent: %s", bkey.c_str(), e.what());
		}
	}
}

}  // namespace imps::rls
