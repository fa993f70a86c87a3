// The publications of the presence package in Redis (key layout in store.hpp); scripts in
// lua/presence_*.lua, on top of the shared subscription scripts (modules/common/lua).
#include "store.hpp"

#include "imps/log.hpp"
#include "imps/lua.hpp"
#include "imps/redis.hpp"

#include <cstdlib>

namespace imps::presence {
namespace {

bool parse_pub(const std::string &etag, const std::string &raw, Publication &p)
{
	size_t a = raw.find('\t');
	if (a == std::string::npos) return false;
	size_t b = raw.find('\t', a + 1);
	if (b == std::string::npos) return false;
	size_t c = raw.find('\t', b + 1);
	if (c == std::string::npos) return false;
	p.etag = etag;
	p.expires_at = std::strtoll(raw.c_str(), nullptr, 10);
	p.published_at = std::strtoll(raw.c_str() + a + 1, nullptr, 10);
	p.source = raw.substr(b + 1, c - b - 1);
	p.body = raw.substr(c + 1);
	return true;
}

std::vector<std::string> keys_of(const subs::Keys &k, const std::string &pres)
{
	std::vector<std::string> keys = k.script_keys(pres);
	for (const char *kind : {"pub", "pexp", "meta"}) keys.push_back(k.resource(pres, kind));
	return keys;
}

std::vector<std::string_view> views(const std::vector<std::string> &v)
{
	return std::vector<std::string_view>(v.begin(), v.end());
}

}  // namespace

std::vector<Publication> parse_publications(const void *reply, size_t from)
{
	const auto *r = static_cast<const redisReply *>(reply);
	std::vector<Publication> out;
	if (!r || r->type != REDIS_REPLY_ARRAY) return out;
	for (size_t i = from; i + 1 < r->elements; i += 2) {
		Publication p;
		if (parse_pub(reply_str(r->element[i]), reply_str(r->element[i + 1]), p)) out.push_back(std::move(p));
	}
	return out;
}

PublishResult PublicationStore::publish(const std::string &pres, PubOp op, const std::string &if_match,
		const std::string &new_etag, const std::string &body, const std::string &source,
		long long expires_at, long long now, int max_publications, long long interval_ms,
		long long now_ms, bool replay)
{
	const subs::Keys &k = subs_.keys();
	const char *ops = op == PubOp::Initial ? "i" : op == PubOp::Refresh ? "r" : op == PubOp::Modify ? "m" : "x";
	auto keys = keys_of(k, pres);
	std::vector<std::string> args = {std::to_string(now_ms), subs_.busy_arg(), ops, if_match,
			new_etag, body, source, std::to_string(expires_at), std::to_string(now),
			std::to_string(max_publications), std::to_string(interval_ms), replay ? "1" : "0"};
	const std::string &script = lua_script("presence_publish");
	std::string sha, nkeys;
	int b = k.bucket_of(pres);
	std::string pexp_bucket = k.bucket("pexp", b), registry = k.bucket("pres", b),
			exp = std::to_string(expires_at);
	// one round trip: the script, the bucket index of publication expiry (only ever lowered)
	// and the registry of presentities
	std::vector<std::vector<std::string_view>> cmds = {
			Redis::evalsha_argv(script, sha, nkeys, views(keys), views(args))};
	if (op != PubOp::Remove) {
		cmds.push_back({"ZADD", pexp_bucket, "LT", exp, pres});
		cmds.push_back({"SADD", registry, pres});
	}
	std::vector<Reply> reps = subs_.redis().pipeline(cmds, {&script});
	const redisReply *rep = reps[0].get();
	if (rep->type == REDIS_REPLY_ERROR) throw RedisError("Redis error: " + std::string(rep->str, rep->len));
	PublishResult res;
	res.batch = subs_.parse_batch(rep);
	if (rep->elements < 4) throw RedisError("Redis: unexpected reply to PUBLISH");
	res.outcome = static_cast<int>(reply_int(rep->element[3]));
	long long purged = rep->elements > 7 ? reply_int(rep->element[7]) : 0;
	if (res.outcome == 1) {
		if (rep->elements < 8) throw RedisError("Redis: unexpected reply to PUBLISH");
		res.gen = static_cast<unsigned long long>(reply_int(rep->element[4]));
		res.changed = reply_int(rep->element[5]) == 1;
		res.live = parse_publications(rep, 8);
		subs_.index_due(pres, res.batch.due_ms);
	}
	// the count of live publications moves with an initial PUBLISH, a removal, and the
	// expired ones an initial PUBLISH collected
	long long delta = -purged;
	if (res.outcome == 1 && op == PubOp::Initial && res.changed) delta += 1;
	if (res.outcome == 1 && op == PubOp::Remove) delta -= 1;
	if (delta != 0) subs_.redis().command({"INCRBY", k.bucket("npub", b), std::to_string(delta)});
	return res;
}

std::vector<Publication> PublicationStore::publications(const std::string &pres, long long now,
		unsigned long long &gen)
{
	const subs::Keys &k = subs_.keys();
	Reply rep = subs_.redis().eval(lua_script("presence_read"),
			{k.resource(pres, "pub"), k.resource(pres, "meta")}, {std::to_string(now)});
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1)
		throw RedisError("Redis: unexpected reply to a publication read");
	gen = static_cast<unsigned long long>(reply_int(rep->element[0]));
	return parse_publications(rep.get(), 1);
}

