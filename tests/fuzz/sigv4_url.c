/* sigv4_url — SigV4 presigned URLs (core/sigv4.c): the strict query
 * parser, the encoding, and verification as the disk store checks links.
 *
 * Input: "KEY\0BUCKET\0PARAM-NAME\0PARAM-VALUE\0NOW\0EXPIRES\0FLAGS\0
 *         MUTATE-AT\0MUTATE-TO\0RAW-QUERY".
 * Properties:
 *   - a query the parser accepts, re-encoded, parses back to the same pairs;
 *     an encoded value decodes back to itself (percent-decoding then
 *     encoding round-trips);
 *   - a URL we presign (fuzzed key, bucket, extra parameter, times, method,
 *     session token) verifies as received — path decoded, query parsed —
 *     at its signing time, is expired one second after its end, and fails
 *     for another method, another path, and any one-byte change of its
 *     query that changes the decoded parameters;
 *   - a fuzzed query never verifies (no forgery without the secret).
 */
#include "fuzz.h"
#include "core/sigv4.h"

#include <stdlib.h>
#include <string.h>

static const sigv4_creds creds = {"AKIDFUZZ", "fuzz/secret+key", NULL, "eu-west-1", NULL};
static const sigv4_creds creds_tok = {"AKIDFUZZ", "fuzz/secret+key", "session/token==",
                                      "eu-west-1", NULL};

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The path as a server hands it over: %XX decoded. */
static void decode_path(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n + 0 && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[o++] = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
}

static int pair_cmp(const void *a, const void *b)
{
    const sigv4_param *x = a, *y = b;
    int r = strcmp(x->name, y->name);
    return r ? r : strcmp(x->value, y->value);
}

/* Same pairs, in any order (the canonical query sorts them). */
static bool same_pairs(const sigv4_query *a, const sigv4_query *b)
{
    if (a->n != b->n) return false;
    sigv4_param x[SIGV4_QUERY_MAX], y[SIGV4_QUERY_MAX];
    memcpy(x, a->param, a->n * sizeof *x);
    memcpy(y, b->param, b->n * sizeof *y);
    qsort(x, a->n, sizeof *x, pair_cmp);
    qsort(y, b->n, sizeof *y, pair_cmp);
    for (size_t i = 0; i < a->n; i++)
        if (pair_cmp(&x[i], &y[i]) != 0) return false;
    return true;
}

static char *encode(const char *s, bool keep_slash)
{
    size_t n = sigv4_uri_encode(s, strlen(s), keep_slash, NULL, 0);
    char *o = malloc(n + 1);
    FUZZ_CHECK(sigv4_uri_encode(s, strlen(s), keep_slash, o, n + 1) == n && strlen(o) == n);
    for (const char *p = o; *p; p++)   /* unreserved, '/', or %XX in uppercase */
        FUZZ_CHECK(strchr("-._~", *p) || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                   (*p >= 'A' && *p <= 'Z') || (keep_slash && *p == '/') ||
                   (*p == '%' && strchr("0123456789ABCDEF", p[1]) && p[1] &&
                    strchr("0123456789ABCDEF", p[2]) && p[2]));
    return o;
}

static void check_query_roundtrip(const char *raw)
{
    sigv4_query q, back;
    if (sigv4_query_parse(raw, &q) != SIGV4_OK) {
        sigv4_query_free(&q);
        return;
    }
    size_t cap = 16, len = 0;
    char *text = calloc(1, cap);
    for (size_t i = 0; i < q.n; i++) {
        FUZZ_CHECK(q.param[i].name[0] != '\0' && strlen(q.param[i].value) <= SIGV4_VALUE_MAX);
        char *n = encode(q.param[i].name, false), *v = encode(q.param[i].value, false);
        size_t need = len + strlen(n) + strlen(v) + 3;
        if (need > cap) text = realloc(text, cap = need * 2);
        len += (size_t)sprintf(text + len, "%s%s=%s", i ? "&" : "", n, v);
        free(n);
        free(v);
    }
    FUZZ_CHECK(sigv4_query_parse(text, &back) == SIGV4_OK && same_pairs(&q, &back));
    /* the order is kept too */
    for (size_t i = 0; i < q.n; i++)
        FUZZ_CHECK(strcmp(q.param[i].name, back.param[i].name) == 0 &&
                   strcmp(q.param[i].value, back.param[i].value) == 0);
    free(text);
    sigv4_query_free(&q);
    sigv4_query_free(&back);
}

static void check_value_roundtrip(const char *value)
{
    if (strlen(value) > SIGV4_VALUE_MAX) return;
    char *v = encode(value, false);
    char *text = malloc(strlen(v) + 3);
    sprintf(text, "v=%s", v);
    sigv4_query q;
    FUZZ_CHECK(sigv4_query_parse(text, &q) == SIGV4_OK && q.n == 1 &&
               strcmp(q.param[0].value, value) == 0);
    sigv4_query_free(&q);
    free(text);
    free(v);
}

