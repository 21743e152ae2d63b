/* cover.c — an owner's cover image for a video; see cover.h. */
#include "core/cover.h"
#include "core/ingest.h"
#include "media/imagehead.h"
#include "util/log.h"
#include "util/timefmt.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The formats the workers decode (media/image.c), as libmagic names them. */
static const char *const decodable[] = {"image/jpeg", "image/png", "image/webp", "image/gif",
                                        "image/tiff", "image/heic", "image/heif", "image/avif"};

bool cover_version_new(char out[COVER_VERSION_LEN + 1])
{
    unsigned char b[COVER_VERSION_LEN / 2];
    if (RAND_bytes(b, sizeof b) != 1) return false;
    hex_encode(b, sizeof b, out);
    return true;
}

void cover_source_key(const char *asset_id, const char *version, char *out, size_t cap)
{
    snprintf(out, cap, "%s." COVER_SOURCE_PREFIX "%s", asset_id, version);
}

/* ---------- the record ---------- */

static json_t *record_load(const char *record)
{
    if (!record || !record[0]) return NULL;
    json_t *o = json_loads(record, 0, NULL);
    if (json_is_object(o)) return o;
    json_decref(o);
    return NULL;
}

static bool version_of(json_t *v, char out[COVER_VERSION_LEN + 1])
{
    const char *s = json_string_value(v);
    if (!s || strlen(s) != COVER_VERSION_LEN) return false;
    memcpy(out, s, COVER_VERSION_LEN + 1);
    return true;
}

json_t *cover_public(const char *record)
{
    json_t *o = record_load(record);
    if (!o) return json_null();
    json_t *error = json_object_get(o, "error");
    json_t *pub = json_pack("{s:O, s:O}", "status", json_object_get(o, "status"), "error",
                            json_is_object(error) ? error : json_null());
    json_decref(o);
    return pub ? pub : json_null();
}

void cover_merge(json_t *renditions, const char *record)
{
    json_t *o = record_load(record);
    json_t *mine = json_object_get(o, "renditions"), *item;
    size_t i;
    json_array_foreach(mine, i, item) {
        const char *name = json_string_value(json_object_get(item, "name"));
        size_t k;
        json_t *old;
        bool replaced = false;
        json_array_foreach(renditions, k, old) {
            const char *n = json_string_value(json_object_get(old, "name"));
            if (name && n && strcmp(n, name) == 0) {
                json_array_set(renditions, k, item);
                replaced = true;
                break;
            }
        }
        if (!replaced) json_array_append(renditions, item);
    }
    json_decref(o);
}

bool cover_latest(const char *record, char version[COVER_VERSION_LEN + 1], bool *ready)
{
    json_t *o = record_load(record);
    bool ok = o && version_of(json_object_get(o, "version"), version);
    const char *status = json_string_value(json_object_get(o, "status"));
    *ready = ok && status && strcmp(status, "ready") == 0;
    json_decref(o);
    return ok;
}

bool cover_ready_version(const char *record, char version[COVER_VERSION_LEN + 1])
{
    json_t *o = record_load(record);
    json_t *first = json_array_get(json_object_get(o, "renditions"), 0);
    bool ok = first && version_of(json_object_get(first, "version"), version);
    json_decref(o);
    return ok;
}

/* Dumps o into out; false if it does not fit.  Takes o. */
static bool record_dump(json_t *o, char *out, size_t cap)
{
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    bool ok = text && strlen(text) < cap;
    if (ok) memcpy(out, text, strlen(text) + 1);
    free(text);
    json_decref(o);
    return ok;
}

/* The ready sizes of record, a new reference ([] when none). */
static json_t *ready_of(const char *record)
{
    json_t *o = record_load(record);
    json_t *list = json_object_get(o, "renditions");
    json_t *copy = json_is_array(list) ? json_deep_copy(list) : json_array();
    json_decref(o);
    return copy;
}

bool cover_record_processing(const char *record, const char *version, char *out, size_t cap)
{
    return record_dump(json_pack("{s:s, s:s, s:n, s:o}", "version", version, "status",
                                 "processing", "error", "renditions", ready_of(record)),
                       out, cap);
}

bool cover_record_ready(const char *version, json_t *renditions, char *out, size_t cap)
{
    return record_dump(json_pack("{s:s, s:s, s:n, s:O}", "version", version, "status", "ready",
                                 "error", "renditions", renditions),
                       out, cap);
}

bool cover_record_failed(const char *record, const char *version, const char *code,
                         const char *message, char *out, size_t cap)
{
    /* the message is bounded so the record always fits */
    char msg[200];
    snprintf(msg, sizeof msg, "%s", message);
    return record_dump(json_pack("{s:s, s:s, s:{s:s, s:s}, s:o}", "version", version, "status",
                                 "failed", "error", "code", code, "message", msg, "renditions",
                                 ready_of(record)),
                       out, cap);
}

/* ---------- accepting a cover ---------- */

