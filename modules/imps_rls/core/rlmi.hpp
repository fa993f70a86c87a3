// The bodies of list NOTIFYs (RFC 4662 section 5): a multipart/related body (RFC 2387, framing
// per RFC 2046 5.1.1: no preamble, CRLF before every delimiter) whose root part is the RLMI
// document; one part per resource with state (its PIDF, by Content-ID); nested lists as
// nested multipart/related parts with their own RLMI root.
#pragma once

#include <string>
#include <vector>

namespace imps::rls {

struct Instance {
	std::string id;
	std::string state;   // active | pending | terminated
	std::string reason;  // terminated only
	std::string cid;     // active only: the part with the state
};

struct Resource {
	std::string uri;
	std::string name;
	std::vector<Instance> instances;
};

// The application/rlmi+xml document.
std::string rlmi_document(const std::string &list_uri, unsigned long long version, bool full_state,
		const std::string &name, const std::vector<Resource> &resources);

struct Part {
	std::string content_id;    // without <>
	std::string content_type;  // with its parameters
	std::string body;
};

// "multipart/related;type=\"application/rlmi+xml\";start=\"<cid>\";boundary=b"
std::string multipart_type(const std::string &start_cid, const std::string &boundary);
// The body: parts[0] is the root; each part with Content-Transfer-Encoding binary,
// Content-ID and Content-Type.
// brackets: Content-ID values in angle brackets (RFC 2392); false for liblinphone, which
// compares the raw value with the RLMI cid.
std::string multipart_body(const std::string &boundary, const std::vector<Part> &parts, bool brackets = true);
// A boundary that does not occur in any of the parts.
std::string new_boundary(const std::vector<Part> &parts);
// A random token (Content-IDs, boundaries).
std::string random_token(size_t bytes);

}  // namespace imps::rls
