// The Redis store of reg-event subscriptions and binding metadata, against a real
// redis-server started by the test on a free loopback port (no persistence, temp dir).
#include "imps_reginfo/core/store.hpp"

#include "imps/redis.hpp"

#include "../common/redis_server.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>

using namespace imps::reginfo;
using imps::Redis;
using imps::RedisConfig;
using imps::reply_int;
using imps::reply_str;
using imps::test::RedisServer;

namespace {

// Unix seconds far enough in the future that EXPIREAT(now + 3600) never lands in Redis's
// past; fixed so that every run computes the same values.
constexpr long long kNow = 4000000000LL;
const std::string kPrefix = "imps:reginfo";

Subscription make_sub(const std::string &sid, const std::string &aor, long long expires_at,
		long long rcseq = 1)
{
	Subscription s;
	s.sid = sid;
	s.aor = aor;
	s.aor_uri = "sip:" + aor;
	s.watcher = aor;
	s.callid = "call-" + sid;
	s.remote_tag = "rt-" + sid;
	s.local_tag = "lt-" + sid;
	s.remote_uri = "sip:" + aor;
	s.local_uri = "sip:" + aor;
	s.remote_target = "sip:ua-" + sid + "@127.0.0.10:5060;transport=tcp";
	s.route_set = "<sip:edge.a.example;lr>,<sip:hsp.a.example;lr>";
	s.socket = "udp:127.0.0.1:5070";
	s.local_contact = "sip:hsp.a.example:5070";
	s.expires_at = expires_at;
	s.remote_cseq = rcseq;
	return s;
}

BindingMeta meta(long long first, long long expires, long long fcseq, std::string dn = "",
		std::string params = "")
{
	BindingMeta m;
	m.first_registered = first;
	m.expires_at = expires;
	m.first_cseq = fcseq;
	m.display_name = std::move(dn);
	m.params = std::move(params);
	return m;
}

void expect_meta_eq(const BindingMeta &got, const BindingMeta &want)
{
	EXPECT_EQ(got.first_registered, want.first_registered);
	EXPECT_EQ(got.expires_at, want.expires_at);
	EXPECT_EQ(got.first_cseq, want.first_cseq);
	EXPECT_EQ(got.display_name, want.display_name);
	EXPECT_EQ(got.params, want.params);
}

std::set<std::string> sids(const std::vector<Subscription> &v)
{
	std::set<std::string> out;
	for (const auto &s : v) out.insert(s.sid);
	return out;
}

class StoreTest : public ::testing::Test {
protected:
	static void SetUpTestSuite() { server_ = std::make_unique<RedisServer>(); }
	static void TearDownTestSuite() { server_.reset(); }

	void SetUp() override
	{
		RedisConfig c;
		c.port = server_->port();
		c.retry_interval_ms = 0;
		c.timeout_ms = 2000;
		redis_ = std::make_unique<Redis>(c);
		redis_->command({"FLUSHALL"});
		store_ = make_redis_store(*redis_, kPrefix);
	}

	bool key_exists(const std::string &k) { return reply_int(redis_->command({"EXISTS", k}).get()) == 1; }
	bool in_aor_set(const std::string &aor, const std::string &sid)
	{
		return reply_int(redis_->command({"SISMEMBER", kPrefix + ":aor:" + aor, sid}).get()) == 1;
	}

	static std::unique_ptr<RedisServer> server_;
	std::unique_ptr<Redis> redis_;
	std::unique_ptr<Store> store_;
};
std::unique_ptr<RedisServer> StoreTest::server_;

}  // namespace

// --- bindings ----------------------------------------------------------------------------------

