/* websocket.c — see websocket.h.
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
 * control frames, then further message frames (flush()); after a close
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
 * connection_memory) for as long as it owns the socket, so take_socket()
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
 * ends when the client's close arrives or at the deadline.  When libwslay
 * stops reading before the client's close arrives (message too big,
 * protocol error) we half-close and drain the socket until the client
 * closes ("linger"): closing a socket with unread input sends a RST, which
 * may destroy our close frame before the client reads it.
 *
 * Shutdown and late handshakes
 * ----------------------------
 * A ws_server is reference counted: one reference for its owner and one per
 * handshake between http_reply_websocket() and the hand-over.  ws_server_stop
 * closes every connection with 1001, waits for the thread, and drops the
 * owner's reference; a hand-over that arrives after the thread finished is
 * closed inline and drops the last reference.
 */
#include "http/websocket.h"
#include "http/ws_outbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <wslay/wslay.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define SWEEP_MS 1000          /* timer resolution */
#define STOP_GRACE_MS 1000     /* how long ws_server_stop waits for close replies */
#define MAX_EVENTS 256
#define LINGER_READS 64        /* reads per wakeup while draining a closing socket */
#define REASON_MAX 123         /* RFC 6455: a close frame's payload is at most 125 bytes */

typedef enum { CONN_OPEN, CONN_CLOSING, CONN_LINGER } conn_state;

struct ws_conn {
    ws_server *srv;
    const ws_handler *h;
    void *arg;

    /* Set by the hand-over, then the ws thread's. */
    http_upgraded *up;             /* NULL: the switch never happened */
    int fd;
    bool own_fd;                   /* fd is our duplicate; up was handed back */
    uint8_t hdr[16];               /* a frame header waiting for its payload */
    size_t hdr_len;
    char *extra;                   /* bytes read by libmicrohttpd past the request */
    size_t extra_len, extra_off;
    ws_conn *inbox_next;

    /* The ws thread's alone. */
    wslay_event_context_ptr ws;
    bool ws_read, ws_write, ws_close_sent;   /* libwslay's state: wslay_look() */
    conn_state state;
    uint32_t events;               /* the epoll mask registered */
    bool failed;                   /* libwslay could not queue: end at once */
    bool recv_failed;              /* on_wslay_recv reported EOF or an error */
    bool proto_error;              /* the client broke the protocol: its close is 1002 */
    uint8_t proto_close_off;       /* bytes of that 1002 frame written (on_wslay_send) */
    uint16_t pending_code;         /* a close waiting for queued messages to go out */
    char *pending_reason;
    ws_outbox sending;             /* messages being written */
    uint64_t heard_ms, pinged_ms, deadline_ms;
    ws_conn *prev, *next;          /* the server's connections */

    /* Shared with other threads: under lock. */
    pthread_mutex_t lock;
    bool accepting;                /* ws_conn_send_* may queue */
    bool in_ready;                 /* on the server's ready list */
    ws_conn *ready_next;           /* (the list itself is under the server's lock) */
    ws_outbox queued;              /* messages the ws thread has not taken yet */
    uint16_t close_code;           /* a close request not yet taken; 0: none */
    bool close_first;              /* ...to go ahead of queued messages (1013) */
    char *close_reason;

    _Atomic size_t queued_bytes;   /* payload in queued + sending */
    _Atomic unsigned queued_count; /* messages in queued: read by the ws thread without the lock */
};

struct ws_server {
    ws_config cfg;
    int epfd, wakefd;
    pthread_t thread;
    _Atomic int nconns;

    pthread_mutex_t lock;
    int refs;                      /* the owner + one per handshake in flight */
    bool stopping;                 /* ws_server_stop() has begun */
    bool thread_done;              /* the ws thread takes no more hand-overs */
    ws_conn *inbox;
    ws_conn *ready_head, *ready_tail;

    /* The ws thread's alone. */
    ws_conn *conns;
    bool stop_begun;
    uint64_t now_ms;               /* the loop's clock, read once per wakeup */
    char scratch[4096];            /* where lingering input is read and dropped */
};

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

static ws_conn *conn_new(ws_server *s, const ws_handler *h, void *arg)
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

static void conn_free(ws_conn *c)
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
static char *reason_copy(const char *reason)
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
    c->close_reason = reason_copy(reason);
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

/* ---------- the ws thread: libwslay callbacks ---------- */

static ssize_t on_wslay_recv(wslay_event_context_ptr ws, uint8_t *buf, size_t len, int flags,
                             void *user)
{
    ws_conn *c = user;
    if (c->extra) {
        size_t n = c->extra_len - c->extra_off;
        if (n > len) n = len;
        memcpy(buf, c->extra + c->extra_off, n);
        c->extra_off += n;
        if (c->extra_off == c->extra_len) {
            free(c->extra);
            c->extra = NULL;
        }
        c->heard_ms = c->srv->now_ms;
        return (ssize_t)n;
    }
    ssize_t n = recv(c->fd, buf, len, 0);
    if (n > 0) {
        c->heard_ms = c->srv->now_ms;
        return n;
    }
    /* EOF before a close frame is an error too: the connection is over. */
    bool later = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
    wslay_event_set_error(ws, later ? WSLAY_ERR_WOULDBLOCK : WSLAY_ERR_CALLBACK_FAILURE);
    if (!later) c->recv_failed = true;
    return -1;
}

/* libwslay answers some protocol errors with an empty close frame (no status):
 * a frame its frame layer rejects (a fragmented or over-long control frame, a
 * 64-bit length with the top bit set) and a close frame with a 1-byte payload.
 * RFC 6455 wants 1002 there (section 7.4.1), so once proto_error is set that
 * frame's two bytes go out as a 1002 close frame instead.  libwslay hears
 * "would block" until all four bytes are written, so it offers the same two
 * bytes again and never sees a count that does not match its frame. */
static ssize_t send_proto_close(wslay_event_context_ptr ws, ws_conn *c)
{
    static const uint8_t frame[] = {0x88, 0x02, 1002 >> 8, 1002 & 0xFF};
    while (c->proto_close_off < sizeof frame) {
        ssize_t n = send(c->fd, frame + c->proto_close_off, sizeof frame - c->proto_close_off,
                         MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            bool later = errno == EAGAIN || errno == EWOULDBLOCK;
            wslay_event_set_error(ws, later ? WSLAY_ERR_WOULDBLOCK : WSLAY_ERR_CALLBACK_FAILURE);
            return -1;
        }
        c->proto_close_off += (uint8_t)n;
    }
    return 2;   /* libwslay's empty close frame, as far as it knows */
}

/* libwslay hands over a frame (here: a control frame) as two sends, the
 * header with MSG_MORE and then the payload.  The header is kept here
 * (reported as sent) and goes out with the payload in one sendmsg(); header
 * bytes a short write left behind go first next time, so the stream stays
 * exact. */
