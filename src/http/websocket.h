/* websocket.h — WebSocket connections (RFC 6455) after an HTTP Upgrade.
 *
 * A route handler that wants a WebSocket calls http_reply_websocket() instead
 * of http_reply_*().  Once libmicrohttpd has sent the 101, the socket leaves
 * the HTTP server and joins a ws_server: one thread with one epoll set that
 * serves every WebSocket connection, framing done by libwslay.  Handlers see
 * an opaque ws_conn and three callbacks, all on that thread; other threads
 * talk to a connection only through ws_conn_send_text() and ws_conn_close().
 *
 * Connection life cycle, as a handler sees it:
 *   http_reply_websocket() returns true
 *     -> on_open(c)                 the socket is on the ws thread
 *     -> on_text(c, ...)  0..n      complete, UTF-8-valid text messages
 *     -> on_close(c)                exactly once; c is freed when it returns
 * on_close comes exactly once for every true return, even when the client
 * goes away before the 101 is sent: then it comes without on_open.
 *
 * Closing, by cause (the close code the client sees):
 *   client sends a close frame          the same code echoed (wslay)
 *   message over max_message            1009, then the connection ends
 *   binary message                      1003 (only text is accepted)
 *   invalid UTF-8 / protocol error      1007 / 1002 (wslay; a frame libwslay's frame layer
 *                                       rejects, such as a fragmented or over-long control
 *                                       frame, and a 1-byte close payload: 1002 from us)
 *   queue over max_queued_bytes         1013 "try again later"
 *   ws_conn_close(c, code, reason)      code
 *   ws_server_stop()                    1001 "going away"
 *   a ping unanswered (nothing at all heard) for pong_timeout: no close
 *   frame, the TCP connection is simply dropped — the peer is presumably
 *   gone, and a close handshake would only wait on the same silent peer.
 *   Pings go out after ping_interval of silence, so a silent peer is dropped
 *   after ping_interval + pong_timeout (+ up to 2 s: timers tick each second).
 * A close frame the server cannot write yet (the client is not reading:
 * a slow consumer's 1013) stays queued for up to close_grace seconds, so a
 * client that reads again within it gets the frame; after that the
 * connection is dropped.  Once its close frame is written the server waits
 * up to pong_timeout seconds (from then) for the client's reply, then drops
 * the connection.  When stopping, 1 s covers both.
 *
 * Memory: an idle connection costs about 10 KiB, all of it here (libwslay's
 * context, ours): the socket is duplicated and libmicrohttpd's side handed
 * back at once, which frees its per-connection buffers (ws_conn_take_socket
 * in ws_conn.c).  Upgraded connections therefore do not count against the
 * HTTP server's --max-connections either.
 *
 * Shutdown order: http_server_quiesce(), ws_server_stop(), then
 * http_server_stop(), then ws_server_free() — libmicrohttpd closes the
 * sockets of upgraded connections still open when it stops, so the
 * ws_server must be done with them first; keep-alive HTTP connections still
 * send requests between the two stops, and those handshakes answer 503
 * (the stopped server stays valid until ws_server_free).  A handshake
 * accepted before the stop whose 101 goes out after the ws thread is gone
 * is closed at once (its on_close then runs on that HTTP thread); s's
 * memory lives until the last such handshake is settled.
 */
#ifndef ASSETD_WEBSOCKET_H
#define ASSETD_WEBSOCKET_H

#include "http/server.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ws_server ws_server;   /* one epoll thread serving every WebSocket connection */
typedef struct ws_conn ws_conn;

/* Zero in any field means its default. */
typedef struct ws_config {
    unsigned ping_interval;      /* seconds of silence from the client before the server pings,
                                  * and between pings while it stays silent (default 30) */
    unsigned pong_timeout;       /* dropped (no close frame) when nothing was heard for
                                  * pong_timeout seconds after a ping, so after about
                                  * ping_interval + pong_timeout of silence; also how long a
                                  * close handshake may take (default 10) */
    size_t max_queued_bytes;     /* outgoing bytes a connection may have pending; over it:
                                  * closed with 1013 (default 1 MiB) */
    size_t max_message;          /* largest client message accepted (default 64 KiB); larger:
                                  * close 1009 */
    unsigned close_grace;        /* seconds a close frame of ours may wait to be written to a
                                  * client that does not read (a slow consumer's 1013); the
                                  * connection stays open that long (default 30) */
} ws_config;

typedef struct ws_handler {
    /* All called on the ws thread.  on_open right after the connection moved to the ws thread. */
    void (*on_open)(void *arg, ws_conn *c);
    /* A complete text message from the client (may be NULL: messages ignored).  data is valid
     * only during the call; it is UTF-8 but not NUL-terminated. */
    void (*on_text)(void *arg, ws_conn *c, const char *data, size_t len);
    /* Exactly once, when the connection is finished for any reason (peer close, error, slow
     * consumer, server stop, or the client leaving before the 101 — then without on_open).
     * After on_close returns, c is freed: no thread may use it again, so handlers must stop
     * every other thread from calling ws_conn_send_text(c) before returning (calls still in
     * progress while on_close runs are safe; they return false). */
    void (*on_close)(void *arg, ws_conn *c);
} ws_handler;

/* cfg may be NULL (all defaults).  NULL with *err set on failure. */
ws_server *ws_server_start(const ws_config *cfg, const char **err);
/* Closes every connection with 1001 (going away), calling on_close for each, and joins the
 * thread; later handshakes answer 503.  s stays valid until ws_server_free().  Call it from one
 * thread; a second call returns at once. */
void ws_server_stop(ws_server *s);
/* Releases s, after ws_server_stop() and http_server_stop() (see the shutdown order above). */
void ws_server_free(ws_server *s);
/* Open connections (for metrics and tests): from handover to the ws thread until on_close. */
int ws_server_connections(ws_server *s);

/* Called by a route handler (on an HTTP thread) instead of http_reply_*: if the request is a
 * valid WebSocket handshake (GET, Upgrade: websocket, Connection: upgrade,
 * Sec-WebSocket-Version: 13, a 16-byte base64 Sec-WebSocket-Key, no body) it replies 101 with
 * Sec-WebSocket-Accept, and once the 101 is sent the socket moves to s; h and arg must stay
 * valid until on_close.  Otherwise it replies with a JSON error itself (400 bad_handshake;
 * 426 upgrade_required with Sec-WebSocket-Version: 13 for another version; 503 shutting_down
 * while ws_server_stop() runs; 500 internal when out of memory) and returns false (on_close
 * is then never called). */
bool http_reply_websocket(http_req *r, ws_server *s, const ws_handler *h, void *arg);

/* Thread-safe (any thread).  Queues a text message (copied; must be UTF-8).  Returns false when
 * the connection is closing/closed or its queue would exceed max_queued_bytes — in the latter
 * case the connection is closed with 1013 ("try again later").  Messages from one thread are
 * sent in the order queued. */
bool ws_conn_send_text(ws_conn *c, const char *data, size_t len);

/* How a connection holds a message it does not copy: ref(owner) when it is queued, unref(owner)
 * once it is written or dropped — on any thread, so both must be thread-safe (an atomic count). */
typedef struct ws_shared_ops {
    void (*ref)(void *owner);
    void (*unref)(void *owner);
} ws_shared_ops;

/* ws_conn_send_text() without the copy, for a message that goes to many connections: data
 * (len bytes, UTF-8) must stay valid while owner is referenced.  On true the connection holds
 * its own reference; on false it took none. */
bool ws_conn_send_shared(ws_conn *c, const char *data, size_t len, const ws_shared_ops *ops,
                         void *owner);
/* Thread-safe.  Starts a close handshake with code/reason (reason <= 123 bytes; longer is
 * cut; may be NULL).  A code that may not be sent (0, 1004-1006, 1015, outside 1000-4999)
 * becomes 1000.  Messages queued before it are still sent.  Later calls are ignored. */
void ws_conn_close(ws_conn *c, uint16_t code, const char *reason);

#endif
