// A RADIUS client over UDP for one Kamailio process: servers tried in configured order, a
// per-try timeout and retry count inside a total time budget (so a SIP worker is never blocked
// for long), dead servers held down and probed back with Status-Server (RFC 5997), and replies
// matched by identifier and authenticator; forged, late and duplicate replies are dropped and
// counted.
#pragma once

#include "radius.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace imps::aaa {

struct ServerConfig {
	std::string host;  // IPv4 or IPv6 literal
	uint16_t port = 1812;
	std::string secret;
};

struct ClientConfig {
	std::vector<ServerConfig> servers;
	int timeout_ms = 300;   // per try
	int retries = 1;        // tries after the first, per server
	int budget_ms = 1000;   // all tries of one request, every server included
	int dead_time_s = 30;   // a server that timed out is skipped this long, then probed
	// Optional: one slot per server in memory every Kamailio process maps (shared memory),
	// holding until when (ms since the epoch, 0: alive) the server is held down. One process
	// finding a server dead spares every other process the wait. Lock-free 64-bit atomics
	// are address-free, so they work across processes.
	std::atomic<int64_t> *shared_dead_until = nullptr;
	// With shared_dead_until: send() never probes. A held-down server stays skipped (its slot
	// non-zero) until probe_due(), run by one dedicated process, has heard it answer a
	// Status-Server; so neither a SIP worker nor an async worker ever waits for a probe.
	bool background_probe = false;
};

struct ServerState {
	ServerConfig cfg;
	bool dead = false;
	std::chrono::steady_clock::time_point dead_until{};
	// it answered a Status-Server once: it implements RFC 5997, so a probe it leaves
	// unanswered means it is still down. Until then an unanswered probe proves nothing (RFC
	// 5997 section 3: a server without it discards the packet), and after its hold-down the
	// server is given the next real request instead.
	bool status_server_seen = false;
	uint64_t requests = 0, responses = 0, timeouts = 0, dropped = 0, failovers = 0;
	double rtt_ms = 0;  // smoothed round-trip time
	std::string last_error;
	int fd = -1;
	uint8_t next_id = 0;
};

enum class Outcome { Accept, Reject, Challenge, AccountingOk, Unavailable };

struct Result {
	Outcome outcome = Outcome::Unavailable;
	Packet reply;           // valid unless Unavailable
	int server = -1;        // index of the server that answered
	std::string error;      // why Unavailable
};

class Client {
public:
	explicit Client(ClientConfig cfg);
	~Client();
	Client(const Client &) = delete;
	Client &operator=(const Client &) = delete;

	// Sends one request (code and attributes set by the caller; identifier, authenticators and
	// Message-Authenticator are filled here) and waits for a verified reply.
	Result send(Packet request);

	// Probes (Status-Server, one try of timeout_ms) every server whose hold-down is over;
	// returns how many answered (and are back). The background prober's job.
	int probe_due();
	// True when send() would try at least one server now (not every server is held down).
	bool any_available() const;
	// Held down, as every process sees it (the shared slot when there is one).
	bool held_down(size_t i) const;

	const std::vector<ServerState> &servers() const { return servers_; }
	uint64_t forged() const { return forged_; }

private:
	bool open(ServerState &s);
	// One server, up to 1 + retries tries within the time left; true with *out on a reply.
	bool exchange(ServerState &s, Packet req, std::chrono::steady_clock::time_point deadline,
			Packet *out, std::string *err);
	bool probe(ServerState &s, std::chrono::steady_clock::time_point deadline);

	ClientConfig cfg_;
	std::vector<ServerState> servers_;
	uint64_t forged_ = 0;
};

}  // namespace imps::aaa
