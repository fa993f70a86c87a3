"""RFC 3680 registration events through the demo network: UEs (SIPp) register through the edge
proxy, watchers subscribe to `reg` through the edge, and every NOTIFY is checked field by field
and validated against the RFC 3680 / RFC 5628 schemas."""

import hashlib
import socket
import time

import pytest

import reginfo_check
import sipp
import sipua

INSTANCE = "<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class UE:
    """A registering device of a user: one binding, its Call-ID and CSeq."""

    def __init__(self, net, user, display=None, params="", instance=None, reg_id=None):
        self.net, self.user = net, user
        self.port = free_port()
        self.uri = f"sip:{user}@127.0.0.1:{self.port}"
        self.callid = sipua.rand(12) + "@ue"
        self.cseq = 0
        c = (f'"{display}" ' if display else "") + f"<{self.uri}>" + params
        if instance:
            c += f';+sip.instance="{instance}"'
        if reg_id:
            c += f";reg-id={reg_id}"
        self.contact = c

    def register(self, expires):
        # the edge challenges the first REGISTER (CSeq n), the second (n + 1) is accepted
        sipp.register(self.user, self.net.domain, self.contact, expires, self.callid,
                      self.cseq + 1, remote=self.net.edge_hostport, workdir=self.net.workdir)
        self.cseq += 2  # the CSeq the registrar stored


class Watcher:
    """A watcher of one AoR's reg event; checks every NOTIFY's headers and body."""

    def __init__(self, net, user, target_user):
        self.ua = net.ua(user)
        self.sub = sipua.Subscription(self.ua, f"sip:{target_user}@{net.domain}")
        self.cseq = 0
        self.version = -1

    def subscribe(self, expires=600, **kw):
        return self.sub.subscribe(expires, **kw)

    def notify(self, timeout=5.0, state="active", doc_state="full"):
        n = self.ua.wait_request("NOTIFY", timeout)
        assert n.header("event") == "reg"
        assert n.header("content-type") == "application/reginfo+xml"
        assert n.header("call-id") == self.sub.call_id
        assert n.tag("to") == self.sub.from_tag
        assert n.tag("from") == self.sub.to_tag
        assert sipua.uri_of(n.header("contact")) == self.sub.remote_target
        cseq, method = n.header("cseq").split()
        assert method == "NOTIFY"
        assert int(cseq) > self.cseq, "NOTIFY CSeq must only increase"
        self.cseq = int(cseq)
        ss = n.header("subscription-state")
        assert ss.split(";")[0] == state, ss
        doc = reginfo_check.parse(n.body)
        assert doc["version"] == self.version + 1, "reginfo version must go up by one per NOTIFY"
        self.version = doc["version"]
        assert doc["state"] == doc_state
        n.doc = doc
        n.sub_state = ss
        return n


def reg(doc):
    assert len(doc["registrations"]) == 1
    return doc["registrations"][0]


def counter(net, name):
    """A counter of the imps_reginfo group as `kamcmd stats.get_statistics` shows it."""
    for line in net.hsp.rpc("stats.get_statistics", "imps_reginfo:").splitlines():
        k, _, v = line.partition(" = ")
        if k.strip() == f"imps_reginfo:{name}":
            return int(v)
    raise AssertionError(f"no counter imps_reginfo:{name}")


def wait_unsubscribed(net, aor, timeout):
    """Waits until imps_reginfo.list no longer shows a subscription to aor."""
    deadline = time.time() + timeout
    while aor in net.hsp.rpc("imps_reginfo.list") and time.time() < deadline:
        time.sleep(0.1)
    assert aor not in net.hsp.rpc("imps_reginfo.list")


def near(value, expected, slack=3):
    return value is not None and abs(int(value) - expected) <= slack


