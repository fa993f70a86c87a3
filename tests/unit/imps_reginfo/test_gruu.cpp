// The temp-GRUU of a binding as Kamailio's registrar builds it (registrar/reply.c): the ruid,
// the AoR hash in hex from its lowest digit, the AoR's host.
#include "imps_reginfo/core/engine.hpp"

#include <gtest/gtest.h>

using imps::reginfo::temp_gruu;

TEST(TempGruu, AsTheRegistrarBuildsIt)
{
	// 0x1a2b3c4d: hex digits from the lowest nibble up
	EXPECT_EQ(temp_gruu("uloc-5f1e-1", 0x1a2b3c4du, "alice@a.example"),
			"sip:uloc-5f1e-1-d4c3b2a1@a.example;gr");
	EXPECT_EQ(temp_gruu("r", 0xf0u, "bob@b.example"), "sip:r-0f@b.example;gr");
	EXPECT_EQ(temp_gruu("r", 0, "bob@b.example"), "sip:r-@b.example;gr");
}

TEST(TempGruu, NoneWithoutRuidOrHost)
{
	EXPECT_EQ(temp_gruu("", 7, "alice@a.example"), "");
	EXPECT_EQ(temp_gruu("r", 7, "alice"), "");
	EXPECT_EQ(temp_gruu("r", 7, "alice@"), "");
}
