/*
 * imps_reginfo: RFC 3680 registration event package at the registrar.
 *
 * This is the module's only file that includes Kamailio headers: export tables, parameters,
 * the cfg/KEMI functions, RPC, statistics, usrloc and tm glue. The logic is the C++ core in
 * core/, reached through imps_reginfo_capi.h.
 */

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/sr_module.h"
#include "core/dprint.h"
#include "core/mod_fix.h"
#include "core/ut.h"
#include "core/trim.h"
#include <ctype.h>
#include "core/pt.h"
#include "core/rpc.h"
#include "core/rpc_lookup.h"
#include "core/counters.h"
#include "core/kemi.h"
#include "core/timer.h"
#include "core/script_cb.h"
#include "core/socket_info.h"
#include "core/resolve.h"
#include "core/data_lump_rpl.h"
#include "core/parser/msg_parser.h"
#include "core/parser/parse_from.h"
#include "core/parser/parse_to.h"
#include "core/parser/parse_uri.h"
#include "core/parser/parse_expires.h"
#include "core/parser/parse_rr.h"
#include "core/parser/contact/parse_contact.h"
#include "core/parser/parse_ppi_pai.h"
#include "modules/tm/tm_load.h"
#include "modules/sl/sl.h"
#include "modules/usrloc/usrloc.h"

#include "common/shim/imps_log.h"
#include "common/shim/imps_sip.h"
#include "imps_reginfo/imps_reginfo_capi.h"

MODULE_VERSION

static int mod_init(void);
static int child_init(int rank);
static void mod_destroy(void);

/* parameters */
static char *redis_host = "127.0.0.1";
static int redis_port = 6379;
static char *redis_password = "";
static int redis_db = 0;
static int redis_connect_timeout = 500; /* ms */
static int redis_timeout = 500;         /* ms */
static int redis_retry_interval = 1000; /* ms */
static char *key_prefix = "imps:reginfo";
static int min_expires = 60;
static int max_expires = 3600;
static int default_expires = 3600;
static char *notify_state = "full";
static char *trusted_watchers = "";
/* the peers whose P-Asserted-Identity names the watcher (the edge proxy); anyone else is
 * the From URI */
static char *trusted_peers = "";
static imps_trusted_peers_t trusted;
static char *usrloc_domain = "location";
static char *contact_uri = "";
static int timer_interval = 1;
static int notify_timeout_action = 1; /* 1: remove the subscription on 408, 0: keep it */

/* The registrar's own rule for the AoR of a URI (its extract_aor(): the user part unescaped,
 * the domain only with use_domain, realm_prefix stripped, lower case unless case_sensitive),
 * so that a watcher is keyed exactly as usrloc keys the bindings; NULL without registrar. */
typedef int (*registrar_extract_aor_f)(str *uri, str *aor, struct sip_uri *puri);
static registrar_extract_aor_f registrar_extract_aor = NULL;
static int aor_of(str uri, struct sip_uri *parsed, char *buf, int size);

static tm_api_t tmb;
static sl_api_t slb;
static usrloc_api_t ul;
static udomain_t *ul_dom = NULL;

/* the REGISTER this process is running the script for (usrloc callbacks read its Contacts) */
static struct sip_msg *cur_register = NULL;
/* the AoR whose usrloc slot this process holds while answering an initial SUBSCRIBE */
static str locked_aor = {0, 0};
/* set by imps_reginfo.terminate around its usrloc deletions */
static const char *admin_event = NULL;

/* statistics */
static stat_var *st_sent = NULL;
static stat_var *st_failed = NULL;
static counter_val_t active_subscriptions(void);

static stat_export_t mod_stats[] = {
	{"active_subscriptions", STAT_IS_FUNC, (stat_var **)active_subscriptions},
	{"notifies_sent", 0, &st_sent},
	{"notifies_failed", 0, &st_failed},
	{0, 0, 0}
};

static int w_handle_subscribe(struct sip_msg *msg, char *p1, char *p2);
static int ki_handle_subscribe(struct sip_msg *msg);

static cmd_export_t cmds[] = {
	{"imps_reginfo_handle_subscribe", (cmd_function)w_handle_subscribe, 0, 0, 0,
			REQUEST_ROUTE},
	{0, 0, 0, 0, 0, 0}
};

