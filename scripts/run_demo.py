#!/usr/bin/python3
"""`make run`: starts the demo network of cfg/network.cfg in the foreground (redis-server and
one Kamailio instance per role, for both operators' networks a.example and b.example and their
operator edge proxies), prints where each listens and how to try it, and stops all of
them cleanly on Ctrl-C (or SIGTERM)."""

import os
import signal
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

import imps_net  # noqa: E402

P = imps_net.PLAN


def main():
    workdir = os.path.join(ROOT, "build", "run")
    os.makedirs(workdir, exist_ok=True)
    redis = imps_net.Redis(workdir)
    radius = imps_net.FreeRadius(workdir)
    hsp = imps_net.hsp_a(workdir)
    edge = imps_net.edge_a(workdir)
    B = imps_net.net_plan("b")
    redis_b = imps_net.Redis(workdir, host=B["redis_host"])
    hsp_b = imps_net.hsp_b(workdir)
    edge_b = imps_net.edge_b(workdir)
    # the operator edges' throwaway CA and certificates (kept while valid)
    oper_pki = os.path.join(P["IMPS_RUN_DIR"], "oper-pki")
    oper_a = imps_net.oper(workdir, "a", pki_dir=oper_pki)
    oper_b = imps_net.oper(workdir, "b", pki_dir=oper_pki)
    # the presence server is the List and Policy Server too (XCAP over HTTP and HTTPS in the
    # same Kamailio: users' pres-rules apply the moment they are stored, xcap-diff); its
    # throwaway CA and server certificate are made once (kept while valid, so a client that
    # trusts the CA goes on trusting it)
    ps = imps_net.ps_xcap_a(workdir, demo=True, tls=True,
                            pki_dir=os.path.join(P["IMPS_RUN_DIR"], "xcap-pki"))
    xcap = ps
    ps_b = imps_net.ps_xcap_b(workdir, demo=True, tls=True,
                              pki_dir=os.path.join(P["IMPS_RUN_DIR"], "xcap-pki-b"))
    for net in ("a", "b"):
        if not os.path.exists(imps_net.presence_db_path(demo=True, net=net)):
            imps_net.make_presence_db(demo=True, net=net)
        if not os.path.exists(imps_net.xcap_db_path(demo=True, net=net)):
            imps_net.make_xcap_db(demo=True, provision=True, net=net)
    # the watcher rules and the users' documents are kept across runs (an admin's changes
    # stay); the first run provisions alice's buddy list
    started = []
    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for what, srv in (("redis-server", redis), ("FreeRADIUS (HAAA)", radius),
                          ("presence and XCAP server", ps), ("HSP", hsp), ("edge proxy", edge),
                          ("redis-server of b.example", redis_b),
                          ("presence and XCAP server of b.example", ps_b),
                          ("HSP of b.example", hsp_b), ("edge proxy of b.example", edge_b),
                          ("operator edge proxy", oper_a),
                          ("operator edge proxy of b.example", oper_b)):
            print(f"starting {what} ...", flush=True)
            srv.start()
            started.append((what, srv))
        ip = P["IMPS_IP_A"]
        xcap_http = f"http://{ip}:{P['IMPS_XCAP_A_PORT']}{P['IMPS_XCAP_ROOT_PATH']}"
        xcap_https = f"https://{ip}:{P['IMPS_XCAP_A_TLS_PORT']}{P['IMPS_XCAP_ROOT_PATH']}"
        alice_rl = f"resource-lists/users/sip:alice@{P['IMPS_DOMAIN_A']}/index"
        print(f"""
IMPS demo network is up (domains {P['IMPS_DOMAIN_A']} and {B['domain']}); Ctrl-C stops everything.

  subscriber edge proxy  udp+tcp {ip}:{P['IMPS_EDGE_A_PORT']}   kamcmd -s unix:{edge.ctl}
  HSP (registrar, reg)   udp+tcp {ip}:{P['IMPS_HSP_A_PORT']}   kamcmd -s unix:{hsp.ctl}
  presence server        udp+tcp {ip}:{P['IMPS_PS_A_PORT']}   kamcmd -s unix:{ps.ctl}
  watcher rules          {imps_net.presence_db_path(demo=True)} (users of both domains see each other)
  XCAP (List and Policy) {xcap_http}   (in the presence server)
                         {xcap_https} (CA: {xcap.cafile})
  XCAP documents         {imps_net.xcap_db_path(demo=True)}
  Redis                  {redis.host}:{redis.port}
  HAAA (FreeRADIUS)      {radius.host}:{radius.auth_port} (auth), {radius.acct_port} (acct)
  operator edge proxy    tls {ip}:{P['IMPS_OPER_A_PORT']} (peers), udp+tcp {ip}:{P['IMPS_OPER_A_INT_PORT']} (HSP)   kamcmd -s unix:{oper_a.ctl}
  subscribers            alice, bob, carol @ {P['IMPS_DOMAIN_A']}, password <name>-secret

  domain {B['domain']}: the same roles and ports on {B['ip']}
  subscriber edge proxy  udp+tcp {B['ip']}:{B['edge_port']}   kamcmd -s unix:{edge_b.ctl}
  HSP                    udp+tcp {B['ip']}:{B['hsp_port']}   kamcmd -s unix:{hsp_b.ctl}
  presence, XCAP, RLS    udp+tcp {B['ip']}:{B['ps_port']}, http://{B['ip']}:{B['xcap_port']}{P['IMPS_XCAP_ROOT_PATH']}   kamcmd -s unix:{ps_b.ctl}
  operator edge proxy    tls {B['ip']}:{B['oper_port']}   kamcmd -s unix:{oper_b.ctl}
  Redis                  {redis_b.host}:{redis_b.port}
  subscribers            dave, erin @ {B['domain']}, password <name>-secret
  operators' test CA     {oper_a.cafile}
  logs                   {workdir}/*.log

Try it:
  sipp -sf {ROOT}/tests/functional/scenarios/register.xml -m 1 -cid_str reg1@demo \\
       -au alice -ap alice-secret -key user alice -key domain {P['IMPS_DOMAIN_A']} \\
       -key contact '<sip:alice@{ip}:7001>' -key expires 600 -key regcseq 1 -key regcseq2 2 \\
       {ip}:{P['IMPS_EDGE_A_PORT']}
  kamcmd -s unix:{hsp.ctl} ul.dump
  kamcmd -s unix:{hsp.ctl} imps_reginfo.show alice@{P['IMPS_DOMAIN_A']}
  kamcmd -s unix:{hsp.ctl} imps_reginfo.list
  kamcmd -s unix:{ps.ctl} imps_presence.list
  kamcmd -s unix:{ps.ctl} imps_presence.show alice@{P['IMPS_DOMAIN_A']}
  curl --digest -u alice:alice-secret --cacert {xcap.cafile} \\
       '{xcap_https}/{alice_rl}'
  kamcmd -s unix:{ps.ctl} imps_xcap.list sip:alice@{P['IMPS_DOMAIN_A']}
""", flush=True)
        while not stop["now"]:
            for what, srv in started:
                if not stop["now"] and srv.proc.poll() is not None:
                    print(f"{what} exited unexpectedly; see {workdir}", file=sys.stderr)
                    stop["now"] = True
            time.sleep(0.5)
    finally:
        print("stopping ...", flush=True)
        for _, srv in reversed(started):
            srv.stop()
        print("stopped.")


if __name__ == "__main__":
    main()
