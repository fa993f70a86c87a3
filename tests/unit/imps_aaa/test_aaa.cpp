// imps_aaa's logic against the real FreeRADIUS of cfg/freeradius and a real redis-server:
// SIP digest authentication (draft-sterman attributes, verified by rlm_digest), per-service
// authorization with the Redis decision cache, accounting into FreeRADIUS's detail file.
#include "imps_aaa/core/aaa.hpp"
#include "imps/redis.hpp"

#include "../common/redis_server.hpp"
#include "freeradius.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <fstream>
#include <map>
#include <sstream>

using namespace imps::aaa;
using imps::test::RedisServer;

namespace {

std::string md5hex(const std::string &s)
{
	unsigned char md[16];
	unsigned int n = 0;
	EVP_Digest(s.data(), s.size(), md, &n, EVP_md5(), nullptr);
	static const char *hex = "0123456789abcdef";
	std::string out;
	for (unsigned i = 0; i < n; ++i) {
		out += hex[md[i] >> 4];
		out += hex[md[i] & 15];
	}
	return out;
}

// What a SIP UA computes (RFC 2617, qop=auth).
Digest digest(const std::string &user, const std::string &password, const std::string &realm = "a.example")
{
	Digest d;
	d.username = user;
	d.realm = realm;
	d.nonce = "5f2a7c1e0000000000000000abcdef01";
	d.uri = "sip:a.example";
	d.method = "REGISTER";
	d.qop = "auth";
	d.algorithm = "MD5";
	d.cnonce = "0a4f113b";
	d.nc = "00000001";
	std::string ha1 = md5hex(user + ":" + realm + ":" + password);
	std::string ha2 = md5hex(d.method + ":" + d.uri);
	d.response = md5hex(ha1 + ":" + d.nonce + ":" + d.nc + ":" + d.cnonce + ":" + d.qop + ":" + ha2);
	return d;
}

}  // namespace

class AaaTest : public ::testing::Test {
protected:
	static void SetUpTestSuite()
	{
		fr_ = new FreeRadius();
		redis_server_ = new RedisServer();
	}
	static void TearDownTestSuite()
	{
		delete fr_;
		delete redis_server_;
	}
	void SetUp() override
	{
		imps::RedisConfig rc;
		rc.port = redis_server_->port();
		redis_ = std::make_unique<imps::Redis>(rc);
		redis_->command({"FLUSHALL"});
		AaaConfig c;
		c.auth.servers.push_back({"127.0.0.1", static_cast<uint16_t>(fr_->auth_port), "unit-secret"});
		c.acct.servers.push_back({"127.0.0.1", static_cast<uint16_t>(fr_->acct_port), "unit-secret"});
		c.auth.timeout_ms = c.acct.timeout_ms = 200;
		aaa_ = std::make_unique<Aaa>(c, redis_.get(), [this](AaaStat s, long long d) { stats_[s] += d; });
	}
	static FreeRadius *fr_;
	static RedisServer *redis_server_;
	std::unique_ptr<imps::Redis> redis_;
	std::unique_ptr<Aaa> aaa_;
	std::map<AaaStat, long long> stats_;
};
FreeRadius *AaaTest::fr_ = nullptr;
RedisServer *AaaTest::redis_server_ = nullptr;

TEST_F(AaaTest, DigestRightPasswordWrongPasswordUnknownUser)
{
	std::string err;
	EXPECT_EQ(aaa_->authenticate(digest("alice", "alice-secret"), &err), AuthResult::Ok) << err;
	EXPECT_EQ(aaa_->authenticate(digest("alice", "bob-secret"), &err), AuthResult::InvalidPassword);
	EXPECT_EQ(aaa_->authenticate(digest("mallory", "x"), &err), AuthResult::UnknownUser);
	EXPECT_EQ(stats_[AaaStat::Requests], 3);
	EXPECT_EQ(stats_[AaaStat::Accepts], 1);
	EXPECT_EQ(stats_[AaaStat::Rejects], 2);
}

