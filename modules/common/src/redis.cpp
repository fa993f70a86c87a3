#include "imps/redis.hpp"

#include "imps/hash.hpp"
#include "imps/log.hpp"

#include <cerrno>
#include <cstring>

#include <sys/socket.h>
#include <sys/types.h>

namespace imps {

Redis::Redis(RedisConfig cfg) : cfg_(std::move(cfg)) {}

Redis::~Redis() { disconnect(); }

void Redis::disconnect() noexcept
{
	if (ctx_) {
		redisFree(ctx_);
		ctx_ = nullptr;
	}
}

void Redis::connect()
{
	auto now = std::chrono::steady_clock::now();
	// Only a connect that timed out is throttled (it blocks the caller); a refused connection
	// costs nothing and is retried at once, so a restarted Redis is used again immediately.
	if (last_connect_timed_out_ && last_attempt_.time_since_epoch().count() != 0
			&& now - last_attempt_ < std::chrono::milliseconds(cfg_.retry_interval_ms)) {
		throw RedisError("Redis " + cfg_.host + ":" + std::to_string(cfg_.port)
				+ " unreachable (" + last_error_ + "), next retry pending");
	}
	last_attempt_ = now;
	timeval ct{cfg_.connect_timeout_ms / 1000, (cfg_.connect_timeout_ms % 1000) * 1000};
	redisContext *c = redisConnectWithTimeout(cfg_.host.c_str(), cfg_.port, ct);
	if (!c || c->err) {
		last_error_ = c ? c->errstr : "cannot allocate context";
		last_connect_timed_out_ = c && (c->err == REDIS_ERR_IO || c->err == REDIS_ERR_OTHER)
				&& (std::strstr(c->errstr, "timed out") || std::strstr(c->errstr, "Timeout")
						|| errno == ETIMEDOUT || errno == EINPROGRESS);
		if (c) redisFree(c);
		throw RedisError("Redis " + cfg_.host + ":" + std::to_string(cfg_.port)
				+ " unreachable: " + last_error_);
	}
	timeval tv{cfg_.timeout_ms / 1000, (cfg_.timeout_ms % 1000) * 1000};
	redisSetTimeout(c, tv);
	redisEnableKeepAlive(c);
	ctx_ = c;
	auto check = [&](Reply r, const char *what) {
		if (!r || r->type == REDIS_REPLY_ERROR) {
			std::string msg = r ? std::string(r->str, r->len) : std::string(ctx_->errstr);
			disconnect();
			last_error_ = msg;
			throw RedisError(std::string("Redis ") + what + " failed: " + msg);
		}
	};
	if (!cfg_.password.empty()) check(raw({"AUTH", cfg_.password}), "AUTH");
	if (cfg_.db != 0) check(raw({"SELECT", std::to_string(cfg_.db)}), "SELECT");
	last_attempt_ = {};
	last_connect_timed_out_ = false;
	IMPS_INFO("connected to Redis %s:%d", cfg_.host.c_str(), cfg_.port);
}

// hiredis's argv form of a command: the arguments' pointers and lengths
struct ArgvArrays {
	explicit ArgvArrays(const std::vector<std::string_view> &argv)
	{
		ptrs.reserve(argv.size());
		lens.reserve(argv.size());
		for (auto a : argv) {
			ptrs.push_back(a.data());
			lens.push_back(a.size());
		}
	}
	int argc() const { return static_cast<int>(ptrs.size()); }
	std::vector<const char *> ptrs;
	std::vector<size_t> lens;
};

Reply Redis::raw(const std::vector<std::string_view> &argv)
{
	ArgvArrays a(argv);
	return Reply(static_cast<redisReply *>(
			redisCommandArgv(ctx_, a.argc(), a.ptrs.data(), a.lens.data())));
}

// True when the peer has closed the idle connection (Redis restarted, CLIENT KILL, a proxy's
// idle timeout) or left unread data on it: either way the connection is not used again.
static bool peer_gone(int fd)
{
	char c;
	ssize_t n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0) return true;  // orderly close
	if (n > 0) return true;   // nothing should be waiting before a command is sent
	return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

Reply Redis::command(const std::vector<std::string_view> &argv)
{
	// A connection the server closed while idle is noticed before the command goes out and
	// reopened. A command is sent again only when it never reached Redis (the send failed):
	// once sent, a lost or late reply means it may have run, and running it again could
	// store a second publication or count twice, so that is an error for the caller.
	ArgvArrays a(argv);
	for (int attempt = 0; attempt < 2; ++attempt) {
		if (ctx_ && peer_gone(ctx_->fd)) disconnect();
		if (!ctx_) connect();
		bool sent = false;
		if (redisAppendCommandArgv(ctx_, a.argc(), a.ptrs.data(), a.lens.data()) == REDIS_OK) {
			int done = 0;
			while (!done && redisBufferWrite(ctx_, &done) == REDIS_OK) {}
			sent = done != 0;
		}
		void *reply = nullptr;
		if (sent && redisGetReply(ctx_, &reply) == REDIS_OK && reply) {
			Reply r(static_cast<redisReply *>(reply));
			if (r->type == REDIS_REPLY_ERROR)
				throw RedisError("Redis error: " + std::string(r->str, r->len));
			return r;
		}
		std::string err = ctx_->errstr;
		bool timed_out = sent && ctx_->err == REDIS_ERR_IO
				&& (errno == EAGAIN || errno == EWOULDBLOCK || std::strstr(err.c_str(), "temporarily"));
		disconnect();
		last_error_ = err;
		if (!sent && attempt == 0) continue;  // it never reached Redis: safe to send again
		if (timed_out) stalled();
		throw RedisError("Redis " + cfg_.host + ":" + std::to_string(cfg_.port)
				+ (sent ? " reply lost (the command may have run): " : " connection lost: ") + err);
	}
	throw RedisError("Redis unreachable");
}

// A Redis that accepts connections but does not answer (stalled, paused, overloaded) cost
// this process its command timeout once: for retry_interval_ms no command waits for it again
// (each fails at once, as after a connect that timed out), so a request that needs Redis
// several times, or one process after another waiting on a lock, never adds the timeouts up.
void Redis::stalled()
{
	last_connect_timed_out_ = true;
	last_attempt_ = std::chrono::steady_clock::now();
	last_error_ = "no reply within " + std::to_string(cfg_.timeout_ms) + " ms";
}

Reply Redis::eval(const std::string &script, const std::vector<std::string_view> &keys,
		const std::vector<std::string_view> &args)
{
	std::string sha = sha1_hex(script);
	std::string nkeys = std::to_string(keys.size());
	std::vector<std::string_view> argv;
	argv.reserve(3 + keys.size() + args.size());
	argv.push_back("EVALSHA");
	argv.push_back(sha);
	argv.push_back(nkeys);
	argv.insert(argv.end(), keys.begin(), keys.end());
	argv.insert(argv.end(), args.begin(), args.end());
	try {
		return command(argv);
	} catch (const RedisError &e) {
		if (std::strstr(e.what(), "NOSCRIPT") == nullptr) throw;
	}
	argv[0] = "EVAL";
	argv[1] = script;
	return command(argv);
}

std::vector<std::string_view> Redis::evalsha_argv(const std::string &script, std::string &sha_buf,
		std::string &nkeys_buf, const std::vector<std::string_view> &keys,
		const std::vector<std::string_view> &args)
{
	sha_buf = sha1_hex(script);
	nkeys_buf = std::to_string(keys.size());
	std::vector<std::string_view> argv;
	argv.reserve(3 + keys.size() + args.size());
	argv.push_back("EVALSHA");
	argv.push_back(sha_buf);
	argv.push_back(nkeys_buf);
	argv.insert(argv.end(), keys.begin(), keys.end());
	argv.insert(argv.end(), args.begin(), args.end());
	return argv;
}

std::vector<Reply> Redis::pipeline(const std::vector<std::vector<std::string_view>> &cmds,
		const std::vector<const std::string *> &scripts)
{
	std::vector<Reply> out;
	if (cmds.empty()) return out;
	for (int attempt = 0; attempt < 2; ++attempt) {
		if (ctx_ && peer_gone(ctx_->fd)) disconnect();
		if (!ctx_) connect();
		bool appended = true;
		for (const auto &c : cmds) {
			ArgvArrays a(c);
			if (redisAppendCommandArgv(ctx_, a.argc(), a.ptrs.data(), a.lens.data()) != REDIS_OK) {
				appended = false;
				break;
			}
		}
		bool sent = false;
		if (appended) {
			int done = 0;
			while (!done && redisBufferWrite(ctx_, &done) == REDIS_OK) {}
			sent = done != 0;
		}
		if (sent) {
			out.clear();
			bool ok = true;
			for (size_t i = 0; i < cmds.size(); ++i) {
				void *reply = nullptr;
				if (redisGetReply(ctx_, &reply) != REDIS_OK || !reply) {
					ok = false;
					break;
				}
				out.emplace_back(static_cast<redisReply *>(reply));
			}
			if (ok) {
				for (size_t i = 0; i < out.size(); ++i) {
					const redisReply *r = out[i].get();
					if (r->type == REDIS_REPLY_ERROR && i < scripts.size() && scripts[i]
							&& std::strncmp(r->str, "NOSCRIPT", 8) == 0) {
						std::vector<std::string_view> argv = cmds[i];
						argv[0] = "EVAL";
						argv[1] = *scripts[i];
						out[i] = raw_or_throw(argv);
					}
				}
				return out;
			}
		}
		std::string err = ctx_->errstr;
		bool timed_out = sent && ctx_->err == REDIS_ERR_IO
				&& (errno == EAGAIN || errno == EWOULDBLOCK || std::strstr(err.c_str(), "temporarily"));
		disconnect();
		last_error_ = err;
		if (!sent && attempt == 0) continue;  // nothing reached Redis: safe to send again
		if (timed_out) stalled();
		throw RedisError("Redis " + cfg_.host + ":" + std::to_string(cfg_.port)
				+ (sent ? " reply lost (the commands may have run): " : " connection lost: ") + err);
	}
	throw RedisError("Redis unreachable");
}

Reply Redis::raw_or_throw(const std::vector<std::string_view> &argv)
{
	Reply r = raw(argv);
	if (!r) {
		std::string err = ctx_ ? ctx_->errstr : "no connection";
		disconnect();
		throw RedisError("Redis reply lost (the command may have run): " + err);
	}
	return r;
}

std::string reply_str(const redisReply *r)
{
	if (!r) return {};
	if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
		return std::string(r->str, r->len);
	if (r->type == REDIS_REPLY_INTEGER) return std::to_string(r->integer);
	return {};
}

long long reply_int(const redisReply *r)
{
	if (!r) return 0;
	if (r->type == REDIS_REPLY_INTEGER) return r->integer;
	if (r->type == REDIS_REPLY_STRING) return std::strtoll(r->str, nullptr, 10);
	return 0;
}

}  // namespace imps
