-- The subscription records of one resource, shared by every event package's scripts.
-- KEYS[1] the resource's records (hash sid -> JSON), KEYS[2] its expiry index (zset sid ->
-- unix seconds), KEYS[3] its deferred NOTIFYs (zset sid -> ms), KEYS[4] its outstanding
-- NOTIFYs (hash "<sid>:<cseq>" -> "<until ms> <node> <epoch> <dirty 0|1>": the lease, kept
-- apart from the record so that a NOTIFY's 2xx is recorded by a plain HGET+HDEL in MULTI,
-- with a script only when the dialog changed meanwhile). ARGV[1] now (ms), ARGV[2]
-- "<busy> <node> <epoch>": how long a sent NOTIFY keeps the dialog busy at most (ms), and
-- which node (and since when it runs) sends it. Every script replies
-- {next_due_ms (-1: nothing deferred), {records to send now}, {records removed}, ...}.
-- A dialog has at most one NOTIFY outstanding: a change meanwhile marks it dirty, and the
-- NOTIFY's final response (complete) sends the newest state.
local SUBS, SEXP, DUE, LEASE = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local NOW = tonumber(ARGV[1])
local BUSY, NODE, EPOCH = string.match(ARGV[2], '^(%d+) (%S*) (%S*)$')
BUSY = tonumber(BUSY)
local OUT_SEND, OUT_REMOVED, OUT_DUE = {}, {}, -1

local function rec_get(sid)
  local raw = redis.call('HGET', SUBS, sid)
  if not raw then return nil end
  return cjson.decode(raw)
end

local function rec_put(r) redis.call('HSET', SUBS, r.sid, cjson.encode(r)) end

local function num(v) return tonumber(v) or 0 end

local function flat(r)
  local o = {}
  for k, v in pairs(r) do o[#o + 1] = k; o[#o + 1] = tostring(v) end
  return o
end

local function ending(r) return r.ending ~= nil and r.ending ~= '' end

-- The lease of r's outstanding NOTIFY (read once per script): {f = field, dl = until (ms,
-- 0: none), node, ep, dirty}. One sent by this node before it restarted never gets its
-- response reported, and one past its deadline is given up: neither is outstanding.
local LEASES = {}
local function lease_field(r) return r.sid .. ':' .. num(r.cseq) end
local function lease_of(r)
  local f = lease_field(r)
  local l = LEASES[r.sid]
  if l and l.f == f then return l end
  l = {f = f, dl = 0}
  local v = redis.call('HGET', LEASE, f)
  if v then
    local dl, node, ep, dirty = string.match(v, '^(%d+) (%S*) (%S*) (%d)$')
    dl = tonumber(dl) or 0
    if (node == NODE and ep ~= EPOCH) or dl <= NOW then
      redis.call('HDEL', LEASE, f)
    else
      l.dl, l.node, l.ep, l.dirty = dl, node, ep, dirty
    end
  end
  LEASES[r.sid] = l
  return l
end

-- until when r's NOTIFY is outstanding (0: it is not)
local function busy(r) return lease_of(r).dl end

-- the dialog changed while its NOTIFY is outstanding: its response must run complete
local function lease_dirty(r)
  local l = lease_of(r)
  if l.dl > 0 and l.dirty ~= '1' then
    l.dirty = '1'
    redis.call('HSET', LEASE, l.f, l.dl .. ' ' .. l.node .. ' ' .. l.ep .. ' 1')
  end
end

-- r's NOTIFY (numbers just handed out) is outstanding until its response or the deadline
local function lease_take(r)
  local f = lease_field(r)
  redis.call('HSET', LEASE, f, (NOW + BUSY) .. ' ' .. NODE .. ' ' .. EPOCH .. ' 0')
  redis.call('PEXPIRE', LEASE, BUSY + 3600000)
  LEASES[r.sid] = {f = f, dl = NOW + BUSY, node = NODE, ep = EPOCH, dirty = '0'}
  -- records of before the lease hash carried it themselves
  r.busy, r.bnode, r.bep = nil, nil, nil
end

local function lease_drop(r)
  redis.call('HDEL', LEASE, lease_field(r))
  LEASES[r.sid] = nil
end

