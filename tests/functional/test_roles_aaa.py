"""AAA in the roles (seed figures 2 to 4, section 8.1): the edge proxy authenticates UEs
through the HAAA (FreeRADIUS) and asserts the identity; the HSP authorizes each service."""

import os
import re
import time

import imps_net
import sipua

from test_reginfo import UE, Watcher


def send(net, user, method, password=None, ruri=None, extra=(), auth_user=None):
    """An out-of-dialog request from a UE through the edge, answering the edge's challenge."""
    ua = net.ua(user)
    ruri = ruri or f"sip:{user}@a.example"
    call_id = sipua.rand(12) + "@aaa"
    tag = sipua.rand(8)

    def build(cseq, more=()):
        branch = "z9hG4bK" + sipua.rand(12)
        lines = [f"{method} {ruri} SIP/2.0",
                 f"Via: SIP/2.0/UDP {ua.ip}:{ua.port};rport;branch={branch}",
                 "Max-Forwards: 70",
                 f"From: <sip:{user}@a.example>;tag={tag}",
                 f"To: <sip:{user}@a.example>" if method == "REGISTER" else f"To: <{ruri}>",
                 f"Call-ID: {call_id}",
                 f"CSeq: {cseq} {method}",
                 f"Contact: <{ua.contact}>",
                 "Event: presence", "Expires: 600", *extra, *more, "Content-Length: 0", "", ""]
        return "\r\n".join(lines)

    r = ua.request(build(1))
    if r.status not in (401, 407) or password is None:
        return r
    name = "Authorization" if r.status == 401 else "Proxy-Authorization"
    chal = r.header("www-authenticate" if r.status == 401 else "proxy-authenticate")
    cred = sipua.digest_header(chal, auth_user or user, password, method, ruri, name)
    return ua.request(build(2, [cred]))


def test_register_needs_the_right_password(clean_net):
    net = clean_net
    r = send(net, "alice", "REGISTER", ruri="sip:a.example")
    assert r.status == 401 and r.header("www-authenticate").startswith("Digest realm=\"a.example\"")
    wrong0, unknown0 = edge_stat(net, "auth_wrong_password"), edge_stat(net, "auth_unknown_user")
    r = send(net, "alice", "REGISTER", "wrong-secret", ruri="sip:a.example")
    assert r.status == 403 and r.reason == "Forbidden (authentication failed)"
    r = send(net, "mallory", "REGISTER", "x", ruri="sip:a.example")
    assert r.status == 403 and r.reason == "Forbidden (authentication failed)"
    # the answer does not tell them apart; the counters and the log do
    assert edge_stat(net, "auth_wrong_password") == wrong0 + 1
    assert edge_stat(net, "auth_unknown_user") == unknown0 + 1
    assert "failed: wrong password" in net.edge.log_text()
    assert "failed: unknown user" in net.edge.log_text()
    r = send(net, "alice", "REGISTER", "alice-secret", ruri="sip:a.example")
    assert r.status == 200


def edge_stat(net, name):
    out = net.edge.rpc("stats.get_statistics", "imps_aaa:")
    return int(re.search(rf"imps_aaa:{name} = (\d+)", out).group(1))


def test_wrong_password_and_unknown_user_look_alike(clean_net):
    # no account enumeration (sipvicious' svcrack/svwar): the same status line and reason,
    # and the same time within noise
    net = clean_net
    times = {"alice": [], "nobody": []}
    answers = set()
    for _ in range(15):
        for user in times:
            t0 = time.perf_counter()
            r = send(net, user, "REGISTER", "not-the-password", ruri="sip:a.example")
            times[user].append(time.perf_counter() - t0)
            answers.add(r.first)
    assert answers == {"SIP/2.0 403 Forbidden (authentication failed)"}, answers
    med = {u: sorted(t)[len(t) // 2] * 1000 for u, t in times.items()}
    assert abs(med["alice"] - med["nobody"]) < 5, med


def test_other_requests_get_407_and_identity_is_asserted(clean_net):
    net = clean_net
    r = send(net, "bob", "SUBSCRIBE", ruri="sip:bob@a.example", extra=["Event: reg"])
    assert r.status == 407 and r.header("proxy-authenticate")
    # bob authenticates but claims to be alice in From: refused at the edge
    r = send(net, "alice", "MESSAGE", "bob-secret", auth_user="bob")
    assert r.status == 403 and "authenticated user" in r.reason


def test_carol_may_not_publish_alice_may(clean_net):
    net = clean_net
    r = send(net, "carol", "PUBLISH", "carol-secret")
    assert r.status == 403 and r.reason == "Forbidden (carol is not entitled to publish)"
    r = send(net, "alice", "PUBLISH", "alice-secret")
    # authorized by the edge, the HSP and the presence server: the presence server itself
    # answers (a PUBLISH without body and without SIP-If-Match is malformed there)
    assert r.status == 400 and r.reason == "Bad Request (PUBLISH without body or SIP-If-Match)", r.reason
    r = sipua.Publisher(net.ua("alice")).publish(sipua.pidf("alice", "a.example"), etag=None)
    assert r.status == 200 and r.header("sip-etag"), r.raw


def test_a_ue_cannot_assert_another_identity(clean_net):
    # bob sends his own P-Asserted-Identity claiming alice: the edge removes it and asserts
    # bob, so watching alice's registrations is refused
    net = clean_net
    ua = net.ua("bob")
    s = sipua.Subscription(ua, "sip:alice@a.example")
    r = s.subscribe(600, extra=["P-Asserted-Identity: <sip:alice@a.example>"])
    assert r.status == 403 and "not authorized" in r.reason


def test_haaa_down_gives_503_quickly_and_cached_authorizations_still_answer(clean_net):
    net = clean_net
    phone = UE(net, "carol")
    phone.register(600)  # authorizes (and caches) carol's "register" at the HSP
    net.radius.stop()
    try:
        r = send(net, "alice", "REGISTER", ruri="sip:a.example")
        assert r.status == 401  # the challenge needs no HAAA
        t0 = time.time()
        r = send(net, "alice", "REGISTER", "alice-secret", ruri="sip:a.example")
        took = time.time() - t0
        assert r.status == 503 and r.header("retry-after") == "5"
        assert took < 1.5, f"the edge waited {took:.2f} s for a dead HAAA"
        # the hold-down is shared by the edge's processes: whichever worker takes the next
        # requests, none waits for the dead servers again
        for _ in range(6):
            t0 = time.time()
            r = send(net, "alice", "REGISTER", "alice-secret", ruri="sip:a.example")
            assert r.status == 503
            assert time.time() - t0 < 0.3
        assert "AAA unavailable" in net.edge.log_text()
    finally:
        net.radius.start()
        # both servers are held down (dead_time) in every process now: restart the proxies
        net.edge.restart()
        net.hsp.restart()


def test_failover_to_the_second_haaa(clean_net):
    # cfg/network.cfg lists a second FreeRADIUS (IMPS_RADIUS2_HOST): with the first one
    # stopped, UEs are still authenticated and the HSP still authorizes
    net = clean_net
    # fresh proxies: an earlier test may have left both servers held down (dead_time)
    net.edge.restart()
    net.hsp.restart()
    second = imps_net.FreeRadius(net.workdir, host=net.plan["IMPS_RADIUS2_HOST"], name="radius2")
    second.start()
    net.radius.stop()
    try:
        r = send(net, "bob", "REGISTER", "bob-secret", ruri="sip:a.example")
        assert r.status == 200, r.reason
        r = send(net, "bob", "REGISTER", "bob-secret", ruri="sip:a.example")
        assert r.status == 200, r.reason  # the dead first server is now skipped
        stats = net.edge.rpc("stats.get_statistics", "imps_aaa:")
        assert "imps_aaa:timeouts = 0" not in stats
    finally:
        second.stop()
        net.radius.start()
        # the second server is held down now; later tests get proxies with a clean state
        net.edge.restart()
        net.hsp.restart()


def test_registrations_are_accounted(clean_net):
    # the HSP sends Accounting-Request Start for a new binding and Stop when it goes
    net = clean_net
    phone = UE(net, "bob")
    phone.register(600)
    phone.register(0)
    deadline = time.time() + 3
    detail = ""
    while time.time() < deadline:
        if os.path.exists(net.radius.detail_file):
            detail = open(net.radius.detail_file).read()
            m = re.search(r'Acct-Status-Type = Start\n(?:\t[^\n]*\n)*?\tAcct-Session-Id = "(uloc-[^"]+)"', detail)
            if m and detail.count(f'Acct-Session-Id = "{m.group(1)}"') >= 2:
                break
        time.sleep(0.1)
    records = [r for r in detail.split("\n\n") if 'User-Name = "bob"' in r]
    starts = [r for r in records if "Acct-Status-Type = Start" in r]
    stops = [r for r in records if "Acct-Status-Type = Stop" in r]
    assert starts and stops, detail
    # the binding's Start and Stop share its session id (other Stops of bob, a presence
    # subscription's from an earlier test, may come in between)
    sid = re.search(r'Acct-Session-Id = "(uloc-[^"]+)"', "\n\n".join(starts)).group(1)
    assert any(f'Acct-Session-Id = "{sid}"' in r for r in stops), stops
