// Test helper: validates XML documents against the schemas in tests/schemas (SchemaCheck, one
// per schema file); SchemaValid() checks application/reginfo+xml against all.xsd (RFC 3680 reginfo + RFC 5628 gruuinfo, xml.xsd local), and parses
// them back with the reginfo/gruuinfo namespaces registered for XPath ("r", "gr").
#pragma once

#include "../common/xml_parse.hpp"

#include <gtest/gtest.h>
#include <libxml/xmlschemas.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

namespace imps::test {

inline constexpr const char *kReginfoNs = "urn:ietf:params:xml:ns:reginfo";
inline constexpr const char *kGruuNs = "urn:ietf:params:xml:ns:gruuinfo";

// Finds tests/schemas/<name>: IMPS_SCHEMA_DIR, then walking up from the current directory,
// then relative to this header's path as the compiler saw it.
inline std::string schema_path(const std::string &name = "all.xsd")
{
	namespace fs = std::filesystem;
	if (const char *d = std::getenv("IMPS_SCHEMA_DIR")) {
		fs::path p = fs::path(d) / name;
		if (fs::exists(p)) return p.string();
	}
	std::error_code ec;
	for (fs::path dir = fs::current_path(ec); !dir.empty(); dir = dir.parent_path()) {
		fs::path p = dir / "tests" / "schemas" / name;
		if (fs::exists(p)) return p.string();
		if (dir == dir.root_path()) break;
	}
	fs::path here = fs::path(__FILE__).parent_path();  // tests/unit/imps_reginfo
	fs::path p = here / ".." / ".." / "schemas" / name;
	if (fs::exists(p)) return p.string();
	return {};
}

// One XML schema of tests/schemas, loaded once per file; validate() parses the document with
// no network access and checks it against the schema.
class SchemaCheck {
public:
	// The checker of tests/schemas/<file> (loaded on first use, kept for the whole run).
	static SchemaCheck &for_file(const std::string &file)
	{
		static std::map<std::string, std::unique_ptr<SchemaCheck>> all;
		auto &c = all[file];
		if (!c) c.reset(new SchemaCheck(file));
		return *c;
	}
	static SchemaCheck &instance() { return for_file("all.xsd"); }

	bool loaded() const { return schema_ != nullptr; }
	const std::string &load_error() const { return load_error_; }

	// Parses (XML_PARSE_NONET) and validates; the failure message carries libxml2's errors
	// and the document.
	::testing::AssertionResult validate(const std::string &xml)
	{
		if (!schema_) return ::testing::AssertionFailure() << "schema not loaded: " << load_error_;
		std::string errs;
		xmlSetStructuredErrorFunc(&errs, &SchemaCheck::on_error);
		xmlDocPtr doc = xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "doc.xml",
				nullptr, XML_PARSE_NONET);
		xmlSetStructuredErrorFunc(nullptr, nullptr);
		if (!doc) return ::testing::AssertionFailure() << "not well-formed: " << errs << "\n" << xml;
		xmlSchemaValidCtxtPtr v = xmlSchemaNewValidCtxt(schema_);
		xmlSchemaSetValidStructuredErrors(v, &SchemaCheck::on_error, &errs);
		int rc = xmlSchemaValidateDoc(v, doc);
		xmlSchemaFreeValidCtxt(v);
		xmlFreeDoc(doc);
		if (rc != 0)
			return ::testing::AssertionFailure() << "schema-invalid (rc " << rc << "): " << errs
												 << "\n" << xml;
		return ::testing::AssertionSuccess();
	}

	~SchemaCheck()
	{
		if (schema_) xmlSchemaFree(schema_);
	}

private:
	explicit SchemaCheck(const std::string &file)
	{
		std::string path = schema_path(file);
		if (path.empty()) {
			load_error_ = "tests/schemas/" + file + " not found";
			return;
		}
		xmlSetStructuredErrorFunc(&load_error_, &SchemaCheck::on_error);
		xmlSchemaParserCtxtPtr pc = xmlSchemaNewParserCtxt(path.c_str());
		if (pc) {
			xmlSchemaSetParserStructuredErrors(pc, &SchemaCheck::on_error, &load_error_);
			schema_ = xmlSchemaParse(pc);
			xmlSchemaFreeParserCtxt(pc);
		}
		xmlSetStructuredErrorFunc(nullptr, nullptr);
		if (!schema_ && load_error_.empty()) load_error_ = "xmlSchemaParse failed for " + path;
	}

	static void on_error(void *user, xmlErrorPtr e)
	{
		auto *s = static_cast<std::string *>(user);
		if (e && e->message) {
			*s += "line " + std::to_string(e->line) + ": " + e->message;
		}
	}

	xmlSchemaPtr schema_ = nullptr;
	std::string load_error_;
};

inline ::testing::AssertionResult SchemaValid(const std::string &xml)
{
	return SchemaCheck::instance().validate(xml);
}

// A reginfo document parsed back, with "r" and "gr" bound for XPath.
class Reginfo : public ParsedXml {
public:
	explicit Reginfo(const std::string &xml) : ParsedXml(xml, {{"r", kReginfoNs}, {"gr", kGruuNs}}) {}
};

}  // namespace imps::test
