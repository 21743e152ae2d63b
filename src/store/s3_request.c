/* s3_request.c — s3_perform(): one S3 operation, attempt after attempt.
 *
 * An attempt takes a handle from the client's pool, builds the URL and the
 * header list (s3_client.c), performs, and is judged:
 *   - 2xx: done (unless error_in_200 and the body is an <Error>, which S3
 *     does for a CompleteMultipartUpload that failed after the 200 went);
 *   - a transport failure (connect, timeout, reset, nothing back) or a
 *     500/502/503/504: retried, after a backoff of base * 2^n capped at
 *     retry_cap_ms, of which a random half is jitter, so that a fleet of
 *     workers hitting a SlowDown do not come back in step;
 *   - anything else (a 4xx, the caller's callback stopping, a body that
 *     cannot be read): fails at once.
 * No attempt starts after max_attempts or once retry_budget_ms has gone.
 * A probe (probe_ms) makes one attempt, bounded by its whole duration.
 *
 * Invariants of a retried GET: write() never sees a byte twice, and every
 * byte it sees is of one version of the object.  After a cut transfer that
 * delivered n bytes, the next attempt asks for Range first+n onwards with
 * If-Match on the first answer's ETag; an object replaced meanwhile answers
 * 412, which fails the call.
 */
#include "store/s3_request.h"
#include "util/encode.h"

#include "util/log.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define OUT_CAP ((size_t)16 << 20)       /* a buffered 2xx answer (a list page) */
#define ERR_BODY_CAP ((size_t)64 << 10)  /* a buffered error answer */

/* One attempt's view of the transfer. */
typedef struct xfer {
    s3_req *r;
    CURL *h;
    uint64_t sent;               /* request body bytes handed to curl */
    uint64_t delivered;          /* response body bytes given to sink, all attempts */
    bool sink_stopped, read_failed, too_big;
    bool info_given;             /* r->info and sink's start were reported */
    s3_buf err_body;             /* a non-2xx answer */
    s3_object_info hdr;          /* this attempt's response headers */
    uint64_t content_length, range_total;
    bool has_content_length, has_range_total;
    char first_etag[S3_ETAG_MAX];
    char errbuf[CURL_ERROR_SIZE];
} xfer;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {}
}

static unsigned rand_below(unsigned n)
{
    static _Thread_local unsigned seed;
    if (!seed) seed = (unsigned)now_ms() ^ (unsigned)(uintptr_t)&seed;
    return n ? (unsigned)rand_r(&seed) % n : 0;
}

static bool sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) return false;
    hex_encode(md, 32, out);
    return true;
}

/* ------------------------------------------------------------ callbacks */

static void copy_trimmed(char *out, size_t cap, const char *v, size_t n)
{
    while (n && (*v == ' ' || *v == '\t')) v++, n--;
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ')) n--;
    if (n >= cap) n = cap - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

static bool header_is(const char *line, size_t n, const char *name, const char **value, size_t *vlen)
{
    size_t k = strlen(name);
    if (n <= k || line[k] != ':' || strncasecmp(line, name, k) != 0) return false;
    *value = line + k + 1;
    *vlen = n - k - 1;
    return true;
}

static size_t on_header(char *line, size_t size, size_t nitems, void *arg)
{
    xfer *x = arg;
    size_t n = size * nitems;
    const char *v;
    size_t vn;
    char tmp[160];
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        /* A new response (after a 100 Continue, say): forget the last. */
        x->hdr = (s3_object_info){0};
        x->has_content_length = x->has_range_total = false;
    } else if (header_is(line, n, "etag", &v, &vn)) {
        copy_trimmed(x->hdr.etag, sizeof x->hdr.etag, v, vn);
    } else if (header_is(line, n, "content-type", &v, &vn)) {
        copy_trimmed(x->hdr.content_type, sizeof x->hdr.content_type, v, vn);
    } else if (header_is(line, n, "content-length", &v, &vn)) {
        copy_trimmed(tmp, sizeof tmp, v, vn);
        x->content_length = strtoull(tmp, NULL, 10);
        x->has_content_length = true;
    } else if (header_is(line, n, "content-range", &v, &vn)) {
        copy_trimmed(tmp, sizeof tmp, v, vn);          /* bytes a-b/total */
        const char *slash = strchr(tmp, '/');
        if (slash && slash[1] != '*') {
            x->range_total = strtoull(slash + 1, NULL, 10);
            x->has_range_total = true;
        }
    } else if (header_is(line, n, "last-modified", &v, &vn)) {
        copy_trimmed(tmp, sizeof tmp, v, vn);
        time_t t = curl_getdate(tmp, NULL);
        x->hdr.last_modified = t > 0 ? t : 0;
    }
    return n;
}

