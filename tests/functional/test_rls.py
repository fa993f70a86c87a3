"""The resource list server (imps_rls, RFC 4662) in the presence server that is the List and
Policy Server too (presence.cfg -A WITH_XCAP): list subscriptions through the real edge and
HSP to the services of alice's rls-services document, members watched in process through
imps_presence, lists written over XCAP. Every RLMI document is validated against RFC 4662's
schema and every member part against the PIDF schemas; the multipart framing is checked byte
for byte (RFC 2046: no preamble, CRLF before every delimiter)."""

import os
import re
import time

import pytest
from lxml import etree

import imps_net
import presence_check
import xcapclient
from sipua import Publisher, Subscription, pidf

P = imps_net.PLAN
HOST, PORT = P["IMPS_IP_A"], int(P["IMPS_XCAP_A_PORT"])
DOMAIN = P["IMPS_DOMAIN_A"]
ROOT = f"http://{HOST}:{PORT}{P['IMPS_XCAP_ROOT_PATH']}"
RL = "application/resource-lists+xml"
RLS = "application/rls-services+xml"
ACCEPT = "multipart/related, application/rlmi+xml, application/pidf+xml"
SERVICE = f"sip:alice-buddies@{DOMAIN}"
ALICE_RL = f"resource-lists/users/sip:alice@{DOMAIN}/index"
ALICE_RLS = f"rls-services/users/sip:alice@{DOMAIN}/index"
SCHEMAS = os.path.join(imps_net.ROOT, "tests", "schemas")
RLMI_NS = "{urn:ietf:params:xml:ns:rlmi}"


def lists_doc(entries, family=("sip:zoe@a.example",)):
    e = "".join(f'<entry uri="{u}"><display-name>{n}</display-name></entry>' for u, n in entries)
    f = "".join(f'<entry uri="{u}"/>' for u in family)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">'
            f'<list name="buddies"><display-name>Buddies</display-name>{e}'
            f'<list name="family"><display-name>Family</display-name>{f}</list></list></resource-lists>')


RLS_DOC = f"""<?xml version="1.0" encoding="UTF-8"?>
<rls-services xmlns="urn:ietf:params:xml:ns:rls-services">
  <service uri="{SERVICE}">
    <resource-list>{ROOT}/{ALICE_RL}/~~/resource-lists/list%5b@name=%22buddies%22%5d</resource-list>
    <packages><package>presence</package></packages>
  </service>
</rls-services>
"""

BUDDIES = [(f"sip:bob@{DOMAIN}", "Bob"), (f"sip:carol@{DOMAIN}", "Carol")]


@pytest.fixture(scope="module")
def rls(colocated_ps):
    return colocated_ps


def xc(user="alice"):
    return xcapclient.Client(HOST, PORT, user=user, password=f"{user}-secret")


@pytest.fixture
def rnet(rls, clean_net):
    c = xc()
    assert c.put(ALICE_RL, lists_doc(BUDDIES), RL).status in (200, 201)
    assert c.put(ALICE_RLS, RLS_DOC, RLS).status in (200, 201)
    c.close()
    return clean_net


_schema = None


def rlmi_schema():
    global _schema
    if _schema is None:
        old = os.getcwd()
        os.chdir(SCHEMAS)
        try:
            _schema = etree.XMLSchema(etree.parse("rlmi.xsd", etree.XMLParser(no_network=True, resolve_entities=False)))
        finally:
            os.chdir(old)
    return _schema


def parse_multipart(ctype, body):
    """{cid: (content_type, bytes)} and the start cid, checking RFC 2046 framing exactly."""
    m = re.search(r'boundary="?([^";]+)"?', ctype)
    assert m, ctype
    b = m.group(1).encode()
    start = re.search(r'start="<([^>]+)>"', ctype).group(1)
    assert 'type="application/rlmi+xml"' in ctype
    assert body.startswith(b"--" + b + b"\r\n"), body[:80]  # no preamble
    assert body.endswith(b"\r\n--" + b + b"--\r\n")
    chunks = body[len(b) + 4:-(len(b) + 8)].split(b"\r\n--" + b + b"\r\n")
    parts = {}
    for ch in chunks:
        head, _, content = ch.partition(b"\r\n\r\n")
        hdrs = dict(l.split(": ", 1) for l in head.decode().split("\r\n"))
        assert hdrs["Content-Transfer-Encoding"] == "binary"
        cid = hdrs["Content-ID"].strip("<>")
        parts[cid] = (hdrs["Content-Type"], content)
    return start, parts


