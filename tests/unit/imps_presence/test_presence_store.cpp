// The Redis store of presence publications, composed documents and subscriptions
// (modules/imps_presence/core/redis_store.cpp), against a real redis-server started by the test
// on a free loopback port. Races are run with threads, each with its own connection and store,
// as two Kamailio processes or nodes sharing one Redis.
#include "fake_host.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <thread>

using namespace imps::presence;
using imps::Redis;
using imps::test::kPresNow;
using imps::test::PresenceRedisTest;

namespace {

constexpr long long kNow = kPresNow;
constexpr long long kMs = imps::test::kPresNowMs;
const std::string kAlice = "alice@a.example";
const std::string kBob = "bob@a.example";
const std::string kSrc = "udp:127.0.0.1:5070";

Subscription make_sub(const std::string &sid, const std::string &pres, const std::string &status = "active",
		const std::string &event = "presence", long long expires_at = kNow + 600, long long last_ms = kMs)
{
	Subscription s;
	s.sid = sid;
	s.presentity = pres;
	s.event = event;
	s.watcher = "w-" + sid + "@b.example";
	s.watcher_uri = "sip:w-" + sid + "@b.example";
	s.display_name = "Watcher " + sid;
	s.status = status;
	s.callid = "call-" + sid;
	s.remote_tag = "rt-" + sid;
	s.local_tag = "lt-" + sid;
	s.remote_uri = s.watcher_uri;
	s.local_uri = "sip:" + pres;
	s.remote_target = "sip:" + sid + "@127.0.0.50:5060;transport=tcp";
	s.route_set = "<sip:edge.a.example;lr>";
	s.socket = "udp:127.0.0.1:5070";
	s.local_contact = "sip:ps.a.example:5070";
	s.event_id = "id-" + sid;
	s.expires_at = expires_at;
	s.created_at = kNow;
	s.remote_cseq = 1;
	s.last_notify_ms = last_ms;
	return s;
}

std::set<std::string> sids(const std::vector<Subscription> &v)
{
	std::set<std::string> out;
	for (const auto &s : v) out.insert(s.sid);
	return out;
}

std::map<std::string, Publication> by_etag(const std::vector<Publication> &v)
{
	std::map<std::string, Publication> out;
	for (const auto &p : v) out[p.etag] = p;
	return out;
}

class PresenceStore : public PresenceRedisTest {
protected:
	PublishResult initial(const std::string &etag, const std::string &body, long long expires_at = kNow + 3600,
			long long now = kNow, int max = 16, const std::string &pres = kAlice)
	{
		return store_->publish(pres, PubOp::Initial, "", etag, body, kSrc, expires_at, now, max);
	}
	unsigned long long gen_of(const std::string &pres = kAlice, long long now = kNow)
	{
		unsigned long long g = 0;
		store_->publications(pres, now, g);
		return g;
	}
	Subscription created(const std::string &sid, const std::string &pres = kAlice,
			const std::string &status = "active", const std::string &event = "presence",
			long long expires_at = kNow + 600, long long last_ms = kMs)
	{
		Subscription s = make_sub(sid, pres, status, event, expires_at, last_ms);
		store_->create(s);
		return s;
	}
	Subscription stored(const std::string &sid, const std::string &pres = kAlice)
	{
		for (const auto &s : store_->subscriptions(pres, ""))
			if (s.sid == sid) return s;
		return {};
	}
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

	r = initial("e2", "body\twith\ttabs\nand lines", kNow + 60, kNow + 5);
	EXPECT_EQ(r.outcome, 1);
	EXPECT_EQ(r.gen, 2u);
	auto live = by_etag(r.live);
	ASSERT_EQ(live.size(), 2u);
	EXPECT_EQ(live["e2"].body, "body\twith\ttabs\nand lines");
	EXPECT_EQ(live["e2"].published_at, kNow + 5);

