/* s3_client.c — the S3 client itself: configuration, the handle pool, and
 * the pieces every request is built from (URL, query, headers, XML).
 *
 * Every call is one s3_req made by s3_perform() (s3_request.c) with what
 * this file builds.  The object calls are in s3_object.c, the multipart
 * ones in s3_multipart.c.
 *
 * The pool keeps handles that are done (curl_easy_reset() keeps a handle's
 * connection cache), so consecutive calls reuse keep-alive connections.
 * Not a CURLSH connection share: libcurl 7.88's documentation says sharing
 * connections between concurrent threads is not safe (a known bug).
 *
 * Signing is libcurl's (CURLOPT_AWS_SIGV4), and 7.88 signs only what it is
 * handed exactly right, hence the invariants below, each kept in one place:
 *   - the URL path is encoded here (s3_buf_add_encoded), since 7.88 signs
 *     the path as it finds it in the URL;
 *   - the query is canonical before curl sees it (s3_query): 7.88 signs it
 *     as given, so it must be sorted and say "uploads=", not "uploads";
 *   - x-amz-content-sha256 is always in the header list (s3_headers): 7.88
 *     hashes no S3 payload itself, and S3 needs the header anyway;
 *   - provider, region and service are spelled out (s3_sigv4_param): 7.88
 *     would guess them from the host name, which for an endpoint such as
 *     127.0.0.1 gives nonsense;
 *   - no "Name:" removal entry is ever in the header list: 7.88 signs it
 *     as an empty header that it then does not send.
 */
#include "store/s3_request.h"

#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ buffers */

void s3_buf_add(s3_buf *b, const void *data, size_t len)
{
    if (b->oom) return;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = true; return; }
        b->p = p;
        b->cap = cap;
    }
    if (len) memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
}

void s3_buf_adds(s3_buf *b, const char *s) { s3_buf_add(b, s, strlen(s)); }

void s3_buf_free(s3_buf *b)
{
    free(b->p);
    *b = (s3_buf){0};
}

void s3_buf_add_encoded(s3_buf *b, const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char ch = *p;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~' || (keep_slash && ch == '/')) {
            s3_buf_add(b, p, 1);
        } else {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            s3_buf_add(b, e, 3);
        }
    }
}

/* ------------------------------------------------------------ query, URL */

typedef struct qpair {
    char *name, *value;
} qpair;

static int qpair_cmp(const void *a, const void *b)
{
    const qpair *x = a, *y = b;
    int d = strcmp(x->name, y->name);
    return d ? d : strcmp(x->value, y->value);
}

static char *encoded(const char *s)
{
    s3_buf b = {0};
    s3_buf_add_encoded(&b, s, false);
    s3_buf_add(&b, "", 0);
    if (b.oom) { s3_buf_free(&b); return NULL; }
    return b.p;
}

char *s3_query(int n, const char *const *kv)
{
    qpair *q = calloc((size_t)(n ? n : 1), sizeof *q);
    if (!q) return NULL;
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        q[i].name = encoded(kv[2 * i]);
        q[i].value = encoded(kv[2 * i + 1] ? kv[2 * i + 1] : "");
        ok = q[i].name && q[i].value;
    }
    s3_buf b = {0};
    if (ok) {
        /* SigV4's order: by encoded name, then value, byte-wise. */
        qsort(q, (size_t)n, sizeof *q, qpair_cmp);
        for (int i = 0; i < n; i++) {
            if (i) s3_buf_adds(&b, "&");
            s3_buf_adds(&b, q[i].name);
            s3_buf_adds(&b, "=");        /* always, even with no value */
            s3_buf_adds(&b, q[i].value);
        }
        s3_buf_add(&b, "", 0);
    }
    for (int i = 0; i < n; i++) { free(q[i].name); free(q[i].value); }
    free(q);
    if (!ok || b.oom) { s3_buf_free(&b); return NULL; }
    return b.p;
}

char *s3_url(const s3_client *c, const s3_req *r)
{
    s3_buf b = {0};
    s3_buf_adds(&b, c->endpoint);
    s3_buf_adds(&b, "/");
    s3_buf_add_encoded(&b, c->bucket, false);
    if (r->key) {
        s3_buf_adds(&b, "/");
        s3_buf_add_encoded(&b, r->key, true);
    }
    if (r->query && *r->query) {
        s3_buf_adds(&b, "?");
        s3_buf_adds(&b, r->query);
    }
    if (b.oom) { s3_buf_free(&b); return NULL; }
    return b.p;
}

const char *s3_sigv4_param(const s3_client *c) { return c->sigv4; }

/* ------------------------------------------------------------ headers */

static bool slist_add(struct curl_slist **l, const char *line)
{
    struct curl_slist *n = curl_slist_append(*l, line);
    if (!n) return false;
    *l = n;
    return true;
}

