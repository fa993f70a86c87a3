#include "imps_xcap/core/server.hpp"

#include "imps_xcap/core/edit.hpp"

#include "imps/hash.hpp"
#include "imps/sip_text.hpp"
#include "imps/xml_parse.hpp"

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlsave.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <set>

namespace imps::xcap {
namespace {

constexpr const char *kErrMime = "application/xcap-error+xml";
constexpr const char *kElMime = "application/xcap-el+xml";
constexpr const char *kAttMime = "application/xcap-att+xml";
constexpr const char *kNsMime = "application/xcap-ns+xml";
constexpr int kStoreRetries = 5;

using imps::xml::str_of;

// "type/subtype" of a Content-Type value, lowercase, without parameters
std::string mime_base(const std::string &ct)
{
	std::string b = ct.substr(0, ct.find(';'));
	while (!b.empty() && std::isspace(static_cast<unsigned char>(b.back()))) b.pop_back();
	size_t s = b.find_first_not_of(" \t");
	return lower(s == std::string::npos ? "" : b.substr(s));
}

std::string esc(const std::string &v) { return xml_escape(v); }

bool valid_utf8(const std::string &s)
{
	size_t i = 0, n = s.size();
	while (i < n) {
		unsigned char c = static_cast<unsigned char>(s[i]);
		int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		if (!len || i + len > n) return false;
		if (len == 2 && c < 0xC2) return false;
		for (int k = 1; k < len; ++k)
			if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
		i += len;
	}
	return true;
}

// does the XML declaration name an encoding other than UTF-8?
bool declares_other_encoding(xmlDocPtr d)
{
	std::string e = lower(str_of(d->encoding));
	return !e.empty() && e != "utf-8" && e != "utf8";
}

Response simple(int status, std::string reason, std::string refused = "")
{
	Response r;
	r.status = status;
	r.reason = std::move(reason);
	r.refused = std::move(refused);
	return r;
}

Response conflict(const std::string &element, const std::string &phrase,
		const std::string &inner = "")
{
	Response r;
	r.status = 409;
	r.reason = "Conflict";
	r.content_type = kErrMime;
	r.body = error_body(element, inner, phrase);
	r.refused = element;
	return r;
}

Response not_allowed(const char *allow)
{
	Response r = simple(405, "Method Not Allowed", "method");
	r.headers.emplace_back("Allow", allow);
	return r;
}

std::string dump_node(xmlDocPtr doc, xmlNodePtr n)
{
	xmlBufferPtr b = xmlBufferCreate();
	if (!b) return "";
	xmlNodeDump(b, doc, n, 0, 0);
	std::string out(reinterpret_cast<const char *>(xmlBufferContent(b)),
			static_cast<size_t>(xmlBufferLength(b)));
	xmlBufferFree(b);
	return out;
}

}  // namespace

// ---- helpers -------------------------------------------------------------------------------

std::string doc_path(const Uri &u)
{
	return u.auid + (u.global ? "/global/" : "/users/" + u.xui + "/") + u.document;
}

bool same_user(const std::string &identity, const std::string &xui)
{
	auto norm = [](std::string s) {
		if (s.rfind("sip:", 0) != 0 && s.rfind("sips:", 0) != 0) s = "sip:" + s;
		size_t at = s.find('@');
		if (at != std::string::npos) s = s.substr(0, at) + lower(s.substr(at));
		return s;
	};
	return !identity.empty() && !xui.empty() && norm(identity) == norm(xui);
}

bool etag_matches(const std::string &header, const std::string &etag)
{
	size_t i = 0;
	while (i < header.size()) {
		while (i < header.size() && (header[i] == ' ' || header[i] == '\t' || header[i] == ','))
			++i;
		if (i >= header.size()) break;
		if (header[i] == '*') {
			if (!etag.empty()) return true;
			++i;
			continue;
		}
		bool weak = false;
		if (header.compare(i, 2, "W/") == 0) {
			weak = true;
			i += 2;
		}
		std::string tag;
		if (i < header.size() && header[i] == '"') {
			size_t e = header.find('"', i + 1);
			if (e == std::string::npos) e = header.size();
			tag = header.substr(i + 1, e - i - 1);
			i = e + 1;
		} else {
			size_t e = header.find(',', i);
			if (e == std::string::npos) e = header.size();
			tag = header.substr(i, e - i);
			while (!tag.empty() && std::isspace(static_cast<unsigned char>(tag.back()))) tag.pop_back();
			i = e;
		}
		// XCAP compares strongly (RFC 4825 section 7.11): a weak tag never matches
		if (!weak && !etag.empty() && (tag == etag || tag == "*")) return true;
	}
	return false;
}

std::string new_etag()
{
	unsigned char b[12];
	if (RAND_bytes(b, sizeof b) != 1) {
		// never the same as another: the time and the address of a local
		unsigned long long t = static_cast<unsigned long long>(std::time(nullptr));
		return sha1_hex(std::to_string(t) + std::to_string(reinterpret_cast<uintptr_t>(&t))).substr(0, 24);
	}
	static const char *hx = "0123456789abcdef";
	std::string s;
	for (unsigned char c : b) {
		s += hx[c >> 4];
		s += hx[c & 15];
	}
	return s;
}

std::string error_body(const std::string &element, const std::string &inner,
		const std::string &phrase)
{
	std::string b = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
					"<xcap-error xmlns=\"urn:ietf:params:xml:ns:xcap-error\">";
	b += "<" + element;
	if (!phrase.empty()) b += " phrase=\"" + esc(phrase) + "\"";
	if (inner.empty()) b += "/>";
	else b += ">" + inner + "</" + element + ">";
	return b + "</xcap-error>\n";
}

// ---- the server ----------------------------------------------------------------------------

struct Server::Ctx {
	const Request &req;
	Uri uri;
	const AppUsage *au = nullptr;
	std::string path;
	bool generated = false;
	// the document as loaded
	bool exists = false;
	StoredDoc doc;
};

Server::Server(Config cfg, const AppUsages &usages, Storage &store)
	: cfg_(std::move(cfg)), usages_(usages), store_(store)
{
	while (!cfg_.root.empty() && cfg_.root.back() == '/') cfg_.root.pop_back();
}

Response Server::handle(const Request &req)
{
	std::string why;
	auto u = parse_uri(req.path, req.query, &why);
	if (!u) return simple(400, "Bad Request (" + why + ")", "uri");
	Ctx c{req, std::move(*u), nullptr, "", false, false, StoredDoc{}};
	c.au = usages_.find(c.uri.auid);
	if (!c.au) return simple(404, "Not Found (no application usage " + c.uri.auid + ")", "auid");
	c.path = doc_path(c.uri);
	using K = AppUsage::Kind;
	c.generated = c.au->kind != K::Stored || (c.uri.auid == "rls-services" && c.uri.global);
	if (c.au->kind == K::Caps && !(c.uri.global && c.uri.document == "index"))
		return simple(404, "Not Found (xcap-caps has only global/index)", "auid");
	if (c.au->kind == K::Directory && (c.uri.global || c.uri.document != "directory.xml"))
		return simple(404, "Not Found (the directory is users/<XUI>/directory.xml)", "auid");
	if (c.uri.auid == "rls-services" && c.uri.global && c.uri.document != "index")
		return simple(404, "Not Found (rls-services has only global/index)", "auid");

	const std::string &m = req.method;
	if (m != "GET" && m != "PUT" && m != "DELETE" && m != "HEAD")
		return not_allowed(c.generated ? "GET" : "GET, PUT, DELETE");
	bool write = m == "PUT" || m == "DELETE";
	// who may do it (seed 8.1.4: per user)
	switch (req.role) {
		case Role::Anonymous:
			return simple(401, "Unauthorized", "auth");
		case Role::Admin:
			break;
		case Role::Reader:
			if (write) return simple(403, "Forbidden (a trusted reader only reads)", "forbidden");
			break;
		case Role::User:
			if (c.uri.global) {
				if (write && !c.generated)
					return simple(403, "Forbidden (the global tree is read-only to users)", "forbidden");
			} else if (!same_user(req.identity, c.uri.xui)) {
				return simple(403, "Forbidden (documents of another user)", "forbidden");
			}
			break;
	}
	if (c.generated && write) return not_allowed("GET");
	if (c.uri.has_node && c.uri.node.terminal == Terminal::Namespaces && write)
		return not_allowed("GET");
	if (m == "GET" || m == "HEAD") {
		Response r = get(c);
		if (m == "HEAD") r.body.clear();
		return r;
	}
	if (req.body.size() > cfg_.max_doc_size && m == "PUT")
		return simple(413, "Payload Too Large (over " + std::to_string(cfg_.max_doc_size) + " bytes)",
				"too-large");
	for (int attempt = 0;; ++attempt) {
		Response r = m == "PUT" ? put(c) : del(c);
		// the document changed between our read and our write: again, unless a
		// precondition named the ETag the change was made against
		if (r.status != -1) return r;
		if (attempt + 1 >= kStoreRetries || req.has_if_match)
			return req.has_if_match ? simple(412, "Precondition Failed", "precondition")
									: simple(503, "Service Unavailable (the document keeps changing)", "busy");
	}
}

bool Server::generated(const Ctx &c, std::string &body, Response &err)
{
	using K = AppUsage::Kind;
	if (c.au->kind == K::Caps) {
		body = caps_document();
		return true;
	}
	return c.au->kind == K::Directory ? directory(c.uri.xui, body, err) : rls_index(body, err);
}

std::string Server::caps_document() const
{
	std::string b = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
					"<xcap-caps xmlns=\"urn:ietf:params:xml:ns:xcap-caps\">\n  <auids>\n";
	std::set<std::string> ns;
	for (const auto &u : usages_.all()) {
		b += "    <auid>" + esc(u->auid) + "</auid>\n";
		for (const auto &n : u->namespaces) ns.insert(n);
	}
	b += "  </auids>\n  <extensions/>\n  <namespaces>\n";
	for (const auto &n : ns) b += "    <namespace>" + esc(n) + "</namespace>\n";
	return b + "  </namespaces>\n</xcap-caps>\n";
}

bool Server::rls_index(std::string &b, Response &err)
{
	std::vector<DocInfo> docs;
	if (store_.list("rls-services", "", docs) != StoreResult::Ok) {
		err = simple(503, "Service Unavailable (storage)", "storage");
		err.headers.emplace_back("Retry-After", "5");
		return false;
	}
	std::sort(docs.begin(), docs.end(), [](const DocInfo &x, const DocInfo &y) { return x.path < y.path; });
	b = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<rls-services xmlns=\"urn:ietf:params:xml:ns:rls-services\">";
	for (const auto &d : docs) {
		if (d.path.rfind("rls-services/users/", 0) != 0) continue;
		StoredDoc sd;
		if (store_.fetch(d.path, sd) != StoreResult::Ok) continue;
		auto p = imps::xml::parse_safe(sd.body);
		if (!p.ok) continue;
		xmlNodePtr root = xmlDocGetRootElement(p.doc.get());
		for (xmlNodePtr s = root ? root->children : nullptr; s; s = s->next)
			if (s->type == XML_ELEMENT_NODE && str_of(s->name) == "service")
				b += dump_node(p.doc.get(), s);
	}
	b += "</rls-services>\n";
	return true;
}

bool Server::directory(const std::string &xui, std::string &b, Response &err)
{
	std::vector<DocInfo> docs;
	if (store_.list("", xui, docs) != StoreResult::Ok) {
		err = simple(503, "Service Unavailable (storage)", "storage");
		err.headers.emplace_back("Retry-After", "5");
		return false;
	}
	std::sort(docs.begin(), docs.end(), [](const DocInfo &x, const DocInfo &y) { return x.path < y.path; });
	b = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<xcap-directory xmlns=\"urn:oma:xml:xdm:xcap-directory\">\n";
	for (const auto &u : usages_.all()) {
		if (u->kind != AppUsage::Kind::Stored) continue;
		std::string entries;
		for (const auto &d : docs) {
			if (d.path.rfind(u->auid + "/users/", 0) != 0) continue;
			char when[32] = "";
			time_t t = static_cast<time_t>(d.modified);
			struct tm tmv;
			if (gmtime_r(&t, &tmv)) std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tmv);
			entries += "    <entry uri=\"" + esc(cfg_.root + "/" + d.path) + "\" etag=\"" + esc(d.etag)
					+ "\" last-modified=\"" + when + "\" size=\"" + std::to_string(d.size) + "\"/>\n";
		}
		b += "  <folder auid=\"" + esc(u->auid) + "\">\n" + entries + "  </folder>\n";
	}
	b += "</xcap-directory>\n";
	return true;
}