static param_export_t params[] = {
	{"redis_host", PARAM_STRING, &redis_host},
	{"redis_port", PARAM_INT, &redis_port},
	{"redis_password", PARAM_STRING, &redis_password},
	{"redis_db", PARAM_INT, &redis_db},
	{"redis_connect_timeout", PARAM_INT, &redis_connect_timeout},
	{"redis_timeout", PARAM_INT, &redis_timeout},
	{"redis_retry_interval", PARAM_INT, &redis_retry_interval},
	{"key_prefix", PARAM_STRING, &key_prefix},
	{"min_expires", PARAM_INT, &min_expires},
	{"max_expires", PARAM_INT, &max_expires},
	{"default_expires", PARAM_INT, &default_expires},
	{"notify_state", PARAM_STRING, &notify_state},
	{"trusted_watchers", PARAM_STRING, &trusted_watchers},
	{"trusted_peers", PARAM_STRING, &trusted_peers},
	{"usrloc_domain", PARAM_STRING, &usrloc_domain},
	{"contact", PARAM_STRING, &contact_uri},
	{"timer_interval", PARAM_INT, &timer_interval},
	{"notify_timeout_action", PARAM_INT, &notify_timeout_action},
	{0, 0, 0}
};

static const char *rpc_list_doc[] = {
	"List reg event subscriptions; optional AoR (user@host) filter.", 0};
static const char *rpc_show_doc[] = {
	"Show the full reginfo document of an AoR now.", 0};
static const char *rpc_terminate_doc[] = {
	"Remove an AoR's contacts (all, or one contact URI) from usrloc; watchers are told "
	"'deactivated' or, with a third parameter 'rejected', 'rejected'.", 0};
static const char *rpc_stats_doc[] = {
	"Subscription and NOTIFY counters of imps_reginfo.", 0};

static void rpc_list(rpc_t *rpc, void *ctx);
static void rpc_show(rpc_t *rpc, void *ctx);
static void rpc_terminate(rpc_t *rpc, void *ctx);
static void rpc_stats(rpc_t *rpc, void *ctx);

static rpc_export_t rpc_cmds[] = {
	{"imps_reginfo.list", rpc_list, rpc_list_doc, RET_ARRAY},
	{"imps_reginfo.show", rpc_show, rpc_show_doc, 0},
	{"imps_reginfo.terminate", rpc_terminate, rpc_terminate_doc, 0},
	{"imps_reginfo.stats", rpc_stats, rpc_stats_doc, 0},
	{0, 0, 0, 0}
};

struct module_exports exports = {
	"imps_reginfo",  /* module name */
	DEFAULT_DLFLAGS, /* dlopen flags */
	cmds,            /* cfg functions */
	params,          /* parameters */
	0,               /* RPC: registered in mod_init */
	0,               /* pseudo-variables */
	0,               /* response handling function */
	mod_init,        /* module init function */
	child_init,      /* per-child init function */
	mod_destroy      /* module destroy function */
};

/* ---- helpers ----------------------------------------------------------------------------- */

static inline imps_str_t IS(str s)
{
	imps_str_t r;
	r.s = s.s;
	r.len = s.s ? (size_t)s.len : 0;
	return r;
}

static inline str SI(imps_str_t s)
{
	str r;
	r.s = (char *)s.s;
	r.len = (int)s.len;
	return r;
}

static void stat_cb(int which, long long delta)
{
	if(which == IMPS_STAT_SENT)
		update_stat(st_sent, (int)delta);
	else if(which == IMPS_STAT_FAILED)
		update_stat(st_failed, (int)delta);
	/* active subscriptions are read from the store (STAT_IS_FUNC) */
}

static counter_val_t active_subscriptions(void)
{
	long long n = imps_reginfo_count();
	return n < 0 ? 0 : (counter_val_t)n;
}

/* temp-gruu as the registrar hands it out (registrar/reply.c) */
static int temp_gruu(ucontact_t *c, char *buf, int size)
{
	unsigned int ahash;
	int n, digit;
	char *at, *p;
	str host;

	if(c->instance.len <= 0 || c->ruid.len <= 0)
		return 0;
	at = memchr(c->aor->s, '@', c->aor->len);
	if(at == NULL)
		return 0;
	host.s = at + 1;
	host.len = c->aor->s + c->aor->len - host.s;
	n = snprintf(buf, size, "sip:%.*s-", c->ruid.len, c->ruid.s);
	if(n < 0 || n >= size - 16)
		return 0;
	p = buf + n;
	ahash = ul.get_aorhash(c->aor);
	while(ahash != 0) {
		digit = ahash & 0x0f;
		*p++ = (digit >= 10) ? digit + 'a' - 10 : digit + '0';
		ahash >>= 4;
	}
	n = p - buf;
	n += snprintf(p, size - n, "@%.*s;gr", host.len, host.s);
	return n < size ? n : 0;
}

struct binding_buf
{
	imps_reginfo_binding_t b;
	char gruu[256];
};

static void fill_binding(struct binding_buf *bb, ucontact_t *c)
{
	int n;
	memset(bb, 0, sizeof(*bb));
	bb->b.uri = IS(c->c);
	bb->b.callid = IS(c->callid);
	bb->b.instance = IS(c->instance);
	bb->b.reg_id = c->reg_id;
	bb->b.expires_at = (long long)c->expires;
	bb->b.q = (c->q == Q_UNSPECIFIED) ? -1 : (int)c->q;
	bb->b.cseq = c->cseq;
	n = temp_gruu(c, bb->gruu, sizeof(bb->gruu));
	bb->b.temp_gruu.s = bb->gruu;
	bb->b.temp_gruu.len = n > 0 ? (size_t)n : 0;
}

/* Display name and parameters of the Contact header of the REGISTER being processed that
 * carries this contact URI. The strings point into the message. */
static void msg_contact_info(struct binding_buf *bb, ucontact_t *c, str *params, char *pbuf, int psize)
{
	struct hdr_field *h;
	contact_t *ct;
	param_t *pr;
	int n = 0, r;

	if(cur_register == NULL)
		return;
	if(parse_contact_headers(cur_register) < 0)
		return;
	for(h = cur_register->contact; h; h = next_sibling_hdr(h)) {
		if(!h->parsed)
			continue;
		for(ct = ((contact_body_t *)h->parsed)->contacts; ct; ct = ct->next) {
			if(ct->uri.len != c->c.len || memcmp(ct->uri.s, c->c.s, c->c.len) != 0)
				continue;
			bb->b.has_msg_info = 1;
			if(ct->name.len > 0) {
				str dn = ct->name;
				trim(&dn);
				if(dn.len >= 2 && dn.s[0] == '"' && dn.s[dn.len - 1] == '"') {
					dn.s++;
					dn.len -= 2;
				}
				bb->b.display_name = IS(dn);
			}
			for(pr = ct->params; pr; pr = pr->next) {
				/* the parameter as written (len covers name, '=' and a quoted value) */
				r = snprintf(pbuf + n, psize - n, ";%.*s", pr->len > 0 ? pr->len : pr->name.len,
						pr->name.s);
				if(r < 0 || r >= psize - n)
					break;
				n += r;
			}
			params->s = pbuf;
			params->len = n;
			bb->b.params = IS(*params);
			return;
		}
	}
}

/* ---- usrloc ------------------------------------------------------------------------------ */

#define MAX_BINDINGS 64

/* Runs inside usrloc with the record's slot locked by the caller (registrar save, timer, RPC):
 * the record is read without locking again. */
static void ul_contact_cb(ucontact_t *c, int type, void *param)
{
	static struct binding_buf cur[MAX_BINDINGS];
	static imps_reginfo_binding_t arr[MAX_BINDINGS];
	struct binding_buf changed;
	char pbuf[1024];
	str params = {0, 0};
	ucontact_t *p;
	time_t now = time(NULL);
	int change, cause, n = 0;

	/* usrloc runs callbacks for every table: only ours */
	if(c->domain == NULL || c->domain->len != (int)strlen(usrloc_domain)
			|| strncmp(c->domain->s, usrloc_domain, c->domain->len) != 0)
		return;

	if(type & UL_CONTACT_INSERT)
		change = IMPS_CHANGE_INSERT;
	else if(type & UL_CONTACT_UPDATE)
		change = IMPS_CHANGE_UPDATE;
	else if(type & UL_CONTACT_DELETE)
		change = IMPS_CHANGE_DELETE;
	else if(type & UL_CONTACT_EXPIRE)
		change = IMPS_CHANGE_EXPIRE;
	else
		return;

	if(admin_event)
		cause = IMPS_CAUSE_ADMIN;
	else if(cur_register)
		cause = IMPS_CAUSE_REGISTER;
	else
		cause = IMPS_CAUSE_OTHER;

	fill_binding(&changed, c);
	if(change != IMPS_CHANGE_EXPIRE)
		msg_contact_info(&changed, c, &params, pbuf, sizeof(pbuf));

	/* The record's other contacts: walk the list from c itself rather than looking the record
	 * up (in usrloc's DB-only mode get_urecord would reuse the very record save() is
	 * changing). */
	for(p = c; p->prev; p = p->prev)
		;
	for(; p; p = p->next) {
		if(p == c || !VALID_CONTACT(p, now))
			continue;
		if(n == MAX_BINDINGS) {
			LM_WARN("%.*s has more than %d contacts: the reg event lists the first %d\n",
					c->aor->len, c->aor->s, MAX_BINDINGS, MAX_BINDINGS);
			break;
		}
		fill_binding(&cur[n], p);
		arr[n] = cur[n].b;
		n++;
	}
	if(imps_reginfo_binding_changed(IS(*c->aor), &changed.b, change, cause, admin_event, arr,
			   (size_t)n, (long long)now)
			< 0) {
		LM_ERR("reg event for %.*s not delivered: %s\n", c->aor->len, c->aor->s,
				imps_reginfo_last_error());
	}
}

static int get_bindings(const char *aor, size_t aor_len, imps_reginfo_binding_sink_f sink, void *ctx)
{
	str a;
	urecord_t *r = NULL;
	ucontact_t *p;
	struct binding_buf bb;
	time_t now = time(NULL);
	int found = 0, held;

	if(ul_dom == NULL)
		return -1;
	a.s = (char *)aor;
	a.len = (int)aor_len;
	/* the slot may be held by this process already (initial SUBSCRIBE): the lock does not
	 * nest */
	held = locked_aor.s && locked_aor.len == a.len && memcmp(locked_aor.s, a.s, a.len) == 0;
	if(!held)
		ul.lock_udomain(ul_dom, &a);
	if(ul.get_urecord(ul_dom, &a, &r) == 0 && r) {
		found = 1;
		for(p = r->contacts; p; p = p->next) {
			if(!VALID_CONTACT(p, now))
				continue;
			fill_binding(&bb, p);
			sink(ctx, &bb.b);
		}
	}
	if(!held)
		ul.unlock_udomain(ul_dom, &a);
	return found;
}

/* ---- NOTIFY through tm ------------------------------------------------------------------- */

struct notify_cb_param
{
	str sid;
	str aor;
};

static void notify_reply_cb(struct cell *t, int type, struct tmcb_params *ps)
{
	struct notify_cb_param *cp;
	if(ps->param == NULL || *ps->param == NULL)
		return;
	cp = (struct notify_cb_param *)(*ps->param);
	if(ps->code >= 300) {
		int retry_after = 0;
		struct sip_msg *rpl = ps->rpl;
		if(rpl && rpl != FAKED_REPLY && parse_headers(rpl, HDR_EOH_F, 0) >= 0) {
			struct hdr_field *h;
			for(h = rpl->headers; h; h = h->next)
				if(h->type == HDR_RETRY_AFTER_T)
					retry_after = 1;
		}
		LM_INFO("reg NOTIFY for %.*s answered %d%s\n", cp->aor.len, cp->aor.s, ps->code,
				retry_after ? " with Retry-After" : "");
		imps_reginfo_notify_failed(IS(cp->sid), IS(cp->aor), ps->code, retry_after);
	}
	shm_free(cp);
	*ps->param = NULL;
}
static int send_notify(const imps_reginfo_notify_t *n)
{
	static str method = str_init("NOTIFY");
	dlg_t td;
	uac_req_t uac_r;
	str hdrs, body;
	char hbuf[1024], rsbuf[2048];
	int hlen, ret;
	struct notify_cb_param *cp;

	memset(&td, 0, sizeof(td));
	td.id.call_id = SI(n->callid);
	td.id.rem_tag = SI(n->remote_tag);
	td.id.loc_tag = SI(n->local_tag);
	/* tm adds one before sending: the store handed out the CSeq itself */
	td.loc_seq.value = (unsigned int)(n->cseq - 1);
	td.loc_seq.is_set = 1;
	td.loc_uri = SI(n->local_uri);
	td.rem_uri = SI(n->remote_uri);
	td.rem_target = SI(n->remote_target);
	td.state = DLG_CONFIRMED;

	hlen = snprintf(hbuf, sizeof(hbuf),
			"Event: reg%s%.*s\r\nSubscription-State: %.*s\r\nContact: <%.*s>\r\n"
			"Content-Type: application/reginfo+xml\r\n",
			n->event_id.len ? ";id=" : "", (int)n->event_id.len, n->event_id.s ? n->event_id.s : "",
			(int)n->subscription_state.len, n->subscription_state.s,
			(int)n->local_contact.len, n->local_contact.s);
	if(hlen < 0 || hlen >= (int)sizeof(hbuf))
		return -1;
	hdrs.s = hbuf;
	hdrs.len = hlen;
	body = SI(n->body);

	if(imps_dlg_route(&td, SI(n->socket), SI(n->route_set), hlen + body.len, rsbuf,
			   sizeof(rsbuf))
			< 0) {
		LM_ERR("bad stored route set for %.*s\n", (int)n->aor.len, n->aor.s);
		return -1;
	}

	cp = (struct notify_cb_param *)shm_malloc(sizeof(*cp) + n->sid.len + n->aor.len);
	if(cp == NULL) {
		SHM_MEM_ERROR;
		if(td.route_set)
			free_rr(&td.route_set);
		return -1;
	}
	cp->sid.s = (char *)(cp + 1);
	cp->sid.len = (int)n->sid.len;
	memcpy(cp->sid.s, n->sid.s, n->sid.len);
	cp->aor.s = cp->sid.s + cp->sid.len;
	cp->aor.len = (int)n->aor.len;
	memcpy(cp->aor.s, n->aor.s, n->aor.len);

	set_uac_req(&uac_r, &method, &hdrs, &body, &td, TMCB_LOCAL_COMPLETED, notify_reply_cb,
			(void *)cp);
	ret = tmb.t_request_within(&uac_r);
	if(td.route_set)
		free_rr(&td.route_set);
	if(ret < 0) {
		LM_ERR("tm could not send the reg NOTIFY to %.*s\n", (int)n->remote_target.len,
				n->remote_target.s);
		shm_free(cp);
		return -1;
	}
	return 0;
}

