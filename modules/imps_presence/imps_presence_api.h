/* The API other modules use to reach imps_presence in process (as Kamailio's rls reaches
 * presence through bind_presence): the resource list server watches presentities without a
 * SIP round trip. In mod_init:
 *
 *     bind_imps_presence_f bind = (bind_imps_presence_f)find_export("bind_imps_presence", 0, 0);
 *     imps_presence_api_t api;
 *     if(bind == NULL || bind(&api) < 0) ... load imps_presence first
 *     api.register_consumer("imps_rls", my_notify_cb, NULL);
 *
 * then, in any process after the fork, api.watch() / api.unwatch() / api.document().
 * A watch is a subscription of the presence event package like any SUBSCRIBE's (the owner's
 * rules decide it, it expires, watcher info shows it, versions never go back); its NOTIFYs are
 * calls of the consumer's callback in whichever process sends them (a SIP worker or the
 * module's timer process), one at a time per watch, in order. */
#ifndef IMPS_PRESENCE_API_H
#define IMPS_PRESENCE_API_H

#include "core/str.h"

/* One NOTIFY of a watch, delivered in process. Strings live only for the call. */
typedef struct imps_presence_local_notify
{
	str presentity;    /* user@host */
	str id;            /* the watch's id (what watch() returned) */
	str key;           /* the consumer's key of the watch */
	str state;         /* Subscription-State: active;expires=N, pending;..., terminated;reason=R */
	str content_type;  /* application/pidf+xml; empty: no body (pending, blocked, terminated) */
	str body;          /* the presentity's composed document as this watcher may see it */
	unsigned long long version; /* 0 for the first, +1 for each NOTIFY of the watch */
} imps_presence_local_notify_t;

/* The consumer's callback: returns a SIP status, 200 taken; 481 the consumer does not know
 * the watch any more (it ends, RFC 6665 4.2.2). */
typedef int (*imps_presence_local_cb)(const imps_presence_local_notify_t *n, void *param);

/* mod_init only (before the fork): the callback of the consumer called `name` */
typedef int (*imps_presence_register_consumer_f)(
		const char *name, imps_presence_local_cb cb, void *param);
/* A watch of presentity (user@host) for watcher (user@host, the identity the owner's rules
 * see) by consumer, under the consumer's key (unique for it; the same key again refreshes the
 * watch); expires in seconds (0: one NOTIFY now, nothing kept). The id goes to id (NUL
 * terminated). Returns 200 (the first NOTIFY follows at once, through the callback), 403
 * (blocked by the presentity), 423 (expires too brief), 503 (store unreachable), -1 error. */
typedef int (*imps_presence_watch_f)(str *presentity, str *watcher, const char *consumer,
		str *key, int expires, char *id, int id_size);
/* Ends a watch (a final NOTIFY, terminated;reason=timeout, goes to the callback).
 * 1 ended, 0 unknown, -1 error. */
typedef int (*imps_presence_unwatch_f)(str *presentity, str *id);
/* The presentity's composed document now (no watch needed): 0 and sink called, -1 error. */
typedef int (*imps_presence_document_f)(
		str *presentity, void (*sink)(void *ctx, str *doc), void *ctx);

typedef struct imps_presence_api
{
	imps_presence_register_consumer_f register_consumer;
	imps_presence_watch_f watch;
	imps_presence_unwatch_f unwatch;
	imps_presence_document_f document;
} imps_presence_api_t;

typedef int (*bind_imps_presence_f)(imps_presence_api_t *api);

#endif
