/* cloud.c — the cloud-asset-uploader's API, kept so its clients work, on
 * top of signed direct uploads (core/upload.h, api/uploads.c).
 *
 *   POST /api/upload  {"object_key", "expires_in"?}  (application/json)
 *        -> {"signed_info": {"url", "fields"}, "asset_id": N}
 *   PUT  /api/status  {"asset_id", "uploaded_status": "pending"|"complete"}
 *        -> {"success": true, "uploaded_status"}
 *   GET  /api/access?asset_id=N[&expires_in=S]  -> {"url", "asset_id"}
 *
 * POST /api/upload is shared with the open-table API (opentable.c): the
 * request's Content-Type chooses (legacy_upload_begin below).
 *
 * The original's asset is our upload record: its asset_id is the upload's
 * small integer `seq`, its object_key is the client's name for it — kept
 * only as metadata, never a path (the blob key is the upload's random id) —
 * and unique per owner, not per bucket.  The client declares no size, so
 * the upload takes any size up to --max-upload (UPLOAD_SIZE_ANY) and is
 * signed a POST form only, whose policy says so.
 *
 * "complete" does not take the client's word: it runs the same check as
 * POST /v1/uploads/{id}/complete (the object must be there, within the
 * limit) and creates the asset.  The original let a complete upload go back
 * to "pending", and so do we; but a blob, once an asset's, is never written
 * again, so the key stays used: uploading it again answers "Upload already
 * complete, try another object_key.", and "complete" again just restores
 * the state.  A pending upload reuses its record (same asset_id) with a new
 * signature.
 *
 * Messages are the original's, word for word, in the error's `message`;
 * values are echoed the way Python printed them (True, None, 1.5).
 */
#include "api/app.h"
#include "util/parse.h"
#include "util/timefmt.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The original's limits: signatures last 60 s unless asked, 30 min at most. */
#define CLOUD_DEFAULT_TTL 60
#define CLOUD_MAX_TTL 1800
#define TOO_LONG(op) "Could not create a signed URL for " op " request: expiration time was too " \
                     "long. Try a shorter duration."

/* ---------- values as the original echoed them ---------- */

/* Python's str() of a JSON value, near enough; cut to fit out. */
static const char *py_str(const json_t *v, char *out, size_t cap)
{
    if (json_is_string(v)) snprintf(out, cap, "%s", json_string_value(v));
    else if (json_is_true(v)) snprintf(out, cap, "True");
    else if (json_is_false(v)) snprintf(out, cap, "False");
    else if (!v || json_is_null(v)) snprintf(out, cap, "None");
    else {
        char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        snprintf(out, cap, "%s", text ? text : "?");
        free(text);
    }
    return out;
}

/* A positive integer (not true, not 1.5, not "1"), as JSON. */
static bool json_positive(const json_t *v, int64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 1) return false;
    *out = json_integer_value(v);
    return true;
}

/* A positive integer in a query string: digits only. */
static bool query_positive(const char *s, int64_t *out)
{
    uint64_t v;
    if (!s || !parse_u64(s, &v) || v < 1 || v > INT64_MAX) return false;
    *out = (int64_t)v;
    return true;
}

/* expires_in: absent -> the original's default; else 1..the original's
 * limit (and never past --max-sign-ttl).  False: a 400 is set. */
static bool check_ttl(http_req *r, bool present, bool valid, int64_t v, const char *shown,
                      const char *too_long, int64_t *ttl)
{
    app *a = http_req_app(r);
    uint64_t max = a->max_sign_ttl < CLOUD_MAX_TTL ? a->max_sign_ttl : CLOUD_MAX_TTL;
    if (!present) {
        *ttl = (uint64_t)CLOUD_DEFAULT_TTL < max ? CLOUD_DEFAULT_TTL : (int64_t)max;
        return true;
    }
    if (!valid) {
        http_reply_error(r, 400, "invalid_parameter", "Invalid key: expires_in, Value: %s is not "
                                                      "an int", shown);
        return false;
    }
    if ((uint64_t)v > max) {
        http_reply_error(r, 400, "invalid_parameter", "%s", too_long);
        return false;
    }
    *ttl = v;
    return true;
}

