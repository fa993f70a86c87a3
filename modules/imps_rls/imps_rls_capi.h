/* The extern "C" boundary between imps_rls's Kamailio shim and its C++ core. Only POD
 * structs, {pointer, length} strings and int codes cross it; no exception does. */
#ifndef IMPS_RLS_CAPI_H
#define IMPS_RLS_CAPI_H

#include "imps/capi.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
	IMPS_RSTAT_LISTS = 0,
	IMPS_RSTAT_SENT,
	IMPS_RSTAT_FAILED,
	IMPS_RSTAT_BYTES,
	IMPS_RSTAT_LIST_ERRORS,
	IMPS_RSTAT_TIMER_ERRORS,
	IMPS_RSTAT_BACKENDS,
	IMPS_RSTAT_BACKENDS_REMOTE,
	IMPS_RSTAT_BACKEND_FAILURES,
	IMPS_RSTAT_BACKENDS_REFUSED
};

/* A back-end SUBSCRIBE to a member of another domain: initial (remote_tag empty) or in the
 * dialog; sent through tm toward dst_uri when there is no route set. Its final response comes
 * back as an imps_rls_bresp_t with bkey, callid and cseq. */
typedef struct imps_rls_breq {
	imps_str_t bkey, callid, local_tag, remote_tag, from_uri, to_uri, target, route_set, dst_uri;
	unsigned long long cseq;
	imps_str_t headers;
} imps_rls_breq_t;

typedef struct imps_rls_bresp {
	imps_str_t bkey, callid;
	unsigned long long cseq;
	int code;        /* 408 for a timeout */
	int retry_after;
	imps_str_t remote_tag, route_set, target; /* of a 2xx: route set = Record-Route reversed */
	int expires;     /* -1: none */
} imps_rls_bresp_t;

/* A NOTIFY in a back-end dialog: route set = its Record-Route in order. */
typedef struct imps_rls_bnotify {
	imps_str_t callid, local_tag, remote_tag, state, content_type, body, route_set, target;
	unsigned long long cseq;
} imps_rls_bnotify_t;

typedef struct imps_rls_host {
	void (*log)(int level, const char *msg);
	int (*send_request)(const imps_request_t *r);
	void (*stat)(int which, long long delta);
	/* the List and Policy Server in this Kamailio (bind_imps_xcap) */
	imps_xcap_reader_t xcap;
	/* imps_presence's watch: the status; the id into id */
	int (*watch)(imps_str_t presentity, imps_str_t watcher, imps_str_t key, int expires,
			char *id, int id_size);
	int (*unwatch)(imps_str_t presentity, imps_str_t id);
	/* a back-end SUBSCRIBE through tm: 0 handed over, -1 not sent */
	int (*send_backend)(const imps_rls_breq_t *r);
} imps_rls_host_t;

typedef struct imps_rls_config {
	const char *redis_host;
	int redis_port;
	const char *redis_password;
	int redis_db;
	int redis_connect_timeout_ms;
	int redis_timeout_ms;
	int redis_retry_interval_ms;
	const char *key_prefix;
	int min_expires, max_expires, default_expires;
	int batch_ms;
	int max_notify_size;
	const char *adhoc_user;
	int client_compat;
	int max_members;
	int max_depth;
	int max_list_subscriptions;
	int max_backends;
	int remove_on_timeout;
	int notify_busy_ms;
	const char *node;
	long long epoch;
	const char *xcap_root;
	const char *local_domains;  /* comma separated; "" every member is local */
	const char *outbound_proxy; /* the HSP: next hop of back-end SUBSCRIBEs */
	const char *contact;        /* our Contact for back-end dialogs */
	int remote_expires;
	int remote_retry_ms;
	int max_backends_per_list;
	int max_backends_per_user;
} imps_rls_config_t;

typedef struct imps_rls_subscribe {
	imps_subscribe_common_t sub;
	int eventlist; /* Supported: eventlist */
	int recipient_list; /* Require: recipient-list-subscribe (RFC 5367) */
	imps_str_t content_type, content_disposition, content_encoding, body;
	imps_str_t user_agent;
	imps_str_t service;
	imps_str_t watcher;
	imps_str_t display_name;
	long long now;
	long long now_ms;
} imps_rls_subscribe_t;

typedef struct imps_rls_reply {
	int code;   /* 0: not a list subscription (the script goes on) */
	char reason[160];
	char headers[512];
} imps_rls_reply_t;

typedef struct imps_rls_subinfo {
	imps_str_t sid, service, owner, status;
	long long expires_at;
	unsigned long long version;
	int members;
} imps_rls_subinfo_t;

typedef struct imps_rls_backend {
	imps_str_t key, member, owner, id, state, reason;
	long long refs;
	int remote;
	long long next_ms; /* remote: refreshed or tried again then */
} imps_rls_backend_t;

int imps_rls_open(const imps_rls_config_t *cfg, const imps_rls_host_t *host) IMPS_NOEXCEPT;
int imps_rls_is_open(void) IMPS_NOEXCEPT;
void imps_rls_close(void) IMPS_NOEXCEPT;
/* 0: rep holds the answer (code 0: not a list subscription); -1 failure (500/503) */
int imps_rls_subscribe(const imps_rls_subscribe_t *req, imps_rls_reply_t *rep) IMPS_NOEXCEPT;
void imps_rls_flush(void) IMPS_NOEXCEPT;
int imps_rls_member_notify(imps_str_t key, imps_str_t presentity, imps_str_t state,
		imps_str_t content_type, imps_str_t body) IMPS_NOEXCEPT;
void imps_rls_document_changed(imps_str_t path) IMPS_NOEXCEPT;
int imps_rls_refresh(imps_str_t service) IMPS_NOEXCEPT;
int imps_rls_tick(long long now, long long now_ms, int expiry) IMPS_NOEXCEPT;
void imps_rls_complete_many(const imps_response_t *r, size_t n) IMPS_NOEXCEPT;
/* final responses of back-end SUBSCRIBEs (the module's timer process) */
void imps_rls_backend_responses(const imps_rls_bresp_t *r, size_t n) IMPS_NOEXCEPT;
/* a NOTIFY of a back-end dialog: the SIP status to answer */
int imps_rls_backend_notify(const imps_rls_bnotify_t *n) IMPS_NOEXCEPT;
int imps_rls_list(void (*sink)(void *ctx, const imps_rls_subinfo_t *s), void *ctx) IMPS_NOEXCEPT;
/* 1 shown (sink_sub once, sink_member per member: uri, name, depth, is_list), 0 unknown, -1 */
int imps_rls_show(imps_str_t sid, void (*sink_sub)(void *ctx, const imps_rls_subinfo_t *s),
		void (*sink_member)(void *ctx, imps_str_t uri, imps_str_t name, int depth, int is_list,
				imps_str_t state),
		void *ctx) IMPS_NOEXCEPT;
int imps_rls_backends(void (*sink)(void *ctx, const imps_rls_backend_t *b), void *ctx) IMPS_NOEXCEPT;
long long imps_rls_count_subscriptions(void) IMPS_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif
