"""Users' own presence rules (RFC 5025 pres-rules, and OMA's variant) deciding presence
authorization and filtering what each watcher sees, with the presence server as the List and
Policy Server too (presence.cfg -A WITH_XCAP: imps_xcap in the same Kamailio, rules read in
process): subscriptions through the real edge and HSP, rules written over XCAP with Digest
through the real FreeRADIUS, a change reaching existing watchers at once; and the xcap-diff
event package (RFC 5875, bodies RFC 5874) telling a user's devices of document changes.
Every NOTIFY body is validated against its schema."""

import os
import re
import time

import pytest
from lxml import etree

import imps_net
import presence_check
import xcapclient
from sipua import Publisher, Subscription

P = imps_net.PLAN
HOST, PORT = P["IMPS_IP_A"], int(P["IMPS_XCAP_A_PORT"])
DOMAIN = P["IMPS_DOMAIN_A"]
ROOT = f"http://{HOST}:{PORT}{P['IMPS_XCAP_ROOT_PATH']}"
PIDF = "application/pidf+xml"
WINFO = "application/watcherinfo+xml"
AUTH_POLICY = "application/auth-policy+xml"
RL = "application/resource-lists+xml"
XCAP_DIFF = "application/xcap-diff+xml"
ALICE_RULES = f"pres-rules/users/sip:alice@{DOMAIN}/index"
OMA_RULES = f"org.openmobilealliance.pres-rules/users/sip:alice@{DOMAIN}/pres-rules"
ALICE_RL = f"resource-lists/users/sip:alice@{DOMAIN}/index"
SCHEMAS = os.path.join(imps_net.ROOT, "tests", "schemas")

ALL = ("<provide-services><all-services/></provide-services>"
       "<provide-persons><all-persons/></provide-persons>"
       "<provide-devices><all-devices/></provide-devices><provide-all-attributes/>")


def rule(rid, who, handling, transforms=""):
    cond = "".join(f'<cr:one id="sip:{w}@{DOMAIN}"/>' for w in who)
    return (f'<cr:rule id="{rid}"><cr:conditions><cr:identity>{cond}</cr:identity></cr:conditions>'
            f'<cr:actions><sub-handling>{handling}</sub-handling></cr:actions>'
            f'<cr:transformations>{transforms}</cr:transformations></cr:rule>')


def ruleset(*rules):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<cr:ruleset xmlns="urn:ietf:params:xml:ns:pres-rules" '
            'xmlns:cr="urn:ietf:params:xml:ns:common-policy">' + "".join(rules) + "</cr:ruleset>")


def oma_ruleset(*rules):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<cr:ruleset xmlns:cr="urn:ietf:params:xml:ns:common-policy" '
            'xmlns="urn:ietf:params:xml:ns:pres-rules">' + "".join(rules) + "</cr:ruleset>")


# alice's document: a SIP tuple, an IM tuple of class "work", a person with activities, mood
# and a note, a device
RICH = f"""<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
  xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:alice@{DOMAIN}">
 <tuple id="phone"><status><basic>open</basic></status><contact>sip:alice@{DOMAIN}</contact>
  <note>on the phone</note><timestamp>2026-12-01T10:00:00Z</timestamp></tuple>
 <tuple id="chat"><status><basic>open</basic></status><rpid:class>work</rpid:class>
  <contact>im:alice@{DOMAIN}</contact></tuple>
 <dm:person id="me"><rpid:activities><rpid:meeting/></rpid:activities>
  <rpid:mood><rpid:happy/></rpid:mood><dm:note>busy</dm:note>
  <dm:timestamp>2026-12-01T10:00:00Z</dm:timestamp></dm:person>
 <dm:device id="pc"><dm:deviceID>urn:uuid:00000000-0000-0000-0000-000000000001</dm:deviceID>
  <dm:timestamp>2026-12-01T10:00:00Z</dm:timestamp></dm:device>
</presence>"""


@pytest.fixture(scope="module")
def lps(colocated_ps):
    return colocated_ps


@pytest.fixture
def lnet(lps, clean_net):
    for user in ("alice", "bob"):
        c = client(user)
        for path in (ALICE_RULES, OMA_RULES, ALICE_RL, f"resource-lists/users/sip:{user}@{DOMAIN}/index"):
            c.delete(path)
        c.close()
    return clean_net


