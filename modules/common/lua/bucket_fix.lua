-- KEYS[1] a bucket of a global index (zset resource -> when). ARGV[1] resource, [2] the
-- score it had when claimed, [3] its next one (-1: none). Writers only ever lower a score
-- (ZADD LT); the timer raises it here unless a writer changed it meanwhile.
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s or tonumber(s) ~= tonumber(ARGV[2]) then return 0 end
if tonumber(ARGV[3]) < 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
