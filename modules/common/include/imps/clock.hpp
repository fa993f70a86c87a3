// Wall-clock time in milliseconds, as every store record and NOTIFY time stamp uses it.
#pragma once

#include <chrono>

namespace imps {

inline long long wall_ms()
{
	using namespace std::chrono;
	return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace imps
