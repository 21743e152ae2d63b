/* framing.c — see framing.h.
 *
 * The state machine mirrors what libmicrohttpd 0.9.75 (connection.c)
 * accepts, so that the guard and libmicrohttpd always agree on where a
 * request ends:
 *   - lines end at LF, a CR before it is dropped; empty lines before a
 *     request line are skipped; a line starting with NUL counts as empty;
 *   - a header is "name:" exactly (no space before the colon), its value
 *     starts after spaces and tabs; the first Content-Length counts; a body
 *     is chunked when the (only) Transfer-Encoding is "chunked", any case;
 *   - a header line that starts with ':', other than the first, ends the
 *     head as a blank line would (libmicrohttpd's reading, found by
 *     fuzzing: missing it let a chunk size after such a line go unchecked);
 *   - a chunk line is 1*HEXDIG, then ";" and anything, or CR? LF; chunk
 *     data ends with CRLF or a bare LF; trailer lines end at an empty line.
 * A NUL byte inside a header field refuses the request (400), which the
 * server answers when it begins it.  Anything else odd in a head (a
 * continuation line of Content-Length or Transfer-Encoding, a framing field
 * longer than the bytes kept of a line) stops the guard for the connection
 * rather than risk disagreeing.
 */
#include "http/framing.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* At most this much unread input is dropped before a refused connection
 * closes (see framing_release). */
#define DRAIN_MAX (1u << 20)
/* The fd table's size when RLIMIT_NOFILE says nothing useful, and its cap
 * (one pointer per fd; untouched pages cost nothing). */
#define SLOTS_DEFAULT 65536
#define SLOTS_CAP (1u << 20)

/* The order matters: ST_SIZE..ST_DATA_LF are "inside a chunked body". */
typedef enum {
    ST_START,      /* before a request line: empty lines are skipped */
    ST_HEAD,       /* header lines */
    ST_FIXED,      /* a Content-Length body: `left` bytes to go */
    ST_SIZE,       /* a chunk line: size digits */
    ST_EXT,        /* a chunk line: the rest (extensions) */
    ST_DATA,       /* chunk data: `left` bytes to go */
    ST_DATA_END,   /* the CRLF or LF after chunk data */
    ST_DATA_LF,    /* its LF */
    ST_TRAILER,    /* trailer lines, up to an empty line */
    ST_PENDING,    /* refused before the server began the request */
    ST_HELD,       /* a head refused behind requests still being answered */
    ST_SENT,       /* refused and replied: reads see end-of-file */
    ST_OFF,        /* not guarding */
} state;

typedef enum {
    REFUSE_NONE, REFUSE_LINE, REFUSE_MALFORMED, REFUSE_TOO_LARGE, REFUSE_NUL,
    /* heads libmicrohttpd would refuse with its own page (see head_refuse) */
    REFUSE_REQUEST_LINE, REFUSE_VERSION, REFUSE_URI_LONG, REFUSE_HEAD_LARGE,
    REFUSE_FIELD, REFUSE_LENGTH, REFUSE_LENGTH_LARGE
} refusal_kind;

/* A token of the request line: where it starts, its length, its first
 * bytes (enough for "HTTP/1.1"). */
typedef struct token {
    uint32_t start, len;
    char text[8];
} token;

