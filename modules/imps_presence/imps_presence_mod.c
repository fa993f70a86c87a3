/*
 * imps_presence: the presence application - PUBLISH (RFC 3903), composition of every
 * publication of a presentity, SUBSCRIBE/NOTIFY for presence (RFC 3856, RFC 6665) and
 * presence.winfo (RFC 3857/3858), watcher authorization by SQL rules.
 *
 * The module's only file that includes Kamailio headers: export tables, parameters, cfg and
 * KEMI functions, RPC, statistics, tm/DB/lock glue. The logic is the C++ core in core/,
 * reached through imps_presence_capi.h.
 */

#include <stdio.h>
#include <string.h>
#include <ctype.h>
#include <time.h>
#include <sys/time.h>

#include "core/sr_module.h"
#include "core/dprint.h"
#include "core/ut.h"
#include "core/trim.h"
#include "core/pt.h"
#include "core/rpc.h"
#include "core/rpc_lookup.h"
#include "core/counters.h"
#include "core/kemi.h"
#include "core/timer_proc.h"
#include "core/hashes.h"
#include "core/locking.h"
#include "core/socket_info.h"
#include "core/resolve.h"
#include "core/ip_addr.h"
#include "core/data_lump_rpl.h"
#include "core/mem/shm_mem.h"
#include "core/parser/msg_parser.h"
#include "core/parser/parse_from.h"
#include "core/parser/parse_to.h"
#include "core/parser/parse_uri.h"
#include "core/parser/parse_expires.h"
#include "core/parser/parse_rr.h"
#include "core/parser/parse_event.h"
#include "core/parser/parse_content.h"
#include "core/parser/contact/parse_contact.h"
#include "core/parser/parse_ppi_pai.h"
#include "lib/srdb1/db.h"
#include "modules/tm/tm_load.h"
#include "modules/sl/sl.h"
#include "imps_aaa/imps_aaa_api.h"

#include "common/shim/imps_log.h"
#include "common/shim/imps_sip.h"
#include "imps_presence/imps_presence_capi.h"

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
static int pub_default_expires = 3600;
static int max_body_size = 65536;
static int max_publications = 16;
static int max_watchers = 1000;
static int min_notify_interval = 1000; /* ms */
static char *offline_document = "";
static char *trusted_peers = "";
static char *contact_uri = "";
static int timer_interval = 100; /* ms */
static str db_url = str_init("sqlite:///var/lib/kamailio/imps_presence.sqlite");
static str rules_table = str_init("imps_presence_rules");
static char *default_action = "confirm";
static int lock_set_size = 8; /* 2^n locks */
static int account_subscriptions = 0;
static int rules_poll_interval = 2; /* s; 0: off */
static imps_aaa_api_t aaa_api;

static int default_action_code = IMPS_ACTION_CONFIRM;
static tm_api_t tmb;
static sl_api_t slb;
static db_func_t dbf;
static db1_con_t *dbh = NULL;
static gen_lock_set_t *locks = NULL;
static int nlocks = 0;

static str col_presentity = str_init("presentity");
static str col_watcher = str_init("watcher");
static str col_action = str_init("action");

/* trusted peers: "ip" or "ip:port" */
/* trusted_peers, parsed: the HSP, whose asserted identities are believed */
static imps_trusted_peers_t trusted;

/* statistics */
static stat_var *st_pubs = NULL;
static stat_var *st_sent = NULL;
static stat_var *st_failed = NULL;
static stat_var *st_412 = NULL;
static stat_var *st_rejected = NULL;
static stat_var *st_timer_errors = NULL;
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

static int w_handle_publish(struct sip_msg *msg, char *p1, char *p2);
static int w_handle_subscribe(struct sip_msg *msg, char *p1, char *p2);
static int w_trusted(struct sip_msg *msg, char *p1, char *p2);
static int ki_handle_publish(struct sip_msg *msg);
static int ki_handle_subscribe(struct sip_msg *msg);
static int ki_trusted(struct sip_msg *msg);

static cmd_export_t cmds[] = {
	/* FAILURE_ROUTE too: a request resumed after an asynchronous AAA check (t_continue) */
	{"imps_presence_handle_publish", (cmd_function)w_handle_publish, 0, 0, 0,
			REQUEST_ROUTE | FAILURE_ROUTE},
	{"imps_presence_handle_subscribe", (cmd_function)w_handle_subscribe, 0, 0, 0,
			REQUEST_ROUTE | FAILURE_ROUTE},
	{"imps_presence_trusted", (cmd_function)w_trusted, 0, 0, 0, ANY_ROUTE},
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
	{"db_url", PARAM_STR, &db_url},
	{"rules_table", PARAM_STR, &rules_table},
	{"default_action", PARAM_STRING, &default_action},
	{"lock_set_size", PARAM_INT, &lock_set_size},
	{"account_subscriptions", PARAM_INT, &account_subscriptions},
	{"rules_poll_interval", PARAM_INT, &rules_poll_interval},
	{0, 0, 0}
};

static void rpc_list(rpc_t *rpc, void *ctx);
static void rpc_show(rpc_t *rpc, void *ctx);
static void rpc_watchers(rpc_t *rpc, void *ctx);
static void rpc_authorize(rpc_t *rpc, void *ctx);
static void rpc_terminate(rpc_t *rpc, void *ctx);
static void rpc_publish(rpc_t *rpc, void *ctx);
static void rpc_stats(rpc_t *rpc, void *ctx);
static void rpc_reauthorize(rpc_t *rpc, void *ctx);

static const char *rpc_list_doc[] = {"Presentities with their publication and watcher counts.", 0};
static const char *rpc_show_doc[] = {
	"The composed document of a presentity (user@host) and each publication.", 0};
static const char *rpc_watchers_doc[] = {"Subscriptions to a presentity (user@host).", 0};
static const char *rpc_authorize_doc[] = {
	"Set the rule for <presentity> <watcher|domain> allow|block|polite-block|confirm and apply "
	"it to existing subscriptions at once.", 0};
static const char *rpc_terminate_doc[] = {"End a subscription by id (reason deactivated).", 0};
static const char *rpc_publish_doc[] = {
	"Administrative publication: <user@host> <PIDF body, file path or -> [expires] [etag]: "
	"without etag a new publication; with it a refresh (empty body), modify or remove "
	"(expires 0).", 0};
static const char *rpc_stats_doc[] = {"Counters of imps_presence.", 0};
static const char *rpc_reauthorize_doc[] = {
	"Apply the rules as they are in the database now to the existing watchers of "
	"<presentity> (after rules were changed with SQL).", 0};

static rpc_export_t rpc_cmds[] = {
	{"imps_presence.list", rpc_list, rpc_list_doc, RET_ARRAY},
	{"imps_presence.show", rpc_show, rpc_show_doc, 0},
	{"imps_presence.watchers", rpc_watchers, rpc_watchers_doc, RET_ARRAY},
	{"imps_presence.authorize", rpc_authorize, rpc_authorize_doc, 0},
	{"imps_presence.terminate", rpc_terminate, rpc_terminate_doc, 0},
	{"imps_presence.publish", rpc_publish, rpc_publish_doc, 0},
	{"imps_presence.stats", rpc_stats, rpc_stats_doc, 0},
	{"imps_presence.reauthorize", rpc_reauthorize, rpc_reauthorize_doc, 0},
	{0, 0, 0, 0}
};

struct module_exports exports = {
	"imps_presence", DEFAULT_DLFLAGS, cmds, params, 0, 0, 0, mod_init, child_init, mod_destroy
};

/* ---- helpers ----------------------------------------------------------------------------- */

static inline imps_pstr_t IS(str s)
{
	imps_pstr_t r;
	r.s = s.s;
	r.len = s.s ? (size_t)s.len : 0;
	return r;
}

static inline str SI(imps_pstr_t s)
{
	str r;
	r.s = (char *)s.s;
	r.len = (int)s.len;
	return r;
}

static long long now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

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

static void lock_cb(imps_pstr_t p)
{
	str s = SI(p);
	if(locks)
		lock_set_get(locks, core_hash(&s, 0, nlocks));
}

static void unlock_cb(imps_pstr_t p)
{
	str s = SI(p);
	if(locks)
		lock_set_release(locks, core_hash(&s, 0, nlocks));
}

static int from_trusted(struct sip_msg *msg)
{
	return imps_from_trusted_peer(msg, &trusted);
}

/* the identity of the sender: P-Asserted-Identity from a trusted peer, else From */
static int sender_identity(struct sip_msg *msg, char *buf, int size)
{
	struct sip_uri u;
	str uri;
	int rc = imps_requester_uri(msg, &trusted, &uri, &u);
	if(rc < 0)
		return rc == -2 ? -2 : -3;
	return imps_identity_of(&u, buf, size);
}

static int reply(struct sip_msg *msg, int code, const char *reason, const char *hdrs)
{
	return imps_sl_reply(&slb, msg, code, reason, hdrs);
}

static int reject(struct sip_msg *msg, int code, const char *reason)
{
	return reply(msg, code, reason, NULL) < 0 ? -1 : -2;
}
/* ---- rules (DB API) ---------------------------------------------------------------------- */

static int action_code(str *a)
{
	if(a->len == 5 && strncasecmp(a->s, "allow", 5) == 0)
		return IMPS_ACTION_ALLOW;
	if(a->len == 5 && strncasecmp(a->s, "block", 5) == 0)
		return IMPS_ACTION_BLOCK;
	if(a->len == 12 && strncasecmp(a->s, "polite-block", 12) == 0)
		return IMPS_ACTION_POLITE_BLOCK;
	if(a->len == 7 && strncasecmp(a->s, "confirm", 7) == 0)
		return IMPS_ACTION_CONFIRM;
	return -1;
}

static const char *action_str(int a)
{
	switch(a) {
		case IMPS_ACTION_ALLOW:
			return "allow";
		case IMPS_ACTION_BLOCK:
			return "block";
		case IMPS_ACTION_POLITE_BLOCK:
			return "polite-block";
		default:
			return "confirm";
	}
}

static int db_value_str(db_val_t *v, str *out)
{
	if(VAL_NULL(v))
		return -1;
	switch(VAL_TYPE(v)) {
		case DB1_STRING:
			out->s = (char *)VAL_STRING(v);
			out->len = out->s ? strlen(out->s) : 0;
			return 0;
		case DB1_STR:
			*out = VAL_STR(v);
			return 0;
		case DB1_BLOB:
			*out = VAL_BLOB(v);
			return 0;
		default:
			return -1;
	}
}

static int str_ieq(str *a, str *b)
{
	return a->len == b->len && strncasecmp(a->s, b->s, a->len) == 0;
}

/* best rule of the rows with presentity = key: 3 watcher exact, 2 watcher's domain, 1 "*" */
static int rule_lookup(str *key, str *watcher, str *wdomain, int *best, int *best_rank)
{
	db_key_t keys[1] = {&col_presentity};
	db_val_t vals[1];
	db_key_t cols[2] = {&col_watcher, &col_action};
	db1_res_t *res = NULL;
	int i, rank, a;
	str w, act;

	if(dbh == NULL)
		return -1;
	memset(vals, 0, sizeof(vals));
	VAL_TYPE(&vals[0]) = DB1_STR;
	VAL_STR(&vals[0]) = *key;
	if(dbf.use_table(dbh, &rules_table) < 0
			|| dbf.query(dbh, keys, 0, vals, cols, 1, 2, 0, &res) < 0) {
		LM_ERR("rules query failed for %.*s\n", key->len, key->s);
		return -1;
	}
	for(i = 0; res && i < RES_ROW_N(res); i++) {
		db_val_t *rv = ROW_VALUES(&RES_ROWS(res)[i]);
		if(db_value_str(&rv[0], &w) < 0 || db_value_str(&rv[1], &act) < 0)
			continue;
		if(str_ieq(&w, watcher))
			rank = 3;
		else if(str_ieq(&w, wdomain))
			rank = 2;
		else if(w.len == 1 && w.s[0] == '*')
			rank = 1;
		else
			continue;
		a = action_code(&act);
		if(a < 0) {
			LM_WARN("rule %.*s -> %.*s has unknown action '%.*s'\n", key->len, key->s, w.len,
					w.s, act.len, act.s);
			continue;
		}
		if(rank > *best_rank) {
			*best_rank = rank;
			*best = a;
		}
	}
	if(res)
		dbf.free_result(dbh, res);
	return 0;
}

/* The owner's rule for a watcher: rules of the presentity itself beat rules of its domain;
 * within each, the watcher's identity beats its domain beats "*". */
static int rule_cb(imps_pstr_t presentity, imps_pstr_t watcher)
{
	str p = SI(presentity), w = SI(watcher), pd, wd;
	char *at;
	int best = -1, rank = 0;

	at = memchr(w.s, '@', w.len);
	wd.s = at ? at + 1 : w.s;
	wd.len = at ? w.s + w.len - wd.s : w.len;
	at = memchr(p.s, '@', p.len);
	pd.s = at ? at + 1 : p.s;
	pd.len = at ? p.s + p.len - pd.s : p.len;
	if(rule_lookup(&p, &w, &wd, &best, &rank) < 0)
		return IMPS_ACTION_UNKNOWN; /* database trouble: the core decides what is safe */
	if(best >= 0)
		return best;
	rank = 0;
	if(rule_lookup(&pd, &w, &wd, &best, &rank) < 0)
		return IMPS_ACTION_UNKNOWN;
	return best >= 0 ? best : default_action_code;
}

static int rule_store(str *p, str *w, const char *action)
{
	db_key_t keys[3] = {&col_presentity, &col_watcher, &col_action};
	db_val_t vals[3];
	memset(vals, 0, sizeof(vals));
	VAL_TYPE(&vals[0]) = VAL_TYPE(&vals[1]) = VAL_TYPE(&vals[2]) = DB1_STR;
	VAL_STR(&vals[0]) = *p;
	VAL_STR(&vals[1]) = *w;
	VAL_STR(&vals[2]).s = (char *)action;
	VAL_STR(&vals[2]).len = strlen(action);
	if(dbh == NULL || dbf.use_table(dbh, &rules_table) < 0)
		return -1;
	if(dbf.delete(dbh, keys, 0, vals, 2) < 0)
		return -1;
	return dbf.insert(dbh, keys, vals, 3);
}

/* Accounting-Request Start/Stop of a subscription through imps_aaa (sent by an async
 * worker): User-Name the watcher's user, Acct-Session-Id the subscription id. */
static void account_cb(imps_pstr_t watcher, imps_pstr_t sid, int start)
{
	str user = SI(watcher), session = SI(sid);
	char *at = memchr(user.s, '@', user.len);
	if(at)
		user.len = at - user.s;
	if(aaa_api.account(&user, &session, start ? IMPS_AAA_ACCT_START : IMPS_AAA_ACCT_STOP) < 0)
		LM_WARN("accounting %s of subscription %.*s not sent\n", start ? "Start" : "Stop",
				session.len, session.s);
}

/* ---- NOTIFY through tm ------------------------------------------------------------------- */

/* NOTIFYs answered >= 300 (or timed out, in tm's timer process): queued here and handled by
 * the presence timer process, so that tm's callback never waits for Redis or a lock. */
struct failed_notify
{
	struct failed_notify *next;
	int code;
	int retry_after;
	str sid;
};
static gen_lock_t *failed_lock = NULL;
static struct failed_notify **failed_head = NULL;

static void queue_failed_notify(str *sid, int code, int retry_after)
{
	struct failed_notify *f;
	if(failed_lock == NULL)
		return;
	f = (struct failed_notify *)shm_malloc(sizeof(*f) + sid->len);
	if(f == NULL) {
		SHM_MEM_ERROR;
		return;
	}
	f->code = code;
	f->retry_after = retry_after;
	f->sid.s = (char *)(f + 1);
	f->sid.len = sid->len;
	memcpy(f->sid.s, sid->s, sid->len);
	lock_get(failed_lock);
	f->next = *failed_head;
	*failed_head = f;
	lock_release(failed_lock);
}

static void handle_failed_notifies(void)
{
	struct failed_notify *f, *next;
	if(failed_lock == NULL)
		return;
	lock_get(failed_lock);
	f = *failed_head;
	*failed_head = NULL;
	lock_release(failed_lock);
	for(; f; f = next) {
		next = f->next;
		imps_presence_notify_failed(IS(f->sid), f->code, f->retry_after);
		shm_free(f);
	}
}

static void notify_reply_cb(struct cell *t, int type, struct tmcb_params *ps)
{
	str *sid;
	if(ps->param == NULL || *ps->param == NULL)
		return;
	sid = (str *)(*ps->param);
	if(ps->code >= 300) {
		int retry_after = 0;
		struct sip_msg *rpl = ps->rpl;
		if(rpl && rpl != FAKED_REPLY && parse_headers(rpl, HDR_EOH_F, 0) >= 0) {
			struct hdr_field *h;
			for(h = rpl->headers; h; h = h->next)
				if(h->type == HDR_RETRY_AFTER_T)
					retry_after = 1;
		}
		LM_INFO("presence NOTIFY of subscription %.*s answered %d%s\n", sid->len, sid->s,
				ps->code, retry_after ? " with Retry-After" : "");
		queue_failed_notify(sid, ps->code, retry_after);
	}
	shm_free(sid);
	*ps->param = NULL;
}

static int send_notify(const imps_presence_notify_t *n)
{
	static str method = str_init("NOTIFY");
	dlg_t td;
	uac_req_t uac_r;
	str hdrs, body, *cp;
	char hbuf[1024], rsbuf[2048];
	int hlen, ret;

	memset(&td, 0, sizeof(td));
	td.id.call_id = SI(n->callid);
	td.id.rem_tag = SI(n->remote_tag);
	td.id.loc_tag = SI(n->local_tag);
	td.loc_seq.value = (unsigned int)(n->cseq - 1); /* tm adds one */
	td.loc_seq.is_set = 1;
	td.loc_uri = SI(n->local_uri);
	td.rem_uri = SI(n->remote_uri);
	td.rem_target = SI(n->remote_target);
	td.state = DLG_CONFIRMED;

	hlen = snprintf(hbuf, sizeof(hbuf),
			"Event: %.*s%s%.*s\r\nSubscription-State: %.*s\r\nContact: <%.*s>\r\n%s%.*s%s",
			(int)n->event.len, n->event.s, n->event_id.len ? ";id=" : "", (int)n->event_id.len,
			n->event_id.s ? n->event_id.s : "", (int)n->subscription_state.len,
			n->subscription_state.s, (int)n->local_contact.len, n->local_contact.s,
			n->content_type.len ? "Content-Type: " : "", (int)n->content_type.len,
			n->content_type.s ? n->content_type.s : "", n->content_type.len ? "\r\n" : "");
	if(hlen < 0 || hlen >= (int)sizeof(hbuf))
		return -1;
	hdrs.s = hbuf;
	hdrs.len = hlen;
	body = SI(n->body);

	if(imps_dlg_route(&td, SI(n->socket), SI(n->route_set), hlen + body.len, rsbuf,
			   sizeof(rsbuf))
			< 0) {
		LM_ERR("bad stored route set of subscription %.*s\n", (int)n->sid.len, n->sid.s);
		return -1;
	}

	cp = (str *)shm_malloc(sizeof(str) + n->sid.len);
	if(cp == NULL) {
		SHM_MEM_ERROR;
		if(td.route_set)
			free_rr(&td.route_set);
		return -1;
	}
	cp->s = (char *)(cp + 1);
	cp->len = (int)n->sid.len;
	memcpy(cp->s, n->sid.s, n->sid.len);

	set_uac_req(&uac_r, &method, &hdrs, body.len ? &body : NULL, &td, TMCB_LOCAL_COMPLETED,
			notify_reply_cb, (void *)cp);
	ret = tmb.t_request_within(&uac_r);
	if(td.route_set)
		free_rr(&td.route_set);
	if(ret < 0) {
		LM_ERR("tm could not send the NOTIFY to %.*s\n", (int)n->remote_target.len,
				n->remote_target.s);
		shm_free(cp);
		return -1;
	}
	return 0;
}

/* ---- PUBLISH / SUBSCRIBE ----------------------------------------------------------------- */

/* A transaction for the request (when the script has not made one): a retransmission is
 * absorbed by tm (the answer sent again) instead of being processed a second time, which for
 * a modifying PUBLISH would consume the new ETag. 1 go on; 0 retransmission; -1 error. */
static int ensure_transaction(struct sip_msg *msg)
{
	struct cell *t = tmb.t_gett();
	int r;
	if(t != NULL && t != T_UNDEFINED)
		return 1;
	r = tmb.t_newtran(msg);
	if(r < 0) {
		LM_ERR("cannot create a transaction for the %.*s\n",
				msg->first_line.u.request.method.len, msg->first_line.u.request.method.s);
		reject(msg, 500, "Server Internal Error (no transaction)");
		return -1;
	}
	return r == 0 ? 0 : 1;
}

static int finish(struct sip_msg *msg, int rc, imps_presence_reply_t *rep, const char *what)
{
	int ret;
	if(rc < 0 && rep->code == 503)
		LM_ERR("%s answered 503: %s\n", what, imps_presence_last_error());
	ret = reply(msg, rep->code, rep->reason, rep->headers) < 0 ? -1 : (rep->code < 300 ? 1 : -2);
	imps_presence_flush(); /* NOTIFYs go after the reply */
	return ret;
}

static int ki_handle_publish(struct sip_msg *msg)
{
	imps_presence_publish_t req;
	imps_presence_reply_t rep;
	struct hdr_field *h;
	char pres[256], ident[256], src[128];
	str body = {0, 0}, ct, ev, etag;
	int n, rc, ret;

	if(msg->first_line.type != SIP_REQUEST
			|| msg->first_line.u.request.method_value != METHOD_PUBLISH) {
		LM_ERR("imps_presence_handle_publish() called for a request that is not PUBLISH\n");
		return -1;
	}
	if((n = ensure_transaction(msg)) <= 0)
		return n;
	memset(&req, 0, sizeof(req));
	if(parse_headers(msg, HDR_EOH_F, 0) < 0)
		return reject(msg, 400, "Bad Request (malformed header)");
	if((req.has_event = imps_event_of(msg, &ev)))
		req.event = IS(ev);
	if(imps_expires_of(msg, &req.expires) < 0)
		return reject(msg, 400, "Bad Request (malformed Expires)");
	for(h = msg->headers; h; h = h->next) {
		if(h->type == HDR_SIPIFMATCH_T) {
			etag = h->body;
			trim(&etag);
			if(etag.len <= 0)
				return reject(msg, 400, "Bad Request (empty SIP-If-Match)");
			req.if_match = IS(etag);
		}
	}
	body.s = get_body(msg);
	body.len = body.s ? msg->len - (int)(body.s - msg->buf) : 0;
	if(msg->content_length) {
		/* never read past what arrived, whatever the script checked before */
		if(get_content_length(msg) > body.len)
			return reject(msg, 400, "Bad Request (Content-Length larger than the body)");
		body.len = get_content_length(msg);
	}
	if(body.len > 0) {
		req.has_body = 1;
		req.body = IS(body);
		if(msg->content_type == NULL)
			return reject(msg, 400, "Bad Request (body without Content-Type)");
		ct = msg->content_type->body;
		trim(&ct);
		n = 0;
		while(n < ct.len && ct.s[n] != ';' && ct.s[n] != ' ' && ct.s[n] != '\t')
			n++;
		ct.len = n;
		req.content_type = IS(ct);
	}
	if(parse_sip_msg_uri(msg) < 0)
		return reject(msg, 400, "Bad Request (malformed Request-URI)");
	if((n = imps_identity_of(&msg->parsed_uri, pres, sizeof(pres))) < 0
			|| msg->parsed_uri.user.len <= 0)
		return reject(msg, 400, "Bad Request (Request-URI has no presentity)");
	req.presentity.s = pres;
	req.presentity.len = n;
	if((n = sender_identity(msg, ident, sizeof(ident))) < 0)
		return reject(msg, 400, n == -2 ? "Bad Request (malformed P-Asserted-Identity)"
										: "Bad Request (malformed From header)");
	req.identity.s = ident;
	req.identity.len = n;
	n = snprintf(src, sizeof(src), "%s:%s:%d", get_proto_name(msg->rcv.proto),
			ip_addr2a(&msg->rcv.src_ip), msg->rcv.src_port);
	req.source.s = src;
	req.source.len = n > 0 && n < (int)sizeof(src) ? n : 0;
	req.now_ms = now_ms();
	req.now = req.now_ms / 1000;

	lock_cb(req.presentity);
	rc = imps_presence_publish(&req, &rep);
	ret = finish(msg, rc, &rep, "PUBLISH");
	unlock_cb(req.presentity);
	return ret;
}

