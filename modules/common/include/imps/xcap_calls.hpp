// The List and Policy Server's reads as a module's core makes them through the C function
// pointers its shim hands over (imps_xcap_reader_t: bind_imps_xcap's get, list and
// generation): the results as strings.
#pragma once

#include "imps/capi.h"

#include <string>
#include <utility>
#include <vector>

namespace imps {

using XcapGetFn = decltype(imps_xcap_reader_t::get);
using XcapListFn = decltype(imps_xcap_reader_t::list);

// The shared count of stored changes; 0 without a List and Policy Server.
inline unsigned long xcap_generation_via(const imps_xcap_reader_t &r) { return r.generation ? r.generation() : 0; }

// The HTTP status of a GET (path below the root, node selector allowed), -1 when it cannot be
// made; body (and etag when given) set on 200.
inline int xcap_get_via(XcapGetFn get, const std::string &path, std::string &body, std::string *etag)
{
	if (!get) return -1;
	struct Out {
		std::string *body, *etag;
	} out{&body, etag};
	return get(to_imps_str(path), [](void *ctx, imps_str_t b, imps_str_t e, imps_str_t) {
		try {  // called from C: nothing may throw through it
			auto *o = static_cast<Out *>(ctx);
			*o->body = to_string(b);
			if (o->etag) *o->etag = to_string(e);
		} catch (...) {
		}
	}, &out);
}

// The documents of a usage and owner (xui "": every owner) as (path, ETag); false on failure.
inline bool xcap_list_via(XcapListFn list, const std::string &auid, const std::string &xui,
		std::vector<std::pair<std::string, std::string>> &out)
{
	if (!list) return false;
	return list(to_imps_str(auid), to_imps_str(xui),
				   [](void *ctx, imps_str_t path, imps_str_t etag, long long, long long) {
					   try {
						   static_cast<std::vector<std::pair<std::string, std::string>> *>(ctx)->emplace_back(
								   to_string(path), to_string(etag));
					   } catch (...) {
					   }
				   },
				   &out)
			== 0;
}

}  // namespace imps
