#!/usr/bin/python3
"""Presence benchmark (issue 3, section 5): the same SIPp load against

  ours:  cfg/presence.cfg (imps_presence, state in Redis, rules in SQLite allowing everyone)
  stock: tests/bench/presence/stock-presence.cfg (presence + presence_xml over PostgreSQL
         started by this script, subscriptions cached in memory, force_active)

one after the other on 127.0.0.1:5080, same machine, one run, same Kamailio settings (workers,
shared memory, memory manager). Three phases per system, each on fresh state:

  (a) initial PUBLISH without watchers (3 devices per presentity, a new presentity every three
      PUBLISHes), the rate raised step by step; a step is clean when SIPp got every 200 with no
      retransmission and no failed call, and the server counted no error reply;
  (b) presentities with 3 publishing devices and 10 watchers each: every device publishes
      (initial, then modifies with SIP-If-Match, then a remove) at a total rate raised step
      by step; a step is clean when every PUBLISH got its 200 with no retransmission, the
      server counted no error reply (no NOTIFY timed out), and every publication reached the
      latency watcher of its presentity, as itself or as a newer state of the same device,
      with p99 within FRESH_P99_MS ("newest state"). RFC 6665 lets a notifier send the newest
      state rather than every intermediate one, and ours does while a dialog's NOTIFY is
      outstanding; whether every PUBLISH also got a NOTIFY of its own to every watcher is
      reported as "every_notify". Latencies are measured at one watcher of every presentity:
      the publisher puts its send time in its tuple note and logs it, the watcher logs the
      arrival time;
  (c) memory: 10,000 presentities x 3 devices published; the growth of Kamailio's shared
      memory plus the store (Redis used_memory; PostgreSQL relation sizes).

Each step also reports the CPU of the server and its store (Kamailio's processes plus Redis, or
plus every PostgreSQL process), of SIPp, the share of the machine that was busy and the UDP
datagrams the kernel dropped on full receive buffers, to tell what limited it. Reports every
step, a summary table and the ratios ours/stock.

usage: bench_presence.py [--only ours|stock] [--rates-a ...] [--rates-b ...] [--json out.json]
"""

import argparse
import collections
import csv
import glob
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

import benchlib  # noqa: E402
import imps_net  # noqa: E402
from bench_reginfo import PG_PORT, Postgres, counts, cpu_seconds, notify_recv, sub_ok, tm_errors  # noqa: E402,E501

P = imps_net.PLAN
DOMAIN = P["IMPS_DOMAIN_A"]
LISTEN = (P["IMPS_IP_A"], int(P["IMPS_PS_A_PORT"]))
PS = f"{LISTEN[0]}:{LISTEN[1]}"
SCN = os.path.join(HERE, "presence")
DEVICES = 3
WATCHERS = 10
# phase (b) is clean only when every publication reached its watcher within this (p99)
FRESH_P99_MS = 250
PSQL = ["psql", "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "kamailio", "-d", "kamailio", "-q",
        "-t", "-A", "-v", "ON_ERROR_STOP=1"]


# ---- the two systems ----------------------------------------------------------------------

class System:
    name = None
    store_user = None

    def __init__(self, args, wd):
        self.args, self.wd = args, wd
        self.kam = None

    def _kam_start(self):
        self.kam.shm_mb = self.args.shm
        self.kam.mem_manager = self.args.mem
        self.kam.start()

    def shm_used(self):
        for line in self.kam.rpc("core.shmmem").splitlines():
            k, _, v = line.strip().partition(":")
            if k == "real_used":
                return int(v)
        raise RuntimeError("core.shmmem without real_used")

    def cpu(self):
        """CPU seconds of the Kamailio instance and its store."""
        return cpu_seconds(pids=self.store_pids(), pgids=(self.kam.proc.pid,), user=self.store_user)


