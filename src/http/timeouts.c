/* timeouts.c — see timeouts.h. */
#include "http/timeouts.h"
#include "util/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

struct conn_clock {
    int fd;
    /* (milliseconds since start of phase << 2) | phase, one atomic word. */
    _Atomic uint64_t state;
    conn_clock *prev, *next;
};

struct conn_timeouts {
    uint64_t header_ms, body_ms;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    conn_clock *head;
    bool stopping;
    pthread_t thread;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void timeouts_enter(conn_clock *c, conn_phase phase)
{
    if (c) atomic_store_explicit(&c->state, now_ms() << 2 | phase, memory_order_relaxed);
}

static void sweep(conn_timeouts *t)
{
    uint64_t now = now_ms();
    for (conn_clock *c = t->head; c; c = c->next) {
        uint64_t state = atomic_load_explicit(&c->state, memory_order_relaxed);
        conn_phase phase = (conn_phase)(state & 3);
        uint64_t since = state >> 2;
        uint64_t limit = phase == PHASE_HEADERS ? t->header_ms
                         : phase == PHASE_BODY  ? t->body_ms
                                                : 0;
        if (limit && now > since + limit) {
            log_info("connection deadline passed", "phase",
                     phase == PHASE_HEADERS ? "headers" : "body", NULL);
            shutdown(c->fd, SHUT_RDWR);
            timeouts_enter(c, PHASE_BUSY);  /* report once */
        }
    }
}

static void *watchdog(void *arg)
{
    conn_timeouts *t = arg;
    pthread_mutex_lock(&t->lock);
    while (!t->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&t->wake, &t->lock, &until);
        if (!t->stopping) sweep(t);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

conn_timeouts *timeouts_start(unsigned header_timeout, unsigned body_timeout)
{
    conn_timeouts *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->header_ms = (uint64_t)header_timeout * 1000;
    t->body_ms = (uint64_t)body_timeout * 1000;
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->wake, NULL);
    if (pthread_create(&t->thread, NULL, watchdog, t) != 0) {
        free(t);
        return NULL;
    }
    return t;
}

void timeouts_stop(conn_timeouts *t)
{
    if (!t) return;
    pthread_mutex_lock(&t->lock);
    t->stopping = true;
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    while (t->head) {
        conn_clock *c = t->head;
        t->head = c->next;
        free(c);
    }
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->wake);
    free(t);
}

conn_clock *timeouts_track(conn_timeouts *t, int fd)
{
    conn_clock *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->fd = fd;
    timeouts_enter(c, PHASE_HEADERS);
    pthread_mutex_lock(&t->lock);
    c->next = t->head;
    if (t->head) t->head->prev = c;
    t->head = c;
    pthread_mutex_unlock(&t->lock);
    return c;
}

void timeouts_untrack(conn_timeouts *t, conn_clock *c)
{
    if (!c) return;
    pthread_mutex_lock(&t->lock);
    if (c->prev) c->prev->next = c->next;
    else t->head = c->next;
    if (c->next) c->next->prev = c->prev;
    pthread_mutex_unlock(&t->lock);
    free(c);
}
