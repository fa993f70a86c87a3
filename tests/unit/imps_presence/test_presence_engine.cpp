// The presence application (modules/imps_presence/core/engine.cpp) on the shared subscription
// layer (imps/subs.hpp), against a recording fake Host with a rule map and the real Redis
// stores (a private redis-server on a free port). Every NOTIFY body is validated: PIDF against
// tests/schemas/presence-all.xsd, watcher information against the RFC 3858 schema, and read
// back field by field. The fake host also checks that a dialog never has two NOTIFYs
// outstanding; tests answer the NOTIFYs they want followed by the next one (answer_all).
#include "pidf_schema.hpp"
#include "winfo_schema.hpp"

#include "../common/redis_server.hpp"

#include "imps_presence/core/engine.hpp"
#include "imps_presence/core/pidf.hpp"
#include "imps_presence/core/store.hpp"

#include "imps/redis.hpp"
#include "imps/subs.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using namespace imps::presence;
using imps::Redis;
using imps::RedisConfig;
using imps::test::ParsedXml;
using imps::test::PidfSchemaValid;
using imps::test::RedisServer;
using imps::test::Winfo;
using imps::test::WinfoValid;

namespace {

// Unix seconds fixed far in the future (every run computes the same values; the stores keep
// their keys until some time after these, so they must not lie in the past).
constexpr long long kNow = 4000000000LL;
constexpr long long kMs = kNow * 1000;
const std::string kPrefix = "imps:presence";
const std::string kAlice = "alice@a.example";
const std::string kBob = "bob@b.example";
const std::string kCarol = "carol@c.example";
const std::string kDave = "dave@d.example";
const std::string kPidfType = "application/pidf+xml";
const std::string kWinfoType = "application/watcherinfo+xml";

// A recording Host: NOTIFYs (with their header text), rules, stats, accounting; it checks
// that no dialog gets a NOTIFY while its previous one is still outstanding.
class FakeHost : public Host {
public:
	struct Notify {
		Subscription sub;
		std::string body;
		std::string content_type;
		std::string state;
		std::string headers;  // subs::notify_headers() of the NOTIFY
	};

	bool send_notify(const imps::subs::Outgoing &n) override
	{
		if (fail_for_watcher.count(n.sub.watcher))
			throw std::runtime_error("NOTIFY could not be handed over");  // an error of one item
		for (const auto &o : outstanding)
			if (o.sid == n.sub.sid)
				ADD_FAILURE() << "NOTIFY " << n.sub.cseq << " to " << n.sub.sid << " (" << n.sub.watcher
							  << ") while its NOTIFY " << o.cseq << " is outstanding";
		sent.push_back({n.sub, n.content.body, n.content.content_type, n.state,
				imps::subs::notify_headers(n)});
		if (send_ok) outstanding.push_back(n.sub);
		return send_ok;
	}
	// rules[{presentity, watcher}], else rules[{presentity, domain of watcher}], else the default.
	Action rule(const std::string &presentity, const std::string &watcher) override
	{
		rule_calls.push_back({presentity, watcher});
		auto it = rules.find({presentity, watcher});
		if (it != rules.end()) return it->second;
		size_t at = watcher.rfind('@');
		if (at != std::string::npos) {
			it = rules.find({presentity, watcher.substr(at + 1)});
			if (it != rules.end()) return it->second;
		}
		return default_action;
	}
	void stat(Stat which, long long delta) override { stats[which] += delta; }
	void account(const Subscription &s, bool start) override
	{
		accounting.push_back((start ? "start " : "stop ") + s.package + " " + s.sid);
	}
	// A NOTIFY of an in-process watch: recorded, answered local_code.
	int deliver_local(const std::string &consumer, const std::string &key, const imps::subs::Outgoing &n) override
	{
		local.push_back({consumer, key,
				{n.sub, n.content.body, n.content.content_type, n.state, imps::subs::notify_headers(n)}});
		return local_code;
	}
	long long st(Stat which) const
	{
		auto it = stats.find(which);
		return it == stats.end() ? 0 : it->second;
	}

	// NOTIFYs sent since the last call.
	std::vector<Notify> take()
	{
		std::vector<Notify> out;
		out.swap(sent);
		return out;
	}

	struct Local {
		std::string consumer, key;
		Notify n;
	};
	std::vector<Local> local;  // NOTIFYs of in-process watches
	int local_code = 200;

	std::vector<Notify> sent;
	// sent and not answered yet (the dialog's NOTIFY outstanding); a NOTIFY sent to the same
	// dialog meanwhile is a failure. Only the checks above read it (and answer_all()).
	std::vector<Subscription> outstanding;
	std::vector<std::pair<std::string, std::string>> rule_calls;
	std::map<std::pair<std::string, std::string>, Action> rules;
	// default_action (Host): what rule() answers when no entry matches
	std::map<Stat, long long> stats;
	std::vector<std::string> accounting;
	bool send_ok = true;
	std::set<std::string> fail_for_watcher;  // send_notify throws for these watchers

	// one per dialog: keyed by sid
	bool outstanding_for(const std::string &sid) const
	{
		return std::any_of(outstanding.begin(), outstanding.end(),
				[&](const Subscription &s) { return s.sid == sid; });
	}
};
using Notify = FakeHost::Notify;

// The value of the first header line "Name: value" of a response.
std::optional<std::string> header_of(const Response &r, const std::string &name)
{
	for (const auto &h : r.headers)
		if (h.size() > name.size() && h.compare(0, name.size(), name) == 0 && h[name.size()] == ':') {
			size_t v = h.find_first_not_of(' ', name.size() + 1);
			return v == std::string::npos ? std::string() : h.substr(v);
		}
	return std::nullopt;
}

// A PIDF body a presentity may publish: one tuple with basic status and a note.
std::string pidf_body(const std::string &presentity, const std::string &tuple_id,
		const std::string &basic, const std::string &note = "")
{
	std::string b = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
					"<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:" + presentity + "\">"
					"<tuple id=\"" + tuple_id + "\"><status><basic>" + basic + "</basic></status>";
	if (!note.empty()) b += "<note>" + note + "</note>";
	return b + "</tuple></presence>";
}

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

std::vector<std::string> sorted_tuple_ids(const std::string &doc)
{
	auto v = tuple_ids(doc);
	std::sort(v.begin(), v.end());
	return v;
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
	return imps::subs::subscription_id("sub-call-" + tag, "from-" + tag, "to-" + tag);
}

class PresenceEngine : public ::testing::Test {
protected:
	static void SetUpTestSuite() { server_ = std::make_unique<RedisServer>(); }
	static void TearDownTestSuite() { server_.reset(); }

	void SetUp() override
	{
		ASSERT_TRUE(server_->running());
		redis_ = connect();
		redis_->command({"FLUSHALL"});
		Config c;
		c.min_notify_interval_ms = 0;
		make_engine(c);
	}

	static std::unique_ptr<Redis> connect()
	{
		RedisConfig c;
		c.port = server_->port();
		c.retry_interval_ms = 0;
		c.timeout_ms = 5000;
		return std::make_unique<Redis>(c);
	}

