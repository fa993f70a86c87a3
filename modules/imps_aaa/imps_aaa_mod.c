/*
 * imps_aaa: RADIUS authentication, per-service authorization (with a Redis decision cache)
 * and accounting for the IMPS roles.
 *
 * The module's only file that includes Kamailio headers: export tables, parameters, cfg and
 * KEMI functions, RPC, statistics. The logic is the C++ core in core/ (imps_aaa_capi.h).
 */

#include "imps_aaa.h"

MODULE_VERSION

static int mod_init(void);
static int child_init(int rank);
static void mod_destroy(void);

/* parameters */
char *auth_servers = "";
/* the peers whose P-Asserted-Identity is the identity authorized (else From) */
char *trusted_peers = "";
imps_trusted_peers_t trusted;
char *acct_servers = "";
int timeout = 300;   /* ms per try */
int retries = 1;     /* tries after the first, per server */
int budget = 1000;   /* ms for all tries of one request */
int dead_time = 30;  /* s a silent server is skipped */
char *nas_identifier = "imps";
char *redis_host = "127.0.0.1";
int redis_port = 6379;
char *redis_password = "";
int redis_db = 0;
int redis_timeout = 300;
char *cache_prefix = "imps:aaa";
int cache_positive_ttl = 300;
int cache_negative_ttl = 60;
char *reply_xavp = "imps_aaa";
int account_registrations = 0;
char *usrloc_domain = "location";
char *async_group = "";  /* empty: the core's default async workers (async_workers) */
int probe_interval = 250; /* ms between the prober's looks at held-down servers */
usrloc_api_t ul;
struct tm_binds tmb;
int have_tm = 0;

/* the servers' hold-down state, in shared memory: one slot per server */
long long *shared_auth_state = NULL;
long long *shared_acct_state = NULL;

static int count_servers(const char *spec)
{
	int n = 0, in = 0;
	for(; spec && *spec; spec++) {
		if(*spec == ';') {
			in = 0;
		} else if(!in) {
			in = 1;
			n++;
		}
	}
	return n;
}

static long long *shared_state(const char *spec)
{
	int n = count_servers(spec);
	long long *p;
	if(n == 0)
		return NULL;
	p = (long long *)shm_malloc(n * sizeof(long long));
	if(p)
		memset(p, 0, n * sizeof(long long));
	return p;
}

auth_api_s_t auth_api;
int have_auth_api = 0;

stat_var *st[8];
/* why authentications failed: only here and in the log, never in the answer (the edge
 * answers both alike, so that nobody can list the accounts of the network) */
stat_var *st_wrong_password, *st_unknown_user;
stat_export_t mod_stats[] = {
	{"requests", 0, &st[IMPS_AAA_ST_REQUESTS]},
	{"accepts", 0, &st[IMPS_AAA_ST_ACCEPTS]},
	{"rejects", 0, &st[IMPS_AAA_ST_REJECTS]},
	{"timeouts", 0, &st[IMPS_AAA_ST_TIMEOUTS]},
	{"failovers", 0, &st[IMPS_AAA_ST_FAILOVERS]},
	{"cache_hits", 0, &st[IMPS_AAA_ST_CACHE_HITS]},
	{"cache_misses", 0, &st[IMPS_AAA_ST_CACHE_MISSES]},
	{"forged_replies", 0, &st[IMPS_AAA_ST_FORGED]},
	{"auth_wrong_password", 0, &st_wrong_password},
	{"auth_unknown_user", 0, &st_unknown_user},
	{0, 0, 0}
};

static cmd_export_t cmds[] = {
	{"bind_imps_aaa", (cmd_function)bind_imps_aaa, 0, 0, 0, 0},
	/* EVENT_ROUTE: xhttp's event_route[xhttp:request] (the XCAP server, imps_xcap) */
	{"imps_aaa_authenticate", (cmd_function)w_authenticate, 1, fixup_spve_null,
			fixup_free_spve_null, REQUEST_ROUTE | EVENT_ROUTE},
	{"imps_aaa_authorize", (cmd_function)w_authorize, 1, fixup_spve_null,
			fixup_free_spve_null, REQUEST_ROUTE | FAILURE_ROUTE},
	{"imps_aaa_account", (cmd_function)w_account, 1, fixup_spve_null, fixup_free_spve_null,
			ANY_ROUTE},
	{"imps_aaa_authenticate_async", (cmd_function)w_authenticate_async, 2, fixup_async,
			fixup_free_async, REQUEST_ROUTE},
	{"imps_aaa_authorize_async", (cmd_function)w_authorize_async, 2, fixup_async,
			fixup_free_async, REQUEST_ROUTE},
	{"imps_aaa_authorize_user_async", (cmd_function)w_authorize_user_async, 3,
			fixup_user_async, fixup_free_user_async, REQUEST_ROUTE},
	{0, 0, 0, 0, 0, 0}
};

