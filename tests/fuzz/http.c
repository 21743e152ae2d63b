/* http — raw bytes on a connection to the real HTTP server (http/server.c,
 * reply.c, router.c, framing.c, timeouts.c over libmicrohttpd), with a few
 * routes of its own: path parameters and the query echoed back, a JSON body
 * (api/json_body.c), a counted body with a limit, an authenticated route, a
 * CORS route.
 *
 * Input: the bytes the client sends (one or more pipelined requests, or
 * anything at all); the client then half-closes and reads until the server
 * closes.
 * Properties:
 *   - the server answers or closes within FUZZ_SERVER_TIMEOUT (no hang, such
 *     as a body framing the server cannot read waiting for the idle
 *     timeout);
 *   - every response starts with a well-formed status line; every error is
 *     JSON of the documented shape, and no status is 500;
 *   - path decoding: for a first request "GET /p/A/B?QUERY", the parameters
 *     the handler sees are A and B percent-decoded (libmicrohttpd's rule:
 *     valid %XX decoded, anything else kept; a component holding %00 is not
 *     decoded at all), and the query pairs are the query's, split at '&'
 *     and '=', '+' read as a space, decoded the same way;
 *   - a 200 on the authenticated route only with the exact key.
 */
#include "fuzz.h"
#include "api/app.h"
#include "http/server.h"
#include "util/encode.h"
#include "util/workpool.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KEY "ak_fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuz"

static uint16_t port;

/* ---------- the routes ---------- */

static json_t *hex_string(const char *s)
{
    size_t n = strlen(s);
    char *h = malloc(2 * n + 1);
    hex_encode((const uint8_t *)s, n, h);
    json_t *j = json_string(h);
    free(h);
    return j;
}

static bool add_pair(void *arg, const char *name, const char *value)
{
    json_array_append_new(arg, json_pack("[o,o]", hex_string(name), hex_string(value ? value : "")));
    return true;
}

static void echo(http_req *r)
{
    json_t *q = json_array();
    http_req_query_each(r, add_pair, q);
    http_reply_json(r, 200, json_pack("{s:o, s:o, s:o}", "a", hex_string(http_req_param(r, 0)),
                                      "b", hex_string(http_req_param(r, 1)), "q", q));
}

static void json_done(http_req *r)
{
    json_t *o = json_body_object(r);
    if (!o) return;
    http_reply_json(r, 200, json_pack("{s:I}", "keys", (json_int_t)json_object_size(o)));
    json_decref(o);
}

typedef struct counter { uint64_t n; } counter;

static bool count_begin(http_req *r)
{
    if (!http_req_body_limit(r, 4096)) return false;
    counter *c = calloc(1, sizeof *c);
    http_req_set_data(r, c, free);
    return true;
}

static bool count_data(http_req *r, const char *data, size_t len)
{
    counter *c = http_req_data(r);
    if (c->n + len > 4096) {
        http_reply_error(r, 413, "payload_too_large", "at most 4096 bytes");
        return false;
    }
    c->n += len;
    return true;
}

static void count_done(http_req *r)
{
    counter *c = http_req_data(r);
    http_reply_json(r, 200, json_pack("{s:I}", "bytes", (json_int_t)c->n));
}

static void ok(http_req *r) { http_reply_json(r, 200, json_pack("{s:s}", "owner", http_req_owner(r))); }

static void later(http_req *r) { http_req_defer(r, ok); }

static const http_cors cors = {"GET, POST", "Authorization, Content-Type", "X-Request-Id"};

static const http_route routes[] = {
    {"GET", "/p/{a}/{b}", false, echo, NULL, NULL, NULL},
    {"POST", "/json", false, json_done, json_body_begin, json_body_data, NULL},
    {"PUT", "/count/{x}", false, count_done, count_begin, count_data, NULL},
    {"POST", "/auth", true, ok, NULL, NULL, NULL},
    {"DELETE", "/auth", true, later, NULL, NULL, NULL},
    {"OPTIONS", "/cors", false, ok, NULL, NULL, &cors},
    {"GET", "/cors", false, ok, NULL, NULL, &cors},
};

static bool auth(void *app, const char *token, char owner[OWNER_MAX + 1])
{
    if (strcmp(token, KEY) != 0) return false;
    strcpy(owner, "fuzz");
    return true;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *err = NULL;
    http_server_config cfg = {.host = "127.0.0.1", .port = 0, .threads = 1,
                              .max_connections = 64, .idle_timeout = 60, .header_timeout = 60,
                              .body_timeout = 60, .connection_memory = 32 * 1024,
                              .max_body = JSON_BODY_MAX, .access_log = "off",
                              .cors_origins = "https://app.example"};
    workpool *pool = workpool_new(1);
    http_server *s = http_server_start(&cfg, routes, sizeof routes / sizeof *routes, NULL, auth,
                                       pool, &err);
    if (!s) {
        fprintf(stderr, "cannot start the server: %s\n", err);
        abort();
    }
    port = http_server_port(s);
    return 0;
}

