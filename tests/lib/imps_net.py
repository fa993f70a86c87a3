"""Starts and stops the real servers of the IMPS network on loopback: redis-server and Kamailio
instances with the project's cfg files. Shared by the functional tests, the benchmark scripts
and `make run`. The address plan comes from cfg/network.cfg (the one place it is set)."""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CFG_DIR = os.path.join(ROOT, "cfg")
# IMPS_MODULES_DIR: another build's modules (to run a test against an older tree)
BUILD_MODULES = os.environ.get("IMPS_MODULES_DIR") or os.path.join(ROOT, "build", "modules")
STOCK_MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules"
KAMAILIO = "/usr/sbin/kamailio"
KAMCMD = "/usr/sbin/kamcmd"
REDIS_SERVER = "/usr/bin/redis-server"


def network_plan(path=os.path.join(CFG_DIR, "network.cfg")):
    """The #!substdef values of cfg/network.cfg as a dict (IMPS_DOMAIN_A -> a.example, ...)."""
    plan = {}
    with open(path) as f:
        for line in f:
            m = re.match(r'^#!substdef\s+"!(\w+)!([^!]*)!g"', line.strip())
            if m:
                plan[m.group(1)] = m.group(2)
    return plan


PLAN = network_plan()


def net_plan(net="a"):
    """One network's part of the plan (net "a": a.example, "b": b.example), by role."""
    t = net.upper()
    g = lambda k: PLAN[k.replace("#", t)]  # noqa: E731
    return {
        "tag": net, "domain": g("IMPS_DOMAIN_#"), "ip": g("IMPS_IP_#"),
        "edge_port": int(g("IMPS_EDGE_#_PORT")), "hsp_port": int(g("IMPS_HSP_#_PORT")),
        "ps_port": int(g("IMPS_PS_#_PORT")), "oper_port": int(g("IMPS_OPER_#_PORT")),
        "oper_int_port": int(g("IMPS_OPER_#_INT_PORT")), "oper_mask_ip": g("IMPS_OPER_#_MASK_IP"),
        "xcap_port": int(g("IMPS_XCAP_#_PORT")), "xcap_tls_port": int(g("IMPS_XCAP_#_TLS_PORT")),
        "redis_host": PLAN["IMPS_REDIS_HOST"] if net == "a" else g("IMPS_REDIS_#_HOST"),
        "ps_db": g("IMPS_PS_#_DB_FILE"), "ps_test_db": g("IMPS_PS_#_TEST_DB_FILE"),
        "xcap_db": g("IMPS_XCAP_#_DB_FILE"), "xcap_test_db": g("IMPS_XCAP_#_TEST_DB_FILE"),
    }


def net_defines(net, defines=None):
    """kamailio -A defines of a role script run for network net (WITH_NET_B for b.example)."""
    d = dict(defines or {})
    if net == "b":
        d.setdefault("WITH_NET_B", None)
    return d


