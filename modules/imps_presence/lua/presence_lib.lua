-- Publications of one presentity, next to its subscriptions (subs_lib.lua, included first).
-- KEYS[5] publications (hash etag -> "expires\tpublished\tsource\tbody"), KEYS[6] their
-- expiry index (zset etag -> unix seconds), KEYS[7] meta (hash: gen, the generation of the
-- set of publications, which every change moves on).
local PUB, PEXP, META = KEYS[5], KEYS[6], KEYS[7]

-- every live publication, flat etag/raw pairs
local function live_pubs(now)
  local out = {}
  local all = redis.call('HGETALL', PUB)
  for i = 1, #all, 2 do
    local x = string.match(all[i + 1], '^(%d+)\t')
    if tonumber(x) > now then out[#out + 1] = all[i]; out[#out + 1] = all[i + 1] end
  end
  return out
end

-- the presence watchers to notify of a new document: active ones (pending ones see no
-- document, polite-blocked ones always the offline one)
local function notify_watchers(interval)
  for _, r in ipairs(records('presence')) do
    if r.status == 'active' then turn(r, interval) end
  end
end

-- the keys of a presentity outlive its last publication by a day
local function keep_pubs(exp)
  local until_ms = (tonumber(exp) + 86400) * 1000
  for _, k in ipairs({PUB, PEXP, META}) do
    if redis.call('PEXPIRETIME', k) < until_ms then redis.call('PEXPIREAT', k, until_ms) end
  end
end