Response Server::get(Ctx &c)
{
	if (c.generated) {
		Response err;
		std::string body;
		if (!generated(c, body, err)) return err;
		c.exists = true;
		c.doc.body = body;
		c.doc.etag = sha1_hex(body).substr(0, 24);
	} else {
		StoreResult sr = store_.fetch(c.path, c.doc);
		if (sr == StoreResult::Error) {
			Response r = simple(503, "Service Unavailable (storage)", "storage");
			r.headers.emplace_back("Retry-After", "5");
			return r;
		}
		c.exists = sr == StoreResult::Ok;
	}
	const Request &q = c.req;
	if (!c.exists) {
		if (q.has_if_match) return simple(412, "Precondition Failed", "precondition");
		return simple(404, "Not Found", "");
	}
	if (q.has_if_match && !etag_matches(q.if_match, c.doc.etag)) {
		Response r = simple(412, "Precondition Failed", "precondition");
		r.etag = c.doc.etag;
		return r;
	}
	if (q.has_if_none_match && etag_matches(q.if_none_match, c.doc.etag)) {
		Response r = simple(304, "Not Modified");
		r.etag = c.doc.etag;
		return r;
	}
	Response r = simple(200, "OK");
	r.etag = c.doc.etag;
	if (!c.uri.has_node) {
		r.content_type = c.au->mime;
		r.body = c.doc.body;
		return r;
	}
	auto p = imps::xml::parse_safe(c.doc.body);
	if (!p.ok) return simple(500, "Internal Server Error (stored document unreadable)", "storage");
	if (c.uri.node.terminal == Terminal::Namespaces) {
		xmlNodePtr el = nullptr;
		Found f = select_element(p.doc.get(), c.uri.node.steps, c.uri.bindings, c.au->ns, &el);
		if (f == Found::UnboundPrefix) return simple(400, "Bad Request (namespace prefix not bound in the query)", "uri");
		if (f != Found::Element) return simple(404, "Not Found (no such element)", "");
		r.content_type = kNsMime;
		r.body = namespace_bindings_body(el);
		return r;
	}
	int st = 404;
	Target t{c.uri.node, c.uri.bindings, c.au->ns, cfg_.root + "/" + c.path};
	if (!read_node(c.doc.body, p.doc.get(), t, r.body, &st)) {
		if (st == 400) return simple(400, "Bad Request (namespace prefix not bound in the query)", "uri");
		if (st == 500) return simple(500, "Internal Server Error (stored document unreadable)", "storage");
		return simple(404, "Not Found (no such node)", "");
	}
	r.content_type = c.uri.node.terminal == Terminal::Attribute ? kAttMime : kElMime;
	return r;
}