def client(user="alice"):
    return xcapclient.Client(HOST, PORT, user=user, password=f"{user}-secret")


def put_rules(body, path=ALICE_RULES, **kw):
    c = client()
    r = c.put(path, body, AUTH_POLICY, **kw)
    c.close()
    assert r.status in (200, 201), r
    return r


def sub(ua, user, event="presence", accept=PIDF):
    return Subscription(ua, f"sip:{user}@{DOMAIN}", event=event, accept=accept)


def state(n):
    return n.header("subscription-state")


def doc_of(n):
    assert n.header("content-type") == PIDF, n.raw
    return presence_check.parse_pidf(n.body)


def winfo_of(n):
    assert n.header("content-type") == WINFO, n.raw
    doc = presence_check.parse_winfo(n.body)
    return {w["uri"]: (w["status"], w["event"]) for l in doc["lists"] for w in l["watchers"]}


def test_block_allow_and_operator_block(lnet):
    """A pres-rules block refuses even a watcher the operator's domain row allows; an allow
    lets one in; the operator's own block wins over the user's allow."""
    net = lnet
    alice, bob, carol = net.ua("alice"), net.ua("bob"), net.ua("carol")
    assert Publisher(alice).publish(RICH, etag=None).status == 200
    put_rules(ruleset(rule("b", ["bob"], "block"), rule("c", ["carol"], "allow", ALL)))
    r = sub(bob, "alice").subscribe(600)
    assert r.status == 403 and "blocked" in r.reason, r.raw
    cs = sub(carol, "alice")
    assert cs.subscribe(600).status == 200
    n = carol.wait_request()
    assert state(n).startswith("active;expires=")
    d = doc_of(n)
    assert [t["id"] for t in d["tuples"]] == ["phone", "chat"] and d["person"]["mood"] == ["happy"]

    # the operator bars carol: its block stands whatever alice's rules say
    imps_net.presence_rules([("alice@a.example", "carol@a.example", "block"), ("a.example", "a.example", "allow")])
    r = sub(net.ua("carol"), "alice").subscribe(600)
    assert r.status == 403, r.raw


def test_oma_document_and_polite_block(lnet):
    """OMA's pres-rules document counts too; polite-block answers as if active with the
    offline document."""
    net = lnet
    alice, carol = net.ua("alice"), net.ua("carol")
    assert Publisher(alice).publish(RICH, etag=None).status == 200
    put_rules(oma_ruleset(rule("p", ["carol"], "polite-block")), path=OMA_RULES)
    cs = sub(carol, "alice")
    assert cs.subscribe(600).status == 200
    n = carol.wait_request()
    assert state(n).startswith("active;expires=")
    assert [(t["id"], t["basic"]) for t in doc_of(n)["tuples"]] == [("offline", "closed")]
    assert doc_of(n)["persons"] == [] and doc_of(n)["devices"] == []


