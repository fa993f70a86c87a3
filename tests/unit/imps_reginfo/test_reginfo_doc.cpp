// The RFC 3680 reginfo document builder (with RFC 5628 GRUU elements): every document is
// validated against tests/schemas/all.xsd and parsed back field by field.
#include "imps_reginfo/core/reginfo_doc.hpp"

#include "schema_check.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

using namespace imps::reginfo;
using imps::test::ParsedXml;
using imps::test::Reginfo;
using imps::test::SchemaValid;

namespace {

ContactEntry basic_contact(const std::string &id = "c1", const std::string &uri = "sip:alice@127.0.0.1:5060")
{
	ContactEntry c;
	c.id = id;
	c.event = "registered";
	c.uri = uri;
	return c;
}

Document basic_doc()
{
	Document d;
	d.version = 0;
	d.full = true;
	d.aor = "sip:alice@a.example";
	d.reg_id = registration_id("alice@a.example");
	d.state = RegState::Active;
	d.contacts.push_back(basic_contact());
	return d;
}

std::string read_file(const std::string &path)
{
	std::ifstream f(path);
	std::stringstream ss;
	ss << f.rdbuf();
	return ss.str();
}

std::optional<std::string> A(xmlNodePtr n, const char *name) { return ParsedXml::attr(n, name); }

}  // namespace

// --- the helper itself ------------------------------------------------------------------------

TEST(SchemaHelper, LoadsAndAcceptsTheRfcExamples)
{
	ASSERT_TRUE(imps::test::SchemaCheck::instance().loaded())
			<< imps::test::SchemaCheck::instance().load_error();
	for (const char *f : {"rfc3680-sec5.3-example.xml", "rfc3680-sec6-notify3-init.xml",
				 "rfc3680-sec6-notify7-registered.xml", "constructed-gruu.xml"}) {
		std::string path = imps::test::schema_path(std::string("examples/") + f);
		ASSERT_FALSE(path.empty()) << f;
		EXPECT_TRUE(SchemaValid(read_file(path))) << f;
	}
}

