/* imps_aaa's Kamailio shim, split by concern: imps_aaa_mod.c (exports, parameters,
 * statistics, lifecycle, the RADIUS prober process, KEMI), auth.c (authentication and
 * authorization in the SIP worker, the result xavps), async.c (the asynchronous protocol:
 * tasks to async workers, suspend and resume through tm), acct.c (accounting, of
 * registrations too, and bind_imps_aaa for other modules), rpc.c. What they share is declared
 * here; the logic is the C++ core in core/, reached through imps_aaa_capi.h. */
#ifndef IMPS_AAA_SHIM_H
#define IMPS_AAA_SHIM_H

#include <stdio.h>
#include <string.h>

#include "core/sr_module.h"
#include "core/dprint.h"
#include "core/mod_fix.h"
#include "core/ut.h"
#include "core/pt.h"
#include "core/rpc.h"
#include "core/rpc_lookup.h"
#include "core/counters.h"
#include "core/kemi.h"
#include "core/action.h"
#include "core/route.h"
#include "core/receive.h"
#include "core/script_cb.h"
#include "core/async_task.h"
#include "core/cfg/cfg_struct.h"
#include "core/timer_proc.h"
#include "core/xavp.h"
#include "core/mem/shm_mem.h"
#include "core/parser/msg_parser.h"
#include "core/parser/parse_from.h"
#include "core/parser/parse_uri.h"
#include "core/parser/parse_ppi_pai.h"
#include "core/parser/digest/digest.h"
#include "modules/auth/api.h"
#include "modules/usrloc/usrloc.h"
#include "modules/tm/tm_load.h"

#include "common/shim/imps_log.h"
#include "common/shim/imps_proc.h"
#include "common/shim/imps_sip.h"
#include "common/shim/imps_notify.h"
#include "imps_aaa/imps_aaa_capi.h"
#include "imps_aaa/imps_aaa_api.h"


extern char *auth_servers;
extern char *trusted_peers;
extern imps_trusted_peers_t trusted;
extern char *acct_servers;
extern int timeout;
extern int retries;
extern int budget;
extern int dead_time;
extern char *nas_identifier;
extern char *redis_host;
extern int redis_port;
extern char *redis_password;
extern int redis_db;
extern int redis_timeout;
extern char *cache_prefix;
extern int cache_positive_ttl;
extern int cache_negative_ttl;
extern char *reply_xavp;
extern int account_registrations;
extern char *usrloc_domain;
extern char *async_group;
extern int probe_interval;
extern usrloc_api_t ul;
extern struct tm_binds tmb;
extern int have_tm;
extern long long *shared_auth_state;
extern long long *shared_acct_state;
extern auth_api_s_t auth_api;
extern int have_auth_api;
extern stat_var *st[8];
extern stat_var *st_wrong_password, *st_unknown_user;
extern rpc_export_t aaa_rpc_cmds[];
void stat_cb(int which, long long delta);

hdr_types_t challenge_type(struct sip_msg *msg);
int auth_finish(struct sip_msg *msg, str *realm, hdr_types_t hftype,
		struct hdr_field *h, int ret);
int auth_begin(struct sip_msg *msg, str *realm, hdr_types_t *hftype,
		struct hdr_field **h, imps_aaa_digest_t *d);
void log_unavailable(imps_str_t user, const char *err);
int ki_authenticate(struct sip_msg *msg, str *realm);
int w_authenticate(struct sip_msg *msg, char *realm, char *p2);
int identity_of(struct sip_msg *msg, str *user);
void xavp_field(sr_xavp_t **list, char *name, int is_int, int i, char *sv);
void set_result_xavp(imps_aaa_decision_t *d, int rc);
void set_auth_xavp(int rc, imps_str_t verified);
int ki_authorize(struct sip_msg *msg, str *service);
int w_authorize(struct sip_msg *msg, char *service, char *p2);
size_t task_strings(str *realm, imps_aaa_digest_t *d, str *identity, str *service,
		str *cbname);
char *put(char *p, const char *s, size_t len, const char **dst, size_t *dlen);
char *put_str(char *p, str *s, str *dst);
char *put_astr(char *p, imps_str_t s, imps_str_t *dst);
async_task_t *task_new(int kind, int route, str *cbname, str *realm, hdr_types_t hftype,
		imps_aaa_digest_t *d, str *identity, str *service);
int task_submit(struct sip_msg *msg, async_task_t *at);
int run_result_route(struct sip_msg *msg, int route);
void async_exec(void *param);
int resume_cb(struct sip_msg *msg, unsigned int flags, void *param);
int own_transaction(struct sip_msg *msg);
int authenticate_async(struct sip_msg *msg, str *realm, int route, str *cbname);
int authorize_async(
		struct sip_msg *msg, str *who, str *service, int route, str *cbname);
int w_authenticate_async(struct sip_msg *msg, char *realm, char *route);
int w_authorize_async(struct sip_msg *msg, char *service, char *route);
int w_authorize_user_async(struct sip_msg *msg, char *user, char *service, char *route);
int ki_authenticate_async(struct sip_msg *msg, str *realm, str *cb);
int ki_authorize_async(struct sip_msg *msg, str *service, str *cb);
int ki_authorize_user_async(struct sip_msg *msg, str *user, str *service, str *cb);
int fixup_user_async(void **param, int param_no);
int fixup_free_user_async(void **param, int param_no);
int fixup_async(void **param, int param_no);
int fixup_free_async(void **param, int param_no);
int ki_account(struct sip_msg *msg, str *event);
int w_account(struct sip_msg *msg, char *event, char *p2);
void acct_exec(void *param);
int account_async(str *user, str *session, int status);
int bind_imps_aaa(imps_aaa_api_t *api);
void ul_acct_cb(ucontact_t *c, int type, void *param);
void server_sink(void *c, const char *role, const char *host, int port, int dead,
		double rtt_ms, unsigned long long requests, unsigned long long responses,
		unsigned long long timeouts, unsigned long long dropped, const char *last_error);
void rpc_servers(rpc_t *rpc, void *ctx);
void rpc_cache_flush(rpc_t *rpc, void *ctx);
void rpc_check(rpc_t *rpc, void *ctx);
void rpc_stats(rpc_t *rpc, void *ctx);

#endif
