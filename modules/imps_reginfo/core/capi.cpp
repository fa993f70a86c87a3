// extern "C" entry points: convert the shim's POD structs to the core's types, and make sure
// no exception crosses into Kamailio.
#include "../imps_reginfo_capi.h"

#include "engine.hpp"
#include "imps/log.hpp"
#include "imps/redis.hpp"

#include <chrono>
#include <cstring>
#include <memory>
#include <sstream>

using namespace imps::reginfo;

namespace {

struct HostAdapter final : Host {
	imps_reginfo_host_t h{};

	bool send_notify(const imps::subs::Outgoing &n) override
	{
		return imps::subs::send_through(h.send_request, n);
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

using imps::to_string;

Binding to_binding(const imps_reginfo_binding_t *b)
{
	Binding out;
	out.uri = to_string(b->uri);
	out.callid = to_string(b->callid);
	out.instance = to_string(b->instance);
	out.temp_gruu = to_string(b->temp_gruu);
	out.display_name = to_string(b->display_name);
	out.params = to_string(b->params);
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
	std::unique_ptr<Engine> engine;
	std::vector<BindingChange> changes;  // queued under usrloc's lock, handled after it
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


}  // namespace

extern "C" {

int imps_reginfo_temp_gruu(imps_str_t ruid, unsigned int aor_hash, imps_str_t aor, char *buf,
		size_t size) noexcept
{
	try {
		std::string g = temp_gruu(to_string(ruid), aor_hash, to_string(aor));
		if (g.empty() || g.size() >= size) return 0;
		std::memcpy(buf, g.data(), g.size());
		buf[g.size()] = '\0';
		return static_cast<int>(g.size());
	} catch (...) {
		return 0;
	}
}

int imps_reginfo_open(const imps_reginfo_config_t *cfg, const imps_reginfo_host_t *host) noexcept
{
	try {
		imps_reginfo_close();
		auto p = std::make_unique<Process>();
		p->host.h = *host;
		imps::set_log_sink(host->log);
		p->redis = std::make_unique<imps::Redis>(imps::redis_config_of(*cfg));
		Config c;
		c.min_expires = cfg->min_expires;
		c.max_expires = cfg->max_expires;
		c.default_expires = cfg->default_expires;
		c.partial_state = cfg->partial_state != 0;
		c.remove_on_timeout = cfg->remove_on_timeout != 0;
		c.trusted_watchers = split_list(cfg->trusted_watchers);
		if (cfg->notify_busy_ms > 0) c.notify_busy_ms = cfg->notify_busy_ms;
		if (cfg->node && *cfg->node) c.node = cfg->node;
		c.epoch = std::to_string(cfg->epoch);
		p->engine = std::make_unique<Engine>(c, *p->redis,
				cfg->key_prefix ? cfg->key_prefix : "imps:reginfo", p->host);
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
		imps::copy_out(rep->reason, sizeof(rep->reason), reason);
		imps::copy_out(rep->headers, sizeof(rep->headers), hdrs);
	};
	rep->notify = 0;
	try {
		if (!g_proc) throw std::runtime_error("module not initialized in this process");
		SubscribeRequest req;
		static_cast<imps::subs::SubscribeCommon &>(req) = imps::subs::common_of(r->sub);
		req.aor = to_string(r->aor);
		req.watcher = to_string(r->watcher);
		req.now = r->now;
		// to the millisecond: a binding change made just before this SUBSCRIBE is in its
		// first NOTIFY already and must not be notified again (BindingChange::now_ms)
		req.now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
				std::chrono::system_clock::now().time_since_epoch()).count();
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

int imps_reginfo_queue_change(imps_str_t aor, const imps_reginfo_binding_t *changed, int change,
		int cause, const char *admin_event, const imps_reginfo_binding_t *current, size_t n,
		long long now) noexcept
{
	try {
		if (!g_proc) return -1;
		BindingChange c;
		c.aor = to_string(aor);
		c.changed = to_binding(changed);
		c.current.reserve(n);
		for (size_t i = 0; i < n; ++i) c.current.push_back(to_binding(&current[i]));
		c.change = change == IMPS_CHANGE_INSERT ? Change::Insert
				: change == IMPS_CHANGE_UPDATE   ? Change::Update
				: change == IMPS_CHANGE_DELETE   ? Change::Delete
												 : Change::Expire;
		c.cause = cause == IMPS_CAUSE_REGISTER ? Cause::Register
				: cause == IMPS_CAUSE_ADMIN     ? Cause::Admin
												: Cause::Other;
		c.admin_event = admin_event ? admin_event : "";
		c.now = now;
		c.now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
				std::chrono::system_clock::now().time_since_epoch()).count();
		g_proc->changes.push_back(std::move(c));
		return 0;
	} catch (const std::exception &e) {
		fail("queueing a binding change", e);
	} catch (...) {
	}
	return -1;
}

void imps_reginfo_run_changes(void) noexcept
{
	if (!g_proc || g_proc->changes.empty()) return;
	std::vector<BindingChange> todo;
	todo.swap(g_proc->changes);
	for (const auto &c : todo) {
		// one change that fails (Redis down) never keeps the others back
		try {
			g_proc->engine->binding_changed(c);
		} catch (const std::exception &e) {
			g_proc->host.stat(Stat::TimerErrors, 1);
			fail(("reg event for a binding change of " + c.aor).c_str(), e);
		} catch (...) {
		}
	}
}

int imps_reginfo_export_changes(void (*sink)(void *, const char *, size_t), void *ctx) noexcept
{
	int n = 0;
	try {
		if (!g_proc) return -1;
		std::vector<BindingChange> todo;
		todo.swap(g_proc->changes);
		for (const auto &c : todo) {
			std::string blob = c.serialize();
			sink(ctx, blob.data(), blob.size());
			++n;
		}
		return n;
	} catch (const std::exception &e) {
		fail("handing a binding change over", e);
	} catch (...) {
	}
	return -1;
}

int imps_reginfo_import_change(const char *blob, size_t len) noexcept
{
	try {
		if (!g_proc) return -1;
		BindingChange c;
		if (!BindingChange::parse(std::string(blob, len), c)) {
			IMPS_ERR("a binding change handed over does not parse: dropped");
			return -1;
		}
		g_proc->changes.push_back(std::move(c));
		return 0;
	} catch (const std::exception &e) {
		fail("taking a binding change over", e);
	} catch (...) {
	}
	return -1;
}

void imps_reginfo_complete(imps_str_t aor, imps_str_t sid, unsigned long long cseq, int code,
		int retry_after, long long now_ms) noexcept
{
	try {
		if (g_proc) g_proc->engine->complete(to_string(aor), to_string(sid), cseq, code, retry_after != 0, now_ms);
	} catch (const std::exception &e) {
		g_proc->host.stat(Stat::TimerErrors, 1);
		fail("reg NOTIFY response", e);
	} catch (...) {
	}
}

void imps_reginfo_complete_many(const imps_response_t *r, size_t n, long long now_ms) noexcept
{
	try {
		if (g_proc) g_proc->engine->complete_many(imps::subs::responses_of(r, n), now_ms);
	} catch (const std::exception &e) {
		g_proc->host.stat(Stat::TimerErrors, 1);
		fail("reg NOTIFY responses", e);
	} catch (...) {
	}
}

void imps_reginfo_timer(long long now, long long now_ms, int expiry) noexcept
{
	try {
		if (!g_proc) return;
		if (expiry) g_proc->engine->expire(now, now_ms);
		g_proc->engine->send_due(now_ms);
	} catch (const std::exception &e) {
		fail("reg timer", e);
	} catch (...) {
	}
}

int imps_reginfo_show(imps_str_t aor, long long now, void (*sink)(void *, imps_str_t), void *ctx) noexcept
{
	try {
		if (!g_proc) return -1;
		std::string doc = g_proc->engine->show(to_string(aor), now);
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
		for (const auto &s : g_proc->engine->list(to_string(aor), limit)) {
			imps_reginfo_subinfo_t i{};
			i.sid = v(s.sid);
			i.aor = v(s.resource);
			i.watcher = v(s.watcher);
			i.remote_target = v(s.dialog.remote_target);
			i.socket = v(s.dialog.socket);
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