def test_registration_lifecycle_every_notify(clean_net):
    net = clean_net
    phone = UE(net, "alice", display="Alice Phone", params=";audio;+g.oma.sip-im",
               instance=INSTANCE, reg_id=1)
    phone.register(600)

    w = Watcher(net, "alice", "alice")
    r = w.subscribe(600)
    assert r.status == 200
    assert r.header("expires") == "600"
    assert r.tag("to")

    # initial NOTIFY: full state at once
    n = w.notify()
    assert n.sub_state.startswith("active;expires=")
    assert 595 <= int(n.sub_state.split("=")[1]) <= 600
    g = reg(n.doc)
    assert g["aor"] == "sip:alice@a.example"
    assert g["state"] == "active"
    reg_id = g["id"]
    assert len(g["contacts"]) == 1
    c1 = g["contacts"][0]
    assert c1["state"] == "active" and c1["event"] == "registered"
    assert near(c1["expires"], 600)
    assert c1["callid"] == phone.callid and c1["cseq"] == str(phone.cseq) == "2"
    assert c1["uri"] == phone.uri
    assert c1["display-name"] == "Alice Phone"
    assert c1["params"] == {"audio": "", "+g.oma.sip-im": "", "+sip.instance": INSTANCE,
                            "reg-id": "1"}
    assert c1["pub-gruu"] == "sip:alice@a.example;gr=" + INSTANCE.strip("<>")
    assert c1["temp-gruu"].startswith("sip:") and c1["temp-gruu"].endswith("@a.example;gr")
    assert c1["temp-gruu-first-cseq"] == "2"
    assert int(c1["duration-registered"]) >= 0
    assert c1["q"] is None, n.body
    c1_id = c1["id"]

    # a second device registers
    laptop = UE(net, "alice", params=";q=0.5")
    laptop.register(300)
    n = w.notify()
    g = reg(n.doc)
    assert g["id"] == reg_id and g["state"] == "active"
    assert {c["uri"] for c in g["contacts"]} == {phone.uri, laptop.uri}
    c2 = reginfo_check.contact(n.doc, laptop.uri)
    assert c2["state"] == "active" and c2["event"] == "registered"
    assert near(c2["expires"], 300) and c2["q"] == "0.5"
    assert c2["callid"] == laptop.callid and c2["cseq"] == "2"
    assert c2["duration-registered"] == "0"
    assert reginfo_check.contact(n.doc, phone.uri)["id"] == c1_id
    c2_id = c2["id"]
    assert c2_id != c1_id

    # refresh: same binding, same id, event refreshed
    laptop.register(300)
    n = w.notify()
    c2 = reginfo_check.contact(n.doc, laptop.uri)
    assert c2["id"] == c2_id and c2["event"] == "refreshed" and c2["state"] == "active"
    assert c2["cseq"] == "4" and near(c2["expires"], 300)

    # shorten
    laptop.register(100)
    n = w.notify()
    c2 = reginfo_check.contact(n.doc, laptop.uri)
    assert c2["id"] == c2_id and c2["event"] == "shortened" and near(c2["expires"], 100)
    assert c2["cseq"] == "6"

    # de-register one contact
    laptop.register(0)
    n = w.notify()
    g = reg(n.doc)
    assert g["state"] == "active"
    c2 = reginfo_check.contact(n.doc, laptop.uri)
    assert c2["id"] == c2_id and c2["state"] == "terminated" and c2["event"] == "unregistered"
    assert c2["expires"] == "0"
    assert reginfo_check.contact(n.doc, phone.uri)["state"] == "active"

    # a contact that expires
    short = UE(net, "alice")
    short.register(2)
    n = w.notify()
    assert reginfo_check.contact(n.doc, short.uri)["event"] == "registered"
    n = w.notify(timeout=8)
    c3 = reginfo_check.contact(n.doc, short.uri)
    assert c3["state"] == "terminated" and c3["event"] == "expired"
    assert reg(n.doc)["state"] == "active"

    # administrative removal of one contact: deactivated
    tablet = UE(net, "alice")
    tablet.register(600)
    w.notify()
    out = net.hsp.rpc("imps_reginfo.terminate", "alice@a.example", tablet.uri)
    assert "removed: 1" in out
    n = w.notify()
    c4 = reginfo_check.contact(n.doc, tablet.uri)
    assert c4["state"] == "terminated" and c4["event"] == "deactivated"
    assert reg(n.doc)["state"] == "active"

    # administrative removal of the rest, rejected: the AoR is fully de-registered
    net.hsp.rpc("imps_reginfo.terminate", "alice@a.example", "*", "rejected")
    n = w.notify()
    g = reg(n.doc)
    assert g["state"] == "terminated"
    c1 = reginfo_check.contact(n.doc, phone.uri)
    assert c1["id"] == c1_id and c1["state"] == "terminated" and c1["event"] == "rejected"

    # unsubscribe: 200 and a final NOTIFY
    r = w.sub.unsubscribe()
    assert r.status == 200 and r.header("expires") == "0"
    n = w.notify(state="terminated")
    assert reg(n.doc)["state"] == "init"
    assert "alice@a.example" not in net.hsp.rpc("imps_reginfo.list")


