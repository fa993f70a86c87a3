#include "radius.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstring>
#include <stdexcept>

namespace imps::aaa {
namespace {

void set_why(std::string *why, const char *msg)
{
	if (why) *why = msg;
}

Authenticator md5(std::string_view a, std::string_view b = {})
{
	Authenticator out{};
	unsigned int len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx) throw std::bad_alloc();
	bool ok = EVP_DigestInit_ex(ctx, EVP_md5(), nullptr) == 1
			&& EVP_DigestUpdate(ctx, a.data(), a.size()) == 1
			&& EVP_DigestUpdate(ctx, b.data(), b.size()) == 1
			&& EVP_DigestFinal_ex(ctx, out.data(), &len) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok || len != 16) throw std::runtime_error("MD5 failed");
	return out;
}

Authenticator hmac_md5(std::string_view key, std::string_view data)
{
	Authenticator out{};
	unsigned int len = 0;
	if (!HMAC(EVP_md5(), key.data(), static_cast<int>(key.size()),
				reinterpret_cast<const unsigned char *>(data.data()), data.size(), out.data(), &len)
			|| len != 16)
		throw std::runtime_error("HMAC-MD5 failed");
	return out;
}

std::string_view as_sv(const Authenticator &a)
{
	return {reinterpret_cast<const char *>(a.data()), a.size()};
}

// Offset of the value of the first Message-Authenticator attribute in a wire packet, or 0.
size_t message_authenticator_offset(std::string_view w)
{
	size_t len = (static_cast<uint8_t>(w[2]) << 8) | static_cast<uint8_t>(w[3]);
	for (size_t i = kHeader; i + 2 <= len;) {
		uint8_t t = static_cast<uint8_t>(w[i]), l = static_cast<uint8_t>(w[i + 1]);
		if (l < 2) return 0;
		if (t == kMessageAuthenticator && l == 18) return i + 2;
		i += l;
	}
	return 0;
}

bool constant_time_eq(std::string_view a, std::string_view b)
{
	if (a.size() != b.size()) return false;
	unsigned char d = 0;
	for (size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
	return d == 0;
}

}  // namespace

std::string be32(uint32_t v)
{
	std::string s(4, '\0');
	s[0] = static_cast<char>(v >> 24);
	s[1] = static_cast<char>(v >> 16);
	s[2] = static_cast<char>(v >> 8);
	s[3] = static_cast<char>(v);
	return s;
}

std::optional<uint32_t> int_value(const Attribute &a)
{
	if (a.value.size() != 4) return std::nullopt;
	const auto *p = reinterpret_cast<const uint8_t *>(a.value.data());
	return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}

void Packet::add_int(uint8_t type, uint32_t v) { add(type, be32(v)); }

const Attribute *Packet::find(uint8_t type) const
{
	for (const auto &a : attrs)
		if (a.type == type && a.vendor == 0) return &a;
	return nullptr;
}

const Attribute *Packet::find_vsa(uint32_t vendor, uint8_t vtype) const
{
	for (const auto &a : attrs)
		if (a.type == kVendorSpecific && !a.opaque && a.vendor == vendor && a.vtype == vtype)
			return &a;
	return nullptr;
}

std::string encode(const Packet &p)
{
	std::string w;
	w.reserve(256);
	w += static_cast<char>(p.code);
	w += static_cast<char>(p.id);
	w.append(2, '\0');  // Length, set below
	w.append(as_sv(p.authenticator));
	for (const auto &a : p.attrs) {
		if (a.type == kVendorSpecific && a.opaque) {
			if (a.value.size() > 255 - 2 - 4) throw std::length_error("RADIUS VSA too long");
			w += static_cast<char>(kVendorSpecific);
			w += static_cast<char>(2 + 4 + a.value.size());
			w += be32(a.vendor);
			w += a.value;
		} else if (a.type == kVendorSpecific && a.vendor != 0) {
			if (a.value.size() > 255 - 2 - 4 - 2) throw std::length_error("RADIUS VSA too long");
			w += static_cast<char>(kVendorSpecific);
			w += static_cast<char>(2 + 4 + 2 + a.value.size());
			w += be32(a.vendor);
			w += static_cast<char>(a.vtype);
			w += static_cast<char>(2 + a.value.size());
			w += a.value;
		} else {
			if (a.value.size() > 253) throw std::length_error("RADIUS attribute too long");
			w += static_cast<char>(a.type);
			w += static_cast<char>(2 + a.value.size());
			w += a.value;
		}
	}
	if (w.size() > kMaxPacket) throw std::length_error("RADIUS packet too long");
	w[2] = static_cast<char>(w.size() >> 8);
	w[3] = static_cast<char>(w.size() & 0xff);
	return w;
}

std::optional<Packet> decode(std::string_view b, std::string *why)
{
	if (b.size() < kHeader) {
		set_why(why, "shorter than a RADIUS header");
		return std::nullopt;
	}
	size_t len = (static_cast<uint8_t>(b[2]) << 8) | static_cast<uint8_t>(b[3]);
	if (len < kHeader || len > kMaxPacket) {
		set_why(why, "Length field out of range");
		return std::nullopt;
	}
	if (len > b.size()) {
		set_why(why, "Length field longer than the datagram");
		return std::nullopt;
	}
	Packet p;
	p.code = static_cast<uint8_t>(b[0]);
	p.id = static_cast<uint8_t>(b[1]);
	std::memcpy(p.authenticator.data(), b.data() + 4, 16);
	size_t i = kHeader;
	while (i < len) {
		if (i + 2 > len) {
			set_why(why, "truncated attribute header");
			return std::nullopt;
		}
		uint8_t t = static_cast<uint8_t>(b[i]), l = static_cast<uint8_t>(b[i + 1]);
		if (l < 2 || i + l > len) {
			set_why(why, "attribute length out of range");
			return std::nullopt;
		}
		std::string_view v = b.substr(i + 2, l - 2);
		if (t == kVendorSpecific && v.size() >= 4) {
			uint32_t vendor = (uint32_t(uint8_t(v[0])) << 24) | (uint32_t(uint8_t(v[1])) << 16)
					| (uint32_t(uint8_t(v[2])) << 8) | uint8_t(v[3]);
			// RFC 2865 5.26 sub-attributes if the data parses as such, else one opaque
			// attribute: a vendor format of its own is not a malformed (forged) packet
			std::vector<Attribute> subs;
			size_t j = 4;
			bool tlv = j < v.size();
			while (tlv && j < v.size()) {
				uint8_t vt = static_cast<uint8_t>(v[j]);
				uint8_t vl = j + 1 < v.size() ? static_cast<uint8_t>(v[j + 1]) : 0;
				if (vl < 2 || j + vl > v.size()) {
					tlv = false;
					break;
				}
				subs.push_back({kVendorSpecific, vendor, vt, std::string(v.substr(j + 2, vl - 2))});
				j += vl;
			}
			if (tlv)
				p.attrs.insert(p.attrs.end(), subs.begin(), subs.end());
			else
				p.attrs.push_back({kVendorSpecific, vendor, 0, std::string(v.substr(4)), true});
		} else if (t == kVendorSpecific) {
			set_why(why, "vendor-specific attribute shorter than a vendor id");
			return std::nullopt;
		} else {
			p.attrs.push_back({t, 0, 0, std::string(v)});
		}
		i += l;
	}
	return p;
}

Authenticator random_authenticator()
{
	Authenticator a{};
	if (RAND_bytes(a.data(), static_cast<int>(a.size())) != 1)
		throw std::runtime_error("OpenSSL RAND_bytes failed");
	return a;
}

std::string hide_password(std::string_view pw, std::string_view secret, const Authenticator &ra)
{
	if (pw.size() > 128) throw std::length_error("User-Password longer than 128 octets");
	std::string padded(pw);
	padded.resize(pw.empty() ? 16 : (pw.size() + 15) / 16 * 16, '\0');
	std::string out;
	std::string_view prev = as_sv(ra);
	Authenticator b{};
	for (size_t i = 0; i < padded.size(); i += 16) {
		b = md5(secret, prev);
		for (size_t k = 0; k < 16; ++k) out += static_cast<char>(padded[i + k] ^ b[k]);
		prev = std::string_view(out).substr(i, 16);
	}
	return out;
}

std::string unhide_password(std::string_view hidden, std::string_view secret, const Authenticator &ra)
{
	if (hidden.empty() || hidden.size() % 16 != 0 || hidden.size() > 128) return {};
	std::string out;
	std::string_view prev = as_sv(ra);
	for (size_t i = 0; i < hidden.size(); i += 16) {
		Authenticator b = md5(secret, prev);
		for (size_t k = 0; k < 16; ++k) out += static_cast<char>(hidden[i + k] ^ b[k]);
		prev = hidden.substr(i, 16);
	}
	while (!out.empty() && out.back() == '\0') out.pop_back();
	return out;
}

std::string sign_request(Packet &p, std::string_view secret)
{
	// the Message-Authenticator goes first (as FreeRADIUS after Blast-RADIUS does)
	for (auto it = p.attrs.begin(); it != p.attrs.end();)
		it = it->type == kMessageAuthenticator && it->vendor == 0 ? p.attrs.erase(it) : it + 1;
	p.attrs.insert(p.attrs.begin(), Attribute{kMessageAuthenticator, 0, 0, std::string(16, '\0')});
	if (p.code == kAccountingRequest) {
		p.authenticator.fill(0);
	} else {
		p.authenticator = random_authenticator();
		// a clear-text User-Password is hidden with this request's authenticator
		for (auto &a : p.attrs)
			if (a.type == kUserPassword && a.vendor == 0) a.value = hide_password(a.value, secret, p.authenticator);
	}
	std::string w = encode(p);
	size_t off = message_authenticator_offset(w);
	Authenticator ma = hmac_md5(secret, w);
	std::memcpy(&w[off], ma.data(), 16);
	p.attrs.front().value.assign(as_sv(ma));
	if (p.code == kAccountingRequest) {
		Authenticator ra = md5(w, secret);
		std::memcpy(&w[4], ra.data(), 16);
		p.authenticator = ra;
	}
	return w;
}

std::optional<Packet> verify_response(std::string_view bytes, uint8_t request_id,
		const Authenticator &request_auth, std::string_view secret, std::string *why)
{
	auto p = decode(bytes, why);
	if (!p) return std::nullopt;
	if (p->id != request_id) {
		set_why(why, "identifier does not match the request");
		return std::nullopt;
	}
	size_t len = (static_cast<uint8_t>(bytes[2]) << 8) | static_cast<uint8_t>(bytes[3]);
	std::string w(bytes.substr(0, len));
	std::string resp_auth = w.substr(4, 16);
	std::memcpy(&w[4], request_auth.data(), 16);
	if (!constant_time_eq(as_sv(md5(w, secret)), resp_auth)) {
		set_why(why, "wrong Response Authenticator");
		return std::nullopt;
	}
	size_t off = message_authenticator_offset(w);
	if (off == 0) {
		// Accounting-Response carries no authorization; RFC 3579 does not require it there.
		if (p->code == kAccountingResponse) return p;
		set_why(why, "no Message-Authenticator");
		return std::nullopt;
	}
	std::string got = w.substr(off, 16);
	std::memset(&w[off], 0, 16);
	if (!constant_time_eq(as_sv(hmac_md5(secret, w)), got)) {
		set_why(why, "wrong Message-Authenticator");
		return std::nullopt;
	}
	return p;
}

bool verify_request(std::string_view bytes, std::string_view secret, std::string *why)
{
	auto p = decode(bytes, why);
	if (!p) return false;
	size_t len = (static_cast<uint8_t>(bytes[2]) << 8) | static_cast<uint8_t>(bytes[3]);
	std::string w(bytes.substr(0, len));
	size_t off = message_authenticator_offset(w);
	if (p->code == kAccountingRequest) {
		std::string ra = w.substr(4, 16);
		std::memset(&w[4], 0, 16);
		if (!constant_time_eq(as_sv(md5(w, secret)), ra)) {
			set_why(why, "wrong Accounting Request Authenticator");
			return false;
		}
		if (off == 0) return true;
	}
	if (off == 0) {
		set_why(why, "no Message-Authenticator");
		return false;
	}
	std::string got = w.substr(off, 16);
	std::memset(&w[off], 0, 16);
	if (!constant_time_eq(as_sv(hmac_md5(secret, w)), got)) {
		set_why(why, "wrong Message-Authenticator");
		return false;
	}
	return true;
}

std::string sign_response(Packet &resp, const Authenticator &request_auth, std::string_view secret,
		bool with_ma)
{
	for (auto it = resp.attrs.begin(); it != resp.attrs.end();)
		it = it->type == kMessageAuthenticator && it->vendor == 0 ? resp.attrs.erase(it) : it + 1;
	if (with_ma)
		resp.attrs.insert(resp.attrs.begin(), Attribute{kMessageAuthenticator, 0, 0, std::string(16, '\0')});
	resp.authenticator = request_auth;
	std::string w = encode(resp);
	if (with_ma) {
		size_t off = message_authenticator_offset(w);
		Authenticator ma = hmac_md5(secret, w);
		std::memcpy(&w[off], ma.data(), 16);
	}
	Authenticator ra = md5(w, secret);
	std::memcpy(&w[4], ra.data(), 16);
	resp.authenticator = ra;
	return w;
}

std::string digest_attribute(DigestSub sub, std::string_view value)
{
	if (value.size() > 251) throw std::length_error("Digest-Attributes value too long");
	std::string s;
	s += static_cast<char>(sub);
	s += static_cast<char>(2 + value.size());
	s.append(value);
	return s;
}

}  // namespace imps::aaa