bool Server::validate(const Ctx &c, xmlDocPtr doc, Response &resp)
{
	auto constraints = [&]() {
		if (!c.au->check) return true;
		Refusal ref;
		CorpusFn corpus = [this](const std::string &auid,
								  std::vector<std::pair<std::string, std::string>> &out) {
			std::vector<DocInfo> docs;
			if (store_.list(auid, "", docs) != StoreResult::Ok) return false;
			for (const auto &d : docs) {
				StoredDoc sd;
				if (store_.fetch(d.path, sd) == StoreResult::Ok) out.emplace_back(d.path, sd.body);
			}
			return true;
		};
		if (c.au->check(doc, c.path, corpus, ref)) return true;
		resp = conflict(ref.element, ref.phrase, ref.inner);
		return false;
	};
	std::string why;
	xmlNodePtr root = xmlDocGetRootElement(doc);
	bool root_ok = root && str_of(root->name) == c.au->root_local;
	if (c.au->check_first && root_ok && !constraints()) return false;
	if (!AppUsages::validate(*c.au, doc, &why)) {
		resp = conflict("schema-validation-error", why);
		return false;
	}
	return c.au->check_first || constraints();
}

// Stores body as the document's new content: created or replaced against the ETag it was
// read with. resp.status -1: the document changed meanwhile (try again).
bool Server::store(Ctx &c, const std::string &body, Response &resp)
{
	if (body.size() > cfg_.max_doc_size) {
		resp = conflict("constraint-failure",
				"the document would be over " + std::to_string(cfg_.max_doc_size) + " bytes");
		return false;
	}
	StoredDoc nd;
	nd.body = body;
	nd.etag = new_etag();
	nd.modified = static_cast<long long>(std::time(nullptr));
	StoreResult sr = c.exists ? store_.replace(c.path, c.doc.etag, nd)
							  : store_.create(c.path, c.uri.auid, c.uri.global ? "" : c.uri.xui, nd);
	if (sr == StoreResult::Conflict || (sr == StoreResult::NotFound && c.exists)) {
		resp.status = -1;
		return false;
	}
	if (sr != StoreResult::Ok) {
		resp = simple(503, "Service Unavailable (storage)", "storage");
		resp.headers.emplace_back("Retry-After", "5");
		return false;
	}
	if (hook_) hook_(c.path, c.exists ? c.doc.etag : "", nd.etag);
	resp.etag = nd.etag;
	return true;
}