static int ki_handle_subscribe(struct sip_msg *msg)
{
	imps_presence_subscribe_t req;
	imps_presence_reply_t rep;
	struct to_body *to, *from;
	struct sip_uri to_uri;
	contact_body_t *cb;
	char pres[256], watcher[256], accept[512], lcontact[256];
	str totag = {0, 0}, rr = {0, 0}, callid, ev, dn;
	int n, alen = 0, rc, ret;
	unsigned int cseq = 0;

	if(msg->first_line.type != SIP_REQUEST
			|| msg->first_line.u.request.method_value != METHOD_SUBSCRIBE) {
		LM_ERR("imps_presence_handle_subscribe() called for a request that is not SUBSCRIBE\n");
		return -1;
	}
	if((n = ensure_transaction(msg)) <= 0)
		return n;
	memset(&req, 0, sizeof(req));
	if(parse_headers(msg, HDR_EOH_F, 0) < 0)
		return reject(msg, 400, "Bad Request (malformed header)");
	if((req.has_event = imps_event_of(msg, &ev)))
		req.event = IS(ev);
	if((alen = imps_accept_of(msg, accept, sizeof(accept), &req.has_accept)) < 0)
		return reject(msg, 400, "Bad Request (Accept too long)");
	req.accept.s = accept;
	req.accept.len = alen;
	if(imps_expires_of(msg, &req.expires) < 0)
		return reject(msg, 400, "Bad Request (malformed Expires)");
	if(msg->to == NULL || (msg->to->parsed == NULL && parse_to_header(msg) < 0)
			|| (to = get_to(msg)) == NULL || to->error != PARSE_OK)
		return reject(msg, 400, "Bad Request (malformed To header)");
	if(parse_from_header(msg) < 0 || (from = get_from(msg)) == NULL)
		return reject(msg, 400, "Bad Request (malformed From header)");
	if(from->tag_value.len <= 0)
		return reject(msg, 400, "Bad Request (From tag missing)");
	if(msg->callid == NULL || msg->callid->body.len <= 0)
		return reject(msg, 400, "Bad Request (Call-ID missing)");
	callid = msg->callid->body;
	trim(&callid);
	if(msg->cseq == NULL || str2int(&get_cseq(msg)->number, &cseq) < 0)
		return reject(msg, 400, "Bad Request (malformed CSeq)");

	if(to->tag_value.len > 0) {
		req.in_dialog = 1;
		totag = to->tag_value;
		/* the presentity of an in-dialog request: its To URI */
		if(parse_uri(to->uri.s, to->uri.len, &to_uri) < 0
				|| (n = imps_identity_of(&to_uri, pres, sizeof(pres))) < 0)
			return reject(msg, 400, "Bad Request (malformed To URI)");
	} else {
		if(parse_sip_msg_uri(msg) < 0)
			return reject(msg, 400, "Bad Request (malformed Request-URI)");
		if(msg->parsed_uri.user.len <= 0 || msg->parsed_uri.host.len <= 0)
			return reject(msg, 400, "Bad Request (Request-URI has no presentity)");
		if((n = imps_identity_of(&msg->parsed_uri, pres, sizeof(pres))) < 0)
			return reject(msg, 400, "Bad Request (Request-URI too long)");
		if(slb.get_reply_totag(msg, &totag) < 0 || totag.len <= 0) {
			LM_ERR("cannot get the To tag of the reply\n");
			return reject(msg, 500, "Server Internal Error");
		}
	}
	req.presentity.s = pres;
	req.presentity.len = n;
	if((n = sender_identity(msg, watcher, sizeof(watcher))) < 0)
		return reject(msg, 400, n == -2 ? "Bad Request (malformed P-Asserted-Identity)"
										: "Bad Request (malformed From header)");
	req.watcher.s = watcher;
	req.watcher.len = n;
	if(from->display.len > 0) {
		dn = from->display;
		trim(&dn);
		if(dn.len >= 2 && dn.s[0] == '"' && dn.s[dn.len - 1] == '"') {
			dn.s++;
			dn.len -= 2;
		}
		req.display_name = IS(dn);
	}
	if(msg->contact == NULL || parse_contact(msg->contact) < 0
			|| (cb = (contact_body_t *)msg->contact->parsed) == NULL || cb->contacts == NULL) {
		if(!req.in_dialog)
			return reject(msg, 400, "Bad Request (Contact missing or malformed)");
	} else {
		req.remote_target = IS(cb->contacts->uri);
	}
	if(msg->record_route && !req.in_dialog) {
		if(print_rr_body(msg->record_route, &rr, 0, NULL) < 0)
			return reject(msg, 400, "Bad Request (malformed Record-Route)");
		req.route_set = IS(rr);
	}
	if(msg->rcv.bind_address)
		req.socket = IS(msg->rcv.bind_address->sock_str);
	n = imps_local_contact(msg, contact_uri, lcontact, sizeof(lcontact));
	req.local_contact.s = n > 0 ? lcontact : NULL;
	req.local_contact.len = n > 0 ? (size_t)n : 0;
	req.callid = IS(callid);
	req.remote_tag = IS(from->tag_value);
	req.local_tag = IS(totag);
	req.remote_uri = IS(from->uri);
	req.local_uri = IS(to->uri);
	req.remote_cseq = cseq;
	req.now_ms = now_ms();
	req.now = req.now_ms / 1000;

	lock_cb(req.presentity);
	rc = imps_presence_subscribe(&req, &rep);
	if(rr.s)
		pkg_free(rr.s);
	ret = finish(msg, rc, &rep, "SUBSCRIBE");
	unlock_cb(req.presentity);
	return ret;
}

static int ki_trusted(struct sip_msg *msg)
{
	return from_trusted(msg) ? 1 : -1;
}

static int w_handle_publish(struct sip_msg *msg, char *p1, char *p2)
{
	return ki_handle_publish(msg);
}

static int w_handle_subscribe(struct sip_msg *msg, char *p1, char *p2)
{
	return ki_handle_subscribe(msg);
}

static int w_trusted(struct sip_msg *msg, char *p1, char *p2)
{
	return ki_trusted(msg);
}

/* ---- RPC --------------------------------------------------------------------------------- */

struct rpc_sink_ctx
{
	rpc_t *rpc;
	void *ctx;
	void *th;
	void *pubs;
	long long now;
};

static void list_sink(void *c, imps_pstr_t p, long long pubs, long long watchers)
{
	struct rpc_sink_ctx *sc = (struct rpc_sink_ctx *)c;
	void *th;
	str ps = SI(p);
	if(sc->rpc->add(sc->ctx, "{", &th) < 0)
		return;
	sc->rpc->struct_add(th, "Sdd", "presentity", &ps, "publications", (int)pubs, "watchers",
			(int)watchers);
}

static void rpc_list(rpc_t *rpc, void *ctx)
{
	struct rpc_sink_ctx sc;
	memset(&sc, 0, sizeof(sc));
	sc.rpc = rpc;
	sc.ctx = ctx;
	if(imps_presence_list(10000, list_sink, &sc) < 0)
		rpc->fault(ctx, 503, "State store unavailable: %s", imps_presence_last_error());
}

static void show_doc_sink(void *c, imps_pstr_t doc)
{
	struct rpc_sink_ctx *sc = (struct rpc_sink_ctx *)c;
	str d = SI(doc);
	sc->rpc->struct_add(sc->th, "S", "document", &d);
	sc->rpc->struct_add(sc->th, "[", "publications", &sc->pubs);
}

static void show_pub_sink(void *c, const imps_presence_pubinfo_t *p)
{
	struct rpc_sink_ctx *sc = (struct rpc_sink_ctx *)c;
	void *th;
	str etag = SI(p->etag), src = SI(p->source), body = SI(p->body);
	long long left = p->expires_at - sc->now;
	if(sc->pubs == NULL || sc->rpc->array_add(sc->pubs, "{", &th) < 0)
		return;
	sc->rpc->struct_add(th, "SSddS", "etag", &etag, "source", &src, "expires",
			(int)(left > 0 ? left : 0), "published", (int)p->published_at, "body", &body);
}

static void rpc_show(rpc_t *rpc, void *ctx)
{
	str p;
	struct rpc_sink_ctx sc;
	memset(&sc, 0, sizeof(sc));
	if(rpc->scan(ctx, "S", &p) < 1) {
		rpc->fault(ctx, 400, "presentity (user@host) expected");
		return;
	}
	sc.rpc = rpc;
	sc.ctx = ctx;
	sc.now = (long long)time(NULL);
	if(rpc->add(ctx, "{", &sc.th) < 0)
		return;
	rpc->struct_add(sc.th, "S", "presentity", &p);
	if(imps_presence_show(IS(p), show_doc_sink, show_pub_sink, &sc) < 0)
		rpc->fault(ctx, 503, "State store unavailable: %s", imps_presence_last_error());
}

static void watchers_sink(void *c, const imps_presence_subinfo_t *s)
{
	struct rpc_sink_ctx *sc = (struct rpc_sink_ctx *)c;
	void *th;
	str sid = SI(s->sid), ev = SI(s->event), w = SI(s->watcher), wu = SI(s->watcher_uri),
		st = SI(s->status), t = SI(s->remote_target);
	long long left = s->expires_at - sc->now;
	if(sc->rpc->add(sc->ctx, "{", &th) < 0)
		return;
	sc->rpc->struct_add(th, "SSSSSSdd", "id", &sid, "event", &ev, "watcher", &w, "uri", &wu,
			"status", &st, "contact", &t, "expires", (int)(left > 0 ? left : 0), "cseq",
			(int)s->cseq);
}

static void rpc_watchers(rpc_t *rpc, void *ctx)
{
	str p;
	struct rpc_sink_ctx sc;
	memset(&sc, 0, sizeof(sc));
	if(rpc->scan(ctx, "S", &p) < 1) {
		rpc->fault(ctx, 400, "presentity (user@host) expected");
		return;
	}
	sc.rpc = rpc;
	sc.ctx = ctx;
	sc.now = (long long)time(NULL);
	if(imps_presence_watchers(IS(p), watchers_sink, &sc) < 0)
		rpc->fault(ctx, 503, "State store unavailable: %s", imps_presence_last_error());
}

