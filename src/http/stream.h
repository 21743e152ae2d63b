/* stream.h — a response body written over time by another thread.
 *
 * For Server-Sent Events: the handler replies with a stream, and a producer
 * (the event hub) appends bytes whenever it has some.  Bytes wait in a
 * bounded buffer; when the client reads slower than the producer writes,
 * http_stream_write() refuses rather than grow, and the producer ends the
 * stream (a slow consumer must not cost unbounded memory).
 *
 * When the buffer is empty the connection is suspended (libmicrohttpd then
 * neither polls nor times it out) and a write resumes it.  While suspended
 * a vanished client is not noticed, so producers write something
 * periodically (SSE comments) and the failed send ends the response.
 *
 * Life cycle: on_gone(arg) runs exactly once, on an HTTP thread, when the
 * response is over (client gone, or everything sent after http_stream_end).
 * The producer must not touch the stream after on_gone has returned, so
 * on_gone is where it stops producing (e.g. hub_unsubscribe).
 */
#ifndef ASSETD_HTTP_STREAM_H
#define ASSETD_HTTP_STREAM_H

#include "http/server.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct http_stream http_stream;

/* Replies 200 with the content type and a chunked body; NULL if out of
 * memory (a 500 is then set). */
http_stream *http_reply_stream(http_req *r, const char *content_type, size_t max_buffered,
                               void (*on_gone)(void *arg), void *arg);
/* Any thread.  False when the bytes do not fit in the buffer or the stream
 * has ended; nothing is written then. */
bool http_stream_write(http_stream *s, const char *data, size_t len);
/* Any thread: end the body once the buffered bytes are sent. */
void http_stream_end(http_stream *s);

/* A body of known length from a producer that can wait (a download proxied
 * from S3): the producer blocks in http_stream_write_wait() while the
 * buffer is full, so a slow client slows the producer instead of costing
 * memory.  Such a stream has two owners, the response and the producer:
 * it is freed when the response is over and the producer has called
 * http_stream_release().  No on_gone: write_wait returning false is how the
 * producer learns that the client left. */
http_stream *http_reply_stream_sized(http_req *r, int status, const char *content_type,
                                     uint64_t length, size_t max_buffered);
/* Waits for room, then writes; false if the client is gone (or the stream
 * ended).  data may be longer than max_buffered: it goes in pieces. */
bool http_stream_write_wait(http_stream *s, const char *data, size_t len);
/* Ends the body early: the connection is closed, so the client sees a
 * short body and never mistakes it for the whole. */
void http_stream_fail(http_stream *s);
/* The producer's last touch of s. */
void http_stream_release(http_stream *s);

#endif
