// The reg event notifier against a recording fake Host and the real Redis store (a private
// redis-server on a free port). Every NOTIFY body is validated against the RFC schemas and
// read back field by field.
#include "imps_reginfo/core/engine.hpp"

#include "imps/redis.hpp"

#include "../common/redis_server.hpp"
#include "schema_check.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>

using namespace imps::reginfo;
using imps::Redis;
using imps::RedisConfig;
using imps::test::ParsedXml;
using imps::test::RedisServer;
using imps::test::Reginfo;
using imps::test::SchemaValid;

namespace {

constexpr long long kNow = 4000000000LL;  // fixed unix time, safely in Redis's future
const std::string kAlice = "alice@a.example";
const std::string kBob = "bob@a.example";
const std::string kInstance = "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";

class FakeHost : public Host {
public:
	struct Notify {
		Subscription sub;
		std::string body;
		std::string state;
	};

	bool send_notify(const Subscription &s, const std::string &body, const std::string &state) override
	{
		sent.push_back({s, body, state});
		return send_ok;
	}
	bool get_bindings(const std::string &aor, std::vector<Binding> &out) override
	{
		lookups.push_back(aor);
		auto it = records.find(aor);
		if (it == records.end()) return false;
		out = it->second;
		return true;
	}
	void stat(Stat which, long long delta) override { stats[which] += delta; }
	long long st(Stat which) const
	{
		auto it = stats.find(which);
		return it == stats.end() ? 0 : it->second;
	}

	std::vector<Notify> sent;
	std::vector<std::string> lookups;
	std::map<std::string, std::vector<Binding>> records;  // usrloc: aor -> bindings
	std::map<Stat, long long> stats;
	bool send_ok = true;
};

Binding binding(const std::string &uri, long long expires_at, const std::string &callid = "reg-call-1",
		long long cseq = 1)
{
	Binding b;
	b.uri = uri;
	b.callid = callid;
	b.expires_at = expires_at;
	b.cseq = cseq;
	return b;
}

std::optional<std::string> A(xmlNodePtr n, const char *name) { return ParsedXml::attr(n, name); }

std::optional<std::string> header(const SubscribeResponse &r, const std::string &name)
{
	for (const auto &h : r.headers)
		if (h.compare(0, name.size() + 1, name + ":") == 0) {
			std::string v = h.substr(name.size() + 1);
			while (!v.empty() && v.front() == ' ') v.erase(0, 1);
			return v;
		}
	return std::nullopt;
}

class EngineTest : public ::testing::Test {
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
		store_ = make_redis_store(*redis_, "imps:reginfo");
		make_engine(Config{});
	}

	Engine &make_engine(Config cfg)
	{
		engine_ = std::make_unique<Engine>(std::move(cfg), *store_, host_);
		return *engine_;
	}

	// An initial SUBSCRIBE for Event: reg from `watcher` to `aor`.
	static SubscribeRequest initial(const std::string &aor, const std::string &watcher, int expires,
			const std::string &tag = "1", long long now = kNow)
	{
		SubscribeRequest r;
		r.has_event = true;
		r.event = "reg";
		r.has_accept = true;
		r.accept = {"application/reginfo+xml"};
		r.expires = expires;
		r.aor = aor;
		r.watcher = watcher;
		r.in_dialog = false;
		r.now = now;
		Subscription &d = r.dialog;
		d.callid = "sub-call-" + tag;
		d.remote_tag = "from-" + tag;
		d.local_tag = "to-" + tag;
		d.remote_uri = "sip:" + watcher;
		d.local_uri = "sip:" + aor;
		d.remote_target = "sip:" + tag + "@127.0.0.50:5060";
		d.route_set = "<sip:edge.a.example;lr>";
		d.socket = "udp:127.0.0.1:5070";
		d.local_contact = "sip:hsp.a.example:5070";
		d.remote_cseq = 1;
		return r;
	}

	static SubscribeRequest in_dialog(const SubscribeRequest &init, int expires, long long rcseq,
			long long now)
	{
		SubscribeRequest r = init;
		r.in_dialog = true;
		r.expires = expires;
		r.dialog.remote_cseq = rcseq;
		r.now = now;
		return r;
	}

	// Subscribes and flushes; returns the initial NOTIFY.
	FakeHost::Notify subscribe_ok(const SubscribeRequest &req)
	{
		SubscribeResponse res = engine_->subscribe(req);
		EXPECT_EQ(res.code, 200) << res.reason;
		EXPECT_TRUE(res.notify);
		size_t before = host_.sent.size();
		engine_->flush();
		EXPECT_EQ(host_.sent.size(), before + 1);
		return host_.sent.empty() ? FakeHost::Notify{} : host_.sent.back();
	}

	// usrloc: set the record and report the change.
	void change(const std::string &aor, const Binding &b, Change ch, Cause cause,
			const std::vector<Binding> &current, long long now, const std::string &admin_event = "")
	{
		host_.records[aor] = current;
		engine_->binding_changed(aor, b, ch, cause, admin_event, current, now);
	}

	static std::unique_ptr<RedisServer> server_;
	std::unique_ptr<Redis> redis_;
	std::unique_ptr<Store> store_;
	FakeHost host_;
	std::unique_ptr<Engine> engine_;
};
std::unique_ptr<RedisServer> EngineTest::server_;

#define EXPECT_VALID_BODY(n) EXPECT_TRUE(SchemaValid((n).body))

}  // namespace

// --- SUBSCRIBE checks --------------------------------------------------------------------------

TEST_F(EngineTest, MissingEventIs489WithAllowEvents)
{
	SubscribeRequest r = initial(kAlice, kAlice, 600);
	r.has_event = false;
	r.event.clear();
	SubscribeResponse res = engine_->subscribe(r);
	EXPECT_EQ(res.code, 489);
	EXPECT_EQ(header(res, "Allow-Events"), "reg");
	EXPECT_FALSE(res.notify);
	engine_->flush();
	EXPECT_TRUE(host_.sent.empty());
	EXPECT_EQ(engine_->count(), 0);
}

TEST_F(EngineTest, WrongPackageIs489WithAllowEvents)
{
	for (const char *ev : {"presence", "dialog", "reginfo", "", "reg-ext", "presence;id=reg"}) {
		SubscribeRequest r = initial(kAlice, kAlice, 600);
		r.event = ev;
		SubscribeResponse res = engine_->subscribe(r);
		EXPECT_EQ(res.code, 489) << ev;
		EXPECT_EQ(header(res, "Allow-Events"), "reg") << ev;
		EXPECT_FALSE(res.notify);
	}
	engine_->flush();
	EXPECT_TRUE(host_.sent.empty());
	EXPECT_EQ(engine_->count(), 0);
}

TEST_F(EngineTest, EventWithParametersIsAccepted)
{
	SubscribeRequest r = initial(kAlice, kAlice, 600);
	r.event = " reg ;id=7";
	EXPECT_EQ(engine_->subscribe(r).code, 200);
}

TEST_F(EngineTest, AcceptWithoutReginfoIs406)
{
	SubscribeRequest r = initial(kAlice, kAlice, 600);
	r.accept = {"application/pidf+xml", "text/plain", "application/reginfo+xml-not"};
	SubscribeResponse res = engine_->subscribe(r);
	EXPECT_EQ(res.code, 406);
	EXPECT_EQ(header(res, "Accept"), "application/reginfo+xml");
	EXPECT_FALSE(res.notify);
	// An Accept header present but empty accepts nothing.
	r.accept.clear();
	EXPECT_EQ(engine_->subscribe(r).code, 406);
	engine_->flush();
	EXPECT_TRUE(host_.sent.empty());
	EXPECT_EQ(engine_->count(), 0);
}

