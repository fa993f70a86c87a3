// Element and attribute changes spliced into the stored text (RFC 4825 section 8.2.3): the
// insertion examples of the RFC, byte for byte (tests/schemas/examples/xcap/rfc4825-sec8.2.3-*).
#include "imps_xcap/core/edit.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

using namespace imps::xcap;

namespace {

std::string example(const std::string &name)
{
	std::ifstream f("tests/schemas/examples/xcap/rfc4825-sec8.2.3-" + name + ".xml");
	std::stringstream s;
	s << f.rdbuf();
	return s.str();
}

// the document after an element PUT of body at selector, on the RFC's base document
Edit put(const std::string &text, const std::string &selector, const std::string &body)
{
	auto p = imps::xml::parse_safe(text);
	EXPECT_TRUE(p.ok);
	std::string why;
	auto ns = parse_node_selector(selector, &why);
	EXPECT_TRUE(ns) << why;
	static const std::vector<Binding> none;
	static const std::string no_ns;
	Target t{*ns, none, no_ns, "http://x/root/doc"};
	return put_element(text, p.doc.get(), t, body);
}

}  // namespace

TEST(XcapEdit, TheInsertionExamplesOfSection823ByteForByte)
{
	const std::string base = example("insert-base");
	ASSERT_FALSE(base.empty()) << "run from the tree's top (make test does)";
	struct Case {
		const char *selector, *body, *result;
	} cases[] = {
		{"root/el1[@att=\"third\"]", "<el1 att=\"third\"/>", "insert-el1-att-third"},
		{"root/el2[@att=\"2\"]", "<el2 att=\"2\"/>", "insert-el2-att-2"},
		{"root/el2[1][@att=\"2\"]", "<el2 att=\"2\"/>", "insert-el2-1-att-2"},
		{"root/*[2][@att=\"2\"]", "<el2 att=\"2\"/>", "insert-star2-att-2"},
		{"root/el3[@att=\"first\"]", "<el3 att=\"first\"/>", "insert-el3"},
	};
	for (const auto &c : cases) {
		Edit e = put(base, c.selector, c.body);
		ASSERT_TRUE(e.ok) << c.selector << ": " << e.element << " " << e.phrase;
		EXPECT_TRUE(e.created) << c.selector;
		EXPECT_EQ(e.text, example(c.result)) << c.selector;
	}
	// the RFC's refusals: a position past the siblings, a body the selector would not select
	Edit far = put(base, "root/el1[4]", "<el1/>");
	EXPECT_FALSE(far.ok);
	EXPECT_EQ(far.element, "cannot-insert");
	Edit wrong = put(base, "root/el1[@att=\"fourth\"]", "<el1 att=\"fifth\"/>");
	EXPECT_FALSE(wrong.ok);
	EXPECT_EQ(wrong.element, "cannot-insert");
}