static ssize_t on_wslay_send(wslay_event_context_ptr ws, const uint8_t *data, size_t len,
                             int flags, void *user)
{
    ws_conn *c = user;
    /* An empty close frame goes out as one 2-byte send; hdr is empty then
     * (it only holds a header whose payload is still to come). */
    if (c->proto_error && len == 2 && data[0] == 0x88 && data[1] == 0x00 && c->hdr_len == 0)
        return send_proto_close(ws, c);
    if ((flags & WSLAY_MSG_MORE) && c->hdr_len + len <= sizeof c->hdr) {
        memcpy(c->hdr + c->hdr_len, data, len);
        c->hdr_len += len;
        return (ssize_t)len;
    }
    struct iovec iov[2] = {{c->hdr, c->hdr_len}, {(void *)data, len}};
    struct msghdr msg = {.msg_iov = c->hdr_len ? iov : iov + 1, .msg_iovlen = c->hdr_len ? 2 : 1};
    ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | ((flags & WSLAY_MSG_MORE) ? MSG_MORE : 0));
    if (n < 0) {
        bool later = errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        wslay_event_set_error(ws, later ? WSLAY_ERR_WOULDBLOCK : WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    size_t from_hdr = (size_t)n < c->hdr_len ? (size_t)n : c->hdr_len;
    memmove(c->hdr, c->hdr + from_hdr, c->hdr_len - from_hdr);
    c->hdr_len -= from_hdr;
    if ((size_t)n == from_hdr && len > 0) {   /* no payload byte went: try again later */
        wslay_event_set_error(ws, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    return n - (ssize_t)from_hdr;
}

/* Reads libwslay's state after every call into it; in between it cannot
 * change.  A fan-out writes outside libwslay, and asking it each time was a
 * cache miss per message (its context is a separate 8 KiB allocation). */
static void wslay_look(ws_conn *c)
{
    c->ws_read = wslay_event_want_read(c->ws);
    c->ws_write = wslay_event_want_write(c->ws);
    c->ws_close_sent = wslay_event_get_close_sent(c->ws);
}

static void set_accepting(ws_conn *c, bool on)
{
    pthread_mutex_lock(&c->lock);
    c->accepting = on;
    pthread_mutex_unlock(&c->lock);
}

static void set_deadline(ws_conn *c, uint64_t ms)
{
    uint64_t at = c->srv->now_ms + ms;
    if (!c->deadline_ms || at < c->deadline_ms) c->deadline_ms = at;
}

static uint64_t close_timeout_ms(const ws_server *s)
{
    return (uint64_t)s->cfg.pong_timeout * 1000;
}

/* Messages not yet written are dropped (a close goes ahead of them), all but
 * a partly written frame, which must be finished. */
static void drop_messages(ws_conn *c)
{
    size_t n = ws_outbox_drop(&c->sending);
    pthread_mutex_lock(&c->lock);
    n += ws_outbox_drop(&c->queued);
    atomic_store(&c->queued_count, 0);
    pthread_mutex_unlock(&c->lock);
    atomic_fetch_sub(&c->queued_bytes, n);
}

/* Starts our side of the close handshake.  first: ahead of queued messages
 * (they are dropped); otherwise once they are written. */
static void begin_close(ws_conn *c, uint16_t code, const char *reason, bool first,
                        uint64_t timeout_ms)
{
    if (c->state == CONN_LINGER) return;
    if (c->state == CONN_OPEN) set_accepting(c, false);
    c->state = CONN_CLOSING;
    set_deadline(c, timeout_ms);
    if (!first) {
        if (c->pending_code) return;   /* one close is enough */
        c->pending_code = code;
        c->pending_reason = reason_copy(reason);
        return;
    }
    free(c->pending_reason);
    c->pending_reason = NULL;
    c->pending_code = 0;
    drop_messages(c);
    size_t n = reason ? strnlen(reason, REASON_MAX) : 0;
    int rc = wslay_event_queue_close(c->ws, code, (const uint8_t *)reason, n);
    wslay_look(c);
    if (rc != 0 && rc != WSLAY_ERR_NO_MORE_MSG) c->failed = true;   /* out of memory */
}

/* libwslay queued a close of its own (an answer, or its reply to a protocol
 * error): nothing more may be sent but that close. */
static void stop_sending(ws_conn *c)
{
    if (c->state == CONN_OPEN) set_accepting(c, false);
    drop_messages(c);
    if (c->state != CONN_LINGER) c->state = CONN_CLOSING;
    set_deadline(c, close_timeout_ms(c->srv));
}

static void on_wslay_msg(wslay_event_context_ptr ws, const struct wslay_event_on_msg_recv_arg *m,
                         void *user)
{
    ws_conn *c = user;
    if (m->opcode == WSLAY_CONNECTION_CLOSE) {
        /* libwslay has queued the answer; nothing more may be sent.  A
         * 1-byte payload is neither "no status" nor a status: 1002. */
        if (m->msg_length == 1) c->proto_error = true;
        stop_sending(c);
    } else if (m->opcode == WSLAY_BINARY_FRAME) {
        begin_close(c, 1003, "only text messages are accepted", true,
                    close_timeout_ms(c->srv));
    } else if (m->opcode == WSLAY_TEXT_FRAME && c->state == CONN_OPEN && c->h->on_text) {
        c->h->on_text(c->arg, c, m->msg ? (const char *)m->msg : "", m->msg_length);
    }
}

static const struct wslay_event_callbacks wslay_callbacks = {
    .recv_callback = on_wslay_recv,
    .send_callback = on_wslay_send,
    .on_msg_recv_callback = on_wslay_msg,
};

/* ---------- the ws thread: connection life ---------- */

static void ready_unlink(ws_server *s, ws_conn *c)
{
    pthread_mutex_lock(&s->lock);
    ws_conn *prev = NULL;
    for (ws_conn *x = s->ready_head; x; prev = x, x = x->ready_next) {
        if (x != c) continue;
        if (prev) prev->ready_next = c->ready_next;
        else s->ready_head = c->ready_next;
        if (s->ready_tail == c) s->ready_tail = prev;
        break;
    }
    pthread_mutex_unlock(&s->lock);
}

/* Memory: libmicrohttpd keeps an upgraded connection's whole buffer pool
 * (--connection-memory, 64 KiB by default, half of it touched) until the
 * socket is handed back.  So we keep a duplicate of the descriptor and hand
 * the original back at once: libmicrohttpd frees its side (and stops
 * counting it against --max-connections) while the TCP connection lives
 * on through our duplicate, costing only what websocket.c allocates. */
static void take_socket(ws_conn *c)
{
    int own = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
    if (own < 0) return;   /* keep using libmicrohttpd's */
    http_upgraded_close(c->up);
    c->fd = own;
    c->own_fd = true;
}

static void release_socket(ws_conn *c)
{
    if (c->own_fd) close(c->fd);
    else http_upgraded_close(c->up);
}

/* The end, whatever the cause: the socket goes back to libmicrohttpd, the
 * handler hears on_close, c is freed. */
static void conn_teardown(ws_server *s, ws_conn *c)
{
    pthread_mutex_lock(&c->lock);
    c->accepting = false;
    bool ready = c->in_ready;
    c->in_ready = false;
    pthread_mutex_unlock(&c->lock);
    if (ready) ready_unlink(s, c);
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    if (c->up) {
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);   /* before the fd can be reused */
        release_socket(c);
    }
    c->h->on_close(c->arg, c);
    atomic_fetch_sub(&s->nconns, 1);
    conn_free(c);
}

static void conn_watch(ws_server *s, ws_conn *c, uint32_t events)
{
    if (events == c->events) return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0) c->events = events;
}

/* libwslay stopped reading before the client's close: half-close and drain
 * until the client closes too (see the top of the file). */
static void conn_linger(ws_server *s, ws_conn *c)
{
    shutdown(c->fd, SHUT_WR);
    c->state = CONN_LINGER;
    set_deadline(c, close_timeout_ms(s));
    conn_watch(s, c, EPOLLIN);
}

static void linger_read(ws_server *s, ws_conn *c)
{
    for (int i = 0; i < LINGER_READS; i++) {
        ssize_t n = recv(c->fd, s->scratch, sizeof s->scratch, 0);
        if (n > 0) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        conn_teardown(s, c);   /* the client closed (or failed) */
        return;
    }
}

/* Caller holds c->lock; c->sending is empty. */
static void take_queued_locked(ws_conn *c)
{
    ws_outbox_swap(&c->sending, &c->queued);
    atomic_store(&c->queued_count, 0);
}

/* Writes message frames until none is left or the socket is full.  A message
 * queued after queued_count reads 0 is not left behind: it finds c on the
 * ready list, or puts it there (in_ready is cleared before c is served). */
static ws_outbox_result write_messages(ws_conn *c, unsigned max_frames)
{
    for (;;) {
        if (c->sending.count == 0) {
            if (atomic_load(&c->queued_count) == 0) return WS_OUTBOX_DONE;
            pthread_mutex_lock(&c->lock);
            take_queued_locked(c);
            pthread_mutex_unlock(&c->lock);
        }
        size_t done;
        ws_outbox_result r = ws_outbox_write(&c->sending, c->fd, max_frames, &done);
        atomic_fetch_sub(&c->queued_bytes, done);
        if (r != WS_OUTBOX_DONE || max_frames != UINT_MAX) return r;
    }
}

/* Writes what can be written, in stream order: the rest of a partly written
 * message frame, libwslay's frames, then more messages (none after a close).
 * *blocked: the socket is full and something waits.  false: it failed. */
static bool flush(ws_conn *c, bool *blocked)
{
    *blocked = false;
    ws_outbox_result r = WS_OUTBOX_DONE;
    if (c->sending.off > 0) r = write_messages(c, 1);
    if (r == WS_OUTBOX_DONE && c->ws_write) {
        int rc = wslay_event_send(c->ws);
        wslay_look(c);
        if (rc != 0) return false;
        if (c->ws_write) r = WS_OUTBOX_BLOCKED;
    }
    if (r == WS_OUTBOX_DONE && !c->ws_close_sent) r = write_messages(c, UINT_MAX);
    *blocked = r == WS_OUTBOX_BLOCKED;
    return r != WS_OUTBOX_FAILED;
}

/* After anything happened to c: write what can be written, then either
 * watch the socket for what libwslay wants next or end the connection. */
static void conn_settle(ws_server *s, ws_conn *c)
{
    if (c->state == CONN_LINGER) return;
    bool blocked;
    if (c->failed || !flush(c, &blocked)) {
        conn_teardown(s, c);
        return;
    }
    /* A close that waits for the messages before it (no more can come:
     * the close request stopped accepting). */
    if (c->pending_code && !blocked && c->sending.count == 0 &&
        atomic_load(&c->queued_count) == 0) {
        char *reason = c->pending_reason;
        c->pending_reason = NULL;
        begin_close(c, c->pending_code, reason, true, close_timeout_ms(s));
        free(reason);
        if (c->failed || !flush(c, &blocked)) {
            conn_teardown(s, c);
            return;
        }
    }
    bool r = c->ws_read, w = blocked;
    if (r || w) {
        conn_watch(s, c, (r ? EPOLLIN : 0u) | (w ? EPOLLOUT : 0u));
    } else if (c->ws_close_sent && !wslay_event_get_close_received(c->ws)) {
        conn_linger(s, c);
    } else {
        conn_teardown(s, c);
    }
}

static void conn_io(ws_server *s, ws_conn *c, uint32_t events)
{
    if (c->state == CONN_LINGER) {
        linger_read(s, c);
        return;
    }
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && c->ws_read) {
        int rc = wslay_event_recv(c->ws);
        wslay_look(c);
        if (rc == WSLAY_ERR_CALLBACK_FAILURE && !c->recv_failed) {
            /* Not our callback: libwslay's frame layer rejected a frame
             * (WSLAY_ERR_PROTO, which wslay_event_recv reports this way).
             * It stopped reading and queued an empty close: send 1002. */
            c->proto_error = true;
            stop_sending(c);
        } else if (rc != 0) {
            conn_teardown(s, c);   /* read error or EOF without a close frame */
            return;
        }
    }
    conn_settle(s, c);
}

