"""A small SIP user agent over UDP for the tests' watchers: sends SUBSCRIBEs (initial, refresh,
unsubscribe) through the edge proxy, follows the dialog's route set, answers every NOTIFY
(200 by default, or a status the test chooses) and hands each NOTIFY to the test, so that the
test can read every header and every field of every body."""

import hashlib
import queue
import random
import re
import socket
import string
import threading
import time

COMPACT = {"i": "call-id", "f": "from", "t": "to", "m": "contact", "v": "via", "l": "content-length",
           "c": "content-type", "o": "event", "k": "supported", "e": "content-encoding"}


def rand(n=10):
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def options_request(ua, ruri):
    """An out-of-dialog OPTIONS from `ua` to `ruri`: (its Via branch, its text)."""
    branch = "z9hG4bK" + rand(12)
    text = "\r\n".join([
        f"OPTIONS {ruri} SIP/2.0",
        f"Via: SIP/2.0/UDP {ua.ip}:{ua.port};rport;branch={branch}",
        "Max-Forwards: 70",
        f"From: <sip:{ua.user}@{ua.domain}>;tag={rand(8)}",
        f"To: <{ruri}>",
        f"Call-ID: {rand(12)}@opt",
        "CSeq: 1 OPTIONS",
        f"Contact: <{ua.contact}>",
        "Content-Length: 0", "", ""])
    return branch, text


class Message:
    def __init__(self, raw, src=None):
        self.raw = raw
        self.src = src
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode(errors="replace").split("\r\n")
        self.first = lines[0]
        self.headers = []  # (lower name, value) in order
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and self.headers:
                n, v = self.headers[-1]
                self.headers[-1] = (n, v + " " + line.strip())
                continue
            name, _, value = line.partition(":")
            name = name.strip().lower()
            self.headers.append((COMPACT.get(name, name), value.strip()))
        clen = self.header("content-length")
        self.body = body[: int(clen)] if clen and clen.isdigit() else body
        parts = self.first.split(" ", 2)
        if self.first.startswith("SIP/2.0"):
            self.is_request = False
            self.status = int(parts[1])
            self.reason = parts[2] if len(parts) > 2 else ""
            self.method = self.header("cseq").split()[-1] if self.header("cseq") else ""
        else:
            self.is_request = True
            self.method = parts[0]
            self.uri = parts[1]
            self.status = None

    def header(self, name):
        name = name.lower()
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def all(self, name):
        name = name.lower()
        out = []
        for n, v in self.headers:
            if n == name:
                out += split_commas(v) if name in ("via", "record-route", "route") else [v]
        return out

    def tag(self, name):
        v = self.header(name) or ""
        m = re.search(r";\s*tag=([^;>\s]+)", v)
        return m.group(1) if m else None

    def __repr__(self):
        return f"<Message {self.first}>"


def split_commas(v):
    out, depth, cur, q = [], 0, "", False
    for ch in v:
        if ch == '"':
            q = not q
        if not q and ch == "<":
            depth += 1
        if not q and ch == ">":
            depth -= 1
        if ch == "," and depth == 0 and not q:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def uri_of(nameaddr):
    m = re.search(r"<([^>]*)>", nameaddr)
    return m.group(1) if m else nameaddr.split(";")[0].strip()


def host_port(uri):
    m = re.match(r"sips?:(?:[^@]*@)?([^:;>]+)(?::(\d+))?", uri)
    return m.group(1), int(m.group(2) or 5060)


def reply_address(req):
    """Where a response to req goes over UDP (RFC 3261 18.2.2 with RFC 3581 rport)."""
    via = req.all("via")[0]
    m = re.search(r"SIP/2.0/\w+\s+([^;:\s]+)(?::(\d+))?", via)
    rport = re.search(r";rport=(\d+)", via)
    rcvd = re.search(r";received=([^;\s]+)", via)
    host = rcvd.group(1) if rcvd else m.group(1)
    port = int(rport.group(1)) if rport else int(m.group(2) or 5060)
    return host, port


