/* The extern "C" boundary between the Kamailio shim (imps_presence_mod.c) and the C++ core.
 * Only POD structs, {pointer, length} strings and int status codes cross it; no C++ exception
 * does. Strings handed to the core are copied before the call returns; strings handed to
 * callbacks live only for the call. */
#ifndef IMPS_PRESENCE_CAPI_H
#define IMPS_PRESENCE_CAPI_H

#include "imps/capi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* one stored subscription, for RPC listings */
typedef struct imps_presence_subinfo {
	imps_str_t sid;
	imps_str_t presentity;
	imps_str_t event;
	imps_str_t watcher;
	imps_str_t watcher_uri;
	imps_str_t status;
	imps_str_t remote_target;
	long long expires_at;
	unsigned long long cseq;
} imps_presence_subinfo_t;

typedef struct imps_presence_pubinfo {
	imps_str_t etag;
	imps_str_t source;
	imps_str_t body;
	long long expires_at;
	long long published_at;
} imps_presence_pubinfo_t;

enum {
	IMPS_PSTAT_PUBLICATIONS = 0,
	IMPS_PSTAT_SENT,
	IMPS_PSTAT_FAILED,
	IMPS_PSTAT_412,
	IMPS_PSTAT_REJECTED_BODIES,
	IMPS_PSTAT_TIMER_ERRORS
};
/* IMPS_ACTION_UNKNOWN: the rules could not be read (database down) */
enum {
	IMPS_ACTION_UNKNOWN = -1,
	IMPS_ACTION_ALLOW = 0,
	IMPS_ACTION_BLOCK,
	IMPS_ACTION_POLITE_BLOCK,
	IMPS_ACTION_CONFIRM
};

/* a NOTIFY of an in-process watch, for its consumer (api.c) */
typedef struct imps_presence_local {
	imps_str_t consumer;
	imps_str_t key;
	imps_str_t presentity;
	imps_str_t sid;
	imps_str_t state;
	imps_str_t content_type;
	imps_str_t body;
	unsigned long long version;
} imps_presence_local_t;

/* services of Kamailio the core uses */
typedef struct imps_presence_host {
	void (*log)(int level, const char *msg);
	/* an in-dialog NOTIFY through tm: 0 handed over (its final response comes back through
	 * imps_presence_complete()) */
	int (*send_request)(const imps_request_t *r);
	/* the rule rows of a presentity or a domain to sink: 0, or -1 when the table cannot be
	 * read (the core matches them: imps_presence_default_action for none) */
	int (*rule_rows)(imps_str_t key, void (*sink)(void *ctx, imps_str_t watcher, imps_str_t action),
			void *ctx);
	void (*stat)(int which, long long delta);
	/* a NOTIFY to an in-process consumer: its SIP status; may be NULL (481) */
	int (*deliver_local)(const imps_presence_local_t *n);
	/* accounting Start (start = 1) or Stop of a subscription; may be NULL */
	void (*account)(imps_str_t watcher, imps_str_t sid, int start);
	/* the List and Policy Server in this Kamailio (bind_imps_xcap); all NULL when not loaded */
	imps_xcap_reader_t xcap;
} imps_presence_host_t;

typedef struct imps_presence_config {
	const char *redis_host;
	int redis_port;
	const char *redis_password;
	int redis_db;
	int redis_connect_timeout_ms;
	int redis_timeout_ms;
	int redis_retry_interval_ms;
	const char *key_prefix;
	int min_expires, max_expires, default_expires;
	int pub_min_expires, pub_max_expires, pub_default_expires;
	int max_body_size;
	int max_publications;
	int max_watchers;
	int min_notify_interval_ms;
	const char *offline_document; /* "": the default */
	int default_action;           /* IMPS_ACTION_*: when no rule applies */
	int remove_on_timeout;        /* a NOTIFY answered 408 ends the subscription */
	int notify_busy_ms;           /* longest wait for a NOTIFY's final response */
	const char *node;             /* this node's name (no spaces) */
	long long epoch;              /* when this node started (ms) */
	/* users' pres-rules: IMPS_POLICY_* ; the XCAP root (HTTP), the source address, timeout,
	 * how long a copy is used (HTTP) */
	int policy_mode;
	const char *xcap_root;
	const char *xcap_interface;
	int xcap_timeout_ms;
	int xcap_cache_ttl_ms;
	int xcap_diff; /* offer the xcap-diff package (imps_xcap in this Kamailio) */
} imps_presence_config_t;
enum { IMPS_POLICY_OFF = 0, IMPS_POLICY_LOCAL = 1, IMPS_POLICY_HTTP = 2 };

typedef struct imps_presence_publish {
	int has_event;
	imps_str_t event;
	int has_body;
	imps_str_t content_type;
	imps_str_t body;
	imps_str_t if_match;
	int expires; /* -1: none */
	imps_str_t presentity;
	imps_str_t identity;
	imps_str_t source;
	long long now;
	long long now_ms;
} imps_presence_publish_t;

