/* fdlimit.h — the server's file descriptors: how many it may open, and
 * what libmicrohttpd does when there are none left.
 *
 * Every connection is a descriptor, and a request may need more: an
 * upload's temp file, a download's blob, a database connection, a pipe.
 * When the process reaches RLIMIT_NOFILE those opens fail with EMFILE
 * (ENFILE: the whole system) and the routes answer 503 `overloaded` with
 * Retry-After (api/routes.c); nothing is lost, and the server recovers by
 * itself once descriptors are closed.
 *
 * libmicrohttpd 0.9.75's accept loop is the one part that does not cope: a
 * thread whose accept() fails with EMFILE stops accepting until one of its
 * connections closes (fine: new clients wait in the listen backlog), but a
 * thread that has no connection at all "busy waits" — its epoll loop sees
 * the listen socket readable, accept() fails, again, at 100% of a core for
 * as long as the exhaustion lasts.  There is no hook for this, so this
 * module defines accept4() (as framing.c defines recv()): a failure for
 * lack of descriptors is returned as before, but a thread that fails again
 * within ACCEPT_RETRY_MS first sleeps out the rest of that interval.  A
 * thread with connections fails once and then stops accepting, so it never
 * sleeps unless its connections close in quick succession while the
 * process is out of descriptors (then its next accept waits at most
 * ACCEPT_RETRY_MS).
 */
#ifndef ASSETD_HTTP_FDLIMIT_H
#define ASSETD_HTTP_FDLIMIT_H

/* The least time between two failed accepts (for lack of descriptors) on
 * one thread. */
#define ACCEPT_RETRY_MS 100

/* Raises the soft RLIMIT_NOFILE to the hard one (a default soft limit of
 * 1024 is below --max-connections' default) and returns the soft limit now
 * in force (0 if unknown). */
unsigned long fdlimit_raise(void);

#endif
