/*
 * imps_presence: the presence application - PUBLISH (RFC 3903), composition of every
 * publication of a presentity, and the event packages presence (RFC 3856, RFC 6665) and
 * presence.winfo (RFC 3857/3858) on the shared subscription layer (modules/common:
 * imps/subs.hpp and shim/imps_notify.h), watcher authorization by SQL rules.
 *
 * This file: export tables, parameters, statistics, KEMI, mod_init/child_init/destroy and the
 * module's own timer process (final responses of NOTIFYs, expiry, deferred NOTIFYs, rules
 * poll). The rest of the shim is split by concern (publish.c, subscribe.c, rules_db.c, rpc.c,
 * api.c); the logic is the C++ core in core/, reached through imps_presence_capi.h.
 */
#include <string.h>

#include "core/sr_module.h"
#include "core/dprint.h"
#include "core/pt.h"
#include "core/kemi.h"
#include "core/timer_proc.h"
#include "core/rpc_lookup.h"

#include "imps_presence.h"

MODULE_VERSION

static int mod_init(void);
static int child_init(int rank);
static void mod_destroy(void);

/* parameters */
static char *redis_host = "127.0.0.1";
static int redis_port = 6379;
static char *redis_password = "";
static int redis_db = 0;
static int redis_connect_timeout = 500;
static int redis_timeout = 500;
static int redis_retry_interval = 1000;
static char *key_prefix = "imps:presence";
static int min_expires = 60;
static int max_expires = 3600;
static int default_expires = 3600;
static int pub_min_expires = 60;
static int pub_max_expires = 3600;
int pub_default_expires = 3600;
int max_body_size = 65536;
static int max_publications = 16;
static int max_watchers = 1000;
static int min_notify_interval = 1000; /* ms */
static char *offline_document = "";
static char *trusted_peers = "";
char *contact_uri = "";
static int timer_interval = 100; /* ms: deferred NOTIFYs */
static int expiry_interval = 1;  /* s: expiry of publications and subscriptions */
int account_subscriptions = 0;
static int rules_poll_interval = 2; /* s; 0: off */
static int notify_timeout_action = 1; /* 1: remove the subscription on 408, 0: keep it */
static int notify_busy_timeout = 35;  /* s: longest wait for a NOTIFY's final response */
static char *node_id = "";            /* "" : the first listening socket */
static long long epoch_ms = 0;
static int lock_set_size = 0; /* accepted for old configurations; nothing is locked any more */
static int pres_rules = 1;          /* users' pres-rules from the List and Policy Server */
static char *xcap_root = "";        /* its root over HTTP when imps_xcap is not loaded here */
static char *xcap_interface = "";   /* the source address of those reads (a trusted reader) */
static int xcap_timeout = 2000;     /* ms */
static int xcap_cache_ttl = 30;     /* s: a copy read over HTTP is used this long */
static int xcap_diff = 1;           /* the xcap-diff package, with imps_xcap loaded here */
static int policy_mode = IMPS_POLICY_OFF;

imps_aaa_api_t aaa_api;
tm_api_t tmb;
sl_api_t slb;
/* trusted_peers, parsed: the HSP, whose asserted identities are believed */
imps_trusted_peers_t trusted;

/* statistics */
stat_var *st_pubs = NULL;
stat_var *st_sent = NULL;
stat_var *st_failed = NULL;
stat_var *st_412 = NULL;
stat_var *st_rejected = NULL;
stat_var *st_timer_errors = NULL;
static counter_val_t active_watchers(void);
static counter_val_t live_publications(void);

static stat_export_t mod_stats[] = {
	{"publications", 0, &st_pubs},
	{"live_publications", STAT_IS_FUNC, (stat_var **)live_publications},
	{"active_watchers", STAT_IS_FUNC, (stat_var **)active_watchers},
	{"notifies_sent", 0, &st_sent},
	{"notifies_failed", 0, &st_failed},
	{"publish_412", 0, &st_412},
	{"rejected_bodies", 0, &st_rejected},
	{"timer_errors", 0, &st_timer_errors},
	{0, 0, 0}
};

static cmd_export_t cmds[] = {
	/* FAILURE_ROUTE too: a request resumed after an asynchronous AAA check (t_continue) */
	{"imps_presence_handle_publish", (cmd_function)w_handle_publish, 0, 0, 0,
			REQUEST_ROUTE | FAILURE_ROUTE},
	{"imps_presence_handle_subscribe", (cmd_function)w_handle_subscribe, 0, 0, 0,
			REQUEST_ROUTE | FAILURE_ROUTE},
	{"imps_presence_trusted", (cmd_function)w_trusted, 0, 0, 0, ANY_ROUTE},
	{"bind_imps_presence", (cmd_function)bind_imps_presence, 0, 0, 0, 0},
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
	{"publish_min_expires", PARAM_INT, &pub_min_expires},
	{"publish_max_expires", PARAM_INT, &pub_max_expires},
	{"publish_default_expires", PARAM_INT, &pub_default_expires},
	{"max_body_size", PARAM_INT, &max_body_size},
	{"max_publications", PARAM_INT, &max_publications},
	{"max_watchers", PARAM_INT, &max_watchers},
	{"min_notify_interval", PARAM_INT, &min_notify_interval},
	{"offline_document", PARAM_STRING, &offline_document},
	{"trusted_peers", PARAM_STRING, &trusted_peers},
	{"contact", PARAM_STRING, &contact_uri},
	{"timer_interval", PARAM_INT, &timer_interval},
	{"expiry_interval", PARAM_INT, &expiry_interval},
	{"db_url", PARAM_STR, &db_url},
	{"rules_table", PARAM_STR, &rules_table},
	{"default_action", PARAM_STRING, &default_action},
	{"lock_set_size", PARAM_INT, &lock_set_size},
	{"account_subscriptions", PARAM_INT, &account_subscriptions},
	{"rules_poll_interval", PARAM_INT, &rules_poll_interval},
	{"notify_timeout_action", PARAM_INT, &notify_timeout_action},
	{"notify_busy_timeout", PARAM_INT, &notify_busy_timeout},
	{"node_id", PARAM_STRING, &node_id},
	{"pres_rules", PARAM_INT, &pres_rules},
	{"xcap_root", PARAM_STRING, &xcap_root},
	{"xcap_interface", PARAM_STRING, &xcap_interface},
	{"xcap_timeout", PARAM_INT, &xcap_timeout},
	{"xcap_cache_ttl", PARAM_INT, &xcap_cache_ttl},
	{"xcap_diff", PARAM_INT, &xcap_diff},
	{0, 0, 0}
};

struct module_exports exports = {
	"imps_presence", DEFAULT_DLFLAGS, cmds, params, 0, 0, 0, mod_init, child_init, mod_destroy
};

static void stat_cb(int which, long long delta)
{
	switch(which) {
		case IMPS_PSTAT_PUBLICATIONS:
			update_stat(st_pubs, (int)delta);
			break;
		case IMPS_PSTAT_SENT:
			update_stat(st_sent, (int)delta);
			break;
		case IMPS_PSTAT_FAILED:
			update_stat(st_failed, (int)delta);
			break;
		case IMPS_PSTAT_412:
			update_stat(st_412, (int)delta);
			break;
		case IMPS_PSTAT_REJECTED_BODIES:
			update_stat(st_rejected, (int)delta);
			break;
		case IMPS_PSTAT_TIMER_ERRORS:
			update_stat(st_timer_errors, (int)delta);
			break;
	}
}

static counter_val_t active_watchers(void)
{
	long long n = imps_presence_count_subscriptions();
	return n < 0 ? 0 : (counter_val_t)n;
}

static counter_val_t live_publications(void)
{
	long long n = imps_presence_count_publications();
	return n < 0 ? 0 : (counter_val_t)n;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

int open_core(void)
{
	imps_presence_config_t cfg;
	imps_presence_host_t host;
	char node_buf[128];

	if(imps_presence_is_open())
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
	cfg.pub_min_expires = pub_min_expires;
	cfg.pub_max_expires = pub_max_expires;
	cfg.pub_default_expires = pub_default_expires;
	cfg.max_body_size = max_body_size;
	cfg.max_publications = max_publications;
	cfg.max_watchers = max_watchers;
	cfg.min_notify_interval_ms = min_notify_interval;
	cfg.offline_document = offline_document;
	cfg.default_action = default_action_code;
	cfg.remove_on_timeout = notify_timeout_action;
	cfg.notify_busy_ms = notify_busy_timeout * 1000;
	cfg.node = imps_node_name(node_id, node_buf, sizeof(node_buf));
	cfg.epoch = epoch_ms;
	cfg.policy_mode = policy_mode;
	cfg.xcap_root = policy_mode == IMPS_POLICY_LOCAL ? xcap_bound_root() : xcap_root;
	cfg.xcap_interface = xcap_interface;
	cfg.xcap_timeout_ms = xcap_timeout;
	cfg.xcap_cache_ttl_ms = xcap_cache_ttl * 1000;
	cfg.xcap_diff = xcap_bound && xcap_diff;
	memset(&host, 0, sizeof(host));
	host.log = imps_log_sink;
	host.send_request = send_request;
	host.rule_rows = rule_rows;
	host.stat = stat_cb;
	host.account = account_subscriptions ? account_cb : NULL;
	host.deliver_local = deliver_local;
	if(xcap_bound) {
		host.xcap = imps_xcap_reader_of(&xcap_api);
	}
	return imps_presence_open(&cfg, &host);
}

/* The module's own process: the store work no SIP worker, no tm callback and no shared
 * timer does. Every 10 ms the final responses of NOTIFYs; every timer_interval ms the
 * deferred NOTIFYs now due; every expiry_interval s expiry; the rules poll. */
static void presence_timer(unsigned int ticks, void *param)
{
	static long long next_poll = 0, next_due = 0, next_expiry = 0;
	long long ms;
	int expiry;
	if(open_core() < 0)
		return;
	handle_completions();
	ms = imps_now_ms();
	if(ms >= next_due) {
		expiry = ms >= next_expiry;
		next_due = ms + timer_interval;
		if(expiry)
			next_expiry = ms + (long long)expiry_interval * 1000;
		imps_presence_tick(ms / 1000, ms, expiry);
	}
	if(rules_poll_interval > 0 && ms >= next_poll) {
		next_poll = ms + (long long)rules_poll_interval * 1000;
		poll_rules();
	}
}

static int mod_init(void)
{
	str a;

	epoch_ms = imps_now_ms();
	if(min_expires < 0 || max_expires < min_expires || default_expires < min_expires
			|| default_expires > max_expires || pub_min_expires < 0
			|| pub_max_expires < pub_min_expires || pub_default_expires < pub_min_expires
			|| pub_default_expires > pub_max_expires) {
		LM_ERR("expires parameters must satisfy 0 <= min <= default <= max\n");
		return -1;
	}
	if(rules_poll_interval < 0) {
		LM_ERR("rules_poll_interval must be 0 (off) or a number of seconds\n");
		return -1;
	}
	if(max_body_size < 256 || max_publications < 1 || max_watchers < 1 || min_notify_interval < 0
			|| timer_interval < 10 || expiry_interval < 1 || notify_busy_timeout < 1) {
		LM_ERR("max_body_size >= 256, max_publications >= 1, max_watchers >= 1, "
			   "min_notify_interval >= 0, timer_interval >= 10 (ms), expiry_interval >= 1 (s) "
			   "and notify_busy_timeout >= 1 (s) are required\n");
		return -1;
	}
	a.s = default_action;
	a.len = strlen(default_action);
	if((default_action_code = action_code(&a)) < 0) {
		LM_ERR("default_action must be allow, block, polite-block or confirm\n");
		return -1;
	}
	if(imps_parse_trusted_peers(trusted_peers, &trusted) < 0)
		return -1;
	if(account_subscriptions) {
		bind_imps_aaa_f bind = (bind_imps_aaa_f)find_export("bind_imps_aaa", 0, 0);
		if(bind == NULL || bind(&aaa_api) < 0) {
			LM_ERR("account_subscriptions needs imps_aaa loaded before imps_presence\n");
			return -1;
		}
	}
	if(load_tm_api(&tmb) < 0) {
		LM_ERR("cannot load the tm API (load tm before imps_presence)\n");
		return -1;
	}
	if(sl_load_api(&slb) < 0) {
		LM_ERR("cannot load the sl API (load sl before imps_presence)\n");
		return -1;
	}
	if(rules_db_init() < 0)
		return -1;
	/* users' pres-rules: in process when imps_xcap is loaded here, else over HTTP */
	if(xcap_timeout < 1 || xcap_cache_ttl < 0) {
		LM_ERR("xcap_timeout >= 1 (ms) and xcap_cache_ttl >= 0 (s) are required\n");
		return -1;
	}
	if(xcap_bind() < 0)
		return -1;
	if(pres_rules && xcap_bound)
		policy_mode = IMPS_POLICY_LOCAL;
	else if(pres_rules && xcap_root[0])
		policy_mode = IMPS_POLICY_HTTP;
	if(policy_mode != IMPS_POLICY_OFF)
		LM_INFO("users' pres-rules read %s%s\n",
				policy_mode == IMPS_POLICY_LOCAL ? "in process from imps_xcap" : "over HTTP from ",
				policy_mode == IMPS_POLICY_LOCAL ? "" : xcap_root);
	if((completions = imps_cq_new()) == NULL) {
		LM_ERR("cannot create the queue of NOTIFY responses\n");
		return -1;
	}
	if(register_module_stats(exports.name, mod_stats) != 0) {
		LM_ERR("cannot register statistics\n");
		return -1;
	}
	if(rpc_register_array(presence_rpc_cmds) != 0) {
		LM_ERR("cannot register RPC commands\n");
		return -1;
	}
	register_basic_timers(1);
	return 0;
}

/* a SIP process: its connection to the rules database, then the core */
static int open_process(void)
{
	dbh = dbf.init(&db_url);
	if(dbh == NULL) {
		LM_ERR("cannot connect to %.*s\n", db_url.len, db_url.s);
		return -1;
	}
	return open_core();
}

static int child_init(int rank)
{
	return imps_child_init(rank, "imps_presence", "IMPS PRESENCE TIMER", presence_timer,
			10 * 1000, open_process);
}

static void mod_destroy(void)
{
	imps_presence_close();
	if(dbh) {
		dbf.close(dbh);
		dbh = NULL;
	}
}

/* ---- KEMI -------------------------------------------------------------------------------- */

/* clang-format off */
static sr_kemi_t sr_kemi_imps_presence_exports[] = {
	{ str_init("imps_presence"), str_init("handle_publish"),
		SR_KEMIP_INT, ki_handle_publish,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("imps_presence"), str_init("handle_subscribe"),
		SR_KEMIP_INT, ki_handle_subscribe,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("imps_presence"), str_init("trusted"),
		SR_KEMIP_INT, ki_trusted,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ {0, 0}, {0, 0}, 0, NULL, { 0, 0, 0, 0, 0, 0 } }
};
/* clang-format on */

int mod_register(char *path, int *dlflags, void *p1, void *p2)
{
	sr_kemi_modules_add(sr_kemi_imps_presence_exports);
	return 0;
}
