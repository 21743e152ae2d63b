/* Unit tests for http/ws_outbox.c: frames written straight from shared
 * messages, through a socket that fills up on purpose, must come out as an
 * exact stream of frames, and every reference must be given back. */
#include "test.h"

#include "http/ws_outbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct shared {
    int refs;
    char data[70000];
} shared;

static void ref(void *o) { ((shared *)o)->refs++; }
static void unref(void *o) { ((shared *)o)->refs--; }
static const ws_shared_ops ops = {ref, unref};

static void push(ws_outbox *q, shared *s, size_t len)
{
    ref(s);
    ws_out m = {s->data, len, &ops, s};
    CHECK(ws_outbox_push(q, &m));
}

/* A non-blocking pair whose writer fills up after a few KiB. */
static void small_pair(int sv[2])
{
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK);
}

/* Reads what is there into buf (at *have). */
static void drain(int fd, char *buf, size_t cap, size_t *have)
{
    ssize_t n;
    while (*have < cap && (n = read(fd, buf + *have, cap - *have)) > 0) *have += (size_t)n;
}

/* Parses the frames in buf: each must be a final unmasked text frame whose
 * payload is the start of s->data with the expected length. */
static void check_frames(const char *buf, size_t have, const shared *s, const size_t *lens, int n)
{
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        uint8_t hdr[WS_FRAME_HEADER_MAX];
        size_t hl = ws_frame_header(hdr, lens[i]);
        CHECK(at + hl + lens[i] <= have);
        if (at + hl + lens[i] > have) return;
        CHECK(memcmp(buf + at, hdr, hl) == 0);
        CHECK((uint8_t)buf[at] == 0x81 && !((uint8_t)buf[at + 1] & 0x80));
        CHECK(memcmp(buf + at + hl, s->data, lens[i]) == 0);
        at += hl + lens[i];
    }
    CHECK(at == have);
}

TEST(ws_frame_header_lengths)
{
    uint8_t h[WS_FRAME_HEADER_MAX];
    CHECK(ws_frame_header(h, 0) == 2 && h[0] == 0x81 && h[1] == 0);
    CHECK(ws_frame_header(h, 125) == 2 && h[1] == 125);
    CHECK(ws_frame_header(h, 126) == 4 && h[1] == 126 && h[2] == 0 && h[3] == 126);
    CHECK(ws_frame_header(h, 65535) == 4 && h[2] == 0xff && h[3] == 0xff);
    CHECK(ws_frame_header(h, 65536) == 10 && h[1] == 127 && h[7] == 1 && h[8] == 0 && h[9] == 0);
}

TEST(ws_outbox_writes_exact_frames_through_a_full_socket)
{
    static shared s;
    for (size_t i = 0; i < sizeof s.data; i++) s.data[i] = (char)('a' + i % 26);
    static const size_t lens[] = {0, 1, 125, 126, 700, 65535, 65536, 69999, 3, 300};
    enum { N = sizeof lens / sizeof lens[0] };
    int sv[2];
    small_pair(sv);
    ws_outbox q = {0};
    size_t payload = 0;
    for (int i = 0; i < N; i++) {
        push(&q, &s, lens[i]);
        payload += lens[i];
    }
    CHECK(s.refs == N);
    static char buf[300000];
    size_t have = 0, completed = 0, blocked = 0;
    for (int round = 0; round < 100000 && q.count > 0; round++) {
        size_t done;
        ws_outbox_result r = ws_outbox_write(&q, sv[0], UINT32_MAX, &done);
        completed += done;
        CHECK(r != WS_OUTBOX_FAILED);
        if (r == WS_OUTBOX_BLOCKED) blocked++;
        drain(sv[1], buf, sizeof buf, &have);
    }
    drain(sv[1], buf, sizeof buf, &have);
    CHECK(q.count == 0 && q.off == 0);
    CHECK(blocked > 0);   /* the socket did fill up: partial frames were resumed */
    CHECK(completed == payload);
    CHECK(s.refs == 0);
    check_frames(buf, have, &s, lens, N);
    ws_outbox_free(&q);
    close(sv[0]);
    close(sv[1]);
}

TEST(ws_outbox_drop_keeps_a_partly_written_frame)
{
    static shared s;
    memset(s.data, 'x', sizeof s.data);
    int sv[2];
    small_pair(sv);
    ws_outbox q = {0};
    for (int i = 0; i < 5; i++) push(&q, &s, 60000);
    size_t done;
    CHECK(ws_outbox_write(&q, sv[0], UINT32_MAX, &done) == WS_OUTBOX_BLOCKED);
    CHECK(done == 0 && q.off > 0);   /* the first frame is partly out */
    CHECK(ws_outbox_drop(&q) == 4 * 60000);
    CHECK(q.count == 1 && s.refs == 1);
    static char buf[100000];
    size_t have = 0;
    for (int round = 0; round < 10000 && q.count > 0; round++) {
        CHECK(ws_outbox_write(&q, sv[0], UINT32_MAX, &done) != WS_OUTBOX_FAILED);
        drain(sv[1], buf, sizeof buf, &have);
    }
    drain(sv[1], buf, sizeof buf, &have);
    static const size_t one[] = {60000};
    check_frames(buf, have, &s, one, 1);   /* the stream ends on a frame boundary */
    CHECK(s.refs == 0);
    ws_outbox_free(&q);
    close(sv[0]);
    close(sv[1]);
}

TEST(ws_outbox_ring_wraps_and_grows_in_order)
{
    static shared s[40];
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ws_outbox q = {0}, other = {0};
    int next_in = 0, next_out = 0;
    /* Push 3, write 2, repeatedly: the ring wraps, and grows with items in it. */
    for (int round = 0; round < 14; round++) {
        for (int k = 0; k < 3 && next_in < 40; k++) {
            s[next_in].data[0] = (char)next_in;
            push(&q, &s[next_in++], 1);
        }
        size_t done;
        CHECK(ws_outbox_write(&q, sv[0], 2, &done) == WS_OUTBOX_DONE);
        for (int k = 0; k < (int)done; k++) {
            char frame[3];
            CHECK(read(sv[1], frame, 3) == 3);
            CHECK(frame[2] == (char)next_out);   /* in the order pushed */
            CHECK(s[next_out].refs == 0);
            next_out++;
        }
    }
    CHECK(next_in == 40 && next_out == 28 && q.count == 12 && q.cap == 16);
    ws_outbox_swap(&other, &q);
    CHECK(q.count == 0 && other.count == 12);
    CHECK(ws_outbox_drop(&other) == 12 && other.count == 0);
    for (int i = 0; i < 40; i++) CHECK(s[i].refs == 0);
    ws_outbox_free(&q);
    ws_outbox_free(&other);
    close(sv[0]);
    close(sv[1]);
}

TEST(ws_outbox_reports_a_failed_socket)
{
    static shared s;
    int sv[2];
    small_pair(sv);
    close(sv[1]);
    ws_outbox q = {0};
    push(&q, &s, 10);
    size_t done;
    CHECK(ws_outbox_write(&q, sv[0], UINT32_MAX, &done) == WS_OUTBOX_FAILED);
    CHECK(errno == EPIPE && q.count == 1 && s.refs == 1);
    ws_outbox_free(&q);
    CHECK(s.refs == 0);
    close(sv[0]);
}
