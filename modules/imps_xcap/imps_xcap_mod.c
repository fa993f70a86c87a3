/*
 * imps_xcap: the List and Policy Server - an XCAP server (RFC 4825) for the application usages
 * resource-lists and rls-services (RFC 4826), pres-rules (RFC 5025, common-policy RFC 4745)
 * and OMA's variant, xcap-caps and OMA's xcap-directory, served through Kamailio's xhttp
 * module: event_route[xhttp:request] calls imps_xcap_handle(). Documents live in SQL through
 * Kamailio's DB API; every change is validated against the usage's schema and constraints
 * before it is stored.
 *
 * This file: export tables, parameters, statistics, KEMI, mod_init/child_init/destroy. The
 * rest of the shim: http.c, storage_db.c, rpc.c; the logic is the C++ core in core/.
 */
#include <string.h>
#include <strings.h>

#include "core/sr_module.h"
#include "core/dprint.h"
#include "core/kemi.h"
#include "core/rpc_lookup.h"

#include "imps_xcap.h"

MODULE_VERSION

static int mod_init(void);
static int child_init(int rank);

/* parameters */
char *xcap_root = "http://127.0.0.1:8080/xcap-root";
str root_path = STR_NULL;
static int max_doc_size = 1048576;
char *admin_identity = "";
static char *trusted_readers_param = "";
imps_trusted_peers_t trusted_readers;

xhttp_api_t xhttp_api;
extern unsigned int sql_buffer_size; /* core parameter sql_buffer_size */

/* statistics */
static stat_var *st_get, *st_put, *st_delete, *st_other;
static stat_var *st_2xx, *st_304, *st_401, *st_403, *st_404, *st_409, *st_412, *st_4xx, *st_5xx;
static stat_var *st_refused_total;

/* refused changes by reason (the xcap-error element or the check) */
static const char *refusal_names[] = {"not-well-formed", "not-xml-frag", "no-parent",
		"schema-validation-error", "not-xml-att-value", "cannot-insert", "cannot-delete",
		"uniqueness-failure", "constraint-failure", "not-utf-8", "media-type", "precondition",
		"too-large", "forbidden", "auth", "method", "uri", "auid", "storage", "extension", 0};
#define N_REFUSALS (sizeof(refusal_names) / sizeof(refusal_names[0]) - 1)
static stat_var *st_refused[N_REFUSALS];

static stat_export_t mod_stats[] = {
	{"requests_get", 0, &st_get},
	{"requests_put", 0, &st_put},
	{"requests_delete", 0, &st_delete},
	{"requests_other", 0, &st_other},
	{"replies_2xx", 0, &st_2xx},
	{"replies_304", 0, &st_304},
	{"replies_401", 0, &st_401},
	{"replies_403", 0, &st_403},
	{"replies_404", 0, &st_404},
	{"replies_409", 0, &st_409},
	{"replies_412", 0, &st_412},
	{"replies_4xx_other", 0, &st_4xx},
	{"replies_5xx", 0, &st_5xx},
	{"refused", 0, &st_refused_total},
	{0, 0, 0}
};

static cmd_export_t cmds[] = {
	{"imps_xcap_handle", (cmd_function)w_handle, 0, 0, 0, EVENT_ROUTE | REQUEST_ROUTE},
	{"imps_xcap_trusted", (cmd_function)w_trusted, 0, 0, 0, ANY_ROUTE},
	{"bind_imps_xcap", (cmd_function)bind_imps_xcap, 0, 0, 0, 0},
	{0, 0, 0, 0, 0, 0}
};

static param_export_t params[] = {
	{"root", PARAM_STRING, &xcap_root},
	{"db_url", PARAM_STR, &db_url},
	{"table", PARAM_STR, &xcap_table},
	{"max_document_size", PARAM_INT, &max_doc_size},
	{"admin", PARAM_STRING, &admin_identity},
	{"trusted_readers", PARAM_STRING, &trusted_readers_param},
	{0, 0, 0}
};

struct module_exports exports = {
	"imps_xcap", DEFAULT_DLFLAGS, cmds, params, 0, 0, 0, mod_init, child_init, 0
};

void count_request(str *method, int status, imps_str_t refused)
{
	int i;
	if(method->len == 3 && strncmp(method->s, "GET", 3) == 0)
		update_stat(st_get, 1);
	else if(method->len == 3 && strncmp(method->s, "PUT", 3) == 0)
		update_stat(st_put, 1);
	else if(method->len == 6 && strncmp(method->s, "DELETE", 6) == 0)
		update_stat(st_delete, 1);
	else
		update_stat(st_other, 1);
	if(status >= 200 && status < 300)
		update_stat(st_2xx, 1);
	else if(status == 304)
		update_stat(st_304, 1);
	else if(status == 401)
		update_stat(st_401, 1);
	else if(status == 403)
		update_stat(st_403, 1);
	else if(status == 404)
		update_stat(st_404, 1);
	else if(status == 409)
		update_stat(st_409, 1);
	else if(status == 412)
		update_stat(st_412, 1);
	else if(status >= 400 && status < 500)
		update_stat(st_4xx, 1);
	else if(status >= 500)
		update_stat(st_5xx, 1);
	if(refused.len == 0 || status < 400)
		return;
	update_stat(st_refused_total, 1);
	for(i = 0; refusal_names[i]; i++)
		if(strlen(refusal_names[i]) == refused.len
				&& strncmp(refusal_names[i], refused.s, refused.len) == 0) {
			update_stat(st_refused[i], 1);
			return;
		}
}

void rpc_stats_add(rpc_t *rpc, void *th)
{
	int i;
	void *r;
	rpc->struct_add(th, "dddd", "get", (int)get_stat_val(st_get), "put",
			(int)get_stat_val(st_put), "delete", (int)get_stat_val(st_delete), "other",
			(int)get_stat_val(st_other));
	rpc->struct_add(th, "ddddddddd", "2xx", (int)get_stat_val(st_2xx), "304",
			(int)get_stat_val(st_304), "401", (int)get_stat_val(st_401), "403",
			(int)get_stat_val(st_403), "404", (int)get_stat_val(st_404), "409",
			(int)get_stat_val(st_409), "412", (int)get_stat_val(st_412), "4xx_other",
			(int)get_stat_val(st_4xx), "5xx", (int)get_stat_val(st_5xx));
	if(rpc->struct_add(th, "{", "refused", &r) < 0)
		return;
	for(i = 0; refusal_names[i]; i++)
		rpc->struct_add(r, "d", refusal_names[i], (int)get_stat_val(st_refused[i]));
}

static int register_refusal_stats(void)
{
	static char names[N_REFUSALS][48];
	int i;
	for(i = 0; refusal_names[i]; i++) {
		char *p;
		snprintf(names[i], sizeof(names[i]), "refused_%s", refusal_names[i]);
		for(p = names[i]; *p; p++)
			if(*p == '-')
				*p = '_';
		if(register_stat("imps_xcap", names[i], &st_refused[i], 0) != 0) {
			LM_ERR("cannot register statistic %s\n", names[i]);
			return -1;
		}
	}
	return 0;
}

static int mod_init(void)
{
	char err[512];
	char *p;
	if(max_doc_size < 1024) {
		LM_ERR("max_document_size must be at least 1024 bytes\n");
		return -1;
	}
	/* the DB API builds each statement in one buffer: a document, escaped, must fit */
	if(sql_buffer_size < (unsigned int)max_doc_size * 2 + 4096) {
		LM_ERR("sql_buffer_size (%u) must be at least 2 * max_document_size + 4096 (%d): set "
			   "sql_buffer_size in the cfg file\n",
				sql_buffer_size, max_doc_size * 2 + 4096);
		return -1;
	}
	/* the path of the root URI ("http://host:port/xcap-root" -> "/xcap-root") */
	p = strstr(xcap_root, "://");
	p = p ? strchr(p + 3, '/') : NULL;
	if(p == NULL || p[1] == '\0') {
		LM_ERR("root must be an absolute HTTP URI with a path, e.g. "
			   "http://127.0.0.1:8080/xcap-root\n");
		return -1;
	}
	root_path.s = p;
	root_path.len = strlen(p);
	while(root_path.len > 1 && root_path.s[root_path.len - 1] == '/')
		root_path.len--;
	if(imps_parse_trusted_peers(trusted_readers_param, &trusted_readers) < 0)
		return -1;
	if(xhttp_load_api(&xhttp_api) < 0) {
		LM_ERR("load xhttp before imps_xcap\n");
		return -1;
	}
	if(storage_init() < 0)
		return -1;
	if(register_refusal_stats() < 0 || register_module_stats("imps_xcap", mod_stats) != 0) {
		LM_ERR("cannot register statistics\n");
		return -1;
	}
	if(rpc_register_array(xcap_rpc_cmds) != 0) {
		LM_ERR("cannot register RPC commands\n");
		return -1;
	}
	if(imps_xcap_init(xcap_root, (size_t)max_doc_size, &storage_ops, err, sizeof(err)) < 0) {
		LM_ERR("cannot start the XCAP core: %s\n", err);
		return -1;
	}
	if(api_init() < 0)
		return -1;
	LM_INFO("XCAP root %s (path %.*s), documents up to %d bytes\n", xcap_root, root_path.len,
			root_path.s, max_doc_size);
	return 0;
}

static int child_init(int rank)
{
	/* every process opens its database connection on first use (storage_db.c) */
	api_forked();
	return 0;
}

/* clang-format off */
static sr_kemi_t sr_kemi_imps_xcap_exports[] = {
	{ str_init("imps_xcap"), str_init("handle"),
		SR_KEMIP_INT, ki_handle,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("imps_xcap"), str_init("trusted"),
		SR_KEMIP_INT, ki_trusted,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ {0, 0}, {0, 0}, 0, NULL, { 0, 0, 0, 0, 0, 0 } }
};
/* clang-format on */

int mod_register(char *path, int *dlflags, void *p1, void *p2)
{
	sr_kemi_modules_add(sr_kemi_imps_xcap_exports);
	return 0;
}