def list_notify(n):
    """(rlmi dict, parts) of a list NOTIFY; every RLMI validated, nested lists read too.
    rlmi: {uri, version, full, name, resources: {uri: (state, reason, name, body or nested)}}"""
    assert n.header("require") == "eventlist", n.raw
    return read_list(n.header("content-type"), n.body)


def read_list(ctype, body):
    start, parts = parse_multipart(ctype, body)
    rtype, rbody = parts[start]
    assert rtype.startswith("application/rlmi+xml")
    doc = etree.fromstring(rbody)
    rlmi_schema().assertValid(doc)
    out = {"uri": doc.get("uri"), "version": int(doc.get("version")), "full": doc.get("fullState") == "true",
           "name": doc.findtext(RLMI_NS + "name"), "resources": {}}
    for r in doc.findall(RLMI_NS + "resource"):
        inst = r.findall(RLMI_NS + "instance")
        assert len(inst) == 1
        i = inst[0]
        content = None
        if i.get("state") == "active":
            ptype, pbody = parts[i.get("cid")]
            if ptype.startswith("multipart/related"):
                content = read_list(ptype, pbody)
            else:
                assert ptype.startswith("application/pidf+xml")
                content = presence_check.parse_pidf(pbody)
        else:
            assert i.get("cid") is None
        out["resources"][r.get("uri")] = (i.get("state"), i.get("reason"), r.findtext(RLMI_NS + "name"), content)
    return out


def list_sub(ua, service=SERVICE, eventlist=True):
    s = Subscription(ua, service, event="presence", accept=ACCEPT)
    s.extra_headers = ["Supported: eventlist"] if eventlist else []
    return s


def subscribe(s, expires=600):
    return s.subscribe(expires, extra=s.extra_headers)


def test_list_full_then_partial_state(rnet):
    net = rnet
    alice, bob = net.ua("alice"), net.ua("bob")
    pub = Publisher(bob)
    assert pub.publish(pidf("bob", DOMAIN, "open", "b1", note="here"), etag=None).status == 200
    s = list_sub(alice)
    r = subscribe(s)
    assert r.status == 200, r.raw
    assert r.header("require") == "eventlist"
    n = alice.wait_request()
    assert n.header("subscription-state").startswith("active;expires=")
    l = list_notify(n)
    assert l["uri"] == SERVICE and l["version"] == 0 and l["full"] and l["name"] == "Buddies"
    res = l["resources"]
    assert set(res) == {f"sip:bob@{DOMAIN}", f"sip:carol@{DOMAIN}", f"{SERVICE};list=family"}
    state, reason, name, doc = res[f"sip:bob@{DOMAIN}"]
    assert (state, name) == ("active", "Bob")
    assert [(t["id"], t["basic"]) for t in doc["tuples"]] == [("b1", "open")]
    assert res[f"sip:carol@{DOMAIN}"][0] == "active"
    assert [t["basic"] for t in res[f"sip:carol@{DOMAIN}"][3]["tuples"]] == ["closed"]  # offline
    fam = res[f"{SERVICE};list=family"]
    assert fam[0] == "active" and fam[2] == "Family"
    assert fam[3]["version"] == 0 and set(fam[3]["resources"]) == {"sip:zoe@a.example"}

    # bob changes: one partial NOTIFY naming only bob
    t0 = time.time()
    assert pub.publish(pidf("bob", DOMAIN, "closed", "b1")).status == 200
    l = list_notify(alice.wait_request(timeout=3))
    assert time.time() - t0 < 1.0
    assert l["version"] == 1 and not l["full"]
    assert list(l["resources"]) == [f"sip:bob@{DOMAIN}"]
    assert [(t["id"], t["basic"]) for t in l["resources"][f"sip:bob@{DOMAIN}"][3]["tuples"]] == [("b1", "closed")]

    # a refresh: full state again, version goes on
    assert s.refresh(600).status == 200
    l = list_notify(alice.wait_request())
    assert l["version"] == 2 and l["full"] and len(l["resources"]) == 3
    out = net.ps.rpc("imps_rls.list")
    assert SERVICE in out and "members: 3" in out, out
    assert s.unsubscribe().status == 200
    assert alice.wait_request().header("subscription-state").startswith("terminated")
    time.sleep(0.3)
    assert "key" not in net.ps.rpc("imps_rls.backends")


