/* manifest.c — GET /v1/assets/{id}/manifest.json: what a video player
 * reads, in the shape of the original's per-video manifest.json:
 *
 *   {"formats": {"mpeg-dash": URL|null, "hls": URL|null, "fallback": URL},
 *    "cover": URL|null,                       the largest cover size (an owner's
 *                                             cover once made: core/cover.h)
 *    "covers": {"large": URL, ... "nano": URL},
 *    "poster": URL|null,
 *    "timeline": null | {"sprite": URL, "vtt": URL,
 *                        "name": "tilesheet_{n}_{W}_240_135.jpg",
 *                        "count": n, "interval": W, "columns": 10,
 *                        "tile_width": 240, "tile_height": 135},
 *    "is_nsfw": null,                         no classifier
 *    "info": {"duration": s, "width": w, "height": h},
 *    "status": "ready" | "processing"}
 *
 * `formats.hls` and `status` are ours (the original had DASH only).  A
 * video with a ladder is playable before it is ready (queue/video.c): once
 * its master playlist is a part, the manifest answers with status
 * "processing", formats.hls alone (EVENT playlists that grow until the
 * transcode ends) and null for everything not made yet.  URLs are relative
 * to the manifest's own URL ("renditions/fallback.mp4"), so the document
 * works behind any prefix or host.  Built from the asset's row alone (its
 * renditions and meta): nothing is stored for it.  The owner's key, or a
 * play link's token (play.c), opens it; a video not yet playable answers
 * 409 not_ready, anything else 404.
 */
#include "api/app.h"
#include "media/video.h"

#include <stdio.h>
#include <string.h>

/* The rendition `name` of the list, as a relative URL with its media
 * extension (players choose a parser by it), or JSON null.  An owner's
 * cover size carries its version (core/cover.h): a new cover, a new URL. */
static json_t *url_of(json_t *list, const char *name, const char *ext)
{
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        const char *n = json_string_value(json_object_get(item, "name"));
        if (n && strcmp(n, name) == 0) {
            const char *v = json_string_value(json_object_get(item, "version"));
            char url[128];
            snprintf(url, sizeof url, "renditions/%s.%s%s%.16s", name, ext, v ? "?v=" : "",
                     v ? v : "");
            return json_string(url);
        }
    }
    return json_null();
}

static json_t *field(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return v ? v : json_null();
}

static json_t *timeline_of(json_t *list, json_t *meta)
{
    json_t *t = json_object_get(meta, "timeline");
    json_t *sprite = url_of(list, "tilesheet", "jpg");
    if (!json_is_object(t) || json_is_null(sprite)) {
        json_decref(sprite);
        return json_null();
    }
    int count = (int)json_integer_value(json_object_get(t, "count"));
    int interval = (int)json_integer_value(json_object_get(t, "interval"));
    char name[80];
    snprintf(name, sizeof name, "tilesheet_%d_%d_%d_%d.jpg", count, interval, VIDEO_TILE_W,
             VIDEO_TILE_H);
    return json_pack("{s:o, s:o, s:s, s:i, s:i, s:i, s:i, s:i}", "sprite", sprite, "vtt",
                     url_of(list, "timeline", "vtt"), "name", name, "count", count, "interval",
                     interval, "columns", VIDEO_TILE_COLUMNS, "tile_width", VIDEO_TILE_W,
                     "tile_height", VIDEO_TILE_H);
}

void manifest_get(http_req *r)
{
    asset as;
    if (!assets_load_playable(r, &as)) return;
    if (as.kind != ASSET_VIDEO) {
        http_reply_error(r, 404, "not_found", "only a video has a manifest");
        return;
    }
    json_t *list = NULL;
    app *a = http_req_app(r);
    db_conn *c = db_acquire(a->db);
    db_status st = DB_ERROR;
    if (c && as.status == STATUS_READY) {
        st = db_asset_renditions(c, &as, &list);
    } else if (c && as.status == STATUS_PROCESSING) {
        char type[CONTENT_TYPE_MAX + 1];
        uint64_t size;
        st = db_part_get(c, as.id, "hls", type, sizeof type, &size);
        list = st == DB_OK ? json_pack("[{s:s}]", "name", "hls") : NULL;
        /* The commit that makes the video ready turns its master playlist
         * from a part into a rendition: read after it, the row is ready. */
        char id[ID_LEN + 1];
        memcpy(id, as.id, sizeof id);
        if (st == DB_NOT_FOUND && db_asset_get_any(c, id, &as) == DB_OK &&
            as.status == STATUS_READY)
            st = db_asset_renditions(c, &as, &list);
    } else if (c) {
        st = DB_NOT_FOUND;
    }
    db_release(a->db, c);
    if (st == DB_NOT_FOUND) {
        http_reply_error(r, 409, "not_ready", "the video is %s", asset_status_name(as.status));
        return;
    }
    if (st != DB_OK || !list) {
        json_decref(list);
        http_reply_error(r, 503, "database_unavailable", "try again");
        return;
    }
    json_t *meta = json_loads(as.meta, 0, NULL);
    static const char *const sizes[] = {"large", "medium", "small", "tiny", "nano"};
    json_t *covers = json_object(), *cover = json_null();
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        char name[32];
        snprintf(name, sizeof name, "cover_%s", sizes[i]);
        json_t *u = url_of(list, name, "jpg");
        if (json_is_null(u)) {
            json_decref(u);
            continue;
        }
        if (json_is_null(cover)) cover = json_copy(u);
        json_object_set_new(covers, sizes[i], u);
    }
    json_t *formats = json_pack("{s:o, s:o, s:o}", "mpeg-dash", url_of(list, "dash", "mpd"),
                                "hls", url_of(list, "hls", "m3u8"), "fallback",
                                url_of(list, "fallback", "mp4"));
    json_t *info = json_pack("{s:O, s:O, s:O}", "duration", field(meta, "duration"), "width",
                             field(meta, "width"), "height", field(meta, "height"));
    json_t *body = json_pack("{s:o, s:o, s:o, s:o, s:o, s:n, s:o, s:s}", "formats", formats,
                             "cover", cover, "covers", covers, "poster",
                             url_of(list, "poster", "jpg"), "timeline", timeline_of(list, meta),
                             "is_nsfw", "info", info, "status", asset_status_name(as.status));
    json_decref(meta);
    json_decref(list);
    http_reply_json(r, 200, body);
}