/* Takes c's new messages (when nothing is being written: one lock for both)
 * and a close request, then writes. */
static void conn_take_requests(ws_server *s, ws_conn *c)
{
    pthread_mutex_lock(&c->lock);
    c->in_ready = false;
    if (c->sending.count == 0) take_queued_locked(c);
    uint16_t code = c->close_code;
    bool first = c->close_first;
    char *reason = c->close_reason;
    c->close_code = 0;
    c->close_reason = NULL;
    pthread_mutex_unlock(&c->lock);
    if (code) begin_close(c, code, reason, first, close_timeout_ms(s));
    free(reason);
    conn_settle(s, c);
}

/* A hand-over from the inbox: the connection joins the epoll set. */
static void conn_register(ws_server *s, ws_conn *c)
{
    atomic_fetch_add(&s->nconns, 1);
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    c->heard_ms = s->now_ms;
    if (!c->up) {   /* the client left before the switch */
        conn_teardown(s, c);
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int fl = fcntl(c->fd, F_GETFL);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
        wslay_event_context_server_init(&c->ws, &wslay_callbacks, c) != 0 ||
        epoll_ctl(s->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        conn_teardown(s, c);
        return;
    }
    c->events = EPOLLIN;
    wslay_event_config_set_max_recv_msg_length(c->ws, s->cfg.max_message);
    wslay_look(c);
    c->h->on_open(c->arg, c);
    if (s->stop_begun) begin_close(c, 1001, "server stopping", true, STOP_GRACE_MS);
    if (c->extra) conn_io(s, c, EPOLLIN);   /* a frame came with the handshake */
    else conn_settle(s, c);
}

/* ---------- the ws thread: the loop ---------- */

static void sweep(ws_server *s)
{
    uint64_t now = s->now_ms;
    uint64_t ping_ms = (uint64_t)s->cfg.ping_interval * 1000;
    uint64_t pong_ms = (uint64_t)s->cfg.pong_timeout * 1000;
    for (ws_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        /* Timed from the ping, not from the silence: with a 1 s sweep, a
         * connection must not be dropped before it was ever pinged. */
        bool unanswered = c->pinged_ms > c->heard_ms;
        if (c->deadline_ms && now >= c->deadline_ms) {
            conn_teardown(s, c);
        } else if (c->state == CONN_OPEN && unanswered && now - c->pinged_ms >= pong_ms) {
            conn_teardown(s, c);   /* silent for too long: presumably gone */
        } else if (c->state == CONN_OPEN && now - c->heard_ms >= ping_ms &&
                   now - c->pinged_ms >= ping_ms) {
            struct wslay_event_msg ping = {WSLAY_PING, NULL, 0};
            if (wslay_event_queue_msg(c->ws, &ping) != 0) c->failed = true;
            wslay_look(c);
            c->pinged_ms = now;
            conn_settle(s, c);
        }
    }
}

static void begin_stop(ws_server *s)
{
    s->stop_begun = true;
    for (ws_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == CONN_LINGER) set_deadline(c, STOP_GRACE_MS);
        else begin_close(c, 1001, "server stopping", true, STOP_GRACE_MS);
        conn_settle(s, c);
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
        conn_take_requests(s, c);
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
                conn_io(s, evs[i].data.ptr, evs[i].events);
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
            conn_register(s, c);
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

/* ---------- the handshake (HTTP threads) ---------- */

/* value is a comma-separated list containing token (case-insensitive). */
static bool has_token(const char *value, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = value; p && *p;) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, ",");
        size_t end = len;
        while (end > 0 && (p[end - 1] == ' ' || p[end - 1] == '\t')) end--;
        if (end == n && strncasecmp(p, token, n) == 0) return true;
        p += len;
    }
    return false;
}

