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
#include "core/action.h"
#include "core/route.h"
#include "core/receive.h"
#include "core/script_cb.h"
#include "core/async_task.h"
#include "core/cfg/cfg_struct.h"
#include "core/timer_proc.h"
#include "core/xavp.h"
#include "core/mem/shm_mem.h"
#include "core/parser/msg_parser.h"
#include "core/parser/parse_from.h"
#include "core/parser/parse_uri.h"
#include "core/parser/parse_ppi_pai.h"
#include "core/parser/digest/digest.h"
#include "modules/auth/api.h"
#include "modules/usrloc/usrloc.h"
#include "modules/tm/tm_load.h"

#include "common/shim/imps_log.h"
#include "common/shim/imps_sip.h"
#include "imps_aaa/imps_aaa_capi.h"
#include "imps_aaa/imps_aaa_api.h"

MODULE_VERSION

static int mod_init(void);
static int child_init(int rank);
static void mod_destroy(void);

/* parameters */
static char *auth_servers = "";
/* the peers whose P-Asserted-Identity is the identity authorized (else From) */
static char *trusted_peers = "";
static imps_trusted_peers_t trusted;
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
static char *async_group = "";  /* empty: the core's default async workers (async_workers) */
static int probe_interval = 250; /* ms between the prober's looks at held-down servers */
static usrloc_api_t ul;
static struct tm_binds tmb;
static int have_tm = 0;

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
/* why authentications failed: only here and in the log, never in the answer (the edge
 * answers both alike, so that nobody can list the accounts of the network) */