	Engine &make_engine(Config cfg)
	{
		engine_.reset();
		engine_ = std::make_unique<Engine>(std::move(cfg), *redis_, kPrefix, host_);
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
		imps::subs::Dialog &d = r.dialog;
		d.callid = "sub-call-" + tag;
		d.remote_tag = "from-" + tag;
		d.local_tag = "to-" + tag;
		d.remote_uri = "sip:" + watcher;
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

	// Answers every NOTIFY outstanding now with 200, each at the time it was sent (at_ms >= 0:
	// at that time). NOTIFYs the answers release are recorded (and outstanding) in turn.
	// Returns how many were answered.
	size_t answer_all(long long at_ms = -1)
	{
		std::vector<Subscription> out;
		out.swap(host_.outstanding);
		for (const auto &s : out)
			engine_->complete(s.resource, s.sid, s.cseq, 200, false,
					at_ms >= 0 ? at_ms : std::max(s.last_notify_ms, kMs));
		return out.size();
	}

	// Answers the outstanding NOTIFY of one dialog with code; false when none is outstanding.
	bool answer(const std::string &sid, int code = 200, bool retry_after = false, long long at_ms = -1)
	{
		auto it = std::find_if(host_.outstanding.begin(), host_.outstanding.end(),
				[&](const Subscription &s) { return s.sid == sid; });
		if (it == host_.outstanding.end()) {
			ADD_FAILURE() << "no NOTIFY of " << sid << " outstanding";
			return false;
		}
		Subscription s = *it;
		host_.outstanding.erase(it);
		engine_->complete(s.resource, s.sid, s.cseq, code, retry_after,
				at_ms >= 0 ? at_ms : std::max(s.last_notify_ms, kMs));
		return true;
	}

	std::optional<Subscription> stored(const std::string &sid, const std::string &pres = kAlice)
	{
		for (const auto &s : engine_->watchers(pres))
			if (s.sid == sid) return s;
		return std::nullopt;
	}
	size_t stored_of(const std::string &package, const std::string &pres = kAlice)
	{
		size_t n = 0;
		for (const auto &s : engine_->watchers(pres)) n += s.package == package;
		return n;
	}

	std::string offline() const { return engine_->offline(kAlice); }
	// The document a watcher gets now: composed from alice's live publications.
	std::string current_doc() { return engine_->current_document(kAlice); }

	// Alice watches her watchers; returns the initial winfo NOTIFY's document (outstanding).
	WDoc winfo_sub(const std::string &tag = "winfo", int expires = 600)
	{
		auto sent = subscribe_ok(sub_req(kAlice, kAlice, expires, tag, "presence.winfo"));
		EXPECT_EQ(sent.size(), 1u);
		if (sent.empty()) return {};
		EXPECT_EQ(sent[0].content_type, kWinfoType);
		return read_winfo(sent[0].body);
	}

	inline static std::unique_ptr<RedisServer> server_;
	std::unique_ptr<Redis> redis_;
	FakeHost host_;
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
	EXPECT_EQ(engine_->count_publications(), 0);
	// Parameters and case do not matter.
	r = pub(pidf_body(kAlice, "t1", "open"));
	r.event = " Presence ;id=1";
	EXPECT_EQ(engine_->publish(r).code, 200);
	EXPECT_EQ(engine_->count_publications(), 1);
}

TEST_F(PresenceEngine, PublishOfAnotherBodyTypeIs415WithAccept)
{
	PublishRequest r = pub(pidf_body(kAlice, "t1", "open"));
	r.content_type = "application/xpidf+xml";
	Response res = engine_->publish(r);
	EXPECT_EQ(res.code, 415);
	EXPECT_EQ(header_of(res, "Accept"), kPidfType);
	EXPECT_EQ(engine_->count_publications(), 0);
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
	EXPECT_EQ(engine_->count_publications(), 1);
	EXPECT_EQ(engine_->publish(pub("", etag, 60)).code, 200) << "the entity tag was not spent";
}

TEST_F(PresenceEngine, PublishForAnotherIdentityIs403)
{
	PublishRequest r = pub(pidf_body(kAlice, "t1", "open"));
	r.identity = kBob;
	Response res = engine_->publish(r);
	EXPECT_EQ(res.code, 403);
	EXPECT_EQ(engine_->count_publications(), 0);
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
	EXPECT_EQ(engine_->count_publications(), 0);
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
	EXPECT_EQ(engine_->count_publications(), 0);

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
	EXPECT_EQ(engine_->count_publications(), 0);

	// An expired entity tag as well.
	std::string etag = publish_ok(pub(pidf_body(kAlice, "t1", "open"), "", 60));
	EXPECT_EQ(engine_->publish(pub("", etag, 60, kNow + 60)).code, 412);
	EXPECT_EQ(host_.st(Stat::Rejected412), 4);
	// Another presentity's entity tag is unknown here.
	std::string other = publish_ok(pub(pidf_body(kCarol, "t1", "open"), "", 3600, kNow, kCarol));
	EXPECT_EQ(engine_->publish(pub("", other, 3600, kNow + 1)).code, 412);
	EXPECT_EQ(host_.st(Stat::Rejected412), 5);
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
	EXPECT_EQ(engine_->count_publications(), 2);
	EXPECT_EQ(host_.st(Stat::Publications), 2);
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
	EXPECT_EQ(basic_of(v.document, "t1"), "open");
	EXPECT_EQ(engine_->count_publications(), 1);

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
	answer_all();

	std::string etag = publish_ok(pub(pidf_body(kAlice, "t1", "open", "here"), "", 3600, kNow + 5));
	Notify n = only_notify();
	EXPECT_EQ(n.content_type, kPidfType);
	EXPECT_EQ(basic_of(n.body, "t1"), "open");
	EXPECT_EQ(n.body, current_doc());
	EXPECT_EQ(n.state, "active;expires=595");
	EXPECT_EQ(n.sub.cseq, 2u);
	EXPECT_EQ(n.sub.sid, tag_sid("b"));
	EXPECT_EQ(n.sub.resource, kAlice);
	EXPECT_EQ(n.sub.dialog.remote_target, "sip:b@127.0.0.50:5060");
	answer_all();

	Response res = engine_->publish(pub("", etag, 0, kNow + 6));
	EXPECT_EQ(res.code, 200);
	EXPECT_EQ(header_of(res, "Expires"), "0");
	EXPECT_FALSE(header_of(res, "SIP-ETag").has_value());
	engine_->flush();
	n = only_notify();
	EXPECT_EQ(n.body, offline());
	EXPECT_EQ(basic_of(n.body, "offline"), "closed");
	EXPECT_EQ(n.sub.cseq, 3u);
	EXPECT_EQ(engine_->count_publications(), 0);
	EXPECT_EQ(host_.st(Stat::NotifiesSent), 3);
}

TEST_F(PresenceEngine, TwoPublicationsAreComposedIntoOneDocument)
{
	host_.default_action = Action::Allow;
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	answer_all();
	publish_ok(pidf_body(kAlice, "phone", "open"), kNow + 1);
	only_notify();
	answer_all();
	std::string e2 = publish_ok(pidf_body(kAlice, "pc", "closed"), kNow + 2);
	Notify n = only_notify();
	EXPECT_EQ(sorted_tuple_ids(n.body), (std::vector<std::string>{"pc", "phone"}));
	EXPECT_EQ(basic_of(n.body, "phone"), "open");
	EXPECT_EQ(basic_of(n.body, "pc"), "closed");
	EXPECT_EQ(n.sub.cseq, 3u);
	answer_all();

	// Modify one of them.
	publish_ok(pub(pidf_body(kAlice, "pc", "open"), e2, 3600, kNow + 3));
	n = only_notify();
	EXPECT_EQ(basic_of(n.body, "pc"), "open");
	EXPECT_EQ(basic_of(n.body, "phone"), "open");
	EXPECT_EQ(n.sub.cseq, 4u);
}

TEST_F(PresenceEngine, ModifyWithTheSameBodyAndRefreshSendNoNotify)
{
	host_.default_action = Action::Allow;
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	answer_all();
	std::string body = pidf_body(kAlice, "t1", "open", "same");
	std::string e1 = publish_ok(body, kNow + 1);
	only_notify();
	answer_all();
	std::string e2 = publish_ok(pub(body, e1, 3600, kNow + 2));
	EXPECT_FALSE(e2.empty());
	EXPECT_NE(e2, e1);
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
	answer_all();
	std::string phone = pidf_body(kAlice, "phone", "open");
	std::string e1 = publish_ok(phone, kNow + 1);
	answer_all();
	publish_ok(pidf_body(kAlice, "pc", "closed"), kNow + 2);
	answer_all();
	host_.take();
	std::string before = current_doc();
	publish_ok(pub(phone, e1, 3600, kNow + 3));
	auto sent = sent_now();
	EXPECT_TRUE(sent.empty()) << "the phone republished the same body; NOTIFY sent anyway:\nbefore: "
							  << before << "\nafter:  " << (sent.empty() ? "" : sent[0].body);
	EXPECT_EQ(current_doc(), before);
}

TEST_F(PresenceEngine, AdminPublishIsFromRpcAndFlushesItsNotifies)
{
	host_.default_action = Action::Allow;
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	answer_all();
	Response res = engine_->admin_publish(kAlice, pidf_body(kAlice, "rpc", "open"), 120, "", kNow + 1, kMs + 1000);
	EXPECT_EQ(res.code, 200);
	std::string etag = header_of(res, "SIP-ETag").value_or("");
	EXPECT_FALSE(etag.empty());
	Notify n = only_notify();  // flushed by admin_publish itself
	EXPECT_EQ(basic_of(n.body, "rpc"), "open");
	EXPECT_EQ(n.sub.cseq, 2u);
	PresentityView v = engine_->show(kAlice, kNow + 1);
	ASSERT_EQ(v.publications.size(), 1u);
	EXPECT_EQ(v.publications[0].source, "rpc");
	EXPECT_EQ(v.publications[0].expires_at, kNow + 1 + 120);
	EXPECT_EQ(v.document, n.body);
	EXPECT_EQ(engine_->admin_publish(kAlice, pidf_body(kBob, "x", "open"), 120, "", kNow, kMs).code, 400);
	// and removes it by its entity tag
	answer_all();
	EXPECT_EQ(engine_->admin_publish(kAlice, "", 0, etag, kNow + 2, kMs + 2000).code, 200);
	EXPECT_EQ(only_notify().body, offline());
	EXPECT_EQ(engine_->count_publications(), 0);
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
	EXPECT_EQ(engine_->count_subscriptions(), 0);
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
	EXPECT_EQ(engine_->count_subscriptions(), 0);

	r.accept = {"application/*;q=0.5"};
	EXPECT_EQ(engine_->subscribe(r).code, 200);
}

TEST_F(PresenceEngine, SubscribeTooBriefIs423)
{
	Response res = engine_->subscribe(sub_req(kAlice, kBob, 59, "x"));
	EXPECT_EQ(res.code, 423);
	EXPECT_EQ(header_of(res, "Min-Expires"), "60");
	EXPECT_EQ(engine_->count_subscriptions(), 0);
}

TEST_F(PresenceEngine, BlockedWatcherIs403AndNothingIsStored)
{
	host_.rules[{kAlice, kBob}] = Action::Block;
	winfo_sub();
	answer_all();
	Response res = engine_->subscribe(sub_req(kAlice, kBob, 600, "b"));
	EXPECT_EQ(res.code, 403);
	engine_->flush();
	EXPECT_TRUE(host_.take().empty()) << "no NOTIFY, not even to the owner's winfo";
	EXPECT_EQ(stored_of("presence"), 0u);
	ASSERT_FALSE(host_.rule_calls.empty());
	EXPECT_EQ(host_.rule_calls.back(), (std::pair<std::string, std::string>{kAlice, kBob}));
	// A fetch is refused as well.
	EXPECT_EQ(engine_->subscribe(sub_req(kAlice, kBob, 0, "bf")).code, 403);
	engine_->flush();
	EXPECT_TRUE(host_.take().empty());
}

TEST_F(PresenceEngine, TooManyWatchersIs403)
{
	Config c;
	c.min_notify_interval_ms = 0;
	c.max_watchers = 2;
	make_engine(c);
	host_.default_action = Action::Allow;
	subscribe_ok(sub_req(kAlice, kBob, 600, "b1"));
	subscribe_ok(sub_req(kAlice, kBob, 600, "b2"));
	Response res = engine_->subscribe(sub_req(kAlice, kCarol, 600, "c"));
	EXPECT_EQ(res.code, 403);
	engine_->flush();
	EXPECT_TRUE(host_.take().empty());
	EXPECT_EQ(stored_of("presence"), 2u);
	// the limit is per package: the owner still watches her watchers
	winfo_sub();
	EXPECT_EQ(stored_of("presence.winfo"), 1u);
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
	EXPECT_EQ(n.sub.version, 0u);
	EXPECT_EQ(n.sub.sid, tag_sid("b"));
	EXPECT_EQ(n.sub.status, "active");
	EXPECT_EQ(n.sub.package, "presence");
	EXPECT_EQ(n.sub.resource, kAlice);
	EXPECT_EQ(n.sub.dialog.callid, "sub-call-b");
	EXPECT_EQ(n.sub.dialog.local_tag, "to-b");
	EXPECT_EQ(n.sub.dialog.route_set, "<sip:edge.a.example;lr>");
	EXPECT_NE(n.headers.find("Event: presence\r\n"), std::string::npos) << n.headers;
	EXPECT_NE(n.headers.find("Subscription-State: active;expires=600\r\n"), std::string::npos) << n.headers;
	EXPECT_NE(n.headers.find("Content-Type: application/pidf+xml\r\n"), std::string::npos) << n.headers;
	EXPECT_NE(n.headers.find("Contact: <sip:ps.a.example:5070>\r\n"), std::string::npos) << n.headers;

	auto s = stored(tag_sid("b"));
	ASSERT_TRUE(s);
	EXPECT_EQ(s->status, "active");
	EXPECT_EQ(s->watcher, kBob);
	EXPECT_EQ(s->watcher_uri, "sip:" + kBob);
	EXPECT_EQ(s->display_name, "W b");
	EXPECT_EQ(s->expires_at, kNow + 600);
	EXPECT_EQ(s->created_at, kNow);
	EXPECT_EQ(s->package, "presence");
	EXPECT_EQ(host_.st(Stat::NotifiesSent), 1);
	EXPECT_EQ(engine_->count_subscriptions(), 1);
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
	auto sent = sent_now();
	ASSERT_EQ(sent.size(), 1u);
	EXPECT_EQ(sent.back().state, "active;expires=1800");
	EXPECT_EQ(header_of(engine_->subscribe(sub_req(kAlice, kBob, -1, "dflt")), "Expires"), "900");
	engine_->flush();
	sent = sent_now();
	ASSERT_EQ(sent.size(), 1u);
	EXPECT_EQ(sent.back().state, "active;expires=900");
	EXPECT_EQ(stored(tag_sid("big"))->expires_at, kNow + 1800);
}

TEST_F(PresenceEngine, ConfirmRuleGivesAPendingNotifyWithoutBody)
{
	publish_ok(pidf_body(kAlice, "t1", "open"));
	auto sent = subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	ASSERT_EQ(sent.size(), 1u);
	EXPECT_EQ(sent[0].state, "pending;expires=600");
	EXPECT_TRUE(sent[0].body.empty());
	EXPECT_TRUE(sent[0].content_type.empty());
	EXPECT_EQ(sent[0].headers.find("Content-Type"), std::string::npos) << sent[0].headers;
	EXPECT_EQ(stored(tag_sid("b"))->status, "pending");
	answer_all();

	// Changes of the document are not sent to a pending watcher.
	publish_ok(pidf_body(kAlice, "t2", "open"));
	EXPECT_TRUE(host_.take().empty());
	engine_->tick(kNow + 1, kMs + 100000);
	EXPECT_TRUE(host_.take().empty()) << "nor later";
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
	answer_all();
	publish_ok(pidf_body(kAlice, "t2", "open"));
	EXPECT_TRUE(host_.take().empty());
	engine_->tick(kNow + 1, kMs + 100000);
	EXPECT_TRUE(host_.take().empty()) << "nor later";
}

TEST_F(PresenceEngine, OwnSubscriptionNeedsNoRule)
{
	host_.default_action = Action::Block;
	auto sent = subscribe_ok(sub_req(kAlice, "Alice@A.example", 600, "own"));
	ASSERT_EQ(sent.size(), 1u);
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
	ASSERT_EQ(sent.size(), 1u);
	EXPECT_EQ(basic_of(sent[0].body, "away"), "closed");
	EXPECT_NE(sent[0].body.find("entity=\"sip:alice@a.example\""), std::string::npos);
	EXPECT_NE(sent[0].body.find("Away (sip:alice@a.example)"), std::string::npos);
}

TEST_F(PresenceEngine, EventIdIsKeptWithTheSubscription)
{
	host_.default_action = Action::Allow;
	auto sent = subscribe_ok(sub_req(kAlice, kBob, 600, "b", "presence;id=abc-1"));
	ASSERT_EQ(sent.size(), 1u);
	EXPECT_EQ(sent[0].sub.dialog.event_id, "abc-1");
	EXPECT_NE(sent[0].headers.find("Event: presence;id=abc-1\r\n"), std::string::npos) << sent[0].headers;
	EXPECT_EQ(stored(tag_sid("b"))->dialog.event_id, "abc-1");
	EXPECT_EQ(stored(tag_sid("b"))->package, "presence");
	answer_all();
	publish_ok(pidf_body(kAlice, "t1", "open"));
	Notify n = only_notify();
	EXPECT_EQ(n.sub.dialog.event_id, "abc-1") << "on later NOTIFYs too";
	EXPECT_NE(n.headers.find("Event: presence;id=abc-1\r\n"), std::string::npos) << n.headers;
	auto plain = subscribe_ok(sub_req(kAlice, kBob, 600, "c"));
	ASSERT_FALSE(plain.empty());
	EXPECT_EQ(plain[0].sub.dialog.event_id, "");
	EXPECT_NE(plain[0].headers.find("Event: presence\r\n"), std::string::npos) << plain[0].headers;
}

TEST_F(PresenceEngine, RetransmittedInitialSubscribeKeepsCountingAndTellsWinfoOnce)
{
	host_.default_action = Action::Allow;
	winfo_sub();
	answer_all();
	SubscribeRequest r = sub_req(kAlice, kBob, 600, "b");
	auto sent = subscribe_ok(r);
	ASSERT_EQ(sent.size(), 2u) << "the watcher's NOTIFY and the owner's winfo";
	EXPECT_EQ(sent[0].sub.cseq, 1u);
	EXPECT_EQ(sent[1].content_type, kWinfoType);
	answer_all();
	sent = subscribe_ok(r);
	ASSERT_EQ(sent.size(), 1u) << "no second winfo change";
	EXPECT_EQ(sent[0].sub.sid, tag_sid("b"));
	EXPECT_EQ(sent[0].sub.cseq, 2u);
	EXPECT_EQ(stored_of("presence"), 1u);

	// Once more while that NOTIFY is outstanding: 200, its NOTIFY after the answer.
	Response res = engine_->subscribe(r);
	EXPECT_EQ(res.code, 200);
	engine_->flush();
	EXPECT_TRUE(host_.take().empty());
	ASSERT_TRUE(answer(tag_sid("b")));
	Notify n = only_notify();
	EXPECT_EQ(n.sub.sid, tag_sid("b"));
	EXPECT_EQ(n.sub.cseq, 3u);
	EXPECT_EQ(stored_of("presence"), 1u);
	EXPECT_EQ(engine_->count_subscriptions(), 2);
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
	EXPECT_EQ(basic_of(n.body, "t1"), "open");
	EXPECT_EQ(n.sub.cseq, 1u);
	EXPECT_EQ(engine_->count_subscriptions(), 0);
	EXPECT_TRUE(host_.accounting.empty()) << "a fetch is no subscription";

	// The owner fetches its watcher information: the whole list (RFC 6665 4.4.3).
	subscribe_ok(sub_req(kAlice, kCarol, 600, "c"));
	res = engine_->subscribe(sub_req(kAlice, kAlice, 0, "wf", "presence.winfo"));
	EXPECT_EQ(res.code, 200);
	engine_->flush();
	n = only_notify();
	EXPECT_EQ(n.state, "terminated;reason=timeout");
	EXPECT_EQ(n.content_type, kWinfoType) << "the fetch of watcher info carries no document";
	if (n.content_type == kWinfoType) {
		WDoc d = read_winfo(n.body);
		EXPECT_EQ(d.state, "full");
		ASSERT_EQ(d.watchers.size(), 1u);
		EXPECT_EQ(d.watchers[0].uri, "sip:" + kCarol);
	}
	EXPECT_EQ(engine_->count_subscriptions(), 1);
}

// --- SUBSCRIBE: in dialog --------------------------------------------------------------------------------

TEST_F(PresenceEngine, RefreshSendsTheCurrentStateWithTheNextCseq)
{
	host_.default_action = Action::Allow;
	publish_ok(pidf_body(kAlice, "t1", "open"));
	SubscribeRequest r = sub_req(kAlice, kBob, 600, "b");
	subscribe_ok(r);
	answer_all();
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
	EXPECT_EQ(n.sub.dialog.remote_target, "sip:b-moved@127.0.0.51:5060");
	EXPECT_EQ(stored(tag_sid("b"))->expires_at, kNow + 1300);
	EXPECT_EQ(stored(tag_sid("b"))->dialog.remote_target, "sip:b-moved@127.0.0.51:5060");
}

TEST_F(PresenceEngine, RefreshWhileANotifyIsOutstandingSendsTheStateAfterIt)
{
	host_.default_action = Action::Allow;
	SubscribeRequest r = sub_req(kAlice, kBob, 600, "b");
	subscribe_ok(r);  // NOTIFY 1 outstanding
	Response res = engine_->subscribe(in_dialog(r, 900, 2, kNow + 10));
	ASSERT_EQ(res.code, 200);
	EXPECT_EQ(header_of(res, "Expires"), "900");
	engine_->flush();
	EXPECT_TRUE(host_.take().empty());
	EXPECT_EQ(stored(tag_sid("b"))->expires_at, kNow + 910) << "the refresh is stored at once";
	ASSERT_TRUE(answer(tag_sid("b"), 200, false, kMs + 11000));
	Notify n = only_notify();
	EXPECT_EQ(n.sub.cseq, 2u);
	EXPECT_EQ(n.state, "active;expires=899");
	EXPECT_EQ(n.body, offline());
}

TEST_F(PresenceEngine, InDialogSubscribeIsFoundByItsDialogNotItsToUri)
{
	host_.default_action = Action::Allow;
	publish_ok(pidf_body(kAlice, "t1", "open"));
	SubscribeRequest r = sub_req(kAlice, kBob, 600, "b");
	subscribe_ok(r);
	answer_all();
	// the refresh names another presentity in its To and Request-URI: the dialog decides
	SubscribeRequest ref = in_dialog(r, 600, 2, kNow + 10);
	ref.presentity = kCarol;
	ref.dialog.local_uri = "sip:" + kCarol;
	Response res = engine_->subscribe(ref);
	ASSERT_EQ(res.code, 200) << res.reason;
	engine_->flush();
	Notify n = only_notify();
	EXPECT_EQ(n.sub.resource, kAlice);
	EXPECT_EQ(n.sub.sid, tag_sid("b"));
	EXPECT_EQ(n.sub.cseq, 2u);
	EXPECT_EQ(basic_of(n.body, "t1"), "open");
	EXPECT_EQ(stored(tag_sid("b"))->expires_at, kNow + 610);
	EXPECT_TRUE(engine_->watchers(kCarol).empty());

	// a dialog nobody knows, whatever its To says
	SubscribeRequest other = in_dialog(sub_req(kAlice, kBob, 600, "never"), 600, 2, kNow + 10);
	EXPECT_EQ(engine_->subscribe(other).code, 481);
}

TEST_F(PresenceEngine, UnsubscribeSendsTheFinalNotifyAndTellsWinfo)
{
	host_.default_action = Action::Allow;
	publish_ok(pidf_body(kAlice, "t1", "open"));
	winfo_sub();
	answer_all();
	SubscribeRequest r = sub_req(kAlice, kBob, 600, "b");
	subscribe_ok(r);
	answer_all();
	Response res = engine_->subscribe(in_dialog(r, 0, 2, kNow + 10));
	ASSERT_EQ(res.code, 200);
	EXPECT_EQ(header_of(res, "Expires"), "0");
	engine_->flush();
	auto sent = sent_now();
	ASSERT_EQ(sent.size(), 2u);
	EXPECT_EQ(sent[0].sub.sid, tag_sid("b"));
	EXPECT_EQ(sent[0].state, "terminated;reason=timeout");
	EXPECT_EQ(sent[0].sub.cseq, 2u);
	EXPECT_EQ(sent[0].body, current_doc());
	WDoc d = read_winfo(sent[1].body);
	EXPECT_EQ(d.state, "partial");
	ASSERT_EQ(d.watchers.size(), 1u);
	EXPECT_EQ(d.watchers[0].status, "terminated");
	EXPECT_EQ(d.watchers[0].event, "timeout");
	EXPECT_EQ(d.watchers[0].id, tag_sid("b"));
	EXPECT_FALSE(stored(tag_sid("b")));
	// The dialog is gone.
	EXPECT_EQ(engine_->subscribe(in_dialog(r, 600, 3, kNow + 20)).code, 481);
	EXPECT_EQ(engine_->count_subscriptions(), 1);
}

TEST_F(PresenceEngine, UnsubscribeWhileANotifyIsOutstandingSendsTheFinalNotifyAfterIt)
{
	host_.default_action = Action::Allow;
	winfo_sub();
	answer_all();
	SubscribeRequest r = sub_req(kAlice, kBob, 600, "b");
	subscribe_ok(r);  // bob's NOTIFY 1 outstanding
	ASSERT_TRUE(answer(tag_sid("winfo")));
	host_.take();
	Response res = engine_->subscribe(in_dialog(r, 0, 2, kNow + 10));
	ASSERT_EQ(res.code, 200);
	EXPECT_EQ(header_of(res, "Expires"), "0");
	engine_->flush();
	EXPECT_TRUE(host_.take().empty()) << "its final NOTIFY waits for the outstanding one";
	EXPECT_FALSE(stored(tag_sid("b"))) << "ended at once";
	EXPECT_EQ(engine_->subscribe(in_dialog(r, 600, 3, kNow + 11)).code, 481);

	ASSERT_TRUE(answer(tag_sid("b"), 200, false, kMs + 12000));
	auto sent = sent_now();
	ASSERT_EQ(sent.size(), 2u);
	EXPECT_EQ(sent[0].sub.sid, tag_sid("b"));
	EXPECT_EQ(sent[0].state, "terminated;reason=timeout");
	EXPECT_EQ(sent[0].sub.cseq, 2u);
	WDoc d = read_winfo(sent[1].body);
	ASSERT_EQ(d.watchers.size(), 1u);
	EXPECT_EQ(d.watchers[0].status, "terminated");
	EXPECT_EQ(d.watchers[0].id, tag_sid("b"));
	EXPECT_EQ(engine_->count_subscriptions(), 1);
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
	answer_all();
	auto sent = subscribe_ok(in_dialog(rb, 600, 2, kNow + 10));
	ASSERT_EQ(sent.size(), 1u);
	EXPECT_EQ(sent[0].state, "pending;expires=600");
	EXPECT_TRUE(sent[0].body.empty());
	sent = subscribe_ok(in_dialog(rc, 600, 2, kNow + 10));
	ASSERT_EQ(sent.size(), 1u);
	EXPECT_EQ(sent[0].state, "active;expires=600");
	EXPECT_EQ(sent[0].body, offline());
	answer_all();
	// Their ends: pending without body, polite with the offline document.
	sent = subscribe_ok(in_dialog(rb, 0, 3, kNow + 20));
	EXPECT_EQ(sent.at(0).state, "terminated;reason=timeout");
	EXPECT_TRUE(sent.at(0).body.empty());
	sent = subscribe_ok(in_dialog(rc, 0, 3, kNow + 20));
	EXPECT_EQ(sent.at(0).state, "terminated;reason=timeout");
	EXPECT_EQ(sent.at(0).body, offline());
	EXPECT_EQ(engine_->count_subscriptions(), 0);
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
	answer_all();
	EXPECT_EQ(engine_->subscribe(in_dialog(r, 600, 4, kNow + 1)).code, 500);
	engine_->flush();
	EXPECT_TRUE(host_.take().empty());
	EXPECT_EQ(stored(tag_sid("b"))->expires_at, kNow + 600);
	EXPECT_EQ(engine_->subscribe(in_dialog(r, 0, 4, kNow + 1)).code, 500) << "an old unsubscribe as well";
	EXPECT_TRUE(stored(tag_sid("b")));
}

// --- watcher information --------------------------------------------------------------------------------

TEST_F(PresenceEngine, WinfoOnlyForTheOwner)
{
	Response res = engine_->subscribe(sub_req(kAlice, kBob, 600, "w", "presence.winfo"));
	EXPECT_EQ(res.code, 403);
	engine_->flush();
	EXPECT_TRUE(host_.take().empty());
	EXPECT_EQ(engine_->count_subscriptions(), 0);
}

TEST_F(PresenceEngine, WinfoFullThenPartialDocumentsWithIncreasingVersions)
{
	host_.rules[{kAlice, kBob}] = Action::Confirm;
	host_.rules[{kAlice, kCarol}] = Action::Allow;
	subscribe_ok(sub_req(kAlice, kDave, 600, "d"));  // pending before winfo exists
	WDoc full = winfo_sub();
	EXPECT_EQ(full.version, "0");
	EXPECT_EQ(full.state, "full");
	EXPECT_EQ(full.resource, "sip:" + kAlice);
	EXPECT_EQ(full.package, "presence");
	ASSERT_EQ(full.watchers.size(), 1u);
	EXPECT_EQ(full.watchers[0].status, "pending");
	EXPECT_EQ(full.watchers[0].event, "subscribe");
	EXPECT_EQ(full.watchers[0].uri, "sip:" + kDave);
	EXPECT_EQ(full.watchers[0].display_name, "W d");
	EXPECT_EQ(full.watchers[0].id, tag_sid("d"));
	answer_all();

	// bob: pending.
	SubscribeRequest rb = sub_req(kAlice, kBob, 600, "b", "presence", kNow + 10);
	auto sent = subscribe_ok(rb);
	ASSERT_EQ(sent.size(), 2u);
	EXPECT_EQ(sent[1].content_type, kWinfoType);
	EXPECT_EQ(sent[1].sub.sid, tag_sid("winfo"));
	EXPECT_EQ(sent[1].sub.cseq, 2u);
	EXPECT_EQ(sent[1].state, "active;expires=590");
	EXPECT_NE(sent[1].headers.find("Event: presence.winfo\r\n"), std::string::npos) << sent[1].headers;
	WDoc d = read_winfo(sent[1].body);
	EXPECT_EQ(d.version, "1");
	EXPECT_EQ(d.state, "partial");
	ASSERT_EQ(d.watchers.size(), 1u);
	EXPECT_EQ(d.watchers[0].status, "pending");
	EXPECT_EQ(d.watchers[0].event, "subscribe");
	EXPECT_EQ(d.watchers[0].uri, "sip:" + kBob);
	EXPECT_EQ(d.watchers[0].expiration, "600");
	answer_all();

	// carol: approved at once.
	sent = subscribe_ok(sub_req(kAlice, kCarol, 600, "c", "presence", kNow + 20));
	ASSERT_EQ(sent.size(), 2u);
	d = read_winfo(sent[1].body);
	EXPECT_EQ(d.version, "2");
	ASSERT_EQ(d.watchers.size(), 1u);
	EXPECT_EQ(d.watchers[0].status, "active");
	EXPECT_EQ(d.watchers[0].event, "subscribe") << "created and approved at once (RFC 3857)";
	EXPECT_EQ(d.watchers[0].uri, "sip:" + kCarol);
	answer_all();

	// alice approves bob.
	host_.rules[{kAlice, kBob}] = Action::Allow;
	EXPECT_EQ(engine_->reauthorize(kAlice, kBob, kMs + 30000), 1);
	sent = sent_now();
	ASSERT_EQ(sent.size(), 2u);
	EXPECT_EQ(sent[0].sub.sid, tag_sid("b"));
	EXPECT_EQ(sent[0].state, "active;expires=580");
	d = read_winfo(sent[1].body);
	EXPECT_EQ(d.version, "3");
	ASSERT_EQ(d.watchers.size(), 1u);
	EXPECT_EQ(d.watchers[0].status, "active");
	EXPECT_EQ(d.watchers[0].event, "approved");
	EXPECT_EQ(d.watchers[0].duration, "20");
	answer_all();

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
	answer_all();

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
	EXPECT_EQ(uris, (std::set<std::string>{"sip:" + kDave + "=pending", "sip:" + kCarol + "=active"}));
	answer_all();

	// and ends it: a final NOTIFY for the winfo dialog, nothing else.
	res = engine_->subscribe(in_dialog(rw, 0, 3, kNow + 60));
	EXPECT_EQ(res.code, 200);
	engine_->flush();
	n = only_notify();
	EXPECT_EQ(n.state.rfind("terminated", 0), 0u);
	EXPECT_EQ(n.sub.cseq, 7u);
	EXPECT_EQ(stored_of("presence.winfo"), 0u);
	EXPECT_EQ(stored_of("presence"), 2u);
}

TEST_F(PresenceEngine, PoliteBlockedWatcherAppearsTerminatedRejectedInWinfo)
{
	host_.rules[{kAlice, kBob}] = Action::PoliteBlock;
	winfo_sub();
	answer_all();
	auto sent = subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	ASSERT_EQ(sent.size(), 2u);
	WDoc d = read_winfo(sent[1].body);
	ASSERT_EQ(d.watchers.size(), 1u);
	EXPECT_EQ(d.watchers[0].status, "terminated");
	EXPECT_EQ(d.watchers[0].event, "rejected");
	EXPECT_EQ(d.watchers[0].id, tag_sid("b"));
	answer_all();
	// and the full list leaves it out
	Response res = engine_->subscribe(in_dialog(sub_req(kAlice, kAlice, 600, "winfo", "presence.winfo"), 600, 2, kNow + 5));
	EXPECT_EQ(res.code, 200);
	engine_->flush();
	d = read_winfo(only_notify().body);
	EXPECT_EQ(d.state, "full");
	EXPECT_TRUE(d.watchers.empty());
}

// A winfo watcher whose NOTIFY is outstanding while watchers come and go: one partial NOTIFY
// after the answer, listing every change that waited (the latest one per watcher).
TEST_F(PresenceEngine, WinfoChangesWhileItsNotifyIsOutstandingComeInOnePartialNotify)
{
	host_.default_action = Action::Allow;
	SubscribeRequest rc = sub_req(kAlice, kCarol, 600, "c");
	subscribe_ok(rc);
	answer_all();
	winfo_sub();  // its NOTIFY 1 outstanding
	host_.take();

	// bob comes, carol goes, dave comes and goes
	auto sent = subscribe_ok(sub_req(kAlice, kBob, 600, "b", "presence", kNow + 5));
	ASSERT_EQ(sent.size(), 1u) << "only bob's own NOTIFY";
	EXPECT_EQ(sent[0].sub.sid, tag_sid("b"));
	sent = subscribe_ok(in_dialog(rc, 0, 2, kNow + 6));
	ASSERT_EQ(sent.size(), 1u) << "only carol's final NOTIFY";
	EXPECT_EQ(sent[0].state, "terminated;reason=timeout");
	SubscribeRequest rd = sub_req(kAlice, kDave, 600, "d", "presence", kNow + 7);
	subscribe_ok(rd);
	ASSERT_TRUE(answer(tag_sid("d"), 200, false, kMs + 7500));
	subscribe_ok(in_dialog(rd, 0, 2, kNow + 8));
	EXPECT_TRUE(host_.take().empty());

	ASSERT_TRUE(answer(tag_sid("winfo"), 200, false, kMs + 9000));
	Notify n = only_notify();
	EXPECT_EQ(n.sub.sid, tag_sid("winfo"));
	EXPECT_EQ(n.sub.cseq, 2u);
	EXPECT_EQ(n.state, "active;expires=591");
	WDoc d = read_winfo(n.body);
	EXPECT_EQ(d.version, "1");
	EXPECT_EQ(d.state, "partial");
	std::map<std::string, std::string> by_id;
	for (const auto &w : d.watchers) by_id[w.id] = w.status + "/" + w.event;
	EXPECT_EQ(by_id, (std::map<std::string, std::string>{{tag_sid("b"), "active/subscribe"},
							 {tag_sid("c"), "terminated/timeout"}, {tag_sid("d"), "terminated/timeout"}}));
	EXPECT_EQ(d.watchers.size(), 3u) << "one entry per watcher";
	// nothing waits any more
	answer_all();
	engine_->tick(kNow + 100, kMs + 100000);
	EXPECT_TRUE(host_.take().empty());
}

// --- rules changed -----------------------------------------------------------------------------------------

TEST_F(PresenceEngine, ReauthorizePendingToActiveSendsTheDocument)
{
	publish_ok(pidf_body(kAlice, "t1", "open"));
	winfo_sub();
	answer_all();
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	answer_all();
	EXPECT_EQ(engine_->reauthorize(kAlice, "", kMs + 5000), 0) << "nothing changed";
	EXPECT_TRUE(host_.take().empty());

	host_.rules[{kAlice, kBob}] = Action::Allow;
	EXPECT_EQ(engine_->reauthorize(kAlice, "", kMs + 5000), 1);
	auto sent = sent_now();
	ASSERT_EQ(sent.size(), 2u);
	EXPECT_EQ(sent[0].sub.sid, tag_sid("b"));
	EXPECT_EQ(sent[0].state, "active;expires=595");
	EXPECT_EQ(sent[0].body, current_doc());
	EXPECT_EQ(basic_of(sent[0].body, "t1"), "open");
	EXPECT_EQ(sent[0].sub.cseq, 2u);
	EXPECT_EQ(read_winfo(sent[1].body).watchers.at(0).event, "approved");
	EXPECT_EQ(stored(tag_sid("b"))->status, "active");
	answer_all();

	// Now active: later changes reach bob.
	publish_ok(pidf_body(kAlice, "t2", "closed"), kNow + 10);
	EXPECT_EQ(only_notify().sub.cseq, 3u);
}

TEST_F(PresenceEngine, ReauthorizeActiveToBlockEndsTheSubscription)
{
	host_.default_action = Action::Allow;
	winfo_sub();
	answer_all();
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	answer_all();
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
	EXPECT_EQ(stored_of("presence"), 0u);
	EXPECT_EQ(engine_->reauthorize(kAlice, kBob, kMs + 2000), 0) << "nothing left to change";
}

TEST_F(PresenceEngine, BlockWhileANotifyIsOutstandingEndsTheSubscriptionAfterIt)
{
	host_.default_action = Action::Allow;
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));  // NOTIFY 1 outstanding
	host_.rules[{kAlice, kBob}] = Action::Block;
	EXPECT_EQ(engine_->reauthorize(kAlice, kBob, kMs + 1000), 1);
	EXPECT_TRUE(host_.take().empty());
	EXPECT_FALSE(stored(tag_sid("b")));
	ASSERT_TRUE(answer(tag_sid("b"), 200, false, kMs + 2000));
	Notify n = only_notify();
	EXPECT_EQ(n.state, "terminated;reason=rejected");
	EXPECT_TRUE(n.body.empty());
	EXPECT_EQ(n.sub.cseq, 2u);
}

TEST_F(PresenceEngine, ReauthorizeToPoliteBlockSendsTheOfflineDocument)
{
	host_.default_action = Action::Allow;
	publish_ok(pidf_body(kAlice, "t1", "open"));
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	answer_all();
	host_.rules[{kAlice, "b.example"}] = Action::PoliteBlock;
	EXPECT_EQ(engine_->reauthorize(kAlice, "b.example", kMs + 1000), 1);
	Notify n = only_notify();
	EXPECT_EQ(n.state, "active;expires=599");
	EXPECT_EQ(n.body, offline());
	EXPECT_EQ(stored(tag_sid("b"))->status, "polite");
	answer_all();
	publish_ok(pidf_body(kAlice, "t2", "open"));
	EXPECT_TRUE(host_.take().empty());
}

TEST_F(PresenceEngine, ReauthorizeOnlyTouchesTheNamedWatcherOrDomain)
{
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	subscribe_ok(sub_req(kAlice, kCarol, 600, "c"));
	answer_all();
	host_.default_action = Action::Allow;
	EXPECT_EQ(engine_->reauthorize(kAlice, "nobody@b.example", kMs), 0);
	EXPECT_EQ(engine_->reauthorize(kAlice, "C.Example", kMs), 1);
	EXPECT_EQ(stored(tag_sid("c"))->status, "active");
	EXPECT_EQ(stored(tag_sid("b"))->status, "pending");
	EXPECT_EQ(engine_->reauthorize(kAlice, kBob, kMs), 1);
	EXPECT_EQ(stored(tag_sid("b"))->status, "active");
}

