/* s3_append.c — appendable objects (store.h) in an S3 bucket: a resumable
 * upload's bytes are an S3 multipart upload left open between its writes.
 *
 * Layout, for the upload <id> (every key after PREFIX):
 *   <id>                   the multipart upload's object: the blob it becomes
 *   tus/<id>/<offset>      a checkpoint: where the upload stood after
 *                          <offset> bytes (20 digits, so keys sort by it)
 *
 * A checkpoint is a small object, a text header then bytes:
 *   "assetd-append 1\n" "upload <UploadId>\n" "parts <k>\n"
 *   k x "<number> <size> <etag>\n"  "tail <t>\n"  then t bytes
 * It names the S3 upload, the k parts sent (all but the last part of an S3
 * upload must be 5 MiB or more) and the tail: the t bytes past them that do
 * not make a whole part yet, kept here because S3 would refuse them as a
 * part.  So offset = the parts' sizes + t, which load() checks, and the
 * bytes never sit whole on the server: a checkpoint holds less than a part.
 *
 * Protocol (the caller holds the upload's lease and keeps the committed
 * offset O in its database, store.h):
 *   open(O)    returns at once; the writer thread first loads checkpoint O
 *              and resumes an s3_multipart from its parts and tail (O = 0
 *              with no checkpoint: it creates the S3 upload and writes
 *              checkpoint 0 before any part, so no part ever goes to an
 *              upload that no checkpoint names), then deletes every other
 *              checkpoint: older ones are superseded, newer ones are of
 *              writes never acknowledged;
 *   write      bytes through a ring to the writer thread, which hands them
 *              to the s3_multipart: whole parts go to S3 as they fill, up to
 *              three at a time, so memory stays at the ring and three parts;
 *   commit     waits for every whole part, then PUTs checkpoint O + n: the
 *              bytes are durable only then.  If the caller cannot record
 *              O + n, checkpoint O still stands and the next open(O) starts
 *              from it: the parts past it are sent again under the same
 *              numbers, which S3 replaces;
 *   abort      waits for the parts in flight, forgets the handle: nothing
 *              acknowledged changes;
 *   publish(L) completes the S3 upload from checkpoint L, its tail as the
 *              last part, then deletes the checkpoints.  Idempotent: no
 *              checkpoint L but the object there with L bytes means it was
 *              done (a completion that crashed before the asset's row);
 *   read(L)    publishes first: only the partial uploads of a concatenation
 *              are read back, and they never become assets (their object is
 *              the caller's to remove, store.h);
 *   remove     aborts the S3 upload each checkpoint names, then deletes the
 *              checkpoints; never the object, which may be an asset's blob.
 *
 * What a crash leaves: checkpoints of an upload whose row is gone (the row
 * goes first), removed by the sweep once older than a margin; an S3 upload
 * created just before a crash, before its checkpoint 0: the bucket's
 * lifecycle rule AbortIncompleteMultipartUpload removes it (README).
 */
#include "store/s3_internal.h"
#include "store/s3_request.h"
#include "store/writer.h"
#include "util/encode.h"
#include "util/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECKPOINT_MAGIC "assetd-append 1\n"
/* A checkpoint's header: 10,000 parts of at most ~170 bytes each. */
#define HEADER_MAX ((size_t)2 << 20)

typedef struct s3_append {
    store_append base;
    s3_store *s;
    char id[ID_LEN + 1];
    char key[S3_OBJECT_KEY_MAX];   /* the multipart upload's object */
    uint64_t offset;               /* the committed offset this writer started at */
    uint64_t written;              /* bytes given to write() */
    file_writer *writer;           /* ring -> writer thread; NULL once finished */
    s3_multipart *mp;              /* NULL until loaded */
    char *upload_id;
    bool loaded, failed;
    s3_error err;
} s3_append;

static bool checkpoint_key(const s3_store *s, const char *id, uint64_t offset, char *out,
                           size_t cap)
{
    int n = snprintf(out, cap, "%stus/%s/%020" PRIu64, s->prefix, id, offset);
    return n > 0 && (size_t)n < cap;
}

static bool checkpoints_prefix(const s3_store *s, const char *id, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%stus/%s/", s->prefix, id);
    return n > 0 && (size_t)n < cap;
}

/* ---------- a checkpoint in memory ---------- */

typedef struct checkpoint {
    char *body;                    /* the whole object, owned */
    size_t len, cap;
    char upload_id[1024];
    s3_part *parts;                /* owned */
    int nparts;
    const char *tail;              /* into body */
    size_t tail_len;
    bool too_big;
} checkpoint;

