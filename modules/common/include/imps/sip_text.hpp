// Small text helpers for SIP header values, shared by the modules' cores.
#pragma once

#include <string>
#include <vector>

namespace imps {

std::string trim(const std::string &s);
std::string lower(std::string s);
// The id parameter of an Event header value ("presence;id=7" -> "7"); "" when absent or not a
// token (RFC 3261), so nothing that could break a header is ever echoed.
std::string event_id(const std::string &event);
// Whether one of the media ranges of Accept headers covers type ("application/pidf+xml").
bool accepts(const std::vector<std::string> &ranges, const std::string &type);

}  // namespace imps
