// extern "C" entry points of imps_rls's core: the shim's POD structs to the core's types, and
// no exception crosses into Kamailio.
#include "../imps_rls_capi.h"

#include "engine.hpp"

#include "imps/clock.hpp"
#include "imps/log.hpp"
#include "imps/redis.hpp"
#include "imps/sip_text.hpp"
#include "imps/xcap_calls.hpp"

#include <chrono>
#include <cstring>
#include <memory>

using namespace imps::rls;
using imps::to_imps_str;
using imps::to_string;

namespace {

long long now_ms() { return imps::wall_ms(); }

struct HostAdapter final : Host {
	imps_rls_host_t h{};
	bool send_notify(const imps::subs::Outgoing &n) override { return imps::subs::send_through(h.send_request, n); }
	void stat(Stat which, long long delta) override
	{
		if (h.stat) h.stat(static_cast<int>(which), delta);
	}
	int xcap_get(const std::string &path, std::string &body) override
	{
		return imps::xcap_get_via(h.xcap.get, path, body, nullptr);
	}
	bool xcap_list(const std::string &auid, std::vector<std::pair<std::string, std::string>> &out) override
	{
		return imps::xcap_list_via(h.xcap.list, auid, "", out);
	}
	unsigned long xcap_generation() override { return imps::xcap_generation_via(h.xcap); }
	int watch(const std::string &presentity, const std::string &watcher, const std::string &key, int expires,
			std::string &id) override
	{
		if (!h.watch) return -1;
		char buf[128] = {0};
		int rc = h.watch(to_imps_str(presentity), to_imps_str(watcher), to_imps_str(key), expires, buf, sizeof(buf));
		id = buf;
		return rc;
	}
	int unwatch(const std::string &presentity, const std::string &id) override
	{
		return h.unwatch ? h.unwatch(to_imps_str(presentity), to_imps_str(id)) : -1;
	}
	bool send_backend(const BackendRequest &r) override
	{
		if (!h.send_backend) return false;
		imps_rls_breq_t q{};
		q.bkey = to_imps_str(r.bkey);
		q.callid = to_imps_str(r.callid);
		q.local_tag = to_imps_str(r.local_tag);
		q.remote_tag = to_imps_str(r.remote_tag);
		q.from_uri = to_imps_str(r.from_uri);
		q.to_uri = to_imps_str(r.to_uri);
		q.target = to_imps_str(r.target);
		q.route_set = to_imps_str(r.route_set);
		q.dst_uri = to_imps_str(r.dst_uri);
		q.cseq = r.cseq;
		q.headers = to_imps_str(r.headers);
		return h.send_backend(&q) == 0;
	}
};

std::vector<std::string> split_domains(const char *s)
{
	std::vector<std::string> out;
	std::string all = s ? s : "";
	size_t from = 0;
	while (from <= all.size()) {
		size_t c = all.find(',', from);
		if (c == std::string::npos) c = all.size();
		std::string d = imps::lower(imps::trim(all.substr(from, c - from)));
		if (!d.empty()) out.push_back(d);
		from = c + 1;
	}
	return out;
}

struct Process {
	HostAdapter host;
	std::unique_ptr<imps::Redis> redis;
	std::unique_ptr<Engine> engine;
};
Process *g = nullptr;


template <class F, class R>
R guarded(const char *where, R fallback, F &&f) noexcept
{
	try {
		if (!g) throw std::runtime_error("module not initialized in this process");
		return f();
	} catch (const std::exception &e) {
		IMPS_ERR("%s: %s", where, e.what());
	} catch (...) {
		IMPS_ERR("%s: unknown error", where);
	}
	return fallback;
}

}  // namespace

extern "C" {

int imps_rls_open(const imps_rls_config_t *cfg, const imps_rls_host_t *host) noexcept
{
	try {
		imps_rls_close();
		auto p = std::make_unique<Process>();
		p->host.h = *host;
		imps::set_log_sink(host->log);
		p->redis = std::make_unique<imps::Redis>(imps::redis_config_of(*cfg));
		Config c;
		c.min_expires = cfg->min_expires;
		c.max_expires = cfg->max_expires;
		c.default_expires = cfg->default_expires;
		c.batch_ms = cfg->batch_ms;
		if (cfg->max_notify_size > 0) c.max_notify_size = static_cast<size_t>(cfg->max_notify_size);
		c.limits.max_members = static_cast<size_t>(cfg->max_members);
		c.limits.max_depth = cfg->max_depth;
		c.max_list_subscriptions = cfg->max_list_subscriptions;
		c.max_backends = cfg->max_backends;
		c.remove_on_timeout = cfg->remove_on_timeout != 0;
		if (cfg->notify_busy_ms > 0) c.notify_busy_ms = cfg->notify_busy_ms;
		if (cfg->node && *cfg->node) c.node = cfg->node;
		c.epoch = std::to_string(cfg->epoch);
		c.xcap_root = cfg->xcap_root ? cfg->xcap_root : "";
		if (cfg->adhoc_user && *cfg->adhoc_user) c.adhoc_user = cfg->adhoc_user;
		c.client_compat = cfg->client_compat != 0;
		c.local_domains = split_domains(cfg->local_domains);
		c.outbound_proxy = cfg->outbound_proxy ? cfg->outbound_proxy : "";
		c.contact = cfg->contact ? cfg->contact : "";
		if (cfg->remote_expires > 0) c.remote_expires = cfg->remote_expires;
		if (cfg->remote_retry_ms > 0) c.remote_retry_ms = cfg->remote_retry_ms;
		if (cfg->max_backends_per_list > 0) c.max_backends_per_list = cfg->max_backends_per_list;
		if (cfg->max_backends_per_user > 0) c.max_backends_per_user = cfg->max_backends_per_user;
		p->engine = std::make_unique<Engine>(c, *p->redis, cfg->key_prefix ? cfg->key_prefix : "imps:rls", p->host);
		g = p.release();
		return 0;
	} catch (const std::exception &e) {
		IMPS_ERR("imps_rls_open: %s", e.what());
	} catch (...) {
	}
	return -1;
}

int imps_rls_is_open(void) noexcept { return g != nullptr; }

void imps_rls_close(void) noexcept
{
	delete g;
	g = nullptr;
}

int imps_rls_subscribe(const imps_rls_subscribe_t *r, imps_rls_reply_t *rep) noexcept
{
	auto fail = [rep](int code, const char *reason, const char *hdrs) {
		rep->code = code;
		imps::copy_out(rep->reason, sizeof(rep->reason), reason);
		imps::copy_out(rep->headers, sizeof(rep->headers), hdrs);
	};
	try {
		if (!g) throw std::runtime_error("module not initialized in this process");
		SubscribeRequest req;
		static_cast<imps::subs::SubscribeCommon &>(req) = imps::subs::common_of(r->sub);
		req.eventlist = r->eventlist != 0;
		req.recipient_list = r->recipient_list != 0;
		req.content_type = imps::lower(to_string(r->content_type));
		req.content_disposition = imps::lower(to_string(r->content_disposition));
		req.content_encoding = imps::lower(to_string(r->content_encoding));
		req.body = to_string(r->body);
		req.user_agent = to_string(r->user_agent);
		req.service = to_string(r->service);
		req.watcher = to_string(r->watcher);
		req.display_name = to_string(r->display_name);
		req.now = r->now;
		req.now_ms = r->now_ms;
		Response res = g->engine->subscribe(req);
		if (!res.mine) {
			fail(0, "", "");
			return 0;
		}
		std::string hdrs;
		for (const auto &h : res.headers) hdrs += h + "\r\n";
		fail(res.code, res.reason.c_str(), hdrs.c_str());
		return 0;
	} catch (const imps::RedisError &e) {
		IMPS_ERR("list SUBSCRIBE: %s", e.what());
		fail(503, "Service Unavailable (state store unreachable)", "Retry-After: 5\r\n");
	} catch (const std::exception &e) {
		IMPS_ERR("list SUBSCRIBE: %s", e.what());
		fail(500, "Server Internal Error", "");
	} catch (...) {
		fail(500, "Server Internal Error", "");
	}
	return -1;
}

void imps_rls_flush(void) noexcept
{
	guarded("list NOTIFY", 0, [] {
		g->engine->flush();
		return 0;
	});
}

int imps_rls_member_notify(imps_str_t key, imps_str_t presentity, imps_str_t state, imps_str_t content_type,
		imps_str_t body) noexcept
{
	return guarded("member NOTIFY", 500, [=] {
		return g->engine->member_notify(to_string(key), to_string(presentity), to_string(state),
				to_string(content_type), to_string(body), now_ms());
	});
}

void imps_rls_document_changed(imps_str_t path) noexcept
{
	guarded("list change", 0, [=] {
		g->engine->document_changed(to_string(path), now_ms());
		return 0;
	});
}

int imps_rls_refresh(imps_str_t service) noexcept
{
	return guarded("imps_rls.refresh", -1, [=] { return g->engine->refresh(to_string(service), now_ms()); });
}

int imps_rls_tick(long long now, long long ms, int expiry) noexcept
{
	return guarded("rls timer", -1, [=] {
		g->engine->tick(now, ms, expiry != 0);
		return 0;
	});
}

void imps_rls_complete_many(const imps_response_t *r, size_t n) noexcept
{
	guarded("NOTIFY responses", 0, [=] {
		g->engine->complete_many(imps::subs::responses_of(r, n), now_ms());
		return 0;
	});
}

void imps_rls_backend_responses(const imps_rls_bresp_t *r, size_t n) noexcept
{
	guarded("back-end responses", 0, [=] {
		std::vector<BackendResponse> v(n);
		for (size_t i = 0; i < n; ++i) {
			v[i].bkey = to_string(r[i].bkey);
			v[i].callid = to_string(r[i].callid);
			v[i].cseq = r[i].cseq;
			v[i].code = r[i].code;
			v[i].retry_after = r[i].retry_after != 0;
			v[i].remote_tag = to_string(r[i].remote_tag);
			v[i].route_set = to_string(r[i].route_set);
			v[i].target = to_string(r[i].target);
			v[i].expires = r[i].expires;
		}
		g->engine->backend_responses(v, now_ms());
		return 0;
	});
}

int imps_rls_backend_notify(const imps_rls_bnotify_t *n) noexcept
{
	return guarded("back-end NOTIFY", 500, [=] {
		BackendNotify b;
		b.callid = to_string(n->callid);
		b.local_tag = to_string(n->local_tag);
		b.remote_tag = to_string(n->remote_tag);
		b.state = to_string(n->state);
		b.content_type = to_string(n->content_type);
		b.body = to_string(n->body);
		b.route_set = to_string(n->route_set);
		b.target = to_string(n->target);
		b.cseq = n->cseq;
		return g->engine->backend_notify(b, now_ms());
	});
}

namespace {

void to_info(const Subscription &s, const Node &tree, imps_rls_subinfo_t &i)
{
	i.sid = to_imps_str(s.sid);
	i.service = to_imps_str(tree.uri);
	i.owner = to_imps_str(s.watcher);
	i.status = to_imps_str(s.status);
	i.expires_at = s.expires_at;
	i.version = s.version;
	i.members = static_cast<int>(members_of(tree).size());
}

void walk(const Node &n, int depth, const std::map<std::string, Backend> &by, const std::string &owner,
		void (*sink)(void *, imps_str_t, imps_str_t, int, int, imps_str_t), void *ctx)
{
	for (const auto &c : n.children) {
		std::string state;
		if (!c.is_list) {
			auto it = by.find(owner + "|" + presentity_of(c.uri));
			state = it == by.end() ? "terminated;reason=noresource"
								   : it->second.state + (it->second.reason.empty() ? "" : ";reason=" + it->second.reason);
		}
		sink(ctx, to_imps_str(c.uri), to_imps_str(c.name), depth, c.is_list ? 1 : 0, to_imps_str(state));
		if (c.is_list) walk(c, depth + 1, by, owner, sink, ctx);
	}
}

}  // namespace

int imps_rls_list(void (*sink)(void *ctx, const imps_rls_subinfo_t *s), void *ctx) noexcept
{
	return guarded("imps_rls.list", -1, [=] {
		for (const auto &s : g->engine->list_subscriptions()) {
			Node tree;
			decode(s.data, tree);
			imps_rls_subinfo_t i{};
			to_info(s, tree, i);
			sink(ctx, &i);
		}
		return 0;
	});
}

int imps_rls_show(imps_str_t sid, void (*sink_sub)(void *ctx, const imps_rls_subinfo_t *s),
		void (*sink_member)(void *, imps_str_t, imps_str_t, int, int, imps_str_t), void *ctx) noexcept
{
	return guarded("imps_rls.show", -1, [=] {
		Subscription s;
		Node tree;
		if (!g->engine->show(to_string(sid), s, tree)) return 0;
		imps_rls_subinfo_t i{};
		to_info(s, tree, i);
		sink_sub(ctx, &i);
		std::map<std::string, Backend> by;
		for (auto &b : g->engine->backends()) by[b.key] = b;
		walk(tree, 1, by, s.watcher, sink_member, ctx);
		return 1;
	});
}

int imps_rls_backends(void (*sink)(void *ctx, const imps_rls_backend_t *b), void *ctx) noexcept
{
	return guarded("imps_rls.backends", -1, [=] {
		for (const auto &b : g->engine->backends()) {
			imps_rls_backend_t o{};
			o.key = to_imps_str(b.key);
			o.member = to_imps_str(b.member);
			o.owner = to_imps_str(b.owner);
			o.id = to_imps_str(b.id);
			o.state = to_imps_str(b.state);
			o.reason = to_imps_str(b.reason);
			o.refs = b.refs;
			o.remote = b.remote ? 1 : 0;
			o.next_ms = b.next_ms;
			sink(ctx, &o);
		}
		return 0;
	});
}

long long imps_rls_count_subscriptions(void) noexcept
{
	return guarded("list subscription count", -1LL, [] { return g->engine->count_subscriptions(); });
}

}  // extern "C"
