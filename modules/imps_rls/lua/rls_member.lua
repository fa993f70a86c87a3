-- A back-end watch's NOTIFY stored, unless no list holds the watch any more (then nothing is
-- written: no record comes back for a watch that was let go). KEYS[1] state hash, KEYS[2]
-- references; ARGV[1] state, [2] reason, [3] content type, [4] body.
-- {-1 not held | 0 unchanged | 1 changed, the member URI}
if redis.call('SCARD', KEYS[2]) == 0 then return {-1, ''} end
local old = redis.call('HMGET', KEYS[1], 'state', 'body', 'member')
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'reason', ARGV[2], 'ctype', ARGV[3], 'body', ARGV[4])
local same = old[1] == ARGV[1] and old[2] == ARGV[4]
return {same and 0 or 1, old[3] or ''}
