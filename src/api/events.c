/* events.c — /v1/events: the event log, live, as Server-Sent Events or over
 * a WebSocket; /v1/events/token: URL tokens for browsers.
 *
 * The handler authenticates (an API key in Authorization, or ?token= from
 * POST /v1/events/token, since browsers cannot set headers on these
 * connections), checks the filters — an unknown or foreign ?asset= is a
 * 404 before any stream starts — and subscribes to the hub (events/hub.h),
 * which does the ordering, replay and snapshot.  This file only frames the
 * hub's messages for the transport:
 *   SSE        id: N / event: TYPE / data: JSON, a comment every 15 s;
 *              Last-Event-ID works like ?since=
 *   WebSocket  one text frame per message (http/websocket.h)
 * A client too slow for its bounded buffer is disconnected (SSE: the
 * stream ends; WebSocket: close 1013) and can resume with since=.
 */
#include "api/app.h"
#include "core/event.h"
#include "core/token.h"
#include "http/stream.h"
#include "http/websocket.h"
#include "util/parse.h"
#include "util/timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TOKEN_TTL_DEFAULT 300
#define TOKEN_TTL_MAX 3600

/* One subscriber connection, either transport. */
typedef struct listener {
    app *app;
    hub_sub *sub;
    http_stream *sse;       /* SSE */
    ws_conn *ws;            /* WebSocket */
    hub_filter filter;
} listener;

/* ---------- Server-Sent Events ---------- */

static bool sse_deliver(void *arg, hub_msg *m)
{
    listener *l = arg;
    char head[96];
    int n = m->id > 0 ? snprintf(head, sizeof head, "id: %lld\nevent: %s\ndata: ",
                                 (long long)m->id, m->type)
                      : snprintf(head, sizeof head, "event: %s\ndata: ", m->type);
    /* One write per part keeps the message whole or absent: the buffer
     * check is repeated, so reserve the total first. */
    size_t total = (size_t)n + m->len + 2;
    char *frame = malloc(total);
    if (!frame) return false;
    memcpy(frame, head, (size_t)n);
    memcpy(frame + n, m->text, m->len);
    memcpy(frame + n + m->len, "\n\n", 2);
    bool ok = http_stream_write(l->sse, frame, total);
    free(frame);
    if (!ok) http_stream_end(l->sse);   /* too slow: the client resumes with Last-Event-ID */
    return ok;
}

static void sse_tick(void *arg)
{
    listener *l = arg;
    static const char keepalive[] = ": keep-alive\n\n";
    if (!http_stream_write(l->sse, keepalive, sizeof keepalive - 1)) http_stream_end(l->sse);
}

static void sse_closing(void *arg) { http_stream_end(((listener *)arg)->sse); }

static const hub_sink sse_sink = {sse_deliver, sse_tick, sse_closing};

static void sse_gone(void *arg)
{
    listener *l = arg;
    hub_unsubscribe(l->app->hub, l->sub);
    free(l);
}

static void start_sse(http_req *r, listener *l)
{
    if (!(l->sse = http_reply_stream(r, "text/event-stream", l->app->stream_queue, sse_gone, l))) {
        free(l);
        http_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    http_reply_header(r, "X-Accel-Buffering", "no");   /* proxies: do not hold events back */
    static const char hello[] = "retry: 2000\n\n";
    http_stream_write(l->sse, hello, sizeof hello - 1);
    l->sub = hub_subscribe(l->app->hub, &l->filter, &sse_sink, l);
}

/* ---------- WebSocket ---------- */

static void msg_ref(void *m) { hub_msg_ref(m); }
static void msg_unref(void *m) { hub_msg_unref(m); }
const ws_shared_ops hub_msg_shared = {msg_ref, msg_unref};

static bool ws_deliver(void *arg, hub_msg *m)
{
    listener *l = arg;
    /* over the bound: closed 1013 */
    return ws_conn_send_shared(l->ws, m->text, m->len, &hub_msg_shared, m);
}

static void ws_closing(void *arg) { ws_conn_close(((listener *)arg)->ws, 1001, "server stopping"); }

static const hub_sink ws_sink = {ws_deliver, NULL, ws_closing};

static void ws_open(void *arg, ws_conn *c)
{
    listener *l = arg;
    l->ws = c;
    l->sub = hub_subscribe(l->app->hub, &l->filter, &ws_sink, l);
}

static void ws_close(void *arg, ws_conn *c)
{
    listener *l = arg;
    hub_unsubscribe(l->app->hub, l->sub);   /* after this the hub never sends to c */
    free(l);
}

static const ws_handler ws_events = {ws_open, NULL, ws_close};

/* ---------- the request ---------- */

bool api_authenticate_stream(http_req *r, char owner[OWNER_MAX + 1])
{
    app *a = http_req_app(r);
    const char *auth = http_req_header(r, "Authorization");
    const char *token = http_req_query(r, "token");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0 && api_authenticate(a, auth + 7, owner))
        return true;
    if (!auth && token && token_verify(a->secret, "events", token, time_now_ms() / 1000, owner))
        return true;
    http_reply_error(r, 401, "unauthorized", auth || !token
                                                 ? "a valid API key is required"
                                                 : "the token is invalid or expired");
    http_reply_header(r, "WWW-Authenticate", "Bearer");
    return false;
}

