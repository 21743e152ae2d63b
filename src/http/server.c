/* server.c — see server.h.
 *
 * libmicrohttpd calls on_access() several times per request: once when the
 * headers are complete, once per body chunk, and once at the end (again
 * after a resume).  The http_req allocated on the first call carries the
 * request across those calls and is freed in on_completed(), which is also
 * where metrics and the access log are written — so every request is
 * counted exactly once, whatever path it took.
 *
 * Replies are built as MHD_Response objects and kept on the request until
 * libmicrohttpd will take them (it accepts a response only between calls
 * with no pending body data); http_queue_reply() (reply.c) is the one
 * place that sends.
 *
 * Upgrades (101, for WebSocket) end a request early.  libmicrohttpd hands
 * the socket over in on_upgrade() but calls on_completed() only when the
 * new owner gives the socket back, which may be hours later.  So the
 * request is accounted (metrics, access log, in-flight count) in
 * on_upgrade(), and on_completed() then only frees it.  The connection's
 * clock stays in PHASE_BUSY, which has no deadline, and libmicrohttpd keeps
 * an upgraded connection suspended, which exempts it from the idle timeout:
 * from then on the new owner decides when the connection ends.
 *
 * Request framing that libmicrohttpd parses out of our sight (chunk lines)
 * is checked by the framing guard (framing.h), one per connection: a
 * refusal it finds before a request begins is replied here like any other
 * error; one it had to write itself, mid-body, is only accounted here
 * (framing_sent) and the request's body dropped.
 */
#include "http/fdlimit.h"
#include "http/server_internal.h"
#include "util/log.h"
#include "util/timefmt.h"
#include "util/utf8.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <openssl/rand.h>

/* libmicrohttpd (0.9.75) accepts a response only before the body or after
 * all of it, never in the middle.  So when a handler rejects a body part way
 * (a chunked upload passing the size limit), we read and drop the rest so
 * the client gets our 413 at the end; only CPU is spent, no disk or memory.
 * A client that sends more than this after the rejection is cut off without
 * an answer.  (A chunked body declared past its limit is refused sooner, by
 * the framing guard, which then drains the same way.) */
#define DISCARD_LIMIT FRAMING_DISCARD_MAX

/* Descriptors the server needs besides its connections: the database
 * pool, threads' wake-up fds, worker pipes, files being served (only for
 * the warning at start-up: a guess, not a guarantee). */
#define FD_RESERVE 64


/* ---------- deferred work ---------- */

static void run_deferred(void *arg)
{
    http_req *r = arg;
    r->deferred(r);
    /* Held: from here on r is the other thread's (it may be gone already
     * when held() returns). */
    if (r->held) r->held(r->held_arg);
    else http_req_resume(r);
}

static void no_deferred_fn(http_req *r) { (void)r; }

void http_req_suspend(http_req *r)
{
    if (!r->deferred) r->deferred = no_deferred_fn;   /* marks the request as suspended */
    MHD_suspend_connection(r->conn);
}

void http_req_resume(http_req *r)
{
    /* Resuming without a reply would run the route's handler again. */
    if (!r->replied) http_reply_error(r, 500, "internal", "the server could not finish");
    MHD_resume_connection(r->conn);
}

void http_req_hold(http_req *r, void (*then)(void *arg), void *arg)
{
    r->held = then;
    r->held_arg = arg;
}

void http_req_defer(http_req *r, void (*fn)(http_req *r))
{
    r->deferred = fn;
    http_req_suspend(r);
    if (!workpool_submit(r->srv->pool, run_deferred, r)) {
        MHD_resume_connection(r->conn);
        http_reply_error(r, 503, "overloaded", "the server is out of memory; retry later");
    }
}

/* ---------- the request life cycle ---------- */

static void assign_request_id(http_req *r)
{
    const char *given = http_req_header(r, "X-Request-Id");
    size_t n = given ? strlen(given) : 0;
    if (n > 0 && n <= 64 && strspn(given, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                          "0123456789-_.") == n) {
        memcpy(r->request_id, given, n + 1);
        return;
    }
    uint64_t seq = atomic_fetch_add_explicit(&r->srv->next_id, 1, memory_order_relaxed);
    snprintf(r->request_id, sizeof r->request_id, "%s-%llx", r->srv->id_prefix,
             (unsigned long long)seq);
}

