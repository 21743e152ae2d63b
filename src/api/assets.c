/* assets.c — /v1/assets: upload, read, list, download, delete.
 *
 * Uploads stream: body_begin() opens an ingest (a temp file), body_data()
 * appends each chunk (through the multipart parser when the body is a form),
 * and handle() defers the durable part — fsync, sniff, rename, INSERT — to
 * the work pool so HTTP threads never wait on the disk.
 *
 * Every lookup is scoped by the caller's owner, so another owner's asset
 * answers 404 exactly like a missing one.
 */
#include "api/app.h"
#include "core/cover.h"
#include "core/ingest.h"
#include "http/multipart.h"
#include "util/parse.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define LIST_DEFAULT 50
#define LIST_MAX 1000

/* ---------- upload ---------- */

/* A short form field sent beside the file (POST /v1/runs: mode, timeout). */
typedef struct form_field {
    char name[32];
    char value[UPLOAD_FIELD_MAX + 1];
    size_t len;
    bool too_long;
} form_field;

typedef struct upload {
    ingest *in;
    multipart *mp;
    ingest_result failure;
    multipart_file claim;   /* what the client said about the file */
    char profile[ASSET_PROFILE_MAX + 1];   /* ?profile= of POST /v1/assets */
    form_field fields[UPLOAD_FIELDS_MAX];  /* the first ones; later ones are ignored */
    int nfields;
    bool has_file;          /* assets_upload_form_done saw the file part */
} upload;

static void upload_free(void *p)
{
    upload *u = p;
    ingest_abort(u->in);
    multipart_free(u->mp);
    free(u);
}

static void reply_too_large(http_req *r)
{
    app *a = http_req_app(r);
    http_reply_error(r, 413, "payload_too_large", "the upload limit is %" PRIu64 " bytes",
                     a->max_upload);
}

static void reply_ingest_failure(http_req *r, ingest_result res)
{
    if (res == INGEST_TOO_LARGE) reply_too_large(r);
    else if (res == INGEST_DB_ERROR)
        http_reply_error(r, 503, "database_unavailable", "could not record the asset");
    else api_reply_storage_failed(r, res == INGEST_NO_SPACE ? ENOSPC
                                     : res == INGEST_NO_FDS ? EMFILE
                                                            : 0);
}

/* Keeps the first UPLOAD_FIELDS_MAX fields, each up to UPLOAD_FIELD_MAX
 * bytes (a longer one is only marked): bounded whatever the form sends. */
static bool collect_field(void *arg, const char *name, const char *data, uint64_t off,
                          size_t len)
{
    upload *u = arg;
    form_field *f = NULL;
    for (int i = 0; i < u->nfields && !f; i++)
        if (strcmp(u->fields[i].name, name) == 0) f = &u->fields[i];
    if (!f && off == 0 && u->nfields < UPLOAD_FIELDS_MAX && strlen(name) < sizeof f->name) {
        f = &u->fields[u->nfields++];
        snprintf(f->name, sizeof f->name, "%s", name);
    }
    if (!f || f->too_long) return true;
    if (off != f->len || f->len + len > UPLOAD_FIELD_MAX) {
        f->too_long = true;   /* or sent twice: either way not one short value */
        return true;
    }
    memcpy(f->value + f->len, data, len);
    f->len += len;
    f->value[f->len] = '\0';
    return true;
}

const char *assets_upload_field(http_req *r, const char *name, bool *too_long)
{
    upload *u = http_req_data(r);
    *too_long = false;
    for (int i = 0; u && i < u->nfields; i++)
        if (strcmp(u->fields[i].name, name) == 0) {
            *too_long = u->fields[i].too_long || strlen(u->fields[i].value) != u->fields[i].len;
            return u->fields[i].value;
        }
    return NULL;
}

static bool upload_sink(void *arg, const char *data, size_t len)
{
    upload *u = arg;
    u->failure = ingest_write(u->in, data, len);
    return u->failure == INGEST_OK;
}

bool assets_create_begin(http_req *r)
{
    app *a = http_req_app(r);
    if (!api_rate_allowed(r)) return false;
    const char *length = http_req_header(r, "Content-Length");
    uint64_t declared;
    if (length && parse_u64(length, &declared) && declared > a->max_upload) {
        reply_too_large(r);
        return false;
    }
    if (!http_req_body_limit(r, a->max_upload)) return false;
    upload *u = calloc(1, sizeof *u);
    if (!u || !(u->in = ingest_begin(a->store, a->max_upload))) {
        int err = u ? errno : 0;
        free(u);
        api_reply_storage_failed(r, err);
        return false;
    }
    http_req_set_data(r, u, upload_free);
    const char *type = http_req_header(r, "Content-Type");
    if (type && strncasecmp(type, "multipart/form-data", 19) == 0) {
        u->mp = multipart_new(http_req_connection(r), upload_sink, u);
        if (!u->mp) {
            http_reply_error(r, 400, "invalid_multipart",
                             "multipart/form-data needs a boundary parameter");
            return false;
        }
        multipart_on_field(u->mp, collect_field);
    } else {
        const char *name = http_req_query(r, "filename");
        snprintf(u->claim.filename, sizeof u->claim.filename, "%s", name ? name : "");
        snprintf(u->claim.content_type, sizeof u->claim.content_type, "%s", type ? type : "");
    }
    return true;
}

/* POST /v1/assets: the shared upload, with the image profile it may name
 * (?profile=), checked before a byte of the body is read. */
bool assets_post_begin(http_req *r)
{
    char profile[ASSET_PROFILE_MAX + 1];
    if (!asset_profile_parse(http_req_query(r, "profile"), profile)) {
        http_reply_error(r, 400, "unknown_profile", "profile must be " ASSET_PROFILES);
        return false;
    }
    if (!assets_create_begin(r)) return false;
    upload *u = http_req_data(r);
    memcpy(u->profile, profile, sizeof profile);
    return true;
}

static void reply_multipart_failure(http_req *r, upload *u, multipart_status st)
{
    switch (st) {
    case MP_NO_FILE:
        http_reply_error(r, 400, "missing_file", "the form has no part named 'file'");
        break;
    case MP_MULTIPLE_FILES:
        http_reply_error(r, 400, "multiple_files", "send exactly one part named 'file'");
        break;
    case MP_SINK_FAILED:
        reply_ingest_failure(r, u->failure);
        break;
    default:
        http_reply_error(r, 400, "invalid_multipart", "the multipart body is malformed or "
                                                      "truncated");
    }
}

bool assets_create_data(http_req *r, const char *data, size_t len)
{
    upload *u = http_req_data(r);
    if (u->mp) {
        multipart_status st = multipart_feed(u->mp, data, len);
        if (st != MP_OK) reply_multipart_failure(r, u, st);
        return st == MP_OK;
    }
    if (!upload_sink(u, data, len)) {
        reply_ingest_failure(r, u->failure);
        return false;
    }
    return true;
}

bool assets_upload_store(http_req *r, ingest_extra_fn extra, void *arg, asset *out)
{
    app *a = http_req_app(r);
    upload *u = http_req_data(r);
    db_conn *c = db_acquire(a->db);
    if (!c) {
        http_reply_error(r, 503, "database_unavailable", "cannot reach the database");
        return false;
    }
    ingest *in = u->in;
    u->in = NULL;   /* ingest_finish frees it */
    ingest_claim claim = {u->claim.filename, u->claim.content_type, u->profile, extra, arg};
    ingest_result res = ingest_finish(in, a->sniffer, c, http_req_owner(r), &claim, out);
    db_release(a->db, c);
    if (res == INGEST_REFUSED) return false;   /* extra's owner replies */
    if (res != INGEST_OK) {
        reply_ingest_failure(r, res);
        return false;
    }
    hub_poke(a->hub);
    return true;
}

