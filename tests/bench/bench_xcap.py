#!/usr/bin/python3
"""XCAP benchmark: HTTP load with wrk against imps_xcap (tests/bench/xcap-bench.cfg) and against
Kamailio's stock xcap_server module (tests/bench/stock-xcap.cfg), both with SQLite through
db_sqlite and the same Kamailio settings, in one run. One user's resource-lists document of
--entries entries (200), preloaded with PUT; then, for each kind of request, ours and then stock:

  get       GET of the whole document, no credentials (ours: the benchmark's address is a
            trusted reader; stock: GET is not authenticated) -> 200 with the document
  cond_get  the same with If-None-Match: the current ETag -> 304
  put       PUT of the whole document (replace, the same content) with If-Match: the current
            ETag and HTTP Digest credentials (the auth module's pv_www_authenticate with a fixed
            password, on both sides) -> 200 with a new ETag. Every connection replaces its own
            document of the user (bench-0, bench-1, ...) and sends the ETag of its last reply,
            so no PUT fails its precondition because of another connection; wrk's Lua has no
            per-connection state, so PUT runs one connection per wrk thread.
  put_1     the same PUT from one connection: no two writers wait for SQLite's lock

Each side's answers are checked first (status, body, ETag); a side that cannot do one is
reported and measured as it is. Each measurement: a warm-up of --warmup s, then --seconds s of
wrk --latency with --connections connections (--threads threads; for put one thread per
connection). Reports requests/s, latency percentiles, the server's CPU per request (all its
Kamailio processes) and the ratio ours/stock.

usage: bench_xcap.py [--seconds 8] [--warmup 1] [--connections 8] [--threads 2]
                     [--entries 200] [--db-dir DIR] [--json out.json]
"""

import argparse
import hashlib
import http.client
import json
import os
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

import imps_net  # noqa: E402
import xcapclient  # noqa: E402
from bench_reginfo import cpu_seconds  # noqa: E402

P = imps_net.PLAN
HOST = P["IMPS_IP_A"]
DOMAIN = P["IMPS_DOMAIN_A"]
ROOT_PATH = P["IMPS_XCAP_ROOT_PATH"]
OURS_PORT, STOCK_PORT = 8095, 8096  # the substdefs of the two cfg files
USER, PASSWORD = "bench", "bench-secret"  # XCAP_BENCH_PASSWORD of both cfg files
XUI = f"sip:{USER}@{DOMAIN}"
RL_MIME = "application/resource-lists+xml"
RL_NS = "urn:ietf:params:xml:ns:resource-lists"
GET_DOC = f"resource-lists/users/{XUI}/index"
STOCK_SQL = "/usr/share/kamailio/db_sqlite"
OPS = ("get", "cond_get", "put", "put_1")
OP_NAMES = {"get": "GET (200, the document)", "cond_get": "conditional GET (If-None-Match, 304)",
            "put": "PUT (If-Match, replace, Digest)",
            "put_1": "PUT as above, 1 connection"}
EXPECT = {"get": 200, "cond_get": 304, "put": 200, "put_1": 200}


def document(entries):
    """A resource-lists document of one list with `entries` entries (display names)."""
    items = "".join(f'    <entry uri="sip:buddy{i:04d}@{DOMAIN}">'
                    f'<display-name>Buddy {i:04d}</display-name></entry>\n' for i in range(entries))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<resource-lists xmlns="{RL_NS}">\n  <list name="buddies">\n'
            f'    <display-name>Buddies</display-name>\n{items}  </list>\n</resource-lists>\n')


def count_entries(body):
    try:
        return len(ET.fromstring(body).findall(f".//{{{RL_NS}}}entry"))
    except ET.ParseError:
        return -1


def make_stock_db(path):
    """A fresh SQLite file with Kamailio's version table and the xcap table of Debian's
    presence-create.sql (xcap_server's schema, table version 4)."""
    if os.path.exists(path):
        os.unlink(path)
    with open(os.path.join(STOCK_SQL, "presence-create.sql")) as f:
        pres = f.read()
    m = re.search(r"CREATE TABLE xcap \(.*?INSERT INTO version \(table_name, table_version\) "
                  r"values \('xcap','\d+'\);", pres, re.S | re.I)
    if not m:
        raise RuntimeError(f"no xcap table in {STOCK_SQL}/presence-create.sql")
    db = sqlite3.connect(path)
    with open(os.path.join(STOCK_SQL, "standard-create.sql")) as f:
        db.executescript(f.read())
    db.executescript(m.group(0))
    db.commit()
    db.close()
    return path


def target(path):
    return f"{ROOT_PATH}/{path}"


def digest_authorization(port, method, path):
    """Authorization for `method` on `path` with the challenge of one unauthenticated PUT
    (answered 401 before any XCAP work on both sides). Both cfgs run the auth module without
    nonce counting (its default) and with nonce_expire 3600, so the same header verifies on
    every request of a run: each request costs the server the same Digest check."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("PUT", target(path), body=b"", headers={"Content-Type": RL_MIME})
        r = conn.getresponse()
        r.read()
        ch = r.getheader("WWW-Authenticate") or ""
    finally:
        conn.close()
    if r.status != 401 or not ch.lower().startswith("digest"):
        raise RuntimeError(f"no Digest challenge from port {port}: {r.status} {ch!r}")
    prm = dict(re.findall(r'(\w+)="?([^",]*)"?', ch))
    h = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
    ha1 = h(f"{USER}:{prm['realm']}:{PASSWORD}")
    ha2 = h(f"{method}:{target(path)}")
    nc, cnonce = "00000001", "b3e2c0ffee000001"
    resp = h(f"{ha1}:{prm['nonce']}:{nc}:{cnonce}:auth:{ha2}")
    return (f'Digest username="{USER}", realm="{prm["realm"]}", nonce="{prm["nonce"]}", '
            f'uri="{target(path)}", response="{resp}", algorithm=MD5, qop=auth, nc={nc}, '
            f'cnonce="{cnonce}"' + (f', opaque="{prm["opaque"]}"' if "opaque" in prm else ""))


class Side:
    """One system under test: its Kamailio, its port, its documents' credentials."""

    def __init__(self, name, kam, port):
        self.name, self.kam, self.port = name, kam, port
        self.auth = {}  # document path -> Authorization for PUT
        self.checks = {}
        self.client = xcapclient.Client(HOST, port, root_path=ROOT_PATH)

    def req(self, method, path, body=None, headers=None):
        return self.client.request(method, path, body=body, headers=headers)

    def etag(self, path):
        r = self.req("GET", path)
        if r.status != 200:
            raise RuntimeError(f"{self.name}: GET {path}: {r}")
        return r.etag


def preload_and_check(side, doc, put_docs, entries):
    """Stores the documents (PUT without a precondition), then checks each kind of request
    once. Returns {op: (ok, what it answered)}."""
    body = doc.encode()
    for path in [GET_DOC] + put_docs:
        side.auth[path] = digest_authorization(side.port, "PUT", path)
        r = side.req("PUT", path, body, {"Content-Type": RL_MIME, "Authorization": side.auth[path]})
        if r.status not in (200, 201):
            raise RuntimeError(f"{side.name}: preloading {path}: {r}")
    checks = {}
    r = side.req("GET", GET_DOC)
    n = count_entries(r.body) if r.status == 200 else 0
    checks["get"] = (r.status == 200 and r.body == body and n == entries and bool(r.etag),
                     f"{r.status}, {len(r.body)} bytes, {n} entries, byte-identical "
                     f"{r.body == body}, ETag {r.etag}, Content-Type {r.header('Content-Type')}")
    etag = r.etag
    r = side.req("GET", GET_DOC, headers={"If-None-Match": f'"{etag}"'})
    checks["cond_get"] = (r.status == 304 and not r.body,
                          f"{r.status}, {len(r.body)} bytes, ETag {r.etag}")
    p = put_docs[0]
    old = side.etag(p)
    hdrs = {"Content-Type": RL_MIME, "Authorization": side.auth[p], "If-Match": f'"{old}"'}
    r = side.req("PUT", p, body, hdrs)
    new = r.etag
    g = side.req("GET", p)
    r2 = side.req("PUT", p, body, hdrs)  # the same Authorization again, now a stale ETag
    checks["put"] = (r.status == 200 and bool(new) and new != old and g.etag == new
                     and g.body == body,
                     f"{r.status} with a new ETag {new} (GET then: {g.status}, that ETag "
                     f"{g.etag == new}, byte-identical {g.body == body}); the same PUT "
                     f"again with the old ETag: {r2.status}")
    side.checks = {k: {"ok": ok, "answer": what} for k, (ok, what) in checks.items()}
    return checks


LUA_COMMON = r"""
local threads = {}
local next_index = 1

function setup(thread)
   thread:set("index", next_index)
   next_index = next_index + 1
   table.insert(threads, thread)
end

statuses = {}
bad_body = 0

local function count(status)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local st, bad = {}, 0
   for _, t in ipairs(threads) do
      for k, v in pairs(t:get("statuses")) do st[k] = (st[k] or 0) + v end
      bad = bad + t:get("bad_body")
   end
   local parts = {}
   for k, v in pairs(st) do table.insert(parts, string.format('"%d": %d', k, v)) end
   local e = summary.errors
   io.write(string.format('WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}, '
      .. '"statuses": {%s}, "bad_body": %d}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
      e.timeout, latency.mean, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, table.concat(parts, ", "), bad))
end
"""


def lua_str(s):
    return "[==[" + s + "]==]"


def get_lua(etag, expect_len):
    inm = f'wrk.headers["If-None-Match"] = {lua_str(chr(34) + etag + chr(34))}\n' if etag else ""
    return (f'wrk.method = "GET"\n{inm}' + LUA_COMMON + f"""
local expect_len = {expect_len}
function response(status, headers, body)
   count(status)
   if status == 200 and #body ~= expect_len then bad_body = bad_body + 1 end
end
""")


def put_lua(docs, body_file):
    """docs: [(target, Authorization, ETag)], one per wrk thread (= connection)."""
    rows = ",\n".join(f"   {{{lua_str(t)}, {lua_str(a)}, {lua_str(chr(34) + e + chr(34))}}}"
                      for t, a, e in docs)
    return LUA_COMMON + f"""
local docs = {{
{rows}
}}
local body, me, etag
function init(args)
   local f = assert(io.open({lua_str(body_file)}, "rb"))
   body = f:read("*a")
   f:close()
   me = docs[index]
   etag = me[3]
end

function request()
   return wrk.format("PUT", me[1], {{["Content-Type"] = "{RL_MIME}", ["If-Match"] = etag,
                                     ["Authorization"] = me[2]}}, body)
end

function response(status, headers, rbody)
   count(status)
   if status == 200 then
      etag = headers["ETag"] or headers["Etag"] or etag
   end
end
"""


def run_wrk(workdir, tag, lua, port, threads, connections, seconds):
    script = os.path.join(workdir, f"{tag}.lua")
    with open(script, "w") as f:
        f.write(lua)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
                        "--latency", "--timeout", "5s", "-s", script,
                        f"http://{HOST}:{port}{ROOT_PATH}/{GET_DOC}"],
                       capture_output=True, text=True, timeout=seconds + 60)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(os.path.join(workdir, f"{tag}.out"), "w") as f:
        f.write(r.stdout + r.stderr)
    m = re.search(r"^WRKJSON (.*)$", r.stdout, re.M)
    if r.returncode != 0 or not m:
        raise RuntimeError(f"wrk {tag} failed ({r.returncode}): {r.stdout[-2000:]}{r.stderr[-2000:]}")
    out = json.loads(m.group(1))
    out["wrk_cpu_s"] = round((ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime), 2)
    return out