TEST_F(AaaTest, AuthorizationIsCachedPositiveAndNegative)
{
	Decision d = aaa_->authorize("alice", "publish");
	ASSERT_EQ(d.kind, Decision::Accept) << d.error;
	EXPECT_FALSE(d.from_cache);
	EXPECT_EQ(d.klass, "gold");
	EXPECT_EQ(d.max_expires, 3600);
	Decision again = aaa_->authorize("alice", "publish");
	EXPECT_EQ(again.kind, Decision::Accept);
	EXPECT_TRUE(again.from_cache);
	EXPECT_EQ(again.klass, "gold");
	EXPECT_EQ(again.max_expires, 3600);

	Decision no = aaa_->authorize("carol", "publish");
	EXPECT_EQ(no.kind, Decision::Reject);
	EXPECT_EQ(no.reply_message, "carol is not entitled to publish");
	Decision no2 = aaa_->authorize("carol", "publish");
	EXPECT_TRUE(no2.from_cache);
	EXPECT_EQ(no2.kind, Decision::Reject);
	EXPECT_EQ(no2.reply_message, "carol is not entitled to publish");

	// TTLs: positive 300 s, negative 60 s by default
	long long pttl = imps::reply_int(redis_->command({"TTL", "imps:aaa:authz:alice:publish"}).get());
	long long nttl = imps::reply_int(redis_->command({"TTL", "imps:aaa:authz:carol:publish"}).get());
	EXPECT_GT(pttl, 290);
	EXPECT_LE(pttl, 300);
	EXPECT_GT(nttl, 50);
	EXPECT_LE(nttl, 60);
	EXPECT_EQ(stats_[AaaStat::CacheHits], 2);
	EXPECT_EQ(stats_[AaaStat::CacheMisses], 2);

	// flush one user, then all
	EXPECT_EQ(aaa_->flush("alice"), 1);
	EXPECT_FALSE(aaa_->authorize("alice", "publish").from_cache);
	EXPECT_EQ(aaa_->flush(""), 2);
}

TEST_F(AaaTest, AccountingStartAndStopReachTheDetailFile)
{
	std::string err;
	ASSERT_TRUE(aaa_->account("alice", "acct-unit-42", 1, &err)) << err;
	ASSERT_TRUE(aaa_->account("alice", "acct-unit-42", 2, &err)) << err;
	std::ifstream f(fr_->dir + "/radacct/detail");
	std::stringstream ss;
	ss << f.rdbuf();
	std::string detail = ss.str();
	EXPECT_NE(detail.find("Acct-Session-Id = \"acct-unit-42\""), std::string::npos) << detail;
	EXPECT_NE(detail.find("Acct-Status-Type = Start"), std::string::npos);
	EXPECT_NE(detail.find("Acct-Status-Type = Stop"), std::string::npos);
}

// Stops FreeRADIUS (and starts a new one at the end).
TEST_F(AaaTest, ZCachedDecisionAnswersWhileTheHaaaIsDownAndUnavailableIsNeverCached)
{
	ASSERT_EQ(aaa_->authorize("bob", "subscribe").kind, Decision::Accept);
	fr_->stop();
	Decision d = aaa_->authorize("bob", "subscribe");
	EXPECT_EQ(d.kind, Decision::Accept);
	EXPECT_TRUE(d.from_cache);
	Decision u = aaa_->authorize("bob", "query");
	EXPECT_EQ(u.kind, Decision::Unavailable);
	EXPECT_FALSE(u.error.empty());
	EXPECT_EQ(imps::reply_int(redis_->command({"EXISTS", "imps:aaa:authz:bob:query"}).get()), 0);
	std::string err;
	EXPECT_EQ(aaa_->authenticate(digest("alice", "alice-secret"), &err), AuthResult::Unavailable);
	// a fresh FreeRADIUS (new ports) for any test that runs after this one
	delete fr_;
	fr_ = new FreeRadius();
}
