"""The resource list server's members of another domain (seed 7.2.3, RFC 4662 4.3): alice's
list on a.example holds bob (a.example, watched in process) and dave (b.example). For dave the
list server sends its own SUBSCRIBE (Supported: eventlist, alice asserted) through a.example's
HSP and operator edge to b.example's presence server; dave's NOTIFYs come back the same way.
b.example's operator edge stopped: dave's member goes terminated (probation) at the next
refresh while bob is unaffected, and comes back active once the edge is back. Both networks are
the real role scripts (cfg/) with their Redis, HSPs, presence servers and operator edges."""

import time

import pytest

import imps_net
from sipua import Publisher, pidf
from test_rls import (ALICE_RL, ALICE_RLS, RL, RLS, RLS_DOC, SERVICE, lists_doc,
                      list_notify, list_sub, subscribe, xc)
from conftest import PS_DEFINES, run_colocated_ps

A = imps_net.net_plan("a")
B = imps_net.net_plan("b")
BOB, DAVE = f"sip:bob@{A['domain']}", f"sip:dave@{B['domain']}"
# back-end dialogs refreshed every 6 s, tried again 2 s after a failure
REMOTE_DEFINES = dict(PS_DEFINES, RLS_REMOTE_EXPIRES=8, RLS_REMOTE_RETRY=2)


@pytest.fixture(scope="module")
def rls_a(net):
    yield from run_colocated_ps(net, REMOTE_DEFINES)


@pytest.fixture
def lnet(rls_a, clean_net, peer_net):
    peer_net.clean()
    c = xc()
    assert c.put(ALICE_RL, lists_doc([(BOB, "Bob"), (DAVE, "Dave")]), RL).status in (200, 201)
    assert c.put(ALICE_RLS, RLS_DOC, RLS).status in (200, 201)
    c.close()
    return clean_net, peer_net


def wait_member(ua, member, state, timeout):
    """The next list NOTIFYs until one names member in state: that RLMI (partial ones must name
    only member)."""
    end = time.time() + timeout
    while True:
        left = end - time.time()
        assert left > 0, f"{member} not {state} within {timeout} s"
        l = list_notify(ua.wait_request(timeout=left))
        if member in l["resources"] and l["resources"][member][0] == state:
            return l


def tuples(entry):
    return [(t["id"], t["basic"], t["notes"].get(None)) for t in entry[3]["tuples"]]


def test_list_with_a_member_of_another_domain(lnet):
    net, peer = lnet
    dave, bob, alice = peer.ua("dave"), net.ua("bob"), net.ua("alice")
    dpub, bpub = Publisher(dave), Publisher(bob)
    assert dpub.publish(pidf("dave", B["domain"], "open", "phone", note="in b"), expires=600, etag=None).status == 200
    assert bpub.publish(pidf("bob", A["domain"], "open", "b1", note="here"), etag=None).status == 200

    s = list_sub(alice)
    r = subscribe(s)
    assert r.status == 200, r.raw
    l = list_notify(alice.wait_request())
    assert l["version"] == 0 and l["full"]
    assert l["resources"][BOB][0] == "active" and tuples(l["resources"][BOB]) == [("b1", "open", "here")]
    if l["resources"][DAVE][0] != "active":
        # the back-end dialog answers after the first NOTIFY: dave pending, then a partial
        # NOTIFY naming him alone
        assert l["resources"][DAVE][0] == "pending", l["resources"][DAVE]
        l = wait_member(alice, DAVE, "active", 5)
        assert not l["full"] and list(l["resources"]) == [DAVE]
    assert tuples(l["resources"][DAVE]) == [("phone", "open", "in b")]
    assert l["resources"][DAVE][2] == "Dave"

    # b.example's presence server has alice as dave's watcher (her identity asserted), and a
    # change of dave reaches the list in one partial NOTIFY naming only him
    assert "alice@a.example" in peer.ps.rpc("imps_presence.watchers", "dave@b.example")
    assert dpub.publish(pidf("dave", B["domain"], "closed", "phone"), expires=600).status == 200
    l = list_notify(alice.wait_request(timeout=5))
    assert not l["full"] and list(l["resources"]) == [DAVE]
    assert tuples(l["resources"][DAVE]) == [("phone", "closed", None)]
    be = net.ps.rpc("imps_rls.backends")
    assert "dave@b.example" in be and "remote: 1" in be, be
    stats = net.ps.rpc("imps_rls.stats")
    assert "backends_remote: 1" in stats and "backends: 3" in stats, stats  # bob, dave, zoe

    # the back-end dialog is refreshed (every 6 s) in place: same dialog, still active, no
    # list NOTIFY
    watch = [l for l in be.splitlines() if "watch:" in l and "@" in l.split("watch:")[1]]
    time.sleep(7)
    be2 = net.ps.rpc("imps_rls.backends")
    assert watch and all(w in be2 for w in watch), (be, be2)
    assert "state: terminated" not in be2.split("dave@b.example")[1].split("refs")[0], be2
    alice.no_request(wait=0.5)

    # b.example out of reach: at the next refresh (6 s) dave is terminated (probation), bob
    # goes on as before
    peer.oper_b.stop()
    l = wait_member(alice, DAVE, "terminated", 15)
    assert not l["full"] and list(l["resources"]) == [DAVE]
    assert l["resources"][DAVE][1] == "probation"
    assert bpub.publish(pidf("bob", A["domain"], "closed", "b1")).status == 200
    l = list_notify(alice.wait_request(timeout=3))
    assert list(l["resources"]) == [BOB] and tuples(l["resources"][BOB]) == [("b1", "closed", None)]
    assert "backend_failures: 0" not in net.ps.rpc("imps_rls.stats")

    # back again: a new back-end dialog, dave active with his last state
    peer.oper_b.start()
    l = wait_member(alice, DAVE, "active", 20)
    assert list(l["resources"]) == [DAVE] and tuples(l["resources"][DAVE]) == [("phone", "closed", None)]

    # the list ends: the back-end dialog ends too (b.example has no watcher left)
    assert s.unsubscribe().status == 200
    assert alice.wait_request().header("subscription-state").startswith("terminated")
    end = time.time() + 5
    while "alice@a.example" in peer.ps.rpc("imps_presence.watchers", "dave@b.example"):
        assert time.time() < end, "b.example still has the back-end subscription"
        time.sleep(0.3)
    assert "key" not in net.ps.rpc("imps_rls.backends")
    assert "backends_remote: 0" in net.ps.rpc("imps_rls.stats")
