// The presence application: PUBLISH (RFC 3903), composition of every publication of a
// presentity, and the event packages presence (RFC 3856) and presence.winfo (RFC 3857) on the
// shared subscription layer (imps/subs.hpp), watcher authorization by rules. Knows nothing of
// Kamailio: the shim supplies a Host.
#pragma once

#include "policy.hpp"
#include "pres_rules.hpp"
#include "rules.hpp"
#include "store.hpp"

#include "imps/subs.hpp"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace imps::presence {

using subs::Subscription;

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
	bool remove_on_timeout = true;   // a NOTIFY answered 408 (or timed out) ends the subscription
	long long notify_busy_ms = 35000;  // longest wait for a NOTIFY's final response
	std::string node = "-";          // this node's name and start time (subs::Store)
	std::string epoch = "0";
	int reauthorize_batch = 200;     // presentities per step of a domain's re-authorization
	PolicyConfig policy;             // users' pres-rules from the List and Policy Server
	// xcap-diff (RFC 5875): offered when the List and Policy Server runs in this Kamailio
	bool xcap_diff = false;
	std::string xcap_root;           // the root its NOTIFYs name
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
	// In-dialog NOTIFY through tm; its final response comes back through Engine::complete().
	virtual bool send_notify(const subs::Outgoing &n) = 0;
	// The owner's rule for a watcher: by default the rows of the presentity, else of its
	// domain (rule_rows), matched by match_rules(), else default_action; Unknown when the rows
	// cannot be read.
	virtual Action rule(const std::string &presentity, const std::string &watcher);
	// The operator's row that applies (presentity's, else domain's), nullopt when none does,
	// Unknown when the rows cannot be read.
	virtual std::optional<Action> operator_rule(const std::string &presentity, const std::string &watcher);
	// The rule rows stored for a presentity or a domain; false: they cannot be read.
	virtual bool rule_rows(const std::string &key, std::vector<RuleRow> &out) { return false; }
	Action default_action = Action::Confirm;
	// The List and Policy Server in this process (bind_imps_xcap): a GET as a trusted reader
	// (path below the root, node selector allowed): its status (-1 failure), body and ETag;
	// the documents of an owner and usage (path, ETag), false on failure; the shared count of
	// stored changes.
	virtual int xcap_get(const std::string &path, std::string &body, std::string &etag) { return -1; }
	virtual bool xcap_list(const std::string &auid, const std::string &xui,
			std::vector<std::pair<std::string, std::string>> &out) { return false; }
	virtual unsigned long xcap_generation() { return 0; }
	virtual void stat(Stat which, long long delta) = 0;
	// Accounting of a subscription: Start when it is created, Stop when it ends.
	virtual void account(const Subscription &, bool) {}
	// A NOTIFY of an in-process watch (Engine::watch) to its consumer: a SIP status (200
	// taken, 481 the consumer does not know the watch).
	virtual int deliver_local(const std::string &consumer, const std::string &key,
			const subs::Outgoing &) { return 481; }
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

// What every package reads (Event, Accept, Expires, the dialog), then presence's own.
struct SubscribeRequest : subs::SubscribeCommon {
	std::string presentity;  // user@host of the Request-URI (initial SUBSCRIBE)
	std::string watcher;     // canonical identity of the watcher
	std::string display_name;
	std::string content_type;  // of the body (lower case, no parameters); "" none
	std::string body;
	long long now = 0;
	long long now_ms = 0;
};

struct PresentityView {
	std::string document;
	std::vector<Publication> publications;
};

class Engine {
public:
	Engine(Config cfg, Redis &redis, std::string key_prefix, Host &host);
	~Engine();

	// Both answer the request; NOTIFYs they imply are queued: call flush() after the reply.
	Response publish(const PublishRequest &req);
	Response subscribe(const SubscribeRequest &req);
	void flush();

	// Timer work: expired publications (with expiry) and subscriptions, deferred and
	// coalesced NOTIFYs now due.
	void tick(long long now, long long now_ms, bool expiry = true);
	// Final responses of many NOTIFYs, recorded in one round trip (the timer process).
	void complete_many(const std::vector<subs::Store::Response> &responses, long long now_ms);
	// The final response of a NOTIFY (408: timed out).
	void complete(const std::string &presentity, const std::string &sid, unsigned long long cseq,
			int code, bool retry_after, long long now_ms);

	// Applies the current rules to the presentity's existing watchers (all of them when watcher
	// is empty, else those whose identity or domain is watcher). presentity may be a domain:
	// every presentity of it, in bounded steps. Returns how many changed.
	int reauthorize(const std::string &presentity, const std::string &watcher, long long now_ms);
	// A document of the List and Policy Server changed (path below the root; old ETag ""
	// created, new "" deleted): a presentity's pres-rules reach its watchers at once (new
	// status, newly filtered documents), xcap-diff subscribers of the owner are told.
	void document_changed(const std::string &path, const std::string &old_etag,
			const std::string &new_etag, long long now_ms);
	// The decision for a watcher of a presentity and what it may see (Engine::decide).
	struct Decision {
		Action action = Action::Confirm;
		bool by_user = false;  // the presentity's pres-rules decided (grant applies)
		Grant grant;
	};
	Decision decide(const std::string &presentity, const std::string &watcher, long long now_ms);
	Policy *policy() { return policy_.get(); }
	// Ends a subscription from the RPC (reason deactivated). False: unknown.
	bool terminate(const std::string &sid, long long now_ms);
	// Administrative publication (initial, or with etag: refresh, modify, remove); returns the
	// response (SIP-ETag header in it).
	Response admin_publish(const std::string &presentity, const std::string &body, int expires,
			const std::string &etag, long long now, long long now_ms);

