// libFuzzer target: Contact header parameters and display names from REGISTERs end up in
// reginfo documents; whatever the bytes, the document must be well-formed XML.
#include "imps_reginfo/core/reginfo_doc.hpp"

#include <libxml/parser.h>

#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	std::string in(reinterpret_cast<const char *>(data), size);
	using namespace imps::reginfo;
	Document d;
	d.aor = "sip:" + in;
	d.reg_id = "r1";
	d.state = RegState::Active;
	ContactEntry c;
	c.id = "c1";
	c.event = "registered";
	c.uri = in;
	c.callid = in;
	c.display_name = in;
	c.params = parse_contact_params(in);
	d.contacts.push_back(c);
	std::string xml = build(d);
	xmlDocPtr doc = xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "fuzz.xml", nullptr,
			XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc) std::abort();  // the builder produced ill-formed XML
	xmlFreeDoc(doc);
	return 0;
}
