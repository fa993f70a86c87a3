#!/usr/bin/python3
"""Reg event benchmark: the same SIPp REGISTER load through the edge proxy, with N reg-event
watchers per AoR (subscribed at the HSP), against

  ours:  cfg/hsp.cfg (registrar + imps_reginfo, state in Redis)
  stock: tests/bench/stock-hsp.cfg (registrar + pua_reginfo + presence + presence_reginfo,
         state in PostgreSQL started by this script)

on the same machine in one run. For each system the REGISTER rate is raised step by step; a
step is clean when every REGISTER got its 200 and every watcher got every NOTIFY. Reports the
highest clean rate, the NOTIFYs/s delivered at that rate, and the ratio ours/stock.

usage: bench_reginfo.py [--aors 100] [--watchers 2] [--step-seconds 8]
                        [--rates 250,500,...] [--json out.json]
"""

import argparse
import csv
import glob
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

import benchlib  # noqa: E402
import imps_net  # noqa: E402

P = imps_net.PLAN
DOMAIN = P["IMPS_DOMAIN_A"]
EDGE = f"{P['IMPS_IP_A']}:{P['IMPS_EDGE_A_PORT']}"
# Watchers subscribe at the HSP itself: through the edge, the 200 and the first NOTIFY cross
# (two edge workers relay them) and SIPp aborts a call on that order. Both systems get the same.
HSP = f"{P['IMPS_IP_A']}:{P['IMPS_HSP_A_PORT']}"
PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1] if glob.glob("/usr/lib/postgresql/*/bin") else None
PG_PORT = 5433


class Postgres:
    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "pg")

    def _as_pg(self, *args, **kw):
        return subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True,
                              capture_output=True, text=True, **kw)

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        shutil.chown(self.dir, "postgres", "postgres")
        os.chmod(os.path.dirname(self.dir), 0o755)
        self._as_pg(f"{PG_BIN}/initdb", "-D", self.dir, "-A", "trust", "-U", "postgres")
        opts = (f"-p {PG_PORT} -k {self.dir} -c listen_addresses=127.0.0.1 "
                "-c synchronous_commit=off -c shared_buffers=256MB -c max_connections=200")
        self._as_pg(f"{PG_BIN}/pg_ctl", "-D", self.dir, "-o", opts, "-w", "-l",
                    os.path.join(self.dir, "pg.log"), "start")
        psql = ["psql", "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "postgres", "-q", "-v",
                "ON_ERROR_STOP=1"]
        subprocess.run(psql + ["-c", "CREATE USER kamailio PASSWORD 'kamailio'"], check=True,
                       capture_output=True)
        subprocess.run(psql + ["-c", "CREATE DATABASE kamailio OWNER kamailio"], check=True,
                       capture_output=True)
        for f in ("standard-create.sql", "presence-create.sql"):
            subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "kamailio", "-q",
                            "-d", "kamailio", "-v", "ON_ERROR_STOP=1", "-f",
                            f"/usr/share/kamailio/postgres/{f}"], check=True, capture_output=True)

    def stop(self):
        if os.path.exists(os.path.join(self.dir, "postmaster.pid")):
            subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "-D", self.dir,
                            "-m", "fast", "stop"], capture_output=True)


def write_inf(path, aors, repeat):
    with open(path, "w") as f:
        f.write("SEQUENTIAL\n")
        for i in range(aors):
            for _ in range(repeat):
                f.write(f"bench{i:04d};{DOMAIN};\n")


def counts(workdir, prefix):
    """Last line of a SIPp -trace_counts file as a dict."""
    files = sorted(glob.glob(os.path.join(workdir, f"{prefix}_*_counts.csv")))
    if not files:
        return {}
    with open(files[-1]) as f:
        rows = list(csv.reader(f, delimiter=";"))
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1]))


