/* websocket.c — see websocket.h.
 *
 * Files
 * -----
 * websocket.c     the server: its thread and loop, the mailboxes other
 *                 threads fill (ws_conn_send_*, ws_conn_close), start, stop
 *                 and the hand-over after the 101;
 * ws_conn.c       one connection's life on the ws thread: libwslay's
 *                 callbacks, writing in stream order, closing, timers;
 * ws_handshake.c  checking the upgrade request, Sec-WebSocket-Accept;
 * ws_outbox.c     the queues of shared messages and their framing;
 * ws_internal.h   the structs the first two share.
 * The rules below hold across all of them.
 *
 * Threads and ownership
 * ---------------------
 * One thread (the "ws thread") owns every connection's socket and libwslay
 * context; no other thread ever calls into libwslay.  That keeps libwslay
 * free of locks and keeps handler callbacks free of our locks, so a handler
 * may take its own locks in on_text/on_close without any ordering rule
 * against ours.
 *
 * Other threads reach a connection through two small locked mailboxes:
 *
 *   server inbox   sockets handed over by the HTTP threads after the 101
 *                  (on_switched), registered by the ws thread;
 *   conn outbox    text messages (`queued`) and a close request from
 *                  ws_conn_send_*() / ws_conn_close().  A connection with
 *                  something in its outbox sits once on the server's ready
 *                  list; the ws thread swaps `queued` with its own
 *                  `sending` queue when that one is empty.
 *
 * Both wake the ws thread through one eventfd in its epoll set.  Lock order
 * is conn->lock, then server->lock; the ws thread never holds server->lock
 * while taking a conn lock, and never holds any lock while calling a handler.
 *
 * Messages are not copied per connection: the queues hold references
 * (ws_outbox.h) and the ws thread writes frames straight from the shared
 * bytes, outside libwslay, which frames only what it makes itself: pongs,
 * pings and close frames.  The two never interleave inside a frame: the
 * rest of a partly written message frame goes first, then libwslay's
 * control frames, then further message frames (flush() in ws_conn.c); after a close
 * frame, no message.  Queued bytes (`queued_bytes`, messages not yet
 * completely written) are added by senders under conn->lock and taken off
 * by the ws thread as frames complete, so a sender's check against
 * max_queued_bytes can only overestimate.
 *
 * The ws thread
 * -------------
 * epoll, level-triggered: EPOLLIN while libwslay wants to read, EPOLLOUT
 * while it has something to write; epoll_ctl only when that changes.  A
 * connection is done when libwslay wants neither.  Reads go straight into
 * libwslay's own 4 KiB frame buffer, so an idle connection costs its
 * libwslay context (about 8.5 KiB, two 4 KiB buffers) plus ~250 bytes here —
 * no per-connection buffers of our own.  Bytes libmicrohttpd read past the
 * request (a client may send its first frame with the handshake) are kept
 * in a right-sized copy and fed to libwslay before the socket.
 *
 * Measured RSS per idle connection: about 10 KiB (5,000 connections;
 * libwslay's context 8.5, the ws_conn 0.3).  libmicrohttpd would keep the
 * connection and its whole memory pool (47 KiB at the default 64 KiB
 * connection_memory) for as long as it owns the socket, so ws_conn_take_socket()
 * keeps a duplicate descriptor and hands the original back right after the
 * switch.
 *
 * Once a second the thread sweeps every connection for timers (pings, the
 * silence limit, close deadlines).  A linear sweep over 10,000 connections
 * is a few microseconds; no timer wheel needed.
 *
 * Closing
 * -------
 * A close from the client is answered by libwslay, and the connection ends
 * when the answer is written.  A close from us is queued in libwslay (it
 * goes ahead of queued messages, except for ws_conn_close(), which waits
 * until the messages queued before it are written); the connection then
 * ends when the client's close arrives or at the deadline.  The deadline is
 * two-step: a close frame that cannot be written yet (a slow consumer's
 * 1013 waits behind the bytes the socket already holds) keeps the
 * connection open for close_grace, so a client that reads again within it
 * still learns why it was cut off; once the frame is written, the client
 * has pong_timeout to answer (wslay_look in ws_conn.c).  When libwslay
 * stops reading before the client's close arrives (message too big,
 * protocol error) we half-close and drain the socket until the client
 * closes ("linger"): closing a socket with unread input sends a RST, which
 * may destroy our close frame before the client reads it.  Protocol errors
 * libwslay answers with an empty close (a frame its frame layer rejects, a
 * 1-byte close payload) go out as 1002 instead (send_proto_close).
 *
 * Shutdown and late handshakes
 * ----------------------------
 * A ws_server is reference counted: one reference for its owner and one per
 * handshake between http_reply_websocket() and the hand-over.  ws_server_stop
 * closes every connection with 1001, waits for the thread, and drops the
 * owner's reference; a hand-over that arrives after the thread finished is
 * closed inline and drops the last reference.
 */
#include "http/ws_internal.h"
#include "http/ws_handshake.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 256

static uint64_t clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void wake(ws_server *s)
{
    uint64_t one = 1;
    ssize_t n = write(s->wakefd, &one, sizeof one);
    (void)n;   /* EAGAIN only when the counter is already huge: the thread is awake */
}

/* ---------- server references ---------- */

static void server_free(ws_server *s)
{
    if (s->epfd >= 0) close(s->epfd);
    if (s->wakefd >= 0) close(s->wakefd);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* A handshake in flight keeps s alive; false once stopping. */
static bool server_ref(ws_server *s)
{
    pthread_mutex_lock(&s->lock);
    bool ok = !s->stopping;
    if (ok) s->refs++;
    pthread_mutex_unlock(&s->lock);
    return ok;
}

static void server_unref(ws_server *s)
{
    pthread_mutex_lock(&s->lock);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&s->lock);
    if (last) server_free(s);
}

/* ---------- connections: memory ---------- */

ws_conn *ws_conn_new(ws_server *s, const ws_handler *h, void *arg)
{
    ws_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->srv = s;
    c->h = h;
    c->arg = arg;
    c->fd = -1;
    c->accepting = true;
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void ws_conn_free(ws_conn *c)
{
    ws_outbox_free(&c->queued);
    ws_outbox_free(&c->sending);
    if (c->ws) wslay_event_context_free(c->ws);
    free(c->extra);
    free(c->pending_reason);
    free(c->close_reason);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* A copy of reason cut to REASON_MAX bytes without splitting a UTF-8
 * sequence (the client validates it).  NULL for none or out of memory. */
char *ws_reason_copy(const char *reason)
{
    if (!reason || !*reason) return NULL;
    size_t n = strnlen(reason, REASON_MAX + 1);
    if (n > REASON_MAX) {
        n = REASON_MAX;
        while (n > 0 && ((unsigned char)reason[n] & 0xC0) == 0x80) n--;
    }
    return strndup(reason, n);
}

/* ---------- other threads: the outbox ---------- */

/* Caller holds c->lock.  True when the ws thread needs waking: only when
 * the ready list was empty, since drain_ready() runs until it is empty —
 * a 10,000-listener fan-out costs one wake-up, not 10,000. */
static bool mark_ready_locked(ws_conn *c)
{
    if (c->in_ready) return false;
    c->in_ready = true;
    ws_server *s = c->srv;
    pthread_mutex_lock(&s->lock);
    bool was_empty = s->ready_head == NULL;
    c->ready_next = NULL;
    if (s->ready_tail) s->ready_tail->ready_next = c;
    else s->ready_head = c;
    s->ready_tail = c;
    pthread_mutex_unlock(&s->lock);
    return was_empty;
}

/* Caller holds c->lock. */
static bool request_close_locked(ws_conn *c, uint16_t code, const char *reason, bool first)
{
    c->accepting = false;
    c->close_code = code;
    c->close_first = first;
    c->close_reason = ws_reason_copy(reason);
    return mark_ready_locked(c);
}

/* take_ref: call m->ops->ref once queued (a shared message); otherwise the
 * queue takes over the caller's only reference. */
static bool enqueue(ws_conn *c, const ws_out *m, bool take_ref)
{
    bool queued = false, wake_it = false;
    pthread_mutex_lock(&c->lock);
    if (!c->accepting) {
        /* closing or closed */
    } else if (atomic_load(&c->queued_bytes) + m->len > c->srv->cfg.max_queued_bytes) {
        wake_it = request_close_locked(c, 1013, "send queue full", true);
    } else if (ws_outbox_push(&c->queued, m)) {
        if (take_ref) m->ops->ref(m->owner);   /* before the ws thread can see m */
        atomic_fetch_add(&c->queued_bytes, m->len);
        atomic_fetch_add(&c->queued_count, 1);
        queued = true;
        wake_it = mark_ready_locked(c);
    }
    pthread_mutex_unlock(&c->lock);
    if (wake_it) wake(c->srv);
    return queued;
}

bool ws_conn_send_shared(ws_conn *c, const char *data, size_t len, const ws_shared_ops *ops,
                         void *owner)
{
    ws_out m = {data, len, ops, owner};
    return enqueue(c, &m, true);
}

static void unref_copy(void *copy) { free(copy); }
static const ws_shared_ops copy_ops = {NULL, unref_copy};

bool ws_conn_send_text(ws_conn *c, const char *data, size_t len)
{
    char *copy = malloc(len ? len : 1);
    if (!copy) return false;
    memcpy(copy, data, len);
    ws_out m = {copy, len, &copy_ops, copy};
    if (enqueue(c, &m, false)) return true;
    free(copy);
    return false;
}

/* Codes an endpoint may send (RFC 6455 section 7.4 and the IANA registry);
 * 1005 and 1006 only ever describe a close, and 0 would mean "no close". */
static bool code_is_sendable(uint16_t code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

void ws_conn_close(ws_conn *c, uint16_t code, const char *reason)
{
    if (!code_is_sendable(code)) code = 1000;
    bool wake_it = false;
    pthread_mutex_lock(&c->lock);
    if (c->accepting) wake_it = request_close_locked(c, code, reason, false);
    pthread_mutex_unlock(&c->lock);
    if (wake_it) wake(c->srv);
}

/* ---------- the ws thread: the loop ---------- */

static void sweep(ws_server *s)
{
    for (ws_conn *c = s->conns, *next; c; c = next) {
        next = c->next;   /* c may be freed */
        ws_conn_tick(s, c);
    }
}

static void begin_stop(ws_server *s)
{
    s->stop_begun = true;
    for (ws_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        ws_conn_stop(s, c);
    }
}

/* Takes the inbox; true when the thread should begin stopping. */
static bool take_inbox(ws_server *s, ws_conn **inbox)
{
    pthread_mutex_lock(&s->lock);
    *inbox = s->inbox;
    s->inbox = NULL;
    bool stopping = s->stopping;
    pthread_mutex_unlock(&s->lock);
    return stopping;
}

static void drain_ready(ws_server *s)
{
    for (;;) {
        pthread_mutex_lock(&s->lock);
        ws_conn *c = s->ready_head;
        if (c) {
            s->ready_head = c->ready_next;
            if (!s->ready_head) s->ready_tail = NULL;
        }
        pthread_mutex_unlock(&s->lock);
        if (!c) return;
        ws_conn_take_requests(s, c);
    }
}

/* The thread may end once stopping left no connection; a hand-over racing
 * with that is seen here under the lock, or handled inline by on_switched. */
static bool try_finish(ws_server *s)
{
    if (!s->stop_begun || s->conns) return false;
    pthread_mutex_lock(&s->lock);
    bool done = s->inbox == NULL;
    s->thread_done = done;
    pthread_mutex_unlock(&s->lock);
    return done;
}

static void *ws_thread(void *arg)
{
    ws_server *s = arg;
    struct epoll_event evs[MAX_EVENTS];
    s->now_ms = clock_ms();
    uint64_t next_sweep = s->now_ms + SWEEP_MS;
    while (!try_finish(s)) {
        int timeout = next_sweep > s->now_ms ? (int)(next_sweep - s->now_ms) : 0;
        int n = epoll_wait(s->epfd, evs, MAX_EVENTS, timeout);
        s->now_ms = clock_ms();
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr) {
                ws_conn_io(s, evs[i].data.ptr, evs[i].events);
            } else {
                uint64_t count;
                ssize_t r = read(s->wakefd, &count, sizeof count);
                (void)r;
            }
        }
        ws_conn *inbox;
        bool stopping = take_inbox(s, &inbox);
        while (inbox) {
            ws_conn *c = inbox;
            inbox = c->inbox_next;
            ws_conn_register(s, c);
        }
        drain_ready(s);
        if (stopping && !s->stop_begun) {
            begin_stop(s);
            next_sweep = s->now_ms + SWEEP_MS / 10;
        }
        if (s->now_ms >= next_sweep) {
            sweep(s);
            /* Stopping has deadlines of its own; look at them more often. */
            next_sweep = s->now_ms + (s->stop_begun ? SWEEP_MS / 10 : SWEEP_MS);
        }
    }
    return NULL;
}

/* ---------- start and stop ---------- */

ws_server *ws_server_start(const ws_config *cfg, const char **err)
{
    ws_server *s = calloc(1, sizeof *s);
    if (!s) { *err = "out of memory"; return NULL; }
    if (cfg) s->cfg = *cfg;
    if (!s->cfg.ping_interval) s->cfg.ping_interval = 30;
    if (!s->cfg.pong_timeout) s->cfg.pong_timeout = 10;
    if (!s->cfg.close_grace) s->cfg.close_grace = 30;
    if (!s->cfg.max_queued_bytes) s->cfg.max_queued_bytes = 1u << 20;
    if (!s->cfg.max_message) s->cfg.max_message = 64u << 10;
    s->refs = 1;
    pthread_mutex_init(&s->lock, NULL);
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (s->epfd < 0 || s->wakefd < 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wakefd, &ev) != 0) {
        *err = "cannot create the WebSocket event loop";
        server_free(s);
        return NULL;
    }
    if (pthread_create(&s->thread, NULL, ws_thread, s) != 0) {
        *err = "cannot start the WebSocket thread";
        server_free(s);
        return NULL;
    }
    return s;
}

