-- #include subs_lib
-- #include presence_lib
-- One PUBLISH (RFC 3903) and the NOTIFYs it implies, in one atomic step: a stale or unknown
-- If-Match changes nothing, and of two changes on one ETag exactly one finds it.
-- ARGV[3] op (i initial, r refresh, m modify, x remove), [4] SIP-If-Match, [5] new ETag,
-- [6] body, [7] source, [8] expires_at, [9] now (s), [10] max publications, [11] interval
-- between NOTIFYs of one watcher (ms), [12] '1': a replay of a PUBLISH whose reply was lost.
-- Extra: {outcome (1 done, 0 If-Match unknown or expired, -1 too many), gen, changed,
-- next publication expiry or -1, expired publications removed, live publications flat...}
local op, im, ne = ARGV[3], ARGV[4], ARGV[5]
local PURGED = 0  -- expired publications removed here (the count of live ones moves by as many)
local now, exp = tonumber(ARGV[9]), ARGV[8]
-- A replay (the module sent this script before and lost the reply): a publication stored
-- under the new ETag means the first run was applied; nothing is applied twice and the
-- answer is the same. (Not for a client's own PUBLISH: a used If-Match gets 412.)
if ARGV[12] == '1' and ne ~= '' then
  local raw = redis.call('HGET', PUB, ne)
  if raw then
    local x, rest = string.match(raw, '^(%d+)(\t.*)$')
    if x and tonumber(x) > now then
      redis.call('HSET', PUB, ne, exp .. rest)
      redis.call('ZADD', PEXP, exp, ne)
      keep_pubs(exp)
      local nxt = redis.call('ZRANGE', PEXP, 0, 0, 'WITHSCORES')
      local gen = tonumber(redis.call('HGET', META, 'gen') or '0')
      return reply({1, gen, 0, nxt[2] and tonumber(nxt[2]) or -1, 0})
    end
  end
end
local rec
if op ~= 'i' then
  local raw = redis.call('HGET', PUB, im)
  if not raw then return reply({0}) end
  local x, t, s, b = string.match(raw, '^(%d+)\t(%d+)\t([^\t]*)\t(.*)$')
  if not x or tonumber(x) <= now then return reply({0}) end
  redis.call('HDEL', PUB, im)
  redis.call('ZREM', PEXP, im)
  rec = {t, s, b}
else
  if redis.call('HLEN', PUB) >= tonumber(ARGV[10]) then
    -- collect expired ones before refusing
    local all = redis.call('HGETALL', PUB)
    for i = 1, #all, 2 do
      local x = string.match(all[i + 1], '^(%d+)\t')
      if tonumber(x) <= now then
        redis.call('HDEL', PUB, all[i]); redis.call('ZREM', PEXP, all[i])
        PURGED = PURGED + 1
      end
    end
    if redis.call('HLEN', PUB) >= tonumber(ARGV[10]) then return reply({-1, 0, 0, -1, PURGED}) end
  end
end
local changed = 1
-- a modify with the very body the publication has is a refresh (no new composition)
if op == 'm' and rec[3] == ARGV[6] then op = 'r' end
if op == 'r' then
  changed = 0
  redis.call('HSET', PUB, ne, exp .. '\t' .. rec[1] .. '\t' .. rec[2] .. '\t' .. rec[3])
elseif op ~= 'x' then
  redis.call('HSET', PUB, ne, exp .. '\t' .. ARGV[9] .. '\t' .. ARGV[7] .. '\t' .. ARGV[6])
end
local gen = redis.call('HINCRBY', META, 'gen', changed)
if op ~= 'x' then
  redis.call('ZADD', PEXP, exp, ne)
  keep_pubs(exp)  -- after META exists: its expiry is set too
end
if changed == 1 then notify_watchers(tonumber(ARGV[11])) end
local nxt = redis.call('ZRANGE', PEXP, 0, 0, 'WITHSCORES')
local out = {1, gen, changed, nxt[2] and tonumber(nxt[2]) or -1, PURGED}
if changed == 1 then for _, v in ipairs(live_pubs(now)) do out[#out + 1] = v end end
return reply(out)
