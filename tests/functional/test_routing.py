"""Requests between users through the real edge proxy and HSP (issue 8): MESSAGE, OPTIONS and
INVITE dialogs reach every registered contact of the callee and the answer comes back; 480
without a binding, 404 for nobody; the callee sees the identity the edge asserted; GRUUs
(RFC 5627) resolve wherever they appear; TCP and NAT flows; requests over the UDP limit."""

import re
import time

import pytest

import sipua

D = "a.example"


def registered(net, user, **kw):
    p = net.phone(user, **kw)
    r = p.register()
    assert r.status == 200, r.raw
    return p


def pai_user(req):
    v = req.header("p-asserted-identity")
    return sipua.uri_of(v) if v else None


def test_message_reaches_the_callee_with_the_asserted_identity(clean_net):
    net = clean_net
    bob = registered(net, "bob")
    alice = net.phone("alice")
    r = alice.message(f"sip:bob@{D}", "hello bob", extra=[f"P-Asserted-Identity: <sip:carol@{D}>"])
    assert r.status == 200, r.raw
    m = bob.wait_request("MESSAGE")
    assert m.body == b"hello bob"
    assert m.header("content-type") == "text/plain"
    assert pai_user(m) == f"sip:alice@{D}", "the identity the edge asserted, not the one alice wrote"
    assert len(m.all("p-asserted-identity")) == 1
    assert sipua.uri_of(m.header("from")) == f"sip:alice@{D}"
    assert m.uri == bob.contact
    assert m.header("proxy-authorization") is None, "credentials are consumed at the edge"


def test_message_with_authorization_header_is_accepted(clean_net):
    # some UAs answer a proxy's 407 on a MESSAGE with Authorization, not Proxy-Authorization
    net = clean_net
    bob = registered(net, "bob")
    alice = net.phone("alice", auth_header="Authorization")
    r = alice.message(f"sip:bob@{D}", "hi")
    assert r.status == 200, r.raw
    assert bob.wait_request("MESSAGE").body == b"hi"


def test_message_wrong_password_and_carol_entitled(clean_net):
    net = clean_net
    registered(net, "bob")
    mallory = net.phone("alice", password="wrong")
    r = mallory.message(f"sip:bob@{D}", "x")
    assert r.status == 403 and r.reason == "Forbidden (authentication failed)"
    r = net.phone("carol").message(f"sip:bob@{D}", "from carol")
    assert r.status == 200, "carol is entitled to message"


def test_options_reaches_the_callee(clean_net):
    net = clean_net
    bob = registered(net, "bob")
    r = net.phone("alice").request("OPTIONS", f"sip:bob@{D}")
    assert r.status == 200, r.raw
    m = bob.wait_request("OPTIONS")
    assert pai_user(m) == f"sip:alice@{D}"


def test_no_binding_480_and_no_user_404(clean_net):
    net = clean_net
    alice = net.phone("alice")
    t0 = time.time()
    r = alice.message(f"sip:carol@{D}", "x")
    assert r.status == 480, r.raw
    r = alice.message(f"sip:mallory@{D}", "x")
    assert r.status == 404, r.raw
    r = alice.request("OPTIONS", f"sip:nobody@{D}")
    assert r.status == 404, r.raw
    assert time.time() - t0 < 2, "answered at once"
    # another network's user goes to the operator edge proxy, which this module's network
    # does not run (test_interdomain.py has both networks): after the HSP's timer, 504
    r = alice.request("OPTIONS", "sip:bob@elsewhere.example", timeout=10)
    assert r.status == 504 and r.reason == "Server Time-out (operator edge proxy unreachable)", r.raw


