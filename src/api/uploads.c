/* uploads.c — /v1/uploads: signed direct uploads, and /v1/assets/{id}/links:
 * signed downloads (core/upload.h, core/transfer.h).
 *
 *   POST /v1/uploads               {filename, size, content_type?, sha256?,
 *                                   expires_in?} -> the upload, with a POST
 *                                   form and a PUT URL for the bytes
 *   GET  /v1/uploads/{id}          the upload (no signatures)
 *   POST /v1/uploads/{id}/complete checks the object, then creates the asset
 *   POST /v1/assets/{id}/links     {expires_in?, disposition?} -> a URL;
 *                                  {page: "play", expires_in?} -> a video's
 *                                  player page with a play token (play.c)
 *
 * The bytes never pass through these handlers: they go to S3, or to the
 * disk store's signed routes (signed.c).  `complete` trusts nothing the
 * client says: it asks the store whether the object is there with the
 * declared size (and SHA-256 when one was declared), sniffs its type from
 * its bytes, and only then records the asset, exactly as a normal upload.
 */
#include "api/app.h"
#include "util/parse.h"
#include "util/timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_UPLOAD_TTL 60
#define DEFAULT_LINK_TTL 300
/* A play link is watched, not fetched once: an hour, or --max-sign-ttl. */
#define DEFAULT_PLAY_TTL 3600

/* ---------- shared with the other signing APIs (cloud.c) ---------- */

void api_base_url(http_req *r, char *out, size_t cap)
{
    app *a = http_req_app(r);
    if (a->public_url[0]) {
        snprintf(out, cap, "%s", a->public_url);
        return;
    }
    /* The Host the client used reaches us; anything odd in it is not. */
    const char *host = http_req_header(r, "Host");
    size_t n = host ? strlen(host) : 0;
    bool plain = n > 0 && n < 256 &&
                 strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") == n;
    snprintf(out, cap, "http://%s", plain ? host : "127.0.0.1");
}

bool api_parse_ttl(const json_t *v, int64_t fallback, uint64_t max, int64_t *out, const char **why)
{
    if (!v) {
        *out = fallback < (int64_t)max ? fallback : (int64_t)max;
        return true;
    }
    /* An integer, not true, not 1.5, not "60". */
    if (!json_is_integer(v) || json_integer_value(v) < 1) {
        *why = "expires_in must be a positive integer number of seconds";
        return false;
    }
    if ((uint64_t)json_integer_value(v) > max) {
        *why = "expires_in is longer than this server allows (--max-sign-ttl)";
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

json_t *api_form_json(const char *url, const sigv4_form *form)
{
    json_t *fields = json_object();
    for (size_t i = 0; i < form->n; i++)
        json_object_set_new(fields, form->field[i].name, json_string(form->field[i].value));
    return json_pack("{s:s, s:o}", "url", url, "fields", fields);
}

/* ---------- the upload's JSON ---------- */

static json_t *upload_json(const upload_rec *u)
{
    char expires[32];
    time_format_ms(u->expires_ms, expires);
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:s?, s:s, s:s, s:s, s:s}", "id", u->id,
                     "asset_id", u->id, "status", upload_state_name(u->state), "filename",
                     u->filename,
                     "size", u->size == UPLOAD_SIZE_ANY ? json_null()
                                                        : json_integer((json_int_t)u->size),
                     "sha256", u->sha256[0] ? u->sha256 : NULL,
                     "content_type", u->content_type, "expires", expires, "created", u->created,
                     "profile", u->profile[0] ? u->profile : "default");
}

/* Adds the signed POST form and PUT URL to an upload's JSON; false (a 500
 * is set) if signing failed. */
