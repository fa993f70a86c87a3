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
