"""The checks of tests/lib/presence_check.py on literal documents, without the demo network:
what parse_winfo() and parse_pidf() return, and that DOCTYPEs, ill-formed and schema-invalid
documents raise."""

import os

import pytest

import presence_check
from presence_check import parse_pidf, parse_winfo

# The example document of RFC 3858, Section 5 (as python-sipsimple's watcherinfo docstring
# quotes it; the RFC text itself was not at hand).
RFC3858_EXAMPLE = b"""<?xml version="1.0"?>
<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo"
             version="0" state="full">
  <watcher-list resource="sip:professor@example.net" package="presence">
    <watcher status="active"
             id="8ajksjda7s"
             duration-subscribed="509"
             event="approved" >sip:userA@example.net</watcher>
    <watcher status="pending"
             id="hh8juja87s997-ass7"
             display-name="Mr. Subscriber"
             event="subscribe">sip:userB@example.org</watcher>
  </watcher-list>
</watcherinfo>
"""

# Modelled on the example of RFC 3863, Section 3.4 (written from memory, not copied from the RFC).
PIDF_BASIC = """<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:im="urn:ietf:params:xml:ns:pidf:im"
    xmlns:myex="http://id.example.com/presence/"
    entity="pres:someone@example.com">
  <tuple id="bs35r9">
    <status>
      <basic>open</basic>
      <im:im>busy</im:im>
      <myex:location>home</myex:location>
    </status>
    <contact priority="0.8">im:someone@mobilecarrier.net</contact>
    <note xml:lang="en">Don't Disturb Please!</note>
    <note xml:lang="fr">Ne d\u00e9rangez pas, s'il vous pla\u00eet</note>
    <timestamp>2001-10-27T16:49:29Z</timestamp>
  </tuple>
  <tuple id="eg92n8">
    <status>
      <basic>closed</basic>
    </status>
    <contact>mailto:someone@example.com</contact>
  </tuple>
  <note>I'll be in Tokyo next week</note>
</presence>
"""

# Written for these tests: the RFC 4479 data model with RFC 4480 activities and mood.
PIDF_RICH = b"""<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"
    xmlns:c="urn:ietf:params:xml:ns:pidf:cipid"
    entity="sip:alice@a.example">
  <tuple id="t1">
    <status><basic>open</basic></status>
    <dm:deviceID>urn:uuid:00000000-0000-1000-8000-000a95a0e128</dm:deviceID>
    <contact priority="1">sip:alice@127.0.0.1:5060</contact>
    <timestamp>2024-05-01T10:00:00Z</timestamp>
  </tuple>
  <note xml:lang="de">Im B\xc3\xbcro</note>
  <dm:person id="p1">
    <rpid:activities>
      <rpid:note>Call with Bob</rpid:note>
      <rpid:on-the-phone/>
      <rpid:meeting/>
    </rpid:activities>
    <rpid:mood><rpid:happy/></rpid:mood>
    <c:homepage>http://a.example/~alice</c:homepage>
    <dm:note xml:lang="en">Busy until noon</dm:note>
    <dm:timestamp>2024-05-01T10:00:00Z</dm:timestamp>
  </dm:person>
  <dm:device id="d1">
    <dm:deviceID>urn:uuid:00000000-0000-1000-8000-000a95a0e128</dm:deviceID>
  </dm:device>
</presence>
"""

DOCTYPE_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE watcherinfo [<!ENTITY who "sip:mallory@evil.example">]>
<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="0" state="full">
  <watcher-list resource="sip:a@a.example" package="presence">
    <watcher id="x" status="active" event="approved">&who;</watcher>
  </watcher-list>
</watcherinfo>
"""

DOCTYPE_EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE watcherinfo SYSTEM "http://127.0.0.1:9/winfo.dtd">
<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="0" state="full"/>
"""


def winfo(body_lists, version=0, state="full"):
    return (f'<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="{version}" '
            f'state="{state}">{body_lists}</watcherinfo>')


# --- parse_winfo ------------------------------------------------------------------------------

def test_winfo_rfc3858_example():
    assert parse_winfo(RFC3858_EXAMPLE) == {
        "version": 0,
        "state": "full",
        "lists": [{
            "resource": "sip:professor@example.net",
            "package": "presence",
            "watchers": [
                {"id": "8ajksjda7s", "uri": "sip:userA@example.net", "status": "active",
                 "event": "approved", "display_name": None, "duration_subscribed": 509,
                 "expiration": None},
                {"id": "hh8juja87s997-ass7", "uri": "sip:userB@example.org", "status": "pending",
                 "event": "subscribe", "display_name": "Mr. Subscriber",
                 "duration_subscribed": None, "expiration": None},
            ],
        }],
    }


def test_winfo_partial_empty_list_and_escaping():
    body = winfo(
        '<watcher-list resource="sip:alice@a.example" package="presence"/>'
        '<watcher-list resource="sip:bob@a.example;x=&quot;&lt;&amp;&gt;&quot;" package="presence">'
        '<watcher id="w&amp;1" status="terminated" event="timeout" display-name="&quot;Carol&quot; &lt;c&gt;"'
        ' duration-subscribed="0" expiration="18446744073709551615">sip:c&amp;rol@b.example</watcher>'
        '</watcher-list>', version=18446744073709551615, state="partial")
    doc = parse_winfo(body)
    assert doc["version"] == 18446744073709551615
    assert doc["state"] == "partial"
    assert [lst["resource"] for lst in doc["lists"]] == ["sip:alice@a.example",
                                                         'sip:bob@a.example;x="<&>"']
    assert doc["lists"][0]["watchers"] == []
    w = presence_check.watcher(doc, "sip:c&rol@b.example")
    assert w == {"id": "w&1", "uri": "sip:c&rol@b.example", "status": "terminated",
                 "event": "timeout", "display_name": '"Carol" <c>', "duration_subscribed": 0,
                 "expiration": 18446744073709551615}
    assert presence_check.watcher(doc, "sip:c&rol@b.example", resource='sip:bob@a.example;x="<&>"') is w
    with pytest.raises(AssertionError):
        presence_check.watcher(doc, "sip:c&rol@b.example", resource="sip:alice@a.example")


