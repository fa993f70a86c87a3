// DEFLATE decoding (RFC 1951), with or without the zlib wrapper (RFC 1950), for bodies sent
// with "Content-Encoding: deflate" (linphone compresses its RFC 5367 resource lists). Bounded:
// output beyond max_out is an error, as is any malformed stream.
#pragma once

#include <string>
#include <string_view>

namespace imps::rls {

// false when the data is not a complete, valid stream or inflates to more than max_out bytes
bool inflate(std::string_view in, std::string &out, size_t max_out);

}  // namespace imps::rls