TEST_F(StoreTest, BindingInsertStoresMetaWithoutWatchers)
{
	BindingMeta m = meta(kNow, kNow + 3600, 5, "Alice", ";+sip.instance=\"<urn:uuid:1>\";reg-id=1");
	BindingChangeResult r = store_->binding_changed("alice@a.example", "c1", false, m, false, 7200);
	EXPECT_FALSE(r.previous.has_value());
	EXPECT_TRUE(r.all.empty()) << "metadata of all bindings is only returned when a watcher exists";
	EXPECT_TRUE(r.subs.empty());

	auto all = store_->bindings("alice@a.example");
	ASSERT_EQ(all.size(), 1u);
	ASSERT_EQ(all.count("c1"), 1u);
	expect_meta_eq(all["c1"], m);

	long long ttl = reply_int(redis_->command({"TTL", kPrefix + ":bind:alice@a.example"}).get());
	EXPECT_GT(ttl, 7100);
	EXPECT_LE(ttl, 7200);
	EXPECT_TRUE(store_->bindings("bob@a.example").empty());
}

TEST_F(StoreTest, BindingUpdateKeepsFirstRegisteredAndFirstCseq)
{
	const std::string aor = "alice@a.example";
	BindingMeta m1 = meta(kNow, kNow + 3600, 5, "Alice", ";a=1");
	store_->binding_changed(aor, "c1", false, m1, false, 3600);

	BindingMeta m2 = meta(kNow + 100, kNow + 100 + 1800, 9, "Alice Two", ";b=2");
	BindingChangeResult r = store_->binding_changed(aor, "c1", false, m2, false, 3600);
	ASSERT_TRUE(r.previous.has_value());
	expect_meta_eq(*r.previous, m1);

	auto all = store_->bindings(aor);
	ASSERT_EQ(all.size(), 1u);
	// first_registered and first_cseq survive; expiry, display name and params follow m2.
	expect_meta_eq(all["c1"], meta(kNow, kNow + 1900, 5, "Alice Two", ";b=2"));

	BindingMeta m3 = meta(kNow + 200, kNow + 200 + 3600, 11, "", "");
	r = store_->binding_changed(aor, "c1", false, m3, false, 3600);
	ASSERT_TRUE(r.previous.has_value());
	expect_meta_eq(*r.previous, meta(kNow, kNow + 1900, 5, "Alice Two", ";b=2"));
	expect_meta_eq(store_->bindings(aor)["c1"], meta(kNow, kNow + 3800, 5, "", ""));
}

TEST_F(StoreTest, BindingUpdateWithKeepMetaKeepsDisplayNameAndParams)
{
	const std::string aor = "alice@a.example";
	store_->binding_changed(aor, "c1", false, meta(kNow, kNow + 3600, 5, "Alice", ";a=1"), false, 3600);
	// An update that did not come with a REGISTER (no display name/params to hand).
	store_->binding_changed(aor, "c1", false, meta(kNow + 50, kNow + 4000, 0, "", ""), true, 3600);
	expect_meta_eq(store_->bindings(aor)["c1"], meta(kNow, kNow + 4000, 5, "Alice", ";a=1"));

	// keep_meta on a binding nobody knew yet stores what it is given.
	store_->binding_changed(aor, "c2", false, meta(kNow, kNow + 60, 3, "Bob", ";x"), true, 3600);
	expect_meta_eq(store_->bindings(aor)["c2"], meta(kNow, kNow + 60, 3, "Bob", ";x"));
}

TEST_F(StoreTest, BindingDeleteReturnsPreviousAndForgetsIt)
{
	const std::string aor = "alice@a.example";
	BindingMeta m1 = meta(kNow, kNow + 3600, 5, "Alice", ";a=1");
	store_->binding_changed(aor, "c1", false, m1, false, 3600);
	store_->binding_changed(aor, "c2", false, meta(kNow, kNow + 600, 1), false, 3600);

	BindingChangeResult r = store_->binding_changed(aor, "c1", true, meta(kNow + 10, 0, 0), false, 3600);
	ASSERT_TRUE(r.previous.has_value());
	expect_meta_eq(*r.previous, m1);
	auto all = store_->bindings(aor);
	EXPECT_EQ(all.count("c1"), 0u);
	EXPECT_EQ(all.count("c2"), 1u);

	// Deleting again: nothing previous.
	r = store_->binding_changed(aor, "c1", true, meta(kNow + 20, 0, 0), false, 3600);
	EXPECT_FALSE(r.previous.has_value());

	// Registering the same binding again starts afresh.
	store_->binding_changed(aor, "c1", false, meta(kNow + 30, kNow + 3630, 7), false, 3600);
	expect_meta_eq(store_->bindings(aor)["c1"], meta(kNow + 30, kNow + 3630, 7));
}