void ws_server_stop(ws_server *s)
{
    pthread_mutex_lock(&s->lock);
    bool already = s->stopping;
    s->stopping = true;
    pthread_mutex_unlock(&s->lock);
    if (already) return;   /* one caller joins; stopping twice is harmless */
    wake(s);
    pthread_join(s->thread, NULL);
}

void ws_server_free(ws_server *s)
{
    if (s) server_unref(s);
}

int ws_server_connections(ws_server *s) { return atomic_load(&s->nconns); }

/* ---------- the hand-over (HTTP threads) ---------- */

/* libmicrohttpd sent the 101 (or the client left first): over to the ws
 * thread, or, if that thread is gone, closed here. */
static void on_switched(void *cls, http_upgraded *u, int fd, const char *extra,
                        size_t extra_len)
{
    ws_conn *c = cls;
    ws_server *s = c->srv;
    c->up = u;
    c->fd = fd;
    if (u) ws_conn_take_socket(c);
    if (u && extra_len > 0) {
        c->extra = malloc(extra_len);
        if (c->extra) {
            memcpy(c->extra, extra, extra_len);
            c->extra_len = extra_len;
        } else {   /* cannot keep the client's first bytes: the stream is unusable */
            ws_conn_release_socket(c);
            c->up = NULL;
        }
    }
    pthread_mutex_lock(&s->lock);
    bool inline_close = s->thread_done;
    if (!inline_close) {
        c->inbox_next = s->inbox;
        s->inbox = c;
    }
    pthread_mutex_unlock(&s->lock);
    if (inline_close) {
        c->accepting = false;   /* no other thread has c yet: no lock needed */
        if (c->up) {
            /* The server stopped between the 101 and this hand-over: say
             * "going away" (1001) like to every other connection, rather
             * than drop it (the client would see 1006). */
            static const unsigned char going_away[] = {0x88, 0x02, 0x03, 0xe9};
            (void)!send(c->fd, going_away, sizeof going_away, MSG_NOSIGNAL | MSG_DONTWAIT);
            ws_conn_release_socket(c);
        }
        c->h->on_close(c->arg, c);
        ws_conn_free(c);
    } else {
        wake(s);
    }
    server_unref(s);
}

bool http_reply_websocket(http_req *r, ws_server *s, const ws_handler *h, void *arg)
{
    int status;
    const char *problem = ws_handshake_problem(r, &status);
    if (problem) {
        http_reply_error(r, status, status == 426 ? "upgrade_required" : "bad_handshake", "%s",
                         problem);
        if (status == 426) http_reply_header(r, "Sec-WebSocket-Version", "13");
        return false;
    }
    char accept[29];
    ws_conn *c = ws_handshake_accept(http_req_header(r, "Sec-WebSocket-Key"), accept)
                     ? ws_conn_new(s, h, arg) : NULL;
    if (!c) {
        http_reply_error(r, 500, "internal", "out of memory");
        return false;
    }
    if (!server_ref(s)) {
        ws_conn_free(c);
        http_reply_error(r, 503, "shutting_down", "the server is shutting down");
        return false;
    }
    if (!http_reply_upgrade(r, "websocket", on_switched, c)) {
        ws_conn_free(c);
        server_unref(s);
        http_reply_error(r, 500, "internal", "out of memory");
        return false;
    }
    http_reply_header(r, "Sec-WebSocket-Accept", accept);
    return true;
}
