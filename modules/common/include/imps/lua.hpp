// The Lua scripts of the tree (modules/*/lua/*.lua), embedded at build time by
// scripts/embed-lua.sh. A script's name is its file name without ".lua".
#pragma once

#include <string>

namespace imps {

// The text of a script, its "-- #include" lines resolved; throws std::logic_error if unknown.
const std::string &lua_script(const char *name);

}  // namespace imps
