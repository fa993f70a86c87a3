// XCAP URIs (RFC 4825 section 6): the document selector, the node selector (element,
// attribute and namespace selectors, positional and attribute-value predicates) and the
// namespace bindings of the query (?xmlns(p=uri)...), and their evaluation on a document.
// No Kamailio type here: the shim hands over the path and the query of the HTTP request.
#pragma once

#include <libxml/tree.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace imps::xcap {

// A QName of a step or an attribute: "*" (any), "name" or "prefix:name".
struct QName {
	bool any = false;
	std::string prefix, local;
};

// One step of an element selector: name, name[n], name[@a="v"], name[n][@a="v"].
struct Step {
	QName name;
	int position = 0;  // 1-based; 0: none
	bool has_attr = false;
	QName attr;
	std::string value;
};

enum class Terminal { None, Attribute, Namespaces };

struct NodeSelector {
	std::vector<Step> steps;
	Terminal terminal = Terminal::None;
	QName attr;  // the attribute of an attribute selector
};

struct Binding {
	std::string prefix, uri;
};

// "<auid>/global/<path>" or "<auid>/users/<xui>/<path>", then "/~~/<node selector>".
struct Uri {
	std::string auid;
	bool global = false;
	std::string xui;       // users/<xui> (percent-decoded)
	std::string document;  // the path below global/ or users/<xui>/ (decoded)
	bool has_node = false;
	NodeSelector node;
	std::vector<Binding> bindings;  // of the query
};

// Parses the part of a request path below the XCAP root (no leading '/') and its query
// ("" when none). nullopt with *why saying what is wrong (the reason of a 400/404).
std::optional<Uri> parse_uri(std::string_view path, std::string_view query, std::string *why);
// A node selector alone (already percent-decoded).
std::optional<NodeSelector> parse_node_selector(std::string_view s, std::string *why);
// "%xx" decoded; false on a malformed escape.
bool percent_decode(std::string_view in, std::string &out);

// The namespace a QName's prefix stands for: bindings of the query; no prefix: the app
// usage's default namespace. False when a prefix is not bound.
bool namespace_of(const QName &q, const std::vector<Binding> &bindings,
		const std::string &default_ns, std::string &uri);

// Does element e match step s (name and attribute test; position not looked at)?
bool step_matches(xmlNodePtr e, const Step &s, const std::vector<Binding> &bindings,
		const std::string &default_ns);

// The element children of parent that step s selects (position applied). Empty when none.
std::vector<xmlNodePtr> select_step(xmlNodePtr parent, const Step &s,
		const std::vector<Binding> &bindings, const std::string &default_ns);

enum class Found { Element, NoMatch, Ambiguous, UnboundPrefix };

// Walks the element selector from the document (the first step selects the root):
// Element with *out set when exactly one element matches every step.
Found select_element(xmlDocPtr doc, const std::vector<Step> &steps,
		const std::vector<Binding> &bindings, const std::string &default_ns, xmlNodePtr *out);

// The attribute of e a selector names (nullptr: none).
xmlAttrPtr select_attribute(xmlNodePtr e, const QName &attr, const std::vector<Binding> &bindings);

// The namespace bindings in scope at e (RFC 4825 section 10: the body of a namespace
// selector GET), as a <prefix:root xmlns:...> element text.
std::string namespace_bindings_body(xmlNodePtr e);

}  // namespace imps::xcap
