/* The API other modules bind to (imps_presence accounts its subscriptions through it):
 *
 *   bind_imps_aaa_f bind = (bind_imps_aaa_f)find_export("bind_imps_aaa", 0, 0);
 *   imps_aaa_api_t api;
 *   if(bind == NULL || bind(&api) < 0) ... load imps_aaa first ...
 */
#ifndef IMPS_AAA_API_H
#define IMPS_AAA_API_H

#include "core/str.h"

enum { IMPS_AAA_ACCT_START = 1, IMPS_AAA_ACCT_STOP = 2, IMPS_AAA_ACCT_INTERIM = 3 };

typedef struct imps_aaa_api
{
	/* Queues an Accounting-Request (User-Name user, Acct-Session-Id session, status
	 * IMPS_AAA_ACCT_*) for an async worker, so the caller never waits for RADIUS (run at once
	 * when there are no async workers). 0 queued or sent, -1 failed. */
	int (*account)(str *user, str *session, int status);
} imps_aaa_api_t;

typedef int (*bind_imps_aaa_f)(imps_aaa_api_t *api);

#endif
