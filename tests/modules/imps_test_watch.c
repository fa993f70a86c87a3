/*
 * imps_test_watch: a test-only Kamailio module that consumes imps_presence's in-process API
 * (bind_imps_presence(), imps_presence_api.h) the way the resource list server does: it
 * watches presentities and keeps what each NOTIFY delivered, for the functional tests to read
 * over RPC. Not installed; built by `make test` into build/test-modules.
 *
 *   kamcmd imps_test_watch.watch <presentity> <watcher> <key> <expires>   -> code, id
 *   kamcmd imps_test_watch.unwatch <presentity> <id>
 *   kamcmd imps_test_watch.document <presentity>
 *   kamcmd imps_test_watch.notifies                                        -> every NOTIFY
 *   kamcmd imps_test_watch.answer <code>     what the callback answers from now on
 */
#include <stdio.h>
#include <string.h>

#include "core/sr_module.h"
#include "core/dprint.h"
#include "core/rpc.h"
#include "core/rpc_lookup.h"
#include "core/locking.h"
#include "core/mem/shm_mem.h"

#include "imps_presence/imps_presence_api.h"

MODULE_VERSION

#define MAX_SEEN 256
#define MAX_BODY 4096

struct seen
{
	int pid;
	unsigned long long version;
	char presentity[128], id[64], key[64], state[96], ctype[64];
	char body[MAX_BODY];
};

struct log
{
	gen_lock_t lock;
	int n;
	int answer;
	struct seen s[MAX_SEEN];
};

static struct log *seen_log = NULL;
static imps_presence_api_t api;

static void cp(char *dst, size_t size, str *s)
{
	size_t n = s->len > 0 ? (size_t)s->len : 0;
	if(n >= size)
		n = size - 1;
	memcpy(dst, s->s, n);
	dst[n] = '\0';
}

static int on_notify(const imps_presence_local_notify_t *n, void *param)
{
	struct seen *e;
	int answer;
	lock_get(&seen_log->lock);
	answer = seen_log->answer;
	if(seen_log->n < MAX_SEEN) {
		e = &seen_log->s[seen_log->n++];
		e->pid = my_pid();
		e->version = n->version;
		cp(e->presentity, sizeof(e->presentity), (str *)&n->presentity);
		cp(e->id, sizeof(e->id), (str *)&n->id);
		cp(e->key, sizeof(e->key), (str *)&n->key);
		cp(e->state, sizeof(e->state), (str *)&n->state);
		cp(e->ctype, sizeof(e->ctype), (str *)&n->content_type);
		cp(e->body, sizeof(e->body), (str *)&n->body);
		for(char *c = e->body; *c; c++) /* one line in kamcmd's output */
			if(*c == '\n' || *c == '\r')
				*c = ' ';
	}
	lock_release(&seen_log->lock);
	return answer;
}

static void rpc_watch(rpc_t *rpc, void *ctx)
{
	str p, w, k;
	int expires, code;
	char id[64];
	void *th;
	if(rpc->scan(ctx, "SSSd", &p, &w, &k, &expires) < 4) {
		rpc->fault(ctx, 400, "<presentity> <watcher> <key> <expires> expected");
		return;
	}
	code = api.watch(&p, &w, "test", &k, expires, id, sizeof(id));
	if(rpc->add(ctx, "{", &th) < 0)
		return;
	rpc->struct_add(th, "ds", "code", code, "id", id);
}

static void rpc_unwatch(rpc_t *rpc, void *ctx)
{
	str p, id;
	if(rpc->scan(ctx, "SS", &p, &id) < 2) {
		rpc->fault(ctx, 400, "<presentity> <id> expected");
		return;
	}
	rpc->add(ctx, "d", api.unwatch(&p, &id));
}

static void doc_sink(void *c, str *doc)
{
	void **r = (void **)c;
	((rpc_t *)r[0])->add(r[1], "S", doc);
}

static void rpc_document(rpc_t *rpc, void *ctx)
{
	str p;
	void *r[2] = {rpc, ctx};
	if(rpc->scan(ctx, "S", &p) < 1) {
		rpc->fault(ctx, 400, "<presentity> expected");
		return;
	}
	if(api.document(&p, doc_sink, r) < 0)
		rpc->fault(ctx, 503, "no document");
}

static void rpc_notifies(rpc_t *rpc, void *ctx)
{
	int i;
	void *th;
	lock_get(&seen_log->lock);
	for(i = 0; i < seen_log->n; i++) {
		struct seen *e = &seen_log->s[i];
		if(rpc->add(ctx, "{", &th) < 0)
			break;
		rpc->struct_add(th, "dsssssss", "version", (int)e->version, "presentity", e->presentity,
				"id", e->id, "key", e->key, "state", e->state, "content_type", e->ctype,
				"body", e->body[0] ? e->body : "-", "pid", e->pid > 0 ? "worker" : "-");
	}
	lock_release(&seen_log->lock);
}

static void rpc_answer(rpc_t *rpc, void *ctx)
{
	int code;
	if(rpc->scan(ctx, "d", &code) < 1) {
		rpc->fault(ctx, 400, "<code> expected");
		return;
	}
	seen_log->answer = code;
	rpc->add(ctx, "d", code);
}

static const char *doc_[] = {"imps_test_watch (tests only)", 0};
static rpc_export_t rpc_cmds[] = {
	{"imps_test_watch.watch", rpc_watch, doc_, 0},
	{"imps_test_watch.unwatch", rpc_unwatch, doc_, 0},
	{"imps_test_watch.document", rpc_document, doc_, 0},
	{"imps_test_watch.notifies", rpc_notifies, doc_, RET_ARRAY},
	{"imps_test_watch.answer", rpc_answer, doc_, 0},
	{0, 0, 0, 0}
};

static int mod_init(void)
{
	bind_imps_presence_f bind = (bind_imps_presence_f)find_export("bind_imps_presence", 0, 0);
	if(bind == NULL || bind(&api) < 0) {
		LM_ERR("load imps_presence before imps_test_watch\n");
		return -1;
	}
	seen_log = (struct log *)shm_malloc(sizeof(*seen_log));
	if(seen_log == NULL || lock_init(&seen_log->lock) == NULL)
		return -1;
	seen_log->n = 0;
	seen_log->answer = 200;
	if(api.register_consumer("test", on_notify, NULL) < 0)
		return -1;
	return rpc_register_array(rpc_cmds);
}

struct module_exports exports = {
	"imps_test_watch", DEFAULT_DLFLAGS, 0, 0, 0, 0, 0, mod_init, 0, 0
};