/* ---- SUBSCRIBE --------------------------------------------------------------------------- */

static int reply(struct sip_msg *msg, int code, const char *reason, const char *hdrs)
{
	return imps_sl_reply(&slb, msg, code, reason, hdrs);
}

/* an error reply from the checks of the shim: the script sees -2 (replied, not accepted) */
static int reject(struct sip_msg *msg, int code, const char *reason)
{
	return reply(msg, code, reason, NULL) < 0 ? -1 : -2;
}

static int ki_handle_subscribe(struct sip_msg *msg)
{
	imps_reginfo_subscribe_t req;
	imps_reginfo_reply_t rep;
	struct to_body *to, *from;
	struct sip_uri from_uri;
	contact_body_t *cb;
	struct socket_info *si;
	char aor[256], watcher[256], accept[512], lcontact[256];
	str totag = {0, 0}, rr = {0, 0}, callid, ev;
	int n, alen = 0, ret;
	unsigned int cseq = 0;

	if(msg->first_line.type != SIP_REQUEST
			|| msg->first_line.u.request.method_value != METHOD_SUBSCRIBE) {
		LM_ERR("imps_reginfo_handle_subscribe() called for a request that is not SUBSCRIBE\n");
		return -1;
	}
	memset(&req, 0, sizeof(req));
	if(parse_headers(msg, HDR_EOH_F, 0) < 0)
		return reject(msg, 400, "Bad Request (malformed header)");

	/* Event */
	if((req.has_event = imps_event_of(msg, &ev)))
		req.event = IS(ev);
	/* Accept, all of them */
	if((alen = imps_accept_of(msg, accept, sizeof(accept), &req.has_accept)) < 0)
		return reject(msg, 400, "Bad Request (Accept too long)");
	req.accept.s = accept;
	req.accept.len = alen;

	/* Expires */
	if(imps_expires_of(msg, &req.expires) < 0)
		return reject(msg, 400, "Bad Request (malformed Expires)");

	/* To, From, Call-ID, CSeq */
	if(msg->to == NULL || (msg->to->parsed == NULL && parse_to_header(msg) < 0)
			|| (to = get_to(msg)) == NULL || to->error != PARSE_OK)
		return reject(msg, 400, "Bad Request (malformed To header)");
	if(parse_from_header(msg) < 0 || (from = get_from(msg)) == NULL)
		return reject(msg, 400, "Bad Request (malformed From header)");
	if(from->tag_value.len <= 0)
		return reject(msg, 400, "Bad Request (From tag missing)");
	if(parse_uri(from->uri.s, from->uri.len, &from_uri) < 0)
		return reject(msg, 400, "Bad Request (malformed From URI)");
	if(msg->callid == NULL || msg->callid->body.len <= 0)
		return reject(msg, 400, "Bad Request (Call-ID missing)");
	callid = msg->callid->body;
	trim(&callid);
	if(msg->cseq == NULL || str2int(&get_cseq(msg)->number, &cseq) < 0)
		return reject(msg, 400, "Bad Request (malformed CSeq)");

	if(to->tag_value.len > 0) {
		req.in_dialog = 1;
		totag = to->tag_value;
	} else {
		struct sip_uri *ru;
		struct sip_uri to_uri;
		/* the subscription's target is the AoR of the Request-URI */
		if(parse_sip_msg_uri(msg) < 0)
			return reject(msg, 400, "Bad Request (malformed Request-URI)");
		ru = &msg->parsed_uri;
		if(ru->user.len <= 0 || ru->host.len <= 0)
			return reject(msg, 400, "Bad Request (Request-URI has no AoR)");
		if(parse_uri(to->uri.s, to->uri.len, &to_uri) < 0 || to_uri.host.len <= 0)
			return reject(msg, 400, "Bad Request (malformed To URI)");
		if((n = aor_of(*GET_RURI(msg), ru, aor, sizeof(aor))) < 0)
			return reject(msg, 400, "Bad Request (Request-URI is no AoR of this registrar)");
		req.aor.s = aor;
		req.aor.len = n;
		if(slb.get_reply_totag(msg, &totag) < 0 || totag.len <= 0) {
			LM_ERR("cannot get the To tag of the reply\n");
			return reject(msg, 500, "Server Internal Error");
		}
	}
	/* the watcher: P-Asserted-Identity from a trusted peer (trusted_peers), else From */
	{
		struct sip_uri who_uri;
		str who;
		int rc = imps_requester_uri(msg, &trusted, &who, &who_uri);
		if(rc == -2)
			return reject(msg, 400, "Bad Request (malformed P-Asserted-Identity)");
		if(rc < 0)
			return reject(msg, 400, "Bad Request (malformed From)");
		n = aor_of(who, &who_uri, watcher, sizeof(watcher));
	}
	if(n < 0)
		return reject(msg, 400, "Bad Request (watcher URI too long)");
	req.watcher.s = watcher;
	req.watcher.len = n;

	/* Contact: the remote target */
	if(msg->contact == NULL || parse_contact(msg->contact) < 0
			|| (cb = (contact_body_t *)msg->contact->parsed) == NULL || cb->contacts == NULL) {
		if(!req.in_dialog)
			return reject(msg, 400, "Bad Request (Contact missing or malformed)");
	} else {
		req.remote_target = IS(cb->contacts->uri);
	}

	/* route set: Record-Route as received (UAS side) */
	if(msg->record_route && !req.in_dialog) {
		if(print_rr_body(msg->record_route, &rr, 0, NULL) < 0)
			return reject(msg, 400, "Bad Request (malformed Record-Route)");
		req.route_set = IS(rr);
	}

	si = msg->rcv.bind_address;
	if(si)
		req.socket = IS(si->sock_str);
	n = imps_local_contact(msg, contact_uri, lcontact, sizeof(lcontact));
	req.local_contact.s = n > 0 ? lcontact : NULL;
	req.local_contact.len = n > 0 ? (size_t)n : 0;

	req.callid = IS(callid);
	req.remote_tag = IS(from->tag_value);
	req.local_tag = IS(totag);
	req.remote_uri = IS(from->uri);
	req.local_uri = IS(to->uri);
	req.remote_cseq = cseq;
	req.now = (long long)time(NULL);

	/* An initial SUBSCRIBE holds the AoR's usrloc slot from storing the subscription to
	 * sending its first NOTIFY: a REGISTER of the AoR in another process waits, so its NOTIFY
	 * (next version, next CSeq) cannot overtake the first one. */
	if(!req.in_dialog && ul_dom) {
		locked_aor.s = aor;
		locked_aor.len = req.aor.len;
		ul.lock_udomain(ul_dom, &locked_aor);
	}
	n = imps_reginfo_subscribe(&req, &rep);
	if(rr.s)
		pkg_free(rr.s);
	if(n < 0 && rep.code == 503)
		LM_ERR("reg SUBSCRIBE from %s answered 503: Redis: %s\n", watcher,
				imps_reginfo_last_error());
	ret = reply(msg, rep.code, rep.reason, rep.headers) < 0 ? -1 : (rep.code < 300 ? 1 : -2);
	if(ret > 0 && rep.notify)
		imps_reginfo_flush();
	if(locked_aor.s) {
		ul.unlock_udomain(ul_dom, &locked_aor);
		locked_aor.s = NULL;
	}
	return ret;
}

