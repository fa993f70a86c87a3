// Redis wrapper against a real redis-server the test starts on a free loopback port: commands,
// binary safety, errors, reconnect after a restart, the retry interval, command timeouts and
// EVALSHA falling back to EVAL after SCRIPT FLUSH. Also the digests EVALSHA relies on.
#include "imps/hash.hpp"
#include "imps/log.hpp"
#include "imps/redis.hpp"

#include "redis_server.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

using imps::Redis;
using imps::RedisConfig;
using imps::RedisError;
using imps::reply_int;
using imps::reply_str;
using imps::test::RedisServer;

namespace {

RedisConfig cfg_for(int port)
{
	RedisConfig c;
	c.host = "127.0.0.1";
	c.port = port;
	c.connect_timeout_ms = 500;
	c.timeout_ms = 1000;
	c.retry_interval_ms = 0;
	return c;
}

// A listening socket that completes TCP handshakes (kernel backlog) but never reads or
// answers; counts how many connections were made to it.
class SilentListener {
public:
	SilentListener()
	{
		fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
		sockaddr_in a{};
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a.sin_port = 0;
		int one = 1;
		::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr *>(&a), sizeof(a)), 0);
		EXPECT_EQ(::listen(fd_, 16), 0);
		socklen_t len = sizeof(a);
		::getsockname(fd_, reinterpret_cast<sockaddr *>(&a), &len);
		port_ = ntohs(a.sin_port);
		::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
	}
	~SilentListener()
	{
		for (int c : accepted_) ::close(c);
		::close(fd_);
	}
	int port() const { return port_; }
	// Accepts everything queued; returns how many connections arrived since the last call.
	int drain()
	{
		int n = 0;
		for (;;) {
			int c = ::accept(fd_, nullptr, nullptr);
			if (c < 0) break;
			accepted_.push_back(c);
			++n;
		}
		return n;
	}

private:
	int fd_ = -1;
	int port_ = 0;
	std::vector<int> accepted_;
};

class RedisTest : public ::testing::Test {
protected:
	static void SetUpTestSuite() { server_ = std::make_unique<RedisServer>(); }
	static void TearDownTestSuite() { server_.reset(); }
	void SetUp() override
	{
		ASSERT_TRUE(server_->running());
		Redis r(cfg_for(server_->port()));
		r.command({"FLUSHALL"});
		r.command({"SCRIPT", "FLUSH"});
	}

	static std::unique_ptr<RedisServer> server_;
};
std::unique_ptr<RedisServer> RedisTest::server_;

}  // namespace