static void rpc_authorize(rpc_t *rpc, void *ctx)
{
	str p, w, a;
	int code, changed;
	void *th;
	if(rpc->scan(ctx, "SSS", &p, &w, &a) < 3) {
		rpc->fault(ctx, 400, "<presentity> <watcher|domain|*> allow|block|polite-block|confirm expected");
		return;
	}
	code = action_code(&a);
	if(code < 0) {
		rpc->fault(ctx, 400, "action must be allow, block, polite-block or confirm");
		return;
	}
	if(rule_store(&p, &w, action_str(code)) < 0) {
		rpc->fault(ctx, 500, "cannot store the rule in %.*s", rules_table.len, rules_table.s);
		return;
	}
	changed = imps_presence_reauthorize(IS(p), (w.len == 1 && w.s[0] == '*') ? IS((str){0, 0}) : IS(w));
	if(changed < 0) {
		rpc->fault(ctx, 503, "rule stored; applying it failed: %s", imps_presence_last_error());
		return;
	}
	if(rpc->add(ctx, "{", &th) < 0)
		return;
	rpc->struct_add(th, "SSsd", "presentity", &p, "watcher", &w, "action", action_str(code),
			"changed", changed);
}

static void rpc_reauthorize(rpc_t *rpc, void *ctx)
{
	str p;
	str none = {0, 0};
	int changed;
	void *th;
	if(rpc->scan(ctx, "S", &p) < 1) {
		rpc->fault(ctx, 400, "presentity (user@host) expected");
		return;
	}
	changed = imps_presence_reauthorize(IS(p), IS(none));
	if(changed < 0) {
		rpc->fault(ctx, 503, "State store unavailable: %s", imps_presence_last_error());
		return;
	}
	if(rpc->add(ctx, "{", &th) < 0)
		return;
	rpc->struct_add(th, "Sd", "presentity", &p, "changed", changed);
}

static void rpc_terminate(rpc_t *rpc, void *ctx)
{
	str sid;
	int r;
	if(rpc->scan(ctx, "S", &sid) < 1) {
		rpc->fault(ctx, 400, "subscription id expected");
		return;
	}
	r = imps_presence_terminate(IS(sid));
	if(r < 0)
		rpc->fault(ctx, 503, "State store unavailable: %s", imps_presence_last_error());
	else if(r == 0)
		rpc->fault(ctx, 404, "Subscription not found");
	else
		rpc->rpl_printf(ctx, "terminated");
}

static void rpc_publish(rpc_t *rpc, void *ctx)
{
	str p, body, etag = {0, 0};
	int expires = 3600, n;
	imps_presence_reply_t rep;
	char *buf = NULL;
	void *th;

	n = rpc->scan(ctx, "SS*dS", &p, &body, &expires, &etag);
	if(n < 2) {
		rpc->fault(ctx, 400, "<presentity> <PIDF body or file> [expires] [etag] expected");
		return;
	}
	if(n < 3)
		expires = pub_default_expires;
	if(n < 4) {
		etag.s = NULL;
		etag.len = 0;
	}
	if(body.len == 1 && body.s[0] == '-') /* no body: a refresh or a remove */
		body.len = 0;
	if(body.len > 0 && body.s[0] == '/') { /* a file */
		FILE *f;
		char path[512];
		long sz;
		snprintf(path, sizeof(path), "%.*s", body.len, body.s);
		f = fopen(path, "rb");
		if(f == NULL) {
			rpc->fault(ctx, 404, "cannot open %s", path);
			return;
		}
		fseek(f, 0, SEEK_END);
		sz = ftell(f);
		fseek(f, 0, SEEK_SET);
		if(sz < 0 || sz > max_body_size) {
			fclose(f);
			rpc->fault(ctx, 400, "%s is larger than max_body_size", path);
			return;
		}
		buf = (char *)pkg_malloc(sz + 1);
		if(buf == NULL || fread(buf, 1, sz, f) != (size_t)sz) {
			fclose(f);
			if(buf)
				pkg_free(buf);
			rpc->fault(ctx, 500, "cannot read %s", path);
			return;
		}
		fclose(f);
		body.s = buf;
		body.len = (int)sz;
	}
	imps_presence_admin_publish(IS(p), IS(body), expires, IS(etag), &rep);
	if(buf)
		pkg_free(buf);
	if(rep.code >= 300) {
		rpc->fault(ctx, rep.code, "%s", rep.reason);
		return;
	}
	if(rpc->add(ctx, "{", &th) < 0)
		return;
	rpc->struct_add(th, "ds", "code", rep.code, "headers", rep.headers);
}

