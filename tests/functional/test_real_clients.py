"""Real clients on the demo network (issue 8): two unmodified baresip and two unmodified
linphonec, headless, each with its own folder and ports, through the edge proxy with digest
credentials, over UDP and TCP, linphone with its GRUU as Contact. They register, publish,
watch each other, exchange MESSAGEs (one to a user with two devices reaches both), and one
quits and comes back: every assertion is on what the clients themselves print."""

import os
import time

import pytest

from baresip_client import Baresip
from linphone_client import Linphone

PUBINT = 10  # baresip's publication expiry: an orphan publication lingers at most this long


@pytest.fixture
def clients(clean_net):
    net = clean_net
    d = net.domain
    wd = os.path.join(net.workdir, "real-clients")
    made = {
        # alice has two devices: baresip over UDP and linphone over TCP
        "alice": Baresip("alice", d, edge=net.edge_addr, workdir=wd, transport="udp",
                         friends=[f"bob@{d}", f"carol@{d}"], pubint=PUBINT),
        "alice2": Linphone("alice", d, net.edge_addr, transport="tcp",
                           workdir=os.path.join(wd, "linphone-alice"), friends=["bob", "carol"]),
        "bob": Linphone("bob", d, net.edge_addr, transport="udp",
                        workdir=os.path.join(wd, "linphone-bob"), friends=["alice", "carol"]),
        # carol watches and chats, but the HAAA does not entitle her to publish
        "carol": Baresip("carol", d, edge=net.edge_addr, workdir=wd, transport="tcp",
                         friends=[f"alice@{d}", f"bob@{d}"], pubint=PUBINT),
    }
    try:
        for c in made.values():
            c.start()
        yield made
    finally:
        for c in made.values():
            c.kill()


def test_baresip_and_linphone_see_each_other_and_chat(clients, clean_net):
    c = clients
    d = clean_net.domain
    alice, alice2, bob, carol = c["alice"], c["alice2"], c["bob"], c["carol"]
    A, B, C = f"sip:alice@{d}", f"sip:bob@{d}", f"sip:carol@{d}"
    for x in c.values():
        x.wait_registered(15)
    # linphone registers with +sip.instance and gets a GRUU, which it uses as its Contact
    assert clean_net.hsp.rpc("ul.dump").count("urn:uuid:") >= 2

    # each sees the others' presence, in its own words
    assert alice.wait_presence(B, "online", 20) == "online"
    assert alice2.wait_presence(B, "Online", 20) == "Online"
    assert bob.wait_presence(A, "Online", 20) == "Online"
    assert carol.wait_presence(A, "online", 20) == "online"
    assert carol.wait_presence(B, "online", 20) == "online"
    # carol's PUBLISH is refused (403): nobody sees her online
    assert bob.presence_of(C) == "Offline" and alice.presence_of(C) in ("offline", "unknown")

    # MESSAGEs between the two kinds of client, over UDP and TCP
    bob.send_message(C, "hello carol from linphone")
    carol.wait_message(B, "hello carol from linphone", 10)
    carol.send_message(B, "hello bob from baresip")
    assert bob.wait_message(C, "hello bob from baresip", 10) == "hello bob from baresip"
    # one MESSAGE to alice reaches both of her devices
    bob.send_message(A, "hello both alices")
    alice.wait_message(B, "hello both alices", 10)
    assert alice2.wait_message(B, "hello both alices", 10) == "hello both alices"

    # bob quits (linphone: unREGISTER, unSUBSCRIBE, PUBLISH Expires 0): offline everywhere
    bob.stop()
    assert alice.wait_presence(B, "offline", 15) == "offline"
    assert carol.wait_presence(B, "offline", 15) == "offline"
    assert alice2.wait_presence(B, "Offline", 15) == "Offline"
    # and back
    bob.start()
    bob.wait_registered(15)
    assert alice.wait_presence(B, "online", 20) == "online"
    assert carol.wait_presence(B, "online", 20) == "online"
    assert alice2.wait_presence(B, "Online", 20) == "Online"
    assert bob.wait_presence(A, "Online", 20) == "Online"

    # alice's baresip quits: her linphone still publishes, so she stays online; when that one
    # quits too, she goes offline (baresip's stale second publication expires within PUBINT)
    ps = clean_net.ps
    before = ps.rpc("imps_presence.show", f"alice@{d}").count("etag:")
    alice.stop()
    deadline = time.time() + 10
    while ps.rpc("imps_presence.show", f"alice@{d}").count("etag:") >= before:
        assert time.time() < deadline, "baresip's PUBLISH Expires 0 did not remove its publication"
        time.sleep(0.2)
    assert "<basic>open</basic>" in ps.rpc("imps_presence.show", f"alice@{d}")
    assert bob.presence_of(A) == "Online" and carol.presence_of(A) == "online"
    alice2.stop()
    assert bob.wait_presence(A, "Offline", PUBINT + 15) == "Offline"
    assert carol.wait_presence(A, "offline", PUBINT + 15) == "offline"