TEST_F(StoreTest, BindingMetaEscapesSeparatorsAndPercent)
{
	const std::string aor = "alice@a.example";
	BindingMeta m = meta(kNow, kNow + 1, 2, "Tab\there %09 %25 100%\nnext", ";p=\"a\tb\";q%=1");
	store_->binding_changed(aor, "c1", false, m, false, 3600);
	expect_meta_eq(store_->bindings(aor)["c1"], m);
	// And keep_meta copies the escaped form through unchanged.
	store_->binding_changed(aor, "c1", false, meta(kNow + 5, kNow + 10, 0), true, 3600);
	expect_meta_eq(store_->bindings(aor)["c1"], meta(kNow, kNow + 10, 2, m.display_name, m.params));
}

TEST_F(StoreTest, BindingChangeHandsOutVersionAndCseqToEverySubscriptionOfTheAor)
{
	const std::string aor = "alice@a.example";
	Subscription a = make_sub("sa", aor, kNow + 600), b = make_sub("sb", aor, kNow + 900);
	Subscription other = make_sub("so", "bob@a.example", kNow + 600);
	store_->create(a, true);
	store_->create(b, true);
	store_->create(other, true);

	store_->binding_changed(aor, "c0", false, meta(kNow, kNow + 100, 1), false, 3600);
	BindingChangeResult r = store_->binding_changed(aor, "c1", false, meta(kNow, kNow + 3600, 1), false, 3600);
	ASSERT_EQ(r.subs.size(), 2u);
	EXPECT_EQ(sids(r.subs), (std::set<std::string>{"sa", "sb"}));
	for (const auto &s : r.subs) {
		EXPECT_EQ(s.version, 2u) << s.sid;  // created at 0, two changes
		EXPECT_EQ(s.cseq, 3u) << s.sid;     // initial NOTIFY was CSeq 1
		EXPECT_EQ(s.aor, aor);
		const Subscription &want = s.sid == "sa" ? a : b;
		EXPECT_EQ(s.remote_target, want.remote_target);
		EXPECT_EQ(s.route_set, want.route_set);
		EXPECT_EQ(s.expires_at, want.expires_at);
	}
	ASSERT_EQ(r.all.size(), 2u);
	EXPECT_EQ(r.all.count("c0"), 1u);
	EXPECT_EQ(r.all.count("c1"), 1u);

	// Bob's subscription did not move.
	auto bob = store_->list("bob@a.example", 10);
	ASSERT_EQ(bob.size(), 1u);
	EXPECT_EQ(bob[0].version, 0u);
	EXPECT_EQ(bob[0].cseq, 1u);
}

TEST_F(StoreTest, BindingChangeDropsStaleSubscriptionIds)
{
	const std::string aor = "alice@a.example";
	Subscription a = make_sub("sa", aor, kNow + 600), gone = make_sub("sg", aor, kNow + 600);
	store_->create(a, true);
	store_->create(gone, true);
	redis_->command({"DEL", kPrefix + ":sub:sg"});  // e.g. its hash expired in Redis

	BindingChangeResult r = store_->binding_changed(aor, "c1", false, meta(kNow, kNow + 60, 1), false, 3600);
	ASSERT_EQ(r.subs.size(), 1u);
	EXPECT_EQ(r.subs[0].sid, "sa");
	EXPECT_FALSE(in_aor_set(aor, "sg"));
	EXPECT_FALSE(key_exists(kPrefix + ":sub:sg")) << "a stale id must not resurrect a hash";
}

// --- subscriptions -------------------------------------------------------------------------------

TEST_F(StoreTest, CreateWithoutStoreIsAFetch)
{
	Subscription s = make_sub("fetch", "alice@a.example", 0);
	s.version = 77;
	s.cseq = 77;
	store_->create(s, false);
	EXPECT_EQ(s.version, 0u);
	EXPECT_EQ(s.cseq, 1u);
	EXPECT_EQ(store_->count(), 0);
	EXPECT_TRUE(store_->list("", 100).empty());
	EXPECT_TRUE(store_->list("alice@a.example", 100).empty());
	EXPECT_EQ(reply_int(redis_->command({"DBSIZE"}).get()), 0);
}

