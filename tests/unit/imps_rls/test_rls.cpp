// The resource list server's core: RLMI documents and multipart/related bodies (exact bytes,
// every RLMI against RFC 4662's schema tests/schemas/rlmi.xsd), list resolution (nested lists,
// entry-ref, external, resource-list, loops, bounds) against documents in a map, and the tree
// kept with a subscription.
#include "../imps_reginfo/schema_check.hpp"

#include "imps_rls/core/lists.hpp"
#include "imps_rls/core/rlmi.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

using namespace imps::rls;
using imps::test::SchemaCheck;

namespace {

::testing::AssertionResult RlmiValid(const std::string &xml)
{
	return SchemaCheck::for_file("rlmi.xsd").validate(xml);
}

TEST(Rlmi, DocumentExactAndValid)
{
	std::vector<Resource> rs(3);
	rs[0] = {"sip:bob@a.example", "Bob & co", {{"i1", "active", "", "c1@a.example"}}};
	rs[1] = {"sip:carol@a.example", "", {{"i2", "terminated", "rejected", ""}}};
	rs[2] = {"sip:dave@a.example", "", {{"i3", "pending", "", ""}}};
	std::string d = rlmi_document("sip:alice-list@a.example", 0, true, "Buddies", rs);
	EXPECT_EQ(d,
			"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			"<list xmlns=\"urn:ietf:params:xml:ns:rlmi\" uri=\"sip:alice-list@a.example\" version=\"0\" fullState=\"true\">\n"
			"  <name>Buddies</name>\n"
			"  <resource uri=\"sip:bob@a.example\">\n"
			"    <name>Bob &amp; co</name>\n"
			"    <instance id=\"i1\" state=\"active\" cid=\"c1@a.example\"/>\n"
			"  </resource>\n"
			"  <resource uri=\"sip:carol@a.example\">\n"
			"    <instance id=\"i2\" state=\"terminated\" reason=\"rejected\"/>\n"
			"  </resource>\n"
			"  <resource uri=\"sip:dave@a.example\">\n"
			"    <instance id=\"i3\" state=\"pending\"/>\n"
			"  </resource>\n"
			"</list>\n");
	EXPECT_TRUE(RlmiValid(d));
	EXPECT_TRUE(RlmiValid(rlmi_document("sip:l@a.example", 7, false, "", {})));
}

TEST(Rlmi, MultipartFramingPerRfc2046)
{
	std::vector<Part> parts = {{"root@a", "application/rlmi+xml;charset=\"UTF-8\"", "<list/>"},
			{"p1@a", "application/pidf+xml;charset=\"UTF-8\"", "<presence/>"}};
	EXPECT_EQ(multipart_type("root@a", "b1"), "multipart/related;type=\"application/rlmi+xml\";start=\"<root@a>\";boundary=b1");
	// no preamble: the body starts with the first delimiter; CRLF before each next one
	EXPECT_EQ(multipart_body("b1", parts),
			"--b1\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <root@a>\r\n"
			"Content-Type: application/rlmi+xml;charset=\"UTF-8\"\r\n\r\n<list/>"
			"\r\n--b1\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <p1@a>\r\n"
			"Content-Type: application/pidf+xml;charset=\"UTF-8\"\r\n\r\n<presence/>"
			"\r\n--b1--\r\n");
	// for liblinphone: Content-Id values as the RLMI cids (no brackets)
	EXPECT_EQ(multipart_body("b1", {parts[0]}, false),
			"--b1\r\nContent-Transfer-Encoding: binary\r\nContent-Id: root@a\r\n"
			"Content-Type: application/rlmi+xml;charset=\"UTF-8\"\r\n\r\n<list/>\r\n--b1--\r\n");
	std::string b = new_boundary(parts);
	EXPECT_EQ(b.rfind("imps-", 0), 0u);
	EXPECT_NE(random_token(6), random_token(6));
}

const char *kRoot = "http://127.0.0.1:8080/xcap-root";

struct Docs {
	std::map<std::string, std::string> by_path;  // path (with node selector) -> body
	int fetches = 0;
	Fetch fetch()
	{
		return [this](const std::string &path, std::string &body) {
			++fetches;
			auto it = by_path.find(path);
			if (it == by_path.end()) return 404;
			body = it->second;
			return 200;
		};
	}
};

Service inline_service(const std::string &list)
{
	auto v = parse_services("<rls-services xmlns=\"urn:ietf:params:xml:ns:rls-services\" "
							"xmlns:rl=\"urn:ietf:params:xml:ns:resource-lists\">"
							"<service uri=\"sip:alice-list@a.example\">" + list +
									"<packages><package>presence</package></packages></service></rls-services>",
			"sip:alice@a.example", "rls-services/users/sip:alice@a.example/index");
	EXPECT_EQ(v.size(), 1u);
	return v.empty() ? Service{} : v[0];
}

TEST(Lists, InlineNestedEntryRefExternal)
{
	Docs d;
	d.by_path["resource-lists/users/sip:alice@a.example/index/~~/resource-lists/list%5b@name=%22w%22%5d/entry%5b@uri=%22sip:erin@a.example%22%5d"] =
			"<entry uri=\"sip:erin@a.example\"><display-name>Erin</display-name></entry>";
	d.by_path["resource-lists/users/sip:alice@a.example/index/~~/resource-lists/list%5b@name=%22w%22%5d"] =
			"<list name=\"w\"><display-name>Work</display-name><entry uri=\"sip:frank@a.example\"/></list>";
	Service s = inline_service(
			"<list><rl:display-name>Mine</rl:display-name>"
			"<rl:entry uri=\"sip:bob@a.example\"><rl:display-name>Bob</rl:display-name></rl:entry>"
			"<rl:list name=\"family\"><rl:entry uri=\"sip:carol@a.example\"/></rl:list>"
			"<rl:entry-ref ref=\"resource-lists/users/sip:alice@a.example/index/~~/resource-lists/list%5b@name=%22w%22%5d/entry%5b@uri=%22sip:erin@a.example%22%5d\"/>"
			"<rl:external anchor=\"http://127.0.0.1:8080/xcap-root/resource-lists/users/sip:alice@a.example/index/~~/resource-lists/list%5b@name=%22w%22%5d\"/>"
			"<rl:external anchor=\"http://other.example/xcap-root/resource-lists/users/sip:x@other.example/index\"/>"
			"</list>");
	EXPECT_EQ(s.packages, std::vector<std::string>{"presence"});
	Resolved r = resolve(s, kRoot, d.fetch(), Limits{});
	EXPECT_EQ(r.root.name, "Mine");
	ASSERT_EQ(r.root.children.size(), 4u);
	EXPECT_EQ(r.root.children[0].uri, "sip:bob@a.example");
	EXPECT_EQ(r.root.children[0].name, "Bob");
	EXPECT_TRUE(r.root.children[1].is_list);
	EXPECT_EQ(r.root.children[1].uri, "sip:alice-list@a.example;list=family");
	EXPECT_EQ(r.root.children[1].children[0].uri, "sip:carol@a.example");
	EXPECT_EQ(r.root.children[2].name, "Erin");
	EXPECT_TRUE(r.root.children[3].is_list);
	EXPECT_EQ(r.root.children[3].name, "Work");
	EXPECT_EQ(r.root.children[3].children[0].uri, "sip:frank@a.example");
	EXPECT_EQ(r.members, 4u);
	ASSERT_EQ(r.errors.size(), 1u);  // the other server's list
	EXPECT_NE(r.errors[0].find("not on this XCAP server"), std::string::npos);
	EXPECT_EQ(members_of(r.root), (std::vector<std::string>{"sip:bob@a.example", "sip:carol@a.example",
										  "sip:erin@a.example", "sip:frank@a.example"}));
	Node back;
	ASSERT_TRUE(decode(encode(r.root), back));
	EXPECT_EQ(encode(back), encode(r.root));
	EXPECT_EQ(back.children[3].children[0].uri, "sip:frank@a.example");
}

TEST(Lists, ResourceListLoopsAndBounds)
{
	Docs d;
	const std::string a = "resource-lists/users/sip:alice@a.example/index/~~/resource-lists/list%5b@name=%22a%22%5d";
	const std::string b = "resource-lists/users/sip:alice@a.example/index/~~/resource-lists/list%5b@name=%22b%22%5d";
	// a holds b, b holds a again: the loop is cut, every member once
	d.by_path[a] = "<list name=\"a\"><entry uri=\"sip:m1@a.example\"/><external anchor=\"" + std::string(kRoot) + "/" + b + "\"/></list>";
	d.by_path[b] = "<list name=\"b\"><entry uri=\"sip:m2@a.example\"/><external anchor=\"" + std::string(kRoot) + "/" + a + "\"/></list>";
	Service s = inline_service("");
	s.has_list = false;
	s.resource_list = std::string(kRoot) + "/" + a;
	Resolved r = resolve(s, kRoot, d.fetch(), Limits{});
	EXPECT_EQ(members_of(r.root), (std::vector<std::string>{"sip:m1@a.example", "sip:m2@a.example"}));
	ASSERT_EQ(r.errors.size(), 1u);
	EXPECT_NE(r.errors[0].find("loop"), std::string::npos);

	// bounds: members and depth
	std::string many = "<list>";
	for (int i = 0; i < 10; ++i) many += "<rl:entry uri=\"sip:u" + std::to_string(i) + "@a.example\"/>";
	many += "<rl:entry uri=\"sip:u1@a.example\"/>";  // a duplicate counts once
	many += "</list>";
	Limits lim;
	lim.max_members = 4;
	Resolved t = resolve(inline_service(many), kRoot, d.fetch(), lim);
	EXPECT_EQ(t.members, 4u);
	EXPECT_TRUE(t.truncated);
	std::string deep = "<list>";
	for (int i = 0; i < 12; ++i) deep += "<rl:list name=\"l" + std::to_string(i) + "\">";
	deep += "<rl:entry uri=\"sip:deep@a.example\"/>";
	for (int i = 0; i < 12; ++i) deep += "</rl:list>";
	deep += "</list>";
	Resolved dp = resolve(inline_service(deep), kRoot, d.fetch(), Limits{});
	EXPECT_TRUE(members_of(dp.root).empty());
	EXPECT_FALSE(dp.errors.empty());
	// a missing reference is an error, the rest stays
	Resolved miss = resolve(inline_service("<list><rl:entry-ref ref=\"resource-lists/users/sip:alice@a.example/index/~~/x\"/>"
										   "<rl:entry uri=\"sip:ok@a.example\"/></list>"),
			kRoot, d.fetch(), Limits{});
	EXPECT_EQ(members_of(miss.root), std::vector<std::string>{"sip:ok@a.example"});
	ASSERT_EQ(miss.errors.size(), 1u);
	EXPECT_NE(miss.errors[0].find("HTTP 404"), std::string::npos);
}

TEST(Lists, PresentityOfUris)
{
	EXPECT_EQ(presentity_of("sip:Bob@A.Example;transport=tcp"), "Bob@a.example");
	EXPECT_EQ(presentity_of("sips:bob@a.example:5061"), "bob@a.example");
	EXPECT_EQ(presentity_of("tel:+123"), "");
	EXPECT_EQ(presentity_of("sip:a.example"), "");
	Node n;
	EXPECT_FALSE(decode("", n));
	EXPECT_FALSE(decode("M\t0\tx\t\n", n));
}

}  // namespace

