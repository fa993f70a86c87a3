// Redis implementation of the presence store. Key scheme (prefix defaults to imps:presence):
//   <p>:pub:<pres>    hash   etag -> "expires\tpublished\tsource\tbody"
//   <p>:pexp          zset   "<pres>\n<etag>" -> expiry (unix seconds), scanned by the timer
//   <p>:meta:<pres>   hash   gen (publication generation), docgen, doc, hash (composed doc)
//   <p>:pres          set    presentities with publications or watchers (RPC list)
//   <p>:sub:<sid>     hash   one subscription dialog with its version/CSeq counters
//   <p>:subs:<pres>   set    presence subscriptions of a presentity
//   <p>:wsubs:<pres>  set    presence.winfo subscriptions of a presentity
//   <p>:sexp          zset   sid -> expiry
//   <p>:nq            zset   sid -> when its coalesced NOTIFY is due (ms)
// Every read-modify-write is one Lua script: processes and nodes sharing one Redis never
// hand out a CSeq twice, and of two changes on one ETag exactly one wins.
#include "store.hpp"

#include "imps/redis.hpp"

#include <cstdlib>
#include <ctime>
#include <set>

namespace imps::presence {
namespace {

// A presentity with no publication and no watcher left: its composed document and generation
// (meta) go after a day, unless it gets state again (PERSIST in publish and create).
const std::string kIdle = R"lua(
local function idle(p, pres)
  if redis.call('HLEN', p .. ':pub:' .. pres) == 0 and redis.call('SCARD', p .. ':subs:' .. pres) == 0
      and redis.call('SCARD', p .. ':wsubs:' .. pres) == 0 then
    redis.call('EXPIRE', p .. ':meta:' .. pres, 86400)
    redis.call('SREM', p .. ':pres', pres)
  end
end
)lua";

const std::string kPublish = kIdle + R"lua(
local p, pres, op, im, ne = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, exp = tonumber(ARGV[9]), ARGV[8]
local H, X = p .. ':pub:' .. pres, p .. ':pexp'
local rec
if op ~= 'i' then
  local raw = redis.call('HGET', H, im)
  if not raw then return {0} end
  local x, t, s, b = string.match(raw, '^(%d+)\t(%d+)\t([^\t]*)\t(.*)$')
  if not x or tonumber(x) <= now then return {0} end
  redis.call('HDEL', H, im)
  redis.call('ZREM', X, pres .. '\n' .. im)
  rec = {t, s, b}
else
  if redis.call('HLEN', H) >= tonumber(ARGV[10]) then
    -- collect expired ones before refusing
    local all = redis.call('HGETALL', H)
    for i = 1, #all, 2 do
      local x = string.match(all[i + 1], '^(%d+)\t')
      if tonumber(x) <= now then
        redis.call('HDEL', H, all[i]); redis.call('ZREM', X, pres .. '\n' .. all[i])
      end
    end
    if redis.call('HLEN', H) >= tonumber(ARGV[10]) then return {-1} end
  end
end
local changed = 1
-- a modify with the very body the publication has is a refresh (no new composition)
if op == 'm' and rec[3] == ARGV[6] then op = 'r' end
if op == 'r' then
  changed = 0
  redis.call('HSET', H, ne, exp .. '\t' .. rec[1] .. '\t' .. rec[2] .. '\t' .. rec[3])
elseif op ~= 'x' then
  redis.call('HSET', H, ne, exp .. '\t' .. ARGV[9] .. '\t' .. ARGV[7] .. '\t' .. ARGV[6])
end
if op ~= 'x' then redis.call('ZADD', X, exp, pres .. '\n' .. ne) end
redis.call('SADD', p .. ':pres', pres)
local gen = redis.call('HINCRBY', p .. ':meta:' .. pres, 'gen', changed)
if op == 'x' then idle(p, pres) else redis.call('PERSIST', p .. ':meta:' .. pres) end
local watched = 1
if changed == 1 and redis.call('SCARD', p .. ':subs:' .. pres) == 0 then
  -- nobody to notify: no composition now; the document is composed when a watcher comes
  -- (docgen moves on, so an older composition still in flight cannot be stored)
  watched = 0
  redis.call('HSET', p .. ':meta:' .. pres, 'docgen', gen)
  redis.call('HDEL', p .. ':meta:' .. pres, 'doc', 'hash')
end
local out = {1, gen, changed, watched}
if changed == 1 then
  local all = redis.call('HGETALL', H)
  for i = 1, #all, 2 do
    local x = string.match(all[i + 1], '^(%d+)\t')
    if tonumber(x) > now then out[#out + 1] = all[i]; out[#out + 1] = all[i + 1] end
  end
end
return out
)lua";

const std::string kPublications = R"lua(
local H = ARGV[1] .. ':pub:' .. ARGV[2]
local gen = redis.call('HGET', ARGV[1] .. ':meta:' .. ARGV[2], 'gen') or '0'
local out = {tonumber(gen), 0, 0}
local all = redis.call('HGETALL', H)
for i = 1, #all, 2 do
  local x = string.match(all[i + 1], '^(%d+)\t')
  if tonumber(x) > tonumber(ARGV[3]) then out[#out + 1] = all[i]; out[#out + 1] = all[i + 1] end
end
return out
)lua";

const std::string kExpirePublications = kIdle + R"lua(
local p, now = ARGV[1], tonumber(ARGV[2])
local X = p .. ':pexp'
local ids = redis.call('ZRANGEBYSCORE', X, '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local seen, out = {}, {}
for _, m in ipairs(ids) do
  redis.call('ZREM', X, m)
  local pres, etag = string.match(m, '^(.*)\n(.*)$')
  if pres then
    local H = p .. ':pub:' .. pres
    local raw = redis.call('HGET', H, etag)
    if raw then
      local x = string.match(raw, '^(%d+)\t')
      if tonumber(x) <= now then
        redis.call('HDEL', H, etag)
        redis.call('HINCRBY', p .. ':meta:' .. pres, 'gen', 1)
        idle(p, pres)
        if not seen[pres] then seen[pres] = true; out[#out + 1] = pres end
      end
    end
  end
end
return out
)lua";

// ARGV: p, pres, gen, doc, hash, now_ms, interval_ms
const std::string kSetDocument = R"lua(
local p, pres = ARGV[1], ARGV[2]
local M = p .. ':meta:' .. pres
local gen = tonumber(ARGV[3])
local dg = redis.call('HGET', M, 'docgen')
if dg and gen <= tonumber(dg) then return {0} end
local old = redis.call('HGET', M, 'hash')
redis.call('HSET', M, 'docgen', ARGV[3], 'doc', ARGV[4], 'hash', ARGV[5])
if old == ARGV[5] then return {0} end
local out = {1}
local now, iv = tonumber(ARGV[6]), tonumber(ARGV[7])
local S = p .. ':subs:' .. pres
for _, sid in ipairs(redis.call('SMEMBERS', S)) do
  local k = p .. ':sub:' .. sid
  local st = redis.call('HGET', k, 'status')
  if not st then
    redis.call('SREM', S, sid)
  elseif st == 'active' then
    local last = tonumber(redis.call('HGET', k, 'last') or '0')
    if now - last >= iv then
      redis.call('HINCRBY', k, 'version', 1)
      redis.call('HINCRBY', k, 'cseq', 1)
      redis.call('HSET', k, 'last', ARGV[6])
      redis.call('ZREM', p .. ':nq', sid)
      out[#out + 1] = redis.call('HGETALL', k)
    else
      redis.call('ZADD', p .. ':nq', 'NX', last + iv, sid)
    end
  end
end
return out
)lua";

// Takes the due entries off the queue and returns the active ones as stored: their NOTIFY's
// CSeq is handed out later, under the presentity's lock (bump), so that no NOTIFY of the same
// dialog can be numbered after it and sent before it.
const std::string kClaimDue = R"lua(
local p = ARGV[1]
local ids = redis.call('ZRANGEBYSCORE', p .. ':nq', '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, sid in ipairs(ids) do
  redis.call('ZREM', p .. ':nq', sid)
  local k = p .. ':sub:' .. sid
  if redis.call('HGET', k, 'status') == 'active' then
    out[#out + 1] = redis.call('HGETALL', k)
  end
end
return out
)lua";

// KEYS: sub, set, sexp. ARGV: sid, expires_at, pres, prefix, max per set, field/value pairs...
const std::string kCreate = R"lua(
local v, c = 0, 1
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[5]) then
  return {-1, 0}
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  -- a retransmission: the counters go on, the subscription keeps its age
  local created = redis.call('HGET', KEYS[1], 'created')
  v = redis.call('HINCRBY', KEYS[1], 'version', 1)
  c = redis.call('HINCRBY', KEYS[1], 'cseq', 1)
  redis.call('HSET', KEYS[1], unpack(ARGV, 6))
  if created then redis.call('HSET', KEYS[1], 'created', created) end
else
  redis.call('HSET', KEYS[1], 'version', 0, 'cseq', 1, unpack(ARGV, 6))
end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('SADD', ARGV[4] .. ':pres', ARGV[3])
redis.call('PERSIST', ARGV[4] .. ':meta:' .. ARGV[3])
return {v, c}
)lua";

// sets a subscription belongs to, by its event package
const std::string kSetOf = kIdle + R"lua(
local function setof(p, k)
  local ev, pres = redis.call('HGET', k, 'event'), redis.call('HGET', k, 'pres')
  if not pres then return nil end
  if ev == 'presence.winfo' then return p .. ':wsubs:' .. pres end
  return p .. ':subs:' .. pres
end
)lua";

