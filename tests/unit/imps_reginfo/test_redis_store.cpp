// The reg event package's Redis state next to the shared subscription layer: the binding
// metadata (BindingStore, lua/reginfo_binding.lua) kept under the AoR's hash tag with its
// subscriptions (imps::subs::Store), against a real redis-server started by the test on a
// free loopback port (no persistence, temp dir).
#include "imps_reginfo/core/store.hpp"

#include "imps/redis.hpp"
#include "imps/subs.hpp"

#include "../common/redis_server.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <memory>
#include <regex>
#include <set>
#include <thread>

using namespace imps::reginfo;
namespace subs = imps::subs;
using imps::Redis;
using imps::RedisConfig;
using imps::reply_int;
using imps::reply_str;
using imps::test::RedisServer;

namespace {

// Unix seconds far enough in the future that EXPIREAT(now + 3600) never lands in Redis's
// past; fixed so that every run computes the same values.
constexpr long long kNow = 4000000000LL;
constexpr long long kMs = kNow * 1000;
constexpr long long kBusyMs = 35000;
const std::string kPrefix = "imps:reginfo";
const std::string kAlice = "alice@a.example";
const std::string kBob = "bob@a.example";

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

// A subscription of package pkg to aor as the reg package hands it to the shared store.
subs::Subscription make_sub(const std::string &tag, const std::string &aor, long long expires_at,
		const std::string &pkg = "reg")
{
	subs::Subscription s;
	s.package = pkg;
	s.resource = aor;
	s.watcher = aor;
	s.status = "active";
	subs::Dialog &d = s.dialog;
	d.callid = "call-" + tag;
	d.remote_tag = "rt-" + tag;
	d.local_tag = "lt-" + tag;
	d.remote_uri = "sip:" + aor;
	d.local_uri = "sip:" + aor;
	d.remote_target = "sip:ua-" + tag + "@127.0.0.10:5060;transport=tcp";
	d.route_set = "<sip:edge.a.example;lr>,<sip:hsp.a.example;lr>";
	d.socket = "udp:127.0.0.1:5070";
	d.local_contact = "sip:hsp.a.example:5070";
	d.remote_cseq = 1;
	s.sid = subs::subscription_id(d.callid, d.remote_tag, d.local_tag);
	s.created_at = kNow;
	s.expires_at = expires_at;
	return s;
}

std::set<std::string> sids(const std::vector<subs::Subscription> &v)
{
	std::set<std::string> out;
	for (const auto &s : v) out.insert(s.sid);
	return out;
}

// The Redis cluster hash tag of a key: from the first '{' to the next '}', when not empty.
std::string hash_tag(const std::string &key)
{
	auto a = key.find('{');
	if (a == std::string::npos) return "";
	auto b = key.find('}', a + 1);
	if (b == std::string::npos || b == a + 1) return "";
	return key.substr(a + 1, b - a - 1);
}

class BindingStoreTest : public ::testing::Test {
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
		subs_ = std::make_unique<subs::Store>(*redis_, subs::Keys(kPrefix), kBusyMs);
		store_ = std::make_unique<BindingStore>(*subs_);
	}

	// Stores s (new) at now_ms; its initial NOTIFY (CSeq 1) is outstanding afterwards.
	subs::Subscription created(subs::Subscription s, long long now_ms = kMs)
	{
		bool send_now = false, is_new = false;
		EXPECT_EQ(subs_->create(s, INT_MAX, now_ms, send_now, &is_new), subs::Outcome::Ok);
		EXPECT_TRUE(send_now);
		EXPECT_TRUE(is_new);
		return s;
	}
	// The same, with the initial NOTIFY answered 200: the dialog is idle.
	subs::Subscription created_idle(subs::Subscription s, long long now_ms = kMs)
	{
		s = created(s, now_ms);
		subs::Batch b = subs_->complete(s.resource, s.sid, s.cseq, 200, false, true, now_ms + 1);
		EXPECT_TRUE(b.send.empty());
		EXPECT_TRUE(b.removed.empty());
		return s;
	}

	BindingChangeResult change(const std::string &aor, const std::string &cid, bool removed,
			const BindingMeta &m, bool keep_meta = false, long long ttl = 3600, long long now_ms = kMs + 1000,
			long long change_ms = 0)
	{
		return store_->binding_changed(aor, cid, removed, m, keep_meta, ttl, now_ms, change_ms);
	}

	std::string bind_key(const std::string &aor) const { return kPrefix + ":{" + aor + "}:bind"; }
	bool key_exists(const std::string &k) { return reply_int(redis_->command({"EXISTS", k}).get()) == 1; }
	long long ttl_of(const std::string &k) { return reply_int(redis_->command({"TTL", k}).get()); }

	static std::unique_ptr<RedisServer> server_;
	std::unique_ptr<Redis> redis_;
	std::unique_ptr<subs::Store> subs_;
	std::unique_ptr<BindingStore> store_;
};
std::unique_ptr<RedisServer> BindingStoreTest::server_;

}  // namespace

// --- binding metadata ----------------------------------------------------------------------------

TEST_F(BindingStoreTest, InsertStoresMetaWithoutWatchers)
{
	BindingMeta m = meta(kNow, kNow + 3600, 5, "Alice", ";+sip.instance=\"<urn:uuid:1>\";reg-id=1");
	BindingChangeResult r = change(kAlice, "c1", false, m, false, 7200);
	EXPECT_FALSE(r.previous.has_value());
	EXPECT_TRUE(r.all.empty()) << "metadata of all bindings is only returned when a watcher exists";
	EXPECT_TRUE(r.batch.send.empty());
	EXPECT_TRUE(r.batch.removed.empty());
	EXPECT_EQ(r.batch.due_ms, -1);

	auto all = store_->bindings(kAlice);
	ASSERT_EQ(all.size(), 1u);
	ASSERT_EQ(all.count("c1"), 1u);
	expect_meta_eq(all["c1"], m);

	long long ttl = ttl_of(bind_key(kAlice));
	EXPECT_GT(ttl, 7100);
	EXPECT_LE(ttl, 7200);
	EXPECT_TRUE(store_->bindings(kBob).empty());
	EXPECT_FALSE(key_exists(bind_key(kBob)));
	EXPECT_FALSE(key_exists(subs_->keys().subs(kAlice))) << "no subscription record made";
}

TEST_F(BindingStoreTest, UpdateKeepsFirstRegisteredAndFirstCseq)
{
	BindingMeta m1 = meta(kNow, kNow + 3600, 5, "Alice", ";a=1");
	change(kAlice, "c1", false, m1);

	BindingMeta m2 = meta(kNow + 100, kNow + 100 + 1800, 9, "Alice Two", ";b=2");
	BindingChangeResult r = change(kAlice, "c1", false, m2);
	ASSERT_TRUE(r.previous.has_value());
	expect_meta_eq(*r.previous, m1);

	auto all = store_->bindings(kAlice);
	ASSERT_EQ(all.size(), 1u);
	// first_registered and first_cseq survive; expiry, display name and params follow m2.
	expect_meta_eq(all["c1"], meta(kNow, kNow + 1900, 5, "Alice Two", ";b=2"));

	BindingMeta m3 = meta(kNow + 200, kNow + 200 + 3600, 11, "", "");
	r = change(kAlice, "c1", false, m3);
	ASSERT_TRUE(r.previous.has_value());
	expect_meta_eq(*r.previous, meta(kNow, kNow + 1900, 5, "Alice Two", ";b=2"));
	expect_meta_eq(store_->bindings(kAlice)["c1"], meta(kNow, kNow + 3800, 5, "", ""));
}

TEST_F(BindingStoreTest, UpdateWithKeepMetaKeepsDisplayNameAndParams)
{
	change(kAlice, "c1", false, meta(kNow, kNow + 3600, 5, "Alice", ";a=1"));
	// An update that did not come with a REGISTER (no display name/params to hand).
	change(kAlice, "c1", false, meta(kNow + 50, kNow + 4000, 0, "", ""), true);
	expect_meta_eq(store_->bindings(kAlice)["c1"], meta(kNow, kNow + 4000, 5, "Alice", ";a=1"));

	// keep_meta on a binding nobody knew yet stores what it is given.
	change(kAlice, "c2", false, meta(kNow, kNow + 60, 3, "Bob", ";x"), true);
	expect_meta_eq(store_->bindings(kAlice)["c2"], meta(kNow, kNow + 60, 3, "Bob", ";x"));
	// and the first binding was not touched by it
	expect_meta_eq(store_->bindings(kAlice)["c1"], meta(kNow, kNow + 4000, 5, "Alice", ";a=1"));
}

