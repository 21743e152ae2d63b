/* signed.c — the disk store's signed routes: where presigned URLs and POST
 * forms point when blobs live on local disk (core/transfer.h).
 *
 *   GET|HEAD /v1/store/{key}?X-Amz-...   a signed download link
 *   PUT      /v1/store/{key}?X-Amz-...   a presigned upload
 *   POST     /v1/store                   a POST-policy form, `file` last
 *
 * No API key: the signature is the authority, checked as S3 would (same
 * canonical request, constant-time compare, expiry; core/sigv4.h) with the
 * disk store's signing key.  On top of what S3 checks, an upload must name
 * an upload record that is still pending and whose key no asset owns yet
 * (a blob, once an asset's, is never written again), and its body must
 * have exactly the declared size — refused before the first byte is
 * stored when Content-Length says otherwise.  Every refusal is a JSON
 * error: 403 for a bad or expired signature, 404 for what does not exist.
 *
 * The bytes stream to the store as they arrive (store_upload_*), as on
 * POST /v1/assets; the commit runs on the work pool.
 */
#include "api/app.h"
#include "http/multipart.h"
#include "util/parse.h"
#include "util/timefmt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Bytes of form fields kept before the file part (a policy is ~1 KiB). */
#define FIELDS_MAX (16 * 1024)

static void reply_signature(http_req *r, sigv4_status st)
{
    int status = st == SIGV4_EMALFORMED || st == SIGV4_EPOLICY ? 400 : 403;
    http_reply_error(r, status, st == SIGV4_EEXPIRED ? "signature_expired" : "signature_invalid",
                     "the request's signature does not allow this (%s)", sigv4_status_str(st));
}

/* ---------- presigned URLs: verification ---------- */

typedef struct query_copy {
    sigv4_param p[SIGV4_QUERY_MAX];
    size_t n;
    bool overflow;
} query_copy;

static bool keep_param(void *arg, const char *name, const char *value)
{
    query_copy *q = arg;
    if (q->n == SIGV4_QUERY_MAX) {
        q->overflow = true;
        return false;
    }
    q->p[q->n++] = (sigv4_param){name, value};
    return true;
}

/* Recently verified URLs, per HTTP thread, as API keys are cached
 * (keycache): a link fetched again (a player seeking, a page reloaded)
 * skips the HMAC chain.  An entry is the exact request text — method, Host,
 * path and every decoded parameter, each with its length — so a hit is the
 * same request that was verified, and it is re-checked against its time
 * window on every use. */
#define MEMO_SLOTS 32
#define MEMO_TEXT 768

typedef struct memo_slot {
    uint64_t hash;
    int64_t signed_s, expires_at_s;
    uint16_t len;
    char text[MEMO_TEXT];
} memo_slot;

static _Thread_local memo_slot memo[MEMO_SLOTS];

/* The request's text in out; 0 if it does not fit (then it is not memoised).
 * Each part goes with its length in front: decoded names and values can hold
 * any byte, so with a separator instead, a request that moves the bytes of
 * one parameter into its neighbour ("host%0Aresponse-content-disposition%0A
 * attachment" as one value) would have the text of the request that was
 * signed, and be served without its signature being checked. */