TEST(SchemaHelper, RejectsInvalidDocuments)
{
	// Unknown contact event, missing required attribute, misspelled GRUU element, ill-formed.
	EXPECT_FALSE(SchemaValid(R"(<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" version="0" state="full">
<registration aor="sip:a@b" id="r" state="active"><contact id="c" state="active" event="bogus">
<uri>sip:a@c</uri></contact></registration></reginfo>)"));
	EXPECT_FALSE(SchemaValid(R"(<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" state="full"/>)"));
	EXPECT_FALSE(SchemaValid(R"(<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" xmlns:gr="urn:ietf:params:xml:ns:gruuinfo" version="0" state="full">
<registration aor="sip:a@b" id="r" state="active"><contact id="c" state="active" event="registered">
<uri>sip:a@c</uri><gr:temp-gruu uri="sip:t@b;gr"/></contact></registration></reginfo>)"));
	EXPECT_FALSE(SchemaValid("<reginfo"));
}

// --- names, events and ids ---------------------------------------------------------------------

TEST(RegState, Names)
{
	EXPECT_STREQ(reg_state_name(RegState::Init), "init");
	EXPECT_STREQ(reg_state_name(RegState::Active), "active");
	EXPECT_STREQ(reg_state_name(RegState::Terminated), "terminated");
}

TEST(ContactEvent, InsertIsRegisteredByRegisterOtherwiseCreated)
{
	EXPECT_EQ(contact_event(Change::Insert, Cause::Register, 0, 2000, ""), "registered");
	EXPECT_EQ(contact_event(Change::Insert, Cause::Admin, 0, 2000, ""), "created");
	EXPECT_EQ(contact_event(Change::Insert, Cause::Other, 0, 2000, ""), "created");
}

TEST(ContactEvent, UpdateIsRefreshedUnlessExpiryMovesEarlier)
{
	EXPECT_EQ(contact_event(Change::Update, Cause::Register, 2000, 3000, ""), "refreshed");
	EXPECT_EQ(contact_event(Change::Update, Cause::Register, 2000, 2000, ""), "refreshed");
	EXPECT_EQ(contact_event(Change::Update, Cause::Register, 0, 1000, ""), "refreshed");  // unknown prev
	EXPECT_EQ(contact_event(Change::Update, Cause::Register, 3000, 2000, ""), "shortened");
	EXPECT_EQ(contact_event(Change::Update, Cause::Admin, 3000, 2999, ""), "shortened");
	EXPECT_EQ(contact_event(Change::Update, Cause::Other, 3000, 4000, ""), "refreshed");
}

TEST(ContactEvent, UpdateToPermanentIsNotShortened)
{
	// expires_at 0 means a permanent binding (imps_reginfo_capi.h; the builder omits the
	// expires attribute for it). KNOWN BUG: contact_event() compares 0 < prev_expires_at and
	// reports a binding whose expiry was lifted altogether as "shortened".
	EXPECT_EQ(contact_event(Change::Update, Cause::Other, 4000003600LL, 0, ""), "refreshed");
	EXPECT_EQ(contact_event(Change::Update, Cause::Register, 4000003600LL, 0, ""), "refreshed");
}

TEST(ContactEvent, DeleteDependsOnCause)
{
	EXPECT_EQ(contact_event(Change::Delete, Cause::Register, 3000, 0, ""), "unregistered");
	EXPECT_EQ(contact_event(Change::Delete, Cause::Admin, 3000, 0, "rejected"), "rejected");
	EXPECT_EQ(contact_event(Change::Delete, Cause::Admin, 3000, 0, "deactivated"), "deactivated");
	EXPECT_EQ(contact_event(Change::Delete, Cause::Admin, 3000, 0, ""), "deactivated");
	EXPECT_EQ(contact_event(Change::Delete, Cause::Other, 3000, 0, "rejected"), "deactivated");
	// A REGISTER removing a binding is "unregistered" whatever admin_event says.
	EXPECT_EQ(contact_event(Change::Delete, Cause::Register, 3000, 0, "rejected"), "unregistered");
}

TEST(ContactEvent, ExpireIsExpired)
{
	for (Cause c : {Cause::Register, Cause::Admin, Cause::Other})
		EXPECT_EQ(contact_event(Change::Expire, c, 3000, 3000, "rejected"), "expired");
}

TEST(StableIds, RegistrationIdIsDeterministicAndPerAor)
{
	std::string a = registration_id("alice@a.example");
	EXPECT_EQ(a, registration_id("alice@a.example"));
	EXPECT_NE(a, registration_id("bob@a.example"));
	EXPECT_TRUE(std::regex_match(a, std::regex("r[0-9a-f]{16}"))) << a;
}

TEST(StableIds, ContactIdIsPerAorAndBinding)
{
	std::string c1 = contact_id("alice@a.example", "sip:alice@127.0.0.1");
	EXPECT_EQ(c1, contact_id("alice@a.example", "sip:alice@127.0.0.1"));
	EXPECT_NE(c1, contact_id("alice@a.example", "sip:alice@127.0.0.2"));
	EXPECT_NE(c1, contact_id("bob@a.example", "sip:alice@127.0.0.1"));
	EXPECT_TRUE(std::regex_match(c1, std::regex("c[0-9a-f]{16}"))) << c1;
	// The separator keeps (aor, key) pairs apart that concatenate to the same bytes.
	EXPECT_NE(contact_id("a", "bc"), contact_id("ab", "c"));
	// Ids are XML-safe tokens whatever the key holds.
	std::string odd = contact_id("alice@a.example", "<urn:uuid:\"&'>;reg-id=1");
	EXPECT_TRUE(std::regex_match(odd, std::regex("c[0-9a-f]{16}"))) << odd;
}

// --- documents ---------------------------------------------------------------------------------

TEST(Build, MinimalFullDocument)
{
	Document d = basic_doc();
	std::string xml = build(d);
	ASSERT_TRUE(SchemaValid(xml));
	Reginfo p(xml);
	ASSERT_TRUE(p.ok()) << p.errors();

	xmlNodePtr root = p.node("/r:reginfo");
	ASSERT_NE(root, nullptr) << xml;
	EXPECT_EQ(A(root, "version"), "0");
	EXPECT_EQ(A(root, "state"), "full");
	// No GRUU in the document: no gruuinfo namespace declared.
	EXPECT_EQ(xml.find(imps::test::kGruuNs), std::string::npos) << xml;

	auto regs = p.nodes("/r:reginfo/r:registration");
	ASSERT_EQ(regs.size(), 1u);
	EXPECT_EQ(A(regs[0], "aor"), "sip:alice@a.example");
	EXPECT_EQ(A(regs[0], "id"), registration_id("alice@a.example"));
	EXPECT_EQ(A(regs[0], "state"), "active");

	auto cs = p.nodes("r:contact", regs[0]);
	ASSERT_EQ(cs.size(), 1u);
	EXPECT_EQ(A(cs[0], "id"), "c1");
	EXPECT_EQ(A(cs[0], "state"), "active");
	EXPECT_EQ(A(cs[0], "event"), "registered");
	// Optional attributes left at -1 are omitted.
	for (const char *a : {"expires", "duration-registered", "q", "callid", "cseq", "retry-after"})
		EXPECT_FALSE(A(cs[0], a).has_value()) << a;
	auto kids = ParsedXml::children(cs[0]);
	ASSERT_EQ(kids.size(), 1u);
	EXPECT_EQ(ParsedXml::name(kids[0]), "uri");
	EXPECT_EQ(ParsedXml::text(kids[0]), "sip:alice@127.0.0.1:5060");
}

TEST(Build, AllContactAttributes)
{
	Document d = basic_doc();
	ContactEntry &c = d.contacts[0];
	c.expires = 3600;
	c.duration_registered = 0;
	c.q = 800;
	c.callid = "abc123@127.0.0.1";
	c.cseq = 17;
	c.display_name = "Alice";
	std::string xml = build(d);
	ASSERT_TRUE(SchemaValid(xml));
	Reginfo p(xml);
	xmlNodePtr cn = p.node("/r:reginfo/r:registration/r:contact");
	ASSERT_NE(cn, nullptr) << xml;
	EXPECT_EQ(A(cn, "expires"), "3600");
	EXPECT_EQ(A(cn, "duration-registered"), "0");
	EXPECT_EQ(A(cn, "q"), "0.8");
	EXPECT_EQ(A(cn, "callid"), "abc123@127.0.0.1");
	EXPECT_EQ(A(cn, "cseq"), "17");
	auto kids = ParsedXml::children(cn);
	ASSERT_EQ(kids.size(), 2u);
	EXPECT_EQ(ParsedXml::name(kids[0]), "uri");
	EXPECT_EQ(ParsedXml::name(kids[1]), "display-name");
	EXPECT_EQ(ParsedXml::text(kids[1]), "Alice");
}

TEST(Build, QValues)
{
	const std::pair<int, const char *> cases[] = {{1000, "1.0"}, {0, "0.0"}, {500, "0.5"},
			{800, "0.8"}, {850, "0.85"}, {855, "0.855"}, {5, "0.005"}, {50, "0.05"},
			{100, "0.1"}, {999, "0.999"}, {10, "0.01"}};
	for (const auto &[q, want] : cases) {
		Document d = basic_doc();
		d.contacts[0].q = q;
		std::string xml = build(d);
		ASSERT_TRUE(SchemaValid(xml));
		Reginfo p(xml);
		EXPECT_EQ(A(p.node("//r:contact"), "q"), want) << "q=" << q;
	}
}

TEST(Build, EveryContactEventAndStateIsSchemaValid)
{
	for (const char *ev : {"registered", "created", "refreshed", "shortened", "expired",
				 "deactivated", "probation", "unregistered", "rejected"}) {
		for (bool active : {true, false}) {
			Document d = basic_doc();
			d.contacts[0].event = ev;
			d.contacts[0].active = active;
			d.contacts[0].expires = active ? 100 : 0;
			d.state = active ? RegState::Active : RegState::Terminated;
			std::string xml = build(d);
			ASSERT_TRUE(SchemaValid(xml)) << ev;
			Reginfo p(xml);
			xmlNodePtr c = p.node("//r:contact");
			EXPECT_EQ(A(c, "event"), ev);
			EXPECT_EQ(A(c, "state"), active ? "active" : "terminated");
			EXPECT_EQ(A(p.node("//r:registration"), "state"), active ? "active" : "terminated");
		}
	}
}

TEST(Build, InitRegistrationWithoutContactsMatchesRfc3680Notify3)
{
	Document d;
	d.aor = "sip:joe@example.com";
	d.reg_id = "a7";
	d.state = RegState::Init;
	std::string xml = build(d);
	ASSERT_TRUE(SchemaValid(xml));
	Reginfo mine(xml);
	Reginfo rfc(read_file(imps::test::schema_path("examples/rfc3680-sec6-notify3-init.xml")));
	ASSERT_TRUE(rfc.ok());
	for (const char *a : {"version", "state"})
		EXPECT_EQ(A(mine.node("/r:reginfo"), a), A(rfc.node("/r:reginfo"), a)) << a;
	for (const char *a : {"aor", "id", "state"})
		EXPECT_EQ(A(mine.node("/r:reginfo/r:registration"), a),
				A(rfc.node("/r:reginfo/r:registration"), a))
				<< a;
	EXPECT_TRUE(mine.nodes("//r:contact").empty());
}

TEST(Build, PartialStateAndVersion)
{
	Document d = basic_doc();
	d.full = false;
	d.version = 18446744073709551615ull;  // version is nonNegativeInteger: the full range works
	std::string xml = build(d);
	ASSERT_TRUE(SchemaValid(xml));
	Reginfo p(xml);
	EXPECT_EQ(A(p.root(), "state"), "partial");
	EXPECT_EQ(A(p.root(), "version"), "18446744073709551615");
}

TEST(Build, MultipleContactsKeepOrder)
{
	Document d = basic_doc();
	d.contacts.push_back(basic_contact("c2", "sip:alice@127.0.0.2"));
	d.contacts.push_back(basic_contact("c3", "sips:alice@pc33.a.example:5061;transport=tls"));
	d.contacts[1].active = false;
	d.contacts[1].event = "expired";
	std::string xml = build(d);
	ASSERT_TRUE(SchemaValid(xml));
	Reginfo p(xml);
	auto cs = p.nodes("//r:contact");
	ASSERT_EQ(cs.size(), 3u);
	EXPECT_EQ(A(cs[0], "id"), "c1");
	EXPECT_EQ(A(cs[1], "id"), "c2");
	EXPECT_EQ(A(cs[1], "state"), "terminated");
	EXPECT_EQ(A(cs[1], "event"), "expired");
	EXPECT_EQ(A(cs[2], "id"), "c3");
	EXPECT_EQ(ParsedXml::text(p.node("r:uri", cs[2])), "sips:alice@pc33.a.example:5061;transport=tls");
}

TEST(Build, Ipv6ContactUriIsWrittenVerbatim)
{
	// Not schema-validated: libxml2 checks xs:anyURI with RFC 3986 path rules, which reject
	// '[' in an opaque URI such as "sip:alice@[2001:db8::1]"; XSD 1.0 refers to RFC 2396 as
	// amended by RFC 2732, which admits it. A validator limitation, not a builder bug: the
	// URI must be reported as registered.
	Document d = basic_doc();
	d.contacts[0].uri = "sips:alice@[2001:db8::1]:5061;transport=tls";
	d.contacts[0].pub_gruu = "sip:alice@a.example;gr=urn:uuid:1";
	std::string xml = build(d);
	Reginfo p(xml);
	ASSERT_TRUE(p.ok()) << p.errors();
	EXPECT_EQ(ParsedXml::text(p.node("//r:contact/r:uri")), "sips:alice@[2001:db8::1]:5061;transport=tls");
	// With the IPv6 literal swapped for a host name the same document is schema-valid.
	d.contacts[0].uri = "sips:alice@v6.a.example:5061;transport=tls";
	EXPECT_TRUE(SchemaValid(build(d)));
}

TEST(Build, UnknownParamsInOrderWithFlagsEmpty)
{
	Document d = basic_doc();
	d.contacts[0].params = {{"+sip.instance", "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"},
			{"audio", ""}, {"methods", "INVITE,ACK"}};
	std::string xml = build(d);
	ASSERT_TRUE(SchemaValid(xml));
	Reginfo p(xml);
	auto ups = p.nodes("//r:contact/r:unknown-param");
	ASSERT_EQ(ups.size(), 3u);
	EXPECT_EQ(A(ups[0], "name"), "+sip.instance");
	EXPECT_EQ(ParsedXml::text(ups[0]), "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>");
	EXPECT_EQ(A(ups[1], "name"), "audio");
	EXPECT_EQ(ParsedXml::text(ups[1]), "");
	EXPECT_EQ(A(ups[2], "name"), "methods");
	EXPECT_EQ(ParsedXml::text(ups[2]), "INVITE,ACK");
}

TEST(Build, GruuElementsInGruuinfoNamespaceAfterParams)
{
	Document d = basic_doc();
	ContactEntry &c = d.contacts[0];
	c.display_name = "Alice";
	c.params = {{"+sip.instance", "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"}};
	c.pub_gruu = "sip:alice@a.example;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6";
	c.temp_gruu = "sip:tgruu.7hs==jd7vnzga5w7fajsc7-ajd6fabz0f8g5@a.example;gr";
	c.temp_gruu_first_cseq = 9;
	std::string xml = build(d);
	ASSERT_TRUE(SchemaValid(xml));
	Reginfo p(xml);
	xmlNodePtr cn = p.node("//r:contact");
	auto kids = ParsedXml::children(cn);
	ASSERT_EQ(kids.size(), 5u) << xml;
	EXPECT_EQ(ParsedXml::name(kids[0]), "uri");
	EXPECT_EQ(ParsedXml::name(kids[1]), "display-name");
	EXPECT_EQ(ParsedXml::name(kids[2]), "unknown-param");
	EXPECT_EQ(ParsedXml::name(kids[3]), "pub-gruu");
	EXPECT_EQ(ParsedXml::ns_uri(kids[3]), imps::test::kGruuNs);
	EXPECT_EQ(A(kids[3], "uri"), c.pub_gruu);
	EXPECT_EQ(ParsedXml::name(kids[4]), "temp-gruu");
	EXPECT_EQ(ParsedXml::ns_uri(kids[4]), imps::test::kGruuNs);
	EXPECT_EQ(A(kids[4], "uri"), c.temp_gruu);
	EXPECT_EQ(A(kids[4], "first-cseq"), "9");
}

TEST(Build, TempGruuWithoutFirstCseqGetsZero)
{
	Document d = basic_doc();
	d.contacts[0].temp_gruu = "sip:tgruu.x@a.example;gr";
	std::string xml = build(d);
	ASSERT_TRUE(SchemaValid(xml));  // first-cseq is required by RFC 5628
	Reginfo p(xml);
	EXPECT_EQ(A(p.node("//gr:temp-gruu"), "first-cseq"), "0");
	EXPECT_TRUE(p.nodes("//gr:pub-gruu").empty());
}

TEST(Build, GruuNamespaceDeclaredOnlyWhenUsed)
{
	Document d = basic_doc();
	d.contacts.push_back(basic_contact("c2", "sip:alice@127.0.0.2"));
	d.contacts[1].pub_gruu = "sip:alice@a.example;gr=urn:uuid:1";
	std::string xml = build(d);
	ASSERT_TRUE(SchemaValid(xml));
	Reginfo p(xml);
	EXPECT_EQ(p.nodes("//gr:pub-gruu").size(), 1u);
	EXPECT_EQ(p.nodes("//r:contact[1]/gr:pub-gruu").size(), 0u);
	EXPECT_EQ(p.nodes("//r:contact[2]/gr:pub-gruu").size(), 1u);
}

// --- escaping ----------------------------------------------------------------------------------

TEST(Escaping, MarkupCharactersRoundTrip)
{
	Document d = basic_doc();
	d.aor = "sip:al&ice@a.example";
	ContactEntry &c = d.contacts[0];
	c.uri = "sip:alice@127.0.0.1;x=\"<a&b>\";y='c'";
	c.display_name = "\"Alice\" <the & only> 'A'";
	c.callid = "id<&>\"'@host";
	c.params = {{"x\"<&>", "v\"<&>'"}};
	c.pub_gruu = "sip:alice@a.example;gr=\"<&>\"";
	c.temp_gruu = "sip:t&<>@a.example;gr";
	c.temp_gruu_first_cseq = 1;
	std::string xml = build(d);
	ASSERT_TRUE(SchemaValid(xml));
	Reginfo p(xml);
	ASSERT_TRUE(p.ok()) << p.errors();
	EXPECT_EQ(A(p.node("//r:registration"), "aor"), d.aor);
	xmlNodePtr cn = p.node("//r:contact");
	EXPECT_EQ(A(cn, "callid"), c.callid);
	EXPECT_EQ(ParsedXml::text(p.node("r:uri", cn)), c.uri);
	EXPECT_EQ(ParsedXml::text(p.node("r:display-name", cn)), c.display_name);
	xmlNodePtr up = p.node("r:unknown-param", cn);
	EXPECT_EQ(A(up, "name"), "x\"<&>");
	EXPECT_EQ(ParsedXml::text(up), "v\"<&>'");
	EXPECT_EQ(A(p.node("gr:pub-gruu", cn), "uri"), c.pub_gruu);
	EXPECT_EQ(A(p.node("gr:temp-gruu", cn), "uri"), c.temp_gruu);
	// Nothing became markup: exactly the expected elements.
	EXPECT_EQ(ParsedXml::children(cn).size(), 5u);
}

TEST(Escaping, ControlCharactersStillGiveWellFormedXml)
{
	std::string ctl;
	for (int ch = 1; ch < 0x20; ++ch) ctl += static_cast<char>(ch);
	ctl += '\x7f';
	Document d = basic_doc();
	d.aor = "sip:alice@a.example" + ctl;
	ContactEntry &c = d.contacts[0];
	c.uri = "sip:alice@127.0.0.1" + ctl;
	c.display_name = "Al" + ctl + "ice";
	c.callid = "cid" + ctl;
	c.params = {{"p" + ctl, "v" + ctl}};
	c.pub_gruu = "sip:g@a.example;gr" + ctl;
	std::string xml = build(d);
	ASSERT_TRUE(SchemaValid(xml));
	Reginfo p(xml);
	ASSERT_TRUE(p.ok()) << p.errors();

	// Control characters other than TAB are replaced by spaces; TAB is a legal XML character
	// and survives (as a character reference inside attributes).
	std::string repl;
	for (int ch = 1; ch < 0x20; ++ch) repl += ch == '\t' ? '\t' : ' ';
	repl += ' ';
	xmlNodePtr cn = p.node("//r:contact");
	EXPECT_EQ(A(p.node("//r:registration"), "aor"), "sip:alice@a.example" + repl);
	EXPECT_EQ(A(cn, "callid"), "cid" + repl);
	EXPECT_EQ(ParsedXml::text(p.node("r:uri", cn)), "sip:alice@127.0.0.1" + repl);
	EXPECT_EQ(ParsedXml::text(p.node("r:display-name", cn)), "Al" + repl + "ice");
	xmlNodePtr up = p.node("r:unknown-param", cn);
	EXPECT_EQ(A(up, "name"), "p" + repl);
	EXPECT_EQ(ParsedXml::text(up), "v" + repl);
	EXPECT_EQ(A(p.node("gr:pub-gruu", cn), "uri"), "sip:g@a.example;gr" + repl);
}

TEST(Escaping, CarriageReturnInTextIsNotLost)
{
	// CR in character data would be normalised away by a parser unless escaped; clean()
	// turns it into a space before that matters.
	Document d = basic_doc();
	d.contacts[0].display_name = "a\r\nb";
	std::string xml = build(d);
	ASSERT_TRUE(SchemaValid(xml));
	Reginfo p(xml);
	EXPECT_EQ(ParsedXml::text(p.node("//r:display-name")), "a  b");
}

TEST(Escaping, Utf8DisplayNameRoundTrips)
{
	Document d = basic_doc();
	d.contacts[0].display_name = "J\xc3\xbcrgen \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80";
	std::string xml = build(d);
	ASSERT_TRUE(SchemaValid(xml));
	Reginfo p(xml);
	EXPECT_EQ(ParsedXml::text(p.node("//r:display-name")), d.contacts[0].display_name);
}

TEST(Escaping, InvalidUtf8FromTheWireStillGivesWellFormedXml)
{
	// Call-ID, display name, Contact URI and parameters are bytes from the network; a stray
	// Latin-1 byte or a truncated sequence must not make the NOTIFY body ill-formed
	// (reginfo_doc.cpp's clean() promises that "a hostile Call-ID or display name cannot make
	// the document ill-formed"). KNOWN BUG: clean() only replaces C0 controls and DEL; bytes
	// >= 0x80 reach libxml2's writer unchanged and are copied verbatim into a document that
	// declares encoding="UTF-8", so it is not well-formed (XML 1.0, 4.3.3: fatal error).
	struct Case {
		const char *what;
		std::string bad;
	};
	const Case cases[] = {{"Latin-1 byte", "M\xfcller"}, {"truncated 2-byte sequence", "cid-\xc3"},
			{"lone continuation byte", "a\x80" "b"}, {"overlong '/'", "a\xc0\xaf" "b"},
			{"0xff 0xfe", "\xff\xfe"}};
	for (const auto &c : cases) {
		for (const char *field : {"display-name", "callid", "uri", "unknown-param"}) {
			SCOPED_TRACE(std::string(c.what) + " in " + field);
			Document d = basic_doc();
			ContactEntry &ce = d.contacts[0];
			std::string f = field;
			if (f == "display-name") ce.display_name = c.bad;
			if (f == "callid") ce.callid = c.bad;
			if (f == "uri") ce.uri = "sip:" + c.bad + "@127.0.0.1";
			if (f == "unknown-param") ce.params = {{"x", c.bad}};
			std::string xml = build(d);
			Reginfo p(xml);
			EXPECT_TRUE(p.ok()) << p.errors();
		}
	}
}

TEST(Escaping, NonXmlCharactersStillGiveWellFormedXml)
{
	// Well-formed UTF-8 that encodes no XML Char (XML 1.0, 2.2): U+FFFE, U+FFFF and UTF-16
	// surrogates. KNOWN BUG: clean() passes them through, and the document is ill-formed.
	for (const std::string bad : {"a\xef\xbf\xbe", "a\xef\xbf\xbf", "a\xed\xa0\x80"}) {
		SCOPED_TRACE(bad);
		Document d = basic_doc();
		d.contacts[0].display_name = bad;
		d.contacts[0].callid = bad;
		Reginfo p(build(d));
		EXPECT_TRUE(p.ok()) << p.errors();
	}
}

// --- parse_contact_params ------------------------------------------------------------------------

namespace {
std::vector<std::pair<std::string, std::string>> pp(const std::string &raw)
{
	std::vector<std::pair<std::string, std::string>> out;
	for (const auto &p : parse_contact_params(raw)) out.emplace_back(p.name, p.value);
	return out;
}
using PV = std::vector<std::pair<std::string, std::string>>;
}  // namespace

TEST(ParseContactParams, Empty)
{
	EXPECT_TRUE(pp("").empty());
	EXPECT_TRUE(pp(";").empty());
	EXPECT_TRUE(pp(" ; ;; ").empty());
}

TEST(ParseContactParams, TokensFlagsAndQuotedStrings)
{
	EXPECT_EQ(pp(";a=b;c;d=\"x y\""), (PV{{"a", "b"}, {"c", ""}, {"d", "x y"}}));
	EXPECT_EQ(pp("a=b"), (PV{{"a", "b"}}));
	EXPECT_EQ(pp(" ; a = b ; c "), (PV{{"a", "b"}, {"c", ""}}));
	// Backslash escapes inside quoted strings are undone; ';' inside quotes is not a separator.
	EXPECT_EQ(pp(";d=\"a\\\"b;c\\\\\";e"), (PV{{"d", "a\"b;c\\"}, {"e", ""}}));
	// An unterminated quoted string takes the rest.
	EXPECT_EQ(pp(";d=\"abc"), (PV{{"d", "abc"}}));
}

TEST(ParseContactParams, DropsExpiresQAndGruusCaseInsensitively)
{
	EXPECT_EQ(pp(";expires=3600;q=0.5;pub-gruu=\"sip:a;gr=x\";temp-gruu=\"sip:t;gr\";audio"),
			(PV{{"audio", ""}}));
	EXPECT_EQ(pp(";EXPIRES=1;Q=1;Pub-Gruu=\"x\";TEMP-GRUU=\"y\""), PV{});
}

TEST(ParseContactParams, KeepsInstanceRegIdAndFeatureTags)
{
	EXPECT_EQ(pp(";+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\";reg-id=1;"
				 "+g.3gpp.smsip;methods=\"INVITE,MESSAGE\""),
			(PV{{"+sip.instance", "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"}, {"reg-id", "1"},
					{"+g.3gpp.smsip", ""}, {"methods", "INVITE,MESSAGE"}}));
}

TEST(ParseContactParams, KeepsNameCaseAndEmptyValue)
{
	EXPECT_EQ(pp(";Audio;x="), (PV{{"Audio", ""}, {"x", ""}}));
	EXPECT_EQ(pp(";=v;a"), (PV{{"a", ""}}));  // nameless parameter dropped
}

TEST(ParseContactParams, ParsedParamsBuildSchemaValidDocument)
{
	Document d = basic_doc();
	d.contacts[0].params = parse_contact_params(
			";+sip.instance=\"<urn:uuid:1>\";reg-id=2;+sip.methods=\"<&>\";video");
	std::string xml = build(d);
	ASSERT_TRUE(SchemaValid(xml));
	Reginfo p(xml);
	auto ups = p.nodes("//r:unknown-param");
	ASSERT_EQ(ups.size(), 4u);
	EXPECT_EQ(A(ups[2], "name"), "+sip.methods");
	EXPECT_EQ(ParsedXml::text(ups[2]), "<&>");
}
