// Users' pres-rules in imps_presence: the privacy filtering of RFC 5025 section 3.3
// (filter_document, validated against the PIDF schemas and idempotent as section 4 asks), the
// copies of the rule documents (Policy, in-process mode, kept while the List and Policy
// Server's change count stands), the layering with the operator's SQL rules (Engine::decide,
// on the real Redis store), and the xcap-diff documents and selections (RFC 5874/5875).
#include "pidf_schema.hpp"

#include "../common/redis_server.hpp"

#include "imps_presence/core/engine.hpp"
#include "imps_presence/core/pidf.hpp"
#include "imps_presence/core/policy.hpp"
#include "imps_presence/core/pres_rules.hpp"
#include "imps_presence/core/xcap_diff.hpp"

#include "imps/redis.hpp"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

using namespace imps::presence;
using imps::test::ParsedXml;
using imps::test::PidfSchemaValid;

namespace {

const char *kDoc = R"(<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
  xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" xmlns:x="urn:example:ext" entity="sip:alice@a.example">
 <tuple id="phone"><status><basic>open</basic></status><dm:deviceID>urn:uuid:1</dm:deviceID>
  <x:secret>1</x:secret><contact>sip:alice@a.example</contact><note>on the phone</note>
  <timestamp>2026-12-01T10:00:00Z</timestamp></tuple>
 <tuple id="chat"><status><basic>open</basic></status><rpid:class>work</rpid:class>
  <contact>im:alice@a.example</contact></tuple>
 <dm:person id="me"><rpid:activities><rpid:meeting/></rpid:activities><rpid:mood><rpid:happy/></rpid:mood>
  <dm:note>busy</dm:note><dm:timestamp>2026-12-01T10:00:00Z</dm:timestamp></dm:person>
 <dm:device id="pc"><rpid:class>biz</rpid:class><dm:deviceID>urn:uuid:1</dm:deviceID><dm:note>desk</dm:note></dm:device>
 <dm:device id="tv"><dm:deviceID>urn:uuid:2</dm:deviceID></dm:device>
 <note>top</note>
</presence>)";

const std::vector<std::pair<std::string, std::string>> kNs = {{"p", "urn:ietf:params:xml:ns:pidf"},
		{"dm", "urn:ietf:params:xml:ns:pidf:data-model"}, {"rpid", "urn:ietf:params:xml:ns:pidf:rpid"},
		{"x", "urn:example:ext"}};

size_t count(const std::string &doc, const std::string &xpath)
{
	ParsedXml x(doc, kNs);
	return x.nodes(xpath).size();
}

Grant grant(std::initializer_list<std::pair<std::string, std::string>> services = {},
		std::initializer_list<std::string> attributes = {})
{
	Grant g;
	g.matched = true;
	g.sub_handling = 30;
	for (const auto &s : services) g.services.insert(s);
	for (const auto &a : attributes) g.attributes.insert(a);
	return g;
}

TEST(FilterDocument, NothingGrantedLeavesTheEntityOnly)
{
	std::string f = filter_document(kDoc, grant());
	EXPECT_TRUE(PidfSchemaValid(f));
	EXPECT_EQ(count(f, "/p:presence/*"), 0u) << f;
	ParsedXml x(f, kNs);
	EXPECT_EQ(x.attr(x.node("/p:presence"), "entity").value_or(""), "sip:alice@a.example");
}

