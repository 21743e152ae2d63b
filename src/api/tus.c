/* tus.c — /v1/tus: resumable uploads, tus 1.0 (https://tus.io/protocols/
 * resumable-upload), with the extensions creation, creation-with-upload,
 * creation-defer-length, expiration, checksum (sha1, sha256), termination
 * and concatenation.  The domain (lease, completion) is core/tus.h; the
 * creation (POST) is api/tus_create.c; what both share, api/tus_internal.h.
 *
 *   OPTIONS /v1/tus[/], /v1/tus/{id}   capabilities; CORS preflight (no key)
 *   POST    /v1/tus[/]                 create (tus_create.c)
 *   HEAD    /v1/tus/{id}               the committed offset
 *   PATCH   /v1/tus/{id}               bytes at Upload-Offset
 *   DELETE  /v1/tus/{id}               terminate
 *
 * A write (PATCH, or POST with a body) streams like POST /v1/assets: the
 * lease is taken and the object opened when the headers arrive
 * (tus_write_open), each chunk is appended and checksummed on the HTTP
 * thread (tus_write_data), and the commit — checksum verdict, fsync, the
 * new offset in the database, and when the last byte came, the asset —
 * runs on the work pool (tus_commit_work).  The offset is acknowledged only
 * after all of it.  The upload's own SHA-256 runs on over its PATCHes
 * (core/tus_digest.h), so completion need not read it all back.
 * A write its client cut off keeps what arrived: the same commit runs for
 * those bytes (salvage_work), unless the chunk carried a checksum.  Bytes
 * of a request the server died under are never acknowledged; the next
 * writer truncates them away (store_append_open).
 *
 * Known debt: taking the lease (and a POST-with-upload's INSERT) is one short
 * write transaction on the HTTP thread, before the body: the server cannot
 * yet suspend a request between its headers and its body.
 *
 * Every reply carries Tus-Resumable; a finished upload's replies also name
 * the asset (Asset-Id, Asset-Location) — its Location stays valid.
 */
#include "api/tus_internal.h"
#include "util/encode.h"
#include "util/fault.h"
#include "util/parse.h"
#include "util/timefmt.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const http_cors tus_cors = {
    "POST, HEAD, PATCH, DELETE, OPTIONS",
    "Authorization, Content-Type, Tus-Resumable, Upload-Length, Upload-Defer-Length, "
    "Upload-Metadata, Upload-Offset, Upload-Concat, Upload-Checksum, X-Request-Id",
    "Location, Upload-Offset, Upload-Length, Upload-Defer-Length, Upload-Metadata, "
    "Upload-Expires, Upload-Concat, Tus-Resumable, Tus-Version, Tus-Extension, Tus-Max-Size, "
    "Tus-Checksum-Algorithm, Asset-Id, Asset-Location, X-Request-Id",
};

/* ---------- replies ---------- */

void tus_error(http_req *r, int status, const char *code, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    http_reply_error(r, status, code, "%s", msg);
    http_reply_header(r, "Tus-Resumable", TUS_VERSION);
}

void tus_storage_error(http_req *r, int err, const char *message)
{
    if (store_error_is_exhausted(err)) {
        tus_error(r, 503, "overloaded", "the server is out of file descriptors; retry later");
        http_reply_header(r, "Retry-After", "1");
    } else {
        tus_error(r, 507, "storage_failed", "%s", message);
    }
}

static void header_u64(http_req *r, const char *name, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    http_reply_header(r, name, buf);
}

static void location(http_req *r, const char *id, char *out, size_t cap)
{
    char base[300];
    api_base_url(r, base, sizeof base);
    snprintf(out, cap, "%s/v1/tus/%s", base, id);
}

