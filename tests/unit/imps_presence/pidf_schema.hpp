// Test helper: validates application/pidf+xml documents against the RFC schemas in
// tests/schemas/presence-all.xsd (RFC 3863 PIDF + RFC 4479 data model + RFC 4480 RPID, with
// common-schema.xsd and the local xml.xsd), so a composed document is checked strictly where
// those RFCs define its elements and laxly elsewhere.
#pragma once

#include "../imps_reginfo/schema_check.hpp"

#include <gtest/gtest.h>

#include <string>

namespace imps::test {

inline ::testing::AssertionResult PidfSchemaValid(const std::string &xml)
{
	return SchemaCheck::for_file("presence-all.xsd").validate(xml);
}

}  // namespace imps::test
