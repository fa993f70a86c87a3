"""The List and Policy Server (imps_xcap, cfg/xcap.cfg) over HTTP: RFC 4825 documents, nodes,
ETags and preconditions, the section 11 error bodies, access control between users, Digest
authentication through the real FreeRADIUS, RPC and counters, persistence across restarts."""

import glob
import os
import re
import threading

import pytest
from lxml import etree

import imps_net
import xcapclient

P = imps_net.PLAN
HOST, PORT = P["IMPS_IP_A"], int(P["IMPS_XCAP_A_PORT"])
DOMAIN = P["IMPS_DOMAIN_A"]
SCHEMAS = os.path.join(imps_net.ROOT, "modules", "imps_xcap", "schemas")
EXAMPLES = os.path.join(imps_net.ROOT, "tests", "schemas", "examples", "xcap")
RL = "application/resource-lists+xml"
ALICE_RL = f"resource-lists/users/sip:alice@{DOMAIN}/index"
FRIENDS = ALICE_RL + '/~~/resource-lists/list[@name="friends"]'

LISTS = """<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
  <list name="friends">
    <entry uri="sip:bob@a.example"><display-name>Bob</display-name></entry>
    <entry uri="sip:carol@a.example"/>
  </list>
</resource-lists>
"""

_schemas = {}


def schema(name):
    if name not in _schemas:
        parser = etree.XMLParser(no_network=True, resolve_entities=False)
        old = os.getcwd()
        os.chdir(SCHEMAS)  # imports are local file names
        try:
            _schemas[name] = etree.XMLSchema(etree.parse(os.path.join(SCHEMAS, name), parser))
        finally:
            os.chdir(old)
    return _schemas[name]


def assert_error(rep, element):
    """A 409 with a body valid against RFC 4825's xcap-error schema naming element."""
    assert rep.status == 409, rep
    assert rep.header("Content-Type") == "application/xcap-error+xml"
    doc = etree.fromstring(rep.body)
    schema("xcap-error.xsd").assertValid(doc)
    assert doc[0].tag == "{urn:ietf:params:xml:ns:xcap-error}" + element, rep
    return doc[0]


@pytest.fixture(scope="module")
def xcap(net):
    imps_net.make_xcap_db(provision=True)
    srv = imps_net.xcap_a(net.workdir)
    srv.start()
    imps_net.wait_port(HOST, PORT, "tcp")
    yield srv
    srv.stop()


def client(user="alice", password=None, **kw):
    return xcapclient.Client(HOST, PORT, user=user, password=password or f"{user}-secret", **kw)


@pytest.fixture
def alice(xcap):
    c = client("alice")
    c.delete(ALICE_RL)
    yield c
    c.close()


def stat(srv, name):
    out = srv.rpc("stats.get_statistics", name)
    m = re.search(rf"{name} = (\d+)", out)
    return int(m.group(1)) if m else 0


def test_digest_authentication_through_the_haaa(xcap):
    anon = xcapclient.Client(HOST, PORT)
    r = anon.get(ALICE_RL)
    assert r.status == 401
    ch = r.header("WWW-Authenticate")
    assert ch and ch.startswith("Digest ") and f'realm="{DOMAIN}"' in ch and 'qop="auth"' in ch
    assert client("alice", "wrong").get(ALICE_RL).status == 401
    assert client("mallory").get(ALICE_RL).status == 401
    assert client("alice").get("xcap-caps/global/index").status == 200


def test_xcap_caps_lists_every_usage_and_validates(xcap):
    r = client().get("xcap-caps/global/index")
    assert r.status == 200 and r.etag
    assert r.header("Content-Type") == "application/xcap-caps+xml"
    doc = etree.fromstring(r.body)
    schema("xcap-caps.xsd").assertValid(doc)
    ns = {"c": "urn:ietf:params:xml:ns:xcap-caps"}
    auids = doc.xpath("//c:auid/text()", namespaces=ns)
    assert set(auids) == {"resource-lists", "rls-services", "pres-rules", "org.openmobilealliance.pres-rules",
                          "xcap-caps", "org.openmobilealliance.xcap-directory"}
    assert "urn:ietf:params:xml:ns:common-policy" in doc.xpath("//c:namespace/text()", namespaces=ns)


