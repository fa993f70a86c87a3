"""Runs SIPp scenarios (Debian's sip-tester) as the UEs of the tests and benchmarks."""

import os
import subprocess

SIPP = "/usr/bin/sipp"
SCENARIOS = os.path.join(os.path.dirname(__file__), "..", "functional", "scenarios")


def run(scenario, remote, keys=None, local_ip="127.0.0.1", local_port=0, calls=1, rate=None,
        transport="u1", timeout=15, extra=None, workdir=None):
    """Runs a scenario to completion; returns (returncode, output). Return code 0 means every
    call succeeded."""
    args = [SIPP, "-sf", os.path.join(SCENARIOS, scenario), "-i", local_ip, "-m", str(calls),
            "-t", transport, "-timeout", f"{timeout}s", "-timeout_error", "-nostdin",
            "-trace_err", "-trace_screen"]
    if local_port:
        args += ["-p", str(local_port)]
    if rate:
        args += ["-r", str(rate)]
    for k, v in (keys or {}).items():
        args += ["-key", k, str(v)]
    args += list(extra or [])
    args.append(remote)
    out = subprocess.run(args, capture_output=True, text=True, timeout=timeout + 30,
                         cwd=workdir or "/tmp", stdin=subprocess.DEVNULL)
    return out.returncode, out.stdout + out.stderr


def register(user, domain, contact, expires, callid, cseq, remote="127.0.0.1:5060",
             local_port=0, workdir=None, password=None, auth=True):
    """REGISTER with digest authentication: CSeq `cseq` is challenged, `cseq + 1` carries
    the credentials (password: the demo's <user>-secret unless given). auth=False: one
    REGISTER with CSeq `cseq` to a registrar that does not authenticate."""
    rc, out = run("register.xml" if auth else "register_noauth.xml", remote,
                  keys={"user": user, "domain": domain,
                                                "contact": contact, "expires": expires,
                                                "regcseq": cseq, "regcseq2": cseq + 1},
                  local_port=local_port, workdir=workdir,
                  extra=["-cid_str", callid.replace("%", "%%"), "-au", user, "-ap",
                         password or f"{user}-secret"])
    if rc != 0:
        raise AssertionError(f"SIPp REGISTER of {user} ({contact}, expires {expires}) failed "
                             f"(rc {rc}):\n{out[-2000:]}")
    return out
