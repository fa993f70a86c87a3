/* imps_xcap: RPC commands (kamcmd imps_xcap.*). */
#include <string.h>

#include "core/dprint.h"

#include "imps_xcap.h"

struct rpc_ctx
{
	rpc_t *rpc;
	void *ctx;
	str path;
	int n;
};

static void list_sink(void *c, imps_str_t path, imps_str_t etag, long long modified,
		long long size)
{
	struct rpc_ctx *rc = (struct rpc_ctx *)c;
	void *th;
	str p = imps_kstr(path), e = imps_kstr(etag);
	if(rc->rpc->add(rc->ctx, "{", &th) < 0)
		return;
	rc->rpc->struct_add(th, "SSdd", "path", &p, "etag", &e, "size", (int)size, "modified",
			(int)modified);
	rc->n++;
}

static const char *rpc_list_doc[] = {
		"The documents of a user (its XUI, e.g. sip:alice@a.example), or of everyone without "
		"an argument: path, etag, size, modified.",
		0};

static void rpc_list(rpc_t *rpc, void *ctx)
{
	struct rpc_ctx rc;
	str user = STR_NULL;
	char xui[512];
	imps_str_t u = {"", 0};
	memset(&rc, 0, sizeof(rc));
	rc.rpc = rpc;
	rc.ctx = ctx;
	if(rpc->scan(ctx, "*S", &user) == 1 && user.len > 0) {
		/* "alice@a.example" and "sip:alice@a.example" name the same user */
		int n = snprintf(xui, sizeof(xui), "%s%.*s",
				(user.len > 4 && strncmp(user.s, "sip:", 4) == 0) ? "" : "sip:", user.len, user.s);
		if(n <= 0 || n >= (int)sizeof(xui)) {
			rpc->fault(ctx, 400, "user too long");
			return;
		}
		u.s = xui;
		u.len = (size_t)n;
	}
	if(imps_xcap_list(u, list_sink, &rc) < 0)
		rpc->fault(ctx, 500, "the documents cannot be read");
}

static void show_sink(void *c, imps_str_t body, imps_str_t etag, long long modified)
{
	struct rpc_ctx *rc = (struct rpc_ctx *)c;
	void *th;
	str b = imps_kstr(body), e = imps_kstr(etag);
	if(rc->rpc->add(rc->ctx, "{", &th) < 0)
		return;
	rc->rpc->struct_add(th, "SSdS", "path", &rc->path, "etag", &e, "modified", (int)modified,
			"document", &b);
}

static const char *rpc_show_doc[] = {
		"One document by its path below the XCAP root "
		"(resource-lists/users/sip:alice@a.example/index): etag, modified, document.",
		0};

static void rpc_show(rpc_t *rpc, void *ctx)
{
	struct rpc_ctx rc;
	int r;
	memset(&rc, 0, sizeof(rc));
	rc.rpc = rpc;
	rc.ctx = ctx;
	if(rpc->scan(ctx, "S", &rc.path) < 1) {
		rpc->fault(ctx, 400, "a document path is needed");
		return;
	}
	r = imps_xcap_show(imps_str_of(rc.path), show_sink, &rc);
	if(r == 1)
		rpc->fault(ctx, 404, "no such document");
	else if(r < 0)
		rpc->fault(ctx, 500, "the document cannot be read");
}

static const char *rpc_delete_doc[] = {
		"Deletes one document by its path below the XCAP root, as the admin.", 0};

static void rpc_delete(rpc_t *rpc, void *ctx)
{
	str path;
	int r;
	if(rpc->scan(ctx, "S", &path) < 1) {
		rpc->fault(ctx, 400, "a document path is needed");
		return;
	}
	r = imps_xcap_delete(imps_str_of(path));
	if(r == 1)
		rpc->fault(ctx, 404, "no such document");
	else if(r < 0)
		rpc->fault(ctx, 500, "the document cannot be deleted");
	else
		rpc->rpl_printf(ctx, "deleted");
}

static const char *rpc_stats_doc[] = {
		"Requests by method, replies by status, refused changes by reason.", 0};

static void rpc_stats(rpc_t *rpc, void *ctx)
{
	void *th;
	if(rpc->add(ctx, "{", &th) < 0)
		return;
	rpc_stats_add(rpc, th);
}

static const char *rpc_caps_doc[] = {"The xcap-caps document this server generates.", 0};

static void rpc_caps(rpc_t *rpc, void *ctx)
{
	str c = imps_kstr(imps_xcap_caps());
	rpc->add(ctx, "S", &c);
}

rpc_export_t xcap_rpc_cmds[] = {
	{"imps_xcap.list", rpc_list, rpc_list_doc, RET_ARRAY},
	{"imps_xcap.show", rpc_show, rpc_show_doc, 0},
	{"imps_xcap.delete", rpc_delete, rpc_delete_doc, 0},
	{"imps_xcap.stats", rpc_stats, rpc_stats_doc, 0},
	{"imps_xcap.caps", rpc_caps, rpc_caps_doc, 0},
	{0, 0, 0, 0}
};