static void checkpoint_free(checkpoint *cp)
{
    free(cp->body);
    free(cp->parts);
}

static bool gather(void *arg, const void *data, size_t len)
{
    checkpoint *cp = arg;
    if (len > cp->cap - cp->len) {
        cp->too_big = true;
        return false;
    }
    memcpy(cp->body + cp->len, data, len);
    cp->len += len;
    return true;
}

/* Parses cp->body: false if it is not a checkpoint of `offset` bytes. */
static bool checkpoint_parse(checkpoint *cp, uint64_t offset)
{
    const char *p = cp->body, *end = cp->body + cp->len;
    size_t magic = strlen(CHECKPOINT_MAGIC);
    if (cp->len < magic || memcmp(p, CHECKPOINT_MAGIC, magic) != 0) return false;
    p += magic;
    /* The header is text up to "tail <t>\n"; bytes follow. */
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    int used = 0, k = -1;
    char line[1100];
    if (!nl || (size_t)(nl - p) >= sizeof line) return false;
    memcpy(line, p, (size_t)(nl - p));
    line[nl - p] = '\0';
    if (sscanf(line, "upload %1023s%n", cp->upload_id, &used) != 1 || line[used]) return false;
    p = nl + 1;
    if (!(nl = memchr(p, '\n', (size_t)(end - p))) || sscanf(p, "parts %d%n", &k, &used) != 1 ||
        p + used != nl || k < 0 || k > 10000)
        return false;
    p = nl + 1;
    if (k && !(cp->parts = calloc((size_t)k, sizeof *cp->parts))) return false;
    uint64_t sum = 0;
    for (int i = 0; i < k; i++) {
        unsigned long long size;
        if (!(nl = memchr(p, '\n', (size_t)(end - p))) || (size_t)(nl - p) >= sizeof line)
            return false;
        memcpy(line, p, (size_t)(nl - p));
        line[nl - p] = '\0';
        s3_part *part = &cp->parts[i];
        if (sscanf(line, "%d %llu %129s%n", &part->number, &size, part->etag, &used) != 3 ||
            line[used] || part->number != i + 1 || size < S3_MIN_PART_SIZE)
            return false;
        part->size = size;
        sum += size;
        p = nl + 1;
    }
    cp->nparts = k;
    unsigned long long t;
    if (!(nl = memchr(p, '\n', (size_t)(end - p))) || sscanf(p, "tail %llu%n", &t, &used) != 1 ||
        p + used != nl || t != (unsigned long long)(end - nl - 1))
        return false;
    cp->tail = nl + 1;
    cp->tail_len = (size_t)t;
    return sum + t == offset;
}

/* Loads checkpoint `offset` of id: false with *missing when there is none. */
static bool checkpoint_load(s3_store *s, const char *id, uint64_t offset, checkpoint *cp,
                            bool *missing, s3_error *err)
{
    char key[S3_OBJECT_KEY_MAX];
    *cp = (checkpoint){0};
    *missing = false;
    cp->cap = HEADER_MAX + 2 * s3_client_part_size(s->client);
    if (!checkpoint_key(s, id, offset, key, sizeof key) || !(cp->body = malloc(cp->cap))) {
        s3_error_set(err, 0, "OutOfMemory", "out of memory");
        return false;
    }
    if (!s3_get(s->client, key, false, 0, 0, gather, cp, NULL, err)) {
        *missing = s3_error_is_not_found(err);
        if (cp->too_big) s3_error_set(err, 0, "BadCheckpoint", "a checkpoint is too large");
        checkpoint_free(cp);
        return false;
    }
    if (!checkpoint_parse(cp, offset)) {
        s3_error_set(err, 0, "BadCheckpoint", "a checkpoint does not parse");
        checkpoint_free(cp);
        return false;
    }
    return true;
}

/* The header and the tail, read in turn (s3_put_stream). */
typedef struct checkpoint_out {
    char *header;
    size_t header_len;
    const void *tail;
    size_t tail_len;
} checkpoint_out;

static ssize_t checkpoint_read(void *arg, uint64_t at, void *buf, size_t cap)
{
    checkpoint_out *o = arg;
    const char *src;
    size_t avail;
    if (at < o->header_len) {
        src = o->header + at;
        avail = o->header_len - (size_t)at;
    } else {
        src = (const char *)o->tail + (at - o->header_len);
        avail = o->header_len + o->tail_len - (size_t)at;
    }
    size_t n = avail < cap ? avail : cap;
    memcpy(buf, src, n);
    return (ssize_t)n;
}

