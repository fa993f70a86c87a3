// Redis implementation of the reg-event store. Key scheme (prefix defaults to imps:reginfo):
//   <p>:sub:<sid>   hash   one subscription dialog, with its NOTIFY version and CSeq counters
//   <p>:aor:<aor>   set    sids subscribed to an AoR
//   <p>:exp         zset   sid -> expiry (unix seconds), scanned by the timer
//   <p>:bind:<aor>  hash   contact id -> "first\texpires\tfirst_cseq\tdisplay\tparams" (the
//                          last two escaped); first and first_cseq survive every update
// Every change that reads and writes is one Lua script, so two processes or two nodes sharing
// one Redis never hand out the same version or CSeq twice.
#include "store.hpp"

#include "imps/redis.hpp"

#include <stdexcept>

namespace imps::reginfo {
namespace {

const std::string kBindingChanged = R"lua(
local old = redis.call('HGET', KEYS[1], ARGV[2])
local first, fcseq, rest = ARGV[4], ARGV[9], ARGV[6]
if old then
  local f, e, fc, r = string.match(old, '^(%d+)\t(%d+)\t(%d+)\t(.*)$')
  if f then
    first = f
    fcseq = fc
    if ARGV[7] == '1' then rest = r end
  end
end
if ARGV[3] == '1' then
  redis.call('HDEL', KEYS[1], ARGV[2])
else
  redis.call('HSET', KEYS[1], ARGV[2], first .. '\t' .. ARGV[5] .. '\t' .. fcseq .. '\t' .. rest)
  if ARGV[8] == '0' then redis.call('PERSIST', KEYS[1]) else redis.call('EXPIRE', KEYS[1], ARGV[8]) end
end
local out = {old or '', {}}
local sids = redis.call('SMEMBERS', KEYS[2])
if #sids > 0 then out[2] = redis.call('HGETALL', KEYS[1]) end
for _, sid in ipairs(sids) do
  local k = ARGV[1] .. ':sub:' .. sid
  if redis.call('EXISTS', k) == 1 then
    redis.call('HINCRBY', k, 'version', 1)
    redis.call('HINCRBY', k, 'cseq', 1)
    out[#out + 1] = redis.call('HGETALL', k)
  else
    redis.call('SREM', KEYS[2], sid)
  end
end
return out
)lua";

// A retransmitted initial SUBSCRIBE has the same dialog (sl's To tag is deterministic): the
// subscription is kept and its counters go on, never back to 0.
const std::string kCreate = R"lua(
local v, c = 0, 1
if redis.call('EXISTS', KEYS[1]) == 1 then
  v = redis.call('HINCRBY', KEYS[1], 'version', 1)
  c = redis.call('HINCRBY', KEYS[1], 'cseq', 1)
  redis.call('HSET', KEYS[1], unpack(ARGV, 3))
else
  redis.call('HSET', KEYS[1], 'version', 0, 'cseq', 1, unpack(ARGV, 3))
end
redis.call('EXPIREAT', KEYS[1], tonumber(ARGV[2]) + 3600)
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return {v, c}
)lua";

const std::string kRemove = R"lua(
local n = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
return n
)lua";

const std::string kRefresh = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local rc = tonumber(redis.call('HGET', KEYS[1], 'rcseq') or '0')
if tonumber(ARGV[4]) < rc then return {-1} end
redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HINCRBY', KEYS[1], 'cseq', 1)
if ARGV[3] == '1' then
  local all = redis.call('HGETALL', KEYS[1])
  local aor = redis.call('HGET', KEYS[1], 'aor')
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  if aor then redis.call('SREM', ARGV[1] .. ':aor:' .. aor, ARGV[2]) end
  return {1, all}
end
redis.call('HSET', KEYS[1], 'expires_at', ARGV[5], 'rcseq', ARGV[4])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'remote_target', ARGV[6]) end
redis.call('EXPIREAT', KEYS[1], tonumber(ARGV[5]) + 3600)
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[2])
return {1, redis.call('HGETALL', KEYS[1])}
)lua";

const std::string kClaimExpired = R"lua(
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])
local out = {}
for _, sid in ipairs(ids) do
  redis.call('ZREM', KEYS[1], sid)
  local k = ARGV[1] .. ':sub:' .. sid
  if redis.call('EXISTS', k) == 1 then
    redis.call('HINCRBY', k, 'version', 1)
    redis.call('HINCRBY', k, 'cseq', 1)
    local all = redis.call('HGETALL', k)
    local aor = redis.call('HGET', k, 'aor')
    redis.call('DEL', k)
    if aor then redis.call('SREM', ARGV[1] .. ':aor:' .. aor, sid) end
    out[#out + 1] = all
  end
end
return out
)lua";

