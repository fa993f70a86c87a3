/* imps_presence: SUBSCRIBE for presence and presence.winfo, the NOTIFYs through tm, their
 * final responses (queued by tm's callback, handled in the module's timer process) and the
 * accounting of subscriptions. */
#include <string.h>

#include "core/dprint.h"
#include "core/mem/shm_mem.h"
#include "core/parser/parse_content.h"
#include "core/parser/parse_uri.h"

#include "imps_presence.h"


imps_completion_queue_t *completions = NULL;

int send_request(const imps_request_t *r)
{
	return imps_send_request(&tmb, r, completions);
}

static void completed(const imps_response_t *r, size_t n)
{
	imps_presence_complete_many(r, n);
}

/* timer process: the final responses of our NOTIFYs, oldest first, a batch per round trip */
void handle_completions(void)
{
	imps_cq_drain(completions, completed);
}

/* Accounting-Request Start/Stop of a subscription through imps_aaa (sent by an async
 * worker): User-Name the watcher's user, Acct-Session-Id the subscription id. */
void account_cb(imps_str_t watcher, imps_str_t sid, int start)
{
	str user = imps_kstr(watcher), session = imps_kstr(sid);
	char *at = memchr(user.s, '@', user.len);
	if(at)
		user.len = at - user.s;
	if(aaa_api.account(&user, &session, start ? IMPS_AAA_ACCT_START : IMPS_AAA_ACCT_STOP) < 0)
		LM_WARN("accounting %s of subscription %.*s not sent\n", start ? "Start" : "Stop",
				session.len, session.s);
}


int ki_handle_subscribe(struct sip_msg *msg)
{
	imps_presence_subscribe_t req;
	imps_presence_reply_t rep;
	imps_subscribe_buf_t buf;
	char pres[256], watcher[256];
	str body = {0, 0}, ct;
	const char *why = NULL;
	int n, rc;

	if(msg->first_line.type != SIP_REQUEST
			|| msg->first_line.u.request.method_value != METHOD_SUBSCRIBE) {
		LM_ERR("imps_presence_handle_subscribe() called for a request that is not SUBSCRIBE\n");
		return -1;
	}
	if((n = ensure_transaction(msg)) <= 0)
		return n;
	memset(&req, 0, sizeof(req));
	n = imps_read_subscribe(msg, &slb, contact_uri, &req.sub, &buf, &why);
	if(n == -1)
		return presence_reject(msg, 400, why);
	if(n < 0)
		return presence_reject(msg, 500, "Server Internal Error");
	if(!req.sub.dialog.in_dialog) {
		/* the presentity: the Request-URI (in-dialog: the stored subscription's) */
		why = NULL;
		if(parse_sip_msg_uri(msg) < 0)
			why = "Bad Request (malformed Request-URI)";
		else if(msg->parsed_uri.user.len <= 0 || msg->parsed_uri.host.len <= 0)
			why = "Bad Request (Request-URI has no presentity)";
		else if((n = imps_identity_of(&msg->parsed_uri, pres, sizeof(pres))) < 0)
			why = "Bad Request (Request-URI too long)";
		if(why) {
			imps_subscribe_buf_free(&buf);
			return presence_reject(msg, 400, why);
		}
		req.presentity.s = pres;
		req.presentity.len = n;
	}
	if((n = sender_identity(msg, watcher, sizeof(watcher))) < 0) {
		imps_subscribe_buf_free(&buf);
		return presence_reject(msg, 400, n == -2 ? "Bad Request (malformed P-Asserted-Identity)"
												 : "Bad Request (malformed From header)");
	}
	req.watcher.s = watcher;
	req.watcher.len = n;
	req.display_name = req.sub.dialog.display_name;
	/* the body (xcap-diff: the URI list) and its type */
	body.s = get_body(msg);
	body.len = body.s ? msg->len - (int)(body.s - msg->buf) : 0;
	if(msg->content_length && get_content_length(msg) < body.len)
		body.len = get_content_length(msg);
	if(body.len > 0) {
		if(msg->content_type == NULL) {
			imps_subscribe_buf_free(&buf);
			return presence_reject(msg, 400, "Bad Request (body without Content-Type)");
		}
		ct = msg->content_type->body;
		while(ct.len > 0 && (ct.s[0] == ' ' || ct.s[0] == '\t')) {
			ct.s++;
			ct.len--;
		}
		for(n = 0; n < ct.len && ct.s[n] != ';' && ct.s[n] != ' ' && ct.s[n] != '\t'; n++)
			;
		ct.len = n;
		req.content_type = imps_str_of(ct);
		req.body = imps_str_of(body);
	}
	req.now_ms = imps_now_ms();
	req.now = req.now_ms / 1000;

	rc = imps_presence_subscribe(&req, &rep);
	imps_subscribe_buf_free(&buf);
	return presence_finish(msg, rc, &rep, "SUBSCRIBE");
}

int w_handle_subscribe(struct sip_msg *msg, char *p1, char *p2)
{
	return ki_handle_subscribe(msg);
}