// The answer to an edit that was refused: 400/404 or a 409 with its error element.
static Response edit_refusal(const Edit &e)
{
	if (e.status == 400) return simple(400, "Bad Request (" + e.phrase + ")", "uri");
	if (e.status == 404) return simple(404, "Not Found (" + e.phrase + ")", "");
	return conflict(e.element, e.phrase, e.inner);
}

// Loads the stored document and checks the preconditions of a change. false: resp is the
// answer (404, 412, 503).
static bool load_for_change(Storage &st, const std::string &path, bool need_doc, const Request &q,
		bool &exists, StoredDoc &doc, Response &resp)
{
	StoreResult sr = st.fetch(path, doc);
	if (sr == StoreResult::Error) {
		resp = simple(503, "Service Unavailable (storage)", "storage");
		resp.headers.emplace_back("Retry-After", "5");
		return false;
	}
	exists = sr == StoreResult::Ok;
	if (q.has_if_match && !etag_matches(q.if_match, exists ? doc.etag : "")) {
		resp = simple(412, "Precondition Failed", "precondition");
		if (exists) resp.etag = doc.etag;
		return false;
	}
	if (q.has_if_none_match && etag_matches(q.if_none_match, exists ? doc.etag : "")) {
		resp = simple(412, "Precondition Failed", "precondition");
		resp.etag = doc.etag;
		return false;
	}
	if (need_doc && !exists) {
		resp = simple(404, "Not Found (no such document)", "");
		return false;
	}
	return true;
}

