// The RADIUS client against a real FreeRADIUS (the project's cfg/freeradius, started by the
// test on free ports) and against a small responder in the test that answers right, forges,
// answers late, or stays silent.
#include "imps_aaa/core/client.hpp"
#include "freeradius.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <thread>

using namespace imps::aaa;
using Clock = std::chrono::steady_clock;

namespace {

// A UDP responder on 127.0.0.1 answering with a function of the request.
class Responder {
public:
	using Fn = std::function<std::vector<std::string>(const std::string &req)>;
	explicit Responder(Fn fn) : fn_(std::move(fn))
	{
		fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
		sockaddr_in a{};
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		::bind(fd_, reinterpret_cast<sockaddr *>(&a), sizeof(a));
		socklen_t l = sizeof(a);
		::getsockname(fd_, reinterpret_cast<sockaddr *>(&a), &l);
		port = ntohs(a.sin_port);
		timeval tv{0, 50000};
		::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		th_ = std::thread([this] { loop(); });
	}
	~Responder()
	{
		stop_ = true;
		th_.join();
		::close(fd_);
	}
	int port = 0;
	std::atomic<int> received{0};

private:
	void loop()
	{
		char buf[4096];
		while (!stop_) {
			sockaddr_in from{};
			socklen_t fl = sizeof(from);
			ssize_t n = ::recvfrom(fd_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr *>(&from), &fl);
			if (n <= 0) continue;
			++received;
			for (const auto &out : fn_(std::string(buf, static_cast<size_t>(n))))
				::sendto(fd_, out.data(), out.size(), 0, reinterpret_cast<sockaddr *>(&from), fl);
		}
	}
	Fn fn_;
	int fd_ = -1;
	std::thread th_;
	std::atomic<bool> stop_{false};
};

// What a right server answers.
std::string accept_for(const std::string &req, const std::string &secret, bool ma = true,
		uint8_t code = kAccessAccept)
{
	auto r = decode(req);
	Packet resp;
	resp.code = code;
	resp.id = r->id;
	return sign_response(resp, r->authenticator, secret, ma);
}

Packet authorize(const std::string &user, const std::string &service)
{
	Packet p;
	p.code = kAccessRequest;
	p.add(kUserName, user);
	p.add_int(kServiceType, 17);  // Authorize-Only
	p.add_vsa(kImpsVendorId, kImpsService, service);
	return p;
}

ClientConfig one(int port, const std::string &secret = "s")
{
	ClientConfig c;
	c.servers.push_back({"127.0.0.1", static_cast<uint16_t>(port), secret});
	c.timeout_ms = 150;
	c.retries = 1;
	c.budget_ms = 1000;
	c.dead_time_s = 30;
	return c;
}

}  // namespace

class RealFreeRadius : public ::testing::Test {
protected:
	static void SetUpTestSuite() { fr_ = new FreeRadius(); }
	static void TearDownTestSuite()
	{
		delete fr_;
		fr_ = nullptr;
	}
	ClientConfig cfg() const { return one(fr_->auth_port, "unit-secret"); }
	static FreeRadius *fr_;
};
FreeRadius *RealFreeRadius::fr_ = nullptr;

TEST_F(RealFreeRadius, PapPasswordAcceptedAndRejected)
{
	Client c(cfg());
	for (auto [pw, outcome] : {std::pair<const char *, Outcome>{"alice-secret", Outcome::Accept},
				 {"wrong", Outcome::Reject}, {"", Outcome::Reject}}) {
		Packet p;
		p.code = kAccessRequest;
		p.add(kUserName, "alice");
		p.add(kUserPassword, pw);  // hidden by the client against its own authenticator
		auto r = c.send(p);
		EXPECT_EQ(r.outcome, outcome) << pw << ": " << r.error;
	}
}

TEST_F(RealFreeRadius, AuthorizationReplyAttributes)
{
	Client c(cfg());
	auto r = c.send(authorize("alice", "publish"));
	ASSERT_EQ(r.outcome, Outcome::Accept) << r.error;
	EXPECT_EQ(int_value(*r.reply.find_vsa(kImpsVendorId, kImpsMaxExpires)), 3600u);
	EXPECT_EQ(r.reply.find(kClass)->value, "gold");
}