TEST_F(BindingStoreTest, DeleteReturnsPreviousAndForgetsIt)
{
	BindingMeta m1 = meta(kNow, kNow + 3600, 5, "Alice", ";a=1");
	change(kAlice, "c1", false, m1);
	change(kAlice, "c2", false, meta(kNow, kNow + 600, 1));

	BindingChangeResult r = change(kAlice, "c1", true, meta(kNow + 10, 0, 0));
	ASSERT_TRUE(r.previous.has_value());
	expect_meta_eq(*r.previous, m1);
	auto all = store_->bindings(kAlice);
	EXPECT_EQ(all.count("c1"), 0u);
	EXPECT_EQ(all.count("c2"), 1u);

	// Deleting again: nothing previous.
	r = change(kAlice, "c1", true, meta(kNow + 20, 0, 0));
	EXPECT_FALSE(r.previous.has_value());

	// Registering the same binding again starts afresh.
	change(kAlice, "c1", false, meta(kNow + 30, kNow + 3630, 7));
	expect_meta_eq(store_->bindings(kAlice)["c1"], meta(kNow + 30, kNow + 3630, 7));
}

TEST_F(BindingStoreTest, DeletingTheLastBindingRemovesTheKey)
{
	change(kAlice, "c1", false, meta(kNow, kNow + 3600, 5));
	change(kAlice, "c2", false, meta(kNow, kNow + 3600, 6));
	change(kAlice, "c1", true, meta(kNow + 1, 0, 0));
	EXPECT_TRUE(key_exists(bind_key(kAlice)));
	BindingChangeResult r = change(kAlice, "c2", true, meta(kNow + 2, 0, 0));
	ASSERT_TRUE(r.previous.has_value());
	EXPECT_EQ(r.previous->first_cseq, 6);
	EXPECT_TRUE(store_->bindings(kAlice).empty());
	EXPECT_FALSE(key_exists(bind_key(kAlice)));
	// deleting a binding of an AoR that has none creates nothing
	r = change(kBob, "c9", true, meta(kNow, 0, 0));
	EXPECT_FALSE(r.previous.has_value());
	EXPECT_FALSE(key_exists(bind_key(kBob)));
	EXPECT_EQ(reply_int(redis_->command({"DBSIZE"}).get()), 0);
}

TEST_F(BindingStoreTest, MetaEscapesSeparatorsAndPercent)
{
	BindingMeta m = meta(kNow, kNow + 1, 2, "Tab\there %09 %25 100%\nnext", ";p=\"a\tb\";q%=1");
	change(kAlice, "c1", false, m);
	expect_meta_eq(store_->bindings(kAlice)["c1"], m);
	// stored escaped: exactly five tab-separated fields
	std::string raw = reply_str(redis_->command({"HGET", bind_key(kAlice), "c1"}).get());
	EXPECT_EQ(std::count(raw.begin(), raw.end(), '\t'), 4) << raw;
	// And keep_meta copies the escaped form through unchanged.
	change(kAlice, "c1", false, meta(kNow + 5, kNow + 10, 0), true);
	expect_meta_eq(store_->bindings(kAlice)["c1"], meta(kNow, kNow + 10, 2, m.display_name, m.params));
	// and the previous metadata handed back is unescaped too
	BindingChangeResult r = change(kAlice, "c1", false, meta(kNow + 6, kNow + 11, 0), true);
	ASSERT_TRUE(r.previous.has_value());
	expect_meta_eq(*r.previous, meta(kNow, kNow + 10, 2, m.display_name, m.params));
	// binary: NUL bytes and a literal escape sequence of the other separator
	BindingMeta b = meta(kNow, kNow + 1, 1, std::string("a\0b", 3), "%2509\t%");
	change(kAlice, "c2", false, b);
	expect_meta_eq(store_->bindings(kAlice)["c2"], b);
}

TEST_F(BindingStoreTest, TtlZeroPersists)
{
	change(kAlice, "c1", false, meta(kNow, kNow + 3600, 1), false, 3600);
	EXPECT_GT(ttl_of(bind_key(kAlice)), 3500);
	// a permanent binding: the metadata never expires
	change(kAlice, "c2", false, meta(kNow, 0, 1), false, 0);
	EXPECT_EQ(ttl_of(bind_key(kAlice)), -1);
	// an update with a TTL again (the permanent binding went) sets it
	change(kAlice, "c1", false, meta(kNow, kNow + 600, 1), false, 600);
	long long ttl = ttl_of(bind_key(kAlice));
	EXPECT_GT(ttl, 500);
	EXPECT_LE(ttl, 600);
}