static bool authenticate(http_req *r)
{
    const char *h = http_req_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    if (h && strncasecmp(h, "Bearer ", 7) == 0) {
        const char *token = h + 7;
        while (*token == ' ') token++;
        if (r->srv->auth(r->srv->app, token, r->owner)) return true;
    }
    http_reply_error(r, 401, "unauthorized", "a valid API key is required: "
                                             "send 'Authorization: Bearer <token>'");
    http_reply_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    return false;
}

/* What the framing headers say; filled by one pass over the headers. */
typedef struct framing_fields {
    const char *length;    /* the first Content-Length, "" if two differ */
    const char *coding;    /* the first Transfer-Encoding */
    int codings;           /* how many Transfer-Encoding fields */
} framing_fields;

static enum MHD_Result scan_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    framing_fields *f = cls;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        if (!f->length) f->length = value;
        else if (strcmp(f->length, value) != 0) f->length = "";   /* conflict marker */
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        if (f->codings++ == 0) f->coding = value;
    }
    return MHD_YES;
}

/* Refuses framing the server cannot read safely (RFC 9112 §6.3): two
 * different Content-Length headers are a request-smuggling vector, and
 * libmicrohttpd would silently use one of them; a Transfer-Encoding other
 * than exactly "chunked" (gzip, "chunked, gzip", two fields...) leaves the
 * body's length unknown, and libmicrohttpd would read it until the client
 * closes — so the client would wait for an answer until the idle timeout.
 * Replying now, before the body, closes the connection after the reply. */
static bool framing_refused(http_req *r)
{
    framing_fields f = {0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, scan_framing, &f);
    if (f.length && !*f.length) {
        http_reply_error(r, 400, "bad_request", "conflicting Content-Length headers");
        return true;
    }
    if (f.codings > 1 || (f.coding && strcasecmp(f.coding, "chunked") != 0)) {
        http_reply_error(r, 400, "bad_request",
                         "unsupported Transfer-Encoding '%.64s': only 'chunked' is accepted",
                         f.codings > 1 ? "(several fields)" : f.coding);
        return true;
    }
    return false;
}

/* First call: headers are complete, no body has been read, the route (if
 * any) is matched. */
static void start_request(http_req *r)
{
    if (framing_refused(r)) return;
    if (!r->route) {
        if (r->match.allow[0]) {
            http_reply_error(r, 405, "method_not_allowed", "%s is not allowed here", r->method);
            http_reply_header(r, MHD_HTTP_HEADER_ALLOW, r->match.allow);
        } else {
            http_reply_error(r, 404, "not_found", "no such route");
        }
        return;
    }
    if (r->route->auth && !authenticate(r)) return;
    if (r->route->body_begin && !r->route->body_begin(r)) return;
    if (!r->route->body_data) r->route->handle(r);
}

/* Guard against query strings that libmicrohttpd 0.9.75 cannot handle: it
 * stores every query argument in the connection's fixed memory pool, and
 * when the pool runs out mid-parse the connection stalls without an answer.
 * libmicrohttpd shows us the raw request URI before parsing its arguments;
 * for an abusive one we cut the query at the '?' (so nothing is parsed) and
 * mark the request, which then gets a 414. */
#define URI_MAX 8192
#define QUERY_ARGS_MAX 256
static char uri_too_long;   /* its address marks such requests; never written */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    char *query = strchr(uri, '?');
    if (!query) return NULL;
    size_t args = 1;
    for (const char *p = query; *p; p++) args += *p == '&';
    if (strlen(uri) <= URI_MAX && args <= QUERY_ARGS_MAX) return NULL;
    query[1] = '\0';   /* the URI lives in the connection's writable read buffer */
    return &uri_too_long;
}

static bool has_body(http_req *r)
{
    const char *length = http_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return (length && strcmp(length, "0") != 0) ||
           http_req_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
}

/* The first call for a request: headers are complete, no body was read. */
static http_req *begin_request(http_server *s, struct MHD_Connection *conn, const char *url,
                               const char *method, bool refuse_uri)
{
    http_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->srv = s;
    r->conn = conn;
    r->method = method;
    r->started = time_mono_seconds();
    snprintf(r->path, sizeof r->path, "%s", url);
    atomic_fetch_add(&s->in_flight, 1);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    const conn_state *cs = ci ? ci->socket_context : NULL;
    r->clock = cs ? cs->clock : NULL;
    r->guard = cs ? cs->guard : NULL;
    timeouts_enter(r->clock, has_body(r) ? PHASE_BODY : PHASE_BUSY);
    assign_request_id(r);
    if (!refuse_uri) {
        router_match(s->router, method, url, &r->match);
        if (r->match.route >= 0) r->route = &s->routes[r->match.route];
    }
    framing_refusal refusal;
    if (framing_request_begin(r->guard, r->request_id, &refusal))   /* its chunking */
        http_reply_error(r, refusal.status, refusal.code, "%s", refusal.message);
    else if (refuse_uri)
        http_reply_error(r, 414, "uri_too_long", "at most %d bytes and %d query parameters",
                         URI_MAX, QUERY_ARGS_MAX);
    else
        start_request(r);
    return r;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    http_req *r = *con_cls;
    if (!r || r == (void *)&uri_too_long) {
        *con_cls = r = begin_request(cls, conn, url, method, r != NULL);
        if (!r) return MHD_NO;
        /* Replying now, before the body, makes libmicrohttpd close the
         * connection afterwards.  That is what we want when refusing a body
         * (no point reading a 2 GB upload to say 413), and what we must avoid
         * otherwise: it would defeat keep-alive.  Bodiless requests get their
         * reply on the next call, which follows at once.  libmicrohttpd reads
         * nothing more after such a reply: the guard has nothing to guard.
         * A deferred request's reply is the work pool's until it resumes. */
        if (r->deferred || !r->replied || !has_body(r)) return MHD_YES;
        framing_stop(r->guard, true);
        return http_queue_reply(r);
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        r->bytes_in += n;
        if (r->body_rejected || !r->route || !r->route->body_data ||
            framing_sent(r->guard, NULL)) {
            r->discarded += n;
            return r->discarded > DISCARD_LIMIT ? MHD_NO : MHD_YES;
        }
        if (!r->route->body_data(r, upload_data, n)) r->body_rejected = true;
        return MHD_YES;
    }
    timeouts_enter(r->clock, PHASE_BUSY);   /* the body, if any, is complete */
    if (framing_sent(r->guard, NULL)) return MHD_NO;   /* replied already: close */
    if (r->replied) return http_queue_reply(r);  /* a rejection, or deferred work done */
    if (r->route && r->route->body_data) r->route->handle(r);
    /* Deferred: the work pool replies, then resumes the connection.  Until
     * then the reply is that thread's: looking at it here raced it (a reply
     * sent while the work pool was still adding its headers). */
    if (r->deferred) return MHD_YES;
    return http_queue_reply(r);                  /* no reply: a 500 goes instead */
}

static void write_access_log(http_server *s, http_req *r, double seconds)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char remote[INET6_ADDRSTRLEN] = "-";
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                      remote, sizeof remote);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                      remote, sizeof remote);
    }
    char ts[32], method[64], path[3 * sizeof r->path];
    time_format_now(ts);
    utf8_scrub(r->method, method, sizeof method);
    utf8_scrub(r->path, path, sizeof path);
    json_t *line = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:f, s:s}", "ts", ts, "request_id",
        r->request_id, "method", method, "path", path, "route",
        r->route ? r->route->pattern : "unmatched", "status", r->status, "bytes_in",
        (json_int_t)r->bytes_in, "bytes_out", (json_int_t)r->bytes_out, "duration_ms",
        seconds * 1000.0, "remote", remote);
    char *text = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(line);
    if (!text) return;
    flockfile(s->access_log);
    fputs(text, s->access_log);
    fputc('\n', s->access_log);
    funlockfile(s->access_log);
    free(text);
}

/* Counts a finished request exactly once: metrics, access log, in flight. */
static void account_request(http_server *s, http_req *r)
{
    double seconds = time_mono_seconds() - r->started;
    int route = r->route ? (int)(r->route - s->routes) : -1;
    metrics_request(s->metrics, route, r->status, r->bytes_in, r->bytes_out);
    if (r->route && r->route->body_data && r->status / 100 == 2)
        metrics_upload_seconds(s->metrics, seconds);
    if (s->access_log) write_access_log(s, r, seconds);
    atomic_fetch_sub(&s->in_flight, 1);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_server *s = cls;
    http_req *r = *con_cls;
    *con_cls = NULL;
    if (!r || r == (void *)&uri_too_long) return;
    if (!r->upgraded) {   /* upgraded requests were accounted in on_upgrade() */
        uint64_t sent_len;
        int sent = framing_sent(r->guard, &sent_len);
        if (sent) {   /* the guard refused the body and replied itself */
            r->status = sent;
            r->bytes_out = sent_len;
        }
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && r->status == 0) r->status = 499;
        if (r->upgrade_fn) r->status = 499;   /* the client left before the switch */
        account_request(s, r);
        timeouts_enter(r->clock, PHASE_HEADERS);  /* waiting for the next request */
        framing_request_end(r->guard);
    }
    if (r->upgrade_fn) r->upgrade_fn(r->upgrade_cls, NULL, -1, NULL, 0);
    if (r->reply) MHD_destroy_response(r->reply);
    if (r->data_free) r->data_free(r->data);
    free(r);
}

