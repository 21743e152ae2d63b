/* api — requests to the whole API (every route of api/routes.c, its
 * handlers, SQLite and the disk store; tests/fuzz/app.h): every JSON body
 * (webhooks, uploads, links, slideshow control, the cloud API's status),
 * query parameters (?limit=, cursors, filters), uploads raw and multipart,
 * the tus headers api/tus.c parses itself (Upload-Length, Upload-Offset,
 * Upload-Concat, Upload-Checksum, Upload-Metadata), Range and
 * If-None-Match on real bytes, ids good and bad.
 *
 * Input: "REQUEST-LINE\nHeader: value\n...\n\nBODY" — the request line
 * without its version ("POST /v1/webhooks"); "$ID", "$TUS" and "$KEY" are
 * replaced by a real asset id, a real tus upload id and the API key.  The
 * harness adds Host, the API key (unless an Authorization header is
 * given) and Content-Length (unless a Content-Length or Transfer-Encoding
 * header is given).
 *   "SIGNED\nFIND\nREPLACE" instead takes a signed download link of the
 * asset (POST /v1/assets/$ID/links, "attachment"), fetches it, then fetches
 * it again with the first FIND in its path and query replaced by REPLACE.
 * Properties:
 *   - an answer or a close within FUZZ_SERVER_TIMEOUT; every error in the
 *     documented JSON shape (the open-table API's 400 in its own,
 *     {"data":"bad request"}); never a 500;
 *   - a signed link, changed, is served only if the request the server
 *     reads (path and query, decoded) is the one that was signed.
 */
#include "app.h"
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static fuzz_app *fa;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fa = fuzz_app_start();
    return 0;
}

/* s with every $ID, $TUS and $KEY replaced, appended to out. */
static void expand(const char *s, size_t n, char **out, size_t *len, size_t *cap)
{
    if (!*out) *out = calloc(1, *cap = 64);
    for (size_t i = 0; i < n; i++) {
        const char *put = NULL;
        size_t skip = 0;
        if (n - i >= 3 && memcmp(s + i, "$ID", 3) == 0) put = fa->asset, skip = 3;
        else if (n - i >= 4 && memcmp(s + i, "$TUS", 4) == 0) put = fa->tus, skip = 4;
        else if (n - i >= 4 && memcmp(s + i, "$KEY", 4) == 0) put = fa->key, skip = 4;
        size_t add = put ? strlen(put) : 1;
        if (*len + add + 1 > *cap) *out = realloc(*out, *cap = (*len + add + 1) * 2);
        memcpy(*out + *len, put ? put : s + i, add);
        *len += add;
        if (put) i += skip - 1;
    }
    (*out)[*len] = '\0';
}

static bool has_header(const char *head, size_t n, const char *name)
{
    size_t k = strlen(name);
    for (size_t i = 0; i + k <= n; i++)
        if ((i == 0 || head[i - 1] == '\n') && strncasecmp(head + i, name, k) == 0) return true;
    return false;
}

static void check_all(const char *out, size_t got, bool head, const char *target)
{
    fuzz_response r;
    size_t at = 0, used;
    for (int i = 0; at < got && (used = fuzz_parse_response(out + at, got - at, head && i == 0, &r)); i++) {
        if (i > 0 && r.status == 0) break;
        FUZZ_CHECK(r.status != 0);
        bool legacy = i == 0 && r.status == 400 && strncmp(target, "/api/upload", 11) == 0 &&
                      r.complete && strcmp(r.body, "{\"data\":\"bad request\"}") == 0;
        if (!legacy) fuzz_check_error_shape(&r);
        at += used;
    }
}

/* ---------- signed links ---------- */

static char link_url[2048];
static time_t link_made;

static void make_link(void)
{
    char req[512];
    snprintf(req, sizeof req,
             "POST /v1/assets/%s/links HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/json\r\nContent-Length: 28\r\n\r\n"
             "{\"disposition\":\"attachment\"}", fa->asset, fa->key);
    size_t got;
    char *out = fuzz_exchange(fa->port, req, strlen(req), &got);
    fuzz_response r;
    fuzz_parse_response(out, got, false, &r);
    FUZZ_CHECK(r.status == 201);
    json_t *doc = json_loadb(r.body, r.body_len, 0, NULL);
    const char *url = json_string_value(json_object_get(doc, "url"));
    FUZZ_CHECK(url && strncmp(url, "http://", 7) == 0);
    const char *path = strchr(url + 7, '/');
    snprintf(link_url, sizeof link_url, "%s", path);
    json_decref(doc);
    free(out);
    link_made = time(NULL);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A request target as the server reads it: the path and each query name
 * and value decoded (libmicrohttpd's rules, '+' as a space in the query),
 * joined with lengths so that no two differ only in where parts split. */
static char *decoded(const char *target)
{
    size_t n = strlen(target), o = 0;
    char *out = malloc(4 * n + 64);
    const char *q = strchr(target, '?');
    size_t plen = q ? (size_t)(q - target) : n;
    const char *parts[80];
    size_t lens[80], np = 0;
    parts[np] = target, lens[np++] = plen;
    for (const char *p = q ? q + 1 : NULL; p && np < 78;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len) {
            const char *eq = memchr(p, '=', len);
            parts[np] = p, lens[np++] = eq ? (size_t)(eq - p) : len;
            parts[np] = eq ? eq + 1 : "", lens[np++] = eq ? len - (size_t)(eq - p) - 1 : 0;
        }
        p = amp ? amp + 1 : NULL;
    }
    for (size_t k = 0; k < np; k++) {
        const char *s = parts[k];
        size_t len = lens[k];
        bool raw = false;
        for (size_t i = 0; i + 2 < len; i++)
            if (s[i] == '%' && s[i + 1] == '0' && s[i + 2] == '0') raw = true;
        char *piece = malloc(len + 1);
        size_t m = 0;
        for (size_t i = 0; i < len; i++) {
            char c = k > 0 && s[i] == '+' ? ' ' : s[i];
            if (!raw && c == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
                piece[m++] = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
                i += 2;
            } else {
                piece[m++] = c;
            }
        }
        o += (size_t)sprintf(out + o, "%zu:", m);
        memcpy(out + o, piece, m);
        o += m;
        free(piece);
    }
    out[o] = '\0';
    return out;
}

static int get_status(const char *target)
{
    size_t n = strlen(target) + 128, got;
    char *req = malloc(n);
    snprintf(req, n, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", target);
    char *out = fuzz_exchange(fa->port, req, strlen(req), &got);
    check_all(out, got, false, target);
    fuzz_response r;
    fuzz_parse_response(out, got, false, &r);
    free(out);
    free(req);
    return r.status;
}

static void check_signed(const char *find, const char *replace)
{
    if (!link_made || time(NULL) - link_made > 120) make_link();
    FUZZ_CHECK(get_status(link_url) == 200);   /* and the thread remembers it verified */
    const char *at = *find ? strstr(link_url, find) : NULL;
    if (!at) return;
    size_t n = strlen(link_url) + strlen(replace) + 1;
    char *changed = malloc(n);
    snprintf(changed, n, "%.*s%s%s", (int)(at - link_url), link_url, replace, at + strlen(find));
    for (const char *p = changed; *p; p++)   /* only what can go on a request line */
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '#') { free(changed); return; }
    int status = get_status(changed);
    if (status == 200 || status == 206 || status == 304) {
        char *a = decoded(link_url), *b = decoded(changed);
        if (strcmp(a, b) != 0) {
            fprintf(stderr, "\na changed signed link was served (%d):\n  signed  %s\n  sent    %s\n",
                    status, link_url, changed);
            __builtin_trap();
        }
        free(a);
        free(b);
    }
    free(changed);
}

/* ---------- requests ---------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    size_t line_len = nl ? (size_t)(nl - in) : size;
    if (line_len == 6 && memcmp(in, "SIGNED", 6) == 0) {
        char *f[3], *buf;
        char *copy = malloc(size + 1);
        memcpy(copy, in, size);
        copy[size] = '\0';
        for (size_t i = 0; i < size; i++)
            if (copy[i] == '\n') copy[i] = '\0';
        fuzz_split((const uint8_t *)copy, size, f, 3, &buf);
        check_signed(f[1], f[2]);
        free(buf);
        free(copy);
        return 0;
    }
    /* head: the request line and header lines; body: after the blank line */
    const char *blank = memmem(in, size, "\n\n", 2);
    size_t head_len = blank ? (size_t)(blank - in) : size;
    const char *body = blank ? blank + 2 : in + size;
    size_t body_len = (size_t)(in + size - body);

    size_t cap = size * 2 + 512, len = 0;
    char *req = malloc(cap);
    char *line = NULL;
    size_t llen = 0, lcap = 0;
    expand(in, line_len, &line, &llen, &lcap);
    len = (size_t)snprintf(req, cap, "%s HTTP/1.1\r\nHost: 127.0.0.1\r\n", line);
    bool head_req = strncmp(line, "HEAD ", 5) == 0;
    char target[256];
    const char *sp = strchr(line, ' ');
    snprintf(target, sizeof target, "%s", sp ? sp + 1 : "");
    free(line);
    char *headers = NULL;
    size_t hlen = 0, hcap = 0;
    if (head_len > line_len + 1) expand(in + line_len + 1, head_len - line_len - 1, &headers, &hlen, &hcap);
    if (!has_header(headers ? headers : "", hlen, "Authorization:")) {
        char a[128];
        snprintf(a, sizeof a, "Authorization: Bearer %s\r\n", fa->key);
        size_t al = strlen(a);
        if (len + al >= cap) req = realloc(req, cap = (len + al) * 2);
        memcpy(req + len, a, al);
        len += al;
    }
    for (size_t i = 0; i < hlen; i++) {   /* header lines, LF -> CRLF */
        if (len + 3 >= cap) req = realloc(req, cap *= 2);
        if (headers[i] == '\n') req[len++] = '\r';
        req[len++] = headers[i];
    }
    if (hlen) req[len++] = '\r', req[len++] = '\n';
    if (!has_header(headers ? headers : "", hlen, "Content-Length:") &&
        !has_header(headers ? headers : "", hlen, "Transfer-Encoding:"))
        len += (size_t)snprintf(req + len, cap - len, "Content-Length: %zu\r\n", body_len);
    free(headers);
    if (len + 2 + body_len >= cap) req = realloc(req, cap = len + body_len + 16);
    memcpy(req + len, "\r\n", 2);
    len += 2;
    memcpy(req + len, body, body_len);
    len += body_len;

    size_t got;
    char *out = fuzz_exchange(fa->port, req, len, &got);
    check_all(out, got, head_req, target);
    fuzz_response r;
    fuzz_parse_response(out, got, head_req, &r);
    free(out);
    free(req);
    /* A seed deleted (or a tus upload written to) is made again, so later
     * inputs can still name one as it was. */
    bool del = size >= 7 && memcmp(in, "DELETE ", 7) == 0;
    bool patch = size >= 6 && memcmp(in, "PATCH ", 6) == 0;
    if (r.status == 204 && del && strstr(target, fa->asset)) {
        fuzz_app_remake_asset(fa);
        link_made = 0;
    }
    if (r.status == 204 && (del || patch) && strstr(target, fa->tus)) fuzz_app_remake_tus(fa);
    return 0;
}
