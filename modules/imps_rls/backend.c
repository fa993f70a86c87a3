/* imps_rls: back-end dialogs with members of other domains (RFC 4662 4.3, seed 7.2.3). Our
 * SUBSCRIBEs go through tm toward the HSP; tm's callback only copies what the final response
 * says (code, To tag, Record-Route reversed, Contact, Expires) into a shared-memory queue, which
 * the module's timer process hands to the core. NOTIFYs of those dialogs reach
 * imps_rls_handle_notify() from the script. */
#include <string.h>
#include <strings.h>

#include "core/dprint.h"
#include "core/parser/parse_content.h"
#include "core/parser/parse_expires.h"
#include "core/parser/parse_from.h"
#include "core/parser/parse_to.h"

#include "imps_rls.h"

typedef struct bresp
{
	struct bresp *next;
	int code, retry_after, expires;
	unsigned long long cseq;
	str bkey, callid, rtag, rset, target;
} bresp_t;

typedef struct bqueue
{
	gen_lock_t lock;
	bresp_t *head, *tail;
} bqueue_t;

static bqueue_t *bq = NULL;

typedef struct bparam
{
	unsigned long long cseq;
	str bkey, callid;
} bparam_t;

int backend_init(void)
{
	bq = (bqueue_t *)shm_malloc(sizeof(*bq));
	if(bq == NULL) {
		SHM_MEM_ERROR;
		return -1;
	}
	memset(bq, 0, sizeof(*bq));
	return lock_init(&bq->lock) == NULL ? -1 : 0;
}

static void copy_in(char **p, str *dst, str src)
{
	dst->s = *p;
	dst->len = src.len > 0 ? src.len : 0;
	if(dst->len)
		memcpy(*p, src.s, dst->len);
	*p += dst->len;
}

/* TMCB_LOCAL_COMPLETED, in whichever process got the final response: no I/O, a copy queued */
static void backend_cb(struct cell *t, int type, struct tmcb_params *ps)
{
	bparam_t *p;
	bresp_t *r;
	struct sip_msg *rpl;
	struct to_body *to;
	contact_body_t *cb;
	str rtag = STR_NULL, rset = STR_NULL, target = STR_NULL;
	int expires = -1, retry_after = 0, code;
	char *w;

	if(ps->param == NULL || *ps->param == NULL)
		return;
	p = (bparam_t *)(*ps->param);
	*ps->param = NULL;
	code = ps->code;
	rpl = ps->rpl;
	if(rpl && rpl != FAKED_REPLY && parse_headers(rpl, HDR_EOH_F, 0) >= 0) {
		if(code >= 200 && code < 300) {
			if(rpl->to && (to = get_to(rpl)) != NULL)
				rtag = to->tag_value;
			if(rpl->record_route && print_rr_body(rpl->record_route, &rset, 1, NULL) < 0)
				rset.s = NULL, rset.len = 0;
			if(rpl->contact && parse_contact(rpl->contact) >= 0
					&& (cb = (contact_body_t *)rpl->contact->parsed) != NULL && cb->contacts)
				target = cb->contacts->uri;
			if(rpl->expires && parse_expires(rpl->expires) >= 0)
				expires = (int)((exp_body_t *)rpl->expires->parsed)->val;
		} else {
			struct hdr_field *h;
			for(h = rpl->headers; h; h = h->next)
				if(h->type == HDR_RETRY_AFTER_T)
					retry_after = 1;
		}
	}
	r = (bresp_t *)shm_malloc(sizeof(*r) + p->bkey.len + p->callid.len + rtag.len + rset.len
							  + target.len);
	if(r == NULL) {
		SHM_MEM_ERROR;
	} else {
		memset(r, 0, sizeof(*r));
		r->code = code;
		r->retry_after = retry_after;
		r->expires = expires;
		r->cseq = p->cseq;
		w = (char *)(r + 1);
		copy_in(&w, &r->bkey, p->bkey);
		copy_in(&w, &r->callid, p->callid);
		copy_in(&w, &r->rtag, rtag);
		copy_in(&w, &r->rset, rset);
		copy_in(&w, &r->target, target);
		lock_get(&bq->lock);
		if(bq->tail)
			bq->tail->next = r;
		else
			bq->head = r;
		bq->tail = r;
		lock_release(&bq->lock);
	}
	if(rset.s)
		pkg_free(rset.s);
	shm_free(p);
}

