// The reg event notifier: turns SUBSCRIBE requests, usrloc binding changes and expiry into
// stored subscriptions and NOTIFYs. Knows nothing of Kamailio: the shim supplies a Host.
#pragma once

#include "reginfo_doc.hpp"
#include "store.hpp"

#include <string>
#include <vector>

namespace imps::reginfo {

// One usrloc binding as the shim copies it.
struct Binding {
	std::string uri;
	std::string callid;
	std::string instance;   // +sip.instance, with its <> if the UA sent them
	unsigned reg_id = 0;
	std::string temp_gruu;  // as the registrar hands it out (empty: none)
	long long expires_at = 0;
	int q = -1;
	long long cseq = -1;
	bool has_msg_info = false;  // display_name/params come from the REGISTER being processed
	std::string display_name;
	std::string params;  // raw Contact header parameters

	std::string key() const;  // binding identity: instance (+reg-id) or contact URI
};

struct Config {
	int min_expires = 60;
	int max_expires = 3600;
	int default_expires = 3600;
	bool partial_state = false;
	std::vector<std::string> trusted_watchers;  // identities ("user@host" or "host")
	bool remove_on_timeout = true;              // NOTIFY answered 408 / timed out
};

enum class Stat { ActiveSubscriptions, NotifiesSent, NotifiesFailed };

class Host {
public:
	virtual ~Host() = default;
	// Sends an in-dialog NOTIFY; returns false when tm could not send it.
	virtual bool send_notify(const Subscription &s, const std::string &body,
			const std::string &subscription_state) = 0;
	// Copies the current bindings of an AoR; false when usrloc has no record for it.
	virtual bool get_bindings(const std::string &aor, std::vector<Binding> &out) = 0;
	virtual void stat(Stat which, long long delta) = 0;
};

struct SubscribeRequest {
	bool has_event = false;
	std::string event;  // Event header value (package and parameters)
	bool has_accept = false;
	std::vector<std::string> accept;  // media ranges of every Accept header
	int expires = -1;                 // -1: no Expires header
	std::string aor;                  // canonical user@host of the Request-URI
	std::string watcher;              // canonical identity of the watcher
	bool in_dialog = false;           // To tag present
	Subscription dialog;              // callid, tags, URIs, target, route set, socket, contact
	long long now = 0;
};

struct SubscribeResponse {
	int code = 500;
	std::string reason;
	std::vector<std::string> headers;  // full header lines without CRLF
	bool notify = false;               // a NOTIFY is queued; send it after the reply
};

class Engine {
public:
	Engine(Config cfg, Store &store, Host &host) : cfg_(std::move(cfg)), store_(store), host_(host) {}

	// Answers a SUBSCRIBE for Event: reg; the NOTIFY it implies is queued: call flush() after
	// the reply went out, so the watcher sees the 200 before the NOTIFY.
	SubscribeResponse subscribe(const SubscribeRequest &req);
	void flush();

	// A usrloc change of one binding. `current` holds the bindings the record has now (the
	// changed one included while usrloc still lists it).
	void binding_changed(const std::string &aor, const Binding &changed, Change change,
			Cause cause, const std::string &admin_event, const std::vector<Binding> &current,
			long long now);

	// Expires subscriptions (final NOTIFY with reason=timeout); returns how many.
	int expire(long long now, int limit = 200);

	// A NOTIFY was answered with a final status >= 300 (408 when it timed out). RFC 6665
	// 4.2.2: the subscription goes unless the reply carried Retry-After; 481 always removes
	// it, a timeout as remove_on_timeout says.
	void notify_failed(const std::string &sid, const std::string &aor, int code,
			bool retry_after = false);

	// The full document for an AoR now (RPC show), version 0.
	std::string show(const std::string &aor, long long now);

	std::vector<Subscription> list(const std::string &aor, int limit) { return store_.list(aor, limit); }
	long long count() { return store_.count(); }
	const Config &config() const { return cfg_; }

private:
	struct Pending {
		Subscription sub;
		std::string body;
		std::string state;
	};

	Document full_document(const std::string &aor, const std::vector<Binding> &bindings,
			bool record_exists, const std::map<std::string, BindingMeta> &meta, long long now);
	ContactEntry entry(const std::string &aor, const Binding &b, const BindingMeta *meta,
			long long now) const;
	bool authorized(const std::string &aor, const std::string &watcher) const;
	void send(const Subscription &s, const std::string &body, const std::string &state);

	Config cfg_;
	Store &store_;
	Host &host_;
	std::vector<Pending> outbox_;
};

// Dialog id of a subscription: the same on every node for the same dialog.
std::string subscription_id(const std::string &callid, const std::string &remote_tag,
		const std::string &local_tag);

}  // namespace imps::reginfo
