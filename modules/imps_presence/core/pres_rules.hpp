// A presentity's own presence rules (RFC 5025 pres-rules over RFC 4745 common-policy, and
// OMA's extensions), as the List and Policy Server (imps_xcap) stores them: which rules
// match a watcher (identity one/many/except, validity, OMA other-identity) and what they
// grant when combined (RFC 4745 section 10: the maximum sub-handling; the union of the
// provide-* sets and booleans). The engine (Engine::decide) combines them with the
// operator's SQL rules and filters each watcher's document by its grant (filter_document).
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace imps::presence {

enum class Action;

struct PresRule {
	std::string id;
	// conditions: none of a kind means "no constraint of that kind"
	bool has_identity = false;
	std::vector<std::string> ones;  // <one id=...>
	struct Many {
		std::string domain;  // "" any
		std::vector<std::string> except_ids, except_domains;
	};
	std::vector<Many> manys;
	bool other_identity = false;  // OMA <other-identity/>: nobody else's identity matched
	std::vector<std::pair<long long, long long>> validity;  // unix s [from, until)
	bool unsupported = false;  // a condition this server cannot evaluate (sphere, ...): false
	// actions and transformations
	int sub_handling = -1;  // 0 block, 10 confirm, 20 polite-block, 30 allow; -1 none
	bool all_services = false, all_persons = false, all_devices = false, all_attributes = false;
	std::set<std::pair<std::string, std::string>> services, persons, devices;  // (kind, value)
	std::set<std::string> attributes;  // provide-activities -> "activities", ...
};

struct PresRules {
	std::vector<PresRule> rules;
};

struct Grant {
	bool matched = false;  // at least one rule matched
	int sub_handling = 0;  // combined: the maximum; block when nothing says otherwise
	bool all_services = false, all_persons = false, all_devices = false, all_attributes = false;
	std::set<std::pair<std::string, std::string>> services, persons, devices;
	std::set<std::string> attributes;
};

// Parses a pres-rules document; false with *why when it is not one.
bool parse_pres_rules(std::string_view xml, PresRules &out, std::string *why);
// The grant of the rules matching watcher ("sip:bob@a.example" or "bob@a.example") at now
// (unix seconds).
Grant evaluate(const PresRules &rules, std::string_view watcher, long long now);
// The subscription decision of a grant: nullopt when no rule matched (the operator's rules
// and the default decide then).
std::optional<Action> decision(const Grant &g);

// Does the grant let the whole document through (all services, persons, devices and
// attributes)?
bool grants_everything(const Grant &g);
// The same text for grants that filter alike (a cache key).
std::string grant_key(const Grant &g);
// The privacy filtering of RFC 5025 section 3.3 on a composed PIDF document: the tuples,
// persons and devices the grant names (or all of a kind), in them the attributes it gives;
// <contact>, <basic> status, <timestamp>, <service-class> and a device's <deviceID> always.
// F(F(d)) == F(d). A document that does not parse comes back as the offline shape (no
// tuples) rather than unfiltered.
std::string filter_document(std::string_view pidf, const Grant &g);

}  // namespace imps::presence
