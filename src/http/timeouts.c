/* timeouts.c — see timeouts.h. */
#include "http/timeouts.h"
#include "util/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

struct conn_clock {
    int fd;
    /* (milliseconds since start of phase << 2) | phase, one atomic word. */
    _Atomic uint64_t state;
    uint64_t hangup_state;   /* the state in which a hang-up was last seen (watchdog only) */
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

/* True when the client has closed its side and every byte it sent has been
 * read.  libmicrohttpd 0.9.75 (edge-triggered epoll) misses a FIN that
 * arrives together with the last bytes it reads: it takes the short read
 * for an empty socket and never reads the end-of-file.  Mid-body, the
 * request would wait for the rest of its body until the body deadline (an
 * hour), holding its temporary file; between requests (a client that sent
 * its last request and closed its side) or mid-head, the connection would
 * stay open until the header deadline, the client waiting for the close. */
static bool peer_gone(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    int unread = 0;
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP)) &&
           ioctl(fd, FIONREAD, &unread) == 0 && unread == 0;
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
        } else if (limit && peer_gone(c->fd)) {
            /* A body or head that can never be completed, or a keep-alive
             * connection with nothing more to come.  Seen on two sweeps in
             * the same phase, so a request the server is just finishing is
             * not cut; shutdown wakes libmicrohttpd, which then reads the
             * end. */
            if (c->hangup_state == state) {
                if (phase == PHASE_BODY) log_info("client closed mid-body", NULL);
                else log_debug("client closed between requests or mid-head", NULL);
                shutdown(c->fd, SHUT_RDWR);
                timeouts_enter(c, PHASE_BUSY);
            }
            c->hangup_state = state;
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