struct framing {
    int fd;
    state st;
    uint64_t max_body;       /* the limit before the route is known */
    uint64_t limit;          /* the limit of the body being read */
    uint64_t left;           /* ST_FIXED, ST_DATA */
    uint64_t declared;       /* chunk sizes of this body, lines complete */
    uint64_t size;           /* ST_SIZE, ST_EXT: this chunk line's size */
    uint32_t line_len;       /* bytes of the current line before its LF */
    bool cr;                 /* the line's last byte so far is CR */
    bool digits;             /* ST_SIZE: a digit was seen */
    /* the head being read */
    char line[64];           /* the first bytes of the current line */
    bool odd;                /* something the guard does not follow */
    bool nul;                /* a NUL byte inside a header field */
    bool colon, line_nul;    /* this line has a ':' before any NUL; a NUL */
    uint32_t head_len;       /* bytes of the head after its request line */
    uint32_t head_max;       /* the most a head (and a request line) may have */
    /* the request line, as it streams by */
    uint32_t space;          /* where its first space is, plus one (0: none yet) */
    uint32_t target;         /* where the target starts, plus one (0: not yet) */
    token cur;               /* its last token so far */
    bool has_length, bad_length, huge_length;
    bool framing_field;      /* the last field line was Content-Length or Transfer-Encoding */
    uint64_t length;
    int codings;             /* Transfer-Encoding fields */
    unsigned fields;         /* header lines so far */
    bool chunked;            /* ... and the first one says "chunked" */
    /* requests */
    unsigned heads;          /* request heads read */
    unsigned begun;          /* requests the server has begun */
    unsigned completed;      /* requests the server has finished (replied) */
    unsigned refused_head;   /* ST_PENDING: the head whose request is refused */
    refusal_kind refused;
    bool replied;            /* the guard wrote the reply for the current request */
    bool head_cut;           /* ... for a head libmicrohttpd never completes */
    uint64_t lingered;       /* input dropped since (see linger) */
    bool drain;              /* a reply before the body: drain at close */
    int sent_status;
    uint64_t sent_len;
    char request_id[72];
};

/* ---------- the C library's recv ---------- */

typedef ssize_t (*recv_fn)(int, void *, size_t, int);

static ssize_t sys_recv(int fd, void *buf, size_t len, int flags)
{
    return syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
}

static _Atomic(recv_fn) next_recv;

/* The recv() this file hides: the C library's, or a sanitizer's wrapper of
 * it (ASan's interceptor comes next after the executable, and still checks
 * the buffer). */
static ssize_t real_recv(int fd, void *buf, size_t len, int flags)
{
    recv_fn f = atomic_load_explicit(&next_recv, memory_order_acquire);
    if (!f) {
        f = (recv_fn)dlsym(RTLD_NEXT, "recv");
        if (!f || f == recv) f = sys_recv;
        atomic_store_explicit(&next_recv, f, memory_order_release);
    }
    return f(fd, buf, len, flags);
}

/* ---------- the fd table ---------- */

static _Atomic(framing *) *_Atomic slots;
static size_t nslots;   /* written before slots is published */
static pthread_once_t slots_once = PTHREAD_ONCE_INIT;

static void slots_init(void)
{
    struct rlimit rl;
    size_t n = SLOTS_DEFAULT;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
        rl.rlim_max > n)
        n = rl.rlim_max > SLOTS_CAP ? SLOTS_CAP : (size_t)rl.rlim_max;
    _Atomic(framing *) *t = calloc(n, sizeof *t);   /* lives as long as the process */
    if (!t) return;
    nslots = n;
    atomic_store_explicit(&slots, t, memory_order_release);
}

static framing *guard_of(int fd)
{
    _Atomic(framing *) *t = atomic_load_explicit(&slots, memory_order_acquire);
    if (!t || fd < 0 || (size_t)fd >= nslots) return NULL;
    return atomic_load_explicit(&t[fd], memory_order_acquire);
}

static void unregister(framing *g)
{
    _Atomic(framing *) *t = atomic_load_explicit(&slots, memory_order_acquire);
    framing *expected = g;
    if (t) atomic_compare_exchange_strong(&t[g->fd], &expected, NULL);
}

/* ---------- refusals ---------- */

static void describe(const framing *g, refusal_kind kind, framing_refusal *out)
{
    out->status = kind == REFUSE_TOO_LARGE || kind == REFUSE_LENGTH_LARGE ? 413 : 400;
    out->code = out->status == 413 ? "payload_too_large" : "bad_request";
    if (kind == REFUSE_VERSION) {
        out->status = 505;
        out->code = "http_version_not_supported";
        snprintf(out->message, sizeof out->message, "only HTTP/1.0 and HTTP/1.1 are served");
    } else if (kind == REFUSE_URI_LONG) {
        out->status = 414;
        out->code = "uri_too_long";
        snprintf(out->message, sizeof out->message, "the request line is longer than %u bytes",
                 (unsigned)g->head_max);
    } else if (kind == REFUSE_HEAD_LARGE) {
        out->status = 431;
        out->code = "header_fields_too_large";
        snprintf(out->message, sizeof out->message,
                 "the header fields take more than %u bytes or %d lines", (unsigned)g->head_max,
                 FRAMING_FIELDS_MAX);
    } else if (kind == REFUSE_REQUEST_LINE)
        snprintf(out->message, sizeof out->message,
                 "malformed request line: expected 'METHOD target HTTP/1.1'");
    else if (kind == REFUSE_FIELD)
        snprintf(out->message, sizeof out->message, "malformed header field: no ':'");
    else if (kind == REFUSE_LENGTH)
        snprintf(out->message, sizeof out->message, "malformed Content-Length");
    else if (kind == REFUSE_LENGTH_LARGE)
        snprintf(out->message, sizeof out->message, "the Content-Length does not fit in 64 bits");
    else if (kind == REFUSE_LINE)
        snprintf(out->message, sizeof out->message, "a chunk line is longer than %d bytes",
                 CHUNK_LINE_MAX);
    else if (kind == REFUSE_MALFORMED)
        snprintf(out->message, sizeof out->message, "malformed chunked encoding");
    else if (kind == REFUSE_NUL)
        snprintf(out->message, sizeof out->message, "a header field contains a NUL byte");
    else
        snprintf(out->message, sizeof out->message,
                 "the chunk sizes add up to more than %llu bytes, the limit",
                 (unsigned long long)g->limit);
}

/* Writes the refusal as the reply to the current request and shuts the
 * socket for writing.  libmicrohttpd is reading the body, so it has nothing
 * queued to write; the socket's buffer is empty and takes the few hundred
 * bytes at once (if not, the client gets a truncated reply and the close). */
