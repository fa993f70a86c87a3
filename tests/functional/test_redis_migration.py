"""scripts/imps-redis-migrate: the data of a deployment running the previous key layout (one
key per subscription, global sets) moves to the layout of the shared subscription layer (one
hash tag per resource, bucketed indexes) and the subscriptions go on: same dialog, next CSeq
and version, publications still matched by their ETag."""

import hashlib
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

import presence_check  # noqa: E402
import reginfo_check  # noqa: E402
from sipua import Phone, Publisher, pidf  # noqa: E402

MIGRATE = os.path.join(HERE, "..", "..", "scripts", "imps-redis-migrate")
DOMAIN = "a.example"


def sid_of(callid, rtag, ltag):
    return hashlib.sha256(f"{callid}\n{rtag}\n{ltag}".encode()).hexdigest()[:24]


def test_old_layout_is_migrated_and_subscriptions_go_on(clean_net):
    net = clean_net
    r = net.redis
    now = int(time.time())
    bob = net.ua("bob")
    alice_w = net.ua("alice")
    # --- the previous release's records -----------------------------------------------------
    # a presence subscription of bob to alice, NOTIFY CSeq 7 sent, and alice's publication
    p_sid = sid_of("old-call-1", "rt1", "lt1")
    body = pidf("alice", DOMAIN, "open", "t1", note="before")
    etag = "0123456789abcdef01234567"
    r.cli("HSET", f"imps:presence:sub:{p_sid}", "sid", p_sid, "pres", f"alice@{DOMAIN}",
          "event", "presence", "watcher", f"bob@{DOMAIN}", "wuri", f"sip:bob@{DOMAIN}", "wname", "",
          "status", "active", "callid", "old-call-1", "rtag", "rt1", "ltag", "lt1",
          "ruri", f"sip:bob@{DOMAIN}", "luri", f"sip:alice@{DOMAIN}", "target", bob.contact,
          "routes", "", "socket", "udp:127.0.0.1:5080", "lcontact", "sip:127.0.0.1:5080",
          "eid", "", "exp", str(now + 600), "created", str(now - 60), "rcseq", "1",
          "last", "0", "version", "0", "cseq", "7")
    r.cli("SADD", f"imps:presence:subs:alice@{DOMAIN}", p_sid)
    r.cli("ZADD", "imps:presence:sexp", str(now + 600), p_sid)
    r.cli("SADD", "imps:presence:pres", f"alice@{DOMAIN}")
    r.cli("HSET", f"imps:presence:pub:alice@{DOMAIN}", etag,
          f"{now + 600}\t{now - 30}\tudp:127.0.0.1:5070\t{body}")
    r.cli("ZADD", "imps:presence:pexp", str(now + 600), f"alice@{DOMAIN}\n{etag}")
    r.cli("HSET", f"imps:presence:meta:alice@{DOMAIN}", "gen", "3")
    # a reg subscription of alice to her own AoR, version 4 / CSeq 5 sent
    r_sid = sid_of("old-call-2", "rt2", "lt2")
    r.cli("HSET", f"imps:reginfo:sub:{r_sid}", "sid", r_sid, "aor", f"alice@{DOMAIN}",
          "aor_uri", f"sip:alice@{DOMAIN}", "watcher", f"alice@{DOMAIN}", "callid", "old-call-2",
          "remote_tag", "rt2", "local_tag", "lt2", "remote_uri", f"sip:alice@{DOMAIN}",
          "local_uri", f"sip:alice@{DOMAIN}", "remote_target", alice_w.contact, "route_set", "",
          "socket", "udp:127.0.0.1:5070", "local_contact", "sip:127.0.0.1:5070", "event_id", "",
          "expires_at", str(now + 600), "rcseq", "1", "version", "4", "cseq", "5")
    r.cli("SADD", f"imps:reginfo:aor:alice@{DOMAIN}", r_sid)
    r.cli("ZADD", "imps:reginfo:exp", str(now + 600), r_sid)

    dry = subprocess.run([MIGRATE, "--port", str(r.port), "--dry-run"], capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert "would move 1 subscriptions" in dry.stdout
    assert r.cli("EXISTS", f"imps:presence:sub:{p_sid}").strip() == "1"  # dry run: nothing moved
    out = subprocess.run([MIGRATE, "--port", str(r.port)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "imps_reginfo: moved 1 subscriptions" in out.stdout
    assert "imps_presence: moved 1 subscriptions, publications of 1 presentities" in out.stdout
    # nothing of the old layout is left
    for k in (f"imps:presence:sub:{p_sid}", "imps:presence:pexp", "imps:presence:sexp",
              f"imps:reginfo:sub:{r_sid}", "imps:reginfo:exp", f"imps:presence:pub:alice@{DOMAIN}"):
        assert r.cli("EXISTS", k).strip() == "0", k

    # --- the modules see it ------------------------------------------------------------------
    w = net.ps.rpc("imps_presence.watchers", f"alice@{DOMAIN}")
    assert f"bob@{DOMAIN}" in w and "cseq: 7" in w, w
    shown = net.ps.rpc("imps_presence.show", f"alice@{DOMAIN}")
    assert etag in shown and "before" in shown
    assert "alice@a.example" in net.hsp.rpc("imps_reginfo.list", "alice@a.example")
    # alice's device modifies its publication with the ETag it learnt before the migration
    pub = Publisher(net.ua("alice"))
    pub.etag = etag
    assert pub.publish(pidf("alice", DOMAIN, "closed", "t1", note="after")).status == 200
    n = bob.wait_request()
    assert n.header("call-id") == "old-call-1" and n.header("cseq") == "8 NOTIFY"
    doc = presence_check.parse_pidf(n.body)
    assert doc["tuples"][0]["basic"] == "closed" and list(doc["tuples"][0]["notes"].values()) == ["after"]
    # a REGISTER: the reg subscription goes on with version 5, CSeq 6
    phone = Phone("alice", DOMAIN, net.edge_addr)
    try:
        assert phone.register(600).status == 200
        n = alice_w.wait_request()
        assert n.header("call-id") == "old-call-2" and n.header("cseq") == "6 NOTIFY"
        d = reginfo_check.parse(n.body)
        assert d["version"] == 5
        assert reginfo_check.contact(d, phone.contact)["state"] == "active"
    finally:
        phone.close()
