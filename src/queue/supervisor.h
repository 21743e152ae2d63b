/* supervisor.h — keeps N worker processes alive for `assetd serve`.
 *
 * Each child is this same binary exec'd as `assetd worker ...`.  A thread
 * polls the children; one that exits (crash, OOM kill, time-limit exit) is
 * restarted after a short pause, so a crash loop cannot spin the CPU.  Its
 * job is not lost: the lease expires and the job is retried or ends dead.
 */
#ifndef ASSETD_SUPERVISOR_H
#define ASSETD_SUPERVISOR_H

typedef struct supervisor supervisor;

/* argv is copied; NULL on failure. */
supervisor *supervisor_start(int workers, char *const argv[]);
/* SIGTERM to every child, up to `grace` seconds to exit, then SIGKILL. */
void supervisor_stop(supervisor *s, unsigned grace);

#endif