def test_document_lifecycle_etags_and_preconditions(alice):
    r = alice.put(ALICE_RL, LISTS, RL)
    assert r.status == 201, r
    e1 = r.etag
    assert e1
    g = alice.get(ALICE_RL)
    assert g.status == 200 and g.body == LISTS.encode() and g.etag == e1
    assert g.header("Content-Type") == RL
    r = alice.put(ALICE_RL, LISTS, RL)
    assert r.status == 200 and r.etag and r.etag != e1
    e2 = r.etag
    assert alice.get(ALICE_RL, headers={"If-None-Match": f'"{e2}"'}).status == 304
    assert alice.get(ALICE_RL, headers={"If-Match": f'"{e1}"'}).status == 412
    assert alice.get(ALICE_RL, headers={"If-Match": "*"}).status == 200
    assert alice.put(ALICE_RL, LISTS, RL, headers={"If-Match": f'"{e1}"'}).status == 412
    assert alice.put(ALICE_RL, LISTS, RL, headers={"If-None-Match": "*"}).status == 412
    assert alice.get(ALICE_RL).etag == e2  # the refused writes stored nothing
    assert alice.delete(ALICE_RL, headers={"If-Match": f'"{e2}"'}).status == 200
    assert alice.get(ALICE_RL).status == 404
    assert alice.delete(ALICE_RL).status == 404
    assert alice.put(ALICE_RL, LISTS, RL, headers={"If-Match": "*"}).status == 412
    assert alice.put(ALICE_RL, LISTS, RL, headers={"If-None-Match": "*"}).status == 201


def test_elements_attributes_and_namespace_bindings(alice):
    assert alice.put(ALICE_RL, LISTS, RL).status == 201
    r = alice.get(FRIENDS + "/entry[1]")
    assert r.status == 200 and r.header("Content-Type") == "application/xcap-el+xml"
    assert r.text == '<entry uri="sip:bob@a.example"><display-name>Bob</display-name></entry>'
    r = alice.get(FRIENDS + "/entry[2]/@uri")
    assert r.status == 200 and r.header("Content-Type") == "application/xcap-att+xml"
    assert r.text == "sip:carol@a.example"
    r = alice.get(FRIENDS + "/namespace::*")
    assert r.status == 200 and r.header("Content-Type") == "application/xcap-ns+xml"
    assert 'xmlns="urn:ietf:params:xml:ns:resource-lists"' in r.text
    # insert: 201, after the last entry; then the element reads back as put
    el = '<entry uri="sip:dave@b.example"><display-name>Dave</display-name></entry>'
    r = alice.put(FRIENDS + '/entry[@uri="sip:dave@b.example"]', el, "application/xcap-el+xml")
    assert r.status == 201 and r.etag, r
    assert alice.get(FRIENDS + '/entry[@uri="sip:dave@b.example"]').text == el
    doc = alice.get(ALICE_RL).text
    assert doc.index("sip:carol@a.example") < doc.index("sip:dave@b.example")
    # replace in place: the first entry stays first
    r = alice.put(FRIENDS + "/entry[1]", '<entry uri="sip:bob@a.example"/>', "application/xcap-el+xml")
    assert r.status == 200
    doc = alice.get(ALICE_RL).text
    assert doc.index("sip:bob@a.example") < doc.index("sip:carol@a.example")
    # attribute put and delete
    assert alice.put(FRIENDS + "/@name", "pals", "application/xcap-att+xml").status == 409  # selector changes
    assert alice.put(ALICE_RL + '/~~/resource-lists/list[1]/@name', "pals", "application/xcap-att+xml").status == 200
    assert alice.get(ALICE_RL + '/~~/resource-lists/list[@name="pals"]/entry[1]/@uri').text == "sip:bob@a.example"
    r = alice.delete(ALICE_RL + '/~~/resource-lists/list[@name="pals"]/entry[@uri="sip:dave@b.example"]')
    assert r.status == 200 and r.etag
    assert "sip:dave@b.example" not in alice.get(ALICE_RL).text
    # prefixed selectors with xmlns() bindings in the query
    r = alice.get(ALICE_RL + "/~~/r:resource-lists/r:list/@name?xmlns(r=urn:ietf:params:xml:ns:resource-lists)")
    assert r.status == 200 and r.text == "pals"
    # a namespace selector only reads
    assert alice.put(ALICE_RL + "/~~/resource-lists/namespace::*", "x", "application/xcap-ns+xml").status == 405


