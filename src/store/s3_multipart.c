/* s3_multipart.c — multipart uploads: the four S3 calls (s3_mpu_*), and
 * s3_multipart, which turns a stream of appends into parts.
 *
 * Memory and concurrency: an s3_multipart owns N part buffers ("slots",
 * N = the client's parts_in_flight) and no more.  append() fills one slot;
 * when it is full, the part goes to a thread of its own (s3_mpu_upload_part
 * with the engine's retries) and append() goes on filling a free slot.
 * Only when all N slots are uploading does append() wait, for the first to
 * finish.  So one part's round trip no longer stalls the stream (S3 answers
 * a part only after it has all of it), an upload of any size costs N parts
 * of memory at most, and nothing touches local disk.  With N = 1 the part
 * is uploaded by the appending thread itself, as before threads came in.
 *
 * Invariants:
 *   - every part but the last is exactly part_size bytes (>= 5 MiB, S3's
 *     minimum), so S3 never refuses the completion for a small part;
 *   - the S3 upload is created only with the first full part, so an object
 *     smaller than one part is a single PUT and leaves no upload behind;
 *   - once an S3 upload exists, the object ends completed or aborted:
 *     finish() aborts it when completing fails, abort() always does, and
 *     both wait for every part thread first, so no part lands after the
 *     abort and no thread outlives m;
 *   - a part thread touches only its own slot (and the immutable key and
 *     upload id) until it sets the slot DONE under m->lock; everything
 *     else (parts[], the error, the slots' states) is the appending
 *     thread's, which copies a DONE slot's ETag into parts[number - 1];
 *   - the first failed part fails the stream: its error is kept and every
 *     later append() and finish() returns it.
 */
#include "store/s3_request.h"

#include "util/fault.h"
#include "util/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARTS 10000

bool s3_mpu_create(s3_client *c, const char *key, const char *content_type,
                   char **upload_id, s3_error *err)
{
    *upload_id = NULL;
    const char *kv[2] = {"uploads", NULL};
    char *query = s3_query(1, kv);
    if (!query) { s3_error_set(err, 0, "OutOfMemory", "out of memory"); return false; }
    s3_req r = {.method = "POST", .key = key, .query = query,
                .content_type = content_type ? content_type : "application/octet-stream"};
    bool ok = s3_perform(c, &r, err);
    free(query);
    if (ok) {
        char id[1024];
        const char *p = r.out.p ? r.out.p : "";
        if (!s3_xml_text(p, p + r.out.len, "UploadId", id, sizeof id) || !*id) {
            s3_error_set(err, r.status, "BadResponse", "no UploadId in S3's answer");
            ok = false;
        } else if (!(*upload_id = strdup(id))) {
            s3_error_set(err, 0, "OutOfMemory", "out of memory");
            ok = false;
        }
    }
    s3_buf_free(&r.out);
    return ok;
}

bool s3_mpu_upload_part(s3_client *c, const char *key, const char *upload_id, int number,
                        const void *data, size_t len, char etag[S3_ETAG_MAX], s3_error *err)
{
    char num[16];
    snprintf(num, sizeof num, "%d", number);
    const char *kv[4] = {"partNumber", num, "uploadId", upload_id};
    char *query = s3_query(2, kv);
    if (!query) { s3_error_set(err, 0, "OutOfMemory", "out of memory"); return false; }
    s3_object_info info = {0};
    s3_req r = {.method = "PUT", .key = key, .query = query, .body = data, .body_len = len,
                .info = &info};
    bool ok = s3_perform(c, &r, err);
    free(query);
    s3_buf_free(&r.out);
    if (ok && !info.etag[0]) {
        s3_error_set(err, r.status, "BadResponse", "no ETag for an uploaded part");
        ok = false;
    }
    if (ok) snprintf(etag, S3_ETAG_MAX, "%s", info.etag);
    return ok && fault_point("s3.part_uploaded");
}

bool s3_mpu_complete(s3_client *c, const char *key, const char *upload_id,
                     const s3_part *parts, int nparts, s3_error *err)
{
    s3_buf body = {0};
    char num[16];
    s3_buf_adds(&body, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for (int i = 0; i < nparts; i++) {
        snprintf(num, sizeof num, "%d", parts[i].number);
        s3_buf_adds(&body, "<Part><PartNumber>");
        s3_buf_adds(&body, num);
        s3_buf_adds(&body, "</PartNumber><ETag>");
        s3_xml_escape(&body, parts[i].etag);
        s3_buf_adds(&body, "</ETag></Part>");
    }
    s3_buf_adds(&body, "</CompleteMultipartUpload>");
    const char *kv[2] = {"uploadId", upload_id};
    char *query = s3_query(1, kv);
    if (body.oom || !query) {
        s3_buf_free(&body);
        free(query);
        s3_error_set(err, 0, "OutOfMemory", "out of memory");
        return false;
    }
    s3_req r = {.method = "POST", .key = key, .query = query, .body = body.p, .body_len = body.len,
                .content_type = "application/xml", .error_in_200 = true};
    bool ok = s3_perform(c, &r, err);
    free(query);
    s3_buf_free(&body);
    s3_buf_free(&r.out);
    return ok;
}

bool s3_mpu_abort(s3_client *c, const char *key, const char *upload_id, s3_error *err)
{
    const char *kv[2] = {"uploadId", upload_id};
    char *query = s3_query(1, kv);
    if (!query) { s3_error_set(err, 0, "OutOfMemory", "out of memory"); return false; }
    s3_req r = {.method = "DELETE", .key = key, .query = query};
    bool ok = s3_perform(c, &r, err);
    free(query);
    s3_buf_free(&r.out);
    /* Already gone (completed or aborted before) is what abort wants. */
    if (!ok && err && err->status == 404) ok = true;
    return ok;
}

/* ------------------------------------------------------------ the stream */

typedef enum { SLOT_FREE, SLOT_FILLING, SLOT_UPLOADING, SLOT_DONE } slot_state;

typedef struct part_slot {
    struct s3_multipart *m;
    unsigned char *buf;
    size_t len, cap;
    int number;                  /* the part it holds, once UPLOADING */
    slot_state state;            /* UPLOADING -> DONE by the part thread, under m->lock */
    pthread_t thread;
    bool ok;                     /* the thread's result, read once DONE */
    s3_error err;
    char etag[S3_ETAG_MAX];
} part_slot;

struct s3_multipart {
    s3_client *c;
    char *key, *content_type;
    char *upload_id;             /* NULL until the first part goes; then fixed */
    size_t part_size;
    int nslots;                  /* parts_in_flight */
    part_slot *slots;
    part_slot *cur;              /* the slot being filled, or NULL */
    pthread_mutex_t lock;        /* guards the slots' state (and ok/err/etag once DONE) */
    pthread_cond_t done;         /* a slot became DONE */
    int uploading;               /* slots UPLOADING or DONE but not yet collected */
    s3_part *parts;              /* parts[i] is part i + 1 */
    int nparts, parts_cap;       /* parts handed out; capacity of parts[] */
    uint64_t total;
    bool failed;
    s3_error err;                /* why, once failed */
};

s3_multipart *s3_multipart_begin(s3_client *c, const char *key, const char *content_type)
{
    s3_multipart *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->c = c;
    m->part_size = s3_client_part_size(c);
    m->nslots = c->parts_in_flight;
    m->slots = calloc((size_t)m->nslots, sizeof *m->slots);
    m->key = strdup(key);
    m->content_type = strdup(content_type && *content_type ? content_type : "application/octet-stream");
    if (!m->slots || !m->key || !m->content_type || !*key) {
        free(m->slots); free(m->key); free(m->content_type); free(m);
        return NULL;
    }
    for (int i = 0; i < m->nslots; i++) m->slots[i].m = m;
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->done, NULL);
    return m;
}

uint64_t s3_multipart_size(const s3_multipart *m) { return m->total; }

static void fail(s3_multipart *m, const s3_error *e)
{
    if (m->failed) return;
    m->failed = true;
    m->err = *e;
}

static bool failed(s3_multipart *m, s3_error *err)
{
    if (!m->failed) return false;
    if (err) *err = m->err;
    return true;
}

static void *part_thread(void *arg)
{
    part_slot *s = arg;
    s3_multipart *m = s->m;
    s3_error e = {0};
    char etag[S3_ETAG_MAX];
    bool ok = s3_mpu_upload_part(m->c, m->key, m->upload_id, s->number, s->buf, s->len, etag, &e);
    pthread_mutex_lock(&m->lock);
    s->ok = ok;
    s->err = e;
    if (ok) memcpy(s->etag, etag, sizeof etag);
    s->state = SLOT_DONE;
    pthread_cond_broadcast(&m->done);
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

/* Collects every DONE slot (m->lock held): its ETag into parts[], or its
 * error into the stream's. */
static void collect_locked(s3_multipart *m)
{
    for (int i = 0; i < m->nslots; i++) {
        part_slot *s = &m->slots[i];
        if (s->state != SLOT_DONE) continue;
        pthread_join(s->thread, NULL);   /* it only returns after DONE */
        if (s->ok) memcpy(m->parts[s->number - 1].etag, s->etag, S3_ETAG_MAX);
        else fail(m, &s->err);
        s->state = SLOT_FREE;
        s->len = 0;
        m->uploading--;
    }
}

/* Waits until no part is in flight, collecting them all. */
static void wait_all(s3_multipart *m)
{
    pthread_mutex_lock(&m->lock);
    for (;;) {
        collect_locked(m);
        if (!m->uploading) break;
        pthread_cond_wait(&m->done, &m->lock);
    }
    pthread_mutex_unlock(&m->lock);
}

/* A slot to fill: a free one, waiting while all N are uploading.  NULL
 * when a collected part failed. */
static part_slot *free_slot(s3_multipart *m)
{
    part_slot *found = NULL;
    pthread_mutex_lock(&m->lock);
    for (;;) {
        collect_locked(m);
        if (m->failed) break;
        for (int i = 0; i < m->nslots && !found; i++)
            if (m->slots[i].state == SLOT_FREE) found = &m->slots[i];
        if (found) break;
        pthread_cond_wait(&m->done, &m->lock);
    }
    if (found) found->state = SLOT_FILLING;
    pthread_mutex_unlock(&m->lock);
    return found;
}

/* Sends the slot being filled as the next part: in this thread with one
 * slot, else on a thread of its own (m->cur is then NULL). */
static bool send_current(s3_multipart *m, s3_error *err)
{
    part_slot *s = m->cur;
    if (!m->upload_id && !s3_mpu_create(m->c, m->key, m->content_type, &m->upload_id, err))
        return false;
    if (m->nparts == MAX_PARTS) {
        s3_error_set(err, 0, "TooLarge", "the object needs more than 10,000 parts");
        return false;
    }
    if (m->nparts == m->parts_cap) {
        int cap = m->parts_cap ? m->parts_cap * 2 : 16;
        s3_part *p = realloc(m->parts, (size_t)cap * sizeof *p);
        if (!p) { s3_error_set(err, 0, "OutOfMemory", "out of memory"); return false; }
        m->parts = p;
        m->parts_cap = cap;
    }
    s3_part *part = &m->parts[m->nparts];
    *part = (s3_part){.number = m->nparts + 1, .size = s->len};
    s->number = part->number;
    if (m->nslots == 1) {
        if (!s3_mpu_upload_part(m->c, m->key, m->upload_id, part->number, s->buf, s->len, part->etag, err))
            return false;
        m->nparts++;
        s->len = 0;
        return true;
    }
    m->nparts++;
    pthread_mutex_lock(&m->lock);
    s->state = SLOT_UPLOADING;
    m->uploading++;
    int rc = pthread_create(&s->thread, NULL, part_thread, s);
    if (rc) {
        s->state = SLOT_FILLING;
        m->uploading--;
    }
    pthread_mutex_unlock(&m->lock);
    if (rc) {
        m->nparts--;
        s3_error_set(err, 0, "OutOfMemory", "cannot start a part upload thread");
        return false;
    }
    m->cur = NULL;
    return true;
}

bool s3_multipart_append(s3_multipart *m, const void *data, size_t len, s3_error *err)
{
    if (err) *err = (s3_error){0};
    if (failed(m, err)) return false;
    const unsigned char *p = data;
    s3_error e = {0};
    while (len) {
        if (!m->cur && !(m->cur = free_slot(m))) return failed(m, err);
        part_slot *s = m->cur;
        if (s->len == m->part_size) {
            /* Sent only once another byte comes: an object of exactly one
             * part is a single PUT. */
            if (!send_current(m, &e)) { fail(m, &e); return failed(m, err); }
            continue;
        }
        if (s->len == s->cap) {
            /* The first buffer grows towards one part, so a small object
             * never costs a whole one; once a part went, all are whole. */
            size_t cap = m->nparts ? m->part_size : s->cap ? s->cap * 2 : 64 * 1024;
            if (cap > m->part_size) cap = m->part_size;
            unsigned char *b = realloc(s->buf, cap);
            if (!b) {
                s3_error_set(&e, 0, "OutOfMemory", "out of memory");
                fail(m, &e);
                return failed(m, err);
            }
            s->buf = b;
            s->cap = cap;
        }
        size_t n = s->cap - s->len < len ? s->cap - s->len : len;
        memcpy(s->buf + s->len, p, n);
        s->len += n;
        m->total += n;
        p += n;
        len -= n;
    }
    return true;
}

static void free_multipart(s3_multipart *m)
{
    for (int i = 0; i < m->nslots; i++) free(m->slots[i].buf);
    pthread_cond_destroy(&m->done);
    pthread_mutex_destroy(&m->lock);
    free(m->key); free(m->content_type); free(m->upload_id);
    free(m->slots); free(m->parts);
    free(m);
}

void s3_multipart_abort(s3_multipart *m)
{
    if (!m) return;
    wait_all(m);   /* no part may land after the abort, no thread outlive m */
    if (m->upload_id) {
        s3_error e;
        if (!s3_mpu_abort(m->c, m->key, m->upload_id, &e)) {
            char text[400];
            log_warn("s3 multipart abort failed: the parts stay until a lifecycle rule expires them",
                     "key", m->key, "error", s3_error_text(&e, text, sizeof text), NULL);
        }
    }
    free_multipart(m);
}

s3_multipart *s3_multipart_resume(s3_client *c, const char *key, const char *upload_id,
                                  const s3_part *parts, int nparts, const void *tail,
                                  size_t tail_len)
{
    if (nparts < 0 || nparts >= MAX_PARTS || !upload_id || !*upload_id) return NULL;
    s3_multipart *m = s3_multipart_begin(c, key, NULL);
    if (!m) return NULL;
    if (!(m->upload_id = strdup(upload_id)) ||
        (nparts && !(m->parts = malloc((size_t)nparts * sizeof *parts)))) {
        free_multipart(m);
        return NULL;
    }
    if (nparts) memcpy(m->parts, parts, (size_t)nparts * sizeof *parts);
    m->nparts = m->parts_cap = nparts;
    /* The tail is simply the first bytes appended: with upload_id set, every
     * buffer is a whole part's, and it goes as part nparts + 1. */
    s3_error e;
    if (tail_len && !s3_multipart_append(m, tail, tail_len, &e)) {
        free_multipart(m);
        return NULL;
    }
    m->total = 0;
    return m;
}

bool s3_multipart_checkpoint(s3_multipart *m, const s3_part **parts, int *nparts,
                             const void **tail, size_t *tail_len, s3_error *err)
{
    if (err) *err = (s3_error){0};
    s3_error e = {0};
    if (!failed(m, NULL) && m->cur && m->cur->len == m->part_size && !send_current(m, &e))
        fail(m, &e);
    wait_all(m);
    if (failed(m, err)) return false;
    *parts = m->parts;
    *nparts = m->nparts;
    *tail = m->cur && m->cur->buf ? m->cur->buf : (const void *)"";
    *tail_len = m->cur ? m->cur->len : 0;
    return true;
}

void s3_multipart_release(s3_multipart *m)
{
    if (!m) return;
    wait_all(m);
    free_multipart(m);
}

bool s3_multipart_complete(s3_multipart *m, s3_error *err)
{
    if (err) *err = (s3_error){0};
    s3_error e = {0};
    if (!failed(m, NULL) && m->cur && m->cur->len && !send_current(m, &e)) fail(m, &e);
    wait_all(m);
    bool ok = !failed(m, err) && s3_mpu_complete(m->c, m->key, m->upload_id, m->parts, m->nparts, err);
    free_multipart(m);
    return ok;
}

bool s3_multipart_finish(s3_multipart *m, char etag[S3_ETAG_MAX], s3_error *err)
{
    if (err) *err = (s3_error){0};
    if (failed(m, err)) {
        s3_multipart_abort(m);
        return false;
    }
    bool ok;
    if (!m->upload_id) {
        /* Smaller than a part (or exactly one): one PUT, no upload to clean. */
        part_slot *s = m->cur;
        ok = s3_put(m->c, m->key, s && s->buf ? s->buf : (const unsigned char *)"", s ? s->len : 0,
                    m->content_type, etag, err);
        free_multipart(m);
        return ok;
    }
    s3_error e = {0};
    if (m->cur && m->cur->len && !send_current(m, &e)) fail(m, &e);
    wait_all(m);
    ok = !failed(m, err) && s3_mpu_complete(m->c, m->key, m->upload_id, m->parts, m->nparts, err);
    if (!ok) {
        s3_multipart_abort(m);
        return false;
    }
    if (etag) etag[0] = '\0';   /* a multipart ETag is not the bytes' MD5: HEAD has it */
    free_multipart(m);
    return true;
}
