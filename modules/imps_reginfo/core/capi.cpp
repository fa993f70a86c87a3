// extern "C" entry points: convert the shim's POD structs to the core's types, and make sure
// no exception crosses into Kamailio.
#include "../imps_reginfo_capi.h"

#include "engine.hpp"
#include "imps/log.hpp"
#include "imps/redis.hpp"

#include <cstring>
#include <memory>
#include <sstream>

using namespace imps::reginfo;

namespace {

struct HostAdapter final : Host {
	imps_reginfo_host_t h{};

	bool send_notify(const Subscription &s, const std::string &body, const std::string &state) override
	{
		auto v = [](const std::string &x) { return imps_str_t{x.data(), x.size()}; };
		imps_reginfo_notify_t n{};
		n.sid = v(s.sid);
		n.aor = v(s.aor);
		n.callid = v(s.callid);
		n.local_tag = v(s.local_tag);
		n.remote_tag = v(s.remote_tag);
		n.local_uri = v(s.local_uri);
		n.remote_uri = v(s.remote_uri);
		n.remote_target = v(s.remote_target);
		n.route_set = v(s.route_set);
		n.socket = v(s.socket);
		n.local_contact = v(s.local_contact);
		n.body = v(body);
		n.subscription_state = v(state);
		n.event_id = v(s.event_id);
		n.cseq = s.cseq;
		return h.send_notify && h.send_notify(&n) == 0;
	}

	bool get_bindings(const std::string &aor, std::vector<Binding> &out) override
	{
		if (!h.get_bindings) return false;
		int rc = h.get_bindings(aor.data(), aor.size(), &HostAdapter::sink, &out);
		return rc > 0;
	}

	void stat(Stat which, long long delta) override
	{
		if (h.stat) h.stat(static_cast<int>(which), delta);
	}

	static void sink(void *ctx, const imps_reginfo_binding_t *b);
};

std::string S(imps_str_t s) { return s.s ? std::string(s.s, s.len) : std::string(); }

Binding to_binding(const imps_reginfo_binding_t *b)
{
	Binding out;
	out.uri = S(b->uri);
	out.callid = S(b->callid);
	out.instance = S(b->instance);
	out.temp_gruu = S(b->temp_gruu);
	out.display_name = S(b->display_name);
	out.params = S(b->params);
	out.reg_id = b->reg_id;
	out.expires_at = b->expires_at;
	out.q = b->q;
	out.cseq = b->cseq;
	out.has_msg_info = b->has_msg_info != 0;
	return out;
}

void HostAdapter::sink(void *ctx, const imps_reginfo_binding_t *b)
{
	// called by the shim with a usrloc lock held: nothing may throw through it
	try {
		static_cast<std::vector<Binding> *>(ctx)->push_back(to_binding(b));
	} catch (...) {
		IMPS_ERR("out of memory copying a binding");
	}
}

// Per-process state, created in child_init. A plain pointer (no static constructor runs at
// dlopen time); owned here and deleted by imps_reginfo_close().
struct Process {
	HostAdapter host;
	std::unique_ptr<imps::Redis> redis;
	std::unique_ptr<Store> store;
	std::unique_ptr<Engine> engine;
	std::string last_error;
};
Process *g_proc = nullptr;

std::vector<std::string> split_list(const char *s)
{
	std::vector<std::string> out;
	if (!s) return out;
	std::string cur;
	for (const char *p = s;; ++p) {
		if (*p == '\0' || *p == ',' || *p == ' ' || *p == ';') {
			if (!cur.empty()) out.push_back(cur);
			cur.clear();
			if (*p == '\0') break;
		} else {
			cur += *p;
		}
	}
	return out;
}

void fail(const char *where, const std::exception &e) noexcept
{
	try {
		if (g_proc) g_proc->last_error = e.what();
	} catch (...) {
	}
	IMPS_ERR("%s: %s", where, e.what());
}

void copy(char *dst, size_t cap, const char *src, size_t len) noexcept
{
	size_t n = std::min(cap - 1, len);
	std::memcpy(dst, src, n);
	dst[n] = '\0';
}

}  // namespace