def test_refused_changes_get_409_bodies_and_store_nothing(alice, xcap):
    assert alice.put(ALICE_RL, LISTS, RL).status == 201
    etag = alice.get(ALICE_RL).etag
    before = stat(xcap, "refused_not_well_formed")
    assert_error(alice.put(ALICE_RL, "<resource-lists><list>", RL), "not-well-formed")
    assert stat(xcap, "refused_not_well_formed") == before + 1
    assert_error(alice.put(ALICE_RL, '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', RL),
                 "not-well-formed")
    assert_error(alice.put(ALICE_RL, '<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">'
                                     '<bogus/></resource-lists>', RL), "schema-validation-error")
    u = assert_error(alice.put(ALICE_RL, '<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">'
                                         '<list name="a"/><list name="a"/></resource-lists>', RL),
                     "uniqueness-failure")
    assert u[0].get("field") and len(u[0]) >= 1  # <exists field=...><alt-value>...
    np = assert_error(alice.put(ALICE_RL + '/~~/resource-lists/list[@name="nope"]/entry',
                                '<entry uri="sip:x@a.example"/>', "application/xcap-el+xml"), "no-parent")
    assert np[0].text.startswith(f"http://{HOST}:{PORT}/xcap-root/{ALICE_RL}")
    assert_error(alice.put(FRIENDS + "/entry[9]", '<entry uri="sip:x@a.example"/>', "application/xcap-el+xml"),
                 "cannot-insert")
    assert_error(alice.delete(FRIENDS + "/entry[1]"), "cannot-delete")
    assert_error(alice.put(FRIENDS + '/entry[@uri="sip:y@a.example"]', "<entry/><entry/>",
                           "application/xcap-el+xml"), "not-xml-frag")
    assert alice.put(ALICE_RL, LISTS, "text/plain").status == 415
    assert alice.put(FRIENDS + "/entry[3]", "<entry uri='sip:z@a.example'/>", RL).status == 415
    assert alice.get(ALICE_RL).etag == etag
    assert alice.request("POST", ALICE_RL, body="x").status == 405
    assert alice.get("no-such-usage/users/sip:alice@a.example/index").status == 404


def test_users_reach_only_their_own_documents(alice, xcap):
    assert alice.put(ALICE_RL, LISTS, RL).status == 201
    bob = client("bob")
    assert bob.get(ALICE_RL).status == 403
    assert bob.put(ALICE_RL, LISTS, RL).status == 403
    assert bob.delete(ALICE_RL).status == 403
    assert bob.put("resource-lists/global/index", LISTS, RL).status == 403
    assert alice.get(ALICE_RL).status == 200
    admin = client("admin")
    assert admin.get(ALICE_RL).status == 200
    # a trusted reader (the presence server's address) reads without credentials, never writes
    reader = xcapclient.Client(HOST, PORT, source=P["IMPS_XCAP_A_READERS"])
    assert reader.get(ALICE_RL).status == 200
    assert reader.put(ALICE_RL, LISTS, RL).status == 403
    assert alice.get(ALICE_RL).body == LISTS.encode()


def test_directory_and_rls_index(alice):
    assert alice.put(ALICE_RL, LISTS, RL).status == 201
    r = alice.get(f"org.openmobilealliance.xcap-directory/users/sip:alice@{DOMAIN}/directory.xml")
    assert r.status == 200 and r.header("Content-Type") == "application/vnd.oma.xcap-directory+xml"
    doc = etree.fromstring(r.body)
    schema("xcap-directory.xsd").assertValid(doc)
    etag = alice.get(ALICE_RL).etag
    entries = doc.xpath("//d:entry", namespaces={"d": "urn:oma:xml:xdm:xcap-directory"})
    assert any(e.get("uri") == f"http://{HOST}:{PORT}/xcap-root/{ALICE_RL}" and e.get("etag") == etag
               for e in entries)
    # the demo's rls-services document appears in the global index
    r = alice.get("rls-services/global/index")
    assert r.status == 200 and r.header("Content-Type") == "application/rls-services+xml"
    schema("rls-services.xsd").assertValid(etree.fromstring(r.body))
    assert f"sip:alice-buddies@{DOMAIN}" in r.text


def test_rpc_list_show_delete_and_stats(alice, xcap):
    assert alice.put(ALICE_RL, LISTS, RL).status == 201
    out = xcap.rpc("imps_xcap.list", f"alice@{DOMAIN}")
    assert ALICE_RL in out and alice.get(ALICE_RL).etag in out
    out = xcap.rpc("imps_xcap.show", ALICE_RL)
    assert "sip:carol@a.example" in out
    stats = xcap.rpc("imps_xcap.stats")
    assert re.search(r"put: [1-9]", stats) and "refused" in stats
    assert "deleted" in xcap.rpc("imps_xcap.delete", ALICE_RL)
    assert alice.get(ALICE_RL).status == 404
    assert "404" in xcap.rpc("imps_xcap.show", ALICE_RL, check=False)
    assert "<auid>resource-lists</auid>" in xcap.rpc("imps_xcap.caps")