TEST_F(EngineTest, AcceptWildcardsAndParametersAreOk)
{
	int n = 0;
	for (std::vector<std::string> acc : std::vector<std::vector<std::string>>{
				 {"*/*"}, {"application/*"}, {" Application/Reginfo+XML ; q=0.5"},
				 {"application/pidf+xml", "application/reginfo+xml"}, {"text/*", "*/*;q=0.1"}}) {
		SubscribeRequest r = initial(kAlice, kAlice, 600, "acc" + std::to_string(n++));
		r.accept = acc;
		EXPECT_EQ(engine_->subscribe(r).code, 200) << acc[0];
	}
	// No Accept header at all: application/reginfo+xml is the default.
	SubscribeRequest r = initial(kAlice, kAlice, 600, "noacc");
	r.has_accept = false;
	r.accept.clear();
	EXPECT_EQ(engine_->subscribe(r).code, 200);
	// text/* is not enough.
	SubscribeRequest t = initial(kAlice, kAlice, 600, "text");
	t.accept = {"text/*"};
	EXPECT_EQ(engine_->subscribe(t).code, 406);
}

TEST_F(EngineTest, TooBriefIs423WithMinExpires)
{
	SubscribeRequest r = initial(kAlice, kAlice, 59);
	SubscribeResponse res = engine_->subscribe(r);
	EXPECT_EQ(res.code, 423);
	EXPECT_EQ(header(res, "Min-Expires"), "60");
	EXPECT_FALSE(res.notify);
	EXPECT_EQ(engine_->count(), 0);

	Config c;
	c.min_expires = 300;
	make_engine(c);
	EXPECT_EQ(header(engine_->subscribe(initial(kAlice, kAlice, 299)), "Min-Expires"), "300");
	EXPECT_EQ(engine_->subscribe(initial(kAlice, kAlice, 300)).code, 200);  // the minimum itself is fine
}

TEST_F(EngineTest, ExpiresCappedAtMaxAndDefaultWhenAbsent)
{
	Config c;
	c.max_expires = 1800;
	c.default_expires = 900;
	make_engine(c);

	SubscribeResponse res = engine_->subscribe(initial(kAlice, kAlice, 7200, "big"));
	ASSERT_EQ(res.code, 200);
	EXPECT_EQ(header(res, "Expires"), "1800");
	engine_->flush();
	ASSERT_EQ(host_.sent.size(), 1u);
	EXPECT_EQ(host_.sent[0].state, "active;expires=1800");

	res = engine_->subscribe(initial(kAlice, kAlice, -1, "dflt"));
	ASSERT_EQ(res.code, 200);
	EXPECT_EQ(header(res, "Expires"), "900");
	engine_->flush();
	EXPECT_EQ(host_.sent.back().state, "active;expires=900");

	std::map<std::string, long long> exp;
	for (const auto &s : engine_->list(kAlice, 10)) exp[s.callid] = s.expires_at;
	EXPECT_EQ(exp["sub-call-big"], kNow + 1800);
	EXPECT_EQ(exp["sub-call-dflt"], kNow + 900);
}

TEST_F(EngineTest, UnauthorizedWatcherIs403)
{
	SubscribeResponse res = engine_->subscribe(initial(kAlice, kBob, 600));
	EXPECT_EQ(res.code, 403);
	EXPECT_FALSE(res.notify);
	engine_->flush();
	EXPECT_TRUE(host_.sent.empty());
	EXPECT_EQ(engine_->count(), 0);
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 0);
	// Not even a fetch is answered.
	EXPECT_EQ(engine_->subscribe(initial(kAlice, kBob, 0)).code, 403);
}

TEST_F(EngineTest, OwnAorMatchesCaseInsensitively)
{
	EXPECT_EQ(engine_->subscribe(initial(kAlice, "Alice@A.Example", 600)).code, 200);
}

TEST_F(EngineTest, TrustedWatcherIsAccepted)
{
	Config c;
	c.trusted_watchers = {"pcscf.a.example", "AS@a.example"};
	make_engine(c);
	EXPECT_EQ(engine_->subscribe(initial(kAlice, "pcscf.a.example", 600, "p")).code, 200);
	EXPECT_EQ(engine_->subscribe(initial(kAlice, "as@A.example", 600, "as")).code, 200);
	EXPECT_EQ(engine_->subscribe(initial(kAlice, "mallory@a.example", 600, "m")).code, 403);
	EXPECT_EQ(engine_->subscribe(initial(kAlice, "x.pcscf.a.example", 600, "x")).code, 403);
	EXPECT_EQ(engine_->count(), 2);
}

// --- initial NOTIFY -----------------------------------------------------------------------------

TEST_F(EngineTest, InitialNotifyIsQueuedUntilFlush)
{
	SubscribeResponse res = engine_->subscribe(initial(kAlice, kAlice, 600));
	ASSERT_EQ(res.code, 200);
	EXPECT_EQ(res.reason, "OK");
	EXPECT_EQ(header(res, "Expires"), "600");
	EXPECT_EQ(header(res, "Contact"), "<sip:hsp.a.example:5070>");
	EXPECT_TRUE(res.notify);
	EXPECT_TRUE(host_.sent.empty()) << "the NOTIFY must wait for the 200 to go out";
	engine_->flush();
	ASSERT_EQ(host_.sent.size(), 1u);
	engine_->flush();
	EXPECT_EQ(host_.sent.size(), 1u) << "flush sends each queued NOTIFY once";
	EXPECT_EQ(host_.st(Stat::NotifiesSent), 1);
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 1);
	EXPECT_EQ(engine_->count(), 1);
}

TEST_F(EngineTest, InitialNotifyForUnknownAorIsInit)
{
	auto n = subscribe_ok(initial(kAlice, kAlice, 600));
	EXPECT_VALID_BODY(n);
	EXPECT_EQ(n.state, "active;expires=600");
	EXPECT_EQ(n.sub.sid, subscription_id("sub-call-1", "from-1", "to-1"));
	EXPECT_EQ(n.sub.aor, kAlice);
	EXPECT_EQ(n.sub.aor_uri, "sip:" + kAlice);
	EXPECT_EQ(n.sub.watcher, kAlice);
	EXPECT_EQ(n.sub.remote_target, "sip:1@127.0.0.50:5060");
	EXPECT_EQ(n.sub.route_set, "<sip:edge.a.example;lr>");
	EXPECT_EQ(n.sub.version, 0u);
	EXPECT_EQ(n.sub.cseq, 1u);
	EXPECT_EQ(n.sub.expires_at, kNow + 600);

	Reginfo p(n.body);
	ASSERT_TRUE(p.ok());
	EXPECT_EQ(A(p.root(), "version"), "0");
	EXPECT_EQ(A(p.root(), "state"), "full");
	xmlNodePtr reg = p.node("/r:reginfo/r:registration");
	ASSERT_NE(reg, nullptr);
	EXPECT_EQ(A(reg, "aor"), "sip:" + kAlice);
	EXPECT_EQ(A(reg, "id"), registration_id(kAlice));
	EXPECT_EQ(A(reg, "state"), "init");
	EXPECT_TRUE(p.nodes("//r:contact").empty());
	EXPECT_EQ(host_.lookups, std::vector<std::string>{kAlice});
}

TEST_F(EngineTest, InitialNotifyForRecordWithoutBindingsIsTerminated)
{
	host_.records[kAlice] = {};
	auto n = subscribe_ok(initial(kAlice, kAlice, 600));
	EXPECT_VALID_BODY(n);
	Reginfo p(n.body);
	EXPECT_EQ(A(p.node("//r:registration"), "state"), "terminated");
}

TEST_F(EngineTest, InitialNotifyListsEveryBinding)
{
	Binding b1 = binding("sip:alice@127.0.0.1:5060", kNow + 300, "cid-1", 7);
	b1.q = 500;
	Binding b2 = binding("sip:alice@127.0.0.2:5060;transport=tcp", kNow + 3600, "cid-2", 3);
	b2.instance = kInstance;
	b2.reg_id = 1;
	b2.temp_gruu = "sip:tgruu.abc@a.example;gr";
	host_.records[kAlice] = {b1, b2};
	auto n = subscribe_ok(initial(kAlice, kAlice, 600));
	EXPECT_VALID_BODY(n);
	Reginfo p(n.body);
	EXPECT_EQ(A(p.node("//r:registration"), "state"), "active");
	auto cs = p.nodes("//r:contact");
	ASSERT_EQ(cs.size(), 2u);

	EXPECT_EQ(A(cs[0], "id"), contact_id(kAlice, "sip:alice@127.0.0.1:5060"));
	EXPECT_EQ(A(cs[0], "state"), "active");
	EXPECT_EQ(A(cs[0], "event"), "registered");
	EXPECT_EQ(A(cs[0], "expires"), "300");
	EXPECT_EQ(A(cs[0], "q"), "0.5");
	EXPECT_EQ(A(cs[0], "callid"), "cid-1");
	EXPECT_EQ(A(cs[0], "cseq"), "7");
	EXPECT_EQ(A(cs[0], "duration-registered"), "0");
	EXPECT_EQ(ParsedXml::text(p.node("r:uri", cs[0])), "sip:alice@127.0.0.1:5060");
	EXPECT_TRUE(p.nodes("gr:pub-gruu", cs[0]).empty());

	EXPECT_EQ(A(cs[1], "id"), contact_id(kAlice, kInstance + ";reg-id=1"));
	EXPECT_EQ(A(cs[1], "expires"), "3600");
	EXPECT_FALSE(A(cs[1], "q").has_value());
	auto ups = p.nodes("r:unknown-param", cs[1]);
	ASSERT_EQ(ups.size(), 2u);
	EXPECT_EQ(A(ups[0], "name"), "+sip.instance");
	EXPECT_EQ(ParsedXml::text(ups[0]), kInstance);
	EXPECT_EQ(A(ups[1], "name"), "reg-id");
	EXPECT_EQ(ParsedXml::text(ups[1]), "1");
	EXPECT_EQ(A(p.node("gr:pub-gruu", cs[1]), "uri"),
			"sip:alice@a.example;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6");
	xmlNodePtr tg = p.node("gr:temp-gruu", cs[1]);
	EXPECT_EQ(A(tg, "uri"), "sip:tgruu.abc@a.example;gr");
	EXPECT_EQ(A(tg, "first-cseq"), "3");
}

TEST_F(EngineTest, FetchGivesTerminatedTimeoutAndStoresNothing)
{
	host_.records[kAlice] = {binding("sip:alice@127.0.0.1", kNow + 100)};
	SubscribeResponse res = engine_->subscribe(initial(kAlice, kAlice, 0));
	ASSERT_EQ(res.code, 200);
	EXPECT_EQ(header(res, "Expires"), "0");
	engine_->flush();
	ASSERT_EQ(host_.sent.size(), 1u);
	const auto &n = host_.sent[0];
	EXPECT_EQ(n.state, "terminated;reason=timeout");
	EXPECT_EQ(n.sub.version, 0u);
	EXPECT_EQ(n.sub.cseq, 1u);
	EXPECT_VALID_BODY(n);
	Reginfo p(n.body);
	EXPECT_EQ(p.nodes("//r:contact").size(), 1u);
	EXPECT_EQ(engine_->count(), 0);
	EXPECT_TRUE(engine_->list("", 10).empty());
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 0);
	auto keys = redis_->command({"KEYS", "imps:reginfo:*"});
	EXPECT_EQ(keys->elements, 0u) << "a fetch leaves nothing in Redis";
}

// --- in-dialog SUBSCRIBE ------------------------------------------------------------------------

TEST_F(EngineTest, RefreshOfUnknownDialogIs481)
{
	SubscribeRequest r = in_dialog(initial(kAlice, kAlice, 600), 600, 2, kNow);
	SubscribeResponse res = engine_->subscribe(r);
	EXPECT_EQ(res.code, 481);
	EXPECT_FALSE(res.notify);
	engine_->flush();
	EXPECT_TRUE(host_.sent.empty());
	// Unsubscribing an unknown dialog as well.
	EXPECT_EQ(engine_->subscribe(in_dialog(initial(kAlice, kAlice, 600), 0, 2, kNow)).code, 481);
	EXPECT_EQ(engine_->count(), 0);
}

TEST_F(EngineTest, RefreshSendsNextVersionAndCseq)
{
	SubscribeRequest init = initial(kAlice, kAlice, 600);
	subscribe_ok(init);
	SubscribeRequest ref = in_dialog(init, 1200, 2, kNow + 500);
	ref.dialog.remote_target = "sip:moved@127.0.0.77:5060";
	auto n = subscribe_ok(ref);
	EXPECT_EQ(n.state, "active;expires=1200");
	EXPECT_EQ(n.sub.version, 1u);
	EXPECT_EQ(n.sub.cseq, 2u);
	EXPECT_EQ(n.sub.remote_target, "sip:moved@127.0.0.77:5060");
	EXPECT_EQ(n.sub.expires_at, kNow + 500 + 1200);
	EXPECT_VALID_BODY(n);
	Reginfo p(n.body);
	EXPECT_EQ(A(p.root(), "version"), "1");
	EXPECT_EQ(A(p.root(), "state"), "full");
	EXPECT_EQ(engine_->count(), 1);
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 1);
}

TEST_F(EngineTest, RefreshWithOldCseqIsRejected)
{
	SubscribeRequest init = initial(kAlice, kAlice, 600);
	init.dialog.remote_cseq = 5;
	subscribe_ok(init);
	SubscribeResponse res = engine_->subscribe(in_dialog(init, 600, 4, kNow + 10));
	EXPECT_EQ(res.code, 500);
	EXPECT_FALSE(res.notify);
	engine_->flush();
	EXPECT_EQ(host_.sent.size(), 1u);
}

