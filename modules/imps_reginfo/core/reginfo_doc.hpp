// The RFC 3680 registration information document (application/reginfo+xml) with the RFC 5628
// GRUU extension, and how usrloc changes map onto its contact states and events.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace imps::reginfo {

// What happened to a binding, as usrloc reports it.
enum class Change { Insert, Update, Delete, Expire };

// Who caused it.
enum class Cause {
	Register,  // a REGISTER processed by the registrar in this process
	Admin,     // imps_reginfo.terminate (the event is chosen by the operator)
	Other,     // anything else: usrloc RPC, another module
};

struct ContactParam {
	std::string name;
	std::string value;  // empty for a flag parameter
};

// One contact of a registration as it appears in a document.
struct ContactEntry {
	std::string id;
	bool active = true;
	std::string event;  // registered, created, refreshed, shortened, expired, deactivated, ...
	long long expires = -1;              // seconds left; -1 omits the attribute
	long long duration_registered = -1;  // seconds since first registration; -1 omits it
	int q = -1;                          // 0..1000 (thousandths); -1 omits it
	std::string callid;
	long long cseq = -1;
	std::string uri;
	std::string display_name;
	std::vector<ContactParam> params;  // unknown-param elements
	std::string pub_gruu;              // RFC 5628, with +sip.instance
	std::string temp_gruu;
	long long temp_gruu_first_cseq = -1;
};

enum class RegState { Init, Active, Terminated };

struct Document {
	unsigned long long version = 0;
	bool full = true;
	std::string aor;  // the AoR URI, "sip:alice@a.example"
	std::string reg_id;
	RegState state = RegState::Init;
	std::vector<ContactEntry> contacts;
};

const char *reg_state_name(RegState s) noexcept;

// Event of a contact for a usrloc change. prev_expires_at is the expiry the binding had before
// an update (0 when unknown); admin_event is the operator's choice for Cause::Admin.
std::string contact_event(Change change, Cause cause, long long prev_expires_at,
		long long new_expires_at, const std::string &admin_event);

// Stable identifiers: the same inputs give the same id on every node and after a restart.
std::string registration_id(const std::string &aor);
std::string contact_id(const std::string &aor, const std::string &binding_key);

// Serializes a document; throws std::runtime_error when libxml2 fails.
std::string build(const Document &doc);

// Parses ";a=b;c;d=\"x\"" (Contact header parameters after the URI) into ContactParams,
// dropping those RFC 3680 reports in attributes (expires, q) and the GRUUs that have their
// own elements (RFC 5628); +sip.instance stays an unknown-param, as RFC 5628 shows it.
std::vector<ContactParam> parse_contact_params(const std::string &raw);

}  // namespace imps::reginfo
