"""The Debian linphone command-line client (linphonec 5.1) against the network: two real clients,
alice and bob, register through the edge proxy, watch each other's presence, exchange a MESSAGE,
and one sees the other go offline when it quits. Asserts on what linphonec itself prints."""

import os
import shutil

import pytest

import linphone_client



@pytest.fixture
def phones(clean_net):
    made = []

    def make(user, friends):
        p = linphone_client.Linphone(user, clean_net.domain, clean_net.edge_addr,
                                     workdir=os.path.join(clean_net.workdir, f"linphone-{user}"),
                                     friends=friends)
        shutil.rmtree(p.workdir, ignore_errors=True)
        made.append(p)
        return p.start()

    yield make
    for p in made:
        p.kill()


def test_linphonec_register_presence_message(clean_net, phones):
    alice = phones("alice", ["bob"])
    bob = phones("bob", ["alice"])

    alice.wait_registered(15)
    bob.wait_registered(15)

    # each SUBSCRIBEs to the other's presence and PUBLISHes its own (basic open)
    assert alice.wait_presence(bob.aor, "Online", 15) == "Online"
    assert bob.wait_presence(alice.aor, "Online", 15) == "Online"

    alice.send_message(bob.aor, "hello bob, from linphonec")
    assert bob.wait_message(alice.aor, "hello bob, from linphonec", 10) == \
        "hello bob, from linphonec"

    # bob quits cleanly: REGISTER Expires 0, SUBSCRIBE Expires 0, PUBLISH Expires 0
    bob.stop()
    assert not bob.alive()
    assert alice.wait_presence(bob.aor, "Offline", 15) == "Offline"