	unsigned long long gen = 0;
	auto pubs = by_etag(store_->publications(kAlice, kNow + 5, gen));
	EXPECT_EQ(gen, 2u);
	ASSERT_EQ(pubs.size(), 2u);
	EXPECT_EQ(pubs["e1"].body, "body-1");
	EXPECT_EQ(pubs["e2"].expires_at, kNow + 60);
	EXPECT_EQ(store_->count_publications(), 2);
	EXPECT_TRUE(store_->publications(kBob, kNow, gen).empty());
	EXPECT_EQ(gen, 0u);
}

TEST_F(PresenceStore, RefreshMovesToANewEtagKeepsTheBodyAndTheGeneration)
{
	initial("e1", "body-1", kNow + 100);
	PublishResult r = store_->publish(kAlice, PubOp::Refresh, "e1", "e2", "", "udp:10.0.0.9:5060",
			kNow + 3000, kNow + 50, 16);
	EXPECT_EQ(r.outcome, 1);
	EXPECT_FALSE(r.changed) << "a refresh changes no body: nothing to compose";
	EXPECT_EQ(r.gen, 1u);
	EXPECT_TRUE(r.live.empty());

	unsigned long long gen = 0;
	auto pubs = store_->publications(kAlice, kNow + 50, gen);
	EXPECT_EQ(gen, 1u);
	ASSERT_EQ(pubs.size(), 1u);
	EXPECT_EQ(pubs[0].etag, "e2");
	EXPECT_EQ(pubs[0].body, "body-1");
	EXPECT_EQ(pubs[0].expires_at, kNow + 3000);
	EXPECT_EQ(pubs[0].published_at, kNow) << "published_at is the last PUBLISH with a body";
	EXPECT_EQ(store_->count_publications(), 1);

	// The old entity tag is gone; the new one lives past the old expiry.
	EXPECT_EQ(store_->publish(kAlice, PubOp::Refresh, "e1", "e3", "", kSrc, kNow + 3000, kNow + 60, 16).outcome, 0);
	EXPECT_EQ(store_->publications(kAlice, kNow + 200, gen).size(), 1u);
	EXPECT_TRUE(store_->expire_publications(kNow + 200, 10).empty());
}

TEST_F(PresenceStore, ModifyReplacesTheBodyAndIncrementsTheGeneration)
{
	initial("e1", "body-1");
	initial("other", "body-x");
	PublishResult r = store_->publish(kAlice, PubOp::Modify, "e1", "e2", "body-2", "udp:10.0.0.9:5060",
			kNow + 1800, kNow + 30, 16);
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
	EXPECT_EQ(store_->count_publications(), 2);
}

TEST_F(PresenceStore, ModifyWithTheSameBodyChangesNothingButTheEntityTag)
{
	initial("e1", "body-1");
	initial("other", "body-x", kNow + 3600, kNow + 5);
	// The bodies do not change: no new generation, nothing to compose, and the publication
	// keeps its place among the others (published_at orders the composed document).
	PublishResult r = store_->publish(kAlice, PubOp::Modify, "e1", "e2", "body-1", kSrc, kNow + 1800,
			kNow + 30, 16);
	EXPECT_EQ(r.outcome, 1);
	EXPECT_FALSE(r.changed) << "the same bytes again are no change of the bodies";
	EXPECT_EQ(r.gen, 2u) << "gen increments only when bodies change";
	EXPECT_EQ(gen_of(), 2u);
	unsigned long long gen = 0;
	auto pubs = by_etag(store_->publications(kAlice, kNow + 30, gen));
	ASSERT_EQ(pubs.count("e2"), 1u);
	EXPECT_EQ(pubs.count("e1"), 0u) << "the entity tag moves on as for any modify";
	EXPECT_EQ(pubs["e2"].expires_at, kNow + 1800);
	EXPECT_EQ(pubs["e2"].published_at, kNow) << "still older than the other publication";
}

TEST_F(PresenceStore, RemoveDeletesThePublication)
{
	initial("e1", "body-1");
	initial("e2", "body-2");
	PublishResult r = store_->publish(kAlice, PubOp::Remove, "e1", "", "", kSrc, kNow, kNow + 1, 16);
	EXPECT_EQ(r.outcome, 1);
	EXPECT_TRUE(r.changed);
	EXPECT_EQ(r.gen, 3u);
	ASSERT_EQ(r.live.size(), 1u);
	EXPECT_EQ(r.live[0].etag, "e2");

	r = store_->publish(kAlice, PubOp::Remove, "e2", "", "", kSrc, kNow, kNow + 2, 16);
	EXPECT_EQ(r.outcome, 1);
	EXPECT_TRUE(r.live.empty());
	EXPECT_EQ(r.gen, 4u);
	EXPECT_EQ(store_->count_publications(), 0);
	unsigned long long gen = 0;
	EXPECT_TRUE(store_->publications(kAlice, kNow + 2, gen).empty());
	EXPECT_EQ(store_->publish(kAlice, PubOp::Remove, "e2", "", "", kSrc, kNow, kNow + 3, 16).outcome, 0);
	EXPECT_TRUE(store_->expire_publications(kNow + 100000, 10).empty()) << "nothing left to expire";
}

TEST_F(PresenceStore, UnknownOrExpiredIfMatchIsOutcomeZeroAndChangesNothing)
{
	initial("e1", "body-1", kNow + 60);
	for (PubOp op : {PubOp::Refresh, PubOp::Modify, PubOp::Remove}) {
		PublishResult r = store_->publish(kAlice, op, "nope", "n1", "b", kSrc, kNow + 600, kNow + 1, 16);
		EXPECT_EQ(r.outcome, 0);
		EXPECT_FALSE(r.changed);
		// Another presentity's ETag is unknown here as well.
		EXPECT_EQ(store_->publish(kBob, op, "e1", "n1", "b", kSrc, kNow + 600, kNow + 1, 16).outcome, 0);
		// Expired: its expiry is not after now.
		EXPECT_EQ(store_->publish(kAlice, op, "e1", "n1", "b", kSrc, kNow + 600, kNow + 60, 16).outcome, 0);
		EXPECT_EQ(store_->publish(kAlice, op, "e1", "n1", "b", kSrc, kNow + 600, kNow + 61, 16).outcome, 0);
	}
	EXPECT_EQ(gen_of(), 1u);
	unsigned long long gen = 0;
	auto pubs = store_->publications(kAlice, kNow + 59, gen);
	ASSERT_EQ(pubs.size(), 1u);
	EXPECT_EQ(pubs[0].etag, "e1");
	EXPECT_EQ(pubs[0].body, "body-1");
}

TEST_F(PresenceStore, MaxPublicationsRefusesWithMinusOneAfterCollectingExpiredOnes)
{
	EXPECT_EQ(initial("e1", "b1", kNow + 10, kNow, 2).outcome, 1);
	EXPECT_EQ(initial("e2", "b2", kNow + 3600, kNow, 2).outcome, 1);
	PublishResult r = initial("e3", "b3", kNow + 3600, kNow + 5, 2);
	EXPECT_EQ(r.outcome, -1);
	EXPECT_FALSE(r.changed);
	EXPECT_EQ(gen_of(), 2u);
	EXPECT_EQ(store_->count_publications(), 2);

	// A modify replaces one: never refused.
	EXPECT_EQ(store_->publish(kAlice, PubOp::Modify, "e2", "e2b", "b2b", kSrc, kNow + 3600, kNow + 5, 2).outcome, 1);

	// e1 expired at kNow+10: collected first, then the new one fits.
	r = initial("e3", "b3", kNow + 3600, kNow + 10, 2);
	EXPECT_EQ(r.outcome, 1);
	auto live = by_etag(r.live);
	EXPECT_EQ(live.size(), 2u);
	EXPECT_EQ(live.count("e1"), 0u);
	EXPECT_EQ(store_->count_publications(), 2) << "the expired one left the expiry index too";
	EXPECT_EQ(initial("e4", "b4", kNow + 3600, kNow + 10, 2).outcome, -1);
	// Another presentity has its own limit.
	EXPECT_EQ(initial("b1", "b", kNow + 3600, kNow + 10, 2, kBob).outcome, 1);
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

	r = store_->publish(kAlice, PubOp::Modify, "long", "long2", "b-long2", kSrc, kNow + 3600, kNow + 11, 16);
	EXPECT_EQ(by_etag(r.live).count("short"), 0u);
	r = store_->publish(kAlice, PubOp::Remove, "new", "", "", kSrc, kNow, kNow + 11, 16);
	ASSERT_EQ(r.live.size(), 1u);
	EXPECT_EQ(r.live[0].etag, "long2");

	unsigned long long gen = 0;
	EXPECT_EQ(store_->publications(kAlice, kNow + 9, gen).size(), 2u) << "short still live at kNow+9";
	EXPECT_EQ(store_->publications(kAlice, kNow + 10, gen).size(), 1u);
}

TEST_F(PresenceStore, ExpirePublicationsReturnsEachPresentityOnceAndBumpsTheGeneration)
{
	initial("a1", "b", kNow + 10);
	initial("a2", "b", kNow + 20);
	initial("a3", "b", kNow + 3600);
	initial("b1", "b", kNow + 15, kNow, 16, kBob);
	EXPECT_TRUE(store_->expire_publications(kNow + 9, 10).empty());

	auto out = store_->expire_publications(kNow + 20, 10);
	std::sort(out.begin(), out.end());
	EXPECT_EQ(out, (std::vector<std::string>{kAlice, kBob}));
	EXPECT_EQ(gen_of(kAlice), 5u) << "3 publications, 2 expired";
	EXPECT_EQ(gen_of(kBob), 2u);
	unsigned long long gen = 0;
	auto left = store_->publications(kAlice, kNow, gen);  // read at an earlier time: they are gone
	ASSERT_EQ(left.size(), 1u);
	EXPECT_EQ(left[0].etag, "a3");
	EXPECT_EQ(store_->count_publications(), 1);
	EXPECT_TRUE(store_->expire_publications(kNow + 20, 10).empty());

	// The limit caps how many entries one call looks at.
	for (int i = 0; i < 5; ++i) initial("c" + std::to_string(i), "b", kNow + 30, kNow, 16, "c" + std::to_string(i) + "@a.example");
	EXPECT_EQ(store_->expire_publications(kNow + 30, 2).size(), 2u);
	EXPECT_EQ(store_->expire_publications(kNow + 30, 10).size(), 3u);
}

TEST_F(PresenceStore, ConcurrentModifiesOfOneEtagExactlyOneWins)
{
	const int kRounds = 300;
	auto ra = connect(), rb = connect();
	auto sa = make_redis_store(*ra, imps::test::kPresPrefix);
	auto sb = make_redis_store(*rb, imps::test::kPresPrefix);
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
		auto run = [&](Store &s, PubOp o, const std::string &etag, int &outcome) {
			++ready;
			while (ready.load() < 2) {
			}
			outcome = s.publish(kAlice, o, current, o == PubOp::Remove ? "" : etag, "body-" + etag, kSrc,
					kNow + 3600, kNow, 16).outcome;
		};
		std::thread ta(run, std::ref(*sa), op, ea, std::ref(oa));
		std::thread tb(run, std::ref(*sb), op_b, eb, std::ref(ob));
		ta.join();
		tb.join();
		ASSERT_EQ(oa + ob, 1) << "round " << round << ": outcomes " << oa << " and " << ob;
		ASSERT_TRUE((oa == 1 && ob == 0) || (oa == 0 && ob == 1)) << "round " << round;
		unsigned long long gen = 0;
		auto pubs = store_->publications(kAlice, kNow, gen);
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
	EXPECT_EQ(store_->count_publications(), 1);
}

// --- composed document ----------------------------------------------------------------------------

TEST_F(PresenceStore, OlderGenerationIsNotStored)
{
	DocumentChange d = store_->set_document(kAlice, 2, "doc-2", "h2", kMs, 0);
	EXPECT_TRUE(d.stored);
	EXPECT_TRUE(d.notify.empty());
	EXPECT_EQ(store_->document(kAlice), "doc-2");
	created("s1");

	d = store_->set_document(kAlice, 1, "doc-1", "h1", kMs + 5000, 0);
	EXPECT_FALSE(d.stored);
	EXPECT_TRUE(d.notify.empty());
	d = store_->set_document(kAlice, 2, "doc-2b", "h2b", kMs + 5000, 0);
	EXPECT_FALSE(d.stored) << "the same generation twice: the first one stays";
	EXPECT_TRUE(d.notify.empty());
	EXPECT_EQ(store_->document(kAlice), "doc-2");
	EXPECT_EQ(stored("s1").cseq, 1u);

	d = store_->set_document(kAlice, 3, "doc-3", "h3", kMs + 5000, 0);
	EXPECT_TRUE(d.stored);
	EXPECT_EQ(d.notify.size(), 1u);
	EXPECT_EQ(store_->document(kAlice), "doc-3");
	EXPECT_EQ(store_->document(kBob), "");
}

TEST_F(PresenceStore, SameHashStoresNoNotify)
{
	created("s1");
	DocumentChange d = store_->set_document(kAlice, 1, "doc", "h", kMs + 5000, 1000);
	EXPECT_TRUE(d.stored);
	ASSERT_EQ(d.notify.size(), 1u);
	d = store_->set_document(kAlice, 2, "doc", "h", kMs + 10000, 1000);
	EXPECT_FALSE(d.stored);
	EXPECT_TRUE(d.notify.empty());
	EXPECT_TRUE(store_->claim_due(kMs + 100000, 10).empty());
	EXPECT_EQ(stored("s1").cseq, 2u);
	// The newer generation is recorded even so: generation 2 cannot be stored again.
	EXPECT_FALSE(store_->set_document(kAlice, 2, "other", "h-other", kMs + 20000, 1000).stored);
}

TEST_F(PresenceStore, ActiveSubscriptionsGetTheNextCseq)
{
	created("s1");
	created("s2");
	created("w1", kAlice, "active", "presence.winfo");
	created("b1", kBob);
	DocumentChange d = store_->set_document(kAlice, 1, "doc", "h", kMs + 5000, 1000);
	EXPECT_TRUE(d.stored);
	EXPECT_EQ(sids(d.notify), (std::set<std::string>{"s1", "s2"})) << "presence watchers of alice only";
	for (const auto &s : d.notify) {
		EXPECT_EQ(s.cseq, 2u);
		EXPECT_EQ(s.version, 1u);
		EXPECT_EQ(s.last_notify_ms, kMs + 5000);
		EXPECT_EQ(s.presentity, kAlice);
		EXPECT_EQ(s.remote_target, make_sub(s.sid, kAlice).remote_target) << "dialog data for the NOTIFY";
		EXPECT_EQ(s.route_set, "<sip:edge.a.example;lr>");
		EXPECT_EQ(s.event_id, "id-" + s.sid);
	}
	EXPECT_EQ(stored("w1").cseq, 1u);
	EXPECT_EQ(stored("b1", kBob).cseq, 1u);
}

TEST_F(PresenceStore, SecondChangeWithinTheIntervalIsQueuedAndClaimedOnceDue)
{
	created("s1", kAlice, "active", "presence", kNow + 600, kMs);
	// First change 2 s after the initial NOTIFY: sent at once.
	DocumentChange d = store_->set_document(kAlice, 1, "d1", "h1", kMs + 2000, 1000);
	ASSERT_EQ(d.notify.size(), 1u);
	EXPECT_EQ(d.notify[0].cseq, 2u);
	// Two more within the interval: queued, coalesced into one NOTIFY due at last + interval.
	d = store_->set_document(kAlice, 2, "d2", "h2", kMs + 2100, 1000);
	EXPECT_TRUE(d.stored);
	EXPECT_TRUE(d.notify.empty());
	d = store_->set_document(kAlice, 3, "d3", "h3", kMs + 2500, 1000);
	EXPECT_TRUE(d.stored);
	EXPECT_TRUE(d.notify.empty());
	EXPECT_TRUE(store_->claim_due(kMs + 2999, 10).empty());
	auto due = store_->claim_due(kMs + 3000, 10);
	ASSERT_EQ(due.size(), 1u);
	EXPECT_EQ(due[0].sid, "s1");
	EXPECT_EQ(due[0].presentity, kAlice);
	EXPECT_EQ(due[0].cseq, 2u) << "claimed as stored: the CSeq is handed out under the lock";
	auto bumped = store_->bump({"s1"}, "", kMs + 3000);
	ASSERT_EQ(bumped.size(), 1u);
	EXPECT_EQ(bumped[0].cseq, 3u);
	EXPECT_EQ(bumped[0].version, 2u);
	EXPECT_EQ(bumped[0].last_notify_ms, kMs + 3000);
	EXPECT_TRUE(store_->claim_due(kMs + 10000, 10).empty()) << "claimed once";
	EXPECT_EQ(store_->document(kAlice), "d3");

	// A change right after the initial NOTIFY of a new subscription is queued as well.
	created("s2", kAlice, "active", "presence", kNow + 600, kMs + 3500);
	d = store_->set_document(kAlice, 4, "d4", "h4", kMs + 4000, 1000);
	EXPECT_EQ(sids(d.notify), (std::set<std::string>{"s1"})) << "s1's last NOTIFY is 1 s old";
	due = store_->claim_due(kMs + 4500, 10);
	ASSERT_EQ(due.size(), 1u);
	EXPECT_EQ(due[0].sid, "s2");
	EXPECT_EQ(due[0].cseq, 1u);
}

TEST_F(PresenceStore, DueNotifyIsSentAtOnceByALaterChangeAndNotTwice)
{
	created("s1", kAlice, "active", "presence", kNow + 600, kMs);
	EXPECT_TRUE(store_->set_document(kAlice, 1, "d1", "h1", kMs + 100, 1000).notify.empty());
	// The next change comes after the interval: the queued one is folded into it.
	DocumentChange d = store_->set_document(kAlice, 2, "d2", "h2", kMs + 1500, 1000);
	ASSERT_EQ(d.notify.size(), 1u);
	EXPECT_EQ(d.notify[0].cseq, 2u);
	EXPECT_TRUE(store_->claim_due(kMs + 100000, 10).empty());
}

TEST_F(PresenceStore, PendingAndPoliteSubscriptionsAreNotNotified)
{
	created("p1", kAlice, "pending");
	created("x1", kAlice, "polite");
	created("a1", kAlice, "active");
	DocumentChange d = store_->set_document(kAlice, 1, "d1", "h1", kMs + 5000, 1000);
	EXPECT_EQ(sids(d.notify), (std::set<std::string>{"a1"}));
	d = store_->set_document(kAlice, 2, "d2", "h2", kMs + 5100, 1000);
	EXPECT_TRUE(d.notify.empty());
	auto due = store_->claim_due(kMs + 100000, 10);
	EXPECT_EQ(sids(due), (std::set<std::string>{"a1"})) << "nothing queued for pending or polite";
	EXPECT_EQ(stored("p1").cseq, 1u);
	EXPECT_EQ(stored("x1").cseq, 1u);
}

TEST_F(PresenceStore, SetDocumentDropsSubscriptionsWhoseRecordIsGone)
{
	created("s1");
	created("s2");
	redis_->command({"DEL", imps::test::kPresPrefix + ":sub:s1"});
	DocumentChange d = store_->set_document(kAlice, 1, "d1", "h1", kMs + 5000, 1000);
	EXPECT_EQ(sids(d.notify), (std::set<std::string>{"s2"}));
	EXPECT_EQ(imps::reply_int(redis_->command({"SCARD", imps::test::kPresPrefix + ":subs:" + kAlice}).get()), 1);
}

TEST_F(PresenceStore, QueuedNotifyOfASubscriptionNoLongerActiveIsDropped)
{
	created("s1", kAlice, "active", "presence", kNow + 600, kMs);
	store_->set_document(kAlice, 1, "d1", "h1", kMs + 100, 1000);
	store_->bump({"s1"}, "pending", kMs + 200);
	EXPECT_TRUE(store_->claim_due(kMs + 100000, 10).empty());
}

// --- subscriptions ----------------------------------------------------------------------------------

TEST_F(PresenceStore, CreateStoresEveryFieldAndARetransmissionKeepsCounting)
{
	Subscription s = make_sub("s1", kAlice, "pending");
	s.remote_cseq = 7;
	store_->create(s);
	EXPECT_EQ(s.version, 0u);
	EXPECT_EQ(s.cseq, 1u);
	Subscription got = stored("s1");
	Subscription want = make_sub("s1", kAlice, "pending");
	EXPECT_EQ(got.sid, "s1");
	EXPECT_EQ(got.presentity, kAlice);
	EXPECT_EQ(got.event, "presence");
	EXPECT_EQ(got.watcher, want.watcher);
	EXPECT_EQ(got.watcher_uri, want.watcher_uri);
	EXPECT_EQ(got.display_name, want.display_name);
	EXPECT_EQ(got.status, "pending");
	EXPECT_EQ(got.callid, want.callid);
	EXPECT_EQ(got.remote_tag, want.remote_tag);
	EXPECT_EQ(got.local_tag, want.local_tag);
	EXPECT_EQ(got.remote_uri, want.remote_uri);
	EXPECT_EQ(got.local_uri, want.local_uri);
	EXPECT_EQ(got.remote_target, want.remote_target);
	EXPECT_EQ(got.route_set, want.route_set);
	EXPECT_EQ(got.socket, want.socket);
	EXPECT_EQ(got.local_contact, want.local_contact);
	EXPECT_EQ(got.event_id, "id-s1");
	EXPECT_EQ(got.expires_at, kNow + 600);
	EXPECT_EQ(got.created_at, kNow);
	EXPECT_EQ(got.remote_cseq, 7);
	EXPECT_EQ(got.last_notify_ms, kMs);
	EXPECT_EQ(got.version, 0u);
	EXPECT_EQ(got.cseq, 1u);

	Subscription again = make_sub("s1", kAlice, "pending");
	store_->create(again);
	EXPECT_EQ(again.version, 1u);
	EXPECT_EQ(again.cseq, 2u);
	store_->create(again);
	EXPECT_EQ(again.cseq, 3u);
	EXPECT_EQ(stored("s1").cseq, 3u);
	EXPECT_EQ(store_->count_subscriptions(), 1);
	EXPECT_EQ(store_->subscriptions(kAlice, "").size(), 1u);
}

TEST_F(PresenceStore, SubscriptionsFilterByEventPackage)
{
	created("p1");
	created("p2", kAlice, "pending");
	created("w1", kAlice, "active", "presence.winfo");
	created("b1", kBob);
	EXPECT_EQ(sids(store_->subscriptions(kAlice, "presence")), (std::set<std::string>{"p1", "p2"}));
	EXPECT_EQ(sids(store_->subscriptions(kAlice, "presence.winfo")), (std::set<std::string>{"w1"}));
	EXPECT_EQ(sids(store_->subscriptions(kAlice, "")), (std::set<std::string>{"p1", "p2", "w1"}));
	EXPECT_EQ(sids(store_->subscriptions(kBob, "")), (std::set<std::string>{"b1"}));
	EXPECT_TRUE(store_->subscriptions("carol@a.example", "").empty());

	// A set member whose record is gone is dropped from the set.
	redis_->command({"DEL", imps::test::kPresPrefix + ":sub:p1"});
	EXPECT_EQ(sids(store_->subscriptions(kAlice, "presence")), (std::set<std::string>{"p2"}));
	EXPECT_EQ(imps::reply_int(redis_->command({"SISMEMBER", imps::test::kPresPrefix + ":subs:" + kAlice, "p1"}).get()), 0);
}

TEST_F(PresenceStore, RefreshUnknownDialogIs481AndOlderCseqIsOutOfOrder)
{
	Subscription s = make_sub("nope", kAlice);
	EXPECT_EQ(store_->refresh(s, false), SubscribeOutcome::NoSuchDialog);
	EXPECT_EQ(store_->refresh(s, true), SubscribeOutcome::NoSuchDialog);
	EXPECT_EQ(store_->count_subscriptions(), 0);

	Subscription c = make_sub("s1", kAlice);
	c.remote_cseq = 5;
	store_->create(c);
	Subscription r = make_sub("s1", kAlice);
	r.remote_cseq = 4;
	r.expires_at = kNow + 9999;
	EXPECT_EQ(store_->refresh(r, false), SubscribeOutcome::CseqOutOfOrder);
	EXPECT_EQ(store_->refresh(r, true), SubscribeOutcome::CseqOutOfOrder);
	Subscription got = stored("s1");
	EXPECT_EQ(got.cseq, 1u) << "nothing changed";
	EXPECT_EQ(got.expires_at, kNow + 600);
	EXPECT_EQ(store_->count_subscriptions(), 1);
}

TEST_F(PresenceStore, RefreshUpdatesExpiryTargetAndCounters)
{
	created("s1");
	Subscription r;
	r.sid = "s1";
	r.remote_cseq = 2;
	r.expires_at = kNow + 1200;
	r.remote_target = "sip:moved@127.0.0.60:5062";
	ASSERT_EQ(store_->refresh(r, false), SubscribeOutcome::Ok);
	EXPECT_EQ(r.presentity, kAlice) << "the stored record is handed back";
	EXPECT_EQ(r.status, "active");
	EXPECT_EQ(r.version, 1u);
	EXPECT_EQ(r.cseq, 2u);
	EXPECT_EQ(r.expires_at, kNow + 1200);
	EXPECT_EQ(r.remote_target, "sip:moved@127.0.0.60:5062");
	EXPECT_EQ(r.remote_cseq, 2);
	EXPECT_EQ(r.callid, "call-s1");

	// No target in the refresh: the old one stays. The same CSeq again is accepted.
	Subscription r2;
	r2.sid = "s1";
	r2.remote_cseq = 2;
	r2.expires_at = kNow + 1300;
	ASSERT_EQ(store_->refresh(r2, false), SubscribeOutcome::Ok);
	EXPECT_EQ(r2.remote_target, "sip:moved@127.0.0.60:5062");
	EXPECT_EQ(r2.cseq, 3u);

	// The new expiry is what the timer sees.
	EXPECT_TRUE(store_->claim_expired(kNow + 1299, 10).empty());
	EXPECT_EQ(sids(store_->claim_expired(kNow + 1300, 10)), (std::set<std::string>{"s1"}));
}

TEST_F(PresenceStore, RefreshWithRemoveHandsOutTheFinalCseqAndForgets)
{
	created("s1", kAlice, "active", "presence", kNow + 600, kMs);
	created("w1", kAlice, "active", "presence.winfo");
	store_->set_document(kAlice, 1, "d1", "h1", kMs + 10, 1000);  // queues a NOTIFY for s1
	Subscription r;
	r.sid = "s1";
	r.remote_cseq = 3;
	r.expires_at = kNow;
	ASSERT_EQ(store_->refresh(r, true), SubscribeOutcome::Ok);
	EXPECT_EQ(r.cseq, 2u);
	EXPECT_EQ(r.presentity, kAlice);
	EXPECT_EQ(r.event, "presence");
	EXPECT_FALSE(exists(":sub:s1"));
	EXPECT_EQ(sids(store_->subscriptions(kAlice, "")), (std::set<std::string>{"w1"}));
	EXPECT_EQ(store_->count_subscriptions(), 1);
	EXPECT_TRUE(store_->claim_due(kMs + 100000, 10).empty()) << "its queued NOTIFY went with it";
	EXPECT_EQ(store_->refresh(r, false), SubscribeOutcome::NoSuchDialog);

	Subscription w;
	w.sid = "w1";
	w.remote_cseq = 2;
	ASSERT_EQ(store_->refresh(w, true), SubscribeOutcome::Ok);
	EXPECT_EQ(w.event, "presence.winfo");
	EXPECT_TRUE(store_->subscriptions(kAlice, "").empty());
	EXPECT_EQ(store_->count_subscriptions(), 0);
}

TEST_F(PresenceStore, ClaimExpiredHandsOutTheFinalCseqAndRemoves)
{
	created("s1", kAlice, "active", "presence", kNow + 100, kMs);
	created("s2", kAlice, "pending", "presence", kNow + 200);
	created("w1", kAlice, "active", "presence.winfo", kNow + 100);
	store_->set_document(kAlice, 1, "d1", "h1", kMs + 10, 1000);  // queues s1
	EXPECT_TRUE(store_->claim_expired(kNow + 99, 10).empty());
	auto out = store_->claim_expired(kNow + 100, 10);
	EXPECT_EQ(sids(out), (std::set<std::string>{"s1", "w1"}));
	for (const auto &s : out) {
		EXPECT_EQ(s.cseq, 2u);
		EXPECT_EQ(s.presentity, kAlice);
	}
	EXPECT_EQ(sids(store_->subscriptions(kAlice, "")), (std::set<std::string>{"s2"}));
	EXPECT_TRUE(store_->claim_due(kMs + 100000, 10).empty());
	EXPECT_TRUE(store_->claim_expired(kNow + 100, 10).empty());
	EXPECT_EQ(store_->count_subscriptions(), 1);

	// Limit; a record whose hash vanished is skipped.
	EXPECT_EQ(sids(store_->claim_expired(kNow + 200, 10)), (std::set<std::string>{"s2"}));
	for (int i = 0; i < 5; ++i) created("x" + std::to_string(i), kBob, "active", "presence", kNow + 300);
	redis_->command({"DEL", imps::test::kPresPrefix + ":sub:x0"});
	EXPECT_EQ(sids(store_->claim_expired(kNow + 300, 2)), (std::set<std::string>{"x1"}))
			<< "x0 and x1 looked at, x0 skipped";
	EXPECT_EQ(sids(store_->claim_expired(kNow + 300, 10)), (std::set<std::string>{"x2", "x3", "x4"}));
}

TEST_F(PresenceStore, ClaimExpiredFromTwoStoresClaimsEachOnce)
{
	const int kSubs = 400;
	for (int i = 0; i < kSubs; ++i)
		created("s" + std::to_string(i), "p" + std::to_string(i % 7) + "@a.example", "active", "presence",
				kNow + 100 + i % 3);
	auto ra = connect(), rb = connect();
	auto sa = make_redis_store(*ra, imps::test::kPresPrefix);
	auto sb = make_redis_store(*rb, imps::test::kPresPrefix);
	std::vector<Subscription> ga, gb;
	auto run = [](Store &s, std::vector<Subscription> &got) {
		for (;;) {
			auto v = s.claim_expired(kNow + 200, 7);
			if (v.empty()) break;
			got.insert(got.end(), v.begin(), v.end());
		}
	};
	std::thread ta(run, std::ref(*sa), std::ref(ga));
	std::thread tb(run, std::ref(*sb), std::ref(gb));
	ta.join();
	tb.join();
	std::map<std::string, int> seen;
	for (const auto &s : ga) ++seen[s.sid];
	for (const auto &s : gb) ++seen[s.sid];
	EXPECT_EQ(seen.size(), static_cast<size_t>(kSubs));
	for (const auto &kv : seen) EXPECT_EQ(kv.second, 1) << kv.first << " claimed twice";
	EXPECT_EQ(ga.size() + gb.size(), static_cast<size_t>(kSubs));
	EXPECT_EQ(store_->count_subscriptions(), 0);
}

TEST_F(PresenceStore, TakeRemovesWithOrWithoutTheFinalCseq)
{
	created("s1", kAlice, "active", "presence", kNow + 600, kMs);
	created("s2");
	created("w1", kAlice, "active", "presence.winfo");
	store_->set_document(kAlice, 1, "d1", "h1", kMs + 10, 1000);  // queues s1 and s2
	Subscription out;
	ASSERT_TRUE(store_->take("s1", true, out));
	EXPECT_EQ(out.sid, "s1");
	EXPECT_EQ(out.cseq, 2u);
	EXPECT_EQ(out.version, 1u);
	EXPECT_EQ(out.remote_target, make_sub("s1", kAlice).remote_target);
	ASSERT_TRUE(store_->take("s2", false, out));
	EXPECT_EQ(out.cseq, 1u);
	ASSERT_TRUE(store_->take("w1", true, out));
	EXPECT_EQ(out.event, "presence.winfo");
	EXPECT_FALSE(store_->take("s1", true, out));
	EXPECT_FALSE(store_->take("never", false, out));
	EXPECT_TRUE(store_->subscriptions(kAlice, "").empty());
	EXPECT_EQ(store_->count_subscriptions(), 0);
	EXPECT_TRUE(store_->claim_due(kMs + 100000, 10).empty());
	EXPECT_TRUE(store_->claim_expired(kNow + 100000, 10).empty());
}

TEST_F(PresenceStore, BumpHandsOutCountersSetsStatusAndSkipsMissingOnes)
{
	created("s1");
	created("s2", kAlice, "pending");
	EXPECT_TRUE(store_->bump({}, "active", kMs).empty());
	auto out = store_->bump({"s1", "gone", "s2"}, "", kMs + 700);
	ASSERT_EQ(out.size(), 2u);
	EXPECT_EQ(sids(out), (std::set<std::string>{"s1", "s2"}));
	for (const auto &s : out) {
		EXPECT_EQ(s.version, 1u);
		EXPECT_EQ(s.cseq, 2u);
		EXPECT_EQ(s.last_notify_ms, kMs + 700);
	}
	EXPECT_EQ(stored("s2").status, "pending") << "empty status keeps it";
	out = store_->bump({"s2"}, "active", kMs + 800);
	ASSERT_EQ(out.size(), 1u);
	EXPECT_EQ(out[0].status, "active");
	EXPECT_EQ(out[0].cseq, 3u);
	EXPECT_EQ(stored("s2").status, "active");
	EXPECT_FALSE(exists(":sub:gone")) << "a missing one is not created";
}

TEST_F(PresenceStore, ListAndCounts)
{
	// list reads the wall clock: kNow's publications are live, one of 1970 is not.
	initial("e1", "b", kNow + 3600);
	initial("e2", "b", kNow + 3600);
	initial("old", "b", 1000, 500, 16, "carol@a.example");
	created("s1", kBob);
	created("w1", "dave@a.example", "active", "presence.winfo");
	created("s2", kAlice);
	store_->set_document("erin@a.example", 1, "d", "h", kMs, 0);  // a document alone lists nothing

	std::map<std::string, Store::Summary> by;
	for (const auto &s : store_->list(100)) by[s.presentity] = s;
	ASSERT_EQ(by.count(kAlice), 1u);
	EXPECT_EQ(by[kAlice].publications, 2);
	EXPECT_EQ(by[kAlice].watchers, 1);
	ASSERT_EQ(by.count(kBob), 1u);
	EXPECT_EQ(by[kBob].publications, 0);
	EXPECT_EQ(by[kBob].watchers, 1);
	ASSERT_EQ(by.count("dave@a.example"), 1u) << "a winfo watcher keeps the presentity listed";
	EXPECT_EQ(by["dave@a.example"].watchers, 0) << "watchers counts presence subscriptions";
	EXPECT_EQ(by.count("carol@a.example"), 0u) << "only an expired publication";
	EXPECT_EQ(by.size(), 3u);
	EXPECT_EQ(store_->list(2).size(), 2u);

	EXPECT_EQ(store_->count_subscriptions(), 3);
	EXPECT_EQ(store_->count_publications(), 3) << "counts the expiry index, expired ones until collected";
	store_->expire_publications(kNow, 10);
	EXPECT_EQ(store_->count_publications(), 2);
}

TEST_F(PresenceStore, PrefixesIsolateStores)
{
	auto other = make_redis_store(*redis_, "other:presence");
	initial("e1", "b");
	created("s1");
	unsigned long long gen = 0;
	EXPECT_TRUE(other->publications(kAlice, kNow, gen).empty());
	EXPECT_TRUE(other->subscriptions(kAlice, "").empty());
	EXPECT_EQ(other->count_subscriptions(), 0);
	EXPECT_EQ(other->count_publications(), 0);
	EXPECT_EQ(other->publish(kAlice, PubOp::Modify, "e1", "e2", "b", kSrc, kNow + 60, kNow, 16).outcome, 0);
}

// Without a presence watcher nothing is composed: the stored document is dropped and its
// generation moves on, so a composition of an older generation still in flight is refused.
TEST_F(PresenceStore, UnwatchedChangeDropsTheDocumentAndMovesItsGeneration)
{
	created("w1");
	PublishResult r = initial("e1", "body-1");
	EXPECT_TRUE(r.watched);
	ASSERT_TRUE(store_->set_document(kAlice, r.gen, "doc-1", "h1", kMs, 0).stored);
	EXPECT_EQ(store_->document(kAlice), "doc-1");
	Subscription gone;
	ASSERT_TRUE(store_->take("w1", false, gone));

	r = initial("e2", "body-2");
	EXPECT_EQ(r.outcome, 1);
	EXPECT_TRUE(r.changed);
	EXPECT_FALSE(r.watched);
	EXPECT_EQ(r.live.size(), 2u);
	EXPECT_EQ(store_->document(kAlice), "") << "no stale document left for the next watcher";
	// a composition of the first generation, late: refused
	EXPECT_FALSE(store_->set_document(kAlice, r.gen - 1, "doc-late", "h-late", kMs, 0).stored);
	EXPECT_EQ(store_->document(kAlice), "");
	// the next watched change stores its document again
	created("w2");
	r = initial("e3", "body-3");
	EXPECT_TRUE(r.watched);
	EXPECT_TRUE(store_->set_document(kAlice, r.gen, "doc-3", "h3", kMs, 0).stored);
	EXPECT_EQ(store_->document(kAlice), "doc-3");
}
