/* ws_listen.c — WebSocket listeners for the fan-out benchmarks, in C.
 *
 *   build/ws-listen URL COUNT [BATCH]      (make build/ws-listen)
 *   env WS_AUTH="Bearer KEY" (sent as Authorization), WS_NAME (for messages)
 *
 * The same program as bench/ws_listeners.mjs — same arguments, the same
 * commands on stdin (mark, close), the same "ready", "report" and "error"
 * lines and the same histogram files; read that file's header for the
 * protocol.  Why a second one: the listeners share the machine's two cores
 * with the server they measure, and a Node `ws` listener spends about as
 * much CPU receiving a message (~11 us: epoll, read, the ws parser, the JS
 * callback) as the server spends sending it.  With both on two cores the
 * measured fan-out time is mostly the machine's total CPU, not the server's.
 * Here a message costs one read(2) and a memmem, so the figure is closer to
 * what a server on its own cores would deliver.  Both the server and the
 * reference are measured with the same client in the same run.
 *
 * Design: one thread, one epoll set (level-triggered) for every connection
 * and stdin.  Handshakes are made here (a request, a 101 with the right
 * Sec-WebSocket-Accept); frames are read and written by libwslay's frame
 * layer (wslay_frame_recv/send: it parses headers and masks our pongs).
 * Not its event layer: that one validates every text byte as UTF-8 and
 * copies each message twice, which made it a quarter of this program's
 * CPU; the messages measured here are single text frames, and a ping is
 * answered with a pong, a close ends the connection.  A connection's
 * socket is read once per readiness: when a read returns fewer bytes than
 * asked, the next read libwslay asks for answers "nothing yet" without a
 * syscall (the socket is drained; level-triggered epoll reports it again
 * when more arrives).
 *
 * Receipt times are CLOCK_REALTIME in milliseconds with sub-millisecond
 * resolution, the clock the server's "at" is written with.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <wslay/wslay.h>

#define HANDSHAKE_MAX 4096
#define MAX_EVENTS 512
#define STDIN_TAG ((void *)1)

typedef enum { C_IDLE, C_CONNECTING, C_HANDSHAKE, C_OPEN, C_CLOSED } conn_state;

typedef struct conn {
    int idx, fd;
    conn_state state;
    wslay_frame_context_ptr fr;
    bool drained;          /* the last read came up short: the socket is empty */
    bool broken;           /* the peer closed or the socket failed */
    uint8_t opcode;        /* of the frame being read */
    uint64_t frame_left;   /* its payload bytes still to come; 0: between frames */
    uint8_t *acc;          /* a frame that came in pieces, so far */
    size_t acc_len, acc_cap;
    char *hs;              /* handshake response so far, then the bytes past it */
    size_t hs_len, hs_off;
    char accept[32];       /* the Sec-WebSocket-Accept we expect */
} conn;

typedef struct rx_rec { int32_t k; int64_t bin; } rx_rec;     /* k = -1: a latency bin */
typedef struct ev_rec { double id, at, first, last; } ev_rec;

typedef struct phase {
    char tag[64], hist_file[4096];
    int expect, done;
    long msgs, order_errors, unparsed;
    double min_at, max_rx, first_rx, mark_at, deadline;
    int *seq, nseq;        /* slideshow mode: the expected "current" values, in order */
    rx_rec *recs; size_t nrecs, caprecs;
    ev_rec *evs; size_t nevs, capevs;
    bool reported;
} phase;

static const char *url_path, *auth, *name;
static struct addrinfo *server_addr;   /* resolved once */
static char host_header[300];
static conn *conns;
static int count, batch, epfd, next_conn, opening;
static int *counts, *pre_counts;
static double *last_id;
static long pre_msgs, closed_late;
static bool opened;
static double t_open0;
static phase ph;           /* valid while ph.tag[0] */
static uint64_t mask_state = 0x9e3779b97f4a7c15ull;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("error %s: %s\n", name, msg);
    fflush(stdout);
    exit(1);
}

static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return p;
    size_t n = *cap ? *cap * 2 : 1024;
    while (n < need) n *= 2;
    void *q = realloc(p, n * size);
    if (!q) fail("out of memory");
    *cap = n;
    return q;
}

/* ---------- messages ---------- */

/* "2026-11-24T00:47:39.123Z" -> ms since the epoch; NAN if it is not that.
 * Every listener gets the same "at" for an event: the last one is kept. */