TEST(XcapEdit, ReplaceReadDeleteKeepTheRestOfTheTextAsWritten)
{
	const std::string doc = "<?xml version='1.0'?>\n<root xmlns:x='urn:x'>\n  <a k='1'>t</a>\n  <b/>\n</root>";
	Edit e = put(doc, "root/a", "<a k='2'  >u</a>");
	ASSERT_TRUE(e.ok) << e.phrase;
	EXPECT_FALSE(e.created);
	EXPECT_EQ(e.text, "<?xml version='1.0'?>\n<root xmlns:x='urn:x'>\n  <a k='2'  >u</a>\n  <b/>\n</root>");
	// into an empty element, with a prefix bound on the root
	e = put(e.text, "root/b/x:c", "<x:c/>");
	EXPECT_FALSE(e.ok);  // x is not bound by the query: 400
	EXPECT_EQ(e.status, 400);
	auto p = imps::xml::parse_safe(doc);
	std::string why;
	auto ns = parse_node_selector("root/b/x:c", &why);
	std::vector<Binding> b{{"x", "urn:x"}};
	std::string none;
	Target t{*ns, b, none, "u"};
	Edit in = put_element(doc, p.doc.get(), t, "<x:c/>");
	ASSERT_TRUE(in.ok) << in.element << in.phrase;
	EXPECT_EQ(in.text, "<?xml version='1.0'?>\n<root xmlns:x='urn:x'>\n  <a k='1'>t</a>\n  <b><x:c/></b>\n</root>");
	// read: the element and the raw attribute value as they stand
	auto q = imps::xml::parse_safe(in.text);
	std::string out;
	int st = 0;
	auto sa = parse_node_selector("root/a/@k", &why);
	Target ta{*sa, b, none, "u"};
	ASSERT_TRUE(read_node(in.text, q.doc.get(), ta, out, &st));
	EXPECT_EQ(out, "1");
	auto se = parse_node_selector("root/a", &why);
	Target te{*se, b, none, "u"};
	ASSERT_TRUE(read_node(in.text, q.doc.get(), te, out, &st));
	EXPECT_EQ(out, "<a k='1'>t</a>");
	// attribute put keeps the element's other bytes; delete of element and attribute
	Edit at = put_attribute(in.text, q.doc.get(), ta, "x&amp;y");
	ASSERT_TRUE(at.ok);
	EXPECT_NE(at.text.find("<a k=\"x&amp;y\">t</a>"), std::string::npos) << at.text;
	Edit na = put_attribute(in.text, q.doc.get(), Target{*parse_node_selector("root/a/@n", &why), b, none, "u"}, "v");
	ASSERT_TRUE(na.ok);
	EXPECT_TRUE(na.created);
	EXPECT_NE(na.text.find("<a k='1' n=\"v\">t</a>"), std::string::npos) << na.text;
	Edit bad = put_attribute(in.text, q.doc.get(), ta, "a<b");
	EXPECT_EQ(bad.element, "not-xml-att-value");
	Edit da = delete_node(in.text, q.doc.get(), ta);
	ASSERT_TRUE(da.ok);
	EXPECT_NE(da.text.find("<a>t</a>"), std::string::npos) << da.text;
	Edit de = delete_node(in.text, q.doc.get(), te);
	ASSERT_TRUE(de.ok);
	EXPECT_EQ(de.text, "<?xml version='1.0'?>\n<root xmlns:x='urn:x'>\n  \n  <b><x:c/></b>\n</root>");
	// a body that is not one element
	for (const char *body : {"<a/><a/>", "text", "<a>", "<?pi x?><a/>", "<!DOCTYPE a><a/>", ""}) {
		Edit f = put(doc, "root/z", body);
		EXPECT_EQ(f.element, "not-xml-frag") << body;
	}
	// an element whose prefix is bound nowhere where it lands
	Edit unbound = put(doc, "root/q", "<q><y:z/></q>");
	EXPECT_EQ(unbound.element, "not-xml-frag");
}

TEST(XcapEdit, ScannerFollowsTheParsedDocument)
{
	const std::string t = "<?xml version=\"1.0\"?><!-- <x> --><r a=\"1>2\"><![CDATA[<y/>]]><s/><?p <z/>?><u b='x'></u ></r>";
	std::vector<ElementSpan> s;
	ASSERT_TRUE(scan_elements(t, s));
	ASSERT_EQ(s.size(), 3u);
	EXPECT_EQ(s[0].qname, "r");
	EXPECT_EQ(s[0].attrs.at(0).qname, "a");
	EXPECT_EQ(t.substr(s[0].attrs[0].value_start, 3), "1>2");
	EXPECT_EQ(t.substr(s[1].start, s[1].end - s[1].start), "<s/>");
	EXPECT_EQ(t.substr(s[2].start, s[2].end - s[2].start), "<u b='x'></u >");
	EXPECT_FALSE(scan_elements("<a><b></a></b>", s));
	EXPECT_FALSE(scan_elements("<a", s));
}
