// Storage of reg-event subscriptions and per-binding metadata, behind an interface so the
// engine can be tested against a real Redis and the store swapped.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace imps {
class Redis;
}

namespace imps::reginfo {

// A reg-event subscription: the notifier's side of the SUBSCRIBE dialog.
struct Subscription {
	std::string sid;         // hash of Call-ID, remote tag and local tag
	std::string aor;         // canonical "user@host"
	std::string aor_uri;     // the Request-URI as subscribed ("sip:alice@a.example")
	std::string watcher;     // canonical identity of the watcher ("user@host")
	std::string callid;
	std::string remote_tag;  // From tag of the SUBSCRIBE
	std::string local_tag;   // To tag of our 200 OK
	std::string remote_uri;  // From URI
	std::string local_uri;   // To URI
	std::string remote_target;  // Contact of the SUBSCRIBE
	std::string route_set;   // Record-Route of the SUBSCRIBE, in order, comma separated
	std::string socket;      // local socket, "udp:127.0.0.1:5070"
	std::string local_contact;
	std::string event_id;    // id parameter of the SUBSCRIBE's Event header (RFC 6665)
	long long expires_at = 0;
	long long remote_cseq = 0;
	// Counters: the values the next NOTIFY carries are handed out atomically by the store.
	unsigned long long version = 0;  // version of the NOTIFY this record goes with
	unsigned long long cseq = 0;     // CSeq of that NOTIFY
};

// Per-binding metadata that usrloc does not keep.
struct BindingMeta {
	long long first_registered = 0;
	long long expires_at = 0;  // last known expiry (to tell refreshed from shortened)
	long long first_cseq = 0;  // CSeq of the REGISTER that created the binding (temp-gruu)
	std::string display_name;
	std::string params;  // raw Contact header parameters of the last REGISTER
};

// Result of recording a binding change: the binding's metadata before the change, the
// metadata of every binding of the AoR (only when a watcher exists), and every subscription
// of the AoR with the version and CSeq its NOTIFY must carry.
struct BindingChangeResult {
	std::optional<BindingMeta> previous;
	std::map<std::string, BindingMeta> all;  // contact id -> meta, after the change
	std::vector<Subscription> subs;
};

enum class SubscribeOutcome { Ok, NoSuchDialog, CseqOutOfOrder };

class Store {
public:
	virtual ~Store() = default;

	// Records a change of one binding (upsert or delete) and prepares the NOTIFYs for it
	// atomically. meta.display_name/params are kept from before when keep_meta is true. The
	// AoR's metadata expires after ttl seconds (0: never, a permanent binding exists).
	virtual BindingChangeResult binding_changed(const std::string &aor, const std::string &cid,
			bool removed, const BindingMeta &meta, bool keep_meta, long long ttl) = 0;

	// Metadata of all bindings of an AoR (for documents built outside a usrloc change).
	virtual std::map<std::string, BindingMeta> bindings(const std::string &aor) = 0;

	// New subscription (or fetch when expires_at == 0: nothing stored): fills version/cseq.
	virtual void create(Subscription &s, bool store) = 0;

	// Refresh (or unsubscribe when remove is true) of an existing dialog; on Ok, s is filled
	// from the store with the version/cseq for the NOTIFY that follows.
	virtual SubscribeOutcome refresh(Subscription &s, bool remove) = 0;

	// Claims the subscriptions expired at `now` (each claimed by exactly one caller across
	// processes and nodes) and removes them; returned with the final NOTIFY's version/cseq.
	virtual std::vector<Subscription> claim_expired(long long now, int limit) = 0;

	// Subscriptions of one AoR, or all when aor is empty (bounded by limit).
	virtual std::vector<Subscription> list(const std::string &aor, int limit) = 0;

	// Removes one subscription (NOTIFY answered 481 or timed out); true if it existed.
	virtual bool remove(const std::string &sid, const std::string &aor) = 0;

	virtual long long count() = 0;
};

std::unique_ptr<Store> make_redis_store(Redis &redis, std::string prefix);

}  // namespace imps::reginfo
