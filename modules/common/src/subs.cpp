// The shared subscription layer: store (Redis, scripts in modules/common/lua) and notifier.
#include "imps/subs.hpp"

#include "imps/hash.hpp"
#include "imps/log.hpp"
#include "imps/lua.hpp"
#include "imps/redis.hpp"
#include "imps/sip_text.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>

namespace imps::subs {

std::string subscription_id(const std::string &callid, const std::string &remote_tag,
		const std::string &local_tag)
{
	return sha256_hex(callid + '\n' + remote_tag + '\n' + local_tag).substr(0, 24);
}

Dialog dialog_of(const imps_dialog_t &d)
{
	Dialog o;
	o.callid = to_string(d.callid);
	o.remote_tag = to_string(d.remote_tag);
	o.local_tag = to_string(d.local_tag);
	o.remote_uri = to_string(d.remote_uri);
	o.local_uri = to_string(d.local_uri);
	o.remote_target = to_string(d.remote_target);
	o.route_set = to_string(d.route_set);
	o.socket = to_string(d.socket);
	o.local_contact = to_string(d.local_contact);
	o.remote_cseq = d.remote_cseq;
	return o;
}

SubscribeCommon common_of(const imps_subscribe_common_t &c)
{
	SubscribeCommon o;
	o.has_event = c.has_event != 0;
	o.event = to_string(c.event);
	o.has_accept = c.has_accept != 0;
	if (o.has_accept) {
		std::string all = to_string(c.accept);
		for (size_t from = 0; from <= all.size();) {
			size_t comma = all.find(',', from);
			if (comma == std::string::npos) comma = all.size();
			o.accept.push_back(all.substr(from, comma - from));
			from = comma + 1;
		}
	}
	o.expires = c.expires;
	o.in_dialog = c.dialog.in_dialog != 0;
	o.dialog = dialog_of(c.dialog);
	return o;
}

std::vector<Store::Response> responses_of(const imps_response_t *r, size_t n)
{
	std::vector<Store::Response> out;
	out.reserve(n);
	for (size_t i = 0; i < n; ++i)
		out.push_back({to_string(r[i].resource), to_string(r[i].sid), r[i].cseq, r[i].code, r[i].retry_after != 0});
	return out;
}

std::string subscription_state(const Subscription &s, long long now)
{
	long long left = std::max(0LL, s.expires_at - now);
	return (s.status == "pending" ? "pending;expires=" : "active;expires=") + std::to_string(left);
}

std::string notify_headers(const Outgoing &n)
{
	const Subscription &s = n.sub;
	// the package's own spelling of the Event header, when it gives one (a client's quirk)
	std::string event = s.package;
	for (const auto &x : n.content.headers)
		if (x.rfind("Event: ", 0) == 0) event = x.substr(7);
	std::string h = "Event: " + event;
	if (!s.dialog.event_id.empty()) h += ";id=" + s.dialog.event_id;
	h += "\r\nSubscription-State: " + n.state + "\r\n";
	if (!s.dialog.local_contact.empty()) h += "Contact: <" + s.dialog.local_contact + ">\r\n";
	if (!n.content.content_type.empty()) h += "Content-Type: " + n.content.content_type + "\r\n";
	for (const auto &x : n.content.headers)
		if (x.rfind("Event: ", 0) != 0) h += x + "\r\n";
	return h;
}

imps_request_t notify_request(const Outgoing &n, std::string &headers)
{
	static const char kNotify[] = "NOTIFY";
	headers = notify_headers(n);
	const Subscription &s = n.sub;
	const Dialog &d = s.dialog;
	imps_request_t r{};
	r.method = {kNotify, sizeof(kNotify) - 1};
	r.dialog.callid = to_imps_str(d.callid);
	r.dialog.remote_tag = to_imps_str(d.remote_tag);
	r.dialog.local_tag = to_imps_str(d.local_tag);
	r.dialog.remote_uri = to_imps_str(d.remote_uri);
	r.dialog.local_uri = to_imps_str(d.local_uri);
	r.dialog.remote_target = to_imps_str(d.remote_target);
	r.dialog.route_set = to_imps_str(d.route_set);
	r.dialog.socket = to_imps_str(d.socket);
	r.dialog.local_contact = to_imps_str(d.local_contact);
	r.dialog.remote_cseq = d.remote_cseq;
	r.dialog.in_dialog = 1;
	r.cseq = s.cseq;
	r.headers = to_imps_str(headers);
	r.body = to_imps_str(n.content.body);
	r.resource = to_imps_str(s.resource);
	r.sid = to_imps_str(s.sid);
	return r;
}

// ---- keys ---------------------------------------------------------------------------------

std::string Keys::resource(const std::string &res, const char *kind) const
{
	// the hash tag is the resource: every key of it lands in one cluster slot. A resource
	// with braces in it would cut the tag short: they are replaced (never in user@host).
	std::string tag = res;
	std::replace(tag.begin(), tag.end(), '{', '(');
	std::replace(tag.begin(), tag.end(), '}', ')');
	return prefix_ + ":{" + tag + "}:" + kind;
}

int Keys::bucket_of(const std::string &s) const
{
	const std::string h = sha1_hex(s);
	return static_cast<int>(std::strtoul(h.substr(0, 6).c_str(), nullptr, 16) % buckets_);
}

std::string Keys::bucket(const char *kind, int n) const
{
	return prefix_ + ":" + kind + ":{" + prefix_ + ":" + kind + ":" + std::to_string(n) + "}";
}

// ---- store --------------------------------------------------------------------------------

namespace {

Subscription parse_flat(const redisReply *r)
{
	Subscription s;
	if (!r || r->type != REDIS_REPLY_ARRAY) return s;
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		std::string k = reply_str(r->element[i]);
		std::string v = reply_str(r->element[i + 1]);
		auto num = [&v] { return std::strtoll(v.c_str(), nullptr, 10); };
		auto &d = s.dialog;
		if (k == "sid") s.sid = v;
		else if (k == "pkg") s.package = v;
		else if (k == "res") s.resource = v;
		else if (k == "watcher") s.watcher = v;
		else if (k == "wuri") s.watcher_uri = v;
		else if (k == "wname") s.display_name = v;
		else if (k == "status") s.status = v;
		else if (k == "data") s.data = v;
		else if (k == "callid") d.callid = v;
		else if (k == "rtag") d.remote_tag = v;
		else if (k == "ltag") d.local_tag = v;
		else if (k == "ruri") d.remote_uri = v;
		else if (k == "luri") d.local_uri = v;
		else if (k == "target") d.remote_target = v;
		else if (k == "routes") d.route_set = v;
		else if (k == "socket") d.socket = v;
		else if (k == "lcontact") d.local_contact = v;
		else if (k == "eid") d.event_id = v;
		else if (k == "rcseq") d.remote_cseq = num();
		else if (k == "exp") s.expires_at = num();
		else if (k == "created") s.created_at = num();
		else if (k == "last") s.last_notify_ms = num();
		else if (k == "version") s.version = static_cast<unsigned long long>(num());
		else if (k == "cseq") s.cseq = static_cast<unsigned long long>(num());
		else if (k == "ending") s.ending = v;
		else if (k == "final") s.owes_final = v == "1";
		else if (k == "pend") s.pending_deltas = v;
		else if (k == "pfull") s.pending_overflow = v == "1";
	}
	return s;
}

std::vector<Subscription> parse_list(const redisReply *r)
{
	std::vector<Subscription> out;
	if (r && r->type == REDIS_REPLY_ARRAY)
		for (size_t i = 0; i < r->elements; ++i) out.push_back(parse_flat(r->element[i]));
	return out;
}

void append_fields(const Subscription &s, std::vector<std::string> &own)
{
	const auto &d = s.dialog;
	const std::pair<const char *, std::string> f[] = {{"pkg", s.package}, {"res", s.resource},
			{"watcher", s.watcher}, {"wuri", s.watcher_uri}, {"wname", s.display_name},
			{"status", s.status}, {"callid", d.callid}, {"rtag", d.remote_tag},
			{"ltag", d.local_tag}, {"ruri", d.remote_uri}, {"luri", d.local_uri},
			{"target", d.remote_target}, {"routes", d.route_set}, {"socket", d.socket},
			{"lcontact", d.local_contact}, {"eid", d.event_id},
			{"rcseq", std::to_string(d.remote_cseq)}, {"exp", std::to_string(s.expires_at)},
			{"created", std::to_string(s.created_at)}, {"data", s.data}};
	for (const auto &p : f) {
		own.emplace_back(p.first);
		own.push_back(p.second);
	}
}

std::vector<std::string_view> views(const std::vector<std::string> &v)
{
	return std::vector<std::string_view>(v.begin(), v.end());
}

}  // namespace

