"""Two operators' networks (seed figure 1): a.example and b.example, each with its subscriber
edge, HSP, presence server and operator edge proxy (cfg/operator.cfg). Requests between
alice@a.example and dave@b.example (MESSAGE, OPTIONS), alice watching dave's presence, carol's
query of dave (seed figure 6: the querying user's HSP sends it on to the presentity's), the
operator edges' topology hiding (what the peer receives names no internal element) and their
mutual TLS (a peer without a certificate of the operators' CA, or with one that does not name
the network it connects from, is refused)."""

import os
import re
import socket
import ssl
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import imps_net  # noqa: E402
import presence_check  # noqa: E402
import sipua  # noqa: E402
from sipua import Publisher, Subscription, pidf  # noqa: E402

A = imps_net.net_plan("a")
B = imps_net.net_plan("b")
PIDF = "application/pidf+xml"


def test_message_and_options_between_the_networks(two_nets):
    net, peer = two_nets
    alice, dave = net.phone("alice"), peer.phone("dave")
    assert alice.register().status == 200
    assert dave.register().status == 200

    r = alice.message("sip:dave@b.example", "hello dave")
    assert r.status == 200, r.raw
    m = dave.wait_request("MESSAGE", 3)
    assert m.body == b"hello dave"
    assert m.header("from").startswith("<sip:alice@a.example>")
    # the identity a.example's edge asserted crosses the operator edges
    assert m.header("p-asserted-identity") == "<sip:alice@a.example>"

    r = dave.request("OPTIONS", "sip:alice@a.example")
    assert r.status == 200, r.raw
    o = alice.wait_request("OPTIONS", 3)
    assert o.header("p-asserted-identity") == "<sip:dave@b.example>"

    # erin exists in b.example but has no binding: b.example's answer comes back
    r = alice.message("sip:erin@b.example", "hello erin")
    assert r.status == 480, r.raw
    # a domain no operator edge peers with
    r = alice.message("sip:zoe@c.example", "hello")
    assert r.status == 404 and "no peer network" in r.raw.decode(), r.raw


def test_alice_watches_dave_across_the_networks(two_nets):
    net, peer = two_nets
    dave = peer.ua("dave")
    dpub = Publisher(dave)
    r = dpub.publish(pidf("dave", B["domain"], "open", "phone", note="in b"), expires=600, etag=None)
    assert r.status == 200, r.raw

    alice = net.ua("alice")
    sub = Subscription(alice, "sip:dave@b.example", event="presence", accept=PIDF)
    r = sub.subscribe(600)
    assert r.status == 200, r.raw
    n = alice.wait_request()
    assert n.header("event") == "presence"
    assert n.header("subscription-state") == "active;expires=600"
    doc = presence_check.parse_pidf(n.body)
    assert doc["entity"] == "sip:dave@b.example"
    assert [(t["id"], t["basic"], t["notes"]) for t in doc["tuples"]] == \
        [("phone", "open", {None: "in b"})]
    cseq1 = int(n.header("cseq").split()[0])

    # a change in b.example reaches alice; a refresh through both networks gets a NOTIFY
    r = dpub.publish(pidf("dave", B["domain"], "closed", "phone"), expires=600)
    assert r.status == 200, r.raw
    n = alice.wait_request()
    doc = presence_check.parse_pidf(n.body)
    assert [(t["id"], t["basic"]) for t in doc["tuples"]] == [("phone", "closed")]
    cseq2 = int(n.header("cseq").split()[0])
    assert cseq2 > cseq1
    assert sub.refresh(300).status == 200
    n = alice.wait_request()
    assert n.header("subscription-state") == "active;expires=300"
    assert int(n.header("cseq").split()[0]) > cseq2

    # b.example's presence server shows the watcher of the other network
    show = peer.ps.rpc("imps_presence.watchers", "dave@b.example")
    assert "alice@a.example" in show, show

    assert sub.unsubscribe().status == 200
    n = alice.wait_request()
    assert n.header("subscription-state").startswith("terminated")


def test_carol_queries_dave(two_nets):
    """Seed figure 6: a presence query (SUBSCRIBE with Expires: 0) of a presentity of the
    other network, from carol's HSP to dave's, answered with one NOTIFY with the state."""
    net, peer = two_nets
    dave = peer.ua("dave")
    r = Publisher(dave).publish(pidf("dave", B["domain"], "open", "pc", note="busy"),
                                expires=600, etag=None)
    assert r.status == 200
    carol = net.ua("carol")
    q = Subscription(carol, "sip:dave@b.example", event="presence", accept=PIDF)
    r = q.subscribe(0)
    assert r.status == 200, r.raw
    n = carol.wait_request()
    assert n.header("subscription-state").startswith("terminated")
    doc = presence_check.parse_pidf(n.body)
    assert doc["entity"] == "sip:dave@b.example"
    assert [(t["id"], t["basic"], t["notes"]) for t in doc["tuples"]] == [("pc", "open", {None: "busy"})]
    carol.no_request(wait=1.0)


# -- the operator edges' TLS and topology hiding, against a peer played by the test -----------

def pki(peer):
    return peer.oper_a.pki_dir


def client_context(certfile=None, keyfile=None, cafile=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(cafile)
    if certfile:
        ctx.load_cert_chain(certfile, keyfile)
    return ctx


def tls_request(ctx, text, source_ip, dest=(A["ip"], A["oper_port"]), timeout=3.0):
    """Sends one SIP request over a new TLS connection from source_ip to a.example's operator
    edge; returns the first response's text, or raises the handshake's or the read's error."""
    raw = socket.create_connection(dest, timeout=timeout, source_address=(source_ip, 0))
    s = ctx.wrap_socket(raw)
    try:
        s.sendall(text.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65535)
            if not chunk:
                raise ConnectionError("closed without an answer")
            data += chunk
        return data.decode(errors="replace")
    finally:
        s.close()


def message_to_alice(source_ip, src_port, pai=None, ruri="sip:alice@a.example"):
    lines = [f"MESSAGE {ruri} SIP/2.0",
             f"Via: SIP/2.0/TLS {source_ip}:{src_port};rport;branch=z9hG4bK{sipua.rand(10)}",
             "Max-Forwards: 70", f"From: <sip:dave@b.example>;tag={sipua.rand(6)}",
             f"To: <{ruri}>", f"Call-ID: {sipua.rand(12)}@peer", "CSeq: 1 MESSAGE"]
    if pai:
        lines.append(f"P-Asserted-Identity: <{pai}>")
    lines += ["Content-Type: text/plain", "Content-Length: 2", "", "hi"]
    return "\r\n".join(lines)


def test_a_peer_needs_a_certificate_of_the_operators_ca_naming_its_network(two_nets, tmp_path):
    net, peer = two_nets
    alice = net.phone("alice")
    assert alice.register().status == 200
    d = pki(peer)
    ca = os.path.join(d, "ca.pem")
    good = client_context(os.path.join(d, "oper-b-cert.pem"), os.path.join(d, "oper-b-key.pem"), ca)

    # no certificate: the handshake (or the first read after it, TLS 1.3) fails
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        tls_request(client_context(cafile=ca), message_to_alice(B["ip"], 1), B["ip"])
    # a certificate of another CA naming b.example
    other = str(tmp_path / "other")
    os.makedirs(other)
    oca, okey = os.path.join(other, "ca.pem"), os.path.join(other, "ca-key.pem")
    imps_net.make_ca(oca, okey, "some other CA")
    cert, key = imps_net.make_cert(other, "fake-b", oca, okey, "b.example", "DNS:b.example,IP:127.0.0.2")
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        tls_request(client_context(cert, key, ca), message_to_alice(B["ip"], 1), B["ip"])
    # the operators' CA, but the certificate names no peer network
    cert, key = imps_net.make_cert(d, "evil", ca, os.path.join(d, "ca-key.pem"), "evil.example",
                                   "DNS:evil.example,IP:127.0.0.2")
    r = tls_request(client_context(cert, key, ca), message_to_alice(B["ip"], 1), B["ip"])
    assert r.startswith("SIP/2.0 403 Forbidden (not a known peer)"), r
    # b.example's certificate, from an address that is not b.example's operator edge
    r = tls_request(good, message_to_alice("127.0.0.3", 1), "127.0.0.3")
    assert r.startswith("SIP/2.0 403 Forbidden (not a known peer)"), r
    with pytest.raises(TimeoutError):
        alice.wait_request("MESSAGE", 0.5)

    # b.example's certificate from its address: delivered; an identity of a.example that the
    # peer asserts is not taken (a peer asserts its own users only), dave's is
    peer.oper_b.stop()
    try:
        r = tls_request(good, message_to_alice(B["ip"], 1, pai="sip:bob@a.example"), B["ip"])
        assert r.startswith("SIP/2.0 200"), r
        m = alice.wait_request("MESSAGE", 3)
        assert m.header("p-asserted-identity") is None, m.raw
        r = tls_request(good, message_to_alice(B["ip"], 1, pai="sip:dave@b.example"), B["ip"])
        assert r.startswith("SIP/2.0 200"), r
        m = alice.wait_request("MESSAGE", 3)
        assert m.header("p-asserted-identity") == "<sip:dave@b.example>"
        # nothing transits: a peer's request for a third domain
        r = tls_request(good, message_to_alice(B["ip"], 1, ruri="sip:zoe@c.example"), B["ip"])
        assert r.startswith("SIP/2.0 403 Forbidden (not a domain of this network)"), r
    finally:
        peer.oper_b.start()


class FakePeer:
    """b.example's operator edge played by the test: a TLS server on its address and port
    with its certificate, requiring a client certificate of the operators' CA; it records
    each request and answers 200."""

    def __init__(self, d):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(os.path.join(d, "oper-b-cert.pem"), os.path.join(d, "oper-b-key.pem"))
        self.ctx.load_verify_locations(os.path.join(d, "ca.pem"))
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((B["ip"], B["oper_port"]))
        self.sock.listen(4)
        self.requests, self.peer_certs, self.conns = [], [], []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    def _conn(self, c):
        try:
            self.conns.append(c)
            s = self.ctx.wrap_socket(c, server_side=True)
            self.peer_certs.append(s.getpeercert())
            buf = b""
            while True:
                chunk = s.recv(65535)
                if not chunk:
                    return
                buf += chunk
                while b"\r\n\r\n" in buf:
                    head, rest = buf.split(b"\r\n\r\n", 1)
                    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                    n = int(m.group(1)) if m else 0
                    if len(rest) < n:
                        break
                    msg = sipua.Message(head + b"\r\n\r\n" + rest[:n])
                    buf = rest[n:]
                    if msg.raw.startswith(b"SIP/2.0"):
                        continue
                    self.requests.append(msg)
                    lines = ["SIP/2.0 200 OK"] + [f"Via: {v}" for v in msg.all("via")]
                    lines += [f"From: {msg.header('from')}", f"To: {msg.header('to')};tag=fp1",
                              f"Call-ID: {msg.header('call-id')}", f"CSeq: {msg.header('cseq')}",
                              f"Contact: <sip:{B['ip']}:{B['oper_port']};transport=tls>",
                              "Content-Length: 0", "", ""]
                    s.sendall("\r\n".join(lines).encode())
        except (OSError, ssl.SSLError):
            return

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread: the port is free
        except OSError:
            pass
        self.sock.close()
        for c in self.conns:  # a.example's edge must not go on using these connections
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass


def test_the_peer_receives_no_internal_address_of_the_network(two_nets):
    """Topology hiding: what a.example's operator edge sends to b.example names a.example's
    operator edge (its TLS address) and nothing else of a.example: not the subscriber edge,
    the HSP, the presence server, the operator edge's internal side, nor the UE; and it
    presents a.example's certificate."""
    net, peer = two_nets
    alice = net.phone("alice")
    assert alice.register().status == 200
    peer.oper_b.stop()
    fake = FakePeer(pki(peer))
    try:
        r = alice.message("sip:dave@b.example", "hello")
        assert r.status == 200, r.raw
        sub = Subscription(alice, "sip:dave@b.example", event="presence", accept=PIDF)
        assert sub.subscribe(600).status == 200
        assert len(fake.requests) == 2
        subject = dict(x[0] for x in fake.peer_certs[0]["subject"])
        assert subject["commonName"] == "a.example"
        internal = [f"{A['ip']}:{p}" for p in (A["edge_port"], A["hsp_port"], A["ps_port"],
                                                  A["oper_int_port"], alice.port)]
        for req in fake.requests:
            text = req.raw.decode(errors="replace")
            head = text.split("\r\n\r\n", 1)[0]
            for addr in internal:
                assert addr not in head, head
            # every address of a.example that appears is its operator edge's TLS side
            for m in re.finditer(re.escape(A["ip"]) + r"(?!\d)(:\d+)?", head):
                assert m.group(1) == f":{A['oper_port']}", head
            assert A["domain"] in req.header("from")  # identities stay; topology does not
            assert not re.search(r"(?i)^path:|^p-preferred", head, re.M)
        # the masked Call-ID, Contact and Vias still route the answer back
        assert fake.requests[1].header("call-id") != sub.call_id
    finally:
        fake.close()
        peer.oper_b.start()
