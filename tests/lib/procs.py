"""What the real-client drivers (baresip_client, linphone_client) share: free local ports that
no other instance of this test process has been given, and killing a client's process group."""

import os
import random
import signal
import socket
import subprocess

_given = set()  # ports handed out in this process: a client binds its ports only when it starts


def free_port(n=1, lo=20000, hi=30000, host="127.0.0.1"):
    """A port p in [lo, hi) such that p..p+n-1 are free on UDP and TCP and not yet given. The
    range is below Linux's ephemeral ports and away from the network's 5060-5099."""
    for _ in range(500):
        base = random.randrange(lo, hi - n)
        ports = set(range(base, base + n))
        if ports & _given:
            continue
        socks = []
        try:
            for p in sorted(ports):
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    k = socket.socket(socket.AF_INET, kind)
                    socks.append(k)
                    k.bind((host, p))
        except OSError:
            continue
        finally:
            for k in socks:
                k.close()
        _given.update(ports)
        return base
    raise RuntimeError("no free port")


def kill_group(proc, wait=5):
    """SIGKILL to the process group of proc (started with start_new_session) and reap it."""
    if proc is None:
        return
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        pass
