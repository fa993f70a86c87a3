/* imps_presence: RPC commands. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/dprint.h"
#include "core/mem/mem.h"

#include "imps_presence.h"


/* ---- RPC --------------------------------------------------------------------------------- */

struct rpc_sink_ctx
{
	rpc_t *rpc;
	void *ctx;
	void *th;
	void *pubs;
	long long now;
};

static void list_sink(void *c, imps_str_t p, long long pubs, long long watchers)
{
	struct rpc_sink_ctx *sc = (struct rpc_sink_ctx *)c;
	void *th;
	str ps = imps_kstr(p);
	if(sc->rpc->add(sc->ctx, "{", &th) < 0)
		return;
	sc->rpc->struct_add(th, "Sdd", "presentity", &ps, "publications", (int)pubs, "watchers",
			(int)watchers);
}

static void rpc_list(rpc_t *rpc, void *ctx)
{
	struct rpc_sink_ctx sc;
	memset(&sc, 0, sizeof(sc));
	sc.rpc = rpc;
	sc.ctx = ctx;
	if(imps_presence_list(10000, list_sink, &sc) < 0)
		rpc->fault(ctx, 503, "State store unavailable: %s", imps_presence_last_error());
}

static void show_doc_sink(void *c, imps_str_t doc)
{
	struct rpc_sink_ctx *sc = (struct rpc_sink_ctx *)c;
	str d = imps_kstr(doc);
	sc->rpc->struct_add(sc->th, "S", "document", &d);
	sc->rpc->struct_add(sc->th, "[", "publications", &sc->pubs);
}

static void show_pub_sink(void *c, const imps_presence_pubinfo_t *p)
{
	struct rpc_sink_ctx *sc = (struct rpc_sink_ctx *)c;
	void *th;
	str etag = imps_kstr(p->etag), src = imps_kstr(p->source), body = imps_kstr(p->body);
	long long left = p->expires_at - sc->now;
	if(sc->pubs == NULL || sc->rpc->array_add(sc->pubs, "{", &th) < 0)
		return;
	sc->rpc->struct_add(th, "SSddS", "etag", &etag, "source", &src, "expires",
			(int)(left > 0 ? left : 0), "published", (int)p->published_at, "body", &body);
}

static void rpc_show(rpc_t *rpc, void *ctx)
{
	str p;
	struct rpc_sink_ctx sc;
	memset(&sc, 0, sizeof(sc));
	if(rpc->scan(ctx, "S", &p) < 1) {
		rpc->fault(ctx, 400, "presentity (user@host) expected");
		return;
	}
	sc.rpc = rpc;
	sc.ctx = ctx;
	sc.now = (long long)time(NULL);
	if(rpc->add(ctx, "{", &sc.th) < 0)
		return;
	rpc->struct_add(sc.th, "S", "presentity", &p);
	if(imps_presence_show(imps_str_of(p), show_doc_sink, show_pub_sink, &sc) < 0)
		rpc->fault(ctx, 503, "State store unavailable: %s", imps_presence_last_error());
}

static void watchers_sink(void *c, const imps_presence_subinfo_t *s)
{
	struct rpc_sink_ctx *sc = (struct rpc_sink_ctx *)c;
	void *th;
	str sid = imps_kstr(s->sid), ev = imps_kstr(s->event), w = imps_kstr(s->watcher), wu = imps_kstr(s->watcher_uri),
		st = imps_kstr(s->status), t = imps_kstr(s->remote_target);
	long long left = s->expires_at - sc->now;
	if(sc->rpc->add(sc->ctx, "{", &th) < 0)
		return;
	sc->rpc->struct_add(th, "SSSSSSdd", "id", &sid, "event", &ev, "watcher", &w, "uri", &wu,
			"status", &st, "contact", &t, "expires", (int)(left > 0 ? left : 0), "cseq",
			(int)s->cseq);
}

