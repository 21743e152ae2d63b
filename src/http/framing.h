/* framing.h — a guard over the raw request stream of each HTTP connection,
 * for the request framing libmicrohttpd parses out of the application's
 * sight: chunk headers.
 *
 * libmicrohttpd 0.9.75 reads chunked bodies itself and never shows the
 * application a chunk's declared size or its header line.  So a client can
 * declare a chunk of 2^64-1 bytes (the server waits for data that no limit
 * allows), or send a chunk line longer than the read buffer (an HTML 500
 * from libmicrohttpd), or malformed chunking (an HTML 400), and none of it
 * reaches the server's JSON errors, limits or accounting.  There is no hook
 * for this in libmicrohttpd; the guard sits where the bytes enter it: it
 * defines recv(), which libmicrohttpd calls for every read of a connection
 * socket, and follows each guarded connection's requests with a small state
 * machine (heads, Content-Length bodies and chunk data skipped by
 * arithmetic, chunk lines read byte by byte).  Sockets that are not guarded
 * (everything else in the process: libcurl, WebSockets, tests) go straight
 * to the C library's recv.
 *
 * When a chunk line is over CHUNK_LINE_MAX, malformed, or its size takes the
 * body past the limit, the request is refused with a JSON error (400 or
 * 413) and the connection ends:
 *   - if the server has not begun the request yet (its head arrived in the
 *     same read, or after earlier pipelined requests), the refusal waits:
 *     libmicrohttpd gets the bytes before the offending one and nothing
 *     more, and framing_request_begin() hands the refusal to the server,
 *     which replies through libmicrohttpd (before the body: it then closes);
 *   - if the request has begun, libmicrohttpd is reading its body and will
 *     not take a reply until the body ends, so the guard writes the reply
 *     itself (libmicrohttpd reads only when it has nothing to write, so the
 *     bytes cannot interleave with its own) and shuts the socket for
 *     writing.  Then, if the framing is broken or the body declared is past
 *     the limit by more than FRAMING_DISCARD_MAX, libmicrohttpd reads
 *     end-of-file at once; otherwise the rest of the body still flows to
 *     libmicrohttpd and the server drops it (clients that read no reply
 *     before their body is sent would see a reset instead), and the
 *     connection ends with the body.  framing_sent() tells the server that
 *     the reply is out: it drops the body, sends nothing more, and accounts
 *     the guard's status.
 *
 * The body limit: before the server has routed a request only the largest
 * limit of any route is known; framing_request_limit() narrows it to the
 * route's.  (A pipelined request whose whole body arrived before it was
 * begun was checked against the largest limit only; its route still
 * refuses the data itself.)
 *
 * When in doubt — a head the guard does not fully understand (header
 * continuation lines, NUL bytes, several Transfer-Encoding fields, a
 * Transfer-Encoding other than chunked, which the server refuses anyway) —
 * the guard stops guarding the connection: libmicrohttpd then behaves as it
 * would without it.  The guard never refuses what libmicrohttpd accepts as
 * chunking, except lines over CHUNK_LINE_MAX and sizes over the limit.
 *
 * Threads: a guarded connection is read only by its libmicrohttpd thread,
 * and every function here is called on that thread.  The fd table maps a
 * socket to its guard with one atomic pointer per fd.
 */
#ifndef ASSETD_HTTP_FRAMING_H
#define ASSETD_HTTP_FRAMING_H

#include <stdbool.h>
#include <stdint.h>

/* Longest chunk line (size, extensions, CRLF) accepted.  Must stay well
 * below the space libmicrohttpd has for a line (--connection-memory less
 * the head), or its HTML 500 comes first. */
#define CHUNK_LINE_MAX 4096

/* How much of a refused body is read and dropped, so that the client gets
 * to read the reply (see server.c). */
#define FRAMING_DISCARD_MAX (1ull << 30)

typedef struct framing framing;

typedef struct framing_refusal {
    int status;            /* 400 or 413 */
    const char *code;      /* "bad_request" or "payload_too_large" */
    char message[128];
} framing_refusal;

/* Starts guarding socket fd.  max_body: the largest body any route takes.
 * NULL when out of memory or fd is beyond the table: the connection is then
 * simply not guarded.  The guard is the caller's; framing_release() ends it. */
framing *framing_track(int fd, uint64_t max_body);

/* The server's first call for a request (its head is complete).  True if
 * the guard refused the request before it began: *out says how, the server
 * replies with it at once (before the body, which closes the connection),
 * and the guard has stopped. */
bool framing_request_begin(framing *g, const char *request_id, framing_refusal *out);

/* The request's route is known: limit is the most its body may be.  True
 * if the chunk sizes read so far already pass it (*out: a 413, as above). */
bool framing_request_limit(framing *g, uint64_t limit, framing_refusal *out);

/* The status of the reply the guard wrote itself for the current request
 * (the connection is ending), or 0; *body_len (if not NULL) the length of
 * its body. */
int framing_sent(const framing *g, uint64_t *body_len);

/* Stops guarding: from now on reads pass straight through.  For a socket
 * that leaves HTTP (an upgrade), or a request answered before its body
 * (refused: the connection closes after the reply, see framing_release). */
void framing_stop(framing *g, bool refused);

/* The connection is closing (before its socket is closed): if a request
 * was refused, drops unread input (up to 1 MiB already received) so that
 * the close is not a reset, which can destroy the reply before the client
 * reads it; unregisters and frees.  NULL is fine. */
void framing_release(framing *g);

#endif
