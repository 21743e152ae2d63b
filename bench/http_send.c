/* http_send.c — one HTTP/1.1 request whose body is a byte range of a file,
 * for the upload benchmarks (bench/tus.sh).
 *
 *   build/http-send PORT METHOD PATH FILE OFFSET LENGTH [HEADER ...]
 *                                                  (make build/http-send)
 *
 * Connects to 127.0.0.1:PORT, sends "METHOD PATH HTTP/1.1" with Host,
 * Content-Length: LENGTH, Connection: close and each HEADER ("Name: value")
 * as given, then bytes OFFSET .. OFFSET+LENGTH-1 of FILE with sendfile(2),
 * and copies the whole response (status line, headers, body: read to EOF) to
 * stdout.  Exit 0 when a response arrived (whatever its status), 1 when
 * none did, 2 on bad arguments.
 *
 * Why not curl: a tus client sends a file as slices (64 MiB PATCHes), and
 * curl sends a slice only from a pipe (`tail -c +N | head -c`, two more
 * copies of every byte through two more processes) and then either chunked
 * or buffered whole in memory.  On a 2-core machine the client's CPU comes
 * out of the server's, so the benchmark's client is this one for every
 * contender (assetd's tus and plain POST, @tus/server): per byte it costs
 * one copy from the page cache into the socket.  A server that answers
 * early (an error before the whole body) ends the sending quietly; its
 * answer is still read and printed.
 *
 * Bounded: SO_SNDTIMEO and SO_RCVTIMEO of 600 s; the caller also runs it
 * under timeout(1).
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
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define HEAD_MAX 8192
#define IO_TIMEOUT_S 600

static int usage(void)
{
    fprintf(stderr, "usage: http-send PORT METHOD PATH FILE OFFSET LENGTH [HEADER ...]\n");
    return 2;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-') return 0;
    *out = v;
    return 1;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return 0;
        p += w;
        n -= (size_t)w;
    }
    return 1;
}

int main(int argc, char **argv)
{
    uint64_t port, offset, length;
    if (argc < 7 || !parse_u64(argv[1], &port) || port == 0 || port > 65535 ||
        !parse_u64(argv[5], &offset) || !parse_u64(argv[6], &length))
        return usage();
    signal(SIGPIPE, SIG_IGN);

    int file = open(argv[4], O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (file < 0 || fstat(file, &st) != 0) {
        fprintf(stderr, "http-send: %s: %s\n", argv[4], strerror(errno));
        return 2;
    }
    if (offset > (uint64_t)st.st_size || length > (uint64_t)st.st_size - offset) {
        fprintf(stderr, "http-send: %s has %lld bytes, not %" PRIu64 " from %" PRIu64 "\n",
                argv[4], (long long)st.st_size, length, offset);
        return 2;
    }

    char head[HEAD_MAX];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%" PRIu64 "\r\nContent-Length: %" PRIu64
                     "\r\nConnection: close\r\n",
                     argv[2], argv[3], port, length);
    for (int i = 7; i < argc && n > 0 && (size_t)n < sizeof head; i++)
        n += snprintf(head + n, sizeof head - (size_t)n, "%s\r\n", argv[i]);
    if (n <= 0 || (size_t)n + 2 >= sizeof head) {
        fprintf(stderr, "http-send: request head too long\n");
        return 2;
    }
    memcpy(head + n, "\r\n", 2);
    n += 2;

    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {IO_TIMEOUT_S, 0};
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        connect(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "http-send: cannot connect to 127.0.0.1:%" PRIu64 ": %s\n", port,
                strerror(errno));
        return 1;
    }

    /* The body: an early answer (EPIPE, ECONNRESET) just ends the sending. */
    int sent_all = write_all(s, head, (size_t)n);
    off_t pos = (off_t)offset;
    uint64_t left = sent_all ? length : 0;
    while (left > 0) {
        size_t want = left > (1u << 30) ? (1u << 30) : (size_t)left;
        ssize_t w = sendfile(s, file, &pos, want);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) fprintf(stderr, "http-send: %s ended early\n", argv[4]);
            sent_all = 0;
            break;
        }
        left -= (uint64_t)w;
    }
    close(file);
    if (!sent_all) shutdown(s, SHUT_WR);

    /* The answer, to EOF (Connection: close). */
    char buf[65536];
    size_t total = 0;
    for (;;) {
        ssize_t r = recv(s, buf, sizeof buf, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == ECONNRESET && total > 0) break;
        if (r < 0) {
            fprintf(stderr, "http-send: reading the answer: %s\n", strerror(errno));
            return 1;
        }
        if (r == 0) break;
        if (fwrite(buf, 1, (size_t)r, stdout) != (size_t)r) return 1;
        total += (size_t)r;
    }
    close(s);
    if (total < 12 || fflush(stdout) != 0) {
        fprintf(stderr, "http-send: no answer%s\n", sent_all ? "" : " (the body was cut short)");
        return 1;
    }
    return 0;
}