struct curl_slist *s3_headers(const s3_client *c, const s3_req *r, const char *payload_hash,
                              const char *if_match)
{
    struct curl_slist *l = NULL;
    char line[512];
    bool ok = true;
    snprintf(line, sizeof line, "x-amz-content-sha256: %s", payload_hash);
    ok = ok && slist_add(&l, line);
    if (c->session_token) {
        s3_buf t = {0};
        s3_buf_adds(&t, "x-amz-security-token: ");
        s3_buf_adds(&t, c->session_token);
        ok = ok && !t.oom && slist_add(&l, t.p);
        s3_buf_free(&t);
    }
    if (r->content_type && *r->content_type) {
        snprintf(line, sizeof line, "Content-Type: %s", r->content_type);
        ok = ok && slist_add(&l, line);
    }
    if (r->has_range) {
        if (r->last == UINT64_MAX)
            snprintf(line, sizeof line, "Range: bytes=%llu-", (unsigned long long)r->first);
        else
            snprintf(line, sizeof line, "Range: bytes=%llu-%llu", (unsigned long long)r->first,
                     (unsigned long long)r->last);
        ok = ok && slist_add(&l, line);
    }
    if (if_match && *if_match) {
        snprintf(line, sizeof line, "If-Match: %s", if_match);
        ok = ok && slist_add(&l, line);
    }
    if (r->header) ok = ok && slist_add(&l, r->header);
    if (!ok) { curl_slist_free_all(l); return NULL; }
    return l;
}

/* ------------------------------------------------------------ XML */

const char *s3_xml_find(const char *p, const char *end, const char *tag, size_t *len,
                        const char **after)
{
    char open[80], close[82];
    int no = snprintf(open, sizeof open, "<%s>", tag);
    int nc = snprintf(close, sizeof close, "</%s>", tag);
    const char *s = memmem(p, (size_t)(end - p), open, (size_t)no);
    if (!s) return NULL;
    s += no;
    const char *e = memmem(s, (size_t)(end - s), close, (size_t)nc);
    if (!e) return NULL;
    *len = (size_t)(e - s);
    if (after) *after = e + nc;
    return s;
}

bool s3_xml_text(const char *p, const char *end, const char *tag, char *out, size_t cap)
{
    size_t len;
    const char *s = s3_xml_find(p, end, tag, &len, NULL);
    if (!s || cap == 0) return false;
    static const struct { const char *ent; char ch; } ents[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        char ch = s[i];
        size_t step = 1;
        if (ch == '&') {
            bool known = false;
            for (size_t k = 0; k < sizeof ents / sizeof ents[0]; k++) {
                size_t el = strlen(ents[k].ent);
                if (len - i >= el && memcmp(s + i, ents[k].ent, el) == 0) {
                    ch = ents[k].ch, step = el, known = true;
                    break;
                }
            }
            if (!known && len - i > 3 && s[i + 1] == '#') {   /* &#NN; &#xNN; (ASCII only) */
                char *stop;
                long v = s[i + 2] == 'x' ? strtol(s + i + 3, &stop, 16) : strtol(s + i + 2, &stop, 10);
                if (*stop == ';' && v > 0 && v < 128) ch = (char)v, step = (size_t)(stop + 1 - (s + i));
            }
        }
        if (o + 1 >= cap) return false;
        out[o++] = ch;
        i += step;
    }
    out[o] = '\0';
    return true;
}

void s3_xml_escape(s3_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': s3_buf_adds(b, "&amp;"); break;
        case '<': s3_buf_adds(b, "&lt;"); break;
        case '>': s3_buf_adds(b, "&gt;"); break;
        case '"': s3_buf_adds(b, "&quot;"); break;
        case '\'': s3_buf_adds(b, "&apos;"); break;
        default: s3_buf_add(b, s, 1);
        }
    }
}

/* ------------------------------------------------------------ errors */

void s3_error_set(s3_error *err, long status, const char *code, const char *message)
{
    if (!err) return;
    err->status = status;
    snprintf(err->code, sizeof err->code, "%s", code ? code : "");
    snprintf(err->message, sizeof err->message, "%s", message ? message : "");
}

const char *s3_error_text(const s3_error *err, char *buf, size_t cap)
{
    if (!err) snprintf(buf, cap, "unknown S3 error");
    else if (err->status)
        snprintf(buf, cap, "S3 %ld %s: %s (%d attempt%s)", err->status, err->code, err->message,
                 err->attempts, err->attempts == 1 ? "" : "s");
    else
        snprintf(buf, cap, "S3 %s: %s (%d attempt%s)", err->code, err->message, err->attempts,
                 err->attempts == 1 ? "" : "s");
    return buf;
}