static double parse_at(const char *s, size_t len)
{
    static char last[24];
    static double last_ms = NAN;
    if (len >= 24 && memcmp(s, last, 24) == 0) return last_ms;
    struct tm tm = {0};
    int ms = 0;
    if (len < 24 || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                           &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
        return NAN;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    memcpy(last, s, 24);
    return last_ms = (double)timegm(&tm) * 1e3 + ms;
}

static void add_rec(int32_t k, int64_t bin)
{
    ph.recs = grow(ph.recs, &ph.caprecs, ph.nrecs + 1, sizeof *ph.recs);
    ph.recs[ph.nrecs++] = (rx_rec){k, bin};
}

/* First and last receipt of each event; events arrive in id order, so the
 * one wanted is nearly always among the last few. */
static void note_event(double id, double at, double rx)
{
    for (size_t i = ph.nevs; i-- > 0;) {
        ev_rec *e = &ph.evs[i];
        if (e->id == id) {
            if (rx > e->last) e->last = rx;
            return;
        }
    }
    ph.evs = grow(ph.evs, &ph.capevs, ph.nevs + 1, sizeof *ph.evs);
    ph.evs[ph.nevs++] = (ev_rec){id, at, rx, rx};
}

static void finish(bool timed_out);

static void counted(int i)
{
    if (++counts[i] == ph.expect && ++ph.done == count) finish(false);
}

static void on_event_message(int i, const char *m, size_t len, double rx)
{
    const char *a = memmem(m, len, "\"at\":\"", 6), *d = memmem(m, len, "\"id\":", 5);
    double at = a ? parse_at(a + 6, len - (size_t)(a + 6 - m)) : NAN;
    if (!d || isnan(at)) { ph.unparsed++; return; }
    double id = strtod(d + 5, NULL);
    if (!(id > last_id[i])) ph.order_errors++;
    last_id[i] = id;
    add_rec(-1, llround((rx - at) * 10));
    note_event(id, at, rx);
    if (at < ph.min_at) ph.min_at = at;
    counted(i);
}

static void on_change_message(int i, const char *m, size_t len, double rx)
{
    const char *c = memmem(m, len, "\"current\":", 10);
    if (!c) { ph.unparsed++; return; }
    int cur = atoi(c + 10), k = counts[i];
    if (k >= ph.nseq || ph.seq[k] != cur) ph.order_errors++;
    if (k < ph.nseq) add_rec(k, llround(rx * 10));
    counted(i);
}

static void on_message(int i, const uint8_t *data, size_t len)
{
    double rx = now_ms();
    if (!ph.tag[0] || ph.reported) {
        if (!ph.tag[0]) { pre_counts[i]++; pre_msgs++; }
        return;
    }
    ph.msgs++;
    if (rx > ph.max_rx) ph.max_rx = rx;
    if (rx < ph.first_rx) ph.first_rx = rx;
    if (ph.seq) on_change_message(i, (const char *)data, len, rx);
    else on_event_message(i, (const char *)data, len, rx);
}

/* ---------- reports ---------- */

static int cmp_rec(const void *a, const void *b)
{
    const rx_rec *x = a, *y = b;
    if (x->k != y->k) return x->k < y->k ? -1 : 1;
    return x->bin < y->bin ? -1 : x->bin > y->bin;
}

static void json_num(FILE *f, const char *key, double v)
{
    if (isinf(v) || isnan(v)) fprintf(f, ",\"%s\":null", key);
    else fprintf(f, ",\"%s\":%.3f", key, v);
}

static void write_hist(void)
{
    FILE *f = fopen(ph.hist_file, "w");
    if (!f) fail("cannot write %s: %s", ph.hist_file, strerror(errno));
    qsort(ph.recs, ph.nrecs, sizeof *ph.recs, cmp_rec);
    for (size_t i = 0, j; i < ph.nrecs; i = j) {
        for (j = i; j < ph.nrecs && cmp_rec(&ph.recs[i], &ph.recs[j]) == 0; j++) {}
        if (ph.recs[i].k < 0) fprintf(f, "%lld %zu\n", (long long)ph.recs[i].bin, j - i);
        else fprintf(f, "R %d %lld %zu\n", ph.recs[i].k, (long long)ph.recs[i].bin, j - i);
    }
    for (size_t i = 0; i < ph.nevs; i++)
        fprintf(f, "E %.0f %.0f %.3f %.3f\n", ph.evs[i].id, ph.evs[i].at, ph.evs[i].first,
                ph.evs[i].last);
    if (fclose(f) != 0) fail("cannot write %s: %s", ph.hist_file, strerror(errno));
}

static void finish(bool timed_out)
{
    if (!ph.tag[0] || ph.reported) return;
    ph.reported = true;
    int min_count = count ? counts[0] : 0, max_count = 0, pre_conns = 0;
    for (int i = 0; i < count; i++) {
        if (counts[i] < min_count) min_count = counts[i];
        if (counts[i] > max_count) max_count = counts[i];
        if (pre_counts[i] > 0) pre_conns++;
    }
    write_hist();
    printf("report %s {\"conns\":%d,\"expect\":%d,\"complete\":%d,\"msgs\":%ld,\"min_count\":%d,"
           "\"max_count\":%d,\"order_errors\":%ld,\"unparsed\":%ld,\"closed\":%ld",
           ph.tag, count, ph.expect, ph.done, ph.msgs, min_count, max_count, ph.order_errors,
           ph.unparsed, closed_late);
    json_num(stdout, "min_at", ph.min_at);
    json_num(stdout, "max_rx", ph.max_rx);
    json_num(stdout, "first_rx", ph.first_rx);
    printf(",\"timed_out\":%s", timed_out ? "true" : "false");
    json_num(stdout, "mark_at", ph.mark_at);
    json_num(stdout, "report_at", now_ms());
    printf(",\"pre_conns\":%d,\"pre_msgs\":%ld}\n", pre_conns, pre_msgs);
    fflush(stdout);
}

/* mark TAG EXPECT TIMEOUT_MS HISTFILE [CURRENTS] */
static void start_phase(char *args)
{
    char *tag = strtok(args, " \t"), *expect = strtok(NULL, " \t"), *timeout = strtok(NULL, " \t"),
         *hist = strtok(NULL, " \t"), *seq = strtok(NULL, " \t");
    if (!tag || !expect || !timeout || !hist) fail("bad mark command");
    free(ph.seq); free(ph.recs); free(ph.evs);
    memset(&ph, 0, sizeof ph);
    snprintf(ph.tag, sizeof ph.tag, "%s", tag);
    snprintf(ph.hist_file, sizeof ph.hist_file, "%s", hist);
    ph.expect = atoi(expect);
    ph.min_at = ph.first_rx = INFINITY;
    ph.mark_at = now_ms();
    ph.deadline = ph.mark_at + atof(timeout);
    if (seq) {
        for (char *p = seq; *p; p++) ph.nseq += *p == ',';
        ph.nseq++;
        if (!(ph.seq = calloc((size_t)ph.nseq, sizeof *ph.seq))) fail("out of memory");
        char *save, *v = strtok_r(seq, ",", &save);
        for (int k = 0; v && k < ph.nseq; v = strtok_r(NULL, ",", &save)) ph.seq[k++] = atoi(v);
    }
    memset(counts, 0, sizeof *counts * (size_t)count);
}

/* ---------- libwslay's frame layer ---------- */

static ssize_t on_recv(uint8_t *buf, size_t len, int flags, void *arg)
{
    conn *c = arg;
    if (c->hs_off < c->hs_len) {          /* bytes that came with the 101 */
        size_t n = c->hs_len - c->hs_off < len ? c->hs_len - c->hs_off : len;
        memcpy(buf, c->hs + c->hs_off, n);
        c->hs_off += n;
        return (ssize_t)n;
    }
    if (c->drained) return -1;
    ssize_t n = recv(c->fd, buf, len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return -1;
    if (n <= 0) { c->broken = true; return -1; }
    if ((size_t)n < len) c->drained = true;
    return n;
}

static ssize_t on_send(const uint8_t *data, size_t len, int flags, void *arg)
{
    conn *c = arg;
    ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
    return n > 0 ? n : -1;
}

/* The mask only has to be unpredictable to the network, not to anyone here. */
static int on_genmask(uint8_t *buf, size_t len, void *arg)
{
    for (size_t i = 0; i < len; i++) {
        mask_state ^= mask_state << 13; mask_state ^= mask_state >> 7; mask_state ^= mask_state << 17;
        buf[i] = (uint8_t)mask_state;
    }
    return 0;
}

static const struct wslay_frame_callbacks frame_cbs = {on_send, on_recv, on_genmask};

/* A ping's pong (at most 125 bytes: a fresh socket buffer takes it whole). */
static void send_pong(conn *c, const uint8_t *data, size_t len)
{
    struct wslay_frame_iocb io = {.fin = 1, .opcode = WSLAY_PONG, .mask = 1,
                                  .payload_length = len, .data = data, .data_length = len};
    (void)wslay_frame_send(c->fr, &io);
}

static void conn_gone(conn *c);

static void on_frame(conn *c, const uint8_t *data, size_t len)
{
    switch (c->opcode) {
    case WSLAY_TEXT_FRAME: on_message(c->idx, data, len); break;
    case WSLAY_PING: send_pong(c, data, len); break;
    case WSLAY_CONNECTION_CLOSE: conn_gone(c); break;
    default: break;   /* pongs; binary frames are not sent by the servers measured */
    }
}

/* One piece of a frame's payload: whole frames (the usual case) are used
 * where they lie, pieces are gathered first. */
static void on_chunk(conn *c, const struct wslay_frame_iocb *io)
{
    if (c->frame_left == 0) {
        if (!io->fin || io->opcode == WSLAY_CONTINUATION_FRAME)
            fail("connection %d: a fragmented message (not expected from the servers measured)",
                 c->idx);
        c->opcode = io->opcode;
        c->frame_left = io->payload_length;
    }
    c->frame_left -= io->data_length;
    if (c->frame_left == 0 && c->acc_len == 0) {
        on_frame(c, io->data, io->data_length);
        return;
    }
    c->acc = grow(c->acc, &c->acc_cap, c->acc_len + io->data_length + 1, 1);
    memcpy(c->acc + c->acc_len, io->data, io->data_length);
    c->acc_len += io->data_length;
    if (c->frame_left == 0) {
        c->acc_len = 0;
        on_frame(c, c->acc, io->payload_length);
    }
}

/* ---------- connections ---------- */

static void watch(conn *c, uint32_t events, int op)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(epfd, op, c->fd, &ev) != 0) fail("epoll_ctl: %s", strerror(errno));
}

static void open_next(void);

static void conn_gone(conn *c)
{
    if (c->state == C_CLOSED) return;
    if (!opened) fail("connection %d: closed before ready", c->idx);
    c->state = C_CLOSED;
    closed_late++;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    wslay_frame_context_free(c->fr);
    c->fr = NULL;
    free(c->acc);
    c->acc = NULL;
    free(c->hs);
    c->hs = NULL;
}

static void start_connect(conn *c)
{
    const struct addrinfo *ai = server_addr;
    c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) fail("connection %d: socket: %s", c->idx, strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS)
        fail("connection %d: connect: %s", c->idx, strerror(errno));
    c->state = C_CONNECTING;
    watch(c, EPOLLOUT, EPOLL_CTL_ADD);
}

static void send_handshake(conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) fail("connection %d: connect: %s", c->idx, strerror(err));
    uint8_t key[16], digest[EVP_MAX_MD_SIZE];
    char key64[32], both[128], req[1024];
    on_genmask(key, sizeof key, NULL);
    EVP_EncodeBlock((unsigned char *)key64, key, sizeof key);
    snprintf(both, sizeof both, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key64);
    unsigned dlen = 0;
    EVP_Digest(both, strlen(both), digest, &dlen, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)c->accept, digest, (int)dlen);
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                     url_path, host_header, key64, auth ? "Authorization: " : "", auth ? auth : "",
                     auth ? "\r\n" : "");
    if (send(c->fd, req, (size_t)n, MSG_NOSIGNAL) != n)   /* a fresh socket takes 1 KiB whole */
        fail("connection %d: cannot send the handshake", c->idx);
    if (!(c->hs = malloc(HANDSHAKE_MAX))) fail("out of memory");
    c->state = C_HANDSHAKE;
    watch(c, EPOLLIN, EPOLL_CTL_MOD);
}

/* The 101 and its Sec-WebSocket-Accept; whatever follows the header goes to
 * libwslay first. */
static void read_handshake(conn *c)
{
    ssize_t n = recv(c->fd, c->hs + c->hs_len, HANDSHAKE_MAX - 1 - c->hs_len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) fail("connection %d: closed during the handshake", c->idx);
    c->hs_len += (size_t)n;
    c->hs[c->hs_len] = '\0';
    char *end = strstr(c->hs, "\r\n\r\n");
    if (!end) {
        if (c->hs_len >= HANDSHAKE_MAX - 1) fail("connection %d: handshake response too long", c->idx);
        return;
    }
    int status = 0;
    if (sscanf(c->hs, "HTTP/1.1 %d", &status) != 1 || status != 101)
        fail("connection %d: HTTP %d", c->idx, status);
    char *acc = strcasestr(c->hs, "\r\nSec-WebSocket-Accept:");
    if (!acc || acc > end) fail("connection %d: no Sec-WebSocket-Accept", c->idx);
    acc += 23;
    while (*acc == ' ') acc++;
    if (strncmp(acc, c->accept, strlen(c->accept)) != 0)
        fail("connection %d: wrong Sec-WebSocket-Accept", c->idx);
    c->hs_off = (size_t)(end + 4 - c->hs);
    if (wslay_frame_context_init(&c->fr, &frame_cbs, c) != 0) fail("out of memory");
    c->state = C_OPEN;
    opening--;
    open_next();
}

