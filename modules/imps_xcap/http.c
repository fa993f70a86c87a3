/* imps_xcap: one HTTP request of xhttp's event_route[xhttp:request] to the core, and the core's
 * answer back through xhttp. Who asks: the credentials the script verified (imps_aaa's
 * imps_aaa_authenticate, or the auth module), a trusted reader by source address, or nobody
 * (the core answers 401, with the challenge the script's authentication added). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/dprint.h"
#include "core/data_lump_rpl.h"
#include "core/parser/parse_hname2.h"
#include "core/parser/digest/digest.h"
#include "core/parser/parse_content.h"

#include "imps_xcap.h"

#define MAX_HDRS 1024

static str hdr_value(struct hdr_field *h)
{
	str v = h->body;
	while(v.len > 0 && (v.s[v.len - 1] == ' ' || v.s[v.len - 1] == '\t'))
		v.len--;
	return v;
}

/* the values of every header called name, joined with ", " into buf (HTTP list syntax) */
static int join_headers(struct sip_msg *msg, const char *name, char *buf, int size, str *out)
{
	struct hdr_field *h;
	int n = 0, len = (int)strlen(name), found = 0;
	for(h = msg->headers; h; h = h->next) {
		str v;
		if(h->name.len != len || strncasecmp(h->name.s, name, len) != 0)
			continue;
		v = hdr_value(h);
		if(n + v.len + 2 >= size)
			return -1;
		if(found) {
			memcpy(buf + n, ", ", 2);
			n += 2;
		}
		memcpy(buf + n, v.s, v.len);
		n += v.len;
		found = 1;
	}
	out->s = buf;
	out->len = n;
	return found;
}

/* the XUI of the credentials the script verified: "sip:<user>@<domain or realm>" */
static int identity_of(struct sip_msg *msg, char *buf, int size)
{
	struct hdr_field *h = NULL;
	auth_body_t *cred;
	str user, dom;
	int n;
	get_authorized_cred(msg->authorization, &h);
	if(h == NULL)
		return 0;
	cred = (auth_body_t *)h->parsed;
	user = cred->digest.username.user;
	dom = cred->digest.username.domain.len ? cred->digest.username.domain : cred->digest.realm;
	if(user.len == 0 || dom.len == 0)
		return 0;
	n = snprintf(buf, size, "sip:%.*s@%.*s", user.len, user.s, dom.len, dom.s);
	return (n > 0 && n < size) ? n : 0;
}

static void reply(struct sip_msg *msg, int code, const char *reason, const char *ctype,
		imps_str_t body)
{
	str r = {(char *)reason, (int)strlen(reason)};
	str c = {(char *)ctype, (int)strlen(ctype)};
	str b = {(char *)body.s, (int)body.len};
	xhttp_api.reply(msg, code, &r, &c, &b);
}

int ki_trusted(struct sip_msg *msg)
{
	return imps_from_trusted_peer(msg, &trusted_readers) ? 1 : -1;
}

int w_trusted(struct sip_msg *msg, char *p1, char *p2)
{
	return ki_trusted(msg);
}

int ki_handle(struct sip_msg *msg)
{
	imps_xcap_request_t rq;
	imps_xcap_response_t rs;
	str uri, method, v;
	char im[MAX_HDRS], inm[MAX_HDRS], who[512], reason[256], line[MAX_HDRS + 32];
	char *q, *body;
	int n;

	memset(&rq, 0, sizeof(rq));
	if(msg->first_line.type != SIP_REQUEST || parse_headers(msg, HDR_EOH_F, 0) < 0) {
		reply(msg, 400, "Bad Request (malformed request)", "", (imps_str_t){"", 0});
		return -1;
	}
	method = msg->first_line.u.request.method;
	uri = msg->first_line.u.request.uri;
	/* absolute form: drop scheme and authority */
	if(uri.len > 7 && (strncasecmp(uri.s, "http://", 7) == 0 || strncasecmp(uri.s, "https://", 8) == 0)) {
		char *p = memchr(uri.s + 8, '/', uri.len - 8);
		if(p == NULL) {
			uri.s += uri.len;
			uri.len = 0;
		} else {
			uri.len -= (int)(p - uri.s);
			uri.s = p;
		}
	}
	if(uri.len < root_path.len + 1 || strncmp(uri.s, root_path.s, root_path.len) != 0
			|| uri.s[root_path.len] != '/') {
		reply(msg, 404, "Not Found (not below the XCAP root)", "", (imps_str_t){"", 0});
		count_request(&method, 404, (imps_str_t){"root", 4});
		return -1;
	}
	uri.s += root_path.len + 1;
	uri.len -= root_path.len + 1;
	q = memchr(uri.s, '?', uri.len);
	rq.method = imps_str_of(method);
	rq.path.s = uri.s;
	rq.path.len = q ? (size_t)(q - uri.s) : (size_t)uri.len;
	if(q) {
		rq.query.s = q + 1;
		rq.query.len = (size_t)(uri.s + uri.len - q - 1);
	}
	if(msg->content_type)
		rq.content_type = imps_str_of(hdr_value(msg->content_type));
	if((rq.has_if_match = join_headers(msg, "If-Match", im, sizeof(im), &v)) >= 0)
		rq.if_match = imps_str_of(v);
	if((rq.has_if_none_match = join_headers(msg, "If-None-Match", inm, sizeof(inm), &v)) >= 0)
		rq.if_none_match = imps_str_of(v);
	if(rq.has_if_match < 0 || rq.has_if_none_match < 0) {
		reply(msg, 400, "Bad Request (precondition headers too long)", "", (imps_str_t){"", 0});
		return -1;
	}
	body = get_body(msg);
	if(body) {
		rq.body.s = body;
		rq.body.len = (size_t)(msg->buf + msg->len - body);
		if(msg->content_length && (size_t)get_content_length(msg) < rq.body.len)
			rq.body.len = (size_t)get_content_length(msg);
	}
	n = identity_of(msg, who, sizeof(who));
	if(n > 0) {
		rq.identity.s = who;
		rq.identity.len = (size_t)n;
		rq.role = (admin_identity[0] && strcasecmp(who, admin_identity) == 0) ? IMPS_XCAP_ADMIN
																			 : IMPS_XCAP_USER;
	} else if(imps_from_trusted_peer(msg, &trusted_readers)) {
		rq.role = IMPS_XCAP_READER;
	} else {
		rq.role = IMPS_XCAP_ANONYMOUS;
	}
	if(imps_xcap_handle(&rq, &rs) < 0) {
		reply(msg, 500, "Internal Server Error", "", (imps_str_t){"", 0});
		return -1;
	}
	if(rs.etag.len) {
		n = snprintf(line, sizeof(line), "ETag: \"%.*s\"\r\n", (int)rs.etag.len, rs.etag.s);
		if(n > 0 && n < (int)sizeof(line))
			add_lump_rpl(msg, line, n, LUMP_RPL_HDR);
	}
	if(rs.headers.len)
		add_lump_rpl(msg, (char *)rs.headers.s, (int)rs.headers.len, LUMP_RPL_HDR);
	snprintf(reason, sizeof(reason), "%.*s", (int)rs.reason.len, rs.reason.s);
	{
		char ct[256];
		snprintf(ct, sizeof(ct), "%.*s", (int)rs.content_type.len, rs.content_type.s);
		reply(msg, rs.status, reason, ct, rs.body);
	}
	count_request(&method, rs.status, rs.refused);
	return rs.status < 400 ? 1 : -1;
}

int w_handle(struct sip_msg *msg, char *p1, char *p2)
{
	return ki_handle(msg);
}
