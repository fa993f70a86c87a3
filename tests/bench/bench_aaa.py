#!/usr/bin/python3
"""AAA benchmark: authenticated REGISTER load with SIPp against imps_aaa
(tests/functional/aaa/aaa-test.cfg) and against stock auth_radius over radcli
(tests/bench/aaa/stock-auth.cfg), both verified by the same FreeRADIUS (cfg/freeradius), in
one run; then authorization load (MESSAGE, service publish) on imps_aaa with its Redis cache
warm. For each, the REGISTER (or MESSAGE) rate rises step by step; a step is clean when every
call succeeded. Reports the highest clean rate, SIPp's average response time at it, and the
ratios.

usage: bench_aaa.py [--rates 500,1000,...] [--step-seconds 6] [--json out.json]
"""

import argparse
import csv
import glob
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

import imps_net  # noqa: E402
from bench_reginfo import cpu_seconds  # noqa: E402
from benchlib import radcli_conf  # noqa: E402

P = imps_net.PLAN
OURS_PORT, STOCK_PORT = 5095, 5096
LEGACY_ADDR = "127.0.0.9"  # radcli's source address: a FreeRADIUS client without M-A


def rtt_ms(wd):
    """Average and 99th percentile of SIPp's response-time samples (-trace_rtt), in ms."""
    values = []
    for path in glob.glob(os.path.join(wd, "*_rtt.csv")):
        with open(path) as f:
            for row in csv.reader(f, delimiter=";"):
                try:
                    values.append(float(row[1]))  # Date_ms;response_time_ms;rtd_no
                except (ValueError, IndexError):
                    continue
    if not values:
        return None
    values.sort()
    return {"avg_ms": round(sum(values) / len(values), 2),
            "p99_ms": round(values[int(len(values) * 0.99) - 1], 2)}


def step(workdir, scenario, port, rate, seconds, extra=(), kam=None):
    calls = rate * seconds
    cpu0 = cpu_seconds(pgids=(kam.proc.pid,)) if kam else 0
    tag = f"{os.path.splitext(scenario)[0]}_{port}_{rate}"
    wd = os.path.join(workdir, tag)
    os.makedirs(wd, exist_ok=True)
    t0 = time.time()
    r = subprocess.run(["sipp", "-sf", os.path.join(HERE, "scenarios", scenario), "-i",
                        "127.0.0.1", "-m", str(calls), "-r", str(rate), "-l", str(rate * 4),
                        "-t", "u1", "-nostdin", "-timeout", f"{seconds * 4}s", "-timeout_error",
                        "-recv_timeout", "5000", "-trace_rtt", "-rtt_freq", "1", *extra,
                        f"127.0.0.1:{port}"], cwd=wd, capture_output=True, text=True,
                       timeout=seconds * 6 + 60)
    took = time.time() - t0
    rtt = rtt_ms(wd)
    cpu = (cpu_seconds(pgids=(kam.proc.pid,)) - cpu0) if kam else 0
    return {"rate": rate, "calls": calls, "clean": r.returncode == 0, "seconds": round(took, 1),
            "avg_response": rtt, "kamailio_cpu_ms_per_call": round(cpu * 1000 / calls, 3)}


def ramp(name, workdir, scenario, port, rates, seconds, extra=(), kam=None):
    steps = []
    for rate in rates:
        s = step(workdir, scenario, port, rate, seconds, extra, kam)
        print(f"  {name:18s} {rate:5d}/s: {'clean' if s['clean'] else 'NOT clean'}"
              f" (response {s['avg_response']}, Kamailio CPU "
              f"{s['kamailio_cpu_ms_per_call']} ms/call)", flush=True)
        steps.append(s)
        if not s["clean"]:
            break
    clean = [s for s in steps if s["clean"]]
    return {"steps": steps, "max_clean_rate": max((s["rate"] for s in clean), default=0),
            "avg_response_at_max": clean[-1]["avg_response"] if clean else None,
            "cpu_ms_per_call_at_2000": next((s["kamailio_cpu_ms_per_call"] for s in steps
                                             if s["rate"] == 2000), None)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="500,1000,2000,3000,4000,5000,6000,8000,10000,12000")
    ap.add_argument("--step-seconds", type=int, default=6)
    ap.add_argument("--json")
    args = ap.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    workdir = imps_net.make_workdir("imps-bench-aaa-")
    print(f"AAA benchmark, {args.step_seconds} s per step; work dir {workdir}", flush=True)
    redis = imps_net.Redis(workdir)
    radius = imps_net.FreeRadius(workdir)
    radius.legacy_client = LEGACY_ADDR
    ours = imps_net.Kamailio("aaa", "aaa-test", ("127.0.0.1", OURS_PORT), workdir,
                             {"IMPS_CHILDREN": 4},
                             cfg=os.path.join(HERE, "..", "functional", "aaa", "aaa-test.cfg"))
    stock = imps_net.Kamailio("stock-auth", "stock-auth", ("127.0.0.1", STOCK_PORT), workdir,
                              {"IMPS_CHILDREN": 4,
                               "RADCLI_CONF": '"' + radcli_conf(workdir, radius, LEGACY_ADDR) + '"'},
                              cfg=os.path.join(HERE, "aaa", "stock-auth.cfg"),
                              modules=imps_net.STOCK_MODULES)
    results = {}
    try:
        redis.start()
        radius.start()
        for k in (ours, stock):
            k.shm_mb = 1024
            k.mem_manager = "tlsf"
            k.start()
        auth = ["-au", "alice", "-ap", "alice-secret"]
        results["ours_authenticate"] = ramp("ours authenticate", workdir, "auth_register.xml",
                                            OURS_PORT, rates, args.step_seconds, auth, ours)
        results["stock_authenticate"] = ramp("stock auth_radius", workdir, "auth_register.xml",
                                             STOCK_PORT, rates, args.step_seconds, auth, stock)
        step(workdir, "authorize_message.xml", OURS_PORT, 10, 1)  # warm the cache
        results["ours_authorize_cached"] = ramp("ours authz (cache)", workdir,
                                                "authorize_message.xml", OURS_PORT,
                                                rates, args.step_seconds, kam=ours)
    finally:
        stock.stop()
        ours.stop()
        radius.stop()
        redis.stop()
    print()
    print("| load | max clean rate (/s) | response time at that rate (SIPp, ms) | Kamailio CPU per call at 2000/s (ms) |")
    print("|---|---|---|---|")
    for k, r in results.items():
        print(f"| {k} | {r['max_clean_rate']} | {r['avg_response_at_max']} | {r['cpu_ms_per_call_at_2000']} |")
    s = results["stock_authenticate"]["max_clean_rate"]
    if s:
        results["ratio_authenticate"] = round(results["ours_authenticate"]["max_clean_rate"] / s, 2)
        results["ratio_authorize_cached_vs_stock_authenticate"] = round(
            results["ours_authorize_cached"]["max_clean_rate"] / s, 2)
        print(f"\nratio ours/stock, authentication: {results['ratio_authenticate']}")
        print("ratio ours cached authorization / stock authentication: "
              f"{results['ratio_authorize_cached_vs_stock_authenticate']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    print(f"work dir (logs, SIPp traces): {workdir}")


if __name__ == "__main__":
    main()