static void reply_not_found(http_req *r, int64_t seq)
{
    http_reply_error(r, 404, "not_found", "Asset with id %" PRId64 " not found", seq);
}

/* The caller's upload by asset_id; false: a 404 or 503 is set. */
static bool load_seq(http_req *r, int64_t seq, upload_rec *u)
{
    app *a = http_req_app(r);
    db_conn *c = db_acquire(a->db);
    db_status st = c ? db_upload_get_seq(c, http_req_owner(r), seq, u) : DB_ERROR;
    db_release(a->db, c);
    if (st == DB_NOT_FOUND) reply_not_found(r, seq);
    else if (st != DB_OK) http_reply_error(r, 503, "database_unavailable", "try again");
    return st == DB_OK;
}

/* ---------- POST /api/upload (JSON) ---------- */

/* The owner's record for object_key: a new pending one, or the one that
 * exists (two concurrent first uploads meet on the unique key: one
 * inserts, the other reads it).  DB_ERROR: unavailable. */
static db_status find_or_insert(app *a, upload_rec *u)
{
    db_conn *c = db_acquire(a->db);
    if (!c) return DB_ERROR;
    db_status st = DB_ERROR;
    for (int attempt = 0; attempt < 3; attempt++) {
        st = db_upload_insert(c, u);
        if (st != DB_NOT_FOUND) break;
        /* DB_NOT_FOUND again: gc removed it in between; insert anew. */
        st = db_upload_by_key(c, u->owner, u->object_key, u);
        if (st != DB_NOT_FOUND) break;
        st = DB_ERROR;
    }
    db_release(a->db, c);
    return st;
}

static void upload_work(http_req *r)
{
    app *a = http_req_app(r);
    json_t *body = json_body_object(r);
    if (!body) return;
    const json_t *key = json_object_get(body, "object_key");
    const json_t *exp = json_object_get(body, "expires_in");
    char shown[256];
    int64_t ttl = 0, v = 0;
    bool ok = false;
    if (!key || json_is_null(key))
        http_reply_error(r, 400, "invalid_parameter", "Missing key: object_key");
    else if (!json_is_string(key))
        http_reply_error(r, 400, "invalid_parameter", "Invalid key: object_key, Value: %s is not "
                         "a string", py_str(key, shown, sizeof shown));
    else if (json_string_length(key) < 1 || json_string_length(key) > UPLOAD_OBJECT_KEY_MAX ||
             strlen(json_string_value(key)) != json_string_length(key))
        http_reply_error(r, 400, "invalid_parameter", "Invalid key: object_key: 1 to %d bytes of "
                         "UTF-8, no NUL", UPLOAD_OBJECT_KEY_MAX);
    else {
        bool valid = json_positive(exp, &v);   /* sets v: before check_ttl reads it */
        ok = check_ttl(r, exp && !json_is_null(exp), valid, v, py_str(exp, shown, sizeof shown),
                       TOO_LONG("post_object"), &ttl);
    }
    upload_rec u = {0};
    if (ok) {
        snprintf(u.object_key, sizeof u.object_key, "%s", json_string_value(key));
        filename_sanitize(u.object_key, u.filename);
    }
    json_decref(body);
    if (!ok) return;
    snprintf(u.owner, sizeof u.owner, "%s", http_req_owner(r));
    u.size = UPLOAD_SIZE_ANY;
    u.expires_ms = time_now_ms() + ttl * 1000;
    time_format_now(u.created);
    if (!id_generate(u.id)) {
        http_reply_error(r, 500, "internal", "cannot make an id");
        return;
    }
    int64_t expires_ms = u.expires_ms;
    if (find_or_insert(a, &u) != DB_OK) {
        http_reply_error(r, 503, "database_unavailable", "try again");
        return;
    }
    if (u.state == UPLOAD_COMPLETE || u.asset_made) {
        http_reply_error(r, 400, "already_complete",
                         "Upload already complete, try another object_key.");
        return;
    }
    if (expires_ms > u.expires_ms) {
        /* A reused record: gc must not remove it while the new signature
         * lives (an older, longer one keeps its own end). */
        db_conn *c = db_acquire(a->db);
        db_status st = c ? db_upload_resign(c, u.id, expires_ms) : DB_ERROR;
        db_release(a->db, c);
        if (st == DB_ERROR) {
            http_reply_error(r, 503, "database_unavailable", "try again");
            return;
        }
        if (st == DB_NOT_FOUND) {   /* completed meanwhile */
            http_reply_error(r, 400, "already_complete",
                             "Upload already complete, try another object_key.");
            return;
        }
    }
    char base[300];
    api_base_url(r, base, sizeof base);
    char *url = NULL;
    sigv4_form form;
    if (transfer_post_form(&a->signer, base, u.id, 0, a->max_upload, time_now_ms() / 1000, ttl,
                           &url, &form) != SIGV4_OK) {
        sigv4_form_free(&form);
        free(url);
        http_reply_error(r, 500, "internal", "cannot sign the upload");
        return;
    }
    json_t *signed_info = api_form_json(url, &form);
    sigv4_form_free(&form);
    free(url);
    http_reply_json(r, 200, json_pack("{s:o, s:I}", "signed_info", signed_info, "asset_id",
                                      (json_int_t)u.seq));
}