def test_transformations_filter_each_watcher(lnet):
    """RFC 5025 3.3: bob gets the SIP service, the persons with their activities only; carol
    everything; a change of bob's grant reaches him at once with the newly filtered document."""
    net = lnet
    alice, bob, carol = net.ua("alice"), net.ua("bob"), net.ua("carol")
    put_rules(ruleset(
        rule("b", ["bob"], "allow", "<provide-services><service-uri-scheme>sip</service-uri-scheme>"
             "</provide-services><provide-persons><all-persons/></provide-persons>"
             "<provide-activities>true</provide-activities>"),
        rule("c", ["carol"], "allow", ALL)))
    assert Publisher(alice).publish(RICH, etag=None).status == 200
    bs, cs = sub(bob, "alice"), sub(carol, "alice")
    assert bs.subscribe(600).status == 200 and cs.subscribe(600).status == 200
    b = doc_of(bob.wait_request())
    assert [t["id"] for t in b["tuples"]] == ["phone"]
    t = b["tuples"][0]
    assert t["basic"] == "open" and t["contact"] == f"sip:alice@{DOMAIN}" and t["notes"] == {}
    assert t["timestamp"] == "2026-12-01T10:00:00Z"  # always provided
    assert b["person"]["activities"] == ["meeting"] and b["person"]["mood"] == []
    assert b["person"]["notes"] == {} and b["person"]["timestamp"] == "2026-12-01T10:00:00Z"
    assert b["devices"] == []
    c = doc_of(carol.wait_request())
    assert [t["id"] for t in c["tuples"]] == ["phone", "chat"]
    assert c["tuples"][0]["notes"] == {None: "on the phone"}
    assert c["person"]["mood"] == ["happy"] and c["person"]["notes"] == {None: "busy"}
    assert c["devices"] == [{"deviceID": "urn:uuid:00000000-0000-0000-0000-000000000001", "id": "pc"}]

    # alice gives bob her mood and the work services: he sees them at once, carol's stays
    t0 = time.time()
    put_rules(ruleset(
        rule("b", ["bob"], "allow", "<provide-services><service-uri-scheme>sip</service-uri-scheme>"
             "<class>work</class></provide-services><provide-persons><all-persons/></provide-persons>"
             "<provide-activities>true</provide-activities><provide-mood>true</provide-mood>"),
        rule("c", ["carol"], "allow", ALL)))
    b = doc_of(bob.wait_request(timeout=3))
    assert time.time() - t0 < 2.0
    assert [t["id"] for t in b["tuples"]] == ["phone", "chat"]
    assert b["person"]["mood"] == ["happy"] and b["person"]["activities"] == ["meeting"]
    assert b["devices"] == []
    c = doc_of(carol.wait_request())  # re-sent to every active watcher, unchanged for carol
    assert c["person"]["mood"] == ["happy"] and len(c["devices"]) == 1


def test_pending_watcher_allowed_by_a_rule_the_client_writes(lnet):
    """The owner's decision on a pending watcher (winfo) written into pres-rules by her
    client: bob's pending subscription becomes active at once, alice's watcher info says so;
    a later block ends bob's subscription (rejected)."""
    net = lnet
    imps_net.presence_rules([])  # no operator rule: the default (confirm)
    alice, bob = net.ua("alice"), net.ua("bob")
    assert Publisher(alice).publish(RICH, etag=None).status == 200
    put_rules(ruleset(rule("c", ["carol"], "allow", ALL)))
    winfo = sub(alice, "alice", event="presence.winfo", accept=WINFO)
    assert winfo.subscribe(600).status == 200
    assert winfo_of(alice.wait_request()) == {}
    bs = sub(bob, "alice")
    assert bs.subscribe(600).status == 200
    n = bob.wait_request()
    assert state(n).startswith("pending") and not n.body
    assert winfo_of(alice.wait_request()) == {f"sip:bob@{DOMAIN}": ("pending", "subscribe")}

    # alice's client adds a rule for bob (element PUT, RFC 4825 8.2.3)
    c = client()
    t0 = time.time()
    r = c.put(ALICE_RULES + '/~~/cr:ruleset/cr:rule[@id="b"]?xmlns(cr=urn:ietf:params:xml:ns:common-policy)',
              rule("b", ["bob"], "allow", ALL).replace("<cr:rule ", '<cr:rule xmlns:cr="urn:ietf:params:xml:ns:common-policy" '
                                                         'xmlns="urn:ietf:params:xml:ns:pres-rules" ', 1),
              "application/xcap-el+xml")
    assert r.status == 201, r
    n = bob.wait_request(timeout=3)
    assert time.time() - t0 < 2.0
    assert state(n).startswith("active;expires=")
    assert [t["id"] for t in doc_of(n)["tuples"]] == ["phone", "chat"]
    assert winfo_of(alice.wait_request()) == {f"sip:bob@{DOMAIN}": ("active", "approved")}

    # and blocks him: his subscription ends at once
    r = c.put(ALICE_RULES + '/~~/cr:ruleset/cr:rule[@id="b"]/cr:actions/sub-handling'
              '?xmlns(cr=urn:ietf:params:xml:ns:common-policy)',
              '<sub-handling xmlns="urn:ietf:params:xml:ns:pres-rules">block</sub-handling>',
              "application/xcap-el+xml")
    assert r.status == 200, r
    c.close()
    n = bob.wait_request(timeout=3)
    assert state(n) == "terminated;reason=rejected"
    assert winfo_of(alice.wait_request()) == {f"sip:bob@{DOMAIN}": ("terminated", "rejected")}
    assert net.ps.rpc("imps_presence.watchers", f"alice@{DOMAIN}").count("bob@") == 0