TEST_F(EngineTest, UnsubscribeSendsTerminatedAndRemoves)
{
	SubscribeRequest init = initial(kAlice, kAlice, 600);
	subscribe_ok(init);
	ASSERT_EQ(engine_->count(), 1);
	auto n = subscribe_ok(in_dialog(init, 0, 2, kNow + 30));
	EXPECT_EQ(n.state, "terminated");
	EXPECT_EQ(n.sub.version, 1u);
	EXPECT_EQ(n.sub.cseq, 2u);
	EXPECT_VALID_BODY(n);
	EXPECT_EQ(A(Reginfo(n.body).root(), "version"), "1");
	EXPECT_EQ(engine_->count(), 0);
	EXPECT_TRUE(engine_->list(kAlice, 10).empty());
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 0);
	// A later refresh finds no dialog.
	EXPECT_EQ(engine_->subscribe(in_dialog(init, 600, 3, kNow + 40)).code, 481);
}

TEST_F(EngineTest, RefreshTooBriefIs423)
{
	SubscribeRequest init = initial(kAlice, kAlice, 600);
	subscribe_ok(init);
	EXPECT_EQ(engine_->subscribe(in_dialog(init, 10, 2, kNow + 1)).code, 423);
	EXPECT_EQ(engine_->count(), 1);
}

// --- binding changes -----------------------------------------------------------------------------

TEST_F(EngineTest, BindingChangeWithoutSubscriptionsSendsNothingButRecordsMeta)
{
	Binding b = binding("sip:alice@127.0.0.1", kNow + 3600, "cid", 4);
	b.has_msg_info = true;
	b.display_name = "Alice";
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow);
	EXPECT_TRUE(host_.sent.empty());
	auto meta = store_->bindings(kAlice);
	ASSERT_EQ(meta.size(), 1u);
	const BindingMeta &m = meta.begin()->second;
	EXPECT_EQ(meta.begin()->first, contact_id(kAlice, b.key()));
	EXPECT_EQ(m.first_registered, kNow);
	EXPECT_EQ(m.expires_at, kNow + 3600);
	EXPECT_EQ(m.first_cseq, 4);
	EXPECT_EQ(m.display_name, "Alice");
}

TEST_F(EngineTest, BindingChangeNotifiesEverySubscriptionWithIncreasingVersionAndCseq)
{
	subscribe_ok(initial(kAlice, kAlice, 600, "w1"));
	subscribe_ok(initial(kAlice, kAlice, 900, "w2"));
	subscribe_ok(initial(kBob, kBob, 600, "bob"));
	host_.sent.clear();

	Binding b1 = binding("sip:alice@127.0.0.1", kNow + 3600, "cid-1", 1);
	change(kAlice, b1, Change::Insert, Cause::Register, {b1}, kNow + 100);
	ASSERT_EQ(host_.sent.size(), 2u) << "one NOTIFY per subscription of the AoR";
	std::map<std::string, FakeHost::Notify> by_call;
	for (const auto &n : host_.sent) by_call[n.sub.callid] = n;
	ASSERT_EQ(by_call.size(), 2u);
	EXPECT_EQ(by_call["sub-call-w1"].state, "active;expires=500");
	EXPECT_EQ(by_call["sub-call-w2"].state, "active;expires=800");
	for (auto &[cid, n] : by_call) {
		EXPECT_VALID_BODY(n);
		EXPECT_EQ(n.sub.version, 1u) << cid;
		EXPECT_EQ(n.sub.cseq, 2u) << cid;
		EXPECT_EQ(n.sub.aor, kAlice);
		Reginfo p(n.body);
		EXPECT_EQ(A(p.root(), "version"), "1");
		EXPECT_EQ(A(p.root(), "state"), "full");
	}

	host_.sent.clear();
	Binding b2 = binding("sip:alice@127.0.0.2", kNow + 3600, "cid-2", 1);
	change(kAlice, b2, Change::Insert, Cause::Register, {b1, b2}, kNow + 200);
	ASSERT_EQ(host_.sent.size(), 2u);
	for (const auto &n : host_.sent) {
		EXPECT_EQ(n.sub.version, 2u);
		EXPECT_EQ(n.sub.cseq, 3u);
		EXPECT_EQ(A(Reginfo(n.body).root(), "version"), "2");
		EXPECT_EQ(Reginfo(n.body).nodes("//r:contact").size(), 2u);
	}
	EXPECT_EQ(host_.st(Stat::NotifiesSent), 3 + 2 + 2);

	// Bob's watcher saw nothing of Alice's changes; its next NOTIFY is still version 1.
	SubscribeRequest bob = initial(kBob, kBob, 600, "bob");
	auto nb = subscribe_ok(in_dialog(bob, 600, 2, kNow + 300));
	EXPECT_EQ(nb.sub.version, 1u);
	EXPECT_EQ(nb.sub.cseq, 2u);
}

TEST_F(EngineTest, FullDocumentOnRegisterRefreshAndUnregister)
{
	subscribe_ok(initial(kAlice, kAlice, 3600));
	host_.sent.clear();

	// REGISTER creates a binding: event registered, duration 0.
	Binding b = binding("sip:alice@127.0.0.1", kNow + 3600, "cid-1", 1);
	b.q = 1000;
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow);
	ASSERT_EQ(host_.sent.size(), 1u);
	{
		Reginfo p(host_.sent[0].body);
		EXPECT_VALID_BODY(host_.sent[0]);
		xmlNodePtr c = p.node("//r:contact");
		ASSERT_NE(c, nullptr);
		EXPECT_EQ(A(c, "id"), contact_id(kAlice, "sip:alice@127.0.0.1"));
		EXPECT_EQ(A(c, "state"), "active");
		EXPECT_EQ(A(c, "event"), "registered");
		EXPECT_EQ(A(c, "duration-registered"), "0");
		EXPECT_EQ(A(c, "expires"), "3600");
		EXPECT_EQ(A(c, "q"), "1.0");
		EXPECT_EQ(A(c, "callid"), "cid-1");
		EXPECT_EQ(A(c, "cseq"), "1");
		EXPECT_EQ(A(p.node("//r:registration"), "state"), "active");
	}

	// Refresh 600 s later for another hour: refreshed, duration 600.
	Binding r = b;
	r.expires_at = kNow + 600 + 3600;
	r.cseq = 2;
	change(kAlice, r, Change::Update, Cause::Register, {r}, kNow + 600);
	ASSERT_EQ(host_.sent.size(), 2u);
	{
		EXPECT_VALID_BODY(host_.sent[1]);
		Reginfo p(host_.sent[1].body);
		auto cs = p.nodes("//r:contact");
		ASSERT_EQ(cs.size(), 1u) << "the changed binding appears once";
		EXPECT_EQ(A(cs[0], "id"), contact_id(kAlice, "sip:alice@127.0.0.1"));
		EXPECT_EQ(A(cs[0], "event"), "refreshed");
		EXPECT_EQ(A(cs[0], "duration-registered"), "600");
		EXPECT_EQ(A(cs[0], "expires"), "3600");
		EXPECT_EQ(A(cs[0], "cseq"), "2");
	}

	// A refresh that moves the expiry earlier: shortened.
	Binding s = r;
	s.expires_at = kNow + 700 + 60;
	s.cseq = 3;
	change(kAlice, s, Change::Update, Cause::Register, {s}, kNow + 700);
	ASSERT_EQ(host_.sent.size(), 3u);
	{
		EXPECT_VALID_BODY(host_.sent[2]);
		Reginfo p(host_.sent[2].body);
		xmlNodePtr c = p.node("//r:contact");
		EXPECT_EQ(A(c, "event"), "shortened");
		EXPECT_EQ(A(c, "expires"), "60");
		EXPECT_EQ(A(c, "duration-registered"), "700");
	}

	// REGISTER with Expires: 0 removes it: unregistered, terminated, registration terminated.
	Binding u = s;
	u.cseq = 4;
	change(kAlice, u, Change::Delete, Cause::Register, {}, kNow + 800);
	ASSERT_EQ(host_.sent.size(), 4u);
	{
		EXPECT_VALID_BODY(host_.sent[3]);
		Reginfo p(host_.sent[3].body);
		xmlNodePtr c = p.node("//r:contact");
		ASSERT_NE(c, nullptr);
		EXPECT_EQ(A(c, "id"), contact_id(kAlice, "sip:alice@127.0.0.1"));
		EXPECT_EQ(A(c, "state"), "terminated");
		EXPECT_EQ(A(c, "event"), "unregistered");
		EXPECT_EQ(A(c, "expires"), "0");
		EXPECT_EQ(A(c, "duration-registered"), "800");
		EXPECT_EQ(A(p.node("//r:registration"), "state"), "terminated");
	}
	for (size_t i = 0; i < host_.sent.size(); ++i) {
		EXPECT_EQ(host_.sent[i].sub.version, i + 1);
		EXPECT_EQ(host_.sent[i].sub.cseq, i + 2);
		EXPECT_EQ(A(Reginfo(host_.sent[i].body).root(), "version"), std::to_string(i + 1));
	}
}

