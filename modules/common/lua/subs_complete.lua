-- #include subs_lib
-- A NOTIFY's final response, when the module's plain HGET+HDEL of the lease is not enough:
-- a failure, or a dialog that changed while the NOTIFY was outstanding (dirty lease).
-- ARGV[3] sid, [4] CSeq of the NOTIFY, [5] final response code (0: never sent),
-- [6] '1' the response had Retry-After, [7] '1' a timeout (408) removes the subscription.
-- RFC 6665 4.2.2: 481 removes; 408 as configured; other failures unless Retry-After.
local r = rec_get(ARGV[3])
if not r or num(r.cseq) ~= tonumber(ARGV[4]) then return reply() end
local code = tonumber(ARGV[5])
if code == 0 then return reply() end  -- not sent: busy until its deadline, then sent again
lease_drop(r)
if code >= 300 then
  local drop = code == 481 or (code == 408 and ARGV[7] == '1') or (code ~= 408 and ARGV[6] ~= '1')
  if drop or ending(r) then
    removed(r, ending(r) and r.ending or ('failed:' .. code), false)
    return reply()
  end
end
if ending(r) then
  removed(r, r.ending, true)
  return reply()
end
if num(r.dirty) == 1 then
  if num(r.nb) > NOW then
    defer(r, num(r.nb), 0)
    rec_put(r)
  else
    turn(r, 0)
  end
else
  rec_put(r)
end
return reply()
