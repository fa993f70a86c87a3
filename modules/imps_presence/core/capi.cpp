// extern "C" entry points: convert the shim's POD structs to the core's types, and make sure
// no exception crosses into Kamailio.
#include "../imps_presence_capi.h"

#include "engine.hpp"
#include "imps/clock.hpp"
#include "imps/log.hpp"
#include "imps/redis.hpp"
#include "imps/sip_text.hpp"
#include "imps/xcap_calls.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <sstream>

using namespace imps::presence;

using imps::to_imps_str;
using imps::to_string;

namespace {


long long now_ms() { return imps::wall_ms(); }

struct HostAdapter final : Host {
	imps_presence_host_t h{};

	bool send_notify(const imps::subs::Outgoing &n) override
	{
		return imps::subs::send_through(h.send_request, n);
	}

	bool rule_rows(const std::string &key, std::vector<RuleRow> &out) override
	{
		if (!h.rule_rows) return false;
		return h.rule_rows(to_imps_str(key), &HostAdapter::row_sink, &out) == 0;
	}

	static void row_sink(void *ctx, imps_str_t watcher, imps_str_t action)
	{
		// called by the shim with a database result open: nothing may throw through it
		try {
			static_cast<std::vector<RuleRow> *>(ctx)->push_back({to_string(watcher), to_string(action)});
		} catch (...) {
		}
	}

	void stat(Stat which, long long delta) override
	{
		if (h.stat) h.stat(static_cast<int>(which), delta);
	}
	int deliver_local(const std::string &consumer, const std::string &key,
			const imps::subs::Outgoing &n) override
	{
		if (!h.deliver_local) return 481;
		imps_presence_local_t l{};
		l.consumer = to_imps_str(consumer);
		l.key = to_imps_str(key);
		l.presentity = to_imps_str(n.sub.resource);
		l.sid = to_imps_str(n.sub.sid);
		l.state = to_imps_str(n.state);
		l.content_type = to_imps_str(n.content.content_type);
		l.body = to_imps_str(n.content.body);
		l.version = n.sub.version;
		return h.deliver_local(&l);
	}

	void account(const Subscription &s, bool start) override
	{
		if (h.account) h.account(to_imps_str(s.watcher), to_imps_str(s.sid), start ? 1 : 0);
	}

	int xcap_get(const std::string &path, std::string &body, std::string &etag) override
	{
		return imps::xcap_get_via(h.xcap.get, path, body, &etag);
	}
	bool xcap_list(const std::string &auid, const std::string &xui,
			std::vector<std::pair<std::string, std::string>> &out) override
	{
		return imps::xcap_list_via(h.xcap.list, auid, xui, out);
	}
	unsigned long xcap_generation() override { return imps::xcap_generation_via(h.xcap); }
};

struct Process {
	HostAdapter host;
	// rules table as last polled: presentity (or domain) -> its rows, sorted
	std::map<std::string, std::vector<std::string>> rules;
	bool rules_seen = false;
	std::unique_ptr<imps::Redis> redis;
	std::unique_ptr<Engine> engine;
	std::string last_error;
};
Process *g_proc = nullptr;


void set_reply(imps_presence_reply_t *rep, int code, std::string_view reason, std::string_view hdrs) noexcept
{
	rep->code = code;
	imps::copy_out(rep->reason, sizeof(rep->reason), reason);
	imps::copy_out(rep->headers, sizeof(rep->headers), hdrs);
}

void to_reply(const Response &r, imps_presence_reply_t *rep)
{
	std::string hdrs;
	for (const auto &h : r.headers) hdrs += h + "\r\n";
	set_reply(rep, r.code, r.reason, hdrs);
}

// Runs f with every exception turned into a logged error and `fallback`; a Redis failure is
// remembered as the process's last error.
template <class F, class R>
R guarded(const char *where, R fallback, F &&f) noexcept
{
	try {
		if (!g_proc) throw std::runtime_error("module not initialized in this process");
		return f();
	} catch (const std::exception &e) {
		try {
			if (g_proc) g_proc->last_error = e.what();
		} catch (...) {
		}
		IMPS_ERR("%s: %s", where, e.what());
	} catch (...) {
		IMPS_ERR("%s: unknown error", where);
	}
	return fallback;
}

// A request handler: on a Redis failure 503 with Retry-After, on anything else 500.
template <class F>
int answer(const char *where, imps_presence_reply_t *rep, F &&f) noexcept
{
	try {
		if (!g_proc) throw std::runtime_error("module not initialized in this process");
		to_reply(f(), rep);
		return 0;
	} catch (const imps::RedisError &e) {
		if (g_proc) g_proc->last_error = e.what();
		IMPS_ERR("%s: %s", where, e.what());
		if (g_proc) g_proc->engine->flush();
		set_reply(rep, 503, "Service Unavailable (state store unreachable)", "Retry-After: 5\r\n");
	} catch (const std::exception &e) {
		IMPS_ERR("%s: %s", where, e.what());
		set_reply(rep, 500, "Server Internal Error", "");
	} catch (...) {
		set_reply(rep, 500, "Server Internal Error", "");
	}
	return -1;
}

}  // namespace

