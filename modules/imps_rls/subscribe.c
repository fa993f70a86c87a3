/* imps_rls: SUBSCRIBEs to list services (RFC 4662), answered here when the Request-URI is a
 * service of a user's rls-services document; the NOTIFYs through tm, their final responses
 * queued by tm's callback and handled in the module's timer process. */
#include <string.h>
#include <strings.h>

#include "core/dprint.h"
#include "core/parser/parse_content.h"
#include "core/parser/parse_supported.h"
#include "core/parser/parse_uri.h"

#include "imps_rls.h"

imps_completion_queue_t *completions = NULL;

int send_request(const imps_request_t *r)
{
	return imps_send_request(&tmb, r, completions);
}

static void completed(const imps_response_t *r, size_t n)
{
	imps_rls_complete_many(r, n);
}

void handle_completions(void)
{
	imps_cq_drain(completions, completed);
}

/* the first value of a header by name (trimmed, up to ';' when params is 0) */
static str header_value(struct sip_msg *msg, const char *name, int params)
{
	struct hdr_field *h;
	str v = STR_NULL;
	int n = strlen(name), i;
	for(h = msg->headers; h; h = h->next) {
		if(h->name.len != n || strncasecmp(h->name.s, name, n) != 0)
			continue;
		v = h->body;
		while(v.len > 0 && (v.s[0] == ' ' || v.s[0] == '\t')) {
			v.s++;
			v.len--;
		}
		for(i = 0; i < v.len && (params || v.s[i] != ';') && v.s[i] != ' ' && v.s[i] != '\t'
					&& v.s[i] != '\r' && v.s[i] != '\n';
				i++)
			;
		v.len = i;
		return v;
	}
	return v;
}

/* does a Require header name the option tag? */
static int requires(struct sip_msg *msg, const char *tag)
{
	struct hdr_field *h;
	int n = strlen(tag), i;
	for(h = msg->headers; h; h = h->next) {
		if(h->type != HDR_REQUIRE_T)
			continue;
		for(i = 0; i + n <= h->body.len; i++)
			if(strncasecmp(h->body.s + i, tag, n) == 0
					&& (i == 0 || h->body.s[i - 1] == ' ' || h->body.s[i - 1] == ',')
					&& (i + n == h->body.len || h->body.s[i + n] == ' ' || h->body.s[i + n] == ','
							|| h->body.s[i + n] == '\r'))
				return 1;
	}
	return 0;
}

static int reject(struct sip_msg *msg, int code, const char *reason)
{
	return imps_sl_reply(&slb, msg, code, reason, NULL) < 0 ? -1 : -3;
}

/* 1 answered (2xx), -3 answered with an error, -2 not a list service (nothing answered: the
 * script hands the SUBSCRIBE to imps_presence), -1 error */
int ki_handle_subscribe(struct sip_msg *msg)
{
	imps_rls_subscribe_t req;
	imps_rls_reply_t rep;
	imps_subscribe_buf_t buf;
	struct sip_uri u;
	str uri;
	char watcher[256];
	const char *why = NULL;
	int n, rc, ret;
	struct cell *t;

	if(msg->first_line.type != SIP_REQUEST
			|| msg->first_line.u.request.method_value != METHOD_SUBSCRIBE) {
		LM_ERR("imps_rls_handle_subscribe() called for a request that is not SUBSCRIBE\n");
		return -1;
	}
	/* a transaction absorbs retransmissions (imps_presence uses it too when it is its) */
	t = tmb.t_gett();
	if(t == NULL || t == T_UNDEFINED) {
		n = tmb.t_newtran(msg);
		if(n == 0)
			return 0;
		if(n < 0) {
			LM_ERR("cannot create a transaction for the SUBSCRIBE\n");
			return reject(msg, 500, "Server Internal Error (no transaction)");
		}
	}
	memset(&req, 0, sizeof(req));
	n = imps_read_subscribe(msg, &slb, contact_uri, &req.sub, &buf, &why);
	if(n < 0)
		return -2; /* imps_presence answers what is wrong with it */
	if(parse_supported(msg) == 0 && (get_supported(msg) & F_OPTION_TAG_EVENTLIST))
		req.eventlist = 1;
	/* RFC 5367: the list in the body */
	if(parse_headers(msg, HDR_EOH_F, 0) == 0 && requires(msg, "recipient-list-subscribe")) {
		str body, ct;
		req.recipient_list = 1;
		body.s = get_body(msg);
		body.len = body.s ? msg->len - (int)(body.s - msg->buf) : 0;
		if(msg->content_length && get_content_length(msg) < body.len)
			body.len = get_content_length(msg);
		if(body.len > 0)
			req.body = imps_str_of(body);
		ct = msg->content_type ? msg->content_type->body : (str)STR_NULL;
		if(ct.len > 0) {
			for(n = 0; n < ct.len && (ct.s[n] == ' ' || ct.s[n] == '\t'); n++)
				;
			ct.s += n;
			ct.len -= n;
			for(n = 0; n < ct.len && ct.s[n] != ';' && ct.s[n] != ' ' && ct.s[n] != '\t'; n++)
				;
			ct.len = n;
		}
		req.content_type = imps_str_of(ct);
		req.content_disposition = imps_str_of(header_value(msg, "Content-Disposition", 0));
		req.content_encoding = imps_str_of(header_value(msg, "Content-Encoding", 0));
		req.user_agent = imps_str_of(header_value(msg, "User-Agent", 1));
	}
	req.service = imps_str_of(GET_RURI(msg)->len > 0 ? *GET_RURI(msg) : msg->first_line.u.request.uri);
	if((n = imps_requester_uri(msg, &trusted, &uri, &u)) < 0
			|| (n = imps_identity_of(&u, watcher, sizeof(watcher))) < 0) {
		imps_subscribe_buf_free(&buf);
		return -2;
	}
	req.watcher.s = watcher;
	req.watcher.len = n;
	req.display_name = req.sub.dialog.display_name;
	req.now_ms = imps_now_ms();
	req.now = req.now_ms / 1000;
	rc = imps_rls_subscribe(&req, &rep);
	imps_subscribe_buf_free(&buf);
	if(rc == 0 && rep.code == 0)
		return -2;
	ret = imps_sl_reply(&slb, msg, rep.code, rep.reason, rep.headers) < 0 ? -1
			: rep.code < 300 ? 1 : -3;
	imps_rls_flush();
	return ret;
}

int w_handle_subscribe(struct sip_msg *msg, char *p1, char *p2)
{
	return ki_handle_subscribe(msg);
}
