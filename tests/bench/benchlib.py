"""Helpers shared by the benchmark scripts under tests/bench/."""

import os


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


def redis_commands(host, port, seconds):
    """The commands clients sent to Redis during `seconds` (MONITOR), by name: what the
    modules send per operation. Commands a Lua script runs are left out (MONITOR marks them
    "lua"); commands of one pipeline count one each."""
    import collections
    import re
    import subprocess
    import time
    p = subprocess.Popen(["stdbuf", "-oL", "redis-cli", "-h", host, "-p", str(port), "monitor"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(seconds)
    import signal
    p.send_signal(signal.SIGINT)
    out = p.communicate(timeout=10)[0]
    counts = collections.Counter()
    for line in out.splitlines():
        m = re.match(r'^[\d.]+ \[\d+ ([^\]]+)\] "([A-Za-z]+)"', line)
        if m and m.group(1) != "lua":
            counts[m.group(2).upper()] += 1
    return counts
