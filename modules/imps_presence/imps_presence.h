/* imps_presence's Kamailio shim, split by concern as Kamailio's own presence module is:
 * imps_presence_mod.c (exports, parameters, statistics, lifecycle, the module's timer
 * process), publish.c (PUBLISH), subscribe.c (SUBSCRIBE, NOTIFY through tm, accounting),
 * rules_db.c (the operator's rules through the DB API), rpc.c, api.c (bind_imps_presence for
 * other modules). What they share is declared here; the logic is the C++ core in core/,
 * reached through imps_presence_capi.h. */
#ifndef IMPS_PRESENCE_SHIM_H
#define IMPS_PRESENCE_SHIM_H

#include "core/sr_module.h"
#include "core/rpc.h"
#include "core/counters.h"
#include "core/parser/msg_parser.h"
#include "lib/srdb1/db.h"
#include "modules/tm/tm_load.h"
#include "modules/sl/sl.h"

#include "common/shim/imps_log.h"
#include "common/shim/imps_proc.h"
#include "common/shim/imps_notify.h"
#include "imps_aaa/imps_aaa_api.h"
#include "imps_presence/imps_presence_capi.h"
#include "imps_xcap/imps_xcap_api.h"

/* imps_presence_mod.c */
extern char *contact_uri;
extern int pub_default_expires;
extern int max_body_size;
extern int account_subscriptions;
extern imps_trusted_peers_t trusted;
extern tm_api_t tmb;
extern sl_api_t slb;
extern imps_aaa_api_t aaa_api;
extern stat_var *st_pubs, *st_sent, *st_failed, *st_412, *st_rejected, *st_timer_errors;

/* rules_db.c */
extern str db_url;
extern str rules_table;
extern char *default_action;
extern int default_action_code;
extern db_func_t dbf;
extern db1_con_t *dbh;
int action_code(str *a);
const char *action_str(int a);
int rule_rows(imps_str_t key, void (*sink)(void *ctx, imps_str_t watcher, imps_str_t action),
		void *ctx);
int rule_store(str *p, str *w, const char *action);
void poll_rules(void);
int rules_db_init(void);

/* publish.c */
int ki_handle_publish(struct sip_msg *msg);
int w_handle_publish(struct sip_msg *msg, char *p1, char *p2);
int ki_trusted(struct sip_msg *msg);
int w_trusted(struct sip_msg *msg, char *p1, char *p2);
int presence_reply(struct sip_msg *msg, int code, const char *reason, const char *hdrs);
int presence_reject(struct sip_msg *msg, int code, const char *reason);
int ensure_transaction(struct sip_msg *msg);
int presence_finish(struct sip_msg *msg, int rc, imps_presence_reply_t *rep, const char *what);
int sender_identity(struct sip_msg *msg, char *buf, int size);

/* subscribe.c */
extern imps_completion_queue_t *completions;
int ki_handle_subscribe(struct sip_msg *msg);
int w_handle_subscribe(struct sip_msg *msg, char *p1, char *p2);
int send_request(const imps_request_t *r);
void handle_completions(void);
void account_cb(imps_str_t watcher, imps_str_t sid, int start);

/* rpc.c */
extern rpc_export_t presence_rpc_cmds[];

/* xcap.c: imps_xcap in the same Kamailio */
extern int xcap_bound;
extern imps_xcap_api_t xcap_api;
int xcap_bind(void);
const char *xcap_bound_root(void);

/* imps_presence_mod.c */
int open_core(void);

/* api.c */
int bind_imps_presence(void *api);
int deliver_local(const imps_presence_local_t *l);

#endif
