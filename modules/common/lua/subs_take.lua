-- #include subs_lib
-- ARGV[3] sid, [4] reason, [5] '1': a final NOTIFY is owed. Extra: {1 found | 0}
local r = rec_get(ARGV[3])
if not r or ending(r) then return reply({0}) end
finish(r, ARGV[4], ARGV[5] == '1')
return reply({1})
