/* imps_aaa: RPC commands. */
#include "imps_aaa.h"

/* ---- RPC --------------------------------------------------------------------------------- */

struct rpc_ctx_pair
{
	rpc_t *rpc;
	void *ctx;
};

void server_sink(void *c, const char *role, const char *host, int port, int dead,
		double rtt_ms, unsigned long long requests, unsigned long long responses,
		unsigned long long timeouts, unsigned long long dropped, const char *last_error)
{
	struct rpc_ctx_pair *p = (struct rpc_ctx_pair *)c;
	void *th;
	if(p->rpc->add(p->ctx, "{", &th) < 0)
		return;
	p->rpc->struct_add(th, "ssdsfdddds", "role", role, "host", host, "port", port, "state",
			dead ? "dead" : "alive", "rtt_ms", rtt_ms, "requests", (int)requests, "responses",
			(int)responses, "timeouts", (int)timeouts, "dropped", (int)dropped, "last_error",
			last_error);
}

void rpc_servers(rpc_t *rpc, void *ctx)
{
	struct rpc_ctx_pair p = {rpc, ctx};
	imps_aaa_servers(server_sink, &p);
}

void rpc_cache_flush(rpc_t *rpc, void *ctx)
{
	str user = {0, 0};
	long long n;
	void *th;
	if(rpc->scan(ctx, "*S", &user) < 1) {
		user.s = NULL;
		user.len = 0;
	}
	n = imps_aaa_cache_flush(imps_str_of(user));
	if(n < 0) {
		rpc->fault(ctx, 503, "Decision cache (Redis) unavailable");
		return;
	}
	if(rpc->add(ctx, "{", &th) < 0)
		return;
	rpc->struct_add(th, "d", "flushed", (int)n);
}

void rpc_check(rpc_t *rpc, void *ctx)
{
	str identity, service;
	imps_aaa_decision_t d;
	void *th;
	if(rpc->scan(ctx, "SS", &identity, &service) < 2) {
		rpc->fault(ctx, 400, "identity and service expected");
		return;
	}
	imps_aaa_authorize(imps_str_of(identity), imps_str_of(service), 0, &d);
	if(rpc->add(ctx, "{", &th) < 0)
		return;
	rpc->struct_add(th, "sssds", "result",
			d.result == 1 ? "accept" : d.result == -1 ? "reject" : "unavailable", "class",
			d.klass, "reply_message", d.reply_message, "max_expires", (int)d.max_expires,
			"error", d.error);
}

void rpc_stats(rpc_t *rpc, void *ctx)
{
	void *th;
	if(rpc->add(ctx, "{", &th) < 0)
		return;
	rpc->struct_add(th, "dddddddd", "requests", (int)get_stat_val(st[0]), "accepts",
			(int)get_stat_val(st[1]), "rejects", (int)get_stat_val(st[2]), "timeouts",
			(int)get_stat_val(st[3]), "failovers", (int)get_stat_val(st[4]), "cache_hits",
			(int)get_stat_val(st[5]), "cache_misses", (int)get_stat_val(st[6]),
			"forged_replies", (int)get_stat_val(st[7]));
}

static const char *rpc_servers_doc[] = {
	"RADIUS servers as this (the RPC) process sees them: state, RTT, counters, last error.", 0};
static const char *rpc_cache_flush_doc[] = {
	"Flush cached authorization decisions of one identity, or of all.", 0};
static const char *rpc_check_doc[] = {
	"Run an authorization now (no cache): identity service.", 0};
static const char *rpc_stats_doc[] = {"imps_aaa counters.", 0};
rpc_export_t aaa_rpc_cmds[] = {
	{"imps_aaa.servers", rpc_servers, rpc_servers_doc, RET_ARRAY},
	{"imps_aaa.cache_flush", rpc_cache_flush, rpc_cache_flush_doc, 0},
	{"imps_aaa.check", rpc_check, rpc_check_doc, 0},
	{"imps_aaa.stats", rpc_stats, rpc_stats_doc, 0},
	{0, 0, 0, 0}
};