/* the module's timer process: the queued responses to the core, in batches */
void handle_backend_responses(void)
{
	imps_rls_bresp_t batch[64];
	bresp_t *c, *next, *done = NULL;
	size_t n = 0;
	if(bq == NULL)
		return;
	lock_get(&bq->lock);
	c = bq->head;
	bq->head = bq->tail = NULL;
	lock_release(&bq->lock);
	for(; c; c = next) {
		next = c->next;
		memset(&batch[n], 0, sizeof(batch[n]));
		batch[n].bkey = imps_str_of(c->bkey);
		batch[n].callid = imps_str_of(c->callid);
		batch[n].cseq = c->cseq;
		batch[n].code = c->code;
		batch[n].retry_after = c->retry_after;
		batch[n].remote_tag = imps_str_of(c->rtag);
		batch[n].route_set = imps_str_of(c->rset);
		batch[n].target = imps_str_of(c->target);
		batch[n].expires = c->expires;
		c->next = done;
		done = c;
		if(++n == 64 || next == NULL) {
			imps_rls_backend_responses(batch, n);
			n = 0;
			while(done) {
				c = done->next;
				shm_free(done);
				done = c;
			}
		}
	}
}

/* host.send_backend: a SUBSCRIBE of a back-end dialog through tm. 0 handed over, -1 not sent */
int send_backend(const imps_rls_breq_t *q)
{
	dlg_t td;
	uac_req_t uac_r;
	str method = str_init("SUBSCRIBE"), hdrs, socket = STR_NULL;
	char rsbuf[4096];
	bparam_t *p;
	int ret;

	memset(&td, 0, sizeof(td));
	td.id.call_id = imps_kstr(q->callid);
	td.id.loc_tag = imps_kstr(q->local_tag);
	td.id.rem_tag = imps_kstr(q->remote_tag);
	td.loc_seq.value = (unsigned int)(q->cseq - 1); /* tm adds one */
	td.loc_seq.is_set = 1;
	td.loc_uri = imps_kstr(q->from_uri);
	td.rem_uri = imps_kstr(q->to_uri);
	td.rem_target = imps_kstr(q->target);
	td.state = DLG_CONFIRMED;
	if(q->route_set.len == 0 && q->dst_uri.len > 0)
		td.dst_uri = imps_kstr(q->dst_uri);
	hdrs = imps_kstr(q->headers);
	if(imps_dlg_route(&td, socket, imps_kstr(q->route_set), hdrs.len, rsbuf, sizeof(rsbuf)) < 0) {
		LM_ERR("bad route set of back-end %.*s\n", (int)q->bkey.len, q->bkey.s);
		return -1;
	}
	p = (bparam_t *)shm_malloc(sizeof(*p) + q->bkey.len + q->callid.len);
	if(p == NULL) {
		SHM_MEM_ERROR;
		if(td.route_set)
			free_rr(&td.route_set);
		return -1;
	}
	p->cseq = q->cseq;
	p->bkey.s = (char *)(p + 1);
	p->bkey.len = (int)q->bkey.len;
	memcpy(p->bkey.s, q->bkey.s, q->bkey.len);
	p->callid.s = p->bkey.s + p->bkey.len;
	p->callid.len = (int)q->callid.len;
	memcpy(p->callid.s, q->callid.s, q->callid.len);
	set_uac_req(&uac_r, &method, &hdrs, NULL, &td, TMCB_LOCAL_COMPLETED, backend_cb, (void *)p);
	ret = tmb.t_request_within(&uac_r);
	if(td.route_set)
		free_rr(&td.route_set);
	if(ret < 0) {
		LM_ERR("tm could not send the back-end SUBSCRIBE to %.*s\n", (int)q->to_uri.len,
				q->to_uri.s);
		shm_free(p);
		return -1;
	}
	return 0;
}

