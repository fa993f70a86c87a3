// The Redis store of presence publications (modules/imps_presence/core/redis_store.cpp and
// lua/presence_*.lua) on the shared subscription store (imps/subs.hpp), against a real
// redis-server started by the test on a free loopback port: the PUBLISH operations, the NOTIFY
// turns a change hands out to the presentity's watchers, publication expiry, the counters and
// the registry of presentities, and the key layout. Races are run with threads, each with its
// own connection and stores, as two Kamailio processes or nodes sharing one Redis.
#include "../common/redis_server.hpp"

#include "imps_presence/core/store.hpp"

#include "imps/redis.hpp"
#include "imps/subs.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace imps::presence;
using imps::Redis;
using imps::RedisConfig;
using imps::reply_int;
using imps::reply_str;
using imps::subs::Subscription;
using imps::test::RedisServer;

namespace {

// Unix seconds fixed far in the future (the stores keep their keys until some time after
// these, so they must not lie in the past).
constexpr long long kNow = 4000000000LL;
constexpr long long kMs = kNow * 1000;
constexpr long long kBusy = 30000;
const std::string kPrefix = "imps:presence";
const std::string kAlice = "alice@a.example";
const std::string kBob = "bob@a.example";
const std::string kSrc = "udp:127.0.0.1:5070";

// A subscription as the engine hands it to the store.
Subscription make_sub(const std::string &tag, const std::string &pres, const std::string &status = "active",
		const std::string &package = "presence", long long expires_at = kNow + 600)
{
	Subscription s;
	s.package = package;
	s.resource = pres;
	s.watcher = "w-" + tag + "@b.example";
	s.watcher_uri = "sip:w-" + tag + "@b.example";
	s.display_name = "Watcher " + tag;
	s.status = status;
	imps::subs::Dialog &d = s.dialog;
	d.callid = "call-" + tag;
	d.remote_tag = "rt-" + tag;
	d.local_tag = "lt-" + tag;
	d.remote_uri = s.watcher_uri;
	d.local_uri = "sip:" + pres;
	d.remote_target = "sip:" + tag + "@127.0.0.50:5060;transport=tcp";
	d.route_set = "<sip:edge.a.example;lr>";
	d.socket = "udp:127.0.0.1:5070";
	d.local_contact = "sip:ps.a.example:5070";
	d.event_id = "id-" + tag;
	d.remote_cseq = 1;
	s.sid = imps::subs::subscription_id(d.callid, d.remote_tag, d.local_tag);
	s.created_at = kNow;
	s.expires_at = expires_at;
	return s;
}

std::string sid_of(const std::string &tag) { return imps::subs::subscription_id("call-" + tag, "rt-" + tag, "lt-" + tag); }

std::set<std::string> sids(const std::vector<Subscription> &v)
{
	std::set<std::string> out;
	for (const auto &s : v) out.insert(s.sid);
	return out;
}

std::set<std::string> sids_of_tags(std::initializer_list<const char *> tags)
{
	std::set<std::string> out;
	for (const char *t : tags) out.insert(sid_of(t));
	return out;
}

std::map<std::string, Publication> by_etag(const std::vector<Publication> &v)
{
	std::map<std::string, Publication> out;
	for (const auto &p : v) out[p.etag] = p;
	return out;
}

// The Redis hash tag of a key (cluster rule: from the first '{' to the next '}', non-empty).
std::string hash_tag(const std::string &key)
{
	auto a = key.find('{');
	if (a == std::string::npos) return "";
	auto b = key.find('}', a + 1);
	if (b == std::string::npos || b == a + 1) return "";
	return key.substr(a + 1, b - a - 1);
}

class PresenceStore : public ::testing::Test {
protected:
	static void SetUpTestSuite() { server_ = std::make_unique<RedisServer>(); }
	static void TearDownTestSuite() { server_.reset(); }

	void SetUp() override
	{
		ASSERT_TRUE(server_->running());
		redis_ = connect();
		redis_->command({"FLUSHALL"});
		subs_ = std::make_unique<imps::subs::Store>(*redis_, imps::subs::Keys(kPrefix), kBusy);
		pubs_ = std::make_unique<PublicationStore>(*subs_);
	}

	static std::unique_ptr<Redis> connect()
	{
		RedisConfig c;
		c.port = server_->port();
		c.retry_interval_ms = 0;
		c.timeout_ms = 5000;
		return std::make_unique<Redis>(c);
	}

	PublishResult initial(const std::string &etag, const std::string &body, long long expires_at = kNow + 3600,
			long long now = kNow, int max = 16, const std::string &pres = kAlice)
	{
		return pubs_->publish(pres, PubOp::Initial, "", etag, body, kSrc, expires_at, now, max, 0, now * 1000);
	}
	PublishResult change(PubOp op, const std::string &if_match, const std::string &etag, const std::string &body,
			long long expires_at, long long now, const std::string &source = kSrc, int max = 16,
			const std::string &pres = kAlice)
	{
		return pubs_->publish(pres, op, if_match, etag, body, source, expires_at, now, max, 0, now * 1000);
	}
	unsigned long long gen_of(const std::string &pres = kAlice, long long now = kNow)
	{
		unsigned long long g = 0;
		pubs_->publications(pres, now, g);
		return g;
	}
	std::vector<ExpiredPublications> expire(long long now, int limit = 10, long long interval_ms = 0)
	{
		int errors = 0;
		auto out = pubs_->expire(now, now * 1000, interval_ms, limit, errors);
		EXPECT_EQ(errors, 0);
		return out;
	}
	static std::set<std::string> presentities(const std::vector<ExpiredPublications> &v)
	{
		std::set<std::string> out;
		for (const auto &e : v) {
			EXPECT_EQ(out.count(e.presentity), 0u) << e.presentity << " twice";
			out.insert(e.presentity);
		}
		return out;
	}