	// In-process watches (bind_imps_presence): a subscription of the presence package whose
	// NOTIFYs are calls of the consumer (Host::deliver_local), no SIP. The same key again
	// refreshes it. sid: its id.
	Response watch(const std::string &presentity, const std::string &watcher,
			const std::string &consumer, const std::string &key, int expires, long long now,
			long long now_ms, std::string &sid);
	bool unwatch(const std::string &presentity, const std::string &sid, long long now_ms);

	PresentityView show(const std::string &presentity, long long now);
	std::vector<Subscription> watchers(const std::string &presentity) { return subs_.of(presentity, ""); }
	std::vector<Summary> list(int limit);
	long long count_subscriptions() { return subs_.count(); }
	long long count_publications() { return pubs_.count_publications(); }
	const Config &config() const { return cfg_; }

	// Document composed from the live publications (offline document when none).
	std::string compose_now(const std::string &presentity, const std::vector<Publication> &pubs) const;
	std::string offline(const std::string &presentity) const;
	// The presentity's document now (composed from its publications, cached by generation).
	std::string current_document(const std::string &presentity);

	// the packages' content (the shared layer asks for them)
	subs::Notification presence_state(const Subscription &s, const std::string &reason, long long now);
	subs::Notification winfo_state(const Subscription &s, const std::string &reason, long long now);
	subs::Notification xcap_diff_state(const Subscription &s, const std::string &reason, long long now);
	void presence_ended(const Subscription &s, const std::string &reason, long long now_ms);
	std::string presence_refreshed(Subscription &s, long long now_ms);

private:
	class PresencePackage;
	class WinfoPackage;
	class XcapDiffPackage;
	class Delivery;
	friend class Delivery;
	struct LocalDone {
		std::string presentity, sid;
		unsigned long long cseq;
		int code;
	};
	std::vector<LocalDone> local_done_;  // final responses of in-process NOTIFYs, to report
	struct WinfoChange {
		Subscription sub;    // the presence subscription that changed
		std::string status;  // pending | active | terminated
		std::string event;   // subscribe | approved | deactivated | rejected | timeout | giveup
	};

	void notify_document(const std::string &pres, const subs::Batch &b, unsigned long long gen,
			const std::vector<Publication> &live, long long now_ms);
	void winfo_changed(const std::string &pres, const std::vector<WinfoChange> &changes, long long now_ms);
	// the document a subscription's watcher may see of doc (its pres-rules' grant)
	std::string visible(const Subscription &s, const std::string &doc, long long now_ms);
	std::string visible_with(const UserRules &ur, const Subscription &s, const std::string &doc,
			long long now_ms, std::map<std::string, std::string> *filtered);
	void rules_changed(const std::string &presentity, long long now_ms);
	// Http mode, timer process: the copies of the rules of some presentities with state here
	// checked again (a cursor over the registry), a changed one applied like a stored change.
	void revalidate_rules(long long now_ms);
	int revalidate_bucket_ = 0;
	unsigned long long revalidate_cursor_ = 0;
	long long revalidate_next_ms_ = 0;
	void diff_changed(const std::string &owner, const std::string &path, const std::string &old_etag,
			const std::string &new_etag, long long now_ms);
	Response subscribe_xcap_diff(const SubscribeRequest &req);
	std::string winfo_full(const Subscription &winfo_sub, long long now);
	bool apply_rule(const Subscription &s, long long now_ms);
	Action action_for(const Subscription &s);
	void status_changed(const Subscription &s, long long now_ms);
	int reauthorize_one(const std::string &presentity, const std::string &watcher, long long now_ms);
	Response subscribe_checked(const SubscribeRequest &req);
	Response publish_checked(const PublishRequest &req, bool admin);
	std::string document_of(const std::string &pres, unsigned long long gen, const std::vector<Publication> &live);

	Config cfg_;
	Host &host_;
	subs::Store subs_;
	PublicationStore pubs_;
	std::unique_ptr<subs::Delivery> delivery_;
	std::unique_ptr<PresencePackage> presence_;
	std::unique_ptr<WinfoPackage> winfo_;
	std::unique_ptr<XcapDiffPackage> xcap_diff_;
	std::unique_ptr<Policy> policy_;
	std::unique_ptr<subs::Notifier> notifier_;
	struct Cached {
		std::string sources;  // the ETags of the publications it was composed from
		std::string doc;
	};
	std::map<std::string, Cached> doc_cache_;  // per process, bounded
};

// A new random entity tag.
std::string new_etag();


}  // namespace imps::presence