// ---- inflate (RFC 1951, zlib-wrapped or raw), for Content-Encoding: deflate ----------------------

#include "imps_rls/core/inflate.hpp"

namespace {

std::string unhex(const std::string &h)
{
	std::string o;
	for (size_t i = 0; i + 1 < h.size(); i += 2) o += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
	return o;
}

// made with Python's zlib: compress(level 9) of a 20-entry resource-lists document (dynamic
// Huffman blocks, zlib wrapper), a raw level-1 stream (fixed codes) and a raw stored block
TEST(Inflate, ZlibRawFixedDynamicStored)
{
	std::string out;
	ASSERT_TRUE(inflate(unhex("78da8dd24d0a83301086e17d4f11b2f767fa6b83895df504ed0144c712d02889167bfb5abab250f85603c33b9b87c98bb96bc5937db0bdd392e2540a76555f5bf7d0f27ebb46992ccc26f71cfac9571cb5368c412c472e683979a72c8f8d1a4a5f76412d6be5825ac7d2e49f697276a37f89c95b2d831d54e32dbb3abd9431cf6537b42c933f0d01cd16687640b3079a03d01c81e6043419d09c1143081a9126849a106b42b009d126849b106f42c0e9473cf93e78b27e7cf306d83e2eef"), out, 1 << 20));
	EXPECT_EQ(out.size(), 861u);
	EXPECT_EQ(out.rfind("<?xml", 0), 0u);
	EXPECT_NE(out.find("<entry uri=\"sip:friend19@a.example\"/></list></resource-lists>"), std::string::npos);
	ASSERT_TRUE(inflate(unhex("cb48cdc9c957c84022cbf38b725200"), out, 100));
	EXPECT_EQ(out, "hello hello hello world");
	ASSERT_TRUE(inflate(unhex("010c00f3ff73746f72656420626c6f636b"), out, 100));
	EXPECT_EQ(out, "stored block");
	// bounded, and malformed input refused
	EXPECT_FALSE(inflate(unhex("78da8dd24d0a83301086e17d4f11b2f767fa6b83895df504ed0144c712d02889167bfb5abab250f85603c33b9b87c98bb96bc5937db0bdd392e2540a76555f5bf7d0f27ebb46992ccc26f71cfac9571cb5368c412c472e683979a72c8f8d1a4a5f76412d6be5825ac7d2e49f697276a37f89c95b2d831d54e32dbb3abd9431cf6537b42c933f0d01cd16687640b3079a03d01c81e6043419d09c1143081a9126849a106b42b009d126849b106f42c0e9473cf93e78b27e7cf306d83e2eef"), out, 100));
	EXPECT_FALSE(inflate(unhex("78da8dd24d0a83301086e17d4f11b2f767fa6b83895df504ed0144c712d02889167bfb5abab250f85603c33b9b87c98bb96bc5937db0bdd392e2540a76555f5bf7d0f27ebb46992ccc26f71cfac9571cb5368c412c472e683979a72c8f8d1a4a5f76412d6be5825ac7d2e49f697276a37f89c95b2d831d54e32dbb3abd9431cf6537b42c933f0d01cd16687640b3079a03d01c81e6043419d09c1143081a9126849a106b42b009d126849b106f42c0e9473cf93e78b27e7cf306d83e2eef").substr(0, 60), out, 1 << 20));
	EXPECT_FALSE(inflate("not deflate at all", out, 1 << 20));
	EXPECT_FALSE(inflate("", out, 10));
}

}  // namespace