/* ---------- PUT /api/status ---------- */

/* Sets the state of an upload whose asset exists (complete <-> pending). */
static bool set_state(http_req *r, const upload_rec *u, upload_state st)
{
    app *a = http_req_app(r);
    db_conn *c = db_acquire(a->db);
    db_status s = c ? db_upload_set_state(c, u->id, st) : DB_ERROR;
    db_release(a->db, c);
    if (s == DB_NOT_FOUND) reply_not_found(r, u->seq);
    else if (s != DB_OK) http_reply_error(r, 503, "database_unavailable", "try again");
    return s == DB_OK;
}

/* "complete": verified and made an asset the first time, restored after. */
static bool complete(http_req *r, const upload_rec *u)
{
    app *a = http_req_app(r);
    if (u->asset_made) return u->state == UPLOAD_COMPLETE || set_state(r, u, UPLOAD_COMPLETE);
    asset as;
    switch (api_complete_upload(a, u, &as)) {
    case COMPLETE_OK:
    case COMPLETE_ALREADY:   /* a concurrent "complete" made it */
        return true;
    case COMPLETE_MISSING:
        http_reply_error(r, 409, "object_missing", "The object has not been uploaded: send it "
                                                   "with signed_info first.");
        return false;
    case COMPLETE_SIZE_MISMATCH:
    case COMPLETE_SHA_MISMATCH:
        http_reply_error(r, 413, "payload_too_large", "The object is larger than this server "
                         "allows (%" PRIu64 " bytes).", a->max_upload);
        return false;
    case COMPLETE_STORAGE_FAILED:
        http_reply_error(r, 502, "storage_failed", "the store could not be read; retry");
        return false;
    default:
        http_reply_error(r, 503, "database_unavailable", "try again");
        return false;
    }
}

