// The resource list server (RFC 4662) on the shared subscription layer (imps/subs.hpp): list
// subscriptions to the services of users' rls-services documents, each member watched in
// process through imps_presence (one back-end watch per owner and member, shared by every list
// subscription of that owner that contains it, reference counted), member state kept in Redis,
// changes of members batched into partial RLMI NOTIFYs. Knows nothing of Kamailio: the shim
// supplies a Host.
#pragma once

#include "lists.hpp"

#include "imps/subs.hpp"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace imps {
class Redis;
}

namespace imps::rls {

using subs::Subscription;

struct Config {
	int min_expires = 60;
	int max_expires = 3600;
	int default_expires = 3600;
	bool remove_on_timeout = true;
	long long notify_busy_ms = 35000;
	long long batch_ms = 50;         // changes of members within this window share a NOTIFY
	size_t max_notify_size = 32768;  // member state bytes per NOTIFY; the rest follows
	Limits limits;                   // members per list, nesting
	int max_list_subscriptions = 16; // per service URI
	int max_backends = 10000;        // back-end watches in total (this store)
	std::string node = "-";
	std::string epoch = "0";
	std::string xcap_root;           // for absolute references
	std::string adhoc_user = "rls";  // RFC 5367: SUBSCRIBEs to <adhoc_user>@<domain> with a list
	size_t max_body_size = 65536;    // of an ad-hoc list body, inflated
	// liblinphone's list NOTIFY handling: "Event: Presence" and Content-IDs without brackets
	// for ad-hoc lists of clients whose User-Agent names linphone
	bool client_compat = true;
	// members of other domains (RFC 4662 back-end SUBSCRIBEs through the HSP): the domains
	// served here (empty: every member is local), the next hop, our Contact, the Expires asked
	// for, how long after a failure the member is tried again
	std::vector<std::string> local_domains;
	std::string outbound_proxy;
	std::string contact;
	int remote_expires = 3600;
	long long remote_retry_ms = 30000;
	int max_backends_per_list = 200;   // members of one list subscription watched
	int max_backends_per_user = 1000;  // back-ends of one owner
};

enum class Stat {
	ListSubscriptions,
	NotifiesSent,
	NotifiesFailed,
	NotifyBytes,
	ListErrors,
	TimerErrors,
	Backends,
	BackendsRemote,   // of them, SUBSCRIBE dialogs with other domains
	BackendFailures,  // back-end SUBSCRIBEs refused or unanswered
	BackendsRefused,  // members not watched: a cap (per list, per user, in total)
};

// A SUBSCRIBE of a back-end dialog with another domain: initial (no remote tag), refresh or
// unsubscribe (expires 0); its final response comes back through Engine::backend_responses.
struct BackendRequest {
	std::string bkey, callid, local_tag, remote_tag, from_uri, to_uri, target, route_set, dst_uri;
	unsigned long long cseq = 1;
	std::string headers;  // whole lines, CRLF each
};

struct BackendResponse {
	std::string bkey, callid;
	unsigned long long cseq = 0;
	int code = 408;
	bool retry_after = false;
	std::string remote_tag, route_set, target;  // of a 2xx: To tag, Record-Route reversed, Contact
	int expires = -1;
};

// A NOTIFY of a back-end dialog (in-dialog request to our Contact).
struct BackendNotify {
	std::string callid, local_tag, remote_tag, state, content_type, body, route_set, target;
	unsigned long long cseq = 0;
};

class Host {
public:
	virtual ~Host() = default;
	virtual bool send_notify(const subs::Outgoing &n) = 0;
	virtual void stat(Stat which, long long delta) = 0;
	// the List and Policy Server in this process: GET (status, -1 failure), the documents of
	// a usage (path, ETag), the shared change count
	virtual int xcap_get(const std::string &path, std::string &body) = 0;
	virtual bool xcap_list(const std::string &auid, std::vector<std::pair<std::string, std::string>> &out) = 0;
	virtual unsigned long xcap_generation() = 0;
	// imps_presence in this process: a watch of presentity for watcher under key (its first
	// NOTIFY comes back through Engine::member_notify before this returns): the status, id
	// set; unwatch: 1 ended, 0 unknown, -1 failure
	virtual int watch(const std::string &presentity, const std::string &watcher, const std::string &key,
			int expires, std::string &id) = 0;
	virtual int unwatch(const std::string &presentity, const std::string &id) = 0;
	// a back-end SUBSCRIBE through tm (never waits for its answer): false not sent
	virtual bool send_backend(const BackendRequest &r) = 0;
};

// What every package reads (Event, Accept, Expires, the dialog), then the list server's own.
struct SubscribeRequest : subs::SubscribeCommon {
	bool eventlist = false;    // Supported: eventlist
	bool recipient_list = false;  // Require: recipient-list-subscribe (RFC 5367)
	std::string content_type, content_disposition, content_encoding;  // of the body, lower case
	std::string user_agent;
	std::string body;
	std::string service;       // the Request-URI ("sip:alice-list@a.example"), initial
	std::string watcher;       // canonical identity of the subscriber
	std::string display_name;
	long long now = 0, now_ms = 0;
};

struct Response {
	int code = 500;
	std::string reason;
	std::vector<std::string> headers;
	bool mine = true;  // false: not a list service (the script goes on to imps_presence)
};

// One back-end watch as the RPC shows it.
struct Backend {
	std::string key, member, owner, id, state, reason;
	long long refs = 0;
	bool remote = false;
	long long next_ms = 0;  // remote: when it is refreshed or tried again
};

class Engine {
public:
	Engine(Config cfg, Redis &redis, std::string key_prefix, Host &host);
	~Engine();

