// libFuzzer target: the RADIUS decoder and reply verification take bytes from the network.
#include "imps_aaa/core/radius.hpp"

#include <cstdint>
#include <stdexcept>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	std::string_view in(reinterpret_cast<const char *>(data), size);
	std::string why;
	auto p = imps::aaa::decode(in, &why);
	if (p) {
		// what decodes must encode again (attributes of legal length)
		try {
			(void)imps::aaa::encode(*p);
		} catch (const std::length_error &) {
		}
	}
	imps::aaa::Authenticator ra{};
	(void)imps::aaa::verify_response(in, size ? data[0] : 0, ra, "secret", &why);
	(void)imps::aaa::verify_request(in, "secret", &why);
	return 0;
}