static void upload_finish(http_req *r)
{
    asset as;
    if (!assets_upload_store(r, NULL, NULL, &as)) return;
    char location[64];
    snprintf(location, sizeof location, "/v1/assets/%s", as.id);
    http_reply_json(r, 201, asset_to_json(&as));
    http_reply_header(r, "Location", location);
}

bool assets_upload_body_done(http_req *r)
{
    upload *u = http_req_data(r);
    multipart_status st = u->mp ? multipart_finish(u->mp, &u->claim) : MP_OK;
    if (st != MP_OK) reply_multipart_failure(r, u, st);
    return st == MP_OK;
}

bool assets_upload_form_done(http_req *r)
{
    upload *u = http_req_data(r);
    multipart_status st = u->mp ? multipart_finish(u->mp, &u->claim) : MP_OK;
    u->has_file = st == MP_OK && (u->mp || ingest_size(u->in) > 0);
    if (st == MP_NO_FILE) return true;
    if (st != MP_OK) reply_multipart_failure(r, u, st);
    return st == MP_OK;
}

void assets_upload_file_part(http_req *r, const char *name)
{
    upload *u = http_req_data(r);
    if (u && u->mp) multipart_file_part(u->mp, name);
}

bool assets_upload_has_file(http_req *r)
{
    upload *u = http_req_data(r);
    return u && u->has_file;
}

void assets_create_handle(http_req *r)
{
    if (assets_upload_body_done(r)) http_req_defer(r, upload_finish);
}

/* ---------- read ---------- */

bool assets_load(http_req *r, asset *out)
{
    app *a = http_req_app(r);
    const char *id = http_req_param(r, 0);
    db_status st = DB_NOT_FOUND;
    if (id_is_valid(id)) {
        db_conn *c = db_acquire(a->db);
        st = c ? db_asset_get(c, http_req_owner(r), id, out) : DB_ERROR;
        db_release(a->db, c);
    }
    if (st == DB_NOT_FOUND) http_reply_error(r, 404, "not_found", "no such asset");
    else if (st != DB_OK) http_reply_error(r, 503, "database_unavailable", "try again");
    return st == DB_OK;
}

/* The asset's JSON, with its renditions (db_asset_json). */
static json_t *asset_json(http_req *r, const asset *as)
{
    app *a = http_req_app(r);
    db_conn *c = db_acquire(a->db);
    json_t *o = c ? db_asset_json(c, as) : asset_to_json(as);
    db_release(a->db, c);
    return o;
}

void assets_get(http_req *r)
{
    asset as;
    if (assets_load(r, &as)) http_reply_json(r, 200, asset_json(r, &as));
}

static bool parse_list_query(http_req *r, asset_filter *f, int *limit)
{
    const char *v;
    if (!query_limit(r, LIST_DEFAULT, LIST_MAX, limit)) return false;
    if ((v = http_req_query(r, "kind")) && !(f->by_kind = asset_kind_parse(v, &f->kind))) {
        http_reply_error(r, 400, "invalid_parameter",
                         "kind must be image, pdf, presentation, video or other");
        return false;
    }
    if ((v = http_req_query(r, "status")) &&
        !(f->by_status = asset_status_parse(v, &f->status))) {
        http_reply_error(r, 400, "invalid_parameter",
                         "status must be uploaded, processing, ready or failed");
        return false;
    }
    if ((v = http_req_query(r, "cursor")) && *v && !cursor_decode(v, &f->before_seq)) {
        http_reply_error(r, 400, "invalid_cursor", "the cursor is not one we issued");
        return false;
    }
    return true;
}

void assets_list(http_req *r)
{
    app *a = http_req_app(r);
    asset_filter f = {0};
    int limit;
    if (!parse_list_query(r, &f, &limit)) return;
    /* One extra row tells us whether there is a next page. */
    asset *rows = malloc(sizeof *rows * (size_t)(limit + 1));
    db_conn *c = rows ? db_acquire(a->db) : NULL;
    int n = 0;
    db_status st = c ? db_asset_list(c, http_req_owner(r), &f, limit + 1, rows, &n) : DB_ERROR;
    json_t *items = json_array();
    for (int i = 0; st == DB_OK && i < n && i < limit; i++)
        json_array_append_new(items, db_asset_json(c, &rows[i]));
    db_release(a->db, c);
    if (st != DB_OK) {
        free(rows);
        json_decref(items);
        http_reply_error(r, 503, "database_unavailable", "try again");
        return;
    }
    json_t *next = json_null();
    if (n > limit) {
        char cursor[CURSOR_MAX + 1];
        cursor_encode(rows[limit - 1].seq, cursor);
        next = json_string(cursor);
    }
    free(rows);
    http_reply_json(r, 200, json_pack("{s:o, s:o}", "items", items, "next_cursor", next));
}

void assets_content(http_req *r)
{
    asset as;
    if (!assets_load(r, &as)) return;
    char etag[70];
    snprintf(etag, sizeof etag, "\"%s\"", as.sha256);
    blob_send(r, &(blob_ref){as.id, as.size, as.content_type, etag, as.filename,
                             !asset_inline_safe(&as), false, false});
}

/* The file name extension a download of a rendition of this type gets. */
static const char *extension_of(const char *type)
{
    static const char *const map[][2] = {
        {"webp", "webp"}, {"png", "png"}, {"gif", "gif"}, {"mpegurl", "m3u8"},
        {"dash+xml", "mpd"}, {"mp4", "mp4"}, {"vtt", "vtt"},
    };
    for (size_t i = 0; type && i < sizeof map / sizeof *map; i++)
        if (strstr(type, map[i][0])) return map[i][1];
    return "jpg";
}

/* The rendition `name` of the asset's list: its type, size and (an owner's
 * cover size, core/cover.h: its blob's name has it) version. */
static bool find_rendition(db_conn *c, const asset *as, const char *name, char *type,
                           size_t typecap, uint64_t *size, char *version)
{
    json_t *list = NULL, *found = NULL, *item;
    size_t i;
    if (db_asset_renditions(c, as, &list) != DB_OK) return false;
    json_array_foreach(list, i, item) {
        const char *n = json_string_value(json_object_get(item, "name"));
        if (n && strcmp(n, name) == 0) found = item;
    }
    if (found) {
        const char *t = json_string_value(json_object_get(found, "content_type"));
        snprintf(type, typecap, "%s", t ? t : "application/octet-stream");
        *size = (uint64_t)json_integer_value(json_object_get(found, "size"));
        const char *v = json_string_value(json_object_get(found, "version"));
        if (v && strlen(v) == COVER_VERSION_LEN) memcpy(version, v, COVER_VERSION_LEN + 1);
    }
    json_decref(list);
    return found != NULL;
}

/* GET /v1/assets/{id}/renditions/{name}: only names the asset's rendition
 * list holds, or (a video's segments and media playlists) its parts, so
 * the name never reaches the store unchecked.  A name may carry one of the
 * extensions below, which is ignored ("fallback.mp4" is "fallback"): the
 * video manifests name their parts so, for players that pick a parser by
 * extension. */
