// What the presence packages keep besides their subscriptions (those are the shared layer's,
// imps/subs.hpp): the publications of each presentity (RFC 3903), under the presentity's hash
// tag, so that a PUBLISH and the NOTIFY turns it implies are one atomic step.
//   <p>:{<pres>}:pub    hash  etag -> "expires\tpublished\tsource\tbody"
//   <p>:{<pres>}:pexp   zset  etag -> expiry (unix seconds)
//   <p>:{<pres>}:meta   hash  gen: generation of the set of publications
//   <p>:pexp:{<n>}      zset  presentity -> its next publication expiry (bucket n of 16)
//   <p>:pres:{<n>}      set   presentities with state (RPC list)
//   <p>:npub:{<n>}      int   live publications of the bucket's presentities
// The composed document is not stored: it is composed from the publications when needed
// and cached per process by generation.
#pragma once

#include "imps/subs.hpp"

#include <string>
#include <vector>

namespace imps::presence {

struct Publication {
	std::string etag;
	std::string body;
	std::string source;  // "udp:127.0.0.1:5070" of the PUBLISH, or "rpc"
	long long expires_at = 0;
	long long published_at = 0;  // last PUBLISH with a body
};

enum class PubOp { Initial, Refresh, Modify, Remove };

struct PublishResult {
	int outcome = 0;             // 1 done, 0 the If-Match ETag is unknown or expired, -1 too many
	bool changed = false;        // the set of bodies changed
	unsigned long long gen = 0;  // generation of the presentity's publications after the change
	std::vector<Publication> live;  // every live publication, when changed
	subs::Batch batch;           // watchers whose NOTIFY goes now
};

struct ExpiredPublications {
	std::string presentity;
	unsigned long long gen = 0;
	std::vector<Publication> live;
	subs::Batch batch;
};

struct Summary {
	std::string presentity;
	long long publications = 0;
	long long watchers = 0;
};

class PublicationStore {
public:
	explicit PublicationStore(subs::Store &subs) : subs_(subs) {}

	// One PUBLISH: the store change and the NOTIFY turns of the active watchers (not sooner
	// than interval_ms after each one's previous NOTIFY) in one script. replay: the same
	// PUBLISH sent again after a lost reply; a publication stored under new_etag already means
	// the first run was applied, and nothing is applied twice.
	PublishResult publish(const std::string &pres, PubOp op, const std::string &if_match,
			const std::string &new_etag, const std::string &body, const std::string &source,
			long long expires_at, long long now, int max_publications, long long interval_ms,
			long long now_ms, bool replay = false);
	std::vector<Publication> publications(const std::string &pres, long long now, unsigned long long &gen);
	// Timer: the publications expired at now, per presentity (bounded by limit presentities).
	std::vector<ExpiredPublications> expire(long long now, long long now_ms, long long interval_ms,
			int limit, int &errors);
	// A presentity has state (listing).
	void remember(const std::string &pres);
	// The registry's presentities, one page of one bucket (cursor 0 starts and ends).
	std::vector<std::string> scan(int bucket, unsigned long long &cursor, int count);
	std::vector<Summary> list(int limit, long long now);
	long long count_publications();

private:
	subs::Store &subs_;
};

std::vector<Publication> parse_publications(const void *reply, size_t from);

}  // namespace imps::presence
