// hiredis wrapper: one connection per process, reconnecting by itself, with bounded connect and
// command timeouts, RAII replies and Lua scripts run by SHA with a fallback to EVAL.
#pragma once

#include <hiredis/hiredis.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace imps {

struct RedisConfig {
	std::string host = "127.0.0.1";
	int port = 6379;
	std::string password;
	int db = 0;
	int connect_timeout_ms = 500;
	int timeout_ms = 500;
	int retry_interval_ms = 1000;  // after a connect that timed out, no new attempt this long
};

// Thrown when Redis cannot be reached or answers with an error; the message names Redis.
class RedisError : public std::runtime_error {
public:
	using std::runtime_error::runtime_error;
};

struct ReplyDeleter {
	void operator()(redisReply *r) const noexcept { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

class Redis {
public:
	explicit Redis(RedisConfig cfg);
	~Redis();
	Redis(const Redis &) = delete;
	Redis &operator=(const Redis &) = delete;

	// Runs one command given as separate arguments (binary safe). Reconnects first when the
	// connection is down; throws RedisError when Redis is unreachable or replies an error.
	Reply command(const std::vector<std::string_view> &argv);

	// Runs a Lua script by SHA1, loading it again when Redis lost its script cache.
	Reply eval(const std::string &script, const std::vector<std::string_view> &keys,
			const std::vector<std::string_view> &args);

	// Several commands in one round trip (replies in order). Sent again only when nothing
	// reached Redis; an error reply of one command is returned as that command's reply (not
	// thrown), except NOSCRIPT of an EVALSHA, which is run again with its script (it did not
	// run). scripts[i]: the script text of command i when it is an EVALSHA, else empty.
	std::vector<Reply> pipeline(const std::vector<std::vector<std::string_view>> &cmds,
			const std::vector<const std::string *> &scripts = {});
	// The argv of an EVALSHA of script (sha held in sha_buf, kept alive by the caller).
	static std::vector<std::string_view> evalsha_argv(const std::string &script, std::string &sha_buf,
			std::string &nkeys_buf, const std::vector<std::string_view> &keys,
			const std::vector<std::string_view> &args);

	bool connected() const noexcept { return ctx_ != nullptr; }
	// Lets the next command try Redis even within the retry interval after a timeout (for a
	// replay that must learn whether the first attempt ran).
	void retry_now() noexcept { last_connect_timed_out_ = false; }
	const RedisConfig &config() const noexcept { return cfg_; }
	void disconnect() noexcept;

private:
	void connect();
	Reply raw(const std::vector<std::string_view> &argv);
	Reply raw_or_throw(const std::vector<std::string_view> &argv);
	void stalled();

	RedisConfig cfg_;
	redisContext *ctx_ = nullptr;
	std::chrono::steady_clock::time_point last_attempt_{};
	bool last_connect_timed_out_ = false;
	std::string last_error_;
};

// The RedisConfig of a module's C configuration struct (any struct with the fields
// redis_host, redis_port, redis_password, redis_db, redis_connect_timeout_ms,
// redis_timeout_ms, redis_retry_interval_ms, as the modules' capi headers have them).
template <class C>
RedisConfig redis_config_of(const C &cfg)
{
	RedisConfig rc;
	rc.host = cfg.redis_host ? cfg.redis_host : "127.0.0.1";
	rc.port = cfg.redis_port;
	rc.password = cfg.redis_password ? cfg.redis_password : "";
	rc.db = cfg.redis_db;
	rc.connect_timeout_ms = cfg.redis_connect_timeout_ms;
	rc.timeout_ms = cfg.redis_timeout_ms;
	rc.retry_interval_ms = cfg.redis_retry_interval_ms;
	return rc;
}

// Helpers to read replies.
std::string reply_str(const redisReply *r);
long long reply_int(const redisReply *r);

}  // namespace imps