Batch Store::parse_batch(const void *reply) const
{
	const auto *r = static_cast<const redisReply *>(reply);
	Batch b;
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3)
		throw RedisError("Redis: unexpected reply of a subscription script");
	b.due_ms = reply_int(r->element[0]);
	b.send = parse_list(r->element[1]);
	b.removed = parse_list(r->element[2]);
	return b;
}

void Store::index_expiry(const std::string &res, long long expires_at)
{
	r_.command({"ZADD", k_.bucket("sexp", k_.bucket_of(res)), "LT", std::to_string(expires_at), res});
}

void Store::index_due(const std::string &res, long long due_ms)
{
	if (due_ms < 0) return;
	r_.command({"ZADD", k_.bucket("due", k_.bucket_of(res)), "LT", std::to_string(due_ms), res});
}

Outcome Store::create(Subscription &s, int max_per_resource, long long now_ms, bool &send_now,
		bool *created)
{
	std::vector<std::string> a = {std::to_string(now_ms), busy_arg(), s.sid,
			std::to_string(max_per_resource)};
	append_fields(s, a);
	const std::string res = s.resource, sid = s.sid;
	// one round trip: the script, the id index and the expiry bucket (both known before;
	// an entry left by a refused create points to no record and is dropped when looked up)
	const std::string &script = lua_script("subs_create");
	std::vector<std::string> keys = k_.script_keys(res);
	std::string sha, nkeys, exp = std::to_string(s.expires_at), sid_bucket = k_.bucket("sid", k_.bucket_of(sid)),
			exp_bucket = k_.bucket("sexp", k_.bucket_of(res));
	std::vector<std::vector<std::string_view>> cmds = {
			Redis::evalsha_argv(script, sha, nkeys, views(keys), views(a)),
			{"HSET", sid_bucket, sid, res}, {"ZADD", exp_bucket, "LT", exp, res}};
	std::vector<Reply> reps = r_.pipeline(cmds, {&script});
	const redisReply *rep = reps[0].get();
	if (rep->type == REDIS_REPLY_ERROR) throw RedisError("Redis error: " + std::string(rep->str, rep->len));
	Batch b = parse_batch(rep);
	long long code = rep->elements > 3 ? reply_int(rep->element[3]) : -2;
	if (code == -1) {
		r_.command({"HDEL", sid_bucket, sid});
		return Outcome::TooMany;
	}
	send_now = !b.send.empty();
	if (send_now) s = b.send.front();
	else if (rep->elements > 4) s = parse_flat(rep->element[4]);  // its NOTIFY waits
	if (created) *created = code == 1;
	index_due(res, b.due_ms);
	return Outcome::Ok;
}