def test_invite_dialog_through_edge_and_hsp(clean_net):
    net = clean_net
    bob = registered(net, "bob")
    alice = net.phone("alice")
    call = sipua.Call(alice, f"sip:bob@{D}")
    r = call.invite()
    assert r.status == 200, r.raw
    inv = bob.wait_request("INVITE")
    assert pai_user(inv) == f"sip:alice@{D}"
    assert inv.body.startswith(b"v=0")
    # edge (caller side), HSP, edge (callee side) stay on the dialog's route
    assert len(call.route_set) >= 3, call.route_set
    ack = bob.wait_request("ACK")
    assert ack.header("call-id") == call.call_id
    r = call.bye()
    assert r.status == 200, r.raw
    bye = bob.wait_request("BYE")
    assert bye.header("call-id") == call.call_id and bye.uri == bob.contact
    # bob hangs up a second call: his BYE, along the route set he got in the INVITE,
    # reaches alice at her Contact
    call2 = sipua.Call(alice, f"sip:bob@{D}")
    assert call2.invite().status == 200
    inv = bob.wait_request("INVITE")
    assert bob.wait_request("ACK")
    cseq = 1
    text = "\r\n".join([
        f"BYE {sipua.uri_of(inv.header('contact'))} SIP/2.0",
        bob.via("z9hG4bK" + sipua.rand(10)), "Max-Forwards: 70",
        f"From: <sip:bob@{D}>;tag={inv.answer_tag}", f"To: {inv.header('from')}",
        f"Call-ID: {inv.header('call-id')}", f"CSeq: {cseq} BYE",
        *[f"Route: {r}" for r in inv.all("record-route")], "Content-Length: 0", "", ""])
    r = bob.transact(text)
    assert r.status == 200, r.raw
    bye = alice.wait_request("BYE")
    assert bye.header("call-id") == call2.call_id and bye.uri == alice.contact


def test_parallel_forking_to_every_contact(clean_net):
    net = clean_net
    d1 = registered(net, "bob", instance="urn:uuid:00000000-0000-0000-0000-0000000000b1")
    d2 = registered(net, "bob", instance="urn:uuid:00000000-0000-0000-0000-0000000000b2")
    d2.answer["MESSAGE"] = 486
    alice = net.phone("alice")
    r = alice.message(f"sip:bob@{D}", "to all")
    assert r.status == 200, r.raw
    assert d1.wait_request("MESSAGE").body == b"to all"
    assert d2.wait_request("MESSAGE").body == b"to all"


def test_higher_q_first_then_next(clean_net):
    net = clean_net
    hi = registered(net, "bob", q="1.0")
    lo = registered(net, "bob", q="0.5")
    hi.answer["MESSAGE"] = 480
    r = net.phone("alice").message(f"sip:bob@{D}", "q")
    assert r.status == 200, r.raw
    assert hi.wait_request("MESSAGE")
    assert lo.wait_request("MESSAGE")
    hi.answer["MESSAGE"] = 200
    assert net.phone("alice").message(f"sip:bob@{D}", "q2").status == 200
    assert hi.wait_request("MESSAGE").body == b"q2"
    with pytest.raises(TimeoutError):
        lo.wait_request("MESSAGE", timeout=1.0)


def test_gruus_resolve_and_gone_or_invalid(clean_net):
    net = clean_net
    inst = "urn:uuid:00000000-0000-0000-0000-00000000b0b0"
    bob = registered(net, "bob", instance=inst)
    other = registered(net, "bob", instance="urn:uuid:00000000-0000-0000-0000-00000000b0b1")
    assert bob.pub_gruu == f"sip:bob@{D};gr={inst}", bob.pub_gruu
    assert bob.temp_gruu and bob.temp_gruu.endswith(";gr")
    alice = net.phone("alice")
    for gruu in (bob.pub_gruu, bob.temp_gruu):
        r = alice.message(gruu, "to this device")
        assert r.status == 200, r.raw
        m = bob.wait_request("MESSAGE")
        assert m.body == b"to this device"
        with pytest.raises(TimeoutError):
            other.wait_request("MESSAGE", timeout=0.5)
    r = alice.message(f"sip:bob@{D};gr=urn:uuid:00000000-0000-0000-0000-0000000dead0", "x")
    assert r.status == 480, r.raw
    r = alice.message(f"sip:bob@{D};gr=nonsense", "x")
    assert r.status == 404, r.raw
    r = alice.message(f"sip:not-a-temp-gruu@{D};gr", "x")
    assert r.status == 404, r.raw
    r = alice.message(f"sip:mallory@{D};gr={inst}", "x")
    assert r.status == 404, r.raw
    # the binding goes: its GRUUs get 480
    assert bob.register(expires=0).status == 200
    for gruu in (bob.pub_gruu, bob.temp_gruu):
        r = alice.message(gruu, "gone")
        assert r.status == 480, (gruu, r.raw)


def presence_sub(p, target_user):
    s = sipua.Subscription(p, f"sip:{target_user}@{D}", event="presence",
                           accept="application/pidf+xml")
    s.password = p.password
    return s


def publish(net, user, note=None, basic="open"):
    pub = sipua.Publisher(net.ua(user))
    r = pub.publish(sipua.pidf(user, D, basic=basic, note=note), etag=None)
    assert r.status == 200, r.raw
    return pub


def vias(m):
    return [v.split()[0] for v in m.all("via")]


@pytest.mark.parametrize("which", ["pub", "temp"])
def test_notify_to_a_gruu_contact(clean_net, which):
    # linphone's way: register with +sip.instance, receive a GRUU, use it as the Contact of
    # its SUBSCRIBEs; the presence server's NOTIFYs carry the GRUU as Request-URI
    net = clean_net
    bob = registered(net, "bob", instance="urn:uuid:00000000-0000-0000-0000-0000000000b7")
    bob.sub_contact = bob.pub_gruu if which == "pub" else bob.temp_gruu
    assert bob.sub_contact
    publish(net, "alice", note="gruu test")
    sub = presence_sub(bob, "alice")
    r = sub.subscribe(600)
    assert r.status == 200, r.raw
    n = bob.wait_request("NOTIFY")
    assert n.uri == bob.contact, "the HSP resolved the GRUU to the registered contact"
    assert n.header("event") == "presence"
    assert b"gruu test" in n.body
    assert n.header("subscription-state").startswith("active")
    # a change is notified the same way
    publish(net, "alice", note="second")
    n = bob.wait_request("NOTIFY")
    assert b"second" in n.body
    # the binding goes away: the NOTIFY gets 480 and the watcher is dropped (RFC 6665 4.2.2)
    assert bob.register(expires=0).status == 200
    publish(net, "alice", note="third")
    deadline = time.time() + 5
    while time.time() < deadline and f"bob@{D}" in net.ps.rpc("imps_presence.watchers", f"alice@{D}"):
        time.sleep(0.2)
    assert f"bob@{D}" not in net.ps.rpc("imps_presence.watchers", f"alice@{D}")


def test_reg_event_notify_to_a_gruu_contact(clean_net):
    net = clean_net
    bob = registered(net, "bob", instance="urn:uuid:00000000-0000-0000-0000-0000000000b8")
    bob.sub_contact = bob.pub_gruu
    sub = sipua.Subscription(bob, f"sip:bob@{D}", event="reg", accept="application/reginfo+xml")
    sub.password = bob.password
    assert sub.subscribe(600).status == 200
    n = bob.wait_request("NOTIFY")
    assert n.header("event") == "reg" and n.uri == bob.contact
    assert bob.pub_gruu.encode() in n.body


