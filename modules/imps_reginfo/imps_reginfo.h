/* imps_reginfo's Kamailio shim, split by concern: imps_reginfo_mod.c (exports, parameters,
 * lifecycle, the module's timer process), usrloc.c (usrloc glue: binding changes queued
 * under usrloc's lock and handled after it, bindings copied for a NOTIFY), subscribe.c
 * (SUBSCRIBE, NOTIFY through tm), rpc.c. What they share is declared here. The logic is the
 * C++ core in core/, reached through imps_reginfo_capi.h. */
#ifndef IMPS_REGINFO_SHIM_H
#define IMPS_REGINFO_SHIM_H

#include "core/sr_module.h"
#include "core/rpc.h"
#include "core/parser/msg_parser.h"
#include "modules/tm/tm_load.h"
#include "modules/sl/sl.h"
#include "modules/usrloc/usrloc.h"

#include "common/shim/imps_log.h"
#include "common/shim/imps_proc.h"
#include "common/shim/imps_notify.h"
#include "imps_reginfo/imps_reginfo_capi.h"

/* parameters (imps_reginfo_mod.c) */
extern char *usrloc_domain;
extern char *contact_uri;
extern imps_trusted_peers_t trusted;

/* APIs bound in mod_init */
extern tm_api_t tmb;
extern sl_api_t slb;
extern usrloc_api_t ul;
extern udomain_t *ul_dom;

/* the REGISTER this process runs the script for (usrloc callbacks read its Contacts) */
extern struct sip_msg *cur_register;
/* this process runs a script: binding changes are handled when it ends */
extern int in_script;
/* set by imps_reginfo.terminate around its usrloc deletions */
extern const char *admin_event;
/* final responses of our NOTIFYs, for the timer process */
extern imps_completion_queue_t *completions;

/* usrloc.c */
int reginfo_usrloc_init(void);
void ul_contact_cb(ucontact_t *c, int type, void *param);
int get_bindings(const char *aor, size_t aor_len, imps_reginfo_binding_sink_f sink, void *ctx);
void handle_handed_over_changes(void);
int aor_of(str uri, struct sip_uri *parsed, char *buf, int size);
int reginfo_bind_registrar(void);

/* subscribe.c */
int ki_handle_subscribe(struct sip_msg *msg);
int w_handle_subscribe(struct sip_msg *msg, char *p1, char *p2);
int send_request(const imps_request_t *r);
void handle_completions(void);

/* rpc.c */
extern rpc_export_t reginfo_rpc_cmds[];

#endif