static long status_of(CURL *h)
{
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

static void finish_info(xfer *x)
{
    x->hdr.size = x->has_range_total ? x->range_total : x->has_content_length ? x->content_length : 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    xfer *x = arg;
    s3_req *r = x->r;
    size_t n = size * nmemb;
    long status = status_of(x->h);
    if (status < 200 || status > 299) {
        if (x->err_body.len + n <= ERR_BODY_CAP) s3_buf_add(&x->err_body, data, n);
        return n;
    }
    if (!r->sink) {
        if (r->out.len + n > OUT_CAP) { x->too_big = true; return 0; }
        s3_buf_add(&r->out, data, n);
        return r->out.oom ? 0 : n;
    }
    if (!x->info_given) {
        finish_info(x);
        if (r->info) *r->info = x->hdr;
        snprintf(x->first_etag, sizeof x->first_etag, "%s", x->hdr.etag);
        x->info_given = true;
    }
    if (!r->sink(r->sink_arg, data, n)) { x->sink_stopped = true; return 0; }
    x->delivered += n;
    return n;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *arg)
{
    xfer *x = arg;
    s3_req *r = x->r;
    size_t cap = size * nitems;
    if (r->body) {
        size_t left = r->body_len - (size_t)x->sent;
        size_t n = left < cap ? left : cap;
        memcpy(buf, (const char *)r->body + x->sent, n);
        x->sent += n;
        return n;
    }
    uint64_t left = r->read_len - x->sent;
    if (left == 0) return 0;
    ssize_t got = r->read(r->read_arg, x->sent, buf, left < cap ? (size_t)left : cap);
    if (got <= 0) { x->read_failed = true; return CURL_READFUNC_ABORT; }
    x->sent += (uint64_t)got;
    return (size_t)got;
}

/* libcurl rewinds the body itself at times (a redirect, a connection that
 * died before the request went out): positional reads make that free. */
static int on_seek(void *arg, curl_off_t offset, int origin)
{
    xfer *x = arg;
    if (origin != SEEK_SET || offset < 0) return CURL_SEEKFUNC_CANTSEEK;
    x->sent = (uint64_t)offset;
    return CURL_SEEKFUNC_OK;
}

/* ------------------------------------------------------------ one attempt */

static void setup(s3_client *c, xfer *x, const char *url, struct curl_slist *headers)
{
    CURL *h = x->h;
    s3_req *r = x->r;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    /* The path is encoded by us and signed as it is: curl must not
     * squash "." or ".." segments of a key. */
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, c->sigv4);
    curl_easy_setopt(h, CURLOPT_USERNAME, c->access_key);
    curl_easy_setopt(h, CURLOPT_PASSWORD, c->secret_key);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_PROXY, "");            /* S3 is reached directly */
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->low_speed_time_s);
    if (r->probe_ms > 0) {
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, r->probe_ms);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                         r->probe_ms < c->connect_timeout_ms ? r->probe_ms : c->connect_timeout_ms);
    }
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    if (strcmp(r->method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(r->method, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, x);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
                         (curl_off_t)(r->body ? r->body_len : r->read ? r->read_len : 0));
        /* libcurl sends "Expect: 100-continue" with bodies over 1 MiB and
         * waits a second for servers that never answer it (moto); the
         * header cannot be dropped (7.88 signs a removal entry wrongly), so
         * the wait is: the body follows the headers at once. */
        curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 0L);
    } else if (strcmp(r->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body ? (const char *)r->body : "");
    } else if (strcmp(r->method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
    }
}

static bool transport_retryable(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_CONNECT: case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR: case CURLE_RECV_ERROR: case CURLE_GOT_NOTHING: case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR: case CURLE_HTTP2: case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

static const char *transport_code(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST: return "ResolveFailed";
    case CURLE_COULDNT_CONNECT: return "ConnectFailed";
    case CURLE_OPERATION_TIMEDOUT: return "Timeout";
    case CURLE_OUT_OF_MEMORY: return "OutOfMemory";
    default: return "TransportError";
    }
}

/* Fills err from an S3 error answer (XML <Error>, or a bare status). */
static void error_from_answer(s3_error *err, long status, const char *body, size_t len)
{
    char code[64] = "", message[256] = "";
    if (body && len) {
        s3_xml_text(body, body + len, "Code", code, sizeof code);
        s3_xml_text(body, body + len, "Message", message, sizeof message);
    }
    if (!*code) {
        const char *name = status == 404 ? "NotFound" : status == 403 ? "Forbidden"
                         : status == 412 ? "PreconditionFailed" : status == 416 ? "InvalidRange"
                         : status >= 500 ? "ServerError" : "HttpError";
        snprintf(code, sizeof code, "%s", name);
    }
    if (!*message) snprintf(message, sizeof message, "HTTP status %ld", status);
    s3_error_set(err, status, code, message);
}

