// Test helper: a private redis-server on a free loopback port, in its own temp directory,
// started and stopped by the test (no persistence unless asked for).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace imps::test {

// A TCP port on 127.0.0.1 nobody listens on right now.
inline int free_port()
{
	int fd = ::socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0) throw std::runtime_error("socket failed");
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = 0;
	if (::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)) != 0) {
		::close(fd);
		throw std::runtime_error("bind failed");
	}
	socklen_t len = sizeof(a);
	::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
	::close(fd);
	return ntohs(a.sin_port);
}

inline bool redis_ping(int port)
{
	timeval tv{0, 200 * 1000};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
	bool ok = false;
	if (c && !c->err) {
		redisSetTimeout(c, tv);
		auto *r = static_cast<redisReply *>(redisCommand(c, "PING"));
		ok = r && r->type == REDIS_REPLY_STATUS && std::string(r->str, r->len) == "PONG";
		if (r) freeReplyObject(r);
	}
	if (c) redisFree(c);
	return ok;
}

class RedisServer {
public:
	explicit RedisServer(bool appendonly = false) : appendonly_(appendonly)
	{
		// Kamailio ignores SIGPIPE; so does the test process, as hiredis writes to sockets
		// the server may have closed.
		::signal(SIGPIPE, SIG_IGN);
		char tmpl[] = "/tmp/imps-redis-XXXXXX";
		if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
		dir_ = tmpl;
		port_ = free_port();
		start();
	}
	~RedisServer()
	{
		stop();
		std::error_code ec;
		std::filesystem::remove_all(dir_, ec);
	}
	RedisServer(const RedisServer &) = delete;
	RedisServer &operator=(const RedisServer &) = delete;

	int port() const { return port_; }
	const std::string &dir() const { return dir_; }
	bool running() const { return pid_ > 0; }

	void start()
	{
		if (pid_ > 0) return;
		std::string port = std::to_string(port_);
		std::string log = dir_ + "/redis.log";
		pid_t pid = ::fork();
		if (pid < 0) throw std::runtime_error("fork failed");
		if (pid == 0) {
			int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
			if (fd >= 0) {
				::dup2(fd, 1);
				::dup2(fd, 2);
				::close(fd);
			}
			std::vector<const char *> argv = {"redis-server", "--port", port.c_str(), "--bind",
					"127.0.0.1", "--save", "", "--appendonly", appendonly_ ? "yes" : "no",
					"--dir", dir_.c_str(), "--daemonize", "no", "--protected-mode", "yes",
					"--loglevel", "warning"};
			if (appendonly_) {
				argv.push_back("--appendfsync");
				argv.push_back("always");
			}
			argv.push_back(nullptr);
			::execv("/usr/bin/redis-server", const_cast<char *const *>(argv.data()));
			::_exit(127);
		}
		pid_ = pid;
		auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
		while (std::chrono::steady_clock::now() < deadline) {
			int status = 0;
			if (::waitpid(pid_, &status, WNOHANG) == pid_) {
				pid_ = -1;
				throw std::runtime_error("redis-server exited at start: " + read_log());
			}
			if (redis_ping(port_)) return;
			std::this_thread::sleep_for(std::chrono::milliseconds(20));
		}
		stop();
		throw std::runtime_error("redis-server did not answer on port " + port + ": " + read_log());
	}

	void stop()
	{
		if (pid_ <= 0) return;
		::kill(pid_, SIGTERM);
		int status = 0;
		auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
		while (::waitpid(pid_, &status, WNOHANG) == 0) {
			if (std::chrono::steady_clock::now() > deadline) {
				::kill(pid_, SIGKILL);
				::waitpid(pid_, &status, 0);
				break;
			}
			std::this_thread::sleep_for(std::chrono::milliseconds(10));
		}
		pid_ = -1;
	}

	void restart()
	{
		stop();
		start();
	}

	std::string read_log() const
	{
		std::ifstream f(dir_ + "/redis.log");
		std::stringstream ss;
		ss << f.rdbuf();
		return ss.str();
	}

private:
	bool appendonly_;
	std::string dir_;
	int port_ = 0;
	pid_t pid_ = -1;
};

}  // namespace imps::test
