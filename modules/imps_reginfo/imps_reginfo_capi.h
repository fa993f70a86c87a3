/* The extern "C" boundary between the Kamailio shim (imps_reginfo_mod.c) and the C++ core.
 * Only POD structs, {pointer, length} strings and int status codes cross it; no C++ exception
 * does (every entry point catches everything and returns an error code). Strings handed to the
 * core are copied before the call returns; strings handed to callbacks live only for the call. */
#ifndef IMPS_REGINFO_CAPI_H
#define IMPS_REGINFO_CAPI_H

#include "imps/capi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* one usrloc binding */
typedef struct imps_reginfo_binding {
	imps_str_t uri;
	imps_str_t callid;
	imps_str_t instance;
	imps_str_t temp_gruu;
	imps_str_t display_name; /* valid when has_msg_info */
	imps_str_t params;       /* raw Contact parameters ";a=b;c", valid when has_msg_info */
	unsigned int reg_id;
	long long expires_at;    /* unix time; 0: permanent */
	int q;                   /* 0..1000, -1: unspecified */
	long long cseq;
	int has_msg_info;
} imps_reginfo_binding_t;

/* one stored subscription, for RPC listings */
typedef struct imps_reginfo_subinfo {
	imps_str_t sid;
	imps_str_t aor;
	imps_str_t watcher;
	imps_str_t remote_target;
	imps_str_t socket;
	long long expires_at;
	unsigned long long version; /* version of the last NOTIFY sent */
	unsigned long long cseq;    /* CSeq of the last NOTIFY sent */
} imps_reginfo_subinfo_t;

typedef void (*imps_reginfo_binding_sink_f)(void *ctx, const imps_reginfo_binding_t *b);

enum { IMPS_STAT_ACTIVE = 0, IMPS_STAT_SENT = 1, IMPS_STAT_FAILED = 2, IMPS_STAT_TIMER_ERRORS = 3 };

/* services of Kamailio the core uses */
typedef struct imps_reginfo_host {
	void (*log)(int level, const char *msg); /* 0 err, 1 warn, 2 info, 3 debug */
	/* an in-dialog NOTIFY through tm: 0 handed over (its final response comes back through
	 * imps_reginfo_complete()) */
	int (*send_request)(const imps_request_t *r);
	/* copies the bindings of an AoR to sink: 1 the record exists, 0 it does not, <0 error */
	int (*get_bindings)(const char *aor, size_t aor_len, imps_reginfo_binding_sink_f sink, void *ctx);
	void (*stat)(int which, long long delta);
} imps_reginfo_host_t;

typedef struct imps_reginfo_config {
	const char *redis_host;
	int redis_port;
	const char *redis_password;
	int redis_db;
	int redis_connect_timeout_ms;
	int redis_timeout_ms;
	int redis_retry_interval_ms;
	const char *key_prefix;
	int min_expires;
	int max_expires;
	int default_expires;
	int partial_state;
	int remove_on_timeout;
	const char *trusted_watchers; /* comma or space separated identities */
	int notify_busy_ms; /* longest wait for a NOTIFY's final response before the next */
	const char *node;   /* this node's name (no spaces) */
	long long epoch;    /* when this node started (ms) */
} imps_reginfo_config_t;

typedef struct imps_reginfo_subscribe {
	imps_subscribe_common_t sub;
	imps_str_t aor;    /* AoR of the Request-URI (initial SUBSCRIBE) */
	imps_str_t watcher;
	long long now;
} imps_reginfo_subscribe_t;

typedef struct imps_reginfo_reply {
	int code;
	char reason[128];
	char headers[512]; /* header lines, each ending in CRLF */
	int notify;        /* call imps_reginfo_flush() after sending the reply */
} imps_reginfo_reply_t;

enum { IMPS_CHANGE_INSERT = 0, IMPS_CHANGE_UPDATE, IMPS_CHANGE_DELETE, IMPS_CHANGE_EXPIRE };
enum { IMPS_CAUSE_REGISTER = 0, IMPS_CAUSE_ADMIN, IMPS_CAUSE_OTHER };

/* the temp-GRUU of a binding (an instance and a ruid) as the registrar hands it out, in buf;
 * its length, 0 when there is none or it does not fit */
int imps_reginfo_temp_gruu(imps_str_t ruid, unsigned int aor_hash, imps_str_t aor, char *buf,
		size_t size) IMPS_NOEXCEPT;

/* per process, from child_init: makes the Redis connection (a failure is not fatal: the
 * connection is retried on use) */
int imps_reginfo_open(const imps_reginfo_config_t *cfg, const imps_reginfo_host_t *host) IMPS_NOEXCEPT;
void imps_reginfo_close(void) IMPS_NOEXCEPT;

/* 0: rep holds the answer; -1: the store failed (rep holds 503 with Retry-After) */
int imps_reginfo_subscribe(const imps_reginfo_subscribe_t *req, imps_reginfo_reply_t *rep) IMPS_NOEXCEPT;
void imps_reginfo_flush(void) IMPS_NOEXCEPT;

/* A usrloc binding change, queued in this process: called with usrloc's lock held, it does
 * no I/O. imps_reginfo_run_changes() handles the queue (after the lock is released), or
 * imps_reginfo_export_changes() hands each queued change out as a blob, for a process that
 * may not do I/O (Kamailio's shared timer) to pass to the module's own timer process, which
 * hands it to imps_reginfo_import_change(). */
int imps_reginfo_queue_change(imps_str_t aor, const imps_reginfo_binding_t *changed,
		int change, int cause, const char *admin_event, const imps_reginfo_binding_t *current,
		size_t n_current, long long now) IMPS_NOEXCEPT;
void imps_reginfo_run_changes(void) IMPS_NOEXCEPT;
int imps_reginfo_export_changes(void (*sink)(void *ctx, const char *blob, size_t len), void *ctx) IMPS_NOEXCEPT;
int imps_reginfo_import_change(const char *blob, size_t len) IMPS_NOEXCEPT;

/* the final response of a NOTIFY (408 for a timeout), in the module's timer process */
void imps_reginfo_complete(imps_str_t aor, imps_str_t sid, unsigned long long cseq, int code,
		int retry_after, long long now_ms) IMPS_NOEXCEPT;
/* the final responses of many NOTIFYs at once (one Redis round trip), timer process */
void imps_reginfo_complete_many(const imps_response_t *r, size_t n, long long now_ms) IMPS_NOEXCEPT;
/* timer work: deferred NOTIFYs now due; with expiry, expired subscriptions too */
void imps_reginfo_timer(long long now, long long now_ms, int expiry) IMPS_NOEXCEPT;

int imps_reginfo_show(imps_str_t aor, long long now, void (*sink)(void *ctx, imps_str_t doc),
		void *ctx) IMPS_NOEXCEPT;
int imps_reginfo_list(imps_str_t aor, int limit,
		void (*sink)(void *ctx, const imps_reginfo_subinfo_t *s), void *ctx) IMPS_NOEXCEPT;
/* subscriptions in the store (all nodes), -1 on store failure */
long long imps_reginfo_count(void) IMPS_NOEXCEPT;
/* the last error message of the calling process (for logs and RPC faults) */
const char *imps_reginfo_last_error(void) IMPS_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif
