#!/usr/bin/python3
"""Every HAAA down: the same load against our edge proxy (cfg/edge.cfg with its defaults:
imps_aaa_authenticate_async, RADIUS in async workers) and against stock auth_radius over
radcli (tests/bench/aaa/stock-auth.cfg: radcli timeout 2 s, one retry, the same two HAAA
addresses as the edge, in the same order), one after the other, in two variants:

  stopped  nothing listens on the HAAA addresses (loopback answers ICMP port unreachable)
  silent   sockets bound on them that never answer (every try waits its full timeout)

Load: SIPp sends authenticated REGISTERs (401, then credentials that need the HAAA) at
--rate per second for --seconds, with no limit on open calls (tests/bench/aaa/
auth_register_down.xml; every message SIPp sends and receives is logged and classified
here, whatever the answer is).
Meanwhile an OPTIONS goes to the same proxy every 100 ms (retransmitted after 0.5, 1 and
2 s like a UDP client does); one without an answer within --limit seconds of its first
sending is counted unanswered. Reports per proxy and variant: OPTIONS latency (median, p99,
max), unanswered OPTIONS, the longest time no OPTIONS answer came back, the outcomes of the
REGISTERs carrying credentials (503 with Retry-After, 500, 401, no answer) and their
latency.

usage: bench_aaa_down.py [--rate 50] [--seconds 12] [--limit 5] [--json out.json]
"""

import argparse
import datetime
import json
import os
import queue
import re
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

import imps_net  # noqa: E402
import sipp  # noqa: E402
import sipua  # noqa: E402
from bench_aaa import LEGACY_ADDR, STOCK_PORT  # noqa: E402
from benchlib import pct, radcli_conf  # noqa: E402

P = imps_net.PLAN
HAAA = [P["IMPS_RADIUS_HOST"], P["IMPS_RADIUS2_HOST"]]  # cfg/edge.cfg's auth_servers, in order
SCENARIO = os.path.join(HERE, "aaa", "auth_register_down.xml")
PERIOD = 0.1


def ping(target, seconds, limit):
    """An OPTIONS to `target` (host, port) every PERIOD for `seconds`, each retransmitted
    (0.5, 1, 2 s) until answered or `limit` s old. Returns [(sent at, latency s or None)]."""
    ua = sipua.UA("carol", P["IMPS_DOMAIN_A"], target)
    ruri = f"sip:{target[0]}:{target[1]}"
    pending, done = {}, []  # branch -> [first sent, text, next retransmission, interval]
    t_end = time.time() + seconds
    next_new = time.time()
    try:
        while True:
            now = time.time()
            if now < t_end and now >= next_new:
                branch, text = sipua.options_request(ua, ruri)
                ua.send_raw(text)
                pending[branch] = [now, text, now + 0.5, 0.5]
                next_new += PERIOD
            for branch, p in list(pending.items()):
                if now - p[0] >= limit:
                    done.append((p[0], None))
                    del pending[branch]
                elif now >= p[2]:
                    ua.send_raw(p[1])
                    p[3] = min(p[3] * 2, 4)
                    p[2] = now + p[3]
            if now >= t_end and not pending:
                break
            wake = min([next_new if now < t_end else now + 0.05] + [p[2] for p in pending.values()])
            try:
                r = ua.responses.get(timeout=max(0.0, min(wake - time.time(), 0.05)))
            except queue.Empty:
                continue
            got = time.time()
            m = re.search(r"branch=([^;\s,]+)", r.header("via") or "")
            p = pending.pop(m.group(1), None) if m and r.status >= 200 else None
            if p:
                done.append((p[0], got - p[0]))
    finally:
        ua.close()
    return sorted(done)


def sipp_log(wd):
    """The messages SIPp logged (-trace_msg): [(time, 'sent'|'received', sipua.Message)]."""
    out = []
    for name in os.listdir(wd):
        if not name.endswith("_messages.log"):
            continue
        with open(os.path.join(wd, name), "rb") as f:
            blocks = re.split(rb"^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6})\r?\n", f.read(),
                              flags=re.M)
        for stamp, block in zip(blocks[1::2], blocks[2::2]):
            head, _, msg = block.partition(b"\n\n")
            t = datetime.datetime.strptime(stamp.decode(), "%Y-%m-%d %H:%M:%S.%f").timestamp()
            out.append((t, "sent" if b"message sent" in head else "received",
                        sipua.Message(msg.rstrip(b"\n"))))
    return sorted(out, key=lambda x: x[0])


def register_outcomes(log):
    """Per call (Call-ID): the first final answer to the REGISTER carrying credentials (CSeq
    2), or why there is none; with the time from its first sending to that answer."""
    calls = {}
    for t, way, m in log:
        c = calls.setdefault(m.header("call-id"), {})
        cseq = (m.header("cseq") or "").split()[0]
        if way == "sent" and cseq == "2":
            c.setdefault("sent2", t)
        elif way == "received" and m.status and m.status >= 200:
            c.setdefault(f"answer{cseq}", (t, m))
    outcomes, latency = {}, []
    for c in calls.values():
        if "answer2" in c:
            t, m = c["answer2"]
            k = str(m.status)
            if m.status == 503:
                k += " with Retry-After" if m.header("retry-after") else " without Retry-After"
            latency.append(t - c["sent2"])
        elif "sent2" in c:
            k = "no answer (credentials sent)"
        elif "answer1" in c:
            k = f"{c['answer1'][1].status} to the first REGISTER"
        else:
            k = "no answer to the first REGISTER"
        outcomes[k] = outcomes.get(k, 0) + 1
    return outcomes, sorted(latency)


def longest_gap(times, start, end):
    """The longest interval inside [start, end] without any of `times`."""
    edges = [start] + sorted(t for t in times if start <= t <= end) + [end]
    return max(b - a for a, b in zip(edges, edges[1:]))


def udp_rcvbuf_errors():
    """Datagrams the kernel dropped on this host because a socket's receive buffer was full."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return int(rows[1][rows[0].index("RcvbufErrors")])


def run(name, kam, target, down, args, workdir):
    silent = []
    if down == "silent":
        for host in HAAA:  # bound, never read: datagrams vanish, no ICMP
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((host, int(P["IMPS_RADIUS_AUTH_PORT"])))
            silent.append(s)
    wd = os.path.join(workdir, f"sipp-{name}-{down}")
    os.makedirs(wd, exist_ok=True)
    free = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    free.bind(("127.0.0.1", 0))
    sipp_port = free.getsockname()[1]
    free.close()
    sipp_rc = {}
    calls = args.rate * args.seconds
    try:
        kam.start()
        drops0 = udp_rcvbuf_errors()
        load = threading.Thread(target=lambda: sipp_rc.setdefault("rc", sipp.run(
            SCENARIO, f"{target[0]}:{target[1]}", keys={"user": "alice", "domain": P["IMPS_DOMAIN_A"]},
            local_port=sipp_port, calls=calls, rate=args.rate,
            timeout=args.seconds + args.limit + 1, workdir=wd,
            extra=["-au", "alice", "-ap", "alice-secret", "-trace_msg", "-l", str(calls),
                   "-default_behaviors", "all,-abortunexp"])[0]), daemon=True)
        t0 = time.time()
        load.start()
        time.sleep(0.2)  # SIPp is sending
        pings = ping(target, args.seconds, args.limit)
        load.join()
        drops = udp_rcvbuf_errors() - drops0
    finally:
        kam.stop()
        for s in silent:
            s.close()
    log = sipp_log(wd)
    outcomes, reg_lat = register_outcomes(log)
    answered = sorted(lat for _, lat in pings if lat is not None)
    ping_end = pings[-1][0] if pings else t0
    # the longest time the proxy sent no answer to an OPTIONS (its arrival times), from the
    # first OPTIONS to the last one sent; and the longest time SIPp received nothing either
    arrivals = [s + lat for s, lat in pings if lat is not None]
    stall = longest_gap(arrivals, pings[0][0], ping_end) if pings else None
    silence = longest_gap(arrivals + [t for t, way, _ in log if way == "received"],
                          pings[0][0], ping_end) if pings else None
    ms = lambda v: None if v is None else round(v * 1000, 1)  # noqa: E731
    r = {"proxy": name, "haaa": down, "options_sent": len(pings),
         "options_unanswered": len(pings) - len(answered),
         "options_median_ms": ms(pct(answered, 0.5)), "options_p99_ms": ms(pct(answered, 0.99)),
         "options_max_ms": ms(answered[-1] if answered else None),
         "longest_options_stall_s": round(stall, 2) if stall is not None else None,
         "longest_silence_s": round(silence, 2) if silence is not None else None,
         # the stall had not ended when the last OPTIONS was sent
         "stall_at_end": bool(pings) and (not arrivals or ping_end - max(arrivals) > 1.0),
         "register_calls": args.rate * args.seconds, "register_outcomes": outcomes,
         "register_answer_median_ms": ms(pct(reg_lat, 0.5)),
         "register_answer_max_ms": ms(reg_lat[-1] if reg_lat else None),
         "udp_rcvbuf_drops": drops, "sipp_rc": sipp_rc.get("rc")}
    print(f"  {name:5s} HAAA {down:7s}: OPTIONS {len(answered)}/{len(pings)} answered within "
          f"{args.limit:g} s, median {r['options_median_ms']} / p99 {r['options_p99_ms']} / max "
          f"{r['options_max_ms']} ms, longest stall {stall_text(r)} s; REGISTER "
          f"{outcomes}, answered in median {r['register_answer_median_ms']} / max "
          f"{r['register_answer_max_ms']} ms; nothing at all received for {r['longest_silence_s']} s; "
          f"{drops} datagrams dropped by full UDP receive buffers", flush=True)
    return r


def stall_text(r):
    s = r["longest_options_stall_s"]
    return f">= {s} (still stalled at the end)" if r["stall_at_end"] else f"{s}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=50, help="authenticated REGISTER/s")
    ap.add_argument("--seconds", type=int, default=12)
    ap.add_argument("--limit", type=float, default=5.0,
                    help="an OPTIONS without an answer this long (s) is unanswered")
    ap.add_argument("--json")
    args = ap.parse_args()
    workdir = imps_net.make_workdir("imps-bench-aaa-down-")
    print(f"Every HAAA down: {args.rate} authenticated REGISTER/s for {args.seconds} s, an "
          f"OPTIONS every {PERIOD * 1000:.0f} ms; work dir {workdir}", flush=True)
    redis = imps_net.Redis(workdir)  # the edge's decision cache, as in the functional tests
    radius = imps_net.FreeRadius(workdir)  # never started: its addresses, ports and secret
    ours = imps_net.edge_a(workdir)
    stock = imps_net.Kamailio(
        "stock-auth", "stock-auth", (P["IMPS_IP_A"], STOCK_PORT), workdir,
        {"IMPS_CHILDREN": 4, "STOCK_PRECHECK_RETRANS": None,
         "RADCLI_CONF": '"' + radcli_conf(workdir, radius, LEGACY_ADDR, hosts=HAAA) + '"'},
        cfg=os.path.join(HERE, "aaa", "stock-auth.cfg"), modules=imps_net.STOCK_MODULES)
    results = []
    started = time.time()
    try:
        redis.start()
        for down in ("stopped", "silent"):
            for name, kam in (("ours", ours), ("stock", stock)):
                results.append(run(name, kam, (kam.host, kam.port), down, args, workdir))
    finally:
        stock.stop()
        ours.stop()
        redis.stop()
    print()
    print(f"| proxy | HAAA | OPTIONS median / p99 / max (ms) | OPTIONS unanswered within "
          f"{args.limit:g} s | longest OPTIONS stall (s) | REGISTER with credentials: "
          f"outcomes of {args.rate * args.seconds} | REGISTER answered in median / max (ms) |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(r["register_outcomes"].items()))
        print(f"| {r['proxy']} | {r['haaa']} | {r['options_median_ms']} / {r['options_p99_ms']} / "
              f"{r['options_max_ms']} | {r['options_unanswered']} of {r['options_sent']} | "
              f"{stall_text(r)} | {outcomes} | {r['register_answer_median_ms']} / "
              f"{r['register_answer_max_ms']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    print(f"took {time.time() - started:.0f} s; work dir (logs, SIPp traces): {workdir}")


if __name__ == "__main__":
    main()