def measure(workdir, side, op, args, doc_len, put_docs, body_file, warm):
    """One wrk run of op against side (warm: a short one first, not counted)."""
    if op == "put":
        threads = connections = args.connections
    elif op == "put_1":
        threads = connections = 1
    else:
        threads, connections = args.threads, args.connections
    seconds = args.warmup if warm else args.seconds

    def lua():
        if op == "get":
            return get_lua(None, doc_len)
        if op == "cond_get":
            return get_lua(side.etag(GET_DOC), doc_len)
        docs = [(target(p), side.auth[p], side.etag(p)) for p in put_docs[:connections]]
        return put_lua(docs, body_file)

    tag = f"{side.name}_{op}" + ("_warmup" if warm else "")
    cpu0 = cpu_seconds(pgids=(side.kam.proc.pid,))
    w = run_wrk(workdir, tag, lua(), side.port, threads, connections, seconds)
    cpu = cpu_seconds(pgids=(side.kam.proc.pid,)) - cpu0
    n = w["requests"]
    secs = w["duration_us"] / 1e6
    statuses = {int(k): v for k, v in w["statuses"].items()}
    good = statuses.get(EXPECT[op], 0)
    res = {"threads": threads, "connections": connections, "seconds": round(secs, 2),
           "requests": n, "rps": round(n / secs, 1) if secs else 0,
           "good_rps": round(good / secs, 1) if secs else 0,
           "statuses": dict(sorted(statuses.items())), "bad_body": w["bad_body"],
           "socket_errors": {k: v for k, v in w["errors"].items() if v and k != "status"},
           "latency_ms": {k: round(v / 1000, 2) for k, v in w["latency_us"].items()},
           "server_cpu_s": round(cpu, 2),
           "server_cpu_ms_per_request": round(cpu * 1000 / n, 3) if n else None,
           "server_cores": round(cpu / secs, 2) if secs else None,
           "wrk_cpu_s": w["wrk_cpu_s"]}
    res["clean"] = (good == n and n > 0 and not res["bad_body"] and not res["socket_errors"])
    return res


