// The operator's presence rules (rows of the rules table): which one applies to a watcher.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace imps::presence {

enum class Action;

struct RuleRow {
	std::string watcher;  // an identity "user@host", a domain "host", or "*"
	std::string action;   // allow | block | polite-block | confirm
};

// The best row for watcher: its identity beats its domain beats "*" (case-insensitive);
// rows with an unknown action are skipped. nullopt: no row applies.
std::optional<Action> match_rules(const std::vector<RuleRow> &rows, const std::string &watcher);

}  // namespace imps::presence
