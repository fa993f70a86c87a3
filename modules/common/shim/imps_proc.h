/* For the Kamailio shims only: the process set-up every module with a timer process of its
 * own and a core in each SIP process shares. */
#ifndef IMPS_SHIM_PROC_H
#define IMPS_SHIM_PROC_H

#include "core/dprint.h"
#include "core/sr_module.h"
#include "core/timer_proc.h"

/* child_init: the main process forks the module's timer process (timer every interval_us)
 * and handles no SIP itself (processes forked later without child_init would inherit what
 * it opened); PROC_INIT and the TCP main process open nothing; every other process opens
 * the module's core (open_fn). mod_init must have called register_basic_timers(1). */
static inline int imps_child_init(int rank, const char *module, char *timer_name,
		timer_function *timer, int interval_us, int (*open_fn)(void))
{
	if(rank == PROC_INIT || rank == PROC_TCP_MAIN)
		return 0;
	if(rank == PROC_MAIN) {
		if(fork_basic_utimer(PROC_TIMER, timer_name, 1, timer, NULL, interval_us) < 0) {
			LM_ERR("cannot start %s's timer process\n", module);
			return -1;
		}
		return 0;
	}
	if(open_fn() < 0) {
		LM_ERR("cannot initialize %s in process rank %d\n", module, rank);
		return -1;
	}
	return 0;
}

#endif
