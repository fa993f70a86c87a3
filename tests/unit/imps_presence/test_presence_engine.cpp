// The presence application (modules/imps_presence/core/engine.cpp) against a recording fake
// Host with a rule map and the real Redis store (a private redis-server on a free port). Every
// NOTIFY body is validated: PIDF against tests/schemas/presence-all.xsd, watcher information
// against the RFC 3858 schema, and read back field by field.
#include "fake_host.hpp"
#include "pidf_schema.hpp"
#include "winfo_schema.hpp"

#include "imps_presence/core/pidf.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

using namespace imps::presence;
using imps::test::FakePresenceHost;
using imps::test::header_of;
using imps::test::kPresNow;
using imps::test::kPresNowMs;
using imps::test::ParsedXml;
using imps::test::PidfSchemaValid;
using imps::test::pidf_body;
using imps::test::PresenceRedisTest;
using imps::test::Winfo;
using imps::test::WinfoValid;

namespace {

constexpr long long kNow = kPresNow;
constexpr long long kMs = kPresNowMs;
const std::string kAlice = "alice@a.example";
const std::string kBob = "bob@b.example";
const std::string kCarol = "carol@c.example";
const std::string kPidfType = "application/pidf+xml";
const std::string kWinfoType = "application/watcherinfo+xml";
using Notify = FakePresenceHost::Notify;

// The basic status of a tuple of a PIDF document ("" when there is no such tuple).
std::string basic_of(const std::string &doc, const std::string &tuple)
{
	ParsedXml x(doc, {{"p", kPidfNs}});
	return ParsedXml::text(x.node("/p:presence/p:tuple[@id='" + tuple + "']/p:status/p:basic"));
}

std::vector<std::string> tuple_ids(const std::string &doc)
{
	ParsedXml x(doc, {{"p", kPidfNs}});
	std::vector<std::string> out;
	for (xmlNodePtr n : x.nodes("/p:presence/p:tuple")) out.push_back(ParsedXml::attr(n, "id").value_or(""));
	return out;
}

// One <watcher> of a watcherinfo document.
struct WEntry {
	std::string id, uri, status, event, display_name;
	std::optional<std::string> expiration, duration;
};
struct WDoc {
	std::string version, state, resource, package;
	std::vector<WEntry> watchers;
};

WDoc read_winfo(const std::string &xml)
{
	Winfo x(xml);
	WDoc d;
	xmlNodePtr root = x.node("/w:watcherinfo");
	d.version = ParsedXml::attr(root, "version").value_or("?");
	d.state = ParsedXml::attr(root, "state").value_or("?");
	xmlNodePtr list = x.node("/w:watcherinfo/w:watcher-list");
	d.resource = ParsedXml::attr(list, "resource").value_or("?");
	d.package = ParsedXml::attr(list, "package").value_or("?");
	for (xmlNodePtr n : x.nodes("/w:watcherinfo/w:watcher-list/w:watcher")) {
		WEntry e;
		e.id = ParsedXml::attr(n, "id").value_or("");
		e.uri = ParsedXml::text(n);
		e.status = ParsedXml::attr(n, "status").value_or("");
		e.event = ParsedXml::attr(n, "event").value_or("");
		e.display_name = ParsedXml::attr(n, "display-name").value_or("");
		e.expiration = ParsedXml::attr(n, "expiration");
		e.duration = ParsedXml::attr(n, "duration-subscribed");
		d.watchers.push_back(e);
	}
	return d;
}

std::string tag_sid(const std::string &tag)
{
	return subscription_id("sub-call-" + tag, "from-" + tag, "to-" + tag);
}

class PresenceEngine : public PresenceRedisTest {
protected:
	void SetUp() override
	{
		PresenceRedisTest::SetUp();
		Config c;
		c.min_notify_interval_ms = 0;
		make_engine(c);
	}

	Engine &make_engine(Config cfg)
	{
		engine_ = std::make_unique<Engine>(std::move(cfg), *store_, host_);
		return *engine_;
	}

	static PublishRequest pub(const std::string &body, const std::string &if_match = "", int expires = 3600,
			long long now = kNow, const std::string &pres = kAlice)
	{
		PublishRequest r;
		r.has_event = true;
		r.event = "presence";
		r.has_body = !body.empty();
		r.content_type = r.has_body ? kPidfType : "";
		r.body = body;
		r.if_match = if_match;
		r.expires = expires;
		r.presentity = pres;
		r.identity = pres;
		r.source = "udp:127.0.0.1:5062";
		r.now = now;
		r.now_ms = now * 1000;
		return r;
	}

	// PUBLISH answered 200 and flushed; returns the new entity tag.
	std::string publish_ok(const PublishRequest &r)
	{
		Response res = engine_->publish(r);
		EXPECT_EQ(res.code, 200) << res.reason;
		engine_->flush();
		return header_of(res, "SIP-ETag").value_or("");
	}
	std::string publish_ok(const std::string &body, long long now = kNow)
	{
		return publish_ok(pub(body, "", 3600, now));
	}

	// An initial SUBSCRIBE from `watcher` to `pres`.
	static SubscribeRequest sub_req(const std::string &pres, const std::string &watcher, int expires,
			const std::string &tag, const std::string &event = "presence", long long now = kNow)
	{
		SubscribeRequest r;
		r.has_event = true;
		r.event = event;
		r.expires = expires;
		r.presentity = pres;
		r.watcher = watcher;
		r.display_name = "W " + tag;
		r.now = now;
		r.now_ms = now * 1000;
		Subscription &d = r.dialog;
		d.callid = "sub-call-" + tag;
		d.remote_tag = "from-" + tag;
		d.local_tag = "to-" + tag;
		d.remote_uri = "sip:" + watcher;
		d.watcher_uri = d.remote_uri;
		d.local_uri = "sip:" + pres;
		d.remote_target = "sip:" + tag + "@127.0.0.50:5060";
		d.route_set = "<sip:edge.a.example;lr>";
		d.socket = "udp:127.0.0.1:5070";
		d.local_contact = "sip:ps.a.example:5070";
		d.remote_cseq = 1;
		return r;
	}

	static SubscribeRequest in_dialog(const SubscribeRequest &init, int expires, long long rcseq, long long now)
	{
		SubscribeRequest r = init;
		r.in_dialog = true;
		r.expires = expires;
		r.dialog.remote_cseq = rcseq;
		r.now = now;
		r.now_ms = now * 1000;
		return r;
	}

	// Answered 200, flushed: every NOTIFY it caused (the subscriber's first).
	std::vector<Notify> subscribe_ok(const SubscribeRequest &r)
	{
		host_.take();
		Response res = engine_->subscribe(r);
		EXPECT_EQ(res.code, 200) << res.reason;
		engine_->flush();
		auto sent = sent_now();
		EXPECT_FALSE(sent.empty());
		return sent;
	}

	// Every NOTIFY sent since the last take, bodies checked.
	std::vector<Notify> sent_now()
	{
		auto sent = host_.take();
		for (const auto &n : sent) check_body(n);
		return sent;
	}

	// The only NOTIFY sent since the last take, checked.
	Notify only_notify()
	{
		auto sent = sent_now();
		EXPECT_EQ(sent.size(), 1u);
		return sent.empty() ? Notify{} : sent[0];
	}

	// Every body is schema-valid for its type; no body means no type.
	static void check_body(const Notify &n)
	{
		if (n.content_type == kPidfType) EXPECT_TRUE(PidfSchemaValid(n.body));
		else if (n.content_type == kWinfoType) EXPECT_TRUE(WinfoValid(n.body));
		else EXPECT_TRUE(n.content_type.empty() && n.body.empty()) << n.content_type << "\n" << n.body;
	}

	std::optional<Subscription> stored(const std::string &sid)
	{
		for (const auto &s : store_->subscriptions(kAlice, ""))
			if (s.sid == sid) return s;
		return std::nullopt;
	}

	std::string offline() const { return engine_->offline(kAlice); }
	// The document a watcher gets now: the stored one, or (nobody watched at the last change,
	// so none is stored) the one composed from the live publications.
	std::string current_doc() const { return engine_->show(kAlice, time(nullptr)).document; }

	// Alice watches her watchers; returns the initial winfo NOTIFY's document.
	WDoc winfo_sub(const std::string &tag = "winfo", int expires = 600)
	{
		auto sent = subscribe_ok(sub_req(kAlice, kAlice, expires, tag, "presence.winfo"));
		EXPECT_EQ(sent.size(), 1u);
		EXPECT_EQ(sent[0].content_type, kWinfoType);
		return read_winfo(sent[0].body);
	}

	FakePresenceHost host_;
	std::unique_ptr<Engine> engine_;
};

}  // namespace

// --- PUBLISH: refusals ------------------------------------------------------------------------------

TEST_F(PresenceEngine, PublishOfAnotherEventIs489WithAllowEvents)
{
	for (const char *ev : {"dialog", "presence.winfo", "", "presencex"}) {
		PublishRequest r = pub(pidf_body(kAlice, "t1", "open"));
		r.event = ev;
		Response res = engine_->publish(r);
		EXPECT_EQ(res.code, 489) << ev;
		EXPECT_EQ(header_of(res, "Allow-Events"), "presence") << ev;
	}
	PublishRequest r = pub(pidf_body(kAlice, "t1", "open"));
	r.has_event = false;
	EXPECT_EQ(engine_->publish(r).code, 489);
	EXPECT_EQ(store_->count_publications(), 0);
	// Parameters and case do not matter.
	r = pub(pidf_body(kAlice, "t1", "open"));
	r.event = " Presence ;id=1";
	EXPECT_EQ(engine_->publish(r).code, 200);
}

TEST_F(PresenceEngine, PublishOfAnotherBodyTypeIs415WithAccept)
{
	PublishRequest r = pub(pidf_body(kAlice, "t1", "open"));
	r.content_type = "application/xpidf+xml";
	Response res = engine_->publish(r);
	EXPECT_EQ(res.code, 415);
	EXPECT_EQ(header_of(res, "Accept"), kPidfType);
	EXPECT_EQ(store_->count_publications(), 0);
	r.content_type = "Application/PIDF+XML";
	EXPECT_EQ(engine_->publish(r).code, 200);
}

TEST_F(PresenceEngine, PublishTooBriefIs423WithMinExpires)
{
	Response res = engine_->publish(pub(pidf_body(kAlice, "t1", "open"), "", 59));
	EXPECT_EQ(res.code, 423);
	EXPECT_EQ(header_of(res, "Min-Expires"), "60");
	std::string etag = publish_ok(pub(pidf_body(kAlice, "t1", "open"), "", 60));
	// A refresh too brief as well.
	res = engine_->publish(pub("", etag, 30));
	EXPECT_EQ(res.code, 423);
	EXPECT_EQ(store_->count_publications(), 1);
}

TEST_F(PresenceEngine, PublishForAnotherIdentityIs403)
{
	PublishRequest r = pub(pidf_body(kAlice, "t1", "open"));
	r.identity = kBob;
	Response res = engine_->publish(r);
	EXPECT_EQ(res.code, 403);
	EXPECT_EQ(store_->count_publications(), 0);
	r.identity = "Alice@A.Example";
	EXPECT_EQ(engine_->publish(r).code, 200) << "identities compare without case";
}

TEST_F(PresenceEngine, PublishWithoutBodyOrIfMatchIs400)
{
	Response res = engine_->publish(pub(""));
	EXPECT_EQ(res.code, 400);
	EXPECT_NE(res.reason.find("without body"), std::string::npos) << res.reason;
	res = engine_->publish(pub(pidf_body(kAlice, "t1", "open"), "", 0));
	EXPECT_EQ(res.code, 400) << "Expires 0 needs an entity tag";
	EXPECT_EQ(store_->count_publications(), 0);
}

TEST_F(PresenceEngine, PublishOfABadBodyIs400WithTheReason)
{
	struct Case {
		std::string body, reason;
	} cases[] = {
		{pidf_body(kBob, "t1", "open"), "entity does not name the presentity"},
		{"<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:" + kAlice + "\">", "not well-formed"},
		{"<?xml version=\"1.0\"?><!DOCTYPE presence [<!ENTITY a \"b\">]><presence/>", "DOCTYPE not allowed"},
		{pidf_body(kAlice, "t1", "maybe"), "basic must be open or closed"},
	};
	for (const auto &c : cases) {
		Response res = engine_->publish(pub(c.body));
		EXPECT_EQ(res.code, 400) << c.body;
		EXPECT_EQ(res.reason.rfind("Bad Request (", 0), 0u) << res.reason;
		EXPECT_NE(res.reason.find(c.reason), std::string::npos) << res.reason;
	}
	EXPECT_EQ(host_.st(Stat::RejectedBodies), 4);
	EXPECT_EQ(host_.st(Stat::Publications), 0);
	EXPECT_EQ(store_->count_publications(), 0);

	// A bad body in a modify leaves the publication as it was.
	std::string etag = publish_ok(pidf_body(kAlice, "t1", "open"));
	EXPECT_EQ(engine_->publish(pub(pidf_body(kAlice, "t1", "half"), etag)).code, 400);
	EXPECT_EQ(basic_of(current_doc(), "t1"), "open");
	EXPECT_EQ(engine_->publish(pub("", etag)).code, 200) << "the entity tag still works";
}

TEST_F(PresenceEngine, PublishWithAnUnknownEntityTagIs412AndCounted)
{
	Response res = engine_->publish(pub("", "nope"));
	EXPECT_EQ(res.code, 412);
	EXPECT_EQ(engine_->publish(pub(pidf_body(kAlice, "t1", "open"), "nope")).code, 412);
	EXPECT_EQ(engine_->publish(pub("", "nope", 0)).code, 412);
	EXPECT_EQ(host_.st(Stat::Rejected412), 3);
	EXPECT_EQ(store_->count_publications(), 0);

	// An expired entity tag as well.
	std::string etag = publish_ok(pub(pidf_body(kAlice, "t1", "open"), "", 60));
	EXPECT_EQ(engine_->publish(pub("", etag, 60, kNow + 60)).code, 412);
	EXPECT_EQ(host_.st(Stat::Rejected412), 4);
}

