/* The extern "C" boundary of imps_xcap's core (core/capi.cpp): the shim hands over one HTTP
 * request and gets the response; the core reaches the documents through the storage
 * operations the shim gives it (Kamailio's DB API, storage_db.c). Strings given to the core are
 * copied; strings of a response live until the next call in the same process. */
#ifndef IMPS_XCAP_CAPI_H
#define IMPS_XCAP_CAPI_H

#include "imps/capi.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
	IMPS_XCAP_ANONYMOUS = 0,
	IMPS_XCAP_USER = 1,
	IMPS_XCAP_ADMIN = 2,
	IMPS_XCAP_READER = 3 /* a trusted peer by address: reads everything */
};

typedef struct imps_xcap_request {
	imps_str_t method, path, query, content_type, body, identity;
	int has_if_match, has_if_none_match;
	imps_str_t if_match, if_none_match;
	int role;
} imps_xcap_request_t;

typedef struct imps_xcap_response {
	int status;
	imps_str_t reason, content_type, etag, body;
	imps_str_t headers; /* more header lines, each "Name: value\r\n" */
	imps_str_t refused; /* why a request was refused ("" accepted) */
} imps_xcap_response_t;

/* results of the storage operations */
enum { IMPS_XCAP_ST_OK = 0, IMPS_XCAP_ST_NOT_FOUND = 1, IMPS_XCAP_ST_CONFLICT = 2,
	IMPS_XCAP_ST_ERROR = -1 };

typedef void (*imps_xcap_doc_sink_f)(void *ctx, imps_str_t body, imps_str_t etag,
		long long modified);
typedef void (*imps_xcap_info_sink_f)(void *ctx, imps_str_t path, imps_str_t etag,
		long long modified, long long size);

typedef struct imps_xcap_storage_ops {
	int (*fetch)(imps_str_t path, imps_xcap_doc_sink_f sink, void *ctx);
	int (*create)(imps_str_t path, imps_str_t auid, imps_str_t xui, imps_str_t body,
			imps_str_t etag, long long modified);
	int (*replace)(imps_str_t path, imps_str_t old_etag, imps_str_t body, imps_str_t etag,
			long long modified);
	int (*remove)(imps_str_t path, imps_str_t old_etag);
	/* auid "" every usage; xui "" every owner */
	int (*list)(imps_str_t auid, imps_str_t xui, imps_xcap_info_sink_f sink, void *ctx);
} imps_xcap_storage_ops_t;

/* mod_init: compiles the schemas (before the fork, shared by every process). 0 ok, -1 with
 * err set. */
int imps_xcap_init(const char *root, size_t max_doc_size, const imps_xcap_storage_ops_t *ops,
		char *err, size_t errlen) IMPS_NOEXCEPT;
int imps_xcap_handle(const imps_xcap_request_t *req, imps_xcap_response_t *resp) IMPS_NOEXCEPT;
/* RPC: the documents of an owner (xui "" : all), one call of sink each; 0, -1 */
int imps_xcap_list(imps_str_t xui, imps_xcap_info_sink_f sink, void *ctx) IMPS_NOEXCEPT;
/* RPC: one document by its path below the root ("resource-lists/users/sip:a@b/index"), as
 * an admin: body and ETag (fetch), or deleted; 0 ok, 1 not found, -1 error */
int imps_xcap_show(imps_str_t path, imps_xcap_doc_sink_f sink, void *ctx) IMPS_NOEXCEPT;
int imps_xcap_delete(imps_str_t path) IMPS_NOEXCEPT;
/* bind_imps_xcap: a GET as a trusted reader (path below the root, node selector allowed):
 * the status, sink called with body, ETag and content type on 200; -1 failure */
int imps_xcap_read(imps_str_t path,
		void (*sink)(void *ctx, imps_str_t body, imps_str_t etag, imps_str_t content_type),
		void *ctx) IMPS_NOEXCEPT;
/* the documents of one usage (auid "" every one) and owner (xui "" every one): 0, -1 */
int imps_xcap_list_usage(imps_str_t auid, imps_str_t xui, imps_xcap_info_sink_f sink,
		void *ctx) IMPS_NOEXCEPT;
/* the function every stored change is reported to (path, old ETag "" created, new ETag ""
 * deleted), in the process that made it */
void imps_xcap_set_change(void (*changed)(imps_str_t path, imps_str_t old_etag,
		imps_str_t new_etag)) IMPS_NOEXCEPT;
/* the generated xcap-caps document (RPC and logs) */
imps_str_t imps_xcap_caps(void) IMPS_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif
