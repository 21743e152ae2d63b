/* runs.h — CSV runs in a worker process (core/run.h): the run executor.
 *
 * A worker process with a broker (--amqp-url) runs up to `max_runs` runs
 * at once beside its job loop: one thread claims runs from the database
 * (db_run_claim, a lease with a fence, like jobs), and each claimed run
 * gets threads of its own:
 *
 *   - the run thread publishes the CSV's rows (run_publish.c) on its own
 *     connection, with publisher confirms and a window of unconfirmed
 *     messages, then waits for the consumer and ends the run;
 *   - the consumer thread (run_consume.c) reads the run's queue on a
 *     second connection and stores rows in batches (one transaction, then
 *     one multiple ack);
 *   - the lease thread renews the lease every lease/3 and reads the
 *     owner's cancel flag.
 *
 * Runs are network-bound, so threads are enough: a worker's job loop
 * (images, video) is not held up by them, and a run is not held up by a
 * transcode.  A worker that dies mid-run loses nothing: the lease runs out
 * and another worker claims the run and resumes it from its durable
 * cursor (run.h explains why nothing is counted twice).  A worker told to
 * stop (SIGTERM) hands its runs back at once (lease_until 0).
 */
#ifndef ASSETD_RUNS_H
#define ASSETD_RUNS_H

#include "db/db.h"
#include "events/amqp_conn.h"
#include "events/notify.h"
#include "store/store.h"

typedef struct run_executor run_executor;

typedef struct run_executor_config {
    db *db;                 /* borrowed: outlives the executor */
    store *store;           /* borrowed */
    notifier *events;       /* borrowed; wakes serve's hub after commits */
    amqp_conn_url url;      /* copied */
    int64_t lease_ms;
    int max_runs;           /* at once in this process */
} run_executor_config;

/* Starts claiming.  NULL (logged) if the thread cannot start. */
run_executor *run_executor_start(const run_executor_config *cfg);
/* Stops every run (handing their leases back) and joins the threads.
 * NULL is a no-op. */
void run_executor_stop(run_executor *x);

#endif
