#include "client.hpp"

#include "imps/log.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace imps::aaa {
namespace {

using Clock = std::chrono::steady_clock;

int64_t epoch_ms()
{
	return std::chrono::duration_cast<std::chrono::milliseconds>(
			std::chrono::system_clock::now().time_since_epoch())
			.count();
}

int ms_left(Clock::time_point deadline)
{
	auto d = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
	return d > 0 ? static_cast<int>(d) : 0;
}

}  // namespace

Client::Client(ClientConfig cfg) : cfg_(std::move(cfg))
{
	for (const auto &s : cfg_.servers) {
		ServerState st;
		st.cfg = s;
		st.next_id = static_cast<uint8_t>(random_authenticator()[0]);
		servers_.push_back(std::move(st));
	}
}

Client::~Client()
{
	for (auto &s : servers_)
		if (s.fd >= 0) ::close(s.fd);
}

bool Client::open(ServerState &s)
{
	if (s.fd >= 0) return true;
	sockaddr_storage ss{};
	socklen_t len = 0;
	auto *v4 = reinterpret_cast<sockaddr_in *>(&ss);
	auto *v6 = reinterpret_cast<sockaddr_in6 *>(&ss);
	if (inet_pton(AF_INET, s.cfg.host.c_str(), &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons(s.cfg.port);
		len = sizeof(*v4);
	} else if (inet_pton(AF_INET6, s.cfg.host.c_str(), &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(s.cfg.port);
		len = sizeof(*v6);
	} else {
		s.last_error = "not an IP address: " + s.cfg.host;
		return false;
	}
	int fd = ::socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		s.last_error = std::string("socket: ") + std::strerror(errno);
		return false;
	}
	// connected: the kernel delivers only datagrams from this server's address and port
	if (::connect(fd, reinterpret_cast<sockaddr *>(&ss), len) < 0) {
		s.last_error = std::string("connect: ") + std::strerror(errno);
		::close(fd);
		return false;
	}
	s.fd = fd;
	return true;
}

bool Client::exchange(ServerState &s, Packet req, Clock::time_point deadline, Packet *out,
		std::string *err)
{
	if (!open(s)) {
		*err = s.last_error;
		return false;
	}
	req.id = s.next_id++;
	std::string wire = sign_request(req, s.cfg.secret);
	const Authenticator ra = req.authenticator;
	// drain stale datagrams (late replies to earlier requests)
	char buf[kMaxPacket + 1];
	while (::recv(s.fd, buf, sizeof(buf), 0) > 0) ++s.dropped;

	for (int attempt = 0; attempt <= cfg_.retries; ++attempt) {
		int left = ms_left(deadline);
		if (left <= 0) break;
		auto sent_at = Clock::now();
		if (::send(s.fd, wire.data(), wire.size(), 0) < 0) {
			*err = s.last_error = std::string("send: ") + std::strerror(errno);
			// ICMP port unreachable shows here on a connected socket: count as a timeout
		}
		++s.requests;
		auto try_deadline = std::min(deadline, sent_at + std::chrono::milliseconds(cfg_.timeout_ms));
		while (true) {
			int wait = ms_left(try_deadline);
			if (wait <= 0) break;
			pollfd p{s.fd, POLLIN, 0};
			int rc = ::poll(&p, 1, wait);
			if (rc <= 0) {
				if (rc < 0 && errno == EINTR) continue;
				break;
			}
			ssize_t n = ::recv(s.fd, buf, sizeof(buf), 0);
			if (n <= 0) {
				if (n < 0 && errno == ECONNREFUSED) {
					*err = s.last_error = "connection refused (no server on the port)";
					break;
				}
				continue;
			}
			std::string why;
			auto reply = verify_response(std::string_view(buf, static_cast<size_t>(n)), req.id, ra,
					s.cfg.secret, &why);
			if (!reply) {
				++s.dropped;
				if (why != "identifier does not match the request") {
					++forged_;
					s.last_error = "dropped reply: " + why;
					IMPS_WARN("RADIUS server %s:%u: reply dropped: %s", s.cfg.host.c_str(),
							s.cfg.port, why.c_str());
				}
				continue;  // late, duplicate or forged: keep waiting for the real one
			}
			double rtt = std::chrono::duration<double, std::milli>(Clock::now() - sent_at).count();
			s.rtt_ms = s.responses == 0 ? rtt : 0.8 * s.rtt_ms + 0.2 * rtt;
			++s.responses;
			*out = std::move(*reply);
			return true;
		}
		++s.timeouts;
		if (s.last_error.empty() || s.last_error.rfind("dropped", 0) != 0) s.last_error = "timeout";
	}
	if (err->empty()) *err = "no reply from " + s.cfg.host + ":" + std::to_string(s.cfg.port);
	return false;
}

bool Client::probe(ServerState &s, Clock::time_point deadline)
{
	Packet p;
	p.code = kStatusServer;
	Packet reply;
	std::string err;
	auto d = std::min(deadline, Clock::now() + std::chrono::milliseconds(cfg_.timeout_ms));
	ClientConfig saved = cfg_;
	cfg_.retries = 0;
	bool ok = exchange(s, p, d, &reply, &err);
	cfg_ = saved;
	return ok;
}

bool Client::held_down(size_t i) const
{
	if (cfg_.shared_dead_until) {
		int64_t until = cfg_.shared_dead_until[i].load(std::memory_order_relaxed);
		return cfg_.background_probe ? until != 0 : until > epoch_ms();
	}
	return servers_[i].dead && Clock::now() < servers_[i].dead_until;
}

bool Client::any_available() const
{
	for (size_t i = 0; i < servers_.size(); ++i)
		if (!held_down(i)) return true;
	return false;
}

int Client::probe_due()
{
	int back = 0;
	for (size_t i = 0; i < servers_.size(); ++i) {
		ServerState &s = servers_[i];
		std::atomic<int64_t> *shared = cfg_.shared_dead_until ? &cfg_.shared_dead_until[i] : nullptr;
		int64_t until = 0;
		if (shared) {
			until = shared->load(std::memory_order_relaxed);
			if (until == 0 || epoch_ms() < until) continue;
		} else if (!s.dead || Clock::now() < s.dead_until) {
			continue;
		}
		if (probe(s, Clock::now() + std::chrono::milliseconds(cfg_.timeout_ms))) {
			s.dead = false;
			s.status_server_seen = true;
			// unless another process marked it dead again meanwhile
			if (shared) shared->compare_exchange_strong(until, 0, std::memory_order_relaxed);
			IMPS_INFO("RADIUS server %s:%u answered Status-Server: back", s.cfg.host.c_str(), s.cfg.port);
			++back;
		} else if (!s.status_server_seen) {
			// perhaps it does not implement Status-Server: the next real request tries it (and
			// holds it down again if it does not answer that either)
			s.dead = false;
			if (shared) shared->compare_exchange_strong(until, 0, std::memory_order_relaxed);
			IMPS_INFO("RADIUS server %s:%u did not answer Status-Server (it may not implement "
			          "RFC 5997): the next request tries it", s.cfg.host.c_str(), s.cfg.port);
		} else {
			s.dead = true;
			s.dead_until = Clock::now() + std::chrono::seconds(cfg_.dead_time_s);
			if (shared) shared->store(epoch_ms() + cfg_.dead_time_s * 1000LL, std::memory_order_relaxed);
		}
	}
	return back;
}

Result Client::send(Packet request)
{
	Result res;
	const auto deadline = Clock::now() + std::chrono::milliseconds(cfg_.budget_ms);
	bool tried_any = false;
	for (size_t i = 0; i < servers_.size(); ++i) {
		ServerState &s = servers_[i];
		if (ms_left(deadline) <= 0) break;
		std::atomic<int64_t> *shared = cfg_.shared_dead_until ? &cfg_.shared_dead_until[i] : nullptr;
		if (shared && cfg_.background_probe) {
			// the prober clears the slot once the server answered a Status-Server
			if (shared->load(std::memory_order_relaxed) != 0) {
				s.dead = true;
				continue;
			}
			s.dead = false;
		} else if (shared && !s.dead) {
			// another process found it dead: hold it down here too, for what is left
			int64_t until = shared->load(std::memory_order_relaxed);
			int64_t left = until - epoch_ms();
			if (left > 0) {
				s.dead = true;
				s.dead_until = Clock::now() + std::chrono::milliseconds(left);
				continue;
			}
		}
		if (s.dead) {
			if (Clock::now() < s.dead_until) continue;
			if (probe(s, deadline)) {  // Status-Server (RFC 5997) before real traffic
				s.status_server_seen = true;
			} else if (s.status_server_seen) {
				s.dead_until = Clock::now() + std::chrono::seconds(cfg_.dead_time_s);
				if (shared) shared->store(epoch_ms() + cfg_.dead_time_s * 1000LL, std::memory_order_relaxed);
				continue;
			}
			// back, or not known to implement Status-Server: this request tries it
			s.dead = false;
			if (shared) shared->store(0, std::memory_order_relaxed);
			IMPS_INFO("RADIUS server %s:%u is back", s.cfg.host.c_str(), s.cfg.port);
		}
		if (tried_any) ++s.failovers;
		tried_any = true;
		Packet reply;
		std::string err;
		if (exchange(s, request, deadline, &reply, &err)) {
			res.server = static_cast<int>(i);
			switch (reply.code) {
				case kAccessAccept: res.outcome = Outcome::Accept; break;
				case kAccessReject: res.outcome = Outcome::Reject; break;
				case kAccessChallenge: res.outcome = Outcome::Challenge; break;
				case kAccountingResponse: res.outcome = Outcome::AccountingOk; break;
				default:
					res.outcome = Outcome::Unavailable;
					res.error = "unexpected reply code " + std::to_string(reply.code);
					return res;
			}
			res.reply = std::move(reply);
			return res;
		}
		s.dead = true;
		s.dead_until = Clock::now() + std::chrono::seconds(cfg_.dead_time_s);
		if (shared) shared->store(epoch_ms() + cfg_.dead_time_s * 1000LL, std::memory_order_relaxed);
		IMPS_WARN("RADIUS server %s:%u marked dead for %d s: %s", s.cfg.host.c_str(), s.cfg.port,
				cfg_.dead_time_s, err.c_str());
		res.error = err;
	}
	if (res.error.empty()) res.error = tried_any ? "no RADIUS server answered" : "every RADIUS server is dead";
	res.outcome = Outcome::Unavailable;
	return res;
}

}  // namespace imps::aaa