def test_partial_state_carries_only_the_changed_contact(clean_net):
    net = clean_net
    net.hsp.defines["REGINFO_NOTIFY_STATE"] = '"partial"'
    try:
        net.hsp.restart()
        phone = UE(net, "bob")
        phone.register(600)
        w = Watcher(net, "bob", "bob")
        assert w.subscribe(600).status == 200
        n = w.notify()  # the first NOTIFY of a subscription is always full state
        assert [c["uri"] for c in reg(n.doc)["contacts"]] == [phone.uri]
        laptop = UE(net, "bob")
        laptop.register(300)
        n = w.notify(doc_state="partial")
        g = reg(n.doc)
        assert g["state"] == "active" and g["aor"] == "sip:bob@a.example"
        assert [c["uri"] for c in g["contacts"]] == [laptop.uri]
        assert g["contacts"][0]["event"] == "registered"
        laptop.register(0)
        n = w.notify(doc_state="partial")
        g = reg(n.doc)
        assert [(c["uri"], c["state"], c["event"]) for c in g["contacts"]] == \
            [(laptop.uri, "terminated", "unregistered")]
        assert g["state"] == "active"
    finally:
        del net.hsp.defines["REGINFO_NOTIFY_STATE"]
        net.hsp.restart()


def test_unregistered_aor_gives_init_state(clean_net):
    w = Watcher(clean_net, "bob", "bob")
    assert w.subscribe(600).status == 200
    n = w.notify()
    g = reg(n.doc)
    assert g["aor"] == "sip:bob@a.example" and g["state"] == "init" and g["contacts"] == []


def test_trusted_watcher_may_watch_any_user(clean_net):
    # cfg/network.cfg lists edge@a.example as a trusted reg watcher; it subscribes at the HSP
    # itself (as a P-CSCF does), and the HAAA entitles it to subscribe (cfg/freeradius/users)
    w = Watcher(clean_net, "edge", "carol")
    w.ua.proxy = (clean_net.plan["IMPS_IP_A"], int(clean_net.plan["IMPS_HSP_A_PORT"]))
    assert w.subscribe(600).status == 200
    w.notify()


def test_subscription_expiry_sends_timeout(clean_net):
    UE(clean_net, "bob").register(600)
    w = Watcher(clean_net, "bob", "bob")
    r = w.subscribe(3)
    assert r.status == 200 and r.header("expires") == "3"
    w.notify()
    n = w.notify(timeout=8, state="terminated")
    assert n.sub_state == "terminated;reason=timeout"
    assert "bob@a.example" not in clean_net.hsp.rpc("imps_reginfo.list")


def test_refresh_extends_and_keeps_sequence(clean_net):
    w = Watcher(clean_net, "carol", "carol")
    assert w.subscribe(3).status == 200
    w.notify()
    r = w.sub.refresh(600)
    assert r.status == 200 and r.header("expires") == "600"
    n = w.notify()
    assert n.sub_state.startswith("active;expires=")
    time.sleep(4)
    w.ua.no_request("NOTIFY", 0.5)  # not expired: the refresh moved the expiry
    assert "carol@a.example" in clean_net.hsp.rpc("imps_reginfo.list", "carol@a.example")


def test_fetch_with_expires_zero(clean_net):
    UE(clean_net, "carol").register(600)
    w = Watcher(clean_net, "carol", "carol")
    r = w.subscribe(0)
    assert r.status == 200 and r.header("expires") == "0"
    n = w.notify(state="terminated")
    assert n.sub_state == "terminated;reason=timeout"
    assert len(reg(n.doc)["contacts"]) == 1
    assert "carol@a.example" not in clean_net.hsp.rpc("imps_reginfo.list")


def test_notify_answered_481_removes_subscription(clean_net):
    w = Watcher(clean_net, "alice", "alice")
    w.ua.notify_answer = 481
    before = counter(clean_net, "notifies_failed")
    assert w.subscribe(600).status == 200
    w.notify()
    wait_unsubscribed(clean_net, "alice@a.example", 5)
    assert counter(clean_net, "notifies_failed") == before + 1
    # no NOTIFY for later changes
    UE(clean_net, "alice").register(600)
    w.ua.no_request("NOTIFY", 1.0)


def test_notify_timeout_removes_subscription(clean_net):
    # notify_timeout_action defaults to 1: a NOTIFY that gets no answer (tm's 408 after
    # fr_timer, 5 s in cfg/common.cfg) removes the subscription.
    w = Watcher(clean_net, "bob", "bob")
    w.ua.notify_answer = 0  # never answer
    before = counter(clean_net, "notifies_failed")
    assert w.subscribe(600).status == 200
    w.notify()
    wait_unsubscribed(clean_net, "bob@a.example", 12)
    assert counter(clean_net, "notifies_failed") == before + 1