/* ---------- the reference decoding ---------- */

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes s[0..n) the way the server's unescape callback does. */
static char *decode(const char *s, size_t n, bool plus)
{
    char *o = malloc(n + 1);
    size_t k = 0;
    bool raw = false;
    for (size_t i = 0; i + 2 < n; i++)
        if (s[i] == '%' && s[i + 1] == '0' && s[i + 2] == '0') raw = true;
    for (size_t i = 0; i < n; i++) {
        char c = plus && s[i] == '+' ? ' ' : s[i];
        if (!raw && c == '%' && i + 2 < n + 0 && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            o[k++] = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
            i += 2;
        } else {
            o[k++] = c;
        }
    }
    o[k] = '\0';
    return o;
}

static bool same_hex(json_t *j, const char *want)
{
    json_t *w = hex_string(want);
    bool same = json_equal(j, w);
    json_decref(w);
    return same;
}

/* For "GET /p/A/B[?Q] HTTP/1.1": A, B and Q as the handler must see them. */
static void check_echo(const char *req, size_t len, const fuzz_response *resp)
{
    const char *prefix = "GET /p/";
    if (len < 8 || memcmp(req, prefix, 7) != 0 || resp->status != 200 || !resp->complete) return;
    const char *target = req + 4, *sp = memchr(target, ' ', len - 4);
    if (!sp) return;
    /* libmicrohttpd reads the target up to the line's last space (a bare
     * CR is no line end): only a line with exactly two is read the same both
     * ways. */
    for (const char *p = sp + 1; p < req + len && *p != '\n'; p++)
        if (*p == ' ') return;
    size_t tlen = (size_t)(sp - target);
    const char *qm = memchr(target, '?', tlen);
    size_t plen = qm ? (size_t)(qm - target) : tlen;
    for (size_t i = 0; i < tlen; i++)   /* only targets libmicrohttpd takes as they are */
        if ((unsigned char)target[i] <= 0x20 || target[i] == 0x7f || target[i] == '#') return;
    char *path = decode(target, plen, false);
    json_t *doc = json_loadb(resp->body, resp->body_len, 0, NULL);
    FUZZ_CHECK(doc != NULL);
    /* /p/A/B: the decoded path splits into exactly these segments. */
    char *a = path + 3, *slash = strchr(a, '/');
    FUZZ_CHECK(slash != NULL);
    *slash = '\0';
    FUZZ_CHECK(same_hex(json_object_get(doc, "a"), a));
    FUZZ_CHECK(same_hex(json_object_get(doc, "b"), slash + 1));
    if (qm) {
        json_t *pairs = json_object_get(doc, "q");
        size_t k = 0;
        const char *q = qm + 1, *end = target + tlen;
        while (q < end) {
            const char *amp = memchr(q, '&', (size_t)(end - q));
            size_t n = amp ? (size_t)(amp - q) : (size_t)(end - q);
            /* libmicrohttpd keeps an empty argument, except a last one */
            if (n > 0 || amp) {
                const char *eq = memchr(q, '=', n);
                char *name = decode(q, eq ? (size_t)(eq - q) : n, true);
                char *value = decode(eq ? eq + 1 : "", eq ? n - (size_t)(eq - q) - 1 : 0, true);
                json_t *pair = json_array_get(pairs, k++);
                if (!pair || !same_hex(json_array_get(pair, 0), name) ||
                    !same_hex(json_array_get(pair, 1), value)) {
                    fprintf(stderr, "\nquery pair %zu: want '%s'='%s', the server read %s\n", k - 1,
                            name, value, resp->body);
                    __builtin_trap();
                }
                free(name);
                free(value);
            }
            q += n + 1;
        }
        FUZZ_CHECK(k == json_array_size(pairs));
    }
    json_decref(doc);
    free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t got;
    char *out = fuzz_exchange(port, data, size, &got);
    const char *req = (const char *)data;
    while (size && (*req == '\r' || *req == '\n')) req++, size--;
    bool head = size >= 5 && memcmp(req, "HEAD ", 5) == 0;
    /* Later responses answer pipelined requests whose methods are not
     * followed here (a HEAD's has no body): checked while they parse. */
    fuzz_response r;
    size_t at = 0, used;
    for (int i = 0; at < got && (used = fuzz_parse_response(out + at, got - at, head && i == 0, &r)); i++) {
        if (i > 0 && r.status == 0) break;
        FUZZ_CHECK(r.status != 0);
        fuzz_check_error_shape(&r);
        if (i == 0) {
            check_echo(req, size, &r);
            if (size > 10 && memcmp(req, "POST /auth", 10) == 0 && r.status == 200)
                FUZZ_CHECK(memmem(req, size, KEY, strlen(KEY)) != NULL);
        }
        at += used;
    }
    free(out);
    return 0;
}
