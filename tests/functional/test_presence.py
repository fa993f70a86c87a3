"""imps_presence through the real edge proxy, HSP and presence server (seed figures 3 to 6):
PUBLISH with ETags, composition of two devices' documents, SUBSCRIBE/NOTIFY, query, watcher
rules, watcher info, bad input, restarts. Every NOTIFY body is schema-validated."""

import os
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import imps_net  # noqa: E402
import presence_check  # noqa: E402
from sipua import Publisher, Subscription, pidf  # noqa: E402

DOMAIN = "a.example"
PIDF = "application/pidf+xml"
WINFO = "application/watcherinfo+xml"


def presence_sub(ua, user, event="presence", accept=PIDF):
    return Subscription(ua, f"sip:{user}@{DOMAIN}", event=event, accept=accept)


def notify_doc(n):
    assert n.header("content-type") == PIDF, n.raw
    return presence_check.parse_pidf(n.body)


def state(n):
    return n.header("subscription-state")


def basics(doc):
    return {t["id"]: t["basic"] for t in doc["tuples"]}


def ps_show(net, user):
    return net.ps.rpc("imps_presence.show", f"{user}@{DOMAIN}")


def test_publish_then_subscribe_gets_the_document(clean_net):
    net = clean_net
    alice = net.ua("alice")
    pub = Publisher(alice)
    r = pub.publish(pidf("alice", DOMAIN, "open", "phone", note="at work"), expires=600, etag=None)
    assert r.status == 200, r.raw
    assert r.header("sip-etag")
    assert r.header("expires") == "600"

    bob = net.ua("bob")
    sub = presence_sub(bob, "alice")
    r = sub.subscribe(600)
    assert r.status == 200, r.raw
    assert r.header("expires") == "600"
    n = bob.wait_request()
    assert n.header("event") == "presence"
    assert state(n).startswith("active;expires=")
    doc = notify_doc(n)
    assert doc["entity"] == f"sip:alice@{DOMAIN}"
    assert basics(doc) == {"phone": "open"}
    assert doc["tuples"][0]["notes"] == {None: "at work"}
    # the NOTIFY came back through the HSP and the edge (figure 5): three Vias, the first
    # the edge's, the last the presence server's
    vias = n.all("via")
    assert len(vias) == 3, vias
    assert f":{net.plan['IMPS_PS_A_PORT']}" in vias[-1]
    assert f":{net.plan['IMPS_HSP_A_PORT']}" in vias[1]


RPID_PERSON = ('<dm:person id="p1"><rpid:activities><rpid:{act}/></rpid:activities>'
               '<dm:timestamp>{ts}</dm:timestamp></dm:person>')
MOOD_PERSON = ('<dm:person id="p2"><rpid:mood><rpid:{mood}/></rpid:mood>'
               '<dm:timestamp>{ts}</dm:timestamp></dm:person>')


def test_two_devices_two_watchers_publish_subscribe_notify_query(clean_net):
    """Seed figures 3 to 6: alice publishes from a phone and a laptop; bob and carol watch;
    every change reaches both; a query (Expires: 0) gets one NOTIFY and no subscription."""
    net = clean_net
    phone, laptop = Publisher(net.ua("alice")), Publisher(net.ua("alice"))
    bob, carol = net.ua("bob"), net.ua("carol")
    subs = [presence_sub(bob, "alice"), presence_sub(carol, "alice")]
    for s, ua in zip(subs, (bob, carol)):
        assert s.subscribe(600).status == 200
        n = ua.wait_request()
        doc = notify_doc(n)
        # nothing published yet: the offline document
        assert [t["basic"] for t in doc["tuples"]] == ["closed"]

    r = phone.publish(pidf("alice", DOMAIN, "open", "phone",
                           person=RPID_PERSON.format(act="on-the-phone", ts="2026-11-25T10:00:00Z")),
                      etag=None)
    assert r.status == 200, r.raw
    for ua in (bob, carol):
        doc = notify_doc(ua.wait_request())
        assert basics(doc) == {"phone": "open"}
        assert doc["person"]["activities"] == ["on-the-phone"]

    r = laptop.publish(pidf("alice", DOMAIN, "closed", "laptop",
                            person=MOOD_PERSON.format(mood="happy", ts="2026-11-25T10:05:00Z")),
                       etag=None)
    assert r.status == 200, r.raw
    assert laptop.etag != phone.etag
    for ua in (bob, carol):
        n = ua.wait_request()
        doc = notify_doc(n)
        # both devices' tuples, and one person with the phone's activity and the laptop's mood
        assert basics(doc) == {"phone": "open", "laptop": "closed"}
        assert doc["person"]["activities"] == ["on-the-phone"]
        assert doc["person"]["mood"] == ["happy"]

    # the query of figure 6: one NOTIFY with the state, terminated, nothing stored
    dave = net.ua("bob")
    q = presence_sub(dave, "alice")
    r = q.subscribe(0)
    assert r.status == 200, r.raw
    n = dave.wait_request()
    assert state(n) == "terminated;reason=timeout"
    assert basics(notify_doc(n)) == {"phone": "open", "laptop": "closed"}
    watchers = net.ps.rpc("imps_presence.watchers", f"alice@{DOMAIN}")
    assert watchers.count("status: active") == 2, watchers

    # the phone goes away: only the laptop's tuple is left
    r = phone.publish(expires=0)
    assert r.status == 200 and r.header("expires") == "0", r.raw
    for ua in (bob, carol):
        assert basics(notify_doc(ua.wait_request())) == {"laptop": "closed"}


def test_etag_refresh_modify_remove_and_412(clean_net):
    net = clean_net
    alice, bob = net.ua("alice"), net.ua("bob")
    pub = Publisher(alice)
    assert pub.publish(pidf("alice", DOMAIN, "open", "t1"), expires=600, etag=None).status == 200
    sub = presence_sub(bob, "alice")
    assert sub.subscribe(600).status == 200
    bob.wait_request()

    # refresh: no body, new ETag, new expiry, no NOTIFY (nothing changed)
    first = pub.etag
    r = pub.publish(None, expires=300)
    assert r.status == 200, r.raw
    assert r.header("expires") == "300"
    assert pub.etag and pub.etag != first
    bob.no_request(wait=0.7)

    # the old ETag is gone
    r = pub.publish(None, expires=300, etag=first, keep_etag=False)
    assert r.status == 412, r.raw
    # modify: replaces the publication
    r = pub.publish(pidf("alice", DOMAIN, "closed", "t1", note="gone"), expires=300)
    assert r.status == 200
    doc = notify_doc(bob.wait_request())
    assert basics(doc) == {"t1": "closed"}
    assert doc["tuples"][0]["notes"] == {None: "gone"}
    # unknown ETag
    assert pub.publish(None, expires=300, etag="nosuchetag", keep_etag=False).status == 412
    # remove: the offline document
    assert pub.publish(None, expires=0).status == 200
    doc = notify_doc(bob.wait_request())
    assert [t["basic"] for t in doc["tuples"]] == ["closed"]
    assert "publications: " not in ps_show(net, "alice") or "etag" not in ps_show(net, "alice")
    stats = net.ps.rpc("imps_presence.stats")
    assert "publish_412: 2" in stats, stats


def test_concurrent_modify_on_one_etag_exactly_one_wins(clean_net):
    net = clean_net
    base = Publisher(net.ua("alice"))
    assert base.publish(pidf("alice", DOMAIN, "open", "t1"), etag=None).status == 200
    etag = base.etag
    results = []

    def modify(note):
        p = Publisher(net.ua("alice"))
        p.etag = etag
        results.append(p.publish(pidf("alice", DOMAIN, "open", "t1", note=note)).status)

    for round_ in range(5):
        results.clear()
        threads = [threading.Thread(target=modify, args=(f"n{i}",)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [200, 412], results
        shown = ps_show(net, "alice")
        assert shown.count("etag:") == 1, shown
        etag = [l.split(":", 1)[1].strip() for l in shown.splitlines() if "etag:" in l][0]


def test_expired_publication_gives_the_offline_document(clean_net):
    net = clean_net
    pub = Publisher(net.ua("alice"))
    bob = net.ua("bob")
    sub = presence_sub(bob, "alice")
    assert pub.publish(pidf("alice", DOMAIN, "open", "t1"), expires=2, etag=None).status == 200
    assert sub.subscribe(600).status == 200
    assert basics(notify_doc(bob.wait_request())) == {"t1": "open"}
    n = bob.wait_request(timeout=5)
    doc = notify_doc(n)
    assert [(t["id"], t["basic"]) for t in doc["tuples"]] == [("offline", "closed")]
    assert state(n).startswith("active")


def test_unsubscribe_and_expiry_send_a_final_notify(clean_net):
    net = clean_net
    bob = net.ua("bob")
    sub = presence_sub(bob, "alice")
    assert sub.subscribe(600).status == 200
    bob.wait_request()
    r = sub.refresh(300)
    assert r.status == 200 and r.header("expires") == "300"
    n = bob.wait_request()
    assert state(n).startswith("active;expires=")
    r = sub.unsubscribe()
    assert r.status == 200
    n = bob.wait_request()
    assert state(n) == "terminated;reason=timeout"
    notify_doc(n)
    # a refresh of a subscription that is gone
    assert sub.refresh(300).status == 481

    sub2 = presence_sub(bob, "alice")
    assert sub2.subscribe(2).status == 200
    bob.wait_request()
    n = bob.wait_request(timeout=5)
    assert state(n) == "terminated;reason=timeout"
    assert "alice" not in net.ps.rpc("imps_presence.watchers", f"alice@{DOMAIN}")


def test_notify_answered_481_removes_the_subscription(clean_net):
    net = clean_net
    bob = net.ua("bob")
    pub = Publisher(net.ua("alice"))
    sub = presence_sub(bob, "alice")
    assert sub.subscribe(600).status == 200
    bob.wait_request()
    bob.notify_answer = 481
    assert pub.publish(pidf("alice", DOMAIN, "open", "t1"), etag=None).status == 200
    bob.wait_request()
    deadline = time.time() + 3
    while time.time() < deadline and "id:" in net.ps.rpc("imps_presence.watchers", f"alice@{DOMAIN}"):
        time.sleep(0.1)
    assert "id:" not in net.ps.rpc("imps_presence.watchers", f"alice@{DOMAIN}")


def snapshot(net, user):
    """What the presence server holds for user: the document and each publication (ETag and
    body), without the seconds left (they change while the test runs)."""
    out = ps_show(net, user)
    return [l for l in out.splitlines() if "expires:" not in l]


BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                            for i in range(1, 10))
                  + ']><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@a.example">'
                  '<tuple id="t"><status><basic>open</basic></status><note>&lol9;</note></tuple></presence>')
QUADRATIC = ('<?xml version="1.0"?><!DOCTYPE q [<!ENTITY a "' + "x" * 2000 + '">]>'
             '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@a.example">'
             '<tuple id="t"><status><basic>open</basic></status><note>' + "&a;" * 500
             + '</note></tuple></presence>')
PIDF_HEAD = '<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@a.example">'

BAD_BODIES = [
    ("doctype", '<?xml version="1.0"?><!DOCTYPE presence SYSTEM "http://evil.example/x.dtd">'
     + pidf("alice", DOMAIN).split("?>", 1)[1], "DOCTYPE"),
    ("billion-laughs", BILLION_LAUGHS, "DOCTYPE"),
    ("quadratic-blowup", QUADRATIC, ""),  # over the 8192-byte bound or DOCTYPE: either names it
    ("too-big", pidf("alice", DOMAIN, note="x" * 9000), "larger than"),
    ("not-well-formed", PIDF_HEAD + '<tuple id="t"><status><basic>open</basic></status>', "well-formed"),
    ("wrong-root", '<?xml version="1.0"?><presenze xmlns="urn:ietf:params:xml:ns:pidf" '
     'entity="sip:alice@a.example"/>', "root"),
    ("wrong-namespace", '<?xml version="1.0"?><presence xmlns="urn:example:not-pidf" '
     'entity="sip:alice@a.example"><tuple id="t"><status><basic>open</basic></status></tuple></presence>',
     "namespace"),
    ("tuple-without-id", PIDF_HEAD + '<tuple><status><basic>open</basic></status></tuple></presence>', "id"),
    ("bad-basic", PIDF_HEAD + '<tuple id="t"><status><basic>busy</basic></status></tuple></presence>',
     "basic"),
    ("entity-mismatch", pidf("bob", DOMAIN), "entity"),
]


@pytest.mark.parametrize("name,body,why", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_bodies_get_400_and_change_nothing(clean_net, name, body, why):
    net = clean_net
    alice = net.ua("alice")
    pub = Publisher(alice)
    assert pub.publish(pidf("alice", DOMAIN, "open", "t1", note="before"), etag=None).status == 200
    before = snapshot(net, "alice")
    rejected = int(net.ps.rpc("imps_presence.stats").split("rejected_bodies:")[1].split()[0])
    # as a new publication and as a modification of the existing one
    for etag in (None, pub.etag):
        r = pub.publish(body, etag=etag, keep_etag=False)
        assert r.status == 400, r.raw
        assert r.reason.startswith("Bad Request ("), r.reason
        if why:
            assert why.lower() in r.reason.lower(), r.reason
    assert snapshot(net, "alice") == before
    after = int(net.ps.rpc("imps_presence.stats").split("rejected_bodies:")[1].split()[0])
    assert after == rejected + 2
    # the ETag still works
    assert pub.publish(None, expires=600).status == 200


def test_publish_header_errors(clean_net):
    net = clean_net
    alice = net.ua("alice")
    pub = Publisher(alice)
    r = pub.publish(pidf("alice", DOMAIN), etag=None, event="dialog")
    assert r.status == 489 and r.header("allow-events") == "presence", r.raw
    r = pub.publish(pidf("alice", DOMAIN), etag=None, content_type="text/plain")
    assert r.status == 415 and r.header("accept") == PIDF, r.raw
    r = pub.publish(pidf("alice", DOMAIN), etag=None, expires=1)
    assert r.status == 423 and r.header("min-expires") == "2", r.raw
    r = pub.publish(None, etag=None)
    assert r.status == 400 and "SIP-If-Match" in r.reason, r.raw
    # bob may not publish alice's presence (the edge asserts bob, the presence server refuses)
    bobpub = Publisher(net.ua("bob"), target=f"sip:alice@{DOMAIN}")
    r = bobpub.publish(pidf("alice", DOMAIN), etag=None)
    assert r.status == 403, r.raw
    assert "alice" not in net.ps.rpc("imps_presence.list")
    # carol is not entitled to publish (HAAA, at the HSP)
    r = Publisher(net.ua("carol")).publish(pidf("carol", DOMAIN), etag=None)
    assert r.status == 403, r.raw


def test_subscribe_header_errors(clean_net):
    net = clean_net
    bob = net.ua("bob")
    r = presence_sub(bob, "alice", accept="text/plain").subscribe(600)
    assert r.status == 406 and r.header("accept") == PIDF, r.raw
    r = presence_sub(bob, "alice").subscribe(1)
    assert r.status == 423 and r.header("min-expires") == "2", r.raw
    r = presence_sub(bob, "alice", event="presence.winfo", accept=WINFO).subscribe(600)
    assert r.status == 403, r.raw
    assert "id:" not in net.ps.rpc("imps_presence.watchers", f"alice@{DOMAIN}")


def test_presence_server_takes_requests_only_from_the_hsp(clean_net):
    net = clean_net
    alice = net.ua("alice")
    ps = (net.plan["IMPS_IP_A"], int(net.plan["IMPS_PS_A_PORT"]))
    direct = Publisher(alice)
    direct.password = None
    alice.proxy = ps
    r = direct.publish(pidf("alice", DOMAIN), etag=None)
    assert r.status == 403, r.raw
    s = presence_sub(alice, "bob")
    s.password = None
    assert s.subscribe(600).status == 403


def winfo_watchers(n):
    assert n.header("content-type") == WINFO, n.raw
    doc = presence_check.parse_winfo(n.body)
    return doc, {w["uri"]: (w["status"], w["event"]) for l in doc["lists"] for w in l["watchers"]}


def test_confirm_then_allow_with_watcher_info(clean_net):
    net = clean_net
    imps_net.presence_rules([("alice@a.example", "bob@a.example", "confirm"), ("a.example", "a.example", "allow")])
    alice, bob = net.ua("alice"), net.ua("bob")
    assert Publisher(alice).publish(pidf("alice", DOMAIN, "open", "t1"), etag=None).status == 200
    winfo = presence_sub(alice, "alice", event="presence.winfo", accept=WINFO)
    assert winfo.subscribe(600).status == 200
    doc, ws = winfo_watchers(alice.wait_request())
    assert doc["state"] == "full" and doc["version"] == 0 and ws == {}

    sub = presence_sub(bob, "alice")
    assert sub.subscribe(600).status == 200
    n = bob.wait_request()
    assert state(n).startswith("pending;expires=")
    assert not n.body and n.header("content-type") is None
    doc, ws = winfo_watchers(alice.wait_request())
    assert doc["state"] == "partial" and doc["version"] == 1
    assert ws == {f"sip:bob@{DOMAIN}": ("pending", "subscribe")}

    out = net.ps.rpc("imps_presence.authorize", f"alice@{DOMAIN}", f"bob@{DOMAIN}", "allow")
    assert "changed: 1" in out, out
    n = bob.wait_request()
    assert state(n).startswith("active;expires=")
    assert basics(notify_doc(n)) == {"t1": "open"}
    doc, ws = winfo_watchers(alice.wait_request())
    assert doc["version"] == 2 and ws == {f"sip:bob@{DOMAIN}": ("active", "approved")}

    # a refresh of the winfo subscription gets the full state
    assert winfo.refresh(600).status == 200
    doc, ws = winfo_watchers(alice.wait_request())
    assert doc["state"] == "full" and doc["version"] == 3
    assert ws == {f"sip:bob@{DOMAIN}": ("active", "approved")}

    # bob leaves: alice is told
    assert sub.unsubscribe().status == 200
    bob.wait_request()
    doc, ws = winfo_watchers(alice.wait_request())
    assert ws == {f"sip:bob@{DOMAIN}": ("terminated", "timeout")}


def test_polite_block_and_block(clean_net):
    net = clean_net
    imps_net.presence_rules([("alice@a.example", "carol@a.example", "polite-block"),
                             ("alice@a.example", "b.example", "block"), ("a.example", "a.example", "allow")])
    alice, bob, carol = net.ua("alice"), net.ua("bob"), net.ua("carol")
    pub = Publisher(alice)
    assert pub.publish(pidf("alice", DOMAIN, "open", "t1"), etag=None).status == 200
    cs = presence_sub(carol, "alice")
    assert cs.subscribe(600).status == 200
    n = carol.wait_request()
    # answered as if active, with the offline document
    assert state(n).startswith("active;expires=")
    assert [(t["id"], t["basic"]) for t in notify_doc(n)["tuples"]] == [("offline", "closed")]
    bs = presence_sub(bob, "alice")
    assert bs.subscribe(600).status == 200
    assert basics(notify_doc(bob.wait_request())) == {"t1": "open"}
    # a change reaches bob, not carol
    assert pub.publish(pidf("alice", DOMAIN, "closed", "t1")).status == 200
    assert basics(notify_doc(bob.wait_request())) == {"t1": "closed"}
    carol.no_request(wait=0.7)

    # alice blocks bob: at once, bob's subscription ends with reason=rejected
    out = net.ps.rpc("imps_presence.authorize", f"alice@{DOMAIN}", f"bob@{DOMAIN}", "block")
    assert "changed: 1" in out, out
    n = bob.wait_request()
    assert state(n) == "terminated;reason=rejected"
    assert not n.body
    # and a new SUBSCRIBE of bob is refused
    r = presence_sub(bob, "alice").subscribe(600)
    assert r.status == 403, r.raw
    # carol turned back to allow: her next NOTIFY has the real state
    net.ps.rpc("imps_presence.authorize", f"alice@{DOMAIN}", f"carol@{DOMAIN}", "allow")
    assert basics(notify_doc(carol.wait_request())) == {"t1": "closed"}


def stats(net):
    out = net.ps.rpc("imps_presence.stats")
    return {l.split(":")[0].strip(): int(l.split(":")[1]) for l in out.splitlines() if ":" in l}


def test_rpc_publish_list_show_terminate_stats(clean_net, tmp_path):
    net = clean_net
    before = stats(net)
    bob = net.ua("bob")
    sub = presence_sub(bob, "alice")
    assert sub.subscribe(600).status == 200
    bob.wait_request()
    f = tmp_path / "gw.xml"
    f.write_text(pidf("alice", DOMAIN, "open", "gateway", note="from the gateway"))
    out = net.ps.rpc("imps_presence.publish", f"alice@{DOMAIN}", str(f), 120)
    assert "SIP-ETag:" in out and "Expires: 120" in out, out
    doc = notify_doc(bob.wait_request())
    assert basics(doc) == {"gateway": "open"}
    shown = ps_show(net, "alice")
    assert "source: rpc" in shown and "from the gateway" in shown
    lst = net.ps.rpc("imps_presence.list")
    assert f"alice@{DOMAIN}" in lst and "publications: 1" in lst and "watchers: 1" in lst, lst
    # a bad administrative body is refused like a PUBLISH's
    out = net.ps.rpc("imps_presence.publish", f"alice@{DOMAIN}", "<notxml", check=False)
    assert "400" in out and "well-formed" in out, out
    w = net.ps.rpc("imps_presence.watchers", f"alice@{DOMAIN}")
    sid = [l.split(":", 1)[1].strip() for l in w.splitlines() if l.strip().startswith("id:")][0]
    net.ps.rpc("imps_presence.terminate", sid)
    n = bob.wait_request()
    assert state(n) == "terminated;reason=deactivated"
    assert "Subscription not found" in net.ps.rpc("imps_presence.terminate", sid, check=False)
    after = stats(net)
    delta = {k: after[k] - before[k] for k in after}
    assert delta == {"publications": 1, "live_publications": 1, "active_watchers": 0,
                     "notifies_sent": 3, "notifies_failed": 0, "publish_412": 0,
                     "rejected_bodies": 1, "timer_errors": 0, "store_ok": 0}, (before, after)
    assert after["live_publications"] == 1 and after["active_watchers"] == 0
    assert after["store_ok"] == 1


def test_presence_server_restart_loses_nothing(clean_net):
    net = clean_net
    alice, bob = net.ua("alice"), net.ua("bob")
    pub = Publisher(alice)
    assert pub.publish(pidf("alice", DOMAIN, "open", "t1"), etag=None).status == 200
    sub = presence_sub(bob, "alice")
    assert sub.subscribe(600).status == 200
    n = bob.wait_request()
    cseq = int(n.header("cseq").split()[0])
    net.ps.restart()
    bob.no_request(wait=0.5)  # no duplicate NOTIFY after the restart
    r = pub.publish(pidf("alice", DOMAIN, "closed", "t1"))
    assert r.status == 200, r.raw
    n = bob.wait_request()
    assert int(n.header("cseq").split()[0]) == cseq + 1
    assert basics(notify_doc(n)) == {"t1": "closed"}
    assert sub.refresh(600).status == 200
    assert int(bob.wait_request().header("cseq").split()[0]) == cseq + 2


def test_redis_restart_loses_nothing(clean_net):
    net = clean_net
    alice, bob = net.ua("alice"), net.ua("bob")
    pub = Publisher(alice)
    assert pub.publish(pidf("alice", DOMAIN, "open", "t1"), etag=None).status == 200
    sub = presence_sub(bob, "alice")
    assert sub.subscribe(600).status == 200
    cseq = int(bob.wait_request().header("cseq").split()[0])
    time.sleep(1.2)  # appendfsync everysec
    net.redis.stop()
    net.redis.start()
    r = pub.publish(pidf("alice", DOMAIN, "closed", "t1"))
    assert r.status == 200, r.raw
    n = bob.wait_request()
    assert int(n.header("cseq").split()[0]) == cseq + 1
    assert basics(notify_doc(n)) == {"t1": "closed"}


def test_redis_down_gives_503_and_changes_nothing(clean_net):
    net = clean_net
    pub = Publisher(net.ua("alice"))
    net.redis.stop()
    try:
        r = pub.publish(pidf("alice", DOMAIN), etag=None)
        # the presence server answers 503 with Retry-After; the proxies turn a 503 into 500
        # (RFC 3261 16.7) and keep the reason phrase
        assert r.status == 500 and r.reason.startswith("Service Unavailable"), r.raw
        assert "PUBLISH answered 503" in net.ps.log_text()
    finally:
        net.redis.start()
    assert "etag:" not in ps_show(net, "alice")
    assert pub.publish(pidf("alice", DOMAIN), etag=None).status == 200


@pytest.fixture
def ps2(net):
    """A second presence server node on the same Redis (port 5081, trusts loopback senders so
    the test can talk to it directly, NOTIFYs coalesced per second)."""
    path = variant_cfg(net, "ps-a2", 5081, [])
    k = imps_net.Kamailio("presence", "ps-a2", ("127.0.0.1", 5081), net.workdir,
                          {"PS_TEST_DB": None, "PS_TRUST_LOOPBACK": None, "IMPS_PS_NO_AUTHZ": None,
                           "PS_MIN_EXPIRES": 2,
                           "PS_PUB_MIN_EXPIRES": 2, "PS_NOTIFY_INTERVAL": 1000}, cfg=path)
    k.start()
    yield k
    k.stop()


def test_two_nodes_on_one_redis_and_coalesced_notifies(clean_net, ps2):
    """A subscription made on node 2 is notified for a PUBLISH on node 1 (through the HSP);
    an ETag from node 1 is modified on node 2; node 2 sends at most one NOTIFY per second per
    watcher, with the latest state."""
    net = clean_net
    alice, bob = net.ua("alice"), net.ua("bob")
    sub = presence_sub(bob, "alice")
    sub.password = None
    bob.proxy = ("127.0.0.1", 5081)
    assert sub.subscribe(600).status == 200
    n = bob.wait_request()
    c0 = int(n.header("cseq").split()[0])

    pub = Publisher(alice)  # through the edge and the HSP to node 1
    assert pub.publish(pidf("alice", DOMAIN, "open", "t1", note="node1"), etag=None).status == 200
    n = bob.wait_request()
    assert int(n.header("cseq").split()[0]) == c0 + 1
    assert notify_doc(n)["tuples"][0]["notes"] == {None: "node1"}

    # the same ETag, modified three times quickly on node 2
    direct = Publisher(net.ua("alice"))
    direct.password = None
    direct.ua.proxy = ("127.0.0.1", 5081)
    direct.etag = pub.etag
    t0 = time.time()
    for i in range(3):
        r = direct.publish(pidf("alice", DOMAIN, "open", "t1", note=f"node2-{i}"))
        assert r.status == 200, r.raw
    # the old ETag is gone on node 1 too
    assert pub.publish(None, expires=600, keep_etag=False).status == 412
    notes = []
    deadline = time.time() + 4
    while time.time() < deadline:
        try:
            n = bob.wait_request(timeout=0.3)
        except TimeoutError:
            if notes and notes[-1][1] == "node2-2":
                break
            continue
        notes.append((time.time() - t0, notify_doc(n)["tuples"][0]["notes"][None],
                      int(n.header("cseq").split()[0])))
    # the first change right away (node 1's NOTIFY was under a second ago: queued), then the
    # latest state once; CSeqs consecutive
    assert notes[-1][1] == "node2-2", notes
    assert len(notes) <= 2, notes
    assert [c for _, _, c in notes] == list(range(c0 + 2, c0 + 2 + len(notes))), notes


def test_presence_server_asks_the_haaa_too(clean_net):
    """Seed figures 3, 4 and 6: the presence application authorizes publish, subscribe and
    query itself (imps_aaa at the presence server; answers cached in Redis)."""
    net = clean_net

    def aaa():
        out = net.ps.rpc("imps_aaa.stats")
        return {l.split(":")[0].strip(): int(l.split(":")[1]) for l in out.splitlines() if ":" in l}

    net.ps.rpc("imps_aaa.cache_flush")
    before = aaa()
    assert Publisher(net.ua("alice")).publish(pidf("alice", DOMAIN), etag=None).status == 200
    bob = net.ua("bob")
    assert presence_sub(bob, "alice").subscribe(600).status == 200
    bob.wait_request()
    assert presence_sub(bob, "alice").subscribe(0).status == 200
    after = aaa()
    # three decisions (alice/publish, bob/subscribe, bob/query) taken here: the HSP asked the
    # HAAA a moment before and the answers are in the shared decision cache (Redis)
    assert after["cache_hits"] - before["cache_hits"] == 3, (before, after)
    assert after["rejects"] == before["rejects"]
    # carol may subscribe and query but not publish: a publication of hers asserted by the
    # HSP would be refused here as well
    out = net.ps.rpc("imps_aaa.check", f"carol@{DOMAIN}", "publish")
    assert "reject" in out.lower(), out


def test_subscriptions_are_accounted(clean_net):
    """Accounting-Request Start when a subscription is created and Stop when it ends (imps_aaa,
    sent by its async workers), in FreeRADIUS's detail file."""
    net = clean_net
    bob = net.ua("bob")
    sub = presence_sub(bob, "alice")
    assert sub.subscribe(600).status == 200
    bob.wait_request()
    w = net.ps.rpc("imps_presence.watchers", f"alice@{DOMAIN}")
    sid = [l.split(":", 1)[1].strip() for l in w.splitlines() if l.strip().startswith("id:")][0]
    assert sub.unsubscribe().status == 200
    bob.wait_request()

    def records():
        try:
            text = open(net.radius.detail_file).read()
        except OSError:
            return []
        return [r for r in text.split("\n\n") if f'Acct-Session-Id = "{sid}"' in r]

    deadline = time.time() + 5
    while time.time() < deadline and len(records()) < 2:
        time.sleep(0.1)
    recs = records()
    assert len(recs) == 2, recs
    assert "Acct-Status-Type = Start" in recs[0] and "Acct-Status-Type = Stop" in recs[1]
    for r in recs:
        assert 'User-Name = "bob"' in r


def test_rules_changed_in_sql_apply_with_reauthorize(clean_net):
    # (the session's presence server runs without the rules poll: PS_RULES_POLL=0)
    net = clean_net
    bob = net.ua("bob")
    sub = presence_sub(bob, "alice")
    assert sub.subscribe(600).status == 200
    assert state(bob.wait_request()).startswith("active")
    # the admin edits the table directly: new subscriptions follow at once ...
    imps_net.presence_rules([("alice@a.example", "bob@a.example", "confirm")])
    bob2 = net.ua("bob")
    s2 = presence_sub(bob2, "alice")
    assert s2.subscribe(600).status == 200
    assert state(bob2.wait_request()).startswith("pending")
    # ... existing ones when told
    out = net.ps.rpc("imps_presence.reauthorize", f"alice@{DOMAIN}")
    assert "changed: 1" in out, out
    n = bob.wait_request()
    assert state(n).startswith("pending") and not n.body


def test_rules_changed_in_sql_reach_existing_watchers_by_the_poll(clean_net, ps2):
    """ps2 polls the rules table every second (rules_poll_interval): a row added, changed or
    removed with SQL is applied to the presentity's existing watchers without any RPC."""
    net = clean_net
    time.sleep(1.5)  # ps2's first poll has recorded the table as it is
    bob = net.ua("bob")
    sub = presence_sub(bob, "alice")
    assert sub.subscribe(600).status == 200
    assert state(bob.wait_request()).startswith("active")
    imps_net.presence_rules([("a.example", "a.example", "allow"),
                             ("alice@a.example", "bob@a.example", "block")])
    n = bob.wait_request(timeout=4)
    assert state(n) == "terminated;reason=rejected", n.raw
    # a domain row changed: every presentity of the domain is re-checked
    carol = net.ua("carol")
    cs = presence_sub(carol, "bob")
    assert cs.subscribe(600).status == 200
    assert state(carol.wait_request()).startswith("active")
    imps_net.presence_rules([("a.example", "a.example", "confirm")])
    n = carol.wait_request(timeout=4)
    assert state(n).startswith("pending"), n.raw


def variant_cfg(net, name, port, edits):
    """presence.cfg for another node on the same Redis (imps_net.presence_variant_cfg)."""
    return imps_net.presence_variant_cfg(net.workdir, name, port, edits)


def test_rules_in_postgresql(clean_net):
    """The rules table through db_postgres: same schema file, rules read and written there."""
    import subprocess
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
    from bench_reginfo import PG_PORT, Postgres

    net = clean_net
    os.chmod(net.workdir, 0o755)  # the postgres user runs the cluster below it
    pg = Postgres(os.path.join(net.workdir, "pgrules"))
    os.makedirs(os.path.dirname(pg.dir), exist_ok=True)
    psql = ["psql", "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "kamailio", "-d", "kamailio", "-q",
            "-v", "ON_ERROR_STOP=1", "-At"]
    k = None
    try:
        pg.start()
        subprocess.run(psql + ["-f", os.path.join(imps_net.SQL_DIR, "imps_presence-create.sql")],
                       check=True, capture_output=True)
        subprocess.run(psql + ["-c", "INSERT INTO imps_presence_rules VALUES "
                               "('alice@a.example', 'bob@a.example', 'block')"], check=True)
        path = variant_cfg(net, "ps-pg", 5082, [
            ('loadmodule "db_sqlite.so"', 'loadmodule "db_postgres.so"'),
            ('"sqlite://IMPS_RUN_DIR/IMPS_MY_PS_DB_FILE"',
             f'"postgres://kamailio:kamailio@127.0.0.1:{PG_PORT}/kamailio"')])
        k = imps_net.Kamailio("presence", "ps-pg", ("127.0.0.1", 5082), net.workdir,
                              {"PS_TRUST_LOOPBACK": None, "IMPS_PS_NO_AUTHZ": None,
                               "PS_MIN_EXPIRES": 2}, cfg=path)
        k.start()
        bob = net.ua("bob")
        bob.proxy = ("127.0.0.1", 5082)
        s = presence_sub(bob, "alice")
        s.password = None
        r = s.subscribe(600)
        assert r.status == 403 and "blocked" in r.reason, r.raw
        out = k.rpc("imps_presence.authorize", f"alice@{DOMAIN}", f"bob@{DOMAIN}", "allow")
        assert "action: allow" in out, out
        rows = subprocess.run(psql + ["-c", "SELECT presentity, watcher, action FROM imps_presence_rules"],
                              check=True, capture_output=True, text=True).stdout.split()
        assert rows == ["alice@a.example|bob@a.example|allow"], rows
        s = presence_sub(bob, "alice")
        s.password = None
        assert s.subscribe(600).status == 200
        assert state(bob.wait_request()).startswith("active")
    finally:
        if k:
            k.stop()
        pg.stop()


def test_rpc_publication_refresh_modify_remove_and_domain_rules(clean_net):
    net = clean_net
    bob = net.ua("bob")
    assert presence_sub(bob, "alice").subscribe(600).status == 200
    bob.wait_request()
    out = net.ps.rpc("imps_presence.publish", f"alice@{DOMAIN}", pidf("alice", DOMAIN, "open", "gw"), 120)
    etag = out.split("SIP-ETag: ")[1].split()[0]
    assert basics(notify_doc(bob.wait_request())) == {"gw": "open"}
    out = net.ps.rpc("imps_presence.publish", f"alice@{DOMAIN}", "-", 300, etag)  # refresh
    etag2 = out.split("SIP-ETag: ")[1].split()[0]
    assert etag2 != etag and "Expires: 300" in out
    bob.no_request(wait=0.5)
    net.ps.rpc("imps_presence.publish", f"alice@{DOMAIN}", pidf("alice", DOMAIN, "closed", "gw"), 300, etag2)
    assert basics(notify_doc(bob.wait_request())) == {"gw": "closed"}
    out = net.ps.rpc("imps_presence.publish", f"alice@{DOMAIN}", "-", 300, etag2, check=False)
    assert "412" in out, out
    etag3 = [l.split(":", 1)[1].strip() for l in ps_show(net, "alice").splitlines() if "etag:" in l][0]
    net.ps.rpc("imps_presence.publish", f"alice@{DOMAIN}", "-", 0, etag3)  # remove
    assert [t["id"] for t in notify_doc(bob.wait_request())["tuples"]] == ["offline"]

    # a rule for a whole domain's presentities reaches their existing watchers at once
    out = net.ps.rpc("imps_presence.authorize", DOMAIN, f"bob@{DOMAIN}", "confirm")
    assert "changed: 1" in out, out
    assert state(bob.wait_request()).startswith("pending")


def test_notify_failures_are_counted(clean_net):
    net = clean_net
    before = stats(net)
    bob = net.ua("bob")
    assert presence_sub(bob, "alice").subscribe(600).status == 200
    bob.wait_request()
    bob.notify_answer = 500
    assert Publisher(net.ua("alice")).publish(pidf("alice", DOMAIN), etag=None).status == 200
    bob.wait_request()
    deadline = time.time() + 3
    while time.time() < deadline and stats(net)["notifies_failed"] == before["notifies_failed"]:
        time.sleep(0.1)
    assert stats(net)["notifies_failed"] == before["notifies_failed"] + 1
    # a 500 without Retry-After ends the subscription (RFC 6665 4.2.2)
    assert "id:" not in net.ps.rpc("imps_presence.watchers", f"alice@{DOMAIN}")


def test_a_retransmitted_publish_is_answered_again_not_processed_again(clean_net, ps2):
    """A PUBLISH retransmission (same branch) arriving at the presence server itself gets the
    same answer from the transaction, and its ETag is not consumed a second time."""
    net = clean_net
    ua = net.ua("alice")
    ua.proxy = ("127.0.0.1", 5081)
    pub = Publisher(ua)
    pub.password = None
    assert pub.publish(pidf("alice", DOMAIN, "open", "t1"), etag=None).status == 200
    raw = pub._build(pidf("alice", DOMAIN, "closed", "t1").encode(), 600, pub.etag, PIDF, "presence", [])
    first = ua.request(raw)
    assert first.status == 200, first.raw
    again = ua.request(raw)  # the very same request: a retransmission
    assert again.status == 200, again.raw
    assert again.header("sip-etag") == first.header("sip-etag")
    assert "publish_412: 0" in ps2.rpc("imps_presence.stats")
    shown = ps_show(net, "alice")
    assert shown.count("etag:") == 1 and first.header("sip-etag") in shown, shown
