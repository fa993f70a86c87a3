"""NOTIFY order (issue 9, RFC 3261 12.2.2, RFC 6665): for each subscription the NOTIFYs reach
the watcher in strictly increasing CSeq order and the last one carries the newest state,
whatever runs at once: PUBLISHes and REGISTERs handled by several workers, RPC publications,
in-dialog refreshes of the subscription, the module's timer process, and a second presence
server node on the same Redis. The NOTIFYs travel PS -> HSP -> edge -> watcher (UDP, several
workers in each relay). The watcher answers 500 to a NOTIFY whose CSeq goes backwards, as
RFC 3261 12.2.2 lets a UAS do; a notifier that lets two NOTIFYs of one dialog be in flight at
once gets reordered by the relays and then loses the subscription."""

import os
import random
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

import imps_net  # noqa: E402
import presence_check  # noqa: E402
import reginfo_check  # noqa: E402
import sipua  # noqa: E402
from sipua import Message, Publisher, Subscription, pidf  # noqa: E402

DOMAIN = "a.example"
PIDF = "application/pidf+xml"
PS_B_PORT = 5081


class OrderedWatcher(sipua.UA):
    """A watcher that checks the CSeq of every NOTIFY of a dialog: a retransmission (same CSeq)
    is answered as before, a lower one gets 500 (RFC 3261 12.2.2). Answers after a random
    delay of up to `max_delay` seconds, so that NOTIFYs have time to overtake each other."""

    def __init__(self, user, net, max_delay=0.02):
        self.last = {}
        self.backwards = []
        self.notifies = []
        self.max_delay = max_delay
        self.lock = threading.Lock()
        super().__init__(user, net.domain, net.edge_addr)
        net.uas.append(self)

    def _loop(self):
        while self.running:
            try:
                data, src = self.sock.recvfrom(65535)
            except OSError:
                return
            if not data.strip():
                continue
            m = Message(data, src)
            if not m.is_request:
                self.responses.put(m)
                continue
            if m.method != "NOTIFY":
                self.reply(m, 200)
                continue
            threading.Thread(target=self._answer, args=(m,), daemon=True).start()

    def _answer(self, m):
        time.sleep(random.uniform(0, self.max_delay))
        cid = m.header("call-id")
        cseq = int(m.header("cseq").split()[0])
        with self.lock:
            last = self.last.get(cid, 0)
            if cseq < last:
                self.backwards.append((cid, last, cseq))
                code = 500
            else:
                self.last[cid] = cseq
                code = 200
                if cseq > last:
                    self.notifies.append(m)
        self.reply(m, code)
        self.requests.put(m)


@pytest.fixture
def ps_b(clean_net):
    """A second presence server node of a.example on the same Redis."""
    node = imps_net.ps_node(clean_net.workdir, "ps-n2", PS_B_PORT,
                            {"PS_MIN_EXPIRES": 2, "PS_NOTIFY_INTERVAL": 0, "PS_RULES_POLL": 0})
    node.start()
    yield node
    node.stop()


def direct_publish(ua, port, body, etag=None):
    """A PUBLISH sent straight to a presence server node (which trusts loopback senders)."""
    p = Publisher(ua)
    p.password = None
    p.etag = etag
    msg = p._build(body, 600, etag, PIDF, "presence", [])
    return ua.request(msg, dest=("127.0.0.1", port))


def notes_of(n):
    doc = presence_check.parse_pidf(n.body)  # validated against the PIDF schema
    return {t["id"]: next(iter(t["notes"].values()), None) for t in doc["tuples"]}