	// A stored subscription; idle: its initial NOTIFY (at now_ms) answered 200.
	Subscription watcher(const std::string &tag, const std::string &pres = kAlice, const std::string &status = "active",
			const std::string &package = "presence", bool idle = true, long long now_ms = kMs)
	{
		Subscription s = make_sub(tag, pres, status, package);
		bool send_now = false;
		EXPECT_EQ(subs_->create(s, 1000, now_ms, send_now), imps::subs::Outcome::Ok);
		EXPECT_TRUE(send_now);
		EXPECT_EQ(s.cseq, 1u);
		if (idle) {
			imps::subs::Batch b = subs_->complete(pres, s.sid, 1, 200, false, true, now_ms);
			EXPECT_TRUE(b.send.empty());
			EXPECT_TRUE(b.removed.empty());
		}
		return s;
	}
	Subscription stored(const std::string &tag, const std::string &pres = kAlice)
	{
		for (const auto &s : subs_->of(pres, ""))
			if (s.sid == sid_of(tag)) return s;
		return {};
	}

	inline static std::unique_ptr<RedisServer> server_;
	std::unique_ptr<Redis> redis_;
	std::unique_ptr<imps::subs::Store> subs_;
	std::unique_ptr<PublicationStore> pubs_;
};

}  // namespace

// --- PUBLISH ------------------------------------------------------------------------------------

TEST_F(PresenceStore, InitialStoresThePublicationAndReturnsEveryLiveOne)
{
	PublishResult r = initial("e1", "body-1");
	EXPECT_EQ(r.outcome, 1);
	EXPECT_TRUE(r.changed);
	EXPECT_EQ(r.gen, 1u);
	ASSERT_EQ(r.live.size(), 1u);
	EXPECT_EQ(r.live[0].etag, "e1");
	EXPECT_EQ(r.live[0].body, "body-1");
	EXPECT_EQ(r.live[0].source, kSrc);
	EXPECT_EQ(r.live[0].expires_at, kNow + 3600);
	EXPECT_EQ(r.live[0].published_at, kNow);
	EXPECT_TRUE(r.batch.send.empty()) << "nobody watches";

	r = initial("e2", "body\twith\ttabs\nand lines", kNow + 60, kNow + 5);
	EXPECT_EQ(r.outcome, 1);
	EXPECT_EQ(r.gen, 2u);
	auto live = by_etag(r.live);
	ASSERT_EQ(live.size(), 2u);
	EXPECT_EQ(live["e2"].body, "body\twith\ttabs\nand lines");
	EXPECT_EQ(live["e2"].published_at, kNow + 5);

	unsigned long long gen = 0;
	auto pubs = by_etag(pubs_->publications(kAlice, kNow + 5, gen));
	EXPECT_EQ(gen, 2u);
	ASSERT_EQ(pubs.size(), 2u);
	EXPECT_EQ(pubs["e1"].body, "body-1");
	EXPECT_EQ(pubs["e2"].expires_at, kNow + 60);
	EXPECT_EQ(pubs["e2"].source, kSrc);
	EXPECT_EQ(pubs_->count_publications(), 2);
	EXPECT_TRUE(pubs_->publications(kBob, kNow, gen).empty());
	EXPECT_EQ(gen, 0u);
}

TEST_F(PresenceStore, RefreshMovesToANewEtagKeepsTheBodyAndTheGeneration)
{
	initial("e1", "body-1", kNow + 100);
	PublishResult r = change(PubOp::Refresh, "e1", "e2", "", kNow + 3000, kNow + 50, "udp:10.0.0.9:5060");
	EXPECT_EQ(r.outcome, 1);
	EXPECT_FALSE(r.changed) << "a refresh changes no body: nothing to compose";
	EXPECT_EQ(r.gen, 1u);
	EXPECT_TRUE(r.live.empty());

	unsigned long long gen = 0;
	auto pubs = pubs_->publications(kAlice, kNow + 50, gen);
	EXPECT_EQ(gen, 1u);
	ASSERT_EQ(pubs.size(), 1u);
	EXPECT_EQ(pubs[0].etag, "e2");
	EXPECT_EQ(pubs[0].body, "body-1");
	EXPECT_EQ(pubs[0].expires_at, kNow + 3000);
	EXPECT_EQ(pubs[0].published_at, kNow) << "published_at is the last PUBLISH with a body";
	EXPECT_EQ(pubs_->count_publications(), 1);

	// The old entity tag is gone; the new one lives past the old expiry.
	EXPECT_EQ(change(PubOp::Refresh, "e1", "e3", "", kNow + 3000, kNow + 60).outcome, 0);
	EXPECT_TRUE(expire(kNow + 200).empty()) << "the old expiry removes nothing";
	EXPECT_EQ(pubs_->publications(kAlice, kNow + 200, gen).size(), 1u);
	EXPECT_EQ(pubs_->count_publications(), 1);
	auto out = expire(kNow + 3000);
	ASSERT_EQ(out.size(), 1u) << "the new expiry does";
	EXPECT_TRUE(out[0].live.empty());
	EXPECT_EQ(pubs_->count_publications(), 0);
}