static void rpc_watchers(rpc_t *rpc, void *ctx)
{
	str p;
	struct rpc_sink_ctx sc;
	memset(&sc, 0, sizeof(sc));
	if(rpc->scan(ctx, "S", &p) < 1) {
		rpc->fault(ctx, 400, "presentity (user@host) expected");
		return;
	}
	sc.rpc = rpc;
	sc.ctx = ctx;
	sc.now = (long long)time(NULL);
	if(imps_presence_watchers(imps_str_of(p), watchers_sink, &sc) < 0)
		rpc->fault(ctx, 503, "State store unavailable: %s", imps_presence_last_error());
}

static void rpc_authorize(rpc_t *rpc, void *ctx)
{
	str p, w, a;
	int code, changed;
	void *th;
	if(rpc->scan(ctx, "SSS", &p, &w, &a) < 3) {
		rpc->fault(ctx, 400, "<presentity> <watcher|domain|*> allow|block|polite-block|confirm expected");
		return;
	}
	code = action_code(&a);
	if(code < 0) {
		rpc->fault(ctx, 400, "action must be allow, block, polite-block or confirm");
		return;
	}
	if(rule_store(&p, &w, action_str(code)) < 0) {
		rpc->fault(ctx, 500, "cannot store the rule in %.*s", rules_table.len, rules_table.s);
		return;
	}
	changed = imps_presence_reauthorize(imps_str_of(p), (w.len == 1 && w.s[0] == '*') ? imps_str_of((str){0, 0}) : imps_str_of(w));
	if(changed < 0) {
		rpc->fault(ctx, 503, "rule stored; applying it failed: %s", imps_presence_last_error());
		return;
	}
	if(rpc->add(ctx, "{", &th) < 0)
		return;
	rpc->struct_add(th, "SSsd", "presentity", &p, "watcher", &w, "action", action_str(code),
			"changed", changed);
}

static void rpc_reauthorize(rpc_t *rpc, void *ctx)
{
	str p;
	str none = {0, 0};
	int changed;
	void *th;
	if(rpc->scan(ctx, "S", &p) < 1) {
		rpc->fault(ctx, 400, "presentity (user@host) expected");
		return;
	}
	changed = imps_presence_reauthorize(imps_str_of(p), imps_str_of(none));
	if(changed < 0) {
		rpc->fault(ctx, 503, "State store unavailable: %s", imps_presence_last_error());
		return;
	}
	if(rpc->add(ctx, "{", &th) < 0)
		return;
	rpc->struct_add(th, "Sd", "presentity", &p, "changed", changed);
}

static void rpc_terminate(rpc_t *rpc, void *ctx)
{
	str sid;
	int r;
	if(rpc->scan(ctx, "S", &sid) < 1) {
		rpc->fault(ctx, 400, "subscription id expected");
		return;
	}
	r = imps_presence_terminate(imps_str_of(sid));
	if(r < 0)
		rpc->fault(ctx, 503, "State store unavailable: %s", imps_presence_last_error());
	else if(r == 0)
		rpc->fault(ctx, 404, "Subscription not found");
	else
		rpc->rpl_printf(ctx, "terminated");
}

