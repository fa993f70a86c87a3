/* For the Kamailio shims only: SIP helpers every module's shim needs the same way (identity
 * of a URI, the socket a stored "proto:host:port" names, the Contact of our own NOTIFYs, a
 * reply through sl with extra header lines). Static inline: each shim gets its own copy, and
 * nothing is exported from a module. */
#ifndef IMPS_SHIM_SIP_H
#define IMPS_SHIM_SIP_H

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/dprint.h"
#include "core/ip_addr.h"
#include "core/resolve.h"
#include "core/socket_info.h"
#include "core/data_lump_rpl.h"
#include "core/parser/msg_parser.h"
#include "core/parser/parse_uri.h"
#include "core/parser/parse_expires.h"
#include "core/trim.h"
#include "modules/sl/sl.h"

/* "user@host" (or "host") of a SIP URI, host in lower case; its length, -1 if it does not fit */
static inline int imps_identity_of(struct sip_uri *u, char *buf, int size)
{
	int i, n;
	if(u->user.len > 0)
		n = snprintf(buf, size, "%.*s@%.*s", u->user.len, u->user.s, u->host.len, u->host.s);
	else
		n = snprintf(buf, size, "%.*s", u->host.len, u->host.s);
	if(n < 0 || n >= size)
		return -1;
	for(i = n - u->host.len; i < n; i++)
		buf[i] = tolower((unsigned char)buf[i]);
	return n;
}

/* the local socket a stored socket string ("udp:127.0.0.1:5070") names, NULL if none */
static inline struct socket_info *imps_socket_from_str(str *s)
{
	char buf[256];
	str host;
	int port = 0, proto = 0;
	if(s->len <= 0 || s->len >= (int)sizeof(buf))
		return NULL;
	memcpy(buf, s->s, s->len);
	buf[s->len] = '\0';
	if(parse_phostport(buf, &host.s, &host.len, &port, &proto) < 0)
		return NULL;
	return grep_sock_info(&host, (unsigned short)port, (unsigned short)proto);
}

/* The Contact URI of the NOTIFYs of a subscription received on msg's socket: the configured
 * one, else sip:<advertised or listening address>:<port>;transport=<proto>. Its length in buf,
 * 0 when there is none. */
static inline int imps_local_contact(struct sip_msg *msg, const char *configured, char *buf, int size)
{
	struct socket_info *si = msg->rcv.bind_address;
	int n;
	if(si == NULL)
		return 0;
	if(configured && *configured) {
		n = snprintf(buf, size, "%s", configured);
	} else {
		str *addr = si->useinfo.name.len ? &si->useinfo.name : &si->address_str;
		str *port = si->useinfo.port_no_str.len ? &si->useinfo.port_no_str : &si->port_no_str;
		int v6 = si->address.af == AF_INET6 && addr->len > 0 && addr->s[0] != '[';
		n = snprintf(buf, size, "sip:%s%.*s%s:%.*s;transport=%s", v6 ? "[" : "", addr->len,
				addr->s, v6 ? "]" : "", port->len, port->s, get_proto_name(si->proto));
	}
	return (n > 0 && n < size) ? n : 0;
}

/* The Event header's value, trimmed, in *ev: 1, or 0 when there is none (headers parsed). */
static inline int imps_event_of(struct sip_msg *msg, str *ev)
{
	if(msg->event == NULL || msg->event->body.len <= 0)
		return 0;
	*ev = msg->event->body;
	trim(ev);
	return 1;
}

/* The Expires header's value in *out (-1 when there is none): 0, or -1 when it is malformed. */
static inline int imps_expires_of(struct sip_msg *msg, int *out)
{
	*out = -1;
	if(msg->expires == NULL)
		return 0;
	if(parse_expires(msg->expires) < 0 || !((exp_body_t *)msg->expires->parsed)->valid)
		return -1;
	*out = ((exp_body_t *)msg->expires->parsed)->val;
	return 0;
}

/* Every Accept header's body joined with ',' into buf; *present tells whether there was one.
 * The length, or -1 when they do not fit. */
static inline int imps_accept_of(struct sip_msg *msg, char *buf, int size, int *present)
{
	struct hdr_field *h;
	int n, len = 0;
	*present = 0;
	for(h = msg->headers; h; h = h->next) {
		if(h->type != HDR_ACCEPT_T)
			continue;
		*present = 1;
		n = snprintf(buf + len, size - len, "%s%.*s", len ? "," : "", h->body.len, h->body.s);
		if(n < 0 || n >= size - len)
			return -1;
		len += n;
	}
	return len;
}

/* Replies through sl's send_reply (statefully when the request has a transaction), with
 * header lines (each ending in CRLF) added first. 1 sent, -1 not. */
static inline int imps_sl_reply(sl_api_t *slb, struct sip_msg *msg, int code, const char *reason,
		const char *hdrs)
{
	str r;
	if(hdrs && *hdrs) {
		if(add_lump_rpl(msg, (char *)hdrs, strlen(hdrs), LUMP_RPL_HDR) == 0)
			LM_ERR("cannot add reply headers\n");
	}
	r.s = (char *)reason;
	r.len = strlen(reason);
	if(slb->freply(msg, code, &r) < 0) {
		LM_ERR("cannot send %d reply\n", code);
		return -1;
	}
	return 1;
}

#endif
