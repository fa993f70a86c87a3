"""linphonec (Debian's linphone-cli 5.1) with rls_uri set: its friend list's presence comes
through the resource list server (imps_rls) as one RFC 5367 ad-hoc list subscription (the
friends in a deflate-compressed resource-lists body), and linphonec shows each friend's status
from the RLMI NOTIFYs. Asserts on what linphonec itself prints."""

import os
import shutil

import linphone_client
from sipua import Publisher, pidf


def test_linphonec_friend_list_through_rls(colocated_ps, clean_net):
    net = clean_net
    domain = net.domain
    bob = net.ua("bob")
    pub = Publisher(bob)
    assert pub.publish(pidf("bob", domain, "open", "b1"), etag=None).status == 200
    alice = linphone_client.Linphone("alice", domain, net.edge_addr,
                                     workdir=os.path.join(net.workdir, "linphone-alice-rls"),
                                     friends=["bob", "carol"], rls_uri=f"sip:rls@{domain}")
    shutil.rmtree(alice.workdir, ignore_errors=True)
    alice.start()
    try:
        alice.wait_registered(15)
        assert alice.wait_presence(f"sip:bob@{domain}", "Online", 15) == "Online"
        # one list subscription served both friends (imps_rls), none of them a SUBSCRIBE of its own
        out = net.ps.rpc("imps_rls.list")
        assert f"sip:rls@{domain}" in out and "members: 2" in out, out
        assert "bob@a.example" not in net.ps.rpc("imps_presence.watchers", f"bob@{domain}").replace(
            "local:imps_rls", "")  # bob's watcher is the list server's in-process watch
        assert pub.publish(pidf("bob", domain, "closed", "b1")).status == 200
        assert alice.wait_presence(f"sip:bob@{domain}", "Offline", 15) == "Offline"
    finally:
        alice.kill()
