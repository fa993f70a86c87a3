// The RFC 3858 watcherinfo document builder: exact bytes for a few documents, every document
// validated against tests/schemas/watcherinfo.xsd and parsed back field by field.
#include "imps_presence/core/winfo_doc.hpp"

#include "winfo_schema.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

using namespace imps::presence;
using imps::test::ParsedXml;
using imps::test::Winfo;
using imps::test::WinfoValid;

namespace {

constexpr const char *kDecl = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

// The example document of RFC 3858, Section 5 (as python-sipsimple's watcherinfo docstring
// quotes it; the RFC text itself was not at hand).
constexpr const char *kRfc3858Example = R"(<?xml version="1.0"?>
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
)";

WatcherEntry watcher(const std::string &id = "w1", const std::string &uri = "sip:bob@a.example",
		const std::string &status = "active", const std::string &event = "approved")
{
	WatcherEntry e;
	e.id = id;
	e.uri = uri;
	e.status = status;
	e.event = event;
	return e;
}

std::optional<std::string> A(xmlNodePtr n, const char *name) { return ParsedXml::attr(n, name); }

}  // namespace

// --- the helper itself ------------------------------------------------------------------------

TEST(WinfoSchemaHelper, LoadsAndAcceptsTheRfcExample)
{
	ASSERT_TRUE(imps::test::winfo_schema().loaded())
			<< imps::test::winfo_schema().load_error();
	EXPECT_TRUE(WinfoValid(kRfc3858Example));
}

