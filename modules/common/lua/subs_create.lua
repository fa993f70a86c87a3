-- #include subs_lib
-- ARGV[3] sid, [4] max records of the package, then field/value pairs of the record.
-- A retransmitted initial SUBSCRIBE has the same dialog (sl's To tag is deterministic): the
-- record is kept and its counters go on, never back to 0.
-- Extra: {1 new | 0 kept (and the record) | -1 too many}
local sid = ARGV[3]
local r = rec_get(sid)
if r then
  local created = r.created
  for i = 5, #ARGV, 2 do r[ARGV[i]] = ARGV[i + 1] end
  r.created = created
  redis.call('ZADD', SEXP, r.exp, sid)
  -- a SUBSCRIBE gets full state, whatever partial changes waited
  r.pend = nil
  r.pfull = 1
  turn(r, 0)
  return reply({0, flat(r)})
end
r = {}
for i = 5, #ARGV, 2 do r[ARGV[i]] = ARGV[i + 1] end
local n = 0
for _, raw in ipairs(redis.call('HVALS', SUBS)) do
  local o = cjson.decode(raw)
  if o.pkg == r.pkg and (o.ending == nil or o.ending == '') then n = n + 1 end
end
if n >= tonumber(ARGV[4]) then return reply({-1}) end
r.sid = sid
r.cms = NOW
r.version = 0
r.cseq = 1
lease_take(r)
r.dirty = 0
r.last = NOW
rec_put(r)
redis.call('ZADD', SEXP, r.exp, sid)
keep(r.exp)
OUT_SEND[1] = flat(r)
return reply({1})
