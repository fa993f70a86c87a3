/* imps_rls's Kamailio shim: imps_rls_mod.c (exports, parameters, statistics, lifecycle, the
 * module's timer process, the bindings of imps_presence and imps_xcap), subscribe.c (list
 * SUBSCRIBEs, NOTIFYs through tm), rpc.c. The logic is the C++ core in core/, reached through
 * imps_rls_capi.h. */
#ifndef IMPS_RLS_SHIM_H
#define IMPS_RLS_SHIM_H

#include "core/sr_module.h"
#include "core/rpc.h"
#include "core/counters.h"
#include "core/parser/msg_parser.h"
#include "modules/tm/tm_load.h"
#include "modules/sl/sl.h"

#include "common/shim/imps_log.h"
#include "common/shim/imps_proc.h"
#include "common/shim/imps_notify.h"
#include "imps_presence/imps_presence_api.h"
#include "imps_xcap/imps_xcap_api.h"
#include "imps_rls/imps_rls_capi.h"

/* imps_rls_mod.c */
extern char *contact_uri;
extern imps_trusted_peers_t trusted;
extern tm_api_t tmb;
extern sl_api_t slb;
extern imps_presence_api_t presence_api;
extern imps_xcap_api_t xcap_api;
int open_core(void);

/* subscribe.c */
extern imps_completion_queue_t *completions;
int ki_handle_subscribe(struct sip_msg *msg);
int w_handle_subscribe(struct sip_msg *msg, char *p1, char *p2);
int send_request(const imps_request_t *r);
void handle_completions(void);

/* backend.c */
int backend_init(void);
int send_backend(const imps_rls_breq_t *q);
void handle_backend_responses(void);
int ki_handle_notify(struct sip_msg *msg);
int w_handle_notify(struct sip_msg *msg, char *p1, char *p2);

/* rpc.c */
extern rpc_export_t rls_rpc_cmds[];

#endif
