// The xcap-diff event package (RFC 5875) in its "no-patching" mode, bodies per RFC 5874: what a
// subscription selects (documents, collections, elements and attributes of the documents its
// subscriber may read) and the application/xcap-diff+xml documents of its NOTIFYs.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace imps::presence::xcapdiff {

// The XCAP URIs of a SUBSCRIBE body (application/resource-lists+xml, a flat list of <entry
// uri>), relative to root (absolute ones below root are made relative; others refused), the
// ones the subscriber (xui "sip:alice@a.example") may read: its own documents
// ("<auid>/users/<xui>/..."), global ones ("<auid>/global/..."), a usage's collection
// ("<auid>/", meaning those two). false with why when the body is not such a list or selects
// nothing readable.
bool parse_selection(std::string_view body, const std::string &root, const std::string &xui,
		std::vector<std::string> &out, std::string &why);
std::string join(const std::vector<std::string> &sel);  // stored with the subscription
std::vector<std::string> split(const std::string &stored);

// A selection's kind: a collection ("auid/" or ".../"), a document, or a component
// ("<document>/~~/<node selector>").
bool is_collection(const std::string &sel);
std::string document_of(const std::string &sel);  // the document path of a component or document
bool is_component(const std::string &sel);
bool is_attribute(const std::string &sel);  // a component whose last step is "@name"
// Does the selection take in the document at path (of the subscriber xui)?
bool covers(const std::string &sel, const std::string &path, const std::string &xui);

struct Item {
	enum class Kind { Document, Element, Attribute } kind = Kind::Document;
	std::string sel;
	std::string previous_etag, new_etag;  // documents
	bool exists = true;                   // components
	std::string content;                  // an element's XML, an attribute's value
	std::string ns_decls;                 // namespace declarations the element's content needs
};
// <xcap-diff xcap-root=...> with the items in order.
std::string document(const std::string &root, const std::vector<Item> &items);
// The namespace declarations of a document's root element (' xmlns="..." xmlns:p="..."'),
// what a component taken out of it needs; "" when it does not parse.
std::string root_namespaces(std::string_view doc);

}  // namespace imps::presence::xcapdiff