def wait_port(host, port, proto="udp", timeout=10.0):
    """Waits until something listens on host:port (tcp: accepts; udp: bound)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proto == "tcp":
            try:
                with socket.create_connection((host, port), timeout=0.2):
                    return True
            except OSError:
                pass
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind((host, port))
            except OSError:
                return True  # in use: bound by the server
            finally:
                s.close()
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {proto}:{host}:{port} after {timeout}s")


class Redis:
    def __init__(self, workdir, port=None, host=None):
        self.host = host or PLAN["IMPS_REDIS_HOST"]
        self.port = int(port or PLAN["IMPS_REDIS_PORT"])
        self.dir = os.path.join(workdir, f"redis-{self.host}-{self.port}")
        os.makedirs(self.dir, exist_ok=True)
        self.proc = None

    def start(self):
        args = [REDIS_SERVER, "--bind", self.host, "--port", str(self.port), "--dir", self.dir,
                "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
                "--daemonize", "no", "--logfile", os.path.join(self.dir, "redis.log")]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        wait_port(self.host, self.port, "tcp")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cli(self, *args):
        out = subprocess.run(["redis-cli", "-h", self.host, "-p", str(self.port), *args],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip()

    def flush(self):
        self.cli("FLUSHALL")


class FreeRadius:
    """The HAAA: Debian's FreeRADIUS with the project's cfg/freeradius, in the foreground."""

    def __init__(self, workdir, host=None, auth_port=None, acct_port=None, name="radius"):
        self.host = host or PLAN["IMPS_RADIUS_HOST"]
        self.auth_port = int(auth_port or PLAN["IMPS_RADIUS_AUTH_PORT"])
        self.acct_port = int(acct_port or PLAN["IMPS_RADIUS_ACCT_PORT"])
        self.secret = PLAN["IMPS_RADIUS_SECRET"]
        self.dir = os.path.join(workdir, f"{name}-{self.auth_port}")
        self.legacy_client = "127.0.0.255"  # a client allowed without Message-Authenticator
        os.makedirs(self.dir, exist_ok=True)
        self.proc = None

    @property
    def detail_file(self):
        return os.path.join(self.dir, "radacct", "detail")

    def start(self):
        env = dict(os.environ, IMPS_RADIUS_CONF=os.path.join(CFG_DIR, "freeradius"),
                   IMPS_RADIUS_RUN=self.dir, IMPS_RADIUS_ADDR=self.host,
                   IMPS_RADIUS_AUTH_PORT=str(self.auth_port),
                   IMPS_RADIUS_ACCT_PORT=str(self.acct_port), IMPS_RADIUS_SECRET=self.secret,
                   IMPS_RADIUS_CLIENT_NET="127.0.0.0/8",
                   IMPS_RADIUS_LEGACY_CLIENT=self.legacy_client)
        self.proc = subprocess.Popen(["/usr/sbin/freeradius", "-f", "-d",
                                      os.path.join(CFG_DIR, "freeradius"), "-D",
                                      "/usr/share/freeradius"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        wait_port(self.host, self.auth_port, "udp")
        wait_port(self.host, self.acct_port, "udp")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Kamailio:
    """One Kamailio instance running a role script from cfg/ in the foreground (-DD -E)."""

    def __init__(self, role, instance, listen, workdir, defines=None, cfg=None, modules=None):
        self.role = role
        self.instance = instance
        self.host, self.port = listen
        self.cfg = cfg or os.path.join(CFG_DIR, f"{role}.cfg")
        self.defines = dict(defines or {})
        self.modules = modules or f"{BUILD_MODULES}:{STOCK_MODULES}"
        self.shm_mb = 256  # tm keeps finished transactions a few seconds: room for load tests
        self.pkg_mb = 16
        self.mem_manager = None  # kamailio -x: qm (Debian's default), fm or tlsf
        self.log_path = os.path.join(workdir, f"{instance}.log")
        self.proc = None
        self.ctl = os.path.join(PLAN["IMPS_RUN_DIR"], f"{instance}.ctl")

    def start(self, timeout=15.0):
        os.makedirs(PLAN["IMPS_RUN_DIR"], exist_ok=True)
        args = [KAMAILIO, "-f", self.cfg, "-L", self.modules, "-DD", "-E", "-m", str(self.shm_mb), "-M", str(self.pkg_mb),
                "-P", os.path.join(PLAN["IMPS_RUN_DIR"], f"{self.instance}.pid")]
        if self.mem_manager:
            args += ["-x", self.mem_manager]
        for k, v in self.defines.items():
            args += ["-A", f"{k}={v}" if v is not None else k]
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kamailio {self.instance} exited: see {self.log_path}\n"
                                   + self.log_tail())
            if os.path.exists(self.ctl):
                try:
                    self.rpc("core.version")
                    return self
                except Exception:
                    pass
            time.sleep(0.1)
        raise TimeoutError(f"kamailio {self.instance} did not start: {self.log_tail()}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        if getattr(self, "logf", None):
            self.logf.close()
            self.logf = None

    def restart(self):
        self.stop()
        return self.start()

    def rpc(self, *args, check=True):
        out = subprocess.run([KAMCMD, "-s", f"unix:{self.ctl}", *map(str, args)],
                             capture_output=True, text=True, timeout=10)
        if check and out.returncode != 0:
            raise RuntimeError(f"kamcmd {' '.join(map(str, args))}: {out.stdout}{out.stderr}")
        return out.stdout

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                return b"".join(f.readlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


def edge_a(workdir, defines=None, net="a"):
    n = net_plan(net)
    return Kamailio("edge", f"edge-{net}", (n["ip"], n["edge_port"]), workdir,
                    net_defines(net, defines))


def hsp_a(workdir, defines=None, net="a"):
    n = net_plan(net)
    return Kamailio("hsp", f"hsp-{net}", (n["ip"], n["hsp_port"]), workdir,
                    net_defines(net, defines))


def edge_b(workdir, defines=None):
    return edge_a(workdir, defines, net="b")


def hsp_b(workdir, defines=None):
    return hsp_a(workdir, defines, net="b")


SQL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sql")


def presence_db_path(demo=False, net="a"):
    """The presence server's rules file: the demo's (make run) or the tests' own."""
    n = net_plan(net)
    return os.path.join(PLAN["IMPS_RUN_DIR"], n["ps_db"] if demo else n["ps_test_db"])