/* ---------- protocol upgrades ---------- */

/* libmicrohttpd has sent the 101: the request is over as far as HTTP goes. */
static void on_upgrade(void *cls, struct MHD_Connection *conn, void *con_cls,
                       const char *extra, size_t extra_len, MHD_socket sock,
                       struct MHD_UpgradeResponseHandle *urh)
{
    http_req *r = cls;
    http_upgrade_fn fn = r->upgrade_fn;
    r->upgrade_fn = NULL;
    r->upgraded = true;
    framing_stop(r->guard, false);          /* the socket leaves HTTP */
    timeouts_enter(r->clock, PHASE_BUSY);   /* no deadline while upgraded */
    account_request(r->srv, r);
    fn(r->upgrade_cls, (http_upgraded *)urh, sock, extra, extra_len);
}

bool http_reply_upgrade(http_req *r, const char *protocol, http_upgrade_fn fn, void *cls)
{
    if (r->replied) return false;
    struct MHD_Response *resp = MHD_create_response_for_upgrade(on_upgrade, r);
    if (!resp) return false;
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, protocol) != MHD_YES) {
        MHD_destroy_response(resp);
        return false;
    }
    http_reply_response(r, MHD_HTTP_SWITCHING_PROTOCOLS, resp, 0);
    r->upgrade_fn = fn;
    r->upgrade_cls = cls;
    return true;
}

void http_upgraded_close(http_upgraded *u)
{
    MHD_upgrade_action((struct MHD_UpgradeResponseHandle *)u, MHD_UPGRADE_ACTION_CLOSE);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    http_server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        metrics_connections(s->metrics, 1);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_state *cs = ci ? calloc(1, sizeof *cs) : NULL;
        if (cs) {
            cs->clock = timeouts_track(s->timeouts, ci->connect_fd);
            cs->guard = framing_track(ci->connect_fd, s->max_body, s->head_max);
        }
        *socket_context = cs;
    } else {   /* closed: libmicrohttpd closes the socket after this */
        metrics_connections(s->metrics, -1);
        conn_state *cs = *socket_context;
        if (cs) {
            timeouts_untrack(s->timeouts, cs->clock);
            framing_release(cs->guard);
            free(cs);
        }
        *socket_context = NULL;
    }
}

/* libmicrohttpd decodes %XX in the path and query for us.  A decoded NUL
 * would silently cut the string short ("/v1/assets/%00" would read as
 * "/v1/assets/"), so a component containing %00 is left undecoded: it then
 * fails validation like any other junk instead of aliasing another route. */
static size_t on_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    for (const char *p = s; (p = strchr(p, '%')); p++)
        if (p[1] == '0' && p[2] == '0') return strlen(s);
    return MHD_http_unescape(s);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
    log_debug("libmicrohttpd", "detail", msg, NULL);
}

/* ---------- start and stop ---------- */

static bool open_access_log(http_server *s, const char *where)
{
    if (!where || strcmp(where, "off") == 0) return true;
    if (strcmp(where, "stdout") == 0) {
        s->access_log = stdout;
        setvbuf(stdout, NULL, _IOLBF, 0);
        return true;
    }
    s->access_log = fopen(where, "ae");
    if (s->access_log) setvbuf(s->access_log, NULL, _IOLBF, 0);
    return s->access_log != NULL;
}

static bool build_router(http_server *s)
{
    const char **methods = calloc((size_t)s->nroutes, sizeof *methods);
    s->labels = calloc((size_t)s->nroutes, sizeof *s->labels);
    if (!methods || !s->labels) { free(methods); return false; }
    for (int i = 0; i < s->nroutes; i++) {
        methods[i] = s->routes[i].method;
        s->labels[i] = s->routes[i].pattern;
    }
    s->router = router_new(s->nroutes, methods, s->labels);
    free(methods);
    s->metrics = s->router ? metrics_new(s->nroutes, s->labels) : NULL;
    return s->metrics != NULL;
}

