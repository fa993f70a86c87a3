// The notifier side of RFC 6665, written once for every event package (reg, presence,
// presence.winfo, lists): the subscription dialog, its store in Redis, the notifier (outbox,
// NOTIFY numbering, at most one NOTIFY outstanding per dialog, RFC 6665 4.2.2 failure
// policy), the timer work (expiry, deferred and coalesced NOTIFYs, final NOTIFYs) and the
// interface an event package implements. Knows nothing of Kamailio: NOTIFYs leave through a
// Delivery (SIP through tm in the shim, or in process to another module).
#pragma once

#include "imps/capi.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace imps {
class Redis;
}

namespace imps::subs {

// The dialog of a subscription as the notifier keeps it (RFC 3261 12.1.1, RFC 6665 4.2).
struct Dialog {
	std::string callid;
	std::string remote_tag;    // From tag of the SUBSCRIBE
	std::string local_tag;     // To tag of our 2xx
	std::string remote_uri;    // From URI
	std::string local_uri;     // To URI
	std::string remote_target; // Contact of the SUBSCRIBE (updated by refreshes)
	std::string route_set;     // Record-Route of the SUBSCRIBE, in order, comma separated
	std::string socket;        // local socket, "udp:127.0.0.1:5080"
	std::string local_contact; // our Contact
	std::string event_id;      // id parameter of the Event header ("": none)
	long long remote_cseq = 0; // CSeq of the last SUBSCRIBE of the dialog
};

struct Subscription {
	std::string sid;       // subscription_id() of the dialog
	std::string package;   // "reg", "presence", "presence.winfo", ...
	std::string resource;  // canonical "user@host" of what is watched
	std::string watcher;   // canonical identity of the watcher
	std::string watcher_uri;
	std::string display_name;
	std::string status = "active";  // active | pending | polite (package defined)
	std::string data;      // the package's own (xcap-diff: the selected XCAP URIs), set at creation
	Dialog dialog;
	long long expires_at = 0;
	long long created_at = 0;
	long long last_notify_ms = 0;
	unsigned long long version = 0;  // version of the NOTIFY this record goes with (RFC 3680...)
	unsigned long long cseq = 0;     // CSeq of that NOTIFY
	std::string ending;              // set: the subscription ended, for this reason
	bool owes_final = false;         // removed with a final NOTIFY still to send (numbered)
	// partial state: the changes (Store::turn's delta) that waited for this NOTIFY, one per
	// line; pending_overflow: more than fitted (send full state)
	std::string pending_deltas;
	bool pending_overflow = false;
};

// The dialog a shim extracted (imps_subscribe_dialog()).
Dialog dialog_of(const imps_dialog_t &d);

// What every package reads from a SUBSCRIBE, as the shim extracted it (imps_read_subscribe()).
struct SubscribeCommon {
	bool has_event = false;
	std::string event;
	bool has_accept = false;
	std::vector<std::string> accept;  // media ranges of every Accept header
	int expires = -1;
	bool in_dialog = false;
	Dialog dialog;
};
SubscribeCommon common_of(const imps_subscribe_common_t &c);

// Same on every node for the same dialog.
std::string subscription_id(const std::string &callid, const std::string &remote_tag,
		const std::string &local_tag);

// What a package puts into one NOTIFY.
struct Notification {
	std::string body;          // "" : no body
	std::string content_type;  // for the body
	std::vector<std::string> headers;  // extra header lines without CRLF ("Require: eventlist")
};

// One NOTIFY ready to leave: the subscription (numbers handed out), its Subscription-State
// value and the package's content.
struct Outgoing {
	Subscription sub;
	std::string state;
	Notification content;
};

// Where NOTIFYs go. deliver() returns false when the NOTIFY could not be handed over at all.
// The final response comes back later through Notifier::complete() (SIP), or at once (in
// process: the delivery calls complete() itself after deliver() returned).
class Delivery {
public:
	virtual ~Delivery() = default;
	virtual bool deliver(const Outgoing &n) = 0;
};

// The header lines of the NOTIFY of n (Event with id, Subscription-State, Contact,
// Content-Type, the package's own), each ending in CRLF.
std::string notify_headers(const Outgoing &n);
// n as the shim's tm sender takes it; headers keeps the header text alive.
imps_request_t notify_request(const Outgoing &n, std::string &headers);

// n handed to the shim's tm sender (imps_send_request()); true when it took it.
inline bool send_through(int (*send)(const imps_request_t *), const Outgoing &n)
{
	std::string headers;
	imps_request_t r = notify_request(n, headers);
	return send && send(&r) == 0;
}

// A Delivery through a package's host (anything with bool send_notify(const Outgoing &)).
template <class Host>
class HostDelivery final : public Delivery {
public:
	explicit HostDelivery(Host &h) : h_(h) {}
	bool deliver(const Outgoing &n) override { return h_.send_notify(n); }

private:
	Host &h_;
};

// An event package on the layer.
class Package {
public:
	virtual ~Package() = default;
	virtual std::string name() const = 0;
	// Media types a watcher must accept (Accept header), first one preferred.
	virtual std::vector<std::string> content_types() const = 0;
	// The resource's whole state for this watcher now (initial NOTIFY, after a refresh, a
	// NOTIFY that waited for the previous one's response).
	virtual Notification full_state(const Subscription &s, long long now) = 0;
	// The final NOTIFY's content (terminated with reason); default: full state.
	virtual Notification final_state(const Subscription &s, const std::string &reason, long long now)
	{
		return full_state(s, now);
	}
	// A subscription ended (expired, unsubscribed, rejected, dropped after a failed NOTIFY):
	// watcher info, accounting. Runs after the store removed it.
	virtual void ended(const Subscription &s, const std::string &reason, long long now_ms) {}
	// An in-dialog SUBSCRIBE refreshed s, whose NOTIFY is about to be built: the package may
	// decide again (the owner's rules may have changed): change s.status (stored), or return
	// a reason ("rejected") to end the subscription with this very NOTIFY. "": go on.
	virtual std::string refreshed(Subscription &s, long long now_ms) { return {}; }
};

// Where each package's resource keys live, so package scripts can take part in the same
// atomic step as the subscription records (cluster: one hash tag per resource).
struct Keys {
	explicit Keys(std::string prefix, int buckets = 16) : prefix_(std::move(prefix)), buckets_(buckets) {}
	// "<prefix>:{<resource>}:<kind>"
	std::string resource(const std::string &res, const char *kind) const;
	std::string subs(const std::string &res) const { return resource(res, "subs"); }
	std::string sexp(const std::string &res) const { return resource(res, "sexp"); }
	std::string due(const std::string &res) const { return resource(res, "due"); }
	// the leases of its outstanding NOTIFYs (hash "<sid>:<cseq>" -> "<until> <node> <epoch> <dirty>")
	std::string lease(const std::string &res) const { return resource(res, "lease"); }
	// KEYS[1..4] of every subscription script: subs, sexp, due, lease
	std::vector<std::string> script_keys(const std::string &res) const
	{
		return {subs(res), sexp(res), due(res), lease(res)};
	}
	// global indexes, split in buckets: "<prefix>:<kind>:{<n>}"
	int bucket_of(const std::string &s) const;
	std::string bucket(const char *kind, int n) const;
	int buckets() const { return buckets_; }
	const std::string &prefix() const { return prefix_; }

private:
	std::string prefix_;
	int buckets_;
};

enum class Outcome { Ok, NoSuchDialog, CseqOutOfOrder, TooMany };

// What a script answers about subscriptions: those that may be sent now (numbers handed
// out), those removed (final NOTIFY owed when `ending` is set), and when the resource's
// next deferred NOTIFY is due (-1: none was deferred).
struct Batch {
	std::vector<Subscription> send;
	std::vector<Subscription> removed;
	long long due_ms = -1;
	int errors = 0;  // items of a timer batch that failed (logged; the rest was handled)
};

// The Redis store of subscriptions. Every script gets every key it touches in KEYS; all keys
// of a resource share its hash tag; the expiry and due indexes are buckets of resources.
class Store {
public:
	// node: this node's name and epoch its start time, so that after a restart it no longer
	// waits for the responses to the NOTIFYs its previous run sent (no spaces in either).
	Store(Redis &r, Keys keys, long long busy_ms, std::string node = "-", std::string epoch = "0")
		: r_(r), k_(std::move(keys)), busy_ms_(busy_ms), node_(std::move(node)), epoch_(std::move(epoch))
	{
	}

