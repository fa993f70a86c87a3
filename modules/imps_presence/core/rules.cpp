#include "rules.hpp"

#include "engine.hpp"

#include "imps/log.hpp"
#include "imps/sip_text.hpp"

namespace imps::presence {

std::optional<Action> match_rules(const std::vector<RuleRow> &rows, const std::string &watcher)
{
	const std::string w = lower(watcher);
	size_t at = w.rfind('@');
	const std::string domain = at == std::string::npos ? w : w.substr(at + 1);
	int best_rank = 0;
	std::optional<Action> best;
	for (const auto &r : rows) {
		const std::string rw = lower(trim(r.watcher));
		int rank = rw == w ? 3 : rw == domain ? 2 : rw == "*" ? 1 : 0;
		if (rank == 0 || rank <= best_rank) continue;
		Action a;
		if (!parse_action(r.action, a)) {
			IMPS_WARN("rule for %s has an unknown action '%s': skipped", r.watcher.c_str(), r.action.c_str());
			continue;
		}
		best_rank = rank;
		best = a;
	}
	return best;
}

std::optional<Action> Host::operator_rule(const std::string &presentity, const std::string &watcher)
{
	// the presentity's own rows beat its domain's
	size_t at = presentity.rfind('@');
	const std::string domain = at == std::string::npos ? presentity : presentity.substr(at + 1);
	for (const std::string &key : {presentity, domain}) {
		std::vector<RuleRow> rows;
		if (!rule_rows(key, rows)) return Action::Unknown;  // database trouble
		if (auto a = match_rules(rows, watcher)) return *a;
		if (key == domain) break;
	}
	return std::nullopt;
}

Action Host::rule(const std::string &presentity, const std::string &watcher)
{
	auto a = operator_rule(presentity, watcher);
	return a ? *a : default_action;
}

}  // namespace imps::presence