static void status_work(http_req *r)
{
    json_t *body = json_body_object(r);
    if (!body) return;
    const json_t *id = json_object_get(body, "asset_id");
    const json_t *status = json_object_get(body, "uploaded_status");
    const char *s = json_string_value(status);
    char shown[256];
    int64_t seq = 0;
    bool ok = false, to_complete = s && strcmp(s, "complete") == 0;
    if (!id || json_is_null(id))
        http_reply_error(r, 400, "invalid_parameter", "Missing key: asset_id");
    else if (!status || json_is_null(status))
        http_reply_error(r, 400, "invalid_parameter", "Missing key: uploaded_status");
    else if (!json_positive(id, &seq))
        http_reply_error(r, 400, "invalid_parameter", "Invalid key: asset_id, Value: %s is not an "
                         "int", py_str(id, shown, sizeof shown));
    else if (!to_complete && !(s && strcmp(s, "pending") == 0))
        http_reply_error(r, 400, "invalid_parameter", "Invalid key: uploaded_status, Value: %s is "
                         "not one of ['pending', 'complete']", py_str(status, shown, sizeof shown));
    else ok = true;
    json_decref(body);
    upload_rec u;
    if (!ok || !load_seq(r, seq, &u)) return;
    if (to_complete ? !complete(r, &u)
                    : u.state == UPLOAD_COMPLETE && !set_state(r, &u, UPLOAD_PENDING))
        return;
    http_reply_json(r, 200, json_pack("{s:b, s:s}", "success", 1, "uploaded_status",
                                      to_complete ? "complete" : "pending"));
}

void cloud_status(http_req *r) { http_req_defer(r, status_work); }

/* ---------- GET /api/access ---------- */

static void access_work(http_req *r)
{
    app *a = http_req_app(r);
    const char *id = http_req_query(r, "asset_id");
    const char *exp = http_req_query(r, "expires_in");
    int64_t seq = 0, ttl = 0, v = 0;
    if (!id) {
        http_reply_error(r, 400, "invalid_parameter", "Missing key: asset_id");
        return;
    }
    if (!query_positive(id, &seq)) {
        http_reply_error(r, 400, "invalid_parameter", "Invalid key: asset_id, Value: %s is not an "
                         "int", id);
        return;
    }
    bool valid = query_positive(exp, &v);   /* sets v: before check_ttl reads it */
    if (!check_ttl(r, exp != NULL, valid, v, exp, TOO_LONG("get_object"), &ttl)) return;
    upload_rec u;
    if (!load_seq(r, seq, &u)) return;
    if (u.state != UPLOAD_COMPLETE) {
        http_reply_error(r, 400, "not_complete", "Asset upload is not yet completed.");
        return;
    }
    asset as;
    db_conn *c = db_acquire(a->db);
    db_status st = c ? db_asset_get(c, http_req_owner(r), u.id, &as) : DB_ERROR;
    db_release(a->db, c);
    if (st == DB_NOT_FOUND) {   /* deleted through /v1 */
        reply_not_found(r, seq);
        return;
    }
    if (st != DB_OK) {
        http_reply_error(r, 503, "database_unavailable", "try again");
        return;
    }
    json_t *link;
    if (!api_signed_link(r, &as, ttl, !asset_inline_safe(&as), &link)) return;
    http_reply_json(r, 200, json_pack("{s:O, s:I}", "url", json_object_get(link, "url"),
                                      "asset_id", (json_int_t)seq));
    json_decref(link);
}

void cloud_access(http_req *r) { http_req_defer(r, access_work); }

/* ---------- POST /api/upload: which API ---------- */

/* multipart/form-data is the open-table API's; any other body the
 * cloud-asset-uploader's, whose JSON parser judges it (its clients sent
 * application/json, or no type at all, or curl -d's form type). */
static bool is_opentable(http_req *r)
{
    const char *type = http_req_header(r, "Content-Type");
    return type && strncasecmp(type, "multipart/form-data", 19) == 0;
}

bool legacy_upload_begin(http_req *r)
{
    return is_opentable(r) ? opentable_upload_begin(r) : api_rate_allowed(r) && json_body_begin(r);
}

bool legacy_upload_data(http_req *r, const char *data, size_t len)
{
    return is_opentable(r) ? opentable_upload_data(r, data, len) : json_body_data(r, data, len);
}

void legacy_upload(http_req *r)
{
    if (is_opentable(r)) opentable_upload(r);
    else http_req_defer(r, upload_work);
}
