// XCAP URIs and node selectors (RFC 4825 section 6) and their evaluation.
#include "imps_xcap/core/selector.hpp"

#include "imps/xml_parse.hpp"

#include <gtest/gtest.h>

using namespace imps::xcap;

namespace {

const std::string kRl = "urn:ietf:params:xml:ns:resource-lists";

const char *kDoc = R"(<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists" xmlns:x="urn:example:ext">
  <list name="friends">
    <entry uri="sip:bob@a.example"><display-name>Bob</display-name></entry>
    <entry uri="sip:carol@a.example" x:tag="c"/>
    <x:entry uri="sip:other@a.example"/>
    <entry uri="sip:dave@b.example"/>
  </list>
  <list name="work" x:kind="office">
    <entry uri="sip:erin@b.example"/>
  </list>
</resource-lists>)";

std::string name_of(xmlNodePtr n) { return reinterpret_cast<const char *>(n->name); }
std::string attr(xmlNodePtr n, const char *a)
{
	xmlChar *v = xmlGetNoNsProp(n, BAD_CAST a);
	std::string s = v ? reinterpret_cast<const char *>(v) : "";
	if (v) xmlFree(v);
	return s;
}

class SelectorEval : public ::testing::Test {
protected:
	void SetUp() override
	{
		auto p = imps::xml::parse_safe(kDoc);
		ASSERT_TRUE(p.ok);
		doc_ = std::move(p.doc);
	}
	// the element a selector picks, or nullptr; found says how it went
	xmlNodePtr pick(const std::string &sel, Found *found = nullptr,
			const std::vector<Binding> &b = {})
	{
		std::string why;
		auto ns = parse_node_selector(sel, &why);
		EXPECT_TRUE(ns) << sel << ": " << why;
		if (!ns) return nullptr;
		xmlNodePtr out = nullptr;
		Found f = select_element(doc_.get(), ns->steps, b, kRl, &out);
		if (found) *found = f;
		return f == Found::Element ? out : nullptr;
	}
	imps::xml::DocPtr doc_;
};

}  // namespace

TEST(XcapUri, DocumentSelectorOfAUserAndAGlobalDocument)
{
	std::string why;
	auto u = parse_uri("resource-lists/users/sip:alice@a.example/index", "", &why);
	ASSERT_TRUE(u) << why;
	EXPECT_EQ(u->auid, "resource-lists");
	EXPECT_FALSE(u->global);
	EXPECT_EQ(u->xui, "sip:alice@a.example");
	EXPECT_EQ(u->document, "index");
	EXPECT_FALSE(u->has_node);

	u = parse_uri("rls-services/global/index", "", &why);
	ASSERT_TRUE(u) << why;
	EXPECT_TRUE(u->global);
	EXPECT_EQ(u->xui, "");
	EXPECT_EQ(u->document, "index");

	// a document in a folder, percent-encoded XUI
	u = parse_uri("resource-lists/users/sip%3Aalice%40a.example/lists/buddies.xml", "", &why);
	ASSERT_TRUE(u) << why;
	EXPECT_EQ(u->xui, "sip:alice@a.example");
	EXPECT_EQ(u->document, "lists/buddies.xml");
}

TEST(XcapUri, MalformedDocumentSelectorsSayWhy)
{
	std::string why;
	for (const char *p : {"resource-lists", "resource-lists/users", "resource-lists/users/sip:a@b",
				 "resource-lists/global", "resource-lists/other/x/index",
				 "resource-lists/users/sip:a@b/../index", "resource-lists/users/sip:a@b//index",
				 "resource-lists/users/sip:a@b/index%2", "resource-lists/users/sip:a@b/in%zzdex",
				 "resource-lists/users/sip:a@b/a%2Fb", "resource-lists/users/sip:a@b/x%00"}) {
		why.clear();
		EXPECT_FALSE(parse_uri(p, "", &why)) << p;
		EXPECT_FALSE(why.empty()) << p;
	}
}

TEST(XcapUri, NodeSelectorAfterTheSeparatorIsDecoded)
{
	std::string why;
	// RFC 4825 section 6.3: brackets and quotes are percent-encoded in a URI
	auto u = parse_uri("resource-lists/users/sip:alice@a.example/index/~~/resource-lists/"
					   "list%5b@name=%22friends%22%5d/entry%5b2%5d/@uri",
			"", &why);
	ASSERT_TRUE(u) << why;
	ASSERT_TRUE(u->has_node);
	ASSERT_EQ(u->node.steps.size(), 3u);
	EXPECT_EQ(u->node.steps[0].name.local, "resource-lists");
	EXPECT_EQ(u->node.steps[1].name.local, "list");
	EXPECT_TRUE(u->node.steps[1].has_attr);
	EXPECT_EQ(u->node.steps[1].attr.local, "name");
	EXPECT_EQ(u->node.steps[1].value, "friends");
	EXPECT_EQ(u->node.steps[2].position, 2);
	EXPECT_EQ(u->node.terminal, Terminal::Attribute);
	EXPECT_EQ(u->node.attr.local, "uri");
}