/* The headers that describe an upload (HEAD, and after every write). */
static void describe(http_req *r, const tus_upload *u, bool head)
{
    http_reply_header(r, "Tus-Resumable", TUS_VERSION);
    http_reply_header(r, "Cache-Control", "no-store");
    header_u64(r, "Upload-Offset", u->offset);
    if (head) {
        if (u->length >= 0) header_u64(r, "Upload-Length", (uint64_t)u->length);
        else http_reply_header(r, "Upload-Defer-Length", "1");
        if (u->metadata[0]) http_reply_header(r, "Upload-Metadata", u->metadata);
        if (u->concat == TUS_PARTIAL) http_reply_header(r, "Upload-Concat", "partial");
        if (u->concat == TUS_FINAL) {
            char concat[sizeof u->parts + TUS_PARTS_MAX * 9 + 8] = "final;";
            size_t n = strlen(concat);
            for (const char *p = u->parts; *p && n < sizeof concat;) {
                size_t len = strcspn(p, " ");
                n += (size_t)snprintf(concat + n, sizeof concat - n, "%s/v1/tus/%.*s",
                                      n > 6 ? " " : "", (int)len, p);
                p += len + (p[len] == ' ');
            }
            http_reply_header(r, "Upload-Concat", concat);
        }
    }
    if (u->state == TUS_COMPLETE) {
        char where[64];
        snprintf(where, sizeof where, "/v1/assets/%s", u->id);
        http_reply_header(r, "Asset-Id", u->id);
        http_reply_header(r, "Asset-Location", where);
    } else {
        char date[64];
        time_t t = (time_t)(u->expires_ms / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        http_reply_header(r, "Upload-Expires", date);
    }
}

void tus_reply_done_failure(http_req *r, tus_done d)
{
    if (d == TUS_DONE_DB) tus_error(r, 503, "database_unavailable", "could not record the asset");
    else tus_error(r, 507, "storage_failed", "could not store the upload");
}

/* ---------- request checks ---------- */

bool tus_check_version(http_req *r)
{
    const char *v = http_req_header(r, "Tus-Resumable");
    if (v && strcmp(v, TUS_VERSION) == 0) return true;
    tus_error(r, 412, "unsupported_version", "send Tus-Resumable: " TUS_VERSION);
    http_reply_header(r, "Tus-Version", TUS_VERSION);
    return false;
}

bool tus_is_octets(http_req *r)
{
    const char *type = http_req_header(r, "Content-Type");
    if (type && strncasecmp(type, OCTETS, strlen(OCTETS)) == 0 &&
        (type[strlen(OCTETS)] == '\0' || type[strlen(OCTETS)] == ';'))
        return true;
    tus_error(r, 415, "unsupported_media_type", "send Content-Type: " OCTETS);
    return false;
}

bool tus_has_body(http_req *r)
{
    const char *length = http_req_header(r, "Content-Length");
    return (length && strcmp(length, "0") != 0) || http_req_header(r, "Transfer-Encoding");
}

/* ---------- a write: PATCH, or a POST with its first bytes ---------- */

static void write_destroy(tus_write *w)
{
    store_append_abort(w->obj);
    tus_lease_end(w->lease);
    EVP_MD_CTX_free(w->sum);
    EVP_MD_CTX_free(w->whole);
    free(w->parts);
    free(w);
}

/* A write cut off mid-body (the client went away): what arrived is kept,
 * as tusd does, so a client that sends a whole file in one PATCH resumes
 * from where its connection broke rather than from the PATCH's start.  The
 * bytes are committed and the offset advanced as for a finished PATCH, never
 * past the end (completion waits for the next HEAD or PATCH).  On the pool;
 * w is this function's. */
static void salvage_work(void *arg)
{
    tus_write *w = arg;
    app *a = w->app;
    uint64_t offset = w->up.offset + w->received;
    db_conn *c = NULL;
    /* A lease that ran out may be someone else's now: their bytes, then. */
    bool kept = tus_lease_valid(w->lease, time_now_ms()) && store_append_commit(w->obj) &&
                (c = db_acquire(a->db)) != NULL &&
                db_tus_advance(c, w->up.id, tus_lease_token(w->lease), offset, w->length,
                               time_now_ms() + a->tus_expiry_ms, false) == DB_OK;
    if (kept) {
        tus_lease_released(w->lease);   /* the advance gave it back */
        tus_digest_save(a->tus_digests, w->up.id, offset, w->whole);
        w->whole = NULL;
    } else store_append_abort(w->obj);
    w->obj = NULL;
    db_release(a->db, c);
    write_destroy(w);
}

static void write_free(void *p)
{
    tus_write *w = p;
    /* Not with a checksum: a part of the chunk cannot be verified. */
    if (w->obj && w->lease && !w->failed && !w->sum && w->received > 0 &&
        workpool_submit(w->app->pool, salvage_work, w))
        return;
    write_destroy(w);
}

tus_write *tus_write_new(http_req *r)
{
    tus_write *w = calloc(1, sizeof *w);
    if (!w) tus_error(r, 500, "internal", "out of memory");
    else {
        w->app = http_req_app(r);
        http_req_set_data(r, w, write_free);
    }
    return w;
}

/* Upload-Checksum: "<algorithm> <base64>"; false with a 400 if malformed. */
bool tus_parse_checksum(http_req *r, tus_write *w)
{
    const char *h = http_req_header(r, "Upload-Checksum");
    if (!h) return true;
    const EVP_MD *md = strncmp(h, "sha1 ", 5) == 0     ? EVP_sha1()
                       : strncmp(h, "sha256 ", 7) == 0 ? EVP_sha256()
                                                       : NULL;
    const char *b64 = md ? strchr(h, ' ') + 1 : NULL;
    if (!md) {
        tus_error(r, 400, "checksum_algorithm", "Upload-Checksum algorithms: sha1, sha256");
        return false;
    }
    w->expect_len = tus_b64_decode(b64, strlen(b64), w->expect, sizeof w->expect);
    if (w->expect_len != EVP_MD_size(md)) {
        tus_error(r, 400, "invalid_checksum", "Upload-Checksum must be the base64 digest");
        return false;
    }
    if (!(w->sum = EVP_MD_CTX_new()) || EVP_DigestInit_ex(w->sum, md, NULL) != 1) {
        tus_error(r, 500, "internal", "cannot start a checksum");
        return false;
    }
    return true;
}

/* The lease is ours: open the object at the committed offset. */
bool tus_write_open(http_req *r, tus_write *w, const char *token, int64_t until)
{
    app *a = http_req_app(r);
    /* Without a lease object the lock is simply left to run out. */
    if (!(w->lease = tus_lease_new(a->db, a->pool, w->up.id, token, until, a->tus_lease_ms)) ||
        !(w->obj = store_append_open(a->store, w->up.id, w->up.offset))) {
        tus_storage_error(r, errno, "cannot open the upload's bytes");
        return false;
    }
    w->whole = tus_digest_get(a->tus_digests, w->up.id, w->up.offset);
    return true;
}

bool tus_write_data(http_req *r, const char *data, size_t len)
{
    app *a = http_req_app(r);
    tus_write *w = http_req_data(r);
    uint64_t limit = w->length >= 0 ? (uint64_t)w->length : a->max_upload;
    if (len > limit - w->up.offset - w->received) {
        tus_error(r, 413, "payload_too_large", "the upload is %llu bytes long",
                  (unsigned long long)limit);
        w->failed = true;
        return false;
    }
    if (!tus_lease_valid(w->lease, time_now_ms())) {
        tus_error(r, 423, "locked", "this request lost the upload's lock; HEAD, then resume");
        w->failed = true;
        return false;
    }
    if (!store_append_write(w->obj, data, len)) {
        tus_error(r, 507, api_storage_code(errno), "could not store the bytes");
        w->failed = true;
        return false;
    }
    if (w->sum) EVP_DigestUpdate(w->sum, data, len);
    if (w->whole) EVP_DigestUpdate(w->whole, data, len);
    w->received += len;
    return true;
}

/* The lease given back now, on the pool (so a client that retries at once
 * finds it free), instead of by write_free. */
static void unlock_now(db_conn *c, tus_write *w)
{
    if (c) db_tus_unlock(c, w->up.id, tus_lease_token(w->lease));
    tus_lease_released(w->lease);
}

/* Completes the upload (w->up at offset == length, lease held); false with
 * a reply on failure. */
bool tus_finish_upload(http_req *r, db_conn *c, tus_upload *u, tus_lease *lease)
{
    app *a = http_req_app(r);
    asset as;
    tus_done d = tus_complete(c, a->store, a->sniffer, a->tus_digests, u, &as);
    if (d != TUS_DONE_OK) {
        if (lease) db_tus_unlock(c, u->id, tus_lease_token(lease));
        tus_reply_done_failure(r, d);
        return false;
    }
    if (lease) tus_lease_released(lease);   /* completion cleared it */
    u->state = TUS_COMPLETE;
    hub_poke(a->hub);
    return true;
}

void tus_reply_written(http_req *r, tus_write *w)
{
    http_reply_empty(r, w->creating ? 201 : 204);
    describe(r, &w->up, false);
    if (w->creating) {
        char loc[400];
        location(r, w->up.id, loc, sizeof loc);
        http_reply_header(r, "Location", loc);
    }
}

void tus_commit_work(http_req *r)
{
    app *a = http_req_app(r);
    tus_write *w = http_req_data(r);
    store_append *obj = w->obj;
    w->obj = NULL;
    db_conn *c = db_acquire(a->db);
    uint8_t got[EVP_MAX_MD_SIZE];
    unsigned got_len = 0;
    if (w->sum && (EVP_DigestFinal_ex(w->sum, got, &got_len) != 1 ||
                   (int)got_len != w->expect_len || memcmp(got, w->expect, got_len) != 0)) {
        /* The chunk is discarded: never committed, truncated by the next write. */
        store_append_abort(obj);
        unlock_now(c, w);
        db_release(a->db, c);
        tus_error(r, 460, "checksum_mismatch", "the body does not match Upload-Checksum");
        return;
    }
    if (!store_append_commit(obj)) {
        const char *code = api_storage_code(errno);
        unlock_now(c, w);
        db_release(a->db, c);
        tus_error(r, 507, code, "could not store the bytes");
        return;
    }
    tus_upload *u = &w->up;
    uint64_t offset = u->offset + w->received;
    bool last = u->concat != TUS_PARTIAL && w->length >= 0 && offset == (uint64_t)w->length;
    int64_t expires = time_now_ms() + a->tus_expiry_ms;
    db_status st = c ? db_tus_advance(c, u->id, tus_lease_token(w->lease), offset, w->length,
                                      expires, last)
                     : DB_ERROR;
    if (st != DB_OK) {
        if (st == DB_NOT_FOUND) tus_lease_released(w->lease);
        db_release(a->db, c);
        if (st == DB_NOT_FOUND)
            tus_error(r, 423, "locked", "this request lost the upload's lock; HEAD, then resume");
        else tus_error(r, 503, "database_unavailable", "try again");
        return;
    }
    fault_point("tus.offset_recorded");   /* durable, not acknowledged */
    if (!last) tus_lease_released(w->lease);
    tus_digest_save(a->tus_digests, u->id, offset, w->whole);
    w->whole = NULL;
    u->offset = offset;
    u->length = w->length;
    u->expires_ms = expires;
    bool ok = !last || tus_finish_upload(r, c, u, w->lease);
    db_release(a->db, c);
    if (ok) tus_reply_written(r, w);
}

/* ---------- PATCH /v1/tus/{id} ---------- */

/* Replies why the lease was not taken, from the row as the attempt saw it. */
static void reply_not_locked(http_req *r, db_status st, bool full, const tus_upload *u,
                             uint64_t offset)
{
    if (st == DB_ERROR && full)
        tus_error(r, 507, "insufficient_storage", "the server's storage is full; try again later");
    else if (st == DB_ERROR) tus_error(r, 503, "database_unavailable", "try again");
    else if (st == DB_NOT_FOUND) tus_error(r, 404, "not_found", "no such upload");
    else if (u->state == TUS_COMPLETE)
        tus_error(r, 409, "upload_complete", "the upload is complete: asset %s", u->id);
    else if (u->expires_ms <= time_now_ms())
        tus_error(r, 410, "upload_expired", "the upload expired");
    else if (u->offset != offset)
        tus_error(r, 409, "offset_mismatch", "the upload's offset is %llu",
                  (unsigned long long)u->offset);
    else tus_error(r, 423, "locked", "another request is writing this upload");
    if (st == DB_OK && u->offset != offset) header_u64(r, "Upload-Offset", u->offset);
}

bool tus_patch_begin(http_req *r)
{
    app *a = http_req_app(r);
    const char *id = http_req_param(r, 0);
    uint64_t offset, length, declared;
    const char *h;
    if (!tus_check_version(r) || !tus_is_octets(r)) return false;
    if (!(h = http_req_header(r, "Upload-Offset")) || !parse_u64(h, &offset)) {
        tus_error(r, 400, "invalid_offset", "send Upload-Offset: the byte offset");
        return false;
    }
    tus_write *w = tus_write_new(r);
    if (!w || !tus_parse_checksum(r, w)) return false;
    if (!id_is_valid(id)) {
        tus_error(r, 404, "not_found", "no such upload");
        return false;
    }
    char token[TUS_TOKEN_LEN + 1];
    int64_t now = time_now_ms(), until = now + a->tus_lease_ms;
    bool taken = false;
    db_conn *c = tus_token_new(token) ? db_acquire(a->db) : NULL;
    db_status st = c ? db_tus_lock(c, http_req_owner(r), id, offset, token, now, until, &w->up,
                                   &taken)
                     : DB_ERROR;
    bool full = st == DB_ERROR && db_failed_full(c);
    db_release(a->db, c);
    if (!taken) {
        reply_not_locked(r, st, full, &w->up, offset);
        return false;
    }
    if (!tus_write_open(r, w, token, until)) return false;   /* write_free gives the lease back */
    w->length = w->up.length;
    if ((h = http_req_header(r, "Upload-Length"))) {
        if (!parse_u64(h, &length) || (w->length >= 0 && (uint64_t)w->length != length) ||
            length < offset) {
            tus_error(r, 400, "invalid_length", "Upload-Length cannot change");
            return false;
        }
        if (length > a->max_upload) {
            tus_error(r, 413, "payload_too_large", "Tus-Max-Size is %llu",
                      (unsigned long long)a->max_upload);
            return false;
        }
        w->length = (int64_t)length;
    }
    h = http_req_header(r, "Content-Length");
    uint64_t limit = w->length >= 0 ? (uint64_t)w->length : a->max_upload;
    if (h && parse_u64(h, &declared) && declared > limit - offset) {
        tus_error(r, 413, "payload_too_large", "the upload is %llu bytes long",
                  (unsigned long long)limit);
        return false;
    }
    return true;
}

bool tus_patch_data(http_req *r, const char *data, size_t len) { return tus_write_data(r, data, len); }

void tus_patch(http_req *r)
{
    http_req_defer(r, tus_commit_work);
}

/* ---------- HEAD /v1/tus/{id} ---------- */

/* offset == length but no asset: the completion crashed; run it again
 * under a lease of our own. */
static void recover_work(http_req *r)
{
    app *a = http_req_app(r);
    tus_upload u;
    char token[TUS_TOKEN_LEN + 1];
    bool taken = false;
    int64_t now = time_now_ms();
    db_conn *c = tus_token_new(token) ? db_acquire(a->db) : NULL;
    const char *id = http_req_param(r, 0), *owner = http_req_owner(r);
    db_status st = DB_ERROR;
    if (c) {
        st = db_tus_get(c, owner, id, &u);
        if (st == DB_OK && u.state == TUS_UPLOADING)
            st = db_tus_lock(c, owner, id, u.offset, token, now, now + a->tus_lease_ms, &u,
                             &taken);
    }
    if (taken) {
        tus_lease *l = tus_lease_new(a->db, a->pool, id, token, now + a->tus_lease_ms,
                                     a->tus_lease_ms);
        bool ok = l && tus_finish_upload(r, c, &u, l);
        tus_lease_end(l);
        if (!ok) {
            db_release(a->db, c);
            if (!l) tus_error(r, 500, "internal", "out of memory");
            return;
        }
    }
    db_release(a->db, c);
    if (st == DB_OK) {
        http_reply_empty(r, 200);
        describe(r, &u, true);
    } else {
        tus_error(r, st == DB_NOT_FOUND ? 404 : 503,
                  st == DB_NOT_FOUND ? "not_found" : "database_unavailable", "no such upload");
    }
}

void tus_head(http_req *r)
{
    app *a = http_req_app(r);
    const char *id = http_req_param(r, 0);
    if (!tus_check_version(r)) return;
    tus_upload u;
    db_status st = DB_NOT_FOUND;
    if (id_is_valid(id)) {
        db_conn *c = db_acquire(a->db);
        st = c ? db_tus_get(c, http_req_owner(r), id, &u) : DB_ERROR;
        db_release(a->db, c);
    }
    if (st != DB_OK) {
        tus_error(r, st == DB_NOT_FOUND ? 404 : 503,
                  st == DB_NOT_FOUND ? "not_found" : "database_unavailable", "no such upload");
    } else if (u.state == TUS_UPLOADING && u.expires_ms <= time_now_ms()) {
        tus_error(r, 410, "upload_expired", "the upload expired");
    } else if (u.state == TUS_UPLOADING && u.concat != TUS_PARTIAL && u.length >= 0 &&
               u.offset == (uint64_t)u.length) {
        http_req_defer(r, recover_work);
    } else {
        http_reply_empty(r, 200);
        describe(r, &u, true);
    }
}

/* ---------- DELETE /v1/tus/{id}: termination ---------- */

static void delete_work(http_req *r)
{
    app *a = http_req_app(r);
    const char *id = http_req_param(r, 0), *owner = http_req_owner(r);
    tus_upload u;
    char token[TUS_TOKEN_LEN + 1];
    bool taken = false;
    int64_t now = time_now_ms();
    db_conn *c = tus_token_new(token) ? db_acquire(a->db) : NULL;
    db_status st = c ? db_tus_get(c, owner, id, &u) : DB_ERROR;
    /* An upload still taking bytes is terminated by taking its lease, so
     * no writer is mid-PATCH; a finished or expired one has no writer. */
    bool live = st == DB_OK && u.state == TUS_UPLOADING && u.expires_ms > now;
    if (live) st = db_tus_lock(c, owner, id, u.offset, token, now, now + a->tus_lease_ms, &u,
                               &taken);
    if (st == DB_OK && live && !taken) {
        db_release(a->db, c);
        tus_error(r, 423, "locked", "a request is writing this upload");
        return;
    }
    /* Row first, then bytes: a crash between leaves bytes nobody names. */
    if (st == DB_OK) st = db_tus_delete(c, id);
    db_release(a->db, c);
    if (st == DB_OK) {
        tus_bytes_remove(a->store, &u);
        http_reply_empty(r, 204);
        http_reply_header(r, "Tus-Resumable", TUS_VERSION);
    } else {
        tus_error(r, st == DB_NOT_FOUND ? 404 : 503,
                  st == DB_NOT_FOUND ? "not_found" : "database_unavailable", "no such upload");
    }
}

void tus_delete(http_req *r)
{
    if (!tus_check_version(r)) return;
    if (!id_is_valid(http_req_param(r, 0))) {
        tus_error(r, 404, "not_found", "no such upload");
        return;
    }
    http_req_defer(r, delete_work);
}

/* ---------- OPTIONS: what this server speaks ---------- */

void tus_options(http_req *r)
{
    app *a = http_req_app(r);
    http_reply_empty(r, 204);
    http_reply_header(r, "Tus-Resumable", TUS_VERSION);
    http_reply_header(r, "Tus-Version", TUS_VERSION);
    http_reply_header(r, "Tus-Extension", "creation,creation-with-upload,creation-defer-length,"
                                          "expiration,checksum,termination,concatenation");
    http_reply_header(r, "Tus-Checksum-Algorithm", "sha1,sha256");
    header_u64(r, "Tus-Max-Size", a->max_upload);
}
