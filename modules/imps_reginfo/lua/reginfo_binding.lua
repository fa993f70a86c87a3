-- #include subs_lib
-- A change of one usrloc binding, and the NOTIFYs it implies, in one atomic step.
-- KEYS[5] the AoR's binding metadata: hash contact id -> "first\texpires\tfirst_cseq\t
-- display\tparams" (the last two escaped); first and first_cseq survive every update.
-- ARGV[3] contact id, [4] '1' removed, [5] first registered, [6] expires, [7] display and
-- params, [8] '1' keep the stored display and params, [9] ttl (0: never expires),
-- [10] first CSeq, [11] when the change happened (ms): a subscription made after it has
-- its state in its first NOTIFY already. Extra: {previous metadata or '', every binding's metadata (only when a
-- watcher exists)}; the reg subscriptions whose NOTIFY goes now in the send list.
local B = KEYS[5]
local old = redis.call('HGET', B, ARGV[3])
local first, fcseq, rest = ARGV[5], ARGV[10], ARGV[7]
if old then
  local f, e, fc, r = string.match(old, '^(%d+)\t(%d+)\t(%d+)\t(.*)$')
  if f then
    first = f
    fcseq = fc
    if ARGV[8] == '1' then rest = r end
  end
end
if ARGV[4] == '1' then
  redis.call('HDEL', B, ARGV[3])
else
  redis.call('HSET', B, ARGV[3], first .. '\t' .. ARGV[6] .. '\t' .. fcseq .. '\t' .. rest)
  if ARGV[9] == '0' then redis.call('PERSIST', B) else redis.call('EXPIRE', B, ARGV[9]) end
end
local regs = records('reg')
local all = {}
if #regs > 0 then all = redis.call('HGETALL', B) end
local at = tonumber(ARGV[11])
for _, r in ipairs(regs) do
  if num(r.cms) <= at then turn(r, 0) end
end
return reply({old or '', all})