TEST(FilterDocument, ServicesBySchemeClassOccurrenceAndUri)
{
	std::string f = filter_document(kDoc, grant({{"service-uri-scheme", "sip"}}));
	EXPECT_EQ(count(f, "/p:presence/p:tuple"), 1u);
	EXPECT_EQ(count(f, "/p:presence/p:tuple[@id='phone']"), 1u);
	// always reported: contact, basic, timestamp; not granted: note, deviceID, the unknown one
	EXPECT_EQ(count(f, "//p:tuple/p:contact"), 1u);
	EXPECT_EQ(count(f, "//p:tuple/p:status/p:basic"), 1u);
	EXPECT_EQ(count(f, "//p:tuple/p:timestamp"), 1u);
	EXPECT_EQ(count(f, "//p:tuple/p:note"), 0u);
	EXPECT_EQ(count(f, "//p:tuple/dm:deviceID"), 0u);
	EXPECT_EQ(count(f, "//x:secret"), 0u);
	EXPECT_EQ(count(f, "//dm:person") + count(f, "//dm:device") + count(f, "/p:presence/p:note"), 0u);
	EXPECT_TRUE(PidfSchemaValid(f));

	EXPECT_EQ(count(filter_document(kDoc, grant({{"class", "work"}})), "//p:tuple[@id='chat']"), 1u);
	EXPECT_EQ(count(filter_document(kDoc, grant({{"class", "work"}})), "//p:tuple"), 1u);
	EXPECT_EQ(count(filter_document(kDoc, grant({{"occurrence-id", "chat"}})), "//p:tuple[@id='chat']"), 1u);
	EXPECT_EQ(count(filter_document(kDoc, grant({{"service-uri", "SIP:alice@A.EXAMPLE"}})), "//p:tuple[@id='phone']"), 1u);
	EXPECT_EQ(count(filter_document(kDoc, grant({{"service-uri", "sip:bob@a.example"}})), "//p:tuple"), 0u);
}

TEST(FilterDocument, AttributesPersonsDevices)
{
	Grant g = grant({{"service-uri-scheme", "sip"}}, {"note", "deviceID", "unknown:urn:example:ext secret"});
	g.all_persons = true;
	g.attributes.insert("activities");
	g.devices.insert({"class", "biz"});
	std::string f = filter_document(kDoc, g);
	EXPECT_TRUE(PidfSchemaValid(f)) << f;
	EXPECT_EQ(count(f, "//p:tuple/p:note"), 1u);
	EXPECT_EQ(count(f, "//p:tuple/dm:deviceID"), 1u);
	EXPECT_EQ(count(f, "//p:tuple/x:secret"), 1u);
	EXPECT_EQ(count(f, "//dm:person/rpid:activities"), 1u);
	EXPECT_EQ(count(f, "//dm:person/rpid:mood"), 0u);
	EXPECT_EQ(count(f, "//dm:person/dm:note"), 1u);  // provide-note covers persons too
	EXPECT_EQ(count(f, "//dm:person/dm:timestamp"), 1u);
	EXPECT_EQ(count(f, "//dm:device"), 1u);
	EXPECT_EQ(count(f, "//dm:device[@id='pc']/dm:deviceID"), 1u);  // always, in a device
	// provide-class not given, but the class that granted the device stays (idempotence)
	EXPECT_EQ(count(f, "//dm:device[@id='pc']/rpid:class"), 1u);
	EXPECT_EQ(count(f, "/p:presence/p:note"), 1u);
	// RFC 5025 section 4: filtering again changes nothing
	EXPECT_EQ(filter_document(f, g), filter_document(filter_document(f, g), g));
	EXPECT_EQ(count(filter_document(f, g), "//*"), count(f, "//*"));
}