# ---- xcap-diff ---------------------------------------------------------------------------

_diff_schema = None


def diff_doc(n):
    """The xcap-diff body of a NOTIFY, validated against RFC 5874's schema: (xcap-root,
    [(kind, sel, attributes, content)])."""
    global _diff_schema
    assert n.header("content-type") == XCAP_DIFF, n.raw
    assert n.header("event").startswith("xcap-diff")
    if _diff_schema is None:
        old = os.getcwd()
        os.chdir(SCHEMAS)
        try:
            parser = etree.XMLParser(no_network=True, resolve_entities=False)
            _diff_schema = etree.XMLSchema(etree.parse("xcap-diff.xsd", parser))
        finally:
            os.chdir(old)
    doc = etree.fromstring(n.body.encode() if isinstance(n.body, str) else n.body)
    _diff_schema.assertValid(doc)
    items = []
    for c in doc:
        kind = etree.QName(c).localname
        attrs = {k: v for k, v in c.attrib.items() if k != "sel"}
        content = c.text if kind == "attribute" else [etree.QName(x).text for x in c]
        items.append((kind, c.get("sel"), attrs, content))
    return doc.get("xcap-root"), items


def selection(*uris):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">'
            "<list>" + "".join(f'<entry uri="{u}"/>' for u in uris) + "</list></resource-lists>")


LISTS = """<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
  <list name="friends"><entry uri="sip:bob@a.example"/></list>
</resource-lists>
"""
FRIENDS = ALICE_RL + '/~~/resource-lists/list[@name="friends"]'
FRIENDS_SEL = ALICE_RL + '/~~/resource-lists/list%5b@name=%22friends%22%5d'


def test_xcap_diff_tells_of_every_change(lnet):
    net = lnet
    alice, bob = net.ua("alice"), net.ua("bob")
    c = client()
    r = c.put(ALICE_RL, LISTS, RL)
    assert r.status == 201
    etag1 = r.etag
    rules = put_rules(ruleset(rule("c", ["carol"], "allow", ALL)))
    s = sub(alice, "alice", event="xcap-diff", accept=XCAP_DIFF)
    r = s.subscribe(600, body=selection(f"{ROOT}/{ALICE_RL}", "pres-rules/", FRIENDS_SEL,
                                        f"resource-lists/users/sip:bob@{DOMAIN}/index"),
                    content_type=RL)
    assert r.status == 200, r.raw
    n = alice.wait_request()
    assert state(n).startswith("active;expires=")
    root, items = diff_doc(n)
    assert root == ROOT + "/"
    # bob's document is not alice's to read: left out (RFC 5875 4.7)
    assert items == [
        ("document", ALICE_RL, {"new-etag": etag1}, []),
        ("document", ALICE_RULES, {"new-etag": rules.etag}, []),
        ("element", FRIENDS_SEL, {}, ["{urn:ietf:params:xml:ns:resource-lists}list"]),
    ]

    # another device of alice's adds an entry: this one is told, old and new ETag
    r = c.put(FRIENDS + '/entry[@uri="sip:carol@a.example"]', '<entry uri="sip:carol@a.example"/>',
              "application/xcap-el+xml")
    assert r.status == 201
    etag2 = r.etag
    root, items = diff_doc(alice.wait_request(timeout=3))
    assert items[0] == ("document", ALICE_RL, {"previous-etag": etag1, "new-etag": etag2}, [])
    assert items[1][:3] == ("element", FRIENDS_SEL, {})
    assert len(items) == 2

    # the list removed: the element no longer exists; then the document deleted
    assert c.delete(FRIENDS).status == 200
    root, items = diff_doc(alice.wait_request(timeout=3))
    etag3 = items[0][2]["new-etag"]
    assert items == [("document", ALICE_RL, {"previous-etag": etag2, "new-etag": etag3}, []),
                     ("element", FRIENDS_SEL, {"exists": "false"}, [])]
    assert c.delete(ALICE_RL).status == 200
    root, items = diff_doc(alice.wait_request(timeout=3))
    assert items == [("document", ALICE_RL, {"previous-etag": etag3}, []),
                     ("element", FRIENDS_SEL, {"exists": "false"}, [])]
    # a document created in the subscribed collection
    r = c.put(OMA_RULES, oma_ruleset(), AUTH_POLICY)
    assert r.status == 201
    c.close()
    bob.no_request(wait=0.3)
    # pres-rules/ is the collection subscribed; the OMA usage is another one: nothing
    alice.no_request(wait=0.5)
    put_rules(ruleset())
    root, items = diff_doc(alice.wait_request(timeout=3))
    assert items == [("document", ALICE_RULES, {"previous-etag": rules.etag, "new-etag": items[0][2]["new-etag"]}, [])]

    # a refresh gets the full state again
    assert s.refresh(600).status == 200
    root, items = diff_doc(alice.wait_request())
    assert [i[:2] for i in items] == [("document", ALICE_RULES)]
    assert s.unsubscribe().status == 200
    assert state(alice.wait_request()).startswith("terminated")