typedef struct imps_presence_subscribe {
	imps_subscribe_common_t sub;
	imps_str_t presentity; /* the Request-URI's (initial SUBSCRIBE) */
	imps_str_t watcher;
	imps_str_t display_name;
	imps_str_t content_type; /* of the body, lower case without parameters */
	imps_str_t body;
	long long now;
	long long now_ms;
} imps_presence_subscribe_t;

typedef struct imps_presence_reply {
	int code;
	char reason[160];
	char headers[512]; /* header lines, each ending in CRLF */
} imps_presence_reply_t;

int imps_presence_open(const imps_presence_config_t *cfg, const imps_presence_host_t *host) IMPS_NOEXCEPT;
int imps_presence_is_open(void) IMPS_NOEXCEPT;
void imps_presence_close(void) IMPS_NOEXCEPT;

/* 0: rep holds the answer; -1: failure (rep holds 500 or 503 with Retry-After) */
int imps_presence_publish(const imps_presence_publish_t *req, imps_presence_reply_t *rep) IMPS_NOEXCEPT;
int imps_presence_subscribe(const imps_presence_subscribe_t *req, imps_presence_reply_t *rep) IMPS_NOEXCEPT;
void imps_presence_flush(void) IMPS_NOEXCEPT;

/* timer work: deferred NOTIFYs now due; with expiry, expired publications and subscriptions */
int imps_presence_tick(long long now, long long now_ms, int expiry) IMPS_NOEXCEPT;
/* the final response of a NOTIFY (408 for a timeout), in the module's timer process */
void imps_presence_complete(imps_str_t presentity, imps_str_t sid, unsigned long long cseq,
		int code, int retry_after) IMPS_NOEXCEPT;
/* the final responses of many NOTIFYs at once (one Redis round trip), timer process */
void imps_presence_complete_many(const imps_response_t *r, size_t n) IMPS_NOEXCEPT;
/* watchers whose state changed, -1 on failure */
int imps_presence_reauthorize(imps_str_t presentity, imps_str_t watcher) IMPS_NOEXCEPT;
/* The whole rules table as read now (one call per poll): the core compares it with the
 * previous snapshot of this process and applies the rules of every presentity (or domain)
 * whose rows changed to its existing watchers. The first snapshot only records. Returns the
 * number of watchers whose state changed, -1 on failure. */
typedef struct imps_presence_rule_row {
	imps_str_t presentity;
	imps_str_t watcher;
	imps_str_t action;
} imps_presence_rule_row_t;
int imps_presence_rules_snapshot(const imps_presence_rule_row_t *rows, size_t n) IMPS_NOEXCEPT;

/* a stored change of the List and Policy Server in this process (imps_xcap's callback) */
void imps_presence_document_changed(imps_str_t path, imps_str_t old_etag, imps_str_t new_etag) IMPS_NOEXCEPT;
/* the pres-rules copies read over HTTP so far in this process (RPC) */
long long imps_presence_policy_requests(void) IMPS_NOEXCEPT;

/* 1 ended, 0 unknown, -1 failure */
int imps_presence_terminate(imps_str_t sid) IMPS_NOEXCEPT;
/* etag empty: a new publication; else a refresh (body empty), modify, or remove (expires 0) */
int imps_presence_admin_publish(imps_str_t presentity, imps_str_t body, int expires,
		imps_str_t etag, imps_presence_reply_t *rep) IMPS_NOEXCEPT;

int imps_presence_show(imps_str_t presentity, void (*doc_sink)(void *ctx, imps_str_t doc),
		void (*pub_sink)(void *ctx, const imps_presence_pubinfo_t *p), void *ctx) IMPS_NOEXCEPT;
int imps_presence_watchers(imps_str_t presentity,
		void (*sink)(void *ctx, const imps_presence_subinfo_t *s), void *ctx) IMPS_NOEXCEPT;
int imps_presence_list(int limit,
		void (*sink)(void *ctx, imps_str_t presentity, long long pubs, long long watchers),
		void *ctx) IMPS_NOEXCEPT;
/* in-process watches (bind_imps_presence): rep holds the answer (200, 403, 423, 503...), the
 * watch's id goes to sid (NUL terminated). 0, or -1 on failure */
int imps_presence_watch(imps_str_t presentity, imps_str_t watcher, imps_str_t consumer,
		imps_str_t key, int expires, imps_presence_reply_t *rep, char *sid, size_t sid_size) IMPS_NOEXCEPT;
/* 1 ended, 0 unknown, -1 failure */
int imps_presence_unwatch(imps_str_t presentity, imps_str_t sid) IMPS_NOEXCEPT;
int imps_presence_document(imps_str_t presentity, void (*sink)(void *ctx, imps_str_t doc),
		void *ctx) IMPS_NOEXCEPT;
long long imps_presence_count_subscriptions(void) IMPS_NOEXCEPT;
long long imps_presence_count_publications(void) IMPS_NOEXCEPT;
const char *imps_presence_last_error(void) IMPS_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif
