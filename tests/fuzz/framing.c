/* framing — the chunked-framing guard (http/framing.c) over the raw bytes
 * of a connection, as libmicrohttpd reads them through recv().
 *
 * The input is written into one end of a socket pair whose other end the
 * guard follows; a "server" here reads it with recv() in pieces of fuzzed
 * sizes and, whenever the guard holds bytes back, begins the next request
 * and then finishes one (the laziest schedule libmicrohttpd could have).
 * Input: "LIMIT\0SPLITS\0BYTES...".
 * Properties:
 *   - what the server reads is exactly a prefix of what was sent;
 *   - how reads are split never changes the outcome: the same bytes pass,
 *     and the same refusal (status, code) comes, whether the server reads
 *     one byte at a time, in fuzzed pieces, or all at once;
 *   - a refusal is a 400 or a 413, and a 413 only when the chunk sizes
 *     declared by that point really add up to more than the limit.
 */
#include "fuzz.h"
#include "http/framing.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct outcome {
    size_t passed;
    int status;
    char code[32];
} outcome;

static outcome run(const uint8_t *bytes, size_t n, uint64_t limit, const char *splits, int mode,
                   uint8_t *seen)
{
    outcome o = {0, 0, ""};
    int sv[2];
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    int big = 1 << 20;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    FUZZ_CHECK(send(sv[1], bytes, n, MSG_NOSIGNAL) == (ssize_t)n);
    shutdown(sv[1], SHUT_WR);
    framing *g = framing_track(sv[0], limit, 4096);
    FUZZ_CHECK(g != NULL);
    size_t k = 0, nsplits = strlen(splits);
    int guard = 0;
    for (; guard < 100000; guard++) {
        size_t want = mode == 0 ? 1 : mode == 1 ? n + 1 : 1 + (size_t)(unsigned char)splits[k++ % (nsplits ? nsplits : 1)] % 64;
        ssize_t r = recv(sv[0], seen + o.passed, want, 0);
        if (r > 0) {
            FUZZ_CHECK((size_t)r <= want);
            o.passed += (size_t)r;
            FUZZ_CHECK(o.passed <= n);
            continue;
        }
        if (r == 0) break;
        FUZZ_CHECK(errno == EAGAIN);
        /* Held back: the guard refused a request the server has not begun
         * (it hands the refusal over when begun), or a head behind requests
         * not yet finished (it answers that itself once they are). */
        framing_refusal f;
        if (framing_request_begin(g, "fuzz", &f)) {
            o.status = f.status;
            snprintf(o.code, sizeof o.code, "%s", f.code);
            break;
        }
        framing_request_end(g);
    }
    FUZZ_CHECK(guard < 100000);   /* held back for good: the server would hang */
    FUZZ_CHECK(memcmp(seen, bytes, o.passed) == 0);
    framing_release(g);
    close(sv[0]);
    close(sv[1]);
    return o;
}

/* The chunk sizes declared in the stream's chunked bodies, up to byte
 * `upto`, for the 413 check: a loose scan, enough to tell "over the limit". */
static bool declared_over(const uint8_t *b, size_t n, uint64_t limit)
{
    /* Sum every hex number that starts a line after a blank line or chunk:
     * an upper bound on what the guard counted, never smaller. */
    unsigned __int128 sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && b[i - 1] != '\n') continue;
        unsigned __int128 v = 0;
        size_t j = i;
        for (; j < n && j - i < 30; j++) {
            int c = b[j], d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                   : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0) break;
            v = v * 16 + (unsigned)d;
        }
        if (j > i) sum += v;
    }
    (void)limit;
    return sum > limit;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *f[2], *buf;
    fuzz_split(data, size, f, 2, &buf);
    size_t skip = strlen(f[0]) + 1 + strlen(f[1]) + 1;
    const uint8_t *bytes = skip <= size ? data + skip : data + size;
    size_t n = skip <= size ? size - skip : 0;
    uint64_t limit = fuzz_u64(f[0]);
    uint8_t *seen = malloc(n + 1);

    outcome one = run(bytes, n, limit, f[1], 0, seen);
    outcome all = run(bytes, n, limit, f[1], 1, seen);
    outcome some = run(bytes, n, limit, f[1], 2, seen);
    FUZZ_CHECK(one.passed == all.passed && one.passed == some.passed);
    FUZZ_CHECK(one.status == all.status && one.status == some.status);
    FUZZ_CHECK(strcmp(one.code, all.code) == 0 && strcmp(one.code, some.code) == 0);
    FUZZ_CHECK(one.status == 0 || one.status == 400 || one.status == 413);
    if (one.status == 413) FUZZ_CHECK(declared_over(bytes, n, limit));
    free(seen);
    free(buf);
    return 0;
}
