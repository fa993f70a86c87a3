-- #include subs_lib
-- ARGV[3] package ('' every one). Extra: the records, flat.
local out = {}
for _, r in ipairs(records(ARGV[3])) do out[#out + 1] = flat(r) end
return reply(out)
