/*
 * imps_reginfo: RFC 3680 registration event package at the registrar, on the shared
 * subscription layer (modules/common: imps/subs.hpp and shim/imps_notify.h).
 *
 * This file: export tables, parameters, statistics, KEMI, mod_init/child_init/destroy and the
 * module's own timer process (the final responses of NOTIFYs, binding changes handed over by
 * processes that may not do I/O, expiry, deferred NOTIFYs). The rest of the shim is split by
 * concern (usrloc.c, subscribe.c, rpc.c); the logic is the C++ core in core/, reached through
 * imps_reginfo_capi.h.
 */
#include <string.h>
#include <time.h>

#include "core/sr_module.h"
#include "core/dprint.h"
#include "core/pt.h"
#include "core/counters.h"
#include "core/kemi.h"
#include "core/script_cb.h"
#include "core/timer_proc.h"
#include "core/rpc_lookup.h"

#include "imps_reginfo.h"

MODULE_VERSION

static int mod_init(void);
static int child_init(int rank);
static void mod_destroy(void);

/* parameters */
static char *redis_host = "127.0.0.1";
static int redis_port = 6379;
static char *redis_password = "";
static int redis_db = 0;
static int redis_connect_timeout = 500; /* ms */
static int redis_timeout = 500;         /* ms */
static int redis_retry_interval = 1000; /* ms */
static char *key_prefix = "imps:reginfo";
static int min_expires = 60;
static int max_expires = 3600;
static int default_expires = 3600;
static char *notify_state = "full";
static char *trusted_watchers = "";
/* the peers whose P-Asserted-Identity names the watcher (the edge proxy); anyone else is
 * identified by its From URI */
static char *trusted_peers = "";
imps_trusted_peers_t trusted;
char *usrloc_domain = "location";
char *contact_uri = "";
static int timer_interval = 1;         /* s: expiry */
static int notify_timeout_action = 1; /* 1: remove the subscription on 408, 0: keep it */
static int notify_busy_timeout = 35;   /* s: longest wait for a NOTIFY's final response */
static char *node_id = "";             /* "" : the first listening socket */
static long long epoch_ms = 0;         /* set in mod_init, the same in every process */

tm_api_t tmb;
sl_api_t slb;
usrloc_api_t ul;
udomain_t *ul_dom = NULL;

struct sip_msg *cur_register = NULL;
int in_script = 0;
const char *admin_event = NULL;

/* statistics */
stat_var *st_sent = NULL;
stat_var *st_failed = NULL;
stat_var *st_timer_errors = NULL;
static counter_val_t active_subscriptions(void);

static stat_export_t mod_stats[] = {
	{"active_subscriptions", STAT_IS_FUNC, (stat_var **)active_subscriptions},
	{"notifies_sent", 0, &st_sent},
	{"notifies_failed", 0, &st_failed},
	{"timer_errors", 0, &st_timer_errors},
	{0, 0, 0}
};

static cmd_export_t cmds[] = {
	{"imps_reginfo_handle_subscribe", (cmd_function)w_handle_subscribe, 0, 0, 0,
			REQUEST_ROUTE},
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
	{"notify_state", PARAM_STRING, &notify_state},
	{"trusted_watchers", PARAM_STRING, &trusted_watchers},
	{"trusted_peers", PARAM_STRING, &trusted_peers},
	{"usrloc_domain", PARAM_STRING, &usrloc_domain},
	{"contact", PARAM_STRING, &contact_uri},
	{"timer_interval", PARAM_INT, &timer_interval},
	{"notify_timeout_action", PARAM_INT, &notify_timeout_action},
	{"notify_busy_timeout", PARAM_INT, &notify_busy_timeout},
	{"node_id", PARAM_STRING, &node_id},
	{0, 0, 0}
};

struct module_exports exports = {
	"imps_reginfo",  /* module name */
	DEFAULT_DLFLAGS, /* dlopen flags */
	cmds,            /* cfg functions */
	params,          /* parameters */
	0,               /* RPC: registered in mod_init */
	0,               /* pseudo-variables */
	0,               /* response handling function */
	mod_init,        /* module init function */
	child_init,      /* per-child init function */
	mod_destroy      /* module destroy function */
};

static void stat_cb(int which, long long delta)
{
	if(which == IMPS_STAT_SENT)
		update_stat(st_sent, (int)delta);
	else if(which == IMPS_STAT_FAILED)
		update_stat(st_failed, (int)delta);
	else if(which == IMPS_STAT_TIMER_ERRORS)
		update_stat(st_timer_errors, (int)delta);
	/* active subscriptions are read from the store (STAT_IS_FUNC) */
}

static counter_val_t active_subscriptions(void)
{
	long long n = imps_reginfo_count();
	return n < 0 ? 0 : (counter_val_t)n;
}

/* ---- script callbacks: binding changes of a SIP worker are handled when its script ends -- */

#define ALL_SCRIPT_CB_TYPES                                                     \
	(REQUEST_CB | FAILURE_CB | ONREPLY_CB | BRANCH_CB | ONSEND_CB | ERROR_CB | LOCAL_CB \
			| EVENT_CB | BRANCH_FAILURE_CB)

static int pre_script_cb(struct sip_msg *msg, unsigned int flags, void *param)
{
	in_script++;
	cur_register = (msg->first_line.type == SIP_REQUEST
						   && msg->first_line.u.request.method_value == METHOD_REGISTER)
						   ? msg
						   : NULL;
	return 1;
}

static int post_script_cb(struct sip_msg *msg, unsigned int flags, void *param)
{
	cur_register = NULL;
	if(in_script > 0)
		in_script--;
	if(in_script == 0)
		imps_reginfo_run_changes(); /* usrloc's lock is released by now */
	return 1;
}

/* ---- the module's timer process ---------------------------------------------------------- */

static int open_core(void);

static void reginfo_timer(unsigned int ticks, void *param)
{
	static long long next_expiry = 0, next_due = 0;
	long long ms;

	if(open_core() < 0)
		return;
	handle_completions();
	handle_handed_over_changes();
	ms = imps_now_ms();
	if(ms >= next_due) {
		int expiry = ms >= next_expiry;
		if(expiry)
			next_expiry = ms + (long long)timer_interval * 1000;
		next_due = ms + 100;
		imps_reginfo_timer(ms / 1000, ms, expiry);
	}
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static int core_open = 0;

static int open_core(void)
{
	imps_reginfo_config_t cfg;
	imps_reginfo_host_t host;
	char node_buf[128];

	if(core_open)
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
	cfg.partial_state = strcmp(notify_state, "partial") == 0;
	cfg.remove_on_timeout = notify_timeout_action;
	cfg.trusted_watchers = trusted_watchers;
	cfg.notify_busy_ms = notify_busy_timeout * 1000;
	cfg.node = imps_node_name(node_id, node_buf, sizeof(node_buf));
	cfg.epoch = epoch_ms;
	memset(&host, 0, sizeof(host));
	host.log = imps_log_sink;
	host.send_request = send_request;
	host.get_bindings = get_bindings;
	host.stat = stat_cb;
	if(imps_reginfo_open(&cfg, &host) < 0)
		return -1;
	core_open = 1;
	return 0;
}

static int mod_init(void)
{
	bind_usrloc_t bind_usrloc;

	if(imps_parse_trusted_peers(trusted_peers, &trusted) < 0)
		return -1;
	epoch_ms = imps_now_ms();
	reginfo_bind_registrar();
	if(strcmp(notify_state, "full") != 0 && strcmp(notify_state, "partial") != 0) {
		LM_ERR("notify_state must be 'full' or 'partial'\n");
		return -1;
	}
	if(min_expires < 0 || max_expires < min_expires || default_expires < min_expires
			|| default_expires > max_expires) {
		LM_ERR("expires parameters must satisfy 0 <= min_expires <= default_expires <= "
			   "max_expires\n");
		return -1;
	}
	if(timer_interval < 1 || notify_busy_timeout < 1) {
		LM_ERR("timer_interval and notify_busy_timeout must be at least 1 second\n");
		return -1;
	}
	if(load_tm_api(&tmb) < 0) {
		LM_ERR("cannot load the tm API (load tm before imps_reginfo)\n");
		return -1;
	}
	if(sl_load_api(&slb) < 0) {
		LM_ERR("cannot load the sl API (load sl before imps_reginfo)\n");
		return -1;
	}
	bind_usrloc = (bind_usrloc_t)find_export("ul_bind_usrloc", 1, 0);
	if(bind_usrloc == NULL || bind_usrloc(&ul) < 0) {
		LM_ERR("cannot bind usrloc (load usrloc before imps_reginfo)\n");
		return -1;
	}
	if(ul.register_udomain(usrloc_domain, &ul_dom) < 0) {
		LM_ERR("cannot register the usrloc domain '%s'\n", usrloc_domain);
		return -1;
	}
	if(ul.register_ulcb(UL_CONTACT_INSERT | UL_CONTACT_UPDATE | UL_CONTACT_DELETE
							   | UL_CONTACT_EXPIRE,
			   ul_contact_cb, 0)
			< 0) {
		LM_ERR("cannot register usrloc callbacks\n");
		return -1;
	}
	/* every route type: a REGISTER resumed in a failure route (t_continue) is seen, and a
	 * reply or event route never runs with the pointer of an earlier request */
	if(register_script_cb(pre_script_cb, PRE_SCRIPT_CB | ALL_SCRIPT_CB_TYPES, 0) < 0
			|| register_script_cb(post_script_cb, POST_SCRIPT_CB | ALL_SCRIPT_CB_TYPES, 0) < 0) {
		LM_ERR("cannot register script callbacks\n");
		return -1;
	}
	if(reginfo_usrloc_init() < 0 || (completions = imps_cq_new()) == NULL) {
		LM_ERR("cannot create the module's queues\n");
		return -1;
	}
	if(register_module_stats(exports.name, mod_stats) != 0) {
		LM_ERR("cannot register statistics\n");
		return -1;
	}
	if(rpc_register_array(reginfo_rpc_cmds) != 0) {
		LM_ERR("cannot register RPC commands\n");
		return -1;
	}
	register_basic_timers(1);
	return 0;
}

static int child_init(int rank)
{
	/* the timer process does the store work no SIP worker and no shared timer may do: 20 ms
	 * ticks */
	return imps_child_init(
			rank, "imps_reginfo", "IMPS REGINFO TIMER", reginfo_timer, 20 * 1000, open_core);
}

static void mod_destroy(void)
{
	imps_reginfo_close();
}

/* ---- KEMI -------------------------------------------------------------------------------- */

/* clang-format off */
static sr_kemi_t sr_kemi_imps_reginfo_exports[] = {
	{ str_init("imps_reginfo"), str_init("handle_subscribe"),
		SR_KEMIP_INT, ki_handle_subscribe,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ {0, 0}, {0, 0}, 0, NULL, { 0, 0, 0, 0, 0, 0 } }
};
/* clang-format on */

int mod_register(char *path, int *dlflags, void *p1, void *p2)
{
	sr_kemi_modules_add(sr_kemi_imps_reginfo_exports);
	return 0;
}
