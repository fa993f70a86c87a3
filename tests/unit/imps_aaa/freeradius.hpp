// FreeRADIUS from Debian with the project's configuration (cfg/freeradius), started by a test
// on free ports, and a free UDP port helper.
#pragma once

#include "imps_aaa/core/client.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

namespace {

int free_udp_port()
{
	int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a));
	socklen_t l = sizeof(a);
	::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &l);
	::close(fd);
	return ntohs(a.sin_port);
}

std::string conf_dir()
{
	auto p = std::filesystem::current_path();
	for (int i = 0; i < 6; ++i, p = p.parent_path())
		if (std::filesystem::exists(p / "cfg/freeradius/radiusd.conf")) return (p / "cfg/freeradius").string();
	return "cfg/freeradius";
}

// FreeRADIUS from Debian with the project's configuration.
class FreeRadius {
public:
	FreeRadius()
	{
		auth_port = free_udp_port();
		acct_port = free_udp_port();
		char tmpl[] = "/tmp/imps-fr-XXXXXX";
		dir = ::mkdtemp(tmpl);
		pid = ::fork();
		if (pid == 0) {
			::setenv("IMPS_RADIUS_CONF", conf_dir().c_str(), 1);
			::setenv("IMPS_RADIUS_RUN", dir.c_str(), 1);
			::setenv("IMPS_RADIUS_ADDR", "127.0.0.1", 1);
			::setenv("IMPS_RADIUS_AUTH_PORT", std::to_string(auth_port).c_str(), 1);
			::setenv("IMPS_RADIUS_ACCT_PORT", std::to_string(acct_port).c_str(), 1);
			::setenv("IMPS_RADIUS_SECRET", "unit-secret", 1);
			::setenv("IMPS_RADIUS_CLIENT_NET", "127.0.0.0/8", 1);
			::setenv("IMPS_RADIUS_LEGACY_CLIENT", "127.0.0.255", 1);
			std::string d = conf_dir();
			::execl("/usr/sbin/freeradius", "freeradius", "-f", "-d", d.c_str(), "-D",
					"/usr/share/freeradius", static_cast<char *>(nullptr));
			::_exit(127);
		}
		// ready when it answers a Status-Server
		imps::aaa::ClientConfig c;
		c.servers.push_back({"127.0.0.1", static_cast<uint16_t>(auth_port), "unit-secret"});
		c.timeout_ms = 100;
		c.retries = 0;
		c.budget_ms = 100;
		c.dead_time_s = 0;
		for (int i = 0; i < 100; ++i) {
			imps::aaa::Client cl(c);
			imps::aaa::Packet p;
			p.code = imps::aaa::kStatusServer;
			if (cl.send(p).outcome == imps::aaa::Outcome::Accept) return;
			std::this_thread::sleep_for(std::chrono::milliseconds(50));
		}
		ADD_FAILURE() << "FreeRADIUS did not start";
	}
	void stop()
	{
		if (pid > 0) {
			::kill(pid, SIGTERM);
			::waitpid(pid, nullptr, 0);
			pid = -1;
		}
	}
	~FreeRadius()
	{
		stop();
		std::filesystem::remove_all(dir);
	}
	int auth_port = 0, acct_port = 0;
	pid_t pid = -1;
	std::string dir;
};


}  // namespace