TEST_F(PresenceEngine, PublishTooManyIs403)
{
	Config c;
	c.max_publications = 2;
	c.min_notify_interval_ms = 0;
	make_engine(c);
	publish_ok(pidf_body(kAlice, "t1", "open"));
	publish_ok(pidf_body(kAlice, "t2", "open"));
	Response res = engine_->publish(pub(pidf_body(kAlice, "t3", "open")));
	EXPECT_EQ(res.code, 403);
	EXPECT_EQ(store_->count_publications(), 2);
}

// --- PUBLISH: accepted --------------------------------------------------------------------------------

TEST_F(PresenceEngine, Publish200CarriesANewEntityTagAndTheExpiry)
{
	Response res = engine_->publish(pub(pidf_body(kAlice, "t1", "open")));
	ASSERT_EQ(res.code, 200);
	std::string e1 = header_of(res, "SIP-ETag").value_or("");
	EXPECT_EQ(e1.size(), 24u);
	EXPECT_EQ(e1.find_first_not_of("0123456789abcdef"), std::string::npos) << e1;
	EXPECT_EQ(header_of(res, "Expires"), "3600");
	EXPECT_EQ(host_.st(Stat::Publications), 1);

	// Above the maximum: clamped; the stored expiry is the clamped one.
	res = engine_->publish(pub("", e1, 7200, kNow + 10));
	ASSERT_EQ(res.code, 200);
	EXPECT_EQ(header_of(res, "Expires"), "3600");
	std::string e2 = header_of(res, "SIP-ETag").value_or("");
	EXPECT_NE(e2, e1) << "a refresh hands out a new entity tag";
	EXPECT_EQ(engine_->publish(pub("", e1, 600, kNow + 11)).code, 412) << "the old one is spent";
	PresentityView v = engine_->show(kAlice, kNow + 11);
	ASSERT_EQ(v.publications.size(), 1u);
	EXPECT_EQ(v.publications[0].etag, e2);
	EXPECT_EQ(v.publications[0].expires_at, kNow + 10 + 3600);
	EXPECT_EQ(v.publications[0].source, "udp:127.0.0.1:5062");

	// No Expires: the default.
	Config c;
	c.pub_default_expires = 900;
	make_engine(c);
	res = engine_->publish(pub(pidf_body(kAlice, "t2", "open"), "", -1));
	EXPECT_EQ(header_of(res, "Expires"), "900");
	EXPECT_EQ(host_.st(Stat::Publications), 3);
}

TEST_F(PresenceEngine, PublishNotifiesWatchersAndRemoveSendsTheOfflineDocument)
{
	host_.default_action = Action::Allow;
	SubscribeRequest s = sub_req(kAlice, kBob, 600, "b");
	auto first = subscribe_ok(s);
	ASSERT_EQ(first.size(), 1u);
	EXPECT_EQ(first[0].body, offline()) << "nothing published yet";
	EXPECT_EQ(first[0].sub.cseq, 1u);

	std::string etag = publish_ok(pub(pidf_body(kAlice, "t1", "open", "here"), "", 3600, kNow + 5));
	Notify n = only_notify();
	EXPECT_EQ(n.content_type, kPidfType);
	EXPECT_EQ(basic_of(n.body, "t1"), "open");
	EXPECT_EQ(n.body, current_doc());
	EXPECT_EQ(n.state, "active;expires=595");
	EXPECT_EQ(n.sub.cseq, 2u);
	EXPECT_EQ(n.sub.sid, tag_sid("b"));
	EXPECT_EQ(n.sub.remote_target, "sip:b@127.0.0.50:5060");

	Response res = engine_->publish(pub("", etag, 0, kNow + 6));
	EXPECT_EQ(res.code, 200);
	EXPECT_EQ(header_of(res, "Expires"), "0");
	EXPECT_FALSE(header_of(res, "SIP-ETag").has_value());
	engine_->flush();
	n = only_notify();
	EXPECT_EQ(n.body, offline());
	EXPECT_EQ(basic_of(n.body, "offline"), "closed");
	EXPECT_EQ(n.sub.cseq, 3u);
	EXPECT_EQ(store_->count_publications(), 0);
	EXPECT_EQ(host_.st(Stat::NotifiesSent), 3);
}

TEST_F(PresenceEngine, TwoPublicationsAreComposedIntoOneDocument)
{
	host_.default_action = Action::Allow;
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	publish_ok(pidf_body(kAlice, "phone", "open"), kNow + 1);
	only_notify();
	std::string e2 = publish_ok(pidf_body(kAlice, "pc", "closed"), kNow + 2);
	Notify n = only_notify();
	auto ids = tuple_ids(n.body);
	std::sort(ids.begin(), ids.end());
	EXPECT_EQ(ids, (std::vector<std::string>{"pc", "phone"}));
	EXPECT_EQ(basic_of(n.body, "phone"), "open");
	EXPECT_EQ(basic_of(n.body, "pc"), "closed");
	EXPECT_EQ(n.sub.cseq, 3u);

	// Modify one of them.
	publish_ok(pub(pidf_body(kAlice, "pc", "open"), e2, 3600, kNow + 3));
	n = only_notify();
	EXPECT_EQ(basic_of(n.body, "pc"), "open");
	EXPECT_EQ(basic_of(n.body, "phone"), "open");
}

TEST_F(PresenceEngine, ModifyWithTheSameBodyAndRefreshSendNoNotify)
{
	host_.default_action = Action::Allow;
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	std::string body = pidf_body(kAlice, "t1", "open", "same");
	std::string e1 = publish_ok(body, kNow + 1);
	only_notify();
	std::string e2 = publish_ok(pub(body, e1, 3600, kNow + 2));
	EXPECT_FALSE(e2.empty());
	EXPECT_TRUE(host_.take().empty()) << "identical document: no NOTIFY";
	std::string e3 = publish_ok(pub("", e2, 3600, kNow + 3));
	EXPECT_FALSE(e3.empty());
	EXPECT_TRUE(host_.take().empty()) << "a refresh: no NOTIFY";
	publish_ok(pub(pidf_body(kAlice, "t1", "closed", "same"), e3, 3600, kNow + 4));
	EXPECT_EQ(only_notify().sub.cseq, 3u) << "the next real change has the next CSeq";
}

TEST_F(PresenceEngine, ModifyWithTheSameBodyAmongSeveralPublicationsSendsNoNotify)
{
	host_.default_action = Action::Allow;
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	std::string phone = pidf_body(kAlice, "phone", "open");
	std::string e1 = publish_ok(phone, kNow + 1);
	publish_ok(pidf_body(kAlice, "pc", "closed"), kNow + 2);
	host_.take();
	std::string before = current_doc();
	publish_ok(pub(phone, e1, 3600, kNow + 3));
	auto sent = sent_now();
	EXPECT_TRUE(sent.empty()) << "the phone republished the same body; NOTIFY sent anyway:\nbefore: "
							  << before << "\nafter:  " << (sent.empty() ? "" : sent[0].body);
}

