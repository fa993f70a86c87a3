// Fuzz target: XCAP documents and changes from the network, as imps_xcap handles them. The
// input is "<node selector>\n<body>": the body is PUT as a whole resource-lists document,
// then as an element and as an attribute at the selector of a stored document, and the
// selector is deleted. Whatever is stored must stay a well-formed, scannable document.
#include "imps_xcap/core/edit.hpp"
#include "imps_xcap/core/server.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>

using namespace imps::xcap;

namespace {

class MapStorage : public Storage {
public:
	std::map<std::string, StoredDoc> docs;
	StoreResult fetch(const std::string &p, StoredDoc &out) override
	{
		auto it = docs.find(p);
		if (it == docs.end()) return StoreResult::NotFound;
		out = it->second;
		return StoreResult::Ok;
	}
	StoreResult create(const std::string &p, const std::string &, const std::string &, const StoredDoc &d) override
	{
		if (docs.count(p)) return StoreResult::Conflict;
		check(d.body);
		docs[p] = d;
		return StoreResult::Ok;
	}
	StoreResult replace(const std::string &p, const std::string &old, const StoredDoc &d) override
	{
		auto it = docs.find(p);
		if (it == docs.end()) return StoreResult::NotFound;
		if (it->second.etag != old) return StoreResult::Conflict;
		check(d.body);
		it->second = d;
		return StoreResult::Ok;
	}
	StoreResult remove(const std::string &p, const std::string &) override
	{
		return docs.erase(p) ? StoreResult::Ok : StoreResult::NotFound;
	}
	StoreResult list(const std::string &, const std::string &, std::vector<DocInfo> &out) override
	{
		for (const auto &[p, d] : docs) out.push_back({p, d.etag, d.modified, d.body.size()});
		return StoreResult::Ok;
	}
	// a stored document is always well-formed and its elements scan
	static void check(const std::string &body)
	{
		auto p = imps::xml::parse_safe(body);
		std::vector<ElementSpan> spans;
		if (!p.ok || !scan_elements(body, spans)) std::abort();
	}
};

const char *kBase = "<?xml version='1.0' encoding='UTF-8'?>\n"
					"<resource-lists xmlns='urn:ietf:params:xml:ns:resource-lists' xmlns:x='urn:x'>\n"
					" <list name='a' x:k='1'><entry uri='sip:b@a'><display-name>B</display-name></entry>"
					"<!-- c --><entry uri='sip:c@a'/></list>\n <list name='b'/>\n</resource-lists>\n";
const std::string kDocPath = "resource-lists/users/sip:u@a/index";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static AppUsages usages;
	std::string in(reinterpret_cast<const char *>(data), size);
	size_t nl = in.find('\n');
	std::string sel = nl == std::string::npos ? in : in.substr(0, nl);
	std::string body = nl == std::string::npos ? "" : in.substr(nl + 1);
	std::vector<ElementSpan> spans;
	(void)scan_elements(in, spans);

	MapStorage st;
	Server srv(Config{"http://x/root", 65536}, usages, st);
	auto run = [&](const char *method, const std::string &path, const std::string &b, const char *ct) {
		Request r;
		r.method = method;
		size_t q = path.find('?');
		r.path = path.substr(0, q);
		if (q != std::string::npos) r.query = path.substr(q + 1);
		r.body = b;
		r.content_type = ct;
		r.identity = "sip:u@a";
		r.role = Role::User;
		return srv.handle(r);
	};
	run("PUT", kDocPath, body, "application/resource-lists+xml");
	st.docs.clear();
	if (run("PUT", kDocPath, kBase, "application/resource-lists+xml").status != 201) std::abort();
	std::string node = kDocPath + "/~~/" + sel;
	run("GET", node, "", "");
	run("PUT", node, body, "application/xcap-el+xml");
	run("GET", node, "", "");
	run("PUT", node, body, "application/xcap-att+xml");
	run("DELETE", node, "", "");
	run("GET", kDocPath, "", "");
	return 0;
}