// KEYS: sub, sexp. ARGV: p, sid, remove, rcseq, expires_at, target, now_ms (the NOTIFY that
// follows counts as the last one for min_notify_interval)
const std::string kRefresh = kSetOf + R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local rc = tonumber(redis.call('HGET', KEYS[1], 'rcseq') or '0')
if tonumber(ARGV[4]) < rc then return {-1} end
redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HINCRBY', KEYS[1], 'cseq', 1)
redis.call('HSET', KEYS[1], 'rcseq', ARGV[4], 'last', ARGV[7])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'target', ARGV[6]) end
if ARGV[3] == '1' then
  local all = redis.call('HGETALL', KEYS[1])
  local s = setof(ARGV[1], KEYS[1])
  local pres = redis.call('HGET', KEYS[1], 'pres')
  if s then redis.call('SREM', s, ARGV[2]) end
  redis.call('DEL', KEYS[1])
  if pres then idle(ARGV[1], pres) end
  redis.call('ZREM', KEYS[2], ARGV[2])
  redis.call('ZREM', ARGV[1] .. ':nq', ARGV[2])
  return {1, all}
end
redis.call('HSET', KEYS[1], 'exp', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[2])
return {1, redis.call('HGETALL', KEYS[1])}
)lua";

const std::string kClaimExpired = kSetOf + R"lua(
local p = ARGV[1]
local ids = redis.call('ZRANGEBYSCORE', p .. ':sexp', '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, sid in ipairs(ids) do
  redis.call('ZREM', p .. ':sexp', sid)
  redis.call('ZREM', p .. ':nq', sid)
  local k = p .. ':sub:' .. sid
  if redis.call('EXISTS', k) == 1 then
    redis.call('HINCRBY', k, 'version', 1)
    redis.call('HINCRBY', k, 'cseq', 1)
    local all = redis.call('HGETALL', k)
    local s = setof(p, k)
    local pres = redis.call('HGET', k, 'pres')
    if s then redis.call('SREM', s, sid) end
    redis.call('DEL', k)
    if pres then idle(p, pres) end
    out[#out + 1] = all
  end
end
return out
)lua";

// ARGV: p, sid  (take: hands out the final NOTIFY's counters, then removes)
const std::string kTake = kSetOf + R"lua(
local p, sid = ARGV[1], ARGV[2]
local k = p .. ':sub:' .. sid
if redis.call('EXISTS', k) == 0 then return {} end
if ARGV[3] == '1' then
  redis.call('HINCRBY', k, 'version', 1)
  redis.call('HINCRBY', k, 'cseq', 1)
end
local all = redis.call('HGETALL', k)
local s = setof(p, k)
local pres = redis.call('HGET', k, 'pres')
if s then redis.call('SREM', s, sid) end
redis.call('DEL', k)
if pres then idle(p, pres) end
redis.call('ZREM', p .. ':sexp', sid)
redis.call('ZREM', p .. ':nq', sid)
return all
)lua";