extern "C" {

int imps_presence_open(const imps_presence_config_t *cfg, const imps_presence_host_t *host) noexcept
{
	try {
		imps_presence_close();
		auto p = std::make_unique<Process>();
		p->host.h = *host;
		switch (cfg->default_action) {
		case IMPS_ACTION_ALLOW: p->host.default_action = Action::Allow; break;
		case IMPS_ACTION_BLOCK: p->host.default_action = Action::Block; break;
		case IMPS_ACTION_POLITE_BLOCK: p->host.default_action = Action::PoliteBlock; break;
		default: p->host.default_action = Action::Confirm; break;
		}
		imps::set_log_sink(host->log);
		p->redis = std::make_unique<imps::Redis>(imps::redis_config_of(*cfg));
		Config c;
		c.min_expires = cfg->min_expires;
		c.max_expires = cfg->max_expires;
		c.default_expires = cfg->default_expires;
		c.pub_min_expires = cfg->pub_min_expires;
		c.pub_max_expires = cfg->pub_max_expires;
		c.pub_default_expires = cfg->pub_default_expires;
		c.max_body_size = static_cast<size_t>(cfg->max_body_size);
		c.max_publications = cfg->max_publications;
		c.max_watchers = cfg->max_watchers;
		c.min_notify_interval_ms = cfg->min_notify_interval_ms;
		c.offline_document = cfg->offline_document ? cfg->offline_document : "";
		c.remove_on_timeout = cfg->remove_on_timeout != 0;
		if (cfg->notify_busy_ms > 0) c.notify_busy_ms = cfg->notify_busy_ms;
		if (cfg->node && *cfg->node) c.node = cfg->node;
		c.epoch = std::to_string(cfg->epoch);
		switch (cfg->policy_mode) {
		case IMPS_POLICY_LOCAL: c.policy.mode = PolicyConfig::Mode::Local; break;
		case IMPS_POLICY_HTTP: c.policy.mode = PolicyConfig::Mode::Http; break;
		default: c.policy.mode = PolicyConfig::Mode::Off; break;
		}
		c.policy.root = cfg->xcap_root ? cfg->xcap_root : "";
		c.policy.interface = cfg->xcap_interface ? cfg->xcap_interface : "";
		if (cfg->xcap_timeout_ms > 0) c.policy.timeout_ms = cfg->xcap_timeout_ms;
		if (cfg->xcap_cache_ttl_ms >= 0) c.policy.ttl_ms = cfg->xcap_cache_ttl_ms;
		c.xcap_diff = cfg->xcap_diff != 0;
		c.xcap_root = c.policy.root;
		p->engine = std::make_unique<Engine>(c, *p->redis,
				cfg->key_prefix ? cfg->key_prefix : "imps:presence", p->host);
		g_proc = p.release();
		try {
			g_proc->redis->command({"PING"});
		} catch (const std::exception &e) {
			IMPS_WARN("Redis not reachable yet (will retry on use): %s", e.what());
		}
		return 0;
	} catch (const std::exception &e) {
		IMPS_ERR("imps_presence_open: %s", e.what());
	} catch (...) {
		IMPS_ERR("imps_presence_open: unknown error");
	}
	return -1;
}

int imps_presence_is_open(void) noexcept { return g_proc != nullptr; }

void imps_presence_close(void) noexcept
{
	delete g_proc;
	g_proc = nullptr;
}

int imps_presence_publish(const imps_presence_publish_t *r, imps_presence_reply_t *rep) noexcept
{
	return answer("PUBLISH", rep, [r] {
		PublishRequest req;
		req.has_event = r->has_event != 0;
		req.event = to_string(r->event);
		req.has_body = r->has_body != 0;
		req.content_type = to_string(r->content_type);
		req.body = to_string(r->body);
		req.if_match = to_string(r->if_match);
		req.expires = r->expires;
		req.presentity = to_string(r->presentity);
		req.identity = to_string(r->identity);
		req.source = to_string(r->source);
		req.now = r->now;
		req.now_ms = r->now_ms;
		return g_proc->engine->publish(req);
	});
}

int imps_presence_subscribe(const imps_presence_subscribe_t *r, imps_presence_reply_t *rep) noexcept
{
	return answer("SUBSCRIBE", rep, [r] {
		SubscribeRequest req;
		static_cast<imps::subs::SubscribeCommon &>(req) = imps::subs::common_of(r->sub);
		req.presentity = to_string(r->presentity);
		req.watcher = to_string(r->watcher);
		req.display_name = to_string(r->display_name);
		req.content_type = imps::lower(to_string(r->content_type));
		req.body = to_string(r->body);
		req.now = r->now;
		req.now_ms = r->now_ms;
		return g_proc->engine->subscribe(req);
	});
}

void imps_presence_flush(void) noexcept
{
	guarded("NOTIFY", 0, [] {
		g_proc->engine->flush();
		return 0;
	});
}

int imps_presence_tick(long long now, long long now_ms, int expiry) noexcept
{
	return guarded("presence timer", -1, [=] {
		g_proc->engine->tick(now, now_ms, expiry != 0);
		return 0;
	});
}

void imps_presence_complete(imps_str_t presentity, imps_str_t sid, unsigned long long cseq,
		int code, int retry_after) noexcept
{
	guarded("NOTIFY response", 0, [=] {
		g_proc->engine->complete(to_string(presentity), to_string(sid), cseq, code, retry_after != 0, now_ms());
		return 0;
	});
}

void imps_presence_complete_many(const imps_response_t *r, size_t n) noexcept
{
	guarded("NOTIFY responses", 0, [=] {
		g_proc->engine->complete_many(imps::subs::responses_of(r, n), now_ms());
		return 0;
	});
}

int imps_presence_reauthorize(imps_str_t presentity, imps_str_t watcher) noexcept
{
	return guarded("rule change", -1, [=] { return g_proc->engine->reauthorize(to_string(presentity), to_string(watcher), now_ms()); });
}

int imps_presence_rules_snapshot(const imps_presence_rule_row_t *rows, size_t n) noexcept
{
	return guarded("rules poll", -1, [=] {
		std::map<std::string, std::vector<std::string>> now;
		for (size_t i = 0; i < n; ++i)
			now[to_string(rows[i].presentity)].push_back(
					imps::lower(to_string(rows[i].watcher)) + '\n' + imps::lower(to_string(rows[i].action)));
		for (auto &e : now) std::sort(e.second.begin(), e.second.end());
		std::vector<std::string> changed;
		if (g_proc->rules_seen) {
			for (const auto &e : now) {
				auto it = g_proc->rules.find(e.first);
				if (it == g_proc->rules.end() || it->second != e.second) changed.push_back(e.first);
			}
			for (const auto &e : g_proc->rules)
				if (!now.count(e.first)) changed.push_back(e.first);
		}
		g_proc->rules.swap(now);
		g_proc->rules_seen = true;
		int total = 0;
		for (const auto &p : changed) {
			IMPS_INFO("rules of %s changed: applying them to its watchers", p.c_str());
			total += g_proc->engine->reauthorize(p, "", now_ms());
		}
		return total;
	});
}

void imps_presence_document_changed(imps_str_t path, imps_str_t old_etag, imps_str_t new_etag) noexcept
{
	guarded("XCAP change", 0, [=] {
		g_proc->engine->document_changed(to_string(path), to_string(old_etag), to_string(new_etag), now_ms());
		return 0;
	});
}

long long imps_presence_policy_requests(void) noexcept
{
	return guarded("pres-rules requests", -1LL, [] { return g_proc->engine->policy()->http_requests(); });
}

int imps_presence_terminate(imps_str_t sid) noexcept
{
	return guarded("imps_presence.terminate", -1, [=] { return g_proc->engine->terminate(to_string(sid), now_ms()) ? 1 : 0; });
}

int imps_presence_admin_publish(imps_str_t presentity, imps_str_t body, int expires,
		imps_str_t etag, imps_presence_reply_t *rep) noexcept
{
	return answer("imps_presence.publish", rep, [=] {
		long long ms = now_ms();
		return g_proc->engine->admin_publish(to_string(presentity), to_string(body), expires, to_string(etag), ms / 1000, ms);
	});
}

int imps_presence_show(imps_str_t presentity, void (*doc_sink)(void *, imps_str_t),
		void (*pub_sink)(void *, const imps_presence_pubinfo_t *), void *ctx) noexcept
{
	return guarded("imps_presence.show", -1, [=] {
		PresentityView v = g_proc->engine->show(to_string(presentity), time(nullptr));
		doc_sink(ctx, to_imps_str(v.document));
		for (const auto &p : v.publications) {
			imps_presence_pubinfo_t i{};
			i.etag = to_imps_str(p.etag);
			i.source = to_imps_str(p.source);
			i.body = to_imps_str(p.body);
			i.expires_at = p.expires_at;
			i.published_at = p.published_at;
			pub_sink(ctx, &i);
		}
		return 0;
	});
}

int imps_presence_watchers(imps_str_t presentity,
		void (*sink)(void *, const imps_presence_subinfo_t *), void *ctx) noexcept
{
	return guarded("imps_presence.watchers", -1, [=] {
		for (const auto &s : g_proc->engine->watchers(to_string(presentity))) {
			imps_presence_subinfo_t i{};
			i.sid = to_imps_str(s.sid);
			i.presentity = to_imps_str(s.resource);
			i.event = to_imps_str(s.package);
			i.watcher = to_imps_str(s.watcher);
			i.watcher_uri = to_imps_str(s.watcher_uri);
			i.status = to_imps_str(s.status);
			i.remote_target = to_imps_str(s.dialog.remote_target);
			i.expires_at = s.expires_at;
			i.cseq = s.cseq;
			sink(ctx, &i);
		}
		return 0;
	});
}

int imps_presence_list(int limit, void (*sink)(void *, imps_str_t, long long, long long), void *ctx) noexcept
{
	return guarded("imps_presence.list", -1, [=] {
		auto l = g_proc->engine->list(limit);
		std::sort(l.begin(), l.end(), [](const Summary &a, const Summary &b) {
			return a.presentity < b.presentity;
		});
		for (const auto &s : l) sink(ctx, to_imps_str(s.presentity), s.publications, s.watchers);
		return 0;
	});
}

int imps_presence_watch(imps_str_t presentity, imps_str_t watcher, imps_str_t consumer,
		imps_str_t key, int expires, imps_presence_reply_t *rep, char *sid, size_t sid_size) noexcept
{
	if (sid_size) sid[0] = '\0';
	return answer("in-process watch", rep, [=] {
		long long ms = now_ms();
		std::string id;
		Response r = g_proc->engine->watch(to_string(presentity), to_string(watcher), to_string(consumer), to_string(key), expires,
				ms / 1000, ms, id);
		if (sid_size) imps::copy_out(sid, sid_size, id);
		return r;
	});
}

int imps_presence_unwatch(imps_str_t presentity, imps_str_t sid) noexcept
{
	return guarded("in-process unwatch", -1, [=] {
		return g_proc->engine->unwatch(to_string(presentity), to_string(sid), now_ms()) ? 1 : 0;
	});
}

int imps_presence_document(imps_str_t presentity, void (*sink)(void *, imps_str_t), void *ctx) noexcept
{
	return guarded("presence document", -1, [=] {
		std::string doc = g_proc->engine->current_document(to_string(presentity));
		sink(ctx, to_imps_str(doc));
		return 0;
	});
}

long long imps_presence_count_subscriptions(void) noexcept
{
	return guarded("subscription count", -1LL, [] { return g_proc->engine->count_subscriptions(); });
}

long long imps_presence_count_publications(void) noexcept
{
	return guarded("publication count", -1LL, [] { return g_proc->engine->count_publications(); });
}

const char *imps_presence_last_error(void) noexcept
{
	return g_proc ? g_proc->last_error.c_str() : "not initialized";
}

}  // extern "C"