TEST(Hash, KnownDigests)
{
	EXPECT_EQ(imps::sha1_hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
	EXPECT_EQ(imps::sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
	EXPECT_EQ(imps::sha256_hex(""),
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	EXPECT_EQ(imps::sha256_hex("abc"),
			"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	EXPECT_EQ(imps::sha256_hex(std::string("a\0b", 3)).size(), 64u);
	EXPECT_NE(imps::sha256_hex(std::string("a\0b", 3)), imps::sha256_hex("a"));
}

TEST_F(RedisTest, ConnectsLazilyAndRunsCommands)
{
	Redis r(cfg_for(server_->port()));
	EXPECT_FALSE(r.connected());
	auto rep = r.command({"PING"});
	EXPECT_TRUE(r.connected());
	EXPECT_EQ(rep->type, REDIS_REPLY_STATUS);
	EXPECT_EQ(reply_str(rep.get()), "PONG");

	EXPECT_EQ(reply_str(r.command({"SET", "k", "v1"}).get()), "OK");
	EXPECT_EQ(reply_str(r.command({"GET", "k"}).get()), "v1");
	EXPECT_EQ(reply_int(r.command({"INCRBY", "n", "41"}).get()), 41);
	EXPECT_EQ(reply_int(r.command({"INCR", "n"}).get()), 42);
	EXPECT_EQ(reply_int(r.command({"GET", "n"}).get()), 42);  // bulk string parsed
	EXPECT_EQ(reply_str(r.command({"INCR", "n"}).get()), "43");  // integer as string
	EXPECT_EQ(r.command({"GET", "missing"})->type, REDIS_REPLY_NIL);
	EXPECT_EQ(reply_str(r.command({"GET", "missing"}).get()), "");
	EXPECT_EQ(reply_int(r.command({"GET", "missing"}).get()), 0);
	EXPECT_EQ(reply_str(nullptr), "");
	EXPECT_EQ(reply_int(nullptr), 0);
}

TEST_F(RedisTest, ArgumentsAreBinarySafe)
{
	Redis r(cfg_for(server_->port()));
	const std::string key("bin\0key \r\n", 10);
	const std::string val("\0\x01\xff space \"quote\"\r\n*3\r\n", 24);
	r.command({"SET", key, val});
	auto rep = r.command({"GET", key});
	ASSERT_EQ(rep->type, REDIS_REPLY_STRING);
	EXPECT_EQ(std::string(rep->str, rep->len), val);
	EXPECT_EQ(reply_str(r.command({"STRLEN", key}).get()), std::to_string(val.size()));
	// The key with the NUL is distinct from its prefix.
	EXPECT_EQ(reply_int(r.command({"EXISTS", std::string("bin")}).get()), 0);
}

TEST_F(RedisTest, ErrorReplyThrowsRedisErrorAndKeepsConnection)
{
	Redis r(cfg_for(server_->port()));
	r.command({"SET", "str", "x"});
	try {
		r.command({"HGET", "str", "f"});  // WRONGTYPE
		FAIL() << "expected RedisError";
	} catch (const RedisError &e) {
		std::string m = e.what();
		EXPECT_NE(m.find("Redis"), std::string::npos) << m;
		EXPECT_NE(m.find("WRONGTYPE"), std::string::npos) << m;
	}
	EXPECT_THROW(r.command({"NOSUCHCOMMAND"}), RedisError);
	EXPECT_TRUE(r.connected());
	EXPECT_EQ(reply_str(r.command({"GET", "str"}).get()), "x");
}

TEST_F(RedisTest, SelectsConfiguredDatabase)
{
	RedisConfig c = cfg_for(server_->port());
	c.db = 3;
	Redis r3(c);
	r3.command({"SET", "only-in-3", "yes"});
	Redis r0(cfg_for(server_->port()));
	EXPECT_EQ(reply_int(r0.command({"EXISTS", "only-in-3"}).get()), 0);
	r0.command({"SELECT", "3"});
	EXPECT_EQ(reply_str(r0.command({"GET", "only-in-3"}).get()), "yes");
}

TEST_F(RedisTest, WrongPasswordFailsWithRedisError)
{
	RedisConfig c = cfg_for(server_->port());
	c.password = "secret";  // the server has none: AUTH fails
	Redis r(c);
	try {
		r.command({"PING"});
		FAIL() << "expected RedisError";
	} catch (const RedisError &e) {
		std::string m = e.what();
		EXPECT_NE(m.find("Redis"), std::string::npos) << m;
		EXPECT_NE(m.find("AUTH"), std::string::npos) << m;
	}
	EXPECT_FALSE(r.connected());
}

TEST_F(RedisTest, DisconnectThenCommandReconnects)
{
	Redis r(cfg_for(server_->port()));
	r.command({"SET", "a", "1"});
	r.disconnect();
	EXPECT_FALSE(r.connected());
	EXPECT_EQ(reply_str(r.command({"GET", "a"}).get()), "1");
	EXPECT_TRUE(r.connected());
}

TEST_F(RedisTest, ServerClosingTheConnectionIsRetriedTransparently)
{
	Redis r(cfg_for(server_->port()));
	r.command({"CLIENT", "SETNAME", "victim"});
	r.command({"SET", "a", "2"});
	Redis admin(cfg_for(server_->port()));
	EXPECT_GE(reply_int(admin.command({"CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal"}).get()), 1);
	EXPECT_EQ(reply_str(r.command({"GET", "a"}).get()), "2");
}

TEST_F(RedisTest, EvalRunsScriptWithKeysAndArgs)
{
	Redis r(cfg_for(server_->port()));
	const std::string script = "redis.call('SET', KEYS[1], ARGV[1]) return {KEYS[1], ARGV[1], #ARGV}";
	auto rep = r.eval(script, {"ek"}, {"ev", "extra"});
	ASSERT_EQ(rep->type, REDIS_REPLY_ARRAY);
	ASSERT_EQ(rep->elements, 3u);
	EXPECT_EQ(reply_str(rep->element[0]), "ek");
	EXPECT_EQ(reply_str(rep->element[1]), "ev");
	EXPECT_EQ(reply_int(rep->element[2]), 2);
	EXPECT_EQ(reply_str(r.command({"GET", "ek"}).get()), "ev");
	// EVALSHA uses the SHA1 of the script text: the script is now cached under it.
	auto ex = r.command({"SCRIPT", "EXISTS", imps::sha1_hex(script)});
	ASSERT_EQ(ex->type, REDIS_REPLY_ARRAY);
	EXPECT_EQ(reply_int(ex->element[0]), 1);
}

TEST_F(RedisTest, EvalFallsBackAfterScriptFlush)
{
	Redis r(cfg_for(server_->port()));
	const std::string script = "return redis.call('INCR', KEYS[1])";
	EXPECT_EQ(reply_int(r.eval(script, {"cnt"}, {}).get()), 1);
	EXPECT_EQ(reply_int(r.eval(script, {"cnt"}, {}).get()), 2);
	r.command({"SCRIPT", "FLUSH"});
	auto ex = r.command({"SCRIPT", "EXISTS", imps::sha1_hex(script)});
	EXPECT_EQ(reply_int(ex->element[0]), 0);
	EXPECT_EQ(reply_int(r.eval(script, {"cnt"}, {}).get()), 3);
	// The script ran exactly once per call: no double execution in the fallback.
	EXPECT_EQ(reply_str(r.command({"GET", "cnt"}).get()), "3");
}

TEST_F(RedisTest, EvalScriptErrorIsRedisError)
{
	Redis r(cfg_for(server_->port()));
	try {
		r.eval("return redis.call('NOSUCHCMD')", {}, {});
		FAIL() << "expected RedisError";
	} catch (const RedisError &e) {
		EXPECT_NE(std::string(e.what()).find("Redis"), std::string::npos) << e.what();
	}
	EXPECT_EQ(reply_str(r.command({"PING"}).get()), "PONG");
}

TEST_F(RedisTest, LogsConnectThroughInstalledSink)
{
	static std::vector<std::pair<int, std::string>> lines;
	lines.clear();
	imps::set_log_sink([](int level, const char *msg) { lines.emplace_back(level, msg); });
	{
		Redis r(cfg_for(server_->port()));
		r.command({"PING"});
	}
	imps::set_log_sink(nullptr);
	ASSERT_FALSE(lines.empty());
	EXPECT_EQ(lines[0].first, static_cast<int>(imps::LogLevel::Info));
	EXPECT_EQ(lines[0].second, "connected to Redis 127.0.0.1:" + std::to_string(server_->port()));
}

TEST(RedisNoServer, NothingListeningThrowsRedisError)
{
	int port = imps::test::free_port();
	Redis r(cfg_for(port));
	try {
		r.command({"PING"});
		FAIL() << "expected RedisError";
	} catch (const RedisError &e) {
		std::string m = e.what();
		EXPECT_NE(m.find("Redis"), std::string::npos) << m;
		EXPECT_NE(m.find(std::to_string(port)), std::string::npos) << m;
	}
	EXPECT_FALSE(r.connected());
	EXPECT_THROW(r.eval("return 1", {}, {}), RedisError);
}

TEST(RedisNoServer, RefusedConnectionsAreRetriedAtOnceAndFailFast)
{
	// A refused connection costs nothing: every command tries again (no retry_interval
	// wait), and fails at once with an error naming Redis.
	int port = imps::test::free_port();
	RedisConfig c = cfg_for(port);
	c.retry_interval_ms = 60000;
	Redis r(c);
	for (int i = 0; i < 3; ++i) {
		auto t0 = std::chrono::steady_clock::now();
		try {
			r.command({"PING"});
			FAIL() << "expected RedisError";
		} catch (const RedisError &e) {
			std::string m = e.what();
			EXPECT_NE(m.find("Redis"), std::string::npos) << m;
			EXPECT_EQ(m.find("retry pending"), std::string::npos) << m;
		}
		EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(100));
	}
	EXPECT_FALSE(r.connected());
}

TEST(RedisNoServer, ARestartedServerIsUsedAgainAtOnce)
{
	// Redis down, then back: the next command connects, whatever retry_interval_ms says
	// (it only throttles connects that time out). A binding change right after a Redis
	// restart must not be lost to a wait.
	RedisServer server;
	const int port = server.port();
	server.stop();
	RedisConfig c = cfg_for(port);
	c.retry_interval_ms = 60000;
	Redis r(c);
	EXPECT_THROW(r.command({"PING"}), RedisError);
	server.start();
	EXPECT_EQ(reply_str(r.command({"PING"}).get()), "PONG");
	EXPECT_TRUE(r.connected());
}

TEST(RedisNoServer, ZeroRetryIntervalTriesEveryTime)
{
	RedisServer server;
	const int port = server.port();
	server.stop();
	Redis r(cfg_for(port));  // retry_interval_ms = 0
	EXPECT_THROW(r.command({"PING"}), RedisError);
	server.start();
	EXPECT_EQ(reply_str(r.command({"PING"}).get()), "PONG");
}

TEST(RedisRestart, ReconnectsAfterServerRestartAndSeesPersistedData)
{
	RedisServer server(/*appendonly=*/true);
	Redis r(cfg_for(server.port()));
	r.command({"SET", "persist", "kept"});
	r.command({"HSET", "h", "f", "v"});
	ASSERT_TRUE(r.connected());

	server.restart();  // same port, AOF replayed

	// The old connection is dead; the wrapper notices, reconnects and retries once.
	EXPECT_EQ(reply_str(r.command({"GET", "persist"}).get()), "kept");
	EXPECT_TRUE(r.connected());
	EXPECT_EQ(reply_str(r.command({"HGET", "h", "f"}).get()), "v");

	// And again, through eval (script cache is gone after the restart: NOSCRIPT fallback).
	const std::string script = "return redis.call('GET', KEYS[1])";
	EXPECT_EQ(reply_str(r.eval(script, {"persist"}, {}).get()), "kept");
	server.restart();
	EXPECT_EQ(reply_str(r.eval(script, {"persist"}, {}).get()), "kept");
}

TEST(RedisRestart, ServerDownBetweenCommandsThrowsThenRecovers)
{
	RedisServer server;
	Redis r(cfg_for(server.port()));
	r.command({"PING"});
	server.stop();
	try {
		r.command({"PING"});
		FAIL() << "expected RedisError while the server is down";
	} catch (const RedisError &e) {
		EXPECT_NE(std::string(e.what()).find("Redis"), std::string::npos) << e.what();
	}
	EXPECT_FALSE(r.connected());
	server.start();
	EXPECT_EQ(reply_str(r.command({"PING"}).get()), "PONG");
}

TEST(RedisTimeout, CommandTimeoutThrowsWithoutRetry)
{
	SilentListener l;
	RedisConfig c = cfg_for(l.port());
	c.timeout_ms = 200;
	Redis r(c);
	auto t0 = std::chrono::steady_clock::now();
	try {
		r.command({"PING"});
		FAIL() << "expected RedisError on timeout";
	} catch (const RedisError &e) {
		EXPECT_NE(std::string(e.what()).find("Redis"), std::string::npos) << e.what();
	}
	auto took = std::chrono::steady_clock::now() - t0;
	EXPECT_GE(took, std::chrono::milliseconds(150));
	EXPECT_FALSE(r.connected());
	// One connection only: a timed-out command is not sent again on a new connection.
	EXPECT_EQ(l.drain(), 1);
}

TEST(RedisReplyLost, ACommandThatMayHaveRunIsNotSentAgain)
{
	// a "server" that reads the command and closes the connection without answering: the
	// command may have run (a PUBLISH stored under an ETag the client never learns), so it
	// must not be sent again on a new connection; the caller gets the error
	int fd = ::socket(AF_INET, SOCK_STREAM, 0);
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;
	::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)), 0);
	ASSERT_EQ(::listen(fd, 16), 0);
	socklen_t len = sizeof(a);
	::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
	std::atomic<int> commands{0}, connections{0};
	std::atomic<bool> stop{false};
	std::thread t([&] {
		timeval tv{0, 100000};
		::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		while (!stop) {
			int c = ::accept(fd, nullptr, nullptr);
			if (c < 0) continue;
			++connections;
			char buf[512];
			if (::recv(c, buf, sizeof(buf), 0) > 0) ++commands;
			::close(c);  // and no reply
		}
	});
	Redis r(cfg_for(ntohs(a.sin_port)));
	try {
		r.command({"EVALSHA", "0123", "1", "imps:presence:pub:alice"});
		FAIL() << "expected RedisError";
	} catch (const RedisError &e) {
		EXPECT_NE(std::string(e.what()).find("may have run"), std::string::npos) << e.what();
	}
	std::this_thread::sleep_for(std::chrono::milliseconds(200));
	stop = true;
	t.join();
	::close(fd);
	EXPECT_EQ(commands.load(), 1);
	EXPECT_EQ(connections.load(), 1);
}