typedef enum { ATTEMPT_OK, ATTEMPT_RETRY, ATTEMPT_FAIL } attempt_result;

static attempt_result attempt(s3_client *c, xfer *x, s3_error *err)
{
    s3_req *r = x->r;
    char hash[65];
    if (r->body) {
        if (!sha256_hex(r->body, r->body_len, hash)) {
            s3_error_set(err, 0, "HashFailed", "SHA-256 of the body failed");
            return ATTEMPT_FAIL;
        }
    } else {
        snprintf(hash, sizeof hash, "%s", r->read ? "UNSIGNED-PAYLOAD" : S3_EMPTY_SHA256);
    }
    /* A resumed GET asks for what it has not delivered, of the same ETag. */
    s3_req resumed = *r;
    if (x->delivered) {
        resumed.has_range = true;
        resumed.first = (r->has_range ? r->first : 0) + x->delivered;
        resumed.last = r->has_range ? r->last : UINT64_MAX;
    }
    char *url = s3_url(c, r);
    struct curl_slist *headers = s3_headers(c, &resumed, hash, x->delivered ? x->first_etag : NULL);
    x->h = s3_pool_get(c);
    if (!url || !headers || !x->h) {
        free(url);
        curl_slist_free_all(headers);
        if (x->h) s3_pool_put(c, x->h);
        s3_error_set(err, 0, "OutOfMemory", "out of memory");
        return ATTEMPT_FAIL;
    }
    x->sent = 0;
    x->errbuf[0] = '\0';
    s3_buf_free(&x->err_body);
    r->out.len = 0;
    setup(c, x, url, headers);
    CURLcode rc = curl_easy_perform(x->h);
    long status = status_of(x->h);
    s3_pool_put(c, x->h);
    x->h = NULL;
    curl_slist_free_all(headers);
    free(url);
    if (err) err->curl_code = (int)rc;
    r->status = status;

    if (rc == CURLE_OK && status >= 200 && status <= 299) {
        if (r->error_in_200 && r->out.p && strstr(r->out.p, "<Error>")) {
            error_from_answer(err, 500, r->out.p, r->out.len);
            return ATTEMPT_RETRY;     /* S3: "retry the request" */
        }
        if (!x->info_given) {
            finish_info(x);
            if (r->info) *r->info = x->hdr;
            x->info_given = true;
        }
        return ATTEMPT_OK;
    }
    if (x->sink_stopped) { s3_error_set(err, status, "Aborted", "the receiver stopped the transfer"); return ATTEMPT_FAIL; }
    if (x->read_failed) { s3_error_set(err, 0, "ReadFailed", "reading the body to upload failed"); return ATTEMPT_FAIL; }
    if (x->too_big || r->out.oom) { s3_error_set(err, status, "BadResponse", "S3's answer is too large"); return ATTEMPT_FAIL; }
    if (rc == CURLE_OK) {
        error_from_answer(err, status, x->err_body.p, x->err_body.len);
        return status == 500 || status == 502 || status == 503 || status == 504 ? ATTEMPT_RETRY : ATTEMPT_FAIL;
    }
    s3_error_set(err, 0, transport_code(rc), x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
    return transport_retryable(rc) ? ATTEMPT_RETRY : ATTEMPT_FAIL;
}

bool s3_perform(s3_client *c, s3_req *r, s3_error *err)
{
    s3_error scratch;
    if (!err) err = &scratch;
    *err = (s3_error){0};
    xfer x = {.r = r};
    long start = now_ms();
    attempt_result res = ATTEMPT_FAIL;
    for (int n = 1;; n++) {
        err->attempts = n;
        res = attempt(c, &x, err);
        if (res != ATTEMPT_RETRY || n >= c->max_attempts || r->probe_ms > 0) break;
        /* A GET that delivered bytes resumes only with an ETag to pin. */
        if (x.delivered && !x.first_etag[0]) break;
        long ceiling = c->retry_base_ms << (n - 1 < 20 ? n - 1 : 20);
        if (ceiling > c->retry_cap_ms || ceiling <= 0) ceiling = c->retry_cap_ms;
        long wait = ceiling / 2 + (long)rand_below((unsigned)(ceiling / 2 + 1));
        if (now_ms() - start + wait > c->retry_budget_ms) break;
        char attempt_s[16], wait_s[24], status_s[16];
        snprintf(attempt_s, sizeof attempt_s, "%d", n);
        snprintf(wait_s, sizeof wait_s, "%ld", wait);
        snprintf(status_s, sizeof status_s, "%ld", err->status);
        log_warn("s3 request failed, retrying", "method", r->method, "key", r->key ? r->key : "",
                 "status", status_s, "code", err->code, "attempt", attempt_s, "backoff_ms", wait_s,
                 NULL);
        sleep_ms(wait);
    }
    s3_buf_free(&x.err_body);
    return res == ATTEMPT_OK;
}
