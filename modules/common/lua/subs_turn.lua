-- #include subs_lib
-- ARGV[3] new status ('' keep), [4] interval (ms), [5] the change for partial state ('' none;
-- '*': the next NOTIFY carries full state, whatever changes waited), then sids, or
-- "pkg:<package>": every record of that package.
local function one(r)
  if ARGV[3] ~= '' then r.status = ARGV[3] end
  if ARGV[5] == '*' then
    r.pend = nil
    r.pfull = 1
    turn(r, tonumber(ARGV[4]), '')
  else
    turn(r, tonumber(ARGV[4]), ARGV[5])
  end
end
for i = 6, #ARGV do
  local pkg = string.match(ARGV[i], '^pkg:(.*)$')
  if pkg then
    for _, r in ipairs(records(pkg)) do one(r) end
  else
    local r = rec_get(ARGV[i])
    if r and not ending(r) then one(r) end
  end
end
return reply()
