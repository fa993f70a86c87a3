// imps_aaa's logic: digest authentication through RADIUS (draft-sterman attributes, which
// FreeRADIUS 3.2's rlm_digest verifies), per-service authorization with a Redis decision
// cache, and accounting. Knows nothing of Kamailio.
#pragma once

#include "client.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace imps {
class Redis;
struct RedisConfig;
}

namespace imps::aaa {

struct Digest {
	std::string username, realm, nonce, uri, method, qop, algorithm, cnonce, nc, response;
	std::string user;  // User-Name to send (defaults to username)
};

enum class AuthResult { Ok = 1, InvalidPassword = -2, UnknownUser = -3, Unavailable = -5 };

struct Decision {
	enum Kind { Accept = 1, Reject = -1, Unavailable = -2 } kind = Unavailable;
	bool from_cache = false;
	std::string klass;          // Class
	long long max_expires = -1; // IMPS-Max-Expires
	std::string reply_message;  // Reply-Message
	std::string error;          // why Unavailable
};

struct AaaConfig {
	ClientConfig auth;
	ClientConfig acct;
	std::string nas_identifier = "imps";
	std::string cache_prefix = "imps:aaa";
	int cache_positive_ttl = 300;
	int cache_negative_ttl = 60;
};

enum class AaaStat { Requests, Accepts, Rejects, Timeouts, Failovers, CacheHits, CacheMisses, Forged };

class Aaa {
public:
	using StatFn = std::function<void(AaaStat, long long)>;
	Aaa(AaaConfig cfg, Redis *redis, StatFn stat);

	AuthResult authenticate(const Digest &d, std::string *error);
	Decision authorize(const std::string &identity, const std::string &service, bool use_cache = true);
	// The cached decision, if the cache holds one (counts a hit or a miss); never asks the HAAA.
	std::optional<Decision> cached(const std::string &identity, const std::string &service);
	// False when every authentication server is held down: asking would only say Unavailable.
	bool auth_available() const { return auth_.any_available(); }
	// Status-Server to every held-down server whose hold-down is over (the prober process).
	int probe_due() { return auth_.probe_due() + acct_.probe_due(); }
	bool account(const std::string &user, const std::string &session_id, uint32_t status,
			std::string *error);
	// Removes cached decisions of one identity (or all when empty); returns how many.
	long long flush(const std::string &identity);

	const Client &auth_client() const { return auth_; }
	const Client &acct_client() const { return acct_; }

private:
	Result send(Client &c, Packet p);
	AaaConfig cfg_;
	Client auth_;
	Client acct_;
	Redis *redis_;
	StatFn stat_;
};

}  // namespace imps::aaa