TEST(XcapUri, QueryBindsPrefixes)
{
	std::string why;
	auto u = parse_uri("resource-lists/users/sip:a@b/index/~~/r:resource-lists/r:list",
			"xmlns(r=urn:ietf:params:xml:ns:resource-lists)xmlns(x=urn:example:ext)", &why);
	ASSERT_TRUE(u) << why;
	ASSERT_EQ(u->bindings.size(), 2u);
	EXPECT_EQ(u->bindings[0].prefix, "r");
	EXPECT_EQ(u->bindings[0].uri, kRl);
	EXPECT_EQ(u->bindings[1].prefix, "x");
	EXPECT_EQ(u->node.steps[0].name.prefix, "r");
	// percent-encoded query, as clients send it
	u = parse_uri("resource-lists/users/sip:a@b/index/~~/r:resource-lists",
			"xmlns(r=urn%3Aietf%3Aparams%3Axml%3Ans%3Aresource-lists)", &why);
	ASSERT_TRUE(u) << why;
	EXPECT_EQ(u->bindings[0].uri, kRl);
	for (const char *q : {"foo=bar", "xmlns(r)", "xmlns(=urn:x)", "xmlns(r=urn:x", "xmlns(r=)",
				 "xmlns(r=urn:x)xmlns(r=urn:y)"}) {
		why.clear();
		EXPECT_FALSE(parse_uri("resource-lists/users/sip:a@b/index/~~/r:x", q, &why)) << q;
		EXPECT_FALSE(why.empty()) << q;
	}
}