TEST_F(BindingStoreTest, TtlExpiresTheMetadata)
{
	change(kAlice, "c1", false, meta(kNow, kNow + 1, 1, "Alice"), false, 1);
	EXPECT_EQ(store_->bindings(kAlice).size(), 1u);
	auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
	while (key_exists(bind_key(kAlice)) && std::chrono::steady_clock::now() < until)
		std::this_thread::sleep_for(std::chrono::milliseconds(50));
	EXPECT_FALSE(key_exists(bind_key(kAlice))) << "the metadata outlived its TTL";
	EXPECT_TRUE(store_->bindings(kAlice).empty());
	// a change afterwards starts afresh: no previous metadata
	BindingChangeResult r = change(kAlice, "c1", false, meta(kNow + 5, kNow + 3600, 2));
	EXPECT_FALSE(r.previous.has_value());
	expect_meta_eq(store_->bindings(kAlice)["c1"], meta(kNow + 5, kNow + 3600, 2));
}

// --- key layout ------------------------------------------------------------------------------------

TEST_F(BindingStoreTest, KeysOfAnAorShareItsHashTag)
{
	subs::Subscription s = created_idle(make_sub("s1", kAlice, kNow + 600));
	change(kAlice, "c1", false, meta(kNow, kNow + 3600, 1));

	const subs::Keys &k = subs_->keys();
	EXPECT_EQ(k.prefix(), kPrefix);
	EXPECT_EQ(k.resource(kAlice, "bind"), "imps:reginfo:{alice@a.example}:bind");
	EXPECT_EQ(k.subs(kAlice), "imps:reginfo:{alice@a.example}:subs");
	EXPECT_TRUE(key_exists("imps:reginfo:{alice@a.example}:bind"));
	EXPECT_TRUE(key_exists("imps:reginfo:{alice@a.example}:subs"));
	EXPECT_EQ(reply_str(redis_->command({"TYPE", "imps:reginfo:{alice@a.example}:bind"}).get()), "hash");
	EXPECT_EQ(reply_str(redis_->command({"TYPE", "imps:reginfo:{alice@a.example}:subs"}).get()), "hash");

	// the subscription record: hash sid -> JSON record of the dialog
	std::string rec = reply_str(redis_->command({"HGET", k.subs(kAlice), s.sid}).get());
	ASSERT_FALSE(rec.empty());
	EXPECT_EQ(rec.front(), '{');
	EXPECT_EQ(rec.back(), '}');
	EXPECT_NE(rec.find("\"pkg\":\"reg\""), std::string::npos) << rec;
	EXPECT_NE(rec.find("\"res\":\"alice@a.example\""), std::string::npos) << rec;
	EXPECT_NE(rec.find("\"callid\":\"call-s1\""), std::string::npos) << rec;
	EXPECT_EQ(reply_int(redis_->command({"HLEN", k.subs(kAlice)}).get()), 1);

	// every key is either one of the AoR's (its hash tag is the AoR) or a bucket of a global
	// index (its own tag); nothing is outside the prefix
	auto keys = redis_->command({"KEYS", "*"});
	ASSERT_GT(keys->elements, 2u);
	const std::regex of_aor("imps:reginfo:\\{alice@a\\.example\\}:[a-z]+");
	const std::regex bucket("imps:reginfo:([a-z]+):\\{imps:reginfo:\\1:[0-9]+\\}");
	for (size_t i = 0; i < keys->elements; ++i) {
		std::string key = reply_str(keys->element[i]);
		if (std::regex_match(key, of_aor)) {
			EXPECT_EQ(hash_tag(key), kAlice) << key;
		} else {
			EXPECT_TRUE(std::regex_match(key, bucket)) << key;
			EXPECT_NE(hash_tag(key), kAlice) << key;
		}
	}
	EXPECT_EQ(hash_tag(bind_key(kAlice)), hash_tag(k.subs(kAlice)));
	EXPECT_EQ(hash_tag(bind_key(kAlice)), hash_tag(k.sexp(kAlice)));
	EXPECT_EQ(hash_tag(bind_key(kAlice)), hash_tag(k.due(kAlice)));
	EXPECT_NE(hash_tag(bind_key(kBob)), hash_tag(bind_key(kAlice)));
}

