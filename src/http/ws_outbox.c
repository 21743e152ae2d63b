/* ws_outbox.c — see ws_outbox.h. */
#include "http/ws_outbox.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define FIRST_CAP 4

static ws_out *slot(const ws_outbox *q, unsigned i) { return &q->items[(q->head + i) & (q->cap - 1)]; }

static void release(const ws_out *m) { m->ops->unref(m->owner); }

/* Doubles the ring, unwrapping it into the new one. */
static bool grow(ws_outbox *q)
{
    unsigned cap = q->cap ? q->cap * 2 : FIRST_CAP;
    if (cap < q->cap) return false;
    ws_out *items = malloc(sizeof *items * cap);
    if (!items) return false;
    for (unsigned i = 0; i < q->count; i++) items[i] = *slot(q, i);
    free(q->items);
    q->items = items;
    q->cap = cap;
    q->head = 0;
    return true;
}

bool ws_outbox_push(ws_outbox *q, const ws_out *m)
{
    if (q->count == q->cap && !grow(q)) return false;
    *slot(q, q->count++) = *m;
    return true;
}

static void pop(ws_outbox *q)
{
    release(slot(q, 0));
    q->head = (q->head + 1) & (q->cap - 1);
    q->count--;
    q->off = 0;
}

size_t ws_outbox_drop(ws_outbox *q)
{
    unsigned keep = q->off > 0 ? 1 : 0;
    size_t bytes = 0;
    for (unsigned i = keep; i < q->count; i++) {
        bytes += slot(q, i)->len;
        release(slot(q, i));
    }
    q->count = keep;
    return bytes;
}

void ws_outbox_free(ws_outbox *q)
{
    q->off = 0;
    ws_outbox_drop(q);
    free(q->items);
    *q = (ws_outbox){0};
}

void ws_outbox_swap(ws_outbox *a, ws_outbox *b)
{
    ws_outbox t = *a;
    *a = *b;
    *b = t;
}

size_t ws_frame_header(uint8_t out[WS_FRAME_HEADER_MAX], size_t len)
{
    out[0] = 0x81;   /* FIN, text */
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

/* Pops the frames the n written bytes completed; returns how many. */
static unsigned consume(ws_outbox *q, size_t n, size_t *completed)
{
    unsigned frames = 0;
    uint8_t hdr[WS_FRAME_HEADER_MAX];
    while (n > 0) {
        const ws_out *m = slot(q, 0);
        size_t left = ws_frame_header(hdr, m->len) + m->len - q->off;
        if (n < left) {
            q->off += n;
            break;
        }
        n -= left;
        *completed += m->len;
        pop(q);
        frames++;
    }
    return frames;
}

ws_outbox_result ws_outbox_write(ws_outbox *q, int fd, unsigned max_frames, size_t *completed)
{
    *completed = 0;
    while (q->count > 0 && max_frames > 0) {
        uint8_t hdr[WS_OUTBOX_BATCH][WS_FRAME_HEADER_MAX];
        struct iovec iov[2 * WS_OUTBOX_BATCH];
        unsigned n = q->count < max_frames ? q->count : max_frames, niov = 0;
        if (n > WS_OUTBOX_BATCH) n = WS_OUTBOX_BATCH;
        size_t total = 0;
        for (unsigned i = 0; i < n; i++) {
            const ws_out *m = slot(q, i);
            size_t hlen = ws_frame_header(hdr[i], m->len), skip = i == 0 ? q->off : 0;
            if (skip < hlen) iov[niov++] = (struct iovec){hdr[i] + skip, hlen - skip};
            size_t from = skip > hlen ? skip - hlen : 0;
            if (m->len > from) iov[niov++] = (struct iovec){(void *)(m->data + from), m->len - from};
            total += hlen + m->len - skip;
        }
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = niov};
        ssize_t w = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return WS_OUTBOX_BLOCKED;
            if (errno == EINTR) continue;
            return WS_OUTBOX_FAILED;
        }
        max_frames -= consume(q, (size_t)w, completed);
        if ((size_t)w < total) return WS_OUTBOX_BLOCKED;   /* the socket took what it could */
    }
    return WS_OUTBOX_DONE;
}
