// Fuzz target: what imps_rls takes from the network in an RFC 5367 ad-hoc list SUBSCRIBE: the
// body, inflated when it is deflate-encoded, resolved as a list (references answered from a
// small fixed set of documents), the tree kept with the subscription and read back, and the
// RLMI document built from it. Nothing may crash, loop or grow beyond the bounds.
#include "imps_rls/core/inflate.hpp"
#include "imps_rls/core/lists.hpp"
#include "imps_rls/core/rlmi.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace {

const char *kRoot = "http://127.0.0.1:8080/xcap-root";

int fetch(const std::string &path, std::string &body)
{
	// a list that refers to itself, an entry, and anything else missing
	if (path.find("loop") != std::string::npos) {
		body = "<list name='loop'><entry uri='sip:l@a.example'/><external anchor='http://127.0.0.1:8080/xcap-root/"
			   "resource-lists/users/sip:alice@a.example/index/~~/loop'/></list>";
		return 200;
	}
	if (path.find("entry") != std::string::npos) {
		body = "<entry uri='sip:e@a.example'><display-name>E</display-name></entry>";
		return 200;
	}
	return 404;
}

void resolve_and_build(const std::string &body)
{
	using namespace imps::rls;
	Limits lim;
	lim.max_members = 50;
	lim.max_depth = 6;
	std::string why;
	Resolved r = resolve_body(body, "sip:rls@a.example", "sip:alice@a.example", kRoot, fetch, lim, why);
	if (r.members > lim.max_members) __builtin_trap();
	Node back;
	if (!decode(encode(r.root), back) || encode(back) != encode(r.root)) __builtin_trap();
	std::vector<Resource> rs;
	for (const auto &m : members_of(back)) rs.push_back({m, "", {{"i", "pending", "", ""}}});
	(void)rlmi_document(back.uri, 0, true, back.name, rs);
	(void)presentity_of(body.substr(0, 64));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	std::string in(reinterpret_cast<const char *>(data), size);
	std::string out;
	if (imps::rls::inflate(in, out, 65536)) {
		if (out.size() > 65536) __builtin_trap();
		resolve_and_build(out);
	}
	resolve_and_build(in);
	return 0;
}
