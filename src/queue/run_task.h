/* run_task.h — one run in progress, shared by its threads (runs.h).
 * Internal to queue/runs.c, run_publish.c and run_consume.c.
 *
 * Ownership: the run thread owns the task; the consumer and lease threads
 * borrow it until the run thread joins them.  Each thread writes only its
 * own part of the run record through the db functions that name the
 * fence; what they tell each other goes through the atomics below.
 */
#ifndef ASSETD_RUN_TASK_H
#define ASSETD_RUN_TASK_H

#include "core/run.h"
#include "db/db.h"
#include "events/amqp_conn.h"
#include "events/notify.h"
#include "store/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* Each network step (connect, login, an RPC) at most this long. */
#define RUN_NET_TIMEOUT_MS 5000
/* Progress events: at most one per side this often. */
#define RUN_PROGRESS_MS 500

typedef struct run_task {
    db *db;
    store *store;
    notifier *events;
    const amqp_conn_url *url;
    int64_t lease_ms;
    run_rec r;                      /* the run thread's copy (publisher side) */
    char queue[ID_LEN + 16];
    /* Set once, read by all. */
    _Atomic bool stop;              /* lease lost, cancelled, or the worker stops */
    _Atomic bool lost;              /* the lease is another worker's: write nothing more */
    _Atomic bool handing_back;      /* the worker stops: give the lease back */
    _Atomic bool consumer_ready;    /* live mode: listening, publishing may start */
    _Atomic bool published;         /* every row is confirmed (or nacked) */
    _Atomic int64_t sent;           /* then: how many the broker confirmed */
    /* The first failure wins (guarded by lock). */
    pthread_mutex_t lock;
    char error_code[48];
    char error_message[256];
} run_task;

/* Records the run's failure (the first one wins) and stops the task. */
void run_task_fail(run_task *t, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool run_task_failed(run_task *t);
/* Opens a connection, retrying a few times with backoff while the task
 * runs; NULL with why set when the broker stays unreachable. */
amqp_conn *run_task_connect(run_task *t, bool confirms, char *why, size_t cap);
/* Sleeps up to ms, waking early when the task stops; false if it stopped. */
bool run_task_sleep(run_task *t, int ms);

/* run_publish.c: publishes the CSV from the run's cursor; returns when
 * every row is confirmed (true) or the task failed or stopped (false). */
bool run_publish(run_task *t);
/* run_consume.c: the consumer thread's body (arg: the task). */
void *run_consume(void *arg);

#endif
