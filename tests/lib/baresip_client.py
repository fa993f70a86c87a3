"""Drives the Debian baresip client (1.0.x) from the tests, headless.

Each instance gets its own config folder (baresip -f DIR, HOME=DIR), its own SIP port on
127.0.0.1 and its own ctrl_tcp port. Commands go through ctrl_tcp (netstring JSON, one
response per command); what baresip reports (its log, SIP trace, UI output such as received
MESSAGEs) is read from its stdout/stderr, kept in DIR/baresip.log. No audio module is loaded.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from procs import free_port, kill_group

BARESIP = "/usr/bin/baresip"
MODULE_PATH = "/usr/lib/baresip/modules"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# baresip's names of the presence states (contact_presence_str)
STATES = ("unknown", "online", "offline", "busy")


class Baresip:
    """One baresip user agent registered as user@domain through the edge proxy."""

    def __init__(self, user, domain, edge=("127.0.0.1", 5060), transport="udp", workdir=None,
                 sip_port=None, password=None, friends=(), regint=60, pubint=10,
                 sip_trace=True):
        self.user, self.domain = user, domain
        self.aor = f"sip:{user}@{domain}"
        self.edge = edge
        self.transport = transport
        self.password = password if password is not None else f"{user}-secret"
        self.friends = [self._uri(f) for f in friends]
        self.regint, self.pubint = regint, pubint
        self.sip_trace = sip_trace
        self.own_workdir = workdir is None
        base = workdir or tempfile.mkdtemp(prefix="baresip-")
        self.dir = os.path.join(base, f"baresip-{user}")
        self.sip_port = sip_port or free_port(2)  # TLS takes the next port
        self.ctrl_port = free_port(1)
        self.log_path = os.path.join(self.dir, "baresip.log")
        self.proc = None
        self._ctrl = None
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._lines = []       # baresip's output, ANSI colours removed
        self._events = []      # ctrl_tcp events (dicts)
        self._responses = {}   # token -> ctrl_tcp response (dict)
        self._token = 0

    @staticmethod
    def _uri(aor):
        return aor if aor.startswith("sip:") else f"sip:{aor}"

    # --- configuration ---------------------------------------------------------------

    def write_config(self):
        """Writes config, accounts and contacts into self.dir."""
        os.makedirs(self.dir, exist_ok=True)
        t = self.transport
        host, port = self.edge
        config = f"""\