static bool parse_since(http_req *r, hub_filter *f)
{
    const char *since = http_req_query(r, "since");
    if (!since) since = http_req_header(r, "Last-Event-ID");
    uint64_t v = 0;
    if (since && (!parse_u64(since, &v) || v > INT64_MAX)) {
        http_reply_error(r, 400, "invalid_parameter", "since must be an event id");
        return false;
    }
    f->since = since ? (int64_t)v : -1;
    return true;
}

/* Fills the filter from the query; false: an error reply is set. */
static bool parse_filter(http_req *r, hub_filter *f)
{
    app *a = http_req_app(r);
    const char *asset_id = http_req_query(r, "asset");
    const char *types = http_req_query(r, "types");
    if (types && !hub_filter_set_types(f, types)) {
        http_reply_error(r, 400, "invalid_parameter", "types is a comma-separated list of at "
                         "most %d of: %s", HUB_MAX_TYPES, EVENT_TYPES_TEXT);
        return false;
    }
    if (!parse_since(r, f)) return false;
    db_conn *c = db_acquire(a->db);
    int64_t oldest, newest;
    asset as;
    db_status st = c ? db_events_bounds(c, &oldest, &newest) : DB_ERROR;
    if (st == DB_OK && asset_id)
        st = id_is_valid(asset_id) ? db_asset_get(c, f->owner, asset_id, &as) : DB_NOT_FOUND;
    db_release(a->db, c);
    if (st != DB_OK) {
        if (st == DB_NOT_FOUND) http_reply_error(r, 404, "not_found", "no such asset");
        else http_reply_error(r, 503, "database_unavailable", "try again");
        return false;
    }
    if (f->since > newest) {
        http_reply_error(r, 400, "invalid_parameter", "since is after the newest event (%lld)",
                         (long long)newest);
        return false;
    }
    if (asset_id) snprintf(f->asset_id, sizeof f->asset_id, "%s", asset_id);
    /* Live from this moment, not from when the hub gets round to admitting
     * us: an event committed in between (say, by an upload the client
     * starts as soon as it sees the stream open) is then replayed. */
    else if (f->since < 0) f->since = newest;
    return true;
}

static bool wants_sse(http_req *r)
{
    const char *accept = http_req_header(r, "Accept");
    return accept && strstr(accept, "text/event-stream");
}

void events_stream(http_req *r)
{
    app *a = http_req_app(r);
    listener *l = calloc(1, sizeof *l);
    if (!l) {
        http_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    l->app = a;
    if (!api_authenticate_stream(r, l->filter.owner) || !parse_filter(r, &l->filter)) {
        free(l);
        return;
    }
    const char *upgrade = http_req_header(r, "Upgrade");
    if (upgrade && strcasecmp(upgrade, "websocket") == 0) {
        ws_server *ws = a->ws[atomic_fetch_add(&a->ws_next, 1) % (unsigned)a->nws];
        if (!http_reply_websocket(r, ws, &ws_events, l)) free(l);   /* it replied */
    } else if (wants_sse(r)) {
        start_sse(r, l);
    } else {
        free(l);
        http_reply_error(r, 406, "not_acceptable", "connect with a WebSocket, or send "
                                                   "Accept: text/event-stream");
    }
}

void events_token(http_req *r)
{
    app *a = http_req_app(r);
    uint64_t ttl = TOKEN_TTL_DEFAULT;
    const char *v = http_req_query(r, "ttl");
    if (v && (!parse_u64(v, &ttl) || ttl < 1 || ttl > TOKEN_TTL_MAX)) {
        http_reply_error(r, 400, "invalid_parameter", "ttl must be 1..%d seconds", TOKEN_TTL_MAX);
        return;
    }
    int64_t expires_ms = time_now_ms() + (int64_t)ttl * 1000;
    char token[TOKEN_MAX + 1], expires[32];
    if (!token_sign(a->secret, "events", http_req_owner(r), expires_ms / 1000, token)) {
        http_reply_error(r, 500, "internal", "cannot sign a token for this owner");
        return;
    }
    time_format_ms(expires_ms / 1000 * 1000, expires);
    http_reply_json(r, 201, json_pack("{s:s, s:s}", "token", token, "expires", expires));
}
