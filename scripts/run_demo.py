#!/usr/bin/python3
"""`make run`: starts the demo network of cfg/network.cfg in the foreground (redis-server and
one Kamailio instance per role), prints where each listens and how to try it, and stops all of
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
    # the presence server is the List and Policy Server too (XCAP over HTTP and HTTPS in the
    # same Kamailio: users' pres-rules apply the moment they are stored, xcap-diff); its
    # throwaway CA and server certificate are made once (kept while valid, so a client that
    # trusts the CA goes on trusting it)
    ps = imps_net.ps_xcap_a(workdir, demo=True, tls=True,
                            pki_dir=os.path.join(P["IMPS_RUN_DIR"], "xcap-pki"))
    xcap = ps
    if not os.path.exists(imps_net.presence_db_path(demo=True)):
        # the watcher rules are kept across runs: an admin's changes stay
        imps_net.make_presence_db(demo=True)
    if not os.path.exists(imps_net.xcap_db_path(demo=True)):
        # the users' documents are kept across runs; the first run provisions alice's buddy list
        imps_net.make_xcap_db(demo=True, provision=True)
    started = []
    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for what, srv in (("redis-server", redis), ("FreeRADIUS (HAAA)", radius),
                          ("presence and XCAP server", ps), ("HSP", hsp), ("edge proxy", edge)):
            print(f"starting {what} ...", flush=True)
            srv.start()
            started.append((what, srv))
        ip = P["IMPS_IP_A"]
        xcap_http = f"http://{ip}:{P['IMPS_XCAP_A_PORT']}{P['IMPS_XCAP_ROOT_PATH']}"
        xcap_https = f"https://{ip}:{P['IMPS_XCAP_A_TLS_PORT']}{P['IMPS_XCAP_ROOT_PATH']}"
        alice_rl = f"resource-lists/users/sip:alice@{P['IMPS_DOMAIN_A']}/index"
        print(f"""
IMPS demo network is up (domain {P['IMPS_DOMAIN_A']}); Ctrl-C stops everything.

  subscriber edge proxy  udp+tcp {ip}:{P['IMPS_EDGE_A_PORT']}   kamcmd -s unix:{edge.ctl}
  HSP (registrar, reg)   udp+tcp {ip}:{P['IMPS_HSP_A_PORT']}   kamcmd -s unix:{hsp.ctl}
  presence server        udp+tcp {ip}:{P['IMPS_PS_A_PORT']}   kamcmd -s unix:{ps.ctl}
  watcher rules          {imps_net.presence_db_path(demo=True)} (users of {P['IMPS_DOMAIN_A']} see each other)
  XCAP (List and Policy) {xcap_http}   (in the presence server)
                         {xcap_https} (CA: {xcap.cafile})
  XCAP documents         {imps_net.xcap_db_path(demo=True)}
  Redis                  {redis.host}:{redis.port}
  HAAA (FreeRADIUS)      {radius.host}:{radius.auth_port} (auth), {radius.acct_port} (acct)
  subscribers            alice, bob, carol @ {P['IMPS_DOMAIN_A']}, password <name>-secret
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
