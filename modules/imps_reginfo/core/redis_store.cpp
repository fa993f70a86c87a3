// Binding metadata of the reg event package, next to the AoR's subscriptions
// (<prefix>:{<aor>}:bind, hash contact id -> metadata); the script is lua/reginfo_binding.lua.
#include "store.hpp"

#include "imps/lua.hpp"
#include "imps/redis.hpp"

#include <cstdlib>

namespace imps::reginfo {
namespace {

std::string escape(const std::string &in)
{
	std::string out;
	out.reserve(in.size());
	for (char c : in) {
		if (c == '%') out += "%25";
		else if (c == '\t') out += "%09";
		else out += c;
	}
	return out;
}

std::string unescape(const std::string &in)
{
	std::string out;
	out.reserve(in.size());
	for (size_t i = 0; i < in.size(); ++i) {
		if (in.compare(i, 3, "%25") == 0) {
			out += '%';
			i += 2;
		} else if (in.compare(i, 3, "%09") == 0) {
			out += '\t';
			i += 2;
		} else {
			out += in[i];
		}
	}
	return out;
}

std::optional<BindingMeta> parse_meta(const std::string &v)
{
	// first \t expires \t first_cseq \t display \t params
	size_t pos[4];
	size_t from = 0;
	for (auto &p : pos) {
		p = v.find('\t', from);
		if (p == std::string::npos) return std::nullopt;
		from = p + 1;
	}
	BindingMeta m;
	m.first_registered = std::strtoll(v.substr(0, pos[0]).c_str(), nullptr, 10);
	m.expires_at = std::strtoll(v.substr(pos[0] + 1, pos[1] - pos[0] - 1).c_str(), nullptr, 10);
	m.first_cseq = std::strtoll(v.substr(pos[1] + 1, pos[2] - pos[1] - 1).c_str(), nullptr, 10);
	m.display_name = unescape(v.substr(pos[2] + 1, pos[3] - pos[2] - 1));
	m.params = unescape(v.substr(pos[3] + 1));
	return m;
}

std::map<std::string, BindingMeta> parse_meta_hash(const redisReply *r)
{
	std::map<std::string, BindingMeta> out;
	if (!r || r->type != REDIS_REPLY_ARRAY) return out;
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		auto m = parse_meta(reply_str(r->element[i + 1]));
		if (m) out.emplace(reply_str(r->element[i]), *m);
	}
	return out;
}

}  // namespace

BindingChangeResult BindingStore::binding_changed(const std::string &aor, const std::string &cid,
		bool removed, const BindingMeta &meta, bool keep_meta, long long ttl, long long now_ms,
		long long change_ms)
{
	const subs::Keys &k = subs_.keys();
	std::string now = std::to_string(now_ms), busy = subs_.busy_arg();
	std::string first = std::to_string(meta.first_registered);
	std::string exp = std::to_string(meta.expires_at);
	std::string rest = escape(meta.display_name) + '\t' + escape(meta.params);
	std::string ttls = std::to_string(ttl), fcseq = std::to_string(meta.first_cseq);
	std::vector<std::string> keys = k.script_keys(aor);
	keys.push_back(k.resource(aor, "bind"));
	Reply rep = subs_.redis().eval(lua_script("reginfo_binding"),
			std::vector<std::string_view>(keys.begin(), keys.end()),
			{now, busy, cid, removed ? "1" : "0", first, exp, rest, keep_meta ? "1" : "0", ttls,
					fcseq, std::to_string(change_ms ? change_ms : now_ms)});
	BindingChangeResult res;
	res.batch = subs_.parse_batch(rep.get());
	if (rep->elements < 5) throw RedisError("Redis: unexpected reply to a binding update");
	std::string old = reply_str(rep->element[3]);
	if (!old.empty()) res.previous = parse_meta(old);
	res.all = parse_meta_hash(rep->element[4]);
	subs_.index_due(aor, res.batch.due_ms);
	return res;
}

std::map<std::string, BindingMeta> BindingStore::bindings(const std::string &aor)
{
	Reply rep = subs_.redis().command({"HGETALL", subs_.keys().resource(aor, "bind")});
	return parse_meta_hash(rep.get());
}

}  // namespace imps::reginfo