// ARGV: p, pres, event ('' both)
const std::string kSubscriptions = R"lua(
local p, pres = ARGV[1], ARGV[2]
local sets = {}
if ARGV[3] ~= 'presence.winfo' then sets[#sets + 1] = p .. ':subs:' .. pres end
if ARGV[3] ~= 'presence' then sets[#sets + 1] = p .. ':wsubs:' .. pres end
local out = {}
for _, S in ipairs(sets) do
  for _, sid in ipairs(redis.call('SMEMBERS', S)) do
    local h = redis.call('HGETALL', p .. ':sub:' .. sid)
    if #h > 0 then out[#out + 1] = h else redis.call('SREM', S, sid) end
  end
end
return out
)lua";

// ARGV: p, status ('' keep), now_ms, sids...
const std::string kBump = R"lua(
local p, out = ARGV[1], {}
for i = 4, #ARGV do
  local k = p .. ':sub:' .. ARGV[i]
  if redis.call('EXISTS', k) == 1 then
    redis.call('HINCRBY', k, 'version', 1)
    redis.call('HINCRBY', k, 'cseq', 1)
    redis.call('HSET', k, 'last', ARGV[3])
    if ARGV[2] ~= '' then redis.call('HSET', k, 'status', ARGV[2]) end
    out[#out + 1] = redis.call('HGETALL', k)
  end
end
return out
)lua";

const std::string kList = R"lua(
local p, now = ARGV[1], tonumber(ARGV[3])
local out = {}
for _, pres in ipairs(redis.call('SRANDMEMBER', p .. ':pres', tonumber(ARGV[2]))) do
  local npub = 0
  local all = redis.call('HGETALL', p .. ':pub:' .. pres)
  for i = 1, #all, 2 do
    if tonumber(string.match(all[i + 1], '^(%d+)\t')) > now then npub = npub + 1 end
  end
  local nw = redis.call('SCARD', p .. ':subs:' .. pres)
  if npub == 0 and nw == 0 and redis.call('SCARD', p .. ':wsubs:' .. pres) == 0 then
    redis.call('SREM', p .. ':pres', pres)
  else
    out[#out + 1] = {pres, npub, nw}
  end
end
return out
)lua";

Subscription parse_sub(const redisReply *r)
{
	Subscription s;
	if (!r || r->type != REDIS_REPLY_ARRAY) return s;
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		std::string k = reply_str(r->element[i]);
		std::string v = reply_str(r->element[i + 1]);
		auto num = [&v] { return std::strtoll(v.c_str(), nullptr, 10); };
		if (k == "sid") s.sid = v;
		else if (k == "pres") s.presentity = v;
		else if (k == "event") s.event = v;
		else if (k == "watcher") s.watcher = v;
		else if (k == "wuri") s.watcher_uri = v;
		else if (k == "wname") s.display_name = v;
		else if (k == "status") s.status = v;
		else if (k == "callid") s.callid = v;
		else if (k == "rtag") s.remote_tag = v;
		else if (k == "ltag") s.local_tag = v;
		else if (k == "ruri") s.remote_uri = v;
		else if (k == "luri") s.local_uri = v;
		else if (k == "target") s.remote_target = v;
		else if (k == "routes") s.route_set = v;
		else if (k == "socket") s.socket = v;
		else if (k == "lcontact") s.local_contact = v;
		else if (k == "eid") s.event_id = v;
		else if (k == "exp") s.expires_at = num();
		else if (k == "created") s.created_at = num();
		else if (k == "rcseq") s.remote_cseq = num();
		else if (k == "last") s.last_notify_ms = num();
		else if (k == "version") s.version = static_cast<unsigned long long>(num());
		else if (k == "cseq") s.cseq = static_cast<unsigned long long>(num());
	}
	return s;
}