static int w_handle_subscribe(struct sip_msg *msg, char *p1, char *p2)
{
	return ki_handle_subscribe(msg);
}

/* ---- RPC --------------------------------------------------------------------------------- */

struct rpc_sink_ctx
{
	rpc_t *rpc;
	void *ctx;
	long long now;
};

static void list_sink(void *c, const imps_reginfo_subinfo_t *s)
{
	struct rpc_sink_ctx *sc = (struct rpc_sink_ctx *)c;
	void *th;
	str sid = SI(s->sid), aor = SI(s->aor), w = SI(s->watcher), t = SI(s->remote_target),
		sock = SI(s->socket);
	long long left = s->expires_at - sc->now;
	if(sc->rpc->add(sc->ctx, "{", &th) < 0)
		return;
	sc->rpc->struct_add(th, "SSSSSddd", "id", &sid, "aor", &aor, "watcher", &w, "contact", &t,
			"socket", &sock, "expires", (int)(left > 0 ? left : 0), "version",
			(int)s->version, "cseq", (int)s->cseq);
}

static void rpc_list(rpc_t *rpc, void *ctx)
{
	str aor = {0, 0};
	struct rpc_sink_ctx sc;
	if(rpc->scan(ctx, "*S", &aor) < 1) { /* optional: a placeholder is left when absent */
		aor.s = NULL;
		aor.len = 0;
	}
	sc.rpc = rpc;
	sc.ctx = ctx;
	sc.now = (long long)time(NULL);
	if(imps_reginfo_list(IS(aor), 10000, list_sink, &sc) < 0)
		rpc->fault(ctx, 503, "State store unavailable: %s", imps_reginfo_last_error());
}

static void show_sink(void *c, imps_str_t doc)
{
	struct rpc_sink_ctx *sc = (struct rpc_sink_ctx *)c;
	str d = SI(doc);
	sc->rpc->add(sc->ctx, "S", &d);
}

static void rpc_show(rpc_t *rpc, void *ctx)
{
	str aor;
	struct rpc_sink_ctx sc;
	if(rpc->scan(ctx, "S", &aor) < 1) {
		rpc->fault(ctx, 400, "AoR (user@host) expected");
		return;
	}
	sc.rpc = rpc;
	sc.ctx = ctx;
	sc.now = (long long)time(NULL);
	if(imps_reginfo_show(IS(aor), sc.now, show_sink, &sc) < 0)
		rpc->fault(ctx, 503, "State store unavailable: %s", imps_reginfo_last_error());
}

