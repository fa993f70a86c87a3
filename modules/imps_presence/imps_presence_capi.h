/* The extern "C" boundary between the Kamailio shim (imps_presence_mod.c) and the C++ core.
 * Only POD structs, {pointer, length} strings and int status codes cross it; no C++ exception
 * does. Strings handed to the core are copied before the call returns; strings handed to
 * callbacks live only for the call. */
#ifndef IMPS_PRESENCE_CAPI_H
#define IMPS_PRESENCE_CAPI_H

#include <stddef.h>

#ifdef __cplusplus
#define IMPS_NOEXCEPT noexcept
extern "C" {
#else
#define IMPS_NOEXCEPT
#endif

typedef struct imps_pstr {
	const char *s;
	size_t len;
} imps_pstr_t;

/* an in-dialog NOTIFY the shim sends through tm */
typedef struct imps_presence_notify {
	imps_pstr_t sid;
	imps_pstr_t presentity;
	imps_pstr_t event; /* presence | presence.winfo */
	imps_pstr_t event_id;
	imps_pstr_t callid;
	imps_pstr_t local_tag;
	imps_pstr_t remote_tag;
	imps_pstr_t local_uri;
	imps_pstr_t remote_uri;
	imps_pstr_t remote_target;
	imps_pstr_t route_set;
	imps_pstr_t socket;
	imps_pstr_t local_contact;
	imps_pstr_t body;
	imps_pstr_t content_type; /* empty: no body */
	imps_pstr_t subscription_state;
	unsigned long long cseq;
} imps_presence_notify_t;

/* one stored subscription, for RPC listings */
typedef struct imps_presence_subinfo {
	imps_pstr_t sid;
	imps_pstr_t presentity;
	imps_pstr_t event;
	imps_pstr_t watcher;
	imps_pstr_t watcher_uri;
	imps_pstr_t status;
	imps_pstr_t remote_target;
	long long expires_at;
	unsigned long long cseq;
} imps_presence_subinfo_t;

typedef struct imps_presence_pubinfo {
	imps_pstr_t etag;
	imps_pstr_t source;
	imps_pstr_t body;
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

/* services of Kamailio the core uses */
typedef struct imps_presence_host {
	void (*log)(int level, const char *msg);
	int (*send_notify)(const imps_presence_notify_t *n); /* 0: handed to tm */
	int (*rule)(imps_pstr_t presentity, imps_pstr_t watcher); /* IMPS_ACTION_* */
	void (*stat)(int which, long long delta);
	void (*lock)(imps_pstr_t presentity);
	void (*unlock)(imps_pstr_t presentity);
	/* accounting Start (start = 1) or Stop of a subscription; may be NULL */
	void (*account)(imps_pstr_t watcher, imps_pstr_t sid, int start);
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
} imps_presence_config_t;

typedef struct imps_presence_publish {
	int has_event;
	imps_pstr_t event;
	int has_body;
	imps_pstr_t content_type;
	imps_pstr_t body;
	imps_pstr_t if_match;
	int expires; /* -1: none */
	imps_pstr_t presentity;
	imps_pstr_t identity;
	imps_pstr_t source;
	long long now;
	long long now_ms;
} imps_presence_publish_t;

typedef struct imps_presence_subscribe {
	int has_event;
	imps_pstr_t event;
	int has_accept;
	imps_pstr_t accept; /* every Accept header body, joined with ',' */
	int expires;
	imps_pstr_t presentity;
	imps_pstr_t watcher;
	imps_pstr_t display_name;
	int in_dialog;
	imps_pstr_t callid, remote_tag, local_tag, remote_uri, local_uri, remote_target;
	imps_pstr_t route_set, socket, local_contact;
	long long remote_cseq;
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

int imps_presence_tick(long long now, long long now_ms) IMPS_NOEXCEPT;
void imps_presence_notify_failed(imps_pstr_t sid, int code, int retry_after) IMPS_NOEXCEPT;
/* watchers whose state changed, -1 on failure */
int imps_presence_reauthorize(imps_pstr_t presentity, imps_pstr_t watcher) IMPS_NOEXCEPT;
/* The whole rules table as read now (one call per poll): the core compares it with the
 * previous snapshot of this process and applies the rules of every presentity (or domain)
 * whose rows changed to its existing watchers. The first snapshot only records. Returns the
 * number of watchers whose state changed, -1 on failure. */
typedef struct imps_presence_rule_row {
	imps_pstr_t presentity;
	imps_pstr_t watcher;
	imps_pstr_t action;
} imps_presence_rule_row_t;
int imps_presence_rules_snapshot(const imps_presence_rule_row_t *rows, size_t n) IMPS_NOEXCEPT;

/* 1 ended, 0 unknown, -1 failure */
int imps_presence_terminate(imps_pstr_t sid) IMPS_NOEXCEPT;
/* etag empty: a new publication; else a refresh (body empty), modify, or remove (expires 0) */
int imps_presence_admin_publish(imps_pstr_t presentity, imps_pstr_t body, int expires,
		imps_pstr_t etag, imps_presence_reply_t *rep) IMPS_NOEXCEPT;

int imps_presence_show(imps_pstr_t presentity, void (*doc_sink)(void *ctx, imps_pstr_t doc),
		void (*pub_sink)(void *ctx, const imps_presence_pubinfo_t *p), void *ctx) IMPS_NOEXCEPT;
int imps_presence_watchers(imps_pstr_t presentity,
		void (*sink)(void *ctx, const imps_presence_subinfo_t *s), void *ctx) IMPS_NOEXCEPT;
int imps_presence_list(int limit,
		void (*sink)(void *ctx, imps_pstr_t presentity, long long pubs, long long watchers),
		void *ctx) IMPS_NOEXCEPT;
long long imps_presence_count_subscriptions(void) IMPS_NOEXCEPT;
long long imps_presence_count_publications(void) IMPS_NOEXCEPT;
const char *imps_presence_last_error(void) IMPS_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif
