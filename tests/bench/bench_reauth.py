#!/usr/bin/python3
"""Bounded Redis work (issue 9): the latency of a PUBLISH while the presence server
re-authorizes a whole domain's watchers (kamcmd imps_presence.reauthorize a.example, what a
changed domain rule does). 100,000 presence subscriptions (1000 presentities x 100 watchers)
are written straight into Redis in the module's layout; the rules allow them all, so the
re-authorization reads every one and changes none (no NOTIFY traffic mixes in). A PUBLISH loop
to another presentity measures the answer time before and during the run.

  /usr/bin/python3 tests/bench/bench_reauth.py [--presentities 1000] [--watchers 100]

Run with --modules DIR to measure another build's modules (the old key layout is populated
with --old-layout).
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

import imps_net  # noqa: E402
from benchlib import pct  # noqa: E402
from sipua import UA, Publisher, pidf  # noqa: E402

DOMAIN = "a.example"
PORT = 5083

POPULATE_NEW = r"""
local p, np, nw, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local function bucket(s) return tonumber(string.sub(redis.sha1hex(s), 1, 6), 16) % 16 end
for i = 1, np do
  local pres = 'user' .. i .. '@a.example'
  local subs = p .. ':{' .. pres .. '}:subs'
  local sexp = p .. ':{' .. pres .. '}:sexp'
  for j = 1, nw do
    local sid = string.format('%08d%016d', i, j)
    local rec = {sid = sid, pkg = 'presence', res = pres, watcher = 'w' .. j .. '@a.example',
      wuri = 'sip:w' .. j .. '@a.example', wname = '', status = 'active', callid = 'c' .. sid,
      rtag = 'r', ltag = 'l', ruri = 'sip:w' .. j .. '@a.example', luri = 'sip:' .. pres,
      target = 'sip:w@127.0.0.1:9', routes = '', socket = 'udp:127.0.0.1:5083', lcontact = '',
      eid = '', rcseq = 1, exp = now + 3000, created = now, version = 0, cseq = 1, busy = 0,
      dirty = 0, last = 0, cms = 0, bnode = '-', bep = '0'}
    redis.call('HSET', subs, sid, cjson.encode(rec))
    redis.call('ZADD', sexp, now + 3000, sid)
    local sb = bucket(sid)
    redis.call('HSET', p .. ':sid:{' .. p .. ':sid:' .. sb .. '}', sid, pres)
  end
  local b = bucket(pres)
  redis.call('SADD', p .. ':pres:{' .. p .. ':pres:' .. b .. '}', pres)
  redis.call('ZADD', p .. ':sexp:{' .. p .. ':sexp:' .. b .. '}', now + 3000, pres)
end
return np * nw
"""

POPULATE_OLD = r"""
local p, np, nw, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 1, np do
  local pres = 'user' .. i .. '@a.example'
  for j = 1, nw do
    local sid = string.format('%08d%016d', i, j)
    redis.call('HSET', p .. ':sub:' .. sid, 'sid', sid, 'pres', pres, 'event', 'presence',
      'watcher', 'w' .. j .. '@a.example', 'wuri', 'sip:w' .. j .. '@a.example', 'status', 'active',
      'callid', 'c' .. sid, 'rtag', 'r', 'ltag', 'l', 'ruri', 'sip:w@a.example', 'luri', 'sip:' .. pres,
      'target', 'sip:w@127.0.0.1:9', 'routes', '', 'socket', 'udp:127.0.0.1:5083', 'exp', now + 3000,
      'created', now, 'rcseq', 1, 'last', 0, 'version', 0, 'cseq', 1)
    redis.call('SADD', p .. ':subs:' .. pres, sid)
    redis.call('ZADD', p .. ':sexp', now + 3000, sid)
  end
  redis.call('SADD', p .. ':pres', pres)
end
return np * nw
"""


def redis_cmd(r, *args):
    return subprocess.run(["redis-cli", "-h", r.host, "-p", str(r.port), *map(str, args)],
                          capture_output=True, text=True, timeout=600).stdout


def publish_loop(ua, stop, out):
    pub = Publisher(ua, f"sip:probe@{DOMAIN}")
    pub.password = None
    etag = None
    k = 0
    while not stop.is_set():
        body = pidf("probe", DOMAIN, "open" if k % 2 else "closed", "t1", note=f"n{k}")
        msg = pub._build(body, 600, etag, "application/pidf+xml", "presence", [])
        t0 = time.time()
        r = ua.request(msg, dest=("127.0.0.1", PORT), timeout=10)
        out.append((t0, (time.time() - t0) * 1000.0, r.status))
        etag = r.header("sip-etag") if r.status == 200 else None
        k += 1
        time.sleep(0.02)


def summary(samples):
    lat = sorted(s[1] for s in samples)
    return {"publishes": len(lat), "median_ms": round(pct(lat, 0.5), 2) if lat else None,
            "p99_ms": round(pct(lat, 0.99), 2) if lat else None, "max_ms": round(lat[-1], 2) if lat else None,
            "errors": sum(1 for s in samples if s[2] != 200)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--presentities", type=int, default=1000)
    ap.add_argument("--watchers", type=int, default=100)
    ap.add_argument("--modules", help="another build's modules folder")
    ap.add_argument("--old-layout", action="store_true", help="populate the previous key layout")
    ap.add_argument("--json")
    a = ap.parse_args()
    if a.modules:
        os.environ["IMPS_MODULES_DIR"] = a.modules
        imps_net.BUILD_MODULES = a.modules
    workdir = imps_net.make_workdir("imps-reauth-")
    redis = imps_net.Redis(workdir)
    imps_net.make_presence_db()
    imps_net.presence_rules([("a.example", "a.example", "allow")])
    node = imps_net.ps_node(workdir, "ps-reauth", PORT, {"PS_NOTIFY_INTERVAL": 0, "PS_RULES_POLL": 0,
                                                         "PS_MAX_EXPIRES": 3600})
    if a.modules:
        node.modules = f"{a.modules}:{imps_net.STOCK_MODULES}"
    result = {}
    try:
        redis.start()
        redis.flush()
        t0 = time.time()
        n = redis_cmd(redis, "EVAL", POPULATE_OLD if a.old_layout else POPULATE_NEW, 0, "imps:presence",
                      a.presentities, a.watchers, int(time.time()))
        result["subscriptions"] = int(n.strip() or 0)
        result["populate_s"] = round(time.time() - t0, 1)
        node.start()
        ua = UA("probe", DOMAIN, ("127.0.0.1", PORT))
        stop = threading.Event()
        samples = []
        th = threading.Thread(target=publish_loop, args=(ua, stop, samples), daemon=True)
        th.start()
        time.sleep(3)
        before = list(samples)
        t_start = time.time()
        out = subprocess.run([imps_net.KAMCMD, "-s", f"unix:{node.ctl}", "imps_presence.reauthorize",
                              DOMAIN], capture_output=True, text=True, timeout=900).stdout
        t_end = time.time()
        time.sleep(1)
        stop.set()
        th.join(15)
        during = [s for s in samples if t_start <= s[0] <= t_end]
        result.update({"reauthorize_s": round(t_end - t_start, 2), "rpc": out.strip()[:200],
                       "before": summary(before), "during": summary(during)})
        print(json.dumps(result, indent=2))
        if a.json:
            with open(a.json, "w") as f:
                json.dump(result, f, indent=2)
        ua.close()
    finally:
        node.stop()
        redis.stop()
        imps_net.remove_workdir(workdir)


if __name__ == "__main__":
    main()
