#include "imps_xcap/core/app_usage.hpp"

#include "imps/xml_parse.hpp"

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>

#include <cstring>
#include <map>
#include <set>
#include <stdexcept>

namespace imps::xcap {
namespace {

const char *kRl = "urn:ietf:params:xml:ns:resource-lists";
const char *kRls = "urn:ietf:params:xml:ns:rls-services";
const char *kCp = "urn:ietf:params:xml:ns:common-policy";
const char *kPr = "urn:ietf:params:xml:ns:pres-rules";
const char *kOmaCp = "urn:oma:xml:xdm:common-policy";
const char *kOmaPr = "urn:oma:xml:prs:pres-rules";
const char *kCaps = "urn:ietf:params:xml:ns:xcap-caps";
const char *kDir = "urn:oma:xml:xdm:xcap-directory";

using imps::xml::str_of;

bool in_ns(xmlNodePtr n, const char *ns, const char *local)
{
	return n && n->type == XML_ELEMENT_NODE && n->ns && str_of(n->ns->href) == ns
			&& str_of(n->name) == local;
}

using imps::xml::prop;
std::string esc(const std::string &v) { return xml_escape(v); }

// ---- schema compilation: embedded files only -------------------------------------------

xmlExternalEntityLoader g_prev_loader = nullptr;

xmlParserInputPtr embedded_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
	std::string u = url ? url : "";
	size_t slash = u.find_last_of('/');
	const std::string *text = embedded_schema(slash == std::string::npos ? u : u.substr(slash + 1));
	if (!text) return nullptr;  // nothing else, and never the network
	return xmlNewStringInputStream(ctxt, BAD_CAST text->c_str());
}

struct SchemaErrors {
	std::string text;
	int n = 0;
};

void collect(void *ctx, xmlErrorPtr e)
{
	auto *s = static_cast<SchemaErrors *>(ctx);
	if (!e || e->level < XML_ERR_ERROR) return;
	if (++s->n > 3) return;
	std::string m = e->message ? e->message : "invalid";
	while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
	if (!s->text.empty()) s->text += "; ";
	s->text += "line " + std::to_string(e->line) + ": " + m;
}

xmlSchemaPtr compile_text(const std::string &text, std::string *why)
{
	g_prev_loader = xmlGetExternalEntityLoader();
	xmlSetExternalEntityLoader(embedded_loader);
	xmlSchemaParserCtxtPtr pc = xmlSchemaNewMemParserCtxt(text.c_str(), static_cast<int>(text.size()));
	SchemaErrors errs;
	xmlSchemaPtr s = nullptr;
	if (pc) {
		xmlSchemaSetParserStructuredErrors(pc, collect, &errs);
		s = xmlSchemaParse(pc);
		xmlSchemaFreeParserCtxt(pc);
	}
	xmlSetExternalEntityLoader(g_prev_loader);
	if (!s && why) *why = errs.text;
	return s;
}

xmlSchemaPtr compile(const std::vector<std::pair<std::string, std::string>> &imports)
{
	std::string w = "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">";
	for (const auto &[ns, file] : imports) {
		if (!embedded_schema(file)) throw std::runtime_error("no embedded schema " + file);
		w += "<xs:import namespace=\"" + ns + "\" schemaLocation=\"" + file + "\"/>";
	}
	w += "</xs:schema>";
	std::string why;
	xmlSchemaPtr s = compile_text(w, &why);
	if (!s) throw std::runtime_error("schema " + imports.back().second + ": " + why);
	return s;
}

// ---- constraints ---------------------------------------------------------------------------

// "<field>" with a few free alternatives: value-1, value-2, ...
std::string exists(const std::string &field, const std::string &value,
		const std::set<std::string> &taken)
{
	std::string inner = "<exists field=\"" + esc(field) + "\">";
	int n = 0;
	for (int i = 1; n < 3 && i < 1000; ++i) {
		std::string alt = value;
		size_t at = alt.find('@');
		std::string suffix = "-" + std::to_string(i);
		if (at != std::string::npos && alt.rfind("sip", 0) == 0) alt.insert(at, suffix);
		else alt += suffix;
		if (taken.count(alt)) continue;
		inner += "<alt-value>" + esc(alt) + "</alt-value>";
		++n;
	}
	return inner + "</exists>";
}

bool absolute_uri(const std::string &v)
{
	size_t c = v.find(':');
	if (c == std::string::npos || c == 0) return false;
	if (!std::isalpha(static_cast<unsigned char>(v[0]))) return false;
	for (size_t i = 1; i < c; ++i) {
		unsigned char ch = static_cast<unsigned char>(v[i]);
		if (!std::isalnum(ch) && ch != '+' && ch != '-' && ch != '.') return false;
	}
	return c + 1 < v.size();
}

bool http_uri(const std::string &v)
{
	return v.rfind("http://", 0) == 0 || v.rfind("https://", 0) == 0;
}

std::string list_selector(xmlNodePtr list, const std::string &root)
{
	std::vector<std::string> steps;
	for (xmlNodePtr n = list; n && n->type == XML_ELEMENT_NODE; n = n->parent) {
		std::string s = str_of(n->name);
		if (str_of(n->name) == "list" && !prop(n, "name").empty())
			s += "[@name=\"" + prop(n, "name") + "\"]";
		else if (str_of(n->name) == "service" && !prop(n, "uri").empty())
			s += "[@uri=\"" + prop(n, "uri") + "\"]";
		steps.insert(steps.begin(), s);
	}
	std::string out;
	for (const auto &s : steps) out += (out.empty() ? "" : "/") + s;
	return out.empty() ? root : out;
}

// RFC 4826 section 3.4.5: among the children of one <list> (or of <resource-lists>), the
// name of each <list>, the uri of each <entry>, the ref of each <entry-ref> and the anchor
// of each <external> are unique. Section 3.4.6/3.4.7: entry-ref is a relative HTTP URI
// (below the XCAP root), external an absolute HTTP URI.
bool check_list_children(xmlNodePtr parent, Refusal &why)
{
	struct Kind {
		const char *element, *attr;
	};
	const Kind kinds[] = {{"list", "name"}, {"entry", "uri"}, {"entry-ref", "ref"},
			{"external", "anchor"}};
	for (const auto &k : kinds) {
		std::set<std::string> seen;
		for (xmlNodePtr c = parent->children; c; c = c->next) {
			if (!in_ns(c, kRl, k.element) && !(in_ns(c, kRls, k.element))) continue;
			std::string v = prop(c, k.attr);
			if (v.empty()) continue;
			if (!seen.insert(v).second) {
				why.element = "uniqueness-failure";
				why.phrase = std::string("two <") + k.element + "> with " + k.attr + " \"" + v + "\"";
				why.inner = exists(list_selector(parent, "resource-lists") + "/" + k.element + "/@"
								+ k.attr, v, seen);
				return false;
			}
			if (std::strcmp(k.element, "entry") == 0 && !absolute_uri(v)) {
				why.element = "constraint-failure";
				why.phrase = "entry uri \"" + v + "\" is not a URI";
				return false;
			}
			if (std::strcmp(k.element, "entry-ref") == 0 && (absolute_uri(v) || v[0] == '/')) {
				why.element = "constraint-failure";
				why.phrase = "entry-ref \"" + v + "\" is not relative to the XCAP root";
				return false;
			}
			if (std::strcmp(k.element, "external") == 0 && !http_uri(v)) {
				why.element = "constraint-failure";
				why.phrase = "external anchor \"" + v + "\" is not an absolute HTTP URI";
				return false;
			}
		}
	}
	for (xmlNodePtr c = parent->children; c; c = c->next)
		if (in_ns(c, kRl, "list") || in_ns(c, kRls, "list"))
			if (!check_list_children(c, why)) return false;
	return true;
}

bool check_resource_lists(xmlDocPtr doc, const std::string &, const CorpusFn &, Refusal &why)
{
	xmlNodePtr root = xmlDocGetRootElement(doc);
	return check_list_children(root, why);
}

// RFC 4826 section 4.4.5/4.4.6: the uri of a <service> is unique within the document and
// across the documents of every user (the global index); a <resource-list> is an HTTP URI;
// a <list> is a resource list and follows its constraints.
bool check_rls_services(xmlDocPtr doc, const std::string &path, const CorpusFn &corpus,
		Refusal &why)
{
	xmlNodePtr root = xmlDocGetRootElement(doc);
	std::set<std::string> mine;
	for (xmlNodePtr s = root->children; s; s = s->next) {
		if (!in_ns(s, kRls, "service")) continue;
		std::string uri = prop(s, "uri");
		if (!mine.insert(uri).second) {
			why.element = "uniqueness-failure";
			why.phrase = "two services with uri \"" + uri + "\"";
			why.inner = exists("rls-services/service/@uri", uri, mine);
			return false;
		}
		if (!absolute_uri(uri)) {
			why.element = "constraint-failure";
			why.phrase = "service uri \"" + uri + "\" is not a URI";
			return false;
		}
		for (xmlNodePtr c = s->children; c; c = c->next) {
			if (in_ns(c, kRls, "resource-list")) {
				xmlChar *t = xmlNodeGetContent(c);
				std::string v = str_of(t);
				if (t) xmlFree(t);
				while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
				size_t b = v.find_first_not_of(" \t\r\n");
				v = b == std::string::npos ? "" : v.substr(b);
				if (!http_uri(v)) {
					why.element = "constraint-failure";
					why.phrase = "resource-list \"" + v + "\" is not an HTTP URI";
					return false;
				}
			} else if (in_ns(c, kRls, "list")) {
				if (!check_list_children(c, why)) return false;
			}
		}
	}
	if (mine.empty() || !corpus) return true;
	std::vector<std::pair<std::string, std::string>> others;
	if (!corpus("rls-services", others)) {
		why.element = "extension";
		why.phrase = "the service URIs of other users cannot be read";
		return false;
	}
	std::set<std::string> taken;
	std::string clash;
	for (const auto &[p, body] : others) {
		if (p == path) continue;
		auto d = imps::xml::parse_safe(body);
		if (!d.ok) continue;
		for (const auto &u : rls_service_uris(d.doc.get())) {
			taken.insert(u);
			if (clash.empty() && mine.count(u)) clash = u;
		}
	}
	if (clash.empty()) return true;
	for (const auto &m : mine) taken.insert(m);
	why.element = "uniqueness-failure";
	why.phrase = "service uri \"" + clash + "\" is taken";
	why.inner = exists("rls-services/service/@uri", clash, taken);
	return false;
}

// RFC 4745 section 7: the id of each <rule> is unique within the ruleset.
bool check_ruleset(xmlDocPtr doc, const std::string &, const CorpusFn &, Refusal &why)
{
	xmlNodePtr root = xmlDocGetRootElement(doc);
	std::set<std::string> ids;
	for (xmlNodePtr r = root->children; r; r = r->next) {
		if (!in_ns(r, kCp, "rule")) continue;
		std::string id = prop(r, "id");
		if (!ids.insert(id).second) {
			why.element = "uniqueness-failure";
			why.phrase = "two rules with id \"" + id + "\"";
			why.inner = exists("ruleset/rule/@id", id, ids);
			return false;
		}
	}
	return true;
}

}  // namespace

