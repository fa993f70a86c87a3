#include "imps/log.hpp"

#include <cstdio>

namespace imps {
namespace {
LogSink g_sink = nullptr;  // set once per process by the shim; trivial type, no static init order issue
}

void set_log_sink(LogSink sink) noexcept { g_sink = sink; }

void logf(LogLevel level, const char *fmt, ...) noexcept
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	std::vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (g_sink) {
		g_sink(static_cast<int>(level), buf);
	} else if (level <= LogLevel::Warn) {
		std::fprintf(stderr, "%s\n", buf);
	}
}

}  // namespace imps
