// The XCAP server core (RFC 4825 sections 7, 8, 11; RFC 4826; RFC 5025) on a map storage.
#include "imps_xcap/core/server.hpp"

#include "imps/xml_parse.hpp"

#include <gtest/gtest.h>

#include <libxml/parser.h>
#include <libxml/xmlschemas.h>

#include <map>

using namespace imps::xcap;

namespace {

class MemStorage : public Storage {
public:
	std::map<std::string, std::pair<std::string, StoredDoc>> docs;  // path -> (xui, doc)
	int writes = 0;
	// once: the stored ETag changes between a read and the next write (another worker)
	bool race_once = false;

	StoreResult fetch(const std::string &path, StoredDoc &out) override
	{
		auto it = docs.find(path);
		if (it == docs.end()) return StoreResult::NotFound;
		out = it->second.second;
		if (race_once) {
			race_once = false;
			it->second.second.etag = "changed-meanwhile";
		}
		return StoreResult::Ok;
	}
	StoreResult create(const std::string &path, const std::string &, const std::string &xui,
			const StoredDoc &doc) override
	{
		if (docs.count(path)) return StoreResult::Conflict;
		docs[path] = {xui, doc};
		++writes;
		return StoreResult::Ok;
	}
	StoreResult replace(const std::string &path, const std::string &old_etag,
			const StoredDoc &doc) override
	{
		auto it = docs.find(path);
		if (it == docs.end()) return StoreResult::NotFound;
		if (it->second.second.etag != old_etag) return StoreResult::Conflict;
		it->second.second = doc;
		++writes;
		return StoreResult::Ok;
	}
	StoreResult remove(const std::string &path, const std::string &old_etag) override
	{
		auto it = docs.find(path);
		if (it == docs.end()) return StoreResult::NotFound;
		if (it->second.second.etag != old_etag) return StoreResult::Conflict;
		docs.erase(it);
		++writes;
		return StoreResult::Ok;
	}
	StoreResult list(const std::string &auid, const std::string &xui,
			std::vector<DocInfo> &out) override
	{
		for (const auto &[p, v] : docs) {
			if (!auid.empty() && p.rfind(auid + "/", 0) != 0) continue;
			if (!xui.empty() && v.first != xui) continue;
			out.push_back({p, v.second.etag, v.second.modified, v.second.body.size()});
		}
		return StoreResult::Ok;
	}
};

const AppUsages &usages()
{
	static AppUsages u;
	return u;
}

const char *kAlice = "sip:alice@a.example";
const char *kRoot = "http://xcap.example/xcap-root";
const char *kRlMime = "application/resource-lists+xml";
const std::string kRlDoc = "resource-lists/users/sip:alice@a.example/index";

const char *kLists = R"(<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
  <list name="friends">
    <entry uri="sip:bob@a.example"><display-name>Bob</display-name></entry>
    <entry uri="sip:carol@a.example"/>
  </list>
  <list name="work"/>
</resource-lists>
)";

// validates an XML body against one embedded schema
bool schema_valid(const std::string &xsd, const std::string &body, std::string *why = nullptr)
{
	xmlSchemaPtr s = compile_embedded(xsd);
	if (!s) return false;
	auto p = imps::xml::parse_safe(body);
	bool ok = false;
	if (p.ok) {
		xmlSchemaValidCtxtPtr vc = xmlSchemaNewValidCtxt(s);
		ok = xmlSchemaValidateDoc(vc, p.doc.get()) == 0;
		xmlSchemaFreeValidCtxt(vc);
	} else if (why) {
		*why = "not well-formed";
	}
	xmlSchemaFree(s);
	return ok;
}

class XcapServer : public ::testing::Test {
protected:
	XcapServer() : srv_(Config{kRoot, 4096}, usages(), store_)
	{
		srv_.on_change([this](const std::string &p, const std::string &o, const std::string &n) {
			changes_.push_back(p + " " + o + " " + n);
		});
	}
	Request req(const std::string &method, const std::string &path, const std::string &body = "",
			const std::string &ct = "")
	{
		Request r;
		r.method = method;
		size_t q = path.find('?');
		r.path = path.substr(0, q);
		if (q != std::string::npos) r.query = path.substr(q + 1);
		r.body = body;
		r.content_type = ct;
		r.identity = kAlice;
		r.role = Role::User;
		return r;
	}
	Response run(const Request &r) { return srv_.handle(r); }
	Response put_lists()
	{
		return run(req("PUT", kRlDoc, kLists, kRlMime));
	}
	std::string stored(const std::string &path = kRlDoc) { return store_.docs[path].second.body; }
	// a change refused: 409 with the error element, a valid xcap-error body, nothing stored
	void expect_refused(const Response &r, const std::string &element, int writes_before)
	{
		EXPECT_EQ(r.status, 409) << r.reason << r.body;
		EXPECT_EQ(r.content_type, "application/xcap-error+xml");
		EXPECT_NE(r.body.find("<" + element), std::string::npos) << r.body;
		EXPECT_TRUE(schema_valid("xcap-error.xsd", r.body)) << r.body;
		EXPECT_EQ(store_.writes, writes_before);
	}
	MemStorage store_;
	Server srv_;
	std::vector<std::string> changes_;
};

}  // namespace

TEST_F(XcapServer, DocumentCreatedWith201ReplacedWith200EachWithANewStrongEtag)
{
	Response a = put_lists();
	ASSERT_EQ(a.status, 201) << a.reason << a.body;
	EXPECT_FALSE(a.etag.empty());
	Response b = put_lists();
	EXPECT_EQ(b.status, 200);
	EXPECT_NE(b.etag, a.etag);
	Response g = run(req("GET", kRlDoc));
	EXPECT_EQ(g.status, 200);
	EXPECT_EQ(g.content_type, kRlMime);
	EXPECT_EQ(g.etag, b.etag);
	EXPECT_EQ(g.body, kLists);  // byte for byte as put
	ASSERT_EQ(changes_.size(), 2u);
	EXPECT_EQ(changes_[0], kRlDoc + "  " + a.etag);
	EXPECT_EQ(changes_[1], kRlDoc + " " + a.etag + " " + b.etag);
}

TEST_F(XcapServer, ConditionalRequests)
{
	std::string etag = put_lists().etag;
	Request g = req("GET", kRlDoc);
	g.has_if_none_match = true;
	g.if_none_match = "\"" + etag + "\"";
	Response r = run(g);
	EXPECT_EQ(r.status, 304);
	EXPECT_EQ(r.etag, etag);
	EXPECT_TRUE(r.body.empty());
	g.if_none_match = "\"other\", \"" + etag + "\"";
	EXPECT_EQ(run(g).status, 304);
	g.if_none_match = "W/\"" + etag + "\"";  // weak tags never match
	EXPECT_EQ(run(g).status, 200);

	Request m = req("GET", kRlDoc);
	m.has_if_match = true;
	m.if_match = "\"nope\"";
	EXPECT_EQ(run(m).status, 412);
	m.if_match = "*";  // unquoted, as HTTP writes it
	EXPECT_EQ(run(m).status, 200);

	// PUT If-Match with the old ETag after a change: 412, nothing stored
	Request p = req("PUT", kRlDoc, kLists, kRlMime);
	p.has_if_match = true;
	p.if_match = "\"" + etag + "\"";
	std::string etag2 = run(p).etag;
	ASSERT_FALSE(etag2.empty());
	int w = store_.writes;
	Response stale = run(p);
	EXPECT_EQ(stale.status, 412);
	EXPECT_EQ(store_.writes, w);

	// If-None-Match: * creates only
	Request c = req("PUT", kRlDoc, kLists, kRlMime);
	c.has_if_none_match = true;
	c.if_none_match = "*";
	EXPECT_EQ(run(c).status, 412);
	c.path = "resource-lists/users/sip:alice@a.example/other";
	EXPECT_EQ(run(c).status, 201);
	// If-Match on a missing document
	Request d = req("DELETE", "resource-lists/users/sip:alice@a.example/missing");
	d.has_if_match = true;
	d.if_match = "*";
	EXPECT_EQ(run(d).status, 412);
}