static void rpc_stats(rpc_t *rpc, void *ctx)
{
	void *th;
	long long subs = imps_presence_count_subscriptions();
	long long pubs = imps_presence_count_publications();
	if(rpc->add(ctx, "{", &th) < 0)
		return;
	rpc->struct_add(th, "dddddddd", "publications", (int)get_stat_val(st_pubs),
			"live_publications", (int)(pubs < 0 ? 0 : pubs), "active_watchers",
			(int)(subs < 0 ? 0 : subs), "notifies_sent", (int)get_stat_val(st_sent),
			"notifies_failed", (int)get_stat_val(st_failed), "publish_412",
			(int)get_stat_val(st_412), "rejected_bodies", (int)get_stat_val(st_rejected),
			"store_ok", subs < 0 ? 0 : 1);
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static int open_core(void)
{
	imps_presence_config_t cfg;
	imps_presence_host_t host;
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
	memset(&host, 0, sizeof(host));
	host.log = imps_log_sink;
	host.send_notify = send_notify;
	host.rule = rule_cb;
	host.stat = stat_cb;
	host.lock = lock_cb;
	host.unlock = unlock_cb;
	host.account = account_subscriptions ? account_cb : NULL;
	return imps_presence_open(&cfg, &host);
}

/* Reads the whole rules table and hands it to the core, which applies changed rules to the
 * existing watchers at once (rules edited with SQL, not through imps_presence.authorize). */
#define MAX_POLLED_RULES 100000
static void poll_rules(void)
{
	db_key_t cols[3] = {&col_presentity, &col_watcher, &col_action};
	db1_res_t *res = NULL;
	imps_presence_rule_row_t *rows;
	int i, n = 0;
	str v[3];

	if(dbh == NULL && (dbh = dbf.init(&db_url)) == NULL) {
		LM_ERR("rules poll: cannot connect to %.*s\n", db_url.len, db_url.s);
		return;
	}
	if(dbf.use_table(dbh, &rules_table) < 0
			|| dbf.query(dbh, 0, 0, 0, cols, 0, 3, 0, &res) < 0 || res == NULL) {
		LM_ERR("rules poll: query of %.*s failed\n", rules_table.len, rules_table.s);
		return;
	}
	if(RES_ROW_N(res) > MAX_POLLED_RULES) {
		LM_WARN("rules poll: more than %d rules: changes in SQL apply at the next refresh only\n",
				MAX_POLLED_RULES);
		dbf.free_result(dbh, res);
		return;
	}
	rows = (imps_presence_rule_row_t *)pkg_malloc(
			sizeof(imps_presence_rule_row_t) * (RES_ROW_N(res) + 1));
	if(rows == NULL) {
		PKG_MEM_ERROR;
		dbf.free_result(dbh, res);
		return;
	}
	for(i = 0; i < RES_ROW_N(res); i++) {
		db_val_t *rv = ROW_VALUES(&RES_ROWS(res)[i]);
		if(db_value_str(&rv[0], &v[0]) < 0 || db_value_str(&rv[1], &v[1]) < 0
				|| db_value_str(&rv[2], &v[2]) < 0)
			continue;
		rows[n].presentity = IS(v[0]);
		rows[n].watcher = IS(v[1]);
		rows[n].action = IS(v[2]);
		n++;
	}
	imps_presence_rules_snapshot(rows, (size_t)n);
	pkg_free(rows);
	dbf.free_result(dbh, res);
}

static void presence_timer(unsigned int ticks, void *param)
{
	static long long next_poll = 0;
	long long ms;
	if(!imps_presence_is_open() && open_core() < 0)
		return;
	handle_failed_notifies();
	ms = now_ms();
	imps_presence_tick(ms / 1000, ms);
	if(rules_poll_interval > 0 && ms >= next_poll) {
		next_poll = ms + (long long)rules_poll_interval * 1000;
		poll_rules();
	}
}

static int mod_init(void)
{
	db1_con_t *h;
	str a;

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
			|| timer_interval < 10) {
		LM_ERR("max_body_size >= 256, max_publications >= 1, max_watchers >= 1, "
			   "min_notify_interval >= 0 and "
			   "timer_interval >= 10 (ms) are required\n");
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
	if(db_bind_mod(&db_url, &dbf) < 0) {
		LM_ERR("cannot bind a database module for %.*s (load db_sqlite or db_postgres)\n",
				db_url.len, db_url.s);
		return -1;
	}
	if(!DB_CAPABILITY(dbf, DB_CAP_QUERY | DB_CAP_INSERT | DB_CAP_DELETE)) {
		LM_ERR("the database module cannot query, insert and delete\n");
		return -1;
	}
	h = dbf.init(&db_url);
	if(h == NULL) {
		LM_ERR("cannot connect to %.*s\n", db_url.len, db_url.s);
		return -1;
	}
	if(db_check_table_version(&dbf, h, &rules_table, 1) < 0) {
		LM_ERR("table %.*s missing or of the wrong version: create it with sql/\n",
				rules_table.len, rules_table.s);
		dbf.close(h);
		return -1;
	}
	dbf.close(h);
	if(lock_set_size < 1 || lock_set_size > 14) {
		LM_ERR("lock_set_size must be 1..14\n");
		return -1;
	}
	failed_lock = lock_alloc();
	failed_head = (struct failed_notify **)shm_malloc(sizeof(*failed_head));
	if(failed_lock == NULL || failed_head == NULL || lock_init(failed_lock) == NULL) {
		LM_ERR("cannot create the queue of failed NOTIFYs\n");
		return -1;
	}
	*failed_head = NULL;
	nlocks = 1 << lock_set_size;
	locks = lock_set_alloc(nlocks);
	if(locks == NULL || lock_set_init(locks) == NULL) {
		LM_ERR("cannot create the presentity locks\n");
		return -1;
	}
	if(register_module_stats(exports.name, mod_stats) != 0) {
		LM_ERR("cannot register statistics\n");
		return -1;
	}
	if(rpc_register_array(rpc_cmds) != 0) {
		LM_ERR("cannot register RPC commands\n");
		return -1;
	}
	register_basic_timers(1);
	return 0;
}

static int child_init(int rank)
{
	if(rank == PROC_INIT || rank == PROC_TCP_MAIN)
		return 0;
	if(rank == PROC_MAIN) {
		if(fork_basic_utimer(PROC_TIMER, "IMPS PRESENCE TIMER", 1, presence_timer, NULL,
				   timer_interval * 1000)
				< 0) {
			LM_ERR("cannot start the presence timer process\n");
			return -1;
		}
		return 0;
	}
	dbh = dbf.init(&db_url);
	if(dbh == NULL) {
		LM_ERR("cannot connect to %.*s in process rank %d\n", db_url.len, db_url.s, rank);
		return -1;
	}
	if(open_core() < 0) {
		LM_ERR("cannot initialize imps_presence in process rank %d\n", rank);
		return -1;
	}
	return 0;
}

static void mod_destroy(void)
{
	imps_presence_close();
	if(dbh) {
		dbf.close(dbh);
		dbh = NULL;
	}
	if(locks) {
		lock_set_destroy(locks);
		lock_set_dealloc(locks);
		locks = NULL;
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
