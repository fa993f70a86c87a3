/* The extern "C" boundary between the Kamailio shim (imps_aaa_mod.c) and the C++ core: POD
 * structs, {pointer, length} strings, int results; nothing throws across it. */
#ifndef IMPS_AAA_CAPI_H
#define IMPS_AAA_CAPI_H

#include "imps/capi.h"

#ifdef __cplusplus
#define IMPS_AAA_NOEXCEPT noexcept
extern "C" {
#else
#define IMPS_AAA_NOEXCEPT
#endif


enum {
	IMPS_AAA_ST_REQUESTS = 0, IMPS_AAA_ST_ACCEPTS, IMPS_AAA_ST_REJECTS, IMPS_AAA_ST_TIMEOUTS,
	IMPS_AAA_ST_FAILOVERS, IMPS_AAA_ST_CACHE_HITS, IMPS_AAA_ST_CACHE_MISSES, IMPS_AAA_ST_FORGED
};

typedef struct imps_aaa_host {
	void (*log)(int level, const char *msg);
	void (*stat)(int which, long long delta);
} imps_aaa_host_t;

typedef struct imps_aaa_config {
	const char *auth_servers; /* "ip:port:secret;ip:port:secret" in failover order */
	const char *acct_servers;
	int timeout_ms, retries, budget_ms, dead_time_s;
	const char *nas_identifier;
	const char *redis_host;
	int redis_port;
	const char *redis_password;
	int redis_db, redis_timeout_ms;
	const char *cache_prefix;
	int cache_positive_ttl, cache_negative_ttl;
	/* shared memory, one 64-bit slot per server of each list (zeroed): the servers' hold-down
	 * state seen by every process; NULL: per process */
	long long *shared_auth_state;
	long long *shared_acct_state;
	/* 1: a held-down server is probed back only by imps_aaa_probe() (one dedicated process),
	 * never inside a request */
	int background_probe;
} imps_aaa_config_t;

typedef struct imps_aaa_digest {
	imps_str_t username, realm, nonce, uri, method, qop, algorithm, cnonce, nc, response;
} imps_aaa_digest_t;

/* authorization outcome and the reply attributes the script may read */
typedef struct imps_aaa_decision {
	int result; /* 1 accept, -1 reject, -2 AAA unavailable */
	int from_cache;
	char klass[128];
	long long max_expires; /* -1: none */
	char reply_message[256];
	char error[256];
} imps_aaa_decision_t;

typedef void (*imps_aaa_server_sink_f)(void *ctx, const char *role, const char *host, int port,
		int dead, double rtt_ms, unsigned long long requests, unsigned long long responses,
		unsigned long long timeouts, unsigned long long dropped, const char *last_error);

int imps_aaa_open(const imps_aaa_config_t *cfg, const imps_aaa_host_t *host) IMPS_AAA_NOEXCEPT;
void imps_aaa_close(void) IMPS_AAA_NOEXCEPT;
/* 1 ok, -2 wrong password, -3 unknown user, -5 AAA unavailable, -6 credentials that do not
 * fit a RADIUS attribute */
int imps_aaa_authenticate(const imps_aaa_digest_t *d, char *error, size_t error_len) IMPS_AAA_NOEXCEPT;
/* 1 when at least one authentication server may be asked now; 0 when every one is held
 * down (a request would only get "AAA unavailable": answer it at once) */
int imps_aaa_auth_available(void) IMPS_AAA_NOEXCEPT;
/* 1 and *out filled when the cache holds a decision; 0 otherwise (never asks the HAAA) */
int imps_aaa_authorize_cached(imps_str_t identity, imps_str_t service,
		imps_aaa_decision_t *out) IMPS_AAA_NOEXCEPT;
/* Status-Server to the held-down servers whose hold-down is over; how many are back */
int imps_aaa_probe(void) IMPS_AAA_NOEXCEPT;
/* use_cache 0: ask the HAAA now (RPC check; the answer is still stored in the cache) */
int imps_aaa_authorize(imps_str_t identity, imps_str_t service, int use_cache,
		imps_aaa_decision_t *out) IMPS_AAA_NOEXCEPT;
/* status: 1 Start, 2 Stop, 3 Interim-Update; 1 ok, -1 failed */
int imps_aaa_account(imps_str_t user, imps_str_t session, int status, char *error,
		size_t error_len) IMPS_AAA_NOEXCEPT;
/* -1 on store failure, else how many decisions were removed */
long long imps_aaa_cache_flush(imps_str_t identity) IMPS_AAA_NOEXCEPT;
void imps_aaa_servers(imps_aaa_server_sink_f sink, void *ctx) IMPS_AAA_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif
