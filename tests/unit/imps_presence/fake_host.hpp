// Test helpers for the presence store and engine: a fixture base with a private redis-server
// per suite (tests/unit/common/redis_server.hpp) and a fresh, flushed connection per test, a
// recording Host (NOTIFYs with body, content type and Subscription-State; rules; stats; lock
// balance), and small readers of responses.
#pragma once

#include "imps_presence/core/engine.hpp"
#include "imps_presence/core/store.hpp"

#include "imps/redis.hpp"

#include "../common/redis_server.hpp"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace imps::test {

// Unix seconds fixed far in the future (every run computes the same values).
inline constexpr long long kPresNow = 4000000000LL;
inline constexpr long long kPresNowMs = kPresNow * 1000;
inline const std::string kPresPrefix = "imps:presence";

// A fixture whose suite owns one redis-server; every test starts with an empty database and
// one store on its own connection (more connections: connect()).
class PresenceRedisTest : public ::testing::Test {
protected:
	static void SetUpTestSuite() { server_ = std::make_unique<RedisServer>(); }
	static void TearDownTestSuite() { server_.reset(); }

	void SetUp() override
	{
		redis_ = connect();
		redis_->command({"FLUSHALL"});
		store_ = presence::make_redis_store(*redis_, kPresPrefix);
	}

	static std::unique_ptr<Redis> connect()
	{
		RedisConfig c;
		c.port = server_->port();
		c.retry_interval_ms = 0;
		c.timeout_ms = 5000;
		return std::make_unique<Redis>(c);
	}

	long long zcard(const std::string &key) { return reply_int(redis_->command({"ZCARD", kPresPrefix + key}).get()); }
	bool exists(const std::string &key) { return reply_int(redis_->command({"EXISTS", kPresPrefix + key}).get()) == 1; }

	inline static std::unique_ptr<RedisServer> server_;
	std::unique_ptr<Redis> redis_;
	std::unique_ptr<presence::Store> store_;
};

class FakePresenceHost : public presence::Host {
public:
	struct Notify {
		presence::Subscription sub;
		std::string body;
		std::string content_type;
		std::string state;
	};

	bool send_notify(const presence::Subscription &s, const std::string &body,
			const std::string &content_type, const std::string &state) override
	{
		if (fail_for_watcher.count(s.watcher))
			throw std::runtime_error("NOTIFY body could not be built");  // an error of one item
		sent.push_back({s, body, content_type, state});
		return send_ok;
	}
	// rules[{presentity, watcher}], else rules[{presentity, domain of watcher}], else the default.
	presence::Action rule(const std::string &presentity, const std::string &watcher) override
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
	void stat(presence::Stat which, long long delta) override { stats[which] += delta; }
	long long st(presence::Stat which) const
	{
		auto it = stats.find(which);
		return it == stats.end() ? 0 : it->second;
	}
	void lock(const std::string &p) override
	{
		EXPECT_EQ(held.count(p), 0u) << "presentity " << p << " locked twice";
		held.insert(p);
		++locks;
	}
	void unlock(const std::string &p) override
	{
		EXPECT_EQ(held.count(p), 1u) << "presentity " << p << " unlocked but not locked";
		held.erase(p);
	}

	// NOTIFYs sent since the last call.
	std::vector<Notify> take()
	{
		std::vector<Notify> out;
		out.swap(sent);
		return out;
	}

	std::vector<Notify> sent;
	std::vector<std::pair<std::string, std::string>> rule_calls;
	std::map<std::pair<std::string, std::string>, presence::Action> rules;
	presence::Action default_action = presence::Action::Confirm;
	std::map<presence::Stat, long long> stats;
	std::set<std::string> held;
	int locks = 0;
	bool send_ok = true;
	std::set<std::string> fail_for_watcher;  // send_notify throws for these watchers
};

// The value of the first header line "Name: value" of a response.
inline std::optional<std::string> header_of(const presence::Response &r, const std::string &name)
{
	for (const auto &h : r.headers)
		if (h.size() > name.size() && h.compare(0, name.size(), name) == 0 && h[name.size()] == ':') {
			size_t v = h.find_first_not_of(' ', name.size() + 1);
			return v == std::string::npos ? std::string() : h.substr(v);
		}
	return std::nullopt;
}

// A PIDF body a presentity may publish: one tuple with basic status and a note.
inline std::string pidf_body(const std::string &presentity, const std::string &tuple_id,
		const std::string &basic, const std::string &note = "")
{
	std::string b = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
					"<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:" + presentity + "\">"
					"<tuple id=\"" + tuple_id + "\"><status><basic>" + basic + "</basic></status>";
	if (!note.empty()) b += "<note>" + note + "</note>";
	return b + "</tuple></presence>";
}

}  // namespace imps::test