std::vector<Subscription> parse_subs(const redisReply *r, size_t from = 0)
{
	std::vector<Subscription> out;
	if (r && r->type == REDIS_REPLY_ARRAY)
		for (size_t i = from; i < r->elements; ++i) out.push_back(parse_sub(r->element[i]));
	return out;
}

bool parse_pub(const std::string &etag, const std::string &raw, Publication &p)
{
	size_t a = raw.find('\t');
	if (a == std::string::npos) return false;
	size_t b = raw.find('\t', a + 1);
	if (b == std::string::npos) return false;
	size_t c = raw.find('\t', b + 1);
	if (c == std::string::npos) return false;
	p.etag = etag;
	p.expires_at = std::strtoll(raw.c_str(), nullptr, 10);
	p.published_at = std::strtoll(raw.c_str() + a + 1, nullptr, 10);
	p.source = raw.substr(b + 1, c - b - 1);
	p.body = raw.substr(c + 1);
	return true;
}

std::vector<Publication> parse_pubs(const redisReply *r, size_t from)
{
	std::vector<Publication> out;
	if (!r || r->type != REDIS_REPLY_ARRAY) return out;
	for (size_t i = from; i + 1 < r->elements; i += 2) {
		Publication p;
		if (parse_pub(reply_str(r->element[i]), reply_str(r->element[i + 1]), p))
			out.push_back(std::move(p));
	}
	return out;
}