bool api_sign_upload(http_req *r, const upload_rec *u, int64_t ttl, json_t *o)
{
    app *a = http_req_app(r);
    char base[300];
    api_base_url(r, base, sizeof base);
    int64_t now = time_now_ms() / 1000;
    char *post_url = NULL, *put_url = NULL;
    sigv4_form form;
    bool ok = u->size != UPLOAD_SIZE_ANY &&   /* a PUT could not bound it (upload.h) */
              transfer_post_form(&a->signer, base, u->id, u->size, u->size, now, ttl, &post_url,
                                 &form) == SIGV4_OK &&
              transfer_put_url(&a->signer, base, u->id, now, ttl, &put_url) == SIGV4_OK;
    if (ok) {
        json_object_set_new(o, "post", api_form_json(post_url, &form));
        json_object_set_new(o, "put", json_pack("{s:s, s:s}", "method", "PUT", "url", put_url));
    } else {
        http_reply_error(r, 500, "internal", "cannot sign the upload");
    }
    sigv4_form_free(&form);
    free(post_url);
    free(put_url);
    return ok;
}

/* ---------- POST /v1/uploads ---------- */

static bool hex64(const char *s)
{
    return s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

static void create_work(http_req *r)
{
    app *a = http_req_app(r);
    json_t *body = json_body_object(r);
    if (!body) return;
    upload_rec u = {0};
    const char *filename = json_string_value(json_object_get(body, "filename"));
    const json_t *size = json_object_get(body, "size");
    const json_t *type = json_object_get(body, "content_type");
    const json_t *sha = json_object_get(body, "sha256");
    const json_t *profile = json_object_get(body, "profile");
    const char *why = NULL;
    int64_t ttl = 0;
    if (!filename || !*filename) why = "filename must be a non-empty string";
    else if (!json_is_integer(size) || json_integer_value(size) < 0)
        why = "size must be a non-negative integer (bytes)";
    else if (type && (!json_is_string(type) || strlen(json_string_value(type)) > CONTENT_TYPE_MAX))
        why = "content_type must be a string of at most 128 bytes";
    else if (sha && !hex64(json_string_value(sha)))
        why = "sha256 must be 64 lowercase hex digits";
    else if (profile && !json_is_string(profile))
        why = "profile must be a string";
    else api_parse_ttl(json_object_get(body, "expires_in"), DEFAULT_UPLOAD_TTL, a->max_sign_ttl,
                       &ttl, &why);
    if (why) {
        json_decref(body);
        http_reply_error(r, 400, "invalid_upload", "%s", why);
        return;
    }
    if (!asset_profile_parse(json_string_value(profile), u.profile)) {
        json_decref(body);
        http_reply_error(r, 400, "unknown_profile", "profile must be " ASSET_PROFILES);
        return;
    }
    if ((uint64_t)json_integer_value(size) > a->max_upload) {
        json_decref(body);
        http_reply_error(r, 413, "payload_too_large", "the upload limit is %llu bytes",
                         (unsigned long long)a->max_upload);
        return;
    }
    filename_sanitize(filename, u.filename);
    snprintf(u.content_type, sizeof u.content_type, "%s", type ? json_string_value(type) : "");
    snprintf(u.sha256, sizeof u.sha256, "%s", sha ? json_string_value(sha) : "");
    u.size = (uint64_t)json_integer_value(size);
    json_decref(body);
    snprintf(u.owner, sizeof u.owner, "%s", http_req_owner(r));
    u.expires_ms = time_now_ms() + ttl * 1000;
    time_format_now(u.created);
    if (!id_generate(u.id)) {
        http_reply_error(r, 500, "internal", "cannot make an id");
        return;
    }
    db_conn *c = db_acquire(a->db);
    db_status st = c ? db_upload_insert(c, &u) : DB_ERROR;
    db_release(a->db, c);
    if (st != DB_OK) {
        http_reply_error(r, 503, "database_unavailable", "try again");
        return;
    }
    json_t *o = upload_json(&u);
    if (!api_sign_upload(r, &u, ttl, o)) {
        json_decref(o);
        return;
    }
    char location[64];
    snprintf(location, sizeof location, "/v1/uploads/%s", u.id);
    http_reply_json(r, 201, o);
    http_reply_header(r, "Location", location);
}

void uploads_create(http_req *r)
{
    if (api_rate_allowed(r)) http_req_defer(r, create_work);
}

/* ---------- GET /v1/uploads/{id} ---------- */

static bool load_upload(http_req *r, upload_rec *u)
{
    app *a = http_req_app(r);
    const char *id = http_req_param(r, 0);
    db_status st = DB_NOT_FOUND;
    if (id_is_valid(id)) {
        db_conn *c = db_acquire(a->db);
        st = c ? db_upload_get(c, http_req_owner(r), id, u) : DB_ERROR;
        db_release(a->db, c);
    }
    if (st == DB_NOT_FOUND) http_reply_error(r, 404, "not_found", "no such upload");
    else if (st != DB_OK) http_reply_error(r, 503, "database_unavailable", "try again");
    return st == DB_OK;
}

void uploads_get(http_req *r)
{
    upload_rec u;
    if (load_upload(r, &u)) http_reply_json(r, 200, upload_json(&u));
}

/* ---------- POST /v1/uploads/{id}/complete ---------- */

/* Marks the upload complete in the asset's transaction; DB_NOT_FOUND (the
 * upload is not pending any more: a concurrent complete won) refuses. */
static db_status mark_complete(db_conn *c, const asset *as, void *arg)
{
    const upload_rec *u = arg;
    upload_rec now;
    db_status st = db_upload_get_any(c, u->id, &now);
    if (st != DB_OK) return st;
    if (now.state != UPLOAD_PENDING || now.asset_made) return DB_NOT_FOUND;
    return db_upload_set_state(c, u->id, UPLOAD_COMPLETE);
}

complete_result api_complete_upload(app *a, const upload_rec *u, asset *out)
{
    if (u->state == UPLOAD_COMPLETE || u->asset_made) return COMPLETE_ALREADY;
    uint64_t size = 0;
    bool missing = false;
    if (!store_stat(a->store, u->id, &size, &missing))
        return missing ? COMPLETE_MISSING : COMPLETE_STORAGE_FAILED;
    if (size != u->size && (u->size != UPLOAD_SIZE_ANY || size > a->max_upload))
        return COMPLETE_SIZE_MISMATCH;
    memset(out, 0, sizeof *out);
    memcpy(out->id, u->id, sizeof out->id);
    out->size = size;
    if (!ingest_blob_sha256(a->store, u->id, size, out->sha256)) return COMPLETE_STORAGE_FAILED;
    if (u->sha256[0] && strcmp(u->sha256, out->sha256) != 0) return COMPLETE_SHA_MISMATCH;
    db_conn *c = db_acquire(a->db);
    if (!c) return COMPLETE_DB_ERROR;
    ingest_claim claim = {u->filename, u->content_type, u->profile, mark_complete, (void *)u};
    ingest_result res = ingest_record(a->sniffer, a->store, c, u->owner, &claim, out);
    upload_rec after;
    if (res == INGEST_DB_ERROR && db_upload_get_any(c, u->id, &after) == DB_OK && after.asset_made)
        res = INGEST_REFUSED;   /* a concurrent complete inserted the asset first */
    db_release(a->db, c);
    if (res == INGEST_OK) hub_poke(a->hub);
    return res == INGEST_OK        ? COMPLETE_OK
           : res == INGEST_REFUSED ? COMPLETE_ALREADY
           : res == INGEST_IO_ERROR || res == INGEST_NO_SPACE || res == INGEST_NO_FDS
               ? COMPLETE_STORAGE_FAILED
                                    : COMPLETE_DB_ERROR;
}

static void complete_work(http_req *r)
{
    app *a = http_req_app(r);
    upload_rec u;
    if (!load_upload(r, &u)) return;
    asset as;
    switch (api_complete_upload(a, &u, &as)) {
    case COMPLETE_OK: {
        char location[64];
        snprintf(location, sizeof location, "/v1/assets/%s", as.id);
        http_reply_json(r, 201, asset_to_json(&as));
        http_reply_header(r, "Location", location);
        break;
    }
    case COMPLETE_ALREADY:
        http_reply_error(r, 409, "already_complete", "the upload is already complete");
        break;
    case COMPLETE_MISSING:
        http_reply_error(r, 409, "object_missing", "no bytes have arrived for this upload");
        break;
    case COMPLETE_SIZE_MISMATCH:
        http_reply_error(r, 422, "size_mismatch", "the object does not have the %llu bytes "
                         "declared", (unsigned long long)u.size);
        break;
    case COMPLETE_SHA_MISMATCH:
        http_reply_error(r, 422, "sha256_mismatch", "the object's SHA-256 is not the one "
                         "declared");
        break;
    case COMPLETE_STORAGE_FAILED:
        http_reply_error(r, 502, "storage_failed", "the store could not be read; retry");
        break;
    default:
        http_reply_error(r, 503, "database_unavailable", "try again");
    }
}

void uploads_complete(http_req *r)
{
    if (!id_is_valid(http_req_param(r, 0))) {
        http_reply_error(r, 404, "not_found", "no such upload");
        return;
    }
    http_req_defer(r, complete_work);
}

/* ---------- POST /v1/assets/{id}/links ---------- */

bool api_signed_link(http_req *r, const asset *as, int64_t ttl, bool attachment, json_t **out)
{
    app *a = http_req_app(r);
    char base[300], disposition[CONTENT_DISPOSITION_MAX], expires[32];
    api_base_url(r, base, sizeof base);
    int64_t now = time_now_ms() / 1000;
    char *url = NULL;
    bool ok = content_disposition(as->filename, attachment, disposition, sizeof disposition) &&
              transfer_get_url(&a->signer, base, as->id, disposition, now, ttl, &url) == SIGV4_OK;
    if (!ok) {
        free(url);
        http_reply_error(r, 500, "internal", "cannot sign the link");
        return false;
    }
    time_format_ms((now + ttl) * 1000, expires);
    *out = json_pack("{s:s, s:s, s:s}", "url", url, "expires", expires, "asset_id", as->id);
    free(url);
    return true;
}

static void link_work(http_req *r)
{
    app *a = http_req_app(r);
    json_t *body = json_body_object(r);
    if (!body) return;
    int64_t ttl = 0;
    const char *why = NULL;
    const json_t *disp = json_object_get(body, "disposition");
    const char *d = json_string_value(disp);
    const json_t *page = json_object_get(body, "page");
    bool play = page && json_is_string(page) && strcmp(json_string_value(page), "play") == 0;
    if (disp && (!d || (strcmp(d, "inline") != 0 && strcmp(d, "attachment") != 0)))
        why = "disposition must be inline or attachment";
    else if (page && !play)
        why = "page must be \"play\" (a video's player page), or absent (a download)";
    else if (play && disp)
        why = "a play link has no disposition";
    else api_parse_ttl(json_object_get(body, "expires_in"),
                       play ? DEFAULT_PLAY_TTL : DEFAULT_LINK_TTL, a->max_sign_ttl, &ttl, &why);
    bool attachment = d && strcmp(d, "attachment") == 0;
    json_decref(body);
    if (why) {
        http_reply_error(r, 400, "invalid_link", "%s", why);
        return;
    }
    asset as;
    db_conn *c = db_acquire(a->db);
    db_status st = c ? db_asset_get(c, http_req_owner(r), http_req_param(r, 0), &as) : DB_ERROR;
    db_release(a->db, c);
    if (st == DB_NOT_FOUND) {
        http_reply_error(r, 404, "not_found", "no such asset");
        return;
    }
    if (st != DB_OK) {
        http_reply_error(r, 503, "database_unavailable", "try again");
        return;
    }
    json_t *o;
    if (play) {
        if (as.kind != ASSET_VIDEO)
            http_reply_error(r, 400, "invalid_link", "only a video has a player page");
        else if (play_link(r, &as, ttl, &o))
            http_reply_json(r, 201, o);
        return;
    }
    if (!attachment && !asset_inline_safe(&as)) attachment = true;   /* never script inline */
    if (api_signed_link(r, &as, ttl, attachment, &o)) http_reply_json(r, 201, o);
}

void assets_link(http_req *r)
{
    if (!api_rate_allowed(r)) return;
    if (!id_is_valid(http_req_param(r, 0))) {
        http_reply_error(r, 404, "not_found", "no such asset");
        return;
    }
    http_req_defer(r, link_work);
}