TEST_F(PresenceStore, ModifyReplacesTheBodyAndIncrementsTheGeneration)
{
	initial("e1", "body-1");
	initial("other", "body-x");
	PublishResult r = change(PubOp::Modify, "e1", "e2", "body-2", kNow + 1800, kNow + 30, "udp:10.0.0.9:5060");
	EXPECT_EQ(r.outcome, 1);
	EXPECT_TRUE(r.changed);
	EXPECT_EQ(r.gen, 3u);
	auto live = by_etag(r.live);
	ASSERT_EQ(live.size(), 2u);
	EXPECT_EQ(live.count("e1"), 0u);
	EXPECT_EQ(live["e2"].body, "body-2");
	EXPECT_EQ(live["e2"].published_at, kNow + 30);
	EXPECT_EQ(live["e2"].expires_at, kNow + 1800);
	EXPECT_EQ(live["e2"].source, "udp:10.0.0.9:5060");
	EXPECT_EQ(live["other"].body, "body-x");
	EXPECT_EQ(pubs_->count_publications(), 2);
	EXPECT_EQ(change(PubOp::Modify, "e1", "e3", "body-3", kNow + 1800, kNow + 31).outcome, 0) << "e1 is spent";
}

TEST_F(PresenceStore, ModifyWithTheSameBodyIsARefresh)
{
	initial("e1", "body-1");
	initial("other", "body-x", kNow + 3600, kNow + 5);
	watcher("s1");  // active, its NOTIFY answered
	// The bodies do not change: no new generation, nothing to compose, nobody notified, and
	// the publication keeps its place among the others (published_at orders the document).
	PublishResult r = change(PubOp::Modify, "e1", "e2", "body-1", kNow + 1800, kNow + 30);
	EXPECT_EQ(r.outcome, 1);
	EXPECT_FALSE(r.changed) << "the same bytes again are no change of the bodies";
	EXPECT_EQ(r.gen, 2u) << "gen increments only when bodies change";
	EXPECT_TRUE(r.live.empty());
	EXPECT_TRUE(r.batch.send.empty()) << "no NOTIFY turn for an unchanged document";
	EXPECT_EQ(gen_of(), 2u);
	unsigned long long gen = 0;
	auto pubs = by_etag(pubs_->publications(kAlice, kNow + 30, gen));
	ASSERT_EQ(pubs.count("e2"), 1u);
	EXPECT_EQ(pubs.count("e1"), 0u) << "the entity tag moves on as for any modify";
	EXPECT_EQ(pubs["e2"].expires_at, kNow + 1800);
	EXPECT_EQ(pubs["e2"].published_at, kNow) << "still older than the other publication";
	EXPECT_EQ(stored("s1").cseq, 1u);
}

TEST_F(PresenceStore, RemoveDeletesThePublication)
{
	initial("e1", "body-1");
	initial("e2", "body-2");
	PublishResult r = change(PubOp::Remove, "e1", "", "", kNow, kNow + 1);
	EXPECT_EQ(r.outcome, 1);
	EXPECT_TRUE(r.changed);
	EXPECT_EQ(r.gen, 3u);
	ASSERT_EQ(r.live.size(), 1u);
	EXPECT_EQ(r.live[0].etag, "e2");
	EXPECT_EQ(pubs_->count_publications(), 1);

	r = change(PubOp::Remove, "e2", "", "", kNow, kNow + 2);
	EXPECT_EQ(r.outcome, 1);
	EXPECT_TRUE(r.changed);
	EXPECT_TRUE(r.live.empty());
	EXPECT_EQ(r.gen, 4u);
	EXPECT_EQ(pubs_->count_publications(), 0);
	unsigned long long gen = 0;
	EXPECT_TRUE(pubs_->publications(kAlice, kNow + 2, gen).empty());
	EXPECT_EQ(change(PubOp::Remove, "e2", "", "", kNow, kNow + 3).outcome, 0) << "removed once";
	EXPECT_EQ(pubs_->count_publications(), 0);
	EXPECT_TRUE(expire(kNow + 100000).empty()) << "nothing left to expire";
}

TEST_F(PresenceStore, UnknownOrExpiredIfMatchIsOutcomeZeroAndChangesNothing)
{
	watcher("s1");
	initial("e1", "body-1", kNow + 60);
	subs_->complete(kAlice, sid_of("s1"), 2, 200, false, true, kMs + 1);  // answered
	for (PubOp op : {PubOp::Refresh, PubOp::Modify, PubOp::Remove}) {
		PublishResult r = change(op, "nope", "n1", "b", kNow + 600, kNow + 1);
		EXPECT_EQ(r.outcome, 0);
		EXPECT_FALSE(r.changed);
		EXPECT_TRUE(r.batch.send.empty());
		// Another presentity's ETag is unknown here as well.
		EXPECT_EQ(change(op, "e1", "n1", "b", kNow + 600, kNow + 1, kSrc, 16, kBob).outcome, 0);
		// Expired: its expiry is not after now.
		r = change(op, "e1", "n1", "b", kNow + 600, kNow + 60);
		EXPECT_EQ(r.outcome, 0);
		EXPECT_TRUE(r.batch.send.empty());
		EXPECT_EQ(change(op, "e1", "n1", "b", kNow + 600, kNow + 61).outcome, 0);
	}
	EXPECT_EQ(gen_of(), 1u);
	unsigned long long gen = 0;
	auto pubs = pubs_->publications(kAlice, kNow + 59, gen);
	ASSERT_EQ(pubs.size(), 1u);
	EXPECT_EQ(pubs[0].etag, "e1");
	EXPECT_EQ(pubs[0].body, "body-1");
	EXPECT_EQ(pubs_->count_publications(), 1);
	EXPECT_EQ(stored("s1").cseq, 2u) << "nobody was notified";
}