TEST_F(StoreTest, CreateStoresEveryField)
{
	Subscription s = make_sub("s1", "alice@a.example", kNow + 600, 42);
	store_->create(s, true);
	EXPECT_EQ(s.version, 0u);
	EXPECT_EQ(s.cseq, 1u);
	EXPECT_EQ(store_->count(), 1);

	auto l = store_->list("alice@a.example", 10);
	ASSERT_EQ(l.size(), 1u);
	const Subscription &g = l[0];
	EXPECT_EQ(g.sid, s.sid);
	EXPECT_EQ(g.aor, s.aor);
	EXPECT_EQ(g.aor_uri, s.aor_uri);
	EXPECT_EQ(g.watcher, s.watcher);
	EXPECT_EQ(g.callid, s.callid);
	EXPECT_EQ(g.remote_tag, s.remote_tag);
	EXPECT_EQ(g.local_tag, s.local_tag);
	EXPECT_EQ(g.remote_uri, s.remote_uri);
	EXPECT_EQ(g.local_uri, s.local_uri);
	EXPECT_EQ(g.remote_target, s.remote_target);
	EXPECT_EQ(g.route_set, s.route_set);
	EXPECT_EQ(g.socket, s.socket);
	EXPECT_EQ(g.local_contact, s.local_contact);
	EXPECT_EQ(g.expires_at, s.expires_at);
	EXPECT_EQ(g.remote_cseq, 42);
	EXPECT_EQ(g.version, 0u);
	EXPECT_EQ(g.cseq, 1u);

	EXPECT_TRUE(in_aor_set("alice@a.example", "s1"));
	long long ttl = reply_int(redis_->command({"TTL", kPrefix + ":sub:s1"}).get());
	EXPECT_GT(ttl, 0) << "subscription hashes carry a TTL past their expiry";
	EXPECT_EQ(reply_str(redis_->command({"ZSCORE", kPrefix + ":exp", "s1"}).get()),
			std::to_string(kNow + 600));
}

TEST_F(StoreTest, CreateKeepsBinarySafeFields)
{
	Subscription s = make_sub("s1", "alice@a.example", kNow + 600);
	s.callid = std::string("we\tird\ncall\0id", 14);
	s.route_set = "<sip:x;lr>,  <sip:y;lr;ftag=\"q\">";
	s.local_contact.clear();
	store_->create(s, true);
	auto l = store_->list("alice@a.example", 10);
	ASSERT_EQ(l.size(), 1u);
	EXPECT_EQ(l[0].callid, s.callid);
	EXPECT_EQ(l[0].route_set, s.route_set);
	EXPECT_EQ(l[0].local_contact, "");
}

TEST_F(StoreTest, RefreshUnknownDialogIsNoSuchDialog)
{
	Subscription s = make_sub("nope", "alice@a.example", kNow + 600);
	EXPECT_EQ(store_->refresh(s, false), SubscribeOutcome::NoSuchDialog);
	EXPECT_EQ(store_->refresh(s, true), SubscribeOutcome::NoSuchDialog);
	EXPECT_EQ(reply_int(redis_->command({"DBSIZE"}).get()), 0) << "nothing created on a miss";
}

TEST_F(StoreTest, RefreshWithOlderCseqIsOutOfOrderAndChangesNothing)
{
	Subscription s = make_sub("s1", "alice@a.example", kNow + 600, 10);
	store_->create(s, true);
	Subscription r = make_sub("s1", "alice@a.example", kNow + 9999, 9);
	EXPECT_EQ(store_->refresh(r, false), SubscribeOutcome::CseqOutOfOrder);
	Subscription rm = make_sub("s1", "alice@a.example", 0, 9);
	EXPECT_EQ(store_->refresh(rm, true), SubscribeOutcome::CseqOutOfOrder);
	auto l = store_->list("alice@a.example", 10);
	ASSERT_EQ(l.size(), 1u);
	EXPECT_EQ(l[0].version, 0u);
	EXPECT_EQ(l[0].cseq, 1u);
	EXPECT_EQ(l[0].expires_at, kNow + 600);
	EXPECT_EQ(l[0].remote_cseq, 10);
}

