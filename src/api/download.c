/* download.c — sending a blob to a client: the one download path for
 * originals, renditions and slides, on either store.
 *
 * Every download gets the same validators and headers (ETag, 304 on
 * If-None-Match, one Range with 206/416 and If-Range, immutable caching
 * (revalidated for names whose bytes may change: blob_ref.revalidate),
 * nosniff, a sandboxing CSP, Content-Disposition).  How the bytes travel
 * depends on the store:
 *
 *   local (fs)   the blob's descriptor goes to libmicrohttpd, which sends it
 *                with sendfile: no copy, no thread.
 *   S3           proxied: a thread of its own reads the range from S3
 *                (store_read) into a bounded stream (http_reply_stream_sized)
 *                and waits while the client is slower than S3, so memory per
 *                download is one buffer whatever the size.  The reply is set
 *                only when the first bytes arrived, so an S3 failure before
 *                then is a clean JSON error, never a truncated 200.
 *   S3 with --s3-redirect: a 302 to a short-lived presigned GET, so the
 *                bytes never pass through assetd at all — but for the few
 *                small texts that name other blobs by relative URL
 *                (blob_ref.names_relative), which are proxied.
 *
 * Sizes come from the database (the asset row, the rendition list), not
 * from the store, so a range is checked before any request to S3.
 */
#include "api/app.h"
#include "http/etag.h"
#include "http/range.h"
#include "http/stream.h"
#include "util/filename.h"
#include "util/timefmt.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Bytes a proxied download may hold unsent. */
#define PROXY_BUFFER ((size_t)1 << 20)
/* Proxied downloads at once (a thread each, counted in app->proxies);
 * past it, 503. */
#define PROXIES_MAX 256

static void add_content_headers(http_req *r, const blob_ref *b)
{
    char disposition[CONTENT_DISPOSITION_MAX];
    http_reply_header(r, "ETag", b->etag);
    http_reply_header(r, "Accept-Ranges", "bytes");
    http_reply_header(r, "Cache-Control", b->revalidate ? "private, no-cache"
                                                        : "private, max-age=31536000, immutable");
    http_reply_header(r, "X-Content-Type-Options", "nosniff");
    /* User content on our origin must never run script. */
    http_reply_header(r, "Content-Security-Policy", "default-src 'none'; sandbox");
    if (content_disposition(b->filename, b->as_attachment, disposition, sizeof disposition))
        http_reply_header(r, "Content-Disposition", disposition);
}

static void add_range_header(http_req *r, uint64_t start, uint64_t length, uint64_t size)
{
    char content_range[96];
    snprintf(content_range, sizeof content_range, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
             start, start + length - 1, size);
    http_reply_header(r, "Content-Range", content_range);
}

/* ---------- proxied (S3) ---------- */

typedef struct proxy {
    http_req *r;           /* until the reply is set and the request resumed */
    _Atomic int *count;    /* the app's count of proxied downloads */
    store *store;
    char key[ID_LEN + 64];
    blob_ref blob;         /* its strings point into the copies below */
    char content_type[160], etag[160], filename[FILENAME_MAX_BYTES + 1];
    uint64_t start, length;
    bool partial;
    http_stream *stream;   /* set with the reply */
} proxy;

static bool forward(void *arg, const void *data, size_t len)
{
    proxy *p = arg;
    if (!p->stream) {   /* the first bytes: now the reply can be a success */
        p->stream = http_reply_stream_sized(p->r, p->partial ? 206 : 200, p->blob.content_type,
                                            p->length, PROXY_BUFFER);
        if (!p->stream) return false;
        add_content_headers(p->r, &p->blob);
        if (p->partial) add_range_header(p->r, p->start, p->length, p->blob.size);
        http_req_resume(p->r);
        p->r = NULL;
    }
    return http_stream_write_wait(p->stream, data, len);
}

static void *run_proxy(void *arg)
{
    proxy *p = arg;
    bool ok = p->length == 0 ||
              store_read(p->store, p->key, p->start, p->start + p->length - 1, forward, p);
    if (p->r) {   /* nothing was sent: answer with an error instead */
        if (p->length == 0) {
            p->stream = http_reply_stream_sized(p->r, 200, p->blob.content_type, 0, 1);
            if (p->stream) add_content_headers(p->r, &p->blob);
        } else {
            http_reply_error(p->r, 502, "storage_failed", "the asset's bytes could not be read "
                                                          "from storage");
        }
        http_req_resume(p->r);
    }
    if (p->stream) {
        if (ok) http_stream_end(p->stream);
        else http_stream_fail(p->stream);
        http_stream_release(p->stream);
    }
    _Atomic int *count = p->count;
    free(p);
    atomic_fetch_sub(count, 1);
    return NULL;
}

