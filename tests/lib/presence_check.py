"""Reads application/pidf+xml (RFC 3863, with the RFC 4479 data model and RFC 4480 RPID) and
application/watcherinfo+xml (RFC 3858) bodies the way a watcher would: parsed without DTDs,
entities or network access (a DOCTYPE is refused outright), validated against the RFC schemas
in tests/schemas, every field returned. Any problem raises AssertionError."""

import os

from lxml import etree

SCHEMA_DIR = os.path.join(os.path.dirname(__file__), "..", "schemas")
PIDF_SCHEMA = "presence-all.xsd"  # imports pidf.xsd, data-model.xsd, rpid.xsd
WINFO_SCHEMA = "watcherinfo.xsd"
NS = {
    "p": "urn:ietf:params:xml:ns:pidf",
    "dm": "urn:ietf:params:xml:ns:pidf:data-model",
    "rpid": "urn:ietf:params:xml:ns:pidf:rpid",
    "w": "urn:ietf:params:xml:ns:watcherinfo",
}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_schemas = {}


def schema_path(name):
    """tests/schemas/<name>, or <name> in $IMPS_SCHEMA_DIR when it is there (as the C++ helpers)."""
    d = os.environ.get("IMPS_SCHEMA_DIR")
    if d and os.path.exists(os.path.join(d, name)):
        return os.path.join(d, name)
    return os.path.join(SCHEMA_DIR, name)


def schema(name):
    path = schema_path(name)
    if path not in _schemas:
        _schemas[path] = etree.XMLSchema(etree.parse(path))
    return _schemas[path]


def _parse(body, schema_name, what):
    if isinstance(body, str):
        body = body.encode("utf-8")
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    try:
        doc = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as e:
        raise AssertionError(f"{what} not well-formed: {e}\n{body!r}") from e
    info = doc.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise AssertionError(f"{what} has a DOCTYPE\n{body!r}")
    s = schema(schema_name)
    if not s.validate(doc):
        raise AssertionError(f"{what} not valid against {schema_name}: {s.error_log}\n{body!r}")
    return doc


def _lang(el):
    """xml:lang in scope for el (it is inherited), None when there is none."""
    while el is not None:
        if XML_LANG in el.attrib:
            return el.get(XML_LANG)
        el = el.getparent()
    return None


def _notes(parent, path):
    return {_lang(n): n.text or "" for n in parent.findall(path, NS)}


def _local_names(parent, path, skip):
    return [etree.QName(c).localname for el in parent.findall(path, NS) for c in el
            if isinstance(c.tag, str) and c.tag != skip]


def parse_pidf(body):
    """{entity, tuples: [{id, basic, contact, priority, deviceID, notes, timestamp}],
    person: {id, activities, mood, notes, timestamp, other} or None (the first dm:person),
    persons: [every dm:person], devices: [{deviceID, id}], notes}.
    notes are {xml:lang or None: text}; activities and mood are the local names of the RPID
    elements (rpid:note left out); other is the Clark names ("{ns}local") of the person's other
    children; priority and timestamps are the document's strings."""
    doc = _parse(body, PIDF_SCHEMA, "PIDF")
    out = {"entity": doc.get("entity"), "tuples": [], "person": None, "persons": [],
           "devices": [], "notes": _notes(doc, "p:note")}
    for t in doc.findall("p:tuple", NS):
        contact = t.find("p:contact", NS)
        out["tuples"].append({
            "id": t.get("id"),
            "basic": t.findtext("p:status/p:basic", namespaces=NS),
            "contact": contact.text if contact is not None else None,
            "priority": contact.get("priority") if contact is not None else None,
            "deviceID": t.findtext("dm:deviceID", namespaces=NS),
            "notes": _notes(t, "p:note"),
            "timestamp": t.findtext("p:timestamp", namespaces=NS),
        })
    known = {etree.QName(NS["rpid"], "activities").text, etree.QName(NS["rpid"], "mood").text,
             etree.QName(NS["dm"], "note").text, etree.QName(NS["dm"], "timestamp").text}
    rpid_note = etree.QName(NS["rpid"], "note").text
    for p in doc.findall("dm:person", NS):
        out["persons"].append({
            "id": p.get("id"),
            "activities": _local_names(p, "rpid:activities", rpid_note),
            "mood": _local_names(p, "rpid:mood", rpid_note),
            "notes": _notes(p, "dm:note"),
            "timestamp": p.findtext("dm:timestamp", namespaces=NS),
            "other": [c.tag for c in p if isinstance(c.tag, str) and c.tag not in known],
        })
    out["person"] = out["persons"][0] if out["persons"] else None
    for d in doc.findall("dm:device", NS):
        out["devices"].append({"deviceID": d.findtext("dm:deviceID", namespaces=NS), "id": d.get("id")})
    return out


def _int(v):
    return int(v) if v is not None else None


def parse_winfo(body):
    """{version, state, lists: [{resource, package, watchers: [{id, uri, status, event,
    display_name, duration_subscribed, expiration}]}]}; numbers are ints (None when absent),
    uri is the watcher element's text as sent."""
    doc = _parse(body, WINFO_SCHEMA, "watcherinfo")
    out = {"version": int(doc.get("version")), "state": doc.get("state"), "lists": []}
    for wl in doc.findall("w:watcher-list", NS):
        lst = {"resource": wl.get("resource"), "package": wl.get("package"), "watchers": []}
        for w in wl.findall("w:watcher", NS):
            lst["watchers"].append({
                "id": w.get("id"),
                "uri": w.text or "",
                "status": w.get("status"),
                "event": w.get("event"),
                "display_name": w.get("display-name"),
                "duration_subscribed": _int(w.get("duration-subscribed")),
                "expiration": _int(w.get("expiration")),
            })
        out["lists"].append(lst)
    return out


def watcher(doc, uri, resource=None):
    """The watcher with this URI in a parse_winfo() result (in the list of resource, if given)."""
    for lst in doc["lists"]:
        if resource is not None and lst["resource"] != resource:
            continue
        for w in lst["watchers"]:
            if w["uri"] == uri:
                return w
    raise AssertionError(f"no watcher {uri} in {doc}")
