/* server_internal.h — what server.c (the request life cycle) and reply.c
 * (replies and request accessors) share.  Internal to src/http/server*.c and
 * reply.c: handlers see only the opaque types of server.h.
 *
 * Ownership: an http_req lives from libmicrohttpd's first call for a request
 * to on_completed() (server.c); the reply it holds (`reply`) is built by
 * reply.c and handed to libmicrohttpd by http_queue_reply(), once.
 */
#ifndef ASSETD_HTTP_SERVER_INTERNAL_H
#define ASSETD_HTTP_SERVER_INTERNAL_H

#include "http/framing.h"
#include "http/metrics.h"
#include "http/router.h"
#include "http/server.h"
#include "http/timeouts.h"

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>

struct http_server {
    struct MHD_Daemon *daemon;
    const http_route *routes;
    int nroutes;
    router *router;
    metrics *metrics;
    const char **labels;
    void *app;
    http_auth_fn auth;
    workpool *pool;
    conn_timeouts *timeouts;
    FILE *access_log;
    uint64_t max_body;             /* the largest body any route takes */
    uint32_t head_max;             /* the longest head the framing guard lets through */
    char id_prefix[9];
    _Atomic uint64_t next_id;
    _Atomic int in_flight;
    int quiesced_fd;               /* the listen socket after quiesce, or -1 */
    char cors_origins[1024];       /* ",a,b," for a whole-item search, or "*" */
};

/* What the server keeps per connection (libmicrohttpd's socket context). */
typedef struct conn_state {
    conn_clock *clock;             /* deadlines; NULL: none */
    framing *guard;                /* chunk framing; NULL: not guarded */
} conn_state;

struct http_req {
    http_server *srv;
    struct MHD_Connection *conn;
    conn_clock *clock;             /* the connection's deadlines */
    framing *guard;                /* the connection's framing guard */
    const http_route *route;
    route_match match;
    const char *method;
    char path[256];                /* for the access log, truncated */
    char request_id[72];
    char owner[OWNER_MAX + 1];
    double started;
    uint64_t bytes_in, bytes_out, discarded;
    int status;
    struct MHD_Response *reply;    /* built, not yet queued */
    bool replied;                  /* a reply was set (queued or pending) */
    bool body_rejected;
    bool upgraded;                 /* the 101 was sent and the socket handed over */
    http_upgrade_fn upgrade_fn;    /* set by http_reply_upgrade until called */
    void *upgrade_cls;
    void (*deferred)(http_req *r);
    void (*held)(void *arg);       /* http_req_hold(): called instead of resuming */
    void *held_arg;
    void *data;
    void (*data_free)(void *);
};

/* Queues the reply set on r (a 500 if none was), with the request id and,
 * on CORS routes, the CORS headers.  reply.c. */
enum MHD_Result http_queue_reply(http_req *r);

#endif
