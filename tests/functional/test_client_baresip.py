"""A real SIP client on the network: two Debian baresip instances (alice and bob) register
through the edge proxy, watch each other's presence, exchange a MESSAGE, and bob's clean quit
shows him offline at alice. Every assertion is on what baresip itself reports."""

import os
import shutil
import tempfile

import pytest

from baresip_client import Baresip


PUBINT = 10  # baresip's PUBLISH expiry (s): bounds how long a stale publication may linger


@pytest.fixture(params=["udp", "tcp"])
def clients(clean_net, request):
    """Starts baresip for alice and bob (each the other's contact) over UDP or TCP to the
    edge; kills both afterwards."""
    net = clean_net
    workdir = tempfile.mkdtemp(prefix="baresip-", dir=net.workdir)
    dom = net.domain
    alice = Baresip("alice", dom, edge=net.edge_addr, workdir=workdir,
                    transport=request.param, friends=[f"bob@{dom}"], pubint=PUBINT)
    bob = Baresip("bob", dom, edge=net.edge_addr, workdir=workdir,
                  transport=request.param, friends=[f"alice@{dom}"], pubint=PUBINT)
    try:
        alice.start()
        bob.start()
        yield alice, bob
    finally:
        alice.kill()
        bob.kill()
        if os.environ.get("IMPS_KEEP_LOGS") is None:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"baresip logs: {alice.log_path} {bob.log_path}")


def test_baresip_register_presence_message(clients):
    alice, bob = clients
    alice.wait_registered(10)
    bob.wait_registered(10)

    # each one's baresip shows the other online (SUBSCRIBE presence, NOTIFY with basic open)
    assert alice.wait_presence(bob.aor, "online", 15) == "online"
    assert bob.wait_presence(alice.aor, "online", 15) == "online"

    # a MESSAGE from alice is printed by bob's baresip
    text = "hello bob, this is alice"
    alice.send_message(bob.aor, text)
    try:
        bob.wait_message(alice.aor, text, 10)
    except TimeoutError:
        pytest.fail(f"bob's baresip did not show the MESSAGE; alice's baresip got: "
                    f"{alice.message_failure() or 'no error response'}")

    # bob quits cleanly (PUBLISH Expires 0, un-SUBSCRIBE, un-REGISTER): alice sees him offline
    bob.stop()
    assert bob.proc.returncode is not None
    assert alice.wait_presence(bob.aor, "offline", PUBINT + 10) == "offline"
