"""Fixtures of the functional tests: the demo network's a.example part (redis-server, HSP and
edge proxy) started once per session with the project's cfg files, with short timers."""

import os
import socket
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

import imps_net  # noqa: E402
import sipua  # noqa: E402

# Short timers so that expiry can be tested in seconds (kamailio -A overrides of hsp.cfg).
HSP_DEFINES = {"REG_MIN_EXPIRES": 1, "UL_TIMER_INTERVAL": 1, "REGINFO_MIN_EXPIRES": 2}
PS_DEFINES = {"PS_MIN_EXPIRES": 2, "PS_PUB_MIN_EXPIRES": 2, "PS_NOTIFY_INTERVAL": 0,
              "PS_MAX_BODY": 8192, "PS_RULES_POLL": 0}
USERS = ("alice", "bob", "carol")


class Net:
    def __init__(self, workdir):
        self.workdir = workdir
        self.plan = imps_net.PLAN
        self.domain = self.plan["IMPS_DOMAIN_A"]
        self.edge_addr = (self.plan["IMPS_IP_A"], int(self.plan["IMPS_EDGE_A_PORT"]))
        self.redis = imps_net.Redis(workdir)
        self.radius = imps_net.FreeRadius(workdir)
        self.hsp = imps_net.hsp_a(workdir, HSP_DEFINES)
        self.edge = imps_net.edge_a(workdir)
        self.ps = imps_net.ps_a(workdir, PS_DEFINES)
        self.uas = []

    @property
    def edge_hostport(self):
        return f"{self.edge_addr[0]}:{self.edge_addr[1]}"

    def start(self):
        # a running demo (make run) holds the same ports: the tests would talk to it
        for host, port in ((self.plan["IMPS_IP_A"], int(self.plan["IMPS_EDGE_A_PORT"])),
                           (self.redis.host, self.redis.port)):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no owner
            try:
                s.bind((host, port))
            except OSError:
                raise RuntimeError(f"{host}:{port} is in use (is `make run` running?): the tests "
                                   "start their own network on the demo's addresses")
            finally:
                s.close()
        self.redis.start()
        self.radius.start()
        imps_net.make_presence_db()
        self.ps.start()
        self.hsp.start()
        self.edge.start()

    def stop(self):
        for ua in self.uas:
            ua.close()
        self.edge.stop()
        self.hsp.stop()
        self.ps.stop()
        self.radius.stop()
        self.redis.stop()

    def ua(self, user):
        ua = sipua.UA(user, self.domain, self.edge_addr)
        self.uas.append(ua)
        return ua

    def phone(self, user, **kw):
        """A user's device (sipua.Phone) at the edge, closed by clean()."""
        p = sipua.Phone(user, self.domain, self.edge_addr, **kw)
        self.uas.append(p)
        return p

    def clean(self):
        """No subscriptions, no registrations: each test starts from an empty network."""
        for ua in self.uas:
            ua.close()
        self.uas = []
        if self.redis.proc is None:
            self.redis.start()
        if self.radius.proc is None:
            self.radius.start()
        if self.hsp.proc is None or self.hsp.proc.poll() is not None:
            self.hsp.start()
        imps_net.presence_rules([("a.example", "a.example", "allow")])
        if self.ps.proc is None or self.ps.proc.poll() is not None:
            self.ps.start()
        self.redis.flush()
        for u in USERS:
            self.hsp.rpc("ul.rm", "location", f"{u}@{self.domain}", check=False)


@pytest.fixture(scope="session")
def net():
    workdir = imps_net.make_workdir("imps-ft-")
    n = Net(workdir)
    try:
        n.start()
    except Exception:
        n.stop()
        raise
    yield n
    n.stop()
    if os.environ.get("IMPS_KEEP_LOGS") is None:
        imps_net.remove_workdir(workdir)
    else:
        print(f"logs kept in {workdir}")


@pytest.fixture
def clean_net(net):
    net.clean()
    yield net


@pytest.fixture(scope="module")
def colocated_ps(net):
    """For one test module: the presence server as the List and Policy Server and the
    resource list server too (presence.cfg -A WITH_XCAP) in place of the plain one, with an
    empty documents database."""
    yield from run_colocated_ps(net, PS_DEFINES)


def run_colocated_ps(net, defines):
    """colocated_ps with these defines (a generator for a module fixture)."""
    orig = net.ps
    orig.stop()
    imps_net.make_xcap_db(provision=False)
    ps = imps_net.ps_xcap_a(net.workdir, defines)
    net.ps = ps
    ps.start()
    imps_net.wait_port(net.plan["IMPS_IP_A"], int(net.plan["IMPS_XCAP_A_PORT"]), "tcp")
    yield ps
    ps.stop()
    net.ps = orig
    orig.start()


class PeerNet:
    """The second operator's network (b.example: its own redis-server, presence server with
    List and Policy and resource list server, HSP and edge) and both operators' edge proxies,
    beside the session's a.example."""

    def __init__(self, net):
        w = net.workdir
        self.a = net
        self.plan = imps_net.net_plan("b")
        self.domain = self.plan["domain"]
        self.edge_addr = (self.plan["ip"], self.plan["edge_port"])
        self.redis = imps_net.Redis(w, host=self.plan["redis_host"])
        self.ps = imps_net.ps_xcap_b(w, PS_DEFINES)
        self.hsp = imps_net.hsp_b(w, HSP_DEFINES)
        self.edge = imps_net.edge_b(w)
        self.oper_a = imps_net.oper(w, "a")
        self.oper_b = imps_net.oper(w, "b")
        self.servers = [self.redis, self.ps, self.hsp, self.edge, self.oper_a, self.oper_b]
        self.uas = []

    def start(self):
        imps_net.make_presence_db(net="b")
        imps_net.make_xcap_db(net="b", provision=False)
        for s in self.servers:
            s.start()

    def stop(self):
        for ua in self.uas:
            ua.close()
        for s in reversed(self.servers):
            s.stop()

    def ua(self, user):
        ua = sipua.UA(user, self.domain, self.edge_addr, ip=self.plan["ip"])
        self.uas.append(ua)
        return ua

    def phone(self, user, **kw):
        p = sipua.Phone(user, self.domain, self.edge_addr, bind_ip=self.plan["ip"], **kw)
        self.uas.append(p)
        return p

    def clean(self):
        for ua in self.uas:
            ua.close()
        self.uas = []
        for s in self.servers:
            if s.proc is None or s.proc.poll() is not None:
                s.start()
        self.redis.flush()
        for u in ("dave", "erin"):
            self.hsp.rpc("ul.rm", "location", f"{u}@{self.domain}", check=False)


@pytest.fixture(scope="module")
def peer_net(net):
    """For one test module: domain b.example and the operator edges of both networks."""
    p = PeerNet(net)
    try:
        p.start()
    except Exception:
        p.stop()
        raise
    yield p
    p.stop()


@pytest.fixture
def two_nets(clean_net, peer_net):
    peer_net.clean()
    yield clean_net, peer_net
