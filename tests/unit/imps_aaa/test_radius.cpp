// RADIUS codec and authenticators (RFC 2865, 2866, 3579): RFC examples, round trips, forged
// and malformed packets.
#include "imps_aaa/core/radius.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <string>

using namespace imps::aaa;

namespace {

std::string unhex(const std::string &h)
{
	std::string out;
	for (size_t i = 0; i + 1 < h.size();) {
		if (h[i] == ' ') {
			++i;
			continue;
		}
		out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
		i += 2;
	}
	return out;
}

// RFC 2865 section 7.1: Access-Request from NAS 192.168.1.16 for user nemo, password
// arctangent, shared secret xyzzy5461, and the Access-Accept that answers it.
const std::string kRfcRequest = unhex(
		"01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb 98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be"
		" 70 8d 93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8 01 10 05 06 00 00 00 03");
const std::string kRfcAccept = unhex(
		"02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf 9b 55 e0 b2 06 06 00 00 00 01 0f 06 00 00"
		" 00 00 0e 06 c0 a8 01 03");
const std::string kSecret = "xyzzy5461";

}  // namespace

TEST(RadiusRfc2865, DecodesTheExampleAccessRequest)
{
	std::string why;
	auto p = decode(kRfcRequest, &why);
	ASSERT_TRUE(p) << why;
	EXPECT_EQ(p->code, kAccessRequest);
	EXPECT_EQ(p->id, 0);
	ASSERT_EQ(p->attrs.size(), 4u);
	EXPECT_EQ(p->find(kUserName)->value, "nemo");
	EXPECT_EQ(int_value(*p->find(kNasPort)), 3u);
	EXPECT_EQ(encode(*p), kRfcRequest);
}

TEST(RadiusRfc2865, UserPasswordHidingMatchesTheExample)
{
	auto p = decode(kRfcRequest);
	ASSERT_TRUE(p);
	const std::string &hidden = p->find(kUserPassword)->value;
	EXPECT_EQ(hide_password("arctangent", kSecret, p->authenticator), hidden);
	EXPECT_EQ(unhide_password(hidden, kSecret, p->authenticator), "arctangent");
}

TEST(RadiusRfc2865, ResponseAuthenticatorOfTheExampleAccept)
{
	auto req = decode(kRfcRequest);
	ASSERT_TRUE(req);
	// The RFC's Accept has no Message-Authenticator: the Response Authenticator checks out,
	// and then the reply is refused for lacking one (RFC 3579, Blast-RADIUS).
	std::string why;
	EXPECT_FALSE(verify_response(kRfcAccept, 0, req->authenticator, kSecret, &why));
	EXPECT_EQ(why, "no Message-Authenticator");
	EXPECT_FALSE(verify_response(kRfcAccept, 0, req->authenticator, "wrong", &why));
	EXPECT_EQ(why, "wrong Response Authenticator");
}

TEST(RadiusPassword, LongPasswordsChainBlocks)
{
	Authenticator ra = random_authenticator();
	std::string pw(40, 'x');
	pw[17] = 'y';
	std::string h = hide_password(pw, "s3cret", ra);
	EXPECT_EQ(h.size(), 48u);
	EXPECT_EQ(unhide_password(h, "s3cret", ra), pw);
	EXPECT_NE(unhide_password(h, "other", ra), pw);
	EXPECT_EQ(hide_password("", "s", ra).size(), 16u);
	EXPECT_THROW(hide_password(std::string(129, 'a'), "s", ra), std::length_error);
}

TEST(RadiusSigning, AccessRequestCarriesARightMessageAuthenticator)
{
	Packet p;
	p.code = kAccessRequest;
	p.id = 42;
	p.add(kUserName, "alice@a.example");
	p.add_vsa(kImpsVendorId, kImpsService, "publish");
	std::string w = sign_request(p, "testing123");
	std::string why;
	EXPECT_TRUE(verify_request(w, "testing123", &why)) << why;
	EXPECT_FALSE(verify_request(w, "testing124", &why));
	EXPECT_EQ(why, "wrong Message-Authenticator");
	auto d = decode(w);
	ASSERT_TRUE(d);
	EXPECT_EQ(d->attrs.front().type, kMessageAuthenticator);
	EXPECT_EQ(d->find_vsa(kImpsVendorId, kImpsService)->value, "publish");
	// two requests never share a Request Authenticator
	Packet q = p;
	sign_request(q, "testing123");
	EXPECT_NE(q.authenticator, p.authenticator);
}

TEST(RadiusSigning, AccountingRequestAuthenticator)
{
	Packet p;
	p.code = kAccountingRequest;
	p.id = 7;
	p.add_int(kAcctStatusType, 1);
	p.add(kAcctSessionId, "sess-1");
	std::string w = sign_request(p, "acct-secret");
	std::string why;
	EXPECT_TRUE(verify_request(w, "acct-secret", &why)) << why;
	w[30] ^= 1;  // tamper with an attribute
	EXPECT_FALSE(verify_request(w, "acct-secret", &why));
}

TEST(RadiusResponse, AcceptedOnlyWithRightAuthenticatorsAndId)
{
	Packet req;
	req.code = kAccessRequest;
	req.id = 9;
	req.add(kUserName, "bob");
	sign_request(req, "sec");
	Packet resp;
	resp.code = kAccessAccept;
	resp.id = 9;
	resp.add(kReplyMessage, "welcome");
	resp.add_vsa(kImpsVendorId, kImpsMaxExpires, be32(1800));
	std::string good = sign_response(resp, req.authenticator, "sec");
	std::string why;
	auto ok = verify_response(good, 9, req.authenticator, "sec", &why);
	ASSERT_TRUE(ok) << why;
	EXPECT_EQ(ok->find(kReplyMessage)->value, "welcome");
	EXPECT_EQ(int_value(*ok->find_vsa(kImpsVendorId, kImpsMaxExpires)), 1800u);

	EXPECT_FALSE(verify_response(good, 10, req.authenticator, "sec", &why));
	EXPECT_EQ(why, "identifier does not match the request");

	Packet r2 = resp;
	std::string no_ma = sign_response(r2, req.authenticator, "sec", false);
	EXPECT_FALSE(verify_response(no_ma, 9, req.authenticator, "sec", &why));
	EXPECT_EQ(why, "no Message-Authenticator");

	// a forger who cannot compute the HMAC: a wrong Message-Authenticator, with a Response
	// Authenticator that matches (what an MD5-collision forgery achieves)
	Packet f = resp;
	f.attrs.front().value = std::string(16, 'x');
	f.authenticator = req.authenticator;
	std::string fw = encode(f);
	unsigned char md[16];
	unsigned int mdlen = 0;
	std::string input = fw + "sec";
	EVP_Digest(input.data(), input.size(), md, &mdlen, EVP_md5(), nullptr);
	fw.replace(4, 16, reinterpret_cast<const char *>(md), 16);
	EXPECT_FALSE(verify_response(fw, 9, req.authenticator, "sec", &why));
	EXPECT_EQ(why, "wrong Message-Authenticator");

	// the wrong request authenticator (a late reply to an earlier request with the same id)
	Authenticator other = random_authenticator();
	EXPECT_FALSE(verify_response(good, 9, other, "sec", &why));
	EXPECT_EQ(why, "wrong Response Authenticator");
}

TEST(RadiusDecode, RejectsMalformedPacketsWithoutOverrun)
{
	Packet p;
	p.code = kAccessAccept;
	p.id = 1;
	p.add(kReplyMessage, "hello");
	std::string w = encode(p);
	std::string why;
	EXPECT_FALSE(decode(w.substr(0, 19), &why));
	EXPECT_EQ(why, "shorter than a RADIUS header");
	std::string lie = w;
	lie[3] = static_cast<char>(w.size() + 10);  // Length says more than the datagram
	EXPECT_FALSE(decode(lie, &why));
	EXPECT_EQ(why, "Length field longer than the datagram");
	std::string tiny = w;
	tiny[3] = 10;
	EXPECT_FALSE(decode(tiny, &why));
	EXPECT_EQ(why, "Length field out of range");
	std::string over = w;
	over[21] = 60;  // attribute runs past the end
	EXPECT_FALSE(decode(over, &why));
	EXPECT_EQ(why, "attribute length out of range");
	std::string zero = w;
	zero[21] = 0;
	EXPECT_FALSE(decode(zero, &why));
	std::string one = w;
	one[21] = 1;
	EXPECT_FALSE(decode(one, &why));
	// trailing octets past Length are ignored (RFC 2865 3)
	auto padded = decode(w + std::string(10, '\xff'), &why);
	ASSERT_TRUE(padded) << why;
	EXPECT_EQ(padded->find(kReplyMessage)->value, "hello");
}

TEST(RadiusDecode, VendorSpecificBounds)
{
	Packet p;
	p.code = kAccessAccept;
	p.add_vsa(kImpsVendorId, kImpsService, "subscribe");
	std::string w = encode(p);
	std::string why;
	ASSERT_TRUE(decode(w, &why)) << why;
	std::string shortv = unhex("02 01 00 17 00000000000000000000000000000000 1a 03 00");
	EXPECT_FALSE(decode(shortv, &why));
	EXPECT_EQ(why, "vendor-specific attribute shorter than a vendor id");
}

TEST(RadiusEncode, RefusesOversizedAttributes)
{
	Packet p;
	p.code = kAccessRequest;
	p.add(kUserName, std::string(254, 'a'));
	EXPECT_THROW(encode(p), std::length_error);
	Packet q;
	q.code = kAccessRequest;
	for (int i = 0; i < 20; ++i) q.add(kReplyMessage, std::string(250, 'b'));
	EXPECT_THROW(encode(q), std::length_error);
}

TEST(RadiusDigest, DigestAttributesLayout)
{
	EXPECT_EQ(digest_attribute(kDigRealm, "a.example"), std::string("\x01\x0b", 2) + "a.example");
	EXPECT_THROW(digest_attribute(kDigUri, std::string(252, 'u')), std::length_error);
}

TEST(RadiusDecode, VendorDataNotInSubAttributeFormatIsKeptOpaque)
{
	// RFC 2865 5.26 only recommends the sub-attribute format: a vendor's own layout (here a
	// length that does not fit, a lone octet, no data at all) is kept as it came, not taken
	// for a malformed or forged reply
	Packet p;
	p.code = kAccessAccept;
	p.add_vsa(kImpsVendorId, kImpsService, "subscribe");
	std::string w = encode(p);
	std::string odd = w;
	odd[20 + 2 + 4 + 1] = 50;  // not a sub-attribute length
	for (const std::string &pkt :
			{odd, unhex("02 01 00 1b 00000000000000000000000000000000 1a 07 00000009 ab"),
					unhex("02 01 00 1a 00000000000000000000000000000000 1a 06 00000009")}) {
		std::string why;
		auto d = decode(pkt, &why);
		ASSERT_TRUE(d) << why;
		ASSERT_EQ(d->attrs.size(), 1u);
		const Attribute &a = d->attrs[0];
		EXPECT_TRUE(a.opaque);
		EXPECT_EQ(a.type, kVendorSpecific);
		EXPECT_EQ(a.value, pkt.substr(20 + 2 + 4));
		EXPECT_EQ(d->find_vsa(a.vendor, kImpsService), nullptr);  // nothing read into it
		EXPECT_EQ(encode(*d), pkt);  // and written back as it came
	}
	auto good = decode(w);
	ASSERT_TRUE(good);
	EXPECT_FALSE(good->attrs[0].opaque);
	EXPECT_EQ(good->find_vsa(kImpsVendorId, kImpsService)->value, "subscribe");
}
