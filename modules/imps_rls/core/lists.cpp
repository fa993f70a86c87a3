#include "lists.hpp"

#include "imps/sip_text.hpp"
#include "imps/xml_parse.hpp"

#include <set>

namespace imps::rls {
namespace {

const char *kRl = "urn:ietf:params:xml:ns:resource-lists";
const char *kRs = "urn:ietf:params:xml:ns:rls-services";

using imps::xml::prop;
using imps::xml::str_of;
std::string text(xmlNodePtr n) { return imps::xml::content(n); }

// An element of ns, or of no namespace: an element a GET of a node returns carries no
// declaration of the default namespace it had in its document.
bool is(xmlNodePtr n, const char *ns, const char *local)
{
	if (!n || n->type != XML_ELEMENT_NODE || str_of(n->name) != local) return false;
	return !n->ns || str_of(n->ns->href) == ns;
}

std::string display_name(xmlNodePtr n)
{
	for (xmlNodePtr c = n->children; c; c = c->next)
		if (is(c, kRl, "display-name")) return text(c);
	return {};
}

struct Walk {
	const std::string &owner_xui;  // references may name only its documents and global ones
	const std::string &root;
	const Fetch &fetch;
	const Limits &lim;
	Resolved &out;
	std::set<std::string> seen;  // references followed on the current path (loops)
};

void walk_list(xmlNodePtr list, Node &into, Walk &w, int depth, const std::string &base_uri);

// The nested list l as a child of into: named by its display-name (unless name is given),
// its URI base_uri;list=<its name>, its members walked one level deeper.
void add_sublist(xmlNodePtr l, Node &into, Walk &w, int depth, const std::string &base_uri,
		const std::string &name = std::string())
{
	Node sub;
	sub.is_list = true;
	sub.name = name.empty() ? display_name(l) : name;
	sub.uri = base_uri + ";list=" + prop(l, "name");
	walk_list(l, sub, w, depth + 1, sub.uri);
	into.children.push_back(std::move(sub));
}

// A reference (entry-ref relative to the root, external absolute) fetched: the element.
bool fetch_ref(const std::string &ref, Walk &w, std::string &body, std::string &path)
{
	path = ref;
	if (path.rfind("http://", 0) == 0 || path.rfind("https://", 0) == 0) {
		std::string base = w.root;
		while (!base.empty() && base.back() == '/') base.pop_back();
		if (path.compare(0, base.size() + 1, base + "/") != 0) {
			w.out.errors.push_back(ref + ": not on this XCAP server");
			return false;
		}
		path = path.substr(base.size() + 1);
	}
	while (!path.empty() && path.front() == '/') path.erase(0, 1);
	// the owner's documents (or global ones) only: a list cannot show another user's lists
	size_t slash = path.find('/');
	std::string rest = slash == std::string::npos ? std::string() : path.substr(slash + 1);
	if (rest.rfind("users/" + w.owner_xui + "/", 0) != 0 && rest.rfind("global/", 0) != 0) {
		w.out.errors.push_back(ref + ": not a document of " + w.owner_xui);
		return false;
	}
	int st = w.fetch(path, body);
	if (st != 200) {
		w.out.errors.push_back(ref + ": " + (st < 0 ? std::string("unreadable") : "HTTP " + std::to_string(st)));
		return false;
	}
	return true;
}

void add_member(Node &into, const std::string &uri, const std::string &name, Walk &w)
{
	for (const auto &c : into.children)
		if (!c.is_list && c.uri == uri) return;  // RFC 4826: unique within a list
	if (w.out.members >= w.lim.max_members) {
		w.out.truncated = true;
		return;
	}
	Node m;
	m.uri = uri;
	m.name = name;
	into.children.push_back(std::move(m));
	++w.out.members;
}

// a referenced list (external, resource-list): the fetched <list> element as a nested list
void follow_list(const std::string &ref, Node &into, Walk &w, int depth, const std::string &name,
		const std::string &base_uri, bool inline_here)
{
	if (depth >= w.lim.max_depth) {
		w.out.errors.push_back(ref + ": nested too deep");
		return;
	}
	if (w.seen.count(ref)) {
		w.out.errors.push_back(ref + ": loop");
		return;
	}
	std::string body, path;
	if (!fetch_ref(ref, w, body, path)) return;
	auto p = imps::xml::parse_safe(body);
	xmlNodePtr l = p.ok ? xmlDocGetRootElement(p.doc.get()) : nullptr;
	if (!l || !is(l, kRl, "list")) {
		// a whole resource-lists document: its lists
		if (l && is(l, kRl, "resource-lists")) {
			w.seen.insert(ref);
			for (xmlNodePtr c = l->children; c; c = c->next)
				if (is(c, kRl, "list")) add_sublist(c, into, w, depth, base_uri);
			w.seen.erase(ref);
			return;
		}
		w.out.errors.push_back(ref + ": not a list");
		return;
	}
	w.seen.insert(ref);
	if (inline_here) {
		walk_list(l, into, w, depth + 1, base_uri);
	} else {
		add_sublist(l, into, w, depth, base_uri, name);
	}
	w.seen.erase(ref);
}

void walk_list(xmlNodePtr list, Node &into, Walk &w, int depth, const std::string &base_uri)
{
	if (into.name.empty()) into.name = display_name(list);
	for (xmlNodePtr c = list->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE) continue;
		if (is(c, kRl, "entry")) {
			add_member(into, prop(c, "uri"), display_name(c), w);
		} else if (is(c, kRl, "list")) {
			if (depth + 1 >= w.lim.max_depth) {
				w.out.errors.push_back("list " + prop(c, "name") + ": nested too deep");
				continue;
			}
			add_sublist(c, into, w, depth, base_uri);
		} else if (is(c, kRl, "entry-ref")) {
			std::string ref = prop(c, "ref"), body, path;
			if (w.seen.count(ref)) {
				w.out.errors.push_back(ref + ": loop");
				continue;
			}
			if (!fetch_ref(ref, w, body, path)) continue;
			auto p = imps::xml::parse_safe(body);
			xmlNodePtr e = p.ok ? xmlDocGetRootElement(p.doc.get()) : nullptr;
			if (!e || !is(e, kRl, "entry")) {
				w.out.errors.push_back(ref + ": not an entry");
				continue;
			}
			std::string name = display_name(c);
			add_member(into, prop(e, "uri"), name.empty() ? display_name(e) : name, w);
		} else if (is(c, kRl, "external")) {
			follow_list(prop(c, "anchor"), into, w, depth, display_name(c), base_uri, false);
		}
	}
}

}  // namespace

std::vector<Service> parse_services(std::string_view doc, const std::string &owner_xui, const std::string &path)
{
	std::vector<Service> out;
	auto p = imps::xml::parse_safe(doc);
	xmlNodePtr r = p.ok ? xmlDocGetRootElement(p.doc.get()) : nullptr;
	if (!r || !is(r, kRs, "rls-services")) return out;
	int index = 0;
	for (xmlNodePtr s = r->children; s; s = s->next) {
		if (!is(s, kRs, "service")) continue;
		Service sv;
		sv.uri = prop(s, "uri");
		sv.owner_xui = owner_xui;
		sv.path = path;
		sv.index = index++;
		for (xmlNodePtr c = s->children; c; c = c->next) {
			if (is(c, kRs, "list")) {
				sv.has_list = true;
				sv.doc = std::string(doc);
			}
			else if (is(c, kRs, "resource-list")) sv.resource_list = text(c);
			else if (is(c, kRs, "packages"))
				for (xmlNodePtr k = c->children; k; k = k->next)
					if (is(k, kRs, "package")) sv.packages.push_back(text(k));
		}
		out.push_back(std::move(sv));
	}
	return out;
}

Resolved resolve(const Service &s, const std::string &root, const Fetch &fetch, const Limits &lim)
{
	Resolved out;
	out.root.is_list = true;
	out.root.uri = s.uri;
	Walk w{s.owner_xui, root, fetch, lim, out, {}};
	if (s.has_list) {
		// the inline <list> is of rls-services' schema (type resource-lists:listType, in the
		// rls-services namespace as its element); its children are resource-lists elements
		auto p = imps::xml::parse_safe(s.doc);
		xmlNodePtr r = p.ok ? xmlDocGetRootElement(p.doc.get()) : nullptr;
		int index = 0;
		for (xmlNodePtr sv = r ? r->children : nullptr; sv; sv = sv->next) {
			if (!is(sv, kRs, "service") || index++ != s.index) continue;
			for (xmlNodePtr l = sv->children; l; l = l->next)
				if (is(l, kRs, "list")) {
					out.root.name = display_name(l);
					walk_list(l, out.root, w, 0, s.uri);
					break;
				}
		}
	} else if (!s.resource_list.empty()) {
		follow_list(s.resource_list, out.root, w, 0, "", s.uri, true);
	}
	return out;
}