extern "C" {

int imps_reginfo_open(const imps_reginfo_config_t *cfg, const imps_reginfo_host_t *host) noexcept
{
	try {
		imps_reginfo_close();
		auto p = std::make_unique<Process>();
		p->host.h = *host;
		imps::set_log_sink(host->log);
		p->redis = std::make_unique<imps::Redis>(imps::redis_config_of(*cfg));
		p->store = make_redis_store(*p->redis, cfg->key_prefix ? cfg->key_prefix : "imps:reginfo");
		Config c;
		c.min_expires = cfg->min_expires;
		c.max_expires = cfg->max_expires;
		c.default_expires = cfg->default_expires;
		c.partial_state = cfg->partial_state != 0;
		c.remove_on_timeout = cfg->remove_on_timeout != 0;
		c.trusted_watchers = split_list(cfg->trusted_watchers);
		p->engine = std::make_unique<Engine>(c, *p->store, p->host);
		g_proc = p.release();
		try {
			g_proc->redis->command({"PING"});
		} catch (const std::exception &e) {
			IMPS_WARN("Redis not reachable yet (will retry on use): %s", e.what());
		}
		return 0;
	} catch (const std::exception &e) {
		IMPS_ERR("imps_reginfo_open: %s", e.what());
	} catch (...) {
		IMPS_ERR("imps_reginfo_open: unknown error");
	}
	return -1;
}

void imps_reginfo_close(void) noexcept
{
	delete g_proc;
	g_proc = nullptr;
}

int imps_reginfo_subscribe(const imps_reginfo_subscribe_t *r, imps_reginfo_reply_t *rep) noexcept
{
	auto set = [rep](int code, std::string_view reason, std::string_view hdrs) noexcept {
		rep->code = code;
		copy(rep->reason, sizeof(rep->reason), reason.data(), reason.size());
		copy(rep->headers, sizeof(rep->headers), hdrs.data(), hdrs.size());
	};
	rep->notify = 0;
	try {
		if (!g_proc) throw std::runtime_error("module not initialized in this process");
		SubscribeRequest req;
		req.has_event = r->has_event != 0;
		req.event = S(r->event);
		req.has_accept = r->has_accept != 0;
		if (req.has_accept) {
			std::string a = S(r->accept);
			std::stringstream ss(a);
			std::string item;
			while (std::getline(ss, item, ',')) req.accept.push_back(item);
		}
		req.expires = r->expires;
		req.aor = S(r->aor);
		req.watcher = S(r->watcher);
		req.in_dialog = r->in_dialog != 0;
		req.now = r->now;
		Subscription &d = req.dialog;
		d.callid = S(r->callid);
		d.remote_tag = S(r->remote_tag);
		d.local_tag = S(r->local_tag);
		d.remote_uri = S(r->remote_uri);
		d.local_uri = S(r->local_uri);
		d.remote_target = S(r->remote_target);
		d.route_set = S(r->route_set);
		d.socket = S(r->socket);
		d.local_contact = S(r->local_contact);
		d.remote_cseq = r->remote_cseq;
		SubscribeResponse res = g_proc->engine->subscribe(req);
		std::string hdrs;
		for (const auto &h : res.headers) hdrs += h + "\r\n";
		set(res.code, res.reason, hdrs);
		rep->notify = res.notify ? 1 : 0;
		return 0;
	} catch (const imps::RedisError &e) {
		fail("reg SUBSCRIBE", e);
		set(503, "Service Unavailable (state store unreachable)", "Retry-After: 5\r\n");
	} catch (const std::exception &e) {
		fail("reg SUBSCRIBE", e);
		set(500, "Server Internal Error", "");
	} catch (...) {
		set(500, "Server Internal Error", "");
	}
	return -1;
}

void imps_reginfo_flush(void) noexcept
{
	try {
		if (g_proc) g_proc->engine->flush();
	} catch (const std::exception &e) {
		fail("reg NOTIFY", e);
	} catch (...) {
	}
}

int imps_reginfo_binding_changed(imps_str_t aor, const imps_reginfo_binding_t *changed, int change,
		int cause, const char *admin_event, const imps_reginfo_binding_t *current, size_t n,
		long long now) noexcept
{
	try {
		if (!g_proc) return -1;
		std::vector<Binding> cur;
		cur.reserve(n);
		for (size_t i = 0; i < n; ++i) cur.push_back(to_binding(&current[i]));
		Change ch = change == IMPS_CHANGE_INSERT ? Change::Insert
				: change == IMPS_CHANGE_UPDATE   ? Change::Update
				: change == IMPS_CHANGE_DELETE   ? Change::Delete
												 : Change::Expire;
		Cause ca = cause == IMPS_CAUSE_REGISTER ? Cause::Register
				: cause == IMPS_CAUSE_ADMIN     ? Cause::Admin
												: Cause::Other;
		g_proc->engine->binding_changed(S(aor), to_binding(changed), ch, ca,
				admin_event ? admin_event : "", cur, now);
		return 0;
	} catch (const std::exception &e) {
		fail("reg event for a binding change", e);
	} catch (...) {
	}
	return -1;
}

int imps_reginfo_expire(long long now) noexcept
{
	try {
		if (!g_proc) return -1;
		return g_proc->engine->expire(now);
	} catch (const std::exception &e) {
		fail("reg subscription expiry", e);
	} catch (...) {
	}
	return -1;
}

void imps_reginfo_notify_failed(imps_str_t sid, imps_str_t aor, int code, int retry_after) noexcept
{
	try {
		if (g_proc) g_proc->engine->notify_failed(S(sid), S(aor), code, retry_after != 0);
	} catch (const std::exception &e) {
		fail("reg NOTIFY failure handling", e);
	} catch (...) {
	}
}

int imps_reginfo_show(imps_str_t aor, long long now, void (*sink)(void *, imps_str_t), void *ctx) noexcept
{
	try {
		if (!g_proc) return -1;
		std::string doc = g_proc->engine->show(S(aor), now);
		sink(ctx, imps_str_t{doc.data(), doc.size()});
		return 0;
	} catch (const std::exception &e) {
		fail("imps_reginfo.show", e);
	} catch (...) {
	}
	return -1;
}

int imps_reginfo_list(imps_str_t aor, int limit,
		void (*sink)(void *, const imps_reginfo_subinfo_t *), void *ctx) noexcept
{
	try {
		if (!g_proc) return -1;
		auto v = [](const std::string &x) { return imps_str_t{x.data(), x.size()}; };
		for (const auto &s : g_proc->engine->list(S(aor), limit)) {
			imps_reginfo_subinfo_t i{};
			i.sid = v(s.sid);
			i.aor = v(s.aor);
			i.watcher = v(s.watcher);
			i.remote_target = v(s.remote_target);
			i.socket = v(s.socket);
			i.expires_at = s.expires_at;
			i.version = s.version;
			i.cseq = s.cseq;
			sink(ctx, &i);
		}
		return 0;
	} catch (const std::exception &e) {
		fail("imps_reginfo.list", e);
	} catch (...) {
	}
	return -1;
}

long long imps_reginfo_count(void) noexcept
{
	try {
		if (g_proc) return g_proc->engine->count();
	} catch (const std::exception &e) {
		fail("imps_reginfo count", e);
	} catch (...) {
	}
	return -1;
}

const char *imps_reginfo_last_error(void) noexcept
{
	return g_proc ? g_proc->last_error.c_str() : "not initialized";
}

}  // extern "C"
