/* amqp.c — see amqp.h.
 *
 * The thread's state, all its own (only the counters are shared):
 *
 *   cursor                     sent
 *     |<- confirmed, durable ->|<- in flight: ring[head .. head+count) ->|
 *   events ... 41 42 43 | 44 45 46 47 | 48 49 ... (not read yet)
 *
 * ring[i] holds the event id of delivery tag base_tag + i (tags are
 * consecutive on a connection, from 1).  An ack marks entries; the acked
 * prefix then moves the cursor.  Everything in flight belongs to one
 * connection: dropping it empties the ring and sets sent back to cursor.
 */
#include "events/amqp.h"
#include "events/hub.h"
#include "util/log.h"
#include "util/timefmt.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SAVE_EVERY_MS 200
/* How long amqp_events_stop() lets the thread finish on its own (a polite
 * close is one RPC) before it cuts the socket. */
#define STOP_GRACE_S 5

typedef struct pending {
    int64_t event_id;
    int64_t sent_ms;
    bool acked, nacked;
} pending;

struct amqp_events {
    db *db;
    amqp_events_config cfg;
    char exchange[256];
    char masked[600];          /* the URL for logs: no password */
    pthread_t thread;
    int wake_fd;
    _Atomic bool stopping;

    /* the thread's own */
    amqp_conn *conn;
    int64_t cursor;            /* last confirmed event; all before it confirmed */
    int64_t saved;             /* the cursor as last written to the database */
    int64_t saved_ms;
    int64_t sent;              /* last event published on this connection */
    pending *ring;             /* cfg.window entries */
    int head, count;
    uint64_t base_tag;         /* the delivery tag of ring[head] */
    int backoff_ms;
    int64_t next_attempt_ms;

    /* shared with /metrics */
    _Atomic uint64_t published, failures;
    _Atomic int64_t lag;
    _Atomic bool connected;

    /* The socket of the live connection, for amqp_events_stop() to cut a
     * send the broker stopped reading (a resource alarm).  Set and cleared
     * by the thread under fd_lock; the stopper shuts it down under the same
     * lock, so it never touches a descriptor already closed and reused. */
    pthread_mutex_t fd_lock;
    int conn_fd;
};

static void set_conn(amqp_events *p, amqp_conn *c)
{
    pthread_mutex_lock(&p->fd_lock);
    p->conn = c;
    p->conn_fd = c ? amqp_conn_fd(c) : -1;
    pthread_mutex_unlock(&p->fd_lock);
}

/* ---------- the connection ---------- */

/* The backoff doubles with every failure in a row, connects and lost
 * connections alike (a broker that nacks every retry is not hammered);
 * a confirmation resets it (advance). */
static void next_attempt_later(amqp_events *p)
{
    p->next_attempt_ms = time_now_ms() + p->backoff_ms;
    p->backoff_ms = p->backoff_ms > p->cfg.backoff_max_ms / 2 ? p->cfg.backoff_max_ms
                                                             : p->backoff_ms * 2;
}

static void drop(amqp_events *p, const char *why)
{
    atomic_fetch_add(&p->failures, 1);
    char retry[24], lost[24];
    snprintf(retry, sizeof retry, "%d", p->backoff_ms);
    snprintf(lost, sizeof lost, "%d", p->count);
    log_warn("amqp: connection lost; unconfirmed events will be sent again", "url", p->masked,
             "error", why, "unconfirmed", lost, "retry_ms", retry, NULL);
    amqp_conn *dead = p->conn;
    set_conn(p, NULL);
    amqp_conn_close(dead);
    atomic_store(&p->connected, false);
    /* Invariant: nothing is in flight without a connection; the next one
     * starts again right after the confirmed prefix. */
    p->count = 0;
    p->sent = p->cursor;
    next_attempt_later(p);
}

static void try_connect(amqp_events *p)
{
    char why[512];
    amqp_conn *c = amqp_conn_open(&p->cfg.url, p->cfg.timeout_ms, true, why, sizeof why);
    if (c && !amqp_conn_declare_exchange(c, p->exchange, "topic", true, why, sizeof why)) {
        amqp_conn_close(c);
        c = NULL;
    }
    if (!c) {
        atomic_fetch_add(&p->failures, 1);
        char retry[24];
        snprintf(retry, sizeof retry, "%d", p->backoff_ms);
        log_warn("amqp: cannot connect; events wait in the log", "url", p->masked, "error", why,
                 "retry_ms", retry, NULL);
        next_attempt_later(p);
        return;
    }
    set_conn(p, c);
    p->base_tag = 1;
    p->head = p->count = 0;
    p->sent = p->cursor;
    atomic_store(&p->connected, true);
    log_info("amqp: connected; publishing events", "url", p->masked, "exchange", p->exchange,
             NULL);
}

/* ---------- publishing ---------- */

typedef struct batch {
    hub_msg **msgs;
    int n, cap;
} batch;

static void collect(void *arg, const db_event *e)
{
    batch *b = arg;
    hub_msg *m = b->n < b->cap ? hub_msg_for_event(e) : NULL;
    if (m) b->msgs[b->n++] = m;
}

/* Reads what fits in the window after `sent` (the database connection is
 * released before any network work) and publishes it.  Also refreshes
 * the lag gauge. */
static void fill(amqp_events *p, batch *b)
{
    int room = p->conn ? p->cfg.window - p->count : 0;
    int64_t oldest = 0, newest = 0;
    int n = 0;
    b->n = 0;
    b->cap = room;
    db_conn *c = db_acquire(p->db);
    if (!c) return;
    bool bounds = db_events_bounds(c, &oldest, &newest) == DB_OK;
    if (room > 0 && bounds && newest > p->sent)
        db_events_after(c, p->sent, NULL, NULL, room, collect, b, &n);
    db_release(p->db, c);
    if (bounds) atomic_store(&p->lag, newest > p->cursor ? newest - p->cursor : 0);

    /* Ids are never reused nor skipped, only trimmed from the front: a
     * hole after `sent` is events retention removed before we got to them. */
    if (b->n > 0 && b->msgs[0]->id > p->sent + 1 && p->sent == p->cursor) {
        char lost[24];
        snprintf(lost, sizeof lost, "%lld", (long long)(b->msgs[0]->id - p->sent - 1));
        log_warn("amqp: events were trimmed (--event-retention) before they could be published",
                 "events", lost, NULL);
        atomic_fetch_add(&p->failures, (uint64_t)(b->msgs[0]->id - p->sent - 1));
    }
    int i = 0;
    for (; i < b->n && p->conn; i++) {
        hub_msg *m = b->msgs[i];
        char id[24], why[512];
        snprintf(id, sizeof id, "%lld", (long long)m->id);
        amqp_conn_message msg = {.exchange = p->exchange, .routing_key = m->type,
                                 .body = m->text, .len = m->len,
                                 .content_type = "application/json", .message_id = id,
                                 .persistent = true};
        uint64_t tag;
        if (!amqp_conn_publish(p->conn, &msg, &tag, why, sizeof why)) {
            drop(p, why);
            break;
        }
        /* Invariant: tags are consecutive, so ring position = tag - base_tag. */
        pending *e = &p->ring[(p->head + p->count) % p->cfg.window];
        *e = (pending){.event_id = m->id, .sent_ms = time_now_ms()};
        p->count++;
        p->sent = m->id;
    }
    for (int k = 0; k < b->n; k++) hub_msg_unref(b->msgs[k]);
}

static void on_confirm(void *arg, uint64_t tag, bool multiple, bool ack)
{
    amqp_events *p = arg;
    if (tag < p->base_tag || tag >= p->base_tag + (uint64_t)p->count) return;   /* not ours */
    uint64_t from = multiple ? p->base_tag : tag;
    for (uint64_t t = from; t <= tag; t++) {
        pending *e = &p->ring[(p->head + (int)(t - p->base_tag)) % p->cfg.window];
        if (ack) e->acked = true;
        else e->nacked = true;
    }
}

/* Moves the cursor over the acked prefix; a nack or an old unconfirmed
 * publish drops the connection (what follows the cursor goes again). */
static void advance(amqp_events *p)
{
    uint64_t confirmed = 0;
    while (p->count > 0 && p->ring[p->head].acked) {
        p->cursor = p->ring[p->head].event_id;
        p->head = (p->head + 1) % p->cfg.window;
        p->count--;
        p->base_tag++;
        confirmed++;
    }
    if (confirmed) {
        atomic_fetch_add(&p->published, confirmed);
        p->backoff_ms = p->cfg.backoff_min_ms;   /* the connection works */
    }
    if (!p->conn || p->count == 0) return;
    for (int i = 0; i < p->count; i++) {
        const pending *e = &p->ring[(p->head + i) % p->cfg.window];
        if (e->nacked) {
            char why[96];
            snprintf(why, sizeof why, "the broker refused (nack) event %lld", (long long)e->event_id);
            drop(p, why);
            return;
        }
    }
    if (time_now_ms() - p->ring[p->head].sent_ms > p->cfg.confirm_timeout_ms)
        drop(p, "no confirmation from the broker in time");
}

static void save(amqp_events *p, bool now)
{
    if (p->cursor <= p->saved) return;
    int64_t t = time_now_ms();
    if (!now && p->count > 0 && t - p->saved_ms < SAVE_EVERY_MS) return;
    db_conn *c = db_acquire(p->db);
    if (c && db_amqp_cursor_set(c, p->cursor) == DB_OK) {
        p->saved = p->cursor;
        p->saved_ms = t;
    }
    db_release(p->db, c);   /* on failure it is written next time */
}

/* ---------- the thread ---------- */

/* Sleeps until a poke, a readable socket, or the next thing due. */
static void wait_for_work(amqp_events *p)
{
    int timeout = p->cfg.poll_ms;
    if (!p->conn) {
        int64_t until = p->next_attempt_ms - time_now_ms();
        if (until < timeout) timeout = until < 0 ? 0 : (int)until;
    } else if (amqp_conn_buffered(p->conn)) {
        timeout = 0;
    }
    struct pollfd fds[2] = {{.fd = p->wake_fd, .events = POLLIN},
                            {.fd = p->conn ? amqp_conn_fd(p->conn) : -1, .events = POLLIN}};
    if (poll(fds, 2, timeout) > 0 && (fds[0].revents & POLLIN)) {
        uint64_t v;
        (void)!read(p->wake_fd, &v, sizeof v);
    }
}

static void load_cursor(amqp_events *p)
{
    while (!atomic_load(&p->stopping)) {
        db_conn *c = db_acquire(p->db);
        db_status st = c ? db_amqp_cursor_get(c, &p->cursor) : DB_ERROR;
        db_release(p->db, c);
        if (st == DB_OK) break;
        wait_for_work(p);   /* logged by the database layer; try again */
    }
    p->saved = p->sent = p->cursor;
}

static void *run(void *arg)
{
    amqp_events *p = arg;
    batch b = {.msgs = calloc((size_t)p->cfg.window, sizeof(hub_msg *))};
    if (!b.msgs) {
        log_error("amqp: out of memory; events are not published", NULL);
        return NULL;
    }
    load_cursor(p);
    while (!atomic_load(&p->stopping)) {
        if (!p->conn && time_now_ms() >= p->next_attempt_ms) try_connect(p);
        fill(p, &b);
        wait_for_work(p);
        if (p->conn) {
            char why[512];
            if (amqp_conn_confirms(p->conn, 0, on_confirm, p, why, sizeof why) < 0) {
                advance(p);   /* acks read before the failure still count */
                if (p->conn) drop(p, why);
            }
        }
        advance(p);
        save(p, false);
    }
    save(p, true);
    amqp_conn *last = p->conn;
    set_conn(p, NULL);
    amqp_conn_close(last);
    free(b.msgs);
    return NULL;
}

amqp_events *amqp_events_start(db *d, const amqp_events_config *cfg, const char **err)
{
    amqp_events *p = calloc(1, sizeof *p);
    if (!p || cfg->window < 1 || strlen(cfg->exchange) >= sizeof p->exchange ||
        !(p->ring = calloc((size_t)cfg->window, sizeof *p->ring))) {
        *err = "cannot start the AMQP publisher";
        if (p) free(p->ring);
        free(p);
        return NULL;
    }
    p->db = d;
    p->cfg = *cfg;
    snprintf(p->exchange, sizeof p->exchange, "%s", cfg->exchange);
    p->cfg.exchange = p->exchange;
    amqp_conn_url_masked(&cfg->url, p->masked, sizeof p->masked);
    p->backoff_ms = cfg->backoff_min_ms;
    p->conn_fd = -1;
    pthread_mutex_init(&p->fd_lock, NULL);
    if ((p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
        pthread_create(&p->thread, NULL, run, p) != 0) {
        *err = "cannot start the AMQP publisher thread";
        if (p->wake_fd >= 0) close(p->wake_fd);
        pthread_mutex_destroy(&p->fd_lock);
        free(p->ring);
        free(p);
        return NULL;
    }
    return p;
}

void amqp_events_poke(amqp_events *p)
{
    if (!p) return;
    uint64_t one = 1;
    (void)!write(p->wake_fd, &one, sizeof one);
}

void amqp_events_stop(amqp_events *p)
{
    if (!p) return;
    atomic_store(&p->stopping, true);
    amqp_events_poke(p);
    /* A send blocked on a broker that stopped reading would hold the
     * thread (and shutdown) forever: after STOP_GRACE_S, cut the socket;
     * the send fails and the thread ends.  The cursor stays where the
     * confirmations put it. */
    struct timespec grace;
    clock_gettime(CLOCK_REALTIME, &grace);
    grace.tv_sec += STOP_GRACE_S;
    if (pthread_timedjoin_np(p->thread, NULL, &grace) != 0) {
        pthread_mutex_lock(&p->fd_lock);
        if (p->conn_fd >= 0) shutdown(p->conn_fd, SHUT_RDWR);
        pthread_mutex_unlock(&p->fd_lock);
        log_warn("amqp: the broker did not take our messages; connection cut to stop", NULL);
        pthread_join(p->thread, NULL);
    }
    pthread_mutex_destroy(&p->fd_lock);
    close(p->wake_fd);
    memset(&p->cfg.url, 0, sizeof p->cfg.url);   /* the password */
    free(p->ring);
    free(p);
}

void amqp_events_get_stats(amqp_events *p, amqp_events_stats *out)
{
    out->published = atomic_load(&p->published);
    out->failures = atomic_load(&p->failures);
    out->lag = atomic_load(&p->lag);
    out->connected = atomic_load(&p->connected);
}