TEST_F(PresenceEngine, AdminPublishIsFromRpcAndNotifiesUnderTheLock)
{
	host_.default_action = Action::Allow;
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	int locks = host_.locks;
	Response res = engine_->admin_publish(kAlice, pidf_body(kAlice, "rpc", "open"), 120, "", kNow + 1, kMs + 1000);
	EXPECT_EQ(res.code, 200);
	EXPECT_TRUE(header_of(res, "SIP-ETag").has_value());
	EXPECT_EQ(host_.locks, locks + 1);
	EXPECT_TRUE(host_.held.empty());
	Notify n = only_notify();  // flushed by admin_publish itself
	EXPECT_EQ(basic_of(n.body, "rpc"), "open");
	PresentityView v = engine_->show(kAlice, kNow + 1);
	ASSERT_EQ(v.publications.size(), 1u);
	EXPECT_EQ(v.publications[0].source, "rpc");
	EXPECT_EQ(v.document, n.body);
	EXPECT_EQ(engine_->admin_publish(kAlice, pidf_body(kBob, "x", "open"), 120, "", kNow, kMs).code, 400);
}

// --- SUBSCRIBE: refusals -------------------------------------------------------------------------------

TEST_F(PresenceEngine, SubscribeToAnotherEventIs489)
{
	for (const char *ev : {"reg", "dialog", "presence.winfo.x", ""}) {
		Response res = engine_->subscribe(sub_req(kAlice, kBob, 600, "x", ev));
		EXPECT_EQ(res.code, 489) << ev;
		EXPECT_EQ(header_of(res, "Allow-Events"), "presence, presence.winfo");
	}
	SubscribeRequest r = sub_req(kAlice, kBob, 600, "x");
	r.has_event = false;
	EXPECT_EQ(engine_->subscribe(r).code, 489);
	engine_->flush();
	EXPECT_TRUE(host_.sent.empty());
	EXPECT_EQ(store_->count_subscriptions(), 0);
}

TEST_F(PresenceEngine, SubscribeAcceptingNeitherTypeIs406)
{
	SubscribeRequest r = sub_req(kAlice, kBob, 600, "x");
	r.has_accept = true;
	r.accept = {"application/xpidf+xml", "text/plain"};
	Response res = engine_->subscribe(r);
	EXPECT_EQ(res.code, 406);
	EXPECT_EQ(header_of(res, "Accept"), kPidfType);

	SubscribeRequest w = sub_req(kAlice, kAlice, 600, "w", "presence.winfo");
	w.has_accept = true;
	w.accept = {kPidfType};
	res = engine_->subscribe(w);
	EXPECT_EQ(res.code, 406);
	EXPECT_EQ(header_of(res, "Accept"), kWinfoType);
	engine_->flush();
	EXPECT_TRUE(host_.sent.empty());
	EXPECT_EQ(store_->count_subscriptions(), 0);

	r.accept = {"application/*;q=0.5"};
	EXPECT_EQ(engine_->subscribe(r).code, 200);
}

TEST_F(PresenceEngine, SubscribeTooBriefIs423)
{
	Response res = engine_->subscribe(sub_req(kAlice, kBob, 59, "x"));
	EXPECT_EQ(res.code, 423);
	EXPECT_EQ(header_of(res, "Min-Expires"), "60");
	EXPECT_EQ(store_->count_subscriptions(), 0);
}

TEST_F(PresenceEngine, BlockedWatcherIs403AndNothingIsStored)
{
	host_.rules[{kAlice, kBob}] = Action::Block;
	winfo_sub();
	Response res = engine_->subscribe(sub_req(kAlice, kBob, 600, "b"));
	EXPECT_EQ(res.code, 403);
	engine_->flush();
	EXPECT_TRUE(host_.take().empty()) << "no NOTIFY, not even to the owner's winfo";
	EXPECT_EQ(store_->subscriptions(kAlice, "presence").size(), 0u);
	EXPECT_EQ(host_.rule_calls.back(), (std::pair<std::string, std::string>{kAlice, kBob}));
	// A fetch is refused as well.
	EXPECT_EQ(engine_->subscribe(sub_req(kAlice, kBob, 0, "bf")).code, 403);
}

// --- SUBSCRIBE: initial ------------------------------------------------------------------------------

TEST_F(PresenceEngine, AllowedWatcherGetsAnActiveNotifyWithTheComposedDocument)
{
	host_.rules[{kAlice, kBob}] = Action::Allow;
	publish_ok(pidf_body(kAlice, "t1", "open", "at work"));
	SubscribeRequest r = sub_req(kAlice, kBob, 600, "b");
	Response res = engine_->subscribe(r);
	ASSERT_EQ(res.code, 200);
	EXPECT_EQ(header_of(res, "Expires"), "600");
	EXPECT_EQ(header_of(res, "Contact"), "<sip:ps.a.example:5070>");
	engine_->flush();
	Notify n = only_notify();
	EXPECT_EQ(n.content_type, kPidfType);
	EXPECT_EQ(n.body, current_doc());
	EXPECT_EQ(basic_of(n.body, "t1"), "open");
	EXPECT_EQ(n.state, "active;expires=600");
	EXPECT_EQ(n.sub.cseq, 1u);
	EXPECT_EQ(n.sub.sid, tag_sid("b"));
	EXPECT_EQ(n.sub.status, "active");
	EXPECT_EQ(n.sub.callid, "sub-call-b");
	EXPECT_EQ(n.sub.local_tag, "to-b");
	EXPECT_EQ(n.sub.route_set, "<sip:edge.a.example;lr>");

	auto s = stored(tag_sid("b"));
	ASSERT_TRUE(s);
	EXPECT_EQ(s->status, "active");
	EXPECT_EQ(s->watcher, kBob);
	EXPECT_EQ(s->expires_at, kNow + 600);
	EXPECT_EQ(s->event, "presence");
	EXPECT_EQ(host_.st(Stat::NotifiesSent), 1);
}

TEST_F(PresenceEngine, ExpiresIsCappedAndDefaulted)
{
	host_.default_action = Action::Allow;
	Config c;
	c.max_expires = 1800;
	c.default_expires = 900;
	make_engine(c);
	EXPECT_EQ(header_of(engine_->subscribe(sub_req(kAlice, kBob, 7200, "big")), "Expires"), "1800");
	engine_->flush();
	EXPECT_EQ(sent_now().back().state, "active;expires=1800");
	EXPECT_EQ(header_of(engine_->subscribe(sub_req(kAlice, kBob, -1, "dflt")), "Expires"), "900");
	engine_->flush();
	EXPECT_EQ(sent_now().back().state, "active;expires=900");
}

TEST_F(PresenceEngine, ConfirmRuleGivesAPendingNotifyWithoutBody)
{
	publish_ok(pidf_body(kAlice, "t1", "open"));
	auto sent = subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	ASSERT_EQ(sent.size(), 1u);
	EXPECT_EQ(sent[0].state, "pending;expires=600");
	EXPECT_TRUE(sent[0].body.empty());
	EXPECT_TRUE(sent[0].content_type.empty());
	EXPECT_EQ(stored(tag_sid("b"))->status, "pending");

	// Changes of the document are not sent to a pending watcher.
	publish_ok(pidf_body(kAlice, "t2", "open"));
	EXPECT_TRUE(host_.take().empty());
}

TEST_F(PresenceEngine, PoliteBlockGivesTheOfflineDocument)
{
	host_.rules[{kAlice, "b.example"}] = Action::PoliteBlock;  // by domain
	publish_ok(pidf_body(kAlice, "t1", "open"));
	auto sent = subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	ASSERT_EQ(sent.size(), 1u);
	EXPECT_EQ(sent[0].state, "active;expires=600") << "polite blocking looks like an acceptance";
	EXPECT_EQ(sent[0].body, offline());
	EXPECT_EQ(basic_of(sent[0].body, "t1"), "");
	EXPECT_EQ(stored(tag_sid("b"))->status, "polite");
	publish_ok(pidf_body(kAlice, "t2", "open"));
	EXPECT_TRUE(host_.take().empty());
}

TEST_F(PresenceEngine, OwnSubscriptionNeedsNoRule)
{
	host_.default_action = Action::Block;
	auto sent = subscribe_ok(sub_req(kAlice, "Alice@A.example", 600, "own"));
	EXPECT_EQ(sent[0].state, "active;expires=600");
	EXPECT_TRUE(host_.rule_calls.empty());
}

TEST_F(PresenceEngine, OfflineTemplateIsUsedWhenConfigured)
{
	Config c;
	c.min_notify_interval_ms = 0;
	c.offline_document = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" "
						 "entity=\"%ENTITY%\"><tuple id=\"away\"><status><basic>closed</basic></status>"
						 "<note>Away (%ENTITY%)</note></tuple></presence>";
	make_engine(c);
	host_.default_action = Action::Allow;
	auto sent = subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	EXPECT_EQ(basic_of(sent[0].body, "away"), "closed");
	EXPECT_NE(sent[0].body.find("entity=\"sip:alice@a.example\""), std::string::npos);
	EXPECT_NE(sent[0].body.find("Away (sip:alice@a.example)"), std::string::npos);
}

TEST_F(PresenceEngine, EventIdIsKeptWithTheSubscription)
{
	host_.default_action = Action::Allow;
	auto sent = subscribe_ok(sub_req(kAlice, kBob, 600, "b", "presence;id=abc-1"));
	EXPECT_EQ(sent[0].sub.event_id, "abc-1");
	EXPECT_EQ(stored(tag_sid("b"))->event_id, "abc-1");
	EXPECT_EQ(stored(tag_sid("b"))->event, "presence");
	publish_ok(pidf_body(kAlice, "t1", "open"));
	EXPECT_EQ(only_notify().sub.event_id, "abc-1") << "on later NOTIFYs too";
	auto plain = subscribe_ok(sub_req(kAlice, kBob, 600, "c"));
	EXPECT_EQ(plain[0].sub.event_id, "");
}

TEST_F(PresenceEngine, RetransmittedInitialSubscribeKeepsCountingAndTellsWinfoOnce)
{
	host_.default_action = Action::Allow;
	winfo_sub();
	SubscribeRequest r = sub_req(kAlice, kBob, 600, "b");
	auto sent = subscribe_ok(r);
	ASSERT_EQ(sent.size(), 2u) << "the watcher's NOTIFY and the owner's winfo";
	EXPECT_EQ(sent[0].sub.cseq, 1u);
	sent = subscribe_ok(r);
	ASSERT_EQ(sent.size(), 1u);
	EXPECT_EQ(sent[0].sub.cseq, 2u);
	EXPECT_EQ(store_->subscriptions(kAlice, "presence").size(), 1u);
}

TEST_F(PresenceEngine, FetchSendsOneTerminatedNotifyAndStoresNothing)
{
	host_.default_action = Action::Allow;
	publish_ok(pidf_body(kAlice, "t1", "open"));
	Response res = engine_->subscribe(sub_req(kAlice, kBob, 0, "f"));
	EXPECT_EQ(res.code, 200);
	EXPECT_EQ(header_of(res, "Expires"), "0");
	engine_->flush();
	Notify n = only_notify();
	EXPECT_EQ(n.state, "terminated;reason=timeout");
	EXPECT_EQ(n.body, current_doc());
	EXPECT_EQ(n.sub.cseq, 1u);
	EXPECT_EQ(store_->count_subscriptions(), 0);

	// The owner fetches its watcher information.
	subscribe_ok(sub_req(kAlice, kCarol, 600, "c"));
	res = engine_->subscribe(sub_req(kAlice, kAlice, 0, "wf", "presence.winfo"));
	EXPECT_EQ(res.code, 200);
	engine_->flush();
	n = only_notify();
	EXPECT_EQ(n.state, "terminated;reason=timeout");
	EXPECT_EQ(n.content_type, kWinfoType);
	WDoc d = read_winfo(n.body);
	EXPECT_EQ(d.state, "full");
	ASSERT_EQ(d.watchers.size(), 1u);
	EXPECT_EQ(d.watchers[0].uri, "sip:" + kCarol);
	EXPECT_EQ(store_->count_subscriptions(), 1);
}

// --- SUBSCRIBE: in dialog --------------------------------------------------------------------------------

TEST_F(PresenceEngine, RefreshSendsTheCurrentStateWithTheNextCseq)
{
	host_.default_action = Action::Allow;
	publish_ok(pidf_body(kAlice, "t1", "open"));
	SubscribeRequest r = sub_req(kAlice, kBob, 600, "b");
	subscribe_ok(r);
	SubscribeRequest ref = in_dialog(r, 1200, 2, kNow + 100);
	ref.dialog.remote_target = "sip:b-moved@127.0.0.51:5060";
	Response res = engine_->subscribe(ref);
	ASSERT_EQ(res.code, 200);
	EXPECT_EQ(header_of(res, "Expires"), "1200");
	engine_->flush();
	Notify n = only_notify();
	EXPECT_EQ(n.state, "active;expires=1200");
	EXPECT_EQ(n.sub.cseq, 2u);
	EXPECT_EQ(n.body, current_doc());
	EXPECT_EQ(n.sub.remote_target, "sip:b-moved@127.0.0.51:5060");
	EXPECT_EQ(stored(tag_sid("b"))->expires_at, kNow + 1300);
}

TEST_F(PresenceEngine, UnsubscribeSendsTheFinalNotifyAndTellsWinfo)
{
	host_.default_action = Action::Allow;
	publish_ok(pidf_body(kAlice, "t1", "open"));
	winfo_sub();
	SubscribeRequest r = sub_req(kAlice, kBob, 600, "b");
	subscribe_ok(r);
	Response res = engine_->subscribe(in_dialog(r, 0, 2, kNow + 10));
	ASSERT_EQ(res.code, 200);
	EXPECT_EQ(header_of(res, "Expires"), "0");
	engine_->flush();
	auto sent = sent_now();
	ASSERT_EQ(sent.size(), 2u);
	EXPECT_EQ(sent[0].sub.sid, tag_sid("b"));
	EXPECT_EQ(sent[0].state.rfind("terminated", 0), 0u) << sent[0].state;
	EXPECT_EQ(sent[0].sub.cseq, 2u);
	EXPECT_EQ(sent[0].body, current_doc());
	WDoc d = read_winfo(sent[1].body);
	EXPECT_EQ(d.state, "partial");
	ASSERT_EQ(d.watchers.size(), 1u);
	EXPECT_EQ(d.watchers[0].status, "terminated");
	EXPECT_EQ(d.watchers[0].id, tag_sid("b"));
	EXPECT_FALSE(stored(tag_sid("b")));
	// The dialog is gone.
	EXPECT_EQ(engine_->subscribe(in_dialog(r, 600, 3, kNow + 20)).code, 481);
}

TEST_F(PresenceEngine, RefreshOfPendingAndPoliteSubscriptionsKeepsTheirView)
{
	host_.rules[{kAlice, kBob}] = Action::Confirm;
	host_.rules[{kAlice, kCarol}] = Action::PoliteBlock;
	publish_ok(pidf_body(kAlice, "t1", "open"));
	SubscribeRequest rb = sub_req(kAlice, kBob, 600, "b");
	SubscribeRequest rc = sub_req(kAlice, kCarol, 600, "c");
	subscribe_ok(rb);
	subscribe_ok(rc);
	auto sent = subscribe_ok(in_dialog(rb, 600, 2, kNow + 10));
	ASSERT_EQ(sent.size(), 1u);
	EXPECT_EQ(sent[0].state, "pending;expires=600");
	EXPECT_TRUE(sent[0].body.empty());
	sent = subscribe_ok(in_dialog(rc, 600, 2, kNow + 10));
	ASSERT_EQ(sent.size(), 1u);
	EXPECT_EQ(sent[0].state, "active;expires=600");
	EXPECT_EQ(sent[0].body, offline());
	// Their ends: pending without body, polite with the offline document.
	sent = subscribe_ok(in_dialog(rb, 0, 3, kNow + 20));
	EXPECT_EQ(sent.at(0).state, "terminated;reason=timeout");
	EXPECT_TRUE(sent.at(0).body.empty());
	sent = subscribe_ok(in_dialog(rc, 0, 3, kNow + 20));
	EXPECT_EQ(sent.at(0).state, "terminated;reason=timeout");
	EXPECT_EQ(sent.at(0).body, offline());
	EXPECT_EQ(store_->count_subscriptions(), 0);
}

TEST_F(PresenceEngine, UnknownDialogIs481AndOlderCseqIs500)
{
	SubscribeRequest r = sub_req(kAlice, kBob, 600, "b");
	Response res = engine_->subscribe(in_dialog(r, 600, 2, kNow));
	EXPECT_EQ(res.code, 481);
	EXPECT_FALSE(header_of(res, "Contact").has_value());
	host_.default_action = Action::Allow;
	r.dialog.remote_cseq = 5;
	subscribe_ok(r);
	EXPECT_EQ(engine_->subscribe(in_dialog(r, 600, 4, kNow + 1)).code, 500);
	engine_->flush();
	EXPECT_TRUE(host_.take().empty());
	EXPECT_EQ(stored(tag_sid("b"))->expires_at, kNow + 600);
}

// --- watcher information --------------------------------------------------------------------------------

TEST_F(PresenceEngine, WinfoOnlyForTheOwner)
{
	Response res = engine_->subscribe(sub_req(kAlice, kBob, 600, "w", "presence.winfo"));
	EXPECT_EQ(res.code, 403);
	engine_->flush();
	EXPECT_TRUE(host_.take().empty());
	EXPECT_EQ(store_->count_subscriptions(), 0);
}

TEST_F(PresenceEngine, WinfoFullThenPartialDocumentsWithIncreasingVersions)
{
	host_.rules[{kAlice, kBob}] = Action::Confirm;
	host_.rules[{kAlice, kCarol}] = Action::Allow;
	subscribe_ok(sub_req(kAlice, "dave@d.example", 600, "d"));  // pending before winfo exists
	WDoc full = winfo_sub();
	EXPECT_EQ(full.version, "0");
	EXPECT_EQ(full.state, "full");
	EXPECT_EQ(full.resource, "sip:" + kAlice);
	EXPECT_EQ(full.package, "presence");
	ASSERT_EQ(full.watchers.size(), 1u);
	EXPECT_EQ(full.watchers[0].status, "pending");
	EXPECT_EQ(full.watchers[0].event, "subscribe");
	EXPECT_EQ(full.watchers[0].uri, "sip:dave@d.example");
	EXPECT_EQ(full.watchers[0].display_name, "W d");
	EXPECT_EQ(full.watchers[0].id, tag_sid("d"));

	// bob: pending.
	SubscribeRequest rb = sub_req(kAlice, kBob, 600, "b", "presence", kNow + 10);
	auto sent = subscribe_ok(rb);
	ASSERT_EQ(sent.size(), 2u);
	EXPECT_EQ(sent[1].content_type, kWinfoType);
	EXPECT_EQ(sent[1].sub.sid, tag_sid("winfo"));
	EXPECT_EQ(sent[1].sub.cseq, 2u);
	EXPECT_EQ(sent[1].state, "active;expires=590");
	WDoc d = read_winfo(sent[1].body);
	EXPECT_EQ(d.version, "1");
	EXPECT_EQ(d.state, "partial");
	ASSERT_EQ(d.watchers.size(), 1u);
	EXPECT_EQ(d.watchers[0].status, "pending");
	EXPECT_EQ(d.watchers[0].event, "subscribe");
	EXPECT_EQ(d.watchers[0].uri, "sip:" + kBob);
	EXPECT_EQ(d.watchers[0].expiration, "600");

	// carol: approved at once.
	sent = subscribe_ok(sub_req(kAlice, kCarol, 600, "c", "presence", kNow + 20));
	ASSERT_EQ(sent.size(), 2u);
	d = read_winfo(sent[1].body);
	EXPECT_EQ(d.version, "2");
	ASSERT_EQ(d.watchers.size(), 1u);
	EXPECT_EQ(d.watchers[0].status, "active");
	EXPECT_EQ(d.watchers[0].event, "subscribe") << "created and approved at once (RFC 3857)";
	EXPECT_EQ(d.watchers[0].uri, "sip:" + kCarol);

	// alice approves bob.
	host_.rules[{kAlice, kBob}] = Action::Allow;
	EXPECT_EQ(engine_->reauthorize(kAlice, kBob, kMs + 30000), 1);
	sent = sent_now();
	ASSERT_EQ(sent.size(), 2u);
	d = read_winfo(sent[1].body);
	EXPECT_EQ(d.version, "3");
	ASSERT_EQ(d.watchers.size(), 1u);
	EXPECT_EQ(d.watchers[0].status, "active");
	EXPECT_EQ(d.watchers[0].event, "approved");
	EXPECT_EQ(d.watchers[0].duration, "20");

	// bob leaves.
	engine_->subscribe(in_dialog(rb, 0, 2, kNow + 40));
	engine_->flush();
	sent = sent_now();
	ASSERT_EQ(sent.size(), 2u);
	d = read_winfo(sent[1].body);
	EXPECT_EQ(d.version, "4");
	ASSERT_EQ(d.watchers.size(), 1u);
	EXPECT_EQ(d.watchers[0].status, "terminated");
	EXPECT_FALSE(d.watchers[0].expiration.has_value());

	// alice refreshes her winfo subscription: a full document with the next version.
	SubscribeRequest rw = sub_req(kAlice, kAlice, 600, "winfo", "presence.winfo");
	Response res = engine_->subscribe(in_dialog(rw, 600, 2, kNow + 50));
	EXPECT_EQ(res.code, 200);
	engine_->flush();
	Notify n = only_notify();
	EXPECT_EQ(n.sub.cseq, 6u);
	d = read_winfo(n.body);
	EXPECT_EQ(d.version, "5");
	EXPECT_EQ(d.state, "full");
	std::set<std::string> uris;
	for (const auto &w : d.watchers) uris.insert(w.uri + "=" + w.status);
	EXPECT_EQ(uris, (std::set<std::string>{"sip:dave@d.example=pending", "sip:" + kCarol + "=active"}));

	// and ends it: a final NOTIFY for the winfo dialog, nothing else.
	res = engine_->subscribe(in_dialog(rw, 0, 3, kNow + 60));
	EXPECT_EQ(res.code, 200);
	engine_->flush();
	n = only_notify();
	EXPECT_EQ(n.state.rfind("terminated", 0), 0u);
	EXPECT_EQ(n.sub.cseq, 7u);
	EXPECT_EQ(store_->subscriptions(kAlice, "presence.winfo").size(), 0u);
}

TEST_F(PresenceEngine, PoliteBlockedWatcherAppearsTerminatedRejectedInWinfo)
{
	host_.rules[{kAlice, kBob}] = Action::PoliteBlock;
	winfo_sub();
	auto sent = subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	ASSERT_EQ(sent.size(), 2u);
	WDoc d = read_winfo(sent[1].body);
	ASSERT_EQ(d.watchers.size(), 1u);
	EXPECT_EQ(d.watchers[0].status, "terminated");
	EXPECT_EQ(d.watchers[0].event, "rejected");
}

// --- rules changed -----------------------------------------------------------------------------------------

TEST_F(PresenceEngine, ReauthorizePendingToActiveSendsTheDocument)
{
	publish_ok(pidf_body(kAlice, "t1", "open"));
	winfo_sub();
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	EXPECT_EQ(engine_->reauthorize(kAlice, "", kMs + 5000), 0) << "nothing changed";
	EXPECT_TRUE(host_.take().empty());

	host_.rules[{kAlice, kBob}] = Action::Allow;
	EXPECT_EQ(engine_->reauthorize(kAlice, "", kMs + 5000), 1);
	EXPECT_TRUE(host_.held.empty());
	auto sent = sent_now();
	ASSERT_EQ(sent.size(), 2u);
	EXPECT_EQ(sent[0].sub.sid, tag_sid("b"));
	EXPECT_EQ(sent[0].state, "active;expires=595");
	EXPECT_EQ(sent[0].body, current_doc());
	EXPECT_EQ(sent[0].sub.cseq, 2u);
	EXPECT_EQ(read_winfo(sent[1].body).watchers.at(0).event, "approved");
	EXPECT_EQ(stored(tag_sid("b"))->status, "active");

	// Now active: later changes reach bob.
	publish_ok(pidf_body(kAlice, "t2", "closed"), kNow + 10);
	EXPECT_EQ(only_notify().sub.cseq, 3u);
}

TEST_F(PresenceEngine, ReauthorizeActiveToBlockEndsTheSubscription)
{
	host_.default_action = Action::Allow;
	winfo_sub();
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	host_.rules[{kAlice, kBob}] = Action::Block;
	EXPECT_EQ(engine_->reauthorize(kAlice, kBob, kMs + 1000), 1);
	auto sent = sent_now();
	ASSERT_EQ(sent.size(), 2u);
	EXPECT_EQ(sent[0].state, "terminated;reason=rejected");
	EXPECT_TRUE(sent[0].body.empty());
	EXPECT_EQ(sent[0].sub.cseq, 2u);
	WDoc d = read_winfo(sent[1].body);
	ASSERT_EQ(d.watchers.size(), 1u);
	EXPECT_EQ(d.watchers[0].status, "terminated");
	EXPECT_EQ(d.watchers[0].event, "rejected");
	EXPECT_FALSE(stored(tag_sid("b")));
	EXPECT_EQ(store_->subscriptions(kAlice, "presence").size(), 0u);
}

TEST_F(PresenceEngine, ReauthorizeToPoliteBlockSendsTheOfflineDocument)
{
	host_.default_action = Action::Allow;
	publish_ok(pidf_body(kAlice, "t1", "open"));
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	host_.rules[{kAlice, "b.example"}] = Action::PoliteBlock;
	EXPECT_EQ(engine_->reauthorize(kAlice, "b.example", kMs + 1000), 1);
	Notify n = only_notify();
	EXPECT_EQ(n.state, "active;expires=599");
	EXPECT_EQ(n.body, offline());
	EXPECT_EQ(stored(tag_sid("b"))->status, "polite");
	publish_ok(pidf_body(kAlice, "t2", "open"));
	EXPECT_TRUE(host_.take().empty());
}

TEST_F(PresenceEngine, ReauthorizeOnlyTouchesTheNamedWatcherOrDomain)
{
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	subscribe_ok(sub_req(kAlice, kCarol, 600, "c"));
	host_.default_action = Action::Allow;
	EXPECT_EQ(engine_->reauthorize(kAlice, "nobody@b.example", kMs), 0);
	EXPECT_EQ(engine_->reauthorize(kAlice, "C.Example", kMs), 1);
	EXPECT_EQ(stored(tag_sid("c"))->status, "active");
	EXPECT_EQ(stored(tag_sid("b"))->status, "pending");
	EXPECT_EQ(engine_->reauthorize(kAlice, kBob, kMs), 1);
	EXPECT_EQ(stored(tag_sid("b"))->status, "active");
}

// --- timer -------------------------------------------------------------------------------------------------

TEST_F(PresenceEngine, ExpiredPublicationSendsTheRecomposedDocument)
{
	host_.default_action = Action::Allow;
	publish_ok(pub(pidf_body(kAlice, "short", "open"), "", 60));
	publish_ok(pub(pidf_body(kAlice, "long", "open"), "", 3600));
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	engine_->tick(kNow + 59, kMs + 59000);
	EXPECT_TRUE(host_.take().empty());
	engine_->tick(kNow + 60, kMs + 60000);
	Notify n = only_notify();
	EXPECT_EQ(tuple_ids(n.body), (std::vector<std::string>{"long"}));
	EXPECT_EQ(n.state, "active;expires=540");
	EXPECT_EQ(n.sub.cseq, 2u);
	EXPECT_TRUE(host_.held.empty());
}

TEST_F(PresenceEngine, LastPublicationExpiringSendsTheOfflineDocument)
{
	host_.default_action = Action::Allow;
	publish_ok(pub(pidf_body(kAlice, "t1", "open"), "", 60));
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	engine_->tick(kNow + 61, kMs + 61000);
	Notify n = only_notify();
	EXPECT_EQ(n.body, offline());
	EXPECT_EQ(current_doc(), offline());
	EXPECT_EQ(store_->count_publications(), 0);
	engine_->tick(kNow + 62, kMs + 62000);
	EXPECT_TRUE(host_.take().empty());
}