std::vector<ExpiredPublications> PublicationStore::expire(long long now, long long now_ms,
		long long interval_ms, int limit, int &errors)
{
	const subs::Keys &k = subs_.keys();
	std::vector<ExpiredPublications> out;
	for (int b = 0; b < k.buckets() && limit > 0; ++b) {
		std::string bucket = k.bucket("pexp", b);
		Reply due = subs_.redis().command({"ZRANGEBYSCORE", bucket, "-inf", std::to_string(now),
				"WITHSCORES", "LIMIT", "0", std::to_string(limit)});
		if (due->type != REDIS_REPLY_ARRAY) continue;
		for (size_t i = 0; i + 1 < due->elements; i += 2, --limit) {
			std::string pres = reply_str(due->element[i]), old = reply_str(due->element[i + 1]);
			try {
				auto keys = keys_of(k, pres);
				Reply rep = subs_.redis().eval(lua_script("presence_expire"), views(keys),
						{std::to_string(now_ms), subs_.busy_arg(), std::to_string(now),
								std::to_string(interval_ms)});
				ExpiredPublications e;
				e.presentity = pres;
				e.batch = subs_.parse_batch(rep.get());
				if (rep->elements < 6) throw RedisError("Redis: unexpected reply to a publication expiry");
				long long removed = reply_int(rep->element[3]);
				e.gen = static_cast<unsigned long long>(reply_int(rep->element[4]));
				long long next = reply_int(rep->element[5]);
				e.live = parse_publications(rep.get(), 6);
				subs_.redis().eval(lua_script("bucket_fix"), {bucket}, {pres, old, std::to_string(next)});
				subs_.index_due(pres, e.batch.due_ms);
				if (removed > 0) {
					subs_.redis().command({"INCRBY", k.bucket("npub", b), std::to_string(-removed)});
					out.push_back(std::move(e));
				}
			} catch (const std::exception &ex) {
				// one presentity that fails never keeps the others of the batch back
				++errors;
				IMPS_ERR("timer: expired publications of %s failed: %s", pres.c_str(), ex.what());
			}
		}
	}
	return out;
}

void PublicationStore::remember(const std::string &pres)
{
	const subs::Keys &k = subs_.keys();
	subs_.redis().command({"SADD", k.bucket("pres", k.bucket_of(pres)), pres});
}

std::vector<std::string> PublicationStore::scan(int bucket, unsigned long long &cursor, int count)
{
	const subs::Keys &k = subs_.keys();
	Reply rep = subs_.redis().command({"SSCAN", k.bucket("pres", bucket), std::to_string(cursor), "COUNT",
			std::to_string(count)});
	std::vector<std::string> out;
	cursor = 0;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) return out;
	cursor = std::strtoull(reply_str(rep->element[0]).c_str(), nullptr, 10);
	for (size_t i = 0; i < rep->element[1]->elements; ++i) out.push_back(reply_str(rep->element[1]->element[i]));
	return out;
}

std::vector<Summary> PublicationStore::list(int limit, long long now)
{
	const subs::Keys &k = subs_.keys();
	std::vector<Summary> out;
	for (int b = 0; b < k.buckets() && static_cast<int>(out.size()) < limit; ++b) {
		std::string registry = k.bucket("pres", b);
		unsigned long long cursor = 0;
		do {
			Reply rep = subs_.redis().command({"SSCAN", registry, std::to_string(cursor), "COUNT", "100"});
			if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) break;
			cursor = std::strtoull(reply_str(rep->element[0]).c_str(), nullptr, 10);
			const redisReply *m = rep->element[1];
			for (size_t i = 0; i < m->elements && static_cast<int>(out.size()) < limit; ++i) {
				std::string pres = reply_str(m->element[i]);
				unsigned long long gen = 0;
				long long pubs = static_cast<long long>(publications(pres, now, gen).size());
				long long watchers = static_cast<long long>(subs_.of(pres, "presence").size());
				long long winfo = watchers ? 0 : static_cast<long long>(subs_.of(pres, "presence.winfo").size());
				if (pubs == 0 && watchers == 0 && winfo == 0) {
					subs_.redis().command({"SREM", registry, pres});  // nothing left
					continue;
				}
				out.push_back({pres, pubs, watchers});
			}
		} while (cursor != 0 && static_cast<int>(out.size()) < limit);
	}
	return out;
}

long long PublicationStore::count_publications()
{
	const subs::Keys &k = subs_.keys();
	long long n = 0;
	for (int b = 0; b < k.buckets(); ++b) n += reply_int(subs_.redis().command({"GET", k.bucket("npub", b)}).get());
	return n < 0 ? 0 : n;
}

}  // namespace imps::presence