def transact(send, responses, text, dest=None, timeout=5.0, want_final=True, reliable=False):
    """Sends a request with send(text, dest), retransmitted (unless the transport is reliable)
    until a response on the queue `responses` matches its Via branch; returns the final one
    (or the first provisional one when want_final is False)."""
    head = text.decode(errors="replace") if isinstance(text, bytes) else text
    branch = re.search(r"branch=([^;\s]+)", head).group(1)
    deadline = time.time() + timeout
    interval, next_send = 0.5, 0
    while time.time() < deadline:
        if time.time() >= next_send:
            send(text, dest)
            next_send = deadline if reliable else time.time() + interval
            interval = min(interval * 2, 4)
        try:
            r = responses.get(timeout=0.05)
        except queue.Empty:
            continue
        if branch not in (r.header("via") or ""):
            continue
        if r.status >= 200 or not want_final:
            return r
        next_send = deadline  # provisional: stop retransmitting
    raise TimeoutError("no final response to:\n" + head.split("\r\n")[0])


def wait_request(requests, method, timeout):
    """The next request of `method` on the queue (others are dropped), or TimeoutError."""
    deadline = time.time() + timeout
    while True:
        left = deadline - time.time()
        if left <= 0:
            raise TimeoutError(f"no {method} within {timeout}s")
        try:
            m = requests.get(timeout=left)
        except queue.Empty:
            raise TimeoutError(f"no {method} within {timeout}s")
        if m.method == method:
            return m


class UA:
    def __init__(self, user, domain, proxy, ip="127.0.0.1", port=0):
        self.user, self.domain, self.proxy = user, domain, proxy
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, port))
        self.ip, self.port = self.sock.getsockname()
        self.responses = queue.Queue()
        self.requests = queue.Queue()
        self.notify_answer = 200
        self.answer_delay = 0.0
        self.running = True
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    @property
    def contact(self):
        return f"sip:{self.user}@{self.ip}:{self.port}"

    def close(self):
        self.running = False
        self.sock.close()

    def _loop(self):
        while self.running:
            try:
                data, src = self.sock.recvfrom(65535)
            except OSError:
                return
            if not data.strip():
                continue
            m = Message(data, src)
            if m.is_request:
                if m.method == "NOTIFY" or m.method == "OPTIONS":
                    code = self.notify_answer if m.method == "NOTIFY" else 200
                    if self.answer_delay:
                        time.sleep(self.answer_delay)
                    if code:
                        try:
                            self.reply(m, code)
                        except OSError:
                            if not self.running:
                                return  # closed while the request came in
                            raise
                self.requests.put(m)
            else:
                self.responses.put(m)

    def reply(self, req, code, reason=None):
        reason = reason or {200: "OK", 481: "Subscription does not exist", 408: "Timeout",
                            500: "Server Error"}.get(code, "Response")
        to = req.header("to")
        if ";tag=" not in to:
            to += ";tag=" + rand(8)
        lines = [f"SIP/2.0 {code} {reason}"]
        for v in req.all("via"):
            lines.append(f"Via: {v}")
        lines += [f"From: {req.header('from')}", f"To: {to}", f"Call-ID: {req.header('call-id')}",
                  f"CSeq: {req.header('cseq')}", "Content-Length: 0", "", ""]
        self.sock.sendto("\r\n".join(lines).encode(), reply_address(req))

    def send_raw(self, text, dest=None):
        self.sock.sendto(text.encode() if isinstance(text, str) else text, dest or self.proxy)

    def request(self, text, dest=None, timeout=5.0, want_final=True):
        """Sends a request (retransmitted over UDP until a response) and returns the final
        response."""
        return transact(self.send_raw, self.responses, text, dest, timeout, want_final)

    def wait_request(self, method="NOTIFY", timeout=5.0):
        return wait_request(self.requests, method, timeout)

    def no_request(self, method="NOTIFY", wait=1.0):
        try:
            m = self.wait_request(method, wait)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected {method}: {m.raw!r}")


def digest_header(challenge, user, password, method, uri, name="Proxy-Authorization"):
    """The credentials header answering a Digest challenge (RFC 2617, qop=auth)."""
    p = dict(re.findall(r'(\w+)="?([^",]+)"?', challenge))
    md5 = lambda s: hashlib.md5(s.encode()).hexdigest()
    ha1 = md5(f"{user}:{p['realm']}:{password}")
    ha2 = md5(f"{method}:{uri}")
    nc, cnonce = "00000001", rand(8)
    resp = md5(f"{ha1}:{p['nonce']}:{nc}:{cnonce}:auth:{ha2}")
    return (f'{name}: Digest username="{user}", realm="{p["realm"]}", nonce="{p["nonce"]}", '
            f'uri="{uri}", response="{resp}", algorithm=MD5, qop=auth, nc={nc}, cnonce="{cnonce}"')


class Subscription:
    """The subscriber side of one SUBSCRIBE dialog."""

    def __init__(self, ua, target, event="reg", accept="application/reginfo+xml"):
        self.ua = ua
        self.target = target  # "sip:alice@a.example"
        self.event = event
        self.accept = accept
        self.call_id = rand(16) + "@test"
        self.from_tag = rand(8)
        self.to_tag = None
        self.cseq = 0
        self.route_set = []
        self.remote_target = None
        self.password = f"{ua.user}-secret"  # the demo subscribers' passwords

    def _build(self, expires, extra=None, omit=(), uri=None, to=None, body=None,
               content_type=None):
        self.cseq += 1
        in_dialog = self.to_tag is not None
        ruri = uri or (self.remote_target if in_dialog else self.target)
        branch = "z9hG4bK" + rand(12)
        via = (self.ua.via(branch) if hasattr(self.ua, "via")
               else f"Via: SIP/2.0/UDP {self.ua.ip}:{self.ua.port};rport;branch={branch}")
        contact = getattr(self.ua, "sub_contact", None) or self.ua.contact
        lines = [f"SUBSCRIBE {ruri} SIP/2.0", via,
                 "Max-Forwards: 70",
                 f"From: <sip:{self.ua.user}@{self.ua.domain}>;tag={self.from_tag}",
                 f"To: {to or ('<' + self.target + '>')}" + (f";tag={self.to_tag}" if in_dialog else ""),
                 f"Call-ID: {self.call_id}",
                 f"CSeq: {self.cseq} SUBSCRIBE",
                 f"Contact: <{contact}>"]
        for r in self.route_set if in_dialog else []:
            lines.append(f"Route: {r}")
        if self.event is not None and "event" not in omit:
            lines.append(f"Event: {self.event}")
        if self.accept is not None and "accept" not in omit:
            lines.append(f"Accept: {self.accept}")
        if expires is not None:
            lines.append(f"Expires: {expires}")
        lines += list(extra or [])
        if body:
            data = body if isinstance(body, bytes) else body.encode()
            lines += [f"Content-Type: {content_type}", f"Content-Length: {len(data)}", "", ""]
            return "\r\n".join(lines).encode() + data
        lines += ["Content-Length: 0", "", ""]
        return "\r\n".join(lines)

    def _dest(self):
        if self.to_tag is not None and self.route_set:
            return host_port(uri_of(self.route_set[0]))
        return self.ua.proxy

    def subscribe(self, expires=600, **kw):
        send = getattr(self.ua, "transact", None) or self.ua.request
        resp = send(self._build(expires, **kw), self._dest())
        if resp.status == 407 and self.password:
            # the edge proxy authenticates out-of-dialog requests: answer its challenge
            uri = kw.get("uri") or self.target
            auth = digest_header(resp.header("proxy-authenticate"), self.ua.user, self.password,
                                 "SUBSCRIBE", uri)
            kw = dict(kw, extra=list(kw.get("extra") or []) + [auth])
            resp = send(self._build(expires, **kw), self._dest())
        if 200 <= resp.status < 300 and self.to_tag is None:
            self.to_tag = resp.tag("to")
            self.route_set = list(reversed(resp.all("record-route")))
            self.remote_target = uri_of(resp.header("contact"))
        return resp

    def refresh(self, expires=600):
        return self.subscribe(expires)

    def unsubscribe(self):
        return self.subscribe(0)


