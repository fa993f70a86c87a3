-- A list subscription lets go of a back-end watch: its references ending in "\t<sid>" removed;
-- the last one gone, the watch's record goes too, in the same step (an attach of another
-- process either comes before, and keeps it, or after, and makes it anew).
-- KEYS[1] state hash, KEYS[2] references; ARGV[1] the sid.
-- {1 when the watch is to end | 0, the watch id ('' none), then for a back-end dialog with
-- another domain (remote '1'): remote, callid, ltag, rtag, cseq, rset, target, from, to, owner}
local suffix = '\t' .. ARGV[1]
for _, v in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if string.sub(v, -#suffix) == suffix then redis.call('SREM', KEYS[2], v) end
end
if redis.call('SCARD', KEYS[2]) > 0 then return {0, ''} end
local f = redis.call('HMGET', KEYS[1], 'id', 'remote', 'callid', 'ltag', 'rtag', 'cseq', 'rset', 'target', 'from', 'to', 'owner')
redis.call('DEL', KEYS[1], KEYS[2])
local out = {1}
for i = 1, 11 do out[i + 1] = f[i] or '' end
return out