TEST_F(BindingStoreTest, BracesInAnAorNeverCutItsHashTagShort)
{
	const std::string odd = "we{ird}@a.example";
	change(odd, "c1", false, meta(kNow, kNow + 60, 1, "Odd"));
	const std::string key = subs_->keys().resource(odd, "bind");
	EXPECT_EQ(key, "imps:reginfo:{we(ird)@a.example}:bind");
	EXPECT_TRUE(key_exists(key));
	EXPECT_EQ(hash_tag(key), hash_tag(subs_->keys().subs(odd)));
	ASSERT_EQ(store_->bindings(odd).size(), 1u);
	EXPECT_EQ(store_->bindings(odd)["c1"].display_name, "Odd");
	EXPECT_TRUE(store_->bindings("we@a.example").empty());
}

TEST_F(BindingStoreTest, PrefixesIsolateStores)
{
	subs::Store other_subs(*redis_, subs::Keys("imps:reginfo-other"), kBusyMs);
	BindingStore other(other_subs);
	created_idle(make_sub("s1", kAlice, kNow + 100));
	change(kAlice, "c1", false, meta(kNow, kNow + 10, 1));
	EXPECT_TRUE(other.bindings(kAlice).empty());
	EXPECT_EQ(other_subs.count(), 0);
	BindingChangeResult r = other.binding_changed(kAlice, "c2", false, meta(kNow, kNow + 10, 1), false,
			3600, kMs + 2000);
	EXPECT_TRUE(r.batch.send.empty()) << "the other prefix has no subscriptions";
	EXPECT_TRUE(r.all.empty());
	EXPECT_EQ(store_->bindings(kAlice).size(), 1u);
	EXPECT_EQ(store_->bindings(kAlice).count("c1"), 1u);
	EXPECT_EQ(subs_->count(), 1);
}

// --- binding changes and the subscriptions of the AoR ----------------------------------------------

TEST_F(BindingStoreTest, ChangeHandsOutVersionAndCseqToEveryIdleRegSubscriptionOfTheAor)
{
	subs::Subscription a = created_idle(make_sub("sa", kAlice, kNow + 600));
	subs::Subscription b = created_idle(make_sub("sb", kAlice, kNow + 900));
	subs::Subscription pres = created_idle(make_sub("sp", kAlice, kNow + 600, "presence"));
	subs::Subscription other = created_idle(make_sub("so", kBob, kNow + 600));

	BindingChangeResult r0 = change(kAlice, "c0", false, meta(kNow, kNow + 100, 1));
	ASSERT_EQ(r0.batch.send.size(), 2u);
	for (const auto &s : r0.batch.send) subs_->complete(kAlice, s.sid, s.cseq, 200, false, true, kMs + 1500);
	BindingChangeResult r = change(kAlice, "c1", false, meta(kNow, kNow + 3600, 1), false, 3600, kMs + 2000);
	ASSERT_EQ(r.batch.send.size(), 2u);
	EXPECT_EQ(sids(r.batch.send), (std::set<std::string>{a.sid, b.sid}));
	EXPECT_TRUE(r.batch.removed.empty());
	for (const auto &s : r.batch.send) {
		EXPECT_EQ(s.version, 2u) << s.sid;  // created at 0, two changes
		EXPECT_EQ(s.cseq, 3u) << s.sid;     // initial NOTIFY was CSeq 1
		EXPECT_EQ(s.package, "reg");
		EXPECT_EQ(s.resource, kAlice);
		const subs::Subscription &want = s.sid == a.sid ? a : b;
		EXPECT_EQ(s.watcher, want.watcher);
		EXPECT_EQ(s.dialog.callid, want.dialog.callid);
		EXPECT_EQ(s.dialog.remote_tag, want.dialog.remote_tag);
		EXPECT_EQ(s.dialog.local_tag, want.dialog.local_tag);
		EXPECT_EQ(s.dialog.remote_target, want.dialog.remote_target);
		EXPECT_EQ(s.dialog.route_set, want.dialog.route_set);
		EXPECT_EQ(s.dialog.socket, want.dialog.socket);
		EXPECT_EQ(s.dialog.local_contact, want.dialog.local_contact);
		EXPECT_EQ(s.expires_at, want.expires_at);
	}
	ASSERT_EQ(r.all.size(), 2u);
	EXPECT_EQ(r.all.count("c0"), 1u);
	EXPECT_EQ(r.all.count("c1"), 1u);
	expect_meta_eq(r.all["c1"], meta(kNow, kNow + 3600, 1));

	// Neither the presence subscription of the same resource nor Bob's moved.
	auto pv = subs_->of(kAlice, "presence");
	ASSERT_EQ(pv.size(), 1u);
	EXPECT_EQ(pv[0].sid, pres.sid);
	EXPECT_EQ(pv[0].version, 0u);
	EXPECT_EQ(pv[0].cseq, 1u);
	auto bob = subs_->of(kBob, "reg");
	ASSERT_EQ(bob.size(), 1u);
	EXPECT_EQ(bob[0].sid, other.sid);
	EXPECT_EQ(bob[0].version, 0u);
	EXPECT_EQ(bob[0].cseq, 1u);
}

TEST_F(BindingStoreTest, OnlyOtherPackagesWatchingMeansNoWatcher)
{
	created_idle(make_sub("sp", kAlice, kNow + 600, "presence"));
	change(kAlice, "c0", false, meta(kNow, kNow + 100, 1));
	BindingChangeResult r = change(kAlice, "c1", false, meta(kNow, kNow + 100, 1));
	EXPECT_TRUE(r.batch.send.empty());
	EXPECT_TRUE(r.all.empty());
}

TEST_F(BindingStoreTest, BusySubscriptionWaitsAndGetsTheNextNumbersAfterTheResponse)
{
	subs::Subscription a = created(make_sub("sa", kAlice, kNow + 600));  // CSeq 1 outstanding
	BindingChangeResult r = change(kAlice, "c1", false, meta(kNow, kNow + 3600, 1), false, 3600, kMs + 1000);
	EXPECT_TRUE(r.batch.send.empty()) << "one NOTIFY outstanding per dialog";
	EXPECT_EQ(r.batch.due_ms, kMs + kBusyMs) << "deferred until the dialog's busy time is over";
	EXPECT_EQ(r.all.size(), 1u) << "a watcher exists";
	// the metadata is stored all the same
	expect_meta_eq(store_->bindings(kAlice)["c1"], meta(kNow, kNow + 3600, 1));
	// a second change while busy: still nothing, still one NOTIFY owed
	r = change(kAlice, "c2", false, meta(kNow, kNow + 3600, 1), false, 3600, kMs + 2000);
	EXPECT_TRUE(r.batch.send.empty());

	subs::Batch done = subs_->complete(kAlice, a.sid, 1, 200, false, true, kMs + 3000);
	ASSERT_EQ(done.send.size(), 1u);
	EXPECT_EQ(done.send[0].sid, a.sid);
	EXPECT_EQ(done.send[0].version, 1u);
	EXPECT_EQ(done.send[0].cseq, 2u);
	// and nothing more is due afterwards
	EXPECT_TRUE(subs_->due(kMs + 100000, 100).send.empty());
}

TEST_F(BindingStoreTest, SubscriptionCreatedAfterTheChangeIsLeftOut)
{
	subs::Subscription early = created_idle(make_sub("early", kAlice, kNow + 600), kMs);
	subs::Subscription late = created_idle(make_sub("late", kAlice, kNow + 600), kMs + 5000);
	// usrloc made the change at kMs + 2000; it is handled at kMs + 9000
	BindingChangeResult r = change(kAlice, "c1", false, meta(kNow, kNow + 3600, 1), false, 3600,
			kMs + 9000, kMs + 2000);
	EXPECT_EQ(sids(r.batch.send), std::set<std::string>{early.sid});
	// made at the same millisecond as the change: included
	BindingChangeResult r2 = change(kAlice, "c2", false, meta(kNow, kNow + 3600, 1), false, 3600,
			kMs + 9500, kMs + 5000);
	EXPECT_EQ(sids(r2.batch.send), std::set<std::string>{late.sid}) << "early is busy with its NOTIFY";
	// early's change waited for its outstanding NOTIFY
	subs::Batch waited = subs_->complete(kAlice, early.sid, 2, 200, false, true, kMs + 9600);
	ASSERT_EQ(waited.send.size(), 1u);
	EXPECT_EQ(waited.send[0].sid, early.sid);
	EXPECT_EQ(waited.send[0].cseq, 3u);
	EXPECT_TRUE(subs_->complete(kAlice, early.sid, 3, 200, false, true, kMs + 9600).send.empty());
	EXPECT_TRUE(subs_->complete(kAlice, late.sid, 2, 200, false, true, kMs + 9600).send.empty());
	// change_ms 0: the change happened now
	BindingChangeResult r3 = change(kAlice, "c3", false, meta(kNow, kNow + 3600, 1), false, 3600, kMs + 9700);
	EXPECT_EQ(sids(r3.batch.send), (std::set<std::string>{early.sid, late.sid}));
}