Outcome Store::refresh(Subscription &s, bool remove, long long now_ms, bool &send_now)
{
	const std::string res = s.resource;
	std::vector<std::string> a = {std::to_string(now_ms), busy_arg(), s.sid,
			std::to_string(s.dialog.remote_cseq), remove ? "0" : std::to_string(s.expires_at),
			s.dialog.remote_target};
	Reply rep = r_.eval(lua_script("subs_refresh"), views(k_.script_keys(res)), views(a));
	Batch b = parse_batch(rep.get());
	long long code = rep->elements > 3 ? reply_int(rep->element[3]) : 0;
	if (code == 0) return Outcome::NoSuchDialog;
	if (code < 0) return Outcome::CseqOutOfOrder;
	index_due(res, b.due_ms);
	send_now = false;
	if (!b.send.empty()) {
		s = b.send.front();
		send_now = true;
	} else if (!b.removed.empty()) {
		s = b.removed.front();
		send_now = true;  // the final NOTIFY (numbers handed out)
		r_.command({"HDEL", k_.bucket("sid", k_.bucket_of(s.sid)), s.sid});
	} else if (rep->elements > 4) {
		s = parse_flat(rep->element[4]);  // its NOTIFY waits for the outstanding one
	}
	if (!remove) index_expiry(res, s.expires_at);
	return Outcome::Ok;
}

Batch Store::turn(const std::string &res, const std::vector<std::string> &sids,
		const std::string &status, long long interval_ms, long long now_ms, const std::string &delta)
{
	if (sids.empty()) return {};
	std::vector<std::string> a = {std::to_string(now_ms), busy_arg(), status,
			std::to_string(interval_ms), delta};
	a.insert(a.end(), sids.begin(), sids.end());
	Reply rep = r_.eval(lua_script("subs_turn"), views(k_.script_keys(res)), views(a));
	Batch b = parse_batch(rep.get());
	index_due(res, b.due_ms);
	return b;
}