std::string xml_escape(const std::string &v) { return imps::xml::escape(v); }

xmlSchemaPtr compile_embedded(const std::string &file)
{
	const std::string *text = embedded_schema(file);
	return text ? compile_text(*text, nullptr) : nullptr;
}

std::vector<std::string> rls_service_uris(xmlDocPtr doc)
{
	std::vector<std::string> out;
	xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : nullptr;
	if (!in_ns(root, kRls, "rls-services")) return out;
	for (xmlNodePtr s = root->children; s; s = s->next)
		if (in_ns(s, kRls, "service")) out.push_back(prop(s, "uri"));
	return out;
}

AppUsages::AppUsages()
{
	auto add = [&](std::string auid, std::string ns, std::string mime, std::string root,
					   AppUsage::Kind kind,
					   std::vector<std::pair<std::string, std::string>> imports, auto check) {
		auto u = std::make_unique<AppUsage>();
		u->auid = std::move(auid);
		u->ns = std::move(ns);
		u->mime = std::move(mime);
		u->root_local = std::move(root);
		u->kind = kind;
		for (const auto &i : imports) u->namespaces.push_back(i.first);
		u->schema = compile(imports);
		schemas_.push_back(u->schema);
		u->check = check;
		u->check_first = u->root_local == "ruleset";
		usages_.push_back(std::move(u));
	};
	using K = AppUsage::Kind;
	add("resource-lists", kRl, "application/resource-lists+xml", "resource-lists", K::Stored,
			{{kRl, "resource-lists.xsd"}}, check_resource_lists);
	add("rls-services", kRls, "application/rls-services+xml", "rls-services", K::Stored,
			{{kRl, "resource-lists.xsd"}, {kRls, "rls-services.xsd"}}, check_rls_services);
	// RFC 5025 section 9.3: the default namespace is pres-rules (the root is cr:ruleset)
	add("pres-rules", kPr, "application/auth-policy+xml", "ruleset", K::Stored,
			{{kCp, "common-policy.xsd"}, {kPr, "pres-rules.xsd"}}, check_ruleset);
	// OMA-TS-Presence_SIMPLE_XDM 5.1.1.3 (as cited by doubango and RestComm): common-policy
	add("org.openmobilealliance.pres-rules", kCp, "application/auth-policy+xml", "ruleset",
			K::Stored,
			{{kCp, "common-policy.xsd"}, {kPr, "pres-rules.xsd"}, {kOmaCp, "oma-common-policy.xsd"},
					{kOmaPr, "oma-pres-rules.xsd"}},
			check_ruleset);
	add("xcap-caps", kCaps, "application/xcap-caps+xml", "xcap-caps", K::Caps,
			{{kCaps, "xcap-caps.xsd"}}, nullptr);
	add("org.openmobilealliance.xcap-directory", kDir, "application/vnd.oma.xcap-directory+xml",
			"xcap-directory", K::Directory, {{kDir, "xcap-directory.xsd"}}, nullptr);
}