TEST_F(PresenceStore, MaxPublicationsRefusesWithMinusOneAfterCollectingExpiredOnes)
{
	EXPECT_EQ(initial("e1", "b1", kNow + 10, kNow, 2).outcome, 1);
	EXPECT_EQ(initial("e2", "b2", kNow + 3600, kNow, 2).outcome, 1);
	PublishResult r = initial("e3", "b3", kNow + 3600, kNow + 5, 2);
	EXPECT_EQ(r.outcome, -1);
	EXPECT_FALSE(r.changed);
	EXPECT_EQ(gen_of(), 2u);
	EXPECT_EQ(pubs_->count_publications(), 2);

	// A modify replaces one: never refused.
	EXPECT_EQ(change(PubOp::Modify, "e2", "e2b", "b2b", kNow + 3600, kNow + 5, kSrc, 2).outcome, 1);

	// e1 expired at kNow+10: collected first, then the new one fits.
	r = initial("e3", "b3", kNow + 3600, kNow + 10, 2);
	EXPECT_EQ(r.outcome, 1);
	auto live = by_etag(r.live);
	EXPECT_EQ(live.size(), 2u);
	EXPECT_EQ(live.count("e1"), 0u);
	unsigned long long gen = 0;
	EXPECT_EQ(pubs_->publications(kAlice, kNow, gen).size(), 2u) << "e1 is gone from the store";
	EXPECT_EQ(pubs_->count_publications(), 2) << "the collected one left the count too";
	EXPECT_EQ(initial("e4", "b4", kNow + 3600, kNow + 10, 2).outcome, -1);
	// Another presentity has its own limit.
	EXPECT_EQ(initial("b1", "b", kNow + 3600, kNow + 10, 2, kBob).outcome, 1);
	// and the timer, later, finds nothing of e1 left to count down
	expire(kNow + 20);
	EXPECT_EQ(pubs_->count_publications(), 3);
}

TEST_F(PresenceStore, LiveListExcludesExpiredPublications)
{
	initial("short", "b-short", kNow + 10);
	initial("long", "b-long", kNow + 3600);
	PublishResult r = initial("new", "b-new", kNow + 3600, kNow + 10);
	EXPECT_EQ(r.outcome, 1);
	auto live = by_etag(r.live);
	EXPECT_EQ(live.size(), 2u);
	EXPECT_EQ(live.count("short"), 0u);

	r = change(PubOp::Modify, "long", "long2", "b-long2", kNow + 3600, kNow + 11);
	EXPECT_EQ(by_etag(r.live).count("short"), 0u);
	r = change(PubOp::Remove, "new", "", "", kNow, kNow + 11);
	ASSERT_EQ(r.live.size(), 1u);
	EXPECT_EQ(r.live[0].etag, "long2");

	unsigned long long gen = 0;
	EXPECT_EQ(pubs_->publications(kAlice, kNow + 9, gen).size(), 2u) << "short still live at kNow+9";
	EXPECT_EQ(pubs_->publications(kAlice, kNow + 10, gen).size(), 1u);
}

TEST_F(PresenceStore, ExpireReturnsEachPresentityOnceWithItsLivePublications)
{
	initial("a1", "b", kNow + 10);
	initial("a2", "b", kNow + 20);
	initial("a3", "b-a3", kNow + 3600);
	initial("b1", "b", kNow + 15, kNow, 16, kBob);
	EXPECT_TRUE(expire(kNow + 9).empty());
	EXPECT_EQ(pubs_->count_publications(), 4) << "expired ones count until collected";

	auto out = expire(kNow + 20);
	EXPECT_EQ(presentities(out), (std::set<std::string>{kAlice, kBob}));
	for (const auto &e : out) {
		if (e.presentity == kAlice) {
			EXPECT_EQ(e.gen, 4u) << "3 publications, then one expiry step (2 expired): one new generation";
			ASSERT_EQ(e.live.size(), 1u);
			EXPECT_EQ(e.live[0].etag, "a3");
			EXPECT_EQ(e.live[0].body, "b-a3");
		} else {
			EXPECT_EQ(e.gen, 2u);
			EXPECT_TRUE(e.live.empty());
		}
		EXPECT_TRUE(e.batch.send.empty()) << "nobody watches";
	}
	EXPECT_EQ(gen_of(kAlice), 4u);
	EXPECT_EQ(gen_of(kBob), 2u);
	unsigned long long gen = 0;
	auto left = pubs_->publications(kAlice, kNow, gen);  // read at an earlier time: they are gone
	ASSERT_EQ(left.size(), 1u);
	EXPECT_EQ(left[0].etag, "a3");
	EXPECT_EQ(pubs_->count_publications(), 1);
	EXPECT_TRUE(expire(kNow + 20).empty()) << "once";
	EXPECT_TRUE(expire(kNow + 3599).empty());

	// The limit caps how many presentities one call looks at.
	for (int i = 0; i < 5; ++i)
		initial("c" + std::to_string(i), "b", kNow + 30, kNow, 16, "c" + std::to_string(i) + "@a.example");
	auto first = expire(kNow + 30, 2);
	EXPECT_EQ(first.size(), 2u);
	auto rest = expire(kNow + 30, 10);
	EXPECT_EQ(rest.size(), 3u);
	std::set<std::string> all = presentities(first);
	for (const auto &p : presentities(rest)) EXPECT_TRUE(all.insert(p).second) << p << " expired twice";
	EXPECT_EQ(all.size(), 5u);
	EXPECT_EQ(pubs_->count_publications(), 1);
}

