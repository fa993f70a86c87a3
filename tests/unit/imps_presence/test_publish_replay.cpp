// A PUBLISH whose Redis reply was lost is sent again as a replay (issue 9, "writes that
// survive a retry"): the script, keyed by the new ETag, never applies it twice, and the ETag
// the client is answered with is the one stored. Against a real Redis, and through the engine
// with the reply really lost (CLIENT PAUSE WRITE: the script runs after the module's timeout).
#include "imps_presence/core/engine.hpp"
#include "imps_presence/core/store.hpp"

#include "imps/redis.hpp"

#include "../common/redis_server.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

using namespace imps::presence;
using imps::Redis;
using imps::RedisConfig;
using imps::test::RedisServer;

namespace {

const std::string kAlice = "alice@a.example";

std::string body(const std::string &basic)
{
	return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" "
		   "entity=\"sip:alice@a.example\"><tuple id=\"t1\"><status><basic>"
			+ basic + "</basic></status></tuple></presence>";
}

long long now_s() { return static_cast<long long>(time(nullptr)); }

class ReplayHost : public Host {
public:
	bool send_notify(const imps::subs::Outgoing &) override { return true; }
	Action rule(const std::string &, const std::string &) override { return Action::Allow; }
	void stat(Stat, long long) override {}
};

class PublishReplay : public ::testing::Test {
protected:
	static void SetUpTestSuite() { server_ = std::make_unique<RedisServer>(); }
	static void TearDownTestSuite() { server_.reset(); }
	void SetUp() override
	{
		RedisConfig c;
		c.port = server_->port();
		c.timeout_ms = 150;
		c.retry_interval_ms = 1000;
		redis_ = std::make_unique<Redis>(c);
		redis_->command({"FLUSHALL"});
		store_ = std::make_unique<imps::subs::Store>(*redis_, imps::subs::Keys("t:presence"), 35000);
		pubs_ = std::make_unique<PublicationStore>(*store_);
	}
	PublishResult publish(PubOp op, const std::string &im, const std::string &ne, const std::string &b,
			bool replay)
	{
		long long n = now_s();
		return pubs_->publish(kAlice, op, im, ne, b, "udp:127.0.0.1:5070", n + 600, n, 16, 0, n * 1000, replay);
	}
	std::vector<Publication> live()
	{
		unsigned long long gen = 0;
		return pubs_->publications(kAlice, now_s(), gen);
	}
	static std::unique_ptr<RedisServer> server_;
	std::unique_ptr<Redis> redis_;
	std::unique_ptr<imps::subs::Store> store_;
	std::unique_ptr<PublicationStore> pubs_;
};
std::unique_ptr<RedisServer> PublishReplay::server_;

TEST_F(PublishReplay, ReplayOfAnAppliedInitialPublishAppliesNothingTwice)
{
	auto r = publish(PubOp::Initial, "", "e1", body("open"), false);
	ASSERT_EQ(r.outcome, 1);
	EXPECT_TRUE(r.changed);
	auto again = publish(PubOp::Initial, "", "e1", body("open"), true);
	EXPECT_EQ(again.outcome, 1);
	EXPECT_FALSE(again.changed);  // no second composition, no NOTIFY
	EXPECT_EQ(again.gen, r.gen);
	ASSERT_EQ(live().size(), 1u);
	EXPECT_EQ(live()[0].etag, "e1");
	EXPECT_EQ(pubs_->count_publications(), 1);
}

TEST_F(PublishReplay, ReplayOfAnAppliedModifyKeepsTheNewEtagAndNotTheOld)
{
	ASSERT_EQ(publish(PubOp::Initial, "", "e1", body("open"), false).outcome, 1);
	ASSERT_EQ(publish(PubOp::Modify, "e1", "e2", body("closed"), false).outcome, 1);
	auto again = publish(PubOp::Modify, "e1", "e2", body("closed"), true);
	EXPECT_EQ(again.outcome, 1);  // the client is answered with e2, which is stored
	EXPECT_FALSE(again.changed);
	auto l = live();
	ASSERT_EQ(l.size(), 1u);
	EXPECT_EQ(l[0].etag, "e2");
	EXPECT_NE(l[0].body.find("closed"), std::string::npos);
	EXPECT_EQ(pubs_->count_publications(), 1);
}

TEST_F(PublishReplay, ReplayOfAPublishThatDidNotRunAppliesIt)
{
	ASSERT_EQ(publish(PubOp::Initial, "", "e1", body("open"), false).outcome, 1);
	auto r = publish(PubOp::Modify, "e1", "e2", body("closed"), true);
	EXPECT_EQ(r.outcome, 1);
	EXPECT_TRUE(r.changed);
	ASSERT_EQ(live().size(), 1u);
	EXPECT_EQ(live()[0].etag, "e2");
}

TEST_F(PublishReplay, AClientReusingAConsumedEtagStillGets412)
{
	ASSERT_EQ(publish(PubOp::Initial, "", "e1", body("open"), false).outcome, 1);
	ASSERT_EQ(publish(PubOp::Modify, "e1", "e2", body("closed"), false).outcome, 1);
	// not a replay: the client's own PUBLISH with an If-Match used before
	EXPECT_EQ(publish(PubOp::Modify, "e1", "e3", body("open"), false).outcome, 0);
	EXPECT_EQ(live().size(), 1u);
}

// Through the engine: Redis holds every write for 250 ms (CLIENT PAUSE WRITE), longer than
// the module's 150 ms timeout, so the PUBLISH's reply is lost while the script still runs
// when the pause ends. The engine replays it (waiting for Redis once more): the first run and
// the replay both run, the replay finds the first one's publication; the answer's SIP-ETag is
// the ETag stored, and there is one publication, not two.
TEST_F(PublishReplay, EngineAnswersWithTheStoredEtagWhenTheReplyWasLost)
{
	ReplayHost host;
	Config cfg;
	Engine engine(cfg, *redis_, "t:presence", host);
	RedisConfig c;
	c.port = server_->port();
	Redis admin(c);
	admin.command({"CLIENT", "PAUSE", "250", "WRITE"});
	PublishRequest req;
	req.has_event = true;
	req.event = "presence";
	req.has_body = true;
	req.content_type = "application/pidf+xml";
	req.body = body("open");
	req.expires = 600;
	req.presentity = kAlice;
	req.identity = kAlice;
	req.source = "udp:127.0.0.1:5070";
	req.now = now_s();
	req.now_ms = req.now * 1000;
	Response r;
	try {
		r = engine.publish(req);
	} catch (const imps::RedisError &) {
		r.code = 503;  // what the C boundary answers
	}
	std::this_thread::sleep_for(std::chrono::milliseconds(400));
	std::string etag;
	for (const auto &h : r.headers)
		if (h.rfind("SIP-ETag: ", 0) == 0) etag = h.substr(10);
	auto l = live();
	if (r.code == 200) {
		ASSERT_EQ(l.size(), 1u);
		EXPECT_EQ(l[0].etag, etag);
	} else {
		// both attempts lost their reply: 503, and what the pause let through is one
		// publication at most
		EXPECT_EQ(r.code, 503);
		EXPECT_LE(l.size(), 1u);
	}
	EXPECT_EQ(r.code, 200) << "the replay waited for Redis once more and learnt the outcome";
}

}  // namespace