class Publisher:
    """The publisher side of RFC 3903: one device's publication of its user's presence, sent
    through the edge proxy (answering its digest challenge)."""

    def __init__(self, ua, target=None):
        self.ua = ua
        self.target = target or f"sip:{ua.user}@{ua.domain}"
        self.etag = None
        self.password = f"{ua.user}-secret"
        self.call_id = rand(16) + "@pub"
        self.cseq = 0

    def _build(self, body, expires, etag, content_type, event, extra):
        self.cseq += 1
        branch = "z9hG4bK" + rand(12)
        body = body.encode() if isinstance(body, str) else (body or b"")
        lines = [f"PUBLISH {self.target} SIP/2.0",
                 f"Via: SIP/2.0/UDP {self.ua.ip}:{self.ua.port};rport;branch={branch}",
                 "Max-Forwards: 70",
                 f"From: <sip:{self.ua.user}@{self.ua.domain}>;tag={rand(8)}",
                 f"To: <{self.target}>",
                 f"Call-ID: {self.call_id}",
                 f"CSeq: {self.cseq} PUBLISH"]
        if event is not None:
            lines.append(f"Event: {event}")
        if expires is not None:
            lines.append(f"Expires: {expires}")
        if etag:
            lines.append(f"SIP-If-Match: {etag}")
        if body and content_type:
            lines.append(f"Content-Type: {content_type}")
        lines += list(extra or [])
        lines += [f"Content-Length: {len(body)}", "", ""]
        return "\r\n".join(lines).encode() + body

    def publish(self, body=None, expires=600, etag="current", content_type="application/pidf+xml",
                event="presence", extra=None, keep_etag=True):
        """Sends a PUBLISH; etag="current" uses the last ETag (none for the first), None sends
        no SIP-If-Match. Returns the final response; on 2xx the new ETag is kept."""
        tag = self.etag if etag == "current" else etag
        msg = self._build(body, expires, tag, content_type, event, extra)
        resp = self.ua.request(msg)
        if resp.status == 407 and self.password:
            auth = digest_header(resp.header("proxy-authenticate"), self.ua.user, self.password,
                                 "PUBLISH", self.target)
            msg = self._build(body, expires, tag, content_type, event, list(extra or []) + [auth])
            resp = self.ua.request(msg)
        if 200 <= resp.status < 300 and keep_etag:
            self.etag = resp.header("sip-etag") if expires != 0 else None
        return resp


def pidf(user, domain, basic="open", tuple_id="t1", note=None, extra_tuple="", person=""):
    """A small PIDF document of user@domain."""
    n = f"<note>{note}</note>" if note else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<presence xmlns="urn:ietf:params:xml:ns:pidf" '
            f'xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" '
            f'xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:{user}@{domain}">'
            f'<tuple id="{tuple_id}"><status><basic>{basic}</basic></status>'
            f'<contact>sip:{user}@{domain}</contact>{n}</tuple>{extra_tuple}{person}</presence>')


