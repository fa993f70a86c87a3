/* imps_presence: PUBLISH (RFC 3903) and the checks every request handler shares. */
#include <stdio.h>
#include <string.h>

#include "core/dprint.h"
#include "core/ip_addr.h"
#include "core/parser/parse_content.h"
#include "core/parser/parse_uri.h"

#include "imps_presence.h"


static int from_trusted(struct sip_msg *msg)
{
	return imps_from_trusted_peer(msg, &trusted);
}

/* the identity of the sender: P-Asserted-Identity from a trusted peer, else From */
int sender_identity(struct sip_msg *msg, char *buf, int size)
{
	struct sip_uri u;
	str uri;
	int rc = imps_requester_uri(msg, &trusted, &uri, &u);
	if(rc < 0)
		return rc == -2 ? -2 : -3;
	return imps_identity_of(&u, buf, size);
}

int presence_reply(struct sip_msg *msg, int code, const char *reason, const char *hdrs)
{
	return imps_sl_reply(&slb, msg, code, reason, hdrs);
}

int presence_reject(struct sip_msg *msg, int code, const char *reason)
{
	return presence_reply(msg, code, reason, NULL) < 0 ? -1 : -2;
}
/* ---- PUBLISH / SUBSCRIBE ----------------------------------------------------------------- */

/* A transaction for the request (when the script has not made one): a retransmission is
 * absorbed by tm (the answer sent again) instead of being processed a second time, which for
 * a modifying PUBLISH would consume the new ETag. 1 go on; 0 retransmission; -1 error. */
int ensure_transaction(struct sip_msg *msg)
{
	struct cell *t = tmb.t_gett();
	int r;
	if(t != NULL && t != T_UNDEFINED)
		return 1;
	r = tmb.t_newtran(msg);
	if(r < 0) {
		LM_ERR("cannot create a transaction for the %.*s\n",
				msg->first_line.u.request.method.len, msg->first_line.u.request.method.s);
		presence_reject(msg, 500, "Server Internal Error (no transaction)");
		return -1;
	}
	return r == 0 ? 0 : 1;
}

int presence_finish(struct sip_msg *msg, int rc, imps_presence_reply_t *rep, const char *what)
{
	int ret;
	if(rc < 0 && rep->code == 503)
		LM_ERR("%s answered 503: %s\n", what, imps_presence_last_error());
	ret = presence_reply(msg, rep->code, rep->reason, rep->headers) < 0 ? -1 : (rep->code < 300 ? 1 : -2);
	imps_presence_flush(); /* NOTIFYs go after the reply */
	return ret;
}

int ki_handle_publish(struct sip_msg *msg)
{
	imps_presence_publish_t req;
	imps_presence_reply_t rep;
	struct hdr_field *h;
	char pres[256], ident[256], src[128];
	str body = {0, 0}, ct, ev, etag;
	int n, rc;

	if(msg->first_line.type != SIP_REQUEST
			|| msg->first_line.u.request.method_value != METHOD_PUBLISH) {
		LM_ERR("imps_presence_handle_publish() called for a request that is not PUBLISH\n");
		return -1;
	}
	if((n = ensure_transaction(msg)) <= 0)
		return n;
	memset(&req, 0, sizeof(req));
	if(parse_headers(msg, HDR_EOH_F, 0) < 0)
		return presence_reject(msg, 400, "Bad Request (malformed header)");
	if((req.has_event = imps_event_of(msg, &ev)))
		req.event = imps_str_of(ev);
	if(imps_expires_of(msg, &req.expires) < 0)
		return presence_reject(msg, 400, "Bad Request (malformed Expires)");
	for(h = msg->headers; h; h = h->next) {
		if(h->type == HDR_SIPIFMATCH_T) {
			etag = h->body;
			trim(&etag);
			if(etag.len <= 0)
				return presence_reject(msg, 400, "Bad Request (empty SIP-If-Match)");
			req.if_match = imps_str_of(etag);
		}
	}
	body.s = get_body(msg);
	body.len = body.s ? msg->len - (int)(body.s - msg->buf) : 0;
	if(msg->content_length) {
		/* never read past what arrived, whatever the script checked before */
		if(get_content_length(msg) > body.len)
			return presence_reject(msg, 400, "Bad Request (Content-Length larger than the body)");
		body.len = get_content_length(msg);
	}
	if(body.len > 0) {
		req.has_body = 1;
		req.body = imps_str_of(body);
		if(msg->content_type == NULL)
			return presence_reject(msg, 400, "Bad Request (body without Content-Type)");
		ct = msg->content_type->body;
		trim(&ct);
		n = 0;
		while(n < ct.len && ct.s[n] != ';' && ct.s[n] != ' ' && ct.s[n] != '\t')
			n++;
		ct.len = n;
		req.content_type = imps_str_of(ct);
	}
	if(parse_sip_msg_uri(msg) < 0)
		return presence_reject(msg, 400, "Bad Request (malformed Request-URI)");
	if((n = imps_identity_of(&msg->parsed_uri, pres, sizeof(pres))) < 0
			|| msg->parsed_uri.user.len <= 0)
		return presence_reject(msg, 400, "Bad Request (Request-URI has no presentity)");
	req.presentity.s = pres;
	req.presentity.len = n;
	if((n = sender_identity(msg, ident, sizeof(ident))) < 0)
		return presence_reject(msg, 400, n == -2 ? "Bad Request (malformed P-Asserted-Identity)"
										: "Bad Request (malformed From header)");
	req.identity.s = ident;
	req.identity.len = n;
	n = snprintf(src, sizeof(src), "%s:%s:%d", get_proto_name(msg->rcv.proto),
			ip_addr2a(&msg->rcv.src_ip), msg->rcv.src_port);
	req.source.s = src;
	req.source.len = n > 0 && n < (int)sizeof(src) ? n : 0;
	req.now_ms = imps_now_ms();
	req.now = req.now_ms / 1000;

	/* no lock: the store change and the NOTIFY turns are one script; a watcher whose NOTIFY
	 * is outstanding gets the newest document after its response */
	rc = imps_presence_publish(&req, &rep);
	return presence_finish(msg, rc, &rep, "PUBLISH");
}

int ki_trusted(struct sip_msg *msg)
{
	return from_trusted(msg) ? 1 : -1;
}

int w_handle_publish(struct sip_msg *msg, char *p1, char *p2)
{
	return ki_handle_publish(msg);
}

int w_trusted(struct sip_msg *msg, char *p1, char *p2)
{
	return ki_trusted(msg);
}

