"""Drives the Debian linphone command-line client (linphonec of linphone-cli 5.1) from the tests.

Each Linphone instance runs its own headless linphonec (no sound card, no display) with its own
HOME, rc file and SIP ports, fed commands on stdin; everything linphonec prints is collected by a
reader thread and the wait_* methods search it. liblinphone's own log (SIP messages included,
-d 6) goes to <workdir>/linphone.log (linphone-1.log... after restarts: liblinphone
truncates its log file).

What linphonec 5.1.65 prints (seen on stdout, after the "linphonec> " prompt):
    Friend "bob" <sip:bob@a.example> is Online          a presence NOTIFY of a friend arrived
    Friend "bob" <sip:bob@a.example> is Offline         (also the first line, before any NOTIFY)
    Message received from sip:alice@a.example: hello bob
    status register -> registered, identity="alice" <sip:alice@a.example> duration=600
                       registered=-1 (not registered yet / failed), registered=0 (unregistered)
    friend list     -> ****** Friend 0 ******* / name: bob / address: sip:bob@a.example
The status words are those of linphone_online_status_to_string(): Online, Offline, Busy,
Be right back, Away, On the phone, Out to lunch, Do not disturb, Moved, Using another
messaging service, Pending, Vacation.

Headless: linphonec needs nothing for that: with no sound card it logs "Could not find a
suitable soundcard" (into the -l log) and goes on; video is off unless -V/-C/-D. The rc sets
[sip] auto_net_state_mon=0: without it liblinphone, finding no default route (a network
namespace with only lo), declares the network DOWN 5 s after start and drops its registration,
publication and subscriptions.
"""

import codecs
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

from procs import free_port, kill_group

LINPHONEC = "/usr/bin/linphonec"


def _aor(uri):
    """sip:bob@a.example from '"bob" <sip:bob@a.example>', '<sip:bob@a.example;x=y>', 'bob@a.example'."""
    m = re.search(r"<([^>]*)>", uri)
    u = m.group(1) if m else uri.strip().strip('"')
    u = u.split(";", 1)[0]
    if not u.startswith("sip:"):
        u = "sip:" + u
    return u.lower()