class RedisStore final : public Store {
public:
	RedisStore(Redis &r, std::string prefix) : r_(r), p_(std::move(prefix)) {}

	PublishResult publish(const std::string &pres, PubOp op, const std::string &if_match,
			const std::string &new_etag, const std::string &body, const std::string &source,
			long long expires_at, long long now, int max_publications) override
	{
		const char *ops = op == PubOp::Initial ? "i" : op == PubOp::Refresh ? "r"
				: op == PubOp::Modify ? "m" : "x";
		std::string exp = std::to_string(expires_at), n = std::to_string(now),
				mx = std::to_string(max_publications);
		Reply rep = r_.eval(kPublish, {}, {p_, pres, ops, if_match, new_etag, body, source, exp, n, mx});
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1)
			throw RedisError("Redis: unexpected reply to PUBLISH");
		PublishResult res;
		res.outcome = static_cast<int>(reply_int(rep->element[0]));
		if (res.outcome != 1) return res;
		if (rep->elements < 4) throw RedisError("Redis: unexpected reply to PUBLISH");
		res.gen = static_cast<unsigned long long>(reply_int(rep->element[1]));
		res.changed = reply_int(rep->element[2]) == 1;
		res.watched = reply_int(rep->element[3]) == 1;
		res.live = parse_pubs(rep.get(), 4);
		return res;
	}

	std::vector<Publication> publications(const std::string &pres, long long now,
			unsigned long long &gen) override
	{
		Reply rep = r_.eval(kPublications, {}, {p_, pres, std::to_string(now)});
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3)
			throw RedisError("Redis: unexpected reply to a publication read");
		gen = static_cast<unsigned long long>(reply_int(rep->element[0]));
		return parse_pubs(rep.get(), 3);
	}

	std::vector<std::string> expire_publications(long long now, int limit) override
	{
		Reply rep = r_.eval(kExpirePublications, {}, {p_, std::to_string(now), std::to_string(limit)});
		std::vector<std::string> out;
		if (rep->type == REDIS_REPLY_ARRAY)
			for (size_t i = 0; i < rep->elements; ++i) out.push_back(reply_str(rep->element[i]));
		return out;
	}

	DocumentChange set_document(const std::string &pres, unsigned long long gen,
			const std::string &doc, const std::string &hash, long long now_ms,
			long long interval_ms) override
	{
		std::string g = std::to_string(gen), n = std::to_string(now_ms),
				iv = std::to_string(interval_ms);
		Reply rep = r_.eval(kSetDocument, {}, {p_, pres, g, doc, hash, n, iv});
		DocumentChange res;
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1)
			throw RedisError("Redis: unexpected reply to a document update");
		res.stored = reply_int(rep->element[0]) == 1;
		res.notify = parse_subs(rep.get(), 1);
		return res;
	}

	std::string document(const std::string &pres) override
	{
		return reply_str(r_.command({"HGET", p_ + ":meta:" + pres, "doc"}).get());
	}

	std::vector<Subscription> claim_due(long long now_ms, int limit) override
	{
		Reply rep = r_.eval(kClaimDue, {}, {p_, std::to_string(now_ms), std::to_string(limit)});
		return parse_subs(rep.get());
	}

	bool create(Subscription &s, int max_per_presentity) override
	{
		std::string exp = std::to_string(s.expires_at), rc = std::to_string(s.remote_cseq),
				cr = std::to_string(s.created_at), last = std::to_string(s.last_notify_ms);
		std::string set = p_ + (s.event == "presence.winfo" ? ":wsubs:" : ":subs:") + s.presentity;
		std::string mx = std::to_string(max_per_presentity);
		std::vector<std::string_view> args = {s.sid, exp, s.presentity, p_, mx, "sid", s.sid,
				"pres", s.presentity, "event", s.event, "watcher", s.watcher, "wuri",
				s.watcher_uri, "wname", s.display_name, "status", s.status, "callid", s.callid,
				"rtag", s.remote_tag, "ltag", s.local_tag, "ruri", s.remote_uri, "luri",
				s.local_uri, "target", s.remote_target, "routes", s.route_set, "socket",
				s.socket, "lcontact", s.local_contact, "eid", s.event_id, "exp", exp,
				"created", cr, "rcseq", rc, "last", last};
		Reply rep = r_.eval(kCreate, {p_ + ":sub:" + s.sid, set, p_ + ":sexp"}, args);
		s.version = 0;
		s.cseq = 1;
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2)
			throw RedisError("Redis: unexpected reply to a new subscription");
		if (reply_int(rep->element[0]) < 0) return false;
		s.version = static_cast<unsigned long long>(reply_int(rep->element[0]));
		s.cseq = static_cast<unsigned long long>(reply_int(rep->element[1]));
		return true;
	}

	SubscribeOutcome refresh(Subscription &s, bool remove) override
	{
		std::string rc = std::to_string(s.remote_cseq), exp = std::to_string(s.expires_at),
				last = std::to_string(s.last_notify_ms);
		Reply rep = r_.eval(kRefresh, {p_ + ":sub:" + s.sid, p_ + ":sexp"},
				{p_, s.sid, remove ? "1" : "0", rc, exp, s.remote_target, last});
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1)
			throw RedisError("Redis: unexpected reply to a refresh");
		long long code = reply_int(rep->element[0]);
		if (code == 0) return SubscribeOutcome::NoSuchDialog;
		if (code < 0) return SubscribeOutcome::CseqOutOfOrder;
		s = parse_sub(rep->element[1]);
		return SubscribeOutcome::Ok;
	}

	std::vector<Subscription> claim_expired(long long now, int limit) override
	{
		Reply rep = r_.eval(kClaimExpired, {}, {p_, std::to_string(now), std::to_string(limit)});
		return parse_subs(rep.get());
	}

	std::vector<Subscription> subscriptions(const std::string &pres, const std::string &event) override
	{
		Reply rep = r_.eval(kSubscriptions, {}, {p_, pres, event});
		return parse_subs(rep.get());
	}

	std::vector<Subscription> bump(const std::vector<std::string> &sids, const std::string &status,
			long long now_ms) override
	{
		if (sids.empty()) return {};
		std::string n = std::to_string(now_ms);
		std::vector<std::string_view> args = {p_, status, n};
		for (auto &s : sids) args.push_back(s);
		Reply rep = r_.eval(kBump, {}, args);
		return parse_subs(rep.get());
	}

	bool take(const std::string &sid, bool final_notify, Subscription &out) override
	{
		Reply rep = r_.eval(kTake, {}, {p_, sid, final_notify ? "1" : "0"});
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0) return false;
		out = parse_sub(rep.get());
		return true;
	}

	std::vector<Summary> list(int limit) override
	{
		Reply rep = r_.eval(kList, {}, {p_, std::to_string(limit), std::to_string(time(nullptr))});
		std::vector<Summary> out;
		if (rep->type != REDIS_REPLY_ARRAY) return out;
		for (size_t i = 0; i < rep->elements; ++i) {
			const redisReply *e = rep->element[i];
			if (e->type != REDIS_REPLY_ARRAY || e->elements != 3) continue;
			out.push_back({reply_str(e->element[0]), reply_int(e->element[1]), reply_int(e->element[2])});
		}
		return out;
	}

	long long count_subscriptions() override
	{
		return reply_int(r_.command({"ZCARD", p_ + ":sexp"}).get());
	}

	long long count_publications() override
	{
		return reply_int(r_.command({"ZCARD", p_ + ":pexp"}).get());
	}

private:
	Redis &r_;
	std::string p_;
};

}  // namespace

std::unique_ptr<Store> make_redis_store(Redis &redis, std::string prefix)
{
	return std::make_unique<RedisStore>(redis, std::move(prefix));
}

}  // namespace imps::presence