bool Store::set_status(const std::string &res, const std::string &sid, const std::string &status)
{
	Reply rep = r_.eval(lua_script("subs_set"), views(k_.script_keys(res)),
			{"0", busy_arg(), sid, status});
	return rep->type == REDIS_REPLY_ARRAY && rep->elements > 3 && reply_int(rep->element[3]) == 1;
}

bool Store::set_data(const std::string &res, const std::string &sid, const std::string &data)
{
	Reply rep = r_.eval(lua_script("subs_set"), views(k_.script_keys(res)),
			{"0", busy_arg(), sid, data, "data"});
	return rep->type == REDIS_REPLY_ARRAY && rep->elements > 3 && reply_int(rep->element[3]) == 1;
}

bool Store::take(const std::string &res, const std::string &sid, const std::string &reason,
		bool final, long long now_ms, Batch &out)
{
	std::vector<std::string> a = {std::to_string(now_ms), busy_arg(), sid, reason,
			final ? "1" : "0"};
	Reply rep = r_.eval(lua_script("subs_take"), views(k_.script_keys(res)), views(a));
	out = parse_batch(rep.get());
	index_due(res, out.due_ms);
	bool found = rep->elements > 3 && reply_int(rep->element[3]) == 1;
	if (found && !out.removed.empty()) r_.command({"HDEL", k_.bucket("sid", k_.bucket_of(sid)), sid});
	return found;
}

Batch Store::complete(const std::string &res, const std::string &sid, unsigned long long cseq,
		int code, bool retry_after, bool remove_on_timeout, long long now_ms)
{
	std::vector<std::string> a = {std::to_string(now_ms), busy_arg(), sid,
			std::to_string(cseq), std::to_string(code), retry_after ? "1" : "0",
			remove_on_timeout ? "1" : "0"};
	Reply rep = r_.eval(lua_script("subs_complete"), views(k_.script_keys(res)), views(a));
	Batch b = parse_batch(rep.get());
	index_due(res, b.due_ms);
	if (!b.removed.empty()) r_.command({"HDEL", k_.bucket("sid", k_.bucket_of(sid)), sid});
	return b;
}

std::vector<Batch> Store::complete_many(const std::vector<Response> &responses, bool remove_on_timeout,
		long long now_ms)
{
	const size_t n = responses.size();
	std::vector<Batch> out(n);
	// A 2xx ends the NOTIFY's lease: HGET+HDEL in one MULTI, every response in one pipeline.
	// Only a dialog that changed while its NOTIFY was outstanding (dirty lease) and a
	// failure need the script (the next NOTIFY, the RFC 6665 failure policy).
	std::vector<size_t> fast, full;
	std::vector<std::string> lease(n), field(n);
	std::vector<std::vector<std::string_view>> cmds;
	for (size_t i = 0; i < n; ++i) {
		const Response &r = responses[i];
		if (r.code == 0) continue;  // not sent: busy until its deadline, then sent again
		if (r.code >= 300 || r.code < 200) {
			full.push_back(i);
			continue;
		}
		lease[i] = k_.lease(r.res);
		field[i] = r.sid + ':' + std::to_string(r.cseq);
		cmds.push_back({"MULTI"});
		cmds.push_back({"HGET", lease[i], field[i]});
		cmds.push_back({"HDEL", lease[i], field[i]});
		cmds.push_back({"EXEC"});
		fast.push_back(i);
	}
	if (!cmds.empty()) {
		std::vector<Reply> reps = r_.pipeline(cmds);
		for (size_t j = 0; j < fast.size(); ++j) {
			const redisReply *exec = reps[4 * j + 3].get();
			if (!exec || exec->type != REDIS_REPLY_ARRAY || exec->elements < 1) {
				full.push_back(fast[j]);  // not recorded: the script decides
				continue;
			}
			const redisReply *v = exec->element[0];
			if (v->type == REDIS_REPLY_STRING && v->len > 0 && v->str[v->len - 1] == '1')
				full.push_back(fast[j]);
		}
	}
	if (full.empty()) return out;
	std::sort(full.begin(), full.end());  // oldest first, as the responses came
	const std::string &script = lua_script("subs_complete");
	const size_t m = full.size();
	// every argument kept alive for the pipeline
	std::vector<std::vector<std::string>> keys(m), args(m);
	std::vector<std::string> shas(m), nkeys(m);
	std::vector<const std::string *> scripts(m, &script);
	cmds.clear();
	for (size_t j = 0; j < m; ++j) {
		const Response &r = responses[full[j]];
		keys[j] = k_.script_keys(r.res);
		args[j] = {std::to_string(now_ms), busy_arg(), r.sid, std::to_string(r.cseq),
				std::to_string(r.code), r.retry_after ? "1" : "0", remove_on_timeout ? "1" : "0"};
		cmds.push_back(Redis::evalsha_argv(script, shas[j], nkeys[j], views(keys[j]), views(args[j])));
	}
	std::vector<Reply> reps = r_.pipeline(cmds, scripts);
	for (size_t j = 0; j < m; ++j) {
		const Response &r = responses[full[j]];
		const redisReply *rep = reps[j].get();
		Batch &b = out[full[j]];
		if (rep->type == REDIS_REPLY_ERROR) {
			IMPS_ERR("NOTIFY response of subscription %s not recorded: %.*s", r.sid.c_str(),
					static_cast<int>(rep->len), rep->str);
			b.errors = 1;
			continue;
		}
		b = parse_batch(rep);
		if (b.due_ms >= 0) index_due(r.res, b.due_ms);
		if (!b.removed.empty()) r_.command({"HDEL", k_.bucket("sid", k_.bucket_of(r.sid)), r.sid});
	}
	return out;
}