TEST_F(XcapServer, RefusedDocumentsStoreNothing)
{
	int w = store_.writes;
	expect_refused(run(req("PUT", kRlDoc, "<resource-lists", kRlMime)), "not-well-formed", w);
	expect_refused(run(req("PUT", kRlDoc,
						   "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaa\">]><resource-lists "
						   "xmlns=\"urn:ietf:params:xml:ns:resource-lists\">&a;</resource-lists>",
						   kRlMime)),
			"not-well-formed", w);
	// well-formed, but not the schema's
	expect_refused(run(req("PUT", kRlDoc,
						   "<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><entry "
						   "uri=\"sip:x@y\"/></resource-lists>",
						   kRlMime)),
			"schema-validation-error", w);
	expect_refused(run(req("PUT", kRlDoc,
						   "<rls-services xmlns=\"urn:ietf:params:xml:ns:rls-services\"/>", kRlMime)),
			"schema-validation-error", w);
	expect_refused(run(req("PUT", kRlDoc, std::string("<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list name=\"\xff\"/></resource-lists>"), kRlMime)),
			"not-utf-8", w);
	// RFC 4826 3.4.5: two entries with one URI in one list
	Response u = run(req("PUT", kRlDoc,
			"<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list name=\"f\">"
			"<entry uri=\"sip:bob@a.example\"/><entry uri=\"sip:bob@a.example\"/></list></resource-lists>",
			kRlMime));
	expect_refused(u, "uniqueness-failure", w);
	EXPECT_NE(u.body.find("<exists field=\"resource-lists/list[@name=&quot;f&quot;]/entry/@uri\">"),
			std::string::npos) << u.body;
	EXPECT_NE(u.body.find("<alt-value>sip:bob-1@a.example</alt-value>"), std::string::npos) << u.body;
	Response t = run(req("PUT", kRlDoc, kLists, "application/xml"));
	EXPECT_EQ(t.status, 415);
	EXPECT_EQ(store_.writes, w);
	EXPECT_TRUE(store_.docs.empty());
	EXPECT_TRUE(changes_.empty());
}

TEST_F(XcapServer, DocumentsOverTheSizeBound)
{
	std::string big = "<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list name=\"f\">";
	while (big.size() < 5000) big += "<entry uri=\"sip:u" + std::to_string(big.size()) + "@a.example\"/>";
	big += "</list></resource-lists>";
	EXPECT_EQ(run(req("PUT", kRlDoc, big, kRlMime)).status, 413);
	// an element PUT that would make the document too big
	ASSERT_EQ(put_lists().status, 201);
	std::string el = "<entry uri=\"sip:long@a.example\"><display-name>" + std::string(4000, 'x')
			+ "</display-name></entry>";
	int w = store_.writes;
	expect_refused(run(req("PUT", kRlDoc + "/~~/resource-lists/list%5b@name=%22work%22%5d/entry",
						   el, "application/xcap-el+xml")),
			"constraint-failure", w);
}

TEST_F(XcapServer, ElementAttributeAndNamespaceGets)
{
	ASSERT_EQ(put_lists().status, 201);
	Response e = run(req("GET", kRlDoc + "/~~/resource-lists/list%5b@name=%22friends%22%5d/entry%5b1%5d"));
	EXPECT_EQ(e.status, 200);
	EXPECT_EQ(e.content_type, "application/xcap-el+xml");
	EXPECT_EQ(e.body, "<entry uri=\"sip:bob@a.example\"><display-name>Bob</display-name></entry>");
	Response a = run(req("GET", kRlDoc + "/~~/resource-lists/list%5b@name=%22friends%22%5d/entry%5b2%5d/@uri"));
	EXPECT_EQ(a.status, 200);
	EXPECT_EQ(a.content_type, "application/xcap-att+xml");
	EXPECT_EQ(a.body, "sip:carol@a.example");
	Response n = run(req("GET", kRlDoc + "/~~/resource-lists/list%5b1%5d/namespace::*"));
	EXPECT_EQ(n.status, 200);
	EXPECT_EQ(n.content_type, "application/xcap-ns+xml");
	EXPECT_NE(n.body.find("xmlns=\"urn:ietf:params:xml:ns:resource-lists\""), std::string::npos) << n.body;
	// prefixed selectors with the query's bindings
	Response p = run(req("GET", kRlDoc + "/~~/r:resource-lists/r:list%5b2%5d/@name?xmlns(r=urn:ietf:params:xml:ns:resource-lists)"));
	EXPECT_EQ(p.status, 200);
	EXPECT_EQ(p.body, "work");
	EXPECT_EQ(run(req("GET", kRlDoc + "/~~/q:resource-lists")).status, 400);  // unbound prefix
	EXPECT_EQ(run(req("GET", kRlDoc + "/~~/resource-lists/list")).status, 404);  // two match
	EXPECT_EQ(run(req("GET", kRlDoc + "/~~/resource-lists/list%5b3%5d")).status, 404);
	EXPECT_EQ(run(req("GET", kRlDoc + "/~~/resource-lists/list%5b1%5d/@nope")).status, 404);
}

