"""imps_reginfo's KEMI export: an HSP routed in Lua (app_lua, cfgengine "lua") calls
KSR.imps_reginfo.handle_subscribe() and behaves as the native cfg function does."""

import os
import time

import imps_net
import reginfo_check
import sipp
import sipua

HERE = os.path.dirname(os.path.abspath(__file__))


def wait_log(kam, text, timeout=3.0):
    """The script logs after the reply went out: give the line a moment to reach the log."""
    deadline = time.time() + timeout
    while text not in kam.log_text() and time.time() < deadline:
        time.sleep(0.05)
    return text in kam.log_text()


def test_kemi_handle_subscribe(clean_net):
    net = clean_net
    hsp_addr = (net.plan["IMPS_IP_A"], int(net.plan["IMPS_HSP_A_PORT"]))
    net.hsp.stop()
    lua = imps_net.Kamailio("hsp", "hsp-a", hsp_addr, net.workdir,
                            {"KEMI_LUA": '"' + os.path.join(HERE, "kemi", "hsp.lua") + '"'},
                            cfg=os.path.join(HERE, "kemi", "hsp-lua.cfg"))
    try:
        lua.start()
        contact = "<sip:alice@127.0.0.1:7400>"
        sipp.register("alice", net.domain, contact, 600, "kemi-reg@ue", 1,
                      remote=f"{hsp_addr[0]}:{hsp_addr[1]}", workdir=net.workdir, auth=False)
        ua = net.ua("alice")
        ua.proxy = hsp_addr
        s = sipua.Subscription(ua, "sip:alice@a.example")
        r = s.subscribe(600)
        assert r.status == 200 and r.header("expires") == "600"
        n = ua.wait_request("NOTIFY")
        assert n.header("event") == "reg" and n.header("subscription-state") == "active;expires=600"
        doc = reginfo_check.parse(n.body)
        assert doc["version"] == 0
        c = reginfo_check.contact(doc, "sip:alice@127.0.0.1:7400")
        assert c["state"] == "active" and c["event"] == "registered"
        assert wait_log(lua, "imps_reginfo.handle_subscribe returned 1")

        bad = sipua.Subscription(ua, "sip:alice@a.example", event=None)
        r = bad.subscribe(600)
        assert r.status == 489 and r.header("allow-events") == "reg"
        assert wait_log(lua, "imps_reginfo.handle_subscribe returned -2")
    finally:
        lua.stop()
        net.hsp.start()


def test_kemi_presence(clean_net):
    """imps_presence's KEMI exports: a presence server routed in Lua behind the real HSP and
    edge answers PUBLISH and SUBSCRIBE as the native cfg functions do."""
    from presence_check import parse_pidf
    net = clean_net
    ps_addr = (net.plan["IMPS_IP_A"], int(net.plan["IMPS_PS_A_PORT"]))
    net.ps.stop()
    lua = imps_net.Kamailio("presence", "ps-a", ps_addr, net.workdir,
                            {"KEMI_LUA": '"' + os.path.join(HERE, "kemi", "presence.lua") + '"'},
                            cfg=os.path.join(HERE, "kemi", "presence-lua.cfg"))
    try:
        lua.start()
        pub = sipua.Publisher(net.ua("alice"))
        r = pub.publish(sipua.pidf("alice", net.domain, "open", "kemi"), etag=None)
        assert r.status == 200 and r.header("sip-etag"), r.raw
        assert wait_log(lua, "imps_presence.handle_publish returned 1")
        r = pub.publish(sipua.pidf("alice", net.domain, "open", "kemi"), etag=None, content_type="text/plain")
        assert r.status == 415
        assert wait_log(lua, "imps_presence.handle_publish returned -2")
        bob = net.ua("bob")
        s = sipua.Subscription(bob, "sip:alice@a.example", event="presence", accept="application/pidf+xml")
        assert s.subscribe(600).status == 200
        n = bob.wait_request("NOTIFY")
        assert n.header("subscription-state").startswith("active")
        assert [t["id"] for t in parse_pidf(n.body)["tuples"]] == ["kemi"]
        assert wait_log(lua, "imps_presence.handle_subscribe returned 1")
        # directly, not through the HSP: refused by the script
        ua = net.ua("alice")
        ua.proxy = ps_addr
        direct = sipua.Publisher(ua)
        direct.password = None
        assert direct.publish(sipua.pidf("alice", net.domain), etag=None).status == 403
    finally:
        lua.stop()
        net.ps.start()