/* PUTs checkpoint `offset`: upload_id, parts and tail. */
static bool checkpoint_store(s3_store *s, const char *id, uint64_t offset, const char *upload_id,
                             const s3_part *parts, int nparts, const void *tail, size_t tail_len,
                             s3_error *err)
{
    char key[S3_OBJECT_KEY_MAX];
    size_t cap = 256 + strlen(upload_id) + (size_t)nparts * (S3_ETAG_MAX + 48);
    checkpoint_out o = {.header = malloc(cap), .tail = tail, .tail_len = tail_len};
    if (!o.header || !checkpoint_key(s, id, offset, key, sizeof key)) {
        free(o.header);
        s3_error_set(err, 0, "OutOfMemory", "out of memory");
        return false;
    }
    size_t n = (size_t)snprintf(o.header, cap, CHECKPOINT_MAGIC "upload %s\nparts %d\n",
                                upload_id, nparts);
    for (int i = 0; i < nparts; i++)
        n += (size_t)snprintf(o.header + n, cap - n, "%d %" PRIu64 " %s\n", parts[i].number,
                              parts[i].size, parts[i].etag);
    n += (size_t)snprintf(o.header + n, cap - n, "tail %zu\n", tail_len);
    o.header_len = n;
    bool ok = s3_put_stream(s->client, key, n + tail_len, checkpoint_read, &o,
                            "application/octet-stream", NULL, err);
    free(o.header);
    return ok;
}

/* Deletes every checkpoint of id but `keep` (none: UINT64_MAX); best effort. */
static void checkpoints_prune(s3_store *s, const char *id, uint64_t keep);

/* ---------- writing ---------- */

/* The writer's first step (its thread, or commit's when nothing was
 * written): the S3 upload and the tail as checkpoint `offset` left them. */
static bool load(s3_append *a)
{
    a->loaded = true;
    checkpoint cp;
    bool missing;
    if (!checkpoint_load(a->s, a->id, a->offset, &cp, &missing, &a->err)) {
        if (!missing || a->offset != 0) {
            if (missing)
                s3_error_set(&a->err, 404, "NoCheckpoint", "the upload's bytes are lost");
            return false;
        }
        /* A new upload: its S3 upload exists only once checkpoint 0 names it. */
        char *upload_id = NULL;
        if (!s3_mpu_create(a->s->client, a->key, NULL, &upload_id, &a->err)) return false;
        if (!checkpoint_store(a->s, a->id, 0, upload_id, NULL, 0, "", 0, &a->err)) {
            s3_error e;
            s3_mpu_abort(a->s->client, a->key, upload_id, &e);
            free(upload_id);
            return false;
        }
        cp = (checkpoint){0};
        snprintf(cp.upload_id, sizeof cp.upload_id, "%s", upload_id);
        free(upload_id);
    }
    a->mp = s3_multipart_resume(a->s->client, a->key, cp.upload_id, cp.parts, cp.nparts,
                                cp.tail, cp.tail_len);
    a->upload_id = strdup(cp.upload_id);
    checkpoint_free(&cp);
    if (!a->mp || !a->upload_id) {
        s3_error_set(&a->err, 0, "OutOfMemory", "out of memory");
        return false;
    }
    checkpoints_prune(a->s, a->id, a->offset);
    return true;
}

static bool feed(void *arg, const void *data, size_t len)
{
    s3_append *a = arg;
    if (!a->failed && ((!a->loaded && !load(a)) ||
                       !s3_multipart_append(a->mp, data, len, &a->err)))
        a->failed = true;
    if (a->failed) errno = EIO;
    return !a->failed;
}

store_append *s3_append_open(store *base, const char *id, uint64_t offset)
{
    s3_store *s = (s3_store *)base;
    s3_append *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->base.s = base;
    a->s = s;
    a->offset = offset;
    snprintf(a->id, sizeof a->id, "%s", id);
    if (!object_key(s, id, a->key, sizeof a->key) ||
        !(a->writer = writer_start(feed, a, &s->writer_slots))) {
        free(a);
        return NULL;
    }
    return &a->base;
}

bool s3_append_write(store_append *base, const void *data, size_t len)
{
    s3_append *a = (s3_append *)base;
    if (!a->writer || !file_writer_append(a->writer, data, len)) return false;
    a->written += len;
    return true;
}

/* Stops the writer thread: from here on, a->mp and a->err are ours. */
static void finish_writes(s3_append *a)
{
    if (a->writer && !file_writer_finish(a->writer)) a->failed = true;
    a->writer = NULL;
}