class Linphone:
    def __init__(self, user, domain="a.example", edge=("127.0.0.1", 5060), transport="udp",
                 workdir=None, sip_port=None, password=None, friends=(), expires=600,
                 debug=6, gruu=True, rls_uri=None):
        self.user = user
        self.rls_uri = rls_uri  # the friend list's presence through a resource list server (RFC 5367)
        self.domain = domain
        self.aor = f"sip:{user}@{domain}"
        self.edge = edge
        self.transport = transport
        self.password = password if password is not None else f"{user}-secret"
        self.friends = [_aor(f if "@" in f or f.startswith("sip:") else f"{f}@{domain}")
                        for f in friends]
        self.expires = expires
        self.debug = debug
        self.gruu = gruu
        self.publish = True
        self.own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix=f"linphone-{user}-")
        self.home = os.path.join(self.workdir, "home")
        self.rcfile = os.path.join(self.workdir, "linphonerc")
        self.logfile = os.path.join(self.workdir, "linphone.log")  # linphone-<n>.log on restarts
        self.runs = 0
        self.outfile = os.path.join(self.workdir, "stdout.txt")
        self.sip_port = sip_port or free_port()
        self.proc = None
        self._out = []           # everything linphonec printed, in chunks
        self._cv = threading.Condition()
        self._reader = None

    # ---------- configuration ----------

    def write_rc(self):
        os.makedirs(os.path.join(self.home, ".local", "share", "linphone"), exist_ok=True)
        os.makedirs(os.path.join(self.home, ".config", "linphone"), exist_ok=True)
        host, port = self.edge
        t = self.transport.lower()
        udp = self.sip_port if t == "udp" else 0  # 0: transport disabled, -1 would be random
        tcp = self.sip_port if t == "tcp" else 0
        proxy = f"<sip:{host}:{port};transport={t}>"
        supported = "replaces, outbound, gruu" if self.gruu else "replaces, outbound"
        db = os.path.join(self.home, ".local", "share", "linphone")
        lines = f"""\
[sip]
sip_port={udp}
sip_tcp_port={tcp}
sip_tls_port=0
guess_hostname=1
register_only_when_network_is_up=0
register_only_when_upnp_is_ok=0
auto_net_state_mon=0
supported={supported}
ipv6=0
default_proxy=0
media_encryption=none
verify_server_certs=0
verify_server_cn=0
{"rls_uri=" + self.rls_uri if self.rls_uri else ""}

[net]
firewall_policy=0
mtu=1300

[rtp]
audio_rtp_port={self.sip_port + 10000}
video_rtp_port={self.sip_port + 12000}
text_rtp_port={self.sip_port + 14000}

[sound]
playback_dev_id=
ringer_dev_id=
capture_dev_id=
media_dev_id=
echocancellation=0

[video]
display=0
capture=0
show_local=0
automatically_initiate=0
automatically_accept=0

[storage]
uri={os.path.join(db, "linphone.db")}

[misc]
uuid=
friends_db_uri={os.path.join(db, "friends.db")}
store_friends=0
enable_basic_to_client_group_chat_room_migration=0
prefer_basic_chat_room=1

[proxy_0]
reg_proxy={proxy}
reg_route={proxy}
reg_identity="{self.user}" <{self.aor}>
realm={self.domain}
reg_expires={self.expires}
reg_sendregister=1
publish={1 if self.publish else 0}
publish_expires={self.expires}
dial_escape_plus=0
quality_reporting_enabled=0
avpf=0

[auth_info_0]
username={self.user}
userid={self.user}
passwd={self.password}
realm={self.domain}
domain={self.domain}
"""
        for i, f in enumerate(self.friends):
            name = f[4:].split("@", 1)[0]
            lines += f"""
[friend_{i}]
url="{name}" <{f}>
pol=accept
subscribe=1
"""
        with open(self.rcfile, "w") as fh:
            fh.write(lines)

    # ---------- process ----------

    def start(self):
        self.write_rc()
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        env.update(HOME=self.home, XDG_CONFIG_HOME=os.path.join(self.home, ".config"),
                   XDG_DATA_HOME=os.path.join(self.home, ".local", "share"),
                   XDG_RUNTIME_DIR=self.home, LANG="C", LC_ALL="C")
        env.pop("PULSE_SERVER", None)
        if self.runs:
            self.logfile = os.path.join(self.workdir, f"linphone-{self.runs}.log")
        self.runs += 1
        args = [LINPHONEC, "-c", self.rcfile, "-d", str(self.debug), "-l", self.logfile]
        start = len(self.output())
        self._outf = open(self.outfile, "a")
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=env, cwd=self.home,
                                     start_new_session=True, bufsize=0)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_output(r"linphonec> ", 15, start)
        return self

    def _read(self):
        fd = self.proc.stdout.fileno()
        dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            text = dec.decode(data, final=not data)
            with self._cv:
                if text:
                    self._out.append(text)
                    if self._outf:
                        self._outf.write(text)
                        self._outf.flush()
                self._cv.notify_all()
            if not data:
                break

    def cmd(self, line):
        """Sends one command line to linphonec's stdin."""
        if not self.alive():
            raise RuntimeError(f"linphonec {self.user} is not running:\n{self.tail()}")
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10):
        """Clean quit. linphonec's own quit unsubscribes (SUBSCRIBE Expires: 0) and unpublishes
        (PUBLISH Expires: 0) but leaves the registration, so unregister first (REGISTER
        Expires: 0) and wait for it, then quit."""
        if self.proc is None:
            return
        if self.alive():
            try:
                self.unregister(timeout=min(timeout, 5))
            except (OSError, RuntimeError, TimeoutError):
                pass
            try:
                self.cmd("quit")
                self.proc.stdin.close()
            except (OSError, RuntimeError):
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._finish()

    def kill(self):
        """Hard kill: no unREGISTER, the network sees it vanish."""
        kill_group(self.proc)
        self._finish()

    def _finish(self):
        if self._reader is not None:
            self._reader.join(3)
            self._reader = None
        if getattr(self, "_outf", None):
            with self._cv:
                self._outf.close()
                self._outf = None

    def cleanup(self):
        self.kill()
        if self.own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.kill()

    # ---------- output ----------

    def output(self):
        with self._cv:
            return "".join(self._out)

    def tail(self, n=3000):
        return self.output()[-n:]

    def log_text(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_output(self, pattern, timeout=10.0, start=0):
        """Waits for the regex in what linphonec printed (from character offset start)."""
        rx = re.compile(pattern, re.M)
        deadline = time.time() + timeout
        with self._cv:
            while True:
                m = rx.search("".join(self._out), start)
                if m:
                    return m
                left = deadline - time.time()
                dead = self.proc is None or (self.proc.poll() is not None and (
                    self._reader is None or not self._reader.is_alive()))
                if left <= 0 or dead:
                    raise TimeoutError(f"linphonec {self.user}: no /{pattern}/ after "
                                       f"{timeout}s; output ends with:\n{self.tail()}")
                self._cv.wait(min(left, 0.5))

    def query(self, line, pattern, timeout=5.0):
        """Sends a command and returns the first match of pattern in the output it causes."""
        start = len(self.output())
        self.cmd(line)
        return self.wait_output(pattern, timeout, start)

    # ---------- registration ----------

    def registration(self):
        """'registered' or 'unregistered' (or other text) as `status register` reports it."""
        m = self.query("status register", r"(registered, identity=\S.*|registered=-?\d+|"
                       r"unregistered)", 5)
        return "registered" if m.group(1).startswith("registered, ") else m.group(1)

    def wait_registered(self, timeout=15.0):
        deadline = time.time() + timeout
        while True:
            try:
                if self.registration() == "registered":
                    return True
            except TimeoutError:
                pass
            if time.time() > deadline:
                raise TimeoutError(f"linphonec {self.user} not registered after {timeout}s:\n"
                                   f"{self.tail()}")
            time.sleep(0.5)

    def unregister(self, timeout=5.0):
        """`unregister`: REGISTER Expires: 0 (the publication stays: see set_presence)."""
        self.cmd("unregister")
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.registration() != "registered":
                return True
            time.sleep(0.2)
        raise TimeoutError(f"linphonec {self.user} still registered after {timeout}s")

    def register(self):
        """`register` without arguments: registers the default proxy again."""
        self.cmd("register")

    # ---------- presence ----------

    _friend_rx = re.compile(r"Friend (.*?) is ([^\n\r]*?)\s*(?:\r?\n|$|linphonec> )")

    def presence_events(self):
        """[(aor, status)] in the order linphonec printed 'Friend <addr> is <status>'."""
        out = []
        for m in self._friend_rx.finditer(self.output()):
            if "requested subscription" in m.group(0):
                continue
            out.append((_aor(m.group(1)), m.group(2).strip()))
        return out

    def presence_of(self, aor):
        """Last status linphonec printed for that friend ('Online', 'Offline', ...) or None."""
        aor = _aor(aor)
        last = None
        for a, s in self.presence_events():
            if a == aor:
                last = s
        return last

    def wait_presence(self, aor, state, timeout=15.0):
        """Waits until linphonec's last reported status of aor is state (case-insensitive)."""
        deadline = time.time() + timeout
        with self._cv:
            while True:
                cur = self.presence_of(aor)
                if cur is not None and cur.lower() == state.lower():
                    return cur
                left = deadline - time.time()
                if left <= 0:
                    raise TimeoutError(f"linphonec {self.user}: {aor} is {cur!r}, not {state!r} "
                                       f"after {timeout}s; output ends with:\n{self.tail()}")
                self._cv.wait(min(left, 0.5))

    def add_friend(self, aor, name=None):
        aor = _aor(aor)
        name = name or aor[4:].split("@", 1)[0]
        self.friends.append(aor)
        self.cmd(f'friend add "{name}" {aor}')

    def friend_list(self):
        return self.query("friend list", r"(?s)(\*{6} Friend.*?)(?=linphonec> |\Z)|No friends",
                          5).group(0)

    def set_presence(self, state, timeout=15.0):
        """linphonec 5.1 has no command for its own presence (the online/away/busy/... commands
        of linphonec 3.x are gone, `unregister` keeps the publication, `param` changes apply
        only to a new core). What it has is the account's publish flag, read at start: so
        'offline' = clean quit (PUBLISH Expires: 0) and restart with publish=0 (registered and
        watching, publishing nothing); 'online' = restart with publish=1 (PUBLISH of
        <basic>open</basic>). The output of earlier runs is kept."""
        s = state.lower()
        if s not in ("online", "offline"):
            raise NotImplementedError(f"linphonec 5.1 cannot publish {state!r}")
        want = s == "online"
        if want == self.publish and self.alive():
            return
        self.stop()
        self.publish = want
        self.start()
        self.wait_registered(timeout)

    # ---------- messages ----------

    def send_message(self, aor, text):
        """`chat <uri> <text>`: the rest of the line is the body, verbatim (quotes included, so
        none are added; the help's 'chat <sip-url> "message"' would send the quotes)."""
        if "\n" in text:
            raise ValueError("one line only")
        self.cmd(f"chat {_aor(aor)} {text}")

    def messages(self):
        """[(from_aor, text)] of 'Message received from <from>: <text>' lines."""
        return [(_aor(m.group(1)), m.group(2))
                for m in re.finditer(r"Message received from (.*?): ([^\n\r]*)", self.output())]

    def wait_message(self, from_aor, text, timeout=10.0):
        from_aor = _aor(from_aor)
        deadline = time.time() + timeout
        with self._cv:
            while True:
                for a, t in self.messages():
                    if a == from_aor and text in t:
                        return t
                left = deadline - time.time()
                if left <= 0:
                    raise TimeoutError(f"linphonec {self.user}: no message {text!r} from "
                                       f"{from_aor} after {timeout}s; got {self.messages()}; "
                                       f"output ends with:\n{self.tail()}")
                self._cv.wait(min(left, 0.5))
