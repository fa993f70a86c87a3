/* imps_reginfo: RPC commands. */
#include <string.h>
#include <time.h>

#include "core/dprint.h"
#include "core/counters.h"

#include "imps_reginfo.h"


extern stat_var *st_sent;
extern stat_var *st_failed;
extern stat_var *st_timer_errors;

struct rpc_sink_ctx
{
	rpc_t *rpc;
	void *ctx;
	long long now;
};

static void list_sink(void *c, const imps_reginfo_subinfo_t *s)
{
	struct rpc_sink_ctx *sc = (struct rpc_sink_ctx *)c;
	void *th;
	str sid = imps_kstr(s->sid), aor = imps_kstr(s->aor), w = imps_kstr(s->watcher), t = imps_kstr(s->remote_target),
		sock = imps_kstr(s->socket);
	long long left = s->expires_at - sc->now;
	if(sc->rpc->add(sc->ctx, "{", &th) < 0)
		return;
	sc->rpc->struct_add(th, "SSSSSddd", "id", &sid, "aor", &aor, "watcher", &w, "contact", &t,
			"socket", &sock, "expires", (int)(left > 0 ? left : 0), "version",
			(int)s->version, "cseq", (int)s->cseq);
}

static void rpc_list(rpc_t *rpc, void *ctx)
{
	str aor = {0, 0};
	struct rpc_sink_ctx sc;
	if(rpc->scan(ctx, "*S", &aor) < 1) { /* optional: a placeholder is left when absent */
		aor.s = NULL;
		aor.len = 0;
	}
	sc.rpc = rpc;
	sc.ctx = ctx;
	sc.now = (long long)time(NULL);
	if(imps_reginfo_list(imps_str_of(aor), 10000, list_sink, &sc) < 0)
		rpc->fault(ctx, 503, "State store unavailable: %s", imps_reginfo_last_error());
}

static void show_sink(void *c, imps_str_t doc)
{
	struct rpc_sink_ctx *sc = (struct rpc_sink_ctx *)c;
	str d = imps_kstr(doc);
	sc->rpc->add(sc->ctx, "S", &d);
}

static void rpc_show(rpc_t *rpc, void *ctx)
{
	str aor;
	struct rpc_sink_ctx sc;
	if(rpc->scan(ctx, "S", &aor) < 1) {
		rpc->fault(ctx, 400, "AoR (user@host) expected");
		return;
	}
	sc.rpc = rpc;
	sc.ctx = ctx;
	sc.now = (long long)time(NULL);
	if(imps_reginfo_show(imps_str_of(aor), sc.now, show_sink, &sc) < 0)
		rpc->fault(ctx, 503, "State store unavailable: %s", imps_reginfo_last_error());
}

static void rpc_terminate(rpc_t *rpc, void *ctx)
{
	str aor, contact = {0, 0}, event = {0, 0};
	urecord_t *r = NULL;
	ucontact_t *c, *next;
	int removed = 0;
	void *th;
	int nparams;

	/* binrpc fills missing optional parameters with a placeholder: trust only the count */
	nparams = rpc->scan(ctx, "S*SS", &aor, &contact, &event);
	if(nparams < 1) {
		rpc->fault(ctx, 400, "AoR (user@host) expected");
		return;
	}
	if(nparams < 2)
		contact.len = 0;
	if(nparams < 3)
		event.len = 0;
	if(contact.len == 1 && contact.s[0] == '*')
		contact.len = 0;
	if(event.len > 0 && !(event.len == 8 && strncmp(event.s, "rejected", 8) == 0)
			&& !(event.len == 11 && strncmp(event.s, "deactivated", 11) == 0)) {
		rpc->fault(ctx, 400, "event must be 'deactivated' or 'rejected'");
		return;
	}
	if(ul_dom == NULL) {
		rpc->fault(ctx, 500, "usrloc domain not available");
		return;
	}
	ul.lock_udomain(ul_dom, &aor);
	if(ul.get_urecord(ul_dom, &aor, &r) != 0 || r == NULL) {
		ul.unlock_udomain(ul_dom, &aor);
		rpc->fault(ctx, 404, "AoR not found");
		return;
	}
	admin_event = (event.len == 8) ? "rejected" : "deactivated";
	for(c = r->contacts; c; c = next) {
		next = c->next;
		if(contact.len > 0 && (c->c.len != contact.len || memcmp(c->c.s, contact.s, contact.len)))
			continue;
		if(ul.delete_ucontact(r, c) == 0)
			removed++;
	}
	admin_event = NULL;
	ul.release_urecord(r);
	ul.unlock_udomain(ul_dom, &aor);
	if(removed == 0) {
		rpc->fault(ctx, 404, "Contact not found");
		return;
	}
	if(rpc->add(ctx, "{", &th) < 0)
		return;
	rpc->struct_add(th, "Sd", "aor", &aor, "removed", removed);
}

static void rpc_stats(rpc_t *rpc, void *ctx)
{
	void *th;
	long long active = imps_reginfo_count();
	if(rpc->add(ctx, "{", &th) < 0)
		return;
	rpc->struct_add(th, "ddddd", "active_subscriptions", (int)(active < 0 ? 0 : active),
			"notifies_sent", (int)get_stat_val(st_sent), "notifies_failed",
			(int)get_stat_val(st_failed), "timer_errors", (int)get_stat_val(st_timer_errors),
			"store_ok", active < 0 ? 0 : 1);
}


static const char *rpc_list_doc[] = {
	"List reg event subscriptions; optional AoR (user@host) filter.", 0};
static const char *rpc_show_doc[] = {
	"Show the full reginfo document of an AoR now.", 0};
static const char *rpc_terminate_doc[] = {
	"Remove an AoR's contacts (all, or one contact URI) from usrloc; watchers are told "
	"'deactivated' or, with a third parameter 'rejected', 'rejected'.", 0};
static const char *rpc_stats_doc[] = {
	"Subscription and NOTIFY counters of imps_reginfo.", 0};

rpc_export_t reginfo_rpc_cmds[] = {
	{"imps_reginfo.list", rpc_list, rpc_list_doc, RET_ARRAY},
	{"imps_reginfo.show", rpc_show, rpc_show_doc, 0},
	{"imps_reginfo.terminate", rpc_terminate, rpc_terminate_doc, 0},
	{"imps_reginfo.stats", rpc_stats, rpc_stats_doc, 0},
	{0, 0, 0, 0}
};
