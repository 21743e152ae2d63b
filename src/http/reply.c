/* reply.c — building replies and reading requests: the half of the server
 * that handlers call (server.h).  A reply is built here as an
 * MHD_Response kept on the request until libmicrohttpd will take it
 * (http_queue_reply, called by server.c's life cycle): libmicrohttpd
 * accepts a response only between calls with no pending body data.
 */
#include "http/server_internal.h"
#include "util/utf8.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---------- replies ---------- */

static void set_reply(http_req *r, int status, struct MHD_Response *resp, uint64_t body_len)
{
    if (r->replied || !resp) {
        if (resp) MHD_destroy_response(resp);
        return;
    }
    r->replied = true;
    r->reply = resp;
    r->status = status;
    r->bytes_out = strcmp(r->method, "HEAD") == 0 ? 0 : body_len;
}

int http_req_reply_status(http_req *r) { return r->replied ? r->status : 0; }

void http_reply_discard(http_req *r)
{
    if (!r->replied) return;
    if (r->reply) MHD_destroy_response(r->reply);
    r->reply = NULL;
    r->replied = false;
    r->status = 0;
    r->bytes_out = 0;
}

static void reply_buffer(http_req *r, int status, const char *type, char *body, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) { free(body); return; }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    set_reply(r, status, resp, len);
}

void http_reply_json(http_req *r, int status, json_t *body)
{
    /* Most replies are small: encoding into a stack buffer and letting
     * libmicrohttpd copy it is twice as fast as json_dumps(), which grows
     * its output with repeated reallocs. */
    char small[4096];
    size_t n = json_dumpb(body, small, sizeof small, JSON_COMPACT);
    if (n > 0 && n <= sizeof small) {
        json_decref(body);
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(n, small, MHD_RESPMEM_MUST_COPY);
        if (resp) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        set_reply(r, status, resp, n);
        return;
    }
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text) reply_buffer(r, status, "application/json", text, strlen(text));
}

void http_reply_error(http_req *r, int status, const char *code, const char *fmt, ...)
{
    /* Messages may echo what the client sent (a method, a name): scrubbed to
     * valid UTF-8, or jansson would refuse them and the error become a 500. */
    char raw[512], message[3 * sizeof raw];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    json_t *body = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message",
                             utf8_scrub(raw, message, sizeof message));
    if (body) {
        http_reply_json(r, status, body);
        return;
    }
    static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
    http_reply_static(r, 500, "application/json", oom, sizeof oom - 1);
}

void http_reply_text(http_req *r, int status, const char *content_type, const char *body)
{
    char *copy = strdup(body);
    if (copy) reply_buffer(r, status, content_type, copy, strlen(copy));
}

void http_reply_empty(http_req *r, int status)
{
    set_reply(r, status, MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT), 0);
}

void http_reply_static(http_req *r, int status, const char *content_type, const void *data,
                       size_t len)
{
    /* PERSISTENT: libmicrohttpd only reads the buffer, so dropping const is safe. */
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_PERSISTENT);
    if (resp) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    set_reply(r, status, resp, len);
}

void http_reply_fd(http_req *r, int status, int fd, uint64_t offset, uint64_t length)
{
    struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64(length, fd, offset);
    if (!resp) { close(fd); return; }
    set_reply(r, status, resp, length);
}

void http_reply_response(http_req *r, int status, struct MHD_Response *resp, uint64_t body_len)
{
    set_reply(r, status, resp, body_len);
}

void http_reply_header(http_req *r, const char *name, const char *value)
{
    if (r->reply) MHD_add_response_header(r->reply, name, value);
}

/* CORS (http_cors in server.h): only for an allowed Origin, echoed back
 * (never "*": the request carries an Authorization header), with Vary so
 * caches keep answers for different origins apart. */
static bool origin_allowed(const http_server *s, const char *origin)
{
    if (!origin || !*origin || !s->cors_origins[0]) return false;
    if (strcmp(s->cors_origins, "*") == 0) return true;
    size_t n = strlen(origin);
    if (n > 512 || strchr(origin, ',')) return false;
    char item[520];
    snprintf(item, sizeof item, ",%s,", origin);
    return strstr(s->cors_origins, item) != NULL;
}

static void add_cors(http_req *r)
{
    const http_cors *c = r->route ? r->route->cors : NULL;
    const char *origin = http_req_header(r, "Origin");
    if (!c || !origin_allowed(r->srv, origin)) return;
    MHD_add_response_header(r->reply, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(r->reply, "Vary", "Origin");
    MHD_add_response_header(r->reply, "Access-Control-Expose-Headers", c->expose_headers);
    if (strcmp(r->method, "OPTIONS") == 0 &&
        http_req_header(r, "Access-Control-Request-Method")) {
        MHD_add_response_header(r->reply, "Access-Control-Allow-Methods", c->methods);
        MHD_add_response_header(r->reply, "Access-Control-Allow-Headers", c->allow_headers);
        MHD_add_response_header(r->reply, "Access-Control-Max-Age", "86400");
    }
}

enum MHD_Result http_queue_reply(http_req *r)
{
    if (!r->reply) {  /* a handler forgot to reply, or ran out of memory */
        r->replied = false;
        http_reply_error(r, 500, "internal", "the server could not build a response");
        if (!r->reply) return MHD_NO;
    }
    MHD_add_response_header(r->reply, "X-Request-Id", r->request_id);
    add_cors(r);
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)r->status, r->reply);
    MHD_destroy_response(r->reply);
    r->reply = NULL;
    return ok;
}

/* ---------- request accessors ---------- */

void *http_req_app(http_req *r) { return r->srv->app; }
const char *http_req_method(http_req *r) { return r->method; }
const char *http_req_owner(http_req *r) { return r->owner; }
void *http_req_data(http_req *r) { return r->data; }
struct MHD_Connection *http_req_connection(http_req *r) { return r->conn; }

const char *http_req_header(http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *http_req_query(http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_req_param(http_req *r, int i)
{
    return i < r->match.nparams ? r->match.params[i] : "";
}

typedef struct query_walk {
    bool (*fn)(void *arg, const char *name, const char *value);
    void *arg;
} query_walk;

static enum MHD_Result walk_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    query_walk *w = cls;
    return w->fn(w->arg, key, value ? value : "") ? MHD_YES : MHD_NO;
}

void http_req_query_each(http_req *r, bool (*fn)(void *arg, const char *name, const char *value),
                         void *arg)
{
    query_walk w = {fn, arg};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, walk_query, &w);
}

bool http_req_body_limit(http_req *r, uint64_t limit)
{
    framing_refusal refusal;
    if (!framing_request_limit(r->guard, limit, &refusal)) return true;
    http_reply_error(r, refusal.status, refusal.code, "%s", refusal.message);
    return false;
}

void http_req_set_data(http_req *r, void *data, void (*free_fn)(void *))
{
    r->data = data;
    r->data_free = free_fn;
}