TEST_F(XcapServer, ElementPutReplacesInPlaceAndInsertsPerSection823)
{
	ASSERT_EQ(put_lists().status, 201);
	const std::string friends = kRlDoc + "/~~/resource-lists/list%5b@name=%22friends%22%5d";
	// replace the first entry: it stays first
	Response r = run(req("PUT", friends + "/entry%5b@uri=%22sip:bob@a.example%22%5d",
			"<entry uri=\"sip:bob@a.example\"><display-name>Bobby</display-name></entry>",
			"application/xcap-el+xml"));
	ASSERT_EQ(r.status, 200) << r.reason << r.body;
	EXPECT_LT(stored().find("Bobby"), stored().find("sip:carol@a.example"));
	// insert by attribute: after the last <entry>
	r = run(req("PUT", friends + "/entry%5b@uri=%22sip:dave@b.example%22%5d",
			"<entry uri=\"sip:dave@b.example\"/>", "application/xcap-el+xml"));
	ASSERT_EQ(r.status, 201) << r.reason << r.body;
	EXPECT_LT(stored().find("sip:carol@a.example"), stored().find("sip:dave@b.example"));
	// insert by position: [1] goes first
	r = run(req("PUT", friends + "/entry%5b1%5d", "<entry uri=\"sip:erin@b.example\"/>",
			"application/xcap-el+xml"));
	EXPECT_EQ(r.status, 200);  // entry[1] exists: replaced
	EXPECT_EQ(stored().find("Bobby"), std::string::npos);
	r = run(req("PUT", kRlDoc + "/~~/resource-lists/list%5b@name=%22work%22%5d/entry%5b1%5d",
			"<entry uri=\"sip:x@a.example\"/>", "application/xcap-el+xml"));
	EXPECT_EQ(r.status, 201);
	// the inserted element inherits the document's default namespace
	Response g = run(req("GET", kRlDoc + "/~~/resource-lists/list%5b@name=%22work%22%5d/entry"));
	EXPECT_EQ(g.status, 200);
	EXPECT_EQ(g.body, "<entry uri=\"sip:x@a.example\"/>");
	int w = store_.writes;
	// position past the end
	expect_refused(run(req("PUT", friends + "/entry%5b9%5d", "<entry uri=\"sip:y@a.example\"/>",
						   "application/xcap-el+xml")),
			"cannot-insert", w);
	// the body does not match the selector
	expect_refused(run(req("PUT", friends + "/entry%5b@uri=%22sip:z@a.example%22%5d",
						   "<entry uri=\"sip:other@a.example\"/>", "application/xcap-el+xml")),
			"cannot-insert", w);
	// no parent: the closest ancestor is named
	Response np = run(req("PUT", kRlDoc + "/~~/resource-lists/list%5b@name=%22nope%22%5d/entry",
			"<entry uri=\"sip:y@a.example\"/>", "application/xcap-el+xml"));
	expect_refused(np, "no-parent", w);
	EXPECT_NE(np.body.find("<ancestor>http://xcap.example/xcap-root/" + kRlDoc + "/~~/resource-lists</ancestor>"),
			std::string::npos) << np.body;
	// not one element
	expect_refused(run(req("PUT", friends + "/entry%5b@uri=%22sip:q@a.example%22%5d",
						   "<entry uri=\"sip:q@a.example\"/><entry/>", "application/xcap-el+xml")),
			"not-xml-frag", w);
	// schema: an <entry> without uri
	expect_refused(run(req("PUT", friends + "/entry%5b4%5d", "<entry/>", "application/xcap-el+xml")),
			"schema-validation-error", w);
	// uniqueness: a second bob... via a position
	expect_refused(run(req("PUT", friends + "/entry%5b4%5d", "<entry uri=\"sip:carol@a.example\"/>",
						   "application/xcap-el+xml")),
			"uniqueness-failure", w);
	EXPECT_EQ(run(req("PUT", friends + "/entry%5b4%5d", "<entry uri=\"sip:carol@a.example\"/>",
						  "application/resource-lists+xml"))
					  .status,
			415);
}

