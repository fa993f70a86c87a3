#include "aaa.hpp"

#include "imps/log.hpp"
#include "imps/redis.hpp"

namespace imps::aaa {
namespace {

constexpr uint32_t kAuthorizeOnly = 17;  // Service-Type (RFC 5080/3576)

std::string field(const std::string &v, size_t idx)
{
	size_t start = 0;
	for (size_t i = 0; i < idx; ++i) {
		start = v.find('\x1f', start);
		if (start == std::string::npos) return {};
		++start;
	}
	size_t end = v.find('\x1f', start);
	return v.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

std::string no_sep(std::string s)
{
	for (char &c : s)
		if (c == '\x1f') c = ' ';
	return s;
}

}  // namespace

Aaa::Aaa(AaaConfig cfg, Redis *redis, StatFn stat)
	: cfg_(std::move(cfg)), auth_(cfg_.auth), acct_(cfg_.acct), redis_(redis), stat_(std::move(stat))
{
}

Result Aaa::send(Client &c, Packet p)
{
	p.add(kNasIdentifier, cfg_.nas_identifier);
	uint64_t forged = c.forged();
	uint64_t timeouts = 0, failovers = 0;
	for (const auto &s : c.servers()) timeouts += s.timeouts, failovers += s.failovers;
	Result r = c.send(std::move(p));
	uint64_t t2 = 0, f2 = 0;
	for (const auto &s : c.servers()) t2 += s.timeouts, f2 += s.failovers;
	stat_(AaaStat::Requests, 1);
	if (t2 > timeouts) stat_(AaaStat::Timeouts, static_cast<long long>(t2 - timeouts));
	if (f2 > failovers) stat_(AaaStat::Failovers, static_cast<long long>(f2 - failovers));
	if (c.forged() > forged) stat_(AaaStat::Forged, static_cast<long long>(c.forged() - forged));
	if (r.outcome == Outcome::Accept || r.outcome == Outcome::AccountingOk) stat_(AaaStat::Accepts, 1);
	if (r.outcome == Outcome::Reject) stat_(AaaStat::Rejects, 1);
	return r;
}

AuthResult Aaa::authenticate(const Digest &d, std::string *error)
{
	Packet p;
	p.code = kAccessRequest;
	p.add(kUserName, d.user.empty() ? d.username : d.user);
	p.add(kDigestResponse, d.response);
	auto sub = [&](DigestSub t, const std::string &v) {
		if (!v.empty()) p.add(kDigestAttributes, digest_attribute(t, v));
	};
	sub(kDigRealm, d.realm);
	sub(kDigNonce, d.nonce);
	sub(kDigMethod, d.method);
	sub(kDigUri, d.uri);
	sub(kDigQop, d.qop);
	sub(kDigAlgorithm, d.algorithm);
	sub(kDigCNonce, d.cnonce);
	sub(kDigNonceCount, d.nc);
	sub(kDigUserName, d.username);
	Result r = send(auth_, std::move(p));
	if (r.outcome == Outcome::Accept) return AuthResult::Ok;
	if (r.outcome == Outcome::Reject) {
		const Attribute *m = r.reply.find(kReplyMessage);
		if (m && m->value == "unknown subscriber") return AuthResult::UnknownUser;
		return AuthResult::InvalidPassword;
	}
	if (error) *error = r.error;
	return AuthResult::Unavailable;
}

std::optional<Decision> Aaa::cached(const std::string &identity, const std::string &service)
{
	if (!redis_) return std::nullopt;
	const std::string key = cfg_.cache_prefix + ":authz:" + identity + ":" + service;
	try {
		Reply rep = redis_->command({"GET", key});
		std::string v = reply_str(rep.get());
		if (v.empty()) {
			stat_(AaaStat::CacheMisses, 1);
			return std::nullopt;
		}
		stat_(AaaStat::CacheHits, 1);
		Decision d;
		d.from_cache = true;
		d.kind = field(v, 0) == "A" ? Decision::Accept : Decision::Reject;
		d.klass = field(v, 1);
		std::string me = field(v, 2);
		d.max_expires = me.empty() ? -1 : std::strtoll(me.c_str(), nullptr, 10);
		d.reply_message = field(v, 3);
		return d;
	} catch (const std::exception &e) {
		IMPS_WARN("authorization cache unavailable: %s", e.what());
	}
	return std::nullopt;
}

Decision Aaa::authorize(const std::string &identity, const std::string &service, bool use_cache)
{
	const std::string key = cfg_.cache_prefix + ":authz:" + identity + ":" + service;
	Decision d;
	if (use_cache)
		if (auto c = cached(identity, service)) return *c;
	Packet p;
	p.code = kAccessRequest;
	p.add(kUserName, identity);
	p.add_int(kServiceType, kAuthorizeOnly);
	p.add_vsa(kImpsVendorId, kImpsService, service);
	Result r = send(auth_, std::move(p));
	if (r.outcome != Outcome::Accept && r.outcome != Outcome::Reject) {
		d.kind = Decision::Unavailable;  // never cached
		d.error = r.error;
		return d;
	}
	d.kind = r.outcome == Outcome::Accept ? Decision::Accept : Decision::Reject;
	if (const Attribute *a = r.reply.find(kClass)) d.klass = a->value;
	if (const Attribute *a = r.reply.find_vsa(kImpsVendorId, kImpsMaxExpires))
		if (auto v = int_value(*a)) d.max_expires = *v;
	if (const Attribute *a = r.reply.find(kReplyMessage)) d.reply_message = a->value;
	if (redis_) {
		try {
			std::string v = std::string(d.kind == Decision::Accept ? "A" : "R") + '\x1f' + no_sep(d.klass)
					+ '\x1f' + (d.max_expires >= 0 ? std::to_string(d.max_expires) : "") + '\x1f'
					+ no_sep(d.reply_message);
			int ttl = d.kind == Decision::Accept ? cfg_.cache_positive_ttl : cfg_.cache_negative_ttl;
			if (ttl > 0) redis_->command({"SET", key, v, "EX", std::to_string(ttl)});
		} catch (const std::exception &e) {
			IMPS_WARN("authorization not cached: %s", e.what());
		}
	}
	return d;
}

bool Aaa::account(const std::string &user, const std::string &session_id, uint32_t status,
		std::string *error)
{
	Packet p;
	p.code = kAccountingRequest;
	p.add_int(kAcctStatusType, status);
	p.add(kAcctSessionId, session_id);
	p.add(kUserName, user);
	p.add_int(kEventTimestamp, static_cast<uint32_t>(time(nullptr)));
	Result r = send(acct_, std::move(p));
	if (r.outcome == Outcome::AccountingOk) return true;
	if (error) *error = r.error;
	return false;
}

long long Aaa::flush(const std::string &identity)
{
	if (!redis_) return 0;
	const std::string pattern = cfg_.cache_prefix + ":authz:" + (identity.empty() ? "*" : identity + ":*");
	long long n = 0;
	std::string cursor = "0";
	do {
		Reply rep = redis_->command({"SCAN", cursor, "MATCH", pattern, "COUNT", "500"});
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) break;
		cursor = reply_str(rep->element[0]);
		const redisReply *keys = rep->element[1];
		for (size_t i = 0; i < keys->elements; ++i)
			n += reply_int(redis_->command({"DEL", reply_str(keys->element[i])}).get());
	} while (cursor != "0");
	return n;
}

}  // namespace imps::aaa
