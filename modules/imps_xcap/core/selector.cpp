#include "selector.hpp"

#include "imps/xml_parse.hpp"

#include <cctype>
#include <cstring>
#include <set>

namespace imps::xcap {
namespace {

constexpr int kMaxSteps = 64;
constexpr size_t kMaxSelector = 4096;

bool name_start(unsigned char c) { return c == '_' || std::isalpha(c) || c >= 0x80; }
bool name_char(unsigned char c)
{
	return name_start(c) || std::isdigit(c) || c == '-' || c == '.';
}

int hex(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

// A cursor over the decoded node selector.
struct Reader {
	std::string_view s;
	size_t i = 0;
	bool done() const { return i >= s.size(); }
	char peek() const { return done() ? '\0' : s[i]; }
	bool eat(char c)
	{
		if (peek() != c) return false;
		++i;
		return true;
	}
	bool eat(std::string_view w)
	{
		if (s.substr(i, w.size()) != w) return false;
		i += w.size();
		return true;
	}
	std::string ncname()
	{
		size_t b = i;
		if (done() || !name_start(static_cast<unsigned char>(s[i]))) return {};
		while (!done() && name_char(static_cast<unsigned char>(s[i]))) ++i;
		return std::string(s.substr(b, i - b));
	}
};

bool read_qname(Reader &r, QName &q, bool allow_any)
{
	q = QName{};
	if (allow_any && r.eat('*')) {
		q.any = true;
		return true;
	}
	std::string a = r.ncname();
	if (a.empty()) return false;
	if (r.peek() == ':' && r.s.substr(r.i, 2) != "::") {
		++r.i;
		std::string b = r.ncname();
		if (b.empty()) return false;
		q.prefix = a;
		q.local = b;
	} else {
		q.local = a;
	}
	return true;
}

// AttValue: "..." or '...', with the XML predefined entities and character references.
bool read_value(Reader &r, std::string &v)
{
	char q = r.peek();
	if (q != '"' && q != '\'') return false;
	++r.i;
	v.clear();
	while (!r.done() && r.peek() != q) {
		char c = r.s[r.i];
		if (c == '<') return false;
		if (c == '&') {
			size_t semi = r.s.find(';', r.i);
			if (semi == std::string_view::npos) return false;
			std::string_view ent = r.s.substr(r.i + 1, semi - r.i - 1);
			if (ent == "lt") v += '<';
			else if (ent == "gt") v += '>';
			else if (ent == "amp") v += '&';
			else if (ent == "quot") v += '"';
			else if (ent == "apos") v += '\'';
			else if (ent.size() > 1 && ent[0] == '#') {
				unsigned long cp = 0;
				bool hexa = ent[1] == 'x';
				std::string_view digits = ent.substr(hexa ? 2 : 1);
				if (digits.empty() || digits.size() > 6) return false;
				for (char d : digits) {
					int x = hexa ? hex(d) : (std::isdigit(static_cast<unsigned char>(d)) ? d - '0' : -1);
					if (x < 0) return false;
					cp = cp * (hexa ? 16 : 10) + static_cast<unsigned long>(x);
				}
				if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
				// UTF-8
				if (cp < 0x80) v += static_cast<char>(cp);
				else if (cp < 0x800) {
					v += static_cast<char>(0xC0 | (cp >> 6));
					v += static_cast<char>(0x80 | (cp & 0x3F));
				} else if (cp < 0x10000) {
					v += static_cast<char>(0xE0 | (cp >> 12));
					v += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
					v += static_cast<char>(0x80 | (cp & 0x3F));
				} else {
					v += static_cast<char>(0xF0 | (cp >> 18));
					v += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
					v += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
					v += static_cast<char>(0x80 | (cp & 0x3F));
				}
			} else {
				return false;
			}
			r.i = semi + 1;
			continue;
		}
		v += c;
		++r.i;
	}
	return r.eat(q);
}

bool read_position(Reader &r, int &pos)
{
	size_t b = r.i;
	long long n = 0;
	while (!r.done() && std::isdigit(static_cast<unsigned char>(r.peek()))) {
		n = n * 10 + (r.peek() - '0');
		if (n > 1000000) return false;
		++r.i;
	}
	if (r.i == b || n < 1) return false;
	pos = static_cast<int>(n);
	return true;
}

bool read_attr_test(Reader &r, Step &s)
{
	if (!r.eat('@') || !read_qname(r, s.attr, false) || !r.eat('=') || !read_value(r, s.value))
		return false;
	s.has_attr = true;
	return true;
}

using imps::xml::str_of;

bool is_element(xmlNodePtr n) { return n && n->type == XML_ELEMENT_NODE; }

bool name_matches(xmlNodePtr e, const QName &q, const std::vector<Binding> &bindings,
		const std::string &default_ns, bool *unbound)
{
	if (q.any) return true;
	std::string uri;
	if (!namespace_of(q, bindings, default_ns, uri)) {
		if (unbound) *unbound = true;
		return false;
	}
	if (str_of(e->name) != q.local) return false;
	return str_of(e->ns ? e->ns->href : nullptr) == uri;
}

}  // namespace

bool percent_decode(std::string_view in, std::string &out)
{
	out.clear();
	out.reserve(in.size());
	for (size_t i = 0; i < in.size(); ++i) {
		if (in[i] != '%') {
			out += in[i];
			continue;
		}
		if (i + 2 >= in.size()) return false;
		int a = hex(in[i + 1]), b = hex(in[i + 2]);
		if (a < 0 || b < 0) return false;
		char c = static_cast<char>(a * 16 + b);
		if (c == '\0') return false;
		out += c;
		i += 2;
	}
	return true;
}

std::optional<NodeSelector> parse_node_selector(std::string_view s, std::string *why)
{
	auto fail = [&](const char *w) -> std::optional<NodeSelector> {
		if (why) *why = w;
		return std::nullopt;
	};
	if (s.empty()) return fail("empty node selector");
	if (s.size() > kMaxSelector) return fail("node selector too long");
	Reader r{s};
	NodeSelector ns;
	for (;;) {
		if (r.eat("namespace::*")) {
			if (ns.steps.empty() || !r.done()) return fail("namespace::* is not the last step");
			ns.terminal = Terminal::Namespaces;
			break;
		}
		if (r.peek() == '@') {
			++r.i;
			if (ns.steps.empty() || !read_qname(r, ns.attr, false) || !r.done())
				return fail("malformed attribute selector");
			ns.terminal = Terminal::Attribute;
			break;
		}
		Step st;
		if (!read_qname(r, st.name, true)) return fail("malformed step in node selector");
		if (r.eat('[')) {
			if (r.peek() == '@') {
				if (!read_attr_test(r, st) || !r.eat(']')) return fail("malformed attribute test");
			} else {
				if (!read_position(r, st.position) || !r.eat(']')) return fail("malformed position");
				if (r.eat('[')) {
					if (!read_attr_test(r, st) || !r.eat(']')) return fail("malformed attribute test");
				}
			}
		}
		ns.steps.push_back(std::move(st));
		if (static_cast<int>(ns.steps.size()) > kMaxSteps) return fail("node selector too deep");
		if (r.done()) break;
		if (!r.eat('/')) return fail("unexpected character in node selector");
		if (r.done()) return fail("node selector ends with '/'");
	}
	return ns;
}

std::optional<Uri> parse_uri(std::string_view path, std::string_view query, std::string *why)
{
	auto fail = [&](const char *w) -> std::optional<Uri> {
		if (why) *why = w;
		return std::nullopt;
	};
	Uri u;
	std::string_view doc = path, node;
	size_t sep = path.find("/~~/");
	if (sep != std::string_view::npos) {
		doc = path.substr(0, sep);
		node = path.substr(sep + 4);
		u.has_node = true;
	}
	// segments of the document selector, each decoded
	std::vector<std::string> seg;
	size_t b = 0;
	while (b <= doc.size()) {
		size_t e = doc.find('/', b);
		if (e == std::string_view::npos) e = doc.size();
		std::string d;
		if (!percent_decode(doc.substr(b, e - b), d)) return fail("malformed percent-encoding");
		seg.push_back(std::move(d));
		b = e + 1;
	}
	for (const auto &x : seg)
		if (x.empty() || x == "." || x == ".." || x.find('/') != std::string::npos)
			return fail("malformed document selector");
	if (seg.size() < 3) return fail("no document in the selector");
	u.auid = seg[0];
	size_t first = 0;
	if (seg[1] == "global") {
		u.global = true;
		first = 2;
	} else if (seg[1] == "users") {
		if (seg.size() < 4) return fail("no document in the selector");
		u.xui = seg[2];
		first = 3;
	} else {
		return fail("document selector is neither global nor users");
	}
	for (size_t i = first; i < seg.size(); ++i) {
		if (i > first) u.document += '/';
		u.document += seg[i];
	}
	if (u.has_node) {
		std::string decoded;
		if (!percent_decode(node, decoded)) return fail("malformed percent-encoding");
		std::string w;
		auto n = parse_node_selector(decoded, &w);
		if (!n) {
			if (why) *why = w;
			return std::nullopt;
		}
		u.node = std::move(*n);
	}
	// query: xmlns(p=uri)xmlns(q=uri)... (RFC 4825 section 6.4, XPointer xmlns() scheme)
	if (!query.empty()) {
		std::string q;
		if (!percent_decode(query, q)) return fail("malformed percent-encoding in the query");
		Reader r{q};
		std::set<std::string> seen;
		while (!r.done()) {
			while (r.peek() == ' ') ++r.i;
			if (r.done()) break;
			if (!r.eat("xmlns(")) return fail("query is not xmlns() namespace bindings");
			std::string prefix = r.ncname();
			while (r.peek() == ' ') ++r.i;
			if (prefix.empty() || !r.eat('=')) return fail("malformed xmlns() binding");
			while (r.peek() == ' ') ++r.i;
			size_t close = q.find(')', r.i);
			if (close == std::string::npos) return fail("malformed xmlns() binding");
			std::string uri = q.substr(r.i, close - r.i);
			while (!uri.empty() && uri.back() == ' ') uri.pop_back();
			if (uri.empty()) return fail("malformed xmlns() binding");
			r.i = close + 1;
			if (!seen.insert(prefix).second) return fail("prefix bound twice in the query");
			u.bindings.push_back({prefix, uri});
		}
	}
	return u;
}

bool namespace_of(const QName &q, const std::vector<Binding> &bindings,
		const std::string &default_ns, std::string &uri)
{
	if (q.prefix.empty()) {
		uri = default_ns;
		return true;
	}
	for (const auto &b : bindings)
		if (b.prefix == q.prefix) {
			uri = b.uri;
			return true;
		}
	return false;
}

bool step_matches(xmlNodePtr e, const Step &s, const std::vector<Binding> &bindings,
		const std::string &default_ns)
{
	if (!is_element(e) || !name_matches(e, s.name, bindings, default_ns, nullptr)) return false;
	if (!s.has_attr) return true;
	xmlAttrPtr a = select_attribute(e, s.attr, bindings);
	if (!a) return false;
	xmlChar *v = xmlNodeGetContent(reinterpret_cast<xmlNodePtr>(a));
	bool eq = str_of(v) == s.value;
	if (v) xmlFree(v);
	return eq;
}

std::vector<xmlNodePtr> select_step(xmlNodePtr parent, const Step &s,
		const std::vector<Binding> &bindings, const std::string &default_ns)
{
	std::vector<xmlNodePtr> out;
	int n = 0;
	Step name_only = s;
	name_only.has_attr = false;
	for (xmlNodePtr c = parent ? parent->children : nullptr; c; c = c->next) {
		if (!is_element(c) || !step_matches(c, name_only, bindings, default_ns)) continue;
		++n;
		// XPath: the position counts the siblings of that name; the attribute test follows
		if (s.position && n != s.position) continue;
		if (s.has_attr && !step_matches(c, s, bindings, default_ns)) continue;
		out.push_back(c);
	}
	return out;
}

Found select_element(xmlDocPtr doc, const std::vector<Step> &steps,
		const std::vector<Binding> &bindings, const std::string &default_ns, xmlNodePtr *out)
{
	if (!doc || steps.empty()) return Found::NoMatch;
	for (const auto &s : steps) {
		std::string uri;
		if (!s.name.any && !namespace_of(s.name, bindings, default_ns, uri)) return Found::UnboundPrefix;
		if (s.has_attr && !s.attr.prefix.empty() && !namespace_of(s.attr, bindings, default_ns, uri))
			return Found::UnboundPrefix;
	}
	// the document node is the parent of the root element
	std::vector<xmlNodePtr> cur = select_step(reinterpret_cast<xmlNodePtr>(doc), steps[0], bindings, default_ns);
	for (size_t i = 1; i < steps.size() && cur.size() == 1; ++i)
		cur = select_step(cur[0], steps[i], bindings, default_ns);
	if (cur.empty()) return Found::NoMatch;
	if (cur.size() > 1) return Found::Ambiguous;
	*out = cur[0];
	return Found::Element;
}

xmlAttrPtr select_attribute(xmlNodePtr e, const QName &attr, const std::vector<Binding> &bindings)
{
	if (!is_element(e)) return nullptr;
	// an unprefixed attribute is in no namespace, whatever the default namespace
	std::string uri;
	if (!attr.prefix.empty() && !namespace_of(attr, bindings, "", uri)) return nullptr;
	for (xmlAttrPtr a = e->properties; a; a = a->next) {
		if (str_of(a->name) != attr.local) continue;
		if (str_of(a->ns ? a->ns->href : nullptr) == uri) return a;
	}
	return nullptr;
}

std::string namespace_bindings_body(xmlNodePtr e)
{
	// every binding in scope, innermost first wins
	std::vector<std::pair<std::string, std::string>> in_scope;
	std::set<std::string> seen;
	for (xmlNodePtr n = e; n && n->type == XML_ELEMENT_NODE; n = n->parent)
		for (xmlNsPtr ns = n->nsDef; ns; ns = ns->next) {
			std::string p = str_of(ns->prefix);
			if (seen.insert(p).second) in_scope.emplace_back(p, str_of(ns->href));
		}
	auto esc = [](const std::string &v) {
		std::string o;
		for (char c : v) {
			if (c == '&') o += "&amp;";
			else if (c == '<') o += "&lt;";
			else if (c == '"') o += "&quot;";
			else o += c;
		}
		return o;
	};
	std::string name = str_of(e->name);
	if (e->ns && e->ns->prefix) name = str_of(e->ns->prefix) + ":" + name;
	std::string out = "<" + name;
	for (const auto &b : in_scope) {
		if (b.first.empty()) out += " xmlns=\"" + esc(b.second) + "\"";
		else out += " xmlns:" + b.first + "=\"" + esc(b.second) + "\"";
	}
	out += "/>";
	return out;
}

}  // namespace imps::xcap