TEST_F(PresenceEngine, ReauthorizeOfADomainWalksEveryPresentityOfIt)
{
	const std::string kErin = "erin@a.example", kFrank = "frank@f.example";
	// watchers of three presentities, two of them in a.example; erin never published
	publish_ok(pidf_body(kAlice, "t1", "open"));
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	subscribe_ok(sub_req(kErin, kBob, 600, "e"));
	subscribe_ok(sub_req(kFrank, kBob, 600, "f"));
	subscribe_ok(sub_req(kAlice, kCarol, 600, "c"));
	answer_all();
	host_.default_action = Action::Allow;
	EXPECT_EQ(engine_->reauthorize("a.example", "nobody@x.example", kMs + 1000), 0);
	EXPECT_TRUE(host_.take().empty());
	EXPECT_EQ(engine_->reauthorize("A.Example", kBob, kMs + 1000), 2) << "bob at alice and erin";
	auto sent = sent_now();
	std::set<std::string> to;
	for (const auto &n : sent) to.insert(n.sub.resource + "/" + n.sub.sid + "/" + n.state);
	EXPECT_EQ(to, (std::set<std::string>{kAlice + "/" + tag_sid("b") + "/active;expires=599",
						  kErin + "/" + tag_sid("e") + "/active;expires=599"}));
	EXPECT_EQ(stored(tag_sid("b"))->status, "active");
	EXPECT_EQ(stored(tag_sid("e"), kErin)->status, "active");
	EXPECT_EQ(stored(tag_sid("f"), kFrank)->status, "pending") << "another domain";
	EXPECT_EQ(stored(tag_sid("c"))->status, "pending") << "another watcher";
	EXPECT_EQ(engine_->reauthorize("a.example", "", kMs + 2000), 1) << "carol at alice";
	EXPECT_EQ(stored(tag_sid("c"))->status, "active");
}

TEST_F(PresenceEngine, ReauthorizeOfADomainPagesThroughManyPresentities)
{
	Config c;
	c.min_notify_interval_ms = 0;
	c.reauthorize_batch = 3;
	make_engine(c);
	const int kPres = 150;
	for (int i = 0; i < kPres; ++i) {
		std::string p = "u" + std::to_string(i) + (i % 3 ? "@a.example" : "@x.example");
		if (i % 5 == 0) publish_ok(pub(pidf_body(p, "t", "open"), "", 3600, kNow, p));
		subscribe_ok(sub_req(p, kBob, 600, "w" + std::to_string(i)));
	}
	answer_all();
	host_.default_action = Action::Allow;
	EXPECT_EQ(engine_->reauthorize("a.example", "", kMs + 1000), 100);
	std::set<std::string> to;
	for (const auto &n : sent_now()) {
		EXPECT_EQ(n.state, "active;expires=599");
		EXPECT_TRUE(to.insert(n.sub.resource).second) << n.sub.resource << " notified twice";
	}
	EXPECT_EQ(to.size(), 100u);
	for (const auto &p : to) EXPECT_EQ(p.substr(p.find('@')), "@a.example");
	EXPECT_EQ(engine_->reauthorize("a.example", "", kMs + 2000), 0) << "each presentity once";
	EXPECT_EQ(stored(tag_sid("w0"), "u0@x.example")->status, "pending");
}

// --- timer -------------------------------------------------------------------------------------------------

TEST_F(PresenceEngine, ExpiredPublicationSendsTheRecomposedDocument)
{
	host_.default_action = Action::Allow;
	publish_ok(pub(pidf_body(kAlice, "short", "open"), "", 60));
	publish_ok(pub(pidf_body(kAlice, "long", "open"), "", 3600));
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	answer_all();
	engine_->tick(kNow + 59, kMs + 59000);
	EXPECT_TRUE(host_.take().empty());
	EXPECT_EQ(engine_->count_publications(), 2);
	engine_->tick(kNow + 60, kMs + 60000);
	Notify n = only_notify();
	EXPECT_EQ(tuple_ids(n.body), (std::vector<std::string>{"long"}));
	EXPECT_EQ(n.state, "active;expires=540");
	EXPECT_EQ(n.sub.cseq, 2u);
	EXPECT_EQ(engine_->count_publications(), 1);
	EXPECT_EQ(tuple_ids(current_doc()), (std::vector<std::string>{"long"}));
	answer_all();
	engine_->tick(kNow + 61, kMs + 61000);
	EXPECT_TRUE(host_.take().empty()) << "expired once";
}

TEST_F(PresenceEngine, LastPublicationExpiringSendsTheOfflineDocument)
{
	host_.default_action = Action::Allow;
	publish_ok(pub(pidf_body(kAlice, "t1", "open"), "", 60));
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	answer_all();
	engine_->tick(kNow + 61, kMs + 61000);
	Notify n = only_notify();
	EXPECT_EQ(n.body, offline());
	EXPECT_EQ(current_doc(), offline());
	EXPECT_EQ(engine_->count_publications(), 0);
	answer_all();
	engine_->tick(kNow + 62, kMs + 62000);
	EXPECT_TRUE(host_.take().empty());
}

TEST_F(PresenceEngine, ExpiredSubscriptionsGetAFinalNotify)
{
	host_.rules[{kAlice, kBob}] = Action::Allow;
	publish_ok(pidf_body(kAlice, "t1", "open"));
	winfo_sub("winfo", 3600);
	answer_all();
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	answer_all();
	subscribe_ok(sub_req(kAlice, kCarol, 900, "c"));  // pending
	answer_all();
	engine_->tick(kNow + 599, kMs + 599000);
	EXPECT_TRUE(host_.take().empty());

	engine_->tick(kNow + 600, kMs + 600000);
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
	EXPECT_FALSE(stored(tag_sid("b")));
	answer_all();

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
	EXPECT_EQ(stored_of("presence"), 0u);
	answer_all();

	// The winfo subscription's own end: a final NOTIFY without body.
	engine_->tick(kNow + 3600, kMs + 3600000);
	Notify n = only_notify();
	EXPECT_EQ(n.sub.sid, tag_sid("winfo"));
	EXPECT_EQ(n.state, "terminated;reason=timeout");
	EXPECT_EQ(engine_->count_subscriptions(), 0);
}

TEST_F(PresenceEngine, SubscriptionExpiringWhileItsNotifyIsOutstandingGetsItsFinalNotifyAfterIt)
{
	host_.default_action = Action::Allow;
	subscribe_ok(sub_req(kAlice, kBob, 60, "b"));
	answer_all();
	publish_ok(pub(pidf_body(kAlice, "t1", "open"), "", 3600, kNow + 59));  // NOTIFY 2 outstanding
	EXPECT_EQ(only_notify().sub.cseq, 2u);
	engine_->tick(kNow + 60, kMs + 60000);
	EXPECT_TRUE(host_.take().empty());
	EXPECT_FALSE(stored(tag_sid("b")));
	ASSERT_TRUE(answer(tag_sid("b"), 200, false, kMs + 60500));
	Notify n = only_notify();
	EXPECT_EQ(n.state, "terminated;reason=timeout");
	EXPECT_EQ(n.sub.cseq, 3u);
	EXPECT_EQ(basic_of(n.body, "t1"), "open");
	EXPECT_EQ(engine_->count_subscriptions(), 0);
}

TEST_F(PresenceEngine, ChangesWithinTheIntervalAreCoalescedIntoOneDueNotify)
{
	Config c;
	c.min_notify_interval_ms = 1000;
	make_engine(c);
	host_.default_action = Action::Allow;
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));  // initial NOTIFY at kMs
	answer_all();
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
	answer_all();
	engine_->tick(kNow + 5, kMs + 5000);
	EXPECT_TRUE(host_.take().empty()) << "sent once";
}

// The interval since the previous NOTIFY holds on top of the wait for its answer.
TEST_F(PresenceEngine, AnswerWithinTheIntervalStillWaitsForTheInterval)
{
	Config c;
	c.min_notify_interval_ms = 1000;
	make_engine(c);
	host_.default_action = Action::Allow;
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));  // NOTIFY 1 at kMs, outstanding
	PublishRequest p1 = pub(pidf_body(kAlice, "t1", "open"));
	p1.now_ms = kMs + 100;
	std::string e1 = publish_ok(p1);
	EXPECT_TRUE(host_.take().empty());
	ASSERT_TRUE(answer(tag_sid("b"), 200, false, kMs + 200));
	EXPECT_TRUE(host_.take().empty()) << "answered, but 1 s since NOTIFY 1 has not passed";
	engine_->tick(kNow, kMs + 999);
	EXPECT_TRUE(host_.take().empty());
	engine_->tick(kNow + 1, kMs + 1000);
	Notify n = only_notify();
	EXPECT_EQ(n.sub.cseq, 2u);
	EXPECT_EQ(basic_of(n.body, "t1"), "open");

	// answered after the interval: the change that waited goes with the answer
	PublishRequest p2 = pub(pidf_body(kAlice, "t1", "closed"), e1);
	p2.now_ms = kMs + 1100;
	publish_ok(p2);
	EXPECT_TRUE(host_.take().empty());
	ASSERT_TRUE(answer(tag_sid("b"), 200, false, kMs + 2500));
	n = only_notify();
	EXPECT_EQ(n.sub.cseq, 3u);
	EXPECT_EQ(basic_of(n.body, "t1"), "closed");
}

TEST_F(PresenceEngine, TickWithoutExpirySendsDeferredNotifiesOnly)
{
	Config c;
	c.min_notify_interval_ms = 1000;
	make_engine(c);
	host_.default_action = Action::Allow;
	publish_ok(pub(pidf_body(kAlice, "short", "open"), "", 60));
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	answer_all();
	subscribe_ok(sub_req(kAlice, kCarol, 60, "c"));
	answer_all();
	PublishRequest p = pub(pidf_body(kAlice, "long", "open"), "", 3600, kNow + 59);
	p.now_ms = kMs + 59000;
	publish_ok(p);
	EXPECT_EQ(sent_now().size(), 2u);
	answer_all();
	p = pub(pidf_body(kAlice, "other", "open"), "", 3600, kNow + 59);
	p.now_ms = kMs + 59500;  // within the interval: deferred to kMs + 60000
	publish_ok(p);
	EXPECT_TRUE(host_.take().empty());

	engine_->tick(kNow + 60, kMs + 60000, false);
	auto sent = sent_now();
	ASSERT_EQ(sent.size(), 2u) << "the deferred NOTIFYs, nothing expired";
	for (const auto &n : sent) {
		EXPECT_EQ(n.state.rfind("active;", 0), 0u) << n.state;
		EXPECT_EQ(basic_of(n.body, "other"), "open");
	}
	EXPECT_EQ(engine_->count_publications(), 3);
	EXPECT_TRUE(stored(tag_sid("c")));
	answer_all();

	engine_->tick(kNow + 61, kMs + 61000, true);
	sent = sent_now();
	std::map<std::string, std::string> by_sid;
	for (const auto &n : sent) by_sid[n.sub.sid] = n.state;
	EXPECT_EQ(by_sid[tag_sid("b")], "active;expires=539") << "the document without the expired publication";
	EXPECT_EQ(engine_->count_publications(), 2);
	EXPECT_FALSE(stored(tag_sid("c"))) << "carol's subscription expired";
	for (const auto &n : sent) EXPECT_EQ(basic_of(n.body, "short"), "") << n.sub.sid;
	answer_all();  // carol's final NOTIFY follows her outstanding one
	sent = sent_now();
	ASSERT_EQ(sent.size(), 1u);
	EXPECT_EQ(sent[0].sub.sid, tag_sid("c"));
	EXPECT_EQ(sent[0].state, "terminated;reason=timeout");
}

// --- at most one NOTIFY outstanding per dialog -------------------------------------------------------------

TEST_F(PresenceEngine, PublishWhileANotifyIsOutstandingWaitsForItsAnswer)
{
	host_.default_action = Action::Allow;
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));  // bob's NOTIFY 1 outstanding
	subscribe_ok(sub_req(kAlice, kCarol, 600, "c"));
	ASSERT_TRUE(answer(tag_sid("c")));
	host_.take();

	publish_ok(pub(pidf_body(kAlice, "t1", "open"), "", 3600, kNow + 1));
	Notify n = only_notify();
	EXPECT_EQ(n.sub.sid, tag_sid("c")) << "carol's dialog is idle: at once; bob's waits";
	EXPECT_EQ(n.sub.cseq, 2u);
	engine_->tick(kNow + 2, kMs + 2000);
	EXPECT_TRUE(host_.take().empty()) << "still waiting for the answer";

	ASSERT_TRUE(answer(tag_sid("b"), 200, false, kMs + 3000));
	n = only_notify();
	EXPECT_EQ(n.sub.sid, tag_sid("b"));
	EXPECT_EQ(n.sub.cseq, 2u);
	EXPECT_EQ(n.state, "active;expires=597");
	EXPECT_EQ(basic_of(n.body, "t1"), "open");
	EXPECT_EQ(n.body, current_doc());
	ASSERT_TRUE(answer(tag_sid("b")));
	EXPECT_TRUE(host_.take().empty()) << "exactly one";
	engine_->tick(kNow + 100, kMs + 100000);
	EXPECT_TRUE(host_.take().empty());
}

TEST_F(PresenceEngine, TwoPublishesWhileANotifyIsOutstandingGiveOneNotifyWithTheLastDocument)
{
	host_.default_action = Action::Allow;
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	answer_all();
	std::string e1 = publish_ok(pub(pidf_body(kAlice, "t1", "open"), "", 3600, kNow + 1));
	EXPECT_EQ(only_notify().sub.cseq, 2u);  // outstanding
	std::string e2 = publish_ok(pub(pidf_body(kAlice, "t1", "closed"), e1, 3600, kNow + 2));
	publish_ok(pub(pidf_body(kAlice, "t2", "open", "second"), "", 3600, kNow + 3));
	EXPECT_FALSE(e2.empty());
	EXPECT_TRUE(host_.take().empty());

	ASSERT_TRUE(answer(tag_sid("b"), 200, false, kMs + 4000));
	Notify n = only_notify();
	EXPECT_EQ(n.sub.cseq, 3u);
	EXPECT_EQ(n.sub.version, 2u);
	EXPECT_EQ(basic_of(n.body, "t1"), "closed");
	EXPECT_EQ(basic_of(n.body, "t2"), "open");
	EXPECT_EQ(sorted_tuple_ids(n.body), (std::vector<std::string>{"t1", "t2"}));
	ASSERT_TRUE(answer(tag_sid("b")));
	EXPECT_TRUE(host_.take().empty());
	EXPECT_EQ(host_.st(Stat::NotifiesSent), 3);
}

TEST_F(PresenceEngine, StaleAnswerChangesNothing)
{
	host_.default_action = Action::Allow;
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	answer_all();
	std::string e1 = publish_ok(pub(pidf_body(kAlice, "t1", "open"), "", 3600, kNow + 1));
	EXPECT_EQ(only_notify().sub.cseq, 2u);  // outstanding
	publish_ok(pub(pidf_body(kAlice, "t1", "closed"), e1, 3600, kNow + 2));
	EXPECT_TRUE(host_.take().empty());

	// answers of NOTIFY 1 (again), of one never sent, and for unknown dialogs
	for (int code : {200, 481, 500}) {
		engine_->complete(kAlice, tag_sid("b"), 1, code, false, kMs + 3000);
		engine_->complete(kAlice, tag_sid("b"), 3, code, false, kMs + 3000);
		engine_->complete(kAlice, "no-such-sid", 2, code, false, kMs + 3000);
		engine_->complete(kCarol, tag_sid("b"), 2, code, false, kMs + 3000);
	}
	EXPECT_TRUE(host_.take().empty());
	auto s = stored(tag_sid("b"));
	ASSERT_TRUE(s) << "a stale 481 removed the subscription";
	EXPECT_EQ(s->cseq, 2u);
	EXPECT_EQ(host_.accounting.size(), 1u) << "no Stop";

	// the real answer releases the change that waited
	ASSERT_TRUE(answer(tag_sid("b"), 200, false, kMs + 4000));
	Notify n = only_notify();
	EXPECT_EQ(n.sub.cseq, 3u);
	EXPECT_EQ(basic_of(n.body, "t1"), "closed");
	// and once more is stale as well
	engine_->complete(kAlice, tag_sid("b"), 2, 200, false, kMs + 5000);
	EXPECT_TRUE(host_.take().empty());
	EXPECT_TRUE(host_.outstanding_for(tag_sid("b")));
}

TEST_F(PresenceEngine, UnansweredNotifyHoldsTheDialogUntilTheBusyTimeIsOver)
{
	Config c;
	c.min_notify_interval_ms = 0;
	c.notify_busy_ms = 5000;
	make_engine(c);
	host_.default_action = Action::Allow;
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));  // NOTIFY 1 at kMs: never answered
	PublishRequest p = pub(pidf_body(kAlice, "t1", "open"));
	p.now_ms = kMs + 100;
	publish_ok(p);
	EXPECT_TRUE(host_.take().empty());
	engine_->tick(kNow + 4, kMs + 4999);
	EXPECT_TRUE(host_.take().empty());
	host_.outstanding.clear();  // its answer is lost
	engine_->tick(kNow + 5, kMs + 5000);
	Notify n = only_notify();
	EXPECT_EQ(n.sub.cseq, 2u);
	EXPECT_EQ(basic_of(n.body, "t1"), "open");
	EXPECT_EQ(n.state, "active;expires=595");
	// the late answer of NOTIFY 1 changes nothing
	engine_->complete(kAlice, tag_sid("b"), 1, 481, false, kMs + 5100);
	EXPECT_TRUE(stored(tag_sid("b")));
}

// --- NOTIFY failures and RPC -------------------------------------------------------------------------------

TEST_F(PresenceEngine, NotifyFailuresRemoveOrKeepTheSubscription)
{
	host_.default_action = Action::Allow;
	for (const char *t : {"a", "b", "c", "d", "e"}) subscribe_ok(sub_req(kAlice, kBob, 600, t));
	WDoc w = winfo_sub();
	EXPECT_EQ(w.watchers.size(), 5u);
	ASSERT_TRUE(answer(tag_sid("winfo")));
	host_.take();

	ASSERT_TRUE(answer(tag_sid("a"), 481, false, kMs + 1000));
	EXPECT_FALSE(stored(tag_sid("a")));
	auto sent = sent_now();
	ASSERT_EQ(sent.size(), 1u) << "no NOTIFY to the gone dialog, only the owner's winfo";
	EXPECT_EQ(sent[0].content_type, kWinfoType);
	WDoc d = read_winfo(sent[0].body);
	ASSERT_EQ(d.watchers.size(), 1u);
	EXPECT_EQ(d.watchers[0].id, tag_sid("a"));
	EXPECT_EQ(d.watchers[0].status, "terminated");
	EXPECT_EQ(d.watchers[0].event, "timeout");
	EXPECT_EQ(host_.st(Stat::NotifiesFailed), 1);

	ASSERT_TRUE(answer(tag_sid("b"), 500, true, kMs + 1000));
	EXPECT_TRUE(stored(tag_sid("b"))) << "500 with Retry-After: kept";
	ASSERT_TRUE(answer(tag_sid("c"), 408, false, kMs + 1000));
	EXPECT_FALSE(stored(tag_sid("c"))) << "408: remove_on_timeout";
	ASSERT_TRUE(answer(tag_sid("d"), 500, false, kMs + 1000));
	EXPECT_FALSE(stored(tag_sid("d")));
	ASSERT_TRUE(answer(tag_sid("e"), 481, true, kMs + 1000));
	EXPECT_FALSE(stored(tag_sid("e"))) << "481 ends the dialog, Retry-After or not";
	EXPECT_EQ(host_.st(Stat::NotifiesFailed), 5);
	engine_->complete(kAlice, "unknown", 1, 481, false, kMs + 1000);
	EXPECT_TRUE(host_.take().empty()) << "the winfo NOTIFY about a is still outstanding";
	EXPECT_EQ(stored_of("presence"), 1u);
	EXPECT_EQ(std::count(host_.accounting.begin(), host_.accounting.end(), "stop presence " + tag_sid("c")), 1);

	// the owner learns of c, d and e together once her NOTIFY is answered
	ASSERT_TRUE(answer(tag_sid("winfo"), 200, false, kMs + 2000));
	d = read_winfo(only_notify().body);
	EXPECT_EQ(d.state, "partial");
	std::map<std::string, std::string> by_id;
	for (const auto &x : d.watchers) by_id[x.id] = x.status + "/" + x.event;
	EXPECT_EQ(by_id, (std::map<std::string, std::string>{{tag_sid("c"), "terminated/timeout"},
							 {tag_sid("d"), "terminated/timeout"}, {tag_sid("e"), "terminated/timeout"}}));

	// b goes on: the failed NOTIFY no longer holds its dialog
	answer_all();
	publish_ok(pidf_body(kAlice, "t1", "open"), kNow + 3);
	Notify n = only_notify();
	EXPECT_EQ(n.sub.sid, tag_sid("b"));
	EXPECT_EQ(n.sub.cseq, 2u);
}

TEST_F(PresenceEngine, TimeoutKeepsTheSubscriptionWhenRemoveOnTimeoutIsOff)
{
	Config c;
	c.min_notify_interval_ms = 0;
	c.remove_on_timeout = false;
	make_engine(c);
	host_.default_action = Action::Allow;
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	subscribe_ok(sub_req(kAlice, kBob, 600, "x"));
	ASSERT_TRUE(answer(tag_sid("b"), 408, false, kMs + 1000));
	EXPECT_TRUE(stored(tag_sid("b")));
	ASSERT_TRUE(answer(tag_sid("x"), 503, false, kMs + 1000));
	EXPECT_FALSE(stored(tag_sid("x"))) << "other failures still remove";
	EXPECT_TRUE(host_.take().empty());
	publish_ok(pidf_body(kAlice, "t1", "open"), kNow + 2);
	Notify n = only_notify();
	EXPECT_EQ(n.sub.sid, tag_sid("b"));
	EXPECT_EQ(n.sub.cseq, 2u);
}

TEST_F(PresenceEngine, FailedNotifyWithAChangeWaitingSendsNothingMore)
{
	host_.default_action = Action::Allow;
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));  // NOTIFY 1 outstanding
	publish_ok(pidf_body(kAlice, "t1", "open"), kNow + 1);
	EXPECT_TRUE(host_.take().empty());
	ASSERT_TRUE(answer(tag_sid("b"), 481, false, kMs + 2000));
	EXPECT_TRUE(host_.take().empty()) << "the dialog is gone: no NOTIFY with the change that waited";
	EXPECT_FALSE(stored(tag_sid("b")));
	engine_->tick(kNow + 100, kMs + 100000);
	EXPECT_TRUE(host_.take().empty());
	EXPECT_EQ(engine_->count_subscriptions(), 0);
}

TEST_F(PresenceEngine, FailedSendIsCounted)
{
	host_.default_action = Action::Allow;
	host_.send_ok = false;
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	EXPECT_EQ(host_.st(Stat::NotifiesFailed), 1);
	EXPECT_EQ(host_.st(Stat::NotifiesSent), 0);
	host_.send_ok = true;
	EXPECT_TRUE(stored(tag_sid("b")));
}

TEST_F(PresenceEngine, TerminateSendsDeactivatedWithoutBody)
{
	host_.default_action = Action::Allow;
	publish_ok(pidf_body(kAlice, "t1", "open"));
	winfo_sub();
	answer_all();
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	answer_all();
	EXPECT_TRUE(engine_->terminate(tag_sid("b"), kMs));
	auto sent = sent_now();
	ASSERT_EQ(sent.size(), 2u);
	EXPECT_EQ(sent[0].state, "terminated;reason=deactivated");
	EXPECT_TRUE(sent[0].body.empty());
	EXPECT_EQ(sent[0].sub.cseq, 2u);
	WDoc d = read_winfo(sent[1].body);
	ASSERT_EQ(d.watchers.size(), 1u);
	EXPECT_EQ(d.watchers[0].status, "terminated");
	EXPECT_EQ(d.watchers[0].event, "deactivated");
	EXPECT_FALSE(engine_->terminate(tag_sid("b"), kMs));
	EXPECT_FALSE(engine_->terminate("never", kMs));
	EXPECT_EQ(engine_->count_subscriptions(), 1);
}

TEST_F(PresenceEngine, OneFailingItemOfATimerBatchDoesNotStopTheRest)
{
	// in one tick: alice's publication expires (recomposed, notified to bob, carol and dave)
	// and dave's subscription expires (final NOTIFY after his outstanding one); every NOTIFY
	// to bob fails to be handed over
	host_.default_action = Action::Allow;
	publish_ok(pub(pidf_body(kAlice, "short", "open"), "", 60));
	publish_ok(pub(pidf_body(kAlice, "long", "open"), "", 3600));
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	subscribe_ok(sub_req(kAlice, kCarol, 600, "c"));
	subscribe_ok(sub_req(kAlice, kDave, 60, "d"));
	answer_all();
	host_.take();
	host_.fail_for_watcher.insert(kBob);
	engine_->tick(kNow + 60, kMs + 60000);
	auto sent = sent_now();
	std::map<std::string, std::vector<std::string>> by_watcher;
	for (const auto &n : sent) by_watcher[n.sub.watcher].push_back(n.state);
	EXPECT_EQ(by_watcher.count(kBob), 0u);
	ASSERT_EQ(by_watcher[kCarol].size(), 1u);
	EXPECT_EQ(by_watcher[kCarol][0], "active;expires=540");
	ASSERT_EQ(by_watcher[kDave].size(), 1u);
	EXPECT_EQ(by_watcher[kDave][0], "active;expires=0");
	EXPECT_GE(host_.st(Stat::TimerErrors), 1);
	for (const auto &n : sent) EXPECT_EQ(tuple_ids(n.body), (std::vector<std::string>{"long"}));
	// dave's final NOTIFY follows his outstanding one
	answer_all();
	Notify n = only_notify();
	EXPECT_EQ(n.sub.watcher, kDave);
	EXPECT_EQ(n.state, "terminated;reason=timeout");
	EXPECT_EQ(n.sub.cseq, 3u);
}

TEST_F(PresenceEngine, AccountingStartsAndStopsEverySubscriptionOnce)
{
	host_.default_action = Action::Allow;
	SubscribeRequest rb = sub_req(kAlice, kBob, 600, "b");
	subscribe_ok(rb);
	answer_all();
	subscribe_ok(rb);  // a retransmission
	answer_all();
	subscribe_ok(sub_req(kAlice, kCarol, 0, "fetch"));  // a fetch
	answer_all();
	SubscribeRequest rw = sub_req(kAlice, kAlice, 600, "winfo", "presence.winfo");
	subscribe_ok(rw);
	answer_all();
	EXPECT_EQ(host_.accounting, (std::vector<std::string>{"start presence " + tag_sid("b"),
										"start presence.winfo " + tag_sid("winfo")}));
	host_.accounting.clear();
	subscribe_ok(in_dialog(rb, 0, 2, kNow + 10));
	answer_all();
	subscribe_ok(in_dialog(rw, 0, 2, kNow + 20));
	answer_all();
	EXPECT_EQ(host_.accounting, (std::vector<std::string>{"stop presence " + tag_sid("b"),
										"stop presence.winfo " + tag_sid("winfo")}))
			<< "every subscription that started stops";
	EXPECT_EQ(engine_->count_subscriptions(), 0);
}

// Two processes (or nodes) share the store: each composes documents on its own, and its
// cache never hands out a document of publications another one changed.
TEST_F(PresenceEngine, TwoEnginesOnOneStoreSeeEachOthersPublications)
{
	auto redis2 = connect();
	FakeHost host2;
	Config c;
	c.min_notify_interval_ms = 0;
	Engine other(c, *redis2, kPrefix, host2);
	host_.default_action = Action::Allow;
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));
	answer_all();

	std::string e1 = publish_ok(pidf_body(kAlice, "t1", "open"), kNow + 1);
	EXPECT_EQ(basic_of(only_notify().body, "t1"), "open");
	EXPECT_EQ(basic_of(other.current_document(kAlice), "t1"), "open");
	answer_all();
	// the other process takes a modify: it notifies bob, and this one's cache follows
	PublishRequest m = pub(pidf_body(kAlice, "t1", "closed"), e1, 3600, kNow + 2);
	Response res = other.publish(m);
	ASSERT_EQ(res.code, 200);
	other.flush();
	ASSERT_EQ(host2.sent.size(), 1u);
	EXPECT_EQ(basic_of(host2.sent[0].body, "t1"), "closed");
	EXPECT_EQ(basic_of(current_doc(), "t1"), "closed");
	// its answer, reported to this process, is in the same store
	engine_->complete(kAlice, tag_sid("b"), host2.sent[0].sub.cseq, 200, false, kMs + 3000);
	host2.outstanding.clear();
	publish_ok(pub("", header_of(res, "SIP-ETag").value_or(""), 0, kNow + 4));
	Notify n = only_notify();
	EXPECT_EQ(n.body, offline());
	EXPECT_EQ(n.sub.cseq, 4u);
	EXPECT_EQ(other.current_document(kAlice), offline());
}

// --- in-process watches (bind_imps_presence) ----------------------------------------------------------------

TEST_F(PresenceEngine, WatchDeliversInProcessAndEachAnswerFreesItsDialog)
{
	host_.default_action = Action::Allow;
	std::string e1 = publish_ok(pidf_body(kAlice, "t1", "open"));
	std::string sid;
	Response res = engine_->watch(kAlice, kBob, "rls", "k1", 600, kNow, kMs, sid);
	ASSERT_EQ(res.code, 200) << res.reason;
	EXPECT_EQ(header_of(res, "Expires"), "600");
	EXPECT_FALSE(sid.empty());
	EXPECT_TRUE(host_.sent.empty()) << "no SIP NOTIFY";
	ASSERT_EQ(host_.local.size(), 1u);
	FakeHost::Local l = host_.local[0];
	EXPECT_EQ(l.consumer, "rls");
	EXPECT_EQ(l.key, "k1");
	check_body(l.n);
	EXPECT_EQ(l.n.sub.sid, sid);
	EXPECT_EQ(l.n.sub.cseq, 1u);
	EXPECT_EQ(l.n.sub.version, 0u);
	EXPECT_EQ(l.n.state, "active;expires=600");
	EXPECT_EQ(l.n.content_type, kPidfType);
	EXPECT_EQ(basic_of(l.n.body, "t1"), "open");
	auto s = stored(sid);
	ASSERT_TRUE(s);
	EXPECT_EQ(s->package, "presence");
	EXPECT_EQ(s->watcher, kBob);
	EXPECT_EQ(s->expires_at, kNow + 600);
	EXPECT_EQ(host_.accounting, (std::vector<std::string>{"start presence " + sid}));

	// the consumer answered at once: every change reaches it without waiting
	publish_ok(pub(pidf_body(kAlice, "t1", "closed"), e1, 3600, kNow + 1));
	publish_ok(pub(pidf_body(kAlice, "t2", "open"), "", 3600, kNow + 2));
	EXPECT_TRUE(host_.sent.empty());
	ASSERT_EQ(host_.local.size(), 3u);
	EXPECT_EQ(host_.local[1].n.sub.cseq, 2u);
	EXPECT_EQ(host_.local[2].n.sub.cseq, 3u);
	EXPECT_EQ(host_.local[2].n.sub.version, 2u);
	EXPECT_EQ(basic_of(host_.local[1].n.body, "t1"), "closed");
	EXPECT_EQ(sorted_tuple_ids(host_.local[2].n.body), (std::vector<std::string>{"t1", "t2"}));
	EXPECT_EQ(basic_of(host_.local[2].n.body, "t1"), "closed");
	for (const auto &x : host_.local) check_body(x.n);
	EXPECT_EQ(host_.local[2].n.body, current_doc());

	// the same key again refreshes the watch: same id, no new one, the state once more
	std::string again;
	res = engine_->watch(kAlice, kBob, "rls", "k1", 900, kNow + 3, kMs + 3000, again);
	ASSERT_EQ(res.code, 200);
	EXPECT_EQ(again, sid);
	ASSERT_EQ(host_.local.size(), 4u);
	EXPECT_EQ(host_.local[3].n.sub.cseq, 4u);
	EXPECT_EQ(host_.local[3].n.state, "active;expires=900");
	EXPECT_EQ(stored_of("presence"), 1u);
	EXPECT_EQ(host_.accounting.size(), 1u) << "no second Start";
}

TEST_F(PresenceEngine, WatchFollowsTheRulesAndShowsInWinfo)
{
	host_.rules[{kAlice, kCarol}] = Action::Block;
	winfo_sub();
	answer_all();
	std::string sid;
	EXPECT_EQ(engine_->watch(kAlice, kCarol, "rls", "kc", 600, kNow, kMs, sid).code, 403);
	EXPECT_TRUE(host_.local.empty());
	EXPECT_TRUE(host_.take().empty());

	Response res = engine_->watch(kAlice, kBob, "rls", "kb", 600, kNow + 1, kMs + 1000, sid);  // confirm
	ASSERT_EQ(res.code, 200);
	ASSERT_EQ(host_.local.size(), 1u);
	EXPECT_EQ(host_.local[0].n.state, "pending;expires=600");
	EXPECT_TRUE(host_.local[0].n.body.empty());
	Notify w = only_notify();
	EXPECT_EQ(w.sub.sid, tag_sid("winfo"));
	WDoc d = read_winfo(w.body);
	ASSERT_EQ(d.watchers.size(), 1u);
	EXPECT_EQ(d.watchers[0].id, sid);
	EXPECT_EQ(d.watchers[0].status, "pending");
	EXPECT_EQ(d.watchers[0].uri, "sip:" + kBob);
	answer_all();

	// approved: the document goes to the consumer
	host_.rules[{kAlice, kBob}] = Action::Allow;
	publish_ok(pidf_body(kAlice, "t1", "open"), kNow + 2);
	EXPECT_EQ(host_.local.size(), 1u) << "nothing while pending";
	EXPECT_EQ(engine_->reauthorize(kAlice, kBob, kMs + 3000), 1);
	ASSERT_EQ(host_.local.size(), 2u);
	EXPECT_EQ(host_.local[1].n.state, "active;expires=598");
	EXPECT_EQ(basic_of(host_.local[1].n.body, "t1"), "open");
	check_body(host_.local[1].n);
}

TEST_F(PresenceEngine, ConsumerAnswering481EndsTheWatch)
{
	host_.default_action = Action::Allow;
	winfo_sub();
	answer_all();
	host_.local_code = 481;
	std::string sid;
	ASSERT_EQ(engine_->watch(kAlice, kBob, "gone", "k", 600, kNow, kMs, sid).code, 200);
	ASSERT_EQ(host_.local.size(), 1u);
	EXPECT_FALSE(stored(sid)) << "the consumer does not know the watch";
	EXPECT_EQ(host_.accounting, (std::vector<std::string>{"start presence.winfo " + tag_sid("winfo"),
										"start presence " + sid, "stop presence " + sid}));
	// the owner saw it come; she learns it went once her NOTIFY is answered
	auto sent = sent_now();
	ASSERT_EQ(sent.size(), 1u);
	EXPECT_EQ(read_winfo(sent[0].body).watchers.at(0).status, "active");
	answer_all();
	Notify n = only_notify();
	WDoc d = read_winfo(n.body);
	ASSERT_EQ(d.watchers.size(), 1u);
	EXPECT_EQ(d.watchers[0].id, sid);
	EXPECT_EQ(d.watchers[0].status, "terminated");
	publish_ok(pidf_body(kAlice, "t1", "open"), kNow + 5);
	EXPECT_EQ(host_.local.size(), 1u);
}

TEST_F(PresenceEngine, UnwatchSendsTheFinalNotifyToTheConsumer)
{
	host_.default_action = Action::Allow;
	publish_ok(pidf_body(kAlice, "t1", "open"));
	std::string sid;
	ASSERT_EQ(engine_->watch(kAlice, kBob, "rls", "k1", 600, kNow, kMs, sid).code, 200);
	EXPECT_TRUE(engine_->unwatch(kAlice, sid, kMs + 1000));
	ASSERT_EQ(host_.local.size(), 2u);
	EXPECT_EQ(host_.local[1].n.state, "terminated;reason=timeout");
	EXPECT_EQ(host_.local[1].n.sub.cseq, 2u);
	EXPECT_EQ(basic_of(host_.local[1].n.body, "t1"), "open");
	EXPECT_FALSE(stored(sid));
	EXPECT_FALSE(engine_->unwatch(kAlice, sid, kMs + 2000));
	EXPECT_EQ(engine_->count_subscriptions(), 0);
	EXPECT_TRUE(host_.sent.empty());
}

// A NOTIFY never answered frees its dialog after the busy time, but not before the interval
// since it was sent.
TEST_F(PresenceEngine, IntervalHoldsWhenItIsLongerThanTheBusyTime)
{
	Config c;
	c.min_notify_interval_ms = 10000;
	c.notify_busy_ms = 5000;
	make_engine(c);
	host_.default_action = Action::Allow;
	subscribe_ok(sub_req(kAlice, kBob, 600, "b"));  // NOTIFY 1 at kMs: never answered
	host_.outstanding.clear();
	PublishRequest p = pub(pidf_body(kAlice, "t1", "open"));
	p.now_ms = kMs + 100;
	publish_ok(p);
	engine_->tick(kNow + 5, kMs + 5000);
	EXPECT_TRUE(host_.take().empty()) << "busy time over, interval not";
	engine_->tick(kNow + 9, kMs + 9999);
	EXPECT_TRUE(host_.take().empty());
	engine_->tick(kNow + 10, kMs + 10000);
	Notify n = only_notify();
	EXPECT_EQ(n.sub.cseq, 2u);
	EXPECT_EQ(basic_of(n.body, "t1"), "open");
}

// Changes that waited on a winfo NOTIFY never answered go with the next change once the
// busy time is over.
TEST_F(PresenceEngine, WinfoChangesKeptPastTheBusyTimeGoWithTheNextChange)
{
	Config c;
	c.min_notify_interval_ms = 0;
	c.notify_busy_ms = 5000;
	make_engine(c);
	host_.default_action = Action::Allow;
	winfo_sub();  // NOTIFY 1 at kMs: its answer is lost
	host_.outstanding.clear();
	subscribe_ok(sub_req(kAlice, kBob, 600, "b", "presence", kNow + 1));
	auto sent = subscribe_ok(sub_req(kAlice, kCarol, 600, "c", "presence", kNow + 6));
	ASSERT_EQ(sent.size(), 2u);
	EXPECT_EQ(sent[1].sub.sid, tag_sid("winfo"));
	EXPECT_EQ(sent[1].sub.cseq, 2u);
	WDoc d = read_winfo(sent[1].body);
	EXPECT_EQ(d.state, "partial");
	std::set<std::string> ids;
	for (const auto &w : d.watchers) ids.insert(w.id);
	EXPECT_EQ(ids, (std::set<std::string>{tag_sid("b"), tag_sid("c")})) << "bob's arrival waited, carol's is new";
	answer_all();
	engine_->tick(kNow + 100, kMs + 100000);
	EXPECT_TRUE(host_.take().empty()) << "nothing left waiting";
}

// An in-dialog refresh applies the rules as they are now (an admin may have changed them in
// SQL): a watcher blocked meanwhile is ended (rejected), and never gets the document again.
namespace {

class PresenceEngineRulesChanged : public PresenceEngine {
protected:
	void refresh_after_block()
	{
		host_.rules[{kAlice, kBob}] = Action::Allow;
		publish_ok(pidf_body(kAlice, "t1", "open"));
		winfo_sub();
		answer_all();
		SubscribeRequest rb = sub_req(kAlice, kBob, 600, "b");
		subscribe_ok(rb);
		answer_all();
		host_.rules[{kAlice, kBob}] = Action::Block;
		Response res = engine_->subscribe(in_dialog(rb, 600, 2, kNow + 10));
		EXPECT_EQ(res.code, 200);
		engine_->flush();
		for (int round = 0; round < 5; ++round) {
			for (auto &n : sent_now()) (n.sub.sid == tag_sid("b") ? to_bob : to_winfo).push_back(n);
			if (!answer_all(kMs + 11000 + round)) break;
		}
	}
	std::vector<Notify> to_bob, to_winfo;
};

}  // namespace

TEST_F(PresenceEngineRulesChanged, RefreshOfAWatcherBlockedMeanwhileEndsIt)
{
	refresh_after_block();
	ASSERT_FALSE(to_bob.empty());
	EXPECT_EQ(to_bob.back().state, "terminated;reason=rejected");
	EXPECT_TRUE(to_bob.back().body.empty());
	EXPECT_FALSE(stored(tag_sid("b")));
	ASSERT_FALSE(to_winfo.empty());
	WDoc d = read_winfo(to_winfo.back().body);
	ASSERT_EQ(d.watchers.size(), 1u);
	EXPECT_EQ(d.watchers[0].status, "terminated");
	EXPECT_EQ(d.watchers[0].event, "rejected");
}

TEST_F(PresenceEngineRulesChanged, RefreshOfAWatcherBlockedMeanwhileSendsItNoDocument)
{
	refresh_after_block();
	ASSERT_FALSE(to_bob.empty());
	for (const auto &n : to_bob)
		EXPECT_TRUE(n.body.empty()) << "the blocked watcher got the document (NOTIFY " << n.sub.cseq << ", "
									<< n.state << ")";
}
