/* timeouts.h — header and body deadlines for client connections.
 *
 * libmicrohttpd has an idle timeout (no byte for N seconds) but no deadline
 * for a whole header block or body, so a slowloris client that trickles one
 * byte every few seconds would hold a connection forever.  This module adds
 * both deadlines:
 *
 *   HEADERS  from connect, or from the end of the previous response, until
 *            the next request's headers are complete: header_timeout.  This
 *            also bounds how long an idle keep-alive connection is kept.
 *   BODY     from the headers until the body is read: body_timeout.
 *   BUSY     the server is working or sending: no deadline (idle timeout).
 *
 * A watchdog thread scans the tracked connections once a second and calls
 * shutdown(2) on the socket of any that overran; libmicrohttpd then sees
 * the connection fail and cleans it up through its normal path.  The fd is
 * never closed here.  A connection is untracked (under the registry lock)
 * in libmicrohttpd's "closed" notification, which comes before it closes the
 * socket, so the watchdog can never shut down a reused descriptor.
 *
 * The same sweep ends a connection waiting for a head or a body whose
 * client has closed its side with every byte read (timeouts.c, peer_gone):
 * libmicrohttpd can miss that end-of-file.
 *
 * Phase changes are a single atomic store, so the request path takes no lock.
 */
#ifndef ASSETD_TIMEOUTS_H
#define ASSETD_TIMEOUTS_H

typedef struct conn_timeouts conn_timeouts;
typedef struct conn_clock conn_clock;

typedef enum { PHASE_HEADERS = 0, PHASE_BODY = 1, PHASE_BUSY = 2 } conn_phase;

/* Starts the watchdog.  NULL on failure. */
conn_timeouts *timeouts_start(unsigned header_timeout, unsigned body_timeout);
void timeouts_stop(conn_timeouts *t);

/* Begins tracking a new connection in PHASE_HEADERS; NULL on failure (the
 * connection then simply has no deadlines). */
conn_clock *timeouts_track(conn_timeouts *t, int fd);
void timeouts_untrack(conn_timeouts *t, conn_clock *c);
void timeouts_enter(conn_clock *c, conn_phase phase);

#endif
