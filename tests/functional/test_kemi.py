"""imps_reginfo's KEMI export: an HSP routed in Lua (app_lua, cfgengine "lua") calls
KSR.imps_reginfo.handle_subscribe() and behaves as the native cfg function does."""

import os

import imps_net
import reginfo_check
import sipp
import sipua

HERE = os.path.dirname(os.path.abspath(__file__))


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
                      remote=f"{hsp_addr[0]}:{hsp_addr[1]}", workdir=net.workdir)
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
        assert "imps_reginfo.handle_subscribe returned 1" in lua.log_text()

        bad = sipua.Subscription(ua, "sip:alice@a.example", event=None)
        r = bad.subscribe(600)
        assert r.status == 489 and r.header("allow-events") == "reg"
        assert "imps_reginfo.handle_subscribe returned -2" in lua.log_text()
    finally:
        lua.stop()
        net.hsp.start()
