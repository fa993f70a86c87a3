/*
 * imps_rls: the resource list server (RFC 4662) - SUBSCRIBEs to the list services of users'
 * rls-services documents (RFC 4826, from imps_xcap in the same Kamailio), every member of our
 * domains watched in process through imps_presence (bind_imps_presence: no SIP round trip),
 * members of other domains by back-end SUBSCRIBEs through the HSP (backend.c), member changes
 * batched into RLMI + multipart/related NOTIFYs on the shared subscription layer
 * (modules/common: imps/subs.hpp, shim/imps_notify.h).
 *
 * This file: export tables, parameters, statistics, KEMI, mod_init/child_init/destroy, the
 * module's timer process, the callbacks of imps_presence (member NOTIFYs) and imps_xcap
 * (document changes). The rest: subscribe.c, backend.c, rpc.c; the logic is the C++ core in core/.
 */
#include <string.h>

#include "core/sr_module.h"
#include "core/dprint.h"
#include "core/pt.h"
#include "core/kemi.h"
#include "core/timer_proc.h"
#include "core/rpc_lookup.h"

#include "imps_rls.h"

MODULE_VERSION

static int mod_init(void);
static int child_init(int rank);
static void mod_destroy(void);

static char *redis_host = "127.0.0.1";
static int redis_port = 6379;
static char *redis_password = "";
static int redis_db = 0;
static int redis_connect_timeout = 500;
static int redis_timeout = 500;
static int redis_retry_interval = 1000;
static char *key_prefix = "imps:rls";
static int min_expires = 60;
static int max_expires = 3600;
static int default_expires = 3600;
static int batch_interval = 50; /* ms */
static int max_notify_size = 32768; /* bytes of member state per NOTIFY */
static char *adhoc_user = "rls";    /* RFC 5367 ad-hoc lists: SUBSCRIBE <adhoc_user>@<domain> */
static int client_compat = 1;       /* liblinphone's list NOTIFY quirks for its ad-hoc lists */
static int max_members = 200;
static int max_depth = 8;
static int max_list_subscriptions = 16;
static int max_backends = 10000;
static int timer_interval = 20; /* ms */
static int notify_timeout_action = 1;
static int notify_busy_timeout = 35;
static char *node_id = "";
static char *trusted_peers = "";
char *contact_uri = "";
static char *local_domains = "";   /* members of other domains: back-end SUBSCRIBEs */
static char *outbound_proxy = "";  /* their next hop: the HSP */
static char *backend_contact = ""; /* our Contact in them (default: the first socket) */
static int remote_expires = 3600;
static int remote_retry = 30;      /* s after a failure */
static int max_backends_per_list = 200;
static int max_backends_per_user = 1000;
static char contact_buf[160];
static long long epoch_ms = 0;

imps_trusted_peers_t trusted;
tm_api_t tmb;
sl_api_t slb;
imps_presence_api_t presence_api;
imps_xcap_api_t xcap_api;

static stat_var *st_lists, *st_sent, *st_failed, *st_bytes, *st_errors, *st_timer_errors, *st_backends,
		*st_remote, *st_bfailures, *st_refused;

static stat_export_t mod_stats[] = {
	{"list_subscriptions", STAT_NO_RESET, &st_lists},
	{"backends", STAT_NO_RESET, &st_backends},
	{"backends_remote", STAT_NO_RESET, &st_remote},
	{"backend_failures", 0, &st_bfailures},
	{"backends_refused", 0, &st_refused},
	{"notifies_sent", 0, &st_sent},
	{"notifies_failed", 0, &st_failed},
	{"notify_bytes", 0, &st_bytes},
	{"list_errors", 0, &st_errors},
	{"timer_errors", 0, &st_timer_errors},
	{0, 0, 0}
};

static cmd_export_t cmds[] = {
	{"imps_rls_handle_subscribe", (cmd_function)w_handle_subscribe, 0, 0, 0,
			REQUEST_ROUTE | FAILURE_ROUTE},
	{"imps_rls_handle_notify", (cmd_function)w_handle_notify, 0, 0, 0, REQUEST_ROUTE},
	{0, 0, 0, 0, 0, 0}
};

static param_export_t params[] = {
	{"redis_host", PARAM_STRING, &redis_host},
	{"redis_port", PARAM_INT, &redis_port},
	{"redis_password", PARAM_STRING, &redis_password},
	{"redis_db", PARAM_INT, &redis_db},
	{"redis_connect_timeout", PARAM_INT, &redis_connect_timeout},
	{"redis_timeout", PARAM_INT, &redis_timeout},
	{"redis_retry_interval", PARAM_INT, &redis_retry_interval},
	{"key_prefix", PARAM_STRING, &key_prefix},
	{"min_expires", PARAM_INT, &min_expires},
	{"max_expires", PARAM_INT, &max_expires},
	{"default_expires", PARAM_INT, &default_expires},
	{"batch_interval", PARAM_INT, &batch_interval},
	{"max_notify_size", PARAM_INT, &max_notify_size},
	{"adhoc_user", PARAM_STRING, &adhoc_user},
	{"client_compat", PARAM_INT, &client_compat},
	{"max_members", PARAM_INT, &max_members},
	{"max_depth", PARAM_INT, &max_depth},
	{"max_list_subscriptions", PARAM_INT, &max_list_subscriptions},
	{"max_backends", PARAM_INT, &max_backends},
	{"timer_interval", PARAM_INT, &timer_interval},
	{"notify_timeout_action", PARAM_INT, &notify_timeout_action},
	{"notify_busy_timeout", PARAM_INT, &notify_busy_timeout},
	{"node_id", PARAM_STRING, &node_id},
	{"trusted_peers", PARAM_STRING, &trusted_peers},
	{"contact", PARAM_STRING, &contact_uri},
	{"local_domains", PARAM_STRING, &local_domains},
	{"outbound_proxy", PARAM_STRING, &outbound_proxy},
	{"backend_contact", PARAM_STRING, &backend_contact},
	{"remote_expires", PARAM_INT, &remote_expires},
	{"remote_retry", PARAM_INT, &remote_retry},
	{"max_backends_per_list", PARAM_INT, &max_backends_per_list},
	{"max_backends_per_user", PARAM_INT, &max_backends_per_user},
	{0, 0, 0}
};

struct module_exports exports = {
	"imps_rls", DEFAULT_DLFLAGS, cmds, params, 0, 0, 0, mod_init, child_init, mod_destroy
};

static void stat_cb(int which, long long delta)
{
	switch(which) {
		case IMPS_RSTAT_LISTS:
			update_stat(st_lists, (int)delta);
			break;
		case IMPS_RSTAT_SENT:
			update_stat(st_sent, (int)delta);
			break;
		case IMPS_RSTAT_FAILED:
			update_stat(st_failed, (int)delta);
			break;
		case IMPS_RSTAT_BYTES:
			update_stat(st_bytes, (int)delta);
			break;
		case IMPS_RSTAT_LIST_ERRORS:
			update_stat(st_errors, (int)delta);
			break;
		case IMPS_RSTAT_TIMER_ERRORS:
			update_stat(st_timer_errors, (int)delta);
			break;
		case IMPS_RSTAT_BACKENDS:
			update_stat(st_backends, (int)delta);
			break;
		case IMPS_RSTAT_BACKENDS_REMOTE:
			update_stat(st_remote, (int)delta);
			break;
		case IMPS_RSTAT_BACKEND_FAILURES:
			update_stat(st_bfailures, (int)delta);
			break;
		case IMPS_RSTAT_BACKENDS_REFUSED:
			update_stat(st_refused, (int)delta);
			break;
	}
}

void rpc_stats_add(rpc_t *rpc, void *th)
{
	rpc->struct_add(th, "dddddddddd", "list_subscriptions", (int)get_stat_val(st_lists), "backends",
			(int)get_stat_val(st_backends), "backends_remote", (int)get_stat_val(st_remote),
			"backend_failures", (int)get_stat_val(st_bfailures), "backends_refused",
			(int)get_stat_val(st_refused), "notifies_sent", (int)get_stat_val(st_sent),
			"notifies_failed", (int)get_stat_val(st_failed), "notify_bytes",
			(int)get_stat_val(st_bytes), "list_errors", (int)get_stat_val(st_errors),
			"timer_errors", (int)get_stat_val(st_timer_errors));
}

/* ---- the other modules' callbacks ---------------------------------------------------------- */

static int member_cb(const imps_presence_local_notify_t *n, void *param)
{
	if(open_core() < 0)
		return 500;
	return imps_rls_member_notify(imps_str_of(n->key), imps_str_of(n->presentity),
			imps_str_of(n->state), imps_str_of(n->content_type), imps_str_of(n->body));
}

static void changed_cb(imps_str_t path, imps_str_t old_etag, imps_str_t new_etag, void *param)
{
	if(open_core() < 0)
		return;
	imps_rls_document_changed(path);
}

static int watch_cb(imps_str_t presentity, imps_str_t watcher, imps_str_t key, int expires,
		char *id, int id_size)
{
	str p = imps_kstr(presentity), w = imps_kstr(watcher), k = imps_kstr(key);
	return presence_api.watch(&p, &w, "imps_rls", &k, expires, id, id_size);
}

static int unwatch_cb(imps_str_t presentity, imps_str_t id)
{
	str p = imps_kstr(presentity), i = imps_kstr(id);
	return presence_api.unwatch(&p, &i);
}

/* ---- lifecycle --------------------------------------------------------------------------- */

/* our Contact in back-end dialogs: the configured one, else sip:<first socket> */
static const char *backend_contact_uri(void)
{
	struct socket_info *si;
	if(backend_contact && *backend_contact)
		return backend_contact;
	if(contact_buf[0])
		return contact_buf;
	si = get_first_socket();
	if(si == NULL)
		return "";
	snprintf(contact_buf, sizeof(contact_buf), "sip:%.*s:%d", si->address_str.len,
			si->address_str.s, (int)si->port_no);
	return contact_buf;
}

int open_core(void)
{
	imps_rls_config_t cfg;
	imps_rls_host_t host;
	char node_buf[128];

	if(imps_rls_is_open())
		return 0;
	memset(&cfg, 0, sizeof(cfg));
	cfg.redis_host = redis_host;
	cfg.redis_port = redis_port;
	cfg.redis_password = redis_password;
	cfg.redis_db = redis_db;
	cfg.redis_connect_timeout_ms = redis_connect_timeout;
	cfg.redis_timeout_ms = redis_timeout;
	cfg.redis_retry_interval_ms = redis_retry_interval;
	cfg.key_prefix = key_prefix;
	cfg.min_expires = min_expires;
	cfg.max_expires = max_expires;
	cfg.default_expires = default_expires;
	cfg.batch_ms = batch_interval;
	cfg.max_notify_size = max_notify_size;
	cfg.adhoc_user = adhoc_user;
	cfg.client_compat = client_compat;
	cfg.max_members = max_members;
	cfg.max_depth = max_depth;
	cfg.max_list_subscriptions = max_list_subscriptions;
	cfg.max_backends = max_backends;
	cfg.remove_on_timeout = notify_timeout_action;
	cfg.notify_busy_ms = notify_busy_timeout * 1000;
	cfg.node = imps_node_name(node_id, node_buf, sizeof(node_buf));
	cfg.epoch = epoch_ms;
	cfg.xcap_root = xcap_api.root;
	cfg.local_domains = local_domains;
	cfg.outbound_proxy = outbound_proxy;
	cfg.contact = backend_contact_uri();
	cfg.remote_expires = remote_expires;
	cfg.remote_retry_ms = remote_retry * 1000;
	cfg.max_backends_per_list = max_backends_per_list;
	cfg.max_backends_per_user = max_backends_per_user;
	memset(&host, 0, sizeof(host));
	host.log = imps_log_sink;
	host.send_request = send_request;
	host.stat = stat_cb;
	host.xcap = imps_xcap_reader_of(&xcap_api);
	host.watch = watch_cb;
	host.unwatch = unwatch_cb;
	host.send_backend = send_backend;
	return imps_rls_open(&cfg, &host);
}

/* the module's own process: NOTIFY responses, expiry, batched NOTIFYs now due */
static void rls_timer(unsigned int ticks, void *param)
{
	static long long next_due = 0, next_expiry = 0;
	long long ms;
	int expiry;
	if(open_core() < 0)
		return;
	handle_completions();
	handle_backend_responses();
	ms = imps_now_ms();
	if(ms >= next_due) {
		expiry = ms >= next_expiry;
		next_due = ms + timer_interval;
		if(expiry)
			next_expiry = ms + 1000;
		imps_rls_tick(ms / 1000, ms, expiry);
	}
}

static int mod_init(void)
{
	bind_imps_presence_f bindp;
	bind_imps_xcap_f bindx;

	epoch_ms = imps_now_ms();
	if(min_expires < 0 || max_expires < min_expires || default_expires < min_expires
			|| default_expires > max_expires) {
		LM_ERR("expires parameters must satisfy 0 <= min <= default <= max\n");
		return -1;
	}
	if(batch_interval < 0 || max_notify_size < 1024 || max_members < 1 || max_depth < 1 || max_list_subscriptions < 1
			|| max_backends < 1 || timer_interval < 10 || notify_busy_timeout < 1
			|| remote_expires < 1 || remote_retry < 1 || max_backends_per_list < 1
			|| max_backends_per_user < 1) {
		LM_ERR("batch_interval >= 0, max_notify_size >= 1024, max_members, max_depth, max_list_subscriptions, "
			   "max_backends, max_backends_per_list, max_backends_per_user, remote_expires, "
			   "remote_retry >= 1, timer_interval >= 10 and notify_busy_timeout >= 1 are "
			   "required\n");
		return -1;
	}
	if(imps_parse_trusted_peers(trusted_peers, &trusted) < 0)
		return -1;
	bindp = (bind_imps_presence_f)find_export("bind_imps_presence", 0, 0);
	if(bindp == NULL || bindp(&presence_api) < 0
			|| presence_api.register_consumer("imps_rls", member_cb, NULL) < 0) {
		LM_ERR("imps_rls needs imps_presence in the same Kamailio (load it first)\n");
		return -1;
	}
	bindx = (bind_imps_xcap_f)find_export("bind_imps_xcap", 0, 0);
	if(bindx == NULL || bindx(&xcap_api) < 0 || xcap_api.register_change(changed_cb, NULL) < 0) {
		LM_ERR("imps_rls needs imps_xcap in the same Kamailio (its lists)\n");
		return -1;
	}
	if(load_tm_api(&tmb) < 0 || sl_load_api(&slb) < 0) {
		LM_ERR("load tm and sl before imps_rls\n");
		return -1;
	}
	if((completions = imps_cq_new()) == NULL || backend_init() < 0)
		return -1;
	if(register_module_stats(exports.name, mod_stats) != 0) {
		LM_ERR("cannot register statistics\n");
		return -1;
	}
	if(rpc_register_array(rls_rpc_cmds) != 0) {
		LM_ERR("cannot register RPC commands\n");
		return -1;
	}
	register_basic_timers(1);
	return 0;
}

static int child_init(int rank)
{
	return imps_child_init(rank, "imps_rls", "IMPS RLS TIMER", rls_timer, 10 * 1000, open_core);
}

static void mod_destroy(void)
{
	imps_rls_close();
}

/* clang-format off */
static sr_kemi_t sr_kemi_imps_rls_exports[] = {
	{ str_init("imps_rls"), str_init("handle_subscribe"),
		SR_KEMIP_INT, ki_handle_subscribe,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("imps_rls"), str_init("handle_notify"),
		SR_KEMIP_INT, ki_handle_notify,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ {0, 0}, {0, 0}, 0, NULL, { 0, 0, 0, 0, 0, 0 } }
};
/* clang-format on */

int mod_register(char *path, int *dlflags, void *p1, void *p2)
{
	sr_kemi_modules_add(sr_kemi_imps_rls_exports);
	return 0;
}