TEST_F(BindingStoreTest, VersionAndCseqOnlyIncrease)
{
	subs::Subscription s = created(make_sub("s1", kAlice, kNow + 600));
	std::vector<std::pair<unsigned long long, unsigned long long>> seen = {{s.version, s.cseq}};
	long long t = kMs;
	long long rc = 1;
	for (int i = 0; i < 5; ++i) {
		subs_->complete(kAlice, s.sid, seen.back().second, 200, false, true, ++t);
		auto r = change(kAlice, "c" + std::to_string(i), false, meta(kNow + i, kNow + 3600, 1), false, 3600, ++t);
		ASSERT_EQ(r.batch.send.size(), 1u);
		seen.emplace_back(r.batch.send[0].version, r.batch.send[0].cseq);
		subs_->complete(kAlice, s.sid, seen.back().second, 200, false, true, ++t);
		subs::Subscription ref = s;
		ref.dialog.remote_cseq = ++rc;
		ref.expires_at = kNow + 600 + i;
		bool send_now = false;
		ASSERT_EQ(subs_->refresh(ref, false, ++t, send_now), subs::Outcome::Ok);
		ASSERT_TRUE(send_now);
		seen.emplace_back(ref.version, ref.cseq);
	}
	subs_->complete(kAlice, s.sid, seen.back().second, 200, false, true, ++t);
	auto fin = subs_->expire(kNow + 10000, 10);
	ASSERT_EQ(fin.removed.size(), 1u);
	EXPECT_TRUE(fin.removed[0].owes_final);
	seen.emplace_back(fin.removed[0].version, fin.removed[0].cseq);
	for (size_t i = 1; i < seen.size(); ++i) {
		EXPECT_EQ(seen[i].first, seen[i - 1].first + 1) << "step " << i;
		EXPECT_EQ(seen[i].second, seen[i - 1].second + 1) << "step " << i;
	}
}

TEST_F(BindingStoreTest, TwoStoresOnOneRedisShareCounters)
{
	// Two processes (or nodes) share one Redis: neither hands out a number twice.
	RedisConfig c;
	c.port = server_->port();
	Redis other_conn(c);
	subs::Store other_subs(other_conn, subs::Keys(kPrefix), kBusyMs, "node2", "1");
	BindingStore other(other_subs);
	subs::Subscription s = created_idle(make_sub("s1", kAlice, kNow + 600));
	std::set<unsigned long long> versions, cseqs;
	long long t = kMs + 10;
	for (int i = 0; i < 10; ++i) {
		BindingStore &st = i % 2 ? other : *store_;
		auto r = st.binding_changed(kAlice, "c1", false, meta(kNow, kNow + 60 + i, 1), false, 3600, ++t);
		ASSERT_EQ(r.batch.send.size(), 1u) << i;
		EXPECT_TRUE(versions.insert(r.batch.send[0].version).second);
		EXPECT_TRUE(cseqs.insert(r.batch.send[0].cseq).second);
		// the response comes back to either process
		subs::Store &done = i % 3 ? *subs_ : other_subs;
		done.complete(kAlice, s.sid, r.batch.send[0].cseq, 200, false, true, ++t);
	}
	EXPECT_EQ(*versions.rbegin(), 10u);
	EXPECT_EQ(*cseqs.rbegin(), 11u);
	expect_meta_eq(store_->bindings(kAlice)["c1"], meta(kNow, kNow + 69, 1));
}

TEST_F(BindingStoreTest, SurvivesScriptFlush)
{
	created_idle(make_sub("s1", kAlice, kNow + 100));
	redis_->command({"SCRIPT", "FLUSH"});
	auto r = change(kAlice, "c1", false, meta(kNow, kNow + 10, 1));
	ASSERT_EQ(r.batch.send.size(), 1u);
	EXPECT_EQ(r.batch.send[0].version, 1u);
	EXPECT_EQ(store_->bindings(kAlice).size(), 1u);
}
