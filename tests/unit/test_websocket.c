/* WebSockets end to end: a real http_server with one route that upgrades to
 * an echo handler, driven by a raw-socket client written here (handshake
 * text, masked client frames, unmasked server frames).  Every socket has a
 * 5 s timeout, so a broken server fails a test instead of hanging it. */
#include "test.h"
#include "http/server.h"
#include "http/websocket.h"
#include "util/workpool.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="   /* RFC 6455 section 1.3 */

/* ---------- the server side: an echo handler behind one route ---------- */

typedef struct echo {
    _Atomic int opens, closes;
    _Atomic(ws_conn *) conn;     /* the last connection opened, until it closes */
} echo;

typedef struct fixture {
    workpool *pool;
    http_server *http;
    ws_server *ws;
    uint16_t port;
    echo e;
} fixture;

static void echo_open(void *arg, ws_conn *c)
{
    echo *e = arg;
    atomic_store(&e->conn, c);
    atomic_fetch_add(&e->opens, 1);
}

static void echo_text(void *arg, ws_conn *c, const char *data, size_t len)
{
    ws_conn_send_text(c, data, len);
}

static void echo_close(void *arg, ws_conn *c)
{
    echo *e = arg;
    atomic_compare_exchange_strong(&e->conn, &c, NULL);
    atomic_fetch_add(&e->closes, 1);
}

static const ws_handler echo_handler = {echo_open, echo_text, echo_close};

static void ws_route(http_req *r)
{
    fixture *f = http_req_app(r);
    http_reply_websocket(r, f->ws, &echo_handler, &f->e);
}

static bool no_auth(void *app, const char *token, char owner[OWNER_MAX + 1]) { return false; }

static const http_route routes[] = {{"GET", "/ws", false, ws_route, NULL, NULL, NULL}};

static bool fixture_start(fixture *f, const ws_config *wc)
{
    memset(f, 0, sizeof *f);
    const char *err;
    /* Short HTTP deadlines: an upgraded connection must outlive all of them. */
    http_server_config hc = {.host = "127.0.0.1", .port = 0, .threads = 2,
                             .max_connections = 64, .idle_timeout = 1, .header_timeout = 1,
                             .body_timeout = 1, .connection_memory = 32 * 1024,
                             .access_log = "off"};
    f->pool = workpool_new(1);
    f->ws = ws_server_start(wc, &err);
    f->http = f->pool && f->ws ? http_server_start(&hc, routes, 1, f, no_auth, f->pool, &err)
                               : NULL;
    if (!f->http) return false;
    f->port = http_server_port(f->http);
    return true;
}

static void fixture_stop(fixture *f)
{
    if (f->ws) ws_server_stop(f->ws);
    if (f->http) http_server_stop(f->http);
    ws_server_free(f->ws);
    if (f->pool) workpool_free(f->pool);
}

