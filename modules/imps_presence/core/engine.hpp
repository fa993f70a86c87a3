// The presence application: PUBLISH (RFC 3903), composition of every publication of a
// presentity, SUBSCRIBE/NOTIFY for presence (RFC 3856/6665) and presence.winfo (RFC 3857),
// watcher authorization by rules. Knows nothing of Kamailio: the shim supplies a Host.
#pragma once

#include "store.hpp"

#include <functional>
#include <string>
#include <vector>

namespace imps::presence {

// Unknown: the rules could not be read; a new watcher then waits (pending), an existing one
// keeps the status it has.
enum class Action { Allow, Block, PoliteBlock, Confirm, Unknown };
const char *action_name(Action a);
bool parse_action(const std::string &s, Action &out);

struct Config {
	int min_expires = 60;
	int max_expires = 3600;
	int default_expires = 3600;
	int pub_min_expires = 60;
	int pub_max_expires = 3600;
	int pub_default_expires = 3600;
	size_t max_body_size = 65536;
	int max_publications = 16;       // live publications per presentity
	int max_watchers = 1000;         // subscriptions per presentity and package
	long long min_notify_interval_ms = 1000;
	std::string offline_document;    // template; "%ENTITY%" is the presentity URI; "": default
};

enum class Stat {
	Publications,  // PUBLISH accepted
	NotifiesSent,
	NotifiesFailed,
	Rejected412,
	RejectedBodies,
	TimerErrors,  // an item of a timer batch, or one NOTIFY, failed (logged; the rest went on)
};

class Host {
public:
	virtual ~Host() = default;
	// In-dialog NOTIFY through tm; content_type empty: no body.
	virtual bool send_notify(const Subscription &s, const std::string &body,
			const std::string &content_type, const std::string &subscription_state) = 0;
	// The owner's rule for a watcher (rules table, else the default action).
	virtual Action rule(const std::string &presentity, const std::string &watcher) = 0;
	virtual void stat(Stat which, long long delta) = 0;
	// Serializes changes of one presentity inside this node (NOTIFY order = CSeq order).
	virtual void lock(const std::string &presentity) = 0;
	virtual void unlock(const std::string &presentity) = 0;
	// Accounting of a subscription: Start when it is created, Stop when it ends.
	virtual void account(const Subscription &, bool) {}
};

struct Response {
	int code = 500;
	std::string reason;
	std::vector<std::string> headers;  // header lines without CRLF
};

struct PublishRequest {
	bool has_event = false;
	std::string event;
	bool has_body = false;
	std::string content_type;  // type/subtype, lower case, no parameters
	std::string body;
	std::string if_match;      // SIP-If-Match ("" : none)
	int expires = -1;
	std::string presentity;    // user@host of the Request-URI
	std::string identity;      // asserted identity, else From
	std::string source;        // "udp:1.2.3.4:5060"
	long long now = 0;
	long long now_ms = 0;
};

struct SubscribeRequest {
	bool has_event = false;
	std::string event;  // Event header value (package and parameters)
	bool has_accept = false;
	std::vector<std::string> accept;
	int expires = -1;
	std::string presentity;  // user@host (Request-URI for initial, To for in-dialog)
	std::string watcher;     // canonical identity of the watcher
	std::string display_name;
	bool in_dialog = false;
	Subscription dialog;
	long long now = 0;
	long long now_ms = 0;
};

struct PresentityView {
	std::string document;
	std::vector<Publication> publications;
};

class Engine {
public:
	Engine(Config cfg, Store &store, Host &host) : cfg_(std::move(cfg)), store_(store), host_(host) {}

	// Both answer the request; NOTIFYs they imply are queued: call flush() after the reply.
	Response publish(const PublishRequest &req);
	Response subscribe(const SubscribeRequest &req);
	void flush();

	// Timer work: expired publications and subscriptions, coalesced NOTIFYs now due.
	void tick(long long now, long long now_ms);

	// A NOTIFY got a final reply >= 300 (408: timed out).
	void notify_failed(const std::string &sid, int code, bool retry_after, long long now_ms);

	// Applies the current rules to the presentity's existing watchers (all of them when watcher
	// is empty, else those whose identity or domain is watcher). Returns how many changed.
	int reauthorize(const std::string &presentity, const std::string &watcher, long long now_ms);
	// Ends a subscription from the RPC (reason deactivated). False: unknown.
	bool terminate(const std::string &sid, long long now_ms);
	// Administrative publication (initial, or with etag: refresh, modify, remove); returns the
	// response (SIP-ETag header in it).
	Response admin_publish(const std::string &presentity, const std::string &body, int expires,
			const std::string &etag, long long now, long long now_ms);

	PresentityView show(const std::string &presentity, long long now);
	std::vector<Subscription> watchers(const std::string &presentity) { return store_.subscriptions(presentity, ""); }
	std::vector<Store::Summary> list(int limit) { return store_.list(limit); }
	Store &store() { return store_; }
	const Config &config() const { return cfg_; }

	// Document composed from the live publications (offline document when none).
	std::string compose_now(const std::string &presentity, const std::vector<Publication> &pubs) const;
	std::string offline(const std::string &presentity) const;

private:
	struct Pending {
		Subscription sub;
		std::string body;
		std::string content_type;
		std::string state;
	};
	struct WinfoChange {
		Subscription sub;    // the presence subscription that changed
		std::string status;  // pending | active | terminated
		std::string event;   // subscribe | approved | deactivated | rejected | timeout | giveup
	};

	void recompose(const std::string &pres, std::vector<Publication> live, unsigned long long gen,
			long long now_ms);
	void queue(const Subscription &s, std::string body, std::string ctype, std::string state);
	void queue_presence(const Subscription &s, const std::string &state, const std::string &doc);
	std::string current_document(const std::string &pres);
	std::string subscription_state(const Subscription &s, long long now) const;
	void winfo_changed(const std::string &pres, const std::vector<WinfoChange> &changes,
			long long now_ms);
	std::string winfo_full(const Subscription &winfo_sub, const std::string &pres, long long now);
	void with_lock(const std::string &pres, const std::function<void()> &f);
	template <class F>
	void each_item(const char *what, const std::string &key, F &&f);
	bool apply_rule(const Subscription &s, long long now_ms, std::string &doc);
	Response subscribe_checked(const SubscribeRequest &req);
	Response publish_locked(const PublishRequest &req, bool admin);
	void ended(const Subscription &s, const std::string &reason, const std::string &winfo_event,
			bool send_final, long long now_ms);

	Config cfg_;
	Store &store_;
	Host &host_;
	std::vector<Pending> outbox_;
};

// Dialog id of a subscription: the same on every node for the same dialog.
std::string subscription_id(const std::string &callid, const std::string &remote_tag,
		const std::string &local_tag);
// A new random entity tag.
std::string new_etag();

}  // namespace imps::presence
