/* s3.c — the blob store in an S3 bucket (store.h), over s3_client.h.
 *
 * Layout: every blob is the object PREFIX + key ("photos/<id>",
 * "photos/<id>.thumb"); the prefix comes from --store s3://BUCKET/PREFIX.
 *
 * Durability protocol for a new blob: the bytes go to a multipart upload
 * while they arrive (s3_multipart: each full part sent at once, up to three
 * at a time), and the object exists only when CompleteMultipartUpload (or the
 * single PUT of a small blob) succeeds — S3 makes an object visible whole
 * or not at all, so the invariant of fs.c (a key either does not exist or
 * holds the complete bytes) holds here too.  The caller commits the row
 * only after store_upload_commit(), so a crash leaves at worst an
 * unreferenced object (swept at a start once an hour old: SWEEP_MARGIN_S)
 * or an unfinished multipart upload
 * (aborted on store_upload_abort; after a crash, by the bucket's lifecycle
 * rule AbortIncompleteMultipartUpload, see README).
 *
 * Threads: store_upload_write() is called from HTTP threads, which must not
 * wait on the network.  The bytes go through a bounded ring to a writer
 * thread (writer.h) that feeds the multipart upload, whose part uploads run
 * on threads of its own while the next parts arrive; when the ring is full
 * the HTTP thread waits, which slows the client down as a slow disk would.
 * Memory per upload: the ring plus three parts (8 MiB + 3 x 8 MiB by
 * default), whatever the object size.
 *
 * Reads: decoders get a private copy in the scratch directory (an unlinked
 * O_TMPFILE, gone when closed); downloads stream ranges (store_read) or
 * are redirected to a presigned URL by the caller.
 */
#include "store/s3_internal.h"
#include "store/writer.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct s3_upload {
    store_upload base;
    s3_store *s;
    s3_multipart *mp;
    file_writer *writer;
    s3_error err;
    bool failed;
    char key[S3_OBJECT_KEY_MAX];             /* the object key */
} s3_upload;

bool object_key(const s3_store *s, const char *key, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s%s", s->prefix, key);
    return n > 0 && (size_t)n < cap;
}

void log_s3_error(const char *what, const char *key, const s3_error *err)
{
    char text[400];
    log_error(what, "key", key, "error", s3_error_text(err, text, sizeof text), NULL);
}

/* ---------- uploads ---------- */

static bool feed_multipart(void *arg, const void *data, size_t len)
{
    s3_upload *u = arg;
    if (s3_multipart_append(u->mp, data, len, &u->err)) return true;
    errno = EIO;
    return false;
}

static store_upload *s3_upload_begin(store *base, const char *key)
{
    s3_store *s = (s3_store *)base;
    s3_upload *u = calloc(1, sizeof *u);
    if (!u) return NULL;
    u->base.s = base;
    u->s = s;
    if (!object_key(s, key, u->key, sizeof u->key) ||
        !(u->mp = s3_multipart_begin(s->client, u->key, NULL)) ||
        !(u->writer = writer_start(feed_multipart, u, &s->writer_slots))) {
        if (u->mp) s3_multipart_abort(u->mp);
        free(u);
        return NULL;
    }
    return &u->base;
}

static bool s3_upload_write(store_upload *base, const void *data, size_t len)
{
    s3_upload *u = (s3_upload *)base;
    if (!u->failed && !file_writer_append(u->writer, data, len)) u->failed = true;
    return !u->failed;
}

/* Waits until the writer thread has handed every byte to the upload. */
static void finish_writes(s3_upload *u)
{
    if (u->writer && !file_writer_finish(u->writer)) u->failed = true;
    u->writer = NULL;
}

static bool s3_upload_commit(store_upload *base)
{
    s3_upload *u = (s3_upload *)base;
    finish_writes(u);
    bool ok = false;
    if (u->failed) {
        log_s3_error("S3 upload failed", u->key, &u->err);
        s3_multipart_abort(u->mp);
    } else if (!(ok = s3_multipart_finish(u->mp, NULL, &u->err))) {
        log_s3_error("S3 upload could not complete", u->key, &u->err);
    }
    free(u);
    return ok;
}

static void s3_upload_abort(store_upload *base)
{
    s3_upload *u = (s3_upload *)base;
    finish_writes(u);
    s3_multipart_abort(u->mp);
    free(u);
}

/* ---------- reads ---------- */

typedef struct head_buf {
    char *buf;
    size_t cap, n;
} head_buf;

static bool fill_head(void *arg, const void *data, size_t len)
{
    head_buf *h = arg;
    size_t take = len < h->cap - h->n ? len : h->cap - h->n;
    memcpy(h->buf + h->n, data, take);
    h->n += take;
    return true;
}

static bool s3_read_head(store *base, const char *key, void *buf, size_t cap, size_t *n)
{
    s3_store *s = (s3_store *)base;
    char obj[S3_OBJECT_KEY_MAX];
    s3_error err;
    head_buf h = {buf, cap, 0};
    if (!object_key(s, key, obj, sizeof obj) || cap == 0) return false;
    bool ok = s3_get(s->client, obj, true, 0, cap - 1, fill_head, &h, NULL, &err);
    if (!ok && err.status == 416) {   /* an empty object has no byte 0 */
        s3_object_info info;
        ok = s3_head(s->client, obj, &info, &err) && info.size == 0;
    }
    if (!ok) log_s3_error("S3 read failed", obj, &err);
    *n = h.n;
    return ok;
}

static bool s3_fetch(store *base, const char *key, int *fd, uint64_t *size)
{
    s3_store *s = (s3_store *)base;
    char obj[S3_OBJECT_KEY_MAX];
    s3_error err;
    if (!object_key(s, key, obj, sizeof obj)) return false;
    int f = open(s->scratch, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (f < 0) {
        log_error("cannot create a scratch file", "dir", s->scratch, "error", strerror(errno),
                  NULL);
        return false;
    }
    struct stat st;
    if (!s3_get_fd(s->client, obj, false, 0, 0, f, NULL, &err)) {
        if (!s3_error_is_not_found(&err)) log_s3_error("S3 download failed", obj, &err);
        close(f);
        return false;
    }
    if (lseek(f, 0, SEEK_SET) != 0 || fstat(f, &st) != 0) {
        close(f);
        return false;
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    return true;
}

static bool s3_stream(store *base, const char *key, uint64_t first, uint64_t last,
                      store_sink sink, void *arg)
{
    s3_store *s = (s3_store *)base;
    char obj[S3_OBJECT_KEY_MAX];
    s3_error err;
    if (!object_key(s, key, obj, sizeof obj)) return false;
    bool ok = s3_get(s->client, obj, true, first, last, sink, arg, NULL, &err);
    if (!ok && strcmp(err.code, "Aborted") != 0) log_s3_error("S3 read failed", obj, &err);
    return ok;
}

static bool s3_stat(store *base, const char *key, uint64_t *size, bool *missing)
{
    s3_store *s = (s3_store *)base;
    char obj[S3_OBJECT_KEY_MAX];
    s3_object_info info;
    s3_error err;
    if (!object_key(s, key, obj, sizeof obj)) return false;
    if (s3_head(s->client, obj, &info, &err)) {
        *size = info.size;
        return true;
    }
    *missing = s3_error_is_not_found(&err);
    if (!*missing) log_s3_error("S3 HEAD failed", obj, &err);
    return false;
}

/* ---------- removal, health, recovery ---------- */

static bool s3_remove(store *base, const char *key)
{
    s3_store *s = (s3_store *)base;
    char obj[S3_OBJECT_KEY_MAX];
    s3_error err;
    if (!object_key(s, key, obj, sizeof obj)) return false;
    if (s3_delete(s->client, obj, &err)) return true;
    log_s3_error("S3 delete failed", obj, &err);
    return false;
}

static void s3_remove_asset(store *base, const char *id)
{
    /* Ids have a fixed length, so the prefix "<id>" matches the blob and
     * its renditions ("<id>.name") and nothing of any other asset. */
    s3_store *s = (s3_store *)base;
    char obj[S3_OBJECT_KEY_MAX];
    s3_error err;
    if (object_key(s, id, obj, sizeof obj) && !s3_delete_prefix(s->client, obj, NULL, &err))
        log_s3_error("S3 delete failed", obj, &err);
}

#define READY_PROBE_MS 2000

static bool s3_check(store *base)
{
    s3_store *s = (s3_store *)base;
    char obj[S3_OBJECT_KEY_MAX];
    s3_error err;
    /* A HEAD of a key that never exists: "not found" proves the bucket
     * answers and our credentials are good.  One bounded attempt: a
     * readiness probe must answer soon, and "not ready" is the answer
     * when S3 does not (retried, a stalled S3 held it 30 s and more). */
    object_key(s, ".assetd-readiness", obj, sizeof obj);
    return s3_head_probe(s->client, obj, READY_PROBE_MS, &err) || (err.status == 404);
}

/* Objects younger than this are never swept.  Processes sharing the bucket
 * (serve processes on one database, --db) each sweep it when they start,
 * and another's upload has its object before its row: between the
 * CompleteMultipartUpload (or the single PUT) and the INSERT's commit, which
 * may wait on the database for seconds.  A sweep judging that object by its
 * missing row deleted it under the upload (tests/e2e/postgres_nodes.test.mjs).
 * A crash's leftover is only wasted space: a later start removes it. */
#define SWEEP_MARGIN_S 3600

typedef struct sweep_ctx {
    s3_store *s;
    bool (*is_live)(const char *key, void *arg);
    void *arg;
    time_t before;   /* only objects last modified before this are judged */
    int removed;
} sweep_ctx;

static bool sweep_one(void *arg, const char *obj, uint64_t size, time_t modified)
{
    sweep_ctx *ctx = arg;
    const char *key = obj + strlen(ctx->s->prefix);
    if (modified == 0 || modified > ctx->before) return true;   /* maybe an upload in flight */
    if (store_key_valid(key) && ctx->is_live(key, ctx->arg)) return true;
    if (!store_key_valid(key) && strchr(key, '/')) return true;   /* not ours: leave it */
    s3_error err;
    if (s3_delete(ctx->s->client, obj, &err)) {
        log_info("removed leftover object", "key", obj, NULL);
        ctx->removed++;
    }
    return true;
}

static int s3_sweep_appends(store *base, bool (*is_live)(const char *key, void *arg), void *arg)
{
    /* Checkpoints of resumable uploads nobody names, left alone for an hour
     * (as fs.c's .part files) in case a writer still holds them. */
    return s3_append_sweep((s3_store *)base, is_live, arg, 3600);
}

static int s3_sweep(store *base, bool (*is_live)(const char *key, void *arg), void *arg)
{
    s3_store *s = (s3_store *)base;
    sweep_ctx ctx = {s, is_live, arg, time(NULL) - SWEEP_MARGIN_S, 0};
    s3_error err;
    if (!s3_list(s->client, s->prefix, sweep_one, &ctx, &err))
        log_s3_error("S3 sweep could not list the bucket", s->prefix, &err);
    return ctx.removed + s3_sweep_appends(base, is_live, arg);
}

static void s3_close(store *base)
{
    s3_store *s = (s3_store *)base;
    s3_client_free(s->client);
    free(s);
}

static const store_backend s3_backend = {
    .local = false,
    .close = s3_close,
    .upload_begin = s3_upload_begin,
    .upload_write = s3_upload_write,
    .upload_commit = s3_upload_commit,
    .upload_abort = s3_upload_abort,
    .read_head = s3_read_head,
    .fetch = s3_fetch,
    .stream = s3_stream,
    .stat = s3_stat,
    .remove = s3_remove,
    .remove_asset = s3_remove_asset,
    .check = s3_check,
    .append_open = s3_append_open,
    .append_write = s3_append_write,
    .append_commit = s3_append_commit,
    .append_abort = s3_append_abort,
    .append_read = s3_append_read,
    .append_publish = s3_append_publish,
    .append_remove = s3_append_remove,
    .sweep = s3_sweep,
    .sweep_appends = s3_sweep_appends,
};

bool store_s3_parse_url(const char *url, store_s3_config *c)
{
    if (strncmp(url, "s3://", 5) != 0) return false;
    const char *bucket = url + 5, *slash = strchr(bucket, '/');
    size_t blen = slash ? (size_t)(slash - bucket) : strlen(bucket);
    /* S3 bucket names: 3..63 of [a-z0-9.-] */
    if (blen < 3 || blen >= sizeof c->bucket ||
        strspn(bucket, "abcdefghijklmnopqrstuvwxyz0123456789.-") < blen)
        return false;
    memcpy(c->bucket, bucket, blen);
    c->bucket[blen] = '\0';
    const char *prefix = slash ? slash + 1 : "";
    size_t plen = strlen(prefix);
    while (plen > 0 && prefix[plen - 1] == '/') plen--;
    if (plen > STORE_S3_PREFIX_MAX || memchr(prefix, '\0', plen)) return false;
    if (plen) snprintf(c->prefix, sizeof c->prefix, "%.*s/", (int)plen, prefix);
    else c->prefix[0] = '\0';
    return true;
}

store *store_s3_open(const store_s3_config *cfg, const char *data_dir, const char **err)
{
    s3_store *s = calloc(1, sizeof *s);
    if (!s) { *err = "out of memory"; return NULL; }
    s->base.be = &s3_backend;
    snprintf(s->prefix, sizeof s->prefix, "%s", cfg->prefix);
    snprintf(s->scratch, sizeof s->scratch, "%s/tmp", data_dir);
    atomic_init(&s->writer_slots, UPLOAD_THREADS_MAX);
    if (mkdir(s->scratch, 0700) != 0 && errno != EEXIST) {
        *err = "cannot create the scratch directory DATA/tmp";
        free(s);
        return NULL;
    }
    char aws[160];
    const char *region = cfg->region && *cfg->region ? cfg->region : "us-east-1";
    snprintf(aws, sizeof aws, "https://s3.%s.amazonaws.com", region);
    s3_config sc = {.endpoint = cfg->endpoint && *cfg->endpoint ? cfg->endpoint : aws,
                    .region = region, .bucket = cfg->bucket,
                    .low_speed_time_s = cfg->stall_timeout_s};
    s3_error e;
    if (!(s->client = s3_client_new(&sc, &e))) {
        static char why[300];   /* start-up only, one thread */
        snprintf(why, sizeof why, "S3: %s", e.message[0] ? e.message : e.code);
        *err = why;
        free(s);
        return NULL;
    }
    return &s->base;
}
