// pres-rules evaluation (RFC 5025 over RFC 4745): conditions and the combination of the
// matching rules, on the RFC 5025 section 6 example and constructed documents.
#include "imps_presence/core/pres_rules.hpp"

#include "imps_presence/core/engine.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

using namespace imps::presence;

namespace {

std::string file(const std::string &path)
{
	std::ifstream f(path);
	std::stringstream s;
	s << f.rdbuf();
	return s.str();
}

PresRules parse(const std::string &xml)
{
	PresRules r;
	std::string why;
	EXPECT_TRUE(parse_pres_rules(xml, r, &why)) << why;
	return r;
}

const char *kRules = R"(<?xml version="1.0" encoding="UTF-8"?>
<cr:ruleset xmlns="urn:ietf:params:xml:ns:pres-rules" xmlns:cr="urn:ietf:params:xml:ns:common-policy"
    xmlns:ocp="urn:oma:xml:xdm:common-policy">
  <cr:rule id="friends">
    <cr:conditions><cr:identity><cr:one id="sip:bob@a.example"/><cr:one id="sip:Carol@A.Example"/></cr:identity></cr:conditions>
    <cr:actions><sub-handling>allow</sub-handling></cr:actions>
    <cr:transformations>
      <provide-services><all-services/></provide-services>
      <provide-persons><all-persons/></provide-persons>
      <provide-activities>true</provide-activities>
      <provide-mood>false</provide-mood>
    </cr:transformations>
  </cr:rule>
  <cr:rule id="domain">
    <cr:conditions><cr:identity><cr:many domain="a.example"><cr:except id="sip:mallory@a.example"/></cr:many></cr:identity></cr:conditions>
    <cr:actions><sub-handling>confirm</sub-handling></cr:actions>
    <cr:transformations><provide-devices><class>biz</class></provide-devices></cr:transformations>
  </cr:rule>
  <cr:rule id="block-carol">
    <cr:conditions><cr:identity><cr:one id="sip:carol@a.example"/></cr:identity></cr:conditions>
    <cr:actions><sub-handling>block</sub-handling></cr:actions>
  </cr:rule>
  <cr:rule id="others">
    <cr:conditions><ocp:other-identity/></cr:conditions>
    <cr:actions><sub-handling>polite-block</sub-handling></cr:actions>
  </cr:rule>
  <cr:rule id="past">
    <cr:conditions><cr:validity><cr:from>2001-01-01T00:00:00Z</cr:from><cr:until>2002-01-01T00:00:00Z</cr:until></cr:validity></cr:conditions>
    <cr:actions><sub-handling>allow</sub-handling></cr:actions>
  </cr:rule>
  <cr:rule id="sphere">
    <cr:conditions><cr:sphere value="work"/></cr:conditions>
    <cr:actions><sub-handling>allow</sub-handling></cr:actions>
  </cr:rule>
</cr:ruleset>)";

const long long kNow = 1764633600;  // 2025-12-02

}  // namespace

TEST(PresRules, MatchingRulesCombineToTheirMaximumAndTheUnionOfGrants)
{
	PresRules r = parse(kRules);
	ASSERT_EQ(r.rules.size(), 6u);
	Grant bob = evaluate(r, "sip:bob@a.example", kNow);
	EXPECT_EQ(decision(bob), Action::Allow);  // friends (allow) + domain (confirm)
	EXPECT_TRUE(bob.all_services);
	EXPECT_TRUE(bob.all_persons);
	EXPECT_FALSE(bob.all_devices);
	EXPECT_EQ(bob.devices.count({"class", "biz"}), 1u);
	EXPECT_EQ(bob.attributes, std::set<std::string>{"activities"});
	// RFC 5025 3.2.1: a matching block does not win over another rule's allow
	EXPECT_EQ(decision(evaluate(r, "carol@a.example", kNow)), Action::Allow);
	EXPECT_EQ(decision(evaluate(r, "sip:dave@a.example", kNow)), Action::Confirm);
	// excepted from the domain, named by no identity condition: the OMA other-identity rule
	EXPECT_EQ(decision(evaluate(r, "sip:mallory@a.example", kNow)), Action::PoliteBlock);
	EXPECT_EQ(decision(evaluate(r, "sip:erin@b.example;transport=tcp", kNow)), Action::PoliteBlock);
}

TEST(PresRules, ValiditySphereAndNoMatch)
{
	PresRules r = parse(R"(<cr:ruleset xmlns:cr="urn:ietf:params:xml:ns:common-policy" xmlns:pr="urn:ietf:params:xml:ns:pres-rules">
  <cr:rule id="now"><cr:conditions><cr:identity><cr:one id="sip:bob@a.example"/></cr:identity>
    <cr:validity><cr:from>2025-01-01T00:00:00Z</cr:from><cr:until>2026-01-01T00:00:00Z</cr:until></cr:validity></cr:conditions>
    <cr:actions><pr:sub-handling>allow</pr:sub-handling></cr:actions></cr:rule>
  <cr:rule id="s"><cr:conditions><cr:sphere value="home"/></cr:conditions>
    <cr:actions><pr:sub-handling>allow</pr:sub-handling></cr:actions></cr:rule>
</cr:ruleset>)");
	EXPECT_EQ(decision(evaluate(r, "sip:bob@a.example", kNow)), Action::Allow);
	EXPECT_EQ(decision(evaluate(r, "sip:bob@a.example", kNow + 400LL * 86400)), std::nullopt);
	// a sphere condition cannot be evaluated here: the rule never matches
	EXPECT_EQ(decision(evaluate(r, "sip:carol@a.example", kNow)), std::nullopt);
	// a matching rule without sub-handling: block (RFC 5025 3.2.1, the default)
	PresRules t = parse(R"(<cr:ruleset xmlns:cr="urn:ietf:params:xml:ns:common-policy"><cr:rule id="x"/></cr:ruleset>)");
	EXPECT_EQ(decision(evaluate(t, "sip:anyone@x", kNow)), Action::Block);
	PresRules none;
	std::string why;
	EXPECT_FALSE(parse_pres_rules("<resource-lists xmlns='urn:ietf:params:xml:ns:resource-lists'/>", none, &why));
	EXPECT_FALSE(parse_pres_rules("<cr:ruleset", none, &why));
}

TEST(PresRules, TheRfc5025Example)
{
	std::string doc = file("tests/schemas/examples/xcap/rfc5025-sec6-pres-rules.xml");
	ASSERT_FALSE(doc.empty()) << "run from the tree's top (make test does)";
	PresRules r = parse(doc);
	ASSERT_FALSE(r.rules.empty());
	Grant g = evaluate(r, "sip:user@example.com", kNow);
	EXPECT_EQ(decision(g), Action::Allow);
	EXPECT_FALSE(g.services.empty() && !g.all_services);
	EXPECT_EQ(decision(evaluate(r, "sip:stranger@elsewhere.example", kNow)), std::nullopt);
}

TEST(PresRules, UserInputLevelsAndUnknownAttributesAreGrants)
{
	PresRules r = parse(file("tests/schemas/examples/xcap/rfc5025-sec6-pres-rules.xml"));
	Grant g = evaluate(r, "sip:user@example.com", kNow);
	EXPECT_EQ(g.attributes.count("activities"), 1u);
	EXPECT_EQ(g.attributes.count("user-input=bare"), 1u);  // "bare": the element without its attributes
	EXPECT_EQ(g.services.count({"service-uri-scheme", "mailto"}), 1u);
	EXPECT_TRUE(g.all_persons);
}