static void append_free(s3_append *a)
{
    s3_multipart_release(a->mp);
    free(a->upload_id);
    free(a);
}

bool s3_append_commit(store_append *base)
{
    s3_append *a = (s3_append *)base;
    finish_writes(a);
    const s3_part *parts;
    int nparts;
    const void *tail;
    size_t tail_len;
    bool ok = !a->failed && (a->loaded || load(a)) &&
              s3_multipart_checkpoint(a->mp, &parts, &nparts, &tail, &tail_len, &a->err) &&
              checkpoint_store(a->s, a->id, a->offset + a->written, a->upload_id, parts, nparts,
                               tail, tail_len, &a->err);
    if (!ok) log_s3_error("resumable upload: S3 write failed", a->key, &a->err);
    append_free(a);
    return ok;
}

void s3_append_abort(store_append *base)
{
    s3_append *a = (s3_append *)base;
    finish_writes(a);
    append_free(a);
}

/* ---------- the end of an upload ---------- */

bool s3_append_publish(store *base, const char *id, uint64_t length)
{
    s3_store *s = (s3_store *)base;
    char key[S3_OBJECT_KEY_MAX];
    checkpoint cp;
    bool missing;
    s3_error err;
    if (!object_key(s, id, key, sizeof key)) return false;
    if (!checkpoint_load(s, id, length, &cp, &missing, &err)) {
        s3_object_info info;
        s3_error e2;
        /* Published before (the checkpoints go last)? */
        if (missing && s3_head(s->client, key, &info, &e2) && info.size == length) return true;
        log_s3_error("resumable upload: cannot publish", key, &err);
        return false;
    }
    bool ok;
    if (cp.nparts == 0 && cp.tail_len == 0) {
        /* Empty: S3 completes no upload without a part. */
        s3_error e2;
        ok = s3_put(s->client, key, "", 0, NULL, NULL, &err);
        if (ok) s3_mpu_abort(s->client, key, cp.upload_id, &e2);
    } else {
        s3_multipart *m = s3_multipart_resume(s->client, key, cp.upload_id, cp.parts, cp.nparts,
                                              cp.tail, cp.tail_len);
        if (!m) s3_error_set(&err, 0, "OutOfMemory", "out of memory");
        ok = m && s3_multipart_complete(m, &err);
    }
    checkpoint_free(&cp);
    if (!ok) {
        s3_object_info info;
        s3_error e2;
        /* A completion S3 did but whose answer was lost: the object is whole. */
        if (s3_head(s->client, key, &info, &e2) && info.size == length) ok = true;
        else log_s3_error("resumable upload: cannot complete", key, &err);
    }
    if (ok) checkpoints_prune(s, id, UINT64_MAX);
    return ok;
}

bool s3_append_read(store *base, const char *id, uint64_t length, store_sink sink, void *arg)
{
    s3_store *s = (s3_store *)base;
    char key[S3_OBJECT_KEY_MAX];
    s3_error err;
    if (!s3_append_publish(base, id, length) || !object_key(s, id, key, sizeof key)) return false;
    if (length == 0) return true;
    bool ok = s3_get(s->client, key, true, 0, length - 1, sink, arg, NULL, &err);
    if (!ok) log_s3_error("resumable upload: cannot read", key, &err);
    return ok;
}

/* ---------- removal ---------- */

static void checkpoints_prune(s3_store *s, const char *id, uint64_t keep)
{
    char prefix[S3_OBJECT_KEY_MAX], kept[S3_OBJECT_KEY_MAX] = "";
    s3_keys l = {0};
    s3_error err;
    if (!checkpoints_prefix(s, id, prefix, sizeof prefix)) return;
    if (keep != UINT64_MAX) checkpoint_key(s, id, keep, kept, sizeof kept);
    if (!s3_list(s->client, prefix, s3_keys_add, &l, &err))
        log_s3_error("resumable upload: cannot list checkpoints", prefix, &err);
    for (size_t i = 0; i < l.n; i++)
        if (strcmp(l.keys[i], kept) != 0 && !s3_delete(s->client, l.keys[i], &err))
            log_s3_error("resumable upload: cannot delete a checkpoint", l.keys[i], &err);
    s3_keys_free(&l);
}