def test_421_403_and_not_a_list(rnet):
    net = rnet
    alice, bob = net.ua("alice"), net.ua("bob")
    r = subscribe(list_sub(alice, eventlist=False))
    assert r.status == 421 and r.header("require") == "eventlist", r.raw
    r = subscribe(list_sub(bob))
    assert r.status == 403 and "owner" in r.reason, r.raw
    # a presentity is not a list: imps_presence answers (a plain presence subscription)
    s = Subscription(alice, f"sip:bob@{DOMAIN}", event="presence", accept="application/pidf+xml")
    assert s.subscribe(600).status == 200
    n = alice.wait_request()
    assert n.header("content-type") == "application/pidf+xml"
    assert alice.no_request(wait=0.2)


def test_member_blocking_the_owner_and_list_edits(rnet):
    net = rnet
    imps_net.presence_rules([("carol@a.example", "alice@a.example", "block"), ("a.example", "a.example", "allow")])
    alice = net.ua("alice")
    s = list_sub(alice)
    assert subscribe(s).status == 200
    l = list_notify(alice.wait_request())
    assert l["resources"][f"sip:carol@{DOMAIN}"][:2] == ("terminated", "rejected")
    assert l["resources"][f"sip:bob@{DOMAIN}"][0] == "active"

    # alice adds a new member with XCAP: the list is read again at once (full state)
    c = xc()
    t0 = time.time()
    r = c.put(ALICE_RL + '/~~/resource-lists/list[@name="buddies"]/entry[@uri="sip:ivan@a.example"]',
              '<entry uri="sip:ivan@a.example"><display-name>Ivan</display-name></entry>', "application/xcap-el+xml")
    assert r.status == 201, r
    l = list_notify(alice.wait_request(timeout=3))
    assert time.time() - t0 < 2.0
    assert l["full"] and l["resources"]["sip:ivan@a.example"][0] == "active"
    assert l["resources"]["sip:ivan@a.example"][2] == "Ivan"
    assert "ivan@a.example" in net.ps.rpc("imps_rls.backends")
    # and removes bob: he is gone from the next NOTIFY and his back-end watch ends
    assert c.delete(ALICE_RL + '/~~/resource-lists/list[@name="buddies"]/entry[@uri="sip:bob@a.example"]').status == 200
    c.close()
    l = list_notify(alice.wait_request(timeout=3))
    assert f"sip:bob@{DOMAIN}" not in l["resources"]
    assert "bob@a.example" not in net.ps.rpc("imps_rls.backends")
    assert s.unsubscribe().status == 200


def test_two_devices_share_back_ends(rnet):
    net = rnet
    a1, a2, bob = net.ua("alice"), net.ua("alice"), net.ua("bob")
    s1, s2 = list_sub(a1), list_sub(a2)
    assert subscribe(s1).status == 200 and subscribe(s2).status == 200
    list_notify(a1.wait_request())
    list_notify(a2.wait_request())
    out = net.ps.rpc("imps_rls.backends")
    refs = re.findall(r"refs: (\d+)", out)
    assert refs and set(refs) == {"2"}, out
    assert len(re.findall(r"member:", out)) == 3  # bob, carol, zoe: one watch each
    assert Publisher(bob).publish(pidf("bob", DOMAIN, "open", "x"), etag=None).status == 200
    for ua in (a1, a2):
        l = list_notify(ua.wait_request(timeout=3))
        assert list(l["resources"]) == [f"sip:bob@{DOMAIN}"]
    stats = net.ps.rpc("imps_rls.stats")
    assert re.search(r"notifies_sent: [1-9]", stats), stats
    assert s1.unsubscribe().status == 200
    a1.wait_request()
    time.sleep(0.2)
    assert set(re.findall(r"refs: (\d+)", net.ps.rpc("imps_rls.backends"))) == {"1"}
    assert s2.unsubscribe().status == 200
    assert a2.wait_request().header("subscription-state").startswith("terminated")
    assert a1.no_request(wait=0.3) and a2.no_request(wait=0.3)