AppUsages::~AppUsages()
{
	for (auto s : schemas_) xmlSchemaFree(s);
}

const AppUsage *AppUsages::find(const std::string &auid) const
{
	for (const auto &u : usages_)
		if (u->auid == auid) return u.get();
	return nullptr;
}

bool AppUsages::validate(const AppUsage &u, xmlDocPtr doc, std::string *why)
{
	xmlNodePtr root = xmlDocGetRootElement(doc);
	// the root element is the usage's: its schema alone knows several global elements
	std::string root_ns = u.auid.find("pres-rules") != std::string::npos ? kCp : u.ns;
	if (!in_ns(root, root_ns.c_str(), u.root_local.c_str())) {
		if (why)
			*why = "the root element is not <" + u.root_local + "> of namespace " + root_ns;
		return false;
	}
	xmlSchemaValidCtxtPtr vc = xmlSchemaNewValidCtxt(u.schema);
	if (!vc) {
		if (why) *why = "out of memory";
		return false;
	}
	SchemaErrors errs;
	xmlSchemaSetValidStructuredErrors(vc, collect, &errs);
	int rc = xmlSchemaValidateDoc(vc, doc);
	xmlSchemaFreeValidCtxt(vc);
	if (rc != 0 && why) *why = errs.text.empty() ? "invalid" : errs.text;
	return rc == 0;
}

}  // namespace imps::xcap
