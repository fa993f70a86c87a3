-- A list subscription takes a reference on a back-end watch, in one step with the watch's
-- record. KEYS[1] the watch's state hash, KEYS[2] its references (one hash tag);
-- ARGV[1] the reference ("<resource>\t<sid>"), [2] member URI, [3] presentity, [4] owner.
-- {1 when the watch is new (no reference before) | 0, the watch id held ('' none)}
local before = redis.call('SCARD', KEYS[2])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'member', ARGV[2], 'presentity', ARGV[3], 'owner', ARGV[4])
local id = redis.call('HGET', KEYS[1], 'id') or ''
return {before == 0 and 1 or 0, id}