static void check_presigned(char **f)
{
    static const char *const endpoints[] = {"http://127.0.0.1:8080", "https://s3.example.com",
                                            "https://s3.example.com:443", "http://[::1]:80/"};
    static const char *const hosts[] = {"127.0.0.1:8080", "s3.example.com", "s3.example.com",
                                        "[::1]"};
    static const char *const methods[] = {"GET", "PUT", "HEAD", "DELETE"};
    uint64_t flags = fuzz_u64(f[6]);
    int e = (int)(flags % 4), m = (int)(flags / 4 % 4);
    const sigv4_creds *c = flags / 16 % 2 ? &creds_tok : &creds;
    sigv4_param extra = {f[2], f[3]};
    int64_t now = (int64_t)(fuzz_u64(f[4]) % 253402300000u);
    int64_t expires = (int64_t)fuzz_u64(f[5]) % (SIGV4_MAX_EXPIRES + 2);
    sigv4_url_request r = {methods[m], endpoints[e], f[1], f[0], now, expires,
                           &extra, f[2][0] ? 1 : 0};
    char *url = NULL;
    if (sigv4_presign_url(c, &r, &url) != SIGV4_OK) {
        FUZZ_CHECK(url == NULL);
        return;
    }
    /* scheme://host/path?query */
    const char *p = strstr(url, "://") + 3;
    size_t hl = strcspn(p, "/");
    FUZZ_CHECK(hl == strlen(hosts[e]) && strncmp(p, hosts[e], hl) == 0);
    const char *path = p + hl, *q = strchr(path, '?');
    FUZZ_CHECK(q != NULL);
    char *dpath = malloc((size_t)(q - path) + 1);
    decode_path(path, (size_t)(q - path), dpath);
    sigv4_query query;
    FUZZ_CHECK(sigv4_query_parse(q + 1, &query) == SIGV4_OK);
    sigv4_url_info info;
    FUZZ_CHECK(sigv4_verify_url(c, methods[m], hosts[e], dpath, query.param, query.n, now,
                                &info) == SIGV4_OK);
    FUZZ_CHECK(info.signed_s == now && info.expires_at_s == now + expires);
    FUZZ_CHECK(sigv4_verify_url(c, methods[m], hosts[e], dpath, query.param, query.n,
                                now + expires + 1, NULL) == SIGV4_EEXPIRED);
    FUZZ_CHECK(sigv4_verify_url(c, methods[(m + 1) % 4], hosts[e], dpath, query.param, query.n,
                                now, NULL) != SIGV4_OK);
    FUZZ_CHECK(sigv4_verify_url(c == &creds ? &creds_tok : &creds, methods[m], hosts[e], dpath,
                                query.param, query.n, now, NULL) != SIGV4_OK);
    size_t dl = strlen(dpath), at = fuzz_u64(f[7]);
    char saved = dpath[at % dl];
    dpath[at % dl] = saved == 'x' ? 'y' : 'x';
    FUZZ_CHECK(sigv4_verify_url(c, methods[m], hosts[e], dpath, query.param, query.n, now,
                                NULL) != SIGV4_OK);
    dpath[at % dl] = saved;

    /* One byte of the query changed. */
    char *mq = strdup(q + 1);
    size_t ql = strlen(mq);
    char to = f[8][0] ? f[8][0] : '%';
    if (ql && mq[at % ql] != to) {
        mq[at % ql] = to;
        sigv4_query changed;
        if (sigv4_query_parse(mq, &changed) == SIGV4_OK && !same_pairs(&query, &changed))
            FUZZ_CHECK(sigv4_verify_url(c, methods[m], hosts[e], dpath, changed.param,
                                        changed.n, now, NULL) != SIGV4_OK);
        sigv4_query_free(&changed);
    }
    free(mq);
    sigv4_query_free(&query);
    free(dpath);
    free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *f[10], *buf;
    fuzz_split(data, size, f, 10, &buf);
    check_query_roundtrip(f[9]);
    check_value_roundtrip(f[3]);
    check_presigned(f);

    sigv4_query q;
    if (sigv4_query_parse(f[9], &q) == SIGV4_OK) {
        int64_t now = (int64_t)(fuzz_u64(f[4]) % 253402300000u);
        FUZZ_CHECK(sigv4_verify_url(&creds, "GET", "127.0.0.1:8080", f[0][0] == '/' ? f[0] : "/b/k",
                                    q.param, q.n, now, NULL) != SIGV4_OK);
    }
    sigv4_query_free(&q);
    free(buf);
    return 0;
}
