/* s3_multipart.c — multipart uploads: the four S3 calls (s3_mpu_*), and
 * s3_multipart, which turns a stream of appends into parts.
 *
 * Memory: an s3_multipart holds one part buffer that grows to the part
 * size and no more; a full buffer is uploaded (synchronously, with the
 * engine's retries) before append() takes another byte.  So an upload of
 * any size costs about one part of memory, and nothing touches local disk.
 *
 * Invariants:
 *   - every part but the last is exactly part_size bytes (>= 5 MiB, S3's
 *     minimum), so S3 never refuses the completion for a small part;
 *   - the S3 upload is created only with the first full part, so an object
 *     smaller than one part is a single PUT and leaves no upload behind;
 *   - once an S3 upload exists, the object ends completed or aborted:
 *     finish() aborts it when completing fails, abort() always does.
 */
#include "store/s3_request.h"

#include "util/log.h"

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
    return ok;
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

struct s3_multipart {
    s3_client *c;
    char *key, *content_type;
    char *upload_id;             /* NULL until the first part goes */
    unsigned char *buf;          /* the part being filled */
    size_t len, cap, part_size;
    s3_part *parts;
    int nparts, parts_cap;
    uint64_t total;
    bool failed;
};

s3_multipart *s3_multipart_begin(s3_client *c, const char *key, const char *content_type)
{
    s3_multipart *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->c = c;
    m->part_size = s3_client_part_size(c);
    m->key = strdup(key);
    m->content_type = strdup(content_type && *content_type ? content_type : "application/octet-stream");
    if (!m->key || !m->content_type || !*key) {
        free(m->key); free(m->content_type); free(m);
        return NULL;
    }
    return m;
}

uint64_t s3_multipart_size(const s3_multipart *m) { return m->total; }

static bool upload_buffered_part(s3_multipart *m, s3_error *err)
{
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
    part->number = m->nparts + 1;
    if (!s3_mpu_upload_part(m->c, m->key, m->upload_id, part->number, m->buf, m->len, part->etag, err))
        return false;
    m->nparts++;
    m->len = 0;
    return true;
}

bool s3_multipart_append(s3_multipart *m, const void *data, size_t len, s3_error *err)
{
    if (err) *err = (s3_error){0};
    if (m->failed) { s3_error_set(err, 0, "Failed", "an earlier append failed"); return false; }
    const unsigned char *p = data;
    while (len) {
        if (m->len == m->part_size && !upload_buffered_part(m, err)) { m->failed = true; return false; }
        if (m->len == m->cap) {
            /* Grow towards one part: a small object never costs a whole one. */
            size_t cap = m->cap ? m->cap * 2 : 64 * 1024;
            if (cap > m->part_size) cap = m->part_size;
            unsigned char *b = realloc(m->buf, cap);
            if (!b) { s3_error_set(err, 0, "OutOfMemory", "out of memory"); m->failed = true; return false; }
            m->buf = b;
            m->cap = cap;
        }
        size_t n = m->cap - m->len < len ? m->cap - m->len : len;
        memcpy(m->buf + m->len, p, n);
        m->len += n;
        m->total += n;
        p += n;
        len -= n;
    }
    return true;
}

static void free_multipart(s3_multipart *m)
{
    free(m->key); free(m->content_type); free(m->upload_id);
    free(m->buf); free(m->parts);
    free(m);
}

void s3_multipart_abort(s3_multipart *m)
{
    if (!m) return;
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

bool s3_multipart_finish(s3_multipart *m, char etag[S3_ETAG_MAX], s3_error *err)
{
    if (err) *err = (s3_error){0};
    if (m->failed) {
        s3_error_set(err, 0, "Failed", "an earlier append failed");
        s3_multipart_abort(m);
        return false;
    }
    bool ok;
    if (!m->upload_id) {
        /* Smaller than a part (or exactly one): one PUT, no upload to clean. */
        ok = s3_put(m->c, m->key, m->buf ? m->buf : (const unsigned char *)"", m->len,
                    m->content_type, etag, err);
        free_multipart(m);
        return ok;
    }
    ok = (m->len == 0 || upload_buffered_part(m, err)) &&
         s3_mpu_complete(m->c, m->key, m->upload_id, m->parts, m->nparts, err);
    if (!ok) {
        s3_multipart_abort(m);
        return false;
    }
    if (etag) etag[0] = '\0';   /* a multipart ETag is not the bytes' MD5: HEAD has it */
    free_multipart(m);
    return true;
}
