/* imps_aaa: authentication and authorization in the SIP worker, and the result xavps. */
#include "imps_aaa.h"

/* ---- authentication ---------------------------------------------------------------------- */


/* the challenge a request gets: WWW-Authenticate for REGISTER and for HTTP requests (xhttp's
 * event route: the XCAP server answers 401), else Proxy-Authenticate */
hdr_types_t challenge_type(struct sip_msg *msg)
{
	if(msg->REQ_METHOD == METHOD_REGISTER || IS_HTTP(msg))
		return HDR_AUTHORIZATION_T;
	return HDR_PROXYAUTH_T;
}

/* The answer for credentials that cannot be asked about, or for the HAAA's answer ret: builds
 * the challenge for -1..-4 and -6 (the script answers 401 for REGISTER, else 407); for 1 runs
 * the auth API's post_auth. h: the credentials (NULL: none). */
int auth_finish(struct sip_msg *msg, str *realm, hdr_types_t hftype,
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
int auth_begin(struct sip_msg *msg, str *realm, hdr_types_t *hftype,
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
	d->username = imps_str_of(cred->digest.username.whole);
	d->realm = imps_str_of(cred->digest.realm);
	d->nonce = imps_str_of(cred->digest.nonce);
	d->uri = imps_str_of(cred->digest.uri);
	d->method = imps_str_of(msg->first_line.u.request.method);
	d->qop = imps_str_of(cred->digest.qop.qop_str);
	d->algorithm = imps_str_of(cred->digest.alg.alg_str);
	d->cnonce = imps_str_of(cred->digest.cnonce);
	d->nc = imps_str_of(cred->digest.nc);
	d->response = imps_str_of(cred->digest.response);
	return 0;
}

void log_unavailable(imps_str_t user, const char *err)
{
	LM_ERR("authentication of %.*s: AAA unavailable: %s\n", (int)user.len,
			user.s ? user.s : "", err);
}

/* 1 authenticated; -1 no credentials; -2 wrong password; -3 unknown user; -4 stale nonce;
 * -5 AAA unavailable; -6 malformed credentials or error. A challenge header is added to the
 * reply for -1..-4 and -6: the script answers 401 (REGISTER) or 407. */
int ki_authenticate(struct sip_msg *msg, str *realm)
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

int w_authenticate(struct sip_msg *msg, char *realm, char *p2)
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
int identity_of(struct sip_msg *msg, str *user)
{
	struct sip_uri u;
	str uri;

	if(imps_requester_uri(msg, &trusted, &uri, &u) < 0 || u.user.len <= 0)
		return -1;
	*user = u.user;
	return 0;
}

void xavp_field(sr_xavp_t **list, char *name, int is_int, int i, char *sv)
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
void set_result_xavp(imps_aaa_decision_t *d, int rc)
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
void set_auth_xavp(int rc, imps_str_t verified)
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
int ki_authorize(struct sip_msg *msg, str *service)
{
	str user;
	imps_aaa_decision_t d;

	if(identity_of(msg, &user) < 0) {
		LM_WARN("no identity to authorize in the request\n");
		return -3;
	}
	imps_aaa_authorize(imps_str_of(user), imps_str_of(*service), 1, &d);
	if(d.result == -2) {
		LM_ERR("authorization of %.*s for %.*s: AAA unavailable: %s\n", user.len, user.s,
				service->len, service->s, d.error);
		return -2;
	}
	set_result_xavp(&d, 0);
	return d.result;
}

int w_authorize(struct sip_msg *msg, char *service, char *p2)
{
	str s;
	if(fixup_get_svalue(msg, (gparam_t *)service, &s) < 0)
		return -3;
	return ki_authorize(msg, &s);
}

