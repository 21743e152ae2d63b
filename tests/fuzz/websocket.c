/* websocket — client frames as the server reads them: the handshake
 * (http/ws_handshake.c), then libwslay's framing under our connection code
 * (http/ws_conn.c, websocket.c), behind an echo handler.
 *
 * Input: "HEADERS\0FRAMES...": extra handshake header lines (LF-separated;
 * they may spoil the handshake), then the raw bytes the client sends once
 * the 101 has come (masked client frames, or anything).  The client then
 * half-closes and reads everything until the server closes.
 * Properties:
 *   - a handshake is either a 101 with the right Sec-WebSocket-Accept or a
 *     JSON error (400/426); never a hang;
 *   - what the server sends is a sequence of well-formed, unmasked frames:
 *     control frames final and at most 125 bytes, text frames UTF-8, a close
 *     frame empty or a status code it may send (not 1005, 1006, 1015) and a
 *     UTF-8 reason, nothing after the close;
 *   - the text messages it sends back are, in order, a prefix of the
 *     complete text messages a reference parser (RFC 6455, written here)
 *     finds in the client's frames before the first protocol error (echoes
 *     still queued when a close arrives are dropped, by design: websocket.h);
 *   - a ping before any error is answered by a pong with the same payload;
 *   - a protocol error (bad opcode, reserved bits, an unmasked frame, a
 *     fragmented or over-long control frame, a 64-bit length with the top
 *     bit set, a length not in its shortest form, a 1-byte close payload, a
 *     stray continuation) gets a close
 *     frame with 1002; invalid UTF-8 1007; a binary message 1003; a message
 *     over the limit 1009.
 */
#include "fuzz.h"
#include "http/server.h"
#include "http/websocket.h"
#include "util/utf8.h"
#include "util/workpool.h"

#include <stdlib.h>
#include <string.h>

#define MAX_MESSAGE 4096

static uint16_t port;
static ws_server *wss;

static void on_open(void *arg, ws_conn *c) {}
static void on_text(void *arg, ws_conn *c, const char *data, size_t len)
{
    ws_conn_send_text(c, data, len);
}
static void on_close(void *arg, ws_conn *c) {}
static const ws_handler echo = {on_open, on_text, on_close};

static void ws_route(http_req *r) { http_reply_websocket(r, wss, &echo, NULL); }

static bool no_auth(void *app, const char *token, char owner[OWNER_MAX + 1]) { return false; }

static const http_route routes[] = {{"GET", "/ws", false, ws_route, NULL, NULL, NULL}};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *err = NULL;
    ws_config wc = {.ping_interval = 30, .pong_timeout = 5, .max_queued_bytes = 1 << 20,
                    .max_message = MAX_MESSAGE, .close_grace = 2};
    http_server_config hc = {.host = "127.0.0.1", .port = 0, .threads = 1,
                             .max_connections = 64, .idle_timeout = 60, .header_timeout = 60,
                             .body_timeout = 60, .connection_memory = 32 * 1024,
                             .access_log = "off"};
    workpool *pool = workpool_new(1);
    http_server *s = NULL;
    if (!(wss = ws_server_start(&wc, &err)) ||
        !(s = http_server_start(&hc, routes, 1, NULL, no_auth, pool, &err))) {
        fprintf(stderr, "cannot start: %s\n", err);
        abort();
    }
    port = http_server_port(s);
    return 0;
}

/* ---------- the reference reading of the client's frames ---------- */

typedef struct msg { char *p; size_t len; } msg;

typedef struct expect {
    msg *texts;
    int ntexts;
    msg *pings;
    int npings;
    int error;           /* the close code a protocol error calls for; 0: none */
    int either;          /* another one as good (two faults in one close frame) */
    bool closed;         /* the client sent a (valid) close frame */
    bool truncated;      /* the stream ended inside a frame */
    size_t stop;         /* bytes to send: up to the end of the first bad frame */
} expect;

static bool valid_utf8(const char *s, size_t n)
{
    /* utf8_seq_len needs NUL-terminated text: copy, and NULs are valid UTF-8 */
    char *c = malloc(n + 1);
    memcpy(c, s, n);
    c[n] = '\0';
    size_t i = 0;
    bool ok = true;
    while (i < n) {
        if (c[i] == '\0') { i++; continue; }
        size_t k = utf8_seq_len((const unsigned char *)c + i);
        if (!k) { ok = false; break; }
        i += k;
    }
    free(c);
    return ok;
}

/* Could s[0..n) begin valid UTF-8 (nothing invalid yet, maybe a sequence
 * cut at the end)?  That is when libwslay's validator, which runs as frames
 * arrive, gives up. */
static bool utf8_prefix_ok(const char *s, size_t n)
{
    for (size_t cut = n > 3 ? n - 3 : 0; cut <= n; cut++) {
        if (!valid_utf8(s, cut)) continue;
        /* s[cut..n) must be the start of one sequence */
        const unsigned char *t = (const unsigned char *)s + cut;
        size_t k = n - cut;
        if (k == 0) return true;
        unsigned char c = t[0], lo = 0x80, hi = 0xBF;
        size_t need = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                      : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!need || k >= need) continue;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
        bool ok = true;
        for (size_t j = 1; j < k && ok; j++)
            ok = j == 1 ? t[j] >= lo && t[j] <= hi : t[j] >= 0x80 && t[j] <= 0xBF;
        if (ok) return true;
    }
    return false;
}