TEST_F(XcapServer, DeletesAndTheirIdempotency)
{
	EXPECT_EQ(run(req("DELETE", kRlDoc)).status, 404);
	ASSERT_EQ(put_lists().status, 201);
	const std::string friends = kRlDoc + "/~~/resource-lists/list%5b@name=%22friends%22%5d";
	int w = store_.writes;
	// deleting entry[1] would make the second entry entry[1]
	{
		SCOPED_TRACE("positional delete");
		expect_refused(run(req("DELETE", friends + "/entry%5b1%5d")), "cannot-delete", w);
	}
	Response d = run(req("DELETE", friends + "/entry%5b@uri=%22sip:bob@a.example%22%5d"));
	EXPECT_EQ(d.status, 200);
	EXPECT_FALSE(d.etag.empty());
	EXPECT_EQ(stored().find("sip:bob@a.example"), std::string::npos);
	EXPECT_EQ(run(req("DELETE", friends + "/entry%5b@uri=%22sip:bob@a.example%22%5d")).status, 404);
	// attributes: put, replace, delete; the name attribute of a list is required
	EXPECT_EQ(run(req("PUT", friends + "/entry/@uri", "sip:c&amp;c@a.example", "application/xcap-att+xml")).status, 200);
	EXPECT_NE(stored().find("sip:c&amp;c@a.example"), std::string::npos);
	EXPECT_EQ(run(req("GET", friends + "/entry/@uri")).body, "sip:c&amp;c@a.example");
	w = store_.writes;
	expect_refused(run(req("PUT", friends + "/entry/@uri", "a<b", "application/xcap-att+xml")), "not-xml-att-value", w);
	expect_refused(run(req("DELETE", friends + "/entry/@uri")), "schema-validation-error", w);
	// deleting the attribute the selector tests: the selector selects nothing afterwards
	EXPECT_EQ(run(req("DELETE", friends + "/@name")).status, 200);
	w = store_.writes;
	expect_refused(run(req("DELETE", kRlDoc + "/~~/resource-lists")), "cannot-delete", w);
	EXPECT_EQ(run(req("PUT", kRlDoc + "/~~/resource-lists/namespace::*", "x", "application/xcap-ns+xml")).status, 405);
	EXPECT_EQ(run(req("DELETE", kRlDoc)).status, 200);
	EXPECT_TRUE(store_.docs.empty());
}

TEST_F(XcapServer, WhoMayReadAndWrite)
{
	ASSERT_EQ(put_lists().status, 201);
	Request b = req("GET", kRlDoc);
	b.identity = "sip:bob@a.example";
	EXPECT_EQ(run(b).status, 403);
	b.method = "PUT";
	b.body = kLists;
	b.content_type = kRlMime;
	EXPECT_EQ(run(b).status, 403);
	Request anon = req("GET", kRlDoc);
	anon.role = Role::Anonymous;
	EXPECT_EQ(run(anon).status, 401);
	Request rd = req("GET", kRlDoc);
	rd.identity = "";
	rd.role = Role::Reader;
	EXPECT_EQ(run(rd).status, 200);
	rd.method = "DELETE";
	EXPECT_EQ(run(rd).status, 403);
	Request ad = req("DELETE", kRlDoc);
	ad.identity = "sip:admin@a.example";
	ad.role = Role::Admin;
	EXPECT_EQ(run(ad).status, 200);
	// the XUI's domain compares without case
	Request up = req("PUT", "resource-lists/users/sip:alice@A.EXAMPLE/index", kLists, kRlMime);
	EXPECT_EQ(run(up).status, 201);
	// the global tree: users read, only the admin writes
	Request g = req("PUT", "resource-lists/global/index", kLists, kRlMime);
	EXPECT_EQ(run(g).status, 403);
	g.role = Role::Admin;
	EXPECT_EQ(run(g).status, 201);
	EXPECT_EQ(run(req("GET", "resource-lists/global/index")).status, 200);
	EXPECT_EQ(run(req("POST", kRlDoc)).status, 405);
	EXPECT_EQ(run(req("GET", "nonexistent-auid/users/sip:alice@a.example/index")).status, 404);
	EXPECT_EQ(run(req("GET", "resource-lists/users/sip:alice@a.example/../x")).status, 400);
}

