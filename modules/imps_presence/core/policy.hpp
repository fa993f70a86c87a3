// Users' own presence rules (pres-rules documents, RFC 5025, and OMA's variant) as
// imps_presence reads them from the List and Policy Server (imps_xcap): in process when
// imps_xcap runs in the same Kamailio (bind_imps_xcap: no HTTP, a shared change counter keeps
// every process's copy current), else over HTTP with libcurl (conditional GET with the
// ETag; the copy is shared by every process and node through the state store (Shared), used
// for ttl_ms after it was checked, and kept in use while the server cannot be reached).
#pragma once

#include "pres_rules.hpp"

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace imps::presence {

struct PolicyConfig {
	enum class Mode { Off, Local, Http };
	Mode mode = Mode::Off;
	std::string root;       // Http: the XCAP root URI
	std::string interface;  // Http: the source address (the server trusts it as a reader)
	long timeout_ms = 2000;
	long long ttl_ms = 30000;  // Http: how long a copy is used before it is checked again
	// the documents of a presentity, "%XUI%" the presentity's XUI ("sip:alice@a.example")
	std::vector<std::string> documents = {"pres-rules/users/%XUI%/index",
			"org.openmobilealliance.pres-rules/users/%XUI%/pres-rules"};
	size_t max_size = 1 << 20;
};

struct UserRules {
	enum class State { None, Found, Error };
	State state = State::None;  // Found: at least one document
	PresRules rules;            // of every document found, in the order of `documents`
	std::string etags;          // their ETags (what a change looks like)
};

class Policy {
public:
	// Local mode: get(path, body, etag) answers an HTTP status (200, 404, -1 failure) and
	// generation() the change counter.
	using Get = std::function<int(const std::string &path, std::string &body, std::string &etag)>;
	using Generation = std::function<unsigned long()>;
	// Http mode: the copies every process shares (the state store): load gives the blob
	// saved for a presentity (false: none, or the store cannot be read), save stores one.
	struct Shared {
		std::function<bool(const std::string &presentity, std::string &blob)> load;
		std::function<void(const std::string &presentity, const std::string &blob)> save;
	};
	Policy(PolicyConfig cfg, Get local_get = {}, Generation generation = {}, Shared shared = {});
	~Policy();
	Policy(const Policy &) = delete;
	Policy &operator=(const Policy &) = delete;

	bool enabled() const { return cfg_.mode != PolicyConfig::Mode::Off; }
	const PolicyConfig &config() const { return cfg_; }
	// The presentity's ("alice@a.example") rules now.
	const UserRules &of(const std::string &presentity, long long now_ms);
	// The ETags of the copy this process holds ("" when it holds none).
	std::string held(const std::string &presentity) const
	{
		auto it = cache_.find(presentity);
		return it == cache_.end() ? std::string() : "+" + it->second.rules.etags;
	}
	// A document of the presentity changed: read it again at the next of().
	void forget(const std::string &presentity) { cache_.erase(presentity); }
	// The paths of a presentity's documents.
	std::vector<std::string> paths(const std::string &presentity) const;
	// Is path (below the root) one of the rule documents, and of whom ("" none)?
	std::string owner_of_rules(const std::string &path) const;
	long long http_requests() const { return http_requests_; }

private:
	struct Doc {
		int status = 0;  // 200 found, 404 none, -1 never read
		std::string body, etag;
	};
	struct Entry {
		UserRules rules;
		std::vector<Doc> docs;
		unsigned long generation = 0;
		long long checked_ms = 0;
	};
	bool fresh(const Entry &e, long long now_ms) const;
	static std::string encode(const Entry &e);
	static bool decode(const std::string &blob, size_t ndocs, Entry &e);
	int http_get(const std::string &path, Doc &doc);
	void rebuild(const std::string &presentity, Entry &e);

	PolicyConfig cfg_;
	Get get_;
	Generation generation_;
	Shared shared_;
	std::map<std::string, Entry> cache_;
	void *curl_ = nullptr;
	long long http_requests_ = 0;
};

// "alice@a.example" -> "sip:alice@a.example"; the XUI of a path's "users/<xui>/" back.
std::string xui_of(const std::string &presentity);
std::string presentity_of_xui(const std::string &xui);

}  // namespace imps::presence
