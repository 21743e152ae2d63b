/* server.h — the HTTP server: libmicrohttpd underneath, routes on top.
 *
 * The server owns connections, routing, authentication hand-off, request ids,
 * metrics and the access log.  Handlers (api/) see an opaque http_req and
 * reply through http_reply_*(); they never touch libmicrohttpd directly.
 *
 * Request life cycle:
 *   1. headers arrive: the route is matched, the bearer token checked (when
 *      the route needs auth), then body_begin() runs if the route streams a
 *      body.  Any of these may reply at once (401, 404, 413...).
 *   2. each body chunk goes to body_data() as it arrives — never buffered
 *      whole.  Returning false means "a reply is set; ignore the rest".
 *   3. at the end, handle() runs.  It replies at once, or calls
 *      http_req_defer() to move blocking work (fsync, database writes) onto
 *      the work pool while the connection is suspended; the deferred function
 *      must reply.
 *
 * Threads: libmicrohttpd's own thread pool runs steps 1-3; deferred work runs
 * on the workpool given at start.  A request is only ever touched by one
 * thread at a time.
 */
#ifndef ASSETD_HTTP_SERVER_H
#define ASSETD_HTTP_SERVER_H

#include "core/asset.h"
#include "http/metrics.h"
#include "util/workpool.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct http_server http_server;
typedef struct http_req http_req;

/* Cross-origin access for a route (browsers): the server answers for the
 * origins in http_server_config.cors_origins only.  Every reply on the route
 * then carries Access-Control-Allow-Origin and Expose-Headers; an OPTIONS
 * preflight (Access-Control-Request-Method) also gets the methods and
 * request headers allowed, whatever the handler answered. */
typedef struct http_cors {
    const char *methods;          /* "POST, HEAD, PATCH, DELETE, OPTIONS" */
    const char *allow_headers;    /* request headers a page may send */
    const char *expose_headers;   /* response headers a page may read */
} http_cors;

typedef struct http_route {
    const char *method;    /* GET routes also answer HEAD */
    const char *pattern;   /* "/v1/assets/{id}"; also the metrics label */
    bool auth;             /* needs a valid API key */
    void (*handle)(http_req *r);
    /* Optional, for routes that take a request body. */
    bool (*body_begin)(http_req *r);
    bool (*body_data)(http_req *r, const char *data, size_t len);
    const http_cors *cors; /* NULL: same-origin only */
} http_route;

typedef struct http_server_config {
    const char *host;
    uint16_t port;             /* 0: let the kernel choose; see http_server_port() */
    int threads;               /* HTTP threads */
    int max_connections;
    int idle_timeout;          /* seconds without traffic before a connection is dropped */
    unsigned header_timeout;   /* seconds to send a request's headers (see timeouts.h) */
    unsigned body_timeout;     /* seconds to send a request's body */
    size_t connection_memory;  /* per-connection buffer (headers + body chunks) */
    uint64_t max_body;         /* the largest body any route takes; 0: no limit */
    const char *access_log;    /* "stdout", "off" or a file path */
    const char *cors_origins;  /* origins routes with cors answer: "a,b", "*", "" or NULL: none */
} http_server_config;

/* Resolves a bearer token to its owner; false for unknown or revoked keys. */
typedef bool (*http_auth_fn)(void *app, const char *token, char owner[OWNER_MAX + 1]);

/* Starts listening.  routes, app and pool are borrowed and must outlive the
 * server.  NULL with *err set on failure. */
http_server *http_server_start(const http_server_config *cfg, const http_route *routes,
                               int nroutes, void *app, http_auth_fn auth, workpool *pool,
                               const char **err);
uint16_t http_server_port(const http_server *s);
metrics *http_server_metrics(http_server *s);
/* Stops accepting new connections; in-flight requests go on. */
void http_server_quiesce(http_server *s);
/* Requests that have started and not yet completed (an upgraded request
 * completes when its 101 is sent). */
int http_server_in_flight(http_server *s);
/* Closes every connection and frees the server.  Upgraded connections should
 * be handed back first (http_upgraded_close; see websocket.h). */
void http_server_stop(http_server *s);

/* --- for handlers --- */
void *http_req_app(http_req *r);
const char *http_req_method(http_req *r);
const char *http_req_header(http_req *r, const char *name);
const char *http_req_query(http_req *r, const char *name);
/* The i-th {param} of the matched pattern. */
const char *http_req_param(http_req *r, int i);
/* The authenticated owner ("" on routes without auth). */
const char *http_req_owner(http_req *r);
/* For body_begin(): the most this request's body may be.  A chunked body
 * whose chunk sizes pass it is refused at once with a 413 (http/framing.h),
 * not after the bytes arrive; false if the sizes read so far already pass it
 * (the 413 is then set).  Content-Length stays the route's to check. */
