// RADIUS packets (RFC 2865, RFC 2866, RFC 3579, RFC 5997): a strict codec and the
// authenticators, with OpenSSL. Nothing here does I/O.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace imps::aaa {

enum Code : uint8_t {
	kAccessRequest = 1,
	kAccessAccept = 2,
	kAccessReject = 3,
	kAccountingRequest = 4,
	kAccountingResponse = 5,
	kAccessChallenge = 11,
	kStatusServer = 12,
};

// Attribute types the module uses (RFC 2865, 2866, 2869, 3579, draft-sterman digest).
enum AttrType : uint8_t {
	kUserName = 1,
	kUserPassword = 2,
	kNasIpAddress = 4,
	kNasPort = 5,
	kServiceType = 6,
	kReplyMessage = 18,
	kState = 24,
	kClass = 25,
	kVendorSpecific = 26,
	kSessionTimeout = 27,
	kCallingStationId = 31,
	kNasIdentifier = 32,
	kAcctStatusType = 40,
	kAcctDelayTime = 41,
	kAcctSessionId = 44,
	kAcctSessionTime = 46,
	kEventTimestamp = 55,
	kMessageAuthenticator = 80,
	kDigestResponse = 206,    // draft-sterman-aaa-sip, as FreeRADIUS 3.2's rlm_digest reads it
	kDigestAttributes = 207,  // draft-sterman sub-attributes (realm, nonce, method, uri, ...)
};

// Project vendor-specific attributes (shipped as a FreeRADIUS dictionary).
constexpr uint32_t kImpsVendorId = 64999;
enum ImpsVendorType : uint8_t {
	kImpsService = 1,     // string: register, publish, subscribe, query, list
	kImpsMaxExpires = 2,  // integer
};

constexpr size_t kMaxPacket = 4096;
constexpr size_t kHeader = 20;
using Authenticator = std::array<uint8_t, 16>;

struct Attribute {
	uint8_t type = 0;
	uint32_t vendor = 0;  // non-zero: a vendor-specific sub-attribute of type 26
	uint8_t vtype = 0;
	std::string value;
	// a Vendor-Specific attribute whose data is not in RFC 2865's sub-attribute format
	// (section 5.26 only recommends it; some vendors use their own): value is the data
	// after the Vendor-Id, kept as it came, vtype unused
	bool opaque = false;
};

struct Packet {
	uint8_t code = 0;
	uint8_t id = 0;
	Authenticator authenticator{};
	std::vector<Attribute> attrs;

	void add(uint8_t type, std::string value) { attrs.push_back({type, 0, 0, std::move(value)}); }
	void add_int(uint8_t type, uint32_t v);
	void add_vsa(uint32_t vendor, uint8_t vtype, std::string value)
	{
		attrs.push_back({kVendorSpecific, vendor, vtype, std::move(value)});
	}
	const Attribute *find(uint8_t type) const;
	const Attribute *find_vsa(uint32_t vendor, uint8_t vtype) const;
};

std::string be32(uint32_t v);
std::optional<uint32_t> int_value(const Attribute &a);

// Wire format; throws std::length_error when an attribute or the packet is too long.
std::string encode(const Packet &p);

// Parses a datagram. Rejects (nullopt, *why set) anything RFC 2865 section 3 says to drop: too
// short, a Length field shorter than 20 or longer than the datagram, attributes shorter than 2
// or running past Length, a malformed vendor-specific attribute. Octets past Length are
// ignored, as the RFC requires.
std::optional<Packet> decode(std::string_view bytes, std::string *why = nullptr);

// 16 octets from OpenSSL's random generator.
Authenticator random_authenticator();

// RFC 2865 5.2 User-Password hiding, and its inverse.
std::string hide_password(std::string_view password, std::string_view secret, const Authenticator &ra);
std::string unhide_password(std::string_view hidden, std::string_view secret, const Authenticator &ra);

// Builds a request ready to send: Access-Request and Status-Server get a random Request
// Authenticator (kept in p.authenticator) and a Message-Authenticator (RFC 3579, RFC 5997);
// Accounting-Request gets its Message-Authenticator and the RFC 2866 Request Authenticator.
// A User-Password attribute is given in clear and hidden here (RFC 2865 5.2).
std::string sign_request(Packet &p, std::string_view secret);

// Checks a response against the request it answers: identifier, Response Authenticator
// (RFC 2865 3) and a Message-Authenticator, which must be present and right (RFC 3579 3.2;
// its absence is how Blast-RADIUS forgeries look). Returns the parsed packet or nullopt with
// *why set.
std::optional<Packet> verify_response(std::string_view bytes, uint8_t request_id,
		const Authenticator &request_auth, std::string_view secret, std::string *why = nullptr);

// Checks a request as a server would (tests' responders): Message-Authenticator of
// Access-Request, Request Authenticator of Accounting-Request.
bool verify_request(std::string_view bytes, std::string_view secret, std::string *why = nullptr);

// Builds a response to `req` (tests' responders): Response Authenticator and, when
// with_message_authenticator, a Message-Authenticator.
std::string sign_response(Packet &resp, const Authenticator &request_auth, std::string_view secret,
		bool with_message_authenticator = true);

// draft-sterman Digest-Attributes sub-attribute types.
enum DigestSub : uint8_t {
	kDigRealm = 1,
	kDigNonce = 2,
	kDigMethod = 3,
	kDigUri = 4,
	kDigQop = 5,
	kDigAlgorithm = 6,
	kDigBodyDigest = 7,
	kDigCNonce = 8,
	kDigNonceCount = 9,
	kDigUserName = 10,
};
// One Digest-Attributes value: sub-type, length, data.
std::string digest_attribute(DigestSub sub, std::string_view value);

}  // namespace imps::aaa