static void send_refusal(framing *g, refusal_kind kind)
{
    framing_refusal f;
    describe(g, kind, &f);
    char body[256];
    int blen = snprintf(body, sizeof body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
                        f.code, f.message);
    /* The IMF-fixdate by hand: strftime's names follow the locale. */
    static const char days[] = "SunMonTueWedThuFriSat", months[] = "JanFebMarAprMayJun"
                                                                   "JulAugSepOctNovDec";
    struct tm tm;
    time_t now = time(NULL);
    gmtime_r(&now, &tm);
    char date[40];
    snprintf(date, sizeof date, "%.3s, %02d %.3s %d %02d:%02d:%02d GMT", days + 3 * tm.tm_wday,
             tm.tm_mday, months + 3 * tm.tm_mon, tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
    const char *reason = f.status == 413   ? "Content Too Large"
                         : f.status == 414 ? "URI Too Long"
                         : f.status == 431 ? "Request Header Fields Too Large"
                         : f.status == 505 ? "HTTP Version Not Supported"
                                           : "Bad Request";
    char msg[768];
    /* A head refused before the server saw it has no request id. */
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d\r\n"
                     "%s%s%s\r\n%s",
                     f.status, reason, date, blen, g->request_id[0] ? "X-Request-Id: " : "",
                     g->request_id, g->request_id[0] ? "\r\n" : "", body);
    for (int off = 0; off < n;) {
        ssize_t w = send(g->fd, msg + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (int)w;
    }
    shutdown(g->fd, SHUT_WR);
    g->sent_status = f.status;
    g->sent_len = (uint64_t)blen;
}

/* The request in whose body byte `at` is gets refused.  True if following
 * the stream goes on (the reply is written and the body is drained); false
 * if libmicrohttpd gets only the bytes before `at` (recv() then says what
 * comes next: nothing yet, or end-of-file).
 *
 * A refusal is final when the framing is broken (a line too long, malformed
 * chunking) or the declared body passes the limit by more than the server
 * would drain (FRAMING_DISCARD_MAX): nothing sensible follows, so the
 * connection ends.  A body that is over the limit by less is drained after
 * the reply, as the server does when a route refuses a body part way: many
 * clients read no reply before they have sent their whole body, and would
 * see a reset instead of the 413. */
static bool refuse(framing *g, refusal_kind kind, bool final)
{
    if (g->replied) {   /* draining: the connection ends here */
        g->st = ST_SENT;
        return false;
    }
    g->refused = kind;
    if (g->heads > g->begun) {   /* not begun: the server replies when it begins it */
        g->st = ST_PENDING;
        g->refused_head = g->heads;
        return false;
    }
    send_refusal(g, kind);
    g->replied = true;
    if (final) g->st = ST_SENT;
    return !final;
}

/* ---------- heads and trailers ---------- */

static bool header_is(const char *line, uint32_t len, const char *name, size_t n)
{
    return len >= n && strncasecmp(line, name, n) == 0;
}

/* A header line's value: after the colon and any spaces and tabs. */
static const char *value_of(const char *line, uint32_t len, size_t name_len, uint32_t *vlen)
{
    size_t i = name_len;
    while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
    *vlen = (uint32_t)(len - i);
    return line + i;
}

static void head_field(framing *g, uint32_t len)
{
    const char *line = g->line;
    /* A continuation line matters only when it continues a framing field */
    if (line[0] == ' ' || line[0] == '\t') {
        if (g->framing_field) g->odd = true;
        return;
    }
    bool length = header_is(line, len, "content-length:", 15);
    bool coding = header_is(line, len, "transfer-encoding:", 18);
    g->framing_field = length || coding;
    if (!length && !coding) return;
    if (len > sizeof g->line && coding) { g->odd = true; return; }   /* more than we kept */
    uint32_t vlen;
    if (coding) {
        const char *v = value_of(line, len, 18, &vlen);
        if (g->codings++ == 0) g->chunked = vlen == 7 && strncasecmp(v, "chunked", 7) == 0;
        return;
    }
    if (g->has_length) return;   /* libmicrohttpd uses the first (the server refuses two) */
    g->has_length = true;
    uint32_t kept = len > sizeof g->line ? (uint32_t)sizeof g->line : len;
    const char *v = value_of(line, kept, 15, &vlen);
    uint64_t n = 0;
    uint32_t i = 0;
    for (; i < vlen && v[i] >= '0' && v[i] <= '9'; i++) {
        unsigned d = (unsigned)(v[i] - '0');
        if (n > (UINT64_MAX - d) / 10) {   /* libmicrohttpd: 413, whatever follows */
            g->bad_length = g->huge_length = true;
            return;
        }
        n = n * 10 + d;
    }
    /* Digits (or spaces) up to where the line was cut: what follows decides */
    if (i == vlen && len > kept) { g->odd = true; return; }
    g->bad_length = vlen == 0 || i < vlen;
    g->length = n;
}

/* The blank line after a head: how is the body framed? */
static void head_end(framing *g)
{
    g->heads++;
    if (g->nul) {   /* the whole head goes to the server, which refuses it */
        g->refused = REFUSE_NUL;
        g->refused_head = g->heads;
        g->st = ST_PENDING;
        return;
    }
    if (g->odd || g->codings > 1 || (g->codings == 1 && !g->chunked) ||
        (g->codings == 0 && g->has_length && g->bad_length)) {
        g->st = ST_OFF;   /* refused by the server or libmicrohttpd, or beyond us */
    } else if (g->codings == 1) {
        g->st = ST_SIZE;
        g->limit = g->max_body;
        g->declared = g->size = 0;
        g->digits = false;
    } else if (g->has_length && g->length > 0) {
        g->st = ST_FIXED;
        g->left = g->length;
    } else {
        g->st = ST_START;
    }
}

/* Writes the refusal of a head that has no request (and no request id). */
static void head_reply(framing *g)
{
    g->request_id[0] = '\0';
    send_refusal(g, g->refused);
    g->head_cut = true;
    g->st = ST_SENT;
}

/* A head libmicrohttpd would refuse itself, with an HTML page of its own
 * or by closing without a word (see framing.h).  libmicrohttpd gets the
 * bytes before the offending one, so it never completes the line that would
 * make it refuse.  When every earlier request of the connection is
 * finished, libmicrohttpd has nothing to send and is reading this head: the
 * guard writes the JSON reply now, and libmicrohttpd's next read sees
 * end-of-file (it closes without writing).  Otherwise (pipelined requests
 * still being answered) reads see nothing more until the server has
 * finished them: framing_request_end() then writes the reply. */
static void head_refuse(framing *g, refusal_kind kind)
{
    g->refused = kind;
    if (g->completed == g->heads) head_reply(g);
    else g->st = ST_HELD;
}

/* Would libmicrohttpd take this request line (len bytes, CR LF excluded)?
 * Its reading (parse_initial_message_line): the method is what precedes the
 * first space, not empty (else it closes without a word); the target starts
 * after the spaces that follow; the version is what follows the last space
 * before the line's last non-space byte, trailing spaces included, if that
 * space lies past the target's start, else it is missing (400); it must be
 * "HTTP/d.d" (400: so no trailing space), with major version 1 (505). */
static refusal_kind request_line_check(const framing *g, uint32_t len)
{
    if (g->space <= 1 || g->target == 0 || g->target > len) return REFUSE_REQUEST_LINE;
    const token *v = &g->cur;   /* empty if the line ends with a space */
    if (v->len == 0 || v->start <= g->target - 1) return REFUSE_REQUEST_LINE;
    const char *h = v->text;
    if (v->len != 8 || memcmp(h, "HTTP/", 5) != 0 || h[6] != '.' || h[5] < '0' || h[5] > '9' ||
        h[7] < '0' || h[7] > '9')
        return REFUSE_REQUEST_LINE;
    return h[5] == '1' ? REFUSE_NONE : REFUSE_VERSION;
}

/* One byte of a request line at index i (a final CR included). */
static void request_line_byte(framing *g, char c, uint32_t i)
{
    if (c == ' ') {
        if (!g->space) g->space = i + 1;
        g->cur.len = 0;
        return;
    }
    if (g->space && !g->target) g->target = i + 1;
    if (g->cur.len == 0) g->cur.start = i;
    if (g->cur.len < sizeof g->cur.text) g->cur.text[g->cur.len] = c;
    g->cur.len++;
}

/* The end of a head: its blank line, or a field line starting with ':'. */
static void head_complete(framing *g)
{
    /* libmicrohttpd reads the Content-Length of any body not chunked */
    if (g->has_length && g->bad_length && !g->chunked && !g->odd)
        head_refuse(g, g->huge_length ? REFUSE_LENGTH_LARGE : REFUSE_LENGTH);
    else
        head_end(g);
}

/* A whole line of a head or trailer section has been read. */
static void line_end(framing *g)
{
    uint32_t len = g->line_len - (g->cr ? 1 : 0);
    bool empty = len == 0 || g->line[0] == '\0';
    /* libmicrohttpd wants a ':' (before any NUL) in every field line (head
     * or trailer) but a continuation, which the first one cannot be. */
    bool folded = g->line[0] == ' ' || g->line[0] == '\t';
    if (g->st == ST_START) {
        if (g->cr && g->cur.len) g->cur.len--;   /* the CR is no part of the version */
        refusal_kind bad = empty ? REFUSE_NONE : request_line_check(g, len);
        if (bad != REFUSE_NONE) {
            head_refuse(g, bad);
        } else if (!empty) {   /* the request line */
            g->st = ST_HEAD;
            g->odd = g->nul = g->has_length = g->bad_length = g->huge_length = g->chunked = false;
            g->framing_field = false;
            g->codings = 0;
            g->fields = 0;
            g->head_len = 0;
        }
    } else if (g->st == ST_HEAD) {
        if (empty) {
            head_complete(g);
        } else if (!g->colon && (g->fields == 0 || !folded)) {
            head_refuse(g, REFUSE_FIELD);
        } else if (g->fields >= FRAMING_FIELDS_MAX) {
            head_refuse(g, REFUSE_HEAD_LARGE);
        } else {
            head_field(g, len);
            /* libmicrohttpd zeroes a field's colon, then tests the line for
             * the blank one: a field line that starts with ':' ends its head
             * (but for the head's first field, tested before). */
            if (g->line[0] == ':' && g->fields > 0) head_complete(g);
            g->fields++;
        }
    } else if (empty) {   /* ST_TRAILER: the request is over */
        g->st = g->replied ? ST_SENT : ST_START;
    } else if (!g->colon && (g->fields == 0 || !folded)) {   /* the body is being read */
        refuse(g, REFUSE_FIELD, true);
    } else if (g->fields++ >= FRAMING_FIELDS_MAX) {
        refuse(g, REFUSE_HEAD_LARGE, true);
    }
    g->line_len = 0;
    g->cr = g->colon = g->line_nul = false;
    g->space = g->target = 0;
    g->cur.len = 0;
}

static void line_byte(framing *g, char c)
{
    if (c == '\n') { line_end(g); return; }
    if (g->st == ST_START) request_line_byte(g, c, g->line_len);
    if (g->line_len < sizeof g->line) g->line[g->line_len] = c;
    if (g->line_len < UINT32_MAX) g->line_len++;
    g->cr = c == '\r';
    if (c == ':' && !g->line_nul) g->colon = true;
    if (c == '\0') g->line_nul = true;
    /* libmicrohttpd would cut the field there ("Bearer KEY\0junk" would read
     * as the key): RFC 9110 §5.5 lets us reject the message instead. */
    if (c == '\0' && g->st == ST_HEAD && g->line_len > 1) g->nul = true;
    /* Past what libmicrohttpd's buffer holds it would answer 414 or 431 */
    if (!g->head_max) return;
    if (g->st == ST_START && g->line_len > g->head_max)
        head_refuse(g, REFUSE_URI_LONG);
    else if (g->st == ST_HEAD && ++g->head_len > g->head_max)
        head_refuse(g, REFUSE_HEAD_LARGE);
    else if (g->st == ST_TRAILER && ++g->head_len > g->head_max)
        refuse(g, REFUSE_HEAD_LARGE, true);
}

/* ---------- chunk lines ---------- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The most the body may declare before the connection must end: the limit,
 * plus what the server drains after a refusal. */
static uint64_t ceiling(const framing *g)
{
    return g->limit > UINT64_MAX - FRAMING_DISCARD_MAX ? UINT64_MAX
                                                        : g->limit + FRAMING_DISCARD_MAX;
}

typedef enum { CHUNK_OK, CHUNK_REFUSED, CHUNK_OVER } chunk_result;

/* The LF of a chunk line. */
static chunk_result chunk_line_end(framing *g)
{
    bool over = !g->replied && g->size > g->limit - g->declared;
    g->declared += g->size;
    g->left = g->size;
    g->st = g->size ? ST_DATA : ST_TRAILER;
    g->head_len = g->fields = 0;   /* for the trailer */
    g->size = 0;
    g->digits = false;
    g->line_len = 0;
    g->cr = false;
    return over ? CHUNK_OVER : CHUNK_OK;
}

/* One byte of a chunk line.  CHUNK_REFUSED: the request is refused for good
 * (*kind says why); CHUNK_OVER: the line is complete and takes the body past
 * the limit.  Invariant: declared <= ceiling(g), and declared <= limit until
 * the request is refused. */
static chunk_result chunk_byte(framing *g, char c, refusal_kind *kind)
{
    if (++g->line_len > CHUNK_LINE_MAX) { *kind = REFUSE_LINE; return CHUNK_REFUSED; }
    if (g->st == ST_EXT) return c == '\n' ? chunk_line_end(g) : CHUNK_OK;
    *kind = REFUSE_MALFORMED;
    if (g->cr)   /* only LF may follow the size's CR */
        return c == '\n' ? chunk_line_end(g) : CHUNK_REFUSED;
    int d = hex_value(c);
    if (d >= 0) {
        g->digits = true;
        uint64_t room = ceiling(g) - g->declared;
        if ((uint64_t)d > room || g->size > (room - (uint64_t)d) / 16) {
            *kind = REFUSE_TOO_LARGE;
            return CHUNK_REFUSED;
        }
        g->size = g->size * 16 + (uint64_t)d;
        return CHUNK_OK;
    }
    if (!g->digits) return CHUNK_REFUSED;
    if (c == ';') g->st = ST_EXT;
    else if (c == '\r') g->cr = true;
    else if (c == '\n') return chunk_line_end(g);
    else return CHUNK_REFUSED;
    return CHUNK_OK;
}

/* ---------- the stream ---------- */

/* Follows n bytes of the connection; returns how many libmicrohttpd may
 * have: n, or fewer when a request got refused. */
static size_t follow(framing *g, const char *p, size_t n)
{
    size_t i = 0;
    refusal_kind kind;
    while (i < n) {
        switch (g->st) {
        case ST_FIXED:
        case ST_DATA: {
            uint64_t k = n - i < g->left ? n - i : g->left;
            i += (size_t)k;
            g->left -= k;
            if (g->left == 0) g->st = g->st == ST_FIXED ? ST_START : ST_DATA_END;
            break;
        }
        case ST_SIZE:
        case ST_EXT: {
            chunk_result res = chunk_byte(g, p[i], &kind);
            if (res == CHUNK_REFUSED && !refuse(g, kind, true)) return i;
            if (res == CHUNK_OVER && !refuse(g, REFUSE_TOO_LARGE, false)) return i;
            i++;
            break;
        }
        case ST_DATA_END:
        case ST_DATA_LF:
            if (p[i] == '\n') g->st = ST_SIZE;
            else if (p[i] == '\r' && g->st == ST_DATA_END) g->st = ST_DATA_LF;
            else if (!refuse(g, REFUSE_MALFORMED, true)) return i;
            i++;
            break;
        case ST_START:
        case ST_HEAD:
        case ST_TRAILER:
            line_byte(g, p[i++]);
            /* A head refused for a NUL byte: it goes to libmicrohttpd, what
             * follows it waits, however the bytes were split into reads. */
            if (g->st == ST_PENDING) return i;
            if (g->st == ST_SENT || g->st == ST_HELD) return i - 1;   /* a head refused */
            break;
        default:   /* ST_PENDING, ST_HELD, ST_SENT, ST_OFF */
            return n;
        }
    }
    return n;
}

/* After a head's refusal (head_reply): the client has the reply and the
 * end of our stream, and may still be sending.  Closing with input unread
 * would reset the connection, which can destroy the reply before the client
 * reads it; so input is read and dropped (up to DRAIN_MAX) until the client
 * closes, and only then does libmicrohttpd see end-of-file.  A client that
 * never closes meets the header deadline (timeouts.h). */
static ssize_t linger(framing *g)
{
    char scratch[8192];
    for (;;) {
        ssize_t n = real_recv(g->fd, scratch, sizeof scratch, MSG_DONTWAIT);
        if (n > 0 && (g->lingered += (uint64_t)n) < DRAIN_MAX) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            errno = EAGAIN;
            return -1;
        }
        return 0;
    }
}

/* recv() for libmicrohttpd: every read of a connection socket comes here.
 * The executable's definition wins over the C library's (and a sanitizer
 * runtime's) for every library in the process. */
ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    framing *g = flags == 0 ? guard_of(fd) : NULL;
    if (!g) return real_recv(fd, buf, len, flags);
    if (g->st == ST_PENDING || g->st == ST_HELD) {   /* nothing until the server gets there */
        errno = EAGAIN;
        return -1;
    }
    if (g->st == ST_SENT) return g->head_cut ? linger(g) : 0;
    ssize_t n = real_recv(fd, buf, len, flags);
    if (n <= 0 || g->st == ST_OFF) return n;
    size_t pass = follow(g, buf, (size_t)n);
    if (g->st == ST_OFF) unregister(g);
    if (g->st == ST_SENT) return g->head_cut ? (ssize_t)pass : 0;   /* then end-of-file */
    if ((g->st == ST_PENDING || g->st == ST_HELD) && pass == 0) {
        errno = EAGAIN;
        return -1;
    }
    return (ssize_t)pass;
}

/* ---------- the server's side ---------- */

framing *framing_track(int fd, uint64_t max_body, uint32_t head_max)
{
    pthread_once(&slots_once, slots_init);
    _Atomic(framing *) *t = atomic_load_explicit(&slots, memory_order_acquire);
    if (!t || fd < 0 || (size_t)fd >= nslots) return NULL;
    framing *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->fd = fd;
    g->st = ST_START;
    g->max_body = g->limit = max_body;
    g->head_max = head_max;
    atomic_store_explicit(&t[fd], g, memory_order_release);
    return g;
}

