// Storage of presence publications, composed documents and subscriptions (presence and
// presence.winfo), behind an interface so the engine can be tested against a real Redis.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace imps {
class Redis;
}

namespace imps::presence {

// One publication (RFC 3903): one device's or client's PIDF with its entity tag.
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
	bool watched = true;         // a presence watcher exists: compose and notify (without one
	                             // the stored document was dropped; it is composed on demand)
	unsigned long long gen = 0;  // generation of the presentity's publications after the change
	std::vector<Publication> live;  // every live publication, when changed
};

// Either side of a presence or presence.winfo subscription dialog (the notifier's view).
struct Subscription {
	std::string sid;
	std::string presentity;   // "user@host"
	std::string event;        // "presence" or "presence.winfo"
	std::string watcher;      // canonical identity of the watcher
	std::string watcher_uri;  // From URI
	std::string display_name;
	std::string status;       // active | pending | polite (polite-block: active, offline doc)
	std::string callid, remote_tag, local_tag, remote_uri, local_uri, remote_target;
	std::string route_set, socket, local_contact, event_id;
	long long expires_at = 0;
	long long created_at = 0;
	long long remote_cseq = 0;
	long long last_notify_ms = 0;
	unsigned long long version = 0;  // winfo version of the NOTIFY this record goes with
	unsigned long long cseq = 0;     // CSeq of that NOTIFY
};

enum class SubscribeOutcome { Ok, NoSuchDialog, CseqOutOfOrder };

struct DocumentChange {
	bool stored = false;  // false: an older generation, or the same bytes as before
	std::vector<Subscription> notify;  // watchers to notify now (others are queued)
};

class Store {
public:
	virtual ~Store() = default;

	// Applies one PUBLISH atomically: a stale or unknown If-Match gives outcome 0, and of two
	// concurrent changes on one ETag exactly one finds it.
	virtual PublishResult publish(const std::string &pres, PubOp op, const std::string &if_match,
			const std::string &new_etag, const std::string &body, const std::string &source,
			long long expires_at, long long now, int max_publications) = 0;

	// Every live publication of a presentity and their generation.
	virtual std::vector<Publication> publications(const std::string &pres, long long now,
			unsigned long long &gen) = 0;

	// Removes publications expired at now; returns the presentities that lost one.
	virtual std::vector<std::string> expire_publications(long long now, int limit) = 0;

	// Stores the composed document of generation gen unless a newer one is stored already;
	// when the bytes changed, hands out the NOTIFY CSeqs of every active watcher whose last
	// NOTIFY is at least interval_ms old and queues the others.
	virtual DocumentChange set_document(const std::string &pres, unsigned long long gen,
			const std::string &doc, const std::string &hash, long long now_ms,
			long long interval_ms) = 0;
	virtual std::string document(const std::string &pres) = 0;

	// Active watchers whose queued NOTIFY is due, taken off the queue, as stored: the caller
	// hands out the NOTIFY's CSeq with bump() under the presentity's lock.
	virtual std::vector<Subscription> claim_due(long long now_ms, int limit) = 0;

	// A new subscription (CSeq 1, version 0); a retransmitted initial SUBSCRIBE keeps counting.
	// False: the presentity has max_per_presentity subscriptions of that package already.
	virtual bool create(Subscription &s, int max_per_presentity = 1 << 30) = 0;
	virtual SubscribeOutcome refresh(Subscription &s, bool remove) = 0;
	virtual std::vector<Subscription> claim_expired(long long now, int limit) = 0;
	// Subscriptions of a presentity for one event package ("" : both).
	virtual std::vector<Subscription> subscriptions(const std::string &pres,
			const std::string &event) = 0;
	// Hands out the next version and CSeq of the given subscriptions (status changed when
	// not empty); missing ones are left out.
	virtual std::vector<Subscription> bump(const std::vector<std::string> &sids,
			const std::string &status, long long now_ms) = 0;
	// Removes and returns a subscription (with the final NOTIFY's CSeq handed out when
	// final_notify); false: not found.
	virtual bool take(const std::string &sid, bool final_notify, Subscription &out) = 0;

	// Presentities with state: name, live publications, presence subscriptions.
	struct Summary {
		std::string presentity;
		long long publications = 0;
		long long watchers = 0;
	};
	virtual std::vector<Summary> list(int limit) = 0;
	virtual long long count_subscriptions() = 0;
	virtual long long count_publications() = 0;
};

std::unique_ptr<Store> make_redis_store(Redis &redis, std::string prefix);

}  // namespace imps::presence