TEST(XcapSelector, EveryStepForm)
{
	std::string why;
	auto n = parse_node_selector(R"(a/*/b[3]/c[@id='x y']/d[2][@k="v"]/p:e/*[1])", &why);
	ASSERT_TRUE(n) << why;
	ASSERT_EQ(n->steps.size(), 7u);
	EXPECT_TRUE(n->steps[1].name.any);
	EXPECT_EQ(n->steps[2].position, 3);
	EXPECT_FALSE(n->steps[2].has_attr);
	EXPECT_EQ(n->steps[3].value, "x y");
	EXPECT_EQ(n->steps[4].position, 2);
	EXPECT_EQ(n->steps[4].value, "v");
	EXPECT_EQ(n->steps[5].name.prefix, "p");
	EXPECT_EQ(n->steps[5].name.local, "e");
	EXPECT_TRUE(n->steps[6].name.any);
	EXPECT_EQ(n->steps[6].position, 1);
	EXPECT_EQ(n->terminal, Terminal::None);

	n = parse_node_selector("a/b/namespace::*", &why);
	ASSERT_TRUE(n) << why;
	EXPECT_EQ(n->terminal, Terminal::Namespaces);
	EXPECT_EQ(n->steps.size(), 2u);

	n = parse_node_selector("a/b/@p:attr", &why);
	ASSERT_TRUE(n) << why;
	EXPECT_EQ(n->terminal, Terminal::Attribute);
	EXPECT_EQ(n->attr.prefix, "p");

	// entities and character references in attribute values, '/' inside a value
	n = parse_node_selector(R"(a/b[@uri="sip:x@y/z?a=1&amp;b=&#x41;&#66;&quot;"])", &why);
	ASSERT_TRUE(n) << why;
	EXPECT_EQ(n->steps[1].value, "sip:x@y/z?a=1&b=AB\"");
}

TEST(XcapSelector, MalformedSelectorsSayWhy)
{
	std::string why;
	for (const char *s : {"", "/a", "a/", "a//b", "a[", "a[]", "a[0]", "a[-1]", "a[x]", "a[@b]",
				 "a[@b=c]", "a[@b='c]", "a[@b=\"c']", "a[1][2]", "a[@b='c'][1]", "1a", "a/@",
				 "@a", "namespace::*", "a/namespace::*/b", "a/@b/c", "a:b:c", "a/b]", "a/*x",
				 "a[@b='<']", "a[@b='&unknown;']", "a[@b='&#0;']", "a[@b='&#xD800;']",
				 "a/b[99999999]"}) {
		why.clear();
		EXPECT_FALSE(parse_node_selector(s, &why)) << s;
		EXPECT_FALSE(why.empty()) << s;
	}
	std::string deep;
	for (int i = 0; i < 65; ++i) deep += i ? "/a" : "a";
	EXPECT_FALSE(parse_node_selector(deep, &why));
	EXPECT_FALSE(parse_node_selector(std::string(5000, 'a'), &why));
}

TEST_F(SelectorEval, ByNameByAttributeByPosition)
{
	xmlNodePtr n = pick("resource-lists/list[@name=\"work\"]/entry");
	ASSERT_NE(n, nullptr);
	EXPECT_EQ(attr(n, "uri"), "sip:erin@b.example");

	// the second <entry> of friends (the x:entry of another namespace is not counted)
	n = pick("resource-lists/list[1]/entry[3]");
	ASSERT_NE(n, nullptr);
	EXPECT_EQ(attr(n, "uri"), "sip:dave@b.example");

	// * counts every element child: the third one is the x:entry
	n = pick("resource-lists/list[1]/*[3]");
	ASSERT_NE(n, nullptr);
	EXPECT_EQ(attr(n, "uri"), "sip:other@a.example");

	n = pick("resource-lists/list[@name='friends']/entry[@uri='sip:bob@a.example']/display-name");
	ASSERT_NE(n, nullptr);
	EXPECT_EQ(name_of(n), "display-name");

	// position then attribute test (XPath order): entry[2] is carol, so [@uri=bob] fails
	Found f;
	EXPECT_EQ(pick("resource-lists/list[1]/entry[2][@uri='sip:bob@a.example']", &f), nullptr);
	EXPECT_EQ(f, Found::NoMatch);
	EXPECT_NE(pick("resource-lists/list[1]/entry[2][@uri='sip:carol@a.example']"), nullptr);
}

TEST_F(SelectorEval, NoMatchAmbiguousAndUnboundPrefix)
{
	Found f;
	EXPECT_EQ(pick("resource-lists/list", &f), nullptr);
	EXPECT_EQ(f, Found::Ambiguous);
	EXPECT_EQ(pick("resource-lists/list[3]", &f), nullptr);
	EXPECT_EQ(f, Found::NoMatch);
	EXPECT_EQ(pick("other-root", &f), nullptr);
	EXPECT_EQ(f, Found::NoMatch);
	EXPECT_EQ(pick("resource-lists/list[1]/q:entry", &f), nullptr);
	EXPECT_EQ(f, Found::UnboundPrefix);
	// an unprefixed name is in the app usage's default namespace, not "no namespace"
	auto p = imps::xml::parse_safe("<resource-lists><list/></resource-lists>");
	ASSERT_TRUE(p.ok);
	auto ns = parse_node_selector("resource-lists/list", nullptr);
	xmlNodePtr out = nullptr;
	EXPECT_EQ(select_element(p.doc.get(), ns->steps, {}, kRl, &out), Found::NoMatch);
}

TEST_F(SelectorEval, PrefixesFromTheQueryNotFromTheDocument)
{
	std::vector<Binding> b = {{"r", kRl}, {"e", "urn:example:ext"}};
	xmlNodePtr n = pick("r:resource-lists/r:list[1]/e:entry", nullptr, b);
	ASSERT_NE(n, nullptr);
	EXPECT_EQ(attr(n, "uri"), "sip:other@a.example");
	// the document's own prefix x means nothing to the selector
	Found f;
	EXPECT_EQ(pick("resource-lists/list[1]/x:entry", &f), nullptr);
	EXPECT_EQ(f, Found::UnboundPrefix);
}

TEST_F(SelectorEval, AttributeSelectorAndNamespacedAttributes)
{
	xmlNodePtr list = pick("resource-lists/list[2]");
	ASSERT_NE(list, nullptr);
	EXPECT_NE(select_attribute(list, QName{false, "", "name"}, {}), nullptr);
	// a namespaced attribute needs its prefix bound; unprefixed means no namespace
	EXPECT_EQ(select_attribute(list, QName{false, "", "kind"}, {}), nullptr);
	EXPECT_EQ(select_attribute(list, QName{false, "e", "kind"}, {}), nullptr);
	EXPECT_NE(select_attribute(list, QName{false, "e", "kind"}, {{"e", "urn:example:ext"}}), nullptr);
	// attribute tests in steps follow the same rule
	std::vector<Binding> b = {{"e", "urn:example:ext"}};
	EXPECT_NE(pick("resource-lists/list[@e:kind='office']", nullptr, b), nullptr);
}

TEST_F(SelectorEval, NamespaceSelectorListsTheBindingsInScope)
{
	xmlNodePtr e = pick("resource-lists/list[1]/entry[1]");
	ASSERT_NE(e, nullptr);
	std::string body = namespace_bindings_body(e);
	EXPECT_EQ(body.rfind("<entry ", 0), 0u) << body;
	EXPECT_NE(body.find("xmlns=\"urn:ietf:params:xml:ns:resource-lists\""), std::string::npos) << body;
	EXPECT_NE(body.find("xmlns:x=\"urn:example:ext\""), std::string::npos) << body;
	// and it is a well-formed document itself
	EXPECT_TRUE(imps::xml::parse_safe(body).ok) << body;
}