class Ours(System):
    name = "ours"

    def start(self):
        self.redis = imps_net.Redis(self.wd).start()
        imps_net.make_presence_db(demo_rules=False)
        imps_net.presence_rules([(DOMAIN, DOMAIN, "allow")])
        # no HAAA step, SIPp on loopback trusted (identity from From), no NOTIFY coalescing
        self.kam = imps_net.ps_a(self.wd, {"IMPS_PS_NO_AUTHZ": None, "PS_TRUST_LOOPBACK": None,
                                           "PS_NOTIFY_INTERVAL": 0,
                                           "IMPS_CHILDREN": self.args.children})
        self._kam_start()

    def reset(self):
        self.kam.stop()
        self.redis.flush()
        self._kam_start()

    def store_pids(self):
        return (self.redis.proc.pid,)

    def store_bytes(self):
        for line in self.redis.cli("INFO", "memory").splitlines():
            if line.startswith("used_memory:"):
                return int(line.split(":")[1])
        raise RuntimeError("redis INFO without used_memory")

    def stop(self):
        if self.kam:
            self.kam.stop()
        if getattr(self, "redis", None):
            self.redis.stop()


class Stock(System):
    name = "stock"
    store_user = "postgres"

    def start(self):
        self.pg = Postgres(os.path.dirname(self.wd))  # <work dir>/pg, readable by postgres
        self.pg.start()
        self.kam = imps_net.Kamailio("stock-presence", "ps-a", LISTEN, self.wd,
                                     {"IMPS_CHILDREN": self.args.children},
                                     cfg=os.path.join(SCN, "stock-presence.cfg"),
                                     modules=imps_net.STOCK_MODULES)
        self._kam_start()

    def reset(self):
        self.kam.stop()
        subprocess.run(PSQL + ["-c", "TRUNCATE presentity, active_watchers, watchers"],
                       check=True, capture_output=True)
        self._kam_start()

    def store_pids(self):
        return ()

    def store_bytes(self):
        out = subprocess.run(PSQL + ["-c", "SELECT sum(pg_total_relation_size(t)) FROM "
                                     "unnest(ARRAY['presentity','active_watchers','watchers']) t"],
                             check=True, capture_output=True, text=True)
        return int(out.stdout.strip())

    def stop(self):
        if self.kam:
            self.kam.stop()
        if getattr(self, "pg", None):
            self.pg.stop()


# ---- SIPp ---------------------------------------------------------------------------------

def write_inf(path, rows):
    with open(path, "w") as f:
        f.write("SEQUENTIAL\n")
        for r in rows:
            f.write(";".join(r) + ";\n")


def sipp_stats(path):
    """Last row of a SIPp -trace_stat file as a dict."""
    try:
        with open(path) as f:
            rows = list(csv.reader(f, delimiter=";"))
    except OSError:
        return {}
    return dict(zip(rows[0], rows[-1])) if len(rows) >= 2 else {}


def run_sipp(wd, tag, scenario, inf, port, calls, rate, limit, timeout, extra=()):
    """Runs one SIPp load to completion; returns (rc, seconds, stats, output tail, SIPp's CPU
    seconds)."""
    stf = os.path.join(wd, f"{tag}.stat.csv")
    args = ["sipp", "-sf", os.path.join(SCN, scenario), "-inf", inf, "-i", "127.0.0.1", "-p",
            str(port), "-m", str(calls), "-r", str(rate), "-l", str(limit), "-t", "u1",
            "-nostdin", "-timeout", f"{int(timeout)}s", "-timeout_error", "-recv_timeout", "10000",
            "-trace_err", "-error_file", os.path.join(wd, f"{tag}.errors.log"), "-trace_stat",
            "-stf", stf, "-fd", "1", *extra, PS]
    t0, ru0 = time.time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(args, cwd=wd, capture_output=True, text=True, timeout=timeout + 60)
    secs = time.time() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime
    tail = (out.stdout + out.stderr).strip().splitlines()[-4:]
    return out.returncode, secs, sipp_stats(stf), tail, cpu


def machine_busy():
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)