-- a NOTIFY owed later: at `at` (ms) at the latest, never before not_before
local function defer(r, at, not_before)
  r.dirty = 1
  lease_dirty(r)
  if not_before > num(r.nb) then r.nb = not_before end
  redis.call('ZADD', DUE, 'LT', at, r.sid)
  if redis.call('ZSCORE', DUE, r.sid) then
    local s = tonumber(redis.call('ZSCORE', DUE, r.sid))
    if OUT_DUE < 0 or s < OUT_DUE then OUT_DUE = s end
  end
end

-- hands out the numbers of the next NOTIFY (called when none is outstanding: busy(r) has
-- dropped a lease that ran out); with lease, the dialog is busy until its final response
local function number(r, lease)
  r.version = num(r.version) + 1
  r.cseq = num(r.cseq) + 1
  if lease then lease_take(r) end
  r.dirty = 0
  r.nb = 0
  r.last = NOW
  redis.call('ZREM', DUE, r.sid)
end

local function removed(r, reason, final)
  redis.call('HDEL', SUBS, r.sid)
  redis.call('ZREM', SEXP, r.sid)
  redis.call('ZREM', DUE, r.sid)
  lease_drop(r)
  if final then number(r, false) end  -- nothing waits for the final NOTIFY's response
  r.ending = reason
  r.final = final and 1 or 0
  OUT_REMOVED[#OUT_REMOVED + 1] = flat(r)
end

-- the subscription ends; with final, its last NOTIFY goes after the outstanding one
local function finish(r, reason, final)
  redis.call('ZREM', SEXP, r.sid)
  if final and busy(r) > NOW then
    r.ending = reason
    defer(r, busy(r), 0)
    rec_put(r)
    return
  end
  removed(r, reason, final)
end

-- A change a package describes (partial state) that waits with a deferred NOTIFY: kept on
-- the record, up to 16 KiB (beyond, the NOTIFY carries full state).
local function keep_delta(r, delta)
  if delta == nil or delta == '' or r.pfull == 1 then return end
  local p = (r.pend or '') .. delta .. '\n'
  if #p > 16384 then r.pend = nil; r.pfull = 1 else r.pend = p end
end

-- a NOTIFY of r's current state: sent now (numbers handed out) or deferred; interval: not
-- sooner than that after the previous one (ms, 0: no bound); delta: the change, for a
-- package that sends partial state. The record sent carries every delta that waited
-- ('pend'; 'pfull' when they did not fit). Returns true when sent now.
local function turn(r, interval, delta)
  if ending(r) then return false end
  if busy(r) > NOW then
    defer(r, busy(r), interval > 0 and num(r.last) + interval or 0)
    keep_delta(r, delta)
    rec_put(r)
    return false
  end
  if interval > 0 and num(r.last) + interval > NOW then
    defer(r, num(r.last) + interval, num(r.last) + interval)
    keep_delta(r, delta)
    rec_put(r)
    return false
  end
  number(r, true)
  local pend, pfull = r.pend, r.pfull
  r.pend = nil
  r.pfull = nil
  rec_put(r)
  local out = flat(r)
  if pend then out[#out + 1] = 'pend'; out[#out + 1] = pend end
  if pfull then out[#out + 1] = 'pfull'; out[#out + 1] = '1' end
  OUT_SEND[#OUT_SEND + 1] = out
  return true
end

-- every record of the resource (of one package when pkg is not '')
local function records(pkg)
  local out = {}
  for _, raw in ipairs(redis.call('HVALS', SUBS)) do
    local r = cjson.decode(raw)
    if (pkg == '' or r.pkg == pkg) and not ending(r) then out[#out + 1] = r end
  end
  return out
end

-- the resource's keys outlive its last subscription by an hour (never shortened)
local function keep(exp)
  local until_ms = tonumber(exp) * 1000 + 3600000
  for _, k in ipairs({SUBS, SEXP}) do
    if redis.call('PEXPIRETIME', k) < until_ms then redis.call('PEXPIREAT', k, until_ms) end
  end
end

local function reply(extra)
  local o = {OUT_DUE, OUT_SEND, OUT_REMOVED}
  if extra then for _, v in ipairs(extra) do o[#o + 1] = v end end
  return o
end
