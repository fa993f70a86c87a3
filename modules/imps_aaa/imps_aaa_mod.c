/*
 * imps_aaa: RADIUS authentication, per-service authorization (with a Redis decision cache)
 * and accounting for the IMPS roles.
 *
 * The module's only file that includes Kamailio headers: export tables, parameters, cfg and
 * KEMI functions, RPC, statistics. The logic is the C++ core in core/ (imps_aaa_capi.h).
 */

#include <stdio.h>
#include <string.h>

#include "core/sr_module.h"
#include "core/dprint.h"
#include "core/mod_fix.h"
#include "core/ut.h"
#include "core/pt.h"
#include "core/rpc.h"
#include "core/rpc_lookup.h"
#include "core/counters.h"
#include "core/kemi.h"
#include "core/xavp.h"
#include "core/mem/shm_mem.h"
#include "core/parser/msg_parser.h"
#include "core/parser/parse_from.h"
#include "core/parser/parse_uri.h"
#include "core/parser/parse_ppi_pai.h"
#include "core/parser/digest/digest.h"
#include "modules/auth/api.h"
#include "modules/usrloc/usrloc.h"

#include "common/shim/imps_log.h"
#include "imps_aaa/imps_aaa_capi.h"

MODULE_VERSION

static int mod_init(void);
static int child_init(int rank);
static void mod_destroy(void);

/* parameters */
static char *auth_servers = "";
static char *acct_servers = "";
static int timeout = 300;   /* ms per try */
static int retries = 1;     /* tries after the first, per server */
static int budget = 1000;   /* ms for all tries of one request */
static int dead_time = 30;  /* s a silent server is skipped */
static char *nas_identifier = "imps";
static char *redis_host = "127.0.0.1";
static int redis_port = 6379;
static char *redis_password = "";
static int redis_db = 0;
static int redis_timeout = 300;
static char *cache_prefix = "imps:aaa";
static int cache_positive_ttl = 300;
static int cache_negative_ttl = 60;
static char *reply_xavp = "imps_aaa";
static int account_registrations = 0;
static char *usrloc_domain = "location";
static usrloc_api_t ul;

/* the servers' hold-down state, in shared memory: one slot per server */
static long long *shared_auth_state = NULL;
static long long *shared_acct_state = NULL;

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

static auth_api_s_t auth_api;
static int have_auth_api = 0;

static stat_var *st[8];
static stat_export_t mod_stats[] = {
	{"requests", 0, &st[IMPS_AAA_ST_REQUESTS]},
	{"accepts", 0, &st[IMPS_AAA_ST_ACCEPTS]},
	{"rejects", 0, &st[IMPS_AAA_ST_REJECTS]},
	{"timeouts", 0, &st[IMPS_AAA_ST_TIMEOUTS]},
	{"failovers", 0, &st[IMPS_AAA_ST_FAILOVERS]},
	{"cache_hits", 0, &st[IMPS_AAA_ST_CACHE_HITS]},
	{"cache_misses", 0, &st[IMPS_AAA_ST_CACHE_MISSES]},
	{"forged_replies", 0, &st[IMPS_AAA_ST_FORGED]},
	{0, 0, 0}
};

static int w_authenticate(struct sip_msg *msg, char *realm, char *p2);
static int w_authorize(struct sip_msg *msg, char *service, char *p2);
static int w_account(struct sip_msg *msg, char *event, char *p2);

static cmd_export_t cmds[] = {
	{"imps_aaa_authenticate", (cmd_function)w_authenticate, 1, fixup_spve_null,
			fixup_free_spve_null, REQUEST_ROUTE},
	{"imps_aaa_authorize", (cmd_function)w_authorize, 1, fixup_spve_null,
			fixup_free_spve_null, REQUEST_ROUTE | FAILURE_ROUTE},
	{"imps_aaa_account", (cmd_function)w_account, 1, fixup_spve_null, fixup_free_spve_null,
			ANY_ROUTE},
	{0, 0, 0, 0, 0, 0}
};

static param_export_t params[] = {
	{"auth_servers", PARAM_STRING, &auth_servers},
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
	{0, 0, 0}
};

static void rpc_servers(rpc_t *rpc, void *ctx);
static void rpc_cache_flush(rpc_t *rpc, void *ctx);
static void rpc_check(rpc_t *rpc, void *ctx);
static void rpc_stats(rpc_t *rpc, void *ctx);
static const char *rpc_servers_doc[] = {
	"RADIUS servers as this (the RPC) process sees them: state, RTT, counters, last error.", 0};
static const char *rpc_cache_flush_doc[] = {
	"Flush cached authorization decisions of one identity, or of all.", 0};
static const char *rpc_check_doc[] = {
	"Run an authorization now (no cache): identity service.", 0};