def test_tcp_ue_gets_everything_over_its_connection(clean_net):
    net = clean_net
    bob = registered(net, "bob", transport="tcp")
    # bob listens nowhere: what reaches him came over his own connection to the edge
    r = net.phone("alice").message(f"sip:bob@{D}", "over tcp")
    assert r.status == 200, r.raw
    m = bob.wait_request("MESSAGE")
    assert m.body == b"over tcp" and vias(m)[0] == "SIP/2.0/TCP"
    publish(net, "alice", note="tcp watcher")
    sub = presence_sub(bob, "alice")
    assert sub.subscribe(600).status == 200
    n = bob.wait_request("NOTIFY")
    assert b"tcp watcher" in n.body and vias(n)[0] == "SIP/2.0/TCP"
    # a TCP caller reaches a UDP callee and back
    carol = registered(net, "carol")
    r = bob.message(f"sip:carol@{D}", "tcp to udp")
    assert r.status == 200, r.raw
    assert carol.wait_request("MESSAGE").body == b"tcp to udp"


def test_ue_behind_nat_is_reached_at_its_received_address(clean_net):
    # the UE writes a private address in Via and Contact; it sends from 127.0.0.1:<port>
    net = clean_net
    bob = registered(net, "bob", contact_host="10.99.0.7", contact_port=5062)
    r = net.phone("alice").message(f"sip:bob@{D}", "behind nat")
    assert r.status == 200, r.raw
    assert bob.wait_request("MESSAGE").body == b"behind nat"
    publish(net, "alice", note="nat watcher")
    sub = presence_sub(bob, "alice")
    assert sub.subscribe(600).status == 200
    n = bob.wait_request("NOTIFY")
    assert b"nat watcher" in n.body
    assert n.uri == bob.contact, "the alias parameter the edge added is gone again"
    # an INVITE dialog with a NATed callee: ACK and BYE reach it too
    call = sipua.Call(net.phone("alice"), f"sip:bob@{D}")
    assert call.invite().status == 200
    assert bob.wait_request("ACK")
    assert call.bye().status == 200
    assert bob.wait_request("BYE")


def test_notify_over_the_udp_limit_goes_over_tcp(clean_net):
    # RFC 3261 18.1.1: over 1300 bytes, the presence server and the HSP use TCP toward the
    # next proxy; the watcher registered over UDP gets it from the edge over UDP
    net = clean_net
    bob = registered(net, "bob")
    big = "x" * 2500
    pub = publish(net, "alice", note=big)
    sub = presence_sub(bob, "alice")
    assert sub.subscribe(600).status == 200
    n = bob.wait_request("NOTIFY")
    assert big.encode() in n.body
    assert len(n.raw) > 2500
    assert vias(n) == ["SIP/2.0/UDP", "SIP/2.0/TCP", "SIP/2.0/TCP"], n.all("via")
    # a small one stays on UDP all the way
    assert pub.publish(sipua.pidf("alice", D, note="small")).status == 200
    n = bob.wait_request("NOTIFY")
    assert b"small" in n.body and big.encode() not in n.body
    assert vias(n) == ["SIP/2.0/UDP"] * 3, n.all("via")


def test_message_is_authorized_by_the_haaa_at_the_hsp(clean_net):
    net = clean_net
    registered(net, "bob")
    assert net.phone("alice").message(f"sip:bob@{D}", "authorized").status == 200
    # the HSP asked the HAAA (FreeRADIUS) for alice's "message" entitlement; the answer is
    # cached by imps_aaa
    assert net.redis.cli("GET", "imps:aaa:authz:alice:message").startswith("A"), \
        net.redis.cli("KEYS", "imps:aaa:*")
    # the callee's existence was not asked: it has a binding
    assert net.redis.cli("EXISTS", "imps:aaa:authz:bob:terminating") == "0"
    # a HAAA that refuses the service: 403 and nothing delivered
    net.redis.cli("SET", "imps:aaa:authz:carol:message",
                  "\x1f".join(["R", "", "-1", "carol may not send messages"]), "EX", "60")
    bob = net.uas[0]
    r = net.phone("carol").message(f"sip:bob@{D}", "refused")
    assert r.status == 403 and r.reason == "Forbidden (carol may not send messages)", r.raw
    assert net.phone("alice").message(f"sip:bob@{D}", "next").status == 200
    assert bob.wait_request("MESSAGE").body == b"authorized"
    assert bob.wait_request("MESSAGE").body == b"next", "the refused MESSAGE never arrived"