def test_xcap_diff_bad_subscriptions(lnet):
    net = lnet
    bob = net.ua("bob")
    s = sub(bob, "bob", event="xcap-diff", accept=XCAP_DIFF)
    r = s.subscribe(600)
    assert r.status == 400 and "resource-lists body" in r.reason, r.raw
    r = sub(bob, "bob", event="xcap-diff", accept=XCAP_DIFF).subscribe(600, body="hello", content_type="text/plain")
    assert r.status == 415 and r.header("accept") == RL, r.raw
    r = sub(bob, "bob", event="xcap-diff", accept=XCAP_DIFF).subscribe(600, body="<x", content_type=RL)
    assert r.status == 400 and "not a resource-lists" in r.reason, r.raw
    # only alice's documents named: nothing bob may read
    r = sub(bob, "bob", event="xcap-diff", accept=XCAP_DIFF).subscribe(
        600, body=selection(ALICE_RL, f"{ROOT}/{ALICE_RULES}"), content_type=RL)
    assert r.status == 403, r.raw
    r = sub(bob, "bob", event="xcap-diff", accept="text/plain").subscribe(
        600, body=selection(f"resource-lists/users/sip:bob@{DOMAIN}/index"), content_type=RL)
    assert r.status == 406, r.raw
    assert bob.no_request(wait=0.3)


def test_xcap_diff_refresh_with_a_new_list(lnet):
    """RFC 5875 4.4: a refresh may bring a new URI list; its NOTIFY (full state) and the later
    ones follow the new list."""
    net = lnet
    alice = net.ua("alice")
    c = client()
    rl = c.put(ALICE_RL, LISTS, RL)
    assert rl.status == 201
    c.close()
    rules = put_rules(ruleset(rule("c", ["carol"], "allow", ALL)))
    s = sub(alice, "alice", event="xcap-diff", accept=XCAP_DIFF)
    assert s.subscribe(600, body=selection(ALICE_RL), content_type=RL).status == 200
    root, items = diff_doc(alice.wait_request())
    assert items == [("document", ALICE_RL, {"new-etag": rl.etag}, [])]
    # the refresh names the pres-rules collection only
    r = s.subscribe(600, body=selection("pres-rules/"), content_type=RL)
    assert r.status == 200, r.raw
    root, items = diff_doc(alice.wait_request())
    assert items == [("document", ALICE_RULES, {"new-etag": rules.etag}, [])]
    # a change of the buddy list is no longer told; one of the rules is
    c = client()
    assert c.put(ALICE_RL, LISTS.replace("carol", "dave"), RL).status == 200
    c.close()
    assert alice.no_request(wait=0.4)
    new = put_rules(ruleset())
    root, items = diff_doc(alice.wait_request(timeout=3))
    assert items == [("document", ALICE_RULES, {"previous-etag": rules.etag, "new-etag": new.etag}, [])]
    # a refresh body naming nothing alice may read: refused, the subscription keeps its list
    r = s.subscribe(600, body=selection(f"resource-lists/users/sip:bob@{DOMAIN}/index"), content_type=RL)
    assert r.status == 403, r.raw
    assert s.unsubscribe().status == 200
    alice.wait_request()
