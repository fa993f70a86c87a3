-- KEYS[1] publications, KEYS[2] meta of a presentity; ARGV[1] now (s).
-- {gen, live publications flat...}
local out = {tonumber(redis.call('HGET', KEYS[2], 'gen') or '0')}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local x = string.match(all[i + 1], '^(%d+)\t')
  if tonumber(x) > tonumber(ARGV[1]) then out[#out + 1] = all[i]; out[#out + 1] = all[i + 1] end
end
return out