const std::string kList = R"lua(
local ids
if ARGV[2] ~= '' then
  ids = redis.call('SMEMBERS', ARGV[1] .. ':aor:' .. ARGV[2])
else
  ids = redis.call('ZRANGE', ARGV[1] .. ':exp', 0, tonumber(ARGV[3]) - 1)
end
local out = {}
for i, sid in ipairs(ids) do
  if i > tonumber(ARGV[3]) then break end
  local h = redis.call('HGETALL', ARGV[1] .. ':sub:' .. sid)
  if #h > 0 then out[#out + 1] = h end
end
return out
)lua";

std::string escape(const std::string &in)
{
	std::string out;
	out.reserve(in.size());
	for (char c : in) {
		if (c == '%') out += "%25";
		else if (c == '\t') out += "%09";
		else out += c;
	}
	return out;
}

std::string unescape(const std::string &in)
{
	std::string out;
	out.reserve(in.size());
	for (size_t i = 0; i < in.size(); ++i) {
		if (in.compare(i, 3, "%25") == 0) {
			out += '%';
			i += 2;
		} else if (in.compare(i, 3, "%09") == 0) {
			out += '\t';
			i += 2;
		} else {
			out += in[i];
		}
	}
	return out;
}

std::optional<BindingMeta> parse_meta(const std::string &v)
{
	// first \t expires \t first_cseq \t display \t params
	size_t pos[4];
	size_t from = 0;
	for (auto &p : pos) {
		p = v.find('\t', from);
		if (p == std::string::npos) return std::nullopt;
		from = p + 1;
	}
	BindingMeta m;
	m.first_registered = std::strtoll(v.substr(0, pos[0]).c_str(), nullptr, 10);
	m.expires_at = std::strtoll(v.substr(pos[0] + 1, pos[1] - pos[0] - 1).c_str(), nullptr, 10);
	m.first_cseq = std::strtoll(v.substr(pos[1] + 1, pos[2] - pos[1] - 1).c_str(), nullptr, 10);
	m.display_name = unescape(v.substr(pos[2] + 1, pos[3] - pos[2] - 1));
	m.params = unescape(v.substr(pos[3] + 1));
	return m;
}

std::map<std::string, BindingMeta> parse_meta_hash(const redisReply *r)
{
	std::map<std::string, BindingMeta> out;
	if (!r || r->type != REDIS_REPLY_ARRAY) return out;
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		auto m = parse_meta(reply_str(r->element[i + 1]));
		if (m) out.emplace(reply_str(r->element[i]), *m);
	}
	return out;
}

Subscription parse_sub(const redisReply *r)
{
	Subscription s;
	if (!r || r->type != REDIS_REPLY_ARRAY) return s;
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		std::string k = reply_str(r->element[i]);
		std::string v = reply_str(r->element[i + 1]);
		if (k == "sid") s.sid = v;
		else if (k == "aor") s.aor = v;
		else if (k == "aor_uri") s.aor_uri = v;
		else if (k == "watcher") s.watcher = v;
		else if (k == "callid") s.callid = v;
		else if (k == "remote_tag") s.remote_tag = v;
		else if (k == "local_tag") s.local_tag = v;
		else if (k == "remote_uri") s.remote_uri = v;
		else if (k == "local_uri") s.local_uri = v;
		else if (k == "remote_target") s.remote_target = v;
		else if (k == "route_set") s.route_set = v;
		else if (k == "socket") s.socket = v;
		else if (k == "local_contact") s.local_contact = v;
		else if (k == "event_id") s.event_id = v;
		else if (k == "expires_at") s.expires_at = std::strtoll(v.c_str(), nullptr, 10);
		else if (k == "rcseq") s.remote_cseq = std::strtoll(v.c_str(), nullptr, 10);
		else if (k == "version") s.version = std::strtoull(v.c_str(), nullptr, 10);
		else if (k == "cseq") s.cseq = std::strtoull(v.c_str(), nullptr, 10);
	}
	return s;
}

class RedisStore final : public Store {
public:
	RedisStore(Redis &r, std::string prefix) : r_(r), p_(std::move(prefix)) {}

