// Test helper: validates application/pidf+xml documents against the RFC schemas in
// tests/schemas/presence-all.xsd (RFC 3863 PIDF + RFC 4479 data model + RFC 4480 RPID, with
// common-schema.xsd and the local xml.xsd), so a composed document is checked strictly where
// those RFCs define its elements and laxly elsewhere.
#pragma once

#include "../imps_reginfo/schema_check.hpp"  // schema_path()

#include <gtest/gtest.h>
#include <libxml/parser.h>
#include <libxml/xmlschemas.h>

#include <string>

namespace imps::test {

class PidfSchema {
public:
	static PidfSchema &instance()
	{
		static PidfSchema s;
		return s;
	}

	// Parses (no network, no entities) and validates; the failure message carries libxml2's
	// errors and the document.
	::testing::AssertionResult validate(const std::string &xml)
	{
		if (!schema_) return ::testing::AssertionFailure() << "schema not loaded: " << load_error_;
		std::string errs;
		xmlParserCtxtPtr pc = xmlNewParserCtxt();
		xmlDocPtr doc = xmlCtxtReadMemory(pc, xml.data(), static_cast<int>(xml.size()), "doc.xml",
				nullptr, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
		xmlFreeParserCtxt(pc);
		if (!doc) return ::testing::AssertionFailure() << "not well-formed\n" << xml;
		xmlSchemaValidCtxtPtr v = xmlSchemaNewValidCtxt(schema_);
		xmlSchemaSetValidStructuredErrors(v, &PidfSchema::on_error, &errs);
		int rc = xmlSchemaValidateDoc(v, doc);
		xmlSchemaFreeValidCtxt(v);
		xmlFreeDoc(doc);
		if (rc != 0)
			return ::testing::AssertionFailure() << "schema-invalid (rc " << rc << "): " << errs
												 << "\n" << xml;
		return ::testing::AssertionSuccess();
	}

private:
	PidfSchema()
	{
		std::string path = schema_path("presence-all.xsd");
		if (path.empty()) {
			load_error_ = "tests/schemas/presence-all.xsd not found";
			return;
		}
		xmlSchemaParserCtxtPtr pc = xmlSchemaNewParserCtxt(path.c_str());
		if (pc) {
			xmlSchemaSetParserStructuredErrors(pc, &PidfSchema::on_error, &load_error_);
			schema_ = xmlSchemaParse(pc);
			xmlSchemaFreeParserCtxt(pc);
		}
		if (!schema_ && load_error_.empty()) load_error_ = "xmlSchemaParse failed for " + path;
	}
	~PidfSchema()
	{
		if (schema_) xmlSchemaFree(schema_);
	}

	static void on_error(void *user, xmlErrorPtr e)
	{
		auto *s = static_cast<std::string *>(user);
		if (e && e->message) *s += "line " + std::to_string(e->line) + ": " + e->message;
	}

	xmlSchemaPtr schema_ = nullptr;
	std::string load_error_;
};

inline ::testing::AssertionResult PidfSchemaValid(const std::string &xml)
{
	return PidfSchema::instance().validate(xml);
}

}  // namespace imps::test