@pytest.mark.parametrize("body", [DOCTYPE_ENTITY, DOCTYPE_EXTERNAL], ids=["entity", "external"])
def test_winfo_refuses_doctype(body):
    with pytest.raises(AssertionError, match="DOCTYPE"):
        parse_winfo(body)


@pytest.mark.parametrize("body", [
    winfo('<watcher-list resource="sip:a@a.example" package="presence">'
          '<watcher id="x" status="active" event="refreshed">sip:b@a.example</watcher></watcher-list>'),
    winfo('<watcher-list resource="sip:a@a.example" package="presence">'
          '<watcher status="active" event="approved">sip:b@a.example</watcher></watcher-list>'),
    winfo('<watcher-list resource="sip:a@a.example" package="presence">'
          '<watcher id="x" status="active" event="approved" expiration="-1">sip:b@a.example</watcher>'
          '</watcher-list>'),
    winfo('<watcher-list resource="sip:a@a.example"/>'),
    '<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" state="full"/>',
    '<watcherinfo xmlns="urn:example:wrong" version="0" state="full"/>',
    '<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="0" state="full">',
    "",
], ids=["bad-event", "no-id", "negative-expiration", "no-package", "no-version", "wrong-ns",
        "ill-formed", "empty"])
def test_winfo_rejects_invalid(body):
    with pytest.raises(AssertionError):
        parse_winfo(body)


# --- parse_pidf -------------------------------------------------------------------------------

def test_pidf_basic():
    doc = parse_pidf(PIDF_BASIC)
    assert doc == {
        "entity": "pres:someone@example.com",
        "tuples": [
            {"id": "bs35r9", "basic": "open", "contact": "im:someone@mobilecarrier.net",
             "priority": "0.8", "deviceID": None,
             "notes": {"en": "Don't Disturb Please!", "fr": "Ne d\u00e9rangez pas, s'il vous pla\u00eet"},
             "timestamp": "2001-10-27T16:49:29Z"},
            {"id": "eg92n8", "basic": "closed", "contact": "mailto:someone@example.com",
             "priority": None, "deviceID": None, "notes": {}, "timestamp": None},
        ],
        "person": None,
        "persons": [],
        "devices": [],
        "notes": {None: "I'll be in Tokyo next week"},
    }


def test_pidf_data_model_and_rpid():
    doc = parse_pidf(PIDF_RICH)
    dev = "urn:uuid:00000000-0000-1000-8000-000a95a0e128"
    assert doc["entity"] == "sip:alice@a.example"
    assert doc["tuples"] == [{"id": "t1", "basic": "open", "contact": "sip:alice@127.0.0.1:5060",
                              "priority": "1", "deviceID": dev, "notes": {},
                              "timestamp": "2024-05-01T10:00:00Z"}]
    assert doc["notes"] == {"de": "Im B\u00fcro"}
    assert doc["person"] == {
        "id": "p1",
        "activities": ["on-the-phone", "meeting"],
        "mood": ["happy"],
        "notes": {"en": "Busy until noon"},
        "timestamp": "2024-05-01T10:00:00Z",
        "other": ["{urn:ietf:params:xml:ns:pidf:cipid}homepage"],
    }
    assert doc["persons"] == [doc["person"]]
    assert doc["devices"] == [{"deviceID": dev, "id": "d1"}]


@pytest.mark.parametrize("body", [
    PIDF_BASIC.replace("<basic>closed</basic>", "<basic>maybe</basic>"),
    PIDF_BASIC.replace(' id="eg92n8"', ""),
    PIDF_BASIC.replace('<tuple id="eg92n8">', '<tuple id="bs35r9">'),  # ids are xs:ID
    PIDF_BASIC.replace(' entity="pres:someone@example.com"', ""),
    PIDF_RICH.replace(b"<dm:deviceID>urn:uuid:00000000-0000-1000-8000-000a95a0e128</dm:deviceID>\n  </dm:device>",
                      b"</dm:device>"),
    PIDF_RICH.replace(b"<rpid:meeting/>", b"<rpid:dancing/>"),
    RFC3858_EXAMPLE,
    PIDF_BASIC.replace("</presence>", ""),
], ids=["bad-basic", "tuple-without-id", "duplicate-id", "no-entity", "device-without-deviceID",
        "unknown-activity", "watcherinfo", "ill-formed"])
def test_pidf_rejects_invalid(body):
    with pytest.raises(AssertionError):
        parse_pidf(body)


def test_pidf_refuses_doctype():
    # Refused before validation: this holds whether or not the PIDF schemas are there yet.
    body = PIDF_BASIC.replace('<?xml version="1.0" encoding="UTF-8"?>\n',
                              '<?xml version="1.0" encoding="UTF-8"?>\n'
                              '<!DOCTYPE presence [<!ENTITY e "x">]>\n')
    assert "<!DOCTYPE" in body
    with pytest.raises(AssertionError, match="DOCTYPE"):
        parse_pidf(body)