class Phone:
    """A user's device that registers through the edge proxy over UDP or TCP, sends requests
    to other users (answering the edge's digest challenge with Proxy-Authorization, or with
    Authorization when `auth_header` says so) and answers the requests it receives: 200 to
    MESSAGE, OPTIONS, NOTIFY, BYE, and 200 with a Contact (and the Record-Route) to INVITE,
    unless `answer` says otherwise. Every request it receives is kept for the test.

    contact_host/contact_port: what the device writes in Via and Contact (a private address
    behind NAT, say); it still sends from and listens on its own socket (on bind_ip)."""

    def __init__(self, user, domain, proxy, transport="udp", instance=None, q=None,
                 contact_host=None, contact_port=None, password=None, auth_header=None,
                 bind_ip="127.0.0.1"):
        self.user, self.domain, self.proxy = user, domain, proxy
        self.transport = transport
        self.password = password or f"{user}-secret"
        self.auth_header = auth_header
        self.instance, self.q = instance, q
        self.requests = queue.Queue()
        self.responses = queue.Queue()
        self.answer = {"INVITE": 200}
        self.running = True
        if transport == "tcp":
            self.sock = socket.create_connection(proxy, timeout=5, source_address=(bind_ip, 0))
            self.sock.settimeout(None)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((bind_ip, 0))
        self.ip, self.port = self.sock.getsockname()
        self.contact_host = contact_host or self.ip
        self.contact_port = contact_port or self.port
        self.reg_callid = rand(12) + "@reg"
        self.sub_contact = None  # the Contact of its SUBSCRIBEs (its GRUU, say); None: contact
        self.reg_cseq = 0
        self.pub_gruu = self.temp_gruu = None
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    # -- transport --------------------------------------------------------------------------
    @property
    def tp(self):
        return self.transport.upper()

    @property
    def contact(self):
        t = ";transport=tcp" if self.transport == "tcp" else ""
        return f"sip:{self.user}@{self.contact_host}:{self.contact_port}{t}"

    def via(self, branch):
        return f"Via: SIP/2.0/{self.tp} {self.contact_host}:{self.contact_port};rport;branch={branch}"

    def close(self):
        self.running = False
        try:
            self.sock.close()
        except OSError:
            pass

    def send_raw(self, data, dest=None):
        data = data.encode() if isinstance(data, str) else data
        if self.transport == "tcp":
            self.sock.sendall(data)
        else:
            self.sock.sendto(data, dest or self.proxy)

    def _frames(self):
        """Messages from the socket: datagrams, or Content-Length framed TCP stream."""
        if self.transport != "tcp":
            while True:
                data, src = self.sock.recvfrom(65535)
                yield data, src
        buf = b""
        src = self.sock.getpeername()
        while True:
            while b"\r\n\r\n" not in buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                buf += chunk
                buf = buf.lstrip(b"\r\n")
            head, _, rest = buf.partition(b"\r\n\r\n")
            m = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
            n = int(m.group(1)) if m else 0
            while len(rest) < n:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                rest += chunk
            yield head + b"\r\n\r\n" + rest[:n], src
            buf = rest[n:]

    def _loop(self):
        try:
            for data, src in self._frames():
                if not self.running:
                    return
                if not data.strip():
                    continue
                m = Message(data, src)
                m.transport = self.transport
                if m.is_request:
                    self._answer(m)
                    self.requests.put(m)
                else:
                    self.responses.put(m)
        except OSError:
            return

    def _answer(self, m):
        if m.method == "ACK":
            return
        code = self.answer.get(m.method, 200)
        if not code:
            return
        extra = []
        if m.method == "INVITE" and code < 300:
            extra += [f"Record-Route: {r}" for r in m.all("record-route")]
            extra.append(f"Contact: <{self.contact}>")
        m.answer_tag = self.reply(m, code, extra=extra)

    def reply(self, req, code, reason=None, extra=()):
        reason = reason or {200: "OK", 480: "Temporarily Unavailable", 486: "Busy Here",
                            500: "Server Error"}.get(code, "Response")
        to = req.header("to")
        if ";tag=" not in to:
            to += ";tag=" + (getattr(req, "answer_tag", None) or rand(8))
        lines = [f"SIP/2.0 {code} {reason}"]
        lines += [f"Via: {v}" for v in req.all("via")]
        lines += [f"From: {req.header('from')}", f"To: {to}", f"Call-ID: {req.header('call-id')}",
                  f"CSeq: {req.header('cseq')}", *extra, "Content-Length: 0", "", ""]
        text = "\r\n".join(lines)
        tag = re.search(r";tag=([^;>\s]+)", to).group(1)
        if self.transport == "tcp":
            self.send_raw(text)
            return tag
        self.send_raw(text, reply_address(req))
        return tag

    # -- requests ---------------------------------------------------------------------------
    def transact(self, text, dest=None, timeout=5.0):
        """Sends a request and returns its final response (UDP: retransmitted)."""
        return transact(self.send_raw, self.responses, text, dest, timeout,
                        reliable=self.transport == "tcp")

    def build(self, method, ruri, cseq, call_id, from_tag, to=None, to_tag=None, body=b"",
              ctype=None, extra=(), routes=(), contact=True):
        branch = "z9hG4bK" + rand(12)
        body = body.encode() if isinstance(body, str) else (body or b"")
        to = to or f"<{ruri}>" if method != "REGISTER" else f"<sip:{self.user}@{self.domain}>"
        lines = [f"{method} {ruri} SIP/2.0", self.via(branch), "Max-Forwards: 70",
                 f"From: <sip:{self.user}@{self.domain}>;tag={from_tag}",
                 f"To: {to}" + (f";tag={to_tag}" if to_tag else ""),
                 f"Call-ID: {call_id}", f"CSeq: {cseq} {method}"]
        lines += [f"Route: {r}" for r in routes]
        if contact:
            lines.append(f"Contact: {self.contact_header()}" if method == "REGISTER"
                         else f"Contact: <{self.contact}>")
        if body and ctype:
            lines.append(f"Content-Type: {ctype}")
        lines += list(extra)
        lines += [f"Content-Length: {len(body)}", "", ""]
        return "\r\n".join(lines).encode() + body

    def contact_header(self):
        c = f"<{self.contact}>"
        if self.instance:
            c += f';+sip.instance="<{self.instance}>"'
        if self.q is not None:
            c += f";q={self.q}"
        return c

    def request(self, method, ruri, body=b"", ctype=None, extra=(), call_id=None, dest=None,
                timeout=5.0, to=None):
        """An out-of-dialog request, answering the edge's challenge once. Returns the final
        response; its request text is in response.request."""
        call_id = call_id or rand(12) + "@phone"
        from_tag = rand(8)
        cseq = self.reg_cseq + 1 if method == "REGISTER" else 1
        if method == "REGISTER":
            call_id = self.reg_callid
        msg = self.build(method, ruri, cseq, call_id, from_tag, to=to, body=body, ctype=ctype,
                         extra=extra)
        r = self.transact(msg, dest, timeout)
        if r.status in (401, 407) and self.password:
            chal = r.header("www-authenticate" if r.status == 401 else "proxy-authenticate")
            name = self.auth_header or ("Authorization" if r.status == 401 else "Proxy-Authorization")
            cred = digest_header(chal, self.user, self.password, method, ruri, name)
            cseq += 1
            msg = self.build(method, ruri, cseq, call_id, from_tag, to=to, body=body,
                             ctype=ctype, extra=list(extra) + [cred])
            r = self.transact(msg, dest, timeout)
        if method == "REGISTER":
            self.reg_cseq = cseq
        r.request = msg
        r.call_id, r.from_tag, r.cseq = call_id, from_tag, cseq
        return r

    def register(self, expires=600, extra=()):
        ext = list(extra)
        if self.instance:
            ext.append("Supported: gruu, path")
        r = self.request("REGISTER", f"sip:{self.domain}", extra=ext + [f"Expires: {expires}"])
        if r.status == 200:
            for c in r.all("contact"):
                if self.instance and self.instance in c:
                    m = re.search(r'pub-gruu="([^"]+)"', c)
                    self.pub_gruu = m.group(1) if m else None
                    m = re.search(r'temp-gruu="([^"]+)"', c)
                    self.temp_gruu = m.group(1) if m else None
        return r

    def message(self, ruri, text, extra=()):
        return self.request("MESSAGE", ruri, body=text, ctype="text/plain", extra=extra)

    def wait_request(self, method, timeout=5.0):
        return wait_request(self.requests, method, timeout)


class Call:
    """The caller's side of an INVITE dialog through the edge: INVITE (answering the
    challenge), ACK and BYE along the dialog's route set."""

    SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           "m=audio 9 RTP/AVP 0\r\n")

    def __init__(self, phone, ruri):
        self.phone, self.ruri = phone, ruri

    def invite(self, timeout=8.0):
        r = self.phone.request("INVITE", self.ruri, body=self.SDP, ctype="application/sdp",
                               timeout=timeout)
        self.response = r
        if 200 <= r.status < 300:
            self.call_id, self.from_tag, self.cseq = r.call_id, r.from_tag, r.cseq
            self.to_tag = r.tag("to")
            self.route_set = list(reversed(r.all("record-route")))
            self.remote_target = uri_of(r.header("contact"))
            self.ack()
        return r

    def _in_dialog(self, method, cseq):
        return self.phone.build(method, self.remote_target, cseq, self.call_id, self.from_tag,
                                to=f"<{self.ruri}>", to_tag=self.to_tag, routes=self.route_set,
                                contact=method != "BYE")

    def ack(self):
        self.phone.send_raw(self._in_dialog("ACK", self.cseq))

    def bye(self):
        self.cseq += 1
        return self.phone.transact(self._in_dialog("BYE", self.cseq))
