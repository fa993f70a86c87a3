"""imps_aaa loaded into Kamailio (tests/functional/aaa/aaa-test.cfg) against the real
FreeRADIUS of cfg/freeradius: SIP digest authentication (401 challenge, right and wrong
password, unknown user), per-service authorization with reply attributes and the Redis
decision cache (which still answers with FreeRADIUS stopped), AAA unavailable within the
time budget, accounting Start/Stop in FreeRADIUS's detail file, counters and RPC."""

import hashlib
import os
import re
import time

import pytest

import imps_net
import sipua

HERE = os.path.dirname(os.path.abspath(__file__))
PORT = 5095


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


@pytest.fixture
def aaa(clean_net):
    net = clean_net
    radius = net.radius  # the network's HAAA
    kam = imps_net.Kamailio("aaa", "aaa-test", ("127.0.0.1", PORT), net.workdir,
                           cfg=os.path.join(HERE, "aaa", "aaa-test.cfg"))
    kam.start()
    ua = net.ua("alice")
    ua.proxy = ("127.0.0.1", PORT)
    try:
        yield net, radius, kam, ua
    finally:
        kam.stop()
        if radius.proc is None:
            radius.start()


def request(ua, method, user, extra=(), ruri="sip:a.example"):
    branch = "z9hG4bK" + sipua.rand(12)
    lines = [f"{method} {ruri} SIP/2.0",
             f"Via: SIP/2.0/UDP {ua.ip}:{ua.port};rport;branch={branch}",
             "Max-Forwards: 70",
             f"From: <sip:{user}@a.example>;tag={sipua.rand(8)}",
             f"To: <sip:{user}@a.example>",
             f"Call-ID: {sipua.rand(12)}@aaa",
             f"CSeq: 1 {method}",
             f"Contact: <{ua.contact}>", *extra, "Content-Length: 0", "", ""]
    return ua.request("\r\n".join(lines))


def authorization(challenge, user, password, method="REGISTER", uri="sip:a.example"):
    p = dict(re.findall(r'(\w+)="?([^",]+)"?', challenge))
    ha1 = md5(f"{user}:{p['realm']}:{password}")
    ha2 = md5(f"{method}:{uri}")
    nc, cnonce = "00000001", sipua.rand(8)
    resp = md5(f"{ha1}:{p['nonce']}:{nc}:{cnonce}:auth:{ha2}")
    return (f'Authorization: Digest username="{user}", realm="{p["realm"]}", nonce="{p["nonce"]}", '
            f'uri="{uri}", response="{resp}", algorithm=MD5, qop=auth, nc={nc}, cnonce="{cnonce}"')


def register(ua, user, password):
    r = request(ua, "REGISTER", user)
    assert r.status == 401 and r.header("www-authenticate").startswith("Digest ")
    return request(ua, "REGISTER", user, [authorization(r.header("www-authenticate"), user, password)])


def counter(kam, name):
    for line in kam.rpc("stats.get_statistics", "imps_aaa:").splitlines():
        k, _, v = line.partition(" = ")
        if k.strip() == f"imps_aaa:{name}":
            return int(v)
    raise AssertionError(name)


def test_digest_authentication_through_freeradius(aaa):
    net, radius, kam, ua = aaa
    r = register(ua, "alice", "alice-secret")
    assert r.status == 200 and r.reason == "Authenticated"
    r = register(ua, "bob", "alice-secret")
    assert r.status == 403 and r.reason == "Forbidden (wrong password)"
    r = register(ua, "mallory", "whatever")
    assert r.status == 403 and r.reason == "Forbidden (unknown user)"
    assert counter(kam, "requests") == 3
    assert counter(kam, "accepts") == 1 and counter(kam, "rejects") == 2


def test_authorization_reply_attributes_and_cache(aaa):
    net, radius, kam, ua = aaa
    r = request(ua, "MESSAGE", "alice", ["X-Service: publish"])
    assert r.status == 200
    assert (r.header("x-class"), r.header("x-max-expires"), r.header("x-cached")) == ("gold", "3600", "0")
    r = request(ua, "MESSAGE", "alice", ["X-Service: publish"])
    assert r.status == 200 and r.header("x-cached") == "1"
    r = request(ua, "MESSAGE", "carol", ["X-Service: publish"])
    assert r.status == 403 and r.reason == "Forbidden (carol is not entitled to publish)"
    r = request(ua, "MESSAGE", "carol", ["X-Service: subscribe"])
    assert r.status == 200 and r.header("x-class") == "bronze" and r.header("x-max-expires") == "1800"
    # the asserted identity of a trusted peer (here: loopback) wins over From
    r = request(ua, "MESSAGE", "alice", ["X-Service: publish", "P-Asserted-Identity: <sip:carol@a.example>"])
    assert r.status == 403
    assert counter(kam, "cache_hits") >= 1 and counter(kam, "cache_misses") >= 3
    out = kam.rpc("imps_aaa.check", "carol", "publish")
    assert "result: reject" in out and "carol is not entitled to publish" in out
    out = kam.rpc("imps_aaa.cache_flush", "alice")
    assert "flushed: 1" in out
    r = request(ua, "MESSAGE", "alice", ["X-Service: publish"])
    assert r.status == 200 and r.header("x-cached") == "0"


def test_cached_decision_answers_with_the_haaa_down_and_unavailable_is_bounded(aaa):
    net, radius, kam, ua = aaa
    assert request(ua, "MESSAGE", "bob", ["X-Service: subscribe"]).status == 200
    radius.stop()
    r = request(ua, "MESSAGE", "bob", ["X-Service: subscribe"])
    assert r.status == 200 and r.header("x-cached") == "1"
    t0 = time.time()
    r = request(ua, "MESSAGE", "bob", ["X-Service: query"])
    took = time.time() - t0
    assert r.status == 503 and r.header("retry-after") == "5"
    assert took < 1.5, f"a dead HAAA held the worker {took:.2f} s"
    r = register(ua, "alice", "alice-secret")
    assert r.status == 503 and r.reason == "Service Unavailable (AAA)"
    # never cached: with the HAAA back (and the dead server probed back), the answer is real
    assert kam.rpc("imps_aaa.servers")  # per-process view of the RPC process
    assert counter(kam, "timeouts") >= 1


def test_accounting_start_and_stop_reach_freeradius(aaa):
    net, radius, kam, ua = aaa
    for ev in ("start", "stop"):
        r = request(ua, "PUBLISH", "alice", [f"X-Event: {ev}"])
        assert r.status == 200, r.reason
    deadline = time.time() + 3
    while time.time() < deadline and not os.path.exists(radius.detail_file):
        time.sleep(0.1)
    detail = open(radius.detail_file).read()
    assert 'User-Name = "alice"' in detail
    assert "Acct-Status-Type = Start" in detail and "Acct-Status-Type = Stop" in detail
    assert 'NAS-Identifier = "imps"' in detail


def test_forged_replies_are_dropped_on_the_sip_path(clean_net):
    """A RADIUS 'server' that answers Access-Accept with a right Response Authenticator but no
    Message-Authenticator (what a Blast-RADIUS forgery looks like): imps_aaa drops every
    reply, counts it, and the request ends as AAA unavailable, within the budget."""
    import socket
    import struct
    import threading

    net = clean_net
    secret = net.plan["IMPS_RADIUS_SECRET"].encode()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    port = sock.getsockname()[1]
    seen = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                data, src = sock.recvfrom(4096)
            except socket.timeout:
                continue
            code, ident, _ = struct.unpack("!BBH", data[:4])
            seen.append(code)
            head = struct.pack("!BBH", 2, ident, 20)
            auth = hashlib.md5(head + data[4:20] + secret).digest()
            sock.sendto(head + auth, src)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    kam = imps_net.Kamailio("aaa", "aaa-test", ("127.0.0.1", PORT), net.workdir,
                           {"AAA_AUTH_SERVERS": f'"127.0.0.1:{port}:{secret.decode()}"'},
                           cfg=os.path.join(HERE, "aaa", "aaa-test.cfg"))
    kam.start()
    try:
        ua = net.ua("alice")
        ua.proxy = ("127.0.0.1", PORT)
        t0 = time.time()
        r = request(ua, "MESSAGE", "alice", ["X-Service: publish"])
        took = time.time() - t0
        assert r.status == 503
        assert took < 1.5
        assert seen and all(c == 1 for c in seen)  # Access-Requests
        # the first try and its retry were both forged (a retransmitted MESSAGE may be in
        # another worker's hands still)
        time.sleep(1.2)
        assert 2 <= counter(kam, "forged_replies") <= len(seen)
        assert counter(kam, "accepts") == 0
        assert "no Message-Authenticator" in kam.log_text()
    finally:
        kam.stop()
        stop.set()
        t.join()
        sock.close()