/* 24 base64 characters ending in "==" decode to exactly 16 bytes. */
static bool key_is_valid(const char *key)
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    return key && strlen(key) == 24 && strspn(key, b64) == 22 && strcmp(key + 22, "==") == 0;
}

/* base64(SHA-1(key + GUID)), RFC 6455 section 4.2.2. */
static bool accept_value(const char *key, char out[29])
{
    char joined[24 + sizeof WS_GUID];
    memcpy(joined, key, 24);
    memcpy(joined + 24, WS_GUID, sizeof WS_GUID);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(joined, strlen(joined), md, &mdlen, EVP_sha1(), NULL) || mdlen != 20)
        return false;
    EVP_EncodeBlock((unsigned char *)out, md, 20);   /* 28 characters and a NUL */
    return true;
}

/* NULL for a valid handshake; else why not, with the status to answer. */
static const char *handshake_problem(http_req *r, int *status)
{
    *status = 400;
    const char *upgrade = http_req_header(r, "Upgrade");
    const char *connection = http_req_header(r, "Connection");
    const char *length = http_req_header(r, "Content-Length");
    if (strcmp(http_req_method(r), "GET") != 0) return "a WebSocket handshake is a GET";
    if (!upgrade || !has_token(upgrade, "websocket") || !connection ||
        !has_token(connection, "upgrade"))
        return "this is a WebSocket endpoint: send 'Upgrade: websocket' and "
               "'Connection: Upgrade'";
    if ((length && strcmp(length, "0") != 0) || http_req_header(r, "Transfer-Encoding"))
        return "a WebSocket handshake has no body";
    const char *version = http_req_header(r, "Sec-WebSocket-Version");
    if (!version) return "Sec-WebSocket-Version is missing";
    if (strcmp(version, "13") != 0) {
        *status = 426;
        return "only WebSocket version 13 is supported";
    }
    if (!key_is_valid(http_req_header(r, "Sec-WebSocket-Key")))
        return "Sec-WebSocket-Key must be 16 bytes in base64";
    return NULL;
}