static stat_var *st_wrong_password, *st_unknown_user;
static stat_export_t mod_stats[] = {
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

static int w_authenticate(struct sip_msg *msg, char *realm, char *p2);
static int w_authorize(struct sip_msg *msg, char *service, char *p2);
static int w_account(struct sip_msg *msg, char *event, char *p2);
static int w_authenticate_async(struct sip_msg *msg, char *realm, char *route);
static int w_authorize_async(struct sip_msg *msg, char *service, char *route);
static int w_authorize_user_async(
		struct sip_msg *msg, char *user, char *service, char *route);
static int fixup_user_async(void **param, int param_no);
static int fixup_free_user_async(void **param, int param_no);
static int fixup_async(void **param, int param_no);
static int fixup_free_async(void **param, int param_no);

static int bind_imps_aaa(imps_aaa_api_t *api);

static cmd_export_t cmds[] = {
	{"bind_imps_aaa", (cmd_function)bind_imps_aaa, 0, 0, 0, 0},
	{"imps_aaa_authenticate", (cmd_function)w_authenticate, 1, fixup_spve_null,
			fixup_free_spve_null, REQUEST_ROUTE},
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

static void set_auth_xavp(int rc, imps_aaa_str_t verified);

/* the challenge a request gets: WWW-Authenticate for REGISTER, else Proxy-Authenticate */
static hdr_types_t challenge_type(struct sip_msg *msg)
{
	return (msg->REQ_METHOD == METHOD_REGISTER) ? HDR_AUTHORIZATION_T : HDR_PROXYAUTH_T;
}

/* The answer for credentials that cannot be asked about, or for the HAAA's answer ret: builds
 * the challenge for -1..-4 and -6 (the script answers 401 for REGISTER, else 407); for 1 runs
 * the auth API's post_auth. h: the credentials (NULL: none). */
static int auth_finish(struct sip_msg *msg, str *realm, hdr_types_t hftype,
		struct hdr_field *h, int ret)
{
	auth_body_t *cred = (h && h->parsed) ? (auth_body_t *)h->parsed : NULL;

	if(ret == 1) {
		if(h && auth_api.post_auth(msg, h, NULL) == AUTHENTICATED)
			return 1;
		ret = -6;
	}
	if(ret == -5)
		return -5;
	/* a registrar challenges with WWW-Authenticate (401), a proxy with Proxy-Authenticate
	 * (407), whichever header the credentials came in */
	if(auth_api.build_challenge(msg, (cred ? cred->stale : 0), realm, NULL, NULL,
			   challenge_type(msg)) < 0) {
		LM_ERR("cannot build the digest challenge\n");
		return -6;
	}
	return ret;
}

/* Checks the request's credentials with the auth API (pre_auth: realm, nonce, staleness).
 * Returns 0 when the HAAA must verify them (*d and *h set), else the final result (with the
 * challenge built). The credentials are taken from the header the method calls for
 * (Authorization for REGISTER, Proxy-Authorization otherwise) or, when the request has none
 * there, from the other one: UAs answer a proxy's 407 on a MESSAGE or an INVITE with either,
 * and a credential ignored because of its header name makes the UA loop on 407. */
static int auth_begin(struct sip_msg *msg, str *realm, hdr_types_t *hftype,
		struct hdr_field **h, imps_aaa_digest_t *d)
{
	auth_body_t *cred;
	struct hdr_field *hf;
	int n;

	*h = NULL;
	if(!have_auth_api) {
		LM_ERR("imps_aaa_authenticate() needs the auth module loaded before imps_aaa\n");
		return -6;
	}
	*hftype = challenge_type(msg);
	if(parse_headers(msg, HDR_EOH_F, 0) < 0)
		return auth_finish(msg, realm, *hftype, NULL, -6);
	for(hf = msg->headers, n = 0; hf; hf = hf->next)
		if(hf->type == HDR_AUTHORIZATION_T || hf->type == HDR_PROXYAUTH_T)
			n++;
	if(n > 1) {
		/* which of them the script's $au or a later hop reads is not the verified one */
		LM_WARN("request with %d credentials headers refused\n", n);
		return -7;
	}
	if(*hftype == HDR_PROXYAUTH_T && msg->proxy_auth == NULL && msg->authorization != NULL)
		*hftype = HDR_AUTHORIZATION_T;
	else if(*hftype == HDR_AUTHORIZATION_T && msg->authorization == NULL
			&& msg->proxy_auth != NULL)
		*hftype = HDR_PROXYAUTH_T;
	switch(auth_api.pre_auth(msg, realm, *hftype, h, NULL)) {
		case NONCE_REUSED:
		case STALE_NONCE:
			/* pre_auth marked the credentials stale: the challenge says so, and the UA
			 * retries with the new nonce without asking its user */
			return auth_finish(msg, realm, *hftype, *h, -4);
		case NO_CREDENTIALS:
			return auth_finish(msg, realm, *hftype, NULL, -1);
		case DO_AUTHENTICATION:
			break;
		case AUTHENTICATED:
			return 1;
		default:
			return auth_finish(msg, realm, *hftype, NULL, -6);
	}
	cred = (auth_body_t *)(*h)->parsed;
	memset(d, 0, sizeof(*d));
	/* the whole username: the UA's response covers "user@domain" when it sent that */
	d->username = AS(cred->digest.username.whole);
	d->realm = AS(cred->digest.realm);
	d->nonce = AS(cred->digest.nonce);
	d->uri = AS(cred->digest.uri);
	d->method = AS(msg->first_line.u.request.method);
	d->qop = AS(cred->digest.qop.qop_str);
	d->algorithm = AS(cred->digest.alg.alg_str);
	d->cnonce = AS(cred->digest.cnonce);
	d->nc = AS(cred->digest.nc);
	d->response = AS(cred->digest.response);
	return 0;
}

static void log_unavailable(imps_aaa_str_t user, const char *err)
{
	LM_ERR("authentication of %.*s: AAA unavailable: %s\n", (int)user.len,
			user.s ? user.s : "", err);
}

/* 1 authenticated; -1 no credentials; -2 wrong password; -3 unknown user; -4 stale nonce;
 * -5 AAA unavailable; -6 malformed credentials or error. A challenge header is added to the
 * reply for -1..-4 and -6: the script answers 401 (REGISTER) or 407. */
static int ki_authenticate(struct sip_msg *msg, str *realm)
{
	hdr_types_t hftype;
	struct hdr_field *h = NULL;
	imps_aaa_digest_t d;
	char err[256];
	int ret;

	ret = auth_begin(msg, realm, &hftype, &h, &d);
	if(ret != 0)
		return ret;
	ret = imps_aaa_authenticate(&d, err, sizeof(err));
	if(ret == -5)
		log_unavailable(d.username, err);
	ret = auth_finish(msg, realm, hftype, h, ret);
	set_auth_xavp(ret, d.username);
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

/* The identity a request is authorized for: the user of P-Asserted-Identity when it came
 * from a trusted peer (trusted_peers: the edge proxy at the HSP, the HSP at the presence
 * server), else of From. */
static int identity_of(struct sip_msg *msg, str *user)
{
	struct sip_uri u;
	str uri;

	if(imps_requester_uri(msg, &trusted, &uri, &u) < 0 || u.user.len <= 0)
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

/* $xavp(imps_aaa=>cached / max_expires / class / reply_message) of the last decision, and
 * =>rc (the result code) when rc is not 0; d NULL: =>rc alone (authentication) */
static void set_result_xavp(imps_aaa_decision_t *d, int rc)
{
	str root;
	sr_xval_t rv;
	sr_xavp_t *list = NULL;

	root.s = reply_xavp;
	root.len = strlen(reply_xavp);
	xavp_rm_by_name(&root, 1, NULL);
	if(rc != 0)
		xavp_field(&list, "rc", 1, rc, NULL);
	if(d && d->result != -2) {
		xavp_field(&list, "cached", 1, d->from_cache, NULL);
		if(d->max_expires >= 0)
			xavp_field(&list, "max_expires", 1,
					d->max_expires > 0x7fffffff ? 0x7fffffff : (int)d->max_expires, NULL);
		if(d->klass[0])
			xavp_field(&list, "class", 0, 0, d->klass);
		if(d->reply_message[0])
			xavp_field(&list, "reply_message", 0, 0, d->reply_message);
	}
	memset(&rv, 0, sizeof(rv));
	rv.type = SR_XTYPE_XAVP;
	rv.v.xavp = list;
	if(xavp_add_value(&root, &rv, NULL) == NULL) {
		LM_ERR("cannot set $xavp(%s)\n", reply_xavp);
		xavp_destroy_list(&list);
	}
}

/* The result of an authentication in $xavp(imps_aaa=>rc), and for 1, when the HAAA verified
 * the credentials, the user it verified in =>user (the digest username up to an '@'): the
 * identity to assert. $au names the first credentials header of the request, which need not
 * be the one that was verified. */
static void set_auth_xavp(int rc, imps_aaa_str_t verified)
{
	str root, user;
	sr_xval_t rv;
	sr_xavp_t *list = NULL;
	const char *at;

	set_result_xavp(NULL, rc);
	if(rc == -2 && st_wrong_password)
		update_stat(st_wrong_password, 1);
	if(rc == -3 && st_unknown_user)
		update_stat(st_unknown_user, 1);
	if(rc != 1 || verified.s == NULL || verified.len == 0)
		return;
	root.s = reply_xavp;
	root.len = strlen(reply_xavp);
	user.s = (char *)verified.s;
	at = memchr(verified.s, '@', verified.len);
	user.len = at ? (int)(at - verified.s) : (int)verified.len;
	memset(&rv, 0, sizeof(rv));
	rv.type = SR_XTYPE_STR;
	rv.v.s = user;
	list = xavp_get(&root, NULL);
	if(list == NULL || xavp_add_value(&(str){"user", 4}, &rv, &list->val.v.xavp) == NULL)
		LM_ERR("cannot set $xavp(%s=>user)\n", reply_xavp);
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
	set_result_xavp(&d, 0);
	return d.result;
}

static int w_authorize(struct sip_msg *msg, char *service, char *p2)
{
	str s;
	if(fixup_get_svalue(msg, (gparam_t *)service, &s) < 0)
		return -3;
	return ki_authorize(msg, &s);
}

/* ---- asynchronous authentication and authorization --------------------------------------
 *
 * imps_aaa_authenticate_async(realm, route) and imps_aaa_authorize_async(service, route): what
 * the SIP worker can answer by itself it answers at once and runs `route` right there (no
 * credentials, stale nonce, a cached decision, every server held down); otherwise it creates
 * and suspends the transaction (tm), hands the RADIUS exchange to an async worker (core
 * async_workers, or the group named by async_group) and goes on with other messages. The
 * async worker asks the HAAA and resumes the transaction in `route` (tm t_continue: it runs as
 * a failure route). Before the route runs, the pre-script callback below finishes the work in
 * the resumed request's context: the auth API's post_auth or the challenge, and the result
 * code in $xavp(imps_aaa=>rc) (with the decision's reply attributes for authorization). */

enum { TASK_AUTHENTICATE = 1, TASK_AUTHORIZE = 2 };

typedef struct aaa_task
{
	int kind;
	unsigned int tindex, tlabel;
	int route;          /* index in main_rt; -1: KEMI callback cbname */
	str cbname;
	hdr_types_t hftype; /* authentication: Authorization or Proxy-Authorization */
	str realm;
	imps_aaa_digest_t d;
	imps_aaa_str_t identity, service;
} aaa_task_t;

/* the result an async worker is resuming a transaction with (set only around t_continue) */
typedef struct aaa_pending
{
	aaa_task_t *task;
	int rc;
	imps_aaa_decision_t decision;
} aaa_pending_t;
static aaa_pending_t *pending = NULL;

/* total length of the strings to copy (realm, digest fields, identity, service, cbname) */
static size_t task_strings(str *realm, imps_aaa_digest_t *d, str *identity, str *service,
		str *cbname)
{
	size_t n = 16; /* a NUL after each of the (at most 15) strings */
	if(realm)
		n += realm->len;
	if(d)
		n += d->username.len + d->realm.len + d->nonce.len + d->uri.len + d->method.len
			 + d->qop.len + d->algorithm.len + d->cnonce.len + d->nc.len + d->response.len;
	if(identity)
		n += identity->len + service->len;
	if(cbname)
		n += cbname->len;
	return n;
}

/* copies s (len bytes) to p and ends it with a NUL, which the length does not count: the
 * KEMI engines take a callback name as a C string (app_lua ran "ksr_donea.example..." when
 * the strings were packed without one) */
static char *put(char *p, const char *s, size_t len, const char **dst, size_t *dlen)
{
	if(len)
		memcpy(p, s, len);
	p[len] = '\0';
	*dst = p;
	*dlen = len;
	return p + len + 1;
}

static char *put_str(char *p, str *s, str *dst)
{
	size_t l;
	const char *d;
	p = put(p, s ? s->s : NULL, s ? (size_t)s->len : 0, &d, &l);
	dst->s = (char *)d;
	dst->len = (int)l;
	return p;
}

static char *put_astr(char *p, imps_aaa_str_t s, imps_aaa_str_t *dst)
{
	return put(p, s.s, s.len, &dst->s, &dst->len);
}

static void async_exec(void *param);

/* the task in one shm block after the core's async_task_t (freed with it by the core) */
static async_task_t *task_new(int kind, int route, str *cbname, str *realm, hdr_types_t hftype,
		imps_aaa_digest_t *d, str *identity, str *service)
{
	size_t len = sizeof(async_task_t) + sizeof(aaa_task_t)
				 + task_strings(realm, d, identity, service, cbname);
	async_task_t *at = (async_task_t *)shm_malloc(len);
	aaa_task_t *t;
	char *p;
	imps_aaa_str_t ai, as;

	if(at == NULL) {
		SHM_MEM_ERROR;
		return NULL;
	}
	memset(at, 0, sizeof(async_task_t) + sizeof(aaa_task_t));
	t = (aaa_task_t *)(at + 1);
	at->exec = async_exec;
	at->param = t;
	t->kind = kind;
	t->route = route;
	t->hftype = hftype;
	p = (char *)(t + 1);
	p = put_str(p, cbname, &t->cbname);
	p = put_str(p, realm, &t->realm);
	if(d) {
		p = put_astr(p, d->username, &t->d.username);
		p = put_astr(p, d->realm, &t->d.realm);
		p = put_astr(p, d->nonce, &t->d.nonce);
		p = put_astr(p, d->uri, &t->d.uri);
		p = put_astr(p, d->method, &t->d.method);
		p = put_astr(p, d->qop, &t->d.qop);
		p = put_astr(p, d->algorithm, &t->d.algorithm);
		p = put_astr(p, d->cnonce, &t->d.cnonce);
		p = put_astr(p, d->nc, &t->d.nc);
		p = put_astr(p, d->response, &t->d.response);
	}
	if(identity) {
		p = put_astr(p, AS(*identity), &ai);
		p = put_astr(p, AS(*service), &as);
		t->identity = ai;
		t->service = as;
	}
	return at;
}

/* Suspends the request's transaction (creating it if needed) and queues the task. 0 queued,
 * or nothing to do (a retransmission tm took care of: the script stops as if suspended);
 * -1 not (the caller answers "AAA unavailable" at once). */
static int task_submit(struct sip_msg *msg, async_task_t *at)
{
	aaa_task_t *t = (aaa_task_t *)at->param;
	struct cell *tc;
	str g;
	int rc;

	if(!have_tm) {
		LM_ERR("the async functions need tm loaded\n");
		shm_free(at);
		return -1;
	}
	if((async_group == NULL || *async_group == '\0') && async_task_workers_get() <= 0) {
		/* the core would drop the task silently and leave the transaction suspended */
		LM_ERR("no async workers (core parameter async_workers)\n");
		shm_free(at);
		return -1;
	}
	/* the callers made the transaction (own_transaction) */
	tc = tmb.t_gett();
	if(tc == NULL || tc == T_UNDEFINED) {
		LM_ERR("no transaction to suspend\n");
		shm_free(at);
		return -1;
	} else if(tc->flags & T_ASYNC_SUSPENDED) {
		LM_DBG("transaction already suspended for the HAAA\n");
		shm_free(at);
		return 0;
	}
	if(tmb.t_suspend(msg, &t->tindex, &t->tlabel) < 0) {
		LM_ERR("cannot suspend the transaction\n");
		shm_free(at);
		return -1;
	}
	if(async_group && *async_group) {
		g.s = async_group;
		g.len = strlen(async_group);
		rc = async_task_group_push(&g, at);
	} else {
		rc = async_task_push(at);
	}
	if(rc < 0) {
		LM_ERR("cannot hand the RADIUS exchange to an async worker\n");
		/* undo the suspension: the caller answers "unavailable" from here */
		tmb.t_cancel_suspend(t->tindex, t->tlabel);
		shm_free(at);
		return -1;
	}
	return 0;
}

/* Runs the result route in the SIP worker (the answer was known at once). */
static int run_result_route(struct sip_msg *msg, int route)
{
	struct run_act_ctx ctx;
	if(route < 0 || route >= main_rt.entries || main_rt.rlist[route] == NULL)
		return -1;
	init_run_actions_ctx(&ctx);
	run_actions(&ctx, main_rt.rlist[route], msg);
	return 0;
}

/* In the async worker: the RADIUS exchange, then t_continue into the route. */
static void async_exec(void *param)
{
	aaa_task_t *t = (aaa_task_t *)param;
	aaa_pending_t p;
	char err[256];
	str ev = str_init("imps_aaa:result");

	/* runtime cfg changes (kamcmd cfg.set_now_int) reach the route this task resumes */
	cfg_update();
	memset(&p, 0, sizeof(p));
	p.task = t;
	if(t->kind == TASK_AUTHENTICATE) {
		p.rc = imps_aaa_authenticate(&t->d, err, sizeof(err));
		if(p.rc == -5)
			log_unavailable(t->d.username, err);
	} else {
		imps_aaa_authorize(t->identity, t->service, 0, &p.decision);
		p.rc = p.decision.result;
		if(p.rc == -2)
			LM_ERR("authorization of %.*s for %.*s: AAA unavailable: %s\n",
					(int)t->identity.len, t->identity.s, (int)t->service.len, t->service.s,
					p.decision.error);
	}
	pending = &p;
	if(t->route >= 0) {
		if(tmb.t_continue(t->tindex, t->tlabel, main_rt.rlist[t->route]) < 0)
			LM_WARN("cannot resume the transaction [%u:%u] (gone?)\n", t->tindex, t->tlabel);
	} else {
		if(tmb.t_continue_cb(t->tindex, t->tlabel, &t->cbname, &ev) < 0)
			LM_WARN("cannot resume the transaction [%u:%u] (gone?)\n", t->tindex, t->tlabel);
	}
	pending = NULL;
	ksr_msg_env_reset();
}

/* Pre-script callback of failure routes: in the resumed request's context (its AVPs and
 * XAVPs are the transaction's), finish what the SIP worker started. */
static int resume_cb(struct sip_msg *msg, unsigned int flags, void *param)
{
	aaa_pending_t *p = pending;
	struct hdr_field *hf, *h = NULL;
	int rc;

	if(p == NULL)
		return 1;
	pending = NULL;
	/* tm numbers the resumed copy of a request one below the original (faked_req->id =
	 * id - 1), so the first request a SIP worker handled resumes as message 0; the
	 * registrar's save() takes message 0 for the one whose q it was told to override
	 * (q_override_msg_id starts at 0) and stores the binding with q=0, which makes it the
	 * last choice when forking. Message 0 is therefore renumbered, still unlike the
	 * original. */
	if(msg->id == 0)
		msg->id = (unsigned int)-1;
	LM_DBG("resuming [%u:%u] with %d\n", p->task->tindex, p->task->tlabel, p->rc);
	if(p->task->kind == TASK_AUTHENTICATE) {
		hf = p->task->hftype == HDR_AUTHORIZATION_T ? msg->authorization : msg->proxy_auth;
		if(hf)
			get_authorized_cred(hf, &h);
		if(h == NULL && p->rc == 1) {
			/* the transaction was created before the credentials were parsed: parse them
			 * again in this copy of the request */
			hdr_types_t ht = p->task->hftype;
			if(auth_api.pre_auth(msg, &p->task->realm, ht, &h, NULL) != DO_AUTHENTICATION)
				h = NULL;
		}
		rc = auth_finish(msg, &p->task->realm, p->task->hftype, h, p->rc);
		set_auth_xavp(rc, p->task->d.username);
	} else {
		set_result_xavp(&p->decision, p->rc);
	}
	return 1;
}

/* The request's transaction, made here when the script has none: 1 go on; 0 the request is
 * a retransmission of one whose transaction exists (its RADIUS exchange perhaps under way):
 * tm has answered it again or absorbed it, and it must be neither answered nor asked about
 * a second time (a second suspension would also resume twice); -1 error. With a
 * transaction, the answers known at once are stateful too (send_reply). */
static int own_transaction(struct sip_msg *msg)
{
	struct cell *t;
	int rc;

	if(!have_tm)
		return 1;
	t = tmb.t_gett();
	if(t != NULL && t != T_UNDEFINED)
		return 1;
	rc = tmb.t_newtran(msg);
	if(rc == 0)
		LM_DBG("retransmission absorbed: not asked about again\n");
	else if(rc < 0)
		LM_ERR("cannot create the transaction\n");
	return rc > 0 ? 1 : rc == 0 ? 0 : -1;
}

/* realm, route: the route's index in main_rt (fixup_async) */
static int authenticate_async(struct sip_msg *msg, str *realm, int route, str *cbname)
{
	hdr_types_t hftype;
	struct hdr_field *h = NULL;
	imps_aaa_digest_t d;
	async_task_t *at;
	int rc;

	rc = own_transaction(msg);
	if(rc == 0)
		return 0;
	if(rc < 0) {
		set_auth_xavp(-6, (imps_aaa_str_t){NULL, 0});
		return -6;
	}
	rc = auth_begin(msg, realm, &hftype, &h, &d);
	if(rc == 0) {
		if(!imps_aaa_auth_available()) {
			/* every server is held down: the answer is known without asking */
			log_unavailable(d.username, "every RADIUS server is held down");
			rc = -5;
		} else {
			at = task_new(TASK_AUTHENTICATE, route, cbname, realm, hftype, &d, NULL, NULL);
			if(at && task_submit(msg, at) == 0)
				return 0;
			rc = -5;
		}
	}
	set_auth_xavp(rc, (imps_aaa_str_t){NULL, 0});
	return rc;
}

/* who: the user to authorize (the callee whose existence the HSP checks, say); NULL: the
 * request's identity (identity_of) */
static int authorize_async(
		struct sip_msg *msg, str *who, str *service, int route, str *cbname)
{
	str user;
	imps_aaa_decision_t d;
	async_task_t *at;
	int rc = own_transaction(msg);

	if(rc == 0)
		return 0;
	if(rc < 0) {
		d.result = -2;
		set_result_xavp(&d, -2);
		return -2;
	}
	if(who != NULL) {
		user = *who;
		if(user.len <= 0) {
			LM_WARN("no user to authorize\n");
			set_result_xavp(NULL, -3);
			return -3;
		}
	} else if(identity_of(msg, &user) < 0) {
		LM_WARN("no identity to authorize in the request\n");
		set_result_xavp(NULL, -3);
		return -3;
	}
	if(imps_aaa_authorize_cached(AS(user), AS(*service), &d) == 1) {
		set_result_xavp(&d, d.result);
		return d.result;
	}
	if(imps_aaa_auth_available()) {
		at = task_new(TASK_AUTHORIZE, route, cbname, NULL, 0, NULL, &user, service);
		if(at && task_submit(msg, at) == 0)
			return 0;
	} else {
		LM_ERR("authorization of %.*s for %.*s: AAA unavailable: every RADIUS server is "
			   "held down\n", user.len, user.s, service->len, service->s);
	}
	d.result = -2;
	set_result_xavp(&d, -2);
	return -2;
}

/* Native cfg: the route runs exactly once, here when the answer is known at once, else when
 * the async worker resumes the transaction; the function returns 0 (the script stops here). */
static int w_authenticate_async(struct sip_msg *msg, char *realm, char *route)
{
	str r;
	int ri = (int)(long)route;
	if(fixup_get_svalue(msg, (gparam_t *)realm, &r) < 0) {
		LM_ERR("cannot get the realm\n");
		set_result_xavp(NULL, -6);
	} else if(authenticate_async(msg, &r, ri, NULL) == 0) {
		return 0;
	}
	run_result_route(msg, ri);
	return 0;
}

static int w_authorize_async(struct sip_msg *msg, char *service, char *route)
{
	str s;
	int ri = (int)(long)route;
	if(fixup_get_svalue(msg, (gparam_t *)service, &s) < 0)
		set_result_xavp(NULL, -3);
	else if(authorize_async(msg, NULL, &s, ri, NULL) == 0)
		return 0;
	run_result_route(msg, ri);
	return 0;
}

/* imps_aaa_authorize_user_async(user, service, route): as imps_aaa_authorize_async, for a
 * user the script names instead of the request's identity */
static int w_authorize_user_async(struct sip_msg *msg, char *user, char *service, char *route)
{
	str u, s;
	int ri = (int)(long)route;
	if(fixup_get_svalue(msg, (gparam_t *)user, &u) < 0
			|| fixup_get_svalue(msg, (gparam_t *)service, &s) < 0)
		set_result_xavp(NULL, -3);
	else if(authorize_async(msg, &u, &s, ri, NULL) == 0)
		return 0;
	run_result_route(msg, ri);
	return 0;
}

/* KEMI: the callback (a function of the KEMI script) runs only after a suspension, and the
 * function returns 0; an answer known at once is returned as the synchronous function would
 * (and set in $xavp(imps_aaa=>rc)), and the script handles it itself. */
static int ki_authenticate_async(struct sip_msg *msg, str *realm, str *cb)
{
	if(sr_kemi_eng_get() == NULL || cb == NULL || cb->len <= 0) {
		LM_ERR("a KEMI callback name is needed\n");
		return -6;
	}
	return authenticate_async(msg, realm, -1, cb);
}

static int ki_authorize_async(struct sip_msg *msg, str *service, str *cb)
{
	if(sr_kemi_eng_get() == NULL || cb == NULL || cb->len <= 0) {
		LM_ERR("a KEMI callback name is needed\n");
		return -3;
	}
	return authorize_async(msg, NULL, service, -1, cb);
}

static int ki_authorize_user_async(struct sip_msg *msg, str *user, str *service, str *cb)
{
	if(sr_kemi_eng_get() == NULL || cb == NULL || cb->len <= 0) {
		LM_ERR("a KEMI callback name is needed\n");
		return -3;
	}
	return authorize_async(msg, user, service, -1, cb);
}

/* imps_aaa_authorize_user_async: user and service are strings, the route is the third */
static int fixup_user_async(void **param, int param_no)
{
	if(param_no == 1 || param_no == 2)
		return fixup_spve_null(param, 1);
	if(param_no == 3)
		return fixup_async(param, 2);
	return 0;
}

static int fixup_free_user_async(void **param, int param_no)
{
	if(param_no == 1 || param_no == 2)
		return fixup_free_spve_null(param, 1);
	return 0;
}

static int fixup_async(void **param, int param_no)
{
	int ri;
	if(param_no == 1)
		return fixup_spve_null(param, 1);
	if(param_no != 2)
		return 0;
	ri = route_lookup(&main_rt, (char *)*param);
	if(ri < 0) {
		LM_ERR("no route[%s] for the AAA result\n", (char *)*param);
		return -1;
	}
	if((async_group == NULL || *async_group == '\0') && async_task_workers_get() <= 0) {
		LM_ERR("the async AAA functions need async workers: set async_workers (core) or "
			   "imps_aaa's async_group\n");
		return -1;
	}
	*param = (void *)(long)ri;
	return 0;
}

static int fixup_free_async(void **param, int param_no)
{
	if(param_no == 1)
		return fixup_free_spve_null(param, 1);
	return 0;
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

/* Accounting off the caller's process: the Accounting-Request goes to an async worker (the
 * caller may be a SIP worker, usrloc's timer or a module's timer process); without async
 * workers it is sent at once. */
struct acct_task
{
	int status;
	str user;
	str session;
};

static void acct_exec(void *param)
{
	struct acct_task *t = (struct acct_task *)param;
	char err[256];
	if(imps_aaa_account(AS(t->user), AS(t->session), t->status, err, sizeof(err)) < 0)
		LM_WARN("accounting %s of %.*s (session %.*s) failed: %s\n",
				t->status == 1 ? "Start" : t->status == 2 ? "Stop" : "Interim-Update",
				t->user.len, t->user.s, t->session.len, t->session.s, err);
}

static int account_async(str *user, str *session, int status)
{
	async_task_t *at;
	struct acct_task *t;
	str g;
	int rc;

	if((async_group == NULL || *async_group == '\0') && async_task_workers_get() <= 0) {
		struct acct_task now;
		now.status = status;
		now.user = *user;
		now.session = *session;
		acct_exec(&now);
		return 0;
	}
	at = (async_task_t *)shm_malloc(sizeof(async_task_t) + sizeof(struct acct_task)
									+ user->len + session->len);
	if(at == NULL) {
		SHM_MEM_ERROR;
		return -1;
	}
	t = (struct acct_task *)(at + 1);
	at->exec = acct_exec;
	at->param = t;
	t->status = status;
	t->user.s = (char *)(t + 1);
	t->user.len = user->len;
	memcpy(t->user.s, user->s, user->len);
	t->session.s = t->user.s + user->len;
	t->session.len = session->len;
	memcpy(t->session.s, session->s, session->len);
	if(async_group && *async_group) {
		g.s = async_group;
		g.len = strlen(async_group);
		rc = async_task_group_push(&g, at);
	} else {
		rc = async_task_push(at);
	}
	if(rc < 0) {
		LM_ERR("cannot hand an accounting request to an async worker\n");
		shm_free(at);
		return -1;
	}
	return 0;
}

static int bind_imps_aaa(imps_aaa_api_t *api)
{
	if(api == NULL)
		return -1;
	api->account = account_async;
	return 0;
}

/* usrloc callback (account_registrations = 1): Accounting-Request Start when a binding is
 * created, Stop when it is removed or expires; Acct-Session-Id is the binding's ruid, User-Name
 * the user of the AoR. Sent by an async worker. */
static void ul_acct_cb(ucontact_t *c, int type, void *param)
{
	str user;
	char *at;
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
	if(account_async(&user, &c->ruid, status) < 0)
		LM_WARN("accounting %s of %.*s's binding not sent\n", status == 1 ? "Start" : "Stop",
				c->aor->len, c->aor->s);
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

static void probe_timer(unsigned int ticks, void *param)
{
	imps_aaa_probe();
}

static int child_init(int rank)
{
	imps_aaa_config_t cfg;
	imps_aaa_host_t host;

	if(rank == PROC_MAIN) {
		if(fork_basic_utimer(PROC_TIMER, "imps_aaa RADIUS prober", 1, probe_timer, NULL,
				   probe_interval)
				< 0) {
			LM_ERR("cannot start the RADIUS prober process\n");
			return -1;
		}
		return 0;
	}
	if(rank == PROC_INIT || rank == PROC_TCP_MAIN)
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
	cfg.background_probe = 1;
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