TEST(FilterDocument, UserInputLevelsAndBooleanZero)
{
	const char *doc = R"(<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
  xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" xmlns:c="urn:ietf:params:xml:ns:pidf:cipid" entity="sip:alice@a.example">
 <dm:person id="me"><rpid:user-input idle-threshold="600" last-input="2026-12-01T10:00:00Z">idle</rpid:user-input>
  <c:homepage>http://a.example/</c:homepage></dm:person>
</presence>)";
	auto with = [&](std::initializer_list<std::string> attrs) {
		Grant g = grant({}, attrs);
		g.all_persons = true;
		return filter_document(doc, g);
	};
	std::string bare = with({"user-input=bare"});
	EXPECT_EQ(count(bare, "//rpid:user-input"), 1u);
	EXPECT_EQ(count(bare, "//rpid:user-input/@idle-threshold") + count(bare, "//rpid:user-input/@last-input"), 0u);
	std::string thr = with({"user-input=thresholds"});
	EXPECT_EQ(count(thr, "//rpid:user-input/@idle-threshold"), 1u);
	EXPECT_EQ(count(thr, "//rpid:user-input/@last-input"), 0u);
	EXPECT_EQ(count(with({"user-input=full"}), "//rpid:user-input/@last-input"), 1u);
	EXPECT_EQ(count(with({}), "//rpid:user-input"), 0u);
	// CIPID has no permission of RFC 5025: an unknown attribute, granted by name and namespace
	EXPECT_EQ(count(with({}), "//*[local-name()='homepage']"), 0u);
	EXPECT_EQ(count(with({"unknown:urn:ietf:params:xml:ns:pidf:cipid homepage"}), "//*[local-name()='homepage']"), 1u);
	// xs:boolean: "0" is false, "1" true
	PresRules r;
	std::string why;
	ASSERT_TRUE(parse_pres_rules(R"(<cr:ruleset xmlns="urn:ietf:params:xml:ns:pres-rules" xmlns:cr="urn:ietf:params:xml:ns:common-policy">
 <cr:rule id="a"><cr:actions><sub-handling>allow</sub-handling></cr:actions><cr:transformations>
  <provide-mood>0</provide-mood><provide-activities>1</provide-activities><provide-note>false</provide-note>
 </cr:transformations></cr:rule></cr:ruleset>)", r, &why)) << why;
	Grant g = evaluate(r, "sip:bob@b.example", 0);
	EXPECT_EQ(g.attributes, (std::set<std::string>{"activities"}));
}

TEST(FilterDocument, EverythingGrantedIsTheDocumentItself)
{
	Grant g = grant();
	g.all_services = g.all_persons = g.all_devices = g.all_attributes = true;
	EXPECT_TRUE(grants_everything(g));
	EXPECT_EQ(filter_document(kDoc, g), kDoc);
	EXPECT_NE(grant_key(g), grant_key(grant()));
	EXPECT_EQ(grant_key(grant({{"class", "a"}})), grant_key(grant({{"class", "a"}})));
}

TEST(FilterDocument, UnreadableDocumentGivesNothing)
{
	EXPECT_EQ(filter_document("<presence", grant()), "");
}

const char *kRulesBob = R"(<?xml version="1.0" encoding="UTF-8"?>
<cr:ruleset xmlns="urn:ietf:params:xml:ns:pres-rules" xmlns:cr="urn:ietf:params:xml:ns:common-policy">
 <cr:rule id="b"><cr:conditions><cr:identity><cr:one id="sip:bob@b.example"/></cr:identity></cr:conditions>
  <cr:actions><sub-handling>block</sub-handling></cr:actions></cr:rule>
 <cr:rule id="c"><cr:conditions><cr:identity><cr:one id="sip:carol@c.example"/></cr:identity></cr:conditions>
  <cr:actions><sub-handling>allow</sub-handling></cr:actions>
  <cr:transformations><provide-services><all-services/></provide-services></cr:transformations></cr:rule>
</cr:ruleset>)";

TEST(Policy, InProcessCopiesLastWhileTheChangeCountStands)
{
	std::map<std::string, std::pair<std::string, std::string>> docs;  // path -> body, etag
	int reads = 0;
	unsigned long gen = 1;
	PolicyConfig cfg;
	cfg.mode = PolicyConfig::Mode::Local;
	Policy p(cfg,
			[&](const std::string &path, std::string &body, std::string &etag) {
				++reads;
				auto it = docs.find(path);
				if (it == docs.end()) return 404;
				body = it->second.first;
				etag = it->second.second;
				return 200;
			},
			[&] { return gen; });
	EXPECT_EQ(p.of("alice@a.example", 0).state, UserRules::State::None);
	EXPECT_EQ(reads, 2);  // the RFC document and OMA's
	docs["pres-rules/users/sip:alice@a.example/index"] = {kRulesBob, "e1"};
	EXPECT_EQ(p.of("alice@a.example", 0).state, UserRules::State::None);  // count unchanged: the copy
	EXPECT_EQ(reads, 2);
	++gen;
	const UserRules &r = p.of("alice@a.example", 0);
	EXPECT_EQ(r.state, UserRules::State::Found);
	EXPECT_EQ(r.rules.rules.size(), 2u);
	EXPECT_EQ(reads, 4);
	EXPECT_EQ(p.owner_of_rules("pres-rules/users/sip:alice@a.example/index"), "alice@a.example");
	EXPECT_EQ(p.owner_of_rules("org.openmobilealliance.pres-rules/users/sip:bob@b.example/pres-rules"), "bob@b.example");
	EXPECT_EQ(p.owner_of_rules("pres-rules/users/sip:alice@a.example/other"), "");
	EXPECT_EQ(p.owner_of_rules("resource-lists/users/sip:alice@a.example/index"), "");
	// a server that cannot answer: Error, asked again next time
	PolicyConfig c2 = cfg;
	Policy q(c2, [](const std::string &, std::string &, std::string &) { return -1; }, [] { return 7ul; });
	EXPECT_EQ(q.of("alice@a.example", 0).state, UserRules::State::Error);
}

// ---- Engine::decide: the user's rules under the operator's ------------------------------------

class DecideHost : public Host {
public:
	bool send_notify(const imps::subs::Outgoing &) override { return true; }
	void stat(Stat, long long) override {}
	std::optional<Action> operator_rule(const std::string &p, const std::string &w) override
	{
		auto it = op.find(w);
		if (it == op.end()) return std::nullopt;
		return it->second;
	}
	int xcap_get(const std::string &path, std::string &body, std::string &etag) override
	{
		if (path != "pres-rules/users/sip:alice@a.example/index" || rules.empty()) return 404;
		body = rules;
		etag = "e";
		return 200;
	}
	unsigned long xcap_generation() override { return gen; }
	std::map<std::string, Action> op;
	std::string rules;
	unsigned long gen = 1;
};

class Decide : public ::testing::Test {
protected:
	static void SetUpTestSuite() { server_ = std::make_unique<imps::test::RedisServer>(); }
	static void TearDownTestSuite() { server_.reset(); }
	void SetUp() override
	{
		imps::RedisConfig rc;
		rc.port = server_->port();
		rc.retry_interval_ms = 0;
		redis_ = std::make_unique<imps::Redis>(rc);
		Config c;
		c.policy.mode = PolicyConfig::Mode::Local;
		engine_ = std::make_unique<Engine>(c, *redis_, "imps:presence:t", host_);
	}
	inline static std::unique_ptr<imps::test::RedisServer> server_;
	std::unique_ptr<imps::Redis> redis_;
	DecideHost host_;
	std::unique_ptr<Engine> engine_;
};

TEST_F(Decide, OperatorBlocksWinUserRulesDecideElseOperatorElseDefault)
{
	const std::string a = "alice@a.example";
	host_.default_action = Action::Confirm;
	// no document: the operator's rows, else the default
	host_.op["carol@c.example"] = Action::Allow;
	EXPECT_EQ(engine_->decide(a, "carol@c.example", 0).action, Action::Allow);
	EXPECT_EQ(engine_->decide(a, "dave@d.example", 0).action, Action::Confirm);
	EXPECT_FALSE(engine_->decide(a, "carol@c.example", 0).by_user);
	// the user's rules: block bob although the operator allows him, allow carol
	host_.rules = kRulesBob;
	host_.op["bob@b.example"] = Action::Allow;
	++host_.gen;
	EXPECT_EQ(engine_->decide(a, "bob@b.example", 0).action, Action::Block);
	auto d = engine_->decide(a, "carol@c.example", 0);
	EXPECT_EQ(d.action, Action::Allow);
	EXPECT_TRUE(d.by_user && d.grant.all_services && !d.grant.all_persons);
	// no rule for dave: the default
	EXPECT_EQ(engine_->decide(a, "dave@d.example", 0).action, Action::Confirm);
	// the operator's block and polite-block stand
	host_.op["carol@c.example"] = Action::PoliteBlock;
	EXPECT_EQ(engine_->decide(a, "carol@c.example", 0).action, Action::PoliteBlock);
	host_.op["carol@c.example"] = Action::Block;
	EXPECT_EQ(engine_->decide(a, "carol@c.example", 0).action, Action::Block);
	// its own presence: always
	EXPECT_EQ(engine_->decide(a, "Alice@a.example", 0).action, Action::Allow);
}

// ---- xcap-diff ---------------------------------------------------------------------------------

TEST(XcapDiff, SelectionKeepsWhatTheSubscriberMayRead)
{
	const std::string root = "http://127.0.0.1:8080/xcap-root";
	std::vector<std::string> sel;
	std::string why;
	ASSERT_TRUE(xcapdiff::parse_selection(R"(<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list>
		<entry uri="http://127.0.0.1:8080/xcap-root/resource-lists/users/sip:alice@a.example/index"/>
		<entry uri="resource-lists/users/sip:bob@a.example/index"/>
		<entry uri="http://other.example/xcap-root/resource-lists/users/sip:alice@a.example/index"/>
		<entry uri="pres-rules/"/><entry uri="rls-services/global/index"/>
		<entry uri="resource-lists/users/sip:alice@a.example/index"/></list></resource-lists>)",
			root, "sip:alice@a.example", sel, why))
			<< why;
	EXPECT_EQ(sel, (std::vector<std::string>{"resource-lists/users/sip:alice@a.example/index", "pres-rules/",
							   "rls-services/global/index"}));
	EXPECT_EQ(xcapdiff::split(xcapdiff::join(sel)), sel);
	EXPECT_FALSE(xcapdiff::parse_selection("<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"/>",
			root, "sip:alice@a.example", sel, why));
	EXPECT_FALSE(xcapdiff::parse_selection("<x/>", root, "sip:alice@a.example", sel, why));
	EXPECT_NE(why.find("not a resource-lists"), std::string::npos);

	const std::string x = "sip:alice@a.example";
	EXPECT_TRUE(xcapdiff::covers("pres-rules/", "pres-rules/users/sip:alice@a.example/index", x));
	EXPECT_FALSE(xcapdiff::covers("pres-rules/", "pres-rules/users/sip:bob@a.example/index", x));
	EXPECT_FALSE(xcapdiff::covers("pres-rules/", "org.openmobilealliance.pres-rules/users/sip:alice@a.example/p", x));
	EXPECT_TRUE(xcapdiff::covers("a/users/sip:alice@a.example/index/~~/x/y", "a/users/sip:alice@a.example/index", x));
	EXPECT_TRUE(xcapdiff::is_attribute("a/users/u/index/~~/x/@id"));
	EXPECT_FALSE(xcapdiff::is_attribute("a/users/u/index/~~/x/y[@id=%221%22]"));
}

TEST(XcapDiff, DocumentShapes)
{
	using Item = xcapdiff::Item;
	std::vector<Item> items(4);
	items[0].sel = "a/users/u/index";
	items[0].previous_etag = "1";
	items[0].new_etag = "2";
	items[1].kind = Item::Kind::Element;
	items[1].sel = "a/users/u/index/~~/x";
	items[1].content = "<x/>";
	items[1].ns_decls = xcapdiff::root_namespaces("<r xmlns=\"urn:r\" xmlns:p=\"urn:p\"/>");
	items[2].kind = Item::Kind::Element;
	items[2].sel = "a/users/u/index/~~/y";
	items[2].exists = false;
	items[3].kind = Item::Kind::Attribute;
	items[3].sel = "a/users/u/index/~~/x/@v";
	items[3].content = "a<b";
	std::string d = xcapdiff::document("http://h/root", items);
	ParsedXml x(d, {{"d", "urn:ietf:params:xml:ns:xcap-diff"}, {"r", "urn:r"}});
	EXPECT_EQ(x.attr(x.node("/d:xcap-diff"), "xcap-root").value_or(""), "http://h/root/");
	EXPECT_EQ(x.attr(x.node("/d:xcap-diff/d:document"), "previous-etag").value_or(""), "1");
	EXPECT_EQ(x.nodes("/d:xcap-diff/d:element/r:x").size(), 1u);  // in the document's namespace
	EXPECT_EQ(x.attr(x.nodes("/d:xcap-diff/d:element")[1], "exists").value_or(""), "false");
	EXPECT_EQ(ParsedXml::text(x.node("/d:xcap-diff/d:attribute")), "a<b");
}

}  // namespace