static void rpc_terminate(rpc_t *rpc, void *ctx)
{
	str aor, contact = {0, 0}, event = {0, 0};
	urecord_t *r = NULL;
	ucontact_t *c, *next;
	int removed = 0;
	void *th;
	int nparams;

	/* binrpc fills missing optional parameters with a placeholder: trust only the count */
	nparams = rpc->scan(ctx, "S*SS", &aor, &contact, &event);
	if(nparams < 1) {
		rpc->fault(ctx, 400, "AoR (user@host) expected");
		return;
	}
	if(nparams < 2)
		contact.len = 0;
	if(nparams < 3)
		event.len = 0;
	if(contact.len == 1 && contact.s[0] == '*')
		contact.len = 0;
	if(event.len > 0 && !(event.len == 8 && strncmp(event.s, "rejected", 8) == 0)
			&& !(event.len == 11 && strncmp(event.s, "deactivated", 11) == 0)) {
		rpc->fault(ctx, 400, "event must be 'deactivated' or 'rejected'");
		return;
	}
	if(ul_dom == NULL) {
		rpc->fault(ctx, 500, "usrloc domain not available");
		return;
	}
	ul.lock_udomain(ul_dom, &aor);
	if(ul.get_urecord(ul_dom, &aor, &r) != 0 || r == NULL) {
		ul.unlock_udomain(ul_dom, &aor);
		rpc->fault(ctx, 404, "AoR not found");
		return;
	}
	admin_event = (event.len == 8) ? "rejected" : "deactivated";
	for(c = r->contacts; c; c = next) {
		next = c->next;
		if(contact.len > 0 && (c->c.len != contact.len || memcmp(c->c.s, contact.s, contact.len)))
			continue;
		if(ul.delete_ucontact(r, c) == 0)
			removed++;
	}
	admin_event = NULL;
	ul.release_urecord(r);
	ul.unlock_udomain(ul_dom, &aor);
	if(removed == 0) {
		rpc->fault(ctx, 404, "Contact not found");
		return;
	}
	if(rpc->add(ctx, "{", &th) < 0)
		return;
	rpc->struct_add(th, "Sd", "aor", &aor, "removed", removed);
}

static void rpc_stats(rpc_t *rpc, void *ctx)
{
	void *th;
	long long active = imps_reginfo_count();
	if(rpc->add(ctx, "{", &th) < 0)
		return;
	rpc->struct_add(th, "dddd", "active_subscriptions", (int)(active < 0 ? 0 : active),
			"notifies_sent", (int)get_stat_val(st_sent), "notifies_failed",
			(int)get_stat_val(st_failed), "store_ok", active < 0 ? 0 : 1);
}

/* ---- lifecycle --------------------------------------------------------------------------- */

#define ALL_SCRIPT_CB_TYPES                                                     \
	(REQUEST_CB | FAILURE_CB | ONREPLY_CB | BRANCH_CB | ONSEND_CB | ERROR_CB | LOCAL_CB \
			| EVENT_CB | BRANCH_FAILURE_CB)

static int pre_script_cb(struct sip_msg *msg, unsigned int flags, void *param)
{
	cur_register = (msg->first_line.type == SIP_REQUEST
						   && msg->first_line.u.request.method_value == METHOD_REGISTER)
						   ? msg
						   : NULL;
	return 1;
}

static int post_script_cb(struct sip_msg *msg, unsigned int flags, void *param)
{
	cur_register = NULL;
	return 1;
}

static void expiry_timer(unsigned int ticks, void *param)
{
	imps_reginfo_expire((long long)time(NULL));
}

/* The AoR of uri as the registrar keys it (see registrar_extract_aor), in buf; without the
 * registrar, user@host with the host in lower case. Its length, -1 if it does not fit or
 * the registrar refuses the URI. */
static int aor_of(str uri, struct sip_uri *parsed, char *buf, int size)
{
	str a;
	if(registrar_extract_aor == NULL)
		return imps_identity_of(parsed, buf, size);
	if(registrar_extract_aor(&uri, &a, NULL) < 0 || a.len >= size)
		return -1;
	memcpy(buf, a.s, a.len);
	buf[a.len] = '\0';
	return a.len;
}