poll_method\tepoll
net_interface\t127.0.0.1
sip_listen\t127.0.0.1:{self.sip_port}
call_local_timeout\t120
call_max_calls\t1
audio_player\t
audio_source\t
audio_alert\t
module_path\t{MODULE_PATH}
module\tstdio.so
module\tg711.so
module_tmp\tuuid.so
module_tmp\taccount.so
module_app\tcontact.so
module_app\tmenu.so
module_app\tpresence.so
module_app\tctrl_tcp.so
ctrl_tcp_listen\t127.0.0.1:{self.ctrl_port}
menu_bell\tno
"""
        # baresip puts the outbound proxy in a Route header and appends ;lr itself
        account = (f'"{self.user}" <sip:{self.user}@{self.domain};transport={t}>'
                   f";auth_user={self.user};auth_pass={self.password}"
                   f';outbound="sip:{host}:{port};transport={t}"'
                   f";regint={self.regint};pubint={self.pubint};answermode=manual;mwi=no\n")
        contacts = "".join(f"<{f}>;presence=p2p\n" for f in self.friends)
        for name, text in (("config", config), ("accounts", account), ("contacts", contacts)):
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(text)

    # --- process -------------------------------------------------------------------

    def start(self, timeout=10.0):
        """Starts baresip and connects to its ctrl_tcp port."""
        self.write_config()
        args = [BARESIP, "-f", self.dir]
        if self.sip_trace:
            args.append("-s")
        env = {"HOME": self.dir, "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "LANG": "C"}
        self._logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, cwd=self.dir, env=env,
                                     start_new_session=True)
        threading.Thread(target=self._read_output, daemon=True).start()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"baresip {self.user} exited:\n{self.log_tail()}")
            try:
                self._ctrl = socket.create_connection(("127.0.0.1", self.ctrl_port), 0.5)
                break
            except OSError:
                time.sleep(0.1)
        else:
            self.kill()
            raise TimeoutError(f"baresip {self.user}: no ctrl_tcp:\n{self.log_tail()}")
        self._ctrl.settimeout(None)
        threading.Thread(target=self._read_ctrl, daemon=True).start()
        return self

    def stop(self, timeout=10.0):
        """Clean quit: baresip unpublishes, unsubscribes and unregisters, then exits."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.command("quit", timeout=2)
            except Exception:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def kill(self):
        """Kills baresip at once (no unregistration)."""
        kill_group(self.proc)
        if self.proc is not None:
            if self.proc.stdin:
                try:
                    self.proc.stdin.close()
                except OSError:
                    pass
        if self._ctrl is not None:
            self._ctrl.close()
            self._ctrl = None

    def close(self):
        """kill() and remove the folder if this object made it."""
        self.kill()
        if self.own_workdir:
            shutil.rmtree(os.path.dirname(self.dir), ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.kill()

    # --- output --------------------------------------------------------------------

    def _read_output(self):
        buf = b""
        out = self.proc.stdout
        while True:
            chunk = os.read(out.fileno(), 65536)
            if not chunk:
                break
            self._logf.write(chunk)
            self._logf.flush()
            buf += chunk
            *lines, buf = re.split(rb"\r\n|\n|\r", buf)
            with self._cond:
                self._lines += [ANSI.sub("", ln.decode(errors="replace")) for ln in lines]
                self._cond.notify_all()
        with self._cond:
            if buf:
                self._lines.append(ANSI.sub("", buf.decode(errors="replace")))
            self._cond.notify_all()
        self._logf.close()

    def _read_ctrl(self):
        buf = b""
        sock = self._ctrl
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            while True:  # netstrings: <len>:<json>,
                m = re.match(rb"(\d+):", buf)
                if not m or len(buf) < m.end() + int(m.group(1)) + 1:
                    break
                n = int(m.group(1))
                doc = buf[m.end():m.end() + n]
                buf = buf[m.end() + n + 1:]
                try:
                    obj = json.loads(doc)
                except ValueError:
                    continue
                with self._cond:
                    if obj.get("response"):
                        self._responses[obj.get("token")] = obj
                    else:
                        self._events.append(obj)
                    self._cond.notify_all()

    def lines(self):
        with self._cond:
            return list(self._lines)

    def events(self):
        with self._cond:
            return list(self._events)

    def log_tail(self, n=60):
        return "\n".join(self.lines()[-n:])

    def wait_for(self, pred, timeout, what="condition"):
        """Waits until pred() is true (checked on each output line/event and every 0.2 s)."""
        deadline = time.time() + timeout
        with self._cond:
            while True:
                r = pred()
                if r:
                    return r
                left = deadline - time.time()
                if left <= 0:
                    raise TimeoutError(f"baresip {self.user}: no {what} after {timeout}s;"
                                       f" log tail:\n{self.log_tail()}")
                self._cond.wait(min(left, 0.2))

    def wait_line(self, regex, timeout=10.0, start=0):
        """The first output line from index start matching regex (re.search)."""
        rx = re.compile(regex)

        def find():
            for ln in self._lines[start:]:
                if rx.search(ln):
                    return ln
            return None
        return self.wait_for(find, timeout, f"line /{regex}/")

    # --- commands ------------------------------------------------------------------

    def command(self, cmd, params=None, timeout=5.0):
        """Runs a long command over ctrl_tcp; returns its output text (raises if not ok)."""
        with self._lock:
            self._token += 1
            token = f"t{self._token}"
            req = {"command": cmd, "token": token}
            if params is not None:
                req["params"] = params
            doc = json.dumps(req).encode()
            self._ctrl.sendall(b"%d:%s," % (len(doc), doc))
        resp = self.wait_for(lambda: self._responses.pop(token, None), timeout,
                             f"response to {cmd}")
        data = ANSI.sub("", resp.get("data") or "")
        if not resp.get("ok"):
            raise RuntimeError(f"baresip {self.user}: {cmd} {params or ''}: {data}")
        return data

    def reg_status(self):
        """'OK', 'ERR' or 'zzz' (not yet) from the /reginfo listing of this UA."""
        for ln in self.command("reginfo").splitlines():
            if self.aor in ln:
                m = re.search(r"\b(OK|ERR|zzz)\b", ln)
                return m.group(1) if m else None
        return None

    def wait_registered(self, timeout=10.0):
        """Polls /reginfo until the registration is OK; raises when it failed."""
        deadline = time.time() + timeout
        st = None
        while time.time() < deadline:
            st = self.reg_status()
            if st == "OK":
                return st
            if st == "ERR":
                raise RuntimeError(f"baresip {self.user}: register failed:\n{self.log_tail()}")
            time.sleep(0.2)
        raise TimeoutError(f"baresip {self.user}: registration {st} after {timeout}s:\n"
                           f"{self.log_tail()}")

    def contacts(self):
        """{contact uri: presence state} as the /contacts listing shows them."""
        out = self.command("contacts")
        res = {}
        for ln in out.splitlines():
            m = re.match(r"^[> ]\s*(\w+)\s+.*<(sip:[^>;]+)", ln)
            if m and m.group(1).lower() in STATES:
                res[m.group(2)] = m.group(1).lower()
        return res

    def presence_of(self, aor):
        """What baresip shows for a contact: unknown, online, offline or busy."""
        return self.contacts().get(self._uri(aor))

    def wait_presence(self, aor, state, timeout=10.0):
        """Polls the /contacts listing until aor shows state."""
        deadline = time.time() + timeout
        seen = None
        while time.time() < deadline:
            seen = self.presence_of(aor)
            if seen == state:
                return seen
            time.sleep(0.3)
        raise TimeoutError(f"baresip {self.user}: {aor} is {seen}, not {state} after "
                           f"{timeout}s; log tail:\n{self.log_tail()}")

    def set_presence(self, state):
        """Publishes online (basic open) or offline (basic closed): all baresip 1.0 can do."""
        cmd = {"online": "presence_online", "open": "presence_online",
               "offline": "presence_offline", "closed": "presence_offline"}.get(state)
        if cmd is None:
            raise ValueError(f"baresip publishes only online or offline, not {state}")
        return self.command(cmd)

    def _select_contact(self, uri):
        """Makes uri the current contact (the one /message sends to)."""
        if uri not in self.friends:
            raise ValueError(f"{uri} is not a contact of {self.user}")
        out = ""
        for _ in self.friends:  # to the head of the list
            out = self.command("contact_prev")
        for _ in self.friends:
            if f"<{uri}>" in out:
                return
            out = self.command("contact_next")
        raise RuntimeError(f"could not select contact {uri}: {out}")

    def send_message(self, aor, text):
        """Sends a MESSAGE (text/plain) to a contact. Failures appear in the log only."""
        self._select_contact(self._uri(aor))
        self._msg_mark = len(self.lines())
        return self.command("message", text)

    def wait_message(self, from_aor, text, timeout=10.0):
        """Waits until baresip prints a received MESSAGE: '<from uri>: "<text>"'."""
        rx = r"^\s*<?" + re.escape(self._uri(from_aor)) + r'>?: "' + re.escape(text) + '"'
        return self.wait_line(rx, timeout)

    def message_failure(self, timeout=0.0):
        """An error status printed after send_message (e.g. '407 Proxy ...'), or None."""
        start = getattr(self, "_msg_mark", 0)
        try:
            return self.wait_line(r"^\s*[3-6]\d\d [A-Z]", timeout, start).strip()
        except TimeoutError:
            return None