// Claims the resources of every bucket whose index score is due and runs the per-resource
// script on each; the bucket score is then set to the resource's next due time.
Batch Store::resource_claim(const char *script, const char *kind, long long now_value, int limit)
{
	Batch all;
	for (int n = 0; n < k_.buckets() && limit > 0; ++n) {
		std::string bucket = k_.bucket(kind, n);
		Reply due = r_.command({"ZRANGEBYSCORE", bucket, "-inf", std::to_string(now_value),
				"WITHSCORES", "LIMIT", "0", std::to_string(limit)});
		if (due->type != REDIS_REPLY_ARRAY) continue;
		for (size_t i = 0; i + 1 < due->elements && limit > 0; i += 2) {
			std::string res = reply_str(due->element[i]);
			try {
			std::string old = reply_str(due->element[i + 1]);
			const bool due_kind = std::string(kind) == "due";
			// the caller's time: ms for deferred NOTIFYs, seconds for expiry
			std::vector<std::string> a = {std::to_string(due_kind ? now_value : now_value * 1000),
					busy_arg(), std::to_string(now_value), std::to_string(limit)};
			if (due_kind) a.erase(a.begin() + 2);
			Reply rep = r_.eval(lua_script(script), views(k_.script_keys(res)), views(a));
			Batch b = parse_batch(rep.get());
			long long next = std::string(kind) == "due" ? b.due_ms
					: (rep->elements > 3 ? reply_int(rep->element[3]) : -1);
			r_.eval(lua_script("bucket_fix"), {bucket}, {res, old, std::to_string(next)});
			if (std::string(kind) != "due") index_due(res, b.due_ms);
			for (auto &s : b.removed) r_.command({"HDEL", k_.bucket("sid", k_.bucket_of(s.sid)), s.sid});
			limit -= static_cast<int>(b.send.size() + b.removed.size());
			for (auto &s : b.send) all.send.push_back(std::move(s));
			for (auto &s : b.removed) all.removed.push_back(std::move(s));
			} catch (const std::exception &e) {
				// one resource that fails never keeps the others of the batch back
				++all.errors;
				--limit;
				IMPS_ERR("timer: %s of %s failed: %s", script, res.c_str(), e.what());
			}
		}
	}
	return all;
}

Batch Store::expire(long long now, int limit)
{
	Batch b = resource_claim("subs_expire", "sexp", now, limit);
	try {
		sweep_index(100);
	} catch (const std::exception &e) {
		++b.errors;
		IMPS_ERR("timer: sweep of the subscription index failed: %s", e.what());
	}
	return b;
}

Batch Store::due(long long now_ms, int limit) { return resource_claim("subs_due", "due", now_ms, limit); }

std::vector<Subscription> Store::of(const std::string &res, const std::string &package)
{
	Reply rep = r_.eval(lua_script("subs_list"), views(k_.script_keys(res)),
			{"0", "0 - 0", package});
	std::vector<Subscription> out;
	for (size_t i = 3; i < rep->elements; ++i) out.push_back(parse_flat(rep->element[i]));
	return out;
}