bool s3_error_is_not_found(const s3_error *err)
{
    return err && err->status == 404;
}

/* ------------------------------------------------------------ client */

static char *dup_or_env(const char *given, const char *env)
{
    const char *v = given ? given : getenv(env);
    return v && *v ? strdup(v) : NULL;
}

s3_client *s3_client_new(const s3_config *cfg, s3_error *err)
{
    if (err) *err = (s3_error){0};
    if (!cfg->endpoint || !*cfg->endpoint || !cfg->bucket || !*cfg->bucket) {
        s3_error_set(err, 0, "BadConfig", "an S3 endpoint and bucket are required");
        return NULL;
    }
    if (strncmp(cfg->endpoint, "http://", 7) != 0 && strncmp(cfg->endpoint, "https://", 8) != 0) {
        s3_error_set(err, 0, "BadConfig", "the S3 endpoint must be an http:// or https:// URL");
        return NULL;
    }
    s3_client *c = calloc(1, sizeof *c);
    if (!c) { s3_error_set(err, 0, "OutOfMemory", "out of memory"); return NULL; }
    c->endpoint = strdup(cfg->endpoint);
    if (c->endpoint) {
        size_t n = strlen(c->endpoint);
        while (n > 8 && c->endpoint[n - 1] == '/') c->endpoint[--n] = '\0';
    }
    c->region = strdup(cfg->region && *cfg->region ? cfg->region : "us-east-1");
    c->bucket = strdup(cfg->bucket);
    c->access_key = dup_or_env(cfg->access_key, "AWS_ACCESS_KEY_ID");
    c->secret_key = dup_or_env(cfg->secret_key, "AWS_SECRET_ACCESS_KEY");
    c->session_token = dup_or_env(cfg->session_token, "AWS_SESSION_TOKEN");
    c->max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : 5;
    c->retry_base_ms = cfg->retry_base_ms > 0 ? cfg->retry_base_ms : 100;
    c->retry_cap_ms = cfg->retry_cap_ms > 0 ? cfg->retry_cap_ms : 5000;
    c->retry_budget_ms = cfg->retry_budget_ms > 0 ? cfg->retry_budget_ms : 30000;
    c->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 10000;
    c->low_speed_time_s = cfg->low_speed_time_s > 0 ? cfg->low_speed_time_s : 30;
    c->part_size = cfg->part_size ? cfg->part_size : S3_DEFAULT_PART_SIZE;
    if (c->part_size < S3_MIN_PART_SIZE) c->part_size = S3_MIN_PART_SIZE;
    c->parts_in_flight = cfg->parts_in_flight > 0 ? cfg->parts_in_flight : 3;
    if (c->parts_in_flight > S3_MAX_PARTS_IN_FLIGHT) c->parts_in_flight = S3_MAX_PARTS_IN_FLIGHT;
    c->list_page_size = cfg->list_page_size > 0 && cfg->list_page_size < 1000 ? cfg->list_page_size : 1000;
    snprintf(c->sigv4, sizeof c->sigv4, "aws:amz:%s:s3", c->region ? c->region : "");
    pthread_mutex_init(&c->lock, NULL);
    if (!c->endpoint || !c->region || !c->bucket) {
        s3_error_set(err, 0, "OutOfMemory", "out of memory");
        s3_client_free(c);
        return NULL;
    }
    if (!c->access_key || !c->secret_key) {
        s3_error_set(err, 0, "NoCredentials",
                     "S3 credentials missing: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
        s3_client_free(c);
        return NULL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        s3_error_set(err, 0, "CurlInit", "curl_global_init failed");
        s3_client_free(c);
        return NULL;
    }
    return c;
}

void s3_client_free(s3_client *c)
{
    if (!c) return;
    for (int i = 0; i < c->nidle; i++) curl_easy_cleanup(c->idle[i]);
    bool inited = c->access_key && c->secret_key && c->endpoint && c->region && c->bucket;
    pthread_mutex_destroy(&c->lock);
    free(c->endpoint); free(c->region); free(c->bucket);
    free(c->access_key); free(c->secret_key); free(c->session_token);
    free(c);
    if (inited) curl_global_cleanup();
}

size_t s3_client_part_size(const s3_client *c) { return c->part_size; }

CURL *s3_pool_get(s3_client *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->nidle) h = c->idle[--c->nidle];
    pthread_mutex_unlock(&c->lock);
    return h ? h : curl_easy_init();
}

void s3_pool_put(s3_client *c, CURL *h)
{
    curl_easy_reset(h);
    pthread_mutex_lock(&c->lock);
    if (c->nidle < S3_POOL_MAX) c->idle[c->nidle++] = h, h = NULL;
    pthread_mutex_unlock(&c->lock);
    if (h) curl_easy_cleanup(h);
}