/* libmicrohttpd sent the 101 (or the client left first): over to the ws
 * thread, or, if that thread is gone, closed here. */
static void on_switched(void *cls, http_upgraded *u, int fd, const char *extra,
                        size_t extra_len)
{
    ws_conn *c = cls;
    ws_server *s = c->srv;
    c->up = u;
    c->fd = fd;
    if (u) take_socket(c);
    if (u && extra_len > 0) {
        c->extra = malloc(extra_len);
        if (c->extra) {
            memcpy(c->extra, extra, extra_len);
            c->extra_len = extra_len;
        } else {   /* cannot keep the client's first bytes: the stream is unusable */
            release_socket(c);
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
            release_socket(c);
        }
        c->h->on_close(c->arg, c);
        conn_free(c);
    } else {
        wake(s);
    }
    server_unref(s);
}

bool http_reply_websocket(http_req *r, ws_server *s, const ws_handler *h, void *arg)
{
    int status;
    const char *problem = handshake_problem(r, &status);
    if (problem) {
        http_reply_error(r, status, status == 426 ? "upgrade_required" : "bad_handshake", "%s",
                         problem);
        if (status == 426) http_reply_header(r, "Sec-WebSocket-Version", "13");
        return false;
    }
    char accept[29];
    ws_conn *c = accept_value(http_req_header(r, "Sec-WebSocket-Key"), accept)
                     ? conn_new(s, h, arg) : NULL;
    if (!c) {
        http_reply_error(r, 500, "internal", "out of memory");
        return false;
    }
    if (!server_ref(s)) {
        conn_free(c);
        http_reply_error(r, 503, "shutting_down", "the server is shutting down");
        return false;
    }
    if (!http_reply_upgrade(r, "websocket", on_switched, c)) {
        conn_free(c);
        server_unref(s);
        http_reply_error(r, 500, "internal", "out of memory");
        return false;
    }
    http_reply_header(r, "Sec-WebSocket-Accept", accept);
    return true;
}