def cpu_seconds(pids=(), pgids=(), user=None):
    """utime+stime of processes chosen by pid, process group or user, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    uid = None
    if user:
        import pwd
        uid = pwd.getpwnam(user).pw_uid
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
            fields = st[st.rindex(")") + 2:].split()
            pid, pgrp = int(d), int(fields[2])
            mine = pid in pids or pgrp in pgids
            if not mine and uid is not None:
                mine = os.stat(f"/proc/{d}").st_uid == uid
            if mine:
                total += int(fields[11]) + int(fields[12])
        except (OSError, ValueError):
            continue
    return total / tick


def tm_errors(kam):
    """4xx+5xx+6xx replies tm saw or made on an instance (a NOTIFY timed out counts as 408)."""
    n = 0
    for line in kam.rpc("tm.stats").splitlines():
        k, _, v = line.strip().partition(":")
        if k in ("4xx", "5xx", "6xx"):
            n += int(v)
    return n


def notify_recv(c):
    return sum(int(v) for k, v in c.items() if k.endswith("_NOTIFY_Recv") and v.isdigit())


def sub_ok(c):
    return sum(int(v) for k, v in c.items() if k.endswith("_200_Recv") and v.isdigit())


def run_system(name, args, workdir, hsp_factory, store_user=None):
    wd = os.path.join(workdir, name)
    os.makedirs(wd, exist_ok=True)
    inf_w = os.path.join(wd, "watchers.csv")
    inf_u = os.path.join(wd, "users.csv")
    write_inf(inf_w, args.aors, args.watchers)
    write_inf(inf_u, args.aors, 1)
    redis = imps_net.Redis(wd)
    hsp = hsp_factory(wd)
    # the reg event comparison: no digest authentication at the edge for either system (the
    # AAA benchmark measures that separately)
    edge = imps_net.edge_a(wd, {"IMPS_CHILDREN": 4, "IMPS_EDGE_NO_AUTH": None})
    result = {"system": name, "steps": []}
    watcher = None
    try:
        redis.start()
        for k in (hsp, edge):
            k.shm_mb = args.shm  # the same for both systems: tm keeps transactions ~5 s
            k.mem_manager = args.mem
            k.start()
        nsubs = args.aors * args.watchers
        watcher = subprocess.Popen(
            ["sipp", "-sf", os.path.join(HERE, "scenarios", "watcher.xml"), "-inf", inf_w,
             "-i", "127.0.0.1", "-p", "6100", "-m", str(nsubs), "-l", str(nsubs), "-r", "200",
             "-t", "u1", "-nostdin", "-trace_counts", "-fd", "1", "-trace_err", HSP],
            cwd=wd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline:
            c = counts(wd, "watcher")
            if c and sub_ok(c) >= nsubs and notify_recv(c) >= nsubs:
                break
            time.sleep(0.5)
        c = counts(wd, "watcher")
        if sub_ok(c) < nsubs:
            raise RuntimeError(f"{name}: only {sub_ok(c)} of {nsubs} watchers subscribed")
        time.sleep(2)
        base = notify_recv(counts(wd, "watcher"))
        for rate in args.rates:
            calls = rate * args.step_seconds
            errors_before = tm_errors(hsp) + tm_errors(edge)
            # CPU of the HSP (all its processes) and of its state store (Redis or PostgreSQL)
            server_cpu = lambda: cpu_seconds(pids=(redis.proc.pid,), pgids=(hsp.proc.pid,),
                                             user=store_user)
            cpu_before = server_cpu()
            t0 = time.time()
            stats0 = benchlib.redis_commandstats(redis.host, redis.port) if name == "ours" else None
            ue = subprocess.run(
                ["sipp", "-sf", os.path.join(HERE, "scenarios", "ue_register.xml"), "-inf", inf_u,
                 "-i", "127.0.0.1", "-p", "6200", "-m", str(calls), "-r", str(rate), "-l",
                 str(rate * 4), "-t", "u1", "-nostdin", "-timeout", f"{args.step_seconds * 4}s",
                 "-timeout_error", "-recv_timeout", "5000", "-trace_err", EDGE],
                cwd=wd, capture_output=True, text=True, timeout=args.step_seconds * 6 + 60)
            elapsed = time.time() - t0
            expected = base + calls * args.watchers
            deadline = time.time() + 15
            got = notify_recv(counts(wd, "watcher"))
            while got < expected and time.time() < deadline:
                time.sleep(1)
                got = notify_recv(counts(wd, "watcher"))
            time.sleep(1.5)  # one more counts period
            got = notify_recv(counts(wd, "watcher"))
            lost = expected - got
            tm_err = tm_errors(hsp) + tm_errors(edge) - errors_before
            cpu = server_cpu() - cpu_before
            step = {"rate": rate, "registers": calls, "register_failures": ue.returncode != 0,
                    "notifies_expected": calls * args.watchers, "notifies_received": got - base,
                    "lost": max(0, lost), "seconds": round(elapsed, 1),
                    "notifies_per_s": round((got - base) / max(elapsed, 1e-3)),
                    "error_replies": tm_err,
                    "hsp_store_cpu_ms_per_register": round(cpu * 1000 / calls, 3)}
            # clean: every REGISTER answered 200 (SIPp rc 0), every watcher got every NOTIFY,
            # and neither proxy saw an error reply or a transaction timeout
            step["clean"] = ue.returncode == 0 and lost <= 0 and tm_err == 0
            if stats0 is not None:
                # what the store ran per REGISTER over the whole step (commands of scripts
                # included; EVALSHA counts each script once)
                per = benchlib.commands_between(
                    stats0, benchlib.redis_commandstats(redis.host, redis.port), calls)
                step["redis_commands_per_register"] = per
                print(f"  {name:5s} Redis per REGISTER (INFO commandstats, whole step): {per}",
                      flush=True)
            print(f"  {name:5s} {rate:5d} REGISTER/s: sipp rc {ue.returncode}, NOTIFY "
                  f"{got - base}/{calls * args.watchers}, error replies {tm_err}, HSP+store CPU "
                  f"{step['hsp_store_cpu_ms_per_register']} ms/REGISTER -> "
                  f"{'clean' if step['clean'] else 'NOT clean'}",
                  flush=True)
            if ue.returncode != 0:
                tail = (ue.stdout + ue.stderr).strip().splitlines()[-6:]
                print("        sipp: " + "\n        sipp: ".join(tail), flush=True)
            result["steps"].append(step)
            base = got
            if not step["clean"]:
                break
    finally:
        if watcher and watcher.poll() is None:
            watcher.terminate()
            try:
                watcher.wait(10)
            except subprocess.TimeoutExpired:
                watcher.kill()
        edge.stop()
        hsp.stop()
        redis.stop()
    clean = [s for s in result["steps"] if s["clean"]]
    result["max_clean_rate"] = max((s["rate"] for s in clean), default=0)
    result["notifies_per_s_at_max"] = max((s["notifies_per_s"] for s in clean), default=0)
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--aors", type=int, default=100)
    ap.add_argument("--watchers", type=int, default=2)
    ap.add_argument("--step-seconds", type=int, default=8)
    ap.add_argument("--rates", default="500,1000,1500,2000,2500,3000,4000,5000,6000,7000,8000,9000")
    ap.add_argument("--only", choices=("ours", "stock"))
    ap.add_argument("--shm", type=int, default=1024, help="shared memory of each Kamailio, MB")
    ap.add_argument("--mem", default="tlsf", choices=("qm", "fm", "tlsf"),
                    help="Kamailio memory manager (-x) for both systems")
    ap.add_argument("--json")
    args = ap.parse_args()
    args.rates = [int(r) for r in args.rates.split(",")]
    workdir = imps_net.make_workdir("imps-bench-")
    print(f"reg event benchmark: {args.aors} AoRs x {args.watchers} watchers, "
          f"{args.step_seconds} s per step; work dir {workdir}", flush=True)
    results = {}
    pg = None
    try:
        if args.only in (None, "ours"):
            results["ours"] = run_system("ours", args, workdir,
                                         lambda wd: imps_net.hsp_a(wd, {"IMPS_CHILDREN": 4,
                                                                        "IMPS_HSP_NO_AUTHZ": None}))
        if args.only in (None, "stock"):
            pg = Postgres(workdir)
            pg.start()
            stock_cfg = os.path.join(HERE, "stock-hsp.cfg")
            results["stock"] = run_system(
                "stock", args, workdir,
                lambda wd: imps_net.Kamailio("stock-hsp", "hsp-a",
                                             (P["IMPS_IP_A"], int(P["IMPS_HSP_A_PORT"])), wd,
                                             {"IMPS_CHILDREN": 4}, cfg=stock_cfg,
                                             modules=imps_net.STOCK_MODULES),
                store_user="postgres")
    finally:
        if pg:
            pg.stop()
    print()
    print("| system | max clean REGISTER/s | NOTIFY/s at that rate |")
    print("|---|---|---|")
    for k, r in results.items():
        print(f"| {k} | {r['max_clean_rate']} | {r['notifies_per_s_at_max']} |")
    if "ours" in results and "stock" in results and results["stock"]["max_clean_rate"]:
        ratio = results["ours"]["max_clean_rate"] / results["stock"]["max_clean_rate"]
        results["ratio"] = round(ratio, 2)
        print(f"\nratio ours/stock (max clean REGISTER/s): {ratio:.2f}")
    if "ours" in results and "stock" in results:
        both = [(a, b) for a in results["ours"]["steps"] for b in results["stock"]["steps"]
                if a["rate"] == b["rate"] and a["clean"] and b["clean"]]
        if both:
            a, b = both[-1]
            cr = b["hsp_store_cpu_ms_per_register"] / max(a["hsp_store_cpu_ms_per_register"], 1e-6)
            results["cpu_ratio"] = {"rate": a["rate"], "ours_ms": a["hsp_store_cpu_ms_per_register"],
                                    "stock_ms": b["hsp_store_cpu_ms_per_register"], "ratio": round(cr, 2)}
            print(f"HSP+store CPU per REGISTER at {a['rate']}/s: ours "
                  f"{a['hsp_store_cpu_ms_per_register']} ms, stock "
                  f"{b['hsp_store_cpu_ms_per_register']} ms (stock/ours {cr:.2f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    print(f"work dir (logs, SIPp traces): {workdir}")


if __name__ == "__main__":
    main()