static int mod_init(void)
{
	bind_usrloc_t bind_usrloc;
	sr_module_t *registrar = find_module_by_name("registrar");

	if(imps_parse_trusted_peers(trusted_peers, &trusted) < 0)
		return -1;
	if(registrar && registrar->handle)
		registrar_extract_aor = (registrar_extract_aor_f)dlsym(registrar->handle, "extract_aor");
	if(registrar_extract_aor == NULL)
		LM_WARN("no registrar's extract_aor(): AoRs are taken as user@host, host in lower "
				"case, which may differ from how usrloc keys them\n");
	if(strcmp(notify_state, "full") != 0 && strcmp(notify_state, "partial") != 0) {
		LM_ERR("notify_state must be 'full' or 'partial'\n");
		return -1;
	}
	if(min_expires < 0 || max_expires < min_expires || default_expires < min_expires
			|| default_expires > max_expires) {
		LM_ERR("expires parameters must satisfy 0 <= min_expires <= default_expires <= "
			   "max_expires\n");
		return -1;
	}
	if(timer_interval < 1) {
		LM_ERR("timer_interval must be at least 1 second\n");
		return -1;
	}
	if(load_tm_api(&tmb) < 0) {
		LM_ERR("cannot load the tm API (load tm before imps_reginfo)\n");
		return -1;
	}
	if(sl_load_api(&slb) < 0) {
		LM_ERR("cannot load the sl API (load sl before imps_reginfo)\n");
		return -1;
	}
	bind_usrloc = (bind_usrloc_t)find_export("ul_bind_usrloc", 1, 0);
	if(bind_usrloc == NULL || bind_usrloc(&ul) < 0) {
		LM_ERR("cannot bind usrloc (load usrloc before imps_reginfo)\n");
		return -1;
	}
	if(ul.register_udomain(usrloc_domain, &ul_dom) < 0) {
		LM_ERR("cannot register the usrloc domain '%s'\n", usrloc_domain);
		return -1;
	}
	if(ul.register_ulcb(UL_CONTACT_INSERT | UL_CONTACT_UPDATE | UL_CONTACT_DELETE
							   | UL_CONTACT_EXPIRE,
			   ul_contact_cb, 0)
			< 0) {
		LM_ERR("cannot register usrloc callbacks\n");
		return -1;
	}
	/* every route type: a REGISTER resumed in a failure route (t_continue) is seen, and a
	 * reply or event route never runs with the pointer of an earlier request */
	if(register_script_cb(pre_script_cb, PRE_SCRIPT_CB | ALL_SCRIPT_CB_TYPES, 0) < 0
			|| register_script_cb(post_script_cb, POST_SCRIPT_CB | ALL_SCRIPT_CB_TYPES, 0) < 0) {
		LM_ERR("cannot register script callbacks\n");
		return -1;
	}
	if(register_module_stats(exports.name, mod_stats) != 0) {
		LM_ERR("cannot register statistics\n");
		return -1;
	}
	if(rpc_register_array(rpc_cmds) != 0) {
		LM_ERR("cannot register RPC commands\n");
		return -1;
	}
	if(register_timer(expiry_timer, 0, timer_interval) < 0) {
		LM_ERR("cannot register the expiry timer\n");
		return -1;
	}
	return 0;
}

static int child_init(int rank)
{
	imps_reginfo_config_t cfg;
	imps_reginfo_host_t host;

	/* the main process handles no SIP; processes forked later without child_init would
	 * inherit its connection */
	if(rank == PROC_INIT || rank == PROC_MAIN || rank == PROC_TCP_MAIN)
		return 0;
	memset(&cfg, 0, sizeof(cfg));
	cfg.redis_host = redis_host;
	cfg.redis_port = redis_port;
	cfg.redis_password = redis_password;
	cfg.redis_db = redis_db;
	cfg.redis_connect_timeout_ms = redis_connect_timeout;
	cfg.redis_timeout_ms = redis_timeout;
	cfg.redis_retry_interval_ms = redis_retry_interval;
	cfg.key_prefix = key_prefix;
	cfg.min_expires = min_expires;
	cfg.max_expires = max_expires;
	cfg.default_expires = default_expires;
	cfg.partial_state = strcmp(notify_state, "partial") == 0;
	cfg.remove_on_timeout = notify_timeout_action;
	cfg.trusted_watchers = trusted_watchers;
	memset(&host, 0, sizeof(host));
	host.log = imps_log_sink;
	host.send_notify = send_notify;
	host.get_bindings = get_bindings;
	host.stat = stat_cb;
	if(imps_reginfo_open(&cfg, &host) < 0) {
		LM_ERR("cannot initialize imps_reginfo in process rank %d\n", rank);
		return -1;
	}
	return 0;
}

static void mod_destroy(void)
{
	imps_reginfo_close();
}

/* ---- KEMI -------------------------------------------------------------------------------- */

/* clang-format off */
static sr_kemi_t sr_kemi_imps_reginfo_exports[] = {
	{ str_init("imps_reginfo"), str_init("handle_subscribe"),
		SR_KEMIP_INT, ki_handle_subscribe,
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE }
	},
	{ {0, 0}, {0, 0}, 0, NULL, { 0, 0, 0, 0, 0, 0 } }
};
/* clang-format on */

int mod_register(char *path, int *dlflags, void *p1, void *p2)
{
	sr_kemi_modules_add(sr_kemi_imps_reginfo_exports);
	return 0;
}