// The engine sends a PUBLISH once more (replay) when its reply was lost: keyed by the new
// ETag, a run that was applied is not applied twice, one that was not is applied now.
TEST_F(PresenceStore, AReplayOfAnAppliedPublishAppliesNothingTwice)
{
	auto replay = [&](PubOp op, const std::string &im, const std::string &ne, const std::string &body,
						  long long expires_at, long long now) {
		return pubs_->publish(kAlice, op, im, ne, body, kSrc, expires_at, now, 16, 0, now * 1000, true);
	};
	ASSERT_EQ(initial("e1", "body-1", kNow + 3600).outcome, 1);
	watcher("s1");
	PublishResult r = replay(PubOp::Initial, "", "e1", "body-1", kNow + 3600, kNow);
	EXPECT_EQ(r.outcome, 1) << "the ETag the client gets is the stored one";
	EXPECT_FALSE(r.changed);
	EXPECT_EQ(r.gen, 1u);
	EXPECT_TRUE(r.batch.send.empty()) << "nobody notified twice";
	unsigned long long gen = 0;
	EXPECT_EQ(pubs_->publications(kAlice, kNow, gen).size(), 1u);
	EXPECT_EQ(pubs_->count_publications(), 1);

	// a modify applied, then replayed
	r = change(PubOp::Modify, "e1", "e2", "body-2", kNow + 3600, kNow + 5);
	ASSERT_EQ(r.outcome, 1);
	EXPECT_EQ(sids(r.batch.send), sids_of_tags({"s1"}));
	subs_->complete(kAlice, sid_of("s1"), 2, 200, false, true, kMs + 6000);
	r = replay(PubOp::Modify, "e1", "e2", "body-2", kNow + 3600, kNow + 5);
	EXPECT_EQ(r.outcome, 1);
	EXPECT_FALSE(r.changed);
	EXPECT_EQ(r.gen, 2u);
	EXPECT_TRUE(r.batch.send.empty());
	auto pubs = pubs_->publications(kAlice, kNow + 5, gen);
	ASSERT_EQ(pubs.size(), 1u);
	EXPECT_EQ(pubs[0].etag, "e2");
	EXPECT_EQ(pubs[0].body, "body-2");
	EXPECT_EQ(pubs_->count_publications(), 1);

	// a replay of a run that never reached Redis: applied now
	r = replay(PubOp::Refresh, "e2", "e3", "", kNow + 1800, kNow + 6);
	EXPECT_EQ(r.outcome, 1);
	pubs = pubs_->publications(kAlice, kNow + 6, gen);
	ASSERT_EQ(pubs.size(), 1u);
	EXPECT_EQ(pubs[0].etag, "e3");
	EXPECT_EQ(pubs[0].body, "body-2");
	EXPECT_EQ(pubs[0].expires_at, kNow + 1800);
	r = replay(PubOp::Initial, "", "e4", "body-4", kNow + 3600, kNow + 7);
	EXPECT_EQ(r.outcome, 1);
	EXPECT_TRUE(r.changed);
	EXPECT_EQ(sids(r.batch.send), sids_of_tags({"s1"}));
	EXPECT_EQ(pubs_->count_publications(), 2);
	// a client's own PUBLISH with a spent If-Match stays a 412 (no replay)
	EXPECT_EQ(change(PubOp::Modify, "e1", "e5", "body-5", kNow + 3600, kNow + 8).outcome, 0);
}

TEST_F(PresenceStore, ConcurrentChangesOfOneEtagExactlyOneWins)
{
	const int kRounds = 300;
	auto ra = connect(), rb = connect();
	imps::subs::Store sa_subs(*ra, imps::subs::Keys(kPrefix), kBusy), sb_subs(*rb, imps::subs::Keys(kPrefix), kBusy);
	PublicationStore sa(sa_subs), sb(sb_subs);
	ASSERT_EQ(initial("t0", "body-0").outcome, 1);

	std::string current = "t0";
	int wins_a = 0, wins_b = 0;
	for (int round = 1; round <= kRounds; ++round) {
		std::atomic<int> ready{0};
		int oa = 99, ob = 99;
		std::string ea = "a" + std::to_string(round), eb = "b" + std::to_string(round);
		// Alternate the operation: modifies, refreshes and (every 50th round) a remove racing a modify.
		PubOp op = round % 3 == 0 ? PubOp::Refresh : PubOp::Modify;
		PubOp op_b = round % 50 == 0 ? PubOp::Remove : op;
		auto run = [&](PublicationStore &s, PubOp o, const std::string &etag, int &outcome) {
			++ready;
			while (ready.load() < 2) {
			}
			outcome = s.publish(kAlice, o, current, o == PubOp::Remove ? "" : etag,
					o == PubOp::Refresh ? "" : "body-" + etag, kSrc, kNow + 3600, kNow, 16, 0, kMs).outcome;
		};
		std::thread ta(run, std::ref(sa), op, ea, std::ref(oa));
		std::thread tb(run, std::ref(sb), op_b, eb, std::ref(ob));
		ta.join();
		tb.join();
		ASSERT_TRUE((oa == 1 && ob == 0) || (oa == 0 && ob == 1))
				<< "round " << round << ": outcomes " << oa << " and " << ob;
		unsigned long long gen = 0;
		auto pubs = pubs_->publications(kAlice, kNow, gen);
		if (oa == 1) {
			++wins_a;
			current = ea;
		} else {
			++wins_b;
			current = eb;
		}
		if (op_b == PubOp::Remove && ob == 1) {
			ASSERT_TRUE(pubs.empty());
			ASSERT_EQ(initial("t" + std::to_string(round), "body").outcome, 1);
			current = "t" + std::to_string(round);
			continue;
		}
		ASSERT_EQ(pubs.size(), 1u) << "round " << round;
		ASSERT_EQ(pubs[0].etag, current) << "round " << round;
	}
	EXPECT_EQ(wins_a + wins_b, kRounds);
	EXPECT_EQ(pubs_->count_publications(), 1);
}

// --- the NOTIFY turns a change hands out -----------------------------------------------------------

