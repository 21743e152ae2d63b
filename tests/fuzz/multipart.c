/* multipart — uploads as multipart/form-data through the real upload route
 * (POST /v1/assets: libmicrohttpd's post processor under http/multipart.c,
 * api/assets.c, the store), body sent with Content-Length and again
 * chunked in fuzzed pieces (so the framing guard and libmicrohttpd's
 * chunk reader sit in between).
 *
 * Input: "BOUNDARY\0FILENAME\0FIELD\0VALUE\0FLAGS\0FILE-BYTES...".  From it
 * a well-formed body is built: an extra field (before or after the file,
 * by FLAGS) and the `file` part; or, with FLAGS & 1, the file bytes are
 * sent as the whole body, raw.
 * Properties:
 *   - a well-formed body (a boundary of RFC 2046 characters that no part
 *     contains, names without quotes or line ends) is stored: 201, with
 *     the file part's exact size and SHA-256, and its file name sanitised;
 *   - the chunked request gets the same answer as the Content-Length one;
 *   - anything else is refused in the documented JSON shape, never a 500,
 *     never a hang.
 */
#include "app.h"
#include "fuzz.h"
#include "util/encode.h"
#include "util/filename.h"

#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

static fuzz_app *fa;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fa = fuzz_app_start();
    return 0;
}

typedef struct buf { char *p; size_t len, cap; } buf;

static void put(buf *b, const void *s, size_t n)
{
    if (b->len + n + 1 > b->cap) b->p = realloc(b->p, b->cap = (b->len + n + 1) * 2);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

static bool bchars(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 70 || s[n - 1] == ' ') return false;
    for (const char *p = s; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'()+_,-./:=? ",
                    *p))
            return false;
    return true;
}

/* Safe inside a quoted Content-Disposition parameter, as libmicrohttpd reads it. */
static bool plain(const char *s)
{
    for (const char *p = s; *p; p++)
        if (strchr("\"\\;=\r\n", *p)) return false;
    return true;
}

/* Sends the request; its status, and the JSON body (NULL if none). */
static int send_upload(const char *boundary, const buf *body, bool chunked, const char *splits,
                       json_t **doc)
{
    buf req = {0};
    char head[512];
    snprintf(head, sizeof head,
             "POST /v1/assets HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: multipart/form-data; boundary=\"%s\"\r\n",
             fa->key, boundary);
    puts_(&req, head);
    if (!chunked) {
        snprintf(head, sizeof head, "Content-Length: %zu\r\n\r\n", body->len);
        puts_(&req, head);
        put(&req, body->p, body->len);
    } else {
        puts_(&req, "Transfer-Encoding: chunked\r\n\r\n");
        size_t at = 0, k = 0, ns = strlen(splits);
        while (at < body->len) {
            size_t n = 1 + (ns ? (unsigned char)splits[k++ % ns] : 200u) % 300;
            if (n > body->len - at) n = body->len - at;
            snprintf(head, sizeof head, "%zx\r\n", n);
            puts_(&req, head);
            put(&req, body->p + at, n);
            puts_(&req, "\r\n");
            at += n;
        }
        puts_(&req, "0\r\n\r\n");
    }
    size_t got;
    char *out = fuzz_exchange(fa->port, req.p, req.len, &got);
    fuzz_response r;
    fuzz_parse_response(out, got, false, &r);
    FUZZ_CHECK(r.status != 0);
    fuzz_check_error_shape(&r);
    *doc = r.complete ? json_loadb(r.body, r.body_len, 0, NULL) : NULL;
    free(out);
    free(req.p);
    return r.status;
}

static void delete_asset(const char *id)
{
    char req[256];
    snprintf(req, sizeof req, "DELETE /v1/assets/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Authorization: Bearer %s\r\n\r\n", id, fa->key);
    size_t got;
    free(fuzz_exchange(fa->port, req, strlen(req), &got));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *f[5], *fb;
    int nf = fuzz_split(data, size, f, 5, &fb);
    const char *boundary = f[0], *filename = f[1], *field = f[2], *value = f[3];
    uint64_t flags = fuzz_u64(f[4]);
    const uint8_t *file = data;
    size_t flen = size;
    for (int i = 0; i < 5 && i < nf; i++) {   /* the bytes after the fifth NUL */
        const uint8_t *nul = memchr(file, 0, flen);
        if (!nul) { flen = 0; break; }
        flen -= (size_t)(nul + 1 - file);
        file = nul + 1;
    }
    if (nf < 6) flen = 0;
    if (strlen(boundary) > 200 || strlen(filename) > 400 || strlen(field) > 200) {
        free(fb);
        return 0;
    }

    buf body = {0};
    char delim[256];
    snprintf(delim, sizeof delim, "\r\n--%s", boundary);
    bool raw = flags & 1, field_first = flags & 2;
    if (raw) {
        put(&body, file, flen);
    } else {
        char part[1024];
        if (*field && field_first) {
            snprintf(part, sizeof part, "--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n",
                     boundary, field);
            puts_(&body, part);
            puts_(&body, value);
            puts_(&body, "\r\n");
        }
        snprintf(part, sizeof part,
                 "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n", boundary, filename);
        puts_(&body, part);
        put(&body, file, flen);
        if (*field && !field_first) {
            snprintf(part, sizeof part, "%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n",
                     delim, field);
            puts_(&body, part);
            puts_(&body, value);
        }
        puts_(&body, delim);
        puts_(&body, "--\r\n");
    }
    /* "--BOUNDARY" nowhere inside a part, so the delimiters are the only ones. */
    const char *dash = delim + 2;
    size_t dl = strlen(dash);
    bool well_formed = !raw && bchars(boundary) && plain(filename) && plain(field) &&
                       strcmp(field, "file") != 0 && !memmem(file, flen, dash, dl) &&
                       !strstr(value, dash) && !strstr(filename, dash) && !strstr(field, dash);

    json_t *a = NULL, *b = NULL;
    int sa = send_upload(boundary, &body, false, f[4], &a);
    int sb = send_upload(boundary, &body, true, f[4], &b);
    if (sa != sb)
        fprintf(stderr, "\nwith Content-Length: %d %s\nchunked: %d %s\n", sa,
                a ? json_dumps(a, JSON_COMPACT) : "", sb, b ? json_dumps(b, JSON_COMPACT) : "");
    FUZZ_CHECK(sa == sb);
    const char *ida = json_string_value(json_object_get(a, "id"));
    const char *idb = json_string_value(json_object_get(b, "id"));
    if (sa == 201) {
        FUZZ_CHECK(ida && idb);
        FUZZ_CHECK(json_equal(json_object_get(a, "sha256"), json_object_get(b, "sha256")) &&
                   json_equal(json_object_get(a, "size"), json_object_get(b, "size")));
    }
    if (well_formed) {
        FUZZ_CHECK(sa == 201);
        uint8_t md[32];
        char hex[65], name[FILENAME_MAX_BYTES + 1];
        SHA256(file, flen, md);
        hex_encode(md, 32, hex);
        FUZZ_CHECK(json_integer_value(json_object_get(a, "size")) == (json_int_t)flen);
        FUZZ_CHECK(strcmp(json_string_value(json_object_get(a, "sha256")), hex) == 0);
        filename_sanitize(filename, name);
        FUZZ_CHECK(strcmp(json_string_value(json_object_get(a, "filename")), name) == 0);
    }
    if (ida) delete_asset(ida);
    if (idb) delete_asset(idb);
    json_decref(a);
    json_decref(b);
    free(body.p);
    free(fb);
    return 0;
}