static void rpc_publish(rpc_t *rpc, void *ctx)
{
	str p, body, etag = {0, 0};
	int expires = 3600, n;
	imps_presence_reply_t rep;
	char *buf = NULL;
	void *th;

	n = rpc->scan(ctx, "SS*dS", &p, &body, &expires, &etag);
	if(n < 2) {
		rpc->fault(ctx, 400, "<presentity> <PIDF body or file> [expires] [etag] expected");
		return;
	}
	if(n < 3)
		expires = pub_default_expires;
	if(n < 4) {
		etag.s = NULL;
		etag.len = 0;
	}
	if(body.len == 1 && body.s[0] == '-') /* no body: a refresh or a remove */
		body.len = 0;
	if(body.len > 0 && body.s[0] == '/') { /* a file */
		FILE *f;
		char path[512];
		long sz;
		snprintf(path, sizeof(path), "%.*s", body.len, body.s);
		f = fopen(path, "rb");
		if(f == NULL) {
			rpc->fault(ctx, 404, "cannot open %s", path);
			return;
		}
		fseek(f, 0, SEEK_END);
		sz = ftell(f);
		fseek(f, 0, SEEK_SET);
		if(sz < 0 || sz > max_body_size) {
			fclose(f);
			rpc->fault(ctx, 400, "%s is larger than max_body_size", path);
			return;
		}
		buf = (char *)pkg_malloc(sz + 1);
		if(buf == NULL || fread(buf, 1, sz, f) != (size_t)sz) {
			fclose(f);
			if(buf)
				pkg_free(buf);
			rpc->fault(ctx, 500, "cannot read %s", path);
			return;
		}
		fclose(f);
		body.s = buf;
		body.len = (int)sz;
	}
	imps_presence_admin_publish(imps_str_of(p), imps_str_of(body), expires, imps_str_of(etag), &rep);
	if(buf)
		pkg_free(buf);
	if(rep.code >= 300) {
		rpc->fault(ctx, rep.code, "%s", rep.reason);
		return;
	}
	if(rpc->add(ctx, "{", &th) < 0)
		return;
	rpc->struct_add(th, "ds", "code", rep.code, "headers", rep.headers);
}

static void rpc_stats(rpc_t *rpc, void *ctx)
{
	void *th;
	long long subs = imps_presence_count_subscriptions();
	long long pubs = imps_presence_count_publications();
	if(rpc->add(ctx, "{", &th) < 0)
		return;
	rpc->struct_add(th, "ddddddddd", "publications", (int)get_stat_val(st_pubs),
			"live_publications", (int)(pubs < 0 ? 0 : pubs), "active_watchers",
			(int)(subs < 0 ? 0 : subs), "notifies_sent", (int)get_stat_val(st_sent),
			"notifies_failed", (int)get_stat_val(st_failed), "publish_412",
			(int)get_stat_val(st_412), "rejected_bodies", (int)get_stat_val(st_rejected),
			"timer_errors", (int)get_stat_val(st_timer_errors), "store_ok", subs < 0 ? 0 : 1);
}


static const char *rpc_list_doc[] = {"Presentities with their publication and watcher counts.", 0};
static const char *rpc_show_doc[] = {
	"The composed document of a presentity (user@host) and each publication.", 0};
static const char *rpc_watchers_doc[] = {"Subscriptions to a presentity (user@host).", 0};
static const char *rpc_authorize_doc[] = {
	"Set the rule for <presentity> <watcher|domain> allow|block|polite-block|confirm and apply "
	"it to existing subscriptions at once.", 0};
static const char *rpc_terminate_doc[] = {"End a subscription by id (reason deactivated).", 0};
static const char *rpc_publish_doc[] = {
	"Administrative publication: <user@host> <PIDF body, file path or -> [expires] [etag]: "
	"without etag a new publication; with it a refresh (empty body), modify or remove "
	"(expires 0).", 0};
static const char *rpc_stats_doc[] = {"Counters of imps_presence.", 0};
static const char *rpc_reauthorize_doc[] = {
	"Apply the rules as they are in the database now to the existing watchers of "
	"<presentity> (after rules were changed with SQL).", 0};

rpc_export_t presence_rpc_cmds[] = {
	{"imps_presence.list", rpc_list, rpc_list_doc, RET_ARRAY},
	{"imps_presence.show", rpc_show, rpc_show_doc, 0},
	{"imps_presence.watchers", rpc_watchers, rpc_watchers_doc, RET_ARRAY},
	{"imps_presence.authorize", rpc_authorize, rpc_authorize_doc, 0},
	{"imps_presence.terminate", rpc_terminate, rpc_terminate_doc, 0},
	{"imps_presence.publish", rpc_publish, rpc_publish_doc, 0},
	{"imps_presence.stats", rpc_stats, rpc_stats_doc, 0},
	{"imps_presence.reauthorize", rpc_reauthorize, rpc_reauthorize_doc, 0},
	{0, 0, 0, 0}
};
