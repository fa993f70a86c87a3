/* imps_rls: RPC commands (kamcmd imps_rls.*). */
#include <string.h>

#include "core/dprint.h"

#include "imps_rls.h"

struct rctx
{
	rpc_t *rpc;
	void *ctx;
	void *th;
	int n;
};

static void sub_sink(void *c, const imps_rls_subinfo_t *s)
{
	struct rctx *r = (struct rctx *)c;
	void *th;
	str sid = imps_kstr(s->sid), svc = imps_kstr(s->service), owner = imps_kstr(s->owner),
		st = imps_kstr(s->status);
	if(r->rpc->add(r->ctx, "{", &th) < 0)
		return;
	r->rpc->struct_add(th, "SSSSddd", "id", &sid, "service", &svc, "owner", &owner, "status", &st,
			"expires", (int)(s->expires_at - time(NULL)), "version", (int)s->version, "members",
			s->members);
	r->th = th;
	r->n++;
}

static const char *rpc_list_doc[] = {
		"List subscriptions: id, service URI, owner, status, expires, version, members.", 0};

static void rpc_list(rpc_t *rpc, void *ctx)
{
	struct rctx r = {rpc, ctx, NULL, 0};
	if(imps_rls_list(sub_sink, &r) < 0)
		rpc->fault(ctx, 500, "list subscriptions cannot be read");
}

static void member_sink(void *c, imps_str_t uri, imps_str_t name, int depth, int is_list,
		imps_str_t state)
{
	struct rctx *r = (struct rctx *)c;
	void *th;
	str u = imps_kstr(uri), nm = imps_kstr(name), st = imps_kstr(state);
	if(r->rpc->add(r->ctx, "{", &th) < 0)
		return;
	r->rpc->struct_add(th, "SSdsS", "uri", &u, "name", &nm, "depth", depth, "kind",
			is_list ? "list" : "member", "state", &st);
}

static const char *rpc_show_doc[] = {
		"One list subscription (its id): the subscription, then every member and nested list with "
		"the state of its back-end watch.",
		0};

static void rpc_show(rpc_t *rpc, void *ctx)
{
	struct rctx r = {rpc, ctx, NULL, 0};
	str sid;
	int rc;
	if(rpc->scan(ctx, "S", &sid) < 1) {
		rpc->fault(ctx, 400, "a list subscription id is required");
		return;
	}
	rc = imps_rls_show(imps_str_of(sid), sub_sink, member_sink, &r);
	if(rc == 0)
		rpc->fault(ctx, 404, "no such list subscription");
	else if(rc < 0)
		rpc->fault(ctx, 500, "the list subscription cannot be read");
}

static void backend_sink(void *c, const imps_rls_backend_t *b)
{
	struct rctx *r = (struct rctx *)c;
	void *th;
	str k = imps_kstr(b->key), m = imps_kstr(b->member), o = imps_kstr(b->owner),
		id = imps_kstr(b->id), st = imps_kstr(b->state), re = imps_kstr(b->reason);
	if(r->rpc->add(r->ctx, "{", &th) < 0)
		return;
	r->rpc->struct_add(th, "SSSSSSddd", "key", &k, "member", &m, "watcher", &o, "watch", &id,
			"state", &st, "reason", &re, "refs", (int)b->refs, "remote", b->remote,
			"next", b->remote && b->next_ms ? (int)((b->next_ms - imps_now_ms()) / 1000) : 0);
}

static const char *rpc_backends_doc[] = {
		"Back-end watches (one per list owner and member, shared by the owner's list "
		"subscriptions): member, watcher, watch id (the Call-ID of a remote one's SUBSCRIBE "
		"dialog), state, reason, reference count, remote (1: a member of another domain), "
		"next (s until a remote one is refreshed or tried again).",
		0};

static void rpc_backends(rpc_t *rpc, void *ctx)
{
	struct rctx r = {rpc, ctx, NULL, 0};
	if(imps_rls_backends(backend_sink, &r) < 0)
		rpc->fault(ctx, 500, "back-end watches cannot be read");
}

static const char *rpc_refresh_doc[] = {
		"Reads the list of a service URI again (every service without an argument) and applies "
		"changes to its subscriptions: changed: how many.",
		0};

static void rpc_refresh(rpc_t *rpc, void *ctx)
{
	str svc = STR_NULL;
	void *th;
	int n;
	if(rpc->scan(ctx, "*S", &svc) < 1)
		svc.len = 0;
	n = imps_rls_refresh(imps_str_of(svc));
	if(n < 0) {
		rpc->fault(ctx, 500, "lists cannot be read");
		return;
	}
	if(rpc->add(ctx, "{", &th) >= 0)
		rpc->struct_add(th, "d", "changed", n);
}

void rpc_stats_add(rpc_t *rpc, void *th);

static const char *rpc_stats_doc[] = {"Counters of list subscriptions, back-ends and NOTIFYs.", 0};

static void rpc_stats(rpc_t *rpc, void *ctx)
{
	void *th;
	if(rpc->add(ctx, "{", &th) < 0)
		return;
	rpc_stats_add(rpc, th);
}

rpc_export_t rls_rpc_cmds[] = {
	{"imps_rls.list", rpc_list, rpc_list_doc, RET_ARRAY},
	{"imps_rls.show", rpc_show, rpc_show_doc, RET_ARRAY},
	{"imps_rls.backends", rpc_backends, rpc_backends_doc, RET_ARRAY},
	{"imps_rls.refresh", rpc_refresh, rpc_refresh_doc, 0},
	{"imps_rls.stats", rpc_stats, rpc_stats_doc, 0},
	{0, 0, 0, 0}
};
