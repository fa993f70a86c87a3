-- #include subs_lib
-- ARGV[3] now (unix seconds), [4] limit. Extra: {next expiry of the resource, -1: none}
local ids = redis.call('ZRANGEBYSCORE', SEXP, '-inf', ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
for _, sid in ipairs(ids) do
  local r = rec_get(sid)
  if r then
    finish(r, r.status == 'pending' and 'giveup' or 'timeout', true)
  else
    redis.call('ZREM', SEXP, sid)
  end
end
local nxt = redis.call('ZRANGE', SEXP, 0, 0, 'WITHSCORES')
return reply({nxt[2] and tonumber(nxt[2]) or -1})