static const char *rpc_stats_doc[] = {"imps_aaa counters.", 0};
static rpc_export_t rpc_cmds[] = {
	{"imps_aaa.servers", rpc_servers, rpc_servers_doc, RET_ARRAY},
	{"imps_aaa.cache_flush", rpc_cache_flush, rpc_cache_flush_doc, 0},
	{"imps_aaa.check", rpc_check, rpc_check_doc, 0},
	{"imps_aaa.stats", rpc_stats, rpc_stats_doc, 0},
	{0, 0, 0, 0}
};

struct module_exports exports = {
	"imps_aaa", DEFAULT_DLFLAGS, cmds, params, 0, 0, 0, mod_init, child_init, mod_destroy
};

static inline imps_aaa_str_t AS(str s)
{
	imps_aaa_str_t r;
	r.s = s.s;
	r.len = s.s ? (size_t)s.len : 0;
	return r;
}

static void stat_cb(int which, long long delta)
{
	if(which >= 0 && which < 8 && st[which])
		update_stat(st[which], (int)delta);
}

/* ---- authentication ---------------------------------------------------------------------- */

/* 1 authenticated; -1 no credentials; -2 wrong password; -3 unknown user; -4 stale nonce;
 * -5 AAA unavailable; -6 malformed credentials or error. A challenge header is added to the
 * reply for -1..-4 and -6: the script answers 401 (REGISTER) or 407. */
static int ki_authenticate(struct sip_msg *msg, str *realm)
{
	hdr_types_t hftype;
	struct hdr_field *h = NULL;
	auth_body_t *cred = NULL;
	imps_aaa_digest_t d;
	char err[256];
	int ret;

	if(!have_auth_api) {
		LM_ERR("imps_aaa_authenticate() needs the auth module loaded before imps_aaa\n");
		return -6;
	}
	hftype = (msg->REQ_METHOD == METHOD_REGISTER) ? HDR_AUTHORIZATION_T : HDR_PROXYAUTH_T;
	switch(auth_api.pre_auth(msg, realm, hftype, &h, NULL)) {
		case NONCE_REUSED:
		case STALE_NONCE:
			/* pre_auth marked the credentials stale: the challenge says so, and the UA
			 * retries with the new nonce without asking its user */
			if(h && h->parsed)
				cred = (auth_body_t *)h->parsed;
			ret = -4;
			goto challenge;
		case NO_CREDENTIALS:
			ret = -1;
			goto challenge;
		case DO_AUTHENTICATION:
			break;
		case AUTHENTICATED:
			return 1;
		default:
			ret = -6;
			goto challenge;
	}
	cred = (auth_body_t *)h->parsed;
	memset(&d, 0, sizeof(d));
	/* the whole username: the UA's response covers "user@domain" when it sent that */
	d.username = AS(cred->digest.username.whole);
	d.realm = AS(cred->digest.realm);
	d.nonce = AS(cred->digest.nonce);
	d.uri = AS(cred->digest.uri);
	d.method = AS(msg->first_line.u.request.method);
	d.qop = AS(cred->digest.qop.qop_str);
	d.algorithm = AS(cred->digest.alg.alg_str);
	d.cnonce = AS(cred->digest.cnonce);
	d.nc = AS(cred->digest.nc);
	d.response = AS(cred->digest.response);
	ret = imps_aaa_authenticate(&d, err, sizeof(err));
	if(ret == 1) {
		if(auth_api.post_auth(msg, h, NULL) == AUTHENTICATED)
			return 1;
		ret = -6;
		goto challenge;
	}
	if(ret == -6) /* credentials the HAAA cannot be asked about (too long) */
		goto challenge;
	if(ret == -5) {
		LM_ERR("authentication of %.*s: AAA unavailable: %s\n", d.username.len > 0 ? (int)d.username.len : 0,
				d.username.s ? d.username.s : "", err);
		return -5;
	}
challenge:
	if(auth_api.build_challenge(msg, (cred ? cred->stale : 0), realm, NULL, NULL, hftype) < 0) {
		LM_ERR("cannot build the digest challenge\n");
		return -6;
	}
	return ret;
}

static int w_authenticate(struct sip_msg *msg, char *realm, char *p2)
{
	str r;
	if(fixup_get_svalue(msg, (gparam_t *)realm, &r) < 0) {
		LM_ERR("cannot get the realm\n");
		return -6;
	}
	return ki_authenticate(msg, &r);
}

/* ---- authorization ----------------------------------------------------------------------- */

/* The identity a request is authorized for: the user of P-Asserted-Identity (the edge proxy
 * removes it from UEs' requests and asserts the authenticated one), else of From. */
static int identity_of(struct sip_msg *msg, str *user)
{
	struct sip_uri u;
	to_body_t *pai;
	str uri = {0, 0};

	if(parse_pai_header(msg) == 0 && msg->pai && msg->pai->parsed) {
		pai = ((p_id_body_t *)msg->pai->parsed)->id;
		if(pai)
			uri = pai->uri;
	}
	if(uri.len == 0) {
		if(parse_from_header(msg) < 0)
			return -1;
		uri = get_from(msg)->uri;
	}
	if(parse_uri(uri.s, uri.len, &u) < 0 || u.user.len <= 0)
		return -1;
	*user = u.user;
	return 0;
}

static void xavp_field(sr_xavp_t **list, char *name, int is_int, int i, char *sv)
{
	str n;
	sr_xval_t v;
	memset(&v, 0, sizeof(v));
	n.s = name;
	n.len = strlen(name);
	if(is_int) {
		v.type = SR_XTYPE_INT;
		v.v.i = i;
	} else {
		v.type = SR_XTYPE_STR;
		v.v.s.s = sv;
		v.v.s.len = strlen(sv);
	}
	xavp_add_value(&n, &v, list);
}

/* $xavp(imps_aaa=>cached / max_expires / class / reply_message) of the last decision */
static void set_reply_xavp(imps_aaa_decision_t *d)
{
	str root;
	sr_xval_t rv;
	sr_xavp_t *list = NULL;

	root.s = reply_xavp;
	root.len = strlen(reply_xavp);
	xavp_rm_by_name(&root, 1, NULL);
	xavp_field(&list, "cached", 1, d->from_cache, NULL);
	if(d->max_expires >= 0)
		xavp_field(&list, "max_expires", 1,
				d->max_expires > 0x7fffffff ? 0x7fffffff : (int)d->max_expires, NULL);
	if(d->klass[0])
		xavp_field(&list, "class", 0, 0, d->klass);
	if(d->reply_message[0])
		xavp_field(&list, "reply_message", 0, 0, d->reply_message);
	memset(&rv, 0, sizeof(rv));
	rv.type = SR_XTYPE_XAVP;
	rv.v.xavp = list;
	if(xavp_add_value(&root, &rv, NULL) == NULL) {
		LM_ERR("cannot set $xavp(%s)\n", reply_xavp);
		xavp_destroy_list(&list);
	}
}

/* 1 accepted, -1 rejected, -2 AAA unavailable (503 with Retry-After is the answer), -3 no
 * identity in the request. Reply attributes in $xavp(imps_aaa=>class / max_expires /
 * reply_message / cached). */
static int ki_authorize(struct sip_msg *msg, str *service)
{
	str user;
	imps_aaa_decision_t d;

	if(identity_of(msg, &user) < 0) {
		LM_WARN("no identity to authorize in the request\n");
		return -3;
	}
	imps_aaa_authorize(AS(user), AS(*service), 1, &d);
	if(d.result == -2) {
		LM_ERR("authorization of %.*s for %.*s: AAA unavailable: %s\n", user.len, user.s,
				service->len, service->s, d.error);
		return -2;
	}
	set_reply_xavp(&d);
	return d.result;
}

static int w_authorize(struct sip_msg *msg, char *service, char *p2)
{
	str s;
	if(fixup_get_svalue(msg, (gparam_t *)service, &s) < 0)
		return -3;
	return ki_authorize(msg, &s);
}

/* ---- accounting -------------------------------------------------------------------------- */

/* event: start, stop or interim; the user of the identity, the Call-ID as session id */
static int ki_account(struct sip_msg *msg, str *event)
{
	str user;
	int status;
	char err[256];

	if(event->len == 5 && strncasecmp(event->s, "start", 5) == 0)
		status = 1;
	else if(event->len == 4 && strncasecmp(event->s, "stop", 4) == 0)
		status = 2;
	else if(event->len == 7 && strncasecmp(event->s, "interim", 7) == 0)
		status = 3;
	else {
		LM_ERR("accounting event must be start, stop or interim\n");
		return -1;
	}
	if(identity_of(msg, &user) < 0 || (msg->callid == NULL && parse_headers(msg, HDR_CALLID_F, 0) < 0)
			|| msg->callid == NULL)
		return -1;
	if(imps_aaa_account(AS(user), AS(msg->callid->body), status, err, sizeof(err)) < 0) {
		LM_ERR("accounting %.*s for %.*s failed: %s\n", event->len, event->s, user.len, user.s, err);
		return -1;
	}
	return 1;
}

static int w_account(struct sip_msg *msg, char *event, char *p2)
{
	str s;
	if(fixup_get_svalue(msg, (gparam_t *)event, &s) < 0)
		return -1;
	return ki_account(msg, &s);
}

/* ---- accounting of registrations --------------------------------------------------------- */