std::string Store::resource_of(const std::string &sid)
{
	std::string bucket = k_.bucket("sid", k_.bucket_of(sid));
	std::string res = reply_str(r_.command({"HGET", bucket, sid}).get());
	if (res.empty()) return res;
	// an entry whose record went (its keys expired with no node running, a refused create)
	if (reply_int(r_.command({"HEXISTS", k_.subs(res), sid}).get()) != 1) {
		r_.command({"HDEL", bucket, sid});
		return {};
	}
	return res;
}

// A page of the id index checked for entries whose record is gone: the index never grows
// past the records, whatever happened while no node ran (bounded: one page per call).
int Store::sweep_index(int count)
{
	int bucket = static_cast<int>(sweep_bucket_ % static_cast<unsigned>(k_.buckets()));
	std::string key = k_.bucket("sid", bucket);
	Reply rep = r_.command({"HSCAN", key, std::to_string(sweep_cursor_), "COUNT", std::to_string(count)});
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) return 0;
	sweep_cursor_ = std::strtoull(reply_str(rep->element[0]).c_str(), nullptr, 10);
	if (sweep_cursor_ == 0) ++sweep_bucket_;
	int dropped = 0;
	const redisReply *kv = rep->element[1];
	for (size_t i = 0; i + 1 < kv->elements; i += 2) {
		std::string sid = reply_str(kv->element[i]), res = reply_str(kv->element[i + 1]);
		if (reply_int(r_.command({"HEXISTS", k_.subs(res), sid}).get()) != 1) {
			r_.command({"HDEL", key, sid});
			++dropped;
		}
	}
	return dropped;
}

long long Store::count()
{
	long long n = 0;
	for (int b = 0; b < k_.buckets(); ++b) n += reply_int(r_.command({"HLEN", k_.bucket("sid", b)}).get());
	return n;
}

std::vector<Subscription> Store::scan(unsigned long long &cursor, int bucket, int count)
{
	Reply rep = r_.command({"HSCAN", k_.bucket("sid", bucket), std::to_string(cursor), "COUNT",
			std::to_string(count)});
	std::vector<Subscription> out;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) return out;
	cursor = std::strtoull(reply_str(rep->element[0]).c_str(), nullptr, 10);
	const redisReply *kv = rep->element[1];
	for (size_t i = 0; i + 1 < kv->elements; i += 2) {
		std::string sid = reply_str(kv->element[i]), res = reply_str(kv->element[i + 1]);
		Reply raw = r_.command({"HEXISTS", k_.subs(res), sid});
		if (reply_int(raw.get()) != 1) continue;
		for (auto &s : of(res, ""))
			if (s.sid == sid) out.push_back(std::move(s));
	}
	return out;
}

// ---- notifier -----------------------------------------------------------------------------

Package *Notifier::package(const std::string &name) const
{
	for (auto *p : packages_)
		if (p->name() == name) return p;
	return nullptr;
}

int Notifier::expires_of(const Request &req) const
{
	int e = req.expires < 0 ? cfg_.default_expires : req.expires;
	return std::min(e, cfg_.max_expires);
}

bool Notifier::check(const Request &req, Package &pkg, Response &res) const
{
	std::string name = req.has_event ? lower(trim(req.event.substr(0, req.event.find(';')))) : "";
	if (name != pkg.name()) {
		std::string allow;
		for (const auto *p : packages_) allow += (allow.empty() ? "" : ", ") + p->name();
		res.code = 489;
		res.reason = req.has_event ? "Bad Event (package not supported here)" : "Bad Event (Event header missing)";
		res.headers = {"Allow-Events: " + (allow.empty() ? pkg.name() : allow)};
		return false;
	}
	if (req.has_accept) {
		bool ok = false;
		for (const auto &t : pkg.content_types()) ok = ok || accepts(req.accept, t);
		if (!ok) {
			res.code = 406;
			res.reason = "Not Acceptable (Accept must allow " + pkg.content_types().front() + ")";
			res.headers = {"Accept: " + pkg.content_types().front()};
			return false;
		}
	}
	int e = req.expires < 0 ? cfg_.default_expires : req.expires;
	if (e > 0 && e < cfg_.min_expires) {
		res.code = 423;
		res.reason = "Interval Too Brief";
		res.headers = {"Min-Expires: " + std::to_string(cfg_.min_expires)};
		return false;
	}
	return true;
}