/* The UploadId a checkpoint names (its first 1 KiB says it). */
static bool checkpoint_upload_id(s3_store *s, const char *key, char *out, size_t cap)
{
    char head[1200];
    checkpoint cp = {.body = head, .cap = sizeof head - 1};
    s3_error err;
    if (!s3_get(s->client, key, true, 0, sizeof head - 2, gather, &cp, NULL, &err)) return false;
    head[cp.len] = '\0';
    size_t magic = strlen(CHECKPOINT_MAGIC);
    char id[1024];
    if (cp.len < magic || memcmp(head, CHECKPOINT_MAGIC, magic) != 0 ||
        sscanf(head + magic, "upload %1023s", id) != 1)
        return false;
    snprintf(out, cap, "%s", id);
    return true;
}

bool s3_append_remove(store *base, const char *id)
{
    s3_store *s = (s3_store *)base;
    char prefix[S3_OBJECT_KEY_MAX], key[S3_OBJECT_KEY_MAX], upload_id[1024], last[1024] = "";
    s3_keys l = {0};
    s3_error err;
    if (!checkpoints_prefix(s, id, prefix, sizeof prefix) || !object_key(s, id, key, sizeof key))
        return false;
    if (!s3_list(s->client, prefix, s3_keys_add, &l, &err) || l.oom) {
        log_s3_error("resumable upload: cannot list checkpoints", prefix, &err);
        s3_keys_free(&l);
        return false;
    }
    bool ok = true;
    /* The S3 uploads first: a checkpoint is the only record of one. */
    for (size_t i = 0; i < l.n && ok; i++) {
        if (!checkpoint_upload_id(s, l.keys[i], upload_id, sizeof upload_id) ||
            strcmp(upload_id, last) == 0)
            continue;
        if (!s3_mpu_abort(s->client, key, upload_id, &err)) {
            log_s3_error("resumable upload: cannot abort", key, &err);
            /* Try again later unless S3 refused for good (a 4xx: no
             * permission, not implemented); then the bucket's lifecycle
             * rule takes the parts, and the checkpoints go anyway. */
            ok = err.status >= 400 && err.status < 500;
        }
        snprintf(last, sizeof last, "%s", upload_id);
    }
    for (size_t i = 0; i < l.n && ok; i++)
        if (!(ok = s3_delete(s->client, l.keys[i], &err)))
            log_s3_error("resumable upload: cannot delete a checkpoint", l.keys[i], &err);
    s3_keys_free(&l);
    return ok;
}

/* ---------- the sweep: checkpoints no upload names ---------- */

/* Uploads are judged once listed whole (removing while listing would move
 * the continuation token's ground): ids collected in s3_keys. */
typedef struct orphans {
    const char *prefix;            /* PREFIX "tus/" */
    time_t before;                 /* only uploads idle since before this */
    char id[ID_LEN + 1];           /* the upload being looked at */
    bool young;                    /* one of its checkpoints is newer than `before` */
    s3_keys idle;                 /* ids of uploads idle long enough */
} orphans;

static void orphan_done(orphans *o)
{
    if (o->id[0] && !o->young) s3_keys_add(&o->idle, o->id, 0, 0);
    o->id[0] = '\0';
    o->young = false;
}

static bool orphan_each(void *arg, const char *key, uint64_t size, time_t modified)
{
    orphans *o = arg;
    /* PREFIX "tus/" <id> "/" <offset>, listed in order: by upload. */
    const char *id = key + strlen(o->prefix);
    if (strlen(id) <= ID_LEN || id[ID_LEN] != '/') return true;   /* not ours */
    if (strncmp(id, o->id, ID_LEN) != 0) {
        orphan_done(o);
        memcpy(o->id, id, ID_LEN);
        o->id[ID_LEN] = '\0';
        if (!store_key_valid(o->id)) o->young = true;   /* never ours to judge */
    }
    if (modified == 0 || modified > o->before) o->young = true;
    return true;
}

int s3_append_sweep(s3_store *s, bool (*is_live)(const char *key, void *arg), void *arg,
                    long margin_s)
{
    char prefix[S3_OBJECT_KEY_MAX];
    snprintf(prefix, sizeof prefix, "%stus/", s->prefix);
    orphans o = {.prefix = prefix, .before = time(NULL) - margin_s};
    s3_error err;
    if (!s3_list(s->client, prefix, orphan_each, &o, &err))
        log_s3_error("S3 sweep could not list resumable uploads", prefix, &err);
    orphan_done(&o);
    int removed = 0;
    for (size_t i = 0; i < o.idle.n; i++) {
        if (is_live(o.idle.keys[i], arg) || !s3_append_remove(&s->base, o.idle.keys[i])) continue;
        log_info("removed an abandoned resumable upload", "id", o.idle.keys[i], NULL);
        removed++;
    }
    s3_keys_free(&o.idle);
    return removed;
}
