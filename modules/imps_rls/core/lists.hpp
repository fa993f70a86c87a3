// The lists of the resource list server: the services of rls-services documents (RFC 4826
// section 4) and their lists resolved into a tree of members (inline <list>s, nested lists,
// <entry-ref>, <external>, <resource-list>), with loop detection and bounds. Documents come
// through a fetch function (the List and Policy Server in process); nothing here knows XCAP
// transport or Kamailio.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace imps::rls {

// A node of a resolved list: a member (uri of a resource) or a nested list.
struct Node {
	bool is_list = false;
	std::string uri;   // member: its URI; list: the URI the RLMI names it by
	std::string name;  // display-name ("" none)
	std::vector<Node> children;  // a list's
};

struct Service {
	std::string uri;        // the service URI (sip:alice-list@a.example)
	std::string owner_xui;  // whose rls-services document holds it ("sip:alice@a.example")
	std::string path;       // that document (below the root)
	std::string doc;        // the rls-services document it is in
	int index = -1;         // its position there: the <service> whose inline <list> it has
	bool has_list = false;  // an inline <list> (else resource_list)
	std::string resource_list;  // the <resource-list> URI, or ""
	std::vector<std::string> packages;  // <packages>; empty: any
};

// The services of one rls-services document of owner_xui.
std::vector<Service> parse_services(std::string_view doc, const std::string &owner_xui,
		const std::string &path);

// GET below the XCAP root (node selector allowed): the HTTP status and the body.
using Fetch = std::function<int(const std::string &path, std::string &body)>;

struct Limits {
	size_t max_members = 200;  // members of one list subscription (every level)
	int max_depth = 8;         // nesting, references counted
};

struct Resolved {
	Node root;         // is_list, uri = the service URI
	size_t members = 0;
	std::vector<std::string> errors;  // references that could not be followed (logged, counted)
	bool truncated = false;           // max_members reached
};

// The service's list with every reference followed. root: the XCAP root URI (absolute
// references below it are fetched, others are errors: this server fetches only its own
// documents).
Resolved resolve(const Service &s, const std::string &root, const Fetch &fetch, const Limits &lim);

// An ad-hoc list (RFC 5367): the lists of a resource-lists document sent in a SUBSCRIBE body,
// resolved like a service's (references only into owner_xui's documents), named uri.
Resolved resolve_body(std::string_view resource_lists, const std::string &uri, const std::string &owner_xui,
		const std::string &root, const Fetch &fetch, const Limits &lim, std::string &why);

// Every member URI of a tree, once each, in document order.
std::vector<std::string> members_of(const Node &n);

// The tree as one string and back (kept with the list subscription).
std::string encode(const Node &n);
bool decode(const std::string &s, Node &out);

// "sip:Bob@A.example;x" -> "bob@a.example" (the presentity key imps_presence uses); "" when
// it is not a SIP URI with a user.
std::string presentity_of(const std::string &uri);

}  // namespace imps::rls
