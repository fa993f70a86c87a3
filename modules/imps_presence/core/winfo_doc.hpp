// The RFC 3858 watcher information document (application/watcherinfo+xml) that a presentity
// subscribed to presence.winfo (RFC 3857) receives about the watchers of its presence.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace imps::presence {

// One watcher (one subscription to the resource) as it appears in a document.
struct WatcherEntry {
	std::string id;            // stable watcher id (a hash of the subscription)
	std::string uri;           // watcher URI, e.g. "sip:bob@a.example"
	std::string display_name;  // may be empty: the attribute is omitted
	std::string status;        // pending | active | waiting | terminated
	std::string event;         // subscribe | approved | deactivated | probation | rejected |
	                           // timeout | giveup | noresource
	long long duration_subscribed = -1;  // seconds; -1 (any negative) omits the attribute
	long long expiration = -1;           // seconds; -1 (any negative) omits the attribute
};

// Serializes
//   <watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version=".." state="full|partial">
//     <watcher-list resource="<resource_uri>" package="presence"> <watcher .../>... </watcher-list>
//   </watcherinfo>
// with the watchers in the order given. status and event are written as given: values outside
// the RFC 3858 enumerations make the document schema-invalid (never ill-formed). Every string is
// escaped, and control characters, invalid UTF-8 and non-characters are replaced (a space for
// C0 controls and DEL, U+FFFD otherwise), so bytes from the wire cannot make the document
// ill-formed. URIs are otherwise written verbatim: a URI that is not an xs:anyURI (a stray '%',
// an IPv6 reference "sip:a@[::1]" by libxml2's reading) keeps the document well-formed but not
// schema-valid. Throws std::runtime_error when libxml2 fails.
std::string winfo_document(unsigned long long version, bool full, std::string_view resource_uri,
		const std::vector<WatcherEntry> &watchers);

}  // namespace imps::presence