bool http_req_body_limit(http_req *r, uint64_t limit);
/* Per-request handler state, freed with free_fn when the request ends. */
/* Calls fn for each query parameter (decoded) in order; stops when fn
 * returns false. */
void http_req_query_each(http_req *r, bool (*fn)(void *arg, const char *name, const char *value),
                         void *arg);
void http_req_set_data(http_req *r, void *data, void (*free_fn)(void *));
void *http_req_data(http_req *r);
/* The libmicrohttpd connection, for http/ modules only (multipart). */
struct MHD_Connection *http_req_connection(http_req *r);
/* Sets a response built with libmicrohttpd, for http/ modules only
 * (stream.c); takes ownership of resp. */
struct MHD_Response;
void http_reply_response(http_req *r, int status, struct MHD_Response *resp, uint64_t body_len);

/* Replies.  Exactly one per request; later calls are ignored. */
void http_reply_json(http_req *r, int status, json_t *body);   /* steals body */
void http_reply_error(http_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void http_reply_text(http_req *r, int status, const char *content_type, const char *body);
void http_reply_empty(http_req *r, int status);
/* Sends len bytes that outlive the server (static data, such as the embedded
 * web page): nothing is copied or freed. */
void http_reply_static(http_req *r, int status, const char *content_type, const void *data,
                       size_t len);
/* Sends length bytes of fd from offset; the reply takes ownership of fd. */
void http_reply_fd(http_req *r, int status, int fd, uint64_t offset, uint64_t length);
/* The status of the reply set so far, or 0. */
int http_req_reply_status(http_req *r);
/* Drops the reply set so far, so that another can be set: for a kept
 * legacy API that answers shared machinery's errors in its own shape.
 * Only for replies of http_reply_json/error/text (never a stream or an
 * upgrade), before the handler step that set it returns. */
void http_reply_discard(http_req *r);
/* Adds a header to the reply set by the last http_reply_*() call. */
void http_reply_header(http_req *r, const char *name, const char *value);

/* Suspends the request and runs fn on the work pool; fn must reply. */
void http_req_defer(http_req *r, void (*fn)(http_req *r));
/* The same for a handler that brings its own thread (a proxied download
 * that lasts as long as the client reads): http_req_suspend() in the
 * handler, then the other thread sets the reply and calls
 * http_req_resume(), after which it must not touch r again. */
void http_req_suspend(http_req *r);
void http_req_resume(http_req *r);
/* Inside a deferred function that has not replied: the request stays
 * suspended when it returns, for another thread that waits on something
 * (a CSV run to end) to reply and call http_req_resume() later.  That
 * thread gets r only through then(arg), called once the deferred
 * function has returned, so it never resumes r while r is still in use. */
void http_req_hold(http_req *r, void (*then)(void *arg), void *arg);

/* --- protocol upgrades, for http/ modules only (websocket) --- */

/* An upgraded connection leaves HTTP: its request counts as complete
 * (metrics, access log with status 101, no longer in flight) once the 101 is
 * sent, and the header/body deadlines and the idle timeout stop applying to
 * it.  The socket stays libmicrohttpd's: the new owner reads and writes it
 * (and may shutdown(2) it) but never closes it — http_upgraded_close() hands
 * it back, and libmicrohttpd closes it. */
typedef struct http_upgraded http_upgraded;

/* Called exactly once for each successful http_reply_upgrade(), on an HTTP
 * thread: once the 101 is sent, with the socket and the bytes the client sent
 * after its request that were already read (extra is valid only during the
 * call); or, if the connection ended before the switch, with u NULL and
 * fd -1. */
typedef void (*http_upgrade_fn)(void *cls, http_upgraded *u, int fd, const char *extra,
                                size_t extra_len);

/* Replies 101 Switching Protocols with "Upgrade: <protocol>" (libmicrohttpd
 * adds "Connection: Upgrade"); add further headers with http_reply_header().
 * False, and fn is never called, when a reply was already set or memory ran
 * out. */
bool http_reply_upgrade(http_req *r, const char *protocol, http_upgrade_fn fn, void *cls);
/* Done with an upgraded socket: libmicrohttpd closes it.  Any thread, once. */
void http_upgraded_close(http_upgraded *u);

#endif
