-- #include subs_lib
-- ARGV[3] sid, [4] value, [5] field ('status' when absent, or 'data'): the record's status (or
-- its package data) changes, no NOTIFY turn is taken (the caller is about to send the NOTIFY
-- it holds the numbers of, or none). Extra: {1 found | 0}
local r = rec_get(ARGV[3])
if not r or ending(r) then return reply({0}) end
local field = ARGV[5] or 'status'
if field ~= 'status' and field ~= 'data' then return reply({0}) end
r[field] = ARGV[4]
rec_put(r)
return reply({1})
