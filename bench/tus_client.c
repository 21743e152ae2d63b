/* tus_client.c — a whole tus upload of a file over one kept-alive
 * connection, as browsers and tus-js-client send one, for bench/tus.sh.
 *
 *   build/tus-client PORT CREATE_PATH FILE CHUNK_BYTES [HEADER ...]
 *                                                  (make build/tus-client)
 *
 * POST CREATE_PATH (Tus-Resumable, Upload-Length = the file's size,
 * Upload-Metadata filename), then PATCHes of CHUNK_BYTES at Upload-Offset
 * until the end, each body sent from the file with sendfile(2) and each
 * answer checked (201 with a Location, then 204 with the new
 * Upload-Offset).  Every HEADER ("Name: value", e.g. the Authorization)
 * goes on every request.  The connection is kept between requests and
 * opened again only if the server closes it.  Prints, on stdout:
 *   location PATH
 *   patch OFFSET LENGTH MICROSECONDS      (one line a PATCH)
 *   header NAME: VALUE                    (the last answer's headers)
 * Exit 0 when the upload went through, 1 when an answer was wrong or
 * missing (the reason on stderr), 2 on bad arguments.
 *
 * Why not http-send once a request (as before): a process and a TCP
 * connection a PATCH cost the client milliseconds that no tus client
 * spends, and they counted against the server being measured.  The same
 * client serves every contender (assetd and @tus/server).
 *
 * Bounded: SO_SNDTIMEO and SO_RCVTIMEO of 600 s; heads of at most 16 KiB.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 16384
#define IO_TIMEOUT_S 600

static uint16_t port;
static int conn = -1;
static char extra[HEAD_MAX / 2];   /* the caller's headers, CRLF after each */

/* The last answer. */
static int status;
static char head[HEAD_MAX + 1];
static size_t head_len;

static int fail(const char *what)
{
    fprintf(stderr, "tus-client: %s%s%s\n", what, errno ? ": " : "", errno ? strerror(errno) : "");
    return 1;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int connect_once(void)
{
    if (conn >= 0) return 1;
    struct timeval tv = {IO_TIMEOUT_S, 0};
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    conn = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (conn < 0 || setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
        setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        connect(conn, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (conn >= 0) close(conn);
        conn = -1;
        return 0;
    }
    return 1;
}

static int write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(conn, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return 0;
        p += w;
        n -= (size_t)w;
    }
    return 1;
}

/* The value of header name in the last answer ("" if absent), into out. */
static const char *header(const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    out[0] = '\0';
    for (const char *l = strstr(head, "\r\n"); l && l[2]; l = strstr(l + 2, "\r\n")) {
        const char *line = l + 2;
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ') v++;
            size_t len = strcspn(v, "\r");
            snprintf(out, cap, "%.*s", (int)(len < cap ? len : cap - 1), v);
            break;
        }
    }
    return out;
}

/* Reads one answer: its head into head, its body (Content-Length bytes, or
 * chunked) discarded.  0 if the connection ended first. */
