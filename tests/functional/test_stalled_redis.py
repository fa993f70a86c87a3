"""A stalled Redis (it accepts connections and commands but answers nothing: CLIENT PAUSE)
costs a SIP worker the configured command timeout (redis_timeout, 500 ms) once, not once per
process waiting on a usrloc lock and not once per command of a request: binding changes are
queued under usrloc's lock and written after it, and after a timeout a process does not wait
for Redis again for redis_retry_interval (1 s). Before: the reg event's Redis script ran with
the AoR's usrloc slot locked, so REGISTERs of one AoR in four workers waited one after the
other, each for a timeout."""

import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

import reginfo_check  # noqa: E402
import sipua  # noqa: E402
from sipua import Phone, Subscription  # noqa: E402

DOMAIN = "a.example"


def test_stalled_redis_costs_each_register_at_most_one_timeout(clean_net):
    net = clean_net
    watcher = net.ua("alice")
    sub = Subscription(watcher, f"sip:alice@{DOMAIN}")
    assert sub.subscribe(600).status == 200
    watcher.wait_request()
    phones = [Phone("alice", DOMAIN, net.edge_addr) for _ in range(4)]
    try:
        for p in phones:  # credentials cached, bindings made: the refreshes below need no RADIUS
            assert p.register(600).status == 200
        time.sleep(0.5)
        pause_ms = 3000
        net.redis.cli("CLIENT", "PAUSE", str(pause_ms), "ALL")
        t0 = time.time()
        took, codes = {}, {}

        def refresh(i):
            s = time.time()
            codes[i] = phones[i].register(600).status
            took[i] = time.time() - s

        threads = [threading.Thread(target=refresh, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        elapsed = time.time() - t0
        assert elapsed < pause_ms / 1000.0, "the REGISTERs were answered while Redis was stalled"
        # every REGISTER answered, and none waited for more than one command timeout plus the
        # other relays' work: four of them one after the other would need more than 2 s
        assert set(codes.values()) <= {200, 503}, codes
        print("REGISTER times under a stalled Redis:", {i: round(t, 3) for i, t in took.items()}, codes)
        assert max(took.values()) < 1.5, took
        # once Redis answers again, the watcher learns the newest state
        time.sleep(max(0.0, pause_ms / 1000.0 - (time.time() - t0)) + 1.5)
        assert phones[0].register(600).status == 200
        deadline = time.time() + 6
        doc = None
        while time.time() < deadline:
            try:
                n = watcher.wait_request(timeout=1)
            except TimeoutError:
                continue
            doc = reginfo_check.parse(n.body)
            active = {c["uri"] for r in doc["registrations"] for c in r["contacts"] if c["state"] == "active"}
            if active == {p.contact for p in phones}:
                break
        assert doc is not None and active == {p.contact for p in phones}, doc
        assert "alice@a.example" in net.hsp.rpc("imps_reginfo.list", "alice@a.example")
    finally:
        for p in phones:
            p.close()