def _make_db(path, scripts):
    """A fresh SQLite database at path made from the sql/ scripts named."""
    import sqlite3
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        os.unlink(path)
    db = sqlite3.connect(path)
    for name in scripts:
        with open(os.path.join(SQL_DIR, name)) as f:
            db.executescript(f.read())
    db.commit()
    db.close()
    return path


def make_presence_db(path=None, demo_rules=True, demo=False, net="a"):
    """A fresh rules database for the presence server, made from sql/ (as make run does)."""
    demo_sql = "imps_presence-demo.sql" if net == "a" else f"imps_presence-demo-{net}.sql"
    return _make_db(path or presence_db_path(demo, net),
                    ["imps_presence-create.sql"] + ([demo_sql] if demo_rules else []))


def presence_rules(rows, path=None):
    """Replaces every rule: rows of (presentity, watcher, action)."""
    import sqlite3
    db = sqlite3.connect(path or presence_db_path())
    db.execute("DELETE FROM imps_presence_rules")
    db.executemany("INSERT INTO imps_presence_rules (presentity, watcher, action) VALUES (?, ?, ?)", rows)
    db.commit()
    db.close()


def ps_a(workdir, defines=None, demo=False, net="a"):
    """The presence server; outside the demo it reads the tests' rules file (PS_TEST_DB)."""
    d = net_defines(net, defines)
    if not demo:
        d.setdefault("PS_TEST_DB", None)
    n = net_plan(net)
    return Kamailio("presence", f"ps-{net}", (n["ip"], n["ps_port"]), workdir, d)


TEST_MODULES = os.path.join(os.path.dirname(BUILD_MODULES), "test-modules")


def presence_variant_cfg(workdir, name, port, edits=(), load=()):
    """presence.cfg for another node of a.example (sharing Redis and the rules file) on its own
    port with its own instance name, written to workdir: the includes made absolute, more
    modules loaded after imps_presence (load: test-only consumers of its API), and the given
    (old, new) text replacements."""
    with open(os.path.join(CFG_DIR, "presence.cfg")) as f:
        text = f.read()
    text = re.sub(r'import_file "([^"/]+)"', lambda m: f'import_file "{os.path.join(CFG_DIR, m.group(1))}"', text)
    for old, new in [('#!substdef "!IMPS_INSTANCE!ps-IMPS_NET_TAG!g"', f'#!substdef "!IMPS_INSTANCE!{name}!g"'),
                     (":IMPS_MY_PS_PORT\n", f":{port}\n")] + list(edits):
        assert old in text, old
        text = text.replace(old, new)
    for m in load:
        text = text.replace('loadmodule "imps_presence.so"\n',
                            f'loadmodule "imps_presence.so"\nloadmodule "{m}"\n')
    cfg = os.path.join(workdir, f"{name}.cfg")
    with open(cfg, "w") as f:
        f.write(text)
    return cfg