Resolved resolve_body(std::string_view body, const std::string &uri, const std::string &owner_xui,
		const std::string &root, const Fetch &fetch, const Limits &lim, std::string &why)
{
	Resolved out;
	out.root.is_list = true;
	out.root.uri = uri;
	auto p = imps::xml::parse_safe(body);
	xmlNodePtr r = p.ok ? xmlDocGetRootElement(p.doc.get()) : nullptr;
	if (!r || !r->ns || str_of(r->ns->href) != kRl || str_of(r->name) != "resource-lists") {
		why = "the body is not a resource-lists document";
		return out;
	}
	Walk w{owner_xui, root, fetch, lim, out, {}};
	// RFC 5367: the list(s) of the body are the subscription's resources
	for (xmlNodePtr l = r->children; l; l = l->next)
		if (is(l, kRl, "list")) {
			if (out.root.name.empty()) out.root.name = display_name(l);
			walk_list(l, out.root, w, 0, uri);
		}
	return out;
}

namespace {

void members(const Node &n, std::vector<std::string> &out, std::set<std::string> &seen)
{
	for (const auto &c : n.children) {
		if (c.is_list) members(c, out, seen);
		else if (seen.insert(c.uri).second) out.push_back(c.uri);
	}
}

std::string clean(const std::string &v)
{
	std::string o = v;
	for (auto &c : o)
		if (c == '\t' || c == '\n' || c == '\r') c = ' ';
	return o;
}

void enc(const Node &n, int depth, std::string &out)
{
	out += std::string(n.is_list ? "L" : "M") + '\t' + std::to_string(depth) + '\t' + clean(n.uri) + '\t' + clean(n.name) + '\n';
	for (const auto &c : n.children) enc(c, depth + 1, out);
}

}  // namespace

std::vector<std::string> members_of(const Node &n)
{
	std::vector<std::string> out;
	std::set<std::string> seen;
	members(n, out, seen);
	return out;
}

std::string encode(const Node &n)
{
	std::string out;
	enc(n, 0, out);
	return out;
}

bool decode(const std::string &s, Node &out)
{
	std::vector<Node *> stack;
	out = Node{};
	size_t from = 0;
	bool first = true;
	while (from < s.size()) {
		size_t nl = s.find('\n', from);
		if (nl == std::string::npos) nl = s.size();
		std::string line = s.substr(from, nl - from);
		from = nl + 1;
		size_t t1 = line.find('\t'), t2 = t1 == std::string::npos ? t1 : line.find('\t', t1 + 1),
			   t3 = t2 == std::string::npos ? t2 : line.find('\t', t2 + 1);
		if (t3 == std::string::npos) return false;
		Node n;
		n.is_list = line[0] == 'L';
		int depth = std::atoi(line.c_str() + t1 + 1);
		n.uri = line.substr(t2 + 1, t3 - t2 - 1);
		n.name = line.substr(t3 + 1);
		if (first) {
			if (depth != 0 || !n.is_list) return false;
			out = std::move(n);
			stack.push_back(&out);
			first = false;
			continue;
		}
		if (depth < 1 || static_cast<size_t>(depth) > stack.size()) return false;
		stack.resize(depth);
		Node *parent = stack.back();
		if (!parent->is_list) return false;
		parent->children.push_back(std::move(n));
		stack.push_back(&parent->children.back());
	}
	return !first;
}

std::string presentity_of(const std::string &uri)
{
	std::string u = trim(uri);
	std::string l = lower(u);
	if (l.rfind("sip:", 0) == 0) u = u.substr(4);
	else if (l.rfind("sips:", 0) == 0) u = u.substr(5);
	else return {};
	size_t end = u.find_first_of(";?>");
	if (end != std::string::npos) u = u.substr(0, end);
	size_t at = u.rfind('@');
	if (at == std::string::npos || at == 0 || at + 1 == u.size()) return {};
	std::string host = lower(u.substr(at + 1));
	size_t colon = host.find(':');
	if (colon != std::string::npos) host = host.substr(0, colon);
	return u.substr(0, at) + "@" + host;
}

}  // namespace imps::rls