	// New subscription (CSeq 1, version 0, its NOTIFY outstanding); a retransmitted initial
	// SUBSCRIBE keeps the counters going. TooMany: max_per_resource of the package exist.
	// created: a new record (not a retransmission).
	Outcome create(Subscription &s, int max_per_resource, long long now_ms, bool &send_now,
			bool *created = nullptr);
	// In-dialog SUBSCRIBE; remove: Expires 0 (the final NOTIFY, maybe after the outstanding
	// one). s is filled from the store.
	Outcome refresh(Subscription &s, bool remove, long long now_ms, bool &send_now);
	// Takes the turn for NOTIFYs of the given subscriptions (status changed when not empty;
	// interval_ms > 0: not sooner than that after the previous one).
	// delta: the change, for a package that sends partial state (no newline in it); "*": the
	// next NOTIFY carries full state (pending_overflow), whatever changes waited.
	Batch turn(const std::string &res, const std::vector<std::string> &sids,
			const std::string &status, long long interval_ms, long long now_ms,
			const std::string &delta = "");
	// The record's status, with no NOTIFY turn (the caller holds one). false: not found.
	bool set_status(const std::string &res, const std::string &sid, const std::string &status);
	// The record's package data (Subscription::data), with no NOTIFY turn. false: not found.
	bool set_data(const std::string &res, const std::string &sid, const std::string &data);
	// Removes a subscription now (terminated by the RPC, blocked): final NOTIFY with reason
	// when final is set. false: not found.
	bool take(const std::string &res, const std::string &sid, const std::string &reason,
			bool final, long long now_ms, Batch &out);
	// The final response of the NOTIFY with that CSeq (code 0: never sent). The policy
	// decides removal (RFC 6665 4.2.2); a deferred NOTIFY takes its turn.
	Batch complete(const std::string &res, const std::string &sid, unsigned long long cseq,
			int code, bool retry_after, bool remove_on_timeout, long long now_ms);
	// Many final responses in one round trip (a pipeline of the same script); one batch per
	// response, in order. A Redis failure throws (none of them is known to have run).
	struct Response {
		std::string res, sid;
		unsigned long long cseq;
		int code;
		bool retry_after;
	};
	std::vector<Batch> complete_many(const std::vector<Response> &responses, bool remove_on_timeout,
			long long now_ms);
	// Timer: expired subscriptions (removed, final NOTIFY owed) and deferred NOTIFYs now due.
	Batch expire(long long now, int limit);
	Batch due(long long now_ms, int limit);