TEST_F(RealFreeRadius, ServiceAuthorization)
{
	Client c(cfg());
	auto carol_pub = c.send(authorize("carol", "publish"));
	ASSERT_EQ(carol_pub.outcome, Outcome::Reject) << carol_pub.error;
	EXPECT_EQ(carol_pub.reply.find(kReplyMessage)->value, "carol is not entitled to publish");
	EXPECT_EQ(c.send(authorize("carol", "subscribe")).outcome, Outcome::Accept);
	EXPECT_EQ(c.send(authorize("bob", "register")).outcome, Outcome::Accept);
	auto unknown = c.send(authorize("mallory", "register"));
	EXPECT_EQ(unknown.outcome, Outcome::Reject);
	EXPECT_EQ(unknown.reply.find(kReplyMessage)->value, "unknown subscriber");
	EXPECT_EQ(c.forged(), 0u);
	EXPECT_GT(c.servers()[0].rtt_ms, 0.0);
}

TEST_F(RealFreeRadius, AccountingStartAndStop)
{
	ClientConfig a = one(fr_->acct_port, "unit-secret");
	Client c(a);
	for (uint32_t status : {1u, 2u}) {
		Packet p;
		p.code = kAccountingRequest;
		p.add_int(kAcctStatusType, status);
		p.add(kAcctSessionId, "unit-session-1");
		p.add(kUserName, "alice");
		auto r = c.send(p);
		EXPECT_EQ(r.outcome, Outcome::AccountingOk) << r.error;
	}
}

TEST(RadiusClient, ForgedRepliesAreDroppedAndCounted)
{
	// every request gets three replies: no Message-Authenticator, a wrong one, then the right one
	Responder r([](const std::string &req) {
		auto p = decode(req);
		Packet bad;
		bad.code = kAccessAccept;
		bad.id = p->id;
		std::string no_ma = sign_response(bad, p->authenticator, "s", false);
		std::string wrong_ma = sign_response(bad, p->authenticator, "not-the-secret", true);
		return std::vector<std::string>{no_ma, wrong_ma, accept_for(req, "s", true, kAccessReject)};
	});
	Client c(one(r.port));
	auto res = c.send(authorize("alice", "publish"));
	EXPECT_EQ(res.outcome, Outcome::Reject);  // only the genuine reply counts
	EXPECT_EQ(c.forged(), 2u);
	EXPECT_EQ(c.servers()[0].dropped, 2u);
}

TEST(RadiusClient, OnlyForgedRepliesMeanUnavailableWithinBudget)
{
	Responder r([](const std::string &req) {
		auto p = decode(req);
		Packet bad;
		bad.code = kAccessAccept;
		bad.id = p->id;
		return std::vector<std::string>{sign_response(bad, p->authenticator, "s", false)};
	});
	Client c(one(r.port));
	auto t0 = Clock::now();
	auto res = c.send(authorize("alice", "publish"));
	auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
	EXPECT_EQ(res.outcome, Outcome::Unavailable);
	EXPECT_EQ(c.forged(), 2u);  // first try and one retry
	EXPECT_LE(ms, 1000);
}

TEST(RadiusClient, LateReplyToAnEarlierRequestIsIgnored)
{
	std::atomic<int> n{0};
	std::string first;
	Responder r([&](const std::string &req) -> std::vector<std::string> {
		if (n++ == 0) {
			first = req;
			return {};  // the first request times out
		}
		// the late answer to the first request arrives, then the right one
		return {accept_for(first, "s"), accept_for(req, "s", true, kAccessReject)};
	});
	ClientConfig cfg = one(r.port);
	cfg.retries = 0;
	cfg.dead_time_s = 0;
	Client c(cfg);
	EXPECT_EQ(c.send(authorize("a", "register")).outcome, Outcome::Unavailable);
	auto res = c.send(authorize("a", "register"));
	EXPECT_EQ(res.outcome, Outcome::Reject);
}