def udp_drops():
    """UDP datagrams the kernel dropped for a full receive buffer (all sockets), from
    /proc/net/snmp: a server or a SIPp that does not read fast enough."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return int(dict(zip(rows[0], rows[1])).get("RcvbufErrors", 0))


def busy_since(b0):
    b1 = machine_busy()
    return round(100 * (b1[0] - b0[0]) / max(1, b1[1] - b0[1]))


def stat_int(st, key):
    try:
        return int(st.get(key, "0") or 0)
    except ValueError:
        return -1


def report(sysm, head, s, tail):
    print(f"  {sysm.name:5s} {head}, sipp rc {s['sipp_rc']}, retransmissions "
          f"{s['retransmissions']}, failed {s['failed_calls']}, error replies "
          f"{s['error_replies']}, server CPU {s['server_cpu_ms_per_publish']} ms/PUBLISH; during "
          f"the load: server+store {s['server_cores']} cores, SIPp {s['sipp_cores']}, machine "
          f"{s['machine_busy_percent']} % busy, UDP drops {s['udp_drops']} -> "
          f"{'clean' if s['clean'] else 'NOT clean'}", flush=True)
    if s["sipp_rc"] != 0:
        print("        sipp: " + "\n        sipp: ".join(tail), flush=True)


# ---- phase (a): initial PUBLISH without watchers ------------------------------------------

def phase_a(sysm, args, wd):
    steps = []
    for rate in args.rates_a:
        calls = rate * args.step_seconds
        inf = os.path.join(wd, f"a{rate}.csv")
        write_inf(inf, ((f"a{rate}x{i // DEVICES}", DOMAIN, f"d{i % DEVICES}")
                        for i in range(calls)))
        err0, cpu0, busy0, drop0 = tm_errors(sysm.kam), sysm.cpu(), machine_busy(), udp_drops()
        rc, secs, st, tail, sipp_cpu = run_sipp(wd, f"a{rate}", "publish_initial.xml", inf, 6300,
                                                calls, rate, rate * 3, args.step_seconds * 4 + 10)
        busy = busy_since(busy0)
        cpu = sysm.cpu() - cpu0
        err = tm_errors(sysm.kam) - err0
        retrans, failed = stat_int(st, "Retransmissions(C)"), stat_int(st, "FailedCall(C)")
        s = {"rate": rate, "publishes": calls, "seconds": round(secs, 1),
             "achieved": round(calls / secs), "sipp_rc": rc, "retransmissions": retrans,
             "failed_calls": failed, "error_replies": err,
             "server_cpu_ms_per_publish": round(cpu * 1000 / calls, 3),
             "server_cores": round(cpu / secs, 2), "sipp_cores": round(sipp_cpu / secs, 2),
             "machine_busy_percent": busy, "udp_drops": udp_drops() - drop0}
        s["clean"] = rc == 0 and retrans == 0 and failed == 0 and err == 0
        steps.append(s)
        report(sysm, f"(a) {rate:5d} initial PUBLISH/s: achieved {s['achieved']}/s", s, tail)
        if not s["clean"]:
            break
    return steps


# ---- phase (b): 3 devices and 10 watchers per presentity ----------------------------------

def parse_stamp(v):
    """'<s>.000000/<us>.000000' (SIPp prints its doubles with 6 decimals) -> seconds."""
    try:
        s, us = v.split("/")
        return float(s) + float(us) / 1e6
    except ValueError:
        return None


def latencies(log_path, offset, since, seen):
    """PUBLISH -> NOTIFY latencies (ms) from the latency watchers' log from `offset` on: for
    each NOTIFY, arrival minus the newest send time among its tuples, counted once per watcher
    and send time (a NOTIFY that shows no newer publication, e.g. after a remove, is
    skipped). Returns (latencies, new offset)."""
    lat = []
    try:
        with open(log_path) as f:
            f.seek(offset)
            data = f.read()
            offset = f.tell()
    except OSError:
        return lat, offset
    for line in data.splitlines():
        parts = line.split()
        if "N" not in parts:
            continue
        parts = parts[parts.index("N") + 1:]
        if len(parts) < 6:
            continue
        stamps = [t for t in (parse_stamp(p) for p in parts[3:6]) if t is not None]
        if not stamps:
            continue
        newest = max(stamps)
        key = (parts[0], newest)
        if newest < since or key in seen:
            continue
        seen.add(key)
        lat.append((float(parts[1]) + float(parts[2]) / 1e6 - newest) * 1000)
    return lat, offset


def freshness(lat_log, lat_offset, pub_logs):
    """How long each publication took to reach its presentity's latency watcher, as itself
    or as a newer state of the same device (RFC 6665 lets a notifier send the newest state
    instead of every intermediate one; what a user checks is that the display catches up):
    for every PUBLISH the publishers logged ("P <user> <device> <time>"), the first NOTIFY
    (log from lat_offset on) whose tuple of that device carries that send time or a later
    one. Returns (latencies ms, publications never caught up with)."""
    sent = []
    for path in pub_logs:
        try:
            with open(path) as f:
                for line in f:
                    parts = line.split()
                    if "P" in parts:
                        parts = parts[parts.index("P") + 1:]
                        if len(parts) >= 3 and parse_stamp(parts[2]) is not None:
                            sent.append((parts[0], parts[1], parse_stamp(parts[2])))
        except OSError:
            pass
    seen = collections.defaultdict(list)  # presentity -> [(arrival, {device: time})]
    try:
        with open(lat_log) as f:
            f.seek(lat_offset)
            data = f.read()
    except (OSError, TypeError):
        data = ""
    for line in data.splitlines():
        parts = line.split()
        if "N" not in parts:
            continue
        parts = parts[parts.index("N") + 1:]
        if len(parts) < 7:
            continue
        arrival = float(parts[1]) + float(parts[2]) / 1e6
        devs = {f"d{k}": parse_stamp(parts[3 + k]) for k in range(3)}
        seen[parts[6]].append((arrival, devs))
    lat, lost = [], 0
    for user, dev, t in sent:
        first = min((a for a, devs in seen.get(user, ()) if devs.get(dev) is not None
                     and devs[dev] >= t - 1e-7), default=None)
        if first is None:
            lost += 1
        else:
            lat.append(max(0.0, (first - t) * 1000))
    return lat, lost


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, max(0, int(len(v) * q + 0.5) - 1))], 2)


def phase_b(sysm, args, wd):
    npres = args.presentities
    pubs = [(f"w{i}", DOMAIN, f"d{k}") for i in range(npres) for k in range(DEVICES)]
    inf_p = os.path.join(wd, "b_publishers.csv")
    write_inf(inf_p, pubs)
    wdirs, procs = {}, []  # kind -> (dir, scenario name: the prefix of its counts file)
    result = {"presentities": npres, "devices": len(pubs), "watchers": npres * WATCHERS,
              "steps": []}
    try:
        mem0 = sysm.shm_used() + sysm.store_bytes()
        # one watcher per presentity logs NOTIFY arrival times, the other nine just answer
        for kind, port, scn, rows in (
                ("lat", 6101, "watcher", [(f"w{i}", DOMAIN, f"w{i}v0") for i in range(npres)]),
                ("bulk", 6102, "watcher_bulk", [(f"w{i}", DOMAIN, f"w{i}v{j}")
                                                for i in range(npres)
                                                for j in range(1, WATCHERS)])):
            d = os.path.join(wd, f"watch_{kind}")
            wdirs[kind] = (d, scn)
            os.makedirs(d, exist_ok=True)
            inf = os.path.join(d, "watchers.csv")
            write_inf(inf, rows)
            n = len(rows)
            procs.append(subprocess.Popen(
                ["sipp", "-sf", os.path.join(SCN, scn + ".xml"), "-inf", inf, "-i", "127.0.0.1",
                 "-p", str(port), "-m", str(n), "-l", str(n), "-r", str(args.subscribe_rate),
                 "-t", "u1", "-nostdin", "-trace_counts", "-fd", "1", "-trace_err",
                 *(["-trace_logs"] if kind == "lat" else []), PS],
                cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        nsubs = npres * WATCHERS
        deadline = time.time() + 30 + nsubs / args.subscribe_rate
        while time.time() < deadline:
            c = [counts(d, scn) for d, scn in wdirs.values()]
            if sum(sub_ok(x) for x in c) >= nsubs and sum(notify_recv(x) for x in c) >= nsubs:
                break
            time.sleep(0.5)
        c = [counts(d, scn) for d, scn in wdirs.values()]
        got_subs = sum(sub_ok(x) for x in c)
        if got_subs < nsubs:
            raise RuntimeError(f"{sysm.name}: only {got_subs} of {nsubs} watchers subscribed")
        time.sleep(7)  # tm forgets the SUBSCRIBE and first NOTIFY transactions (wait timer)
        result["memory_per_watcher_bytes"] = round(
            (sysm.shm_used() + sysm.store_bytes() - mem0) / nsubs)
        log_lat = glob.glob(os.path.join(wdirs["lat"][0], "watcher_*_logs.log"))
        log_lat = log_lat[0] if log_lat else None
        offset, seen = 0, set()
        if log_lat:
            _, offset = latencies(log_lat, 0, 0, seen)
        watchers_cpu = lambda: cpu_seconds(pids=[p.pid for p in procs])  # noqa
        notified = lambda: sum(notify_recv(counts(d, scn)) for d, scn in wdirs.values())  # noqa
        base = notified()
        for rate in args.rates_b:
            pause_ms = max(1, round(len(pubs) * 1000 / rate))
            loops = max(1, round(args.step_seconds * 1000 / pause_ms))
            publishes = len(pubs) * (loops + 2)
            expected = publishes * WATCHERS
            err0, cpu0, since, busy0 = tm_errors(sysm.kam), sysm.cpu(), time.time(), machine_busy()
            wcpu0, drop0 = watchers_cpu(), udp_drops()
            has_redis = getattr(sysm, "redis", None) is not None
            stats0 = benchlib.redis_commandstats(sysm.redis.host, sysm.redis.port) if has_redis else None
            step_offset = offset
            pub_logs0 = set(glob.glob(os.path.join(wd, "publisher_*_logs.log")))
            rc, secs, st, tail, sipp_cpu = run_sipp(
                wd, f"b{rate}", "publisher.xml", inf_p, 6301, len(pubs), rate, len(pubs),
                args.step_seconds * 4 + 20, extra=("-d", str(pause_ms), "-set", "loops",
                                                   str(loops), "-trace_logs"))
            busy, cpu_run = busy_since(busy0), sysm.cpu() - cpu0
            sipp_cpu += watchers_cpu() - wcpu0
            deadline = time.time() + 15
            got = notified() - base
            while got < expected and time.time() < deadline:
                time.sleep(1)
                got = notified() - base
            time.sleep(1.5)  # one more counts period
            got = notified() - base
            cpu = sysm.cpu() - cpu0
            err = tm_errors(sysm.kam) - err0
            lat = []
            if log_lat:
                lat, offset = latencies(log_lat, offset, since, seen)
            retrans, failed = stat_int(st, "Retransmissions(C)"), stat_int(st, "FailedCall(C)")
            s = {"rate": rate, "publishes": publishes, "seconds": round(secs, 1),
                 "publish_per_s": round(publishes / secs), "notifies_expected": expected,
                 "notifies_received": got, "notifies_per_s": round(got / secs),
                 "sipp_rc": rc, "retransmissions": retrans, "failed_calls": failed,
                 "error_replies": err, "latency_samples": len(lat),
                 "latency_median_ms": pct(lat, 0.5), "latency_p99_ms": pct(lat, 0.99),
                 "server_cpu_ms_per_publish": round(cpu * 1000 / publishes, 3),
                 "server_cores": round(cpu_run / secs, 2), "sipp_cores": round(sipp_cpu / secs, 2),
                 "machine_busy_percent": busy, "udp_drops": udp_drops() - drop0}
            fresh, stale = freshness(log_lat, step_offset,
                                     set(glob.glob(os.path.join(wd, "publisher_*_logs.log"))) - pub_logs0)
            s.update({"every_notify": got >= expected, "fresh_samples": len(fresh),
                      "fresh_never": stale, "fresh_median_ms": pct(fresh, 0.5),
                      "fresh_p99_ms": pct(fresh, 0.99)})
            # clean: no error, retransmission or failed PUBLISH, and every publication
            # reached its latency watcher (as itself or a newer state) with p99 within
            # FRESH_P99_MS; "every_notify" says whether each PUBLISH also got a NOTIFY of its
            # own to every watcher (stock sends one per change, ours coalesces while a
            # dialog's NOTIFY is outstanding)
            s["clean"] = (rc == 0 and retrans == 0 and failed == 0 and err == 0
                          and stale == 0 and fresh and s["fresh_p99_ms"] <= FRESH_P99_MS)
            if has_redis:
                # what the store ran per PUBLISH over the whole step (commands of scripts included)
                per = benchlib.commands_between(
                    stats0, benchlib.redis_commandstats(sysm.redis.host, sysm.redis.port), publishes)
                s["redis_commands_per_publish"] = per
                print(f"  {sysm.name:5s} Redis per PUBLISH (INFO commandstats, whole step): {per}",
                      flush=True)
            result["steps"].append(s)
            report(sysm, f"(b) {rate:5d} PUBLISH/s requested: {s['publish_per_s']} PUBLISH/s, "
                   f"NOTIFY {got}/{expected} ({s['notifies_per_s']}/s), latency median "
                   f"{s['latency_median_ms']} ms p99 {s['latency_p99_ms']} ms ({len(lat)} samples), "
                   f"newest state: median {s['fresh_median_ms']} ms p99 {s['fresh_p99_ms']} ms "
                   f"({len(fresh)} publications, {stale} never shown)",
                   s, tail)
            base += got
            if not s["clean"]:
                break
            time.sleep(2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    return result


# ---- phase (c): memory per 10,000 presentities --------------------------------------------

def phase_c(sysm, args, wd):
    n = args.memory_presentities
    inf = os.path.join(wd, "c.csv")
    write_inf(inf, ((f"m{i // DEVICES}", DOMAIN, f"d{i % DEVICES}") for i in range(n * DEVICES)))
    time.sleep(1)
    shm0, store0 = sysm.shm_used(), sysm.store_bytes()
    calls = n * DEVICES
    rc, secs, st, tail, _ = run_sipp(wd, "c", "publish_initial.xml", inf, 6302, calls,
                                  args.memory_rate, args.memory_rate * 3,
                                  calls / args.memory_rate * 4 + 20)
    time.sleep(7)  # tm's wait timer: finished transactions leave shared memory
    shm1, store1 = sysm.shm_used(), sysm.store_bytes()
    scale = 10000 / n
    r = {"presentities": n, "publications": calls, "sipp_rc": rc,
         "failed_calls": stat_int(st, "FailedCall(C)"),
         "shm_bytes_per_10k": round((shm1 - shm0) * scale),
         "store_bytes_per_10k": round((store1 - store0) * scale)}
    r["total_bytes_per_10k"] = r["shm_bytes_per_10k"] + r["store_bytes_per_10k"]
    print(f"  {sysm.name:5s} (c) {n} presentities x {DEVICES} publications (sipp rc {rc}): "
          f"shared memory +{r['shm_bytes_per_10k'] / 2**20:.1f} MiB, store "
          f"+{r['store_bytes_per_10k'] / 2**20:.1f} MiB per 10,000 presentities", flush=True)
    if rc != 0:
        print("        sipp: " + "\n        sipp: ".join(tail), flush=True)
    return r


def run_system(cls, args, workdir):
    wd = os.path.join(workdir, cls.name)
    os.makedirs(wd, exist_ok=True)
    sysm = cls(args, wd)
    res = {"system": cls.name}
    try:
        sysm.start()
        if "a" in args.phases:
            res["a"] = phase_a(sysm, args, wd)
            sysm.reset()
        if "b" in args.phases:
            res["b"] = phase_b(sysm, args, wd)
            sysm.reset()
        if "c" in args.phases:
            res["c"] = phase_c(sysm, args, wd)
    finally:
        sysm.stop()
    return res


# ---- report -------------------------------------------------------------------------------

def top_clean(steps):
    clean = [s for s in steps if s["clean"]]
    return clean[-1] if clean else None


def cpu_rows(steps_o, steps_s, what):
    """Server+store CPU per PUBLISH at the highest requested rate both ran clean."""
    so = {x["rate"]: x for x in steps_o if x["clean"]}
    ss = {x["rate"]: x for x in steps_s if x["clean"]}
    common = sorted(set(so) & set(ss))
    if not common:
        return []
    r = common[-1]
    vo, vs = so[r]["server_cpu_ms_per_publish"], ss[r]["server_cpu_ms_per_publish"]
    return [(f"server+store CPU per {what} at {r}/s, both clean (ms)", vo, vs,
             f"{vo / vs:.2f}" if vo and vs else "")]


def summary(results):
    o, s = results.get("ours", {}), results.get("stock", {})
    rows = []

    def ratio(a, b):
        return f"{a / b:.2f}" if a and b else ""

    if "a" in o or "a" in s:
        a_o, a_s = top_clean(o.get("a", [])), top_clean(s.get("a", []))
        vo, vs = a_o and a_o["rate"], a_s and a_s["rate"]
        rows.append(("highest clean initial PUBLISH/s, no watchers", vo, vs, ratio(vo, vs)))
        rows += cpu_rows(o.get("a", []), s.get("a", []), "initial PUBLISH")
    if "b" in o or "b" in s:
        b_o, b_s = top_clean(o.get("b", {}).get("steps", [])), top_clean(s.get("b", {}).get("steps", []))
        for label, key in (("PUBLISH/s sustained with 10 watchers per presentity (highest clean step)",
                            "publish_per_s"),
                           ("NOTIFY/s delivered at that step", "notifies_per_s"),
                           ("PUBLISH->NOTIFY latency median at that step (ms)", "latency_median_ms"),
                           ("PUBLISH->NOTIFY latency p99 at that step (ms)", "latency_p99_ms")):
            vo, vs = b_o and b_o[key], b_s and b_s[key]
            rows.append((label, vo, vs, ratio(vo, vs)))
        # latency at the same load: the highest requested rate both ran clean
        so = {x["rate"]: x for x in o.get("b", {}).get("steps", []) if x["clean"]}
        ss = {x["rate"]: x for x in s.get("b", {}).get("steps", []) if x["clean"]}
        common = sorted(set(so) & set(ss))
        if common:
            r = common[-1]
            for key, label in (("latency_median_ms", "median"), ("latency_p99_ms", "p99")):
                rows.append((f"PUBLISH->NOTIFY latency {label} at {r} PUBLISH/s, both clean (ms)",
                             so[r][key], ss[r][key], ratio(so[r][key], ss[r][key])))
        rows += cpu_rows(o.get("b", {}).get("steps", []), s.get("b", {}).get("steps", []),
                         "PUBLISH with 10 watchers")
        mo, ms = o.get("b", {}).get("memory_per_watcher_bytes"), s.get("b", {}).get("memory_per_watcher_bytes")
        rows.append(("memory per watcher (bytes: shared memory + store)", mo, ms, ratio(mo, ms)))
    if "c" in o or "c" in s:
        for key, label in (("total_bytes_per_10k", "memory per 10,000 presentities x 3 devices (MiB)"),
                           ("shm_bytes_per_10k", "  of which Kamailio shared memory (MiB)"),
                           ("store_bytes_per_10k", "  of which store: Redis / PostgreSQL (MiB)")):
            vo, vs = o.get("c", {}).get(key), s.get("c", {}).get(key)
            rows.append((label, vo and round(vo / 2**20, 1), vs and round(vs / 2**20, 1),
                         ratio(vo, vs)))
    print("\n| | ours | stock | ratio ours/stock |\n|---|---:|---:|---:|")
    for label, vo, vs, r in rows:
        print(f"| {label} | {'' if vo is None else vo} | {'' if vs is None else vs} | {r} |")
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=("ours", "stock"))
    ap.add_argument("--phases", default="abc", help="any of a, b, c")
    ap.add_argument("--rates-a", default="1000,2000,3000,4000,5000,5500,6000,7000,8000,9000,10000,12000")
    ap.add_argument("--rates-b", default="250,500,1000,1250,1500,1750,2000,2500,3000")
    ap.add_argument("--step-seconds", type=int, default=6)
    ap.add_argument("--presentities", type=int, default=200, help="phase b")
    ap.add_argument("--subscribe-rate", type=int, default=500)
    ap.add_argument("--memory-presentities", type=int, default=10000)
    ap.add_argument("--memory-rate", type=int, default=1500)
    ap.add_argument("--children", type=int, default=4, help="SIP workers of each Kamailio")
    ap.add_argument("--shm", type=int, default=1024, help="shared memory of each Kamailio, MB")
    ap.add_argument("--mem", default="tlsf", choices=("qm", "fm", "tlsf"))
    ap.add_argument("--json")
    args = ap.parse_args()
    args.rates_a = [int(r) for r in args.rates_a.split(",")]
    args.rates_b = [int(r) for r in args.rates_b.split(",")]
    workdir = imps_net.make_workdir("imps-bench-presence-")
    print(f"presence benchmark: phases {args.phases}, {DEVICES} devices per presentity, "
          f"{WATCHERS} watchers each in phase b ({args.presentities} presentities), "
          f"{args.step_seconds} s per step, {args.children} workers; work dir {workdir}",
          flush=True)
    results = {}
    for cls in (Ours, Stock):
        if args.only in (None, cls.name):
            results[cls.name] = run_system(cls, args, workdir)
    results["summary"] = summary(results)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2))
    print(f"work dir (logs, SIPp traces): {workdir}")


if __name__ == "__main__":
    main()