TEST_F(StoreTest, RefreshOkUpdatesExpiryTargetAndCounters)
{
	Subscription s = make_sub("s1", "alice@a.example", kNow + 600, 1);
	store_->create(s, true);

	Subscription r;
	r.sid = "s1";
	r.expires_at = kNow + 1200;
	r.remote_cseq = 2;
	r.remote_target = "sip:new-target@127.0.0.99:5062";
	ASSERT_EQ(store_->refresh(r, false), SubscribeOutcome::Ok);
	// r is filled from the store.
	EXPECT_EQ(r.aor, "alice@a.example");
	EXPECT_EQ(r.callid, s.callid);
	EXPECT_EQ(r.route_set, s.route_set);
	EXPECT_EQ(r.remote_target, "sip:new-target@127.0.0.99:5062");
	EXPECT_EQ(r.expires_at, kNow + 1200);
	EXPECT_EQ(r.remote_cseq, 2);
	EXPECT_EQ(r.version, 1u);
	EXPECT_EQ(r.cseq, 2u);

	// Same CSeq again (a retransmission) is accepted; an empty target keeps the stored one.
	Subscription r2;
	r2.sid = "s1";
	r2.expires_at = kNow + 1500;
	r2.remote_cseq = 2;
	ASSERT_EQ(store_->refresh(r2, false), SubscribeOutcome::Ok);
	EXPECT_EQ(r2.remote_target, "sip:new-target@127.0.0.99:5062");
	EXPECT_EQ(r2.version, 2u);
	EXPECT_EQ(r2.cseq, 3u);

	// The expiry index follows the refresh.
	EXPECT_TRUE(store_->claim_expired(kNow + 1200, 10).empty());
	EXPECT_EQ(reply_str(redis_->command({"ZSCORE", kPrefix + ":exp", "s1"}).get()),
			std::to_string(kNow + 1500));
	EXPECT_EQ(store_->count(), 1);
}

TEST_F(StoreTest, UnsubscribeReturnsFinalCountersAndRemoves)
{
	Subscription s = make_sub("s1", "alice@a.example", kNow + 600, 1);
	store_->create(s, true);
	Subscription u;
	u.sid = "s1";
	u.expires_at = 0;
	u.remote_cseq = 2;
	ASSERT_EQ(store_->refresh(u, true), SubscribeOutcome::Ok);
	EXPECT_EQ(u.aor, "alice@a.example");
	EXPECT_EQ(u.remote_target, s.remote_target);
	EXPECT_EQ(u.version, 1u);
	EXPECT_EQ(u.cseq, 2u);

	EXPECT_EQ(store_->count(), 0);
	EXPECT_TRUE(store_->list("", 10).empty());
	EXPECT_TRUE(store_->list("alice@a.example", 10).empty());
	EXPECT_FALSE(key_exists(kPrefix + ":sub:s1"));
	EXPECT_FALSE(in_aor_set("alice@a.example", "s1"));
	Subscription again = u;
	again.remote_cseq = 3;
	EXPECT_EQ(store_->refresh(again, true), SubscribeOutcome::NoSuchDialog);
}

TEST_F(StoreTest, VersionAndCseqOnlyIncrease)
{
	const std::string aor = "alice@a.example";
	Subscription s = make_sub("s1", aor, kNow + 600, 1);
	store_->create(s, true);
	std::vector<std::pair<unsigned long long, unsigned long long>> seen = {{s.version, s.cseq}};
	long long rc = 1;
	for (int i = 0; i < 5; ++i) {
		auto r = store_->binding_changed(aor, "c" + std::to_string(i), false,
				meta(kNow + i, kNow + 3600, 1), false, 3600);
		ASSERT_EQ(r.subs.size(), 1u);
		seen.emplace_back(r.subs[0].version, r.subs[0].cseq);
		Subscription ref;
		ref.sid = "s1";
		ref.remote_cseq = ++rc;
		ref.expires_at = kNow + 600 + i;
		ASSERT_EQ(store_->refresh(ref, false), SubscribeOutcome::Ok);
		seen.emplace_back(ref.version, ref.cseq);
	}
	auto fin = store_->claim_expired(kNow + 10000, 10);
	ASSERT_EQ(fin.size(), 1u);
	seen.emplace_back(fin[0].version, fin[0].cseq);
	for (size_t i = 1; i < seen.size(); ++i) {
		EXPECT_EQ(seen[i].first, seen[i - 1].first + 1) << "step " << i;
		EXPECT_EQ(seen[i].second, seen[i - 1].second + 1) << "step " << i;
	}
}

TEST_F(StoreTest, TwoStoresOnOneRedisShareCounters)
{
	// Two processes (or nodes) share one Redis: neither hands out a number twice.
	RedisConfig c;
	c.port = server_->port();
	Redis other_conn(c);
	auto other = make_redis_store(other_conn, kPrefix);
	const std::string aor = "alice@a.example";
	Subscription s = make_sub("s1", aor, kNow + 600);
	store_->create(s, true);
	std::set<unsigned long long> versions, cseqs;
	for (int i = 0; i < 10; ++i) {
		Store &st = i % 2 ? *other : *store_;
		auto r = st.binding_changed(aor, "c1", false, meta(kNow, kNow + 60 + i, 1), false, 3600);
		ASSERT_EQ(r.subs.size(), 1u);
		EXPECT_TRUE(versions.insert(r.subs[0].version).second);
		EXPECT_TRUE(cseqs.insert(r.subs[0].cseq).second);
	}
	EXPECT_EQ(*versions.rbegin(), 10u);
	EXPECT_EQ(*cseqs.rbegin(), 11u);
}

TEST_F(StoreTest, ClaimExpiredClaimsEachOnce)
{
	Subscription s10 = make_sub("s10", "alice@a.example", kNow + 10);
	Subscription s20 = make_sub("s20", "alice@a.example", kNow + 20);
	Subscription s30 = make_sub("s30", "bob@a.example", kNow + 30);
	store_->create(s10, true);
	store_->create(s20, true);
	store_->create(s30, true);

	EXPECT_TRUE(store_->claim_expired(kNow + 5, 100).empty());
	EXPECT_EQ(store_->count(), 3);

	auto first = store_->claim_expired(kNow + 20, 100);  // the score is inclusive
	EXPECT_EQ(sids(first), (std::set<std::string>{"s10", "s20"}));
	for (const auto &s : first) {
		EXPECT_EQ(s.aor, "alice@a.example");
		EXPECT_EQ(s.version, 1u) << "the final NOTIFY gets the next version";
		EXPECT_EQ(s.cseq, 2u);
		EXPECT_FALSE(key_exists(kPrefix + ":sub:" + s.sid));
		EXPECT_FALSE(in_aor_set("alice@a.example", s.sid));
	}
	EXPECT_TRUE(store_->claim_expired(kNow + 20, 100).empty()) << "claimed twice";
	EXPECT_EQ(store_->count(), 1);

	auto second = store_->claim_expired(kNow + 1000, 100);
	ASSERT_EQ(second.size(), 1u);
	EXPECT_EQ(second[0].sid, "s30");
	EXPECT_TRUE(store_->claim_expired(kNow + 1000, 100).empty());
	EXPECT_EQ(store_->count(), 0);
	EXPECT_TRUE(store_->list("", 100).empty());
}

TEST_F(StoreTest, ClaimExpiredHonoursLimit)
{
	for (int i = 0; i < 5; ++i) {
		Subscription s = make_sub("s" + std::to_string(i), "alice@a.example", kNow + i);
		store_->create(s, true);
	}
	std::set<std::string> all;
	for (size_t want : {2u, 2u, 1u, 0u}) {
		auto got = store_->claim_expired(kNow + 100, 2);
		EXPECT_EQ(got.size(), want);
		for (const auto &s : got) EXPECT_TRUE(all.insert(s.sid).second) << s.sid << " claimed twice";
	}
	EXPECT_EQ(all.size(), 5u);
}

