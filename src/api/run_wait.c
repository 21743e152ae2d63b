/* run_wait.c — see run_wait.h. */
#include "api/run_wait.h"
#include "util/log.h"
#include "util/timefmt.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WAIT_POLL_MS 200

typedef struct waiter {
    http_req *r;
    char owner[OWNER_MAX + 1];
    char run_id[ID_LEN + 1];
    int64_t deadline_ms;
    run_wait_reply reply;
    bool live;           /* handed over (http_req_hold's then): r is ours */
} waiter;

struct run_waiters {
    db *db;
    pthread_t thread;
    pthread_mutex_t lock;
    _Atomic bool stopping;
    int max, n;
    waiter *list;
};

/* Replies and resumes waiter i (taken out of the list by the caller). */
static void finish(waiter *w, const run_rec *run)
{
    w->reply(w->r, w->run_id, run);
    http_req_resume(w->r);
}

static void *wait_main(void *arg)
{
    run_waiters *x = arg;
    while (!atomic_load(&x->stopping)) {
        struct timespec ts = {0, WAIT_POLL_MS * 1000 * 1000};
        nanosleep(&ts, NULL);
        int64_t now = time_now_ms();
        for (int i = 0;; i++) {
            pthread_mutex_lock(&x->lock);
            if (i >= x->n) {
                pthread_mutex_unlock(&x->lock);
                break;
            }
            waiter w = x->list[i];
            pthread_mutex_unlock(&x->lock);
            if (!w.live) continue;   /* its deferred function has not returned yet */
            /* Only this thread removes entries: index i stays w's. */
            db_conn *c = db_acquire(x->db);
            run_rec run;
            db_status st = c ? db_run_get(c, w.owner, w.run_id, &run) : DB_ERROR;
            db_release(x->db, c);
            bool done = st == DB_OK && run_finished(&run);
            bool gone = st == DB_NOT_FOUND;   /* cannot happen: runs are never deleted */
            if (!done && !gone && now < w.deadline_ms) continue;
            pthread_mutex_lock(&x->lock);
            x->list[i] = x->list[--x->n];
            pthread_mutex_unlock(&x->lock);
            i--;
            finish(&w, done ? &run : NULL);
        }
    }
    return NULL;
}

run_waiters *run_waiters_start(db *d, int max_waiting)
{
    run_waiters *x = calloc(1, sizeof *x);
    if (!x || !(x->list = calloc((size_t)max_waiting, sizeof *x->list))) {
        free(x);
        return NULL;
    }
    x->db = d;
    x->max = max_waiting;
    pthread_mutex_init(&x->lock, NULL);
    if (pthread_create(&x->thread, NULL, wait_main, x) != 0) {
        log_error("cannot start the run waiter", NULL);
        pthread_mutex_destroy(&x->lock);
        free(x->list);
        free(x);
        return NULL;
    }
    return x;
}

typedef struct handover {
    run_waiters *x;
    http_req *r;
} handover;

/* http_req_hold's then: the deferred function has returned. */
static void make_live(void *arg)
{
    handover *h = arg;
    pthread_mutex_lock(&h->x->lock);
    for (int i = 0; i < h->x->n; i++)
        if (h->x->list[i].r == h->r) h->x->list[i].live = true;
    pthread_mutex_unlock(&h->x->lock);
    free(h);
}

bool run_waiters_add(run_waiters *x, http_req *r, const char *owner, const char *run_id,
                     int64_t deadline_ms, run_wait_reply reply)
{
    handover *h = x ? malloc(sizeof *h) : NULL;
    if (!h) return false;
    *h = (handover){x, r};
    pthread_mutex_lock(&x->lock);
    bool room = x->n < x->max && !atomic_load(&x->stopping);
    if (room) {
        waiter *w = &x->list[x->n++];
        *w = (waiter){.r = r, .deadline_ms = deadline_ms, .reply = reply};
        snprintf(w->owner, sizeof w->owner, "%s", owner);
        snprintf(w->run_id, sizeof w->run_id, "%s", run_id);
        http_req_hold(r, make_live, h);
    }
    pthread_mutex_unlock(&x->lock);
    if (!room) free(h);
    return room;
}

void run_waiters_stop(run_waiters *x)
{
    if (!x) return;
    atomic_store(&x->stopping, true);
    pthread_join(x->thread, NULL);
    /* The HTTP server still runs (it stops after us), so no deferred
     * function is between add and make_live for long: wait it out. */
    for (int i = 0; i < x->n; i++) {
        for (int tries = 0; tries < 500; tries++) {
            pthread_mutex_lock(&x->lock);
            bool live = x->list[i].live;
            pthread_mutex_unlock(&x->lock);
            if (live) break;
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        finish(&x->list[i], NULL);
    }
    pthread_mutex_destroy(&x->lock);
    free(x->list);
    free(x);
}