TEST_F(XcapServer, RlsServicesUniqueAcrossUsersAndTheGlobalIndex)
{
	const char *mime = "application/rls-services+xml";
	auto doc = [](const std::string &uri, const std::string &list) {
		return "<rls-services xmlns=\"urn:ietf:params:xml:ns:rls-services\" "
			   "xmlns:rl=\"urn:ietf:params:xml:ns:resource-lists\"><service uri=\""
				+ uri + "\"><resource-list>" + list
				+ "</resource-list><packages><package>presence</package></packages></service></rls-services>";
	};
	Response a = run(req("PUT", "rls-services/users/sip:alice@a.example/index",
			doc("sip:alice-friends@a.example", "http://xcap.example/xcap-root/resource-lists/users/sip:alice@a.example/index/~~/resource-lists/list%5b@name=%22friends%22%5d"),
			mime));
	ASSERT_EQ(a.status, 201) << a.reason << a.body;
	Request b = req("PUT", "rls-services/users/sip:bob@a.example/index",
			doc("sip:alice-friends@a.example", "http://xcap.example/x"), mime);
	b.identity = "sip:bob@a.example";
	int w = store_.writes;
	Response r = run(b);
	expect_refused(r, "uniqueness-failure", w);
	EXPECT_NE(r.body.find("<alt-value>sip:alice-friends-1@a.example</alt-value>"), std::string::npos) << r.body;
	b.body = doc("sip:bob-friends@a.example", "not a uri");
	expect_refused(run(b), "constraint-failure", w);
	b.body = doc("sip:bob-friends@a.example", "http://xcap.example/x");
	ASSERT_EQ(run(b).status, 201);
	// alice may replace her own document with the same URI
	EXPECT_EQ(run(req("PUT", "rls-services/users/sip:alice@a.example/index",
						  doc("sip:alice-friends@a.example", "http://xcap.example/y"), mime))
					  .status,
			200);
	Response idx = run(req("GET", "rls-services/global/index"));
	ASSERT_EQ(idx.status, 200);
	EXPECT_EQ(idx.content_type, mime);
	EXPECT_NE(idx.body.find("sip:alice-friends@a.example"), std::string::npos);
	EXPECT_NE(idx.body.find("sip:bob-friends@a.example"), std::string::npos);
	EXPECT_TRUE(schema_valid("rls-services.xsd", idx.body)) << idx.body;
	EXPECT_EQ(run(req("PUT", "rls-services/global/index", idx.body, mime)).status, 405);
	Response one = run(req("GET", "rls-services/global/index/~~/rls-services/service%5b@uri=%22sip:bob-friends@a.example%22%5d/resource-list"));
	EXPECT_EQ(one.status, 200);
	EXPECT_EQ(one.body, "<resource-list>http://xcap.example/x</resource-list>");
}

TEST_F(XcapServer, PresRulesValidatedWithCommonPolicy)
{
	const char *mime = "application/auth-policy+xml";
	std::string rules = R"(<?xml version="1.0" encoding="UTF-8"?>
<cr:ruleset xmlns="urn:ietf:params:xml:ns:pres-rules" xmlns:cr="urn:ietf:params:xml:ns:common-policy">
  <cr:rule id="a">
    <cr:conditions><cr:identity><cr:one id="sip:bob@a.example"/></cr:identity></cr:conditions>
    <cr:actions><sub-handling>allow</sub-handling></cr:actions>
    <cr:transformations><provide-services><all-services/></provide-services></cr:transformations>
  </cr:rule>
</cr:ruleset>
)";
	for (const char *auid : {"pres-rules", "org.openmobilealliance.pres-rules"}) {
		std::string path = std::string(auid) + "/users/sip:alice@a.example/index";
		Response r = run(req("PUT", path, rules, mime));
		EXPECT_EQ(r.status, 201) << auid << ": " << r.reason << r.body;
		int w = store_.writes;
		std::string bad = rules;
		bad.replace(bad.find(">allow<"), 7, ">maybe<");
		expect_refused(run(req("PUT", path, bad, mime)), "schema-validation-error", w);
		std::string dup = rules;
		size_t at = dup.find("</cr:ruleset>");
		dup.insert(at, "<cr:rule id=\"a\"/>");
		expect_refused(run(req("PUT", path, dup, mime)), "uniqueness-failure", w);
		Response sh = run(req("GET", path + "/~~/cr:ruleset/cr:rule%5b@id=%22a%22%5d/cr:actions/pr:sub-handling?xmlns(cr=urn:ietf:params:xml:ns:common-policy)xmlns(pr=urn:ietf:params:xml:ns:pres-rules)"));
		EXPECT_EQ(sh.status, 200);
		EXPECT_EQ(sh.body, "<sub-handling>allow</sub-handling>");
	}
}

