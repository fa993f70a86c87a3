/* For the Kamailio shims only: the Kamailio side of the shared subscription layer.
 *  - imps_subscribe_dialog(): the dialog of a SUBSCRIBE (tags, URIs, target, route set,
 *    socket, CSeq, our Contact), for every event package;
 *  - imps_send_request(): an in-dialog request (NOTIFY) through tm with the headers and body
 *    the package supplies; its final response is queued, not handled, in tm's callback;
 *  - the completion queue: shared memory, filled by tm callbacks (no I/O there), drained by
 *    the module's own timer process, which runs the store work.
 * Static inline, as imps_sip.h: each shim gets its own copy. */
#ifndef IMPS_SHIM_NOTIFY_H
#define IMPS_SHIM_NOTIFY_H

#include "imps_sip.h"
#include "imps/capi.h"

#include <time.h>

#include "core/locking.h"
#include "core/mem/shm_mem.h"
#include "core/parser/contact/parse_contact.h"
#include "core/parser/parse_rr.h"
#include "core/parser/parse_cseq.h"
#include "modules/tm/tm_load.h"

static inline imps_str_t imps_str_of(str s)
{
	imps_str_t r;
	r.s = s.s;
	r.len = s.len > 0 ? (size_t)s.len : 0;
	return r;
}

static inline str imps_kstr(imps_str_t s)
{
	str r;
	r.s = (char *)s.s;
	r.len = (int)s.len;
	return r;
}

static inline long long imps_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The name of this node for the subscription store: the configured one, else the first
 * listening socket ("udp:127.0.0.1:5070"), which tells two instances on one host apart. */
static inline const char *imps_node_name(const char *configured, char *buf, int size)
{
	struct socket_info *si;
	if(configured && *configured)
		return configured;
	si = get_first_socket();
	if(si == NULL || si->sock_str.len <= 0 || si->sock_str.len >= size)
		return "-";
	memcpy(buf, si->sock_str.s, si->sock_str.len);
	buf[si->sock_str.len] = '\0';
	return buf;
}

/* ---- completion queue ------------------------------------------------------------------ */

typedef struct imps_completion
{
	struct imps_completion *next;
	int code;        /* final response; 408 for a timeout */
	int retry_after; /* the response carried Retry-After */
	unsigned long long cseq;
	str resource;
	str sid;
} imps_completion_t;

typedef struct imps_completion_queue
{
	gen_lock_t lock;
	imps_completion_t *head;
	imps_completion_t *tail;
	int length;
} imps_completion_queue_t;

/* in mod_init (shared memory, before the fork) */
static inline imps_completion_queue_t *imps_cq_new(void)
{
	imps_completion_queue_t *q = (imps_completion_queue_t *)shm_malloc(sizeof(*q));
	if(q == NULL) {
		SHM_MEM_ERROR;
		return NULL;
	}
	memset(q, 0, sizeof(*q));
	if(lock_init(&q->lock) == NULL) {
		shm_free(q);
		return NULL;
	}
	return q;
}

/* the tm callback's parameter: what the completion reports, and where it goes */
typedef struct imps_request_param
{
	imps_completion_queue_t *queue;
	unsigned long long cseq;
	str resource;
	str sid;
} imps_request_param_t;

static inline void imps_cq_push(imps_completion_queue_t *q, imps_request_param_t *p, int code,
		int retry_after)
{
	imps_completion_t *c = (imps_completion_t *)shm_malloc(
			sizeof(*c) + p->resource.len + p->sid.len);
	if(c == NULL) {
		SHM_MEM_ERROR;
		return;
	}
	c->next = NULL;
	c->code = code;
	c->retry_after = retry_after;
	c->cseq = p->cseq;
	c->resource.s = (char *)(c + 1);
	c->resource.len = p->resource.len;
	memcpy(c->resource.s, p->resource.s, p->resource.len);
	c->sid.s = c->resource.s + c->resource.len;
	c->sid.len = p->sid.len;
	memcpy(c->sid.s, p->sid.s, p->sid.len);
	lock_get(&q->lock);
	if(q->tail)
		q->tail->next = c;
	else
		q->head = c;
	q->tail = c;
	q->length++;
	lock_release(&q->lock);
}

/* Takes every queued completion, oldest first; the caller shm_free()s each. */
static inline imps_completion_t *imps_cq_take(imps_completion_queue_t *q)
{
	imps_completion_t *c;
	if(q == NULL)
		return NULL;
	lock_get(&q->lock);
	c = q->head;
	q->head = q->tail = NULL;
	q->length = 0;
	lock_release(&q->lock);
	return c;
}

/* Hands the queued completions to fn in batches of up to IMPS_CQ_BATCH, oldest first (the
 * module's timer process; the core records a batch in one Redis round trip). */