Notifier::Response Notifier::subscribe(const Request &req, Package &pkg, int max_per_resource)
{
	Response res;
	if (!check(req, pkg, res)) return res;
	int expires = expires_of(req);
	Subscription s = req.sub;
	s.package = pkg.name();
	s.sid = subscription_id(s.dialog.callid, s.dialog.remote_tag, s.dialog.local_tag);
	s.expires_at = req.now + expires;
	bool send_now = false;
	if (req.in_dialog) {
		Outcome o = store_.refresh(s, expires == 0, req.now_ms, send_now);
		if (o == Outcome::NoSuchDialog) {
			res.code = 481;
			res.reason = "Subscription Does Not Exist";
			return res;
		}
		if (o == Outcome::CseqOutOfOrder) {
			res.code = 500;
			res.reason = "Server Internal Error (CSeq out of order)";
			return res;
		}
		if (expires == 0) {
			res.removed = true;
			// else: its final NOTIFY goes after the outstanding one's response (complete)
			if (send_now) {
				Batch b;
				b.removed.push_back(s);
				handle(b, req.now, req.now_ms);
			}
		} else if (send_now) {
			std::string end = pkg.refreshed(s, req.now_ms);
			if (end.empty()) {
				queue_full(s, req.now);
			} else {
				// the package ends it (the rules changed): this NOTIFY is the final one
				Batch b;
				store_.take(s.resource, s.sid, end, false, req.now_ms, b);
				s.ending = end;
				queue(s, pkg.final_state(s, end, req.now), "terminated;reason=" + end);
				count(Counter::Active, -1);
				pkg.ended(s, end, req.now_ms);
				res.removed = true;
			}
		}
	} else if (expires == 0) {
		// a fetch: one NOTIFY with the whole state now, terminated, nothing stored
		s.version = 0;
		s.cseq = 1;
		queue(s, pkg.full_state(s, req.now), "terminated;reason=timeout");
	} else {
		s.created_at = req.now;
		bool created = false;
		if (store_.create(s, max_per_resource, req.now_ms, send_now, &created) == Outcome::TooMany) {
			res.code = 403;
			res.reason = "Forbidden (too many watchers of this resource)";
			return res;
		}
		res.created = created;
		if (res.created) count(Counter::Active, 1);
		if (send_now) queue_full(s, req.now);
	}
	res.code = 200;
	res.reason = "OK";
	res.headers.push_back("Expires: " + std::to_string(expires));
	if (!s.dialog.local_contact.empty()) res.headers.push_back("Contact: <" + s.dialog.local_contact + ">");
	res.sub = s;
	return res;
}

void Notifier::queue(const Subscription &s, Notification n, const std::string &state)
{
	outbox_.push_back({s, state, std::move(n)});
}

void Notifier::queue_full(const Subscription &s, long long now)
{
	Package *p = package(s.package);
	if (!p) throw std::logic_error("no event package " + s.package);
	queue(s, p->full_state(s, now), subscription_state(s, now));
}

void Notifier::queue_final(const Subscription &s, long long now, long long now_ms)
{
	Package *p = package(s.package);
	if (!p) throw std::logic_error("no event package " + s.package);
	std::string reason = s.ending.empty() ? "timeout" : s.ending;
	queue(s, p->final_state(s, reason, now), "terminated;reason=" + reason);
}

void Notifier::handle(const Batch &b, long long now, long long now_ms)
{
	if (b.errors) count(Counter::TimerErrors, b.errors);
	for (const auto &s : b.send) {
		try {
			queue_full(s, now);
		} catch (const std::exception &e) {
			count(Counter::TimerErrors, 1);
			IMPS_ERR("NOTIFY of subscription %s to %s not built: %s", s.sid.c_str(),
					s.resource.c_str(), e.what());
		}
	}
	for (const auto &s : b.removed) {
		try {
			count(Counter::Active, -1);
			Package *p = package(s.package);
			std::string reason = s.ending.rfind("failed:", 0) == 0 || s.ending.empty() ? "timeout" : s.ending;
			try {
				if (p && s.owes_final) queue_final(s, now, now_ms);
			} catch (const std::exception &e) {
				count(Counter::TimerErrors, 1);
				IMPS_ERR("final NOTIFY of subscription %s to %s not built: %s", s.sid.c_str(),
						s.resource.c_str(), e.what());
			}
			// it left the store: watcher info and accounting learn of it whatever happened above
			if (p) p->ended(s, reason, now_ms);
		} catch (const std::exception &e) {
			count(Counter::TimerErrors, 1);
			IMPS_ERR("end of subscription %s to %s not handled: %s", s.sid.c_str(),
					s.resource.c_str(), e.what());
		}
	}
}

