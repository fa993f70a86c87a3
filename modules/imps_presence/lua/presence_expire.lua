-- #include subs_lib
-- #include presence_lib
-- Timer: the publications of one presentity expired at ARGV[3] (unix seconds) go, and its
-- active watchers are notified of the new document (ARGV[4]: interval, ms).
-- Extra: {removed count, gen, next publication expiry or -1, live publications flat...}
local now = tonumber(ARGV[3])
local ids = redis.call('ZRANGEBYSCORE', PEXP, '-inf', now)
local n = 0
for _, etag in ipairs(ids) do
  redis.call('ZREM', PEXP, etag)
  local raw = redis.call('HGET', PUB, etag)
  if raw and tonumber(string.match(raw, '^(%d+)\t')) <= now then
    redis.call('HDEL', PUB, etag)
    n = n + 1
  end
end
local gen = tonumber(redis.call('HGET', META, 'gen') or '0')
if n > 0 then
  gen = redis.call('HINCRBY', META, 'gen', 1)
  notify_watchers(tonumber(ARGV[4]))
end
local nxt = redis.call('ZRANGE', PEXP, 0, 0, 'WITHSCORES')
local out = {n, gen, nxt[2] and tonumber(nxt[2]) or -1}
for _, v in ipairs(live_pubs(now)) do out[#out + 1] = v end
return reply(out)
