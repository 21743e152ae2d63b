/* framing.h — a guard over the raw request stream of each HTTP connection,
 * for the request framing libmicrohttpd parses out of the application's
 * sight: chunk headers, and request heads it refuses by itself.
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
 * Heads: libmicrohttpd 0.9.75 answers some malformed heads itself, before
 * the server sees them, with a small HTML page (or closes without a word):
 * a request line or header block past its buffer (414, 431), too many
 * fields for its memory pool (431), a request line with no space, an empty
 * method, no or a malformed version (400, or a silent close), a major
 * version other than 1 (505), a field line without ':' (400), a malformed
 * or 64-bit-overflowing Content-Length (400, 413).  The guard checks each
 * head as libmicrohttpd will (the same reading, byte for byte), with limits
 * below libmicrohttpd's (a request line or header block over head_max
 * bytes, over FRAMING_FIELDS_MAX field lines).  When every earlier request
 * of the connection is finished, libmicrohttpd has nothing to write and is
 * waiting for this head, so the guard writes the JSON error itself, shuts
 * the socket for writing and gives libmicrohttpd the bytes before the
 * offending one (never a complete line it would refuse), then end-of-file:
 * it closes without writing.  A bad head pipelined behind requests still
 * being answered waits (reads see nothing more) until the server has
 * finished them (framing_request_end), then gets its reply the same way.
 * These refusals happen before any request exists, so they have no request
 * id and no access log line.
 *
 * When in doubt — a head the guard does not fully understand (a
 * continuation line of a Content-Length or Transfer-Encoding field, a
 * Content-Length whose first 48 bytes of value are all digits or spaces
 * and go on, several Transfer-Encoding fields, a Transfer-Encoding other
 * than chunked, which the server refuses anyway) — the guard stops guarding
 * the connection: libmicrohttpd then behaves as it would without it, its
 * own pages included, for that request and the connection's next ones.
 * The guard never refuses what libmicrohttpd accepts as chunking, except
 * lines over CHUNK_LINE_MAX and sizes over the limit; of heads, only those
 * over head_max bytes or FRAMING_FIELDS_MAX fields.
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

/* Most field lines in a head (libmicrohttpd keeps a record of each in the
 * connection's memory pool, and answers 431 itself when it is full). */
#define FRAMING_FIELDS_MAX 100

typedef struct framing framing;

typedef struct framing_refusal {
    int status;            /* 400 or 413 */
    const char *code;      /* "bad_request" or "payload_too_large" */
    char message[128];
} framing_refusal;

/* Starts guarding socket fd.  max_body: the largest body any route takes;
 * head_max: the longest request line, and the most bytes of fields after
 * it (0: unchecked), well below what libmicrohttpd's buffer holds.  NULL
 * when out of memory or fd is beyond the table: the connection is then
 * simply not guarded.  The guard is the caller's; framing_release() ends it. */
framing *framing_track(int fd, uint64_t max_body, uint32_t head_max);

/* The server's first call for a request (its head is complete).  True if
 * the guard refused the request before it began: *out says how, the server
 * replies with it at once (before the body, which closes the connection),
 * and the guard has stopped. */
bool framing_request_begin(framing *g, const char *request_id, framing_refusal *out);

/* The request's route is known: limit is the most its body may be.  True
 * if the chunk sizes read so far already pass it (*out: a 413, as above). */
bool framing_request_limit(framing *g, uint64_t limit, framing_refusal *out);

/* The server has finished a request (its reply is sent, libmicrohttpd has
 * nothing more to write): the guard answers a bad head that was waiting
 * behind it. */
void framing_request_end(framing *g);

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
