/* bind_imps_xcap(): what other modules in the same Kamailio (imps_presence: users' presence
 * rules and the xcap-diff event package; imps_rls: lists) use of the List and Policy Server,
 * with no HTTP round trip. Paths are below the XCAP root, without a leading slash
 * ("pres-rules/users/sip:alice@a.example/index", a node selector after "/~~/" allowed for get).
 *
 *   bind_imps_xcap_f bind = (bind_imps_xcap_f)find_export("bind_imps_xcap", 0, 0);
 *   imps_xcap_api_t x;
 *   if(bind == NULL || bind(&x) < 0) ... imps_xcap is not loaded
 *
 * Every function may be called in any process after the fork; register_change only in
 * mod_init (the callbacks are inherited by every process). */
#ifndef IMPS_XCAP_API_H
#define IMPS_XCAP_API_H

#include "imps/capi.h"
#include "imps_xcap/imps_xcap_capi.h"

/* A stored change: old_etag "" created, new_etag "" deleted. Runs in the process that made
 * the change (an HTTP worker, or the RPC process), after it is stored. */
typedef void (*imps_xcap_change_f)(imps_str_t path, imps_str_t old_etag, imps_str_t new_etag,
		void *param);

/* the answer to a read: body, ETag of the document, content type */
typedef void (*imps_xcap_get_sink_f)(void *ctx, imps_str_t body, imps_str_t etag,
		imps_str_t content_type);

typedef struct imps_xcap_api {
	/* GET of a document or a node, as a trusted reader: the HTTP status (200 with sink
	 * called, 404, 400...), -1 when the server cannot answer */
	int (*get)(imps_str_t path, imps_xcap_get_sink_f sink, void *ctx);
	/* the documents of one owner (xui "sip:alice@a.example"; "" every owner), of one usage
	 * (auid "" every usage): 0, -1 */
	int (*list)(imps_str_t auid, imps_str_t xui, imps_xcap_info_sink_f sink, void *ctx);
	/* 0, -1 (too many callbacks, or called after mod_init) */
	int (*register_change)(imps_xcap_change_f f, void *param);
	/* Counts the stored changes of every process (shared memory): a copy of any document
	 * read while it had a value is current as long as it keeps that value. */
	unsigned long (*generation)(void);
	/* the XCAP root URI ("http://127.0.0.1:8080/xcap-root") */
	const char *root;
} imps_xcap_api_t;

typedef int (*bind_imps_xcap_f)(imps_xcap_api_t *api);

/* What a bound module's core reads (imps/capi.h): the API's get, list and generation. */
static inline imps_xcap_reader_t imps_xcap_reader_of(const imps_xcap_api_t *api)
{
	imps_xcap_reader_t r;
	r.get = api->get;
	r.list = api->list;
	r.generation = api->generation;
	return r;
}

#endif
