"""Helpers shared by the benchmark scripts under tests/bench/."""

import os

import re


def radcli_conf(workdir, radius, bindaddr, hosts=None, timeout=2, retries=1):
    """Writes a radcli configuration for stock auth_radius (tests/bench/aaa/stock-auth.cfg)
    and returns its path: authentication servers `hosts` (default: the FreeRADIUS `radius`
    itself), tried in that order on radius.auth_port with radius.secret; `timeout` seconds per
    try and `retries` tries after the first, per server (radcli's radius_timeout and
    radius_retries); requests sent from `bindaddr`."""
    hosts = hosts or [radius.host]
    servers = os.path.join(workdir, "radcli-servers")
    with open(servers, "w") as f:
        f.writelines(f"{h} {radius.secret}\n" for h in hosts)
    os.chmod(servers, 0o600)
    dictionary = os.path.join(workdir, "radcli-dictionary")
    with open(dictionary, "w") as f:
        # radcli's dictionary lacks the draft-sterman digest attributes auth_radius needs
        f.write("$INCLUDE /etc/radcli/dictionary\n$INCLUDE /etc/kamailio/dictionary.kamailio\n"
                "ATTRIBUTE Digest-Response 206 string\nATTRIBUTE Digest-Attributes 207 string\n"
                "ATTRIBUTE Digest-Realm 1063 string\nATTRIBUTE Digest-Nonce 1064 string\n"
                "ATTRIBUTE Digest-Method 1065 string\nATTRIBUTE Digest-URI 1066 string\n"
                "ATTRIBUTE Digest-QOP 1067 string\nATTRIBUTE Digest-Algorithm 1068 string\n"
                "ATTRIBUTE Digest-Body-Digest 1069 string\nATTRIBUTE Digest-CNonce 1070 string\n"
                "ATTRIBUTE Digest-Nonce-Count 1071 string\nATTRIBUTE Digest-User-Name 1072 string\n"
                "VALUE Service-Type Sip-Session 15\n")
    conf = os.path.join(workdir, "radcli.conf")
    auth = ",".join(f"{h}:{radius.auth_port}" for h in hosts)
    acct = ",".join(f"{h}:{radius.acct_port}" for h in hosts)
    with open(conf, "w") as f:
        f.write(f"authserver {auth}\nacctserver {acct}\n"
                f"servers {servers}\ndictionary {dictionary}\ndefault_realm\n"
                f"radius_timeout {timeout}\nradius_retries {retries}\nbindaddr {bindaddr}\n")
    return conf


def pct(values, p):
    """The p-quantile (0..1) of sorted values, None when there are none."""
    return values[min(len(values) - 1, int(len(values) * p))] if values else None


def redis_commandstats(host, port):
    """Redis's own count of the commands it ran, by name (INFO commandstats): the difference
    of two readings is what a step cost the store. Commands a Lua script runs count under
    their own names as well (EVALSHA counts the script once)."""
    import subprocess
    out = subprocess.run(["redis-cli", "-h", host, "-p", str(port), "info", "commandstats"],
                         capture_output=True, text=True, timeout=10).stdout
    counts = {}
    for line in out.splitlines():
        m = re.match(r'^cmdstat_([a-z|_]+):calls=(\d+),usec=(\d+),', line.strip())
        if m:
            counts[m.group(1).upper()] = int(m.group(2))
            if m.group(1) in ("evalsha", "exec"):
                counts[m.group(1).upper() + "_usec"] = int(m.group(3))
    return counts


def commands_between(before, after, ops):
    """Per operation: {command: calls} of what ran between two commandstats readings, without
    the INFO commands of the readings themselves. EVALSHA_usec and EXEC_usec: microseconds
    Redis spent in scripts and in MULTI blocks (the commands inside count in both)."""
    out = {}
    for k, v in after.items():
        d = v - before.get(k, 0)
        if d > 0 and k != "INFO":
            out[k] = round(d / max(ops, 1), 2)
    return dict(sorted(out.items()))
