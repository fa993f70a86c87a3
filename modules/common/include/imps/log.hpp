// Logging bridge: the C++ cores log through a function the Kamailio shim installs, so their
// lines land in Kamailio's log with the module's name. Without a sink (unit tests) they go
// to stderr.
#pragma once

#include <cstdarg>
#include <string>

namespace imps {

enum class LogLevel : int { Err = 0, Warn = 1, Info = 2, Dbg = 3 };

using LogSink = void (*)(int level, const char *msg);

void set_log_sink(LogSink sink) noexcept;
void logf(LogLevel level, const char *fmt, ...) noexcept __attribute__((format(printf, 2, 3)));

}  // namespace imps

#define IMPS_ERR(...) ::imps::logf(::imps::LogLevel::Err, __VA_ARGS__)
#define IMPS_WARN(...) ::imps::logf(::imps::LogLevel::Warn, __VA_ARGS__)
#define IMPS_INFO(...) ::imps::logf(::imps::LogLevel::Info, __VA_ARGS__)
#define IMPS_DBG(...) ::imps::logf(::imps::LogLevel::Dbg, __VA_ARGS__)
