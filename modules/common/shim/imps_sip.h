/* For the Kamailio shims only: SIP helpers every module's shim needs the same way (identity
 * of a URI, the socket a stored "proto:host:port" names, the Contact of our own NOTIFYs, a
 * reply through sl with extra header lines). Static inline: each shim gets its own copy, and
 * nothing is exported from a module. */
#ifndef IMPS_SHIM_SIP_H
#define IMPS_SHIM_SIP_H

#include <ctype.h>
#include <stdlib.h>
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
#include "core/parser/parse_from.h"
#include "core/parser/parse_ppi_pai.h"
#include "core/trim.h"
#include "core/cfg_core.h"
#include "modules/sl/sl.h"
#include "modules/tm/dlg.h"

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

/* ---- one trust boundary: who the requester is ------------------------------------------ */

#define IMPS_MAX_TRUSTED_PEERS 16

/* The peers whose P-Asserted-Identity a module believes ("ip[:port]", separated by spaces,
 * commas or semicolons; no port: any port of that address). */
typedef struct imps_trusted_peers {
	int n;
	struct {
		struct ip_addr ip;
		unsigned short port;
	} peer[IMPS_MAX_TRUSTED_PEERS];
} imps_trusted_peers_t;

/* 0 parsed (an empty list trusts nobody), -1 an entry is not an IP address or too many */
static inline int imps_parse_trusted_peers(const char *list, imps_trusted_peers_t *t)
{
	char buf[1024], *tok, *save = NULL, *colon;
	struct ip_addr *ip;
	str host;

	t->n = 0;
	snprintf(buf, sizeof(buf), "%s", list ? list : "");
	for(tok = strtok_r(buf, " ,;", &save); tok; tok = strtok_r(NULL, " ,;", &save)) {
		if(t->n == IMPS_MAX_TRUSTED_PEERS) {
			LM_ERR("more than %d trusted peers\n", IMPS_MAX_TRUSTED_PEERS);
			return -1;
		}
		t->peer[t->n].port = 0;
		colon = strrchr(tok, ':');
		if(colon && strchr(tok, ':') == colon) { /* ipv4:port */
			*colon = '\0';
			t->peer[t->n].port = (unsigned short)atoi(colon + 1);
		}
		host.s = tok;
		host.len = strlen(tok);
		if(host.len > 2 && host.s[0] == '[') {
			host.s++;
			host.len -= 2;
		}
		ip = str2ip(&host);
		if(ip == NULL)
			ip = str2ip6(&host);
		if(ip == NULL) {
			LM_ERR("trusted peer '%s' is not an IP address\n", tok);
			return -1;
		}
		t->peer[t->n].ip = *ip;
		t->n++;
	}
	return 0;
}

/* 1 when msg came from one of the trusted peers (source address and port), else 0 */
static inline int imps_from_trusted_peer(struct sip_msg *msg, const imps_trusted_peers_t *t)
{
	int i;
	for(i = 0; i < t->n; i++)
		if(ip_addr_cmp(&msg->rcv.src_ip, &t->peer[i].ip)
				&& (t->peer[i].port == 0 || t->peer[i].port == msg->rcv.src_port))
			return 1;
	return 0;
}

/* The URI of the requester: the (first) P-Asserted-Identity when msg came from a trusted
 * peer, else the From URI. A script's remove_hf("P-Asserted-Identity") only changes the
 * forwarded copy, not what a module reads here: the peers decide. 0 done (*uri set, *parsed
 * parsed); -1 no usable From; -2 a trusted peer's P-Asserted-Identity is malformed. */
static inline int imps_requester_uri(struct sip_msg *msg, const imps_trusted_peers_t *t,
		str *uri, struct sip_uri *parsed)
{
	to_body_t *from;
	if(imps_from_trusted_peer(msg, t) && parse_pai_header(msg) == 0 && msg->pai
			&& msg->pai->parsed && ((p_id_body_t *)msg->pai->parsed)->id) {
		*uri = ((p_id_body_t *)msg->pai->parsed)->id->uri;
		return parse_uri(uri->s, uri->len, parsed) < 0 ? -2 : 0;
	}
	if(parse_from_header(msg) < 0 || (from = get_from(msg)) == NULL)
		return -1;
	*uri = from->uri;
	return parse_uri(uri->s, uri->len, parsed) < 0 ? -1 : 0;
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

/* RFC 3261 18.1.1 for the in-dialog requests we send (NOTIFYs): one larger than the core's
 * udp_mtu goes over TCP when udp_mtu_try_proto is TCP, as Kamailio does for the requests it
 * relays. Applies when the next hop is the first entry of the route set (a proxy, which
 * RFC 3261 makes support TCP) naming no transport, and a TCP socket listens on the send
 * socket's address: the first URI gets ";transport=tcp" (copied into buf, which rs then
 * points into) and *sock becomes that TCP socket. 1 switched, 0 left as it was. */
static inline int imps_route_set_over_tcp(
		str *rs, int size, struct socket_info **sock, char *buf, int buflen)
{
	static const char tp[] = ";transport=tcp";
	struct socket_info *tcp;
	char *lt, *gt, *p;
	int mtu = cfg_get(core, core_cfg, udp_mtu);

	if(mtu <= 0 || size <= mtu || cfg_get(core, core_cfg, udp_mtu_try_proto) != PROTO_TCP)
		return 0;
	if(rs->len <= 0 || *sock == NULL || (*sock)->proto != PROTO_UDP)
		return 0;
	lt = memchr(rs->s, '<', rs->len);
	if(lt == NULL)
		return 0;
	gt = memchr(lt, '>', rs->len - (lt - rs->s));
	if(gt == NULL)
		return 0;
	for(p = lt; p + 10 <= gt; p++)
		if(strncasecmp(p, "transport=", 10) == 0)
			return 0;
	if(rs->len + (int)sizeof(tp) > buflen)
		return 0;
	tcp = grep_sock_info(&(*sock)->address_str, (*sock)->port_no, PROTO_TCP);
	if(tcp == NULL)
		return 0;
	p = buf;
	memcpy(p, rs->s, gt - rs->s);
	p += gt - rs->s;
	memcpy(p, tp, sizeof(tp) - 1);
	p += sizeof(tp) - 1;
	memcpy(p, gt, rs->len - (gt - rs->s));
	p += rs->len - (gt - rs->s);
	rs->s = buf;
	rs->len = (int)(p - buf);
	*sock = tcp;
	return 1;
}

/* The send socket and route set of an in-dialog request we send through tm, from the
 * stored strings of its dialog ("udp:127.0.0.1:5080", "<sip:...;lr>,<sip:...;lr>"); td has
 * its URIs and Call-ID, content: the length of the headers and body the request carries.
 * Over the core's udp_mtu the first hop is asked for TCP (imps_route_set_over_tcp), the
 * route set then pointing into buf. 0 done, -1 the route set does not parse. */
static inline int imps_dlg_route(dlg_t *td, str socket, str route_set, int content,
		char *buf, int buflen)
{
	/* what tm adds: Via, Max-Forwards, From, To, Call-ID, CSeq, Route, Content-Length */
	int size = content + td->rem_target.len + td->loc_uri.len + td->rem_uri.len
			   + td->id.call_id.len + 2 * route_set.len + 300;

	td->send_sock = imps_socket_from_str(&socket);
	if(route_set.len <= 0)
		return 0;
	imps_route_set_over_tcp(&route_set, size, &td->send_sock, buf, buflen);
	return parse_rr_body(route_set.s, route_set.len, &td->route_set) < 0 ? -1 : 0;
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