def test_documents_up_to_the_size_bound(alice):
    entries = []
    n = 0
    body = ""
    while True:
        e = f'<entry uri="sip:user{n}@a.example"><display-name>User number {n}</display-name></entry>\n'
        if len(body) + len(e) > 1000 * 1024:
            break
        entries.append(e)
        body += e
        n += 1
    doc = ('<?xml version="1.0" encoding="UTF-8"?>\n<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">'
           '<list name="big">\n' + body + "</list></resource-lists>\n")
    r = alice.put(ALICE_RL, doc, RL)
    assert r.status == 201, r
    g = alice.get(ALICE_RL)
    assert g.status == 200 and g.body == doc.encode()
    too_big = doc.replace("</list>", "<entry uri=\"sip:x@a.example\"/>" * 3000 + "</list>")
    assert len(too_big) > 1048576
    r = alice.put(ALICE_RL, too_big, RL)
    assert r.status == 413
    assert alice.get(ALICE_RL).etag == g.etag


def test_concurrent_conditional_puts_one_wins(alice):
    assert alice.put(ALICE_RL, LISTS, RL).status == 201
    etag = alice.get(ALICE_RL).etag
    results = []

    def put(name):
        c = client("alice")
        doc = LISTS.replace("friends", name)
        results.append(c.put(ALICE_RL, doc, RL, headers={"If-Match": f'"{etag}"'}).status)
        c.close()

    ts = [threading.Thread(target=put, args=(f"l{i}",)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(results) == [200, 412, 412, 412]


def test_documents_survive_a_restart(alice, xcap):
    assert alice.put(ALICE_RL, LISTS, RL).status == 201
    etag = alice.get(ALICE_RL).etag
    xcap.restart()
    imps_net.wait_port(HOST, PORT, "tcp")
    c = client("alice")
    g = c.get(ALICE_RL)
    assert g.status == 200 and g.etag == etag and g.body == LISTS.encode()


def test_demo_buddy_list_of_alice(xcap):
    """sql/imps_xcap-demo.sql, as make run provisions it: alice's buddy list holds bob and carol."""
    xcap.stop()
    imps_net.make_xcap_db(provision=True)
    xcap.start()
    imps_net.wait_port(HOST, PORT, "tcp")
    r = client("alice").get(ALICE_RL + '/~~/resource-lists/list[@name="buddies"]')
    assert r.status == 200, r
    # an element as it stands in the document: its namespace is declared on the root only
    el = etree.fromstring(r.body)
    assert el.xpath("entry/@uri") == [f"sip:bob@{DOMAIN}", f"sip:carol@{DOMAIN}"]
    assert el.xpath("entry/display-name/text()") == ["Bob", "Carol"]
    doc = client("alice").get(ALICE_RL)
    schema("resource-lists.xsd").assertValid(etree.fromstring(doc.body))


def test_documents_in_postgresql(xcap, net):
    """The same table (sql/imps_xcap-create.sql) through db_postgres: documents, ETags and the
    conditional writes that keep concurrent changes apart."""
    import subprocess
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
    from bench_reginfo import PG_PORT, Postgres

    os.chmod(net.workdir, 0o755)  # the postgres user runs the cluster below it
    pg = Postgres(os.path.join(net.workdir, "pgxcap"))
    os.makedirs(os.path.dirname(pg.dir), exist_ok=True)
    psql = ["psql", "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "kamailio", "-d", "kamailio", "-q",
            "-v", "ON_ERROR_STOP=1", "-At"]
    xcap.stop()
    k = None
    try:
        pg.start()
        subprocess.run(psql + ["-f", os.path.join(imps_net.SQL_DIR, "imps_xcap-create.sql")],
                       check=True, capture_output=True)
        k = imps_net.xcap_a(net.workdir, {"XCAP_PG_URL": f'"postgres://kamailio:kamailio@127.0.0.1:{PG_PORT}/kamailio"'})
        k.start()
        imps_net.wait_port(HOST, PORT, "tcp")
        c = client("alice")
        r = c.put(ALICE_RL, LISTS, RL)
        assert r.status == 201, r
        assert c.get(ALICE_RL).body == LISTS.encode()
        el = '<entry uri="sip:dave@b.example"/>'
        r2 = c.put(FRIENDS + '/entry[@uri="sip:dave@b.example"]', el, "application/xcap-el+xml")
        assert r2.status == 201 and r2.etag != r.etag
        assert c.put(ALICE_RL, LISTS, RL, headers={"If-Match": f'"{r.etag}"'}).status == 412
        rows = subprocess.run(psql + ["-c", "SELECT path, etag, size FROM imps_xcap"], check=True,
                              capture_output=True, text=True).stdout.split()
        doc = c.get(ALICE_RL)
        assert rows == [f"{ALICE_RL}|{r2.etag}|{len(doc.body)}"], rows
        assert c.delete(ALICE_RL).status == 200
        assert subprocess.run(psql + ["-c", "SELECT count(*) FROM imps_xcap"], check=True,
                              capture_output=True, text=True).stdout.strip() == "0"
    finally:
        if k:
            k.stop()
        pg.stop()
        xcap.start()
        imps_net.wait_port(HOST, PORT, "tcp")
