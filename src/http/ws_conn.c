/* ws_conn.c — one WebSocket connection's life on the ws thread: libwslay's
 * callbacks, writing in stream order, closing, timers.  The rules it keeps
 * (threads, frame order, closing and lingering) are written atop
 * websocket.c, which owns the thread and calls in here; shared structs are in
 * ws_internal.h. */
#include "http/ws_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

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

/* How long a close frame of ours may wait for a client that does not read
 * (a slow consumer's 1013 waits behind what the socket already holds). */
static uint64_t close_grace_ms(const ws_server *s)
{
    return (uint64_t)s->cfg.close_grace * 1000;
}

/* Reads libwslay's state after every call into it; in between it cannot
 * change.  A fan-out writes outside libwslay, and asking it each time was a
 * cache miss per message (its context is a separate 8 KiB allocation). */
static void wslay_look(ws_conn *c)
{
    bool was_sent = c->ws_close_sent;
    c->ws_read = wslay_event_want_read(c->ws);
    c->ws_write = wslay_event_want_write(c->ws);
    c->ws_close_sent = wslay_event_get_close_sent(c->ws);
    /* Our close frame is out: the client has pong_timeout to answer it
     * (until now it had close_grace to read it); stopping keeps its 1 s. */
    if (c->ws_close_sent && !was_sent) {
        if (!c->srv->stop_begun) c->deadline_ms = 0;
        set_deadline(c, close_timeout_ms(c->srv));
    }
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
        c->pending_reason = ws_reason_copy(reason);
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
    set_deadline(c, close_grace_ms(c->srv));
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
                    close_grace_ms(c->srv));
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
void ws_conn_take_socket(ws_conn *c)
{
    int own = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
    if (own < 0) return;   /* keep using libmicrohttpd's */
    http_upgraded_close(c->up);
    c->fd = own;
    c->own_fd = true;
}

void ws_conn_release_socket(ws_conn *c)
{
    if (c->own_fd) close(c->fd);
    else http_upgraded_close(c->up);
}

/* The end, whatever the cause: the socket goes back to libmicrohttpd, the
 * handler hears on_close, c is freed. */
void ws_conn_teardown(ws_server *s, ws_conn *c)
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
        ws_conn_release_socket(c);
    }
    c->h->on_close(c->arg, c);
    atomic_fetch_sub(&s->nconns, 1);
    ws_conn_free(c);
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
        ws_conn_teardown(s, c);   /* the client closed (or failed) */
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
        ws_conn_teardown(s, c);
        return;
    }
    /* A close that waits for the messages before it (no more can come:
     * the close request stopped accepting). */
    if (c->pending_code && !blocked && c->sending.count == 0 &&
        atomic_load(&c->queued_count) == 0) {
        char *reason = c->pending_reason;
        c->pending_reason = NULL;
        begin_close(c, c->pending_code, reason, true, close_grace_ms(s));
        free(reason);
        if (c->failed || !flush(c, &blocked)) {
            ws_conn_teardown(s, c);
            return;
        }
    }
    bool r = c->ws_read, w = blocked;
    if (r || w) {
        conn_watch(s, c, (r ? EPOLLIN : 0u) | (w ? EPOLLOUT : 0u));
    } else if (c->ws_close_sent && !wslay_event_get_close_received(c->ws)) {
        conn_linger(s, c);
    } else {
        ws_conn_teardown(s, c);
    }
}

void ws_conn_io(ws_server *s, ws_conn *c, uint32_t events)
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
            ws_conn_teardown(s, c);   /* read error or EOF without a close frame */
            return;
        }
    }
    conn_settle(s, c);
}

/* Takes c's new messages (when nothing is being written: one lock for both)
 * and a close request, then writes. */
void ws_conn_take_requests(ws_server *s, ws_conn *c)
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
    if (code) begin_close(c, code, reason, first, close_grace_ms(s));
    free(reason);
    conn_settle(s, c);
}

/* A hand-over from the inbox: the connection joins the epoll set. */
void ws_conn_register(ws_server *s, ws_conn *c)
{
    atomic_fetch_add(&s->nconns, 1);
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    c->heard_ms = s->now_ms;
    if (!c->up) {   /* the client left before the switch */
        ws_conn_teardown(s, c);
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int fl = fcntl(c->fd, F_GETFL);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
        wslay_event_context_server_init(&c->ws, &wslay_callbacks, c) != 0 ||
        epoll_ctl(s->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        ws_conn_teardown(s, c);
        return;
    }
    c->events = EPOLLIN;
    wslay_event_config_set_max_recv_msg_length(c->ws, s->cfg.max_message);
    wslay_look(c);
    c->h->on_open(c->arg, c);
    if (s->stop_begun) begin_close(c, 1001, "server stopping", true, STOP_GRACE_MS);
    if (c->extra) ws_conn_io(s, c, EPOLLIN);   /* a frame came with the handshake */
    else conn_settle(s, c);
}

/* ---------- the ws thread: timers ---------- */

void ws_conn_tick(ws_server *s, ws_conn *c)
{
    uint64_t now = s->now_ms;
    uint64_t ping_ms = (uint64_t)s->cfg.ping_interval * 1000;
    uint64_t pong_ms = (uint64_t)s->cfg.pong_timeout * 1000;
    /* Timed from the ping, not from the silence: with a 1 s sweep, a
     * connection must not be dropped before it was ever pinged. */
    bool unanswered = c->pinged_ms > c->heard_ms;
    if (c->deadline_ms && now >= c->deadline_ms) {
        ws_conn_teardown(s, c);
    } else if (c->state == CONN_OPEN && unanswered && now - c->pinged_ms >= pong_ms) {
        ws_conn_teardown(s, c);   /* silent for too long: presumably gone */
    } else if (c->state == CONN_OPEN && now - c->heard_ms >= ping_ms &&
               now - c->pinged_ms >= ping_ms) {
        struct wslay_event_msg ping = {WSLAY_PING, NULL, 0};
        if (wslay_event_queue_msg(c->ws, &ping) != 0) c->failed = true;
        wslay_look(c);
        c->pinged_ms = now;
        conn_settle(s, c);
    }
}

void ws_conn_stop(ws_server *s, ws_conn *c)
{
    if (c->state == CONN_LINGER) set_deadline(c, STOP_GRACE_MS);
    else begin_close(c, 1001, "server stopping", true, STOP_GRACE_MS);
    conn_settle(s, c);
}
