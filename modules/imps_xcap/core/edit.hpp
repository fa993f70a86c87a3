// Element and attribute changes (RFC 4825 sections 8.2.3-8.2.5, 8.3) made on the stored
// text itself: the selector is evaluated on the parsed document, the change is spliced into
// the bytes (the rest of the document stays byte for byte as the client wrote it, and an
// element put reads back exactly as it was sent), and the result is parsed again, so an
// element is parsed in its real context (the namespace bindings in scope where it lands).
#pragma once

#include "imps/xml_parse.hpp"
#include "imps_xcap/core/selector.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace imps::xcap {

// Where an element stands in the text.
struct AttrSpan {
	std::string qname;
	size_t start = 0;        // the whitespace before the name
	size_t value_start = 0;  // after the opening quote
	size_t value_end = 0;    // at the closing quote
};
struct ElementSpan {
	std::string qname;
	size_t start = 0;      // '<'
	size_t tag_end = 0;    // after the '>' of the start tag
	size_t inner_end = 0;  // the '<' of the end tag (== tag_end when empty)
	size_t end = 0;        // after the element
	bool empty = false;    // <x/>
	std::vector<AttrSpan> attrs;
};

// The elements of a well-formed text in document order (the order of a preorder walk of the
// parsed document's elements). False when the text is not such a text.
bool scan_elements(std::string_view text, std::vector<ElementSpan> &out);
// The position of an element of doc in document order.
size_t element_index(xmlDocPtr doc, xmlNodePtr e);

struct Edit {
	bool ok = false;
	// refused: the xcap-error element, its phrase and content; or status 404/400
	int status = 409;
	std::string element, phrase, inner;
	std::string text;         // the new document
	imps::xml::DocPtr doc;    // ... parsed
	bool created = false;
};

struct Target {
	const NodeSelector &node;
	const std::vector<Binding> &bindings;
	const std::string &default_ns;
	std::string uri;  // the document's HTTP URI (for <ancestor> of no-parent)
};

// The element or attribute a selector names, as its text stands in the document (the raw
// attribute value, between the quotes). false: 404.
bool read_node(const std::string &text, xmlDocPtr doc, const Target &t, std::string &out,
		int *status);
Edit put_element(const std::string &text, xmlDocPtr doc, const Target &t, const std::string &body);
Edit put_attribute(const std::string &text, xmlDocPtr doc, const Target &t, const std::string &body);
Edit delete_node(const std::string &text, xmlDocPtr doc, const Target &t);

}  // namespace imps::xcap