TEST(RadiusClient, DeadServerFailoverAndBoundedTime)
{
	Responder silent([](const std::string &) { return std::vector<std::string>{}; });
	Responder good([](const std::string &req) { return std::vector<std::string>{accept_for(req, "s")}; });
	ClientConfig cfg = one(silent.port);
	cfg.servers.push_back({"127.0.0.1", static_cast<uint16_t>(good.port), "s"});
	Client c(cfg);
	auto t0 = Clock::now();
	auto res = c.send(authorize("alice", "publish"));
	auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
	ASSERT_EQ(res.outcome, Outcome::Accept) << res.error;
	EXPECT_EQ(res.server, 1);
	EXPECT_GE(ms, 250);  // two tries of 150 ms at the silent one
	EXPECT_LE(ms, 1000);
	EXPECT_TRUE(c.servers()[0].dead);
	EXPECT_EQ(c.servers()[0].timeouts, 2u);
	EXPECT_EQ(c.servers()[1].failovers, 1u);
	// the dead server is skipped now: the next request is answered at once
	t0 = Clock::now();
	EXPECT_EQ(c.send(authorize("alice", "publish")).outcome, Outcome::Accept);
	ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
	EXPECT_LT(ms, 100);
	EXPECT_EQ(silent.received.load(), 2);
}

TEST(RadiusClient, EveryServerDownAnswersUnavailableWithinTheBudget)
{
	int p1 = free_udp_port(), p2 = free_udp_port();  // nothing listens
	ClientConfig cfg = one(p1);
	cfg.servers.push_back({"127.0.0.1", static_cast<uint16_t>(p2), "s"});
	Client c(cfg);
	auto t0 = Clock::now();
	auto res = c.send(authorize("alice", "publish"));
	auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
	EXPECT_EQ(res.outcome, Outcome::Unavailable);
	EXPECT_LE(ms, 1000);
	// both held down: the next request costs nothing
	t0 = Clock::now();
	res = c.send(authorize("alice", "publish"));
	EXPECT_EQ(res.outcome, Outcome::Unavailable);
	EXPECT_EQ(res.error, "every RADIUS server is dead");
	EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count(), 20);
}

TEST(RadiusClient, DeadServerIsProbedBackWithStatusServer)
{
	std::atomic<bool> up{false};
	std::atomic<int> status_seen{0};
	Responder r([&](const std::string &req) -> std::vector<std::string> {
		if (!up) return {};
		auto p = decode(req);
		if (p->code == kStatusServer) ++status_seen;
		return {accept_for(req, "s")};
	});
	ClientConfig cfg = one(r.port);
	cfg.dead_time_s = 1;
	cfg.retries = 0;
	Client c(cfg);
	EXPECT_EQ(c.send(authorize("a", "register")).outcome, Outcome::Unavailable);
	EXPECT_TRUE(c.servers()[0].dead);
	up = true;
	EXPECT_EQ(c.send(authorize("a", "register")).outcome, Outcome::Unavailable);  // still held down
	std::this_thread::sleep_for(std::chrono::milliseconds(1100));
	EXPECT_EQ(c.send(authorize("a", "register")).outcome, Outcome::Accept);
	EXPECT_EQ(status_seen.load(), 1);
	EXPECT_FALSE(c.servers()[0].dead);
}

TEST(RadiusClient, HoldDownIsSharedBetweenProcesses)
{
	// two clients (two Kamailio processes) sharing the servers' state: once one has found the
	// server dead, the other skips it at once instead of waiting for its own timeouts
	Responder silent([](const std::string &) { return std::vector<std::string>{}; });
	std::atomic<int64_t> shared[1];
	shared[0] = 0;
	ClientConfig cfg = one(silent.port);
	cfg.shared_dead_until = shared;
	Client a(cfg), b(cfg);
	EXPECT_EQ(a.send(authorize("alice", "publish")).outcome, Outcome::Unavailable);
	EXPECT_GT(shared[0].load(), 0);
	auto t0 = Clock::now();
	auto res = b.send(authorize("alice", "publish"));
	EXPECT_EQ(res.outcome, Outcome::Unavailable);
	EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count(), 20);
	EXPECT_EQ(silent.received.load(), 2);  // only a's two tries ever reached the server
	EXPECT_TRUE(b.servers()[0].dead);
}