def test_200_member_list_split_within_the_size_bound(rnet):
    """A list of 200 members: the first NOTIFY (full state) carries as much member state as
    max_notify_size allows and shows the rest pending; partial NOTIFYs bring the rest, each one
    valid, until every member is active."""
    net = rnet
    members = [f"sip:m{i:03d}@a.example" for i in range(200)]
    c = xc()
    assert c.put(ALICE_RL, lists_doc([(m, f"M {i}") for i, m in enumerate(members)], family=()), RL).status == 200
    c.close()
    alice = net.ua("alice")
    s = list_sub(alice)
    assert subscribe(s).status == 200
    seen, versions, sizes = {}, [], []
    deadline = time.time() + 10
    while len([m for m in members if seen.get(m) == "active"]) < 200 and time.time() < deadline:
        try:
            n = alice.wait_request(timeout=5)
        except TimeoutError:
            raise AssertionError(f"NOTIFYs so far: {versions}, sizes {sizes}, active "
                                 f"{sum(1 for v in seen.values() if v == 'active')}")
        sizes.append(len(n.body))
        l = list_notify(n)
        versions.append((l["version"], l["full"]))
        for uri, (state, reason, name, doc) in l["resources"].items():
            if uri not in members:
                continue  # the (empty) family list
            seen[uri] = state
            if state == "active":
                assert doc["entity"] == uri and [t["basic"] for t in doc["tuples"]] == ["closed"]
    assert all(seen.get(m) == "active" for m in members), seen
    assert len(versions) >= 2 and versions[0] == (0, True)
    assert versions == [(v, v == 0) for v in range(len(versions))]
    # member state within 32768 bytes (plus the RLMI and the part headers): UDP-sized bodies
    assert max(sizes) < 40000, sizes  # 32768 and what one member may add beyond it
    print("list NOTIFYs", versions, sizes)
    assert s.unsubscribe().status == 200


def test_other_users_lists_are_not_followed_and_deleted_service_ends(rnet):
    """A service of alice's that points at bob's buddy list shows nothing of it (the reference
    is refused and counted); deleting the service ends its subscriptions (noresource)."""
    net = rnet
    b = xc("bob")
    assert b.put(f"resource-lists/users/sip:bob@{DOMAIN}/index",
                 lists_doc([(f"sip:carol@{DOMAIN}", "Carol")], family=()), RL).status in (200, 201)
    b.close()
    c = xc()
    sneaky = RLS_DOC.replace("</rls-services>", f"""  <service uri="sip:alice-peek@{DOMAIN}">
    <resource-list>{ROOT}/resource-lists/users/sip:bob@{DOMAIN}/index/~~/resource-lists/list%5b@name=%22buddies%22%5d</resource-list>
  </service>
</rls-services>""")
    assert c.put(ALICE_RLS, sneaky, RLS).status == 200
    errors = net.ps.rpc("stats.get_statistics", "list_errors")
    before = int(re.search(r"list_errors = (\d+)", errors).group(1))
    alice = net.ua("alice")
    s = list_sub(alice, service=f"sip:alice-peek@{DOMAIN}")
    assert subscribe(s).status == 200
    l = list_notify(alice.wait_request())
    assert l["resources"] == {}
    after = int(re.search(r"list_errors = (\d+)", net.ps.rpc("stats.get_statistics", "list_errors")).group(1))
    assert after == before + 1

    # the service deleted from alice's document: the subscription ends
    assert c.put(ALICE_RLS, RLS_DOC, RLS).status == 200
    c.close()
    n = alice.wait_request(timeout=3)
    assert n.header("subscription-state") == "terminated;reason=noresource"


