// The reg event package (RFC 3680) on the shared subscription layer (imps/subs.hpp): turns
// SUBSCRIBE requests, usrloc binding changes and expiry into NOTIFYs. Knows nothing of
// Kamailio: the shim supplies a Host.
#pragma once

#include "reginfo_doc.hpp"
#include "store.hpp"

#include "imps/subs.hpp"

#include <memory>
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

// The temporary GRUU (RFC 5627) of a binding as Kamailio's registrar hands it out
// (registrar/reply.c): "sip:<ruid>-<aor hash, hex digits from the lowest>@<host of the AoR>;gr".
// "" when the binding has no instance or ruid, or the AoR no host.
std::string temp_gruu(const std::string &ruid, unsigned int aor_hash, const std::string &aor);

struct Config {
	int min_expires = 60;
	int max_expires = 3600;
	int default_expires = 3600;
	bool partial_state = false;
	std::vector<std::string> trusted_watchers;  // identities ("user@host" or "host")
	bool remove_on_timeout = true;              // NOTIFY answered 408 / timed out
	long long notify_busy_ms = 35000;           // longest wait for a NOTIFY's final response
	std::string node = "-";                     // this node's name and start time (subs::Store)
	std::string epoch = "0";
};

enum class Stat { ActiveSubscriptions, NotifiesSent, NotifiesFailed, TimerErrors };

class Host {
public:
	virtual ~Host() = default;
	// Sends an in-dialog NOTIFY; returns false when tm could not send it. Its final response
	// comes back through Engine::complete().
	virtual bool send_notify(const subs::Outgoing &n) = 0;
	// Copies the current bindings of an AoR; false when usrloc has no record for it.
	virtual bool get_bindings(const std::string &aor, std::vector<Binding> &out) = 0;
	virtual void stat(Stat which, long long delta) = 0;
};

// What every package reads (Event, Accept, Expires -1 when absent, the dialog), then reg's.
struct SubscribeRequest : subs::SubscribeCommon {
	std::string aor;                  // AoR of the Request-URI (initial), "" : look it up
	std::string watcher;              // canonical identity of the watcher
	long long now = 0;
	long long now_ms = 0;             // 0: now * 1000
};

struct SubscribeResponse {
	int code = 500;
	std::string reason;
	std::vector<std::string> headers;  // full header lines without CRLF
	bool notify = false;               // a NOTIFY is queued; send it after the reply
};

// A usrloc change of one binding, as queued by the shim under usrloc's lock and handled
// after it (serializable, to hand it from a process that may not do I/O to one that may).
struct BindingChange {
	std::string aor;
	Binding changed;
	Change change = Change::Insert;
	Cause cause = Cause::Other;
	std::string admin_event;
	std::vector<Binding> current;  // the record's other valid bindings
	long long now = 0;
	long long now_ms = 0;  // when usrloc made it (0: now)

	std::string serialize() const;
	static bool parse(const std::string &blob, BindingChange &out);
};

class Engine {
public:
	Engine(Config cfg, Redis &redis, std::string key_prefix, Host &host);
	~Engine();

	// Answers a SUBSCRIBE for Event: reg; the NOTIFY it implies is queued: call flush() after
	// the reply went out, so the watcher sees the 200 before the NOTIFY.
	SubscribeResponse subscribe(const SubscribeRequest &req);
	void flush();

	// A usrloc change of one binding (never called with usrloc's lock held). `current` holds
	// the record's other bindings. Sends the NOTIFYs it implies.
	void binding_changed(const std::string &aor, const Binding &changed, Change change,
			Cause cause, const std::string &admin_event, const std::vector<Binding> &current,
			long long now, long long change_ms = 0);
	void binding_changed(const BindingChange &c)
	{
		binding_changed(c.aor, c.changed, c.change, c.cause, c.admin_event, c.current, c.now, c.now_ms);
	}

	// Timer: expired subscriptions get their final NOTIFY (reason=timeout); deferred NOTIFYs
	// now due are sent.
	void expire(long long now, long long now_ms);
	void send_due(long long now_ms);
	// Final responses of many NOTIFYs, recorded in one round trip (the timer process).
	void complete_many(const std::vector<subs::Store::Response> &responses, long long now_ms);
	// The final response of a NOTIFY (408 for a timeout): RFC 6665 4.2.2 as configured, and
	// a NOTIFY that waited for it goes out.
	void complete(const std::string &aor, const std::string &sid, unsigned long long cseq,
			int code, bool retry_after, long long now_ms);

	// The full document for an AoR now (RPC show), version 0.
	std::string show(const std::string &aor, long long now);
	std::vector<subs::Subscription> list(const std::string &aor, int limit);
	long long count() { return subs_.count(); }
	const Config &config() const { return cfg_; }

	// The package's full state for a subscription (the shared layer asks for it).
	subs::Notification full_state(const subs::Subscription &s, long long now);

private:
	class Package;

	Document full_document(const std::string &aor, const std::vector<Binding> &bindings,
			bool record_exists, const std::map<std::string, BindingMeta> &meta, long long now);
	ContactEntry entry(const std::string &aor, const Binding &b, const BindingMeta *meta,
			long long now) const;
	bool authorized(const std::string &aor, const std::string &watcher) const;

	Config cfg_;
	Host &host_;
	subs::Store subs_;
	BindingStore bindings_;
	std::unique_ptr<subs::Delivery> delivery_;
	std::unique_ptr<Package> package_;
	std::unique_ptr<subs::Notifier> notifier_;
};

}  // namespace imps::reginfo
