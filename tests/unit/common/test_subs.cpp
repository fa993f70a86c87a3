// The shared subscription layer (imps/subs.hpp, modules/common/lua/subs_*.lua) against a real
// redis-server the suite starts on a free loopback port: the store's scripts (creation,
// numbering, one NOTIFY outstanding per dialog, the RFC 6665 4.2.2 failure policy, refresh,
// expiry with its bucket index, deferred and coalesced NOTIFYs, take), the keys' hash tags,
// and the notifier (SUBSCRIBE answers, NOTIFY headers, the timer) with a fake event package
// and a recording delivery.
#include "imps/redis.hpp"
#include "imps/subs.hpp"

#include "redis_server.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using imps::Redis;
using imps::RedisConfig;
using imps::reply_int;
using imps::reply_str;
using imps::test::RedisServer;
using namespace imps::subs;

namespace {

long long wall_ms()
{
	return std::chrono::duration_cast<std::chrono::milliseconds>(
			std::chrono::system_clock::now().time_since_epoch()).count();
}

long long wall_s() { return wall_ms() / 1000; }

RedisConfig cfg_for(int port)
{
	RedisConfig c;
	c.host = "127.0.0.1";
	c.port = port;
	c.connect_timeout_ms = 500;
	c.timeout_ms = 2000;
	c.retry_interval_ms = 0;
	return c;
}

// A subscription as a package hands it to the store: dialog, resource, watcher (tag makes
// the dialog unique), expires_at in unix seconds (the scripts keep the resource's keys until
// an hour after it, so it must be a real time).
Subscription make_sub(const std::string &res, const std::string &tag,
		const std::string &pkg = "presence", long long expires_at = 0)
{
	Subscription s;
	s.package = pkg;
	s.resource = res;
	s.watcher = "w-" + tag + "@example.com";
	s.watcher_uri = "sip:w-" + tag + "@example.com";
	s.display_name = "Watcher " + tag;
	s.status = "active";
	Dialog &d = s.dialog;
	d.callid = "call-" + tag + "@10.0.0.1";
	d.remote_tag = "rtag-" + tag;
	d.local_tag = "ltag-" + tag;
	d.remote_uri = s.watcher_uri;
	d.local_uri = "sip:" + res;
	d.remote_target = "sip:w-" + tag + "@10.0.0.1:5060";
	d.route_set = "<sip:proxy.example.com;lr>";
	d.socket = "udp:127.0.0.1:5080";
	d.local_contact = "sip:notifier@127.0.0.1:5080";
	d.remote_cseq = 1;
	s.sid = subscription_id(d.callid, d.remote_tag, d.local_tag);
	s.created_at = wall_s();
	s.expires_at = expires_at ? expires_at : wall_s() + 3600;
	return s;
}

std::set<std::string> sids_of(const std::vector<Subscription> &v)
{
	std::set<std::string> out;
	for (const auto &s : v) out.insert(s.sid);
	return out;
}

const Subscription *find_sid(const std::vector<Subscription> &v, const std::string &sid)
{
	for (const auto &s : v)
		if (s.sid == sid) return &s;
	return nullptr;
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

// One private redis-server per suite, emptied before every test.
class SubsRedisTest : public ::testing::Test {
protected:
	static void SetUpTestSuite() { server_ = std::make_unique<RedisServer>(); }
	static void TearDownTestSuite() { server_.reset(); }
	void SetUp() override
	{
		ASSERT_TRUE(server_->running());
		redis_ = std::make_unique<Redis>(cfg_for(server_->port()));
		redis_->command({"FLUSHALL"});
		redis_->command({"SCRIPT", "FLUSH"});
	}

	// The score of res in a global bucket index (-1: not in it).
	long long bucket_score(const char *kind, const std::string &res)
	{
		auto rep = redis_->command({"ZSCORE", keys_.bucket(kind, keys_.bucket_of(res)), res});
		if (rep->type == REDIS_REPLY_NIL) return -1;
		return std::stoll(reply_str(rep.get()));
	}

	static std::unique_ptr<RedisServer> server_;
	std::unique_ptr<Redis> redis_;
	Keys keys_{"t:subs"};
};
std::unique_ptr<RedisServer> SubsRedisTest::server_;

class SubsStoreTest : public SubsRedisTest {
protected:
	static constexpr long long kBusy = 30000;

	// Creates s (must be new) and returns the stored record.
	Subscription created(Store &st, Subscription s, long long now_ms, int max = 100)
	{
		bool send_now = false;
		EXPECT_EQ(st.create(s, max, now_ms, send_now), Outcome::Ok);
		EXPECT_TRUE(send_now);
		return s;
	}
	// Creates s and answers its initial NOTIFY 200: the dialog is idle afterwards.
	Subscription created_idle(Store &st, Subscription s, long long now_ms)
	{
		s = created(st, s, now_ms);
		Batch b = st.complete(s.resource, s.sid, 1, 200, false, true, now_ms + 1);
		EXPECT_TRUE(b.send.empty());
		EXPECT_TRUE(b.removed.empty());
		return s;
	}
};

// ---- 1. create ----------------------------------------------------------------------------

TEST_F(SubsStoreTest, CreateStartsAtVersion0Cseq1AndIsBusy)
{
	Store st(*redis_, keys_, kBusy);
	const long long t = wall_ms();
	const Subscription in = make_sub("alice@example.com", "a1");
	Subscription s = in;
	bool send_now = false;
	ASSERT_EQ(st.create(s, 10, t, send_now), Outcome::Ok);
	EXPECT_TRUE(send_now);
	EXPECT_EQ(s.version, 0u);
	EXPECT_EQ(s.cseq, 1u);
	EXPECT_FALSE(s.owes_final);
	EXPECT_EQ(s.last_notify_ms, t);
	// the record carries everything the package gave
	EXPECT_EQ(s.sid, in.sid);
	EXPECT_EQ(s.package, "presence");
	EXPECT_EQ(s.resource, "alice@example.com");
	EXPECT_EQ(s.watcher, in.watcher);
	EXPECT_EQ(s.watcher_uri, in.watcher_uri);
	EXPECT_EQ(s.display_name, in.display_name);
	EXPECT_EQ(s.status, "active");
	EXPECT_EQ(s.expires_at, in.expires_at);
	EXPECT_EQ(s.created_at, in.created_at);
	EXPECT_EQ(s.dialog.callid, in.dialog.callid);
	EXPECT_EQ(s.dialog.remote_tag, in.dialog.remote_tag);
	EXPECT_EQ(s.dialog.local_tag, in.dialog.local_tag);
	EXPECT_EQ(s.dialog.remote_uri, in.dialog.remote_uri);
	EXPECT_EQ(s.dialog.local_uri, in.dialog.local_uri);
	EXPECT_EQ(s.dialog.remote_target, in.dialog.remote_target);
	EXPECT_EQ(s.dialog.route_set, in.dialog.route_set);
	EXPECT_EQ(s.dialog.socket, in.dialog.socket);
	EXPECT_EQ(s.dialog.local_contact, in.dialog.local_contact);
	EXPECT_EQ(s.dialog.remote_cseq, 1);
	EXPECT_EQ(st.count(), 1);
	EXPECT_EQ(st.resource_of(s.sid), "alice@example.com");

	// busy: its initial NOTIFY is outstanding, a turn now waits for it (at most busy_ms)
	Batch b = st.turn("alice@example.com", {s.sid}, "", 0, t + 1);
	EXPECT_TRUE(b.send.empty());
	EXPECT_TRUE(b.removed.empty());
	EXPECT_GE(b.due_ms, 0);
	EXPECT_EQ(b.due_ms, t + kBusy);
	EXPECT_EQ(bucket_score("due", "alice@example.com"), t + kBusy);
}

TEST_F(SubsStoreTest, RetransmittedCreateKeepsCountersGoing)
{
	Store st(*redis_, keys_, kBusy);
	const std::string res = "alice@example.com";
	const long long t = wall_ms();
	const Subscription in = make_sub(res, "a1");
	Subscription s = created_idle(st, in, t);
	Batch b = st.turn(res, {s.sid}, "", 0, t + 10);
	ASSERT_EQ(b.send.size(), 1u);
	EXPECT_EQ(b.send[0].version, 1u);
	EXPECT_EQ(b.send[0].cseq, 2u);

	// the initial SUBSCRIBE again (same dialog), NOTIFY 2 still outstanding
	Subscription again = in;
	again.created_at = in.created_at + 5;
	bool send_now = true;
	ASSERT_EQ(st.create(again, 10, t + 20, send_now), Outcome::Ok);
	EXPECT_FALSE(send_now);
	EXPECT_EQ(st.count(), 1);
	auto recs = st.of(res, "presence");
	ASSERT_EQ(recs.size(), 1u);
	EXPECT_EQ(recs[0].version, 1u) << "counters reset by a retransmission";
	EXPECT_EQ(recs[0].cseq, 2u) << "counters reset by a retransmission";
	EXPECT_EQ(recs[0].created_at, in.created_at);

	// its NOTIFY was deferred behind NOTIFY 2 and goes on numbering
	b = st.complete(res, s.sid, 2, 200, false, true, t + 30);
	ASSERT_EQ(b.send.size(), 1u);
	EXPECT_EQ(b.send[0].version, 2u);
	EXPECT_EQ(b.send[0].cseq, 3u);
	b = st.complete(res, s.sid, 3, 200, false, true, t + 40);
	EXPECT_TRUE(b.send.empty());

	// once more, idle this time: sent at once, numbers go on
	again = in;
	ASSERT_EQ(st.create(again, 10, t + 50, send_now), Outcome::Ok);
	EXPECT_TRUE(send_now);
	EXPECT_EQ(again.version, 3u);
	EXPECT_EQ(again.cseq, 4u);
	EXPECT_EQ(again.created_at, in.created_at);
	EXPECT_EQ(st.count(), 1);
}

TEST_F(SubsStoreTest, CreateTooManyCountsOnlyTheSamePackage)
{
	Store st(*redis_, keys_, kBusy);
	const std::string res = "bob@example.com";
	const long long t = wall_ms();
	created(st, make_sub(res, "p1"), t, 2);
	created(st, make_sub(res, "p2"), t, 2);
	Subscription third = make_sub(res, "p3");
	bool send_now = false;
	EXPECT_EQ(st.create(third, 2, t, send_now), Outcome::TooMany);
	EXPECT_EQ(st.count(), 2);
	EXPECT_EQ(st.resource_of(third.sid), "");
	EXPECT_EQ(st.of(res, "presence").size(), 2u);

	// other packages of the resource do not count, nor other resources
	Subscription winfo = make_sub(res, "w1", "presence.winfo");
	EXPECT_EQ(st.create(winfo, 2, t, send_now), Outcome::Ok);
	EXPECT_TRUE(send_now);
	Subscription other = make_sub("carol@example.com", "p4");
	EXPECT_EQ(st.create(other, 2, t, send_now), Outcome::Ok);
	EXPECT_EQ(st.count(), 4);
	EXPECT_EQ(st.of(res, "presence.winfo").size(), 1u);
	EXPECT_EQ(st.of(res, "").size(), 3u);
}

// ---- 2. one NOTIFY outstanding per dialog -------------------------------------------------

TEST_F(SubsStoreTest, OneNotifyOutstandingPerDialog)
{
	Store st(*redis_, keys_, kBusy);
	const std::string res = "alice@example.com";
	const long long t = wall_ms();
	Subscription s = created(st, make_sub(res, "a1"), t);

	Batch b = st.turn(res, {s.sid}, "", 0, t + 1);
	EXPECT_TRUE(b.send.empty());
	b = st.turn(res, {s.sid}, "", 0, t + 2);  // a second change coalesces into the same one
	EXPECT_TRUE(b.send.empty());

	// the answer to NOTIFY 1 lets the newest state out: version 1, CSeq 2
	b = st.complete(res, s.sid, 1, 200, false, true, t + 3);
	ASSERT_EQ(b.send.size(), 1u);
	EXPECT_EQ(b.send[0].sid, s.sid);
	EXPECT_EQ(b.send[0].version, 1u);
	EXPECT_EQ(b.send[0].cseq, 2u);
	EXPECT_TRUE(b.removed.empty());

	// a stale answer (CSeq 1 again, even a failure) changes nothing
	b = st.complete(res, s.sid, 1, 200, false, true, t + 4);
	EXPECT_TRUE(b.send.empty());
	EXPECT_TRUE(b.removed.empty());
	b = st.complete(res, s.sid, 1, 481, false, true, t + 4);
	EXPECT_TRUE(b.send.empty());
	EXPECT_TRUE(b.removed.empty());
	EXPECT_EQ(st.count(), 1);
	b = st.turn(res, {s.sid}, "", 0, t + 5);  // NOTIFY 2 still outstanding
	EXPECT_TRUE(b.send.empty());
	b = st.complete(res, s.sid, 2, 200, false, true, t + 6);
	ASSERT_EQ(b.send.size(), 1u);
	EXPECT_EQ(b.send[0].cseq, 3u);
	b = st.complete(res, s.sid, 3, 200, false, true, t + 7);
	EXPECT_TRUE(b.send.empty());  // nothing changed meanwhile

	// nothing outstanding: a turn sends at once
	b = st.turn(res, {s.sid}, "", 0, t + 8);
	ASSERT_EQ(b.send.size(), 1u);
	EXPECT_EQ(b.send[0].version, 3u);
	EXPECT_EQ(b.send[0].cseq, 4u);
	EXPECT_EQ(b.send[0].last_notify_ms, t + 8);
	EXPECT_EQ(b.due_ms, -1);
}

// The calls of a command Redis ran so far (INFO commandstats).
long long command_calls(Redis &r, const std::string &cmd)
{
	std::string info = reply_str(r.command({"INFO", "commandstats"}).get());
	auto at = info.find("cmdstat_" + cmd + ":calls=");
	if (at == std::string::npos) return 0;
	return std::stoll(info.substr(at + cmd.size() + 15));
}

TEST_F(SubsStoreTest, CompleteManyRecords2xxWithoutAScriptUnlessTheDialogChanged)
{
	Store st(*redis_, keys_, kBusy);
	const std::string res = "alice@example.com";
	const long long t = wall_ms();
	Subscription a = created(st, make_sub(res, "a1"), t);
	Subscription b = created(st, make_sub(res, "b1"), t);
	Subscription c = created(st, make_sub("bob@example.com", "c1"), t);
	// b changes while its NOTIFY 1 is outstanding; a and c do not
	EXPECT_TRUE(st.turn(res, {b.sid}, "", 0, t + 1).send.empty());

	const long long scripts = command_calls(*redis_, "evalsha");
	std::vector<Batch> out = st.complete_many({{res, a.sid, 1, 200, false}, {res, b.sid, 1, 200, false},
			{"bob@example.com", c.sid, 1, 202, false}}, true, t + 2);
	ASSERT_EQ(out.size(), 3u);
	EXPECT_TRUE(out[0].send.empty());
	EXPECT_TRUE(out[2].send.empty());
	// b's newest state goes at once, numbered after the answered NOTIFY
	ASSERT_EQ(out[1].send.size(), 1u);
	EXPECT_EQ(out[1].send[0].sid, b.sid);
	EXPECT_EQ(out[1].send[0].cseq, 2u);
	EXPECT_EQ(out[1].send[0].version, 1u);
	// one script, for b only; the two clean 2xx were a MULTI each
	EXPECT_EQ(command_calls(*redis_, "evalsha") - scripts, 1);

	// a and c are idle now: a change sends at once; b is busy with NOTIFY 2
	Batch n = st.turn(res, {a.sid, b.sid}, "", 0, t + 3);
	ASSERT_EQ(n.send.size(), 1u);
	EXPECT_EQ(n.send[0].sid, a.sid);
	EXPECT_EQ(n.send[0].cseq, 2u);
	ASSERT_EQ(st.turn("bob@example.com", {c.sid}, "", 0, t + 3).send.size(), 1u);

	// a stale 2xx (CSeq 1 again) and a 2xx of a NOTIFY never numbered change nothing
	out = st.complete_many({{res, a.sid, 1, 200, false}, {res, b.sid, 7, 200, false}}, true, t + 4);
	EXPECT_TRUE(out[0].send.empty() && out[1].send.empty());
	EXPECT_TRUE(st.turn(res, {a.sid}, "", 0, t + 5).send.empty());  // NOTIFY 2 of a outstanding

	// a failure still takes the script: 481 removes the subscription
	out = st.complete_many({{res, b.sid, 2, 481, false}}, true, t + 6);
	ASSERT_EQ(out[0].removed.size(), 1u);
	EXPECT_EQ(out[0].removed[0].sid, b.sid);

	// no lease is left behind by answered NOTIFYs
	out = st.complete_many({{res, a.sid, 2, 200, false}}, true, t + 7);
	ASSERT_EQ(out[0].send.size(), 1u);  // the change of t + 5, CSeq 3
	EXPECT_EQ(out[0].send[0].cseq, 3u);
	out = st.complete_many({{res, a.sid, 3, 200, false}}, true, t + 8);
	EXPECT_TRUE(out[0].send.empty());
	auto leases = redis_->command({"HLEN", keys_.lease(res)});
	EXPECT_EQ(leases->integer, 0);
}

TEST_F(SubsStoreTest, RandomInterleavingKeepsNumberingStrictAndOneOutstanding)
{
	Store st(*redis_, keys_, 600000);  // the busy deadline never passes during the run
	const std::string res = "carol@example.com";
	struct Track {
		unsigned long long version = 0, cseq = 0;
		bool outstanding = false;
		bool dirty = false;  // a turn came while outstanding: the answer must send
	};
	std::map<std::string, Track> tr;
	std::vector<std::string> sids;
	long long now = wall_ms();
	for (int i = 0; i < 4; ++i) {
		Subscription s = created(st, make_sub(res, "r" + std::to_string(i)), now);
		ASSERT_EQ(s.cseq, 1u);
		tr[s.sid] = Track{0, 1, true, false};
		sids.push_back(s.sid);
	}
	std::mt19937 rng(6665);
	int sent = 0, deferred = 0, stale = 0;
	// checks the sends of a batch against the model and what it expected to be sent
	auto absorb = [&](const Batch &b, const std::set<std::string> &expect, int step, const char *op) {
		EXPECT_TRUE(b.removed.empty()) << op << " at step " << step;
		std::set<std::string> got;
		for (const auto &s : b.send) {
			auto it = tr.find(s.sid);
			if (it == tr.end()) {
				ADD_FAILURE() << "unknown sid " << s.sid;
				continue;
			}
			Track &t = it->second;
			EXPECT_TRUE(got.insert(s.sid).second) << "sent twice in one batch, step " << step;
			EXPECT_FALSE(t.outstanding) << "second NOTIFY outstanding for " << s.sid << " at step "
										<< step << " (" << op << ")";
			EXPECT_EQ(s.cseq, t.cseq + 1) << op << " at step " << step;
			EXPECT_EQ(s.version, t.version + 1) << op << " at step " << step;
			t.cseq = s.cseq;
			t.version = s.version;
			t.outstanding = true;
			t.dirty = false;
			++sent;
		}
		EXPECT_EQ(got, expect) << op << " at step " << step;
	};
	for (int step = 0; step < 600 && !HasFailure(); ++step) {
		now += 1 + static_cast<long long>(rng() % 5);
		int op = static_cast<int>(rng() % 100);
		if (op < 45) {
			std::vector<std::string> pick;
			for (const auto &sid : sids)
				if (rng() % 2) pick.push_back(sid);
			if (pick.empty()) pick.push_back(sids[rng() % sids.size()]);
			std::set<std::string> expect;
			for (const auto &sid : pick) {
				if (!tr[sid].outstanding) expect.insert(sid);
				else {
					tr[sid].dirty = true;
					++deferred;
				}
			}
			absorb(st.turn(res, pick, "", 0, now), expect, step, "turn");
		} else if (op < 90) {
			std::vector<std::string> busy;
			for (const auto &sid : sids)
				if (tr[sid].outstanding) busy.push_back(sid);
			if (busy.empty()) continue;
			const std::string sid = busy[rng() % busy.size()];
			Track &t = tr[sid];
			t.outstanding = false;
			std::set<std::string> expect;
			if (t.dirty) expect.insert(sid);
			absorb(st.complete(res, sid, t.cseq, 200, false, true, now), expect, step, "complete");
		} else {
			// an answer to some other CSeq than the outstanding one (late, or bogus): no effect
			const std::string sid = sids[rng() % sids.size()];
			Track &t = tr[sid];
			unsigned long long cseq = t.cseq > 1 && rng() % 2 ? t.cseq - 1 - rng() % (t.cseq - 1)
					: t.cseq + 1 + rng() % 3;
			static const int codes[] = {200, 481, 408, 500};
			absorb(st.complete(res, sid, cseq, codes[rng() % 4], false, true, now), {}, step, "stale");
			++stale;
		}
	}
	// answer whatever is outstanding until the dialogs are quiet
	for (int round = 0; round < 10 && !HasFailure(); ++round) {
		bool any = false;
		for (const auto &sid : sids) {
			Track &t = tr[sid];
			if (!t.outstanding) continue;
			any = true;
			now += 1;
			t.outstanding = false;
			std::set<std::string> expect;
			if (t.dirty) expect.insert(sid);
			absorb(st.complete(res, sid, t.cseq, 200, false, true, now), expect, 1000 + round, "drain");
		}
		if (!any) break;
	}
	EXPECT_GT(sent, 100);
	EXPECT_GT(deferred, 50);
	EXPECT_GT(stale, 20);
	auto recs = st.of(res, "presence");
	ASSERT_EQ(recs.size(), sids.size());
	for (const auto &r : recs) {
		EXPECT_FALSE(tr[r.sid].outstanding);
		EXPECT_FALSE(tr[r.sid].dirty);
		EXPECT_EQ(r.cseq, tr[r.sid].cseq);
		EXPECT_EQ(r.version, tr[r.sid].version);
	}
}

// ---- 3. failure policy (RFC 6665 4.2.2) ---------------------------------------------------

TEST_F(SubsStoreTest, Complete481Removes)
{
	Store st(*redis_, keys_, kBusy);
	const std::string res = "alice@example.com";
	const long long t = wall_ms();
	Subscription s = created(st, make_sub(res, "a1"), t);
	Batch b = st.complete(res, s.sid, 1, 481, false, false, t + 1);
	EXPECT_TRUE(b.send.empty());
	ASSERT_EQ(b.removed.size(), 1u);
	EXPECT_EQ(b.removed[0].sid, s.sid);
	EXPECT_FALSE(b.removed[0].owes_final);
	EXPECT_FALSE(b.removed[0].ending.empty());
	EXPECT_EQ(st.count(), 0);
	EXPECT_EQ(st.resource_of(s.sid), "");
	EXPECT_TRUE(st.of(res, "").empty());
	bool send_now = false;
	Subscription r = s;
	r.dialog.remote_cseq = 2;
	EXPECT_EQ(st.refresh(r, false, t + 2, send_now), Outcome::NoSuchDialog);
}

TEST_F(SubsStoreTest, Complete408FollowsRemoveOnTimeout)
{
	Store st(*redis_, keys_, kBusy);
	const std::string res = "alice@example.com";
	const long long t = wall_ms();
	Subscription drop = created(st, make_sub(res, "a1"), t);
	Subscription keep = created(st, make_sub(res, "a2"), t);

	Batch b = st.complete(res, drop.sid, 1, 408, false, true, t + 1);
	ASSERT_EQ(b.removed.size(), 1u);
	EXPECT_EQ(b.removed[0].sid, drop.sid);
	EXPECT_FALSE(b.removed[0].owes_final);

	b = st.complete(res, keep.sid, 1, 408, false, false, t + 1);
	EXPECT_TRUE(b.removed.empty());
	EXPECT_TRUE(b.send.empty());
	EXPECT_EQ(st.count(), 1);
	EXPECT_EQ(st.resource_of(keep.sid), res);
	EXPECT_EQ(st.resource_of(drop.sid), "");
	// kept and no longer busy: the next NOTIFY goes at once
	b = st.turn(res, {keep.sid}, "", 0, t + 2);
	ASSERT_EQ(b.send.size(), 1u);
	EXPECT_EQ(b.send[0].cseq, 2u);
}

TEST_F(SubsStoreTest, Complete500WithoutRetryAfterRemoves)
{
	Store st(*redis_, keys_, kBusy);
	const std::string res = "alice@example.com";
	const long long t = wall_ms();
	Subscription s = created(st, make_sub(res, "a1"), t);
	Batch b = st.complete(res, s.sid, 1, 500, false, true, t + 1);
	ASSERT_EQ(b.removed.size(), 1u);
	EXPECT_EQ(b.removed[0].sid, s.sid);
	EXPECT_FALSE(b.removed[0].owes_final);
	EXPECT_EQ(st.count(), 0);
}

TEST_F(SubsStoreTest, Complete500WithRetryAfterKeeps)
{
	Store st(*redis_, keys_, kBusy);
	const std::string res = "alice@example.com";
	const long long t = wall_ms();
	Subscription s = created(st, make_sub(res, "a1"), t);
	Batch b = st.complete(res, s.sid, 1, 500, true, true, t + 1);
	EXPECT_TRUE(b.removed.empty());
	EXPECT_EQ(st.count(), 1);
	EXPECT_EQ(st.of(res, "presence").size(), 1u);
	EXPECT_EQ(st.resource_of(s.sid), res);
}

TEST_F(SubsStoreTest, CompleteCode0ChangesNothing)
{
	Store st(*redis_, keys_, kBusy);
	const std::string res = "alice@example.com";
	const long long t = wall_ms();
	Subscription s = created(st, make_sub(res, "a1"), t);
	Batch b = st.complete(res, s.sid, 1, 0, false, true, t + 1);
	EXPECT_TRUE(b.send.empty());
	EXPECT_TRUE(b.removed.empty());
	EXPECT_EQ(st.count(), 1);
	// still busy: a turn waits for the deadline
	b = st.turn(res, {s.sid}, "", 0, t + 2);
	EXPECT_TRUE(b.send.empty());
	EXPECT_EQ(b.due_ms, t + kBusy);
	auto recs = st.of(res, "presence");
	ASSERT_EQ(recs.size(), 1u);
	EXPECT_EQ(recs[0].cseq, 1u);
}

// ---- 4. refresh ---------------------------------------------------------------------------

TEST_F(SubsStoreTest, RefreshUnknownIsNoSuchDialog)
{
	Store st(*redis_, keys_, kBusy);
	Subscription s = make_sub("alice@example.com", "nobody");
	bool send_now = true;
	EXPECT_EQ(st.refresh(s, false, wall_ms(), send_now), Outcome::NoSuchDialog);
	EXPECT_EQ(st.refresh(s, true, wall_ms(), send_now), Outcome::NoSuchDialog);
	EXPECT_EQ(st.count(), 0);
}

TEST_F(SubsStoreTest, RefreshWithLowerRemoteCseqIsOutOfOrder)
{
	Store st(*redis_, keys_, kBusy);
	const std::string res = "alice@example.com";
	const long long t = wall_ms();
	Subscription in = make_sub(res, "a1");
	in.dialog.remote_cseq = 5;
	Subscription s = created_idle(st, in, t);
	Subscription r = in;
	r.dialog.remote_cseq = 4;
	r.expires_at = in.expires_at + 100;
	bool send_now = true;
	EXPECT_EQ(st.refresh(r, false, t + 5, send_now), Outcome::CseqOutOfOrder);
	auto recs = st.of(res, "presence");
	ASSERT_EQ(recs.size(), 1u);
	EXPECT_EQ(recs[0].expires_at, in.expires_at);  // untouched
	EXPECT_EQ(recs[0].dialog.remote_cseq, 5);
	r.dialog.remote_cseq = 6;
	EXPECT_EQ(st.refresh(r, false, t + 6, send_now), Outcome::Ok);
	EXPECT_TRUE(send_now);
	EXPECT_EQ(r.expires_at, in.expires_at + 100);
	EXPECT_EQ(r.dialog.remote_cseq, 6);
}

TEST_F(SubsStoreTest, RefreshWhileBusyDefersItsNotify)
{
	Store st(*redis_, keys_, kBusy);
	const std::string res = "alice@example.com";
	const long long t = wall_ms();
	Subscription in = make_sub(res, "a1");
	created(st, in, t);
	Subscription r = in;
	r.dialog.remote_cseq = 2;
	r.dialog.remote_target = "sip:moved@10.0.0.2:5060";
	r.expires_at = in.expires_at + 600;
	bool send_now = true;
	ASSERT_EQ(st.refresh(r, false, t + 1, send_now), Outcome::Ok);
	EXPECT_FALSE(send_now);
	EXPECT_EQ(r.sid, in.sid);  // filled from the store
	EXPECT_EQ(r.expires_at, in.expires_at + 600);
	EXPECT_EQ(r.dialog.remote_target, "sip:moved@10.0.0.2:5060");
	EXPECT_EQ(r.cseq, 1u);

	Batch b = st.complete(res, in.sid, 1, 200, false, true, t + 2);
	ASSERT_EQ(b.send.size(), 1u);
	EXPECT_EQ(b.send[0].version, 1u);
	EXPECT_EQ(b.send[0].cseq, 2u);
	EXPECT_EQ(b.send[0].expires_at, in.expires_at + 600);
	EXPECT_EQ(b.send[0].dialog.remote_target, "sip:moved@10.0.0.2:5060");
	EXPECT_EQ(b.send[0].dialog.remote_cseq, 2);
}

TEST_F(SubsStoreTest, RefreshRemoveWhileIdleOwesFinalAtOnce)
{
	Store st(*redis_, keys_, kBusy);
	const std::string res = "alice@example.com";
	const long long t = wall_ms();
	Subscription in = make_sub(res, "a1");
	created_idle(st, in, t);
	Subscription r = in;
	r.dialog.remote_cseq = 2;
	bool send_now = false;
	ASSERT_EQ(st.refresh(r, true, t + 5, send_now), Outcome::Ok);
	EXPECT_TRUE(send_now);
	EXPECT_TRUE(r.owes_final);
	EXPECT_EQ(r.ending, "timeout");
	EXPECT_EQ(r.version, 1u);
	EXPECT_EQ(r.cseq, 2u);
	EXPECT_EQ(st.count(), 0);
	EXPECT_EQ(st.resource_of(in.sid), "");
	EXPECT_TRUE(st.of(res, "").empty());
	r = in;
	r.dialog.remote_cseq = 3;
	EXPECT_EQ(st.refresh(r, false, t + 6, send_now), Outcome::NoSuchDialog);
}

TEST_F(SubsStoreTest, RefreshRemoveWhileBusyWaitsForTheOutstandingNotify)
{
	Store st(*redis_, keys_, kBusy);
	const std::string res = "alice@example.com";
	const long long t = wall_ms();
	Subscription in = make_sub(res, "a1");
	created(st, in, t);
	Subscription r = in;
	r.dialog.remote_cseq = 2;
	bool send_now = true;
	ASSERT_EQ(st.refresh(r, true, t + 1, send_now), Outcome::Ok);
	EXPECT_FALSE(send_now);  // the final NOTIFY waits for NOTIFY 1's answer

	// meanwhile the dialog is ending: another refresh finds no subscription
	Subscription again = in;
	again.dialog.remote_cseq = 3;
	EXPECT_EQ(st.refresh(again, false, t + 2, send_now), Outcome::NoSuchDialog);

	Batch b = st.complete(res, in.sid, 1, 200, false, true, t + 3);
	EXPECT_TRUE(b.send.empty());
	ASSERT_EQ(b.removed.size(), 1u);
	EXPECT_EQ(b.removed[0].sid, in.sid);
	EXPECT_TRUE(b.removed[0].owes_final);
	EXPECT_EQ(b.removed[0].ending, "timeout");
	EXPECT_EQ(b.removed[0].version, 1u);
	EXPECT_EQ(b.removed[0].cseq, 2u);
	EXPECT_EQ(st.count(), 0);
	EXPECT_EQ(st.resource_of(in.sid), "");
	again.dialog.remote_cseq = 4;
	EXPECT_EQ(st.refresh(again, false, t + 4, send_now), Outcome::NoSuchDialog);
}

// ---- 5. expire ----------------------------------------------------------------------------

TEST_F(SubsStoreTest, ExpireRemovesExpiredOwingFinalAndKeepsTheRest)
{
	Store st(*redis_, keys_, kBusy);
	const std::string res = "alice@example.com";
	const long long t = wall_ms(), now = wall_s();
	Subscription act = created_idle(st, make_sub(res, "e1", "presence", now - 10), t);
	Subscription pend_in = make_sub(res, "e2", "presence", now - 5);
	pend_in.status = "pending";
	Subscription pend = created_idle(st, pend_in, t);
	Subscription live = created_idle(st, make_sub(res, "e3", "presence", now + 3600), t);

	Batch b = st.expire(now, 100);
	EXPECT_EQ(b.errors, 0);
	EXPECT_TRUE(b.send.empty());
	ASSERT_EQ(b.removed.size(), 2u);
	const Subscription *a = find_sid(b.removed, act.sid);
	const Subscription *p = find_sid(b.removed, pend.sid);
	ASSERT_TRUE(a && p);
	EXPECT_TRUE(a->owes_final);
	EXPECT_EQ(a->ending, "timeout");
	EXPECT_EQ(a->version, 1u);
	EXPECT_EQ(a->cseq, 2u);
	EXPECT_TRUE(p->owes_final);
	EXPECT_EQ(p->ending, "giveup");
	EXPECT_EQ(st.count(), 1);
	EXPECT_EQ(st.resource_of(act.sid), "");
	EXPECT_EQ(st.resource_of(live.sid), res);
	auto recs = st.of(res, "presence");
	ASSERT_EQ(recs.size(), 1u);
	EXPECT_EQ(recs[0].sid, live.sid);
	// nothing more to expire now; the bucket points at the remaining one's expiry
	EXPECT_TRUE(st.expire(now, 100).removed.empty());
	EXPECT_EQ(bucket_score("sexp", res), now + 3600);
}

TEST_F(SubsStoreTest, ExpireWhileNotifyOutstandingSendsFinalAfterIt)
{
	Store st(*redis_, keys_, kBusy);
	const std::string res = "alice@example.com";
	const long long t = wall_ms(), now = wall_s();
	Subscription s = created(st, make_sub(res, "e1", "presence", now - 1), t);  // NOTIFY 1 outstanding
	Batch b = st.expire(now, 100);
	EXPECT_TRUE(b.removed.empty());
	EXPECT_TRUE(b.send.empty());
	b = st.complete(res, s.sid, 1, 200, false, true, wall_ms());
	ASSERT_EQ(b.removed.size(), 1u);
	EXPECT_TRUE(b.removed[0].owes_final);
	EXPECT_EQ(b.removed[0].ending, "timeout");
	EXPECT_EQ(b.removed[0].cseq, 2u);
	EXPECT_EQ(st.count(), 0);
}

TEST_F(SubsStoreTest, ExpireHonoursLimitAndFixesTheBucketIndex)
{
	Store st(*redis_, keys_, kBusy);
	const std::string res = "dave@example.com";
	const long long t = wall_ms(), now = wall_s();
	std::vector<std::string> order;  // by expiry
	for (int i = 0; i < 5; ++i) {
		Subscription s = created_idle(st, make_sub(res, "l" + std::to_string(i), "presence", now - 50 + 10 * i), t);
		order.push_back(s.sid);
	}
	Subscription later = created_idle(st, make_sub(res, "later", "presence", now + 100), t);
	EXPECT_EQ(bucket_score("sexp", res), now - 50);

	Batch b = st.expire(now, 2);
	EXPECT_EQ(sids_of(b.removed), (std::set<std::string>{order[0], order[1]}));
	EXPECT_EQ(bucket_score("sexp", res), now - 30);  // the next one, still due
	b = st.expire(now, 2);
	EXPECT_EQ(sids_of(b.removed), (std::set<std::string>{order[2], order[3]}));
	b = st.expire(now, 10);
	EXPECT_EQ(sids_of(b.removed), (std::set<std::string>{order[4]}));
	EXPECT_EQ(bucket_score("sexp", res), now + 100);
	EXPECT_TRUE(st.expire(now + 99, 10).removed.empty());
	EXPECT_EQ(st.count(), 1);

	// a later run finds the remaining one; then the resource leaves the bucket
	b = st.expire(now + 100, 10);
	EXPECT_EQ(sids_of(b.removed), (std::set<std::string>{later.sid}));
	EXPECT_EQ(bucket_score("sexp", res), -1);
	EXPECT_EQ(st.count(), 0);
}

TEST_F(SubsStoreTest, ExpireManyResourcesAcrossBuckets)
{
	Store st(*redis_, keys_, kBusy);
	const long long t = wall_ms(), now = wall_s();
	std::set<std::string> expired, remaining;
	std::set<int> buckets;
	for (int i = 0; i < 40; ++i) {
		const std::string res = "user" + std::to_string(i) + "@example.com";
		buckets.insert(keys_.bucket_of(res));
		expired.insert(created_idle(st, make_sub(res, "x" + std::to_string(i), "presence", now - 1 - i % 7), t).sid);
		remaining.insert(created_idle(st, make_sub(res, "y" + std::to_string(i), "presence", now + 60 + i), t).sid);
	}
	EXPECT_GE(buckets.size(), 8u);
	EXPECT_EQ(st.count(), 80);

	Batch first = st.expire(now, 15);
	EXPECT_EQ(first.removed.size(), 15u);
	Batch rest = st.expire(now, 1000);
	EXPECT_EQ(rest.removed.size(), 25u);
	std::set<std::string> got = sids_of(first.removed);
	for (const auto &s : rest.removed) EXPECT_TRUE(got.insert(s.sid).second) << "removed twice";
	EXPECT_EQ(got, expired);
	for (const auto &s : first.removed) EXPECT_TRUE(s.owes_final);
	EXPECT_EQ(st.count(), 40);
	EXPECT_TRUE(st.expire(now, 1000).removed.empty());

	// every bucket was fixed up to the remaining subscriptions' expiry
	Batch late = st.expire(now + 60 + 39, 1000);
	EXPECT_EQ(sids_of(late.removed), remaining);
	EXPECT_EQ(st.count(), 0);
	for (int n = 0; n < keys_.buckets(); ++n)
		EXPECT_EQ(reply_int(redis_->command({"ZCARD", keys_.bucket("sexp", n)}).get()), 0) << "bucket " << n;
}

// ---- 6. due -------------------------------------------------------------------------------

TEST_F(SubsStoreTest, DueSendsDeferredNotifyAfterTheBusyDeadline)
{
	Store st(*redis_, keys_, 50);
	const std::string res = "alice@example.com";
	const long long t = wall_ms();
	Subscription s = created(st, make_sub(res, "d1"), t);
	Batch b = st.turn(res, {s.sid}, "", 0, t + 1);
	EXPECT_TRUE(b.send.empty());
	EXPECT_EQ(b.due_ms, t + 50);
	EXPECT_EQ(bucket_score("due", res), t + 50);
	EXPECT_TRUE(st.due(t + 10, 100).send.empty());  // not yet

	std::this_thread::sleep_for(std::chrono::milliseconds(120));
	b = st.due(wall_ms(), 100);  // NOTIFY 1 never answered: the newest state goes anyway
	EXPECT_EQ(b.errors, 0);
	ASSERT_EQ(b.send.size(), 1u);
	EXPECT_EQ(b.send[0].sid, s.sid);
	EXPECT_EQ(b.send[0].version, 1u);
	EXPECT_EQ(b.send[0].cseq, 2u);
	EXPECT_EQ(bucket_score("due", res), -1);
	// the late answer to NOTIFY 1 is stale now
	b = st.complete(res, s.sid, 1, 200, false, true, wall_ms());
	EXPECT_TRUE(b.send.empty());
	EXPECT_TRUE(b.removed.empty());
	EXPECT_TRUE(st.due(wall_ms() + 100000, 100).send.empty());
}

TEST_F(SubsStoreTest, DueSendsCoalescedNotifyAfterTheInterval)
{
	Store st(*redis_, keys_, kBusy);
	const std::string res = "alice@example.com";
	const long long t = wall_ms();
	Subscription s = created_idle(st, make_sub(res, "i1"), t);
	Batch b = st.turn(res, {s.sid}, "", 1000, t + 1001);  // long after the initial NOTIFY: at once
	ASSERT_EQ(b.send.size(), 1u);
	EXPECT_EQ(b.send[0].cseq, 2u);
	const long long last = t + 1001;
	EXPECT_EQ(b.send[0].last_notify_ms, last);
	b = st.complete(res, s.sid, 2, 200, false, true, last + 10);
	EXPECT_TRUE(b.send.empty());

	b = st.turn(res, {s.sid}, "", 1000, last + 20);  // too soon after the previous one
	EXPECT_TRUE(b.send.empty());
	EXPECT_EQ(b.due_ms, last + 1000);
	EXPECT_EQ(bucket_score("due", res), last + 1000);
	b = st.turn(res, {s.sid}, "", 1000, last + 30);  // coalesced into the same one
	EXPECT_TRUE(b.send.empty());
	EXPECT_EQ(b.due_ms, last + 1000);
	EXPECT_TRUE(st.due(last + 999, 100).send.empty());

	b = st.due(last + 1000, 100);
	ASSERT_EQ(b.send.size(), 1u) << "due(now_ms) must judge the deferred NOTIFY by now_ms";
	EXPECT_EQ(b.send[0].version, 2u);
	EXPECT_EQ(b.send[0].cseq, 3u);
	EXPECT_EQ(b.send[0].last_notify_ms, last + 1000);
}

// interval_ms: "not sooner than that after the previous one" also when the previous one is
// still outstanding at the turn and answered quickly
TEST_F(SubsStoreTest, IntervalHoldsWhenThePreviousNotifyIsAnsweredSoon)
{
	Store st(*redis_, keys_, kBusy);
	const std::string res = "alice@example.com";
	const long long t = wall_ms();
	Subscription s = created_idle(st, make_sub(res, "i2"), t);
	Batch b = st.turn(res, {s.sid}, "", 0, t + 10);
	ASSERT_EQ(b.send.size(), 1u);
	const long long last = t + 10;
	b = st.turn(res, {s.sid}, "", 1000, last + 5);  // NOTIFY 2 outstanding
	EXPECT_TRUE(b.send.empty());
	b = st.complete(res, s.sid, 2, 200, false, true, last + 20);
	EXPECT_TRUE(b.send.empty()) << "sent " << 20 << " ms after the previous one, interval 1000";
	EXPECT_EQ(b.due_ms, last + 1000);
}

// the same when the previous one is never answered: its busy deadline passing (due) does not
// let the deferred NOTIFY out before the interval is over
TEST_F(SubsStoreTest, IntervalHoldsWhenThePreviousNotifyIsNeverAnswered)
{
	Store st(*redis_, keys_, 50);
	const std::string res = "alice@example.com";
	const long long t = wall_ms();
	Subscription s = created_idle(st, make_sub(res, "i3"), t);
	Batch b = st.turn(res, {s.sid}, "", 0, t + 2);
	ASSERT_EQ(b.send.size(), 1u);
	const long long last = t + 2;
	b = st.turn(res, {s.sid}, "", 5000, last + 1);  // NOTIFY 2 outstanding
	EXPECT_TRUE(b.send.empty());
	std::this_thread::sleep_for(std::chrono::milliseconds(120));
	b = st.due(wall_ms(), 100);  // NOTIFY 2's busy deadline has passed, the interval has not
	EXPECT_TRUE(b.send.empty()) << "sent about 120 ms after the previous one, interval 5000";
	EXPECT_EQ(bucket_score("due", res), last + 5000);
}

// ---- 7. take, resource_of, count ----------------------------------------------------------

TEST_F(SubsStoreTest, TakeFinalWhenIdleOwesFinal)
{
	Store st(*redis_, keys_, kBusy);
	const std::string res = "alice@example.com";
	const long long t = wall_ms();
	Subscription s = created_idle(st, make_sub(res, "k1"), t);
	Batch out;
	ASSERT_TRUE(st.take(res, s.sid, "rejected", true, t + 5, out));
	EXPECT_TRUE(out.send.empty());
	ASSERT_EQ(out.removed.size(), 1u);
	EXPECT_EQ(out.removed[0].sid, s.sid);
	EXPECT_TRUE(out.removed[0].owes_final);
	EXPECT_EQ(out.removed[0].ending, "rejected");
	EXPECT_EQ(out.removed[0].version, 1u);
	EXPECT_EQ(out.removed[0].cseq, 2u);
	EXPECT_EQ(st.count(), 0);
	EXPECT_EQ(st.resource_of(s.sid), "");
	Batch again;
	EXPECT_FALSE(st.take(res, s.sid, "rejected", true, t + 6, again));
	EXPECT_TRUE(again.removed.empty());
}

TEST_F(SubsStoreTest, TakeWithoutFinalRemovesAtOnce)
{
	Store st(*redis_, keys_, kBusy);
	const std::string res = "alice@example.com";
	const long long t = wall_ms();
	Subscription s = created(st, make_sub(res, "k2"), t);  // busy: no matter without a final NOTIFY
	Batch out;
	ASSERT_TRUE(st.take(res, s.sid, "deactivated", false, t + 1, out));
	ASSERT_EQ(out.removed.size(), 1u);
	EXPECT_EQ(out.removed[0].sid, s.sid);
	EXPECT_FALSE(out.removed[0].owes_final);
	EXPECT_EQ(out.removed[0].ending, "deactivated");
	EXPECT_EQ(out.removed[0].cseq, 1u);  // no numbers handed out
	EXPECT_EQ(st.count(), 0);
	EXPECT_EQ(st.resource_of(s.sid), "");
}

TEST_F(SubsStoreTest, TakeUnknownIsFalse)
{
	Store st(*redis_, keys_, kBusy);
	Batch out;
	EXPECT_FALSE(st.take("alice@example.com", "nosuchsid", "rejected", true, wall_ms(), out));
	EXPECT_TRUE(out.removed.empty());
	EXPECT_TRUE(out.send.empty());
}

TEST_F(SubsStoreTest, TakeFinalWhileBusyWaitsForTheOutstandingNotify)
{
	Store st(*redis_, keys_, 50);
	const std::string res = "alice@example.com";
	const long long t = wall_ms();
	Subscription s = created(st, make_sub(res, "k3"), t);
	Batch out;
	ASSERT_TRUE(st.take(res, s.sid, "rejected", true, t + 1, out));
	EXPECT_TRUE(out.removed.empty());
	EXPECT_EQ(out.due_ms, t + 50);
	std::this_thread::sleep_for(std::chrono::milliseconds(120));
	Batch b = st.due(wall_ms(), 100);  // NOTIFY 1 never answered
	ASSERT_EQ(b.removed.size(), 1u);
	EXPECT_TRUE(b.removed[0].owes_final);
	EXPECT_EQ(b.removed[0].ending, "rejected");
	EXPECT_EQ(b.removed[0].cseq, 2u);
	EXPECT_EQ(st.count(), 0);
	EXPECT_EQ(st.resource_of(s.sid), "");
}

TEST_F(SubsStoreTest, ResourceOfAndCount)
{
	Store st(*redis_, keys_, kBusy);
	const long long t = wall_ms();
	EXPECT_EQ(st.count(), 0);
	Subscription a1 = created(st, make_sub("alice@example.com", "c1"), t);
	Subscription a2 = created(st, make_sub("alice@example.com", "c2", "presence.winfo"), t);
	Subscription b1 = created(st, make_sub("bob@example.com", "c3"), t);
	EXPECT_EQ(st.count(), 3);
	EXPECT_EQ(st.resource_of(a1.sid), "alice@example.com");
	EXPECT_EQ(st.resource_of(a2.sid), "alice@example.com");
	EXPECT_EQ(st.resource_of(b1.sid), "bob@example.com");
	EXPECT_EQ(st.resource_of("nosuchsid"), "");
	Batch out;
	ASSERT_TRUE(st.take("alice@example.com", a1.sid, "deactivated", false, t + 1, out));
	EXPECT_EQ(st.resource_of(a1.sid), "");
	EXPECT_EQ(st.resource_of(a2.sid), "alice@example.com");
	EXPECT_EQ(st.count(), 2);
}

// ---- 9. keys ------------------------------------------------------------------------------

TEST(SubsKeys, EveryKeyOfAResourceSharesItsHashTag)
{
	Keys k("t:subs");
	const std::string res = "alice@example.com";
	std::vector<std::string> keys = {k.subs(res), k.sexp(res), k.due(res), k.lease(res), k.resource(res, "reg"),
			k.resource(res, "bindings")};
	std::set<std::string> distinct(keys.begin(), keys.end());
	EXPECT_EQ(distinct.size(), keys.size());
	for (const auto &key : keys) {
		EXPECT_EQ(key.rfind("t:subs:", 0), 0u) << key;
		EXPECT_EQ(hash_tag(key), res) << key;
	}
	EXPECT_EQ(k.subs(res), "t:subs:{alice@example.com}:subs");
	EXPECT_NE(hash_tag(k.subs("bob@example.com")), hash_tag(k.subs(res)));
	// braces in a resource never cut its tag short
	const std::string odd = "a{b}c@example.com";
	const std::string tag = hash_tag(k.subs(odd));
	EXPECT_FALSE(tag.empty());
	EXPECT_EQ(hash_tag(k.sexp(odd)), tag);
	EXPECT_EQ(hash_tag(k.due(odd)), tag);
	EXPECT_NE(tag, hash_tag(k.subs("a@example.com")));
}

TEST(SubsKeys, BucketsDifferAndEachHasItsOwnHashTag)
{
	Keys k("t:subs", 16);
	EXPECT_EQ(k.buckets(), 16);
	std::set<std::string> names, tags;
	for (const char *kind : {"sexp", "due", "sid"}) {
		for (int n = 0; n < k.buckets(); ++n) {
			const std::string b = k.bucket(kind, n);
			EXPECT_EQ(b.rfind("t:subs:", 0), 0u) << b;
			EXPECT_TRUE(names.insert(b).second) << b;
			const std::string tag = hash_tag(b);
			EXPECT_FALSE(tag.empty()) << b;
			EXPECT_TRUE(tags.insert(tag).second) << b;
			EXPECT_NE(tag, hash_tag(k.subs("alice@example.com")));
		}
	}
	EXPECT_EQ(names.size(), 48u);
	EXPECT_EQ(tags.size(), 48u);
	std::set<int> used;
	for (int i = 0; i < 200; ++i) {
		int n = k.bucket_of("user" + std::to_string(i) + "@example.com");
		EXPECT_GE(n, 0);
		EXPECT_LT(n, 16);
		used.insert(n);
	}
	EXPECT_GE(used.size(), 12u);
	EXPECT_EQ(k.bucket_of("alice@example.com"), Keys("t:subs", 16).bucket_of("alice@example.com"));
}

// ---- 8. notifier --------------------------------------------------------------------------

class FakePackage : public Package {
public:
	std::string name() const override { return "test"; }
	std::vector<std::string> content_types() const override { return {"application/test+xml"}; }
	Notification full_state(const Subscription &s, long long now) override
	{
		++full_calls;
		if (!throw_for.empty() && s.watcher == throw_for) throw std::runtime_error("full_state broke");
		Notification n;
		n.body = "<test version=\"" + std::to_string(s.version) + "\" watcher=\"" + s.watcher + "\"/>";
		n.content_type = "application/test+xml";
		return n;
	}
	void ended(const Subscription &s, const std::string &reason, long long now_ms) override
	{
		ended_calls.emplace_back(s.sid, reason);
	}
	int full_calls = 0;
	std::string throw_for;  // watcher whose state cannot be built
	std::vector<std::pair<std::string, std::string>> ended_calls;
};

class RecordingDelivery : public Delivery {
public:
	bool deliver(const Outgoing &n) override
	{
		sent.push_back(n);
		return true;
	}
	std::vector<Outgoing> sent;
};

bool has_header(const std::vector<std::string> &h, const std::string &line)
{
	return std::find(h.begin(), h.end(), line) != h.end();
}

class SubsNotifierTest : public SubsRedisTest {
protected:
	void SetUp() override
	{
		SubsRedisTest::SetUp();
		make(kBusy);
	}
	void make(long long busy_ms)
	{
		notifier_.reset();
		store_ = std::make_unique<Store>(*redis_, keys_, busy_ms);
		notifier_ = std::make_unique<Notifier>(NotifierConfig{}, *store_, delivery_,
				[this](Counter c, long long d) { counts_[c] += d; });
		notifier_->add(pkg_);
	}
	Notifier::Request initial(const std::string &tag, int expires, const std::string &res = kRes)
	{
		Notifier::Request r;
		r.event = "test";
		r.has_event = true;
		r.expires = expires;
		r.in_dialog = false;
		r.sub = make_sub(res, tag, "");
		r.now = wall_s();
		r.now_ms = wall_ms();
		return r;
	}
	Notifier::Request in_dialog(const std::string &tag, int expires, long long remote_cseq,
			const std::string &res = kRes)
	{
		Notifier::Request r = initial(tag, expires, res);
		r.in_dialog = true;
		r.sub.dialog.remote_cseq = remote_cseq;
		return r;
	}
	static constexpr long long kBusy = 30000;
	static inline const std::string kRes = "alice@example.com";
	FakePackage pkg_;
	RecordingDelivery delivery_;
	std::map<Counter, long long> counts_;
	std::unique_ptr<Store> store_;
	std::unique_ptr<Notifier> notifier_;
};

TEST_F(SubsNotifierTest, InitialSubscribeAnswers200AndSendsOneNotifyOnFlush)
{
	auto req = initial("n1", 600);
	auto res = notifier_->subscribe(req, pkg_, 10);
	EXPECT_EQ(res.code, 200);
	EXPECT_TRUE(res.created);
	EXPECT_FALSE(res.removed);
	EXPECT_TRUE(has_header(res.headers, "Expires: 600"));
	EXPECT_TRUE(has_header(res.headers, "Contact: <sip:notifier@127.0.0.1:5080>"));
	EXPECT_EQ(res.sub.package, "test");
	EXPECT_EQ(res.sub.sid, req.sub.sid);
	EXPECT_EQ(store_->count(), 1);
	EXPECT_TRUE(delivery_.sent.empty());  // only after the reply went out

	notifier_->flush();
	ASSERT_EQ(delivery_.sent.size(), 1u);
	const Outgoing &n = delivery_.sent[0];
	EXPECT_EQ(n.state, "active;expires=600");
	EXPECT_EQ(n.sub.sid, req.sub.sid);
	EXPECT_EQ(n.sub.version, 0u);
	EXPECT_EQ(n.sub.cseq, 1u);
	EXPECT_EQ(n.content.content_type, "application/test+xml");
	EXPECT_NE(n.content.body.find("version=\"0\""), std::string::npos);
	EXPECT_NE(notify_headers(n).find("Subscription-State: active;expires=600\r\n"), std::string::npos);
	EXPECT_EQ(counts_[Counter::Sent], 1);
	EXPECT_EQ(counts_[Counter::Active], 1);
	notifier_->flush();
	EXPECT_EQ(delivery_.sent.size(), 1u);  // the outbox was emptied
}

TEST_F(SubsNotifierTest, AcceptNotCoveringTheContentTypeIs406)
{
	auto req = initial("n1", 600);
	req.has_accept = true;
	req.accept = {"application/pidf+xml", "text/plain"};
	auto res = notifier_->subscribe(req, pkg_, 10);
	EXPECT_EQ(res.code, 406);
	EXPECT_TRUE(has_header(res.headers, "Accept: application/test+xml"));
	EXPECT_EQ(store_->count(), 0);
	notifier_->flush();
	EXPECT_TRUE(delivery_.sent.empty());

	req.accept = {"application/*"};
	EXPECT_EQ(notifier_->subscribe(req, pkg_, 10).code, 200);
}

TEST_F(SubsNotifierTest, ExpiresBelowMinimumIs423)
{
	auto req = initial("n1", 10);
	auto res = notifier_->subscribe(req, pkg_, 10);
	EXPECT_EQ(res.code, 423);
	EXPECT_TRUE(has_header(res.headers, "Min-Expires: 60"));
	EXPECT_EQ(store_->count(), 0);
	notifier_->flush();
	EXPECT_TRUE(delivery_.sent.empty());
}

TEST_F(SubsNotifierTest, ExpiresAboveMaximumIsShortened)
{
	auto res = notifier_->subscribe(initial("n1", 7200), pkg_, 10);
	EXPECT_EQ(res.code, 200);
	EXPECT_TRUE(has_header(res.headers, "Expires: 3600"));
	notifier_->flush();
	ASSERT_EQ(delivery_.sent.size(), 1u);
	EXPECT_EQ(delivery_.sent[0].state, "active;expires=3600");
}

TEST_F(SubsNotifierTest, TooManyWatchersIs403)
{
	EXPECT_EQ(notifier_->subscribe(initial("n1", 600), pkg_, 1).code, 200);
	auto res = notifier_->subscribe(initial("n2", 600), pkg_, 1);
	EXPECT_EQ(res.code, 403);
	EXPECT_EQ(store_->count(), 1);
}

// RFC 6665 4.1.2.3/4.2.1.2: a SUBSCRIBE whose Event is not the package's is 489
TEST_F(SubsNotifierTest, OtherEventPackageIs489)
{
	auto req = initial("n1", 600);
	req.event = "dialog";
	auto res = notifier_->subscribe(req, pkg_, 10);
	EXPECT_EQ(res.code, 489);
	EXPECT_EQ(store_->count(), 0);
}

TEST_F(SubsNotifierTest, FetchSendsOneTerminatedNotifyAndStoresNothing)
{
	auto req = initial("f1", 0);
	auto res = notifier_->subscribe(req, pkg_, 10);
	EXPECT_EQ(res.code, 200);
	EXPECT_TRUE(has_header(res.headers, "Expires: 0"));
	EXPECT_EQ(store_->count(), 0);
	EXPECT_EQ(store_->resource_of(req.sub.sid), "");
	notifier_->flush();
	ASSERT_EQ(delivery_.sent.size(), 1u);
	EXPECT_EQ(delivery_.sent[0].state, "terminated;reason=timeout");
	EXPECT_EQ(delivery_.sent[0].sub.cseq, 1u);
	EXPECT_NE(delivery_.sent[0].content.body.find("version=\"0\""), std::string::npos);
	EXPECT_TRUE(pkg_.ended_calls.empty());
	EXPECT_EQ(counts_[Counter::Active], 0);
}

TEST_F(SubsNotifierTest, InDialogUnsubscribeSendsTerminatedAndEnds)
{
	auto req = initial("u1", 600);
	ASSERT_EQ(notifier_->subscribe(req, pkg_, 10).code, 200);
	notifier_->flush();
	notifier_->complete(kRes, req.sub.sid, 1, 200, false, wall_ms());
	notifier_->flush();
	ASSERT_EQ(delivery_.sent.size(), 1u);

	auto res = notifier_->subscribe(in_dialog("u1", 0, 2), pkg_, 10);
	EXPECT_EQ(res.code, 200);
	EXPECT_TRUE(res.removed);
	EXPECT_TRUE(has_header(res.headers, "Expires: 0"));
	notifier_->flush();
	ASSERT_EQ(delivery_.sent.size(), 2u);
	EXPECT_EQ(delivery_.sent[1].state, "terminated;reason=timeout");
	EXPECT_EQ(delivery_.sent[1].sub.cseq, 2u);
	ASSERT_EQ(pkg_.ended_calls.size(), 1u);
	EXPECT_EQ(pkg_.ended_calls[0].first, req.sub.sid);
	EXPECT_EQ(pkg_.ended_calls[0].second, "timeout");
	EXPECT_EQ(store_->count(), 0);
	EXPECT_EQ(counts_[Counter::Active], 0);
	// the dialog is gone
	EXPECT_EQ(notifier_->subscribe(in_dialog("u1", 600, 3), pkg_, 10).code, 481);
}

TEST_F(SubsNotifierTest, InDialogUnsubscribeWhileBusySendsFinalAfterTheAnswer)
{
	auto req = initial("u2", 600);
	ASSERT_EQ(notifier_->subscribe(req, pkg_, 10).code, 200);
	notifier_->flush();
	auto res = notifier_->subscribe(in_dialog("u2", 0, 2), pkg_, 10);
	EXPECT_EQ(res.code, 200);
	EXPECT_TRUE(res.removed);
	notifier_->flush();
	EXPECT_EQ(delivery_.sent.size(), 1u);  // waits for NOTIFY 1
	EXPECT_TRUE(pkg_.ended_calls.empty());
	notifier_->complete(kRes, req.sub.sid, 1, 200, false, wall_ms());
	notifier_->flush();
	ASSERT_EQ(delivery_.sent.size(), 2u);
	EXPECT_EQ(delivery_.sent[1].state, "terminated;reason=timeout");
	EXPECT_EQ(delivery_.sent[1].sub.cseq, 2u);
	ASSERT_EQ(pkg_.ended_calls.size(), 1u);
	EXPECT_EQ(pkg_.ended_calls[0].second, "timeout");
}

// Response::created: "a new subscription (not a retransmission)"
TEST_F(SubsNotifierTest, RetransmittedInitialSubscribeIsNotNew)
{
	auto req = initial("rt", 600);
	auto first = notifier_->subscribe(req, pkg_, 10);
	EXPECT_EQ(first.code, 200);
	EXPECT_TRUE(first.created);
	notifier_->flush();
	auto again = notifier_->subscribe(req, pkg_, 10);  // NOTIFY 1 still outstanding
	EXPECT_EQ(again.code, 200);
	EXPECT_FALSE(again.created);
	EXPECT_EQ(counts_[Counter::Active], 1);
	EXPECT_EQ(store_->count(), 1);
}

TEST(SubsNotifyHeaders, EventIdStateContactTypeAndExtrasEachCrlfTerminated)
{
	Outgoing n;
	n.sub = make_sub("alice@example.com", "h1", "test");
	n.sub.dialog.event_id = "7";
	n.sub.cseq = 4;
	n.state = "active;expires=100";
	n.content.content_type = "application/test+xml";
	n.content.body = "<test/>";
	n.content.headers = {"Require: eventlist", "X-Extra: yes"};
	const std::string h = notify_headers(n);
	EXPECT_EQ(h,
			"Event: test;id=7\r\n"
			"Subscription-State: active;expires=100\r\n"
			"Contact: <sip:notifier@127.0.0.1:5080>\r\n"
			"Content-Type: application/test+xml\r\n"
			"Require: eventlist\r\n"
			"X-Extra: yes\r\n");
	// every line ends in CRLF, no bare LF or CR
	ASSERT_GE(h.size(), 2u);
	EXPECT_EQ(h.substr(h.size() - 2), "\r\n");
	for (size_t i = 0; i < h.size(); ++i) {
		if (h[i] == '\n') {
			EXPECT_TRUE(i > 0 && h[i - 1] == '\r') << i;
		}
		if (h[i] == '\r') {
			EXPECT_TRUE(i + 1 < h.size() && h[i + 1] == '\n') << i;
		}
	}

	// no id, no body: neither ;id= nor Content-Type
	n.sub.dialog.event_id.clear();
	n.content = Notification{};
	n.state = "terminated;reason=timeout";
	EXPECT_EQ(notify_headers(n),
			"Event: test\r\n"
			"Subscription-State: terminated;reason=timeout\r\n"
			"Contact: <sip:notifier@127.0.0.1:5080>\r\n");

	// the request as the shim's tm sender takes it
	n.content.body = "<b/>";
	std::string headers;
	imps_request_t r = notify_request(n, headers);
	EXPECT_EQ(imps::to_string(r.method), "NOTIFY");
	EXPECT_EQ(imps::to_string(r.headers), headers);
	EXPECT_EQ(headers, notify_headers(n));
	EXPECT_EQ(r.cseq, 4u);
	EXPECT_EQ(imps::to_string(r.body), "<b/>");
	EXPECT_EQ(imps::to_string(r.sid), n.sub.sid);
	EXPECT_EQ(imps::to_string(r.resource), "alice@example.com");
	EXPECT_EQ(imps::to_string(r.dialog.callid), n.sub.dialog.callid);
	EXPECT_EQ(imps::to_string(r.dialog.remote_target), n.sub.dialog.remote_target);
	EXPECT_EQ(r.dialog.in_dialog, 1);
}

TEST_F(SubsNotifierTest, TickAfterExpirySendsFinalNotifyAndEnds)
{
	auto req = initial("t1", 60);
	ASSERT_EQ(notifier_->subscribe(req, pkg_, 10).code, 200);
	notifier_->flush();
	notifier_->complete(kRes, req.sub.sid, 1, 200, false, wall_ms());
	delivery_.sent.clear();

	notifier_->tick(req.now + 30, wall_ms());
	EXPECT_TRUE(delivery_.sent.empty());
	EXPECT_TRUE(pkg_.ended_calls.empty());

	notifier_->tick(req.now + 61, wall_ms());
	ASSERT_EQ(delivery_.sent.size(), 1u);
	EXPECT_EQ(delivery_.sent[0].state, "terminated;reason=timeout");
	EXPECT_EQ(delivery_.sent[0].sub.sid, req.sub.sid);
	EXPECT_EQ(delivery_.sent[0].sub.cseq, 2u);
	ASSERT_EQ(pkg_.ended_calls.size(), 1u);
	EXPECT_EQ(pkg_.ended_calls[0].first, req.sub.sid);
	EXPECT_EQ(pkg_.ended_calls[0].second, "timeout");
	EXPECT_EQ(store_->count(), 0);
	EXPECT_EQ(counts_[Counter::Active], 0);
	EXPECT_EQ(counts_[Counter::TimerErrors], 0);
}

TEST_F(SubsNotifierTest, TimerBatchGoesOnWhenOneFullStateThrows)
{
	make(50);
	auto good = initial("good", 600), bad = initial("bad", 600);
	ASSERT_EQ(notifier_->subscribe(good, pkg_, 10).code, 200);
	ASSERT_EQ(notifier_->subscribe(bad, pkg_, 10).code, 200);
	notifier_->flush();
	ASSERT_EQ(delivery_.sent.size(), 2u);
	delivery_.sent.clear();
	// both change while their initial NOTIFYs are outstanding (never answered)
	Batch b = store_->turn(kRes, {good.sub.sid, bad.sub.sid}, "", 0, wall_ms());
	EXPECT_TRUE(b.send.empty());
	std::this_thread::sleep_for(std::chrono::milliseconds(120));

	pkg_.throw_for = bad.sub.watcher;
	const long long now = wall_s();
	notifier_->tick(now, wall_ms());
	EXPECT_EQ(counts_[Counter::TimerErrors], 1);
	ASSERT_EQ(delivery_.sent.size(), 1u);
	EXPECT_EQ(delivery_.sent[0].sub.sid, good.sub.sid);
	EXPECT_EQ(delivery_.sent[0].sub.cseq, 2u);
	EXPECT_EQ(delivery_.sent[0].state, "active;expires=" + std::to_string(good.now + 600 - now));
}

TEST_F(SubsNotifierTest, ExpiryBatchGoesOnWhenOneFinalStateThrows)
{
	auto good = initial("good", 60), bad = initial("bad", 60);
	ASSERT_EQ(notifier_->subscribe(good, pkg_, 10).code, 200);
	ASSERT_EQ(notifier_->subscribe(bad, pkg_, 10).code, 200);
	notifier_->flush();
	notifier_->complete(kRes, good.sub.sid, 1, 200, false, wall_ms());
	notifier_->complete(kRes, bad.sub.sid, 1, 200, false, wall_ms());
	delivery_.sent.clear();

	pkg_.throw_for = bad.sub.watcher;
	notifier_->tick(good.now + 61, wall_ms());
	EXPECT_EQ(counts_[Counter::TimerErrors], 1);
	ASSERT_EQ(delivery_.sent.size(), 1u);
	EXPECT_EQ(delivery_.sent[0].sub.sid, good.sub.sid);
	EXPECT_EQ(delivery_.sent[0].state, "terminated;reason=timeout");
	EXPECT_EQ(store_->count(), 0);
	bool good_ended = false;
	for (const auto &e : pkg_.ended_calls) good_ended = good_ended || e.first == good.sub.sid;
	EXPECT_TRUE(good_ended);
}

// Package::ended "runs after the store removed it": also when its final NOTIFY could not be
// built (the record is gone either way; watcher info and accounting must learn of it)
TEST_F(SubsNotifierTest, EndedRunsEvenWhenTheFinalNotifyCannotBeBuilt)
{
	auto bad = initial("bad", 60);
	ASSERT_EQ(notifier_->subscribe(bad, pkg_, 10).code, 200);
	notifier_->flush();
	notifier_->complete(kRes, bad.sub.sid, 1, 200, false, wall_ms());
	pkg_.throw_for = bad.sub.watcher;
	notifier_->tick(bad.now + 61, wall_ms());
	EXPECT_EQ(store_->count(), 0);
	ASSERT_EQ(pkg_.ended_calls.size(), 1u);
	EXPECT_EQ(pkg_.ended_calls[0].first, bad.sub.sid);
}

}  // namespace
