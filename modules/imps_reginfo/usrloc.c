/* imps_reginfo: the usrloc glue. A binding change is seen in usrloc's callback, with the
 * record's slot locked: it is only copied there (no I/O), then handled when the lock is gone,
 * by the SIP worker when its script ends, or, for changes from a process that may not do I/O
 * (usrloc's timer in Kamailio's shared timer process, an RPC), by the module's own timer
 * process, to which it is handed through shared memory. */
#include <dlfcn.h>
#include <string.h>
#include <time.h>

#include "core/dprint.h"
#include "core/trim.h"
#include "core/locking.h"
#include "core/mem/shm_mem.h"
#include "core/parser/contact/parse_contact.h"

#include "imps_reginfo.h"


/* temp-gruu as the registrar hands it out (built by the core: imps_reginfo_temp_gruu) */
static int temp_gruu(ucontact_t *c, char *buf, int size)
{
	if(c->instance.len <= 0 || c->ruid.len <= 0)
		return 0;
	return imps_reginfo_temp_gruu(imps_str_of(c->ruid), ul.get_aorhash(c->aor),
			imps_str_of(*c->aor), buf, (size_t)size);
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
	bb->b.uri = imps_str_of(c->c);
	bb->b.callid = imps_str_of(c->callid);
	bb->b.instance = imps_str_of(c->instance);
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
				bb->b.display_name = imps_str_of(dn);
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
			bb->b.params = imps_str_of(*params);
			return;
		}
	}
}

/* ---- changes handed to the timer process ------------------------------------------------- */

struct handed_change
{
	struct handed_change *next;
	size_t len;
	char data[];
};
static gen_lock_t *hc_lock = NULL;
static struct handed_change **hc_list = NULL; /* newest first */

static void hand_over(void *ctx, const char *blob, size_t len)
{
	struct handed_change *h = (struct handed_change *)shm_malloc(sizeof(*h) + len);
	if(h == NULL) {
		SHM_MEM_ERROR;
		LM_ERR("a reg event is lost: no shared memory to hand the binding change over\n");
		return;
	}
	h->len = len;
	memcpy(h->data, blob, len);
	lock_get(hc_lock);
	h->next = *hc_list;
	*hc_list = h;
	lock_release(hc_lock);
}

/* timer process: the changes handed over, oldest first */
void handle_handed_over_changes(void)
{
	struct handed_change *h, *rev = NULL, *next;
	if(hc_lock == NULL)
		return;
	lock_get(hc_lock);
	h = *hc_list;
	*hc_list = NULL;
	lock_release(hc_lock);
	for(; h; h = next) { /* newest first: reverse */
		next = h->next;
		h->next = rev;
		rev = h;
	}
	for(h = rev; h; h = next) {
		next = h->next;
		imps_reginfo_import_change(h->data, h->len);
		shm_free(h);
	}
	imps_reginfo_run_changes();
}

int reginfo_usrloc_init(void)
{
	hc_lock = lock_alloc();
	hc_list = (struct handed_change **)shm_malloc(sizeof(*hc_list));
	if(hc_lock == NULL || hc_list == NULL || lock_init(hc_lock) == NULL) {
		LM_ERR("cannot create the queue of binding changes\n");
		return -1;
	}
	*hc_list = NULL;
	return 0;
}

/* ---- usrloc ------------------------------------------------------------------------------ */

#define MAX_BINDINGS 64

/* Runs inside usrloc with the record's slot locked by the caller (registrar save, timer, RPC):
 * the record is read without locking again, and nothing here does I/O. */
void ul_contact_cb(ucontact_t *c, int type, void *param)
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
	if(imps_reginfo_queue_change(imps_str_of(*c->aor), &changed.b, change, cause, admin_event, arr,
			   (size_t)n, (long long)now)
			< 0) {
		LM_ERR("reg event for %.*s not delivered: %s\n", c->aor->len, c->aor->s,
				imps_reginfo_last_error());
		return;
	}
	/* not in a script of a SIP worker (which handles its queue when the script ends): to the
	 * module's timer process */
	if(!in_script)
		imps_reginfo_export_changes(hand_over, NULL);
}

/* Copies the AoR's bindings to sink with its slot locked for the copy only (sink copies). */
int get_bindings(const char *aor, size_t aor_len, imps_reginfo_binding_sink_f sink, void *ctx)
{
	str a;
	urecord_t *r = NULL;
	ucontact_t *p;
	struct binding_buf bb;
	time_t now = time(NULL);
	int found = 0;

	if(ul_dom == NULL)
		return -1;
	a.s = (char *)aor;
	a.len = (int)aor_len;
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
	ul.unlock_udomain(ul_dom, &a);
	return found;
}


/* ---- the registrar's AoR ------------------------------------------------------------------ */

/* The registrar's own rule for the AoR of a URI (its extract_aor(): the user part unescaped,
 * the domain kept or dropped by use_domain, aor_avp, realm_prefix...), so that a
 * subscription is keyed exactly as usrloc keys the binding. */
typedef int (*registrar_extract_aor_f)(str *uri, str *aor, struct sip_uri *puri);
static registrar_extract_aor_f registrar_extract_aor = NULL;

int reginfo_bind_registrar(void)
{
	sr_module_t *registrar = find_module_by_name("registrar");
	if(registrar && registrar->handle)
		registrar_extract_aor = (registrar_extract_aor_f)dlsym(registrar->handle, "extract_aor");
	if(registrar_extract_aor == NULL)
		LM_WARN("no registrar's extract_aor(): AoRs are taken as user@host, host in lower "
				"case, which may differ from how usrloc keys them\n");
	return 0;
}

/* The AoR of uri as the registrar keys it, in buf; without the registrar, user@host with
 * the host in lower case. Its length, -1 if it does not fit or the registrar refuses it. */
int aor_of(str uri, struct sip_uri *parsed, char *buf, int size)
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