TEST_F(XcapServer, CapsAndDirectoryAreGeneratedAndValid)
{
	Response c = run(req("GET", "xcap-caps/global/index"));
	ASSERT_EQ(c.status, 200);
	EXPECT_EQ(c.content_type, "application/xcap-caps+xml");
	for (const auto &u : usages().all())
		EXPECT_NE(c.body.find("<auid>" + u->auid + "</auid>"), std::string::npos) << u->auid;
	EXPECT_NE(c.body.find("<namespace>urn:ietf:params:xml:ns:common-policy</namespace>"), std::string::npos);
	EXPECT_TRUE(schema_valid("xcap-caps.xsd", c.body)) << c.body;
	EXPECT_EQ(run(req("PUT", "xcap-caps/global/index", c.body, "application/xcap-caps+xml")).status, 405);
	Request cond = req("GET", "xcap-caps/global/index");
	cond.has_if_none_match = true;
	cond.if_none_match = "\"" + c.etag + "\"";
	EXPECT_EQ(run(cond).status, 304);

	std::string etag = put_lists().etag;
	Response d = run(req("GET", "org.openmobilealliance.xcap-directory/users/sip:alice@a.example/directory.xml"));
	ASSERT_EQ(d.status, 200);
	EXPECT_EQ(d.content_type, "application/vnd.oma.xcap-directory+xml");
	EXPECT_NE(d.body.find("uri=\"http://xcap.example/xcap-root/" + kRlDoc + "\" etag=\"" + etag + "\""),
			std::string::npos) << d.body;
	EXPECT_TRUE(schema_valid("xcap-directory.xsd", d.body)) << d.body;
	Request other = req("GET", "org.openmobilealliance.xcap-directory/users/sip:bob@a.example/directory.xml");
	EXPECT_EQ(run(other).status, 403);
}

TEST_F(XcapServer, ConcurrentChangeIsRetriedOrRefusedWithAPrecondition)
{
	ASSERT_EQ(put_lists().status, 201);
	const std::string work = kRlDoc + "/~~/resource-lists/list%5b@name=%22work%22%5d/entry";
	// another worker changed the document between our read and our write
	store_.race_once = true;
	Response r = run(req("PUT", work, "<entry uri=\"sip:n@a.example\"/>", "application/xcap-el+xml"));
	EXPECT_EQ(r.status, 201) << r.reason;
	EXPECT_NE(stored().find("sip:n@a.example"), std::string::npos);
	// with If-Match, the ETag it was based on is gone: 412
	std::string etag = run(req("GET", kRlDoc)).etag;
	store_.race_once = true;
	Request c = req("DELETE", work);
	c.has_if_match = true;
	c.if_match = "\"" + etag + "\"";
	EXPECT_EQ(run(c).status, 412);
	EXPECT_NE(stored().find("sip:n@a.example"), std::string::npos);
}

TEST(XcapHelpers, EtagMatching)
{
	EXPECT_TRUE(etag_matches("\"abc\"", "abc"));
	EXPECT_TRUE(etag_matches("\"x\" , \"abc\"", "abc"));
	EXPECT_TRUE(etag_matches("*", "abc"));
	EXPECT_TRUE(etag_matches("\"*\"", "abc"));
	EXPECT_FALSE(etag_matches("*", ""));
	EXPECT_FALSE(etag_matches("W/\"abc\"", "abc"));
	EXPECT_FALSE(etag_matches("\"abd\"", "abc"));
	EXPECT_NE(new_etag(), new_etag());
	EXPECT_TRUE(same_user("sip:alice@a.example", "sip:alice@A.Example"));
	EXPECT_FALSE(same_user("sip:alice@a.example", "sip:Alice@a.example"));
	EXPECT_FALSE(same_user("sip:alice@a.example", "sip:alice@b.example"));
	EXPECT_TRUE(schema_valid("xcap-error.xsd", error_body("no-parent", "<ancestor>http://x/y</ancestor>", "a \"b\"")));
	EXPECT_TRUE(schema_valid("xcap-error.xsd", error_body("not-well-formed")));
}
