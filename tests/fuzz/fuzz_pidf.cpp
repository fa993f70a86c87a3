// libFuzzer target: PUBLISH bodies (application/pidf+xml) come from the network. validate_pidf
// must refuse or accept any bytes without crashing; an accepted body composed with itself must
// give a document that validate_pidf accepts again (well-formed, unique tuple ids, entity).
#include "imps_presence/core/pidf.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	using namespace imps::presence;
	const std::string body(reinterpret_cast<const char *>(data), size);
	const std::string presentity = "alice@example.com";
	if (!validate_pidf(body, presentity, 65536).empty()) return 0;
	std::vector<Source> sources{{"etag-a", body, 1000}, {"etag-b", body, 2000}};
	std::string out = compose("sip:" + presentity, sources);
	if (!validate_pidf(out, presentity, 1 << 20).empty()) std::abort();
	std::vector<Source> reversed{sources[1], sources[0]};
	if (compose("sip:" + presentity, reversed) != out) std::abort();  // order must not matter
	return 0;
}
