"""The List and Policy Server (imps_xcap, cfg/xcap.cfg with WITH_TLS) over HTTPS: Kamailio's tls
module in front of xhttp, with a throwaway CA and a server certificate for the address made by
tests/lib/imps_net.py (make_test_pki). Digest authentication through the real FreeRADIUS works
as over HTTP; a client that does not trust the CA, or speaks plain HTTP to the TLS port, gets
nothing."""

import http.client
import socket
import ssl
import warnings

import pytest

import imps_net
import xcapclient

P = imps_net.PLAN
HOST = P["IMPS_IP_A"]
PORT, TLS_PORT = int(P["IMPS_XCAP_A_PORT"]), int(P["IMPS_XCAP_A_TLS_PORT"])
DOMAIN = P["IMPS_DOMAIN_A"]
ROOT = P["IMPS_XCAP_ROOT_PATH"]
RL = "application/resource-lists+xml"
ALICE_RL = f"resource-lists/users/sip:alice@{DOMAIN}/index"

LISTS = """<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
  <list name="tls-friends">
    <entry uri="sip:bob@a.example"><display-name>Bob over TLS</display-name></entry>
  </list>
</resource-lists>
"""


@pytest.fixture(scope="module")
def xcaps(net):
    """The XCAP server with HTTPS, for this module only: test_xcap.py starts its own on the
    same ports, so this one is stopped when the module ends."""
    imps_net.make_xcap_db(provision=True)
    srv = imps_net.xcap_a(net.workdir, tls=True)
    srv.start()
    try:
        imps_net.wait_port(HOST, TLS_PORT, "tcp")
        yield srv
    finally:
        srv.stop()


def client(srv, user="alice", **kw):
    return xcapclient.Client(HOST, TLS_PORT, user=user, password=f"{user}-secret", tls=True,
                             cafile=srv.cafile, **kw)


def test_caps_over_https_with_digest(xcaps):
    anon = xcapclient.Client(HOST, TLS_PORT, tls=True, cafile=xcaps.cafile)
    r = anon.get("xcap-caps/global/index")
    assert r.status == 401
    assert r.header("WWW-Authenticate").startswith("Digest ")
    anon.close()
    c = client(xcaps)
    r = c.get("xcap-caps/global/index")
    assert r.status == 200 and r.etag, r
    assert r.header("Content-Type") == "application/xcap-caps+xml"
    assert b"<auid>resource-lists</auid>" in r.body
    wrong = xcapclient.Client(HOST, TLS_PORT, user="alice", password="wrong", tls=True,
                              cafile=xcaps.cafile)
    assert wrong.get("xcap-caps/global/index").status == 401
    c.close()


def test_put_and_get_a_document_over_https(xcaps):
    c = client(xcaps)
    c.delete(ALICE_RL)
    r = c.put(ALICE_RL, LISTS, RL)
    assert r.status == 201 and r.etag, r
    g = c.get(ALICE_RL)
    assert g.status == 200 and g.body == LISTS.encode() and g.etag == r.etag
    assert g.header("Content-Type") == RL
    # the same document over plain HTTP: one server, one store
    h = xcapclient.Client(HOST, PORT, user="alice", password="alice-secret")
    assert h.get(ALICE_RL).etag == r.etag
    h.close()
    # a user still reaches only its own documents
    assert client(xcaps, "bob").get(ALICE_RL).status == 403
    assert c.delete(ALICE_RL).status == 200
    c.close()


def test_certificate_names_the_address_and_tls_is_1_2_or_newer(xcaps):
    """Full verification, host name (the IP subjectAltName) included, as any HTTPS client does."""
    ctx = ssl.create_default_context(cafile=xcaps.cafile)
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    conn = http.client.HTTPSConnection(HOST, TLS_PORT, timeout=10, context=ctx)
    try:
        conn.request("GET", f"{ROOT}/xcap-caps/global/index")
        r = conn.getresponse()
        r.read()
        assert r.status == 401  # no credentials: the challenge, over a verified connection
        assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
        cert = conn.sock.getpeercert()
        assert ("IP Address", HOST) in cert["subjectAltName"]
    finally:
        conn.close()
    # a client that speaks TLS 1.1 at most (this Python's OpenSSL still can, at security level
    # 0) is refused by the server: a protocol_version alert
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.load_verify_locations(xcaps.cafile)
        old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("ALL:@SECLEVEL=0")
    with socket.create_connection((HOST, TLS_PORT), timeout=10) as s:
        with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"):
            old.wrap_socket(s, server_hostname=HOST).close()


def test_a_client_that_does_not_trust_the_ca_fails_the_handshake(xcaps):
    ctx = ssl.create_default_context()  # the system's CAs only
    conn = http.client.HTTPSConnection(HOST, TLS_PORT, timeout=10, context=ctx)
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            conn.request("GET", f"{ROOT}/xcap-caps/global/index")
    finally:
        conn.close()
    # another CA's certificate does not make it trusted either
    other = imps_net.make_test_pki(f"{xcaps.pki_dir}-other")
    c = xcapclient.Client(HOST, TLS_PORT, user="alice", password="alice-secret", tls=True, cafile=other)
    with pytest.raises(ssl.SSLCertVerificationError):
        c.get("xcap-caps/global/index")
    # the server goes on serving clients that trust it
    assert client(xcaps).get("xcap-caps/global/index").status == 200


def test_plain_http_to_the_tls_port_gets_no_200(xcaps):
    conn = http.client.HTTPConnection(HOST, TLS_PORT, timeout=10)
    status = None
    try:
        conn.request("GET", f"{ROOT}/xcap-caps/global/index")
        status = conn.getresponse().status
    except (http.client.HTTPException, ConnectionError, OSError):
        pass  # the TLS layer drops the connection: no HTTP answer at all
    finally:
        conn.close()
    assert status != 200
    assert client(xcaps).get("xcap-caps/global/index").status == 200
