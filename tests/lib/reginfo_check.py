"""Reads application/reginfo+xml bodies the way a watcher would: validated against the RFC 3680
and RFC 5628 schemas, parsed without DTDs or network access, every field returned."""

import os

from lxml import etree

SCHEMA_DIR = os.path.join(os.path.dirname(__file__), "..", "schemas")
NS = {"r": "urn:ietf:params:xml:ns:reginfo", "gr": "urn:ietf:params:xml:ns:gruuinfo"}
_schema = None


def schema():
    global _schema
    if _schema is None:
        _schema = etree.XMLSchema(etree.parse(os.path.join(SCHEMA_DIR, "all.xsd")))
    return _schema


def parse(body):
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    doc = etree.fromstring(body, parser)
    s = schema()
    if not s.validate(doc):
        raise AssertionError(f"reginfo not valid against RFC 3680/5628 schema: {s.error_log}\n{body!r}")
    out = {"version": int(doc.get("version")), "state": doc.get("state"), "registrations": []}
    for reg in doc.findall("r:registration", NS):
        r = {"aor": reg.get("aor"), "id": reg.get("id"), "state": reg.get("state"), "contacts": []}
        for c in reg.findall("r:contact", NS):
            d = {k: c.get(k) for k in ("id", "state", "event", "expires", "duration-registered",
                                        "q", "callid", "cseq", "retry-after")}
            d["uri"] = c.findtext("r:uri", namespaces=NS)
            d["display-name"] = c.findtext("r:display-name", namespaces=NS)
            d["params"] = {p.get("name"): (p.text or "") for p in c.findall("r:unknown-param", NS)}
            pg = c.find("gr:pub-gruu", NS)
            tg = c.find("gr:temp-gruu", NS)
            d["pub-gruu"] = pg.get("uri") if pg is not None else None
            d["temp-gruu"] = tg.get("uri") if tg is not None else None
            d["temp-gruu-first-cseq"] = tg.get("first-cseq") if tg is not None else None
            r["contacts"].append(d)
        out["registrations"].append(r)
    return out


def contact(doc, uri):
    for r in doc["registrations"]:
        for c in r["contacts"]:
            if c["uri"] == uri:
                return c
    raise AssertionError(f"no contact {uri} in {doc}")
