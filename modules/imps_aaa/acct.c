/* imps_aaa: accounting (RFC 2866), of registrations too, and bind_imps_aaa(). */
#include "imps_aaa.h"

/* ---- accounting -------------------------------------------------------------------------- */

/* event: start, stop or interim; the user of the identity, the Call-ID as session id */
int ki_account(struct sip_msg *msg, str *event)
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
	if(imps_aaa_account(imps_str_of(user), imps_str_of(msg->callid->body), status, err, sizeof(err)) < 0) {
		LM_ERR("accounting %.*s for %.*s failed: %s\n", event->len, event->s, user.len, user.s, err);
		return -1;
	}
	return 1;
}

int w_account(struct sip_msg *msg, char *event, char *p2)
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

void acct_exec(void *param)
{
	struct acct_task *t = (struct acct_task *)param;
	char err[256];
	if(imps_aaa_account(imps_str_of(t->user), imps_str_of(t->session), t->status, err, sizeof(err)) < 0)
		LM_WARN("accounting %s of %.*s (session %.*s) failed: %s\n",
				t->status == 1 ? "Start" : t->status == 2 ? "Stop" : "Interim-Update",
				t->user.len, t->user.s, t->session.len, t->session.s, err);
}

int account_async(str *user, str *session, int status)
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

int bind_imps_aaa(imps_aaa_api_t *api)
{
	if(api == NULL)
		return -1;
	api->account = account_async;
	return 0;
}

/* usrloc callback (account_registrations = 1): Accounting-Request Start when a binding is
 * created, Stop when it is removed or expires; Acct-Session-Id is the binding's ruid, User-Name
 * the user of the AoR. Sent by an async worker. */
void ul_acct_cb(ucontact_t *c, int type, void *param)
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