def test_message_over_the_udp_limit_crosses_the_proxies_over_tcp(clean_net):
    # a 3 kB MESSAGE from a UDP UE: edge -> HSP and HSP -> edge over TCP, the last hop to
    # the UDP callee over UDP (the edge cannot know that it takes TCP)
    net = clean_net
    bob = registered(net, "bob")
    text = "y" * 3000
    r = net.phone("alice").message(f"sip:bob@{D}", text)
    assert r.status == 200, r.raw
    m = bob.wait_request("MESSAGE")
    assert m.body == text.encode()
    assert vias(m) == ["SIP/2.0/UDP", "SIP/2.0/TCP", "SIP/2.0/TCP", "SIP/2.0/UDP"], m.all("via")



def ack_for(phone, invite_text, resp):
    """The ACK of a non-2xx final response (RFC 3261 17.1.1.3): same branch and Route."""
    head = invite_text.decode().split("\r\n\r\n")[0].split("\r\n")
    keep = [h for h in head[1:] if h.split(":")[0].lower() in ("via", "from", "call-id", "route",
                                                              "max-forwards")]
    cseq = resp.header("cseq").split()[0]
    return "\r\n".join([f"ACK {head[0].split()[1]} SIP/2.0", *keep, f"To: {resp.header('to')}",
                         f"CSeq: {cseq} ACK", "Content-Length: 0", "", ""])


def test_forged_from_after_authentication(clean_net):
    # alice authenticates (digest user alice) but writes bob in From
    net = clean_net
    bob = registered(net, "bob")
    mallory = sipua.Phone("alice", D, net.edge_addr)
    net.uas.append(mallory)
    call_id, tag = sipua.rand(10), sipua.rand(8)
    msg = lambda cseq, extra=(): mallory.build(  # noqa: E731
        "MESSAGE", f"sip:bob@{D}", cseq, call_id, tag, body="x", ctype="text/plain",
        extra=extra).replace(f"From: <sip:alice@{D}>".encode(), f"From: <sip:bob@{D}>".encode())
    r = mallory.transact(msg(1))
    assert r.status == 407
    cred = sipua.digest_header(r.header("proxy-authenticate"), "alice", "alice-secret", "MESSAGE",
                               f"sip:bob@{D}")
    r = mallory.transact(msg(2, [cred]))
    assert r.status == 403 and r.reason == "Forbidden (From is not the authenticated user)"
    assert net.phone("alice").message(f"sip:bob@{D}", "real").status == 200
    assert bob.wait_request("MESSAGE").body == b"real", "the forged one never arrived"


def test_two_credentials_headers_are_refused(clean_net):
    # valid credentials of alice in Authorization, a made-up Proxy-Authorization for bob
    # first: $au would read bob's; the edge refuses such a request outright
    net = clean_net
    eve = sipua.Phone("bob", D, net.edge_addr)
    net.uas.append(eve)
    fake = ('Proxy-Authorization: Digest username="bob", realm="x", nonce="x", '
            f'uri="sip:{D}", response="00000000000000000000000000000000"')
    r = eve.transact(eve.build("REGISTER", f"sip:{D}", 1, eve.reg_callid, "t1",
                               extra=["Expires: 600"]))
    assert r.status == 401
    cred = sipua.digest_header(r.header("www-authenticate"), "alice", "alice-secret", "REGISTER",
                               f"sip:{D}", "Authorization")
    r = eve.transact(eve.build("REGISTER", f"sip:{D}", 2, eve.reg_callid, "t1",
                               extra=["Expires: 600", fake, cred]))
    assert r.status == 400 and r.reason == "Bad Request (more than one credentials header)", r.raw
    assert f"bob@{D}" not in net.hsp.rpc("ul.dump")