	BindingChangeResult binding_changed(const std::string &aor, const std::string &cid,
			bool removed, const BindingMeta &meta, bool keep_meta, long long ttl) override
	{
		std::string bkey = p_ + ":bind:" + aor, skey = p_ + ":aor:" + aor;
		std::string first = std::to_string(meta.first_registered);
		std::string exp = std::to_string(meta.expires_at);
		std::string rest = escape(meta.display_name) + '\t' + escape(meta.params);
		std::string ttls = std::to_string(ttl), fcseq = std::to_string(meta.first_cseq);
		Reply rep = r_.eval(kBindingChanged, {bkey, skey},
				{p_, cid, removed ? "1" : "0", first, exp, rest, keep_meta ? "1" : "0", ttls,
						fcseq});
		BindingChangeResult res;
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2)
			throw RedisError("Redis: unexpected reply to binding update");
		std::string old = reply_str(rep->element[0]);
		if (!old.empty()) res.previous = parse_meta(old);
		res.all = parse_meta_hash(rep->element[1]);
		for (size_t i = 2; i < rep->elements; ++i) res.subs.push_back(parse_sub(rep->element[i]));
		return res;
	}

	std::map<std::string, BindingMeta> bindings(const std::string &aor) override
	{
		Reply rep = r_.command({"HGETALL", p_ + ":bind:" + aor});
		return parse_meta_hash(rep.get());
	}

	void create(Subscription &s, bool store) override
	{
		s.version = 0;
		s.cseq = 1;
		if (!store) return;
		std::string exp = std::to_string(s.expires_at), rc = std::to_string(s.remote_cseq);
		std::vector<std::string_view> args = {s.sid, exp, "sid", s.sid, "aor", s.aor,
				"aor_uri", s.aor_uri, "watcher", s.watcher, "callid", s.callid, "remote_tag",
				s.remote_tag, "local_tag", s.local_tag, "remote_uri", s.remote_uri, "local_uri",
				s.local_uri, "remote_target", s.remote_target, "route_set", s.route_set,
				"socket", s.socket, "local_contact", s.local_contact, "event_id", s.event_id,
				"expires_at", exp, "rcseq",
				rc};
		Reply rep = r_.eval(kCreate, {p_ + ":sub:" + s.sid, p_ + ":aor:" + s.aor, p_ + ":exp"}, args);
		if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
			s.version = static_cast<unsigned long long>(reply_int(rep->element[0]));
			s.cseq = static_cast<unsigned long long>(reply_int(rep->element[1]));
		}
	}

	SubscribeOutcome refresh(Subscription &s, bool remove) override
	{
		std::string rc = std::to_string(s.remote_cseq), exp = std::to_string(s.expires_at);
		Reply rep = r_.eval(kRefresh, {p_ + ":sub:" + s.sid, p_ + ":exp"},
				{p_, s.sid, remove ? "1" : "0", rc, exp, s.remote_target});
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1)
			throw RedisError("Redis: unexpected reply to refresh");
		long long code = reply_int(rep->element[0]);
		if (code == 0) return SubscribeOutcome::NoSuchDialog;
		if (code < 0) return SubscribeOutcome::CseqOutOfOrder;
		s = parse_sub(rep->element[1]);
		return SubscribeOutcome::Ok;
	}

	std::vector<Subscription> claim_expired(long long now, int limit) override
	{
		Reply rep = r_.eval(kClaimExpired, {p_ + ":exp"},
				{p_, std::to_string(now), std::to_string(limit)});
		std::vector<Subscription> out;
		if (rep->type == REDIS_REPLY_ARRAY)
			for (size_t i = 0; i < rep->elements; ++i) out.push_back(parse_sub(rep->element[i]));
		return out;
	}

	std::vector<Subscription> list(const std::string &aor, int limit) override
	{
		Reply rep = r_.eval(kList, {}, {p_, aor, std::to_string(limit)});
		std::vector<Subscription> out;
		if (rep->type == REDIS_REPLY_ARRAY)
			for (size_t i = 0; i < rep->elements; ++i) out.push_back(parse_sub(rep->element[i]));
		return out;
	}

	bool remove(const std::string &sid, const std::string &aor) override
	{
		Reply rep = r_.eval(kRemove, {p_ + ":sub:" + sid, p_ + ":exp", p_ + ":aor:" + aor}, {sid});
		return reply_int(rep.get()) > 0;
	}

	long long count() override { return reply_int(r_.command({"ZCARD", p_ + ":exp"}).get()); }

private:
	Redis &r_;
	std::string p_;
};

}  // namespace

std::unique_ptr<Store> make_redis_store(Redis &redis, std::string prefix)
{
	return std::make_unique<RedisStore>(redis, std::move(prefix));
}

}  // namespace imps::reginfo