TEST(WinfoSchemaHelper, RejectsInvalidDocuments)
{
	// Unknown event, unknown status, missing id, missing state, missing package, a watcher
	// outside a watcher-list, ill-formed.
	EXPECT_FALSE(WinfoValid(R"(<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="0" state="full">
<watcher-list resource="sip:a@b" package="presence"><watcher id="x" status="active" event="bogus">sip:c@d</watcher></watcher-list></watcherinfo>)"));
	EXPECT_FALSE(WinfoValid(R"(<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="0" state="full">
<watcher-list resource="sip:a@b" package="presence"><watcher id="x" status="gone" event="timeout">sip:c@d</watcher></watcher-list></watcherinfo>)"));
	EXPECT_FALSE(WinfoValid(R"(<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="0" state="full">
<watcher-list resource="sip:a@b" package="presence"><watcher status="active" event="approved">sip:c@d</watcher></watcher-list></watcherinfo>)"));
	EXPECT_FALSE(WinfoValid(R"(<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="0"/>)"));
	EXPECT_FALSE(WinfoValid(R"(<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="0" state="full">
<watcher-list resource="sip:a@b"/></watcherinfo>)"));
	EXPECT_FALSE(WinfoValid(R"(<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="0" state="full">
<watcher id="x" status="active" event="approved">sip:c@d</watcher></watcherinfo>)"));
	EXPECT_FALSE(WinfoValid("<watcherinfo"));
}

// --- exact bytes -------------------------------------------------------------------------------

TEST(WinfoDocument, ExactBytesOneWatcher)
{
	std::string xml = winfo_document(0, true, "sip:alice@a.example", {watcher()});
	EXPECT_EQ(xml, std::string(kDecl)
			+ "<watcherinfo xmlns=\"urn:ietf:params:xml:ns:watcherinfo\" version=\"0\" state=\"full\">"
			  "<watcher-list resource=\"sip:alice@a.example\" package=\"presence\">"
			  "<watcher id=\"w1\" status=\"active\" event=\"approved\">sip:bob@a.example</watcher>"
			  "</watcher-list></watcherinfo>\n");
	EXPECT_TRUE(WinfoValid(xml));
}

TEST(WinfoDocument, ExactBytesEveryAttribute)
{
	WatcherEntry e = watcher("a1b2", "sip:carol@b.example", "pending", "subscribe");
	e.display_name = "Carol";
	e.duration_subscribed = 0;
	e.expiration = 3600;
	std::string xml = winfo_document(7, false, "sip:alice@a.example", {e});
	EXPECT_EQ(xml, std::string(kDecl)
			+ "<watcherinfo xmlns=\"urn:ietf:params:xml:ns:watcherinfo\" version=\"7\" state=\"partial\">"
			  "<watcher-list resource=\"sip:alice@a.example\" package=\"presence\">"
			  "<watcher id=\"a1b2\" status=\"pending\" event=\"subscribe\" display-name=\"Carol\" "
			  "duration-subscribed=\"0\" expiration=\"3600\">sip:carol@b.example</watcher>"
			  "</watcher-list></watcherinfo>\n");
	EXPECT_TRUE(WinfoValid(xml));
}

TEST(WinfoDocument, ExactBytesEmptyList)
{
	// A full document with no watchers still names the resource: the subscriber learns that
	// nobody watches it (RFC 3858, Section 4).
	std::string xml = winfo_document(3, true, "sip:alice@a.example", {});
	EXPECT_EQ(xml, std::string(kDecl)
			+ "<watcherinfo xmlns=\"urn:ietf:params:xml:ns:watcherinfo\" version=\"3\" state=\"full\">"
			  "<watcher-list resource=\"sip:alice@a.example\" package=\"presence\"/>"
			  "</watcherinfo>\n");
	EXPECT_TRUE(WinfoValid(xml));
	Winfo p(xml);
	ASSERT_TRUE(p.ok()) << p.errors();
	EXPECT_EQ(p.nodes("/w:watcherinfo/w:watcher-list").size(), 1u);
	EXPECT_TRUE(p.nodes("//w:watcher").empty());
}

TEST(WinfoDocument, ExactBytesEscaping)
{
	// libxml2's writer escapes '"' in text too; "'" is left alone everywhere.
	WatcherEntry e = watcher("w1", "sip:b&o<b>@a.example;x=\"q\"");
	e.display_name = "\"Bob\" <b&b> 'B'";
	std::string xml = winfo_document(1, true, "sip:al&ice@a.example;p=\"<>\"", {e});
	EXPECT_EQ(xml, std::string(kDecl)
			+ "<watcherinfo xmlns=\"urn:ietf:params:xml:ns:watcherinfo\" version=\"1\" state=\"full\">"
			  "<watcher-list resource=\"sip:al&amp;ice@a.example;p=&quot;&lt;&gt;&quot;\" package=\"presence\">"
			  "<watcher id=\"w1\" status=\"active\" event=\"approved\" "
			  "display-name=\"&quot;Bob&quot; &lt;b&amp;b&gt; 'B'\">"
			  "sip:b&amp;o&lt;b&gt;@a.example;x=&quot;q&quot;</watcher>"
			  "</watcher-list></watcherinfo>\n");
	EXPECT_TRUE(WinfoValid(xml));
}

// --- documents read back -----------------------------------------------------------------------

TEST(WinfoDocument, ReproducesTheRfcExample)
{
	WatcherEntry a = watcher("8ajksjda7s", "sip:userA@example.net", "active", "approved");
	a.duration_subscribed = 509;
	WatcherEntry b = watcher("hh8juja87s997-ass7", "sip:userB@example.org", "pending", "subscribe");
	b.display_name = "Mr. Subscriber";
	std::string xml = winfo_document(0, true, "sip:professor@example.net", {a, b});
	ASSERT_TRUE(WinfoValid(xml));
	Winfo mine(xml);
	Winfo rfc(kRfc3858Example);
	ASSERT_TRUE(mine.ok()) << mine.errors();
	ASSERT_TRUE(rfc.ok()) << rfc.errors();
	for (const char *at : {"version", "state"})
		EXPECT_EQ(A(mine.root(), at), A(rfc.root(), at)) << at;
	for (const char *at : {"resource", "package"})
		EXPECT_EQ(A(mine.node("/w:watcherinfo/w:watcher-list"), at),
				A(rfc.node("/w:watcherinfo/w:watcher-list"), at))
				<< at;
	auto mw = mine.nodes("//w:watcher");
	auto rw = rfc.nodes("//w:watcher");
	ASSERT_EQ(mw.size(), 2u);
	ASSERT_EQ(rw.size(), 2u);
	for (size_t i = 0; i < 2; ++i) {
		SCOPED_TRACE(i);
		for (const char *at : {"id", "status", "event", "display-name", "duration-subscribed",
					 "expiration"})
			EXPECT_EQ(A(mw[i], at), A(rw[i], at)) << at;
		EXPECT_EQ(ParsedXml::text(mw[i]), ParsedXml::text(rw[i]));
		// Same attributes, no extra ones.
		EXPECT_EQ(ParsedXml::attr_names(mw[i]).size(), ParsedXml::attr_names(rw[i]).size());
	}
}

TEST(WinfoDocument, OptionalAttributesOmittedWhenNegative)
{
	WatcherEntry e = watcher();
	e.duration_subscribed = -1;
	e.expiration = -5;
	std::string xml = winfo_document(0, true, "sip:alice@a.example", {e});
	ASSERT_TRUE(WinfoValid(xml));
	Winfo p(xml);
	xmlNodePtr w = p.node("//w:watcher");
	ASSERT_NE(w, nullptr) << xml;
	EXPECT_EQ(ParsedXml::attr_names(w), (std::vector<std::string>{"id", "status", "event"}));
}

TEST(WinfoDocument, LargeNumbers)
{
	WatcherEntry e = watcher();
	e.duration_subscribed = 9223372036854775807LL;  // xs:unsignedLong takes the whole range
	e.expiration = 0;
	std::string xml = winfo_document(18446744073709551615ull, false, "sip:alice@a.example", {e});
	ASSERT_TRUE(WinfoValid(xml));
	Winfo p(xml);
	EXPECT_EQ(A(p.root(), "version"), "18446744073709551615");
	EXPECT_EQ(A(p.root(), "state"), "partial");
	xmlNodePtr w = p.node("//w:watcher");
	EXPECT_EQ(A(w, "duration-subscribed"), "9223372036854775807");
	EXPECT_EQ(A(w, "expiration"), "0");
}

TEST(WinfoDocument, EveryStatusAndEventIsSchemaValid)
{
	for (const char *status : {"pending", "active", "waiting", "terminated"}) {
		for (const char *event : {"subscribe", "approved", "deactivated", "probation", "rejected",
					 "timeout", "giveup", "noresource"}) {
			SCOPED_TRACE(std::string(status) + "/" + event);
			for (bool full : {true, false}) {
				std::string xml = winfo_document(1, full, "sip:alice@a.example",
						{watcher("w1", "sip:bob@a.example", status, event)});
				ASSERT_TRUE(WinfoValid(xml));
				Winfo p(xml);
				xmlNodePtr w = p.node("//w:watcher");
				EXPECT_EQ(A(w, "status"), status);
				EXPECT_EQ(A(w, "event"), event);
				EXPECT_EQ(A(p.root(), "state"), full ? "full" : "partial");
			}
		}
	}
}

TEST(WinfoDocument, StatusAndEventAreWrittenAsGiven)
{
	// No mapping: a value outside RFC 3858's enumerations reaches the document (and the schema
	// rejects it), so a caller's mistake shows in the tests rather than being papered over.
	std::string xml = winfo_document(0, true, "sip:alice@a.example",
			{watcher("w1", "sip:bob@a.example", "active", "refreshed")});
	Winfo p(xml);
	ASSERT_TRUE(p.ok()) << p.errors();
	EXPECT_EQ(A(p.node("//w:watcher"), "event"), "refreshed");
	EXPECT_FALSE(WinfoValid(xml));
}

TEST(WinfoDocument, ManyWatchersKeepOrder)
{
	std::vector<WatcherEntry> ws;
	for (int i = 0; i < 20; ++i)
		ws.push_back(watcher("w" + std::to_string(i), "sip:u" + std::to_string(i) + "@a.example",
				i % 2 ? "pending" : "active", i % 2 ? "subscribe" : "approved"));
	ws[3].status = "terminated";
	ws[3].event = "timeout";
	std::string xml = winfo_document(5, true, "sip:alice@a.example", ws);
	ASSERT_TRUE(WinfoValid(xml));
	Winfo p(xml);
	auto nodes = p.nodes("/w:watcherinfo/w:watcher-list/w:watcher");
	ASSERT_EQ(nodes.size(), ws.size());
	for (size_t i = 0; i < ws.size(); ++i) {
		EXPECT_EQ(A(nodes[i], "id"), ws[i].id);
		EXPECT_EQ(ParsedXml::text(nodes[i]), ws[i].uri);
		EXPECT_EQ(A(nodes[i], "status"), ws[i].status);
		EXPECT_EQ(A(nodes[i], "event"), ws[i].event);
	}
	// One watcher-list, one document element.
	EXPECT_EQ(p.nodes("//w:watcher-list").size(), 1u);
	EXPECT_EQ(ParsedXml::children(p.root()).size(), 1u);
}

TEST(WinfoDocument, UsualSipUrisAreSchemaValid)
{
	for (const char *uri : {"sip:bob@a.example", "sips:bob@a.example:5061;transport=tls",
				 "sip:+15551234567@a.example;user=phone", "sip:bob@127.0.0.1:5060",
				 "sip:b%40o@a.example", "tel:+1-555-123-4567", "pres:bob@a.example",
				 "sip:bob@a.example?Subject=hi&Priority=urgent"}) {
		SCOPED_TRACE(uri);
		std::string xml = winfo_document(0, true, uri, {watcher("w1", uri)});
		ASSERT_TRUE(WinfoValid(xml));
		Winfo p(xml);
		EXPECT_EQ(A(p.node("//w:watcher-list"), "resource"), uri);
		EXPECT_EQ(ParsedXml::text(p.node("//w:watcher")), uri);
	}
}

// --- escaping ----------------------------------------------------------------------------------

TEST(WinfoEscaping, MarkupCharactersRoundTrip)
{
	WatcherEntry e = watcher("id<&>\"'", "sip:b&o<b>@a.example;x=\"<&>\";y='c'");
	e.display_name = "\"Bob\" <the & only> 'B'";
	const std::string resource = "sip:al&ice@a.example;p=\"<&>\"";
	std::string xml = winfo_document(0, true, resource, {e});
	ASSERT_TRUE(WinfoValid(xml));
	Winfo p(xml);
	ASSERT_TRUE(p.ok()) << p.errors();
	EXPECT_EQ(A(p.node("//w:watcher-list"), "resource"), resource);
	xmlNodePtr w = p.node("//w:watcher");
	ASSERT_NE(w, nullptr) << xml;
	EXPECT_EQ(A(w, "id"), e.id);
	EXPECT_EQ(A(w, "display-name"), e.display_name);
	EXPECT_EQ(ParsedXml::text(w), e.uri);
	// Nothing became markup.
	EXPECT_TRUE(ParsedXml::children(w).empty());
	EXPECT_EQ(ParsedXml::children(p.node("//w:watcher-list")).size(), 1u);
}

TEST(WinfoEscaping, ControlCharactersAreReplacedBySpaces)
{
	std::string ctl;
	for (int ch = 1; ch < 0x20; ++ch) ctl += static_cast<char>(ch);
	ctl += '\x7f';
	std::string repl;
	for (int ch = 1; ch < 0x20; ++ch) repl += ch == '\t' ? '\t' : ' ';
	repl += ' ';

	WatcherEntry e = watcher("w" + ctl, "sip:bob@a.example" + ctl);
	e.display_name = "Bo" + ctl + "b";
	std::string xml = winfo_document(0, true, "sip:alice@a.example" + ctl, {e});
	Winfo p(xml);
	ASSERT_TRUE(p.ok()) << p.errors() << xml;
	// TAB is an XML Char and survives (as a character reference inside attributes).
	xmlNodePtr w = p.node("//w:watcher");
	EXPECT_EQ(A(p.node("//w:watcher-list"), "resource"), "sip:alice@a.example" + repl);
	EXPECT_EQ(A(w, "id"), "w" + repl);
	EXPECT_EQ(A(w, "display-name"), "Bo" + repl + "b");
	EXPECT_EQ(ParsedXml::text(w), "sip:bob@a.example" + repl);
}

TEST(WinfoEscaping, CarriageReturnInTextIsNotLost)
{
	// A parser normalises CR LF in character data to LF; the builder makes it two spaces first.
	std::string xml = winfo_document(0, true, "sip:alice@a.example",
			{watcher("w1", "sip:bob@a.example\r\n")});
	Winfo p(xml);
	EXPECT_EQ(ParsedXml::text(p.node("//w:watcher")), "sip:bob@a.example  ");
}

TEST(WinfoEscaping, Utf8DisplayNameRoundTrips)
{
	WatcherEntry e = watcher();
	e.display_name = "J\xc3\xbcrgen \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xef\xb7\x90";
	std::string xml = winfo_document(0, true, "sip:alice@a.example", {e});
	ASSERT_TRUE(WinfoValid(xml));
	Winfo p(xml);
	EXPECT_EQ(A(p.node("//w:watcher"), "display-name"), e.display_name);
}

TEST(WinfoEscaping, InvalidUtf8AndNonCharactersAreReplaced)
{
	struct Case {
		const char *what;
		std::string bad;
		std::string want;  // what a parser reads back
	};
	const std::string R = "\xEF\xBF\xBD";  // U+FFFD
	const Case cases[] = {
			{"Latin-1 byte", "M\xfcller", "M" + R + "ller"},
			{"truncated 2-byte sequence", "cid-\xc3", "cid-" + R},
			{"truncated 3-byte sequence", "a\xe6\x97", "a" + R + R},
			{"lone continuation byte", "a\x80" "b", "a" + R + "b"},
			{"overlong '/'", "a\xc0\xaf" "b", "a" + R + R + "b"},
			{"overlong 3-byte", "a\xe0\x80\xaf", "a" + R + R + R},
			{"beyond U+10FFFF", "a\xf4\x90\x80\x80", "a" + R + R + R + R},
			{"0xff 0xfe", "\xff\xfe", R + R},
			{"U+FFFE", "a\xef\xbf\xbe", "a" + R + R + R},
			{"U+FFFF", "a\xef\xbf\xbf", "a" + R + R + R},
			{"surrogate U+D800", "a\xed\xa0\x80", "a" + R + R + R},
	};
	for (const auto &c : cases) {
		SCOPED_TRACE(c.what);
		WatcherEntry e = watcher("w1", "sip:" + c.bad + "@a.example");
		e.display_name = c.bad;
		std::string xml = winfo_document(0, true, "sip:" + c.bad + "@r.example", {e});
		Winfo p(xml);
		ASSERT_TRUE(p.ok()) << p.errors();
		EXPECT_TRUE(WinfoValid(xml));
		xmlNodePtr w = p.node("//w:watcher");
		EXPECT_EQ(A(w, "display-name"), c.want);
		EXPECT_EQ(ParsedXml::text(w), "sip:" + c.want + "@a.example");
		EXPECT_EQ(A(p.node("//w:watcher-list"), "resource"), "sip:" + c.want + "@r.example");
	}
}

TEST(WinfoEscaping, MalformedUrisStayWellFormed)
{
	// Not every string is an xs:anyURI for libxml2: a stray '%' is not, nor (by its reading of
	// RFC 3986) an IPv6 reference in an opaque "sip:" URI. The builder does not rewrite URIs,
	// so such a document is schema-invalid, but it is always well-formed and carries the URI.
	for (const char *uri : {"sip:bob%@a.example", "sip:bob@[::1]:5060"}) {
		SCOPED_TRACE(uri);
		std::string xml = winfo_document(0, true, "sip:alice@a.example", {watcher("w1", uri)});
		Winfo p(xml);
		ASSERT_TRUE(p.ok()) << p.errors();
		EXPECT_EQ(ParsedXml::text(p.node("//w:watcher")), uri);
	}
}