static bool sendable_code(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

static void read_client(const uint8_t *p, size_t n, expect *e)
{
    memset(e, 0, sizeof *e);
    e->stop = n;
    size_t i = 0;
    int cont = 0;   /* opcode of the message in progress */
    char *acc = NULL;
    size_t acc_len = 0;
    while (i < n && !e->error && !e->closed) {
        if (n - i < 2) { e->truncated = true; break; }
        uint8_t b0 = p[i], b1 = p[i + 1];
        bool fin = b0 & 0x80, masked = b1 & 0x80;
        int op = b0 & 0x0f;
        uint64_t len = b1 & 0x7f;
        size_t h = 2;
        if (len == 126) {
            if (n - i < 4) { e->truncated = true; break; }
            len = (uint64_t)p[i + 2] << 8 | p[i + 3];
            h = 4;
        } else if (len == 127) {
            if (n - i < 10) { e->truncated = true; break; }
            len = 0;
            for (int k = 0; k < 8; k++) len = len << 8 | p[i + 2 + k];
            h = 10;
        }
        /* A bad header: what follows it is not sent (one fault at a time,
         * so the close code it calls for is the one to expect). */
        size_t end = len <= n - i - h && n - i - h - len >= 4 ? i + h + 4 + len : n;
#define FAIL(code) { e->error = code; e->stop = end; break; }
        if (len >> 63) FAIL(1002)
        /* RFC 6455 5.2: the minimal number of bytes must encode the length */
        if ((h == 4 && len < 126) || (h == 10 && len < 65536)) FAIL(1002)
        if ((b0 & 0x70) || !masked || (op > 2 && op < 8) || op > 10) FAIL(1002)
        if (op >= 8 && (!fin || len > 125)) FAIL(1002)
        if (op == 0 && !cont) FAIL(1002)
        if ((op == 1 || op == 2) && cont) FAIL(1002)
        /* libwslay refuses a message over the limit at its header; a binary
         * one is ours to refuse, once complete. */
        if (op < 8 && acc_len + len > MAX_MESSAGE) FAIL(1009)
        if (op < 8 && (op == 2 || cont == 2)) FAIL(1003)
#undef FAIL
        if (n - i - h < 4 || n - i - h - 4 < len) { e->truncated = true; break; }
        const uint8_t *mask = p + i + h;
        char *payload = malloc(len + 1);
        for (uint64_t k = 0; k < len; k++) payload[k] = (char)(p[i + h + 4 + k] ^ mask[k % 4]);
        i += h + 4 + len;
        if (op == 8) {
            bool code_ok = len < 2 || sendable_code((unsigned)(uint8_t)payload[0] << 8 |
                                                    (uint8_t)payload[1]);
            bool text_ok = len < 2 || valid_utf8(payload + 2, len - 2);
            if (len == 1 || !code_ok) e->error = 1002;
            if (!text_ok) e->error = e->error ? e->error : 1007, e->either = 1007;
            if (!e->error) e->closed = true;
            e->stop = i;
            free(payload);
            break;
        }
        if (op == 9) {
            e->pings = realloc(e->pings, (size_t)(e->npings + 1) * sizeof *e->pings);
            e->pings[e->npings++] = (msg){payload, len};
            continue;
        }
        if (op == 10) { free(payload); continue; }
        if (op == 1) cont = 1;
        acc = realloc(acc, acc_len + len + 1);
        memcpy(acc + acc_len, payload, len);
        acc_len += len;
        free(payload);
        if (cont == 1 && !fin && !utf8_prefix_ok(acc, acc_len)) { e->error = 1007; e->stop = i; break; }
        if (fin) {
            if (!valid_utf8(acc, acc_len)) { e->error = 1007; e->stop = i; break; }
            e->texts = realloc(e->texts, (size_t)(e->ntexts + 1) * sizeof *e->texts);
            e->texts[e->ntexts++] = (msg){acc, acc_len};
            acc = NULL;
            acc_len = 0;
            cont = 0;
        }
    }
    free(acc);
}

static void expect_free(expect *e)
{
    for (int i = 0; i < e->ntexts; i++) free(e->texts[i].p);
    for (int i = 0; i < e->npings; i++) free(e->pings[i].p);
    free(e->texts);
    free(e->pings);
}

/* ---------- the server's frames ---------- */

/* On a failed property: what each side said. */
static void dump(const uint8_t *p, size_t n, const expect *e)
{
    fprintf(stderr, "\nthe reference found %d text messages (error %d, closed %d):", e->ntexts,
            e->error, e->closed);
    for (int i = 0; i < e->ntexts && i < 16; i++) fprintf(stderr, " [%zu bytes]", e->texts[i].len);
    fprintf(stderr, "\nthe server sent %zu bytes:", n);
    for (size_t k = 0; k < n && k < 96; k++) fprintf(stderr, " %02x", p[k]);
    fprintf(stderr, "\n");
}

static void check_server(const uint8_t *p, size_t n, const expect *e)
{
    size_t i = 0;
    int texts = 0, pongs = 0;
    int close_code = -1;
    while (i < n) {
        FUZZ_CHECK(close_code < 0);   /* nothing after a close frame */
        if (n - i < 2) break;         /* cut short: the connection ended */
        uint8_t b0 = p[i], b1 = p[i + 1];
        FUZZ_CHECK(!(b1 & 0x80) && !(b0 & 0x70));
        int op = b0 & 0x0f;
        uint64_t len = b1 & 0x7f;
        size_t h = 2;
        if (len == 126) { if (n - i < 4) break; len = (uint64_t)p[i + 2] << 8 | p[i + 3]; h = 4; }
        else if (len == 127) {
            if (n - i < 10) break;
            len = 0;
            for (int k = 0; k < 8; k++) len = len << 8 | p[i + 2 + k];
            h = 10;
        }
        if (n - i - h < len) break;
        const char *payload = (const char *)p + i + h;
        i += h + len;
        FUZZ_CHECK(op == 1 || op == 8 || op == 9 || op == 10);
        if (op >= 8) FUZZ_CHECK((b0 & 0x80) && len <= 125);
        if (op == 1) {
            FUZZ_CHECK(b0 & 0x80);   /* the echo sends whole messages */
            FUZZ_CHECK(valid_utf8(payload, len));
            if (!(texts < e->ntexts && e->texts[texts].len == len &&
                  memcmp(e->texts[texts].p, payload, len) == 0))
                dump(p, n, e);
            FUZZ_CHECK(texts < e->ntexts && e->texts[texts].len == len &&
                       memcmp(e->texts[texts].p, payload, len) == 0);
            texts++;
        } else if (op == 10) {
            FUZZ_CHECK(pongs < e->npings && e->pings[pongs].len == len &&
                       memcmp(e->pings[pongs].p, payload, len) == 0);
            pongs++;
        } else if (op == 8) {
            FUZZ_CHECK(len == 0 || len >= 2);
            close_code = len ? (uint8_t)payload[0] << 8 | (uint8_t)payload[1] : 0;
            if (len) FUZZ_CHECK(sendable_code((unsigned)close_code) && valid_utf8(payload + 2, len - 2));
        }
    }
    if (e->error && close_code >= 0) {
        if (close_code != e->error && close_code != e->either) {
            fprintf(stderr, "\nclose code %d, expected %d; the server sent:", close_code, e->error);
            for (size_t k = 0; k < n && k < 64; k++) fprintf(stderr, " %02x", p[k]);
            fprintf(stderr, "\n");
        }
        FUZZ_CHECK(close_code == e->error || close_code == e->either);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t hl = nul ? (size_t)(nul - data) : size;
    const uint8_t *frames = nul ? nul + 1 : data + size;
    size_t flen = (size_t)(data + size - frames);
    /* Header lines, CRLF-terminated; blank ones are left out, and so are
     * lines starting with ':' (libmicrohttpd ends a head there), so the head
     * ends where the harness ends it and the frames are read as frames. */
    char *extra = malloc(2 * hl + 3);
    size_t o = 0;
    for (size_t i = 0; i < hl;) {
        const uint8_t *lf = memchr(data + i, '\n', hl - i);
        size_t n = lf ? (size_t)(lf - (data + i)) : hl - i;
        size_t m = n;
        while (m && data[i + m - 1] == '\r') m--;
        if (m && data[i] != ':') {
            memcpy(extra + o, data + i, m);
            o += m;
            extra[o++] = '\r';
            extra[o++] = '\n';
        }
        i += n + 1;
    }
    extra[o] = '\0';
    char head[512];
    int n = snprintf(head, sizeof head, "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n");
    expect e;
    read_client(frames, flen, &e);
    flen = e.stop;
    size_t total = (size_t)n + o + 2 + flen;
    char *req = malloc(total);
    memcpy(req, head, (size_t)n);
    memcpy(req + n, extra, o);
    memcpy(req + n + o, "\r\n", 2);
    memcpy(req + n + o + 2, frames, flen);
    free(extra);

    size_t got;
    char *out = fuzz_exchange_all(port, req, total, &got);
    fuzz_response r;
    size_t used = fuzz_parse_response(out, got, true, &r);
    FUZZ_CHECK(used > 0 && r.status != 0);
    if (r.status == 101) {
        char accept[64];
        FUZZ_CHECK(fuzz_response_header(&r, "Sec-WebSocket-Accept", accept, sizeof accept) &&
                   strcmp(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
        check_server((const uint8_t *)out + used, got - used, &e);
    } else {
        fuzz_parse_response(out, got, false, &r);
        fuzz_check_error_shape(&r);
    }
    expect_free(&e);
    free(out);
    free(req);
    return 0;
}