TEST_F(PresenceEngine, ExpiredSubscriptionsGetAFinalNotify)
{
	host_.rules[{kAlice, kBob}] = Action::Allow;
	publish_ok(pidf_body(kAlice, "t1", "open"));
	winfo_sub("winfo", 3600);
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	subscribe_ok(sub_req(kAlice, kCarol, 900, "c"));  // pending
	engine_->tick(kNow + 599, kMs + 599000);
	EXPECT_TRUE(host_.take().empty());

	engine_->tick(kNow + 600, kMs + 600000);
	EXPECT_TRUE(host_.held.empty());
	auto sent = sent_now();
	ASSERT_EQ(sent.size(), 2u);
	EXPECT_EQ(sent[0].sub.sid, tag_sid("b"));
	EXPECT_EQ(sent[0].state, "terminated;reason=timeout");
	EXPECT_EQ(sent[0].body, current_doc());
	EXPECT_EQ(sent[0].sub.cseq, 2u);
	WDoc d = read_winfo(sent[1].body);
	ASSERT_EQ(d.watchers.size(), 1u);
	EXPECT_EQ(d.watchers[0].id, tag_sid("b"));
	EXPECT_EQ(d.watchers[0].status, "terminated");
	EXPECT_EQ(d.watchers[0].event, "timeout");

	// The pending one nobody decided on: giveup, without body.
	engine_->tick(kNow + 900, kMs + 900000);
	sent = sent_now();
	ASSERT_EQ(sent.size(), 2u);
	EXPECT_EQ(sent[0].sub.sid, tag_sid("c"));
	EXPECT_EQ(sent[0].state, "terminated;reason=giveup");
	EXPECT_TRUE(sent[0].body.empty());
	d = read_winfo(sent[1].body);
	ASSERT_EQ(d.watchers.size(), 1u);
	EXPECT_EQ(d.watchers[0].status, "terminated");
	EXPECT_EQ(d.watchers[0].event, "giveup");
	EXPECT_EQ(store_->subscriptions(kAlice, "presence").size(), 0u);

	// The winfo subscription's own end: a final NOTIFY without body.
	engine_->tick(kNow + 3600, kMs + 3600000);
	Notify n = only_notify();
	EXPECT_EQ(n.sub.sid, tag_sid("winfo"));
	EXPECT_EQ(n.state.rfind("terminated;reason=", 0), 0u);
	EXPECT_EQ(store_->count_subscriptions(), 0);
}

TEST_F(PresenceEngine, ChangesWithinTheIntervalAreCoalescedIntoOneDueNotify)
{
	Config c;
	c.min_notify_interval_ms = 1000;
	make_engine(c);
	host_.default_action = Action::Allow;
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));  // initial NOTIFY at kMs
	PublishRequest p1 = pub(pidf_body(kAlice, "t1", "open"));
	p1.now_ms = kMs + 100;
	std::string e1 = publish_ok(p1);
	PublishRequest p2 = pub(pidf_body(kAlice, "t1", "closed"), e1);
	p2.now_ms = kMs + 200;
	publish_ok(p2);
	EXPECT_TRUE(host_.take().empty()) << "within 1 s of the initial NOTIFY";
	engine_->tick(kNow, kMs + 999);
	EXPECT_TRUE(host_.take().empty());
	engine_->tick(kNow + 1, kMs + 1000);
	Notify n = only_notify();
	EXPECT_EQ(basic_of(n.body, "t1"), "closed") << "the latest document";
	EXPECT_EQ(n.sub.cseq, 2u);
	EXPECT_EQ(n.state, "active;expires=599");
	engine_->tick(kNow + 5, kMs + 5000);
	EXPECT_TRUE(host_.take().empty()) << "sent once";
}

// --- NOTIFY failures and RPC -------------------------------------------------------------------------------

TEST_F(PresenceEngine, NotifyFailuresRemoveOrKeepTheSubscription)
{
	host_.default_action = Action::Allow;
	winfo_sub();
	for (const char *t : {"a", "b", "c", "d", "e"}) subscribe_ok(sub_req(kAlice, kBob, 600, t));

	engine_->notify_failed(tag_sid("a"), 481, false, kMs);
	EXPECT_FALSE(stored(tag_sid("a")));
	auto sent = sent_now();
	ASSERT_EQ(sent.size(), 1u) << "no NOTIFY to the gone dialog, only the owner's winfo";
	EXPECT_EQ(sent[0].content_type, kWinfoType);
	EXPECT_EQ(read_winfo(sent[0].body).watchers.at(0).status, "terminated");

	engine_->notify_failed(tag_sid("b"), 500, true, kMs);
	EXPECT_TRUE(stored(tag_sid("b"))) << "500 with Retry-After: kept";
	engine_->notify_failed(tag_sid("c"), 408, false, kMs);
	EXPECT_FALSE(stored(tag_sid("c")));
	engine_->notify_failed(tag_sid("d"), 500, false, kMs);
	EXPECT_FALSE(stored(tag_sid("d")));
	engine_->notify_failed(tag_sid("e"), 481, true, kMs);
	EXPECT_FALSE(stored(tag_sid("e"))) << "481 ends the dialog, Retry-After or not";
	engine_->notify_failed(tag_sid("b"), 200, false, kMs);
	EXPECT_TRUE(stored(tag_sid("b")));
	engine_->notify_failed("unknown", 481, false, kMs);
	EXPECT_TRUE(host_.held.empty());
}

TEST_F(PresenceEngine, FailedSendIsCounted)
{
	host_.default_action = Action::Allow;
	host_.send_ok = false;
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	EXPECT_EQ(host_.st(Stat::NotifiesFailed), 1);
	EXPECT_EQ(host_.st(Stat::NotifiesSent), 0);
}

TEST_F(PresenceEngine, TerminateSendsDeactivatedWithoutBody)
{
	host_.default_action = Action::Allow;
	publish_ok(pidf_body(kAlice, "t1", "open"));
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	EXPECT_TRUE(engine_->terminate(tag_sid("b"), kMs));
	Notify n = only_notify();
	EXPECT_EQ(n.state, "terminated;reason=deactivated");
	EXPECT_TRUE(n.body.empty());
	EXPECT_EQ(n.sub.cseq, 2u);
	EXPECT_FALSE(engine_->terminate(tag_sid("b"), kMs));
	EXPECT_EQ(store_->count_subscriptions(), 0);
}

TEST_F(PresenceEngine, OneFailingItemOfATimerBatchDoesNotStopTheRest)
{
	// in one tick: alice's publication expires (recomposed, notified to bob and carol) and
	// dave's subscription expires (final NOTIFY); every NOTIFY to bob fails to build
	const std::string kDave = "dave@d.example";
	host_.default_action = Action::Allow;
	publish_ok(pub(pidf_body(kAlice, "short", "open"), "", 60));
	publish_ok(pub(pidf_body(kAlice, "long", "open"), "", 3600));
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	subscribe_ok(sub_req(kAlice, kCarol, 600, "c"));
	subscribe_ok(sub_req(kAlice, kDave, 60, "d"));
	host_.take();
	host_.fail_for_watcher.insert(kBob);
	engine_->tick(kNow + 60, kMs + 60000);
	EXPECT_TRUE(host_.held.empty());
	auto sent = host_.take();
	std::map<std::string, std::vector<std::string>> by_watcher;
	for (const auto &n : sent) by_watcher[n.sub.watcher].push_back(n.state);
	EXPECT_EQ(by_watcher.count(kBob), 0u);
	ASSERT_EQ(by_watcher[kCarol].size(), 1u);
	EXPECT_EQ(by_watcher[kCarol][0], "active;expires=540");
	// dave: the recomposed document, then, as the batch goes on, his final NOTIFY
	ASSERT_FALSE(by_watcher[kDave].empty());
	EXPECT_EQ(by_watcher[kDave].back(), "terminated;reason=timeout");
	EXPECT_GE(host_.st(Stat::TimerErrors), 1);
}