TEST(RadiusClient, BackgroundProbeKeepsProbingOutOfRequests)
{
	// with background_probe, send() never sends Status-Server: a held-down server stays
	// skipped (answered at once) until probe_due(), the prober process's job, hears it again
	std::atomic<bool> up{false};
	std::atomic<int> status_seen{0};
	Responder r([&](const std::string &req) -> std::vector<std::string> {
		if (!up) return {};
		auto p = decode(req);
		if (p->code == kStatusServer) ++status_seen;
		return {accept_for(req, "s")};
	});
	std::atomic<int64_t> shared[1];
	shared[0] = 0;
	ClientConfig cfg = one(r.port);
	cfg.dead_time_s = 1;
	cfg.retries = 0;
	cfg.shared_dead_until = shared;
	cfg.background_probe = true;
	Client worker(cfg), prober(cfg);
	EXPECT_TRUE(worker.any_available());
	EXPECT_EQ(worker.send(authorize("a", "register")).outcome, Outcome::Unavailable);
	EXPECT_FALSE(worker.any_available());
	up = true;
	std::this_thread::sleep_for(std::chrono::milliseconds(1100));
	auto t0 = Clock::now();
	EXPECT_EQ(worker.send(authorize("a", "register")).outcome, Outcome::Unavailable);  // no probe
	EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count(), 20);
	EXPECT_EQ(status_seen.load(), 0);
	EXPECT_EQ(prober.probe_due(), 1);
	EXPECT_EQ(status_seen.load(), 1);
	EXPECT_EQ(shared[0].load(), 0);
	EXPECT_TRUE(worker.any_available());
	EXPECT_EQ(worker.send(authorize("a", "register")).outcome, Outcome::Accept);
}

TEST(RadiusClient, ServerWithoutStatusServerIsTriedAgainAfterTheHoldDown)
{
	// a HAAA that never answers Status-Server (RFC 5997 is optional; it discards them) used
	// to stay held down for good once it had been dead: after dead_time the next real request
	// now tries it
	std::atomic<bool> up{false};
	std::atomic<int> status_seen{0};
	Responder r([&](const std::string &req) -> std::vector<std::string> {
		auto p = decode(req);
		if (p->code == kStatusServer) {
			++status_seen;
			return {};
		}
		if (!up) return {};
		return {accept_for(req, "s")};
	});
	for (bool background : {true, false}) {
		up = false;
		std::atomic<int64_t> shared[1];
		shared[0] = 0;
		ClientConfig cfg = one(r.port);
		cfg.dead_time_s = 1;
		cfg.retries = 0;
		cfg.shared_dead_until = shared;
		cfg.background_probe = background;
		Client worker(cfg), prober(cfg);
		EXPECT_EQ(worker.send(authorize("a", "register")).outcome, Outcome::Unavailable);
		EXPECT_FALSE(worker.any_available());
		up = true;
		std::this_thread::sleep_for(std::chrono::milliseconds(1100));
		int probes = status_seen.load();
		if (background) {
			EXPECT_EQ(prober.probe_due(), 0);  // no answer to the probe...
			EXPECT_EQ(status_seen.load(), probes + 1);
			EXPECT_EQ(shared[0].load(), 0);  // ...but no longer held down
		}
		EXPECT_EQ(worker.send(authorize("a", "register")).outcome, Outcome::Accept) << background;
		EXPECT_FALSE(worker.servers()[0].dead);
	}
}

TEST(RadiusClient, ReplyWithAVendorFormatOfItsOwnIsAccepted)
{
	// a right Access-Accept carrying a Vendor-Specific attribute that is not in RFC 2865's
	// sub-attribute format (here 9 = Cisco with a lone octet): accepted, not counted forged
	Responder r([&](const std::string &req) -> std::vector<std::string> {
		auto p = decode(req);
		Packet resp;
		resp.code = kAccessAccept;
		resp.id = p->id;
		Attribute odd;
		odd.type = kVendorSpecific;
		odd.vendor = 9;
		odd.value = std::string(1, '\x01');
		odd.opaque = true;
		resp.attrs.push_back(odd);
		return {sign_response(resp, p->authenticator, "s", true)};
	});
	Client c(one(r.port));
	auto res = c.send(authorize("a", "register"));
	EXPECT_EQ(res.outcome, Outcome::Accept) << res.error;
	EXPECT_EQ(c.servers()[0].dropped, 0u);
}