/* The checks that need no database: the type and, when the header tells
 * it, the size.  A size the header leaves open is the worker's to check. */
static cover_result check_bytes(store *s, sniffer *sn, const char *key, uint64_t max_pixels,
                                cover_check *check)
{
    size_t n = 0;
    uint8_t *head = malloc(SNIFF_BYTES_MAX);
    if (!head || !store_read_head(s, key, head, SNIFF_BYTES_MAX, &n)) {
        free(head);
        return COVER_STORAGE;
    }
    sniffer_mime_buffer(sn, head, n, check->content_type, sizeof check->content_type);
    bool known = false;
    for (size_t i = 0; i < sizeof decodable / sizeof *decodable; i++)
        known = known || strcmp(check->content_type, decodable[i]) == 0;
    int w = 0, h = 0;
    bool exact = false;
    imagehead_status hs = known ? imagehead_size(head, n, &w, &h, &exact) : IMAGEHEAD_UNKNOWN;
    free(head);
    if (!known) return COVER_UNSUPPORTED;
    if (hs == IMAGEHEAD_CORRUPT) return COVER_CORRUPT;
    if (hs == IMAGEHEAD_UNKNOWN) return COVER_OK;
    check->width = w, check->height = h;
    if ((uint64_t)w * (uint64_t)h > max_pixels) return COVER_TOO_LARGE;
    /* Not knowing whether metadata turns the image, refuse only what is too
     * small either way; the worker knows. */
    bool fits = w >= COVER_MIN_WIDTH && h >= COVER_MIN_HEIGHT;
    bool fits_turned = h >= COVER_MIN_WIDTH && w >= COVER_MIN_HEIGHT;
    return fits || (!exact && fits_turned) ? COVER_OK : COVER_TOO_SMALL;
}

/* The record's change and the job, one transaction; *previous gets the
 * version this one supersedes ("" if none). */
static cover_result record(db_conn *c, const char *owner, const char *asset_id,
                           const char *version, char previous[COVER_VERSION_LEN + 1], asset *out)
{
    char next[ASSET_COVER_JSON_MAX + 1];
    bool ready;
    job j;
    previous[0] = '\0';
    if (db_begin(c) != DB_OK) return COVER_DB;
    db_status st = db_asset_get(c, owner, asset_id, out);
    cover_result res = st == DB_NOT_FOUND ? COVER_NOT_FOUND
                       : st != DB_OK      ? COVER_DB
                       : out->kind != ASSET_VIDEO ? COVER_NOT_VIDEO
                                                  : COVER_OK;
    if (res == COVER_OK) {
        if (!cover_latest(out->cover, previous, &ready)) previous[0] = '\0';
        int64_t now = time_now_ms();
        if (!cover_record_processing(out->cover, version, next, sizeof next) ||
            db_asset_set_cover(c, asset_id, next, now) != DB_OK ||
            db_job_enqueue(c, asset_id, owner, COVER_JOB, INGEST_JOB_ATTEMPTS, now, &j) != DB_OK ||
            db_asset_get_any(c, asset_id, out) != DB_OK ||   /* the row as changed, for the reply */
            db_commit(c) != DB_OK)
            res = COVER_DB;
    }
    if (res != COVER_OK) db_rollback(c);
    return res;
}

cover_result cover_accept(db_conn *c, store *s, sniffer *sn, const char *owner,
                          const char *asset_id, const char *version, uint64_t max_pixels,
                          cover_check *check, asset *out)
{
    char key[ID_LEN + 40], previous[COVER_VERSION_LEN + 1];
    cover_source_key(asset_id, version, key, sizeof key);
    memset(check, 0, sizeof *check);
    cover_result res = check_bytes(s, sn, key, max_pixels, check);
    if (res == COVER_OK) res = record(c, owner, asset_id, version, previous, out);
    if (res != COVER_OK) {
        store_remove(s, key);   /* refused: nothing names it */
        return res;
    }
    /* The superseded image: rendered (its job removed it already), failed,
     * or never to be rendered now (a job renders the latest version; one
     * reading it this moment finds it gone and reads the record again). */
    if (previous[0] && strcmp(previous, version) != 0) {
        cover_source_key(asset_id, previous, key, sizeof key);
        store_remove(s, key);
    }
    log_info("cover accepted", "asset", asset_id, "version", version, NULL);
    return COVER_OK;
}

db_status cover_retried(db_conn *c, const char *asset_id, int64_t now_ms)
{
    asset *a = malloc(sizeof *a);
    char latest[COVER_VERSION_LEN + 1], next[ASSET_COVER_JSON_MAX + 1];
    bool ready;
    db_status st = a ? db_asset_get_any(c, asset_id, a) : DB_ERROR;
    if (st == DB_OK && cover_latest(a->cover, latest, &ready) && !ready)
        st = cover_record_processing(a->cover, latest, next, sizeof next)
                 ? db_asset_set_cover(c, asset_id, next, now_ms)
                 : DB_ERROR;
    free(a);
    return st;
}
