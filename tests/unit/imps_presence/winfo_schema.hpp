// Test helper: validates application/watcherinfo+xml documents against the RFC 3858 schema in
// tests/schemas/watcherinfo.xsd (xml.xsd local), and parses them back with the watcherinfo
// namespace registered for XPath ("w").
#pragma once

#include "../common/xml_parse.hpp"
#include "../imps_reginfo/schema_check.hpp"

#include <gtest/gtest.h>

#include <string>

namespace imps::test {

inline constexpr const char *kWinfoNs = "urn:ietf:params:xml:ns:watcherinfo";

inline SchemaCheck &winfo_schema() { return SchemaCheck::for_file("watcherinfo.xsd"); }

inline ::testing::AssertionResult WinfoValid(const std::string &xml)
{
	return winfo_schema().validate(xml);
}

// A watcherinfo document parsed back, with "w" bound for XPath.
class Winfo : public ParsedXml {
public:
	explicit Winfo(const std::string &xml) : ParsedXml(xml, {{"w", kWinfoNs}}) {}
};

}  // namespace imps::test