/* usrloc callback (account_registrations = 1): Accounting-Request Start when a binding is
 * created, Stop when it is removed or expires; Acct-Session-Id is the binding's ruid, User-Name
 * the user of the AoR. */
static void ul_acct_cb(ucontact_t *c, int type, void *param)
{
	str user;
	char *at;
	char err[256];
	int status;

	if(c->domain == NULL || c->domain->len != (int)strlen(usrloc_domain)
			|| strncmp(c->domain->s, usrloc_domain, c->domain->len) != 0)
		return;
	if(type & UL_CONTACT_INSERT)
		status = 1;
	else if(type & (UL_CONTACT_DELETE | UL_CONTACT_EXPIRE))
		status = 2;
	else
		return;
	user = *c->aor;
	at = memchr(user.s, '@', user.len);
	if(at)
		user.len = at - user.s;
	if(imps_aaa_account(AS(user), AS(c->ruid), status, err, sizeof(err)) < 0)
		LM_WARN("accounting %s of %.*s's binding failed: %s\n", status == 1 ? "Start" : "Stop",
				c->aor->len, c->aor->s, err);
}

/* ---- RPC --------------------------------------------------------------------------------- */

struct rpc_ctx_pair
{
	rpc_t *rpc;
	void *ctx;
};

static void server_sink(void *c, const char *role, const char *host, int port, int dead,
		double rtt_ms, unsigned long long requests, unsigned long long responses,
		unsigned long long timeouts, unsigned long long dropped, const char *last_error)
{
	struct rpc_ctx_pair *p = (struct rpc_ctx_pair *)c;
	void *th;
	if(p->rpc->add(p->ctx, "{", &th) < 0)
		return;
	p->rpc->struct_add(th, "ssdsfdddds", "role", role, "host", host, "port", port, "state",
			dead ? "dead" : "alive", "rtt_ms", rtt_ms, "requests", (int)requests, "responses",
			(int)responses, "timeouts", (int)timeouts, "dropped", (int)dropped, "last_error",
			last_error);
}

static void rpc_servers(rpc_t *rpc, void *ctx)
{
	struct rpc_ctx_pair p = {rpc, ctx};
	imps_aaa_servers(server_sink, &p);
}

static void rpc_cache_flush(rpc_t *rpc, void *ctx)
{
	str user = {0, 0};
	long long n;
	void *th;
	if(rpc->scan(ctx, "*S", &user) < 1) {
		user.s = NULL;
		user.len = 0;
	}
	n = imps_aaa_cache_flush(AS(user));
	if(n < 0) {
		rpc->fault(ctx, 503, "Decision cache (Redis) unavailable");
		return;
	}
	if(rpc->add(ctx, "{", &th) < 0)
		return;
	rpc->struct_add(th, "d", "flushed", (int)n);
}

static void rpc_check(rpc_t *rpc, void *ctx)
{
	str identity, service;
	imps_aaa_decision_t d;
	void *th;
	if(rpc->scan(ctx, "SS", &identity, &service) < 2) {
		rpc->fault(ctx, 400, "identity and service expected");
		return;
	}
	imps_aaa_authorize(AS(identity), AS(service), 0, &d);
	if(rpc->add(ctx, "{", &th) < 0)
		return;
	rpc->struct_add(th, "sssds", "result",
			d.result == 1 ? "accept" : d.result == -1 ? "reject" : "unavailable", "class",
			d.klass, "reply_message", d.reply_message, "max_expires", (int)d.max_expires,
			"error", d.error);
}

static void rpc_stats(rpc_t *rpc, void *ctx)
{
	void *th;
	if(rpc->add(ctx, "{", &th) < 0)
		return;
	rpc->struct_add(th, "dddddddd", "requests", (int)get_stat_val(st[0]), "accepts",
			(int)get_stat_val(st[1]), "rejects", (int)get_stat_val(st[2]), "timeouts",
			(int)get_stat_val(st[3]), "failovers", (int)get_stat_val(st[4]), "cache_hits",
			(int)get_stat_val(st[5]), "cache_misses", (int)get_stat_val(st[6]),
			"forged_replies", (int)get_stat_val(st[7]));
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static int mod_init(void)
{
	bind_auth_s_t bind_auth;

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
	if(rpc_register_array(rpc_cmds) != 0) {
		LM_ERR("cannot register RPC commands\n");
		return -1;
	}
	return 0;
}

static int child_init(int rank)
{
	imps_aaa_config_t cfg;
	imps_aaa_host_t host;

	if(rank == PROC_INIT || rank == PROC_MAIN || rank == PROC_TCP_MAIN)
		return 0;
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
	host.log = imps_log_sink;
	host.stat = stat_cb;
	if(imps_aaa_open(&cfg, &host) < 0) {
		LM_ERR("cannot initialize imps_aaa in process rank %d\n", rank);
		return -1;
	}
	return 0;
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