TEST_F(StoreTest, ClaimExpiredSkipsSubscriptionsWhoseHashIsGone)
{
	Subscription s = make_sub("s1", "alice@a.example", kNow + 1);
	store_->create(s, true);
	redis_->command({"DEL", kPrefix + ":sub:s1"});
	EXPECT_TRUE(store_->claim_expired(kNow + 10, 10).empty());
	EXPECT_EQ(store_->count(), 0) << "the index entry is consumed";
}

TEST_F(StoreTest, ListWithAndWithoutAorFilter)
{
	for (int i = 0; i < 3; ++i) {
		Subscription s = make_sub("a" + std::to_string(i), "alice@a.example", kNow + 100 + i);
		store_->create(s, true);
	}
	for (int i = 0; i < 2; ++i) {
		Subscription s = make_sub("b" + std::to_string(i), "bob@a.example", kNow + 50 + i);
		store_->create(s, true);
	}
	EXPECT_EQ(sids(store_->list("alice@a.example", 100)), (std::set<std::string>{"a0", "a1", "a2"}));
	EXPECT_EQ(sids(store_->list("bob@a.example", 100)), (std::set<std::string>{"b0", "b1"}));
	EXPECT_TRUE(store_->list("carol@a.example", 100).empty());
	EXPECT_EQ(sids(store_->list("", 100)), (std::set<std::string>{"a0", "a1", "a2", "b0", "b1"}));

	EXPECT_EQ(store_->list("alice@a.example", 2).size(), 2u);
	EXPECT_EQ(store_->list("alice@a.example", 1).size(), 1u);
	// Without a filter the soonest-expiring come first.
	auto two = store_->list("", 2);
	EXPECT_EQ(sids(two), (std::set<std::string>{"b0", "b1"}));
}

TEST_F(StoreTest, RemoveAndCount)
{
	Subscription a = make_sub("a", "alice@a.example", kNow + 100);
	Subscription b = make_sub("b", "alice@a.example", kNow + 200);
	store_->create(a, true);
	store_->create(b, true);
	EXPECT_EQ(store_->count(), 2);

	EXPECT_TRUE(store_->remove("a", "alice@a.example"));
	EXPECT_EQ(store_->count(), 1);
	EXPECT_FALSE(in_aor_set("alice@a.example", "a"));
	EXPECT_EQ(sids(store_->list("alice@a.example", 10)), (std::set<std::string>{"b"}));
	EXPECT_FALSE(store_->remove("a", "alice@a.example")) << "already gone";
	EXPECT_FALSE(store_->remove("never", "alice@a.example"));

	// Without the AoR the subscription itself still goes.
	EXPECT_TRUE(store_->remove("b", ""));
	EXPECT_EQ(store_->count(), 0);
	EXPECT_TRUE(store_->list("alice@a.example", 10).empty());
	EXPECT_TRUE(store_->claim_expired(kNow + 1000, 10).empty());
}

TEST_F(StoreTest, PrefixesIsolateStores)
{
	auto other = make_redis_store(*redis_, "imps:reginfo-other");
	Subscription s = make_sub("s1", "alice@a.example", kNow + 100);
	store_->create(s, true);
	store_->binding_changed("alice@a.example", "c1", false, meta(kNow, kNow + 10, 1), false, 3600);
	EXPECT_EQ(other->count(), 0);
	EXPECT_TRUE(other->list("", 10).empty());
	EXPECT_TRUE(other->bindings("alice@a.example").empty());
	EXPECT_TRUE(other->claim_expired(kNow + 1000, 10).empty());
	EXPECT_EQ(store_->count(), 1);
}

TEST_F(StoreTest, SurvivesScriptFlush)
{
	Subscription s = make_sub("s1", "alice@a.example", kNow + 100);
	store_->create(s, true);
	redis_->command({"SCRIPT", "FLUSH"});
	auto r = store_->binding_changed("alice@a.example", "c1", false, meta(kNow, kNow + 10, 1), false, 3600);
	ASSERT_EQ(r.subs.size(), 1u);
	EXPECT_EQ(r.subs[0].version, 1u);
}
