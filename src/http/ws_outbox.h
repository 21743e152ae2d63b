/* ws_outbox.h — a WebSocket connection's outgoing text messages: a queue of
 * references to bytes owned elsewhere, written as frames straight from them.
 *
 * Why: a fan-out hands one message to every listener.  Copying it into each
 * connection's queue (and again into libwslay's) cost two allocations and two
 * copies per delivery; here a delivery is a reference (ws_shared_ops) and a
 * 32-byte slot, and the frame header is made as it is written.  A write sends
 * up to WS_OUTBOX_BATCH frames in one sendmsg(), so a connection that fell
 * behind catches up in few system calls.
 *
 * Server frames are unmasked, so a frame is a 2-10 byte header and the
 * message itself: nothing per connection but the header.  `off` counts the
 * bytes of the first frame already written; the rest of that frame must go
 * out before anything else does, or the stream is corrupt.
 *
 * Not thread-safe: a ws_conn (ws_internal.h) keeps two per connection, one that senders
 * fill under the connection's lock and one the ws thread writes from, and
 * swaps them when the second runs dry.
 */
#ifndef ASSETD_WS_OUTBOX_H
#define ASSETD_WS_OUTBOX_H

#include "http/websocket.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WS_OUTBOX_BATCH 16          /* frames per sendmsg() */
#define WS_FRAME_HEADER_MAX 10

typedef struct ws_out {
    const char *data;
    size_t len;
    const ws_shared_ops *ops;       /* ops->unref(owner) once written or dropped */
    void *owner;
} ws_out;

typedef struct ws_outbox {
    ws_out *items;                  /* a ring of cap slots (a power of two), or NULL */
    unsigned cap, head, count;
    size_t off;                     /* bytes of the first frame already written */
} ws_outbox;

/* Appends m; the queue now holds the reference m stands for.  false: out of
 * memory (m not taken). */
bool ws_outbox_push(ws_outbox *q, const ws_out *m);
/* Releases every message except a partly written first one (the stream needs
 * its remaining bytes).  Returns the payload bytes released. */
size_t ws_outbox_drop(ws_outbox *q);
/* Releases everything and the ring itself. */
void ws_outbox_free(ws_outbox *q);
/* Exchanges the two queues; a must be empty (so nothing is partly written). */
void ws_outbox_swap(ws_outbox *a, ws_outbox *b);

typedef enum {
    WS_OUTBOX_DONE,                 /* q is empty, or max_frames were written */
    WS_OUTBOX_BLOCKED,              /* the socket is full: wait for EPOLLOUT */
    WS_OUTBOX_FAILED                /* the socket failed (errno says why) */
} ws_outbox_result;

/* Writes up to max_frames frames (the first possibly partly written before)
 * to the non-blocking socket fd, releasing each once it is complete.
 * *completed gets the payload bytes of the frames completed. */
ws_outbox_result ws_outbox_write(ws_outbox *q, int fd, unsigned max_frames, size_t *completed);

/* A final, unmasked text frame's header for a len-byte payload; returns its
 * length (2, 4 or 10). */
size_t ws_frame_header(uint8_t out[WS_FRAME_HEADER_MAX], size_t len);

#endif
