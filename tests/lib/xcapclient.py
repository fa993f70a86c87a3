"""A small XCAP (RFC 4825) client over http.client with HTTP Digest (RFC 7616, MD5, qop=auth),
for the functional tests: what an XCAP client sends, nothing the server would not see from a
real one. Each request answers a 401 once with the credentials, as clients do."""

import hashlib
import http.client
import os
import re
import ssl
import urllib.parse


def _h(s):
    return hashlib.md5(s.encode()).hexdigest()


class Reply:
    def __init__(self, status, reason, headers, body):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    @property
    def etag(self):
        v = self.header("ETag")
        return v.strip('"') if v else None

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return f"<{self.status} {self.reason} {self.text[:300]!r}>"


class Client:
    def __init__(self, host, port, root_path="/xcap-root", user=None, password=None, realm=None,
                 tls=False, cafile=None, source=None):
        self.host, self.port, self.root_path = host, port, root_path.rstrip("/")
        self.user, self.password, self.realm = user, password, realm
        self.tls, self.cafile, self.source = tls, cafile, source
        self.nc = 0
        self.conn = None

    def _connect(self):
        src = (self.source, 0) if self.source else None
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.cafile)
            ctx.check_hostname = False  # the test certificate names the address
            return http.client.HTTPSConnection(self.host, self.port, timeout=10, context=ctx,
                                               source_address=src)
        return http.client.HTTPConnection(self.host, self.port, timeout=10, source_address=src)

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def _send(self, method, target, body, headers):
        for attempt in range(2):
            if self.conn is None:
                self.conn = self._connect()
            try:
                self.conn.request(method, target, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                rep = Reply(r.status, r.reason, r.getheaders(), data)
                if (r.getheader("Connection") or "").lower() == "close":
                    self.close()
                return rep
            except (http.client.HTTPException, ConnectionError, OSError):
                self.close()
                if attempt:
                    raise
        raise RuntimeError("unreachable")

    def _digest(self, challenge, method, target):
        params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
        self.nc += 1
        nc = f"{self.nc:08x}"
        cnonce = os.urandom(8).hex()
        realm = params.get("realm", self.realm or "")
        ha1 = _h(f"{self.user}:{realm}:{self.password}")
        ha2 = _h(f"{method}:{target}")
        qop = "auth" if "auth" in params.get("qop", "").split(",") else None
        if qop:
            resp = _h(f"{ha1}:{params['nonce']}:{nc}:{cnonce}:{qop}:{ha2}")
            return (f'Digest username="{self.user}", realm="{realm}", nonce="{params["nonce"]}", '
                    f'uri="{target}", response="{resp}", algorithm=MD5, qop={qop}, nc={nc}, '
                    f'cnonce="{cnonce}"' + (f', opaque="{params["opaque"]}"' if "opaque" in params else ""))
        resp = _h(f"{ha1}:{params['nonce']}:{ha2}")
        return (f'Digest username="{self.user}", realm="{realm}", nonce="{params["nonce"]}", '
                f'uri="{target}", response="{resp}", algorithm=MD5')

    def request(self, method, path, body=None, content_type=None, headers=None, raw_target=False):
        """path: below the root ("resource-lists/users/sip:alice@a.example/index/~~/...");
        the node selector's quotes and brackets are percent-encoded unless raw_target."""
        target = self.root_path + "/" + (path if raw_target else urllib.parse.quote(path, safe="/:@~*()=;,!$&'+?"))
        hdrs = dict(headers or {})
        if content_type:
            hdrs["Content-Type"] = content_type
        if isinstance(body, str):
            body = body.encode()
        rep = self._send(method, target, body, hdrs)
        if rep.status == 401 and self.user:
            ch = rep.header("WWW-Authenticate")
            if ch and ch.lower().startswith("digest"):
                hdrs["Authorization"] = self._digest(ch, method, target)
                rep = self._send(method, target, body, hdrs)
        return rep

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def put(self, path, body, content_type, **kw):
        return self.request("PUT", path, body=body, content_type=content_type, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)
