#include "imps_xcap/core/edit.hpp"

#include "imps_xcap/core/app_usage.hpp"

#include "imps/sip_text.hpp"

#include <cctype>
#include <cstdio>
#include <functional>

namespace imps::xcap {
namespace {

bool space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool name_char(char c)
{
	unsigned char u = static_cast<unsigned char>(c);
	return std::isalnum(u) || c == '_' || c == ':' || c == '-' || c == '.' || u >= 0x80;
}

using imps::xml::str_of;

// one step of a node selector as URI text
std::string step_text(const Step &s)
{
	auto qn = [](const QName &q) {
		if (q.any) return std::string("*");
		return q.prefix.empty() ? q.local : q.prefix + ":" + q.local;
	};
	std::string t = qn(s.name);
	if (s.position) t += "[" + std::to_string(s.position) + "]";
	if (s.has_attr) t += "[@" + qn(s.attr) + "=\"" + s.value + "\"]";
	std::string o;
	for (unsigned char c : t) {
		if (std::isalnum(c) || std::string_view("-._~:@!$&'()*+,;=/").find(static_cast<char>(c)) != std::string_view::npos)
			o += static_cast<char>(c);
		else {
			char h[4];
			std::snprintf(h, sizeof h, "%%%02X", c);
			o += h;
		}
	}
	return o;
}

Edit refuse(const std::string &element, const std::string &phrase, const std::string &inner = "")
{
	Edit e;
	e.element = element;
	e.phrase = phrase;
	e.inner = inner;
	return e;
}

Edit status(int st, const std::string &phrase)
{
	Edit e;
	e.status = st;
	e.phrase = phrase;
	return e;
}

// Calls visit(element, its position in document order) for every element of doc until it
// returns true; that element, or nullptr.
xmlNodePtr walk_elements(xmlDocPtr doc, const std::function<bool(xmlNodePtr, size_t)> &visit)
{
	size_t n = 0;
	xmlNodePtr found = nullptr;
	std::function<void(xmlNodePtr)> walk = [&](xmlNodePtr p) {
		for (xmlNodePtr c = p->children; c && !found; c = c->next) {
			if (c->type != XML_ELEMENT_NODE) continue;
			if (visit(c, n++)) {
				found = c;
				return;
			}
			walk(c);
		}
	};
	walk(reinterpret_cast<xmlNodePtr>(doc));
	return found;
}

// the element at position i in document order
xmlNodePtr element_at(xmlDocPtr doc, size_t i)
{
	return walk_elements(doc, [i](xmlNodePtr, size_t n) { return n == i; });
}

// The spliced text parsed; the element starting at offset `at` (npos: none) found again.
// The selector must select it (idempotency, section 8.2.3) when want_selected.
bool reparse(Edit &e, const Target &t, size_t at, bool element_put)
{
	auto p = imps::xml::parse_safe(e.text);
	if (!p.ok) {
		e = refuse(element_put ? "not-xml-frag" : "not-well-formed",
				element_put ? "the element is not well-formed where it goes (line "
								+ std::to_string(p.error_line) + ")"
							: "the change leaves the document not well-formed");
		return false;
	}
	e.doc = std::move(p.doc);
	if (at == std::string::npos) return true;
	std::vector<ElementSpan> spans;
	if (!scan_elements(e.text, spans)) {
		e = refuse("not-well-formed", "the change leaves the document unreadable");
		return false;
	}
	size_t idx = spans.size();
	for (size_t i = 0; i < spans.size(); ++i)
		if (spans[i].start == at) {
			idx = i;
			break;
		}
	xmlNodePtr mine = idx < spans.size() ? element_at(e.doc.get(), idx) : nullptr;
	xmlNodePtr sel = nullptr;
	if (!mine || select_element(e.doc.get(), t.node.steps, t.bindings, t.default_ns, &sel) != Found::Element
			|| sel != mine) {
		Edit r = refuse("cannot-insert", "the element put would not be selected by the request URI");
		e = std::move(r);
		return false;
	}
	return true;
}

// the body of an element put: exactly one element, nothing but whitespace around it
bool one_element(const std::string &b, std::string *why)
{
	if (b.empty() || b[0] != '<' || b.size() < 3 || b[1] == '?' || b[1] == '!' || b[1] == '/') {
		*why = "the body is not one XML element";
		return false;
	}
	std::vector<ElementSpan> spans;
	if (!scan_elements(b, spans) || spans.empty() || spans[0].end != b.size()) {
		*why = "the body is not exactly one well-formed XML element";
		return false;
	}
	return true;
}

bool att_value_ok(const std::string &v)
{
	for (size_t i = 0; i < v.size(); ++i) {
		if (v[i] == '<' || v[i] == '"') return false;
		if (v[i] == '&') {
			size_t semi = v.find(';', i);
			if (semi == std::string::npos || semi == i + 1) return false;
			for (size_t k = i + 1; k < semi; ++k)
				if (!name_char(v[k]) && v[k] != '#') return false;
		}
	}
	return true;
}

const AttrSpan *attr_span(const ElementSpan &s, xmlNodePtr e, xmlAttrPtr a)
{
	// the attribute's qualified name as written: its prefix is the one the document uses
	std::string q = str_of(a->name);
	if (a->ns && a->ns->prefix) q = str_of(a->ns->prefix) + ":" + q;
	for (const auto &x : s.attrs)
		if (x.qname == q) return &x;
	return nullptr;
}

}  // namespace

bool scan_elements(std::string_view t, std::vector<ElementSpan> &out)
{
	out.clear();
	std::vector<size_t> open;
	size_t i = 0, n = t.size();
	auto skip_to = [&](std::string_view end) {
		size_t p = t.find(end, i);
		if (p == std::string_view::npos) return false;
		i = p + end.size();
		return true;
	};
	while (i < n) {
		if (t[i] != '<') {
			++i;
			continue;
		}
		if (t.compare(i, 4, "<!--") == 0) {
			if (!skip_to("-->")) return false;
		} else if (t.compare(i, 9, "<![CDATA[") == 0) {
			if (!skip_to("]]>")) return false;
		} else if (t.compare(i, 2, "<?") == 0) {
			if (!skip_to("?>")) return false;
		} else if (t.compare(i, 2, "<!") == 0) {
			if (!skip_to(">")) return false;
		} else if (t.compare(i, 2, "</") == 0) {
			size_t e = t.find('>', i);
			if (e == std::string_view::npos || open.empty()) return false;
			std::string name(t.substr(i + 2, e - i - 2));
			while (!name.empty() && space(name.back())) name.pop_back();
			ElementSpan &s = out[open.back()];
			if (name != s.qname) return false;
			s.inner_end = i;
			s.end = e + 1;
			open.pop_back();
			i = e + 1;
		} else {
			ElementSpan s;
			s.start = i++;
			while (i < n && name_char(t[i])) s.qname += t[i++];
			if (s.qname.empty()) return false;
			for (;;) {
				size_t ws = i;
				while (i < n && space(t[i])) ++i;
				if (i >= n) return false;
				if (t[i] == '>') {
					s.tag_end = ++i;
					break;
				}
				if (t.compare(i, 2, "/>") == 0) {
					i += 2;
					s.tag_end = s.inner_end = s.end = i;
					s.empty = true;
					break;
				}
				if (ws == i) return false;  // attributes are separated by whitespace
				AttrSpan a;
				a.start = ws;
				while (i < n && name_char(t[i])) a.qname += t[i++];
				while (i < n && space(t[i])) ++i;
				if (a.qname.empty() || i >= n || t[i] != '=') return false;
				++i;
				while (i < n && space(t[i])) ++i;
				if (i >= n || (t[i] != '"' && t[i] != '\'')) return false;
				char q = t[i++];
				a.value_start = i;
				size_t e = t.find(q, i);
				if (e == std::string_view::npos) return false;
				a.value_end = e;
				i = e + 1;
				s.attrs.push_back(std::move(a));
			}
			out.push_back(std::move(s));
			if (!out.back().empty) open.push_back(out.size() - 1);
		}
	}
	return open.empty();
}

size_t element_index(xmlDocPtr doc, xmlNodePtr target)
{
	size_t at = static_cast<size_t>(-1);
	walk_elements(doc, [&](xmlNodePtr e, size_t n) {
		if (e == target) at = n;
		return e == target;
	});
	return at;
}

bool read_node(const std::string &text, xmlDocPtr doc, const Target &t, std::string &out, int *st)
{
	xmlNodePtr el = nullptr;
	Found f = select_element(doc, t.node.steps, t.bindings, t.default_ns, &el);
	*st = f == Found::UnboundPrefix ? 400 : 404;
	if (f != Found::Element) return false;
	std::vector<ElementSpan> spans;
	size_t i = element_index(doc, el);
	if (!scan_elements(text, spans) || i >= spans.size()) {
		*st = 500;
		return false;
	}
	const ElementSpan &s = spans[i];
	if (t.node.terminal == Terminal::Attribute) {
		xmlAttrPtr a = select_attribute(el, t.node.attr, t.bindings);
		const AttrSpan *as = a ? attr_span(s, el, a) : nullptr;
		if (!as) return false;
		out = text.substr(as->value_start, as->value_end - as->value_start);
		return true;
	}
	out = text.substr(s.start, s.end - s.start);
	return true;
}

Edit put_element(const std::string &text, xmlDocPtr doc, const Target &t, const std::string &raw)
{
	const auto &steps = t.node.steps;
	std::string body = trim(raw), why;
	if (!one_element(body, &why)) return refuse("not-xml-frag", why);
	xmlNodePtr el = nullptr;
	Found f = select_element(doc, steps, t.bindings, t.default_ns, &el);
	if (f == Found::UnboundPrefix) return status(400, "namespace prefix not bound in the query");
	if (f == Found::Ambiguous) return status(404, "the selector matches several elements");
	std::vector<ElementSpan> spans;
	if (!scan_elements(text, spans)) return refuse("not-well-formed", "the stored document is unreadable");
	Edit e;
	size_t at;
	if (f == Found::Element) {
		// replace in place (section 8.2.3)
		const ElementSpan &s = spans[element_index(doc, el)];
		at = s.start;
		e.text = text.substr(0, s.start) + body + text.substr(s.end);
	} else {
		if (steps.size() < 2) return refuse("cannot-insert", "the document has a root element already");
		std::vector<Step> up(steps.begin(), steps.end() - 1);
		xmlNodePtr parent = nullptr;
		if (select_element(doc, up, t.bindings, t.default_ns, &parent) != Found::Element) {
			// the closest ancestor that exists
			std::string anc = t.uri;
			for (size_t k = up.size() - 1; k > 0; --k) {
				std::vector<Step> pre(up.begin(), up.begin() + static_cast<long>(k));
				xmlNodePtr a = nullptr;
				if (select_element(doc, pre, t.bindings, t.default_ns, &a) != Found::Element) continue;
				anc += "/~~";
				for (const auto &s : pre) anc += "/" + step_text(s);
				break;
			}
			return refuse("no-parent", "the parent element does not exist",
					"<ancestor>" + xml_escape(anc) + "</ancestor>");
		}
		// where (section 8.2.3): with a position n, after the (n-1)th sibling the last
		// step's name test selects (before the first for n = 1); without, after the last
		// such sibling; with none, at the end of the parent
		const Step &last = steps.back();
		Step name_only = last;
		name_only.has_attr = false;
		name_only.position = 0;
		std::vector<xmlNodePtr> same = select_step(parent, name_only, t.bindings, t.default_ns);
		const ElementSpan &ps = spans[element_index(doc, parent)];
		if (last.position) {
			size_t want = static_cast<size_t>(last.position) - 1;
			if (want > same.size())
				return refuse("cannot-insert", "position " + std::to_string(last.position) + " is past the last sibling");
			if (want == 0 && !same.empty()) at = spans[element_index(doc, same[0])].start;
			else if (want > 0) at = spans[element_index(doc, same[want - 1])].end;
			else at = std::string::npos;
		} else if (!last.name.any && !same.empty()) {
			// "earliest last": right after the last sibling of that name
			at = spans[element_index(doc, same.back())].end;
		} else {
			// the last element of the parent, after whatever follows the former last one
			at = std::string::npos;
		}
		if (at == std::string::npos) {
			if (ps.empty) {
				// <p/> becomes <p>body</p>
				size_t slash = ps.tag_end - 2;
				e.text = text.substr(0, slash) + ">" + body + "</" + ps.qname + ">" + text.substr(ps.end);
				at = slash + 1;
			} else {
				at = ps.inner_end;
				e.text = text.substr(0, at) + body + text.substr(at);
			}
		} else {
			e.text = text.substr(0, at) + body + text.substr(at);
		}
		e.created = true;
	}
	if (!reparse(e, t, at, true)) return e;
	e.ok = true;
	return e;
}

Edit put_attribute(const std::string &text, xmlDocPtr doc, const Target &t, const std::string &body)
{
	xmlNodePtr el = nullptr;
	Found f = select_element(doc, t.node.steps, t.bindings, t.default_ns, &el);
	if (f == Found::UnboundPrefix) return status(400, "namespace prefix not bound in the query");
	if (f != Found::Element)
		return refuse("no-parent", "the element of the attribute does not exist", "<ancestor>" + xml_escape(t.uri) + "</ancestor>");
	if (!att_value_ok(body)) return refuse("not-xml-att-value", "the body is not an attribute value");
	std::vector<ElementSpan> spans;
	if (!scan_elements(text, spans)) return refuse("not-well-formed", "the stored document is unreadable");
	const ElementSpan &s = spans[element_index(doc, el)];
	xmlAttrPtr a = select_attribute(el, t.node.attr, t.bindings);
	Edit e;
	if (a) {
		const AttrSpan *as = attr_span(s, el, a);
		if (!as) return refuse("not-well-formed", "the stored document is unreadable");
		// the value between double quotes (the body may hold the other quote)
		e.text = text.substr(0, as->value_start - 1) + "\"" + body + "\"" + text.substr(as->value_end + 1);
	} else {
		std::string name = t.node.attr.local, decl;
		if (!t.node.attr.prefix.empty()) {
			std::string uri;
			if (!namespace_of(t.node.attr, t.bindings, "", uri)) return status(400, "namespace prefix not bound in the query");
			xmlNsPtr ns = xmlSearchNsByHref(doc, el, BAD_CAST uri.c_str());
			if (ns && ns->prefix) {
				name = str_of(ns->prefix) + ":" + name;
			} else {
				name = t.node.attr.prefix + ":" + name;
				decl = " xmlns:" + t.node.attr.prefix + "=\"" + uri + "\"";
			}
		}
		size_t at = s.empty ? s.tag_end - 2 : s.tag_end - 1;
		e.text = text.substr(0, at) + decl + " " + name + "=\"" + body + "\"" + text.substr(at);
		e.created = true;
	}
	if (!reparse(e, t, std::string::npos, false)) return e;
	// the selector still selects that element (an attribute may be its own predicate)
	xmlNodePtr again = nullptr;
	if (select_element(e.doc.get(), t.node.steps, t.bindings, t.default_ns, &again) != Found::Element
			|| element_index(e.doc.get(), again) != element_index(doc, el))
		return refuse("cannot-insert", "the selector would no longer select the element");
	e.ok = true;
	return e;
}

Edit delete_node(const std::string &text, xmlDocPtr doc, const Target &t)
{
	xmlNodePtr el = nullptr;
	Found f = select_element(doc, t.node.steps, t.bindings, t.default_ns, &el);
	if (f == Found::UnboundPrefix) return status(400, "namespace prefix not bound in the query");
	if (f != Found::Element) return status(404, "no such element");
	std::vector<ElementSpan> spans;
	if (!scan_elements(text, spans)) return refuse("not-well-formed", "the stored document is unreadable");
	const ElementSpan &s = spans[element_index(doc, el)];
	Edit e;
	if (t.node.terminal == Terminal::Attribute) {
		xmlAttrPtr a = select_attribute(el, t.node.attr, t.bindings);
		const AttrSpan *as = a ? attr_span(s, el, a) : nullptr;
		if (!as) return status(404, "no such attribute");
		e.text = text.substr(0, as->start) + text.substr(as->value_end + 1);
		if (!reparse(e, t, std::string::npos, false)) return e;
		xmlNodePtr again = nullptr;
		if (select_element(e.doc.get(), t.node.steps, t.bindings, t.default_ns, &again) == Found::Element
				&& select_attribute(again, t.node.attr, t.bindings))
			return refuse("cannot-delete", "the request URI would still select an attribute");
	} else {
		if (t.node.steps.size() < 2) return refuse("cannot-delete", "the root element cannot be deleted");
		e.text = text.substr(0, s.start) + text.substr(s.end);
		if (!reparse(e, t, std::string::npos, false)) return e;
		// idempotency: the URI selects nothing afterwards (a positional selector whose next
		// sibling would move up cannot be deleted this way)
		xmlNodePtr again = nullptr;
		if (select_element(e.doc.get(), t.node.steps, t.bindings, t.default_ns, &again) != Found::NoMatch)
			return refuse("cannot-delete", "the request URI would still select an element");
	}
	e.ok = true;
	return e;
}

}  // namespace imps::xcap
