"""Users' pres-rules read over HTTP from a List and Policy Server of its own (cfg/xcap.cfg),
as a presence server without imps_xcap does (presence.cfg -A PS_XCAP_ROOT=...): libcurl from
the trusted reader address, conditional GETs (the server answers 304 while the document is
the same), a copy used for PS_XCAP_TTL seconds, and the last copy kept while the server is
down; a change on the server reaches existing watchers once the copy is stale (the timer
process checks the copies of presentities with watchers again)."""

import re
import time

import pytest

import imps_net
import presence_check
import xcapclient
from conftest import PS_DEFINES
from sipua import Publisher, Subscription, pidf
from test_pres_rules import ALL, ALICE_RULES, AUTH_POLICY, rule, ruleset

P = imps_net.PLAN
HOST, PORT = P["IMPS_IP_A"], int(P["IMPS_XCAP_A_PORT"])
DOMAIN = P["IMPS_DOMAIN_A"]
ROOT = f"http://{HOST}:{PORT}{P['IMPS_XCAP_ROOT_PATH']}"
PIDF = "application/pidf+xml"
TTL = 2


def stat(srv, name):
    out = srv.rpc("stats.get_statistics", name)
    m = re.search(rf"{name} = (\d+)", out)
    return int(m.group(1)) if m else 0


@pytest.fixture(scope="module")
def remote(net):
    """xcap.cfg on its own, and the presence server reading it over HTTP."""
    orig = net.ps
    orig.stop()
    imps_net.make_xcap_db(provision=False)
    xcap = imps_net.xcap_a(net.workdir)
    xcap.start()
    imps_net.wait_port(HOST, PORT, "tcp")
    ps = imps_net.ps_a(net.workdir, {**PS_DEFINES, "PS_XCAP_ROOT": f'"{ROOT}"', "PS_XCAP_TTL": TTL})
    net.ps = ps
    ps.start()
    yield xcap
    ps.stop()
    xcap.stop()
    net.ps = orig
    orig.start()


def put_rules(body):
    c = xcapclient.Client(HOST, PORT, user="alice", password="alice-secret")
    r = c.put(ALICE_RULES, body, AUTH_POLICY)
    c.close()
    assert r.status in (200, 201), r
    return r


def test_rules_over_http_with_conditional_gets(remote, clean_net):
    net = clean_net
    xcap = remote
    alice = net.ua("alice")
    assert Publisher(alice).publish(pidf("alice", DOMAIN, "open", "t1"), etag=None).status == 200
    put_rules(ruleset(rule("b", ["bob"], "block"), rule("c", ["carol"], "allow", ALL)))
    time.sleep(TTL + 0.5)  # any copy read before is stale now
    gets, not_modified = stat(xcap, "requests_get"), stat(xcap, "replies_304")
    challenged = stat(xcap, "replies_401")

    r = Subscription(net.ua("bob"), f"sip:alice@{DOMAIN}", event="presence", accept=PIDF).subscribe(600)
    assert r.status == 403 and "blocked" in r.reason, r.raw
    carol = net.ua("carol")
    cs = Subscription(carol, f"sip:alice@{DOMAIN}", event="presence", accept=PIDF)
    assert cs.subscribe(600).status == 200
    n = carol.wait_request()
    assert n.header("subscription-state").startswith("active")
    assert [t["id"] for t in presence_check.parse_pidf(n.body)["tuples"]] == ["t1"]
    # the presence server asked the List and Policy Server: as a trusted reader (no 401),
    # both documents (the RFC one and OMA's, which is missing)
    assert stat(xcap, "requests_get") >= gets + 2
    assert stat(xcap, "replies_401") == challenged

    # once the copy is stale the server is asked again, conditionally: 304, same rules
    time.sleep(TTL + 0.5)
    r = Subscription(net.ua("bob"), f"sip:alice@{DOMAIN}", event="presence", accept=PIDF).subscribe(600)
    assert r.status == 403, r.raw
    assert stat(xcap, "replies_304") > not_modified

    # a change is seen once the copy is stale: bob allowed now
    put_rules(ruleset(rule("b", ["bob"], "allow", ALL)))
    time.sleep(TTL + 0.5)
    bob = net.ua("bob")
    bs = Subscription(bob, f"sip:alice@{DOMAIN}", event="presence", accept=PIDF)
    assert bs.subscribe(600).status == 200
    assert bob.wait_request().header("subscription-state").startswith("active")

    # the server's copy changes under an existing watcher: the timer process sees the new
    # ETag once its copy is stale and applies the rules (bob blocked: his subscription ends)
    t0 = time.time()
    put_rules(ruleset(rule("b", ["bob"], "block")))
    n = bob.wait_request(timeout=TTL + 6)
    assert n.header("subscription-state") == "terminated;reason=rejected"
    assert time.time() - t0 < TTL + 6
    put_rules(ruleset(rule("b", ["bob"], "allow", ALL)))
    time.sleep(TTL + 0.5)
    bs = Subscription(bob, f"sip:alice@{DOMAIN}", event="presence", accept=PIDF)
    assert bs.subscribe(600).status == 200
    assert bob.wait_request().header("subscription-state").startswith("active")

    # the List and Policy Server down: the last copy still decides (bob allowed again at
    # his refresh, nothing pending)
    xcap.stop()
    try:
        time.sleep(TTL + 0.5)
        assert bs.refresh(600).status == 200
        n = bob.wait_request()
        assert n.header("subscription-state").startswith("active")
    finally:
        xcap.start()
        imps_net.wait_port(HOST, PORT, "tcp")
