// PIDF (RFC 3863) documents of the presence service: the check of a PUBLISH body before it is
// stored, and the composition of every live publication of a presentity into the one document
// watchers get (RFC 4479 data model, RFC 4480 RPID and unknown extensions kept).
//
// Checking (validate_pidf), in this order; the first failure is the reason:
//   1. size: more than max_size bytes -> "body larger than <max_size> bytes" (before parsing);
//   2. libxml2 parse without network, entity substitution, DTD loading or default attributes;
//      a document type declaration stops the parser as soon as it is seen (SAX internalSubset,
//      before any entity declaration is read) -> "DOCTYPE not allowed"; a cheap search for
//      "<!DOCTYPE" in the bytes refuses the same earlier (also when it hides in a comment);
//      any well-formedness error -> "not well-formed XML at line N" (first error);
//   3. root: local name presence -> else "root element is not presence"; namespace
//      urn:ietf:params:xml:ns:pidf -> else "wrong namespace";
//   4. entity attribute: present -> else "presence without entity"; uri_identity(entity) equal to
//      the presentity -> else "entity does not name the presentity";
//   5. sanity bounds: element depth <= kMaxDepth -> "elements nested too deeply"; at most
//      kMaxElements elements -> "too many elements";
//   6. every pidf tuple under presence: non-empty id -> "tuple without id"; ids unique ->
//      "duplicate tuple id"; a pidf status child -> "tuple without status"; a pidf basic in
//      status, if present, is exactly "open" or "closed" -> "basic must be open or closed".
//
// Composition (compose), deterministic: the same sources in any order give the same bytes.
//   Source order: published_at descending (newest first), then etag, then body (bytes).
//   Output: <?xml version="1.0" encoding="UTF-8"?> then <presence xmlns="urn:ietf:params:xml:ns:pidf"
//   [xmlns:p="..."]... entity="..."> on one line, no indentation; whitespace-only text between
//   elements of the sources is dropped, text in leaf elements is kept as published; comments and
//   processing instructions are dropped. Every namespace used by a kept element or attribute is
//   declared once, on presence, in prefix order.
//   Top-level children, in the order the RFC 3863 schema requires (tuple*, note*, ##other*):
//   1. tuples: every pidf tuple of every source, ordered by contact@priority (higher first;
//      no contact, no priority or an unreadable one counts as 0), then the source order (newest
//      publication first, then etag), then document order. A tuple keeps its id unless an
//      earlier tuple in this order has it: it becomes "<id>-2" (or -3, ... the first free one).
//   2. notes: pidf notes directly under presence, one per xml:lang (no xml:lang = ""), from the
//      newest source that has one for that language; ordered by language.
//   3. dm:person: all persons of all sources merged into one. A person's time is its
//      dm:timestamp (xs:dateTime), else its source's published_at. For each kind of child
//      element (namespace + local name) the children of that kind come from the newest person
//      that has that kind (ties: source order, then document order); kinds ordered by namespace
//      URI then local name. dm:note: one per xml:lang, from the newest person that has one for
//      that language, ordered by language. dm:timestamp: the newest person's time, as that
//      person wrote it, or as UTC xs:dateTime when it came from published_at; omitted when no
//      person has a timestamp. Other dm children are dropped (the schema admits none). id: the
//      newest person's id.
//   4. dm:device: one per deviceID (whitespace trimmed); the newest wins (device dm:timestamp,
//      else published_at; ties: source order); ordered by deviceID. A device without deviceID
//      is dropped (the schema requires one).
//   5. every other top-level element of a non-pidf namespace (extensions), from every source in
//      source order, then document order.
//   xs:ID values (tuple, person and device ids) are unique in the output: a later one that
//   collides gets the "-N" suffix; an id that is not an NCName gets its bad characters replaced
//   by '_' (and a leading '_' when it does not start with a letter or '_').
//   Namespace prefixes: a namespace keeps the smallest prefix its publishers used for it; when
//   publishers used only the default namespace, a well-known prefix (dm, rpid, c, caps) or "ns".
//   If that prefix is taken by another namespace (namespaces are served in URI order), the
//   first free "<prefix>N" (N = 2, 3, ...) is used. pidf elements are unprefixed; a pidf
//   attribute (pidf:mustUnderstand) gets a prefix as well. QNames inside attribute values or
//   text are not rewritten.
//   entity: entity_uri; when empty, "sip:" + the identity of the newest source's entity.
//   No source (or none readable): offline_document(entity_uri).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace imps::presence {

inline constexpr const char *kPidfNs = "urn:ietf:params:xml:ns:pidf";
inline constexpr const char *kDataModelNs = "urn:ietf:params:xml:ns:pidf:data-model";
inline constexpr const char *kRpidNs = "urn:ietf:params:xml:ns:pidf:rpid";

inline constexpr int kMaxDepth = 32;         // presence is depth 1
inline constexpr int kMaxElements = 10000;

// Checks a PUBLISH body (application/pidf+xml) before anything is stored. Returns "" when the
// body is acceptable, else a short reason naming what is wrong, used as the SIP reason phrase
// "Bad Request (<reason>)", e.g. "DOCTYPE not allowed", "body larger than 65536 bytes",
// "not well-formed XML at line 3", "root element is not presence", "wrong namespace",
// "tuple without id", "basic must be open or closed", "entity does not name the presentity",
// "duplicate tuple id". presentity is "user@host" (canonical; host lower case).
std::string validate_pidf(std::string_view body, std::string_view presentity, size_t max_size);

// Canonical identity "user@host" of a sip:, sips: or pres: URI (host lower-cased, params and
// headers dropped); "" when it is not such a URI. The scheme is case-insensitive; the user
// part is kept byte for byte (a password after ':' is dropped), the port is dropped. A URI
// without user part, or with a host that is not a host name or IP literal, gives "".
std::string uri_identity(std::string_view uri);

struct Source {            // one live publication
	std::string etag;
	std::string body;      // as accepted by validate_pidf
	long long published_at = 0;  // unix time of the last PUBLISH with a body (modify/initial)
};
// One PIDF document from every live publication of presentity (entity attribute
// "sip:<presentity>" unless entity_uri given). Deterministic: the same inputs in any order give
// the same bytes. A body that does not parse is skipped. Throws std::runtime_error when
// libxml2 fails to write.
std::string compose(std::string_view entity_uri, const std::vector<Source> &sources);
// The document watchers get when no publication is live: one tuple (id "offline") with
// <status><basic>closed</basic></status>.
std::string offline_document(std::string_view entity_uri);

// xs:dateTime ("2005-05-30T16:09:44+05:00", fraction and zone optional; no zone = UTC) to unix
// time in milliseconds; false when it is not one.
bool parse_datetime(std::string_view s, long long &unix_ms);

}  // namespace imps::presence
