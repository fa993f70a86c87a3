"""bind_imps_presence(): another module inside the same Kamailio watches presentities with no
SIP round trip (the resource list server's way in). tests/modules/imps_test_watch.c is such a
consumer: it watches over RPC and keeps every NOTIFY its callback received."""

import os
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

import imps_net  # noqa: E402
import presence_check  # noqa: E402
from sipua import Publisher, pidf  # noqa: E402

DOMAIN = "a.example"
PORT = 5082


@pytest.fixture
def node(clean_net):
    n = imps_net.ps_node(clean_net.workdir, "ps-api", PORT, {"PS_NOTIFY_INTERVAL": 0},
                         load=[os.path.join(imps_net.TEST_MODULES, "imps_test_watch.so")])
    n.start()
    yield n
    n.stop()


def publish(net, note, etag=None, basic="open"):
    ua = net.ua("alice")
    p = Publisher(ua)
    p.password = None
    msg = p._build(pidf("alice", DOMAIN, basic, "t1", note=note), 600, etag, "application/pidf+xml",
                   "presence", [])
    r = ua.request(msg, dest=("127.0.0.1", PORT))
    assert r.status == 200, r.status
    return r.header("sip-etag")


def fields(out):
    """kamcmd's struct output as {name: value}."""
    d = {}
    for line in out.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            d[k.strip()] = v.strip()
    return d


def notifies(node):
    out = node.rpc("imps_test_watch.notifies")
    items, cur = [], None
    for line in out.splitlines():
        line = line.strip()
        if line == "{":
            cur = {}
        elif line == "}":
            items.append(cur)
        elif cur is not None and ":" in line:
            k, v = line.split(":", 1)
            cur[k.strip()] = v.strip()
    return items


def wait_notifies(node, n, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = notifies(node)
        if len(got) >= n:
            return got
        time.sleep(0.05)
    raise AssertionError(f"{n} NOTIFYs expected, got {notifies(node)}")


def note_of(body):
    doc = presence_check.parse_pidf(body.encode())  # schema-valid PIDF
    assert doc["entity"] == f"sip:alice@{DOMAIN}"
    return next(iter(doc["tuples"][0]["notes"].values()))


def test_in_process_watch_gets_every_state_without_sip(clean_net, node):
    net = clean_net
    etag = publish(net, "first")
    w = fields(node.rpc("imps_test_watch.watch", f"alice@{DOMAIN}", f"bob@{DOMAIN}", "list-1", 600))
    assert w["code"] == "200" and len(w["id"]) == 24
    n = wait_notifies(node, 1)[0]
    assert n["version"] == "0" and n["presentity"] == f"alice@{DOMAIN}" and n["id"] == w["id"]
    assert n["key"] == "list-1"
    assert n["state"].startswith("active;expires=") and 590 <= int(n["state"].split("=")[1]) <= 600
    assert n["content_type"] == "application/pidf+xml" and note_of(n["body"]) == "first"
    # the watch is a presence subscription like any other: the owner's watchers list it
    ws = node.rpc("imps_presence.watchers", f"alice@{DOMAIN}")
    assert f"bob@{DOMAIN}" in ws and "status: active" in ws
    # a change: the next version, the new document
    etag = publish(net, "second", etag)
    n = wait_notifies(node, 2)[1]
    assert n["version"] == "1" and note_of(n["body"]) == "second"
    # the same key again refreshes the watch: full state, next version, same id
    w2 = fields(node.rpc("imps_test_watch.watch", f"alice@{DOMAIN}", f"bob@{DOMAIN}", "list-1", 300))
    assert w2["code"] == "200" and w2["id"] == w["id"]
    n = wait_notifies(node, 3)[2]
    assert n["version"] == "2" and note_of(n["body"]) == "second"
    assert 290 <= int(n["state"].split("=")[1]) <= 300
    # the document without a watch
    doc = node.rpc("imps_test_watch.document", f"alice@{DOMAIN}")
    assert "second" in doc and "urn:ietf:params:xml:ns:pidf" in doc
    # unwatch: the final NOTIFY, and the subscription is gone
    assert node.rpc("imps_test_watch.unwatch", f"alice@{DOMAIN}", w["id"]).strip() == "1"
    n = wait_notifies(node, 4)[3]
    assert n["version"] == "3" and n["state"] == "terminated;reason=timeout"
    assert f"bob@{DOMAIN}" not in node.rpc("imps_presence.watchers", f"alice@{DOMAIN}")
    assert node.rpc("imps_test_watch.unwatch", f"alice@{DOMAIN}", w["id"]).strip() == "0"


def test_in_process_watch_follows_the_rules_and_the_failure_policy(clean_net, node):
    net = clean_net
    imps_net.presence_rules([("alice@a.example", "carol@a.example", "block"),
                             ("a.example", "a.example", "allow")])
    publish(net, "hello")
    blocked = fields(node.rpc("imps_test_watch.watch", f"alice@{DOMAIN}", f"carol@{DOMAIN}", "k", 600))
    assert blocked["code"] == "403"
    brief = fields(node.rpc("imps_test_watch.watch", f"alice@{DOMAIN}", f"bob@{DOMAIN}", "k", 1))
    assert brief["code"] == "423"
    assert notifies(node) == []
    # a fetch: one NOTIFY, terminated, nothing kept
    fetch = fields(node.rpc("imps_test_watch.watch", f"alice@{DOMAIN}", f"bob@{DOMAIN}", "once", 0))
    assert fetch["code"] == "200"
    n = wait_notifies(node, 1)[0]
    assert n["state"] == "terminated;reason=timeout" and note_of(n["body"]) == "hello"
    assert f"bob@{DOMAIN}" not in node.rpc("imps_presence.watchers", f"alice@{DOMAIN}")
    # the consumer answers 481 (it forgot the watch): RFC 6665 4.2.2, the watch ends
    w = fields(node.rpc("imps_test_watch.watch", f"alice@{DOMAIN}", f"bob@{DOMAIN}", "k2", 600))
    assert w["code"] == "200"
    wait_notifies(node, 2)
    node.rpc("imps_test_watch.answer", 481)
    publish(net, "again")
    wait_notifies(node, 3)
    deadline = time.time() + 3
    while f"bob@{DOMAIN}" in node.rpc("imps_presence.watchers", f"alice@{DOMAIN}") and time.time() < deadline:
        time.sleep(0.05)
    assert f"bob@{DOMAIN}" not in node.rpc("imps_presence.watchers", f"alice@{DOMAIN}")
