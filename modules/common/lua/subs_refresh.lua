-- #include subs_lib
-- ARGV[3] sid, [4] remote CSeq, [5] expires_at (0: unsubscribe), [6] new remote target ('')
-- Extra: {1 ok | 0 no such dialog | -1 CSeq out of order, the record}
local r = rec_get(ARGV[3])
if not r or ending(r) then return reply({0}) end
if tonumber(ARGV[4]) < num(r.rcseq) then return reply({-1}) end
r.rcseq = ARGV[4]
if ARGV[6] ~= '' then r.target = ARGV[6] end
if ARGV[5] == '0' then
  finish(r, 'timeout', true)
  return reply({1, flat(r)})
end
r.exp = ARGV[5]
redis.call('ZADD', SEXP, r.exp, r.sid)
keep(r.exp)
-- a SUBSCRIBE gets full state, whatever partial changes waited
r.pend = nil
r.pfull = 1
turn(r, 0)
return reply({1, flat(r)})