Response Server::put(Ctx &c)
{
	const Request &q = c.req;
	std::string ct = mime_base(q.content_type);
	const NodeSelector &ns = c.uri.node;
	if (!c.uri.has_node) {
		// section 8.2.2: the usage's type, else 415. No type at all, or the one HTTP
		// libraries put on a body whose client named none (urllib: form-urlencoded), is
		// taken as the usage's, as XCAP client libraries send documents that way
		if (ct != c.au->mime && !ct.empty() && ct != "application/x-www-form-urlencoded")
			return simple(415, "Unsupported Media Type (" + c.au->auid + " takes " + c.au->mime + ")",
					"media-type");
	} else if (ns.terminal == Terminal::Attribute) {
		if (ct != kAttMime) return simple(415, "Unsupported Media Type (an attribute takes application/xcap-att+xml)", "media-type");
	} else if (ct != kElMime) {
		return simple(415, "Unsupported Media Type (an element takes application/xcap-el+xml)", "media-type");
	}
	if (!valid_utf8(q.body)) return conflict("not-utf-8", "the body is not UTF-8");

	Response resp;
	if (!c.uri.has_node) {
		auto p = imps::xml::parse_safe(q.body);
		if (!p.ok)
			return conflict("not-well-formed", p.doctype ? "a DOCTYPE is not accepted"
														 : "not well-formed at line " + std::to_string(p.error_line));
		if (declares_other_encoding(p.doc.get())) return conflict("not-utf-8", "the document declares another encoding");
		if (!load_for_change(store_, c.path, false, q, c.exists, c.doc, resp)) return resp;
		if (!validate(c, p.doc.get(), resp)) return resp;
		if (!store(c, q.body, resp)) return resp;
		Response r = simple(c.exists ? 200 : 201, c.exists ? "OK" : "Created");
		r.etag = resp.etag;
		return r;
	}

	// element or attribute: the document must exist (RFC 4825 section 8.2.1: else no-parent)
	if (!load_for_change(store_, c.path, false, q, c.exists, c.doc, resp)) return resp;
	if (!c.exists) {
		std::string anc = cfg_.root + "/" + c.uri.auid + (c.uri.global ? "/global" : "/users/" + c.uri.xui);
		return conflict("no-parent", "the document does not exist", "<ancestor>" + esc(anc) + "</ancestor>");
	}
	auto p = imps::xml::parse_safe(c.doc.body);
	if (!p.ok) return simple(500, "Internal Server Error (stored document unreadable)", "storage");
	Target t{ns, c.uri.bindings, c.au->ns, cfg_.root + "/" + c.path};
	Edit e = ns.terminal == Terminal::Attribute ? put_attribute(c.doc.body, p.doc.get(), t, q.body)
												: put_element(c.doc.body, p.doc.get(), t, q.body);
	if (!e.ok) return edit_refusal(e);
	if (!validate(c, e.doc.get(), resp)) return resp;
	if (!store(c, e.text, resp)) return resp;
	Response r = simple(e.created ? 201 : 200, e.created ? "Created" : "OK");
	r.etag = resp.etag;
	return r;
}