#define IMPS_CQ_BATCH 256
static inline void imps_cq_drain(imps_completion_queue_t *q,
		void (*fn)(const imps_response_t *r, size_t n))
{
	imps_response_t batch[IMPS_CQ_BATCH];
	imps_completion_t *c, *next, *done = NULL;
	size_t n = 0;
	for(c = imps_cq_take(q); c; c = next) {
		next = c->next;
		batch[n].resource = imps_str_of(c->resource);
		batch[n].sid = imps_str_of(c->sid);
		batch[n].cseq = c->cseq;
		batch[n].code = c->code;
		batch[n].retry_after = c->retry_after;
		c->next = done; /* kept until the batch is handed over: the strings point into it */
		done = c;
		if(++n == IMPS_CQ_BATCH || next == NULL) {
			fn(batch, n);
			n = 0;
			while(done) {
				c = done->next;
				shm_free(done);
				done = c;
			}
		}
	}
}

/* tm's TMCB_LOCAL_COMPLETED: runs in whichever process got the final response (or timer F):
 * only queues it */
static inline void imps_request_cb(struct cell *t, int type, struct tmcb_params *ps)
{
	imps_request_param_t *p;
	int retry_after = 0;
	if(ps->param == NULL || *ps->param == NULL)
		return;
	p = (imps_request_param_t *)(*ps->param);
	if(ps->code >= 300) {
		struct sip_msg *rpl = ps->rpl;
		if(rpl && rpl != FAKED_REPLY && parse_headers(rpl, HDR_EOH_F, 0) >= 0) {
			struct hdr_field *h;
			for(h = rpl->headers; h; h = h->next)
				if(h->type == HDR_RETRY_AFTER_T)
					retry_after = 1;
		}
	}
	imps_cq_push(p->queue, p, ps->code, retry_after);
	shm_free(p);
	*ps->param = NULL;
}

/* ---- sending ----------------------------------------------------------------------------- */

/* Sends r through tm along its dialog (route set, send socket; over TCP above udp_mtu as
 * imps_dlg_route says). 0 handed to tm (the completion follows), -1 not sent. */
static inline int imps_send_request(struct tm_binds *tmb, const imps_request_t *r,
		imps_completion_queue_t *q)
{
	dlg_t td;
	uac_req_t uac_r;
	str method, hdrs, body;
	char rsbuf[4096];
	int ret;
	imps_request_param_t *p;

	memset(&td, 0, sizeof(td));
	td.id.call_id = imps_kstr(r->dialog.callid);
	td.id.rem_tag = imps_kstr(r->dialog.remote_tag);
	td.id.loc_tag = imps_kstr(r->dialog.local_tag);
	/* tm adds one before sending: the store handed out the CSeq itself */
	td.loc_seq.value = (unsigned int)(r->cseq - 1);
	td.loc_seq.is_set = 1;
	td.loc_uri = imps_kstr(r->dialog.local_uri);
	td.rem_uri = imps_kstr(r->dialog.remote_uri);
	td.rem_target = imps_kstr(r->dialog.remote_target);
	td.state = DLG_CONFIRMED;
	method = imps_kstr(r->method);
	hdrs = imps_kstr(r->headers);
	body = imps_kstr(r->body);

	if(imps_dlg_route(&td, imps_kstr(r->dialog.socket), imps_kstr(r->dialog.route_set),
			   hdrs.len + body.len, rsbuf, sizeof(rsbuf))
			< 0) {
		LM_ERR("bad stored route set of subscription %.*s\n", (int)r->sid.len, r->sid.s);
		return -1;
	}
	p = (imps_request_param_t *)shm_malloc(sizeof(*p) + r->resource.len + r->sid.len);
	if(p == NULL) {
		SHM_MEM_ERROR;
		if(td.route_set)
			free_rr(&td.route_set);
		return -1;
	}
	p->queue = q;
	p->cseq = r->cseq;
	p->resource.s = (char *)(p + 1);
	p->resource.len = (int)r->resource.len;
	memcpy(p->resource.s, r->resource.s, r->resource.len);
	p->sid.s = p->resource.s + p->resource.len;
	p->sid.len = (int)r->sid.len;
	memcpy(p->sid.s, r->sid.s, r->sid.len);

	set_uac_req(&uac_r, &method, &hdrs, body.len ? &body : NULL, &td, TMCB_LOCAL_COMPLETED,
			imps_request_cb, (void *)p);
	ret = tmb->t_request_within(&uac_r);
	if(td.route_set)
		free_rr(&td.route_set);
	if(ret < 0) {
		LM_ERR("tm could not send the %.*s to %.*s\n", method.len, method.s,
				(int)r->dialog.remote_target.len, r->dialog.remote_target.s);
		shm_free(p);
		return -1;
	}
	return 0;
}

/* ---- the dialog of a SUBSCRIBE ----------------------------------------------------------- */

/* Fills d from a SUBSCRIBE (headers parsed). Strings point into msg, except the route set
 * (pkg memory in *rr: pkg_free() it) and our Contact (in lcontact). For an initial SUBSCRIBE
 * the To tag is the one sl's reply will carry. 0 done; -1 *why says what is malformed (the
 * reason phrase of a 400); -2 internal error. */
static inline int imps_subscribe_dialog(struct sip_msg *msg, sl_api_t *slb,
		const char *contact_cfg, imps_dialog_t *d, str *rr, char *lcontact, int lsize,
		const char **why)
{
	struct to_body *to, *from;
	contact_body_t *cb;
	str callid, totag = {0, 0}, dn;
	unsigned int cseq = 0;
	int n;

	memset(d, 0, sizeof(*d));
	rr->s = NULL;
	rr->len = 0;
	if(msg->to == NULL || (msg->to->parsed == NULL && parse_to_header(msg) < 0)
			|| (to = get_to(msg)) == NULL || to->error != PARSE_OK) {
		*why = "Bad Request (malformed To header)";
		return -1;
	}
	if(parse_from_header(msg) < 0 || (from = get_from(msg)) == NULL) {
		*why = "Bad Request (malformed From header)";
		return -1;
	}
	if(from->tag_value.len <= 0) {
		*why = "Bad Request (From tag missing)";
		return -1;
	}
	if(msg->callid == NULL || msg->callid->body.len <= 0) {
		*why = "Bad Request (Call-ID missing)";
		return -1;
	}
	callid = msg->callid->body;
	trim(&callid);
	if(msg->cseq == NULL || str2int(&get_cseq(msg)->number, &cseq) < 0) {
		*why = "Bad Request (malformed CSeq)";
		return -1;
	}
	if(to->tag_value.len > 0) {
		d->in_dialog = 1;
		totag = to->tag_value;
	} else if(slb->get_reply_totag(msg, &totag) < 0 || totag.len <= 0) {
		LM_ERR("cannot get the To tag of the reply\n");
		return -2;
	}
	if(msg->contact == NULL || parse_contact(msg->contact) < 0
			|| (cb = (contact_body_t *)msg->contact->parsed) == NULL || cb->contacts == NULL) {
		if(!d->in_dialog) {
			*why = "Bad Request (Contact missing or malformed)";
			return -1;
		}
	} else {
		d->remote_target = imps_str_of(cb->contacts->uri);
	}
	if(msg->record_route && !d->in_dialog) {
		if(print_rr_body(msg->record_route, rr, 0, NULL) < 0) {
			*why = "Bad Request (malformed Record-Route)";
			return -1;
		}
		d->route_set = imps_str_of(*rr);
	}
	if(from->display.len > 0) {
		dn = from->display;
		trim(&dn);
		if(dn.len >= 2 && dn.s[0] == '"' && dn.s[dn.len - 1] == '"') {
			dn.s++;
			dn.len -= 2;
		}
		d->display_name = imps_str_of(dn);
	}
	if(msg->rcv.bind_address)
		d->socket = imps_str_of(msg->rcv.bind_address->sock_str);
	n = imps_local_contact(msg, contact_cfg, lcontact, lsize);
	d->local_contact.s = n > 0 ? lcontact : NULL;
	d->local_contact.len = n > 0 ? (size_t)n : 0;
	d->callid = imps_str_of(callid);
	d->remote_tag = imps_str_of(from->tag_value);
	d->local_tag = imps_str_of(totag);
	d->remote_uri = imps_str_of(from->uri);
	d->local_uri = imps_str_of(to->uri);
	d->remote_cseq = cseq;
	return 0;
}

/* The buffers the strings of an imps_subscribe_common_t may point into. */
typedef struct imps_subscribe_buf
{
	char accept[512];
	char lcontact[256];
	str rr; /* pkg memory: imps_subscribe_buf_free() */
} imps_subscribe_buf_t;

static inline void imps_subscribe_buf_free(imps_subscribe_buf_t *b)
{
	if(b->rr.s)
		pkg_free(b->rr.s);
	b->rr.s = NULL;
}

/* Event, Accept, Expires and the dialog of a SUBSCRIBE, for any event package. 0 done; -1
 * *why is the reason phrase of a 400; -2 internal error. */
static inline int imps_read_subscribe(struct sip_msg *msg, sl_api_t *slb, const char *contact_cfg,
		imps_subscribe_common_t *c, imps_subscribe_buf_t *b, const char **why)
{
	str ev;
	int n;
	memset(c, 0, sizeof(*c));
	b->rr.s = NULL;
	b->rr.len = 0;
	if(parse_headers(msg, HDR_EOH_F, 0) < 0) {
		*why = "Bad Request (malformed header)";
		return -1;
	}
	if((c->has_event = imps_event_of(msg, &ev)))
		c->event = imps_str_of(ev);
	if((n = imps_accept_of(msg, b->accept, sizeof(b->accept), &c->has_accept)) < 0) {
		*why = "Bad Request (Accept too long)";
		return -1;
	}
	c->accept.s = b->accept;
	c->accept.len = (size_t)n;
	if(imps_expires_of(msg, &c->expires) < 0) {
		*why = "Bad Request (malformed Expires)";
		return -1;
	}
	return imps_subscribe_dialog(msg, slb, contact_cfg, &c->dialog, &b->rr, b->lcontact,
			sizeof(b->lcontact), why);
}

#endif
