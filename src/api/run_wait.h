/* run_wait.h — requests that wait for a CSV run to end (POST /simulate/,
 * the original publisher's endpoint, answers with the finished report).
 *
 * A waiting request is suspended (http_req_hold): it holds no thread, and
 * becomes the waiter's once its deferred function has returned.  One
 * thread looks at the waiting runs every WAIT_POLL_MS (a run's end is a
 * database row, written by a worker process) and, when one has finished or
 * its deadline passed, calls the waiter's reply function and resumes the
 * request.  The number of waiting requests is bounded; past it, add()
 * refuses and the caller answers at once (the run goes on).
 *
 * Stop replies to every request still waiting (the deadline form of the
 * reply) before the server stops.
 */
#ifndef ASSETD_RUN_WAIT_H
#define ASSETD_RUN_WAIT_H

#include "core/run.h"
#include "db/db.h"
#include "http/server.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct run_waiters run_waiters;

/* Sets r's reply: run is the finished run, or NULL when the wait ended
 * first (deadline, server stopping). */
typedef void (*run_wait_reply)(http_req *r, const char *run_id, const run_rec *run);

/* d is borrowed.  NULL (logged) if the thread cannot start. */
run_waiters *run_waiters_start(db *d, int max_waiting);
/* From a deferred function that has not replied: on true, r is held and
 * the waiter replies later; on false (full), the caller replies. */
bool run_waiters_add(run_waiters *w, http_req *r, const char *owner, const char *run_id,
                     int64_t deadline_ms, run_wait_reply reply);
void run_waiters_stop(run_waiters *w);

#endif
