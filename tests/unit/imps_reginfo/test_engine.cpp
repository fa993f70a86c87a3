// The reg event package against a recording fake Host and the real Redis store (a private
// redis-server on a free port), on the shared subscription layer (imps/subs.hpp): at most one
// NOTIFY is outstanding per dialog, so a test that wants one NOTIFY per change answers the
// previous one first (answer_all). Every NOTIFY body is validated against the RFC schemas and
// read back field by field.
#include "imps_reginfo/core/engine.hpp"

#include "imps/redis.hpp"
#include "imps/subs.hpp"

#include "../common/redis_server.hpp"
#include "schema_check.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>

using namespace imps::reginfo;
namespace subs = imps::subs;
using imps::Redis;
using imps::RedisConfig;
using imps::reply_int;
using imps::test::ParsedXml;
using imps::test::RedisServer;
using imps::test::Reginfo;
using imps::test::SchemaValid;

namespace {

constexpr long long kNow = 4000000000LL;  // fixed unix time, safely in Redis's future
constexpr long long kMs = kNow * 1000;
constexpr long long kBusyMs = 35000;      // Config::notify_busy_ms by default
const std::string kPrefix = "imps:reginfo";
const std::string kAlice = "alice@a.example";
const std::string kBob = "bob@a.example";
const std::string kInstance = "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";
const std::string kReginfoType = "application/reginfo+xml";

class FakeHost : public Host {
public:
	struct Notify {
		subs::Outgoing out;  // as the engine handed it over
		subs::Subscription sub;
		std::string body;
		std::string content_type;
		std::string state;
		bool answered = false;  // the test reported its final response (Engine::complete)
	};

	bool send_notify(const subs::Outgoing &n) override
	{
		sent.push_back({n, n.sub, n.content.body, n.content.content_type, n.state, false});
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

std::set<std::string> callids(const std::vector<subs::Subscription> &v)
{
	std::set<std::string> out;
	for (const auto &s : v) out.insert(s.dialog.callid);
	return out;
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
		// the binding metadata as the engine stores it, read back through the package's store
		meta_subs_ = std::make_unique<subs::Store>(*redis_, subs::Keys(kPrefix), kBusyMs);
		meta_ = std::make_unique<BindingStore>(*meta_subs_);
		make_engine(Config{});
	}

	Engine &make_engine(Config cfg)
	{
		engine_ = std::make_unique<Engine>(std::move(cfg), *redis_, kPrefix, host_);
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
		r.accept = {kReginfoType};
		r.expires = expires;
		r.aor = aor;
		r.watcher = watcher;
		r.in_dialog = false;
		r.now = now;
		subs::Dialog &d = r.dialog;
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

	// An in-dialog SUBSCRIBE of the dialog of init; the AoR is found from the dialog, not
	// from the request.
	static SubscribeRequest in_dialog(const SubscribeRequest &init, int expires, long long rcseq,
			long long now)
	{
		SubscribeRequest r = init;
		r.in_dialog = true;
		r.aor.clear();
		r.expires = expires;
		r.dialog.remote_cseq = rcseq;
		r.now = now;
		return r;
	}

	// Subscribes and flushes; returns the NOTIFY sent (expects one).
	FakeHost::Notify subscribe_ok(const SubscribeRequest &req)
	{
		clock_ = std::max(clock_, req.now);
		SubscribeResponse res = engine_->subscribe(req);
		EXPECT_EQ(res.code, 200) << res.reason;
		EXPECT_TRUE(res.notify);
		size_t before = host_.sent.size();
		engine_->flush();
		EXPECT_EQ(host_.sent.size(), before + 1);
		return host_.sent.size() == before + 1 ? host_.sent.back() : FakeHost::Notify{};
	}

	// The final response of the NOTIFY sent[i] (now: unix seconds, 0: the latest time used).
	void answer(size_t i, int code = 200, bool retry_after = false, long long now = 0)
	{
		ASSERT_LT(i, host_.sent.size());
		host_.sent[i].answered = true;
		const subs::Subscription s = host_.sent[i].sub;  // complete() may send more
		clock_ = std::max(clock_, now);
		engine_->complete(s.resource, s.sid, s.cseq, code, retry_after, (now ? now : clock_) * 1000);
	}
	// Answers every NOTIFY sent so far and not answered yet (not those the answers send).
	void answer_all(int code = 200)
	{
		const size_t end = host_.sent.size();
		for (size_t i = 0; i < end; ++i)
			if (!host_.sent[i].answered) answer(i, code);
	}
	size_t unanswered() const
	{
		return std::count_if(host_.sent.begin(), host_.sent.end(), [](const auto &n) { return !n.answered; });
	}

	// usrloc: set the record and report the change.
	void change(const std::string &aor, const Binding &b, Change ch, Cause cause,
			const std::vector<Binding> &current, long long now, const std::string &admin_event = "")
	{
		clock_ = std::max(clock_, now);
		host_.records[aor] = current;
		engine_->binding_changed(aor, b, ch, cause, admin_event, current, now);
	}
	// The same after every NOTIFY sent so far was answered 200: one NOTIFY per change.
	void answered_change(const std::string &aor, const Binding &b, Change ch, Cause cause,
			const std::vector<Binding> &current, long long now, const std::string &admin_event = "")
	{
		answer_all();
		change(aor, b, ch, cause, current, now, admin_event);
	}

	std::string bind_key(const std::string &aor) const { return kPrefix + ":{" + aor + "}:bind"; }

	static std::unique_ptr<RedisServer> server_;
	std::unique_ptr<Redis> redis_;
	std::unique_ptr<subs::Store> meta_subs_;
	std::unique_ptr<BindingStore> meta_;
	FakeHost host_;
	std::unique_ptr<Engine> engine_;
	long long clock_ = kNow;  // the latest time (unix seconds) a helper used
};
std::unique_ptr<RedisServer> EngineTest::server_;

#define EXPECT_VALID_BODY(n)                                   \
	do {                                                       \
		EXPECT_TRUE(SchemaValid((n).body));                    \
		EXPECT_EQ((n).content_type, kReginfoType);             \
	} while (0)

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

TEST_F(EngineTest, EventWithParametersIsAcceptedAndItsIdGoesIntoTheNotify)
{
	SubscribeRequest r = initial(kAlice, kAlice, 600);
	r.event = " reg ;id=7";
	auto n = subscribe_ok(r);
	EXPECT_EQ(n.sub.dialog.event_id, "7");
	const std::string h = subs::notify_headers(n.out);
	EXPECT_NE(h.find("Event: reg;id=7\r\n"), std::string::npos) << h;
	EXPECT_NE(h.find("Subscription-State: active;expires=600\r\n"), std::string::npos) << h;
	EXPECT_NE(h.find("Content-Type: application/reginfo+xml\r\n"), std::string::npos) << h;
	EXPECT_NE(h.find("Contact: <sip:hsp.a.example:5070>\r\n"), std::string::npos) << h;

	// the id stays with the dialog: a later NOTIFY carries it too
	answer_all();
	Binding b = binding("sip:alice@127.0.0.1", kNow + 3600);
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow + 1);
	ASSERT_EQ(host_.sent.size(), 2u);
	EXPECT_NE(subs::notify_headers(host_.sent[1].out).find("Event: reg;id=7\r\n"), std::string::npos);
}

TEST_F(EngineTest, AcceptWithoutReginfoIs406)
{
	SubscribeRequest r = initial(kAlice, kAlice, 600);
	r.accept = {"application/pidf+xml", "text/plain", "application/reginfo+xml-not"};
	SubscribeResponse res = engine_->subscribe(r);
	EXPECT_EQ(res.code, 406);
	EXPECT_EQ(header(res, "Accept"), kReginfoType);
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
				 {"application/pidf+xml", kReginfoType}, {"text/*", "*/*;q=0.1"}}) {
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
	EXPECT_EQ(engine_->count(), 6);
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
	for (const auto &s : engine_->list(kAlice, 10)) exp[s.dialog.callid] = s.expires_at;
	EXPECT_EQ(exp.size(), 2u);
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
	engine_->flush();
	EXPECT_TRUE(host_.sent.empty());
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
	SubscribeRequest req = initial(kAlice, kAlice, 600);
	auto n = subscribe_ok(req);
	EXPECT_VALID_BODY(n);
	EXPECT_EQ(n.state, "active;expires=600");
	EXPECT_EQ(n.sub.sid, subs::subscription_id("sub-call-1", "from-1", "to-1"));
	EXPECT_EQ(n.sub.package, "reg");
	EXPECT_EQ(n.sub.resource, kAlice);
	EXPECT_EQ(n.sub.watcher, kAlice);
	EXPECT_EQ(n.sub.status, "active");
	const subs::Dialog &d = n.sub.dialog;
	EXPECT_EQ(d.callid, "sub-call-1");
	EXPECT_EQ(d.remote_tag, "from-1");
	EXPECT_EQ(d.local_tag, "to-1");
	EXPECT_EQ(d.remote_uri, "sip:" + kAlice);
	EXPECT_EQ(d.local_uri, "sip:" + kAlice);
	EXPECT_EQ(d.remote_target, "sip:1@127.0.0.50:5060");
	EXPECT_EQ(d.route_set, "<sip:edge.a.example;lr>");
	EXPECT_EQ(d.socket, "udp:127.0.0.1:5070");
	EXPECT_EQ(d.local_contact, "sip:hsp.a.example:5070");
	EXPECT_EQ(d.event_id, "");
	EXPECT_EQ(d.remote_cseq, 1);
	EXPECT_EQ(n.sub.version, 0u);
	EXPECT_EQ(n.sub.cseq, 1u);
	EXPECT_EQ(n.sub.expires_at, kNow + 600);
	EXPECT_EQ(n.sub.created_at, kNow);
	EXPECT_TRUE(n.out.content.headers.empty());

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

	// The stored subscription has the same dialog.
	auto l = engine_->list(kAlice, 10);
	ASSERT_EQ(l.size(), 1u);
	EXPECT_EQ(l[0].sid, n.sub.sid);
	EXPECT_EQ(l[0].package, "reg");
	EXPECT_EQ(l[0].resource, kAlice);
	EXPECT_EQ(l[0].watcher, kAlice);
	EXPECT_EQ(l[0].dialog.callid, d.callid);
	EXPECT_EQ(l[0].dialog.remote_tag, d.remote_tag);
	EXPECT_EQ(l[0].dialog.local_tag, d.local_tag);
	EXPECT_EQ(l[0].dialog.remote_target, d.remote_target);
	EXPECT_EQ(l[0].dialog.route_set, d.route_set);
	EXPECT_EQ(l[0].dialog.socket, d.socket);
	EXPECT_EQ(l[0].dialog.local_contact, d.local_contact);
	EXPECT_EQ(l[0].expires_at, kNow + 600);
	EXPECT_EQ(l[0].version, 0u);
	EXPECT_EQ(l[0].cseq, 1u);
}

TEST_F(EngineTest, InitialNotifyForRecordWithoutBindingsIsTerminated)
{
	host_.records[kAlice] = {};
	auto n = subscribe_ok(initial(kAlice, kAlice, 600));
	EXPECT_VALID_BODY(n);
	Reginfo p(n.body);
	EXPECT_EQ(A(p.node("//r:registration"), "state"), "terminated");
	EXPECT_TRUE(p.nodes("//r:contact").empty());
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
	EXPECT_TRUE(res.notify);
	engine_->flush();
	ASSERT_EQ(host_.sent.size(), 1u);
	const auto &n = host_.sent[0];
	EXPECT_EQ(n.state, "terminated;reason=timeout");
	EXPECT_EQ(n.sub.version, 0u);
	EXPECT_EQ(n.sub.cseq, 1u);
	EXPECT_EQ(n.sub.resource, kAlice);
	EXPECT_VALID_BODY(n);
	Reginfo p(n.body);
	EXPECT_EQ(A(p.root(), "version"), "0");
	EXPECT_EQ(p.nodes("//r:contact").size(), 1u);
	EXPECT_EQ(engine_->count(), 0);
	EXPECT_TRUE(engine_->list("", 10).empty());
	EXPECT_TRUE(engine_->list(kAlice, 10).empty());
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 0);
	auto keys = redis_->command({"KEYS", kPrefix + ":*"});
	EXPECT_EQ(keys->elements, 0u) << "a fetch leaves nothing in Redis";
	// and no later change reaches it
	Binding b = binding("sip:alice@127.0.0.2", kNow + 3600);
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow + 1);
	EXPECT_EQ(host_.sent.size(), 1u);
}