static void serve_conn(conn *c, uint32_t events)
{
    switch (c->state) {
    case C_CONNECTING: send_handshake(c); return;
    case C_HANDSHAKE: read_handshake(c); if (c->state != C_OPEN) return; break;
    case C_OPEN: break;
    default: return;
    }
    c->drained = false;
    while (c->state == C_OPEN) {
        struct wslay_frame_iocb io = {0};
        ssize_t r = wslay_frame_recv(c->fr, &io);
        if (r == WSLAY_ERR_PROTO) fail("connection %d: a frame that breaks RFC 6455", c->idx);
        if (r < 0) break;
        on_chunk(c, &io);
    }
    if (c->hs && c->hs_off >= c->hs_len) { free(c->hs); c->hs = NULL; c->hs_len = c->hs_off = 0; }
    if (c->broken) conn_gone(c);
}

/* Keeps BATCH handshakes in flight until all COUNT are open. */
static void open_next(void)
{
    while (opening < batch && next_conn < count) {
        conn *c = &conns[next_conn++];
        opening++;
        start_connect(c);
    }
    if (!opened && opening == 0 && next_conn == count) {
        opened = true;
        printf("ready %d %.0f\n", count, now_ms() - t_open0);
        fflush(stdout);
    }
}

/* ---------- main loop ---------- */

static void quit(void)
{
    for (int i = 0; i < count; i++)
        if (conns[i].state != C_IDLE && conns[i].state != C_CLOSED) close(conns[i].fd);
    fflush(stdout);
    exit(0);
}

/* Commands arrive a line at a time, rarely; stdin is read unbuffered by
 * read(2) so that epoll and the buffer agree. */
static void read_commands(void)
{
    static char line[8192];
    static size_t have;
    ssize_t n = read(0, line + have, sizeof line - 1 - have);
    if (n <= 0) quit();                     /* the script went away */
    have += (size_t)n;
    char *nl;
    while ((nl = memchr(line, '\n', have))) {
        *nl = '\0';
        if (strncmp(line, "mark ", 5) == 0) start_phase(line + 5);
        else if (strcmp(line, "close") == 0) quit();
        size_t used = (size_t)(nl + 1 - line);
        memmove(line, nl + 1, have - used);
        have -= used;
    }
    if (have == sizeof line - 1) fail("command line too long");
}

static void parse_url(char *url)
{
    if (strncmp(url, "ws://", 5) != 0) fail("only ws:// URLs");
    char *h = url + 5, *slash = strchr(h, '/'), *colon;
    url_path = slash ? strdup(slash) : "/";
    if (slash) *slash = '\0';
    snprintf(host_header, sizeof host_header, "%s", h);
    const char *port = "80";
    if ((colon = strrchr(h, ':'))) { *colon = '\0'; port = colon + 1; }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = getaddrinfo(h, port, &hints, &server_addr);
    if (rc != 0) fail("%s: %s", h, gai_strerror(rc));
}

int main(int argc, char **argv)
{
    name = getenv("WS_NAME") ? getenv("WS_NAME") : "listeners";
    auth = getenv("WS_AUTH");
    if (auth && !*auth) auth = NULL;
    if (argc < 3 || (count = atoi(argv[2])) <= 0) fail("usage: ws-listen URL COUNT [BATCH]");
    batch = argc > 3 ? atoi(argv[3]) : 100;
    if (batch <= 0) fail("usage: ws-listen URL COUNT [BATCH]");
    parse_url(argv[1]);
    conns = calloc((size_t)count, sizeof *conns);
    counts = calloc((size_t)count, sizeof *counts);
    pre_counts = calloc((size_t)count, sizeof *pre_counts);
    last_id = calloc((size_t)count, sizeof *last_id);
    if (!conns || !counts || !pre_counts || !last_id) fail("out of memory");
    for (int i = 0; i < count; i++) conns[i].idx = i;
    if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) fail("epoll: %s", strerror(errno));
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = STDIN_TAG};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &sev) != 0) fail("epoll_ctl stdin: %s", strerror(errno));
    t_open0 = now_ms();
    open_next();
    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        int timeout = -1;
        if (ph.tag[0] && !ph.reported) {
            double left = ph.deadline - now_ms();
            if (left <= 0) { finish(true); continue; }
            timeout = (int)left + 1;
        }
        int n = epoll_wait(epfd, evs, MAX_EVENTS, timeout);
        if (n < 0 && errno != EINTR) fail("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == STDIN_TAG) read_commands();
            else serve_conn(evs[i].data.ptr, evs[i].events);
        }
    }
}