/* the value of the first header named name (trimmed), params included */
static str header_of(struct sip_msg *msg, const char *name)
{
	struct hdr_field *h;
	int n = strlen(name);
	str v = STR_NULL;
	for(h = msg->headers; h; h = h->next)
		if(h->name.len == n && strncasecmp(h->name.s, name, n) == 0) {
			v = h->body;
			trim(&v);
			break;
		}
	return v;
}

/* A NOTIFY of a back-end dialog, answered here: 1 answered 2xx, -3 answered with an error,
 * -1 not a NOTIFY or internal error. */
int ki_handle_notify(struct sip_msg *msg)
{
	imps_rls_bnotify_t n;
	struct to_body *to, *from;
	contact_body_t *cb;
	unsigned int cseq = 0;
	str callid, rr = STR_NULL, body;
	int code, ret;

	if(msg->first_line.type != SIP_REQUEST
			|| msg->first_line.u.request.method_value != METHOD_NOTIFY) {
		LM_ERR("imps_rls_handle_notify() called for a request that is not NOTIFY\n");
		return -1;
	}
	if(parse_headers(msg, HDR_EOH_F, 0) < 0 || msg->to == NULL || (to = get_to(msg)) == NULL
			|| parse_from_header(msg) < 0 || (from = get_from(msg)) == NULL
			|| msg->callid == NULL || msg->cseq == NULL
			|| str2int(&get_cseq(msg)->number, &cseq) < 0) {
		return imps_sl_reply(&slb, msg, 400, "Bad Request (malformed dialog headers)", NULL) < 0
					   ? -1
					   : -3;
	}
	memset(&n, 0, sizeof(n));
	callid = msg->callid->body;
	trim(&callid);
	n.callid = imps_str_of(callid);
	n.local_tag = imps_str_of(to->tag_value);
	n.remote_tag = imps_str_of(from->tag_value);
	n.cseq = cseq;
	n.state = imps_str_of(header_of(msg, "Subscription-State"));
	if(n.state.len == 0)
		return imps_sl_reply(&slb, msg, 400, "Bad Request (Subscription-State missing)", NULL) < 0
					   ? -1
					   : -3;
	if(msg->content_type) {
		str ct = msg->content_type->body;
		trim(&ct);
		n.content_type = imps_str_of(ct);
	}
	body.s = get_body(msg);
	body.len = body.s ? msg->len - (int)(body.s - msg->buf) : 0;
	if(msg->content_length && get_content_length(msg) < body.len)
		body.len = get_content_length(msg);
	if(body.len > 0)
		n.body = imps_str_of(body);
	if(msg->record_route && print_rr_body(msg->record_route, &rr, 0, NULL) >= 0)
		n.route_set = imps_str_of(rr);
	if(msg->contact && parse_contact(msg->contact) >= 0
			&& (cb = (contact_body_t *)msg->contact->parsed) != NULL && cb->contacts)
		n.target = imps_str_of(cb->contacts->uri);
	if(open_core() < 0)
		code = 500;
	else
		code = imps_rls_backend_notify(&n);
	if(rr.s)
		pkg_free(rr.s);
	ret = imps_sl_reply(&slb, msg, code,
			code == 200	  ? "OK"
			: code == 481 ? "Subscription Does Not Exist"
						  : "Server Internal Error",
			NULL);
	imps_rls_flush();
	if(ret < 0)
		return -1;
	return code < 300 ? 1 : -3;
}

int w_handle_notify(struct sip_msg *msg, char *p1, char *p2)
{
	return ki_handle_notify(msg);
}