static void server_free(http_server *s)
{
    if (s->access_log && s->access_log != stdout) fclose(s->access_log);
    else if (s->access_log) fflush(stdout);
    timeouts_stop(s->timeouts);   /* after the daemon: it untracks every connection */
    router_free(s->router);
    metrics_free(s->metrics);
    free(s->labels);
    free(s);
}

http_server *http_server_start(const http_server_config *cfg, const http_route *routes,
                               int nroutes, void *app, http_auth_fn auth, workpool *pool,
                               const char **err)
{
    http_server *s = calloc(1, sizeof *s);
    if (!s) { *err = "out of memory"; return NULL; }
    s->routes = routes;
    s->nroutes = nroutes;
    s->app = app;
    s->auth = auth;
    s->pool = pool;
    s->quiesced_fd = -1;
    s->max_body = cfg->max_body ? cfg->max_body : UINT64_MAX;
    /* A quarter of libmicrohttpd's per-connection memory: the head fits
     * with room for its records and the query's, so it never refuses one
     * itself (framing.h). */
    s->head_max = (uint32_t)(cfg->connection_memory / 4 > UINT32_MAX ? UINT32_MAX
                                                                      : cfg->connection_memory / 4);
    const char *origins = cfg->cors_origins ? cfg->cors_origins : "";
    if (strcmp(origins, "*") == 0 || !*origins)
        snprintf(s->cors_origins, sizeof s->cors_origins, "%s", origins);
    else {   /* ",a,b,": spaces dropped, so "a, b" works too */
        size_t n = 0;
        s->cors_origins[n++] = ',';
        for (const char *p = origins; *p && n < sizeof s->cors_origins - 2; p++)
            if (*p != ' ') s->cors_origins[n++] = *p;
        s->cors_origins[n++] = ',';
        s->cors_origins[n] = '\0';
    }
    uint8_t rnd[4];
    RAND_bytes(rnd, sizeof rnd);
    snprintf(s->id_prefix, sizeof s->id_prefix, "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
             rnd[3]);
    if (!build_router(s)) { *err = "out of memory"; server_free(s); return NULL; }
    if (!(s->timeouts = timeouts_start(cfg->header_timeout, cfg->body_timeout))) {
        *err = "cannot start the connection watchdog";
        server_free(s);
        return NULL;
    }
    if (!open_access_log(s, cfg->access_log)) {
        *err = "cannot open the access log";
        server_free(s);
        return NULL;
    }

    /* Each connection holds a descriptor and a request may open a few more
     * (fdlimit.h): say so when the limit cannot cover the connections. */
    unsigned long nofile = fdlimit_raise();
    if (nofile && (unsigned long)cfg->max_connections + FD_RESERVE > nofile) {
        char have[24], want[24];
        snprintf(have, sizeof have, "%lu", nofile);
        snprintf(want, sizeof want, "%d", cfg->max_connections);
        log_warn("the open-file limit is below --max-connections: when descriptors run out, "
                 "requests that need one answer 503 and new connections wait",
                 "open_files", have, "max_connections", want, NULL);
    }

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(cfg->port)};
    if (inet_pton(AF_INET, cfg->host, &addr.sin_addr) != 1) {
        *err = "listen address must be an IPv4 address such as 127.0.0.1 or 0.0.0.0";
        server_free(s);
        return NULL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG |
                     MHD_USE_TURBO;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->idle_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->connection_memory,
        /* Grow the read buffer in big steps (libmicrohttpd's default is 1 KiB)
         * so request bodies arrive in large chunks: fewer calls per byte. */
        MHD_OPTION_CONNECTION_MEMORY_INCREMENT, cfg->connection_memory / 4,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_UNESCAPE_CALLBACK, on_unescape, s,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
        MHD_OPTION_END);
    if (!s->daemon) {
        *err = "cannot listen (address in use, or bad options)";
        server_free(s);
        return NULL;
    }
    return s;
}

uint16_t http_server_port(const http_server *s)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : 0;
}

metrics *http_server_metrics(http_server *s) { return s->metrics; }

void http_server_quiesce(http_server *s)
{
    /* The listening socket comes back to us; libmicrohttpd wants it closed
     * only after the daemon stops. */
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET) s->quiesced_fd = fd;
}

int http_server_in_flight(http_server *s) { return atomic_load(&s->in_flight); }

void http_server_stop(http_server *s)
{
    MHD_stop_daemon(s->daemon);
    if (s->quiesced_fd >= 0) close(s->quiesced_fd);
    server_free(s);
}