	std::vector<Subscription> of(const std::string &res, const std::string &package);
	std::string resource_of(const std::string &sid);  // "" : unknown
	// Drops id-index entries whose record is gone, one page of one bucket per call (expire()
	// calls it); returns how many.
	int sweep_index(int count);
	long long count();
	// Subscriptions of every resource, page by page (cursor 0 starts, returns 0 at the end).
	std::vector<Subscription> scan(unsigned long long &cursor, int bucket, int count);

	void index_due(const std::string &res, long long due_ms);
	Redis &redis() { return r_; }
	const Keys &keys() const { return k_; }
	long long busy_ms() const { return busy_ms_; }
	// ARGV[2] of every subscription script: "<busy ms> <node> <epoch>"
	std::string busy_arg() const { return std::to_string(busy_ms_) + " " + node_ + " " + epoch_; }

	// Records of a script reply (the subscription part of every package script).
	Batch parse_batch(const void *reply) const;

private:
	void index_expiry(const std::string &res, long long expires_at);
	Batch resource_claim(const char *script, const char *kind, long long now_value, int limit);

	Redis &r_;
	Keys k_;
	long long busy_ms_;
	std::string node_, epoch_;
	unsigned long long sweep_cursor_ = 0;
	unsigned sweep_bucket_ = 0;
};

// Subscription-State value for an active or pending subscription.
std::string subscription_state(const Subscription &s, long long now);

struct NotifierConfig {
	int min_expires = 60;
	int max_expires = 3600;
	int default_expires = 3600;
	bool remove_on_timeout = true;  // what a NOTIFY answered 408 (or timed out) does
};

enum class Counter { Sent, Failed, Active, TimerErrors };

// The notifier's settings from a package's configuration (any struct with min_expires,
// max_expires, default_expires and remove_on_timeout).
template <class C>
NotifierConfig notifier_config_of(const C &c)
{
	NotifierConfig nc;
	nc.min_expires = c.min_expires;
	nc.max_expires = c.max_expires;
	nc.default_expires = c.default_expires;
	nc.remove_on_timeout = c.remove_on_timeout;
	return nc;
}

// Common SUBSCRIBE handling and the sending side; one per process and module.
class Notifier {
public:
	Notifier(NotifierConfig cfg, Store &store, Delivery &delivery,
			std::function<void(Counter, long long)> count)
		: cfg_(cfg), store_(store), delivery_(delivery), count_(std::move(count)) {}