TEST_F(PresenceStore, AChangeGivesTheTurnToActiveWatchersOnly)
{
	watcher("s1");
	watcher("s2");
	watcher("p1", kAlice, "pending");
	watcher("x1", kAlice, "polite");
	watcher("w1", kAlice, "active", "presence.winfo");
	watcher("b1", kBob);
	PublishResult r = pubs_->publish(kAlice, PubOp::Initial, "", "e1", "body-1", kSrc, kNow + 3600, kNow + 5, 16,
			1000, kMs + 5000);
	ASSERT_EQ(r.outcome, 1);
	EXPECT_EQ(sids(r.batch.send), sids_of_tags({"s1", "s2"})) << "active presence watchers of alice only";
	EXPECT_TRUE(r.batch.removed.empty());
	EXPECT_EQ(r.batch.due_ms, -1) << "nothing deferred";
	for (const auto &s : r.batch.send) {
		EXPECT_EQ(s.cseq, 2u);
		EXPECT_EQ(s.version, 1u);
		EXPECT_EQ(s.last_notify_ms, kMs + 5000);
		EXPECT_EQ(s.resource, kAlice);
		EXPECT_EQ(s.package, "presence");
		EXPECT_EQ(s.status, "active");
		Subscription want = make_sub(s.sid == sid_of("s1") ? "s1" : "s2", kAlice);
		EXPECT_EQ(s.dialog.remote_target, want.dialog.remote_target) << "dialog data for the NOTIFY";
		EXPECT_EQ(s.dialog.callid, want.dialog.callid);
		EXPECT_EQ(s.dialog.route_set, "<sip:edge.a.example;lr>");
		EXPECT_EQ(s.dialog.event_id, want.dialog.event_id);
		EXPECT_EQ(s.watcher, want.watcher);
		EXPECT_EQ(s.expires_at, kNow + 600);
	}
	EXPECT_EQ(stored("s1").cseq, 2u);
	EXPECT_EQ(stored("p1").cseq, 1u);
	EXPECT_EQ(stored("x1").cseq, 1u);
	EXPECT_EQ(stored("w1").cseq, 1u);
	EXPECT_EQ(stored("b1", kBob).cseq, 1u);
	// and later: nothing was deferred for the others
	EXPECT_TRUE(subs_->due(kMs + 1000000, 100).send.empty());

	// a refresh gives nobody a turn; a removal does (the document changed)
	subs_->complete(kAlice, sid_of("s1"), 2, 200, false, true, kMs + 6000);
	subs_->complete(kAlice, sid_of("s2"), 2, 200, false, true, kMs + 6000);
	r = change(PubOp::Refresh, "e1", "e2", "", kNow + 3600, kNow + 10);
	EXPECT_TRUE(r.batch.send.empty());
	r = change(PubOp::Remove, "e2", "", "", kNow, kNow + 11);
	EXPECT_EQ(sids(r.batch.send), sids_of_tags({"s1", "s2"}));
}

TEST_F(PresenceStore, AWatcherWhoseNotifyIsOutstandingGetsItsTurnAfterTheAnswer)
{
	watcher("s1", kAlice, "active", "presence", false);  // NOTIFY 1 outstanding since kMs
	watcher("s2");
	PublishResult r = initial("e1", "body-1", kNow + 3600, kNow + 1);
	EXPECT_EQ(sids(r.batch.send), sids_of_tags({"s2"}));
	EXPECT_EQ(r.batch.due_ms, kMs + kBusy) << "s1 waits for its answer, at most the busy time";
	r = initial("e2", "body-2", kNow + 3600, kNow + 2);
	EXPECT_TRUE(r.batch.send.empty()) << "s2's NOTIFY 2 is outstanding as well now";

	imps::subs::Batch b = subs_->complete(kAlice, sid_of("s1"), 1, 200, false, true, kMs + 3000);
	ASSERT_EQ(b.send.size(), 1u) << "one NOTIFY for both changes";
	EXPECT_EQ(b.send[0].sid, sid_of("s1"));
	EXPECT_EQ(b.send[0].cseq, 2u);
	b = subs_->complete(kAlice, sid_of("s1"), 2, 200, false, true, kMs + 3100);
	EXPECT_TRUE(b.send.empty());
	b = subs_->complete(kAlice, sid_of("s2"), 2, 200, false, true, kMs + 3100);
	ASSERT_EQ(b.send.size(), 1u);
	EXPECT_EQ(b.send[0].cseq, 3u);
	EXPECT_TRUE(subs_->due(kMs + 1000000, 100).send.empty()) << "nothing left deferred";
}

TEST_F(PresenceStore, ChangesWithinTheIntervalAreDeferredAndCoalesced)
{
	watcher("s1");  // its last NOTIFY at kMs
	PublishResult r = pubs_->publish(kAlice, PubOp::Initial, "", "e1", "b1", kSrc, kNow + 3600, kNow, 16, 1000,
			kMs + 100);
	EXPECT_TRUE(r.batch.send.empty());
	EXPECT_EQ(r.batch.due_ms, kMs + 1000);
	r = pubs_->publish(kAlice, PubOp::Initial, "", "e2", "b2", kSrc, kNow + 3600, kNow, 16, 1000, kMs + 500);
	EXPECT_TRUE(r.batch.send.empty());
	EXPECT_TRUE(subs_->due(kMs + 999, 10).send.empty());
	imps::subs::Batch b = subs_->due(kMs + 1000, 10);
	ASSERT_EQ(b.send.size(), 1u);
	EXPECT_EQ(b.send[0].sid, sid_of("s1"));
	EXPECT_EQ(b.send[0].cseq, 2u);
	EXPECT_EQ(b.send[0].last_notify_ms, kMs + 1000);
	EXPECT_TRUE(subs_->due(kMs + 100000, 10).send.empty()) << "once";

	// after the interval a change goes at once (its previous NOTIFY answered)
	subs_->complete(kAlice, sid_of("s1"), 2, 200, false, true, kMs + 1100);
	r = pubs_->publish(kAlice, PubOp::Initial, "", "e3", "b3", kSrc, kNow + 3600, kNow + 2, 16, 1000, kMs + 2000);
	EXPECT_EQ(sids(r.batch.send), sids_of_tags({"s1"}));
}