def test_kamailio_restart_keeps_subscription_and_versions(clean_net):
    net = clean_net
    phone = UE(net, "alice")
    phone.register(600)
    w = Watcher(net, "alice", "alice")
    assert w.subscribe(600).status == 200
    w.notify()
    phone2 = UE(net, "alice")
    phone2.register(600)
    w.notify()
    assert w.version == 1

    net.hsp.restart()  # usrloc is in memory: bindings are gone, the subscription is in Redis
    assert "alice@a.example" in net.hsp.rpc("imps_reginfo.list", "alice@a.example")
    phone.register(600)
    n = w.notify()
    assert n.doc["version"] == 2
    c = reginfo_check.contact(n.doc, phone.uri)
    assert c["event"] == "registered"
    # the dialog still works after the restart: refresh in-dialog
    r = w.sub.refresh(600)
    assert r.status == 200
    n = w.notify()
    assert n.doc["version"] == 3


def test_redis_restart_loses_nothing(clean_net):
    net = clean_net
    phone = UE(net, "bob")
    phone.register(600)
    w = Watcher(net, "bob", "bob")
    assert w.subscribe(600).status == 200
    w.notify()

    net.redis.stop()
    net.redis.start()
    phone2 = UE(net, "bob")
    phone2.register(600)
    n = w.notify()
    assert n.doc["version"] == 1
    assert {c["uri"] for c in reg(n.doc)["contacts"]} == {phone.uri, phone2.uri}
    assert reginfo_check.contact(n.doc, phone.uri)["duration-registered"] is not None


def test_rpc_show_and_stats(clean_net):
    phone = UE(clean_net, "carol", display="Carol")
    phone.register(600)
    out = clean_net.hsp.rpc("imps_reginfo.show", "carol@a.example")
    body = out[out.index("<?xml"):].strip().encode()
    doc = reginfo_check.parse(body)
    assert reg(doc)["state"] == "active"
    assert reginfo_check.contact(doc, phone.uri)["display-name"] == "Carol"
    stats = clean_net.hsp.rpc("imps_reginfo.stats")
    for k in ("active_subscriptions", "notifies_sent", "notifies_failed", "store_ok: 1"):
        assert k in stats
    w = Watcher(clean_net, "carol", "carol")
    w.subscribe(600)
    w.notify()
    assert counter(clean_net, "active_subscriptions") == 1
    assert counter(clean_net, "notifies_sent") >= 1


# ---- bad input ---------------------------------------------------------------------------------

def raw_subscribe(net, **kw):
    ua = net.ua("alice")
    s = sipua.Subscription(ua, "sip:alice@a.example", **{k: v for k, v in kw.items()
                                                         if k in ("event", "accept")})
    return s, ua


def test_subscribe_without_event_is_489(clean_net):
    s, ua = raw_subscribe(clean_net, event=None)
    r = s.subscribe(600)
    assert r.status == 489 and r.header("allow-events") == "reg"
    ua.no_request("NOTIFY", 0.5)


def test_unknown_event_package_is_489(clean_net):
    s, ua = raw_subscribe(clean_net, event="dialog")
    r = s.subscribe(600)
    assert r.status == 489 and r.header("allow-events") == "reg"
    assert "alice" not in clean_net.hsp.rpc("imps_reginfo.list")


def test_accept_without_reginfo_is_406(clean_net):
    s, ua = raw_subscribe(clean_net, accept="application/pidf+xml")
    r = s.subscribe(600)
    assert r.status == 406 and r.header("accept") == "application/reginfo+xml"


def test_expires_below_minimum_is_423(clean_net):
    s, ua = raw_subscribe(clean_net)
    r = s.subscribe(1)
    assert r.status == 423 and r.header("min-expires") == "2"
    assert "alice" not in clean_net.hsp.rpc("imps_reginfo.list")


def test_watcher_not_authorized_is_403(clean_net):
    ua = clean_net.ua("bob")
    s = sipua.Subscription(ua, "sip:alice@a.example")
    r = s.subscribe(600)
    assert r.status == 403 and "not authorized" in r.reason
    ua.no_request("NOTIFY", 0.5)
    assert "alice" not in clean_net.hsp.rpc("imps_reginfo.list")


def test_request_uri_without_user_is_400(clean_net):
    ua = clean_net.ua("alice")
    s = sipua.Subscription(ua, "sip:alice@a.example")
    r = s.subscribe(600, uri="sip:a.example")
    assert r.status == 400 and "Request-URI" in r.reason


def test_malformed_to_is_400(clean_net):
    ua = clean_net.ua("alice")
    s = sipua.Subscription(ua, "sip:alice@a.example")
    r = s.subscribe(600, to="<sip:alice@>")
    assert r.status == 400 and "To" in r.reason


def test_in_dialog_subscribe_for_unknown_dialog_is_481(clean_net):
    ua = clean_net.ua("alice")
    s = sipua.Subscription(ua, "sip:alice@a.example")
    s.to_tag = "nosuchtag"
    s.remote_target = f"sip:{clean_net.plan['IMPS_IP_A']}:{clean_net.plan['IMPS_HSP_A_PORT']}"
    # the edge lets only dialogs it record-routed through: sign this one as it would
    sig = hashlib.sha256(f"{clean_net.plan['IMPS_NONCE_SECRET']}:{s.call_id}".encode())
    s.route_set = [f"<sip:{clean_net.edge_hostport};lr;isig={sig.hexdigest()[:20]}>"]
    r = s.subscribe(600)
    assert r.status == 481


def test_redis_down_is_503_with_retry_after(clean_net):
    net = clean_net
    net.redis.stop()
    try:
        ua = net.ua("alice")
        s = sipua.Subscription(ua, "sip:alice@a.example")
        r = s.subscribe(600)
        # The HSP answers 503 with Retry-After; the edge proxy turns a 503 into a 500 of its
        # own (tm's remap_503_500, RFC 3261 16.7: a proxy does not pass 503 upstream).
        assert r.status == 500 and r.reason.startswith("Service Unavailable")
        # straight to the HSP: the 503 itself
        ua2 = net.ua("alice")
        s2 = sipua.Subscription(ua2, "sip:alice@a.example")
        hsp = (net.plan["IMPS_IP_A"], int(net.plan["IMPS_HSP_A_PORT"]))
        ua2.proxy = hsp
        r = s2.subscribe(600)
        assert r.status == 503 and r.reason.startswith("Service Unavailable")
        assert r.header("retry-after") == "5"
        deadline = time.time() + 3
        while "Redis" not in net.hsp.log_text() and time.time() < deadline:
            time.sleep(0.1)
        assert "answered 503: Redis" in net.hsp.log_text()
    finally:
        net.redis.start()


def test_event_id_is_echoed_in_every_notify(clean_net):
    # RFC 6665 8.2.1: a NOTIFY carries the id parameter of the SUBSCRIBE's Event header
    ua = clean_net.ua("carol")
    s = sipua.Subscription(ua, "sip:carol@a.example", event="reg;id=42")
    r = s.subscribe(600)
    assert r.status == 200
    n = ua.wait_request("NOTIFY")
    assert n.header("event") == "reg;id=42"
    UE(clean_net, "carol").register(600)
    n = ua.wait_request("NOTIFY")
    assert n.header("event") == "reg;id=42"
    assert reginfo_check.parse(n.body)["version"] == 1


@pytest.mark.parametrize("target", ["sip:Alice@A.EXAMPLE", "sip:%61lice@a.example"])
def test_watcher_is_keyed_as_the_registrar_keys_the_aor(clean_net, target):
    # usrloc keys alice's bindings by the registrar's rule (user unescaped, lower case); a
    # watcher of the same AoR written otherwise must be notified of them
    net = clean_net
    ua = net.ua("alice")
    s = sipua.Subscription(ua, target)
    assert s.subscribe(600).status == 200
    n = ua.wait_request("NOTIFY")
    doc = reginfo_check.parse(n.body)
    assert doc["registrations"][0]["aor"] == "sip:alice@a.example"
    assert doc["registrations"][0]["contacts"] == []
    phone = UE(net, "alice")
    phone.register(600)
    n = ua.wait_request("NOTIFY")
    g = reg(reginfo_check.parse(n.body))
    assert g["state"] == "active" and [c["uri"] for c in g["contacts"]] == [phone.uri]
    assert f"alice@{net.domain}" in net.hsp.rpc("imps_reginfo.list")


def test_forged_asserted_identity_straight_to_the_hsp_is_not_trusted(clean_net):
    # carol, from her own host and port (not the edge), claims to be alice: the HSP's script
    # removes the header from the forwarded request, but the identity the modules read must
    # not come from it either
    net = clean_net
    ua = net.ua("carol")
    ua.proxy = (net.plan["IMPS_IP_A"], int(net.plan["IMPS_HSP_A_PORT"]))
    s = sipua.Subscription(ua, "sip:alice@a.example")
    s.password = None
    r = s.subscribe(600, extra=["P-Asserted-Identity: <sip:alice@a.example>"])
    assert r.status == 403, r.raw
    assert "alice@a.example" not in net.hsp.rpc("imps_reginfo.list")
