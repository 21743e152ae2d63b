/* fuzz.c — see fuzz.h. */
#include "fuzz.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int fuzz_split(const uint8_t *data, size_t size, char **field, int max, char **buf)
{
    char *copy = malloc(size + 1);
    if (!copy) abort();
    memcpy(copy, data, size);
    copy[size] = '\0';
    int n = 0;
    char *p = copy, *end = copy + size;
    while (n < max) {
        field[n++] = p;
        char *nul = memchr(p, '\0', (size_t)(end - p));
        if (!nul || nul == end) { p = end; break; }
        p = nul + 1;
    }
    int real = n;
    while (n < max) field[n++] = end;   /* "" */
    *buf = copy;
    return real;
}

uint64_t fuzz_u64(const char *s)
{
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) v = v * 10 + (uint64_t)(*s - '0');
    return v;
}

/* ---------- the client ---------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *exchange(uint16_t port, const void *req, size_t len, size_t *out_len, bool streams)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) FUZZ_CHECK(errno == EINPROGRESS);
    size_t cap = 65536, got = 0, sent = 0;
    char *out = malloc(cap + 1);
    bool writing = true;
    if (len == 0) { shutdown(fd, SHUT_WR); writing = false; }
    double deadline = now_s() + FUZZ_SERVER_TIMEOUT;
    for (;;) {
        double left = deadline - now_s();
        if (left <= 0) {
            fprintf(stderr, "\nthe server neither answered nor closed within %d s "
                            "(sent %zu of %zu bytes, read %zu)\n",
                    FUZZ_SERVER_TIMEOUT, sent, len, got);
            __builtin_trap();
        }
        struct pollfd p = {fd, POLLIN | (writing ? POLLOUT : 0), 0};
        if (poll(&p, 1, (int)(left * 1000) + 1) < 0) continue;
        if (writing && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = send(fd, (const char *)req + sent, len - sent, MSG_NOSIGNAL);
            if (w > 0) sent += (size_t)w;
            if (w < 0 && errno != EAGAIN && errno != EINTR) writing = false;   /* closed on us */
            if (writing && sent == len) {
                /* The FIN goes apart from the last bytes when the server
                 * answers within a few milliseconds: libmicrohttpd can miss
                 * a FIN read together with data (the watchdog then closes
                 * the connection within ~2 s, which would slow fuzzing). */
                struct pollfd q = {fd, POLLIN, 0};
                poll(&q, 1, 5);
                shutdown(fd, SHUT_WR);
                writing = false;
            }
        }
        if (p.revents & (POLLIN | POLLERR | POLLHUP)) {
            if (got == cap) out = realloc(out, (cap *= 2) + 1);
            ssize_t r = recv(fd, out + got, cap - got, 0);
            if (r > 0) {
                got += (size_t)r;
                out[got] = '\0';
                /* A WebSocket or an event stream stays open by design:
                 * its head is all there is to check. */
                if (streams && (memmem(out, got, "HTTP/1.1 101 ", 13) ||
                                memmem(out, got, "Content-Type: text/event-stream", 31)))
                    break;
                continue;
            }
            if (r == 0 || (errno != EAGAIN && errno != EINTR)) break;   /* EOF or reset */
        }
    }
    close(fd);
    out[got] = '\0';
    *out_len = got;
    return out;
}

char *fuzz_exchange(uint16_t port, const void *req, size_t len, size_t *out_len)
{
    return exchange(port, req, len, out_len, true);
}

char *fuzz_exchange_all(uint16_t port, const void *req, size_t len, size_t *out_len)
{
    return exchange(port, req, len, out_len, false);
}

/* ---------- responses ---------- */

static char head_copy[65536], body_copy[1 << 20];

bool fuzz_response_header(const fuzz_response *r, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    for (const char *line = strstr(r->head, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ' || *v == '\t') v++;
            size_t vl = strcspn(v, "\r");
            if (vl >= cap) vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return true;
        }
    }
    return false;
}

/* Decodes a chunked body from p[0..n) into body_copy; returns bytes used or 0. */
static size_t dechunk(const char *p, size_t n, size_t *body_len)
{
    size_t i = 0, o = 0;
    for (;;) {
        char *end;
        const char *line_end = memmem(p + i, n - i, "\r\n", 2);
        if (!line_end) return 0;
        unsigned long long sz = strtoull(p + i, &end, 16);
        i = (size_t)(line_end - p) + 2;
        if (sz == 0) {   /* trailers up to an empty line */
            const char *t = memmem(p + i - 2, n - i + 2, "\r\n\r\n", 4);
            if (!t) return 0;
            *body_len = o;
            return (size_t)(t - p) + 4;
        }
        if (sz > n - i || n - i - sz < 2) return 0;
        if (o + sz < sizeof body_copy) memcpy(body_copy + o, p + i, sz);
        o += sz;
        i += sz + 2;
    }
}

size_t fuzz_parse_response(const char *buf, size_t len, bool head_request, fuzz_response *r)
{
    memset(r, 0, sizeof *r);
    r->head = head_copy;
    r->body = body_copy;
    head_copy[0] = body_copy[0] = '\0';
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t hlen = (size_t)(end - buf) + 2;   /* keeps the last header's CRLF */
    if (hlen >= sizeof head_copy) return 0;
    memcpy(head_copy, buf, hlen);
    head_copy[hlen] = '\0';
    if (strncmp(head_copy, "HTTP/1.1 ", 9) == 0 && head_copy[9] >= '1' && head_copy[9] <= '5' &&
        head_copy[10] >= '0' && head_copy[10] <= '9' && head_copy[11] >= '0' &&
        head_copy[11] <= '9' && head_copy[12] == ' ')
        r->status = atoi(head_copy + 9);
    size_t at = hlen + 2, rest = len - at;
    const char *b = buf + at;
    char v[64];
    /* A pipelined HEAD's answer: what follows its head is the next answer. */
    bool next = rest >= 13 && memcmp(b, "HTTP/1.1 ", 9) == 0 && b[9] >= '1' && b[9] <= '5';
    if (head_request || next || r->status < 200 || r->status == 204 || r->status == 304) {
        r->complete = true;
        return at;
    }
    if (fuzz_response_header(r, "Transfer-Encoding", v, sizeof v) && strcasecmp(v, "chunked") == 0) {
        size_t used = dechunk(b, rest, &r->body_len);
        if (!used) return len;
        if (r->body_len >= sizeof body_copy) r->body_len = sizeof body_copy - 1;
        body_copy[r->body_len] = '\0';
        r->complete = true;
        return at + used;
    }
    size_t n = rest;
    if (fuzz_response_header(r, "Content-Length", v, sizeof v)) {
        unsigned long long cl = strtoull(v, NULL, 10);
        r->complete = cl <= rest;
        if (cl < n) n = (size_t)cl;
    } else {
        r->complete = true;   /* delimited by the close */
    }
    if (n >= sizeof body_copy) n = sizeof body_copy - 1;
    memcpy(body_copy, b, n);
    body_copy[n] = '\0';
    r->body_len = n;
    return at + n;
}

void fuzz_check_error_shape(const fuzz_response *r)
{
    if (r->status == 500) {
        fprintf(stderr, "\n500 from the server:\n%s\n%s\n", r->head, r->body);
        __builtin_trap();
    }
    if (r->status < 400) return;
    char type[128] = "", id[80];
    fuzz_response_header(r, "Content-Type", type, sizeof type);
    bool json = strncmp(type, "application/json", 16) == 0;
    if (!json && !fuzz_response_header(r, "X-Request-Id", id, sizeof id)) {
        /* Not ours: libmicrohttpd refused the request's syntax before any of
         * our code ran, with its own HTML page, and closes.  The framing
         * guard answers those heads in JSON (without X-Request-Id: there is
         * no request yet), except after a head it does not follow
         * (docs/architecture.md, limits); anything else from libmicrohttpd
         * (a 500) is a defect. */
        char conn[32] = "";
        fuzz_response_header(r, "Connection", conn, sizeof conn);
        if ((r->status == 400 || r->status == 413 || r->status == 414 || r->status == 431 ||
             r->status == 505) &&
            strcasecmp(conn, "close") == 0)
            return;
        fprintf(stderr, "\nlibmicrohttpd's own error page:\n%s\n%.300s\n", r->head, r->body);
        __builtin_trap();
    }
    if (!json) {
        fprintf(stderr, "\nan error that is not JSON:\n%s\n%.300s\n", r->head, r->body);
        __builtin_trap();
    }
    if (!r->complete || r->body_len == 0) return;   /* HEAD, or cut short by a reset */
    json_t *doc = json_loadb(r->body, r->body_len, 0, NULL);
    json_t *e = json_object_get(doc, "error");
    bool ok = json_is_string(json_object_get(e, "code")) &&
              json_is_string(json_object_get(e, "message"));
    json_decref(doc);
    if (!ok) {
        fprintf(stderr, "\nan error body without the error shape:\n%s\n%.300s\n", r->head,
                r->body);
        __builtin_trap();
    }
}