def test_restart_loses_nothing(rnet):
    """The presence server (with imps_rls) restarted: the list subscription, its back-end
    watches and its version are in Redis; the next member change reaches the list watcher."""
    net = rnet
    alice, bob = net.ua("alice"), net.ua("bob")
    pub = Publisher(bob)
    assert pub.publish(pidf("bob", DOMAIN, "open", "b1"), etag=None).status == 200
    s = list_sub(alice)
    assert subscribe(s).status == 200
    assert list_notify(alice.wait_request())["version"] == 0
    net.ps.stop()
    net.ps.start()
    imps_net.wait_port(HOST, PORT, "tcp")
    assert pub.publish(pidf("bob", DOMAIN, "closed", "b1")).status == 200
    l = list_notify(alice.wait_request(timeout=5))
    assert l["version"] == 1 and not l["full"]
    assert [t["basic"] for t in l["resources"][f"sip:bob@{DOMAIN}"][3]["tuples"]] == ["closed"]
    assert s.refresh(600).status == 200
    l = list_notify(alice.wait_request())
    assert l["version"] == 2 and l["full"]
    assert s.unsubscribe().status == 200
    alice.wait_request()


ADHOC = f"sip:rls@{DOMAIN}"


def adhoc_body(members):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">'
            "<list>" + "".join(f'<entry uri="{m}"/>' for m in members) + "</list></resource-lists>")


@pytest.mark.parametrize("deflate", [False, True])
def test_adhoc_list_from_the_body(rnet, deflate):
    """RFC 5367: a SUBSCRIBE to sip:rls@a.example with Require: recipient-list-subscribe and
    its list in the body (deflate-compressed as linphone sends it, or not) is a list
    subscription over those members."""
    import zlib
    net = rnet
    alice, bob = net.ua("alice"), net.ua("bob")
    pub = Publisher(bob)
    assert pub.publish(pidf("bob", DOMAIN, "open", "b1"), etag=None).status == 200
    text = adhoc_body([f"sip:bob@{DOMAIN}", f"sip:carol@{DOMAIN}"])
    body = zlib.compress(text.encode()) if deflate else text
    s = Subscription(alice, ADHOC, event="presence", accept=ACCEPT)
    extra = ["Supported: eventlist", "Require: recipient-list-subscribe", "Content-Disposition: recipient-list"]
    if deflate:
        extra.append("Content-Encoding: deflate")
    r = s.subscribe(600, extra=extra, body=body, content_type=RL)
    assert r.status == 200, r.raw
    assert r.header("require") == "eventlist"
    l = list_notify(alice.wait_request())
    assert l["uri"] == ADHOC and l["version"] == 0 and l["full"]
    assert set(l["resources"]) == {f"sip:bob@{DOMAIN}", f"sip:carol@{DOMAIN}"}
    assert [t["basic"] for t in l["resources"][f"sip:bob@{DOMAIN}"][3]["tuples"]] == ["open"]
    assert pub.publish(pidf("bob", DOMAIN, "closed", "b1")).status == 200
    l = list_notify(alice.wait_request(timeout=3))
    assert not l["full"] and list(l["resources"]) == [f"sip:bob@{DOMAIN}"]
    assert s.unsubscribe().status == 200
    alice.wait_request()


def test_adhoc_list_bad_requests(rnet):
    net = rnet
    alice = net.ua("alice")
    base = ["Supported: eventlist", "Require: recipient-list-subscribe"]
    text = adhoc_body([f"sip:bob@{DOMAIN}"])
    r = Subscription(alice, ADHOC, event="presence", accept=ACCEPT).subscribe(600, extra=base)
    assert r.status == 400 and "resource list body" in r.reason, r.raw
    r = Subscription(alice, ADHOC, event="presence", accept=ACCEPT).subscribe(
        600, extra=base + ["Content-Disposition: recipient-list"], body=text, content_type="text/plain")
    assert r.status == 415, r.raw
    r = Subscription(alice, ADHOC, event="presence", accept=ACCEPT).subscribe(
        600, extra=base, body=text, content_type=RL)
    assert r.status == 400 and "Content-Disposition" in r.reason, r.raw
    r = Subscription(alice, ADHOC, event="presence", accept=ACCEPT).subscribe(
        600, extra=base + ["Content-Disposition: recipient-list", "Content-Encoding: deflate"], body="garbage",
        content_type=RL)
    assert r.status == 400 and "inflate" in r.reason, r.raw
    r = Subscription(alice, ADHOC, event="presence", accept=ACCEPT).subscribe(
        600, extra=["Require: recipient-list-subscribe", "Content-Disposition: recipient-list"], body=text,
        content_type=RL)
    assert r.status == 421, r.raw