TEST_F(EngineTest, EventsForExpiryAndAdministrativeChanges)
{
	subscribe_ok(initial(kAlice, kAlice, 3600));
	Binding keep = binding("sip:alice@127.0.0.9", kNow + 3600, "cid-keep", 1);
	Binding b = binding("sip:alice@127.0.0.1", kNow + 100, "cid-1", 1);
	change(kAlice, keep, Change::Insert, Cause::Register, {keep}, kNow);
	change(kAlice, b, Change::Insert, Cause::Admin, {keep, b}, kNow);    // created
	change(kAlice, b, Change::Expire, Cause::Other, {keep}, kNow + 100);  // expired
	change(kAlice, b, Change::Insert, Cause::Other, {keep, b}, kNow + 200);
	change(kAlice, b, Change::Delete, Cause::Admin, {keep}, kNow + 300, "rejected");
	change(kAlice, b, Change::Insert, Cause::Register, {keep, b}, kNow + 400);
	change(kAlice, b, Change::Delete, Cause::Other, {keep}, kNow + 500);  // deactivated

	const std::vector<std::pair<std::string, std::string>> want = {{"registered", "active"},
			{"created", "active"}, {"expired", "terminated"}, {"created", "active"},
			{"rejected", "terminated"}, {"registered", "active"}, {"deactivated", "terminated"}};
	ASSERT_EQ(host_.sent.size(), 1 + want.size());
	const std::string bid = contact_id(kAlice, b.key()), kid = contact_id(kAlice, keep.key());
	for (size_t i = 0; i < want.size(); ++i) {
		const auto &n = host_.sent[i + 1];
		EXPECT_VALID_BODY(n);
		Reginfo p(n.body);
		xmlNodePtr c = p.node("//r:contact[@id='" + (i == 0 ? kid : bid) + "']");
		ASSERT_NE(c, nullptr) << i << n.body;
		EXPECT_EQ(A(c, "event"), want[i].first) << i;
		EXPECT_EQ(A(c, "state"), want[i].second) << i;
		if (want[i].second == "terminated") {
			EXPECT_EQ(A(c, "expires"), "0") << i;
		}
		// The other binding is still listed, and the registration stays active.
		EXPECT_EQ(A(p.node("//r:registration"), "state"), "active") << i;
		if (i > 0) {
			xmlNodePtr k = p.node("//r:contact[@id='" + kid + "']");
			ASSERT_NE(k, nullptr) << i;
			EXPECT_EQ(A(k, "state"), "active");
		}
	}
}

TEST_F(EngineTest, DeletedBindingStillListedByUsrlocAppearsOnce)
{
	subscribe_ok(initial(kAlice, kAlice, 3600));
	Binding b = binding("sip:alice@127.0.0.1", kNow + 3600, "cid-1", 1);
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow);
	host_.sent.clear();
	engine_->binding_changed(kAlice, b, Change::Delete, Cause::Register, "", {b}, kNow + 5);
	ASSERT_EQ(host_.sent.size(), 1u);
	EXPECT_VALID_BODY(host_.sent[0]);
	Reginfo p(host_.sent[0].body);
	auto cs = p.nodes("//r:contact");
	ASSERT_EQ(cs.size(), 1u);
	EXPECT_EQ(A(cs[0], "state"), "terminated");
	EXPECT_EQ(A(p.node("//r:registration"), "state"), "terminated");
}

TEST_F(EngineTest, PartialStateCarriesOnlyTheChangedContact)
{
	Config c;
	c.partial_state = true;
	make_engine(c);
	Binding b1 = binding("sip:alice@127.0.0.1", kNow + 3600, "cid-1", 1);
	host_.records[kAlice] = {b1};
	auto first = subscribe_ok(initial(kAlice, kAlice, 3600));
	{
		Reginfo p(first.body);
		EXPECT_EQ(A(p.root(), "state"), "full") << "the first NOTIFY is always full";
		EXPECT_EQ(p.nodes("//r:contact").size(), 1u);
	}

	Binding b2 = binding("sip:alice@127.0.0.2", kNow + 3600, "cid-2", 1);
	change(kAlice, b2, Change::Insert, Cause::Register, {b1, b2}, kNow + 10);
	ASSERT_EQ(host_.sent.size(), 2u);
	const auto &n = host_.sent[1];
	EXPECT_VALID_BODY(n);
	Reginfo p(n.body);
	EXPECT_EQ(A(p.root(), "state"), "partial");
	EXPECT_EQ(A(p.root(), "version"), "1");
	EXPECT_EQ(A(p.node("//r:registration"), "state"), "active");
	auto cs = p.nodes("//r:contact");
	ASSERT_EQ(cs.size(), 1u);
	EXPECT_EQ(A(cs[0], "id"), contact_id(kAlice, "sip:alice@127.0.0.2"));
	EXPECT_EQ(A(cs[0], "event"), "registered");

	// Removing b1 while b2 remains: partial, one terminated contact, registration active.
	change(kAlice, b1, Change::Expire, Cause::Other, {b2}, kNow + 20);
	ASSERT_EQ(host_.sent.size(), 3u);
	EXPECT_VALID_BODY(host_.sent[2]);
	Reginfo p2(host_.sent[2].body);
	EXPECT_EQ(A(p2.root(), "state"), "partial");
	EXPECT_EQ(A(p2.root(), "version"), "2");
	auto cs2 = p2.nodes("//r:contact");
	ASSERT_EQ(cs2.size(), 1u);
	EXPECT_EQ(A(cs2[0], "id"), contact_id(kAlice, "sip:alice@127.0.0.1"));
	EXPECT_EQ(A(cs2[0], "state"), "terminated");
	EXPECT_EQ(A(cs2[0], "event"), "expired");
	EXPECT_EQ(A(p2.node("//r:registration"), "state"), "active");

	// The last one goes: the registration is terminated.
	change(kAlice, b2, Change::Delete, Cause::Register, {}, kNow + 30);
	Reginfo p3(host_.sent[3].body);
	EXPECT_EQ(A(p3.node("//r:registration"), "state"), "terminated");
	EXPECT_EQ(A(p3.root(), "version"), "3");
}

// --- stable ids --------------------------------------------------------------------------------

TEST_F(EngineTest, ContactIdsStableAcrossRefreshesAndDistinctPerBinding)
{
	subscribe_ok(initial(kAlice, kAlice, 3600));
	Binding a = binding("sip:alice@127.0.0.1", kNow + 3600, "cid-a", 1);
	Binding b = binding("sip:alice@127.0.0.2", kNow + 3600, "cid-b", 1);
	change(kAlice, a, Change::Insert, Cause::Register, {a}, kNow);
	change(kAlice, b, Change::Insert, Cause::Register, {a, b}, kNow + 1);
	Binding a2 = a;
	a2.expires_at += 100;
	a2.cseq = 2;
	change(kAlice, a2, Change::Update, Cause::Register, {a2, b}, kNow + 100);

	std::set<std::string> ids_a, ids_b;
	for (size_t i = 1; i < host_.sent.size(); ++i) {
		Reginfo p(host_.sent[i].body);
		for (xmlNodePtr c : p.nodes("//r:contact")) {
			std::string uri = ParsedXml::text(p.node("r:uri", c));
			(uri == a.uri ? ids_a : ids_b).insert(*A(c, "id"));
		}
	}
	ASSERT_EQ(ids_a.size(), 1u) << "same binding, same id in every NOTIFY";
	ASSERT_EQ(ids_b.size(), 1u);
	EXPECT_NE(*ids_a.begin(), *ids_b.begin());

	// A new subscriber (another node, after a restart) gets the same ids.
	host_.records[kAlice] = {a2, b};
	auto n = subscribe_ok(initial(kAlice, kAlice, 3600, "later"));
	Reginfo p(n.body);
	EXPECT_NE(p.node("//r:contact[@id='" + *ids_a.begin() + "']"), nullptr);
	EXPECT_NE(p.node("//r:contact[@id='" + *ids_b.begin() + "']"), nullptr);
}

TEST_F(EngineTest, InstanceAndRegIdKeyTheContactId)
{
	Binding b1 = binding("sip:alice@127.0.0.1;ob", kNow + 3600);
	b1.instance = kInstance;
	b1.reg_id = 1;
	Binding moved = b1;  // same instance and flow after the UA changed address
	moved.uri = "sip:alice@198.51.100.7;ob";
	Binding flow2 = b1;  // same instance, second outbound flow
	flow2.reg_id = 2;
	Binding other = b1;
	other.instance = "<urn:uuid:00000000-0000-0000-0000-000000000001>";

	EXPECT_EQ(b1.key(), kInstance + ";reg-id=1");
	EXPECT_EQ(contact_id(kAlice, b1.key()), contact_id(kAlice, moved.key()));
	EXPECT_NE(contact_id(kAlice, b1.key()), contact_id(kAlice, flow2.key()));
	EXPECT_NE(contact_id(kAlice, b1.key()), contact_id(kAlice, other.key()));
	Binding plain = binding("sip:alice@127.0.0.1", kNow);
	EXPECT_EQ(plain.key(), "sip:alice@127.0.0.1");

	subscribe_ok(initial(kAlice, kAlice, 3600));
	change(kAlice, b1, Change::Insert, Cause::Register, {b1}, kNow);
	change(kAlice, moved, Change::Update, Cause::Register, {moved}, kNow + 10);
	change(kAlice, flow2, Change::Insert, Cause::Register, {moved, flow2}, kNow + 20);
	ASSERT_EQ(host_.sent.size(), 4u);
	Reginfo p1(host_.sent[1].body), p2(host_.sent[2].body), p3(host_.sent[3].body);
	EXPECT_EQ(A(p1.node("//r:contact"), "id"), A(p2.node("//r:contact"), "id"));
	EXPECT_EQ(A(p2.node("//r:contact"), "event"), "refreshed") << "the moved flow is the same binding";
	EXPECT_EQ(p3.nodes("//r:contact").size(), 2u);
	for (size_t i = 1; i < 4; ++i) EXPECT_VALID_BODY(host_.sent[i]);
}

// --- GRUU and message info -------------------------------------------------------------------------

TEST_F(EngineTest, GruuElementsAndTempGruuFirstCseqSurviveRefresh)
{
	subscribe_ok(initial(kAlice, kAlice, 3600));
	Binding b = binding("sip:alice@127.0.0.1;ob", kNow + 3600, "cid-1", 9);
	b.instance = kInstance;
	b.reg_id = 1;
	b.temp_gruu = "sip:tgruu.7hs==jd7vnzga5w7fajsc7-ajd6fabz0f8g5@a.example;gr";
	b.has_msg_info = true;
	b.params = ";+sip.instance=\"" + kInstance + "\";reg-id=1;expires=3600;+g.oma.sip-im";
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow);

	Binding r = b;
	r.cseq = 10;
	r.expires_at = kNow + 100 + 3600;
	change(kAlice, r, Change::Update, Cause::Register, {r}, kNow + 100);

	ASSERT_EQ(host_.sent.size(), 3u);
	for (size_t i = 1; i < 3; ++i) {
		const auto &n = host_.sent[i];
		EXPECT_VALID_BODY(n);
		Reginfo p(n.body);
		xmlNodePtr c = p.node("//r:contact");
		ASSERT_NE(c, nullptr);
		auto ups = p.nodes("r:unknown-param", c);
		ASSERT_EQ(ups.size(), 3u) << n.body;  // expires is an attribute, not a param
		EXPECT_EQ(A(ups[0], "name"), "+sip.instance");
		EXPECT_EQ(ParsedXml::text(ups[0]), kInstance);
		EXPECT_EQ(A(ups[1], "name"), "reg-id");
		EXPECT_EQ(A(ups[2], "name"), "+g.oma.sip-im");
		EXPECT_EQ(A(p.node("gr:pub-gruu", c), "uri"),
				"sip:alice@a.example;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6");
		xmlNodePtr t = p.node("gr:temp-gruu", c);
		EXPECT_EQ(A(t, "uri"), b.temp_gruu);
		EXPECT_EQ(A(t, "first-cseq"), "9") << "the CSeq of the REGISTER that created the binding";
	}
	EXPECT_EQ(A(Reginfo(host_.sent[2].body).node("//r:contact"), "cseq"), "10");

	// And in a full document built later from the store's metadata.
	host_.records[kAlice] = {r};
	auto n = subscribe_ok(initial(kAlice, kAlice, 3600, "later"));
	EXPECT_VALID_BODY(n);
	EXPECT_EQ(A(Reginfo(n.body).node("//gr:temp-gruu"), "first-cseq"), "9");
}

TEST_F(EngineTest, BindingMetadataOutlivesTheBinding)
{
	Binding b = binding("sip:alice@127.0.0.1", kNow + 7200, "cid-1", 1);
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow);
	long long ttl = imps::reply_int(redis_->command({"TTL", "imps:reginfo:bind:" + kAlice}).get());
	EXPECT_GE(ttl, 7200 + 3600 - 5);
}

TEST_F(EngineTest, PermanentBindingMetadataDoesNotExpire)
{
	// KNOWN BUG: for a permanent binding (expires_at 0) binding_changed() computes the TTL of
	// the metadata hash as max(3600, 0 - now + 3600) = 3600 s, so an hour later the binding's
	// first-registration time, first CSeq (temp-gruu first-cseq), display name and params are
	// gone while usrloc still has the binding: duration-registered restarts at 0 and the
	// display name disappears from documents.
	Binding perm = binding("sip:alice@127.0.0.1", 0, "cid-1", 1);
	perm.has_msg_info = true;
	perm.display_name = "Alice";
	change(kAlice, perm, Change::Insert, Cause::Admin, {perm}, kNow);
	long long ttl = imps::reply_int(redis_->command({"TTL", "imps:reginfo:bind:" + kAlice}).get());
	EXPECT_TRUE(ttl == -1 || ttl > 10LL * 365 * 86400)
			<< "metadata of a permanent binding expires after " << ttl << " s";
}

TEST_F(EngineTest, PermanentBindingHasNoExpiresAttribute)
{
	subscribe_ok(initial(kAlice, kAlice, 3600));
	Binding perm = binding("sip:alice@127.0.0.1", 0, "cid-1", 1);
	change(kAlice, perm, Change::Insert, Cause::Admin, {perm}, kNow);
	ASSERT_EQ(host_.sent.size(), 2u);
	EXPECT_VALID_BODY(host_.sent[1]);
	Reginfo p(host_.sent[1].body);
	xmlNodePtr c = p.node("//r:contact");
	EXPECT_EQ(A(c, "event"), "created");
	EXPECT_FALSE(A(c, "expires").has_value());
}

TEST_F(EngineTest, DisplayNameAndParamsKeptWhenUpdateHasNoMessage)
{
	subscribe_ok(initial(kAlice, kAlice, 3600));
	Binding b = binding("sip:alice@127.0.0.1", kNow + 3600, "cid-1", 1);
	b.has_msg_info = true;
	b.display_name = "Alice Liddell";
	b.params = ";audio;+sip.methods=\"INVITE,MESSAGE\"";
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow);

	// usrloc reports an update without a REGISTER (RPC, replication): no display name at hand.
	Binding u = binding("sip:alice@127.0.0.1", kNow + 7200, "cid-1", 1);
	change(kAlice, u, Change::Update, Cause::Other, {u}, kNow + 10);
	ASSERT_EQ(host_.sent.size(), 3u);
	for (size_t i = 1; i < 3; ++i) {
		EXPECT_VALID_BODY(host_.sent[i]);
		Reginfo p(host_.sent[i].body);
		xmlNodePtr c = p.node("//r:contact");
		EXPECT_EQ(ParsedXml::text(p.node("r:display-name", c)), "Alice Liddell") << i;
		auto ups = p.nodes("r:unknown-param", c);
		ASSERT_EQ(ups.size(), 2u) << i;
		EXPECT_EQ(A(ups[0], "name"), "audio");
		EXPECT_EQ(A(ups[1], "name"), "+sip.methods");
		EXPECT_EQ(ParsedXml::text(ups[1]), "INVITE,MESSAGE");
	}
	// The stored meta still has them for the next full document.
	host_.records[kAlice] = {u};
	auto n = subscribe_ok(initial(kAlice, kAlice, 3600, "later"));
	Reginfo p(n.body);
	EXPECT_EQ(ParsedXml::text(p.node("//r:display-name")), "Alice Liddell");
	EXPECT_EQ(A(p.node("//r:contact"), "duration-registered"), std::to_string(0));
}

TEST_F(EngineTest, DurationRegisteredInFullDocumentComesFromFirstRegistration)
{
	Binding b = binding("sip:alice@127.0.0.1", kNow + 3600, "cid-1", 1);
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow);
	auto n = subscribe_ok(initial(kAlice, kAlice, 3600, "x", kNow + 1234));
	Reginfo p(n.body);
	xmlNodePtr c = p.node("//r:contact");
	EXPECT_EQ(A(c, "duration-registered"), "1234");
	EXPECT_EQ(A(c, "expires"), std::to_string(3600 - 1234));
}

TEST_F(EngineTest, HostileValuesStillGiveValidDocuments)
{
	subscribe_ok(initial(kAlice, kAlice, 3600));
	Binding b = binding("sip:alice@127.0.0.1;x=\"<&>\"", kNow + 3600, "cid<&\"'>\r\n\x01\x1b", 1);
	b.has_msg_info = true;
	b.display_name = "\"Mallory\" <evil> & co\x07\x0b";
	b.params = ";x=\"</unknown-param><inject/>\";y=\"\x02\"";
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow);
	ASSERT_EQ(host_.sent.size(), 2u);
	const auto &n = host_.sent[1];
	EXPECT_VALID_BODY(n);
	Reginfo p(n.body);
	ASSERT_TRUE(p.ok()) << p.errors();
	xmlNodePtr c = p.node("//r:contact");
	EXPECT_EQ(A(c, "callid"), "cid<&\"'>    ");
	EXPECT_EQ(ParsedXml::text(p.node("r:uri", c)), "sip:alice@127.0.0.1;x=\"<&>\"");
	EXPECT_EQ(ParsedXml::text(p.node("r:display-name", c)), "\"Mallory\" <evil> & co  ");
	auto ups = p.nodes("r:unknown-param", c);
	ASSERT_EQ(ups.size(), 2u);
	EXPECT_EQ(ParsedXml::text(ups[0]), "</unknown-param><inject/>");
	EXPECT_EQ(ParsedXml::text(ups[1]), " ");
	EXPECT_TRUE(p.nodes("//r:inject").empty());
}

TEST_F(EngineTest, Latin1DisplayNameFromRegisterGivesWellFormedNotify)
{
	// KNOWN BUG (see Escaping.InvalidUtf8FromTheWireStillGivesWellFormedXml): a REGISTER whose
	// display name is Latin-1 ("M\xfcller") makes the reg NOTIFY body ill-formed XML, and as the
	// display name is kept in the binding's metadata, every later full document of the AoR too.
	subscribe_ok(initial(kAlice, kAlice, 3600));
	Binding b = binding("sip:alice@127.0.0.1", kNow + 3600, "cid-1", 1);
	b.has_msg_info = true;
	b.display_name = "M\xfcller";
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow);
	ASSERT_EQ(host_.sent.size(), 2u);
	EXPECT_TRUE(Reginfo(host_.sent[1].body).ok()) << "NOTIFY after REGISTER is not well-formed";

	Binding u = b;
	u.has_msg_info = false;
	u.display_name.clear();
	host_.records[kAlice] = {u};
	auto n = subscribe_ok(initial(kAlice, kAlice, 3600, "later"));
	EXPECT_TRUE(Reginfo(n.body).ok()) << "initial NOTIFY of a new watcher is not well-formed";
}

// --- expiry and failed NOTIFYs ----------------------------------------------------------------------

TEST_F(EngineTest, ExpireSendsTerminatedTimeoutAndRemoves)
{
	Binding b = binding("sip:alice@127.0.0.1", kNow + 7200, "cid-1", 1);
	host_.records[kAlice] = {b};
	subscribe_ok(initial(kAlice, kAlice, 600, "short"));
	subscribe_ok(initial(kAlice, kAlice, 1200, "long"));
	host_.sent.clear();

	EXPECT_EQ(engine_->expire(kNow + 599), 0);
	EXPECT_TRUE(host_.sent.empty());

	EXPECT_EQ(engine_->expire(kNow + 600), 1);
	ASSERT_EQ(host_.sent.size(), 1u);
	const auto &n = host_.sent[0];
	EXPECT_EQ(n.state, "terminated;reason=timeout");
	EXPECT_EQ(n.sub.callid, "sub-call-short");
	EXPECT_EQ(n.sub.version, 1u);
	EXPECT_EQ(n.sub.cseq, 2u);
	EXPECT_VALID_BODY(n);
	Reginfo p(n.body);
	EXPECT_EQ(A(p.root(), "version"), "1");
	EXPECT_EQ(A(p.root(), "state"), "full");
	EXPECT_EQ(p.nodes("//r:contact").size(), 1u);
	EXPECT_EQ(engine_->count(), 1);
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 1);

	// Claimed once only.
	EXPECT_EQ(engine_->expire(kNow + 600), 0);
	EXPECT_EQ(host_.sent.size(), 1u);

	// The other one later; then nothing is left.
	EXPECT_EQ(engine_->expire(kNow + 5000), 1);
	EXPECT_EQ(host_.sent.back().state, "terminated;reason=timeout");
	EXPECT_EQ(host_.sent.back().sub.callid, "sub-call-long");
	EXPECT_EQ(engine_->count(), 0);
	EXPECT_TRUE(engine_->list("", 10).empty());
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 0);
	// A binding change now reaches nobody.
	host_.sent.clear();
	change(kAlice, b, Change::Update, Cause::Register, {b}, kNow + 5001);
	EXPECT_TRUE(host_.sent.empty());
}

TEST_F(EngineTest, ExpireHonoursLimit)
{
	for (int i = 0; i < 5; ++i) subscribe_ok(initial(kAlice, kAlice, 600, "s" + std::to_string(i)));
	EXPECT_EQ(engine_->expire(kNow + 600, 2), 2);
	EXPECT_EQ(engine_->expire(kNow + 600, 2), 2);
	EXPECT_EQ(engine_->expire(kNow + 600, 2), 1);
	EXPECT_EQ(engine_->expire(kNow + 600, 2), 0);
	EXPECT_EQ(engine_->count(), 0);
}

TEST_F(EngineTest, NotifyFailed481Removes)
{
	auto n = subscribe_ok(initial(kAlice, kAlice, 600));
	engine_->notify_failed(n.sub.sid, kAlice, 481);
	EXPECT_EQ(engine_->count(), 0);
	EXPECT_TRUE(engine_->list(kAlice, 10).empty());
	EXPECT_EQ(host_.st(Stat::NotifiesFailed), 1);
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 0);
	// A second failure report for the same dialog changes no gauge.
	engine_->notify_failed(n.sub.sid, kAlice, 481);
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 0);
	host_.sent.clear();
	Binding b = binding("sip:alice@127.0.0.1", kNow + 3600);
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow + 1);
	EXPECT_TRUE(host_.sent.empty());
}

TEST_F(EngineTest, NotifyFailed408RemovesWhenRemoveOnTimeout)
{
	auto n = subscribe_ok(initial(kAlice, kAlice, 600));
	engine_->notify_failed(n.sub.sid, kAlice, 408);
	EXPECT_EQ(engine_->count(), 0);
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 0);
}

TEST_F(EngineTest, NotifyFailed408KeepsWithoutRemoveOnTimeout)
{
	Config c;
	c.remove_on_timeout = false;
	make_engine(c);
	auto n = subscribe_ok(initial(kAlice, kAlice, 600));
	engine_->notify_failed(n.sub.sid, kAlice, 408);
	EXPECT_EQ(engine_->count(), 1);
	EXPECT_EQ(host_.st(Stat::NotifiesFailed), 1);
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 1);
	// 481 still removes.
	engine_->notify_failed(n.sub.sid, kAlice, 481);
	EXPECT_EQ(engine_->count(), 0);
}

TEST_F(EngineTest, OtherNotifyFailuresWithRetryAfterKeepTheSubscription)
{
	auto n = subscribe_ok(initial(kAlice, kAlice, 600));
	for (int code : {400, 403, 480, 500, 503, 603})
		engine_->notify_failed(n.sub.sid, kAlice, code, /*retry_after=*/true);
	EXPECT_EQ(engine_->count(), 1);
	EXPECT_EQ(host_.st(Stat::NotifiesFailed), 6);
}

TEST_F(EngineTest, OtherNotifyFailuresWithoutRetryAfterRemoveTheSubscription)
{
	// RFC 6665 4.2.2: a NOTIFY failing without Retry-After ends the subscription
	for (int code : {400, 403, 480, 500, 503, 603}) {
		auto n = subscribe_ok(initial(kAlice, kAlice, 600));
		ASSERT_EQ(engine_->count(), 1);
		engine_->notify_failed(n.sub.sid, kAlice, code);
		EXPECT_EQ(engine_->count(), 0) << code;
	}
}

TEST_F(EngineTest, SendFailureCountsAsFailed)
{
	host_.send_ok = false;
	engine_->subscribe(initial(kAlice, kAlice, 600));
	engine_->flush();
	EXPECT_EQ(host_.sent.size(), 1u);
	EXPECT_EQ(host_.st(Stat::NotifiesFailed), 1);
	EXPECT_EQ(host_.st(Stat::NotifiesSent), 0);
}

TEST_F(EngineTest, ShowBuildsVersionZeroFullDocument)
{
	Binding b = binding("sip:alice@127.0.0.1", kNow + 60, "cid-1", 1);
	host_.records[kAlice] = {b};
	std::string xml = engine_->show(kAlice, kNow);
	ASSERT_TRUE(SchemaValid(xml));
	Reginfo p(xml);
	EXPECT_EQ(A(p.root(), "version"), "0");
	EXPECT_EQ(A(p.root(), "state"), "full");
	EXPECT_EQ(A(p.node("//r:contact"), "expires"), "60");
	EXPECT_TRUE(host_.sent.empty());

	std::string none = engine_->show(kBob, kNow);
	ASSERT_TRUE(SchemaValid(none));
	EXPECT_EQ(A(Reginfo(none).node("//r:registration"), "state"), "init");
}

TEST_F(EngineTest, SubscriptionIdIsStableAndPerDialog)
{
	EXPECT_EQ(subscription_id("c", "f", "t"), subscription_id("c", "f", "t"));
	EXPECT_NE(subscription_id("c", "f", "t"), subscription_id("c", "f", "t2"));
	EXPECT_NE(subscription_id("c", "f", "t"), subscription_id("c", "f2", "t"));
	EXPECT_NE(subscription_id("c", "ft", ""), subscription_id("c", "f", "t"));
	EXPECT_EQ(subscription_id("c", "f", "t").size(), 24u);
}

TEST_F(EngineTest, RetransmittedInitialSubscribeKeepsCountersGoing)
{
	// sl's To tag is the same for a retransmission: same dialog, same stored subscription
	auto req = initial(kAlice, kAlice, 600);
	auto first = subscribe_ok(req);
	auto again = subscribe_ok(req);
	EXPECT_EQ(first.sub.sid, again.sub.sid);
	EXPECT_EQ(first.sub.version, 0u);
	EXPECT_EQ(first.sub.cseq, 1u);
	EXPECT_EQ(again.sub.version, 1u);
	EXPECT_EQ(again.sub.cseq, 2u);
	EXPECT_EQ(engine_->count(), 1);
}
