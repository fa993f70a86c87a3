// The XCAP server (RFC 4825) without Kamailio: one HTTP request in, one response out.
// Documents live in a Storage (the shim's is Kamailio's DB API; the unit tests' is a map);
// every change is validated against the application usage (schema, uniqueness, semantics)
// before it is stored, and a change is stored only when the document's ETag is still the one
// it was computed from (optimistic concurrency between Kamailio's worker processes).
#pragma once

#include "imps_xcap/core/app_usage.hpp"
#include "imps_xcap/core/selector.hpp"

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace imps::xcap {

// Who asks: a user may read and write only users/<own XUI> and read global documents; an
// admin anything; a trusted reader (the presence and list servers, by address) reads all.
enum class Role { Anonymous, User, Admin, Reader };

struct Request {
	std::string method;  // GET, PUT, DELETE, ...
	std::string path;    // below the XCAP root, without the leading '/' (still %-encoded)
	std::string query;   // after '?', "" when none
	std::string content_type;
	bool has_if_match = false, has_if_none_match = false;
	std::string if_match, if_none_match;  // the header values
	std::string body;
	std::string identity;  // the authenticated user's XUI, e.g. "sip:alice@a.example"
	Role role = Role::Anonymous;
};

struct Response {
	int status = 500;
	std::string reason;
	std::string content_type;
	std::string etag;  // the value without quotes; "" none
	std::string body;
	std::vector<std::pair<std::string, std::string>> headers;  // more (Allow)
	std::string refused;  // why a change was refused (the xcap-error element, or a tag)
};

struct StoredDoc {
	std::string body, etag;
	long long modified = 0;  // unix time of the last change
};

struct DocInfo {
	std::string path;  // "<auid>/users/<xui>/<document>" or "<auid>/global/<document>"
	std::string etag;
	long long modified = 0;
	size_t size = 0;
};

enum class StoreResult { Ok, NotFound, Conflict, Error };

// Documents by path ("<auid>/users/<xui>/<document>", the decoded selector).
class Storage {
public:
	virtual ~Storage() = default;
	virtual StoreResult fetch(const std::string &path, StoredDoc &out) = 0;
	// Conflict when the path exists already
	virtual StoreResult create(const std::string &path, const std::string &auid,
			const std::string &xui, const StoredDoc &doc) = 0;
	// Conflict when the stored ETag is no longer old_etag (NotFound when gone)
	virtual StoreResult replace(const std::string &path, const std::string &old_etag,
			const StoredDoc &doc) = 0;
	virtual StoreResult remove(const std::string &path, const std::string &old_etag) = 0;
	// every document of an app usage ("" every), of one user ("" every user, global too)
	virtual StoreResult list(const std::string &auid, const std::string &xui,
			std::vector<DocInfo> &out) = 0;
};

struct Config {
	std::string root;  // the XCAP root URI, e.g. "http://127.0.0.1:8080/xcap-root"
	size_t max_doc_size = 1 << 20;
};

// A stored change: path, the ETag before ("" created) and after ("" deleted).
using ChangeHook = std::function<void(const std::string &path, const std::string &old_etag,
		const std::string &new_etag)>;

// The document path of a parsed URI.
std::string doc_path(const Uri &u);
// "<prefix>" + the XUI rules: does the identity own users/<xui>?
bool same_user(const std::string &identity, const std::string &xui);
// Does an If-Match / If-None-Match value match the ETag ("" no document)?
bool etag_matches(const std::string &header, const std::string &etag);
// A fresh strong ETag.
std::string new_etag();
// The application/xcap-error+xml body for an error element (not-well-formed, ...); inner
// is the element's content (already XML), phrase its phrase attribute.
std::string error_body(const std::string &element, const std::string &inner = "",
		const std::string &phrase = "");

class Server {
public:
	Server(Config cfg, const AppUsages &usages, Storage &store);
	Response handle(const Request &req);
	void on_change(ChangeHook hook) { hook_ = std::move(hook); }
	// the generated documents (xcap-caps, the rls-services index, a user's directory)
	std::string caps_document() const;
	const Config &config() const { return cfg_; }

private:
	struct Ctx;
	Response get(Ctx &c);
	Response put(Ctx &c);
	Response del(Ctx &c);
	// false: err is the answer (the documents behind them cannot be read)
	bool generated(const Ctx &c, std::string &body, Response &err);
	bool rls_index(std::string &body, Response &err);
	bool directory(const std::string &xui, std::string &body, Response &err);
	// validates the document a change makes; fills resp with the 409 when refused
	bool validate(const Ctx &c, xmlDocPtr doc, Response &resp);
	bool store(Ctx &c, const std::string &body, Response &resp);

	Config cfg_;
	const AppUsages &usages_;
	Storage &store_;
	ChangeHook hook_;
};

}  // namespace imps::xcap
