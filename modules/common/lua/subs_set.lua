-- #include subs_lib
-- ARGV[3] sid, [4] status: the record's status changes, no NOTIFY turn is taken (the caller
-- is about to send the NOTIFY it holds the numbers of). Extra: {1 found | 0}
local r = rec_get(ARGV[3])
if not r or ending(r) then return reply({0}) end
r.status = ARGV[4]
rec_put(r)
return reply({1})
