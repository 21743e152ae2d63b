/* covers.c — PUT /v1/assets/{id}/cover: the owner's cover image for a
 * video (core/cover.h).
 *
 * The body is the image's bytes, streamed into a blob of its own as they
 * arrive (never held whole), at most COVER_MAX_BYTES (and --max-upload).
 * Before a byte is read, body_begin answers what it can from one indexed
 * read: 404 for another owner's asset or none, 409 not_a_video.  Then, on
 * the work pool (fsync, the type, the header's size, the record and its
 * job), core/cover.c decides: 415 unsupported_format, 422 cover_too_small
 * / image_too_large / corrupt_input, or 202 with the asset, whose `cover`
 * says processing until the worker's asset.updated says ready or failed.
 */
#include "api/app.h"
#include "core/cover.h"
#include "util/parse.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cover_put {
    store_upload *up;           /* until committed (or aborted) */
    char version[COVER_VERSION_LEN + 1];
    uint64_t size, max;
} cover_put;

static void put_free(void *p)
{
    cover_put *cp = p;
    store_upload_abort(cp->up);
    free(cp);
}

static uint64_t cover_limit(const app *a)
{
    return a->max_upload < COVER_MAX_BYTES ? a->max_upload : COVER_MAX_BYTES;
}

static void reply_too_large(http_req *r, uint64_t max)
{
    http_reply_error(r, 413, "payload_too_large", "a cover is at most %" PRIu64 " bytes", max);
}

bool covers_put_begin(http_req *r)
{
    app *a = http_req_app(r);
    asset *as = malloc(sizeof *as);   /* ~10 KB: not on an HTTP thread's stack */
    bool found = as && assets_load(r, as);   /* 404 / 503 set otherwise */
    bool video = found && as->kind == ASSET_VIDEO;
    const char *kind = found ? asset_kind_name(as->kind) : "";
    free(as);
    if (!found) {
        if (!as) http_reply_error(r, 503, "out_of_memory", "try again");
        return false;
    }
    if (!video) {
        http_reply_error(r, 409, "not_a_video", "only a video has a cover; this asset is %s %s",
                         kind[0] == 'i' || kind[0] == 'o' ? "an" : "a", kind);
        return false;
    }
    if (!api_rate_allowed(r)) return false;
    uint64_t max = cover_limit(a), declared;
    const char *length = http_req_header(r, "Content-Length");
    if (length && parse_u64(length, &declared) && declared > max) {
        reply_too_large(r, max);
        return false;
    }
    if (!http_req_body_limit(r, max)) return false;
    cover_put *cp = calloc(1, sizeof *cp);
    char key[ID_LEN + 40];
    if (cp && cover_version_new(cp->version)) {
        cover_source_key(http_req_param(r, 0), cp->version, key, sizeof key);
        cp->up = store_upload_begin(a->store, key);
    }
    if (!cp || !cp->up) {
        int err = cp ? errno : 0;
        free(cp);
        api_reply_storage_failed(r, err);
        return false;
    }
    cp->max = max;
    http_req_set_data(r, cp, put_free);
    return true;
}

bool covers_put_data(http_req *r, const char *data, size_t len)
{
    cover_put *cp = http_req_data(r);
    if (len > cp->max - cp->size) {
        reply_too_large(r, cp->max);
        return false;
    }
    cp->size += len;
    if (store_upload_write(cp->up, data, len)) return true;
    http_reply_error(r, 507, "storage_failed", "could not store the cover");
    return false;
}

static void put_work(http_req *r)
{
    app *a = http_req_app(r);
    cover_put *cp = http_req_data(r);
    store_upload *up = cp->up;
    cp->up = NULL;
    /* durable before the record names it */
    if (!store_upload_commit(up)) {
        http_reply_error(r, 507, "storage_failed", "could not store the cover");
        return;
    }
    asset *as = malloc(sizeof *as);
    db_conn *c = as ? db_acquire(a->db) : NULL;
    cover_check check;
    cover_result res = c ? cover_accept(c, a->store, a->sniffer, http_req_owner(r),
                                        http_req_param(r, 0), cp->version, a->max_pixels, &check,
                                        as)
                         : COVER_DB;
    json_t *body = res == COVER_OK ? db_asset_json(c, as) : NULL;
    db_release(a->db, c);
    free(as);
    if (!c) {   /* cover_accept did not run: nothing names the image */
        char key[ID_LEN + 40];
        cover_source_key(http_req_param(r, 0), cp->version, key, sizeof key);
        store_remove(a->store, key);
    }
    switch (res) {
    case COVER_OK:
        hub_poke(a->hub);
        http_reply_json(r, 202, body);
        break;
    case COVER_NOT_FOUND: http_reply_error(r, 404, "not_found", "no such asset"); break;
    case COVER_NOT_VIDEO:
        http_reply_error(r, 409, "not_a_video", "only a video has a cover");
        break;
    case COVER_UNSUPPORTED:
        http_reply_error(r, 415, "unsupported_format",
                         "a cover is a JPEG, PNG, WebP, GIF, TIFF, HEIC or AVIF image; this is %s",
                         check.content_type);
        break;
    case COVER_TOO_SMALL:
        http_reply_error(r, 422, "cover_too_small",
                         "the cover is %dx%d; a cover must be at least %dx%d", check.width,
                         check.height, COVER_MIN_WIDTH, COVER_MIN_HEIGHT);
        break;
    case COVER_TOO_LARGE:
        http_reply_error(r, 422, "image_too_large", "%dx%d is over the limit of %" PRIu64
                         " pixels", check.width, check.height, a->max_pixels);
        break;
    case COVER_CORRUPT:
        http_reply_error(r, 422, "corrupt_input", "the %s image's header is broken",
                         check.content_type);
        break;
    case COVER_STORAGE:
        http_reply_error(r, 507, "storage_failed", "could not read the cover");
        break;
    default: http_reply_error(r, 503, "database_unavailable", "try again");
    }
}

void covers_put(http_req *r)
{
    cover_put *cp = http_req_data(r);
    if (!cp || cp->size == 0) {
        http_reply_error(r, 400, "missing_body", "send the cover image's bytes as the body");
        return;
    }
    http_req_defer(r, put_work);
}
