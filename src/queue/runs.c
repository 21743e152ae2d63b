/* runs.c — the run executor and a run's life; see runs.h and run_task.h. */
#include "queue/runs.h"
#include "queue/run_task.h"
#include "util/log.h"
#include "util/timefmt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* An idle claim is one indexed read (runs_live): poll as the job loop does,
 * so a run starts within 50 ms of POST (bench/runs.sh measured 125 ms on
 * average at 250). */
#define CLAIM_POLL_MS 50
/* Connection attempts before a run fails as broker_unavailable: about 3.5 s
 * of backoff, so a broker restarting under a run is waited for, and a
 * broker that is down fails the run with a clear reason soon. */
#define CONNECT_ATTEMPTS 4

struct run_executor {
    run_executor_config cfg;
    pthread_t claimer;
    _Atomic bool stopping;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int active;
    run_task *tasks[64];            /* the runs going, for stop */
};

/* ---------- the task's shared helpers ---------- */

void run_task_fail(run_task *t, const char *code, const char *fmt, ...)
{
    pthread_mutex_lock(&t->lock);
    if (!t->error_code[0]) {
        snprintf(t->error_code, sizeof t->error_code, "%s", code);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->error_message, sizeof t->error_message, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&t->lock);
    atomic_store(&t->stop, true);
}

bool run_task_failed(run_task *t)
{
    pthread_mutex_lock(&t->lock);
    bool failed = t->error_code[0] != '\0';
    pthread_mutex_unlock(&t->lock);
    return failed;
}

bool run_task_sleep(run_task *t, int ms)
{
    for (int slept = 0; slept < ms && !atomic_load(&t->stop); slept += 20) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return !atomic_load(&t->stop);
}

amqp_conn *run_task_connect(run_task *t, bool confirms, char *why, size_t cap)
{
    int backoff = 500;
    for (int attempt = 1; !atomic_load(&t->stop); attempt++) {
        amqp_conn *c = amqp_conn_open(t->url, RUN_NET_TIMEOUT_MS, confirms, why, cap);
        if (c) return c;
        if (attempt == CONNECT_ATTEMPTS || !run_task_sleep(t, backoff)) break;
        backoff *= 2;
    }
    return NULL;
}

/* ---------- the lease ---------- */

static void *lease_main(void *arg)
{
    run_task *t = arg;
    int every = (int)(t->lease_ms / 3 > 100 ? t->lease_ms / 3 : 100);
    while (run_task_sleep(t, every)) {
        db_conn *c = db_acquire(t->db);
        bool cancel = false;
        db_status st = c ? db_run_renew(c, &t->r, time_now_ms() + t->lease_ms, &cancel)
                         : DB_ERROR;
        db_release(t->db, c);
        if (st == DB_NOT_FOUND) {
            log_warn("run lease lost", "run", t->r.id, NULL);
            atomic_store(&t->lost, true);
            atomic_store(&t->stop, true);
        } else if (cancel) {
            run_task_fail(t, "cancelled", "the run was cancelled");
        }
    }
    return NULL;
}

/* ---------- a run, start to end ---------- */

/* Best effort: the queue goes with the run; one the broker kept (it was
 * gone) expires by itself (RUN_QUEUE_EXPIRES_MS). */
static void delete_queue(run_task *t)
{
    char why[256];
    amqp_conn *c = amqp_conn_open(t->url, RUN_NET_TIMEOUT_MS, false, why, sizeof why);
    if (!c || !amqp_conn_delete_queue(c, t->queue, why, sizeof why))
        log_warn("run queue not deleted (it expires by itself)", "run", t->r.id, "error", why,
                 NULL);
    amqp_conn_close(c);
}

static void finish(run_task *t)
{
    pthread_mutex_lock(&t->lock);
    bool failed = t->error_code[0] != '\0';
    t->r.state = failed ? RUN_FAILED : RUN_SUCCEEDED;
    snprintf(t->r.error_code, sizeof t->r.error_code, "%s", t->error_code);
    snprintf(t->r.error_message, sizeof t->r.error_message, "%s", t->error_message);
    pthread_mutex_unlock(&t->lock);
    db_conn *c = db_acquire(t->db);
    if (c && db_begin(c) == DB_OK && db_run_finish(c, &t->r, time_now_ms()) == DB_OK &&
        db_commit(c) == DB_OK) {
        notifier_poke(t->events);
        log_info("run finished", "run", t->r.id, "state", run_state_name(t->r.state), "error",
                 t->r.error_code, NULL);
    } else if (c) {
        db_rollback(c);   /* fenced out: another worker has the run */
    }
    db_release(t->db, c);
}

/* The worker stops: the lease goes back so a restarted worker (or
 * another) resumes the run at once instead of after the lease. */
static void hand_back(run_task *t)
{
    db_conn *c = db_acquire(t->db);
    bool cancel;
    if (c) db_run_renew(c, &t->r, 0, &cancel);
    db_release(t->db, c);
}

static void run_main(run_task *t)
{
    run_queue_name(&t->r, t->queue);
    log_info("run claimed", "run", t->r.id, "state", run_state_name(t->r.state), NULL);
    pthread_t lease, consumer;
    bool leasing = pthread_create(&lease, NULL, lease_main, t) == 0;
    bool consuming = false;
    if (!leasing) run_task_fail(t, "internal", "cannot start the run's threads");
    bool live = t->r.mode == RUN_LIVE;
    bool publish = t->r.state == RUN_PUBLISHING;
    if (!publish) {   /* resumed after the publisher ended */
        atomic_store(&t->sent, t->r.n.sent);
        atomic_store(&t->published, true);
    }
    if (leasing && (live || !publish)) {
        consuming = pthread_create(&consumer, NULL, run_consume, t) == 0;
        if (!consuming) run_task_fail(t, "internal", "cannot start the run's consumer");
        /* Live: the consumer listens before the first message goes out. */
        while (consuming && !atomic_load(&t->consumer_ready) && run_task_sleep(t, 20)) {}
    }
    if (publish && !atomic_load(&t->stop) && run_publish(t) && !consuming) {
        consuming = pthread_create(&consumer, NULL, run_consume, t) == 0;
        if (!consuming) run_task_fail(t, "internal", "cannot start the run's consumer");
    }
    if (consuming) pthread_join(consumer, NULL);
    atomic_store(&t->stop, true);
    if (leasing) pthread_join(lease, NULL);
    if (atomic_load(&t->lost)) return;   /* another worker has it: nothing is ours */
    if (atomic_load(&t->handing_back) && !run_task_failed(t)) {
        hand_back(t);
        return;
    }
    delete_queue(t);
    finish(t);
}

/* ---------- the executor ---------- */

typedef struct start_arg {
    run_executor *x;
    run_task *t;
} start_arg;

static void *task_thread(void *arg)
{
    start_arg *s = arg;
    run_executor *x = s->x;
    run_task *t = s->t;
    free(s);
    run_main(t);
    pthread_mutex_lock(&x->lock);
    for (int i = 0; i < x->cfg.max_runs; i++)
        if (x->tasks[i] == t) x->tasks[i] = NULL;
    x->active--;
    pthread_cond_broadcast(&x->changed);
    pthread_mutex_unlock(&x->lock);
    pthread_mutex_destroy(&t->lock);
    free(t);
    return NULL;
}

static bool start_task(run_executor *x, const run_rec *r)
{
    run_task *t = calloc(1, sizeof *t);
    start_arg *s = malloc(sizeof *s);
    if (!t || !s) {
        free(t);
        free(s);
        return false;
    }
    t->db = x->cfg.db;
    t->store = x->cfg.store;
    t->events = x->cfg.events;
    t->url = &x->cfg.url;
    t->lease_ms = x->cfg.lease_ms;
    t->r = *r;
    pthread_mutex_init(&t->lock, NULL);
    *s = (start_arg){x, t};
    pthread_mutex_lock(&x->lock);
    int slot = 0;
    while (x->tasks[slot]) slot++;
    x->tasks[slot] = t;
    x->active++;
    pthread_mutex_unlock(&x->lock);
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    bool ok = pthread_create(&th, &attr, task_thread, s) == 0;
    pthread_attr_destroy(&attr);
    if (!ok) {
        pthread_mutex_lock(&x->lock);
        x->tasks[slot] = NULL;
        x->active--;
        pthread_mutex_unlock(&x->lock);
        pthread_mutex_destroy(&t->lock);
        free(t);
        free(s);
    }
    return ok;
}

static void *claimer_main(void *arg)
{
    run_executor *x = arg;
    while (!atomic_load(&x->stopping)) {
        pthread_mutex_lock(&x->lock);
        bool room = x->active < x->cfg.max_runs;
        pthread_mutex_unlock(&x->lock);
        bool claimed = false;
        if (room) {
            db_conn *c = db_acquire(x->cfg.db);
            run_rec r;
            db_status st = c ? db_run_claim(c, time_now_ms(), x->cfg.lease_ms, &r) : DB_ERROR;
            db_release(x->cfg.db, c);
            if (st == DB_OK) {
                notifier_poke(x->cfg.events);
                claimed = start_task(x, &r);
                if (!claimed) log_error("cannot start a run's thread", "run", r.id, NULL);
            }
        }
        if (!claimed) {
            struct timespec ts = {0, CLAIM_POLL_MS * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

run_executor *run_executor_start(const run_executor_config *cfg)
{
    run_executor *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    x->cfg = *cfg;
    int cap = (int)(sizeof x->tasks / sizeof *x->tasks);
    if (x->cfg.max_runs < 1) x->cfg.max_runs = 1;
    if (x->cfg.max_runs > cap) x->cfg.max_runs = cap;
    pthread_mutex_init(&x->lock, NULL);
    pthread_cond_init(&x->changed, NULL);
    if (pthread_create(&x->claimer, NULL, claimer_main, x) != 0) {
        log_error("cannot start the run executor", NULL);
        pthread_mutex_destroy(&x->lock);
        pthread_cond_destroy(&x->changed);
        free(x);
        return NULL;
    }
    return x;
}

void run_executor_stop(run_executor *x)
{
    if (!x) return;
    atomic_store(&x->stopping, true);
    pthread_join(x->claimer, NULL);
    pthread_mutex_lock(&x->lock);
    for (int i = 0; i < x->cfg.max_runs; i++)
        if (x->tasks[i]) {
            atomic_store(&x->tasks[i]->handing_back, true);
            atomic_store(&x->tasks[i]->stop, true);
        }
    while (x->active > 0) pthread_cond_wait(&x->changed, &x->lock);
    pthread_mutex_unlock(&x->lock);
    pthread_mutex_destroy(&x->lock);
    pthread_cond_destroy(&x->changed);
    free(x);
}
