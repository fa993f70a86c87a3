// extern "C" entry points of imps_aaa: POD in, POD out, no exception out.
#include "../imps_aaa_capi.h"

#include "aaa.hpp"
#include "imps/log.hpp"
#include "imps/redis.hpp"

#include <cstring>
#include <memory>
#include <sstream>

using namespace imps::aaa;

using imps::to_imps_str;
using imps::to_string;

namespace {

struct Process {
	imps_aaa_host_t host{};
	std::unique_ptr<imps::Redis> redis;
	std::unique_ptr<Aaa> aaa;
};
Process *g_proc = nullptr;




// "ip:port:secret;ip:port:secret" (IPv6 in brackets: "[::1]:1812:secret")
std::vector<ServerConfig> parse_servers(const char *spec)
{
	std::vector<ServerConfig> out;
	if (!spec) return out;
	std::stringstream ss(spec);
	std::string item;
	while (std::getline(ss, item, ';')) {
		if (item.empty()) continue;
		ServerConfig s;
		size_t hp_end;
		if (item[0] == '[') {
			size_t rb = item.find(']');
			if (rb == std::string::npos) throw std::invalid_argument("bad server: " + item);
			s.host = item.substr(1, rb - 1);
			hp_end = rb + 1;
		} else {
			hp_end = item.find(':');
			if (hp_end == std::string::npos) throw std::invalid_argument("bad server: " + item);
			s.host = item.substr(0, hp_end);
		}
		if (hp_end >= item.size() || item[hp_end] != ':') throw std::invalid_argument("bad server: " + item);
		size_t pe = item.find(':', hp_end + 1);
		if (pe == std::string::npos) throw std::invalid_argument("server without secret: " + s.host);
		std::string port = item.substr(hp_end + 1, pe - hp_end - 1);
		if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos
				|| std::stoi(port) < 1 || std::stoi(port) > 65535)
			throw std::invalid_argument("bad port in server: " + item);
		s.port = static_cast<uint16_t>(std::stoi(port));
		s.secret = item.substr(pe + 1);
		if (s.secret.empty()) throw std::invalid_argument("server without secret: " + s.host);
		out.push_back(s);
	}
	return out;
}

}  // namespace

extern "C" {

int imps_aaa_open(const imps_aaa_config_t *cfg, const imps_aaa_host_t *host) noexcept
{
	try {
		imps_aaa_close();
		imps::set_log_sink(host->log);
		auto p = std::make_unique<Process>();
		p->host = *host;
		AaaConfig c;
		c.auth.servers = parse_servers(cfg->auth_servers);
		c.acct.servers = parse_servers(cfg->acct_servers);
		static_assert(sizeof(std::atomic<int64_t>) == sizeof(long long)
						&& std::atomic<int64_t>::is_always_lock_free,
				"shared server state needs address-free 64-bit atomics");
		c.auth.shared_dead_until = reinterpret_cast<std::atomic<int64_t> *>(cfg->shared_auth_state);
		c.acct.shared_dead_until = reinterpret_cast<std::atomic<int64_t> *>(cfg->shared_acct_state);
		for (ClientConfig *cc : {&c.auth, &c.acct}) {
			cc->background_probe = cfg->background_probe != 0;
			cc->timeout_ms = cfg->timeout_ms;
			cc->retries = cfg->retries;
			cc->budget_ms = cfg->budget_ms;
			cc->dead_time_s = cfg->dead_time_s;
		}
		c.nas_identifier = cfg->nas_identifier ? cfg->nas_identifier : "imps";
		c.cache_prefix = cfg->cache_prefix ? cfg->cache_prefix : "imps:aaa";
		c.cache_positive_ttl = cfg->cache_positive_ttl;
		c.cache_negative_ttl = cfg->cache_negative_ttl;
		if (cfg->redis_host && *cfg->redis_host) {
			imps::RedisConfig rc;
			rc.host = cfg->redis_host;
			rc.port = cfg->redis_port;
			rc.password = cfg->redis_password ? cfg->redis_password : "";
			rc.db = cfg->redis_db;
			rc.timeout_ms = rc.connect_timeout_ms = cfg->redis_timeout_ms;
			p->redis = std::make_unique<imps::Redis>(rc);
		}
		imps_aaa_host_t h = *host;
		p->aaa = std::make_unique<Aaa>(c, p->redis.get(), [h](AaaStat s, long long d) {
			if (h.stat) h.stat(static_cast<int>(s), d);
		});
		g_proc = p.release();
		return 0;
	} catch (const std::exception &e) {
		IMPS_ERR("imps_aaa: %s", e.what());
	} catch (...) {
	}
	return -1;
}

void imps_aaa_close(void) noexcept
{
	delete g_proc;
	g_proc = nullptr;
}

int imps_aaa_authenticate(const imps_aaa_digest_t *d, char *error, size_t error_len) noexcept
{
	try {
		if (!g_proc) return -5;
		Digest dg;
		dg.username = to_string(d->username);
		dg.realm = to_string(d->realm);
		dg.nonce = to_string(d->nonce);
		dg.uri = to_string(d->uri);
		dg.method = to_string(d->method);
		dg.qop = to_string(d->qop);
		dg.algorithm = to_string(d->algorithm);
		dg.cnonce = to_string(d->cnonce);
		dg.nc = to_string(d->nc);
		dg.response = to_string(d->response);
		std::string err;
		int r = static_cast<int>(g_proc->aaa->authenticate(dg, &err));
		imps::copy_out(error, error_len, err);
		return r;
	} catch (const std::length_error &e) {
		imps::copy_out(error, error_len, e.what());
		return -6;
	} catch (const std::exception &e) {
		imps::copy_out(error, error_len, e.what());
	} catch (...) {
	}
	return -5;
}

static void clear_decision(imps_aaa_decision_t *out) noexcept
{
	out->result = -2;
	out->from_cache = 0;
	out->max_expires = -1;
	out->klass[0] = out->reply_message[0] = out->error[0] = '\0';
}

static void fill_decision(const Decision &d, imps_aaa_decision_t *out) noexcept
{
	out->result = static_cast<int>(d.kind);
	out->from_cache = d.from_cache ? 1 : 0;
	out->max_expires = d.max_expires;
	imps::copy_out(out->klass, sizeof(out->klass), d.klass);
	imps::copy_out(out->reply_message, sizeof(out->reply_message), d.reply_message);
	imps::copy_out(out->error, sizeof(out->error), d.error);
}

int imps_aaa_authorize(imps_str_t identity, imps_str_t service, int use_cache,
		imps_aaa_decision_t *out) noexcept
{
	clear_decision(out);
	try {
		if (!g_proc) return -2;
		fill_decision(g_proc->aaa->authorize(to_string(identity), to_string(service), use_cache != 0), out);
		return out->result;
	} catch (const std::exception &e) {
		imps::copy_out(out->error, sizeof(out->error), e.what());
	} catch (...) {
	}
	return -2;
}

int imps_aaa_authorize_cached(imps_str_t identity, imps_str_t service,
		imps_aaa_decision_t *out) noexcept
{
	clear_decision(out);
	try {
		if (!g_proc) return 0;
		auto d = g_proc->aaa->cached(to_string(identity), to_string(service));
		if (!d) return 0;
		fill_decision(*d, out);
		return 1;
	} catch (...) {
	}
	return 0;
}

int imps_aaa_auth_available(void) noexcept
{
	try {
		return g_proc && g_proc->aaa->auth_available() ? 1 : 0;
	} catch (...) {
	}
	return 0;
}

int imps_aaa_probe(void) noexcept
{
	try {
		return g_proc ? g_proc->aaa->probe_due() : 0;
	} catch (const std::exception &e) {
		IMPS_ERR("imps_aaa probe: %s", e.what());
	} catch (...) {
	}
	return 0;
}

int imps_aaa_account(imps_str_t user, imps_str_t session, int status, char *error,
		size_t error_len) noexcept
{
	try {
		if (!g_proc) return -1;
		std::string err;
		bool ok = g_proc->aaa->account(to_string(user), to_string(session), static_cast<uint32_t>(status), &err);
		imps::copy_out(error, error_len, err);
		return ok ? 1 : -1;
	} catch (const std::exception &e) {
		imps::copy_out(error, error_len, e.what());
	} catch (...) {
	}
	return -1;
}

long long imps_aaa_cache_flush(imps_str_t identity) noexcept
{
	try {
		if (!g_proc) return -1;
		return g_proc->aaa->flush(to_string(identity));
	} catch (const std::exception &e) {
		IMPS_ERR("imps_aaa cache flush: %s", e.what());
	} catch (...) {
	}
	return -1;
}

void imps_aaa_servers(imps_aaa_server_sink_f sink, void *ctx) noexcept
{
	try {
		if (!g_proc) return;
		auto emit = [&](const char *role, const Client &c) {
			for (size_t i = 0; i < c.servers().size(); ++i) {
				const auto &s = c.servers()[i];
				sink(ctx, role, s.cfg.host.c_str(), s.cfg.port, c.held_down(i) ? 1 : 0, s.rtt_ms, s.requests,
						s.responses, s.timeouts, s.dropped, s.last_error.c_str());
			}
		};
		emit("auth", g_proc->aaa->auth_client());
		emit("acct", g_proc->aaa->acct_client());
	} catch (...) {
	}
}

}  // extern "C"