TEST_F(PresenceStore, ExpiryGivesTheActiveWatchersTheirTurn)
{
	initial("short", "b-short", kNow + 20);
	initial("long", "b-long", kNow + 3600);
	watcher("s1");
	watcher("s2", kAlice, "active", "presence", false);  // outstanding until kMs + kBusy
	watcher("p1", kAlice, "pending");
	watcher("w1", kAlice, "active", "presence.winfo");
	auto out = expire(kNow + 20);
	ASSERT_EQ(out.size(), 1u);
	EXPECT_EQ(out[0].presentity, kAlice);
	EXPECT_EQ(sids(out[0].batch.send), sids_of_tags({"s1"}));
	EXPECT_EQ(out[0].batch.send.at(0).cseq, 2u);
	ASSERT_EQ(out[0].live.size(), 1u);
	EXPECT_EQ(out[0].live[0].etag, "long");
	EXPECT_EQ(out[0].gen, 3u);
	imps::subs::Batch b = subs_->complete(kAlice, sid_of("s2"), 1, 200, false, true, kMs + 21000);
	EXPECT_EQ(sids(b.send), sids_of_tags({"s2"})) << "its turn came with the answer";
	EXPECT_EQ(stored("p1").cseq, 1u);
	EXPECT_EQ(stored("w1").cseq, 1u);
}

// --- counters, registry, keys ----------------------------------------------------------------------

TEST_F(PresenceStore, ListAndCounts)
{
	initial("e1", "b", kNow + 3600);
	initial("e2", "b", kNow + 3600);
	initial("old", "b", kNow + 10, kNow, 16, "carol@a.example");  // expired at the listing time
	watcher("s1", kBob);
	watcher("w1", "dave@a.example", "active", "presence.winfo");
	pubs_->remember("dave@a.example");
	watcher("s2", kAlice);
	watcher("s3", "erin@a.example");  // never remembered: not listed
	pubs_->remember(kBob);
	pubs_->remember("nobody@a.example");  // nothing there

	std::map<std::string, Summary> by;
	for (const auto &s : pubs_->list(100, kNow + 20)) {
		EXPECT_EQ(by.count(s.presentity), 0u) << s.presentity << " listed twice";
		by[s.presentity] = s;
	}
	ASSERT_EQ(by.count(kAlice), 1u);
	EXPECT_EQ(by[kAlice].publications, 2);
	EXPECT_EQ(by[kAlice].watchers, 1);
	ASSERT_EQ(by.count(kBob), 1u);
	EXPECT_EQ(by[kBob].publications, 0);
	EXPECT_EQ(by[kBob].watchers, 1);
	ASSERT_EQ(by.count("dave@a.example"), 1u) << "a winfo watcher keeps the presentity listed";
	EXPECT_EQ(by["dave@a.example"].watchers, 0) << "watchers counts presence subscriptions";
	EXPECT_EQ(by.count("carol@a.example"), 0u) << "only an expired publication";
	EXPECT_EQ(by.count("nobody@a.example"), 0u);
	EXPECT_EQ(by.size(), 3u);
	EXPECT_EQ(pubs_->list(2, kNow + 20).size(), 2u);
	EXPECT_EQ(pubs_->list(100, kNow + 20).size(), 3u) << "the limit leaves the registry as it was";

	EXPECT_EQ(subs_->count(), 4);
	EXPECT_EQ(pubs_->count_publications(), 3) << "expired ones count until collected";
	expire(kNow + 10);
	EXPECT_EQ(pubs_->count_publications(), 2);

	// a refused PUBLISH leaves nothing listed
	EXPECT_EQ(change(PubOp::Modify, "nope", "n", "b", kNow + 600, kNow + 20, kSrc, 16, "mallory@a.example").outcome, 0);
	for (const auto &s : pubs_->list(100, kNow + 20)) EXPECT_NE(s.presentity, "mallory@a.example");
	EXPECT_EQ(pubs_->count_publications(), 2);
}

TEST_F(PresenceStore, ScanPagesThroughTheRegistryBucketByBucket)
{
	std::set<std::string> want;
	for (int i = 0; i < 300; ++i) {
		std::string p = "p" + std::to_string(i) + "@a.example";
		want.insert(p);
		if (i % 2) pubs_->remember(p);
		else initial("e" + std::to_string(i), "b", kNow + 3600, kNow, 16, p);  // a PUBLISH registers too
	}
	pubs_->remember(kAlice);
	pubs_->remember(kAlice);  // once
	want.insert(kAlice);
	std::multiset<std::string> seen;
	int pages = 0;
	for (int b = 0; b < imps::subs::Keys(kPrefix).buckets(); ++b) {
		unsigned long long cursor = 0;
		do {
			auto page = pubs_->scan(b, cursor, 5);
			++pages;
			ASSERT_LT(pages, 10000) << "the cursor never came back to 0";
			for (const auto &p : page) {
				EXPECT_EQ(imps::subs::Keys(kPrefix).bucket_of(p), b) << p << " in the wrong bucket";
				seen.insert(p);
			}
		} while (cursor != 0);
	}
	EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), want);
	EXPECT_GE(pages, 16);
	unsigned long long cursor = 0;
	imps::subs::Store other_subs(*redis_, imps::subs::Keys("other:presence"), kBusy);
	PublicationStore other(other_subs);
	cursor = 0;
	EXPECT_TRUE(other.scan(0, cursor, 100).empty());
	EXPECT_EQ(cursor, 0u);
}

