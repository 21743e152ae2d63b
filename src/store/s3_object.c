/* s3_object.c — the object calls of s3_client.h: bucket creation, put,
 * head, get, delete, list, and delete by prefix.
 *
 * Each is a thin description of one S3 request (s3_req) handed to
 * s3_perform(), which signs, retries and reports failures; what is left
 * here is what each call means: which status counts as success, and what
 * the answer's XML says.
 */
#include "store/s3_request.h"

#include <errno.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool bad_key(const char *key, s3_error *err)
{
    if (key && *key) return false;
    if (err) *err = (s3_error){0};
    s3_error_set(err, 0, "BadKey", "an object key must not be empty");
    return true;
}

bool s3_create_bucket(s3_client *c, s3_error *err)
{
    s3_buf body = {0};
    if (strcmp(c->region, "us-east-1") != 0) {
        s3_buf_adds(&body, "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                           "<LocationConstraint>");
        s3_xml_escape(&body, c->region);
        s3_buf_adds(&body, "</LocationConstraint></CreateBucketConfiguration>");
        if (body.oom) { s3_error_set(err, 0, "OutOfMemory", "out of memory"); return false; }
    }
    s3_req r = {.method = "PUT", .body = body.p ? body.p : "", .body_len = body.len,
                .content_type = body.len ? "application/xml" : NULL};
    bool ok = s3_perform(c, &r, err);
    if (!ok && err && (strcmp(err->code, "BucketAlreadyOwnedByYou") == 0 ||
                       /* s3rver, and S3 in us-east-1 with an old owner */
                       (err->status == 409 && strcmp(err->code, "BucketAlreadyExists") == 0)))
        ok = true;
    s3_buf_free(&r.out);
    s3_buf_free(&body);
    return ok;
}

static void copy_etag(char etag[S3_ETAG_MAX], const s3_object_info *info)
{
    if (etag) snprintf(etag, S3_ETAG_MAX, "%s", info->etag);
}

bool s3_put(s3_client *c, const char *key, const void *data, size_t len,
            const char *content_type, char etag[S3_ETAG_MAX], s3_error *err)
{
    if (bad_key(key, err)) return false;
    s3_object_info info = {0};
    s3_req r = {.method = "PUT", .key = key, .body = data ? data : "", .body_len = len,
                .content_type = content_type, .info = &info};
    bool ok = s3_perform(c, &r, err);
    s3_buf_free(&r.out);
    if (ok) copy_etag(etag, &info);
    return ok;
}

bool s3_put_stream(s3_client *c, const char *key, uint64_t len, s3_read_fn read, void *arg,
                   const char *content_type, char etag[S3_ETAG_MAX], s3_error *err)
{
    if (bad_key(key, err)) return false;
    s3_object_info info = {0};
    s3_req r = {.method = "PUT", .key = key, .read = read, .read_arg = arg, .read_len = len,
                .content_type = content_type, .info = &info};
    bool ok = s3_perform(c, &r, err);
    s3_buf_free(&r.out);
    if (ok) copy_etag(etag, &info);
    return ok;
}

static ssize_t read_fd(void *arg, uint64_t offset, void *buf, size_t cap)
{
    int fd = *(int *)arg;
    for (;;) {
        ssize_t n = pread(fd, buf, cap, (off_t)offset);
        if (n >= 0 || errno != EINTR) return n > 0 ? n : -1;   /* 0: the file is short */
    }
}

bool s3_put_fd(s3_client *c, const char *key, int fd, uint64_t len,
               const char *content_type, char etag[S3_ETAG_MAX], s3_error *err)
{
    return s3_put_stream(c, key, len, read_fd, &fd, content_type, etag, err);
}

bool s3_head(s3_client *c, const char *key, s3_object_info *info, s3_error *err)
{
    if (bad_key(key, err)) return false;
    s3_req r = {.method = "HEAD", .key = key, .info = info};
    bool ok = s3_perform(c, &r, err);
    s3_buf_free(&r.out);
    return ok;
}

bool s3_head_probe(s3_client *c, const char *key, long timeout_ms, s3_error *err)
{
    if (bad_key(key, err)) return false;
    s3_object_info info;
    s3_req r = {.method = "HEAD", .key = key, .info = &info, .probe_ms = timeout_ms};
    bool ok = s3_perform(c, &r, err);
    s3_buf_free(&r.out);
    return ok;
}

bool s3_get(s3_client *c, const char *key, bool has_range, uint64_t first, uint64_t last,
            s3_write_fn write, void *arg, s3_object_info *info, s3_error *err)
{
    if (bad_key(key, err)) return false;
    s3_req r = {.method = "GET", .key = key, .has_range = has_range, .first = first,
                .last = last, .sink = write, .sink_arg = arg, .info = info};
    bool ok = s3_perform(c, &r, err);
    s3_buf_free(&r.out);
    return ok;
}

static bool write_fd(void *arg, const void *data, size_t len)
{
    int fd = *(int *)arg;
    const char *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

bool s3_get_fd(s3_client *c, const char *key, bool has_range, uint64_t first, uint64_t last,
               int fd, s3_object_info *info, s3_error *err)
{
    return s3_get(c, key, has_range, first, last, write_fd, &fd, info, err);
}

bool s3_delete(s3_client *c, const char *key, s3_error *err)
{
    if (bad_key(key, err)) return false;
    s3_req r = {.method = "DELETE", .key = key};
    bool ok = s3_perform(c, &r, err);
    s3_buf_free(&r.out);
    /* S3 answers 204 for a key that is not there; some services say 404. */
    if (!ok && err && err->status == 404 && strcmp(err->code, "NoSuchBucket") != 0) ok = true;
    return ok;
}

/* "2009-10-12T17:50:30.000Z" (ListObjectsV2's LastModified): 0 if not so. */
static time_t iso8601_time(const char *s)
{
    struct tm tm = {0};
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    return rest ? timegm(&tm) : 0;
}

/* One ListObjectsV2 page: each <Contents> to fn; *token gets the next
 * page's continuation token, or is emptied on the last page. */
static bool list_page(s3_client *c, const char *prefix, char *token, size_t token_cap,
                      s3_list_fn fn, void *arg, bool *stopped, s3_error *err)
{
    char max_keys[16];
    snprintf(max_keys, sizeof max_keys, "%d", c->list_page_size);
    const char *kv[8] = {"list-type", "2", "max-keys", max_keys, "prefix", prefix,
                         "continuation-token", token};
    char *query = s3_query(*token ? 4 : 3, kv);
    if (!query) { s3_error_set(err, 0, "OutOfMemory", "out of memory"); return false; }
    s3_req r = {.method = "GET", .query = query};
    bool ok = s3_perform(c, &r, err);
    free(query);
    if (!ok) { s3_buf_free(&r.out); return false; }
    const char *p = r.out.p ? r.out.p : "", *end = p + r.out.len, *after;
    size_t len;
    const char *item;
    char key[2048], size_s[32], when[64];
    while (!*stopped && (item = s3_xml_find(p, end, "Contents", &len, &after))) {
        if (!s3_xml_text(item, item + len, "Key", key, sizeof key)) {
            s3_error_set(err, r.status, "BadResponse", "a listed key is missing or too long");
            s3_buf_free(&r.out);
            return false;
        }
        uint64_t size = 0;
        if (s3_xml_text(item, item + len, "Size", size_s, sizeof size_s)) size = strtoull(size_s, NULL, 10);
        time_t modified = 0;
        if (s3_xml_text(item, item + len, "LastModified", when, sizeof when))
            modified = iso8601_time(when);
        if (!fn(arg, key, size, modified)) *stopped = true;
        p = after;
    }
    char truncated[8] = "";
    s3_xml_text(r.out.p ? r.out.p : "", end, "IsTruncated", truncated, sizeof truncated);
    bool more = strcmp(truncated, "true") == 0;
    if (more && !s3_xml_text(r.out.p, end, "NextContinuationToken", token, token_cap)) {
        s3_error_set(err, r.status, "BadResponse", "a truncated list without a continuation token");
        s3_buf_free(&r.out);
        return false;
    }
    if (!more) *token = '\0';
    s3_buf_free(&r.out);
    return true;
}

bool s3_list(s3_client *c, const char *prefix, s3_list_fn fn, void *arg, s3_error *err)
{
    char token[1024] = "";
    bool stopped = false;
    if (err) *err = (s3_error){0};
    do {
        if (!list_page(c, prefix ? prefix : "", token, sizeof token, fn, arg, &stopped, err)) return false;
    } while (*token && !stopped);
    return true;
}

bool s3_keys_add(void *arg, const char *key, uint64_t size, time_t modified)
{
    s3_keys *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **k = realloc(l->keys, cap * sizeof *k);
        if (!k) { l->oom = true; return false; }
        l->keys = k;
        l->cap = cap;
    }
    if (!(l->keys[l->n] = strdup(key))) { l->oom = true; return false; }
    l->n++;
    return true;
}

void s3_keys_free(s3_keys *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->keys[i]);
    free(l->keys);
}

/* Lists first, then deletes one by one: an asset has a handful of objects
 * (its blob and renditions), and deleting while listing would move the
 * continuation token's ground. */
bool s3_delete_prefix(s3_client *c, const char *prefix, size_t *deleted, s3_error *err)
{
    if (deleted) *deleted = 0;
    if (!prefix || !*prefix) {
        if (err) *err = (s3_error){0};
        s3_error_set(err, 0, "BadKey", "refusing to delete by an empty prefix");
        return false;
    }
    s3_keys l = {0};
    bool ok = s3_list(c, prefix, s3_keys_add, &l, err);
    if (ok && l.oom) { s3_error_set(err, 0, "OutOfMemory", "out of memory"); ok = false; }
    for (size_t i = 0; ok && i < l.n; i++) {
        ok = s3_delete(c, l.keys[i], err);
        if (ok && deleted) (*deleted)++;
    }
    s3_keys_free(&l);
    return ok;
}
