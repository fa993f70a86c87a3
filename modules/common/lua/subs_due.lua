-- #include subs_lib
-- ARGV[3] limit. Deferred NOTIFYs due now: ended ones get their final NOTIFY, the others the
-- newest state (a dialog whose previous NOTIFY is still outstanding waits for it).
local ids = redis.call('ZRANGEBYSCORE', DUE, '-inf', NOW, 'LIMIT', 0, tonumber(ARGV[3]))
for _, sid in ipairs(ids) do
  local r = rec_get(sid)
  redis.call('ZREM', DUE, sid)
  if r then
    if busy(r) > NOW then
      defer(r, busy(r), 0)
      rec_put(r)
    elseif ending(r) then
      removed(r, r.ending, true)
    elseif num(r.dirty) == 1 and num(r.nb) > NOW then
      defer(r, num(r.nb), 0)
      rec_put(r)
    elseif num(r.dirty) == 1 then
      turn(r, 0)
    end
  end
end
local nxt = redis.call('ZRANGE', DUE, 0, 0, 'WITHSCORES')
OUT_DUE = nxt[2] and tonumber(nxt[2]) or -1
return reply()