static int read_answer(void)
{
    static char buf[HEAD_MAX];
    head_len = 0;
    char *end = NULL;
    while (!end) {
        if (head_len == HEAD_MAX) return 0;
        ssize_t r = recv(conn, head + head_len, HEAD_MAX - head_len, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return 0;
        head_len += (size_t)r;
        head[head_len] = '\0';
        end = strstr(head, "\r\n\r\n");
    }
    size_t have = head_len - (size_t)(end + 4 - head);   /* body bytes read with the head */
    end[2] = '\0';
    if (sscanf(head, "HTTP/1.%*d %d", &status) != 1) return 0;
    char v[64];
    uint64_t want = strtoull(header("Content-Length", v, sizeof v), NULL, 10);
    int chunked = strstr(header("Transfer-Encoding", v, sizeof v), "chunked") != NULL;
    if (chunked) {
        /* Bodies here are small: up to the last chunk's "0\r\n\r\n", fed
         * first from what came with the head, then a byte at a time. */
        const char *early = end + 4;
        char tail[8] = "";
        for (size_t i = 0;; i++) {
            size_t t = strlen(tail);
            if (t >= 5 && strcmp(tail + t - 5, "0\r\n\r\n") == 0) break;
            char c;
            if (i < have) c = early[i];
            else if (recv(conn, &c, 1, 0) != 1) return 0;
            if (t == sizeof tail - 1) memmove(tail, tail + 1, t--);
            tail[t] = c, tail[t + 1] = '\0';
        }
        return 1;
    }
    while (have < want) {
        size_t n = want - have < sizeof buf ? (size_t)(want - have) : sizeof buf;
        ssize_t r = recv(conn, buf, n, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return 0;
        have += (size_t)r;
    }
    if (strcasestr(head, "\r\nConnection: close")) {
        close(conn);
        conn = -1;
    }
    return 1;
}

/* One request, its body bytes [off, off + len) of file; 0 on failure. */
static int request(const char *method, const char *path, const char *headers, int file,
                   off_t off, uint64_t len)
{
    char req[HEAD_MAX];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nContent-Length: %" PRIu64
                     "\r\nTus-Resumable: 1.0.0\r\n%s%s\r\n",
                     method, path, (unsigned)port, len, headers, extra);
    if (n <= 0 || (size_t)n >= sizeof req) return 0;
    const off_t start = off;
    for (int attempt = 0; attempt < 2; attempt++) {   /* a kept connection the server closed */
        if (!connect_once()) return 0;
        off = start;
        int ok = write_all(req, (size_t)n);
        for (uint64_t left = len; ok && left > 0;) {
            ssize_t w = sendfile(conn, file, &off, left > (1u << 30) ? (1u << 30) : (size_t)left);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) ok = 0;
            else left -= (uint64_t)w;
        }
        if (ok && read_answer()) return 1;
        close(conn);
        conn = -1;
        if (off != start) return 0;   /* body bytes went: never send them twice */
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: tus-client PORT CREATE_PATH FILE CHUNK_BYTES [HEADER ...]\n");
        return 2;
    }
    char *e;
    unsigned long p = strtoul(argv[1], &e, 10);
    uint64_t chunk = strtoull(argv[4], NULL, 10);
    if (*e || p == 0 || p > 65535 || chunk == 0) return 2;
    port = (uint16_t)p;
    signal(SIGPIPE, SIG_IGN);
    size_t used = 0;
    for (int i = 5; i < argc; i++) {
        int n = snprintf(extra + used, sizeof extra - used, "%s\r\n", argv[i]);
        if (n < 0 || (size_t)n >= sizeof extra - used) return 2;
        used += (size_t)n;
    }
    int file = open(argv[3], O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (file < 0 || fstat(file, &st) != 0) return fail(argv[3]);
    uint64_t size = (uint64_t)st.st_size;

    char h[256], where[1024], v[64];
    snprintf(h, sizeof h, "Upload-Length: %" PRIu64 "\r\nUpload-Metadata: filename YmlnLmJpbg==\r\n",
             size);
    errno = 0;
    if (!request("POST", argv[2], h, file, 0, 0)) return fail("the creation got no answer");
    header("Location", where, sizeof where);
    if (status != 201 || !where[0]) {
        fprintf(stderr, "tus-client: POST %s answered %d\n%s\n", argv[2], status, head);
        return 1;
    }
    /* An absolute URL or a path: the path. */
    const char *path = strstr(where, "://") ? strchr(strstr(where, "://") + 3, '/') : where;
    if (!path || *path != '/') return fail("the Location names no path");
    printf("location %s\n", path);
    for (uint64_t off = 0; off < size;) {
        uint64_t n = size - off < chunk ? size - off : chunk;
        snprintf(h, sizeof h,
                 "Upload-Offset: %" PRIu64 "\r\nContent-Type: application/offset+octet-stream\r\n", off);
        int64_t t0 = now_us();
        if (!request("PATCH", path, h, file, (off_t)off, n)) return fail("a PATCH got no answer");
        int64_t t1 = now_us();
        uint64_t at = strtoull(header("Upload-Offset", v, sizeof v), NULL, 10);
        if (status != 204 || at != off + n) {
            fprintf(stderr, "tus-client: PATCH at %" PRIu64 " answered %d, Upload-Offset '%s'\n%s\n",
                    off, status, v, head);
            return 1;
        }
        printf("patch %" PRIu64 " %" PRIu64 " %" PRId64 "\n", off, n, t1 - t0);
        off += n;
    }
    for (const char *l = strstr(head, "\r\n"); l && l[2]; l = strstr(l + 2, "\r\n"))
        printf("header %.*s\n", (int)strcspn(l + 2, "\r"), l + 2);
    if (conn >= 0) close(conn);
    close(file);
    return fflush(stdout) == 0 ? 0 : 1;
}
