// XmlWriter: elements, prefixed names, attribute and text escaping by libxml2, finish()
// closing what is still open. Every output is parsed back and read field by field.
#include "imps/xml_writer.hpp"

#include "xml_parse.hpp"

#include <gtest/gtest.h>

using imps::XmlWriter;
using imps::test::ParsedXml;

TEST(XmlWriter, WritesDeclarationAndNestedElements)
{
	XmlWriter w;
	w.start("root");
	w.attr("xmlns", "urn:example:a");
	w.attr("version", "3");
	w.start("child");
	w.attr("id", "c1");
	w.text("hello");
	w.end();
	w.start("child");
	w.attr("id", "c2");
	w.end();
	w.end();
	std::string xml = w.finish();

	EXPECT_EQ(xml.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 0), 0u) << xml;
	ParsedXml p(xml, {{"a", "urn:example:a"}});
	ASSERT_TRUE(p.ok()) << p.errors() << xml;
	EXPECT_EQ(ParsedXml::name(p.root()), "root");
	EXPECT_EQ(ParsedXml::ns_uri(p.root()), "urn:example:a");
	EXPECT_EQ(ParsedXml::attr(p.root(), "version"), "3");
	auto kids = p.nodes("/a:root/a:child");
	ASSERT_EQ(kids.size(), 2u);
	EXPECT_EQ(ParsedXml::attr(kids[0], "id"), "c1");
	EXPECT_EQ(ParsedXml::text(kids[0]), "hello");
	EXPECT_EQ(ParsedXml::attr(kids[1], "id"), "c2");
	EXPECT_EQ(ParsedXml::text(kids[1]), "");
	EXPECT_TRUE(ParsedXml::children(kids[1]).empty());
}

TEST(XmlWriter, EscapesAttributeValues)
{
	const std::string nasty = "a<b>&c\"d'e";
	XmlWriter w;
	w.start("r");
	w.attr("v", nasty);
	w.attr("ws", "tab\there\nnl\rcr");
	w.end();
	std::string xml = w.finish();
	ParsedXml p(xml);
	ASSERT_TRUE(p.ok()) << p.errors() << xml;
	EXPECT_EQ(ParsedXml::attr(p.root(), "v"), nasty);
	// Whitespace characters in attributes must be written as character references, or
	// attribute-value normalisation turns them into spaces.
	EXPECT_EQ(ParsedXml::attr(p.root(), "ws"), "tab\there\nnl\rcr");
}

TEST(XmlWriter, EscapesText)
{
	const std::string nasty = "<script>&amp;\"quoted\" 'single' ]]> end";
	XmlWriter w;
	w.start("r");
	w.text(nasty);
	w.end();
	std::string xml = w.finish();
	ParsedXml p(xml);
	ASSERT_TRUE(p.ok()) << p.errors() << xml;
	EXPECT_EQ(ParsedXml::text(p.root()), nasty);
	EXPECT_TRUE(ParsedXml::children(p.root()).empty()) << "text must not become markup: " << xml;
}

TEST(XmlWriter, KeepsUtf8)
{
	const std::string s = "J\xc3\xbcrgen \xe2\x82\xac \xf0\x9f\x98\x80";  // Jürgen € 😀
	XmlWriter w;
	w.start("r");
	w.attr("n", s);
	w.text(s);
	w.end();
	std::string xml = w.finish();
	ParsedXml p(xml);
	ASSERT_TRUE(p.ok()) << p.errors() << xml;
	EXPECT_EQ(ParsedXml::attr(p.root(), "n"), s);
	EXPECT_EQ(ParsedXml::text(p.root()), s);
}

TEST(XmlWriter, PrefixedElementsUseDeclaredNamespace)
{
	XmlWriter w;
	w.start("reginfo");
	w.attr("xmlns", "urn:ietf:params:xml:ns:reginfo");
	w.attr("xmlns:gr", "urn:ietf:params:xml:ns:gruuinfo");
	w.start("gr:pub-gruu");
	w.attr("uri", "sip:a@b;gr=x");
	w.end();
	w.end();
	std::string xml = w.finish();
	ParsedXml p(xml, {{"r", "urn:ietf:params:xml:ns:reginfo"}, {"gr", "urn:ietf:params:xml:ns:gruuinfo"}});
	ASSERT_TRUE(p.ok()) << p.errors() << xml;
	xmlNodePtr g = p.node("/r:reginfo/gr:pub-gruu");
	ASSERT_NE(g, nullptr) << xml;
	EXPECT_EQ(ParsedXml::ns_uri(g), "urn:ietf:params:xml:ns:gruuinfo");
	EXPECT_EQ(ParsedXml::attr(g, "uri"), "sip:a@b;gr=x");
}

TEST(XmlWriter, FinishClosesOpenElements)
{
	XmlWriter w;
	w.start("a");
	w.start("b");
	w.start("c");
	w.text("x");
	std::string xml = w.finish();
	ParsedXml p(xml);
	ASSERT_TRUE(p.ok()) << p.errors() << xml;
	xmlNodePtr c = p.node("/a/b/c");
	ASSERT_NE(c, nullptr) << xml;
	EXPECT_EQ(ParsedXml::text(c), "x");
}

TEST(XmlWriter, EndWithoutOpenElementThrows)
{
	XmlWriter w;
	EXPECT_THROW(w.end(), std::runtime_error);
}

TEST(XmlWriter, DestroyedWithoutFinishDoesNotLeakOrCrash)
{
	for (int i = 0; i < 100; ++i) {
		XmlWriter w;
		w.start("a");
		w.attr("b", "c");
	}
	SUCCEED();
}