def test_presence_notify_order_with_concurrent_changes_refreshes_and_two_nodes(clean_net, ps_b):
    net = clean_net
    watcher = OrderedWatcher("bob", net)
    sub = Subscription(watcher, f"sip:alice@{DOMAIN}", event="presence", accept=PIDF)
    assert sub.subscribe(600).status == 200
    first = watcher.wait_request()
    assert first.header("subscription-state").startswith("active")

    errors = []

    def guarded(f):
        def run():
            try:
                f()
            except Exception as e:  # noqa: BLE001 - reported by the test
                errors.append(repr(e))
        return run

    last_note = {}

    def publisher(i, rounds=12):
        ua = net.ua("alice")
        pub = Publisher(ua)
        for k in range(rounds):
            note = f"edge{i}-{k}"
            r = pub.publish(pidf("alice", DOMAIN, "open", f"t{i}", note=note),
                            etag=pub.etag if k else None)
            assert r.status == 200, r.status
            last_note[f"t{i}"] = note

    def node_b(rounds=12):
        ua = net.ua("alice")
        etag = None
        for k in range(rounds):
            note = f"nodeb-{k}"
            r = direct_publish(ua, PS_B_PORT, pidf("alice", DOMAIN, "open", "tb", note=note), etag)
            assert r.status == 200, r.status
            etag = r.header("sip-etag")
            last_note["tb"] = note

    def rpc_publisher(rounds=6):
        etag = None
        for k in range(rounds):
            note = f"rpc-{k}"
            args = ["imps_presence.publish", f"alice@{DOMAIN}",
                    pidf("alice", DOMAIN, "closed", "tr", note=note), 600]
            out = net.ps.rpc(*args, *( [etag] if etag else []))
            etag = [l.split("SIP-ETag:")[1].split()[0] for l in out.splitlines() if "SIP-ETag:" in l][0]
            last_note["tr"] = note

    def refresher(rounds=8):
        for _ in range(rounds):
            assert sub.refresh(600).status == 200
            time.sleep(0.05)

    threads = [threading.Thread(target=guarded(lambda i=i: publisher(i))) for i in range(3)]
    threads += [threading.Thread(target=guarded(node_b)), threading.Thread(target=guarded(rpc_publisher)),
                threading.Thread(target=guarded(refresher))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors

    # the newest state arrives: every publication's last note in one NOTIFY
    want = dict(last_note)
    deadline = time.time() + 10
    got = None
    while time.time() < deadline:
        with watcher.lock:
            seen = list(watcher.notifies)
        if seen and seen[-1].body:
            got = notes_of(seen[-1])
            if all(got.get(k) == v for k, v in want.items()):
                break
        time.sleep(0.1)
    assert got is not None and all(got.get(k) == v for k, v in want.items()), (got, want)

    assert watcher.backwards == [], f"NOTIFYs out of order: {watcher.backwards}"
    cseqs = [int(n.header("cseq").split()[0]) for n in watcher.notifies]
    assert cseqs == sorted(cseqs) and len(set(cseqs)) == len(cseqs)
    assert len(cseqs) >= 3
    for n in watcher.notifies:
        assert n.header("event").startswith("presence")
        st = n.header("subscription-state")
        assert st.startswith("active;expires="), st
        if n.body:
            assert presence_check.parse_pidf(n.body)["entity"] == f"sip:alice@{DOMAIN}"
    # the subscription survived: no 500 was needed, both nodes see it
    w = net.ps.rpc("imps_presence.watchers", f"alice@{DOMAIN}")
    assert "bob@a.example" in w and "status: active" in w
    assert "bob@a.example" in ps_b.rpc("imps_presence.watchers", f"alice@{DOMAIN}")
    # node B handled its PUBLISHes itself (whichever node's NOTIFY was outstanding sent the
    # newest state after it: a NOTIFY from node A may carry node B's change)
    assert int(stat(ps_b, "publications")) == 12
    # every NOTIFY the watcher saw was counted as sent by one of the nodes (one may still be
    # on its way when the counters are read)
    assert int(stat(net.ps, "notifies_sent")) + int(stat(ps_b, "notifies_sent")) >= len(watcher.notifies)


def stat(node, name):
    for line in node.rpc("imps_presence.stats").splitlines():
        if line.strip().startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise KeyError(name)


def test_reg_notify_order_with_concurrent_registers_and_refreshes(clean_net):
    net = clean_net
    watcher = OrderedWatcher("alice", net)
    sub = Subscription(watcher, f"sip:alice@{DOMAIN}")
    assert sub.subscribe(600).status == 200
    first = watcher.wait_request()
    assert reginfo_check.parse(first.body)["version"] == 0

    errors = []
    phones = []

    def registrar(i, rounds=8):
        try:
            phone = sipua.Phone("alice", DOMAIN, net.edge_addr)
            phones.append(phone)
            for k in range(rounds):
                r = phone.register(600 - k)
                assert r.status == 200, r.status
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    def refresher(rounds=8):
        try:
            for _ in range(rounds):
                assert sub.refresh(600).status == 200
                time.sleep(0.05)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=registrar, args=(i,)) for i in range(4)]
    threads.append(threading.Thread(target=refresher))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    try:
        # the newest state: every phone's binding, each with its last expiry
        deadline = time.time() + 10
        doc = None
        while time.time() < deadline:
            with watcher.lock:
                seen = list(watcher.notifies)
            doc = reginfo_check.parse(seen[-1].body)
            uris = {c["uri"] for r in doc["registrations"] for c in r["contacts"] if c["state"] == "active"}
            if uris == {p.contact for p in phones}:
                break
            time.sleep(0.1)
        assert uris == {p.contact for p in phones}, (uris, [p.contact for p in phones])
        assert watcher.backwards == [], f"NOTIFYs out of order: {watcher.backwards}"
        versions = [reginfo_check.parse(n.body)["version"] for n in watcher.notifies]
        cseqs = [int(n.header("cseq").split()[0]) for n in watcher.notifies]
        # RFC 3680: version +1 for each NOTIFY of the subscription; CSeq strictly increasing
        assert versions == list(range(len(versions))), versions
        assert cseqs == sorted(cseqs) and len(set(cseqs)) == len(cseqs)
        assert "alice@a.example" in net.hsp.rpc("imps_reginfo.list", "alice@a.example")
    finally:
        for p in phones:
            p.close()
