// XML from the network, parsed one way for every module: libxml2 with no network access, no
// entity substitution, no DTD (a DOCTYPE stops the parser before its internal subset is
// read), no default attributes, no validation; errors go nowhere but the result.
#pragma once

#include <libxml/tree.h>

#include <memory>
#include <string>
#include <string_view>

namespace imps::xml {

struct DocFree {
	void operator()(xmlDoc *d) const
	{
		if (d) xmlFreeDoc(d);
	}
};
using DocPtr = std::unique_ptr<xmlDoc, DocFree>;

struct Parsed {
	DocPtr doc;            // set when ok
	bool doctype = false;  // refused: it had a DOCTYPE
	bool ok = false;
	int error_line = 0;    // where it stopped being well-formed (namespace-well-formed)
};

// The caller bounds the size first; an empty body is not well-formed.
Parsed parse_safe(std::string_view body);

// libxml2's text (a name, an href, a property) as a string; "" for none.
inline std::string str_of(const xmlChar *s) { return s ? reinterpret_cast<const char *>(s) : ""; }
// An element's attribute of no namespace ("" when absent).
std::string prop(xmlNodePtr n, const char *name);
// An element's text content, trimmed.
std::string content(xmlNodePtr n);
// Text escaped for an attribute value or element content (& < > ").
std::string escape(std::string_view v);

}  // namespace imps::xml
