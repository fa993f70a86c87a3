// Test helper: validates application/watcherinfo+xml documents against the RFC 3858 schema in
// tests/schemas/watcherinfo.xsd (xml.xsd local), and parses them back with the watcherinfo
// namespace registered for XPath ("w"). Modelled on imps_reginfo/schema_check.hpp, whose
// schema_path() it uses to find the schema.
#pragma once

#include "../common/xml_parse.hpp"
#include "../imps_reginfo/schema_check.hpp"

#include <gtest/gtest.h>
#include <libxml/xmlschemas.h>

#include <string>

namespace imps::test {

inline constexpr const char *kWinfoNs = "urn:ietf:params:xml:ns:watcherinfo";

class WinfoSchema {
public:
	static WinfoSchema &instance()
	{
		static WinfoSchema s;
		return s;
	}

	bool loaded() const { return schema_ != nullptr; }
	const std::string &load_error() const { return load_error_; }

	// Parses (XML_PARSE_NONET, no DTD loading, no entity substitution) and validates; the
	// failure message carries libxml2's errors and the document.
	::testing::AssertionResult validate(const std::string &xml)
	{
		if (!schema_) return ::testing::AssertionFailure() << "schema not loaded: " << load_error_;
		std::string errs;
		xmlSetStructuredErrorFunc(&errs, &WinfoSchema::on_error);
		xmlDocPtr doc = xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "winfo.xml",
				nullptr, XML_PARSE_NONET);
		xmlSetStructuredErrorFunc(nullptr, nullptr);
		if (!doc) return ::testing::AssertionFailure() << "not well-formed: " << errs << "\n" << xml;
		xmlSchemaValidCtxtPtr v = xmlSchemaNewValidCtxt(schema_);
		xmlSchemaSetValidStructuredErrors(v, &WinfoSchema::on_error, &errs);
		int rc = xmlSchemaValidateDoc(v, doc);
		xmlSchemaFreeValidCtxt(v);
		xmlFreeDoc(doc);
		if (rc != 0)
			return ::testing::AssertionFailure() << "schema-invalid (rc " << rc << "): " << errs
												 << "\n" << xml;
		return ::testing::AssertionSuccess();
	}

private:
	WinfoSchema()
	{
		std::string path = schema_path("watcherinfo.xsd");
		if (path.empty()) {
			load_error_ = "tests/schemas/watcherinfo.xsd not found";
			return;
		}
		xmlSetStructuredErrorFunc(&load_error_, &WinfoSchema::on_error);
		xmlSchemaParserCtxtPtr pc = xmlSchemaNewParserCtxt(path.c_str());
		if (pc) {
			xmlSchemaSetParserStructuredErrors(pc, &WinfoSchema::on_error, &load_error_);
			schema_ = xmlSchemaParse(pc);
			xmlSchemaFreeParserCtxt(pc);
		}
		xmlSetStructuredErrorFunc(nullptr, nullptr);
		if (!schema_ && load_error_.empty()) load_error_ = "xmlSchemaParse failed for " + path;
	}
	~WinfoSchema()
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

inline ::testing::AssertionResult WinfoValid(const std::string &xml)
{
	return WinfoSchema::instance().validate(xml);
}

// A watcherinfo document parsed back, with "w" bound for XPath.
class Winfo : public ParsedXml {
public:
	explicit Winfo(const std::string &xml) : ParsedXml(xml, {{"w", kWinfoNs}}) {}
};

}  // namespace imps::test
