/* imps_aaa: the asynchronous protocol: a task per request to the async workers, the
 * transaction suspended and resumed through tm. */
#include "imps_aaa.h"

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
	imps_str_t identity, service;
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
size_t task_strings(str *realm, imps_aaa_digest_t *d, str *identity, str *service,
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
char *put(char *p, const char *s, size_t len, const char **dst, size_t *dlen)
{
	if(len)
		memcpy(p, s, len);
	p[len] = '\0';
	*dst = p;
	*dlen = len;
	return p + len + 1;
}

char *put_str(char *p, str *s, str *dst)
{
	size_t l;
	const char *d;
	p = put(p, s ? s->s : NULL, s ? (size_t)s->len : 0, &d, &l);
	dst->s = (char *)d;
	dst->len = (int)l;
	return p;
}

char *put_astr(char *p, imps_str_t s, imps_str_t *dst)
{
	return put(p, s.s, s.len, &dst->s, &dst->len);
}

void async_exec(void *param);

/* the task in one shm block after the core's async_task_t (freed with it by the core) */
async_task_t *task_new(int kind, int route, str *cbname, str *realm, hdr_types_t hftype,
		imps_aaa_digest_t *d, str *identity, str *service)
{
	size_t len = sizeof(async_task_t) + sizeof(aaa_task_t)
				 + task_strings(realm, d, identity, service, cbname);
	async_task_t *at = (async_task_t *)shm_malloc(len);
	aaa_task_t *t;
	char *p;
	imps_str_t ai, as;

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
		p = put_astr(p, imps_str_of(*identity), &ai);
		p = put_astr(p, imps_str_of(*service), &as);
		t->identity = ai;
		t->service = as;
	}
	return at;
}

/* Suspends the request's transaction (creating it if needed) and queues the task. 0 queued,
 * or nothing to do (a retransmission tm took care of: the script stops as if suspended);
 * -1 not (the caller answers "AAA unavailable" at once). */
int task_submit(struct sip_msg *msg, async_task_t *at)
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
int run_result_route(struct sip_msg *msg, int route)
{
	struct run_act_ctx ctx;
	if(route < 0 || route >= main_rt.entries || main_rt.rlist[route] == NULL)
		return -1;
	init_run_actions_ctx(&ctx);
	run_actions(&ctx, main_rt.rlist[route], msg);
	return 0;
}

/* In the async worker: the RADIUS exchange, then t_continue into the route. */
void async_exec(void *param)
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
int resume_cb(struct sip_msg *msg, unsigned int flags, void *param)
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
int own_transaction(struct sip_msg *msg)
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
int authenticate_async(struct sip_msg *msg, str *realm, int route, str *cbname)
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
		set_auth_xavp(-6, (imps_str_t){NULL, 0});
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
	set_auth_xavp(rc, (imps_str_t){NULL, 0});
	return rc;
}

/* who: the user to authorize (the callee whose existence the HSP checks, say); NULL: the
 * request's identity (identity_of) */
int authorize_async(
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
	if(imps_aaa_authorize_cached(imps_str_of(user), imps_str_of(*service), &d) == 1) {
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
int w_authenticate_async(struct sip_msg *msg, char *realm, char *route)
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

int w_authorize_async(struct sip_msg *msg, char *service, char *route)
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
int w_authorize_user_async(struct sip_msg *msg, char *user, char *service, char *route)
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
int ki_authenticate_async(struct sip_msg *msg, str *realm, str *cb)
{
	if(sr_kemi_eng_get() == NULL || cb == NULL || cb->len <= 0) {
		LM_ERR("a KEMI callback name is needed\n");
		return -6;
	}
	return authenticate_async(msg, realm, -1, cb);
}

int ki_authorize_async(struct sip_msg *msg, str *service, str *cb)
{
	if(sr_kemi_eng_get() == NULL || cb == NULL || cb->len <= 0) {
		LM_ERR("a KEMI callback name is needed\n");
		return -3;
	}
	return authorize_async(msg, NULL, service, -1, cb);
}

int ki_authorize_user_async(struct sip_msg *msg, str *user, str *service, str *cb)
{
	if(sr_kemi_eng_get() == NULL || cb == NULL || cb->len <= 0) {
		LM_ERR("a KEMI callback name is needed\n");
		return -3;
	}
	return authorize_async(msg, user, service, -1, cb);
}

/* imps_aaa_authorize_user_async: user and service are strings, the route is the third */
int fixup_user_async(void **param, int param_no)
{
	if(param_no == 1 || param_no == 2)
		return fixup_spve_null(param, 1);
	if(param_no == 3)
		return fixup_async(param, 2);
	return 0;
}

int fixup_free_user_async(void **param, int param_no)
{
	if(param_no == 1 || param_no == 2)
		return fixup_free_spve_null(param, 1);
	return 0;
}

int fixup_async(void **param, int param_no)
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

int fixup_free_async(void **param, int param_no)
{
	if(param_no == 1)
		return fixup_free_spve_null(param, 1);
	return 0;
}