Response Server::del(Ctx &c)
{
	const Request &q = c.req;
	Response resp;
	if (!load_for_change(store_, c.path, true, q, c.exists, c.doc, resp)) return resp;
	if (!c.uri.has_node) {
		StoreResult sr = store_.remove(c.path, c.doc.etag);
		if (sr == StoreResult::Conflict) return simple(-1, "");
		if (sr == StoreResult::NotFound) return simple(404, "Not Found");
		if (sr != StoreResult::Ok) {
			Response r = simple(503, "Service Unavailable (storage)", "storage");
			r.headers.emplace_back("Retry-After", "5");
			return r;
		}
		if (hook_) hook_(c.path, c.doc.etag, "");
		return simple(200, "OK");
	}
	auto p = imps::xml::parse_safe(c.doc.body);
	if (!p.ok) return simple(500, "Internal Server Error (stored document unreadable)", "storage");
	Target t{c.uri.node, c.uri.bindings, c.au->ns, cfg_.root + "/" + c.path};
	Edit e = delete_node(c.doc.body, p.doc.get(), t);
	if (!e.ok) return edit_refusal(e);
	if (!validate(c, e.doc.get(), resp)) return resp;
	if (!store(c, e.text, resp)) return resp;
	Response r = simple(200, "OK");
	r.etag = resp.etag;
	return r;
}

}  // namespace imps::xcap