static bool wait_for(_Atomic int *counter, int value)
{
    for (int i = 0; i < 500; i++) {   /* 5 s */
        if (atomic_load(counter) >= value) return true;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    return false;
}

static bool wait_connections(ws_server *s, int n)
{
    for (int i = 0; i < 500 && ws_server_connections(s) != n; i++)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    return ws_server_connections(s) == n;
}

/* ---------- the client side ---------- */

typedef struct client {
    int fd;
    unsigned char buf[1 << 16];   /* bytes read, not yet consumed */
    size_t len;
} client;

static client *client_connect(uint16_t port, int rcvbuf)
{
    client *cl = calloc(1, sizeof *cl);
    cl->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {5, 0};
    setsockopt(cl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(cl->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (rcvbuf) setsockopt(cl->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(cl->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(cl->fd);
        free(cl);
        return NULL;
    }
    return cl;
}

static void client_free(client *cl)
{
    if (!cl) return;
    close(cl->fd);
    free(cl);
}

static bool send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0) return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Reads more into cl->buf; false on EOF, error or timeout. */
static bool fill(client *cl)
{
    if (cl->len == sizeof cl->buf) return false;
    ssize_t n = recv(cl->fd, cl->buf + cl->len, sizeof cl->buf - cl->len, 0);
    if (n <= 0) return false;
    cl->len += (size_t)n;
    return true;
}

static void consume(client *cl, size_t n)
{
    memmove(cl->buf, cl->buf + n, cl->len - n);
    cl->len -= n;
}

static bool need(client *cl, size_t n);

/* Reads an HTTP response head into head (NUL-terminated); the rest stays. */
static bool read_head(client *cl, char *head, size_t cap)
{
    for (;;) {
        unsigned char *end = memmem(cl->buf, cl->len, "\r\n\r\n", 4);
        if (end) {
            size_t n = (size_t)(end - cl->buf) + 4;
            if (n >= cap) return false;
            memcpy(head, cl->buf, n);
            head[n] = '\0';
            consume(cl, n);
            return true;
        }
        if (!fill(cl)) return false;
    }
}

/* A whole response with a Content-Length body, head and body in out. */
static bool read_response(client *cl, char *out, size_t cap)
{
    if (!read_head(cl, out, cap)) return false;
    const char *cl_hdr = strcasestr(out, "\r\nContent-Length:");
    size_t body = cl_hdr ? strtoul(cl_hdr + 17, NULL, 10) : 0, head = strlen(out);
    if (head + body >= cap || !need(cl, body)) return false;
    memcpy(out + head, cl->buf, body);
    out[head + body] = '\0';
    consume(cl, body);
    return true;
}

/* A masked client frame. */
static bool send_fragment(client *cl, bool fin, int opcode, const void *payload, size_t len)
{
    unsigned char *f = malloc(len + 14);
    size_t h = 0;
    f[h++] = (unsigned char)((fin ? 0x80 : 0) | opcode);
    if (len < 126) {
        f[h++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        f[h++] = 0x80 | 126;
        f[h++] = (unsigned char)(len >> 8);
        f[h++] = (unsigned char)len;
    } else {
        f[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) f[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(f + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < len; i++) f[h + i] = ((const unsigned char *)payload)[i] ^ mask[i % 4];
    bool ok = send_all(cl->fd, f, h + len);
    free(f);
    return ok;
}

static bool send_frame(client *cl, int opcode, const void *payload, size_t len)
{
    return send_fragment(cl, true, opcode, payload, len);
}

static bool send_close(client *cl, uint16_t code)
{
    unsigned char p[2] = {(unsigned char)(code >> 8), (unsigned char)code};
    return send_frame(cl, 0x8, p, 2);
}

typedef struct frame {
    int opcode;
    bool fin, masked;
    size_t len;
    unsigned char data[1 << 15];
} frame;

static bool need(client *cl, size_t n)
{
    while (cl->len < n)
        if (!fill(cl)) return false;
    return true;
}

/* One server frame; false on EOF, timeout or a frame too big for f. */
static bool read_frame(client *cl, frame *f)
{
    if (!need(cl, 2)) return false;
    f->fin = cl->buf[0] & 0x80;
    f->opcode = cl->buf[0] & 0x0F;
    f->masked = cl->buf[1] & 0x80;
    size_t len = cl->buf[1] & 0x7F, h = 2;
    if (len == 126) {
        if (!need(cl, 4)) return false;
        len = (size_t)cl->buf[2] << 8 | cl->buf[3];
        h = 4;
    } else if (len == 127) {
        if (!need(cl, 10)) return false;
        len = 0;
        for (int i = 0; i < 8; i++) len = len << 8 | cl->buf[2 + i];
        h = 10;
    }
    if (len > sizeof f->data || !need(cl, h + len)) return false;
    memcpy(f->data, cl->buf + h, len);
    f->len = len;
    consume(cl, h + len);
    return true;
}

static int close_code(const frame *f)
{
    return f->opcode == 0x8 && f->len >= 2 ? f->data[0] << 8 | f->data[1] : -1;
}

/* Handshake text with the RFC key; extra is sent in the same write. */
static bool send_handshake(client *cl, const char *version, const void *extra, size_t extra_len)
{
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: " RFC_KEY "\r\n"
                     "Sec-WebSocket-Version: %s\r\n\r\n", version);
    char all[2048];
    memcpy(all, req, (size_t)n);
    if (extra_len) memcpy(all + n, extra, extra_len);
    return send_all(cl->fd, all, (size_t)n + extra_len);
}

static bool has_header(const char *head, const char *line)
{
    return strcasestr(head, line) != NULL;
}

/* Connects and upgrades; NULL if any step fails. */
static client *ws_open(fixture *f, int rcvbuf)
{
    client *cl = client_connect(f->port, rcvbuf);
    char head[2048];
    if (!cl || !send_handshake(cl, "13", NULL, 0) || !read_head(cl, head, sizeof head) ||
        strncmp(head, "HTTP/1.1 101", 12) != 0 || !wait_for(&f->e.opens, 1)) {
        client_free(cl);
        return NULL;
    }
    return cl;
}

/* ---------- tests ---------- */

TEST(ws_handshake_and_echo)
{
    fixture f;
    CHECK(fixture_start(&f, NULL));
    client *cl = client_connect(f.port, 0);
    char head[2048];
    CHECK(cl && send_handshake(cl, "13", NULL, 0) && read_head(cl, head, sizeof head));
    CHECK(strncmp(head, "HTTP/1.1 101", 12) == 0);
    CHECK(has_header(head, "\r\nSec-WebSocket-Accept: " RFC_ACCEPT "\r\n"));
    CHECK(has_header(head, "\r\nUpgrade: websocket\r\n"));
    CHECK(has_header(head, "\r\nConnection: Upgrade\r\n"));
    CHECK(wait_for(&f.e.opens, 1));
    /* The upgraded request is complete as far as HTTP is concerned. */
    CHECK(http_server_in_flight(f.http) == 0);
    CHECK(ws_server_connections(f.ws) == 1);

    frame *fr = malloc(sizeof *fr);
    CHECK(send_frame(cl, 0x1, "hello", 5) && read_frame(cl, fr));
    CHECK(fr->opcode == 0x1 && fr->fin && !fr->masked && fr->len == 5 &&
          memcmp(fr->data, "hello", 5) == 0);
    /* 16-bit length, and an empty message. */
    char big[3000];
    memset(big, 'x', sizeof big);
    CHECK(send_frame(cl, 0x1, big, sizeof big) && read_frame(cl, fr));
    CHECK(fr->opcode == 0x1 && fr->len == sizeof big && memcmp(fr->data, big, sizeof big) == 0);
    CHECK(send_frame(cl, 0x1, "", 0) && read_frame(cl, fr));
    CHECK(fr->opcode == 0x1 && fr->len == 0);
    free(fr);
    client_free(cl);
    CHECK(wait_for(&f.e.closes, 1));   /* EOF without a close frame also ends it */
    CHECK(wait_connections(f.ws, 0));
    fixture_stop(&f);
    CHECK(f.e.opens == 1 && f.e.closes == 1);
}

TEST(ws_message_in_the_handshake_write)
{
    fixture f;
    CHECK(fixture_start(&f, NULL));
    client *cl = client_connect(f.port, 0);
    /* A masked "early" frame right behind the request: libmicrohttpd reads
     * it with the headers, and it must reach the echo handler. */
    unsigned char extra[6 + 5] = {0x81, 0x80 | 5, 1, 2, 3, 4};
    for (int i = 0; i < 5; i++) extra[6 + i] = (unsigned char)("early"[i] ^ extra[2 + i % 4]);
    char head[2048];
    frame *fr = malloc(sizeof *fr);
    CHECK(cl && send_handshake(cl, "13", extra, sizeof extra) && read_head(cl, head, sizeof head));
    CHECK(strncmp(head, "HTTP/1.1 101", 12) == 0);
    CHECK(read_frame(cl, fr) && fr->opcode == 0x1 && fr->len == 5 &&
          memcmp(fr->data, "early", 5) == 0);
    CHECK(send_frame(cl, 0x1, "later", 5) && read_frame(cl, fr));
    CHECK(fr->len == 5 && memcmp(fr->data, "later", 5) == 0);
    free(fr);
    client_free(cl);
    fixture_stop(&f);
}

TEST(ws_ping_gets_pong)
{
    fixture f;
    CHECK(fixture_start(&f, NULL));
    client *cl = ws_open(&f, 0);
    frame *fr = malloc(sizeof *fr);
    CHECK(cl && send_frame(cl, 0x9, "abc", 3) && read_frame(cl, fr));
    CHECK(fr->opcode == 0xA && fr->len == 3 && memcmp(fr->data, "abc", 3) == 0);
    free(fr);
    client_free(cl);
    fixture_stop(&f);
}

TEST(ws_fragments_are_joined_and_binary_is_refused)
{
    fixture f;
    CHECK(fixture_start(&f, NULL));
    client *cl = ws_open(&f, 0);
    frame *fr = malloc(sizeof *fr);
    CHECK(cl && send_fragment(cl, false, 0x1, "hel", 3) && send_frame(cl, 0x9, "", 0) &&
          send_fragment(cl, true, 0x0, "lo", 2));
    CHECK(read_frame(cl, fr) && fr->opcode == 0xA);   /* the ping between the fragments */
    CHECK(read_frame(cl, fr) && fr->opcode == 0x1 && fr->len == 5 &&
          memcmp(fr->data, "hello", 5) == 0);
    CHECK(send_frame(cl, 0x2, "\x01\x02", 2) && read_frame(cl, fr) && close_code(fr) == 1003);
    CHECK(send_close(cl, 1003) && !read_frame(cl, fr));
    CHECK(wait_for(&f.e.closes, 1));
    free(fr);
    client_free(cl);
    fixture_stop(&f);
}

TEST(ws_client_close_is_answered)
{
    fixture f;
    CHECK(fixture_start(&f, NULL));
    client *cl = ws_open(&f, 0);
    frame *fr = malloc(sizeof *fr);
    CHECK(cl && send_close(cl, 1000) && read_frame(cl, fr));
    CHECK(close_code(fr) == 1000);
    CHECK(!read_frame(cl, fr) && cl->len == 0);   /* then the server closes the TCP connection */
    CHECK(wait_for(&f.e.closes, 1));
    CHECK(wait_connections(f.ws, 0));
    free(fr);
    client_free(cl);
    fixture_stop(&f);
    CHECK(f.e.opens == 1 && f.e.closes == 1);     /* exactly once, also after the stop */
}

TEST(ws_survives_http_deadlines)
{
    /* header_timeout and idle_timeout are 1 s: neither may touch an upgraded connection. */
    fixture f;
    CHECK(fixture_start(&f, NULL));
    client *cl = ws_open(&f, 0);
    nanosleep(&(struct timespec){2, 500 * 1000 * 1000}, NULL);
    frame *fr = malloc(sizeof *fr);
    CHECK(cl && send_frame(cl, 0x1, "still", 5) && read_frame(cl, fr));
    CHECK(fr->len == 5 && memcmp(fr->data, "still", 5) == 0);
    CHECK(f.e.closes == 0);
    free(fr);
    client_free(cl);
    fixture_stop(&f);
}

TEST(ws_not_a_handshake_is_400)
{
    fixture f;
    CHECK(fixture_start(&f, NULL));
    client *cl = client_connect(f.port, 0);
    const char *req = "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n";
    char *resp = malloc(1 << 16);
    CHECK(cl && send_all(cl->fd, req, strlen(req)) && read_response(cl, resp, 1 << 16));
    CHECK(strncmp(resp, "HTTP/1.1 400", 12) == 0);
    CHECK(has_header(resp, "Content-Type: application/json"));
    CHECK(strstr(resp, "\"code\":\"bad_handshake\"") != NULL);
    client_free(cl);

    /* A key that is not 16 bytes of base64. */
    cl = client_connect(f.port, 0);
    req = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n";
    CHECK(cl && send_all(cl->fd, req, strlen(req)) && read_response(cl, resp, 1 << 16));
    CHECK(strncmp(resp, "HTTP/1.1 400", 12) == 0);
    client_free(cl);
    free(resp);
    fixture_stop(&f);
    CHECK(f.e.opens == 0 && f.e.closes == 0);
}

TEST(ws_wrong_version_is_426)
{
    fixture f;
    CHECK(fixture_start(&f, NULL));
    client *cl = client_connect(f.port, 0);
    char *resp = malloc(1 << 16);
    CHECK(cl && send_handshake(cl, "8", NULL, 0) && read_response(cl, resp, 1 << 16));
    CHECK(strncmp(resp, "HTTP/1.1 426", 12) == 0);
    CHECK(has_header(resp, "\r\nSec-WebSocket-Version: 13\r\n"));
    CHECK(strstr(resp, "\"code\":\"upgrade_required\"") != NULL);
    free(resp);
    client_free(cl);
    fixture_stop(&f);
}

TEST(ws_message_too_big_is_1009)
{
    fixture f;
    ws_config wc = {.max_message = 1024};
    CHECK(fixture_start(&f, &wc));
    client *cl = ws_open(&f, 0);
    static char big[200 * 1024];
    memset(big, 'y', sizeof big);
    frame *fr = malloc(sizeof *fr);
    CHECK(cl && send_frame(cl, 0x1, "fine", 4) && read_frame(cl, fr) && fr->len == 4);
    /* Far more than max_message: the server stops reading part way, so it
     * must not reset the connection before we read its close frame. */
    CHECK(cl && send_frame(cl, 0x1, big, sizeof big));
    CHECK(read_frame(cl, fr) && close_code(fr) == 1009);
    CHECK(!read_frame(cl, fr));   /* then the server half-closes... */
    client_free(cl);              /* ...and ends when we close too */
    CHECK(wait_for(&f.e.closes, 1));
    free(fr);
    fixture_stop(&f);
}

typedef struct flood {
    ws_conn *c;
    size_t sent;        /* messages accepted before the refusal */
    bool refused;
} flood;

static void *flood_thread(void *arg)
{
    flood *fl = arg;
    char msg[1024];
    memset(msg, 'z', sizeof msg);
    /* 256 MiB cap: the test fails instead of looping if nothing refuses. */
    for (fl->sent = 0; fl->sent < 256 * 1024; fl->sent++) {
        if (!ws_conn_send_text(fl->c, msg, sizeof msg)) {
            fl->refused = true;
            break;
        }
    }
    return NULL;
}

TEST(ws_slow_consumer_is_closed_with_1013)
{
    fixture f;
    ws_config wc = {.max_queued_bytes = 256 * 1024};
    CHECK(fixture_start(&f, &wc));
    client *cl = ws_open(&f, 4096);   /* a small window fills sooner */
    flood fl = {.c = atomic_load(&f.e.conn)};
    CHECK(cl && fl.c);
    pthread_t t;
    pthread_create(&t, NULL, flood_thread, &fl);
    pthread_join(t, NULL);
    CHECK(fl.refused && fl.sent > 0);
    /* Now read: some of the messages, then the close. */
    frame *fr = malloc(sizeof *fr);
    size_t texts = 0;
    int code = -1;
    while (read_frame(cl, fr)) {
        if (fr->opcode == 0x1 && fr->len == 1024) texts++;
        if (fr->opcode == 0x8) {
            code = close_code(fr);
            break;
        }
    }
    CHECK(code == 1013);
    CHECK(texts <= fl.sent);
    CHECK(send_close(cl, 1000));
    CHECK(wait_for(&f.e.closes, 1));
    CHECK(wait_connections(f.ws, 0));
    free(fr);
    client_free(cl);
    fixture_stop(&f);
}

TEST(ws_slow_consumer_gets_1013_after_a_pause)
{
    /* The client stops reading for longer than pong_timeout (and the 1 s
     * sweep) but well within close_grace (30 s by default): when it reads
     * again, the 1013 close frame is still queued behind what the socket
     * holds.  First 8 MiB, more than the kernel's buffers take (tcp_wmem
     * caps at 4 MiB), so the socket is full when the flood cuts it off and
     * the close frame cannot be written until the client reads. */
    fixture f;
    ws_config wc = {.max_queued_bytes = 10u << 20, .pong_timeout = 1};
    CHECK(fixture_start(&f, &wc));
    client *cl = ws_open(&f, 4096);
    flood fl = {.c = atomic_load(&f.e.conn)};
    CHECK(cl && fl.c);
    static char mib[1 << 20];
    memset(mib, 'm', sizeof mib);
    for (int i = 0; fl.c && i < 8; i++) {
        CHECK(ws_conn_send_text(fl.c, mib, sizeof mib));
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);   /* lets the socket fill */
    }
    pthread_t t;
    pthread_create(&t, NULL, flood_thread, &fl);
    pthread_join(t, NULL);
    CHECK(fl.refused);
    nanosleep(&(struct timespec){3, 0}, NULL);   /* at least; a slower machine waits longer */
    CHECK(f.e.closes == 0);
    frame *fr = malloc(sizeof *fr);
    int code = -1;
    size_t skipped = 0;
    while (cl && code < 0) {
        /* Skip the 1 MiB messages (too big for a frame buffer) by hand. */
        if (!need(cl, 2)) break;
        if ((cl->buf[1] & 0x7F) == 127) {
            if (!need(cl, 10)) break;
            size_t len = 0;
            for (int i = 0; i < 8; i++) len = len << 8 | cl->buf[2 + i];
            consume(cl, 10);
            while (len > 0) {
                if (cl->len == 0 && !fill(cl)) break;
                size_t n = cl->len < len ? cl->len : len;
                consume(cl, n);
                len -= n;
            }
            skipped++;
            continue;
        }
        if (!read_frame(cl, fr)) break;
        if (fr->opcode == 0x8) code = close_code(fr);
    }
    CHECK(skipped > 0);
    CHECK(code == 1013);
    CHECK(cl && send_close(cl, 1000));
    CHECK(wait_for(&f.e.closes, 1));
    free(fr);
    client_free(cl);
    fixture_stop(&f);
}

TEST(ws_conn_close_sends_queued_messages_first)
{
    fixture f;
    CHECK(fixture_start(&f, NULL));
    client *cl = ws_open(&f, 0);
    ws_conn *c = atomic_load(&f.e.conn);
    CHECK(cl && c);
    CHECK(ws_conn_send_text(c, "bye", 3));
    ws_conn_close(c, 4000, "done");
    CHECK(!ws_conn_send_text(c, "late", 4));   /* closing: refused */
    frame *fr = malloc(sizeof *fr);
    CHECK(read_frame(cl, fr) && fr->opcode == 0x1 && fr->len == 3);
    CHECK(read_frame(cl, fr) && close_code(fr) == 4000 && fr->len == 6 &&
          memcmp(fr->data + 2, "done", 4) == 0);
    CHECK(send_close(cl, 4000));
    CHECK(wait_for(&f.e.closes, 1));
    free(fr);
    client_free(cl);
    fixture_stop(&f);
}

TEST(ws_silent_client_is_pinged_then_dropped)
{
    fixture f;
    ws_config wc = {.ping_interval = 1, .pong_timeout = 1};
    CHECK(fixture_start(&f, &wc));
    client *cl = ws_open(&f, 0);
    frame *fr = malloc(sizeof *fr);
    CHECK(cl && read_frame(cl, fr) && fr->opcode == 0x9);   /* within ~2 s */
    /* No pong: dropped without a close frame after 2 s of silence. */
    while (cl && read_frame(cl, fr)) CHECK(fr->opcode == 0x9);
    CHECK(wait_for(&f.e.closes, 1));
    free(fr);
    client_free(cl);
    fixture_stop(&f);
}

static void *stop_thread(void *arg)
{
    ws_server_stop(arg);
    return NULL;
}

TEST(ws_server_stop_says_going_away)
{
    fixture f;
    CHECK(fixture_start(&f, NULL));
    client *a = ws_open(&f, 0);
    CHECK(a != NULL);
    client *b = client_connect(f.port, 0);
    char head[2048];
    CHECK(b && send_handshake(b, "13", NULL, 0) && read_head(b, head, sizeof head));
    CHECK(wait_for(&f.e.opens, 2));
    pthread_t t;
    pthread_create(&t, NULL, stop_thread, f.ws);
    frame *fr = malloc(sizeof *fr);
    /* a answers the close; b does not, and is dropped after the grace period. */
    CHECK(a && read_frame(a, fr) && close_code(fr) == 1001);
    CHECK(a && send_close(a, 1001));
    CHECK(b && read_frame(b, fr) && close_code(fr) == 1001);
    pthread_join(t, NULL);
    CHECK(f.e.closes == 2);
    CHECK(a && !read_frame(a, fr));
    /* Stopped, not yet freed: a late handshake is refused, not accepted. */
    client *late = client_connect(f.port, 0);
    CHECK(late && send_handshake(late, "13", NULL, 0) && read_head(late, head, sizeof head));
    CHECK(strstr(head, " 503 ") != NULL);
    client_free(late);
    free(fr);
    client_free(a);
    client_free(b);
    fixture_stop(&f);
}

/* A protocol error gets a close frame with 1002 and then the server's FIN
 * (it half-closes and drains, so a RST cannot destroy that frame); the
 * connection ends when the client closes too. */
static void expect_1002(fixture *f, client *cl)
{
    frame *fr = malloc(sizeof *fr);
    CHECK(read_frame(cl, fr) && close_code(fr) == 1002 && fr->len == 2);
    CHECK(!read_frame(cl, fr) && cl->len == 0);
    client_free(cl);
    CHECK(wait_for(&f->e.closes, 1));
    free(fr);
}

TEST(ws_fragmented_ping_is_1002)
{
    fixture f;
    CHECK(fixture_start(&f, NULL));
    client *cl = ws_open(&f, 0);
    CHECK(cl && send_fragment(cl, false, 0x9, "x", 1));
    if (cl) expect_1002(&f, cl);
    fixture_stop(&f);
}

TEST(ws_over_long_ping_is_1002)
{
    fixture f;
    CHECK(fixture_start(&f, NULL));
    client *cl = ws_open(&f, 0);
    char p[126];
    memset(p, 'p', sizeof p);
    CHECK(cl && send_frame(cl, 0x9, p, sizeof p));   /* control frames carry <= 125 bytes */
    if (cl) expect_1002(&f, cl);
    fixture_stop(&f);
}

TEST(ws_length_with_the_top_bit_set_is_1002)
{
    fixture f;
    CHECK(fixture_start(&f, NULL));
    client *cl = ws_open(&f, 0);
    /* A text frame claiming 2^63 + 1 bytes (RFC 6455: the top bit must be 0). */
    static const unsigned char hdr[] = {0x81, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1,
                                        1, 2, 3, 4, 'a' ^ 1, 'b' ^ 2};
    CHECK(cl && send_all(cl->fd, hdr, sizeof hdr));
    if (cl) expect_1002(&f, cl);
    fixture_stop(&f);
}

TEST(ws_close_with_a_one_byte_payload_is_1002)
{
    fixture f;
    CHECK(fixture_start(&f, NULL));
    client *cl = ws_open(&f, 0);
    frame *fr = malloc(sizeof *fr);
    CHECK(cl && send_frame(cl, 0x8, "\x03", 1));
    CHECK(cl && read_frame(cl, fr) && close_code(fr) == 1002 && fr->len == 2);
    CHECK(cl && !read_frame(cl, fr));   /* the close was received: the server closes */
    CHECK(wait_for(&f.e.closes, 1));
    /* An empty close is still answered with an empty one. */
    client *other = ws_open(&f, 0);
    CHECK(wait_for(&f.e.opens, 2));
    CHECK(other && send_frame(other, 0x8, "", 0) && read_frame(other, fr));
    CHECK(fr->opcode == 0x8 && fr->len == 0);
    CHECK(wait_for(&f.e.closes, 2));
    free(fr);
    client_free(other);
    client_free(cl);
    fixture_stop(&f);
}
