/* imps_xcap's Kamailio shim: imps_xcap_mod.c (exports, parameters, statistics, lifecycle,
 * KEMI), http.c (the request from xhttp's event route to the core and the reply back),
 * storage_db.c (the documents through Kamailio's DB API), rpc.c. The logic is the C++ core in
 * core/, reached through imps_xcap_capi.h. */
#ifndef IMPS_XCAP_SHIM_H
#define IMPS_XCAP_SHIM_H

#include "core/sr_module.h"
#include "core/rpc.h"
#include "core/counters.h"
#include "core/parser/msg_parser.h"
#include "lib/srdb1/db.h"
#include "modules/xhttp/api.h"

#include "common/shim/imps_log.h"
#include "common/shim/imps_notify.h"
#include "common/shim/imps_sip.h"
#include "imps_xcap/imps_xcap_capi.h"

/* imps_xcap_mod.c */
extern xhttp_api_t xhttp_api;
extern char *xcap_root;
extern str root_path; /* the path part of xcap_root ("/xcap-root") */
extern char *admin_identity;
extern imps_trusted_peers_t trusted_readers;

/* statistics: requests by method, replies by status, refused changes by reason */
void count_request(str *method, int status, imps_str_t refused);
void rpc_stats_add(rpc_t *rpc, void *th);

/* http.c */
int ki_handle(struct sip_msg *msg);
int w_handle(struct sip_msg *msg, char *p1, char *p2);
int ki_trusted(struct sip_msg *msg);
int w_trusted(struct sip_msg *msg, char *p1, char *p2);

/* storage_db.c */
extern str db_url;
extern str xcap_table;
int storage_init(void); /* mod_init: table and version */
extern imps_xcap_storage_ops_t storage_ops;

/* api.c: bind_imps_xcap (imps_xcap_api.h) */
int bind_imps_xcap(void *api);
int api_init(void);
void api_forked(void);

/* rpc.c */
extern rpc_export_t xcap_rpc_cmds[];

#endif