static param_export_t params[] = {
	{"auth_servers", PARAM_STRING, &auth_servers},
	{"trusted_peers", PARAM_STRING, &trusted_peers},
	{"acct_servers", PARAM_STRING, &acct_servers},
	{"timeout", PARAM_INT, &timeout},
	{"retries", PARAM_INT, &retries},
	{"budget", PARAM_INT, &budget},
	{"dead_time", PARAM_INT, &dead_time},
	{"nas_identifier", PARAM_STRING, &nas_identifier},
	{"redis_host", PARAM_STRING, &redis_host},
	{"redis_port", PARAM_INT, &redis_port},
	{"redis_password", PARAM_STRING, &redis_password},
	{"redis_db", PARAM_INT, &redis_db},
	{"redis_timeout", PARAM_INT, &redis_timeout},
	{"cache_prefix", PARAM_STRING, &cache_prefix},
	{"cache_positive_ttl", PARAM_INT, &cache_positive_ttl},
	{"cache_negative_ttl", PARAM_INT, &cache_negative_ttl},
	{"reply_xavp", PARAM_STRING, &reply_xavp},
	{"account_registrations", PARAM_INT, &account_registrations},
	{"usrloc_domain", PARAM_STRING, &usrloc_domain},
	{"async_group", PARAM_STRING, &async_group},
	{"probe_interval", PARAM_INT, &probe_interval},
	{0, 0, 0}
};

struct module_exports exports = {
	"imps_aaa", DEFAULT_DLFLAGS, cmds, params, 0, 0, 0, mod_init, child_init, mod_destroy
};

void stat_cb(int which, long long delta)
{
	if(which >= 0 && which < 8 && st[which])
		update_stat(st[which], (int)delta);
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static int mod_init(void)
{
	bind_auth_s_t bind_auth;

	if(imps_parse_trusted_peers(trusted_peers, &trusted) < 0)
		return -1;

	if(auth_servers == NULL || *auth_servers == '\0') {
		LM_ERR("auth_servers is empty: \"ip:port:secret;...\" expected\n");
		return -1;
	}
	if(timeout < 1 || retries < 0 || budget < timeout || dead_time < 0) {
		LM_ERR("timeout, retries, budget or dead_time out of range\n");
		return -1;
	}
	shared_auth_state = shared_state(auth_servers);
	shared_acct_state = shared_state(acct_servers);
	if(shared_auth_state == NULL) {
		SHM_MEM_ERROR;
		return -1;
	}
	bind_auth = (bind_auth_s_t)find_export("bind_auth_s", 0, 0);
	if(bind_auth && bind_auth(&auth_api) == 0)
		have_auth_api = 1;
	else
		LM_INFO("auth module not loaded: imps_aaa_authenticate() is unavailable\n");
	{
		load_tm_f load_tm = (load_tm_f)find_export("load_tm", NO_SCRIPT, 0);
		if(load_tm == NULL)
			LM_INFO("tm not loaded: the async functions are unavailable\n");
		else if(load_tm(&tmb) >= 0)
			have_tm = 1;
		else
			LM_ERR("cannot bind tm\n");
	}
	if(register_script_cb(resume_cb, PRE_SCRIPT_CB | FAILURE_CB, 0) < 0) {
		LM_ERR("cannot register the resume callback\n");
		return -1;
	}
	if(probe_interval < 10) {
		LM_ERR("probe_interval must be at least 10 ms\n");
		return -1;
	}
	/* one process probes held-down servers back (Status-Server): never a SIP worker */
	register_basic_timers(1);
	if(account_registrations && (async_group == NULL || *async_group == '\0')
			&& async_task_workers_get() <= 0) {
		/* its callback runs with usrloc's record locked: the RADIUS exchange must not */
		LM_ERR("account_registrations needs async workers (core async_workers, or async_group)\n");
		return -1;
	}
	if(account_registrations) {
		bind_usrloc_t bind_usrloc = (bind_usrloc_t)find_export("ul_bind_usrloc", 1, 0);
		if(bind_usrloc == NULL || bind_usrloc(&ul) < 0
				|| ul.register_ulcb(UL_CONTACT_INSERT | UL_CONTACT_DELETE | UL_CONTACT_EXPIRE,
						   ul_acct_cb, 0)
						   < 0) {
			LM_ERR("account_registrations needs usrloc loaded before imps_aaa\n");
			return -1;
		}
	}
	if(register_module_stats(exports.name, mod_stats) != 0) {
		LM_ERR("cannot register statistics\n");
		return -1;
	}
	if(rpc_register_array(aaa_rpc_cmds) != 0) {
		LM_ERR("cannot register RPC commands\n");
		return -1;
	}
	return 0;
}

static void probe_timer(unsigned int ticks, void *param)
{
	imps_aaa_probe();
}

static int open_core(void)
{
	imps_aaa_config_t cfg;
	imps_aaa_host_t host;

	memset(&cfg, 0, sizeof(cfg));
	cfg.auth_servers = auth_servers;
	cfg.acct_servers = (acct_servers && *acct_servers) ? acct_servers : "";
	cfg.timeout_ms = timeout;
	cfg.retries = retries;
	cfg.budget_ms = budget;
	cfg.dead_time_s = dead_time;
	cfg.nas_identifier = nas_identifier;
	cfg.redis_host = redis_host;
	cfg.redis_port = redis_port;
	cfg.redis_password = redis_password;
	cfg.redis_db = redis_db;
	cfg.redis_timeout_ms = redis_timeout;
	cfg.cache_prefix = cache_prefix;
	cfg.cache_positive_ttl = cache_positive_ttl;
	cfg.cache_negative_ttl = cache_negative_ttl;
	cfg.shared_auth_state = shared_auth_state;
	cfg.shared_acct_state = shared_acct_state;
	cfg.background_probe = 1;
	host.log = imps_log_sink;
	host.stat = stat_cb;
	return imps_aaa_open(&cfg, &host);
}

static int child_init(int rank)
{
	/* probe_interval is in ms; the timer's interval in microseconds */
	return imps_child_init(rank, "imps_aaa", "imps_aaa RADIUS prober", probe_timer,
			probe_interval * 1000, open_core);
}

static void mod_destroy(void)
{
	imps_aaa_close();
}

/* ---- KEMI -------------------------------------------------------------------------------- */

/* clang-format off */
static sr_kemi_t sr_kemi_imps_aaa_exports[] = {
	{ str_init("imps_aaa"), str_init("authenticate"),
		SR_KEMIP_INT, ki_authenticate,
		{ SR_KEMIP_STR, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("imps_aaa"), str_init("authorize"),
		SR_KEMIP_INT, ki_authorize,
		{ SR_KEMIP_STR, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("imps_aaa"), str_init("authenticate_async"),
		SR_KEMIP_INT, ki_authenticate_async,
		{ SR_KEMIP_STR, SR_KEMIP_STR, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("imps_aaa"), str_init("authorize_async"),
		SR_KEMIP_INT, ki_authorize_async,
		{ SR_KEMIP_STR, SR_KEMIP_STR, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("imps_aaa"), str_init("authorize_user_async"),
		SR_KEMIP_INT, ki_authorize_user_async,
		{ SR_KEMIP_STR, SR_KEMIP_STR, SR_KEMIP_STR,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ str_init("imps_aaa"), str_init("account"),
		SR_KEMIP_INT, ki_account,
		{ SR_KEMIP_STR, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ {0, 0}, {0, 0}, 0, NULL, { 0, 0, 0, 0, 0, 0 } }
};
/* clang-format on */

int mod_register(char *path, int *dlflags, void *p1, void *p2)
{
	sr_kemi_modules_add(sr_kemi_imps_aaa_exports);
	return 0;
}