TEST_F(PresenceStore, EveryKeyOfAPresentitySharesItsHashTag)
{
	initial("e1", "b", kNow + 60);
	initial("e2", "b", kNow + 3600, kNow, 16, kBob);
	watcher("s1", kAlice, "active", "presence", false);  // outstanding: the next turn is deferred
	watcher("w1", kAlice, "active", "presence.winfo");
	initial("e3", "b", kNow + 3600, kNow + 1);  // s1 deferred: a due entry
	expire(kNow + 5);

	const std::set<std::string> resource_kinds = {"pub", "pexp", "meta", "subs", "sexp", "due", "lease"};
	const std::set<std::string> global_kinds = {"pexp", "pres", "npub", "sid", "sexp", "due"};
	imps::Reply all = redis_->command({"KEYS", "*"});
	ASSERT_EQ(all->type, REDIS_REPLY_ARRAY);
	std::set<std::string> keys;
	for (size_t i = 0; i < all->elements; ++i) keys.insert(reply_str(all->element[i]));
	for (const auto &k : keys) {
		ASSERT_EQ(k.rfind(kPrefix + ":", 0), 0u) << k;
		std::string tag = hash_tag(k);
		ASSERT_FALSE(tag.empty()) << k << " has no hash tag";
		if (tag == kAlice || tag == kBob) {
			// "<prefix>:{<presentity>}:<kind>"
			std::string kind = k.substr(kPrefix.size() + tag.size() + 4);
			EXPECT_EQ(k, kPrefix + ":{" + tag + "}:" + kind);
			EXPECT_EQ(resource_kinds.count(kind), 1u) << k;
		} else {
			// "<prefix>:<kind>:{<prefix>:<kind>:<n>}"
			std::string rest = k.substr(kPrefix.size() + 1);
			std::string kind = rest.substr(0, rest.find(':'));
			EXPECT_EQ(global_kinds.count(kind), 1u) << k;
			std::string n = tag.substr(tag.rfind(':') + 1);
			EXPECT_EQ(tag, kPrefix + ":" + kind + ":" + n) << k;
			EXPECT_EQ(k, kPrefix + ":" + kind + ":{" + tag + "}");
			int b = std::stoi(n);
			EXPECT_GE(b, 0);
			EXPECT_LT(b, 16);
		}
	}
	for (const auto &kind : resource_kinds)
		EXPECT_EQ(keys.count(kPrefix + ":{" + kAlice + "}:" + kind), 1u) << kind << " of alice";
	EXPECT_EQ(keys.count(kPrefix + ":{" + kBob + "}:pub"), 1u);
	imps::subs::Keys k(kPrefix);
	EXPECT_EQ(k.bucket("pexp", 3), kPrefix + ":pexp:{" + kPrefix + ":pexp:3}");
	EXPECT_EQ(keys.count(k.bucket("pexp", k.bucket_of(kAlice))), 1u) << "alice's next publication expiry";
	// The composed document is not stored: nothing but publications, meta and subscriptions.
	imps::Reply meta = redis_->command({"HKEYS", kPrefix + ":{" + kAlice + "}:meta"});
	ASSERT_EQ(meta->type, REDIS_REPLY_ARRAY);
	ASSERT_EQ(meta->elements, 1u);
	EXPECT_EQ(reply_str(meta->element[0]), "gen");
}

TEST_F(PresenceStore, PublicationKeysOutliveTheLastPublicationByADay)
{
	auto expiry_of = [&](const char *kind) {
		return reply_int(redis_->command({"PEXPIRETIME", kPrefix + ":{" + kAlice + "}:" + kind}).get());
	};
	initial("e1", "b", kNow + 3600);
	for (const char *kind : {"pub", "pexp", "meta"})
		EXPECT_EQ(expiry_of(kind), (kNow + 3600 + 86400) * 1000)
				<< kind << " after the first PUBLISH (-1: the key never goes away)";
	initial("e2", "b", kNow + 600);
	for (const char *kind : {"pub", "pexp", "meta"})
		EXPECT_EQ(expiry_of(kind), (kNow + 3600 + 86400) * 1000) << kind << ": never shortened";
	change(PubOp::Refresh, "e1", "e3", "", kNow + 7200, kNow + 10);
	for (const char *kind : {"pub", "pexp", "meta"})
		EXPECT_EQ(expiry_of(kind), (kNow + 7200 + 86400) * 1000) << kind << ": a refresh extends it";
}

TEST_F(PresenceStore, PrefixesIsolateStores)
{
	imps::subs::Store other_subs(*redis_, imps::subs::Keys("other:presence"), kBusy);
	PublicationStore other(other_subs);
	initial("e1", "b");
	watcher("s1");
	unsigned long long gen = 0;
	EXPECT_TRUE(other.publications(kAlice, kNow, gen).empty());
	EXPECT_TRUE(other_subs.of(kAlice, "").empty());
	EXPECT_EQ(other_subs.count(), 0);
	EXPECT_EQ(other.count_publications(), 0);
	EXPECT_TRUE(other.list(100, kNow).empty());
	EXPECT_EQ(other.publish(kAlice, PubOp::Modify, "e1", "e2", "b", kSrc, kNow + 60, kNow, 16, 0, kMs).outcome, 0);
	int errors = 0;
	EXPECT_TRUE(other.expire(kNow + 100000, kMs + 100000000, 0, 10, errors).empty());
	EXPECT_EQ(errors, 0);
	EXPECT_EQ(pubs_->count_publications(), 1);
}