void Notifier::flush()
{
	std::vector<Outgoing> out;
	out.swap(outbox_);
	for (const auto &n : out) {
		bool sent = false;
		try {
			sent = delivery_.deliver(n);
		} catch (const std::exception &e) {
			// one NOTIFY that cannot be handed over never keeps the others back
			count(Counter::TimerErrors, 1);
			IMPS_ERR("NOTIFY to %s for %s failed: %s", n.sub.dialog.remote_target.c_str(),
					n.sub.resource.c_str(), e.what());
		}
		if (sent) {
			count(Counter::Sent, 1);
		} else {
			count(Counter::Failed, 1);
			IMPS_WARN("NOTIFY to %s for %s could not be sent", n.sub.dialog.remote_target.c_str(),
					n.sub.resource.c_str());
		}
	}
}

bool Notifier::store_complete(const Completion &c, long long now_ms)
{
	Batch b;
	try {
		b = store_.complete(c.res, c.sid, c.cseq, c.code, c.retry_after, cfg_.remove_on_timeout, now_ms);
	} catch (const RedisError &e) {
		if (now_ms - c.first_ms < store_.busy_ms()) {
			IMPS_WARN("NOTIFY response of subscription %s kept for later: %s", c.sid.c_str(), e.what());
			return false;
		}
		throw;
	}
	handle(b, now_ms / 1000, now_ms);
	return true;
}

void Notifier::complete(const std::string &res, const std::string &sid, unsigned long long cseq,
		int code, bool retry_after, long long now_ms)
{
	if (code >= 300) {
		count(Counter::Failed, 1);
		IMPS_INFO("NOTIFY %llu of subscription %s to %s answered %d%s", cseq, sid.c_str(),
				res.c_str(), code, retry_after ? " with Retry-After" : "");
	}
	retry_completions(now_ms);
	Completion c{res, sid, cseq, code, retry_after, now_ms};
	if (!retry_.empty() || !store_complete(c, now_ms)) retry_.push_back(std::move(c));
}

void Notifier::complete_many(const std::vector<Store::Response> &responses, long long now_ms)
{
	if (responses.empty()) return;
	for (const auto &r : responses)
		if (r.code >= 300) {
			count(Counter::Failed, 1);
			IMPS_INFO("NOTIFY %llu of subscription %s to %s answered %d%s", r.cseq, r.sid.c_str(),
					r.res.c_str(), r.code, r.retry_after ? " with Retry-After" : "");
		}
	retry_completions(now_ms);
	if (!retry_.empty()) {  // Redis was unreachable a moment ago: keep the order
		for (const auto &r : responses) retry_.push_back({r.res, r.sid, r.cseq, r.code, r.retry_after, now_ms});
		return;
	}
	std::vector<Batch> batches;
	try {
		batches = store_.complete_many(responses, cfg_.remove_on_timeout, now_ms);
	} catch (const RedisError &e) {
		IMPS_WARN("%zu NOTIFY responses kept for later: %s", responses.size(), e.what());
		for (const auto &r : responses) retry_.push_back({r.res, r.sid, r.cseq, r.code, r.retry_after, now_ms});
		return;
	}
	for (const auto &b : batches) handle(b, now_ms / 1000, now_ms);
}

void Notifier::retry_completions(long long now_ms)
{
	while (!retry_.empty()) {
		// the script is guarded by the NOTIFY's CSeq: a second run after a lost reply changes
		// nothing
		try {
			if (!store_complete(retry_.front(), now_ms)) return;
		} catch (const std::exception &e) {
			count(Counter::TimerErrors, 1);
			IMPS_ERR("NOTIFY response of subscription %s dropped: %s", retry_.front().sid.c_str(), e.what());
		}
		retry_.erase(retry_.begin());
	}
}

void Notifier::expire(long long now, long long now_ms)
{
	Batch b;
	try {
		b = store_.expire(now, 500);
	} catch (const std::exception &e) {
		count(Counter::TimerErrors, 1);
		IMPS_ERR("timer: expired subscriptions failed: %s", e.what());
		return;
	}
	handle(b, now, now_ms);
}

void Notifier::send_due(long long now_ms)
{
	retry_completions(now_ms);
	Batch b;
	try {
		b = store_.due(now_ms, 1000);
	} catch (const std::exception &e) {
		count(Counter::TimerErrors, 1);
		IMPS_ERR("timer: deferred NOTIFYs failed: %s", e.what());
		return;
	}
	handle(b, now_ms / 1000, now_ms);
}

void Notifier::tick(long long now, long long now_ms)
{
	expire(now, now_ms);
	flush();
	send_due(now_ms);
	flush();
}

}  // namespace imps::subs