/* Hands a refusal to the server, which replies with it. */
static bool hand_over(framing *g, refusal_kind kind, framing_refusal *out)
{
    g->refused = kind;
    describe(g, kind, out);
    framing_stop(g, true);
    return true;
}

bool framing_request_begin(framing *g, const char *request_id, framing_refusal *out)
{
    if (!g) return false;
    g->begun++;
    snprintf(g->request_id, sizeof g->request_id, "%s", request_id);
    if (g->st == ST_PENDING && g->refused_head == g->begun)
        return hand_over(g, g->refused, out);
    return false;
}

bool framing_request_limit(framing *g, uint64_t limit, framing_refusal *out)
{
    /* Only while this request's chunked body is being read; a request whose
     * body was read whole before it began is its route's to check. */
    if (!g || g->heads != g->begun || g->st < ST_SIZE || g->st > ST_DATA_LF) return false;
    if (limit < g->limit) g->limit = limit;
    if (g->declared + g->size > g->limit) return hand_over(g, REFUSE_TOO_LARGE, out);
    return false;
}

void framing_request_end(framing *g)
{
    if (!g) return;
    g->completed++;
    /* the reply before it is sent: libmicrohttpd has nothing more to write */
    if (g->st == ST_HELD && g->completed == g->heads) head_reply(g);
}

int framing_sent(const framing *g, uint64_t *body_len)
{
    if (!g || !g->sent_status) return 0;
    if (body_len) *body_len = g->sent_len;
    return g->sent_status;
}

void framing_stop(framing *g, bool refused)
{
    if (!g) return;
    g->drain |= refused;
    if (g->st == ST_OFF) return;
    unregister(g);
    g->st = ST_OFF;
}

void framing_release(framing *g)
{
    if (!g) return;
    framing_stop(g, false);
    if (g->drain || g->refused != REFUSE_NONE) {
        /* Closing a socket with unread input makes the kernel send a reset,
         * which can destroy the refusal before the client reads it. */
        char scratch[8192];
        size_t dropped = 0;
        ssize_t n;
        while (dropped < DRAIN_MAX &&
               (n = real_recv(g->fd, scratch, sizeof scratch, MSG_DONTWAIT)) > 0)
            dropped += (size_t)n;
    }
    free(g);
}