	void add(Package &p) { packages_.push_back(&p); }
	Package *package(const std::string &name) const;

	struct Request {
		std::string event;         // Event header value ("" : none)
		bool has_event = false;
		bool has_accept = false;
		std::vector<std::string> accept;
		int expires = -1;
		bool in_dialog = false;
		Subscription sub;          // dialog, resource, watcher, status from the package
		long long now = 0, now_ms = 0;
	};
	struct Response {
		int code = 500;
		std::string reason;
		std::vector<std::string> headers;
		bool created = false;     // a new subscription (not a retransmission)
		bool removed = false;     // unsubscribed
		Subscription sub;
	};
	// Event/Accept/Expires checks for package; 489 (with Allow-Events of every package),
	// 406, 423 as RFC 6665 says.
	bool check(const Request &req, Package &pkg, Response &res) const;
	int expires_of(const Request &req) const;
	// Stores or refreshes the subscription (authorization done by the package before) and
	// queues its NOTIFY. max_per_resource: 403 beyond.
	Response subscribe(const Request &req, Package &pkg, int max_per_resource);

	// NOTIFYs: queued, then sent by flush() (after the SIP reply went out).
	void queue(const Subscription &s, Notification n, const std::string &state);
	void queue_full(const Subscription &s, long long now);
	void queue_final(const Subscription &s, long long now, long long now_ms);
	// A store batch: full state for every turn taken, final NOTIFYs and ended() for removed.
	void handle(const Batch &b, long long now, long long now_ms);
	void flush();
	void discard() { outbox_.clear(); }

	// The final response of a NOTIFY (timer process; SIP worker for in-process deliveries).
	// When the store cannot be reached it is kept and tried again (retry_completions) until
	// the dialog's busy time is over: a Redis restart does not leave the dialog waiting.
	void complete(const std::string &res, const std::string &sid, unsigned long long cseq,
			int code, bool retry_after, long long now_ms);
	void retry_completions(long long now_ms);
	// Final responses of many NOTIFYs (the module's timer process: one round trip for all).
	void complete_many(const std::vector<Store::Response> &responses, long long now_ms);
	// Timer work, queued (flush() sends): expired subscriptions get their final NOTIFY;
	// deferred NOTIFYs now due go (after the responses kept while Redis was away). A store
	// failure is counted and logged; an item that fails is counted and the rest goes on.
	void expire(long long now, long long now_ms);
	void send_due(long long now_ms);
	// Both, then flush().
	void tick(long long now, long long now_ms);

	Store &store() { return store_; }
	const NotifierConfig &config() const { return cfg_; }
	void count(Counter c, long long d) { if (count_) count_(c, d); }

private:
	NotifierConfig cfg_;
	Store &store_;
	Delivery &delivery_;
	std::function<void(Counter, long long)> count_;
	std::vector<Package *> packages_;
	std::vector<Outgoing> outbox_;
	struct Completion {
		std::string res, sid;
		unsigned long long cseq;
		int code;
		bool retry_after;
		long long first_ms;
	};
	std::vector<Completion> retry_;
	bool store_complete(const Completion &c, long long now_ms);
};

// Responses as the shim hands them over (imps_cq_drain()).
std::vector<Store::Response> responses_of(const imps_response_t *r, size_t n);

}  // namespace imps::subs