void assets_reply_rendition(http_req *r, const asset *as, const char *full_name)
{
    static const char *const extensions[] = {"mp4", "m4s", "m3u8", "mpd", "jpg", "webp",
                                              "png", "gif", "vtt"};
    char name[48];   /* 32 for the name, and the extension */
    if (strlen(full_name) >= sizeof name) {
        http_reply_error(r, 404, "not_found", "the asset has no such rendition");
        return;
    }
    snprintf(name, sizeof name, "%s", full_name);
    char *dot = strchr(name, '.');
    for (size_t e = 0; dot && e < sizeof extensions / sizeof *extensions; e++)
        if (strcmp(dot + 1, extensions[e]) == 0) *dot = '\0';
    app *a = http_req_app(r);
    db_conn *c = db_acquire(a->db);
    char type[CONTENT_TYPE_MAX + 1] = "";
    char version[COVER_VERSION_LEN + 1] = "";
    uint64_t size = 0;
    bool found = c && find_rendition(c, as, name, type, sizeof type, &size, version);
    /* A failed video's parts (published while it was transcoded) are not
     * its outputs. */
    bool part = !found && c && as->kind == ASSET_VIDEO && as->status != STATUS_FAILED &&
                db_part_get(c, as->id, name, type, sizeof type, &size) == DB_OK;
    /* The commit that makes a video ready turns its master playlist from a
     * part into a rendition: read between the two lookups above, it would be
     * neither.  Names only move that way, so the row read again settles it. */
    asset now;
    if (c && !found && !part && as->kind == ASSET_VIDEO && as->status == STATUS_PROCESSING &&
        db_asset_get_any(c, as->id, &now) == DB_OK && now.status != STATUS_PROCESSING) {
        as = &now;
        found = find_rendition(c, as, name, type, sizeof type, &size, version);
    }
    db_release(a->db, c);
    if (!found && !part) {
        http_reply_error(r, 404, "not_found", "the asset has no rendition '%s'", name);
        return;
    }
    char key[ID_LEN + 64], etag[160], filename[FILENAME_MAX_BYTES + 1];
    snprintf(key, sizeof key, "%s.%s%s%s", as->id, name, version[0] ? "_" : "", version);
    snprintf(etag, sizeof etag, "\"%.64s-%s%s%s-%llu\"", as->sha256, name, version[0] ? "-" : "",
             version, (unsigned long long)size);
    snprintf(filename, sizeof filename, "%s.%s", name, extension_of(type));
    /* A video's cover_* name shows an owner's cover once one is made: only
     * the URL with its version (?v=, the rendition's url) is immutable.  A
     * part of a video still processing may be an EVENT playlist that grows
     * (queue/video.c): never cached as final. */
    const char *asked = http_req_query(r, "v");
    bool revalidate = (as->kind == ASSET_VIDEO && strncmp(name, "cover_", 6) == 0 &&
                       !(version[0] && asked && strcmp(asked, version) == 0)) ||
                      (part && as->status != STATUS_READY);
    /* The video's playlists, DASH manifest and WebVTT track name their
     * parts relative to themselves. */
    bool names_relative = as->kind == ASSET_VIDEO &&
                          (strstr(type, "mpegurl") || strstr(type, "dash+xml") || strstr(type, "text/vtt"));
    blob_send(r, &(blob_ref){key, size, type, etag, filename, false, revalidate, names_relative});
}

/* A play link's token opens renditions too (play.c): the player page's
 * <video>, poster and sprite sheet cannot send a key. */
void assets_rendition(http_req *r)
{
    asset as;
    if (assets_load_playable(r, &as)) assets_reply_rendition(r, &as, http_req_param(r, 1));
}

/* ---------- delete ---------- */

/* Row first, then bytes: a crash in between leaves an unreferenced blob
 * (swept at start-up), never a row without bytes. */
static void delete_work(http_req *r)
{
    app *a = http_req_app(r);
    const char *id = http_req_param(r, 0);
    db_conn *c = db_acquire(a->db);
    db_status st = c && db_begin(c) == DB_OK ? db_asset_delete(c, http_req_owner(r), id)
                                             : DB_ERROR;
    if (st == DB_OK && db_commit(c) != DB_OK) st = DB_ERROR;
    if (st != DB_OK && c) db_rollback(c);
    db_release(a->db, c);
    if (st == DB_OK) {
        hub_poke(a->hub);
        store_remove_asset(a->store, id);
        http_reply_empty(r, 204);
    } else if (st == DB_NOT_FOUND) {
        http_reply_error(r, 404, "not_found", "no such asset");
    } else {
        http_reply_error(r, 503, "database_unavailable", "try again");
    }
}

void assets_delete(http_req *r)
{
    if (!id_is_valid(http_req_param(r, 0))) {
        http_reply_error(r, 404, "not_found", "no such asset");
        return;
    }
    http_req_defer(r, delete_work);
}