static void send_proxied(http_req *r, const blob_ref *b, uint64_t start, uint64_t length,
                         bool partial)
{
    app *a = http_req_app(r);
    if (strcmp(http_req_method(r), "HEAD") == 0) {   /* headers only: nothing to read */
        http_stream *s = http_reply_stream_sized(r, partial ? 206 : 200, b->content_type, length, 1);
        if (!s) return;
        add_content_headers(r, b);
        if (partial) add_range_header(r, start, length, b->size);
        http_stream_end(s);
        http_stream_release(s);
        return;
    }
    proxy *p = atomic_fetch_add(&a->proxies, 1) < PROXIES_MAX ? calloc(1, sizeof *p) : NULL;
    if (!p) {
        atomic_fetch_sub(&a->proxies, 1);
        http_reply_error(r, 503, "overloaded", "too many downloads at once; retry later");
        return;
    }
    p->r = r;
    p->count = &a->proxies;
    p->store = a->store;
    snprintf(p->key, sizeof p->key, "%s", b->key);
    snprintf(p->content_type, sizeof p->content_type, "%s", b->content_type);
    snprintf(p->etag, sizeof p->etag, "%s", b->etag);
    snprintf(p->filename, sizeof p->filename, "%s", b->filename);
    p->blob = (blob_ref){p->key, b->size, p->content_type, p->etag, p->filename,
                         b->as_attachment, b->revalidate, b->names_relative};
    p->start = start;
    p->length = length;
    p->partial = partial;
    pthread_attr_t attr;
    pthread_t thread;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    http_req_suspend(r);
    if (pthread_create(&thread, &attr, run_proxy, p) != 0) {
        free(p);
        atomic_fetch_sub(&a->proxies, 1);
        http_reply_error(r, 503, "overloaded", "cannot start a download; retry later");
        http_req_resume(r);
    }
    pthread_attr_destroy(&attr);
}

/* ---------- redirected (S3, --s3-redirect) ---------- */

/* How long a redirect's presigned URL lives: long enough to follow it and
 * resume a broken download, short enough that a leaked one soon dies. */
#define REDIRECT_TTL 300

/* 302 to a presigned GET of the object, which carries the headers a client
 * would have had from us (type, disposition); S3 then answers ranges and
 * conditionals itself.  Not cacheable: the URL expires. */
static void send_redirect(http_req *r, const blob_ref *b)
{
    app *a = http_req_app(r);
    char base[300], disposition[CONTENT_DISPOSITION_MAX];
    api_base_url(r, base, sizeof base);
    char *url = NULL;
    bool ok = content_disposition(b->filename, b->as_attachment, disposition, sizeof disposition) &&
              transfer_get_url(&a->signer, base, b->key, disposition, time_now_ms() / 1000,
                               REDIRECT_TTL, &url) == SIGV4_OK;
    if (!ok) {
        free(url);
        http_reply_error(r, 500, "internal", "cannot sign the download");
        return;
    }
    http_reply_empty(r, 302);
    http_reply_header(r, "Location", url);
    http_reply_header(r, "Cache-Control", "private, no-store");
    free(url);
}

/* ---------- the one entry point ---------- */

void blob_send(http_req *r, const blob_ref *b)
{
    app *a = http_req_app(r);
    const char *inm = http_req_header(r, "If-None-Match");
    if (inm && http_etag_matches(inm, b->etag)) {
        http_reply_empty(r, 304);
        http_reply_header(r, "ETag", b->etag);
        return;
    }
    if (a->s3_redirect && !b->names_relative) {
        send_redirect(r, b);
        return;
    }
    int fd = -1;
    uint64_t size = b->size;
    if (store_local(a->store) && !store_open(a->store, b->key, &fd, &size)) {
        if (store_error_is_exhausted(errno)) api_reply_overloaded(r);
        else http_reply_error(r, 500, "storage_failed", "the asset's bytes are unreadable");
        return;
    }
    /* The version the row names, as the S3 proxy sends: a video's growing
     * playlist is stored anew before the commit that records its size
     * (queue/video.c), and the newer, longer text may name segments whose
     * rows are not committed yet.  Versions are append-only, so the row's
     * size reads its own whole.  A row that names no size (0) sends the file. */
    if (b->size > 0 && size > b->size) size = b->size;
    uint64_t start = 0, length = size;
    const char *range = http_req_header(r, "Range");
    const char *if_range = http_req_header(r, "If-Range");
    range_result rr = RANGE_NONE;
    if (range && (!if_range || strcmp(if_range, b->etag) == 0))
        rr = range_parse(range, size, &start, &length);
    if (rr == RANGE_UNSATISFIABLE) {
        if (fd >= 0) close(fd);
        char content_range[96];
        http_reply_error(r, 416, "range_not_satisfiable", "the asset has %" PRIu64 " bytes",
                         size);
        snprintf(content_range, sizeof content_range, "bytes */%" PRIu64, size);
        http_reply_header(r, "Content-Range", content_range);
        return;
    }
    if (fd < 0) {
        send_proxied(r, b, start, length, rr == RANGE_PARTIAL);
        return;
    }
    http_reply_fd(r, rr == RANGE_PARTIAL ? 206 : 200, fd, start, length);
    http_reply_header(r, "Content-Type", b->content_type);
    add_content_headers(r, b);
    if (rr == RANGE_PARTIAL) add_range_header(r, start, length, size);
}
