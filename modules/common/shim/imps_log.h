/* For the Kamailio shims only (includes Kamailio's dprint.h): the log sink every C++ core
 * writes through, so its lines carry the module's name in Kamailio's log. */
#ifndef IMPS_SHIM_LOG_H
#define IMPS_SHIM_LOG_H

#include "core/dprint.h"

/* level: 0 error, 1 warning, 2 info, 3 debug (imps::LogLevel) */
static inline void imps_log_sink(int level, const char *msg)
{
	switch(level) {
		case 0:
			LM_ERR("%s\n", msg);
			break;
		case 1:
			LM_WARN("%s\n", msg);
			break;
		case 2:
			LM_INFO("%s\n", msg);
			break;
		default:
			LM_DBG("%s\n", msg);
			break;
	}
}

#endif
