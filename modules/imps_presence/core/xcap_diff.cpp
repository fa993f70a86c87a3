#include "xcap_diff.hpp"

#include "imps/sip_text.hpp"
#include "imps/xml_parse.hpp"

namespace imps::presence::xcapdiff {
namespace {

std::string esc(std::string_view v) { return imps::xml::escape(v); }

const char *kRl = "urn:ietf:params:xml:ns:resource-lists";

using imps::xml::str_of;

void collect(xmlNodePtr n, std::vector<std::string> &uris)
{
	for (xmlNodePtr c = n->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || !c->ns || str_of(c->ns->href) != kRl) continue;
		std::string name = str_of(c->name);
		if (name == "list") collect(c, uris);
		else if (name == "entry") {
			xmlChar *u = xmlGetNoNsProp(c, BAD_CAST "uri");
			if (u) uris.push_back(str_of(u));
			if (u) xmlFree(u);
		}
	}
}

// the auid, and what follows it, of a relative XCAP path
bool split_path(const std::string &p, std::string &auid, std::string &rest)
{
	size_t s = p.find('/');
	if (s == std::string::npos || s == 0) return false;
	auid = p.substr(0, s);
	rest = p.substr(s + 1);
	return true;
}

}  // namespace

bool parse_selection(std::string_view body, const std::string &root, const std::string &xui,
		std::vector<std::string> &out, std::string &why)
{
	out.clear();
	auto p = imps::xml::parse_safe(body);
	xmlNodePtr r = p.ok ? xmlDocGetRootElement(p.doc.get()) : nullptr;
	if (!r || !r->ns || str_of(r->ns->href) != kRl || str_of(r->name) != "resource-lists") {
		why = "the body is not a resource-lists document";
		return false;
	}
	std::vector<std::string> uris;
	collect(r, uris);
	std::string base = root;
	while (!base.empty() && base.back() == '/') base.pop_back();
	for (std::string u : uris) {
		u = trim(u);
		if (u.rfind("http://", 0) == 0 || u.rfind("https://", 0) == 0) {
			if (u.compare(0, base.size() + 1, base + "/") != 0) continue;  // another server's
			u = u.substr(base.size() + 1);
		}
		while (!u.empty() && u.front() == '/') u.erase(0, 1);
		std::string auid, rest;
		if (!split_path(u, auid, rest)) continue;
		bool readable = rest.empty() || rest.rfind("global/", 0) == 0 || rest == "users/" + xui + "/"
				|| rest.rfind("users/" + xui + "/", 0) == 0;
		if (!readable || u.size() > 1024) continue;  // RFC 5875 4.7: left out
		bool dup = false;
		for (const auto &o : out) dup |= o == u;
		if (!dup) out.push_back(u);
		if (out.size() >= 64) break;
	}
	if (out.empty()) {
		why = "no XCAP URI of the body names documents the subscriber may read";
		return false;
	}
	return true;
}

std::string join(const std::vector<std::string> &sel)
{
	std::string s;
	for (const auto &x : sel) s += (s.empty() ? "" : "\n") + x;
	return s;
}

std::vector<std::string> split(const std::string &stored)
{
	std::vector<std::string> out;
	size_t from = 0;
	while (from < stored.size()) {
		size_t nl = stored.find('\n', from);
		if (nl == std::string::npos) nl = stored.size();
		if (nl > from) out.push_back(stored.substr(from, nl - from));
		from = nl + 1;
	}
	return out;
}

bool is_collection(const std::string &sel) { return !sel.empty() && sel.back() == '/'; }

bool is_component(const std::string &sel) { return sel.find("/~~/") != std::string::npos; }

std::string document_of(const std::string &sel)
{
	size_t n = sel.find("/~~/");
	return n == std::string::npos ? sel : sel.substr(0, n);
}

bool is_attribute(const std::string &sel)
{
	if (!is_component(sel)) return false;
	std::string node = sel.substr(sel.find("/~~/") + 4);
	size_t q = node.find('?');
	if (q != std::string::npos) node = node.substr(0, q);
	size_t slash = node.rfind('/');
	std::string last = slash == std::string::npos ? node : node.substr(slash + 1);
	return !last.empty() && last[0] == '@';
}

bool covers(const std::string &sel, const std::string &path, const std::string &xui)
{
	if (!is_collection(sel)) return document_of(sel) == path;
	if (path.compare(0, sel.size(), sel) != 0) return false;
	std::string auid, rest;
	if (!split_path(path, auid, rest)) return false;
	// a usage's whole collection: what the subscriber may read of it
	return rest.rfind("global/", 0) == 0 || rest.rfind("users/" + xui + "/", 0) == 0;
}

std::string document(const std::string &root, const std::vector<Item> &items)
{
	std::string r = root;
	if (r.empty() || r.back() != '/') r += '/';
	std::string o = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			"<d:xcap-diff xmlns:d=\"urn:ietf:params:xml:ns:xcap-diff\" xcap-root=\"" + esc(r) + "\">\n";
	for (const auto &i : items) {
		switch (i.kind) {
		case Item::Kind::Document:
			o += " <d:document sel=\"" + esc(i.sel) + "\"";
			if (!i.previous_etag.empty()) o += " previous-etag=\"" + esc(i.previous_etag) + "\"";
			if (!i.new_etag.empty()) o += " new-etag=\"" + esc(i.new_etag) + "\"";
			o += "/>\n";
			break;
		case Item::Kind::Element:
			o += " <d:element sel=\"" + esc(i.sel) + "\"";
			if (!i.exists) {
				o += " exists=\"false\"/>\n";
				break;
			}
			o += i.ns_decls + ">" + i.content + "</d:element>\n";
			break;
		case Item::Kind::Attribute:
			o += " <d:attribute sel=\"" + esc(i.sel) + "\"";
			if (!i.exists) {
				o += " exists=\"false\"/>\n";
				break;
			}
			o += ">" + esc(i.content) + "</d:attribute>\n";
			break;
		}
	}
	o += "</d:xcap-diff>\n";
	return o;
}

std::string root_namespaces(std::string_view doc)
{
	auto p = imps::xml::parse_safe(doc);
	xmlNodePtr r = p.ok ? xmlDocGetRootElement(p.doc.get()) : nullptr;
	if (!r) return {};
	std::string o;
	for (xmlNsPtr ns = r->nsDef; ns; ns = ns->next) {
		std::string prefix = str_of(ns->prefix);
		if (prefix == "d") continue;  // ours; a component using it would be ambiguous anyway
		o += prefix.empty() ? " xmlns=\"" : " xmlns:" + prefix + "=\"";
		o += esc(str_of(ns->href)) + "\"";
	}
	return o;
}

}  // namespace imps::presence::xcapdiff