def ps_node(workdir, name, port, defines=None, load=()):
    """Another presence server node of a.example (presence_variant_cfg) that trusts every
    sender on the loopback address and asks no HAAA, so tests send it requests directly."""
    cfg = presence_variant_cfg(workdir, name, port, load=load)
    d = dict(defines or {})
    d.setdefault("PS_TEST_DB", None)
    d.setdefault("PS_TRUST_LOOPBACK", None)
    d.setdefault("IMPS_PS_NO_AUTHZ", None)
    return Kamailio("presence", name, (PLAN["IMPS_IP_A"], port), workdir, d, cfg=cfg)


def make_workdir(prefix="imps-"):
    return tempfile.mkdtemp(prefix=prefix)


def remove_workdir(path):
    if os.environ.get("IMPS_KEEP_WORKDIR"):
        return
    shutil.rmtree(path, ignore_errors=True)


def xcap_db_path(demo=False, net="a"):
    n = net_plan(net)
    return os.path.join(PLAN["IMPS_RUN_DIR"], n["xcap_db"] if demo else n["xcap_test_db"])


def make_xcap_db(path=None, demo=False, provision=True, net="a"):
    """A fresh XCAP document database made from sql/ (as make run does); provision: the demo
    users' documents of sql/imps_xcap-demo.sql (alice's buddy list with bob and carol; b.example
    has none)."""
    return _make_db(path or xcap_db_path(demo, net),
                    ["imps_xcap-create.sql"] + (["imps_xcap-demo.sql"] if provision and net == "a" else []))


def make_test_pki(directory, host=None, reuse=False, days=30):
    """A throwaway CA and a server certificate for host (IMPS_IP_A; subjectAltName IP:host)
    signed by it, made with openssl in directory (never committed); returns the CA's path.
    The files: ca.pem (what a client trusts), ca-key.pem, server-cert.pem, server-key.pem.
    reuse: keep the files already there while the certificate verifies against the CA for
    another day (make run: the CA a user trusts stays across runs)."""
    host = host or PLAN["IMPS_IP_A"]
    ca, ca_key = os.path.join(directory, "ca.pem"), os.path.join(directory, "ca-key.pem")
    cert, key = os.path.join(directory, "server-cert.pem"), os.path.join(directory, "server-key.pem")

    if reuse and all(os.path.exists(f) for f in (ca, ca_key, cert, key)):
        try:
            _openssl("verify", "-CAfile", ca, cert)
            _openssl("x509", "-in", cert, "-noout", "-checkend", "86400")
            if f"IP Address:{host}" in _openssl("x509", "-in", cert, "-noout", "-ext", "subjectAltName"):
                return ca
        except RuntimeError:
            pass
    os.makedirs(directory, exist_ok=True)  # the keys are 0600, the CA readable
    make_ca(ca, ca_key, "IMPS throwaway test CA", days)
    make_cert(directory, "server", ca, ca_key, host, f"IP:{host}", days)
    return ca


def tls_cfg_path(instance):
    """The tls module's config file an instance's role script names (IMPS_INSTANCE-tls.cfg)."""
    return os.path.join(PLAN["IMPS_RUN_DIR"], f"{instance}-tls.cfg")


def write_xcap_tls_cfg(pki_dir, path):
    """The tls module's config file for the XCAP server: the server certificate of pki_dir
    (make_test_pki), TLSv1.2 or newer, no client certificates (users authenticate with
    Digest)."""
    cert = os.path.join(os.path.abspath(pki_dir), "server-cert.pem")
    key = os.path.join(os.path.abspath(pki_dir), "server-key.pem")
    ca = os.path.join(os.path.abspath(pki_dir), "ca.pem")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(f"""# written by tests/lib/imps_net.py (write_xcap_tls_cfg) for cfg/xcap.cfg
[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
certificate = {cert}
private_key = {key}

# the XCAP server opens no TLS connection; a profile for completeness
[client:default]
method = TLSv1.2+
verify_certificate = yes
require_certificate = yes
ca_list = {ca}
""")
    return path


class XcapServer(Kamailio):
    """The XCAP server's Kamailio; with tls, every start (re)writes the tls module's config
    file for its PKI first (another instance may have written it since)."""

    tls = False
    pki_dir = None
    cafile = None

    def start(self, timeout=15.0):
        if self.tls:
            write_xcap_tls_cfg(self.pki_dir, tls_cfg_path(self.instance))
        return super().start(timeout)


def xcap_a(workdir, defines=None, demo=False, tls=False, pki_dir=None, net="a"):
    """The List and Policy Server (XCAP over HTTP); outside the demo it uses the tests' database
    file (XCAP_TEST_DB). tls: HTTPS too (WITH_TLS, on IMPS_XCAP_A_TLS_PORT), with a throwaway
    CA and server certificate made in pki_dir (default: workdir/xcap-pki; kept there when
    still valid); the server's cafile attribute names the CA a client must trust."""
    d = net_defines(net, defines)
    if not demo:
        d.setdefault("XCAP_TEST_DB", None)
    n = net_plan(net)
    k = XcapServer("xcap", f"xcap-{net}", (n["ip"], n["xcap_port"]), workdir, d)
    return _xcap_setup(k, workdir, tls, pki_dir, net)


def _xcap_setup(k, workdir, tls, pki_dir, net="a"):
    """What an XCAP-serving instance needs: pkg memory, and with tls HTTPS with a PKI."""
    k.pkg_mb = 64  # a 1 MiB document is copied a few times while a request is handled
    if tls:
        k.defines.setdefault("WITH_TLS", None)
        k.tls = True
        n = net_plan(net)
        k.tls_port = n["xcap_tls_port"]
        k.pki_dir = pki_dir or os.path.join(workdir, "xcap-pki" if net == "a" else f"xcap-pki-{net}")
        k.cafile = make_test_pki(k.pki_dir, host=n["ip"], reuse=True)
    return k


def ps_xcap_a(workdir, defines=None, demo=False, tls=False, pki_dir=None, net="a"):
    """The presence server as the List and Policy Server too (presence.cfg -A WITH_XCAP):
    imps_xcap in the same Kamailio on the XCAP ports, pres-rules read in process, xcap-diff.
    Outside the demo it uses the tests' rules and documents files; tls as for xcap_a()."""
    d = net_defines(net, defines)
    d.setdefault("WITH_XCAP", None)
    if not demo:
        d.setdefault("PS_TEST_DB", None)
        d.setdefault("XCAP_TEST_DB", None)
    n = net_plan(net)
    k = XcapServer("presence", f"ps-{net}", (n["ip"], n["ps_port"]), workdir, d)
    return _xcap_setup(k, workdir, tls, pki_dir, net)


def ps_xcap_b(workdir, defines=None, demo=False, tls=False, pki_dir=None):
    return ps_xcap_a(workdir, defines, demo, tls, pki_dir, net="b")


def make_oper_pki(directory, reuse=False, days=30):
    """The operators' throwaway CA and one certificate per operator edge (CN and
    subjectAltName DNS: its domain, IP: its address; server and client use), made with openssl
    in directory (never committed): ca.pem, ca-key.pem, oper-<net>-cert.pem, oper-<net>-key.pem.
    reuse: keep the files while they verify for another day. Returns the CA's path."""
    ca, ca_key = os.path.join(directory, "ca.pem"), os.path.join(directory, "ca-key.pem")
    nets = [net_plan(t) for t in ("a", "b")]
    files = [ca, ca_key] + [os.path.join(directory, f"oper-{n['tag']}-{x}.pem")
                            for n in nets for x in ("cert", "key")]
    if reuse and all(os.path.exists(f) for f in files):
        try:
            for n in nets:
                cert = os.path.join(directory, f"oper-{n['tag']}-cert.pem")
                _openssl("verify", "-CAfile", ca, cert)
                _openssl("x509", "-in", cert, "-noout", "-checkend", "86400")
            return ca
        except RuntimeError:
            pass
    os.makedirs(directory, exist_ok=True)
    make_ca(ca, ca_key, "IMPS throwaway operators' CA", days)
    for n in nets:
        make_cert(directory, f"oper-{n['tag']}", ca, ca_key, n["domain"],
                  f"DNS:{n['domain']},IP:{n['ip']}", days)
    return ca


def _openssl(*args):
    out = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {out.stderr}")
    return out.stdout


EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def make_ca(ca, ca_key, name, days=30):
    """A self-signed CA certificate and key (the key 0600)."""
    _openssl("req", "-x509", *EC_KEY, "-keyout", ca_key, "-out", ca, "-days", str(days),
             "-sha256", "-subj", f"/O=IMPS test/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    os.chmod(ca_key, 0o600)
    return ca


def make_cert(directory, name, ca, ca_key, cn, san, days=30):
    """directory/<name>-cert.pem and -key.pem: a certificate for cn (subjectAltName san, e.g.
    "DNS:b.example,IP:127.0.0.2") signed by ca, for TLS servers and clients."""
    cert, key = os.path.join(directory, f"{name}-cert.pem"), os.path.join(directory, f"{name}-key.pem")
    csr, ext = os.path.join(directory, f"{name}.csr"), os.path.join(directory, f"{name}.ext")
    _openssl("req", "-new", *EC_KEY, "-keyout", key, "-out", csr, "-subj", f"/O=IMPS test/CN={cn}")
    with open(ext, "w") as f:
        f.write(f"subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth,clientAuth\n")
    _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
             "-out", cert, "-days", str(days), "-sha256", "-extfile", ext)
    for f in (csr, ext, os.path.splitext(ca)[0] + ".srl"):
        if os.path.exists(f):
            os.unlink(f)
    os.chmod(key, 0o600)
    return cert, key


def write_oper_tls_cfg(pki_dir, net, path):
    """The tls module's config file of an operator edge (operator.cfg): its certificate from
    pki_dir (make_oper_pki), TLSv1.2 or newer, and on both sides (it accepts peers' connections
    and opens its own) a certificate of the operators' CA required and verified."""
    d = os.path.abspath(pki_dir)
    cert, key, ca = (os.path.join(d, f"oper-{net}-cert.pem"), os.path.join(d, f"oper-{net}-key.pem"),
                     os.path.join(d, "ca.pem"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    prof = f"""method = TLSv1.2+
verify_certificate = yes
require_certificate = yes
certificate = {cert}
private_key = {key}
ca_list = {ca}
"""
    with open(path, "w") as f:
        f.write(f"# written by tests/lib/imps_net.py (write_oper_tls_cfg) for cfg/operator.cfg\n"
                f"[server:default]\n{prof}\n[client:default]\n{prof}")
    return path


class OperatorEdge(Kamailio):
    """An operator edge proxy; every start (re)writes its tls config for its PKI first."""

    def start(self, timeout=15.0):
        write_oper_tls_cfg(self.pki_dir, self.net, tls_cfg_path(self.instance))
        return super().start(timeout)


def oper(workdir, net="a", defines=None, pki_dir=None):
    """The operator edge proxy of network net (cfg/operator.cfg), with the operators' PKI in
    pki_dir (default workdir/oper-pki, shared by both networks' edges; kept while valid)."""
    n = net_plan(net)
    k = OperatorEdge("operator", f"oper-{net}", (n["ip"], n["oper_int_port"]), workdir,
                     net_defines(net, defines))
    k.net = net
    k.pki_dir = pki_dir or os.path.join(workdir, "oper-pki")
    k.cafile = make_oper_pki(k.pki_dir, reuse=True)
    return k