// --- in-dialog SUBSCRIBE ------------------------------------------------------------------------

TEST_F(EngineTest, RefreshOfUnknownDialogIs481)
{
	SubscribeRequest r = in_dialog(initial(kAlice, kAlice, 600), 600, 2, kNow);
	SubscribeResponse res = engine_->subscribe(r);
	EXPECT_EQ(res.code, 481);
	EXPECT_FALSE(res.notify);
	// With the AoR given as well.
	r.aor = kAlice;
	EXPECT_EQ(engine_->subscribe(r).code, 481);
	engine_->flush();
	EXPECT_TRUE(host_.sent.empty());
	// Unsubscribing an unknown dialog as well.
	EXPECT_EQ(engine_->subscribe(in_dialog(initial(kAlice, kAlice, 600), 0, 2, kNow)).code, 481);
	EXPECT_EQ(engine_->count(), 0);
	EXPECT_EQ(reply_int(redis_->command({"DBSIZE"}).get()), 0) << "nothing created on a miss";
}

TEST_F(EngineTest, RefreshSendsNextVersionAndCseq)
{
	SubscribeRequest init = initial(kAlice, kAlice, 600);
	subscribe_ok(init);
	answer_all();
	SubscribeRequest ref = in_dialog(init, 1200, 2, kNow + 500);
	ASSERT_TRUE(ref.aor.empty()) << "the AoR of an in-dialog request is looked up";
	ref.dialog.remote_target = "sip:moved@127.0.0.77:5060";
	auto n = subscribe_ok(ref);
	EXPECT_EQ(n.state, "active;expires=1200");
	EXPECT_EQ(n.sub.version, 1u);
	EXPECT_EQ(n.sub.cseq, 2u);
	EXPECT_EQ(n.sub.resource, kAlice);
	EXPECT_EQ(n.sub.dialog.remote_target, "sip:moved@127.0.0.77:5060");
	EXPECT_EQ(n.sub.dialog.remote_cseq, 2);
	EXPECT_EQ(n.sub.dialog.route_set, "<sip:edge.a.example;lr>");
	EXPECT_EQ(n.sub.expires_at, kNow + 500 + 1200);
	EXPECT_VALID_BODY(n);
	Reginfo p(n.body);
	EXPECT_EQ(A(p.root(), "version"), "1");
	EXPECT_EQ(A(p.root(), "state"), "full");
	EXPECT_EQ(engine_->count(), 1);
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 1);
	auto l = engine_->list(kAlice, 10);
	ASSERT_EQ(l.size(), 1u);
	EXPECT_EQ(l[0].expires_at, kNow + 1700);
	EXPECT_EQ(l[0].dialog.remote_target, "sip:moved@127.0.0.77:5060");

	// The expiry follows the refresh: nothing ends at the old expiry.
	answer_all();
	engine_->expire(kNow + 600, (kNow + 600) * 1000);
	EXPECT_EQ(host_.sent.size(), 2u);
	EXPECT_EQ(engine_->count(), 1);
}

TEST_F(EngineTest, RefreshWithOldCseqIsRejected)
{
	SubscribeRequest init = initial(kAlice, kAlice, 600);
	init.dialog.remote_cseq = 5;
	subscribe_ok(init);
	answer_all();
	SubscribeResponse res = engine_->subscribe(in_dialog(init, 600, 4, kNow + 10));
	EXPECT_EQ(res.code, 500);
	EXPECT_FALSE(res.notify);
	engine_->flush();
	EXPECT_EQ(host_.sent.size(), 1u);
	// Unsubscribing with an old CSeq neither.
	EXPECT_EQ(engine_->subscribe(in_dialog(init, 0, 4, kNow + 10)).code, 500);
	engine_->flush();
	EXPECT_EQ(host_.sent.size(), 1u);
	auto l = engine_->list(kAlice, 10);
	ASSERT_EQ(l.size(), 1u);
	EXPECT_EQ(l[0].expires_at, kNow + 600);
	EXPECT_EQ(l[0].dialog.remote_cseq, 5);
	EXPECT_EQ(l[0].version, 0u);
	EXPECT_EQ(l[0].cseq, 1u);
}

TEST_F(EngineTest, UnsubscribeSendsTerminatedAndRemoves)
{
	SubscribeRequest init = initial(kAlice, kAlice, 600);
	subscribe_ok(init);
	answer_all();
	ASSERT_EQ(engine_->count(), 1);
	auto n = subscribe_ok(in_dialog(init, 0, 2, kNow + 30));
	// the shared layer's final NOTIFY: terminated, with reason timeout (RFC 6665 leaves the
	// reason to the notifier)
	EXPECT_EQ(n.state, "terminated;reason=timeout");
	EXPECT_EQ(n.sub.version, 1u);
	EXPECT_EQ(n.sub.cseq, 2u);
	EXPECT_EQ(n.sub.resource, kAlice);
	EXPECT_VALID_BODY(n);
	EXPECT_EQ(A(Reginfo(n.body).root(), "version"), "1");
	EXPECT_EQ(A(Reginfo(n.body).root(), "state"), "full");
	EXPECT_EQ(engine_->count(), 0);
	EXPECT_TRUE(engine_->list(kAlice, 10).empty());
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 0);
	// A later refresh finds no dialog.
	EXPECT_EQ(engine_->subscribe(in_dialog(init, 600, 3, kNow + 40)).code, 481);
	// Its answer changes nothing.
	answer_all();
	EXPECT_EQ(host_.sent.size(), 2u);
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 0);
}

TEST_F(EngineTest, RefreshTooBriefIs423)
{
	SubscribeRequest init = initial(kAlice, kAlice, 600);
	subscribe_ok(init);
	EXPECT_EQ(engine_->subscribe(in_dialog(init, 10, 2, kNow + 1)).code, 423);
	EXPECT_EQ(engine_->count(), 1);
	auto l = engine_->list(kAlice, 10);
	ASSERT_EQ(l.size(), 1u);
	EXPECT_EQ(l[0].expires_at, kNow + 600);
}

// --- binding changes -----------------------------------------------------------------------------

TEST_F(EngineTest, BindingChangeWithoutSubscriptionsSendsNothingButRecordsMeta)
{
	Binding b = binding("sip:alice@127.0.0.1", kNow + 3600, "cid", 4);
	b.has_msg_info = true;
	b.display_name = "Alice";
	b.params = ";audio";
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow);
	EXPECT_TRUE(host_.sent.empty());
	auto meta = meta_->bindings(kAlice);
	ASSERT_EQ(meta.size(), 1u);
	const BindingMeta &m = meta.begin()->second;
	EXPECT_EQ(meta.begin()->first, contact_id(kAlice, b.key()));
	EXPECT_EQ(m.first_registered, kNow);
	EXPECT_EQ(m.expires_at, kNow + 3600);
	EXPECT_EQ(m.first_cseq, 4);
	EXPECT_EQ(m.display_name, "Alice");
	EXPECT_EQ(m.params, ";audio");
	EXPECT_EQ(reply_int(redis_->command({"EXISTS", bind_key(kAlice)}).get()), 1);
}

TEST_F(EngineTest, BindingChangeNotifiesEverySubscriptionWithIncreasingVersionAndCseq)
{
	subscribe_ok(initial(kAlice, kAlice, 600, "w1"));
	subscribe_ok(initial(kAlice, kAlice, 900, "w2"));
	subscribe_ok(initial(kBob, kBob, 600, "bob"));
	answer_all();
	host_.sent.clear();

	Binding b1 = binding("sip:alice@127.0.0.1", kNow + 3600, "cid-1", 1);
	change(kAlice, b1, Change::Insert, Cause::Register, {b1}, kNow + 100);
	ASSERT_EQ(host_.sent.size(), 2u) << "one NOTIFY per subscription of the AoR";
	std::map<std::string, FakeHost::Notify> by_call;
	for (const auto &n : host_.sent) by_call[n.sub.dialog.callid] = n;
	ASSERT_EQ(by_call.size(), 2u);
	EXPECT_EQ(by_call["sub-call-w1"].state, "active;expires=500");
	EXPECT_EQ(by_call["sub-call-w2"].state, "active;expires=800");
	for (auto &[cid, n] : by_call) {
		EXPECT_VALID_BODY(n);
		EXPECT_EQ(n.sub.version, 1u) << cid;
		EXPECT_EQ(n.sub.cseq, 2u) << cid;
		EXPECT_EQ(n.sub.resource, kAlice);
		EXPECT_EQ(n.sub.package, "reg");
		EXPECT_EQ(n.sub.dialog.remote_target, "sip:" + cid.substr(9) + "@127.0.0.50:5060");
		EXPECT_EQ(n.sub.dialog.route_set, "<sip:edge.a.example;lr>");
		Reginfo p(n.body);
		EXPECT_EQ(A(p.root(), "version"), "1");
		EXPECT_EQ(A(p.root(), "state"), "full");
		EXPECT_EQ(p.nodes("//r:contact").size(), 1u);
	}

	answer_all();
	host_.sent.clear();
	Binding b2 = binding("sip:alice@127.0.0.2", kNow + 3600, "cid-2", 1);
	change(kAlice, b2, Change::Insert, Cause::Register, {b1, b2}, kNow + 200);
	ASSERT_EQ(host_.sent.size(), 2u);
	for (const auto &n : host_.sent) {
		EXPECT_VALID_BODY(n);
		EXPECT_EQ(n.sub.version, 2u);
		EXPECT_EQ(n.sub.cseq, 3u);
		EXPECT_EQ(A(Reginfo(n.body).root(), "version"), "2");
		EXPECT_EQ(Reginfo(n.body).nodes("//r:contact").size(), 2u);
	}
	EXPECT_EQ(host_.st(Stat::NotifiesSent), 3 + 2 + 2);

	// Bob's watcher saw nothing of Alice's changes; its next NOTIFY is still version 1.
	answer_all();
	SubscribeRequest bob = initial(kBob, kBob, 600, "bob");
	auto nb = subscribe_ok(in_dialog(bob, 600, 2, kNow + 300));
	EXPECT_EQ(nb.sub.resource, kBob);
	EXPECT_EQ(nb.sub.version, 1u);
	EXPECT_EQ(nb.sub.cseq, 2u);
}

TEST_F(EngineTest, FullDocumentOnRegisterRefreshAndUnregister)
{
	subscribe_ok(initial(kAlice, kAlice, 3600));
	answer_all();
	host_.sent.clear();

	// REGISTER creates a binding: event registered, duration 0.
	Binding b = binding("sip:alice@127.0.0.1", kNow + 3600, "cid-1", 1);
	b.q = 1000;
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow);
	ASSERT_EQ(host_.sent.size(), 1u);
	{
		Reginfo p(host_.sent[0].body);
		EXPECT_VALID_BODY(host_.sent[0]);
		EXPECT_EQ(host_.sent[0].state, "active;expires=3600");
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
	answered_change(kAlice, r, Change::Update, Cause::Register, {r}, kNow + 600);
	ASSERT_EQ(host_.sent.size(), 2u);
	{
		EXPECT_VALID_BODY(host_.sent[1]);
		EXPECT_EQ(host_.sent[1].state, "active;expires=3000");
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
	answered_change(kAlice, s, Change::Update, Cause::Register, {s}, kNow + 700);
	ASSERT_EQ(host_.sent.size(), 3u);
	{
		EXPECT_VALID_BODY(host_.sent[2]);
		Reginfo p(host_.sent[2].body);
		xmlNodePtr c = p.node("//r:contact");
		ASSERT_NE(c, nullptr);
		EXPECT_EQ(A(c, "event"), "shortened");
		EXPECT_EQ(A(c, "expires"), "60");
		EXPECT_EQ(A(c, "duration-registered"), "700");
	}

	// REGISTER with Expires: 0 removes it: unregistered, terminated, registration terminated.
	Binding u = s;
	u.cseq = 4;
	answered_change(kAlice, u, Change::Delete, Cause::Register, {}, kNow + 800);
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
		EXPECT_EQ(A(Reginfo(host_.sent[i].body).root(), "state"), "full");
	}
}

TEST_F(EngineTest, EventsForExpiryAndAdministrativeChanges)
{
	subscribe_ok(initial(kAlice, kAlice, 3600));
	Binding keep = binding("sip:alice@127.0.0.9", kNow + 3600, "cid-keep", 1);
	Binding b = binding("sip:alice@127.0.0.1", kNow + 100, "cid-1", 1);
	answered_change(kAlice, keep, Change::Insert, Cause::Register, {keep}, kNow);
	answered_change(kAlice, b, Change::Insert, Cause::Admin, {keep, b}, kNow);    // created
	answered_change(kAlice, b, Change::Expire, Cause::Other, {keep}, kNow + 100);  // expired
	answered_change(kAlice, b, Change::Insert, Cause::Other, {keep, b}, kNow + 200);
	answered_change(kAlice, b, Change::Delete, Cause::Admin, {keep}, kNow + 300, "rejected");
	answered_change(kAlice, b, Change::Insert, Cause::Register, {keep, b}, kNow + 400);
	answered_change(kAlice, b, Change::Delete, Cause::Other, {keep}, kNow + 500);  // deactivated

	const std::vector<std::pair<std::string, std::string>> want = {{"registered", "active"},
			{"created", "active"}, {"expired", "terminated"}, {"created", "active"},
			{"rejected", "terminated"}, {"registered", "active"}, {"deactivated", "terminated"}};
	ASSERT_EQ(host_.sent.size(), 1 + want.size());
	const std::string bid = contact_id(kAlice, b.key()), kid = contact_id(kAlice, keep.key());
	for (size_t i = 0; i < want.size(); ++i) {
		const auto &n = host_.sent[i + 1];
		EXPECT_VALID_BODY(n);
		EXPECT_EQ(n.sub.version, i + 1);
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
	answered_change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow);
	answer_all();
	host_.sent.clear();
	engine_->binding_changed(kAlice, b, Change::Delete, Cause::Register, "", {b}, kNow + 5);
	ASSERT_EQ(host_.sent.size(), 1u);
	EXPECT_VALID_BODY(host_.sent[0]);
	Reginfo p(host_.sent[0].body);
	auto cs = p.nodes("//r:contact");
	ASSERT_EQ(cs.size(), 1u);
	EXPECT_EQ(A(cs[0], "state"), "terminated");
	EXPECT_EQ(A(cs[0], "event"), "unregistered");
	EXPECT_EQ(A(cs[0], "expires"), "0");
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
		EXPECT_VALID_BODY(first);
		Reginfo p(first.body);
		EXPECT_EQ(A(p.root(), "state"), "full") << "the first NOTIFY is always full";
		EXPECT_EQ(p.nodes("//r:contact").size(), 1u);
	}

	Binding b2 = binding("sip:alice@127.0.0.2", kNow + 3600, "cid-2", 1);
	answered_change(kAlice, b2, Change::Insert, Cause::Register, {b1, b2}, kNow + 10);
	ASSERT_EQ(host_.sent.size(), 2u);
	const auto &n = host_.sent[1];
	EXPECT_VALID_BODY(n);
	Reginfo p(n.body);
	EXPECT_EQ(A(p.root(), "state"), "partial");
	EXPECT_EQ(A(p.root(), "version"), "1");
	EXPECT_EQ(n.sub.version, 1u);
	EXPECT_EQ(n.sub.cseq, 2u);
	EXPECT_EQ(A(p.node("//r:registration"), "state"), "active");
	auto cs = p.nodes("//r:contact");
	ASSERT_EQ(cs.size(), 1u);
	EXPECT_EQ(A(cs[0], "id"), contact_id(kAlice, "sip:alice@127.0.0.2"));
	EXPECT_EQ(A(cs[0], "event"), "registered");

	// Removing b1 while b2 remains: partial, one terminated contact, registration active.
	answered_change(kAlice, b1, Change::Expire, Cause::Other, {b2}, kNow + 20);
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
	EXPECT_EQ(A(cs2[0], "expires"), "0") << "usrloc reported it expired before its expiry time";
	EXPECT_EQ(A(p2.node("//r:registration"), "state"), "active");

	// The last one goes: the registration is terminated.
	answered_change(kAlice, b2, Change::Delete, Cause::Register, {}, kNow + 30);
	ASSERT_EQ(host_.sent.size(), 4u);
	EXPECT_VALID_BODY(host_.sent[3]);
	Reginfo p3(host_.sent[3].body);
	EXPECT_EQ(A(p3.root(), "state"), "partial");
	EXPECT_EQ(A(p3.node("//r:registration"), "state"), "terminated");
	EXPECT_EQ(A(p3.root(), "version"), "3");
	EXPECT_EQ(p3.nodes("//r:contact").size(), 1u);
}

// --- at most one NOTIFY outstanding per dialog ----------------------------------------------------

TEST_F(EngineTest, ChangeWhileInitialNotifyOutstandingWaitsForItsResponse)
{
	auto init = subscribe_ok(initial(kAlice, kAlice, 600));
	ASSERT_EQ(init.sub.cseq, 1u);
	Binding b = binding("sip:alice@127.0.0.1", kNow + 3600, "cid-1", 1);
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow + 1);
	engine_->flush();
	EXPECT_EQ(host_.sent.size(), 1u) << "no second NOTIFY while the first is outstanding";
	EXPECT_EQ(host_.st(Stat::NotifiesSent), 1);
	// the timer does not send it either while the dialog waits for the response
	engine_->send_due(kMs + 2000);
	EXPECT_EQ(host_.sent.size(), 1u);

	answer(0, 200, false, kNow + 2);
	ASSERT_EQ(host_.sent.size(), 2u) << "the response sends the state that waited";
	const auto &n = host_.sent[1];
	EXPECT_EQ(n.sub.sid, init.sub.sid);
	EXPECT_EQ(n.sub.version, init.sub.version + 1);
	EXPECT_EQ(n.sub.cseq, init.sub.cseq + 1);
	EXPECT_EQ(n.state, "active;expires=598");
	EXPECT_VALID_BODY(n);
	Reginfo p(n.body);
	EXPECT_EQ(A(p.root(), "version"), "1");
	EXPECT_EQ(A(p.root(), "state"), "full");
	auto cs = p.nodes("//r:contact");
	ASSERT_EQ(cs.size(), 1u);
	EXPECT_EQ(A(cs[0], "id"), contact_id(kAlice, b.key()));
	EXPECT_EQ(A(cs[0], "state"), "active");
	EXPECT_EQ(A(p.node("//r:registration"), "state"), "active");
	EXPECT_EQ(host_.st(Stat::NotifiesSent), 2);

	// answering that one sends nothing more: nothing changed meanwhile
	answer(1, 200, false, kNow + 3);
	EXPECT_EQ(host_.sent.size(), 2u);
	engine_->send_due(kMs + 100000);
	EXPECT_EQ(host_.sent.size(), 2u);
}

TEST_F(EngineTest, TwoChangesWhileBusyGiveOneNotifyWithTheNewestState)
{
	auto init = subscribe_ok(initial(kAlice, kAlice, 600));
	Binding b1 = binding("sip:alice@127.0.0.1", kNow + 3600, "cid-1", 1);
	Binding b2 = binding("sip:alice@127.0.0.2", kNow + 3600, "cid-2", 1);
	change(kAlice, b1, Change::Insert, Cause::Register, {b1}, kNow + 1);
	change(kAlice, b2, Change::Insert, Cause::Register, {b1, b2}, kNow + 2);
	EXPECT_EQ(host_.sent.size(), 1u);

	answer(0, 200, false, kNow + 3);
	ASSERT_EQ(host_.sent.size(), 2u) << "one NOTIFY for both changes";
	const auto &n = host_.sent[1];
	EXPECT_EQ(n.sub.version, 1u);
	EXPECT_EQ(n.sub.cseq, 2u);
	EXPECT_VALID_BODY(n);
	Reginfo p(n.body);
	EXPECT_EQ(A(p.root(), "version"), "1");
	EXPECT_EQ(A(p.root(), "state"), "full");
	std::set<std::string> ids;
	for (xmlNodePtr c : p.nodes("//r:contact")) ids.insert(*A(c, "id"));
	EXPECT_EQ(ids, (std::set<std::string>{contact_id(kAlice, b1.key()), contact_id(kAlice, b2.key())}));

	// the state is the newest: a change undone while busy is not reported at all
	change(kAlice, b2, Change::Delete, Cause::Register, {b1}, kNow + 4);
	change(kAlice, b2, Change::Insert, Cause::Register, {b1, b2}, kNow + 5);
	change(kAlice, b1, Change::Delete, Cause::Register, {b2}, kNow + 6);
	EXPECT_EQ(host_.sent.size(), 2u);
	answer(1, 200, false, kNow + 7);
	ASSERT_EQ(host_.sent.size(), 3u);
	EXPECT_EQ(host_.sent[2].sub.version, 2u);
	EXPECT_EQ(host_.sent[2].sub.cseq, 3u);
	EXPECT_VALID_BODY(host_.sent[2]);
	Reginfo p2(host_.sent[2].body);
	auto cs = p2.nodes("//r:contact");
	ASSERT_EQ(cs.size(), 1u);
	EXPECT_EQ(A(cs[0], "id"), contact_id(kAlice, b2.key()));
	EXPECT_EQ(A(p2.root(), "version"), "2");
}

TEST_F(EngineTest, PartialStateSendsFullStateAfterWaiting)
{
	Config c;
	c.partial_state = true;
	make_engine(c);
	Binding b1 = binding("sip:alice@127.0.0.1", kNow + 3600, "cid-1", 1);
	host_.records[kAlice] = {b1};
	subscribe_ok(initial(kAlice, kAlice, 3600));
	Binding b2 = binding("sip:alice@127.0.0.2", kNow + 3600, "cid-2", 1);
	change(kAlice, b2, Change::Insert, Cause::Register, {b1, b2}, kNow + 1);
	EXPECT_EQ(host_.sent.size(), 1u);
	answer(0, 200, false, kNow + 2);
	ASSERT_EQ(host_.sent.size(), 2u);
	EXPECT_VALID_BODY(host_.sent[1]);
	Reginfo p(host_.sent[1].body);
	EXPECT_EQ(A(p.root(), "state"), "full") << "a NOTIFY that waited carries full state";
	EXPECT_EQ(A(p.root(), "version"), "1");
	EXPECT_EQ(p.nodes("//r:contact").size(), 2u);

	// once idle again, a change goes out at once as partial state
	answer(1, 200, false, kNow + 3);
	change(kAlice, b1, Change::Delete, Cause::Register, {b2}, kNow + 4);
	ASSERT_EQ(host_.sent.size(), 3u);
	EXPECT_VALID_BODY(host_.sent[2]);
	Reginfo p2(host_.sent[2].body);
	EXPECT_EQ(A(p2.root(), "state"), "partial");
	EXPECT_EQ(A(p2.root(), "version"), "2");
	EXPECT_EQ(host_.sent[2].sub.cseq, 3u);
	ASSERT_EQ(p2.nodes("//r:contact").size(), 1u);
	EXPECT_EQ(A(p2.node("//r:contact"), "event"), "unregistered");
}

TEST_F(EngineTest, StaleCompleteChangesNothing)
{
	subscribe_ok(initial(kAlice, kAlice, 600));
	answer(0, 200, false, kNow + 1);
	Binding b1 = binding("sip:alice@127.0.0.1", kNow + 3600, "cid-1", 1);
	change(kAlice, b1, Change::Insert, Cause::Register, {b1}, kNow + 2);
	ASSERT_EQ(host_.sent.size(), 2u);
	ASSERT_EQ(host_.sent[1].sub.cseq, 2u);
	const std::string sid = host_.sent[1].sub.sid;

	// a late (retransmitted) response to CSeq 1, even a 481, is not the outstanding NOTIFY's
	engine_->complete(kAlice, sid, 1, 481, false, (kNow + 3) * 1000);
	engine_->complete(kAlice, sid, 1, 200, false, (kNow + 3) * 1000);
	EXPECT_EQ(engine_->count(), 1);
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 1);
	EXPECT_EQ(host_.sent.size(), 2u);
	// ... so the dialog is still busy: a change waits
	Binding b2 = binding("sip:alice@127.0.0.2", kNow + 3600, "cid-2", 1);
	change(kAlice, b2, Change::Insert, Cause::Register, {b1, b2}, kNow + 4);
	EXPECT_EQ(host_.sent.size(), 2u);
	// a response to a CSeq never sent is ignored as well
	engine_->complete(kAlice, sid, 99, 200, false, (kNow + 5) * 1000);
	EXPECT_EQ(host_.sent.size(), 2u);
	auto l = engine_->list(kAlice, 10);
	ASSERT_EQ(l.size(), 1u);
	EXPECT_EQ(l[0].version, 1u);
	EXPECT_EQ(l[0].cseq, 2u);

	answer(1, 200, false, kNow + 6);
	ASSERT_EQ(host_.sent.size(), 3u);
	EXPECT_EQ(host_.sent[2].sub.version, 2u);
	EXPECT_EQ(host_.sent[2].sub.cseq, 3u);
	EXPECT_EQ(Reginfo(host_.sent[2].body).nodes("//r:contact").size(), 2u);
	// and the response to CSeq 2 a second time changes nothing either
	engine_->complete(kAlice, sid, 2, 481, false, (kNow + 7) * 1000);
	EXPECT_EQ(engine_->count(), 1);
	EXPECT_EQ(host_.sent.size(), 3u);
}

TEST_F(EngineTest, DeferredNotifyGoesOutAtTheBusyDeadlineWithoutAResponse)
{
	Config c;
	c.notify_busy_ms = 5000;
	make_engine(c);
	subscribe_ok(initial(kAlice, kAlice, 600));  // sent at kMs, busy until kMs + 5000
	Binding b = binding("sip:alice@127.0.0.1", kNow + 3600, "cid-1", 1);
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow + 1);
	engine_->send_due(kMs + 4999);
	EXPECT_EQ(host_.sent.size(), 1u) << "still waiting for the response";
	engine_->send_due(kMs + 5000);
	ASSERT_EQ(host_.sent.size(), 2u) << "the response never came: the NOTIFY goes anyway";
	EXPECT_EQ(host_.sent[1].sub.version, 1u);
	EXPECT_EQ(host_.sent[1].sub.cseq, 2u);
	EXPECT_EQ(host_.sent[1].state, "active;expires=595");
	EXPECT_VALID_BODY(host_.sent[1]);
	Reginfo p(host_.sent[1].body);
	EXPECT_EQ(A(p.root(), "state"), "full");
	EXPECT_EQ(p.nodes("//r:contact").size(), 1u);
	engine_->send_due(kMs + 60000);
	EXPECT_EQ(host_.sent.size(), 2u) << "sent once";
	// the late response to the first one is stale now
	answer(0, 481, false, kNow + 61);
	EXPECT_EQ(engine_->count(), 1);
}

TEST_F(EngineTest, RefreshWhileBusySendsItsNotifyAfterTheResponse)
{
	SubscribeRequest init = initial(kAlice, kAlice, 600);
	subscribe_ok(init);
	SubscribeResponse res = engine_->subscribe(in_dialog(init, 1200, 2, kNow + 1));
	ASSERT_EQ(res.code, 200);
	EXPECT_EQ(header(res, "Expires"), "1200");
	engine_->flush();
	EXPECT_EQ(host_.sent.size(), 1u);
	answer(0, 200, false, kNow + 2);
	ASSERT_EQ(host_.sent.size(), 2u);
	EXPECT_EQ(host_.sent[1].sub.version, 1u);
	EXPECT_EQ(host_.sent[1].sub.cseq, 2u);
	EXPECT_EQ(host_.sent[1].sub.expires_at, kNow + 1201);
	EXPECT_EQ(host_.sent[1].state, "active;expires=1199");
	EXPECT_VALID_BODY(host_.sent[1]);
	EXPECT_EQ(A(Reginfo(host_.sent[1].body).root(), "state"), "full");
}

TEST_F(EngineTest, UnsubscribeWhileBusySendsTheFinalNotifyAfterTheResponse)
{
	SubscribeRequest init = initial(kAlice, kAlice, 600);
	subscribe_ok(init);
	SubscribeResponse res = engine_->subscribe(in_dialog(init, 0, 2, kNow + 1));
	ASSERT_EQ(res.code, 200);
	EXPECT_EQ(header(res, "Expires"), "0");
	engine_->flush();
	EXPECT_EQ(host_.sent.size(), 1u);
	// ended for the watcher: a refresh finds no dialog any more
	EXPECT_EQ(engine_->subscribe(in_dialog(init, 600, 3, kNow + 1)).code, 481);
	EXPECT_TRUE(engine_->list(kAlice, 10).empty());

	answer(0, 200, false, kNow + 2);
	ASSERT_EQ(host_.sent.size(), 2u);
	EXPECT_EQ(host_.sent[1].state, "terminated;reason=timeout");
	EXPECT_EQ(host_.sent[1].sub.version, 1u);
	EXPECT_EQ(host_.sent[1].sub.cseq, 2u);
	EXPECT_VALID_BODY(host_.sent[1]);
	EXPECT_EQ(engine_->count(), 0);
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 0);
	answer_all();
	EXPECT_EQ(host_.sent.size(), 2u);
}

TEST_F(EngineTest, SubscriptionMadeAfterAChangeIsNotNotifiedOfIt)
{
	subscribe_ok(initial(kAlice, kAlice, 3600, "early"));       // created at kNow
	subscribe_ok(initial(kAlice, kAlice, 3600, "late", kNow + 10));
	answer_all();
	Binding b = binding("sip:alice@127.0.0.1", kNow + 3600, "cid-1", 1);
	host_.records[kAlice] = {b};
	// usrloc made the change at kNow + 5; it is handled (queued outside usrloc's lock) at
	// kNow + 20: the late watcher's initial NOTIFY had the binding already
	BindingChange c;
	c.aor = kAlice;
	c.changed = b;
	c.change = Change::Insert;
	c.cause = Cause::Register;
	c.current = {b};
	c.now = kNow + 20;
	c.now_ms = (kNow + 5) * 1000;
	engine_->binding_changed(c);
	ASSERT_EQ(host_.sent.size(), 3u);
	EXPECT_EQ(host_.sent[2].sub.dialog.callid, "sub-call-early");
	EXPECT_EQ(host_.sent[2].sub.version, 1u);
	EXPECT_VALID_BODY(host_.sent[2]);
	// the late one owes nothing
	engine_->send_due((kNow + 1000) * 1000);
	EXPECT_EQ(host_.sent.size(), 3u);
	// a change made after both were created reaches both
	answer_all();
	Binding b2 = binding("sip:alice@127.0.0.2", kNow + 3600, "cid-2", 1);
	change(kAlice, b2, Change::Insert, Cause::Register, {b, b2}, kNow + 30);
	ASSERT_EQ(host_.sent.size(), 5u);
	std::map<std::string, unsigned long long> v;
	for (size_t i = 3; i < 5; ++i) v[host_.sent[i].sub.dialog.callid] = host_.sent[i].sub.version;
	EXPECT_EQ(v, (std::map<std::string, unsigned long long>{{"sub-call-early", 2}, {"sub-call-late", 1}}));
}

// --- stable ids --------------------------------------------------------------------------------

TEST_F(EngineTest, ContactIdsStableAcrossRefreshesAndDistinctPerBinding)
{
	subscribe_ok(initial(kAlice, kAlice, 3600));
	Binding a = binding("sip:alice@127.0.0.1", kNow + 3600, "cid-a", 1);
	Binding b = binding("sip:alice@127.0.0.2", kNow + 3600, "cid-b", 1);
	answered_change(kAlice, a, Change::Insert, Cause::Register, {a}, kNow);
	answered_change(kAlice, b, Change::Insert, Cause::Register, {a, b}, kNow + 1);
	Binding a2 = a;
	a2.expires_at += 100;
	a2.cseq = 2;
	answered_change(kAlice, a2, Change::Update, Cause::Register, {a2, b}, kNow + 100);
	ASSERT_EQ(host_.sent.size(), 4u);

	std::set<std::string> ids_a, ids_b;
	for (size_t i = 1; i < host_.sent.size(); ++i) {
		EXPECT_VALID_BODY(host_.sent[i]);
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
	answered_change(kAlice, b1, Change::Insert, Cause::Register, {b1}, kNow);
	answered_change(kAlice, moved, Change::Update, Cause::Register, {moved}, kNow + 10);
	answered_change(kAlice, flow2, Change::Insert, Cause::Register, {moved, flow2}, kNow + 20);
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
	answered_change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow);

	Binding r = b;
	r.cseq = 10;
	r.expires_at = kNow + 100 + 3600;
	answered_change(kAlice, r, Change::Update, Cause::Register, {r}, kNow + 100);

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
	long long ttl = reply_int(redis_->command({"TTL", bind_key(kAlice)}).get());
	EXPECT_GE(ttl, 7200 + 3600 - 5);
	EXPECT_LE(ttl, 7200 + 3600);
	// the longest binding of the record counts
	Binding s = binding("sip:alice@127.0.0.2", kNow + 60, "cid-2", 1);
	change(kAlice, s, Change::Insert, Cause::Register, {b, s}, kNow);
	ttl = reply_int(redis_->command({"TTL", bind_key(kAlice)}).get());
	EXPECT_GE(ttl, 7200 + 3600 - 5);
}

TEST_F(EngineTest, PermanentBindingMetadataDoesNotExpire)
{
	// for a permanent binding (expires_at 0) the metadata (first registration, first CSeq,
	// display name, params) must stay as long as usrloc keeps the binding
	Binding perm = binding("sip:alice@127.0.0.1", 0, "cid-1", 1);
	perm.has_msg_info = true;
	perm.display_name = "Alice";
	change(kAlice, perm, Change::Insert, Cause::Admin, {perm}, kNow);
	long long ttl = reply_int(redis_->command({"TTL", bind_key(kAlice)}).get());
	EXPECT_TRUE(ttl == -1 || ttl > 10LL * 365 * 86400)
			<< "metadata of a permanent binding expires after " << ttl << " s";
	// a binding with an expiry added next to it does not bring the TTL back
	Binding t = binding("sip:alice@127.0.0.2", kNow + 60, "cid-2", 1);
	change(kAlice, t, Change::Insert, Cause::Register, {perm, t}, kNow + 1);
	ttl = reply_int(redis_->command({"TTL", bind_key(kAlice)}).get());
	EXPECT_TRUE(ttl == -1 || ttl > 10LL * 365 * 86400)
			<< "metadata of a permanent binding expires after " << ttl << " s";
	EXPECT_EQ(meta_->bindings(kAlice).size(), 2u);
}

TEST_F(EngineTest, PermanentBindingHasNoExpiresAttribute)
{
	subscribe_ok(initial(kAlice, kAlice, 3600));
	Binding perm = binding("sip:alice@127.0.0.1", 0, "cid-1", 1);
	answered_change(kAlice, perm, Change::Insert, Cause::Admin, {perm}, kNow);
	ASSERT_EQ(host_.sent.size(), 2u);
	EXPECT_VALID_BODY(host_.sent[1]);
	Reginfo p(host_.sent[1].body);
	xmlNodePtr c = p.node("//r:contact");
	ASSERT_NE(c, nullptr);
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
	answered_change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow);

	// usrloc reports an update without a REGISTER (RPC, replication): no display name at hand.
	Binding u = binding("sip:alice@127.0.0.1", kNow + 7200, "cid-1", 1);
	answered_change(kAlice, u, Change::Update, Cause::Other, {u}, kNow + 10);
	ASSERT_EQ(host_.sent.size(), 3u);
	for (size_t i = 1; i < 3; ++i) {
		EXPECT_VALID_BODY(host_.sent[i]);
		Reginfo p(host_.sent[i].body);
		xmlNodePtr c = p.node("//r:contact");
		ASSERT_NE(c, nullptr) << i;
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
	auto meta = meta_->bindings(kAlice);
	ASSERT_EQ(meta.size(), 1u);
	EXPECT_EQ(meta.begin()->second.display_name, "Alice Liddell");
	EXPECT_EQ(meta.begin()->second.params, b.params);
	EXPECT_EQ(meta.begin()->second.expires_at, kNow + 7200);
}

TEST_F(EngineTest, DurationRegisteredInFullDocumentComesFromFirstRegistration)
{
	Binding b = binding("sip:alice@127.0.0.1", kNow + 3600, "cid-1", 1);
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow);
	auto n = subscribe_ok(initial(kAlice, kAlice, 3600, "x", kNow + 1234));
	EXPECT_VALID_BODY(n);
	Reginfo p(n.body);
	xmlNodePtr c = p.node("//r:contact");
	ASSERT_NE(c, nullptr);
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
	answered_change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow);
	ASSERT_EQ(host_.sent.size(), 2u);
	const auto &n = host_.sent[1];
	EXPECT_VALID_BODY(n);
	Reginfo p(n.body);
	ASSERT_TRUE(p.ok()) << p.errors();
	xmlNodePtr c = p.node("//r:contact");
	ASSERT_NE(c, nullptr);
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
	// (see Escaping.InvalidUtf8FromTheWireStillGivesWellFormedXml) a REGISTER whose display
	// name is Latin-1 ("M\xfcller") must not make the reg NOTIFY body ill-formed XML, nor, as
	// the display name is kept in the binding's metadata, any later full document of the AoR.
	subscribe_ok(initial(kAlice, kAlice, 3600));
	Binding b = binding("sip:alice@127.0.0.1", kNow + 3600, "cid-1", 1);
	b.has_msg_info = true;
	b.display_name = "M\xfcller";
	answered_change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow);
	ASSERT_EQ(host_.sent.size(), 2u);
	EXPECT_TRUE(Reginfo(host_.sent[1].body).ok()) << "NOTIFY after REGISTER is not well-formed";

	Binding u = b;
	u.has_msg_info = false;
	u.display_name.clear();
	host_.records[kAlice] = {u};
	auto n = subscribe_ok(initial(kAlice, kAlice, 3600, "later"));
	EXPECT_TRUE(Reginfo(n.body).ok()) << "initial NOTIFY of a new watcher is not well-formed";
}

// --- expiry ------------------------------------------------------------------------------------------

TEST_F(EngineTest, ExpireSendsTerminatedTimeoutAndRemoves)
{
	Binding b = binding("sip:alice@127.0.0.1", kNow + 7200, "cid-1", 1);
	host_.records[kAlice] = {b};
	subscribe_ok(initial(kAlice, kAlice, 600, "short"));
	subscribe_ok(initial(kAlice, kAlice, 1200, "long"));
	answer_all();
	host_.sent.clear();

	engine_->expire(kNow + 599, (kNow + 599) * 1000);
	EXPECT_TRUE(host_.sent.empty());
	EXPECT_EQ(engine_->count(), 2);

	engine_->expire(kNow + 600, (kNow + 600) * 1000);
	ASSERT_EQ(host_.sent.size(), 1u);
	const auto &n = host_.sent[0];
	EXPECT_EQ(n.state, "terminated;reason=timeout");
	EXPECT_EQ(n.sub.dialog.callid, "sub-call-short");
	EXPECT_EQ(n.sub.resource, kAlice);
	EXPECT_EQ(n.sub.version, 1u);
	EXPECT_EQ(n.sub.cseq, 2u);
	EXPECT_VALID_BODY(n);
	Reginfo p(n.body);
	EXPECT_EQ(A(p.root(), "version"), "1");
	EXPECT_EQ(A(p.root(), "state"), "full");
	EXPECT_EQ(p.nodes("//r:contact").size(), 1u);
	EXPECT_EQ(engine_->count(), 1);
	EXPECT_EQ(callids(engine_->list(kAlice, 10)), std::set<std::string>{"sub-call-long"});
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 1);

	// Claimed once only.
	engine_->expire(kNow + 600, (kNow + 600) * 1000);
	EXPECT_EQ(host_.sent.size(), 1u);
	// Its answer changes nothing.
	answer_all();
	EXPECT_EQ(host_.sent.size(), 1u);

	// The other one later; then nothing is left.
	engine_->expire(kNow + 5000, (kNow + 5000) * 1000);
	ASSERT_EQ(host_.sent.size(), 2u);
	EXPECT_EQ(host_.sent.back().state, "terminated;reason=timeout");
	EXPECT_EQ(host_.sent.back().sub.dialog.callid, "sub-call-long");
	EXPECT_VALID_BODY(host_.sent.back());
	EXPECT_EQ(engine_->count(), 0);
	EXPECT_TRUE(engine_->list("", 10).empty());
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 0);
	// A binding change now reaches nobody.
	answer_all();
	host_.sent.clear();
	change(kAlice, b, Change::Update, Cause::Register, {b}, kNow + 5001);
	EXPECT_TRUE(host_.sent.empty());
}

TEST_F(EngineTest, ExpireEndsEverySubscriptionDueInOneRun)
{
	for (int i = 0; i < 5; ++i) subscribe_ok(initial(kAlice, kAlice, 600, "s" + std::to_string(i)));
	subscribe_ok(initial(kBob, kBob, 600, "b"));
	answer_all();
	host_.sent.clear();
	engine_->expire(kNow + 600, (kNow + 600) * 1000);
	ASSERT_EQ(host_.sent.size(), 6u);
	std::set<std::string> ended;
	for (const auto &n : host_.sent) {
		EXPECT_EQ(n.state, "terminated;reason=timeout");
		EXPECT_EQ(n.sub.version, 1u);
		EXPECT_EQ(n.sub.cseq, 2u);
		EXPECT_VALID_BODY(n);
		EXPECT_TRUE(ended.insert(n.sub.sid).second) << "ended twice";
	}
	EXPECT_EQ(engine_->count(), 0);
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 0);
	engine_->expire(kNow + 601, (kNow + 601) * 1000);
	EXPECT_EQ(host_.sent.size(), 6u);
}

TEST_F(EngineTest, ExpiryWhileNotifyOutstandingSendsTheFinalNotifyAfterTheResponse)
{
	subscribe_ok(initial(kAlice, kAlice, 600));
	answer_all();
	Binding b = binding("sip:alice@127.0.0.1", kNow + 3600, "cid-1", 1);
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow + 590);
	ASSERT_EQ(host_.sent.size(), 2u);  // CSeq 2 outstanding until its response

	engine_->expire(kNow + 600, (kNow + 600) * 1000);
	EXPECT_EQ(host_.sent.size(), 2u) << "the final NOTIFY waits for the outstanding one";
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 1);
	// ended already: no refresh, no listing, no NOTIFY for a change
	EXPECT_TRUE(engine_->list(kAlice, 10).empty());
	change(kAlice, b, Change::Update, Cause::Register, {b}, kNow + 601);
	EXPECT_EQ(host_.sent.size(), 2u);

	answer(1, 200, false, kNow + 602);
	ASSERT_EQ(host_.sent.size(), 3u);
	const auto &n = host_.sent[2];
	EXPECT_EQ(n.state, "terminated;reason=timeout");
	EXPECT_EQ(n.sub.version, 2u);
	EXPECT_EQ(n.sub.cseq, 3u);
	EXPECT_VALID_BODY(n);
	EXPECT_EQ(A(Reginfo(n.body).root(), "version"), "2");
	EXPECT_EQ(Reginfo(n.body).nodes("//r:contact").size(), 1u);
	EXPECT_EQ(engine_->count(), 0);
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 0);
	engine_->expire(kNow + 700, (kNow + 700) * 1000);
	engine_->send_due((kNow + 700) * 1000);
	EXPECT_EQ(host_.sent.size(), 3u);
}

TEST_F(EngineTest, ExpiryWhileNotifyOutstandingSendsTheFinalNotifyAtTheBusyDeadline)
{
	subscribe_ok(initial(kAlice, kAlice, 600));
	answer_all();
	Binding b = binding("sip:alice@127.0.0.1", kNow + 3600, "cid-1", 1);
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow + 590);
	ASSERT_EQ(host_.sent.size(), 2u);
	engine_->expire(kNow + 600, (kNow + 600) * 1000);
	engine_->send_due((kNow + 590) * 1000 + kBusyMs - 1);
	EXPECT_EQ(host_.sent.size(), 2u);
	// no response ever came: the final NOTIFY goes when the dialog's busy time is over
	engine_->send_due((kNow + 590) * 1000 + kBusyMs);
	ASSERT_EQ(host_.sent.size(), 3u);
	EXPECT_EQ(host_.sent[2].state, "terminated;reason=timeout");
	EXPECT_EQ(host_.sent[2].sub.version, 2u);
	EXPECT_EQ(host_.sent[2].sub.cseq, 3u);
	EXPECT_VALID_BODY(host_.sent[2]);
	EXPECT_EQ(engine_->count(), 0);
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 0);
}

// --- NOTIFY responses (RFC 6665 4.2.2) ----------------------------------------------------------------

TEST_F(EngineTest, Complete481Removes)
{
	auto n = subscribe_ok(initial(kAlice, kAlice, 600));
	answer(0, 481);
	EXPECT_EQ(engine_->count(), 0);
	EXPECT_TRUE(engine_->list(kAlice, 10).empty());
	EXPECT_EQ(host_.st(Stat::NotifiesFailed), 1);
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 0);
	// A second failure report for the same dialog changes no gauge.
	engine_->complete(kAlice, n.sub.sid, n.sub.cseq, 481, false, kMs + 1000);
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 0);
	EXPECT_EQ(engine_->count(), 0);
	Binding b = binding("sip:alice@127.0.0.1", kNow + 3600);
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow + 1);
	EXPECT_EQ(host_.sent.size(), 1u);
	// No final NOTIFY to a dialog the watcher no longer has.
	engine_->expire(kNow + 1000, (kNow + 1000) * 1000);
	EXPECT_EQ(host_.sent.size(), 1u);
	// And the dialog is gone for refreshes too.
	EXPECT_EQ(engine_->subscribe(in_dialog(initial(kAlice, kAlice, 600), 600, 2, kNow + 2)).code, 481);
}

TEST_F(EngineTest, Complete481RemovesEvenWithRetryAfter)
{
	Config c;
	c.remove_on_timeout = false;
	make_engine(c);
	subscribe_ok(initial(kAlice, kAlice, 600));
	answer(0, 481, /*retry_after=*/true);
	EXPECT_EQ(engine_->count(), 0);
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 0);
}

TEST_F(EngineTest, Complete481OfANotifyAfterAChangeRemoves)
{
	subscribe_ok(initial(kAlice, kAlice, 600));
	answer_all();
	Binding b = binding("sip:alice@127.0.0.1", kNow + 3600);
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow + 1);
	ASSERT_EQ(host_.sent.size(), 2u);
	answer(1, 481, false, kNow + 2);
	EXPECT_EQ(engine_->count(), 0);
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 0);
	EXPECT_EQ(host_.sent.size(), 2u);
}

TEST_F(EngineTest, Complete408RemovesWhenRemoveOnTimeout)
{
	subscribe_ok(initial(kAlice, kAlice, 600));
	answer(0, 408);
	EXPECT_EQ(engine_->count(), 0);
	EXPECT_EQ(host_.st(Stat::NotifiesFailed), 1);
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 0);
}

TEST_F(EngineTest, Complete408KeepsWithoutRemoveOnTimeout)
{
	Config c;
	c.remove_on_timeout = false;
	make_engine(c);
	subscribe_ok(initial(kAlice, kAlice, 600));
	// a change waits for the NOTIFY that times out; it goes after the timeout
	Binding b = binding("sip:alice@127.0.0.1", kNow + 3600);
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow + 1);
	answer(0, 408, false, kNow + 2);
	EXPECT_EQ(engine_->count(), 1);
	EXPECT_EQ(host_.st(Stat::NotifiesFailed), 1);
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 1);
	ASSERT_EQ(host_.sent.size(), 2u);
	EXPECT_EQ(host_.sent[1].sub.cseq, 2u);
	EXPECT_EQ(Reginfo(host_.sent[1].body).nodes("//r:contact").size(), 1u);
	// 481 still removes.
	answer(1, 481, false, kNow + 3);
	EXPECT_EQ(engine_->count(), 0);
	EXPECT_EQ(host_.st(Stat::NotifiesFailed), 2);
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 0);
}

TEST_F(EngineTest, OtherNotifyFailuresWithRetryAfterKeepTheSubscription)
{
	auto n = subscribe_ok(initial(kAlice, kAlice, 600));
	for (int code : {400, 403, 480, 500, 503, 603})
		engine_->complete(kAlice, n.sub.sid, n.sub.cseq, code, /*retry_after=*/true, kMs + 1000);
	EXPECT_EQ(engine_->count(), 1);
	EXPECT_EQ(host_.st(Stat::NotifiesFailed), 6);
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 1);
	// the dialog is no longer busy: the next change goes out at once
	Binding b = binding("sip:alice@127.0.0.1", kNow + 3600);
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow + 2);
	ASSERT_EQ(host_.sent.size(), 2u);
	EXPECT_EQ(host_.sent[1].sub.version, 1u);
	EXPECT_EQ(host_.sent[1].sub.cseq, 2u);
}

TEST_F(EngineTest, FailureWithRetryAfterSendsTheStateThatWaited)
{
	subscribe_ok(initial(kAlice, kAlice, 600));
	Binding b = binding("sip:alice@127.0.0.1", kNow + 3600);
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow + 1);
	EXPECT_EQ(host_.sent.size(), 1u);
	answer(0, 503, /*retry_after=*/true, kNow + 2);
	ASSERT_EQ(host_.sent.size(), 2u);
	EXPECT_EQ(host_.sent[1].sub.version, 1u);
	EXPECT_EQ(host_.sent[1].sub.cseq, 2u);
	EXPECT_VALID_BODY(host_.sent[1]);
	EXPECT_EQ(engine_->count(), 1);
}

TEST_F(EngineTest, OtherNotifyFailuresWithoutRetryAfterRemoveTheSubscription)
{
	// RFC 6665 4.2.2: a NOTIFY failing without Retry-After ends the subscription
	int i = 0;
	for (int code : {400, 403, 480, 500, 503, 603}) {
		auto n = subscribe_ok(initial(kAlice, kAlice, 600, "f" + std::to_string(i++)));
		ASSERT_EQ(engine_->count(), 1);
		// even with a change waiting: nothing more is sent to it
		Binding b = binding("sip:alice@127.0.0." + std::to_string(i), kNow + 3600);
		size_t before = host_.sent.size();
		change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow);
		engine_->complete(kAlice, n.sub.sid, n.sub.cseq, code, false, kMs + 1000);
		EXPECT_EQ(engine_->count(), 0) << code;
		EXPECT_EQ(host_.sent.size(), before) << code;
		host_.sent.back().answered = true;
	}
	EXPECT_EQ(host_.st(Stat::NotifiesFailed), 6);
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 0);
}

TEST_F(EngineTest, SuccessfulResponsesOtherThan200AreSuccess)
{
	subscribe_ok(initial(kAlice, kAlice, 600));
	answer(0, 202);
	EXPECT_EQ(engine_->count(), 1);
	EXPECT_EQ(host_.st(Stat::NotifiesFailed), 0);
}

TEST_F(EngineTest, SendFailureCountsAsFailed)
{
	host_.send_ok = false;
	engine_->subscribe(initial(kAlice, kAlice, 600));
	engine_->flush();
	EXPECT_EQ(host_.sent.size(), 1u);
	EXPECT_EQ(host_.st(Stat::NotifiesFailed), 1);
	EXPECT_EQ(host_.st(Stat::NotifiesSent), 0);
	// a change meanwhile goes out once the NOTIFY that could not be sent stops holding the
	// dialog (its response never comes)
	host_.send_ok = true;
	Binding b = binding("sip:alice@127.0.0.1", kNow + 3600);
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow + 1);
	EXPECT_EQ(host_.sent.size(), 1u);
	engine_->send_due(kMs + kBusyMs);
	ASSERT_EQ(host_.sent.size(), 2u);
	EXPECT_EQ(host_.sent[1].sub.cseq, 2u);
	EXPECT_EQ(host_.st(Stat::NotifiesSent), 1);
}

// --- show, list, ids ------------------------------------------------------------------------------

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

TEST_F(EngineTest, ListWithAndWithoutAorAndCount)
{
	for (int i = 0; i < 3; ++i) subscribe_ok(initial(kAlice, kAlice, 600 + i, "a" + std::to_string(i)));
	for (int i = 0; i < 2; ++i) subscribe_ok(initial(kBob, kBob, 600 + i, "b" + std::to_string(i)));
	EXPECT_EQ(engine_->count(), 5);
	EXPECT_EQ(callids(engine_->list(kAlice, 100)),
			(std::set<std::string>{"sub-call-a0", "sub-call-a1", "sub-call-a2"}));
	EXPECT_EQ(callids(engine_->list(kBob, 100)), (std::set<std::string>{"sub-call-b0", "sub-call-b1"}));
	EXPECT_TRUE(engine_->list("carol@a.example", 100).empty());
	EXPECT_EQ(callids(engine_->list("", 100)), (std::set<std::string>{"sub-call-a0", "sub-call-a1",
			"sub-call-a2", "sub-call-b0", "sub-call-b1"}));
	for (const auto &s : engine_->list("", 100)) {
		EXPECT_EQ(s.package, "reg");
		EXPECT_EQ(s.resource, s.dialog.callid[9] == 'a' ? kAlice : kBob);
	}
	EXPECT_EQ(engine_->list(kAlice, 2).size(), 2u);
	EXPECT_EQ(engine_->list(kAlice, 1).size(), 1u);
	EXPECT_EQ(engine_->list("", 2).size(), 2u);
	EXPECT_TRUE(engine_->list("", 0).empty());

	// another prefix is another store
	FakeHost other_host;
	Engine other(Config{}, *redis_, "imps:reginfo-other", other_host);
	EXPECT_EQ(other.count(), 0);
	EXPECT_TRUE(other.list("", 100).empty());
	EXPECT_TRUE(other.list(kAlice, 100).empty());
}

TEST_F(EngineTest, DialogFieldsAreKeptBinarySafe)
{
	SubscribeRequest req = initial(kAlice, kAlice, 600);
	req.dialog.callid = std::string("we\tird\ncall\0id\"{}\\", 18);
	req.dialog.route_set = "<sip:x;lr>,  <sip:y;lr;ftag=\"q\">";
	req.dialog.remote_target = "sip:\xc3\xa9\xff@127.0.0.1";  // not valid UTF-8
	req.dialog.local_contact.clear();
	auto n = subscribe_ok(req);
	EXPECT_EQ(n.sub.dialog.callid, req.dialog.callid);
	auto l = engine_->list(kAlice, 10);
	ASSERT_EQ(l.size(), 1u);
	EXPECT_EQ(l[0].dialog.callid, req.dialog.callid);
	EXPECT_EQ(l[0].dialog.route_set, req.dialog.route_set);
	EXPECT_EQ(l[0].dialog.remote_target, req.dialog.remote_target);
	EXPECT_EQ(l[0].dialog.local_contact, "");
	EXPECT_EQ(l[0].sid, subs::subscription_id(req.dialog.callid, "from-1", "to-1"));
	// and in the NOTIFY of a later change
	answer_all();
	Binding b = binding("sip:alice@127.0.0.1", kNow + 3600);
	change(kAlice, b, Change::Insert, Cause::Register, {b}, kNow + 1);
	ASSERT_EQ(host_.sent.size(), 2u);
	EXPECT_EQ(host_.sent[1].sub.dialog.callid, req.dialog.callid);
	EXPECT_EQ(host_.sent[1].sub.dialog.remote_target, req.dialog.remote_target);
	EXPECT_EQ(host_.sent[1].sub.dialog.route_set, req.dialog.route_set);
}

TEST_F(EngineTest, CountForgetsSubscriptionsWhoseRecordsVanished)
{
	// The AoR's subscription keys carry a TTL (an hour past the last expiry): when Redis drops
	// them (no timer ran meanwhile), the subscriptions are gone for count() as for list().
	subscribe_ok(initial(kAlice, kAlice, 600));
	subscribe_ok(initial(kBob, kBob, 3600, "bob"));
	answer_all();
	ASSERT_EQ(engine_->count(), 2);
	for (const char *kind : {"subs", "sexp", "due"})
		redis_->command({"DEL", kPrefix + ":{" + kAlice + "}:" + kind});
	engine_->expire(kNow + 700, (kNow + 700) * 1000);
	engine_->send_due((kNow + 700) * 1000);
	EXPECT_EQ(host_.sent.size(), 2u) << "no final NOTIFY for a record that is gone";
	EXPECT_EQ(callids(engine_->list("", 10)), std::set<std::string>{"sub-call-bob"});
	EXPECT_EQ(engine_->count(), 1) << "a vanished subscription is still counted";
	EXPECT_EQ(engine_->subscribe(in_dialog(initial(kAlice, kAlice, 600), 600, 2, kNow + 701)).code, 481);
}

TEST_F(EngineTest, SubscriptionIdIsStableAndPerDialog)
{
	EXPECT_EQ(subs::subscription_id("c", "f", "t"), subs::subscription_id("c", "f", "t"));
	EXPECT_NE(subs::subscription_id("c", "f", "t"), subs::subscription_id("c", "f", "t2"));
	EXPECT_NE(subs::subscription_id("c", "f", "t"), subs::subscription_id("c", "f2", "t"));
	EXPECT_NE(subs::subscription_id("c", "ft", ""), subs::subscription_id("c", "f", "t"));
	EXPECT_EQ(subs::subscription_id("c", "f", "t").size(), 24u);
}

TEST_F(EngineTest, RetransmittedInitialSubscribeKeepsCountersGoing)
{
	// sl's To tag is the same for a retransmission: same dialog, same stored subscription
	auto req = initial(kAlice, kAlice, 600);
	auto first = subscribe_ok(req);
	EXPECT_EQ(first.sub.version, 0u);
	EXPECT_EQ(first.sub.cseq, 1u);
	// retransmitted before the first NOTIFY was answered: its NOTIFY waits for that answer
	SubscribeResponse res = engine_->subscribe(req);
	EXPECT_EQ(res.code, 200);
	engine_->flush();
	EXPECT_EQ(host_.sent.size(), 1u);
	answer(0, 200, false, kNow + 1);
	ASSERT_EQ(host_.sent.size(), 2u);
	const auto &again = host_.sent[1];
	EXPECT_EQ(first.sub.sid, again.sub.sid);
	EXPECT_EQ(again.sub.version, 1u);
	EXPECT_EQ(again.sub.cseq, 2u);
	EXPECT_VALID_BODY(again);
	// once idle, a retransmission gets its NOTIFY at once
	answer_all();
	auto third = subscribe_ok(req);
	EXPECT_EQ(third.sub.sid, first.sub.sid);
	EXPECT_EQ(third.sub.version, 2u);
	EXPECT_EQ(third.sub.cseq, 3u);
	EXPECT_EQ(engine_->count(), 1);
	EXPECT_EQ(host_.st(Stat::ActiveSubscriptions), 1);
}

// --- a binding change handed between processes ------------------------------------------------------

namespace {

Binding full_binding(const std::string &tag)
{
	Binding b;
	b.uri = "sip:alice@127.0.0." + tag + ";transport=tcp";
	b.callid = std::string("call\0\t\r\n", 8) + tag;
	b.instance = "<urn:uuid:" + tag + ">";
	b.reg_id = 7;
	b.temp_gruu = "sip:tgruu." + tag + "@a.example;gr";
	b.expires_at = kNow + 123;
	b.q = -1;
	b.cseq = -1;
	b.has_msg_info = true;
	b.display_name = "Dis\"play " + tag;
	b.params = ";+sip.instance=\"<urn:uuid:" + tag + ">\";reg-id=7";
	return b;
}

void expect_binding_eq(const Binding &got, const Binding &want)
{
	EXPECT_EQ(got.uri, want.uri);
	EXPECT_EQ(got.callid, want.callid);
	EXPECT_EQ(got.instance, want.instance);
	EXPECT_EQ(got.reg_id, want.reg_id);
	EXPECT_EQ(got.temp_gruu, want.temp_gruu);
	EXPECT_EQ(got.expires_at, want.expires_at);
	EXPECT_EQ(got.q, want.q);
	EXPECT_EQ(got.cseq, want.cseq);
	EXPECT_EQ(got.has_msg_info, want.has_msg_info);
	EXPECT_EQ(got.display_name, want.display_name);
	EXPECT_EQ(got.params, want.params);
}

BindingChange sample_change()
{
	BindingChange c;
	c.aor = kAlice;
	c.changed = full_binding("1");
	c.changed.q = 1000;
	c.changed.cseq = 42;
	c.change = Change::Delete;
	c.cause = Cause::Admin;
	c.admin_event = "rejected";
	Binding plain;  // every field at its default
	c.current = {full_binding("2"), plain, full_binding("3")};
	c.now = kNow + 17;
	c.now_ms = (kNow + 17) * 1000 + 345;
	return c;
}

}  // namespace

TEST(BindingChangeBlob, RoundTripKeepsEveryField)
{
	const BindingChange c = sample_change();
	const std::string blob = c.serialize();
	BindingChange out;
	out.current = {full_binding("junk")};  // parse replaces whatever was there
	ASSERT_TRUE(BindingChange::parse(blob, out));
	EXPECT_EQ(out.aor, c.aor);
	expect_binding_eq(out.changed, c.changed);
	EXPECT_EQ(out.change, c.change);
	EXPECT_EQ(out.cause, c.cause);
	EXPECT_EQ(out.admin_event, c.admin_event);
	EXPECT_EQ(out.now, c.now);
	EXPECT_EQ(out.now_ms, c.now_ms);
	ASSERT_EQ(out.current.size(), c.current.size());
	for (size_t i = 0; i < c.current.size(); ++i) expect_binding_eq(out.current[i], c.current[i]);
	EXPECT_EQ(out.serialize(), blob);

	// every enum value survives, and an empty record too
	for (Change ch : {Change::Insert, Change::Update, Change::Delete, Change::Expire})
		for (Cause ca : {Cause::Register, Cause::Admin, Cause::Other}) {
			BindingChange e;
			e.aor = "";
			e.change = ch;
			e.cause = ca;
			BindingChange back;
			ASSERT_TRUE(BindingChange::parse(e.serialize(), back));
			EXPECT_EQ(back.change, ch);
			EXPECT_EQ(back.cause, ca);
			EXPECT_TRUE(back.current.empty());
			EXPECT_TRUE(back.aor.empty());
		}
}

TEST(BindingChangeBlob, TruncatedOrExtendedBlobDoesNotParse)
{
	const std::string blob = sample_change().serialize();
	for (size_t len = 0; len < blob.size(); ++len) {
		BindingChange out;
		EXPECT_FALSE(BindingChange::parse(blob.substr(0, len), out)) << "length " << len << " of " << blob.size();
	}
	BindingChange out;
	EXPECT_FALSE(BindingChange::parse(blob + '\0', out)) << "trailing bytes";
	EXPECT_FALSE(BindingChange::parse(blob + blob, out));
}

TEST(BindingChangeBlob, GarbageDoesNotParse)
{
	BindingChange out;
	for (const std::string &g : {std::string(), std::string("R"), std::string("RC"), std::string("RC1"),
				 std::string("RC2") + sample_change().serialize().substr(3), std::string("hello world"),
				 std::string(64, '\0'), std::string(64, '\xff'), std::string("RC1") + std::string(200, '\xff')})
		EXPECT_FALSE(BindingChange::parse(g, out)) << g.size();
	// random bytes after the magic
	std::mt19937 rng(7);
	for (int i = 0; i < 500; ++i) {
		std::string g = "RC1";
		size_t n = rng() % 300;
		for (size_t k = 0; k < n; ++k) g += static_cast<char>(rng() & 0xff);
		EXPECT_FALSE(BindingChange::parse(g, out)) << i;
	}
	// a count of current bindings that is negative or absurd
	BindingChange none;
	none.aor = kAlice;
	std::string blob = none.serialize();
	ASSERT_TRUE(BindingChange::parse(blob, out));
	for (long long n : {-1LL, 1LL, 10001LL, (1LL << 40)}) {
		std::string b = blob;
		std::memcpy(&b[b.size() - sizeof(n)], &n, sizeof(n));
		EXPECT_FALSE(BindingChange::parse(b, out)) << n;
	}
}

TEST(BindingChangeBlob, OutOfRangeChangeOrCauseDoesNotParse)
{
	// the bytes that differ between two blobs differing only in the change (the cause) are
	// that field: set to a value that is no Change (Cause)
	auto field_at = [](BindingChange a, BindingChange b) {
		std::string x = a.serialize(), y = b.serialize();
		size_t i = 0;
		while (i < x.size() && x[i] == y[i]) ++i;
		return i;
	};
	BindingChange base = sample_change();
	BindingChange ch = base, ca = base;
	base.change = Change::Insert;
	base.cause = Cause::Register;
	ch.change = Change::Expire;
	ch.cause = Cause::Register;
	ca.change = Change::Insert;
	ca.cause = Cause::Other;
	const std::string blob = base.serialize();
	for (size_t at : {field_at(base, ch), field_at(base, ca)}) {
		ASSERT_LT(at, blob.size());
		for (unsigned char v : {0x63, 0x80, 0xff}) {
			std::string b = blob;
			b[at] = static_cast<char>(v);
			BindingChange out;
			EXPECT_FALSE(BindingChange::parse(b, out)) << "byte " << at << " = " << int(v);
		}
	}
}

// --- a binding change handed over, end to end ----------------------------------------------------------

TEST_F(EngineTest, ParsedBindingChangeNotifiesLikeTheOriginal)
{
	subscribe_ok(initial(kAlice, kAlice, 3600));
	answer_all();
	Binding b = binding("sip:alice@127.0.0.1", kNow + 3600, "cid-1", 5);
	host_.records[kAlice] = {b};
	BindingChange c;
	c.aor = kAlice;
	c.changed = b;
	c.change = Change::Insert;
	c.cause = Cause::Register;
	c.current = {b};
	c.now = kNow + 1;
	c.now_ms = (kNow + 1) * 1000;
	BindingChange back;
	ASSERT_TRUE(BindingChange::parse(c.serialize(), back));
	engine_->binding_changed(back);
	ASSERT_EQ(host_.sent.size(), 2u);
	EXPECT_VALID_BODY(host_.sent[1]);
	Reginfo p(host_.sent[1].body);
	xmlNodePtr ct = p.node("//r:contact");
	ASSERT_NE(ct, nullptr);
	EXPECT_EQ(A(ct, "event"), "registered");
	EXPECT_EQ(A(ct, "cseq"), "5");
	EXPECT_EQ(A(ct, "expires"), "3599");
	EXPECT_EQ(host_.sent[1].sub.version, 1u);
}