static size_t memo_text(const char *method, const char *host, const char *path,
                        const query_copy *q, char *out)
{
    size_t n = 0;
    const char *parts[3] = {method, host, path};
    for (int i = 0; i < 3 + 2 * (int)q->n; i++) {
        const char *p = i < 3 ? parts[i] : (i - 3) % 2 ? q->p[(i - 3) / 2].value
                                                       : q->p[(i - 3) / 2].name;
        size_t len = strlen(p);
        char head[24];
        size_t hl = (size_t)snprintf(head, sizeof head, "%zu:", len);
        if (n + hl + len > MEMO_TEXT) return 0;
        memcpy(out + n, head, hl);
        memcpy(out + n + hl, p, len);
        n += hl + len;
    }
    return n;
}

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* Checks the request's presigned URL for method on /v1/store/{key}. */
static bool verify_url(http_req *r, const char *method)
{
    app *a = http_req_app(r);
    if (a->signer.to_s3) {   /* signed URLs point at S3, not here */
        http_reply_error(r, 404, "not_found", "this server's store is S3");
        return false;
    }
    query_copy q = {.n = 0};
    http_req_query_each(r, keep_param, &q);
    char path[SIGV4_KEY_MAX + 32];
    snprintf(path, sizeof path, "/" TRANSFER_DISK_BUCKET "/%s", http_req_param(r, 0));
    const char *host = http_req_header(r, "Host");
    int64_t now = time_now_ms() / 1000;
    char text[MEMO_TEXT];
    size_t len = q.overflow ? 0 : memo_text(method, host ? host : "", path, &q, text);
    uint64_t hash = len ? fnv1a(text, len) : 0;
    memo_slot *slot = &memo[hash % MEMO_SLOTS];
    if (len && slot->hash == hash && slot->len == len && memcmp(slot->text, text, len) == 0 &&
        now <= slot->expires_at_s && now + SIGV4_MAX_SKEW >= slot->signed_s)
        return true;
    sigv4_creds c;
    transfer_creds(&a->signer, &c);
    sigv4_url_info info;
    sigv4_status st = q.overflow ? SIGV4_EMALFORMED
                                 : sigv4_verify_url(&c, method, host ? host : "", path, q.p, q.n,
                                                    now, &info);
    if (st != SIGV4_OK) {
        reply_signature(r, st);
        return false;
    }
    if (len) {
        *slot = (memo_slot){.hash = hash, .signed_s = info.signed_s,
                            .expires_at_s = info.expires_at_s, .len = (uint16_t)len};
        memcpy(slot->text, text, len);
    }
    return true;
}

/* ---------- GET /v1/store/{key}: a signed download ---------- */

/* The row is read on the HTTP thread, as GET /v1/assets/{id}/content reads
 * it: one indexed read, where a hop to the work pool (suspend, wake a
 * thread, resume) cost more than the read itself. */
void signed_get(http_req *r)
{
    /* Links name an asset's original only: an id, no rendition. */
    if (!id_is_valid(http_req_param(r, 0))) {
        http_reply_error(r, 404, "not_found", "no such object");
        return;
    }
    if (!verify_url(r, "GET")) return;
    app *a = http_req_app(r);
    asset as;
    db_conn *c = db_acquire(a->db);
    db_status st = c ? db_asset_get_any(c, http_req_param(r, 0), &as) : DB_ERROR;
    db_release(a->db, c);
    if (st == DB_NOT_FOUND) {
        http_reply_error(r, 404, "not_found", "the asset is gone");
        return;
    }
    if (st != DB_OK) {
        http_reply_error(r, 503, "database_unavailable", "try again");
        return;
    }
    char etag[70];
    snprintf(etag, sizeof etag, "\"%s\"", as.sha256);
    const char *disposition = http_req_query(r, "response-content-disposition");
    blob_send(r, &(blob_ref){as.id, as.size, as.content_type, etag, as.filename,
                             !asset_inline_safe(&as) ||
                                 (disposition && strncasecmp(disposition, "attachment", 10) == 0),
                             false, false});
}

/* ---------- uploads: what PUT and POST share ---------- */

typedef struct signed_upload {
    upload_rec rec;
    store_upload *up;
    uint64_t received;
    bool too_large;
    /* POST only */
    multipart *mp;
    char fields[FIELDS_MAX];
    size_t fields_used;
    sigv4_param field[SIGV4_FORM_MAX + 8];
    size_t nfields;
    bool verified;
    sigv4_post_info info;
} signed_upload;

static void signed_upload_free(void *p)
{
    signed_upload *u = p;
    if (u->up) store_upload_abort(u->up);
    multipart_free(u->mp);
    free(u);
}

/* Looks up the pending upload whose key the signature allowed; false with
 * a reply if it cannot take bytes. */
static bool find_pending(http_req *r, const char *key, upload_rec *out)
{
    app *a = http_req_app(r);
    db_status st = DB_NOT_FOUND;
    if (id_is_valid(key)) {
        db_conn *c = db_acquire(a->db);
        st = c ? db_upload_get_any(c, key, out) : DB_ERROR;
        db_release(a->db, c);
    }
    if (st == DB_ERROR) http_reply_error(r, 503, "database_unavailable", "try again");
    else if (st == DB_NOT_FOUND) http_reply_error(r, 404, "not_found", "no such upload");
    else if (out->asset_made || out->state != UPLOAD_PENDING)
        http_reply_error(r, 409, "already_complete", "the upload is complete; its bytes cannot "
                                                     "change");
    else return true;
    return false;
}

static bool take_bytes(http_req *r, signed_upload *u, const char *data, size_t len)
{
    uint64_t limit = upload_size_limit(&u->rec, ((app *)http_req_app(r))->max_upload);
    if (len > limit - u->received) {
        http_reply_error(r, 413, "payload_too_large", "the upload allows %llu bytes",
                         (unsigned long long)limit);
        return false;
    }
    u->received += len;
    if (!store_upload_write(u->up, data, len)) {
        api_reply_storage_failed(r, errno);
        return false;
    }
    return true;
}

static void commit_work(http_req *r)
{
    signed_upload *u = http_req_data(r);
    store_upload *up = u->up;
    u->up = NULL;
    if (store_upload_commit(up)) http_reply_empty(r, 204);   /* what S3 answers */
    else api_reply_storage_failed(r, errno);
}

static void finish(http_req *r, signed_upload *u)
{
    if (u->rec.size != UPLOAD_SIZE_ANY && u->received != u->rec.size) {
        http_reply_error(r, 400, "size_mismatch", "the upload declared %llu bytes, %llu came",
                         (unsigned long long)u->rec.size, (unsigned long long)u->received);
        return;
    }
    http_req_defer(r, commit_work);
}

/* ---------- PUT /v1/store/{key}: a presigned upload ---------- */

bool signed_put_begin(http_req *r)
{
    app *a = http_req_app(r);
    if (!verify_url(r, "PUT")) return false;
    signed_upload *u = calloc(1, sizeof *u);
    if (!u) {
        http_reply_error(r, 500, "internal", "out of memory");
        return false;
    }
    http_req_set_data(r, u, signed_upload_free);
    if (!find_pending(r, http_req_param(r, 0), &u->rec)) return false;
    const char *length = http_req_header(r, "Content-Length");
    uint64_t declared;
    if (!length || !parse_u64(length, &declared)) {
        http_reply_error(r, 411, "length_required", "send Content-Length: %llu",
                         (unsigned long long)u->rec.size);
        return false;
    }
    if (u->rec.size == UPLOAD_SIZE_ANY) {   /* never signed a PUT URL (upload.h) */
        http_reply_error(r, 403, "signature_invalid", "this upload takes a POST form only");
        return false;
    }
    if (declared != u->rec.size) {
        http_reply_error(r, declared > u->rec.size ? 413 : 400,
                         declared > u->rec.size ? "payload_too_large" : "size_mismatch",
                         "the upload declared %llu bytes", (unsigned long long)u->rec.size);
        return false;
    }
    if (!(u->up = store_upload_begin(a->store, u->rec.id))) {
        api_reply_storage_failed(r, errno);
        return false;
    }
    return true;
}

bool signed_put_data(http_req *r, const char *data, size_t len)
{
    return take_bytes(r, http_req_data(r), data, len);
}

void signed_put(http_req *r)
{
    signed_upload *u = http_req_data(r);
    finish(r, u);
}

/* ---------- POST /v1/store: a POST-policy form ---------- */

/* Keeps a field's bytes (fields come whole before the file; a value may
 * arrive in pieces, each continuing the last field). */
static bool keep_field(void *arg, const char *name, const char *data, uint64_t off, size_t len)
{
    signed_upload *u = arg;
    if (u->verified) return true;   /* after the file: S3 ignores them too */
    bool continues = off > 0 && u->nfields > 0 && strcmp(u->field[u->nfields - 1].name, name) == 0;
    size_t need = len + 1 + (continues ? 0 : strlen(name) + 1);
    if (need > FIELDS_MAX - u->fields_used || (!continues && u->nfields == sizeof u->field / sizeof *u->field))
        return false;
    if (!continues) {
        char *n = u->fields + u->fields_used;
        memcpy(n, name, strlen(name) + 1);
        u->fields_used += strlen(name) + 1;
        u->field[u->nfields++] = (sigv4_param){n, u->fields + u->fields_used};
        u->fields[u->fields_used] = '\0';
    } else {
        u->fields_used--;   /* write over the value's NUL */
    }
    memcpy(u->fields + u->fields_used, data, len);
    u->fields_used += len;
    u->fields[u->fields_used++] = '\0';
    return true;
}

static sigv4_status verify_form(http_req *r, signed_upload *u)
{
    app *a = http_req_app(r);
    sigv4_creds c;
    transfer_creds(&a->signer, &c);
    return sigv4_post_verify(&c, TRANSFER_DISK_BUCKET, u->field, u->nfields, -1,
                             time_now_ms() / 1000, &u->info);
}

/* The file's bytes: the first ones prove the form before anything is kept. */
static bool form_file(void *arg, const char *data, size_t len)
{
    http_req *r = arg;
    signed_upload *u = http_req_data(r);
    app *a = http_req_app(r);
    if (!u->verified) {
        sigv4_status st = verify_form(r, u);
        if (st != SIGV4_OK) {
            reply_signature(r, st);
            return false;
        }
        u->verified = true;
        if (!find_pending(r, u->info.key, &u->rec)) return false;
        if (u->info.max_size < 0 ||
            (uint64_t)u->info.max_size > upload_size_limit(&u->rec, a->max_upload)) {
            http_reply_error(r, 403, "signature_invalid", "the form allows another size");
            return false;
        }
        if (!(u->up = store_upload_begin(a->store, u->rec.id))) {
            api_reply_storage_failed(r, errno);
            return false;
        }
    }
    return take_bytes(r, u, data, len);
}

static bool form_field(void *arg, const char *name, const char *data, uint64_t off, size_t len)
{
    http_req *r = arg;
    return keep_field(http_req_data(r), name, data, off, len) ||
           (http_reply_error(r, 400, "invalid_form", "the form's fields are too large"), false);
}

bool signed_post_begin(http_req *r)
{
    app *a = http_req_app(r);
    if (a->signer.to_s3) {
        http_reply_error(r, 404, "not_found", "this server's store is S3");
        return false;
    }
    const char *type = http_req_header(r, "Content-Type");
    signed_upload *u = calloc(1, sizeof *u);
    if (!u) {
        http_reply_error(r, 500, "internal", "out of memory");
        return false;
    }
    http_req_set_data(r, u, signed_upload_free);
    if (!type || strncasecmp(type, "multipart/form-data", 19) != 0 ||
        !(u->mp = multipart_new(http_req_connection(r), form_file, r))) {
        http_reply_error(r, 400, "invalid_multipart", "send multipart/form-data with the "
                                                      "form's fields, then `file`");
        return false;
    }
    multipart_on_field(u->mp, form_field);
    return true;
}

bool signed_post_data(http_req *r, const char *data, size_t len)
{
    signed_upload *u = http_req_data(r);
    multipart_status st = multipart_feed(u->mp, data, len);
    if (st == MP_OK) return true;
    if (st == MP_MULTIPLE_FILES)
        http_reply_error(r, 400, "multiple_files", "send exactly one part named 'file'");
    else if (st != MP_SINK_FAILED)
        http_reply_error(r, 400, "invalid_multipart", "the multipart body is malformed");
    return false;   /* MP_SINK_FAILED: the sink replied */
}

void signed_post(http_req *r)
{
    signed_upload *u = http_req_data(r);
    multipart_file file;
    multipart_status st = multipart_finish(u->mp, &file);
    if (st == MP_NO_FILE || (st == MP_OK && !u->verified)) {
        /* An empty file: no byte ever reached form_file. */
        if (st == MP_OK && (u->rec.size == 0 || u->rec.size == UPLOAD_SIZE_ANY)) {
            if (!form_file(r, "", 0)) return;
        } else {
            http_reply_error(r, 400, "missing_file", "the form has no part named 'file'");
            return;
        }
    } else if (st != MP_OK) {
        http_reply_error(r, 400, "invalid_multipart", "the multipart body is malformed or "
                                                      "truncated");
        return;
    }
    finish(r, u);
}