	Response subscribe(const SubscribeRequest &req);
	void flush();
	// A NOTIFY of a back-end watch (imps_presence's callback): its SIP status.
	int member_notify(const std::string &key, const std::string &presentity, const std::string &state,
			const std::string &content_type, const std::string &body, long long now_ms);
	// A document of the List and Policy Server changed: list subscriptions of its owner's
	// services resolve their lists again (new members watched, removed ones terminated).
	void document_changed(const std::string &path, long long now_ms);
	// Resolves again the lists of every subscription of a service ("" every one); how many.
	int refresh(const std::string &service, long long now_ms);

	// back-end dialogs with other domains: final responses (the module's timer process),
	// NOTIFYs (their SIP status), refreshes and retries now due (in tick)
	void backend_responses(const std::vector<BackendResponse> &rs, long long now_ms);
	int backend_notify(const BackendNotify &n, long long now_ms);
	void remote_due(long long now_ms);

	void tick(long long now, long long now_ms, bool expiry);
	void complete_many(const std::vector<subs::Store::Response> &responses, long long now_ms);

	std::vector<Subscription> list_subscriptions();
	bool show(const std::string &sid, Subscription &out, Node &tree);
	std::vector<Backend> backends();
	long long count_subscriptions() { return subs_.count(); }

	// the package's content (the layer asks)
	subs::Notification list_state(const Subscription &s, const std::string &reason, long long now);
	void list_ended(const Subscription &s, const std::string &reason, long long now_ms);
	std::string list_refreshed(Subscription &s, long long now_ms);

private:
	class ListPackage;
	struct Services;
	bool find_service(const std::string &uri, Service &out);
	Response subscribe_adhoc(const SubscribeRequest &req, subs::Notifier::Request &r);
	Response start_list(const SubscribeRequest &req, subs::Notifier::Request &r, const std::string &resource,
			const Node &tree, const char *too_many);
	void attach(const Subscription &s, const Node &tree, int expires, long long now_ms);
	void detach(const std::string &owner, const std::string &sid, const std::vector<std::string> &members,
			long long now_ms);
	std::string backend_key(const std::string &owner, const std::string &member) const;
	bool is_remote(const std::string &presentity) const;
	bool refuse(const std::string &bkey, const std::string &owner, const std::string &p, const char *why);
	void remote_start(const std::string &bkey, long long now_ms);
	void remote_failed(const std::string &bkey, const std::string &reason, long long delay_ms, long long now_ms);
	void remote_end(const std::string &bkey, const std::vector<std::string> &dialog);
	std::string be_key(const std::string &bkey, const char *what) const;
	void member_changed(const std::string &bkey, const std::string &member_uri, long long now_ms,
			const std::string &except_sid = "");

	Config cfg_;
	Host &host_;
	std::string prefix_;
	subs::Store subs_;
	std::unique_ptr<subs::HostDelivery<Host>> delivery_;
	std::unique_ptr<ListPackage> package_;
	std::unique_ptr<subs::Notifier> notifier_;
	std::unique_ptr<Services> services_;
	bool in_watch_ = false;  // a watch() is running: its first NOTIFY must not start another turn
	std::string in_watch_sid_;  // the list subscription whose watches are being made
	// changes delivered while a watch() ran: notified after it, to every holding list but the
	// one being made (it shows them in its full state); (back-end, member, except sid)
	struct Change {
		std::string bkey, member, except;
	};
	std::vector<Change> deferred_;
	std::vector<Change> pending_changes_;  // run at the next flush()
	void run_deferred(long long now_ms);
};

}  // namespace imps::rls
