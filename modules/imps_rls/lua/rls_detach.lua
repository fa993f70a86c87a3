-- A list subscription lets go of a back-end watch: its references ending in "\t<sid>" removed;
-- the last one gone, the watch's record goes too, in the same step (an attach of another
-- process either comes before, and keeps it, or after, and makes it anew).
-- KEYS[1] state hash, KEYS[2] references; ARGV[1] the sid.
-- {1 when the watch is to end | 0, the watch id ('' none)}
local suffix = '\t' .. ARGV[1]
for _, v in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if string.sub(v, -#suffix) == suffix then redis.call('SREM', KEYS[2], v) end
end
if redis.call('SCARD', KEYS[2]) > 0 then return {0, ''} end
local id = redis.call('HGET', KEYS[1], 'id') or ''
redis.call('DEL', KEYS[1], KEYS[2])
return {1, id}
