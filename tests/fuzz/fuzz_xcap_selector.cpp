// Fuzz target: XCAP request paths (document selector, node selector, xmlns() query) parsed
// and evaluated on a fixed document, as imps_xcap does for every HTTP request.
#include "imps_xcap/core/selector.hpp"

#include "imps/xml_parse.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace {
const char *kDoc = "<resource-lists xmlns='urn:ietf:params:xml:ns:resource-lists' xmlns:x='urn:x'>"
				   "<list name='a' x:k='1'><entry uri='sip:b@a'/><x:entry/><entry uri='sip:c@a'/></list>"
				   "<list name='b'/></resource-lists>";
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static imps::xml::Parsed doc = imps::xml::parse_safe(kDoc);
	std::string in(reinterpret_cast<const char *>(data), size);
	std::string path = in, query;
	size_t q = in.find('?');
	if (q != std::string::npos) {
		path = in.substr(0, q);
		query = in.substr(q + 1);
	}
	std::string why;
	auto u = imps::xcap::parse_uri(path, query, &why);
	if (!u || !u->has_node) return 0;
	xmlNodePtr e = nullptr;
	if (imps::xcap::select_element(doc.doc.get(), u->node.steps, u->bindings,
				"urn:ietf:params:xml:ns:resource-lists", &e) != imps::xcap::Found::Element)
		return 0;
	if (u->node.terminal == imps::xcap::Terminal::Attribute)
		(void)imps::xcap::select_attribute(e, u->node.attr, u->bindings);
	else if (u->node.terminal == imps::xcap::Terminal::Namespaces)
		(void)imps::xcap::namespace_bindings_body(e);
	return 0;
}