def fmt_statuses(st):
    return ", ".join(f"{v} × {k}" for k, v in st.items()) or "none"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=8, help="measured seconds per step")
    ap.add_argument("--warmup", type=int, default=1, help="seconds of load before each step")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads for the GETs")
    ap.add_argument("--entries", type=int, default=200)
    ap.add_argument("--db-dir", help="where the two SQLite files go (default: a fresh "
                    "directory in /dev/shm, removed at the end)")
    ap.add_argument("--json")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: make deps (Debian package wrk)")

    workdir = imps_net.make_workdir("imps-bench-xcap-")
    own_db_dir = args.db_dir is None
    db_dir = args.db_dir or tempfile.mkdtemp(prefix="imps-bench-xcap-", dir="/dev/shm")
    os.makedirs(db_dir, exist_ok=True)
    doc = document(args.entries)
    body_file = os.path.join(workdir, "document.xml")
    with open(body_file, "w") as f:
        f.write(doc)
    put_docs = [f"resource-lists/users/{XUI}/bench-{i}" for i in range(args.connections)]
    print(f"XCAP benchmark: {args.entries}-entry resource-lists document ({len(doc)} bytes), "
          f"{args.seconds} s per step after {args.warmup} s of warm-up, {args.connections} "
          f"connections; work dir {workdir}, databases in {db_dir}", flush=True)

    ours_db = imps_net.make_xcap_db(os.path.join(db_dir, "ours.sqlite"), provision=False)
    stock_db = make_stock_db(os.path.join(db_dir, "stock.sqlite"))
    ours = imps_net.Kamailio("xcap", "xcap-bench-ours", (HOST, OURS_PORT), workdir,
                             {"XCAP_BENCH_DB": f'"sqlite://{ours_db}"'},
                             cfg=os.path.join(HERE, "xcap-bench.cfg"))
    stock = imps_net.Kamailio("xcap", "xcap-bench-stock", (HOST, STOCK_PORT), workdir,
                              {"XCAP_BENCH_DB": f'"sqlite://{stock_db}"'},
                              cfg=os.path.join(HERE, "stock-xcap.cfg"),
                              modules=imps_net.STOCK_MODULES)
    sides = [Side("ours", ours, OURS_PORT), Side("stock", stock, STOCK_PORT)]
    results = {"date": time.strftime("%Y-%m-%d"), "entries": args.entries,
               "document_bytes": len(doc), "args": vars(args), "checks": {}, "steps": {}}
    try:
        for s in sides:
            s.kam.pkg_mb = 64  # as imps_net.xcap_a: a document is copied a few times
            s.kam.start()
            imps_net.wait_port(HOST, s.port, "tcp")
        for s in sides:
            checks = preload_and_check(s, doc, put_docs, args.entries)
            results["checks"][s.name] = s.checks
            for op, (ok, what) in checks.items():
                print(f"  check {s.name:5s} {op:8s}: {'ok' if ok else 'NOT as expected'}: {what}",
                      flush=True)
        for op in OPS:
            results["steps"][op] = {}
            for s in sides:
                measure(workdir, s, op, args, len(doc), put_docs, body_file, warm=True)
                r = measure(workdir, s, op, args, len(doc), put_docs, body_file, warm=False)
                results["steps"][op][s.name] = r
                print(f"  {s.name:5s} {op:8s}: {r['rps']:8.1f} req/s, p50 {r['latency_ms']['p50']} "
                      f"ms, p99 {r['latency_ms']['p99']} ms, server CPU "
                      f"{r['server_cpu_ms_per_request']} ms/request ({r['server_cores']} cores); "
                      f"{fmt_statuses(r['statuses'])}"
                      + ("" if r["clean"] else f"  NOT clean (bad bodies {r['bad_body']}, "
                                                f"socket errors {r['socket_errors']})"),
                      flush=True)
        for s in sides:
            for p in put_docs:  # what the PUTs left is still the document
                r = s.req("GET", p)
                if r.status != 200 or r.body != doc.encode():
                    print(f"  after the run: {s.name} {p}: {r}", flush=True)
                    results["checks"][s.name]["after_put_" + p] = {"ok": False, "answer": repr(r)}
    finally:
        for s in sides:
            s.client.close()
            s.kam.stop()
        if own_db_dir:
            shutil.rmtree(db_dir, ignore_errors=True)

    print()
    print("requests/s: answered as expected (200, 304); p50 / p99: wrk's latency of every "
          "request, expected answer or not")
    print()
    print("| request | ours: req/s | ours: p50 / p99 | ours: server CPU per request | "
          "stock: req/s | stock: p50 / p99 | stock: server CPU per request | "
          "ratio ours/stock, req/s | ratio, p99 | ratio, CPU per request |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    ratios = {}
    for op in OPS:
        o, s = results["steps"][op]["ours"], results["steps"][op]["stock"]
        # requests/s that got the expected answer (a 500 is not served)
        ratios[op] = {"rps": round(o["good_rps"] / s["good_rps"], 2) if s["good_rps"] else None,
                      "p99": round(o["latency_ms"]["p99"] / s["latency_ms"]["p99"], 2)
                      if s["latency_ms"]["p99"] else None,
                      "cpu_per_request": round(o["server_cpu_ms_per_request"]
                                               / s["server_cpu_ms_per_request"], 2)
                      if s["server_cpu_ms_per_request"] else None}

        def cell(r):
            note = "" if r["clean"] else f" of {r['rps']:.0f} ({fmt_statuses(r['statuses'])})"
            return (f"{r['good_rps']:.0f}{note} | {r['latency_ms']['p50']} / {r['latency_ms']['p99']} ms"
                    f" | {r['server_cpu_ms_per_request']} ms")
        print(f"| {OP_NAMES[op]} | {cell(o)} | {cell(s)} | **{ratios[op]['rps']}** | "
              f"{ratios[op]['p99']} | {ratios[op]['cpu_per_request']} |")
    results["ratios"] = ratios
    print()
    for s in sides:
        for op, c in results["checks"][s.name].items():
            if not c["ok"]:
                print(f"note: {s.name} {op} did not answer as expected: {c['answer']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    print(f"work dir (logs, wrk scripts and outputs): {workdir}")


if __name__ == "__main__":
    main()
