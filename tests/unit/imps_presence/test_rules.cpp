// The operator's rule rows: which one applies to a watcher (match_rules) and the order of a
// presentity's rows, its domain's rows and the default action (Host::rule).
#include "imps_presence/core/engine.hpp"
#include "imps_presence/core/rules.hpp"

#include <gtest/gtest.h>

#include <map>

using namespace imps::presence;

namespace {

TEST(PresenceRules, IdentityBeatsDomainBeatsStar)
{
	std::vector<RuleRow> rows = {{"*", "block"}, {"b.example", "polite-block"}, {"bob@b.example", "allow"}};
	EXPECT_EQ(match_rules(rows, "bob@b.example"), Action::Allow);
	EXPECT_EQ(match_rules(rows, "carol@b.example"), Action::PoliteBlock);
	EXPECT_EQ(match_rules(rows, "dave@c.example"), Action::Block);
}

TEST(PresenceRules, CaseAndSpacesDoNotMatterAndOrderDoesNot)
{
	std::vector<RuleRow> rows = {{" Bob@B.Example ", "ALLOW"}, {"*", "confirm"}};
	EXPECT_EQ(match_rules(rows, "bob@b.example"), Action::Allow);
	std::vector<RuleRow> reversed(rows.rbegin(), rows.rend());
	EXPECT_EQ(match_rules(reversed, "BOB@b.example"), Action::Allow);
}

TEST(PresenceRules, NoRowAppliesAndUnknownActionsAreSkipped)
{
	EXPECT_FALSE(match_rules({}, "bob@b.example").has_value());
	EXPECT_FALSE(match_rules({{"alice@a.example", "allow"}}, "bob@b.example").has_value());
	// an unknown action is skipped: the next best row decides
	std::vector<RuleRow> rows = {{"bob@b.example", "maybe"}, {"b.example", "block"}};
	EXPECT_EQ(match_rules(rows, "bob@b.example"), Action::Block);
}

class RowsHost : public Host {
public:
	bool send_notify(const imps::subs::Outgoing &) override { return true; }
	void stat(Stat, long long) override {}
	bool rule_rows(const std::string &key, std::vector<RuleRow> &out) override
	{
		asked.push_back(key);
		if (broken) return false;
		auto it = rows.find(key);
		if (it != rows.end()) out = it->second;
		return true;
	}
	std::map<std::string, std::vector<RuleRow>> rows;
	std::vector<std::string> asked;
	bool broken = false;
};

TEST(PresenceRules, PresentityRowsBeatDomainRowsBeatTheDefault)
{
	RowsHost h;
	h.default_action = Action::Confirm;
	h.rows["alice@a.example"] = {{"bob@b.example", "block"}};
	h.rows["a.example"] = {{"*", "allow"}, {"bob@b.example", "allow"}};
	EXPECT_EQ(h.rule("alice@a.example", "bob@b.example"), Action::Block);  // even a domain's exact row loses
	EXPECT_EQ(h.rule("alice@a.example", "carol@c.example"), Action::Allow);  // the domain's "*"
	EXPECT_EQ(h.rule("zoe@z.example", "bob@b.example"), Action::Confirm);   // no row: the default
	EXPECT_EQ(h.asked, (std::vector<std::string>{"alice@a.example", "alice@a.example", "a.example",
							   "zoe@z.example", "z.example"}));
}

TEST(PresenceRules, UnreadableRowsAreUnknown)
{
	RowsHost h;
	h.broken = true;
	EXPECT_EQ(h.rule("alice@a.example", "bob@b.example"), Action::Unknown);
}

}  // namespace