def test_made_up_route_sets_are_refused(clean_net):
    net = clean_net
    bob = registered(net, "bob", instance="urn:uuid:00000000-0000-0000-0000-0000000000bb")
    eve = net.phone("carol")
    edge, hsp, ps = (f"<sip:{net.plan['IMPS_IP_A']}:{p};lr>" for p in
                     (net.plan["IMPS_EDGE_A_PORT"], net.plan["IMPS_HSP_A_PORT"],
                      net.plan["IMPS_PS_A_PORT"]))

    def in_dialog(ruri, routes, dest=None):
        return eve.transact(eve.build("MESSAGE", ruri, 1, sipua.rand(10), sipua.rand(6),
                                      to_tag="made-up", body="spoof", ctype="text/plain",
                                      routes=routes), dest)
    # through the edge: to a host outside, and to bob's GRUU with a From of anybody's choice
    r = in_dialog("sip:x@198.51.100.7:5060", [edge, hsp])
    assert r.status == 403 and r.reason == "Forbidden (not a dialog of this proxy)", r.raw
    r = in_dialog(bob.pub_gruu, [edge, hsp])
    assert r.status == 403, r.raw
    # straight at the HSP: it sends in-dialog requests only to the edge or the presence server
    r = in_dialog("sip:x@198.51.100.7:5060", [hsp], dest=(net.plan["IMPS_IP_A"],
                                                           int(net.plan["IMPS_HSP_A_PORT"])))
    assert r.status == 403 and r.reason == "Forbidden (route set leads out of the network)", r.raw
    # the presence server relays nothing
    r = in_dialog(bob.pub_gruu, [ps, hsp], dest=(net.plan["IMPS_IP_A"], int(net.plan["IMPS_PS_A_PORT"])))
    assert r.status == 481, r.raw
    assert net.phone("alice").message(bob.pub_gruu, "real").status == 200
    assert bob.wait_request("MESSAGE").body == b"real", "no spoofed MESSAGE arrived before it"


def test_repeated_messages_reach_each_device_once(clean_net):
    # the second MESSAGE is authorized from the cache, in the same process as the lookup
    net = clean_net
    d1 = registered(net, "bob", instance="urn:uuid:00000000-0000-0000-0000-0000000000d1")
    d2 = registered(net, "bob", instance="urn:uuid:00000000-0000-0000-0000-0000000000d2")
    alice = net.phone("alice")
    for text in ("one", "two", "end"):
        assert alice.message(f"sip:bob@{D}", text).status == 200
    for dev in (d1, d2):
        got = []
        while not got or got[-1] != b"end":
            got.append(dev.wait_request("MESSAGE").body)
        assert got == [b"one", b"two", b"end"], got


def test_ack_of_a_negative_answer_with_a_preloaded_route(clean_net):
    # baresip and linphone put their outbound proxy in a Route header of every request,
    # the ACK of a 486 included: the edge absorbs it, so the 486 is not sent again
    net = clean_net
    bob = registered(net, "bob")
    bob.answer["INVITE"] = 486
    alice = net.phone("alice")
    route = [f"Route: <sip:{net.plan['IMPS_IP_A']}:{net.plan['IMPS_EDGE_A_PORT']};lr>"]
    r = alice.request("INVITE", f"sip:bob@{D}", body=sipua.Call.SDP, ctype="application/sdp",
                      extra=route)
    assert r.status == 486, r.raw
    alice.send_raw(ack_for(alice, r.request, r))
    time.sleep(2.5)  # tm retransmits an unacknowledged 486 after 0.5, 1 and 2 s
    again = []
    while not alice.responses.empty():
        m = alice.responses.get_nowait()
        if m.status == 486:
            again.append(m)
    assert again == [], "the edge kept retransmitting the 486: its ACK was not absorbed"
