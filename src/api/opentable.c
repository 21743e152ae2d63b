/* opentable.c — the open-table image service's API, kept so its clients
 * work, on top of assets, the image pipeline and the event log.
 *
 *   POST /api/upload       multipart `file` (png, jpg, jpeg, gif)
 *                          -> {"data": "<absolute URL of the original>"}
 *                          or 400 {"data": "bad request"}
 *   GET  /api/images       -> {"data": [URLs of the 640x480 renditions]}
 *   GET  /api/images/live  WebSocket: one text frame, a rendition's URL,
 *                          each time an image is ready
 *
 * (POST /api/upload is shared with the cloud-asset-uploader API: cloud.c
 * dispatches multipart bodies here.)
 *
 * The original resized to fit 640x480 in the upload's own format and
 * pushed each new thumbnail's URL to every socket.  Here that rendition is
 * the `fit640` preset (640x480:source, in IMAGE_PRESETS_DEFAULT), made by
 * the workers like every rendition; the list and the socket name only
 * images that have it.  An image is checked twice: its name must end in an
 * image extension and its bytes must sniff as PNG, JPEG or GIF, inside the
 * upload's transaction, so a refused file leaves nothing behind.
 *
 * Differences, all deliberate: an API key is needed (the socket takes one
 * or an events ?token=, like /v1/events) and everything is per owner; the
 * URLs are assetd's (/v1/assets/{id}/content and .../renditions/fit640,
 * which need the key too), not a bucket's; ids are random, so two uploads
 * in one second never collide; over --max-upload is a 413; storage and
 * database failures are JSON errors, never a silent 200.
 */
#include "api/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define OPENTABLE_RENDITION "fit640"
#define IMAGES_MAX 1000    /* the newest this many, listed oldest first */
#define IMAGES_PAGE 100    /* assets read at a time (one asset is ~5 KiB) */

static void reply_bad_request(http_req *r)
{
    http_reply_json(r, 400, json_pack("{s:s}", "data", "bad request"));
}

/* The shared upload machinery answers a malformed form with its own 400s;
 * the original's clients expect theirs. */
static void reshape_400(http_req *r)
{
    if (http_req_reply_status(r) == 400) {
        http_reply_discard(r);
        reply_bad_request(r);
    }
}

/* ---------- POST /api/upload (multipart) ---------- */

bool opentable_upload_begin(http_req *r)
{
    bool ok = assets_create_begin(r);
    if (!ok) reshape_400(r);
    return ok;
}

bool opentable_upload_data(http_req *r, const char *data, size_t len)
{
    bool ok = assets_create_data(r, data, len);
    if (!ok) reshape_400(r);
    return ok;
}

static bool image_name(const char *filename)
{
    const char *dot = strrchr(filename, '.');
    static const char *const ext[] = {"png", "jpg", "jpeg", "gif"};
    for (size_t i = 0; dot && i < sizeof ext / sizeof *ext; i++)
        if (strcasecmp(dot + 1, ext[i]) == 0) return true;
    return false;
}

static bool image_bytes(const char *type)
{
    return strcmp(type, "image/png") == 0 || strcmp(type, "image/jpeg") == 0 ||
           strcmp(type, "image/gif") == 0;
}

/* In the upload's transaction: refuse anything but an image (nothing kept). */
static db_status only_images(db_conn *c, const asset *a, void *arg)
{
    (void)c;
    bool *refused = arg;
    *refused = !image_name(a->filename) || !image_bytes(a->content_type);
    return *refused ? DB_NOT_FOUND : DB_OK;
}

static void upload_work(http_req *r)
{
    bool refused = false;
    asset as;
    if (!assets_upload_store(r, only_images, &refused, &as)) {
        if (refused) reply_bad_request(r);
        return;
    }
    char base[300], url[512];
    api_base_url(r, base, sizeof base);
    snprintf(url, sizeof url, "%s/v1/assets/%s/content", base, as.id);
    http_reply_json(r, 200, json_pack("{s:s}", "data", url));
}

void opentable_upload(http_req *r)
{
    if (assets_upload_body_done(r)) http_req_defer(r, upload_work);
    else reshape_400(r);
}

/* ---------- the rendition's URL ---------- */

/* True if the renditions (a JSON array of {name, ...}) hold ours. */
static bool has_rendition(const json_t *renditions)
{
    size_t i;
    const json_t *item;
    json_array_foreach(renditions, i, item) {
        const char *n = json_string_value(json_object_get(item, "name"));
        if (n && strcmp(n, OPENTABLE_RENDITION) == 0) return true;
    }
    return false;
}

static void rendition_url(const char *base, const char *id, char *out, size_t cap)
{
    snprintf(out, cap, "%s/v1/assets/%s/renditions/" OPENTABLE_RENDITION, base, id);
}

/* ---------- GET /api/images ---------- */

static void images_work(http_req *r)
{
    app *a = http_req_app(r);
    asset *page = malloc(sizeof *page * IMAGES_PAGE);
    db_conn *c = page ? db_acquire(a->db) : NULL;
    json_t *newest_first = json_array();
    char base[300], url[512];
    api_base_url(r, base, sizeof base);
    asset_filter f = {.by_kind = true, .kind = ASSET_IMAGE, .by_status = true,
                      .status = STATUS_READY};
    db_status st = c ? DB_OK : DB_ERROR;
    int n = IMAGES_PAGE;
    while (st == DB_OK && n == IMAGES_PAGE && json_array_size(newest_first) < IMAGES_MAX) {
        st = db_asset_list(c, http_req_owner(r), &f, IMAGES_PAGE, page, &n);
        for (int i = 0; st == DB_OK && i < n && json_array_size(newest_first) < IMAGES_MAX;
             i++) {
            json_error_t err;
            json_t *list = json_loads(page[i].renditions, 0, &err);
            if (has_rendition(list)) {
                rendition_url(base, page[i].id, url, sizeof url);
                json_array_append_new(newest_first, json_string(url));
            }
            json_decref(list);
        }
        if (n > 0) f.before_seq = page[n - 1].seq;
    }
    db_release(a->db, c);
    free(page);
    if (st != DB_OK) {
        json_decref(newest_first);
        http_reply_error(r, 503, "database_unavailable", "try again");
        return;
    }
    json_t *data = json_array();
    for (size_t i = json_array_size(newest_first); i > 0; i--)
        json_array_append(data, json_array_get(newest_first, i - 1));
    json_decref(newest_first);
    http_reply_json(r, 200, json_pack("{s:o}", "data", data));
}

void opentable_images(http_req *r) { http_req_defer(r, images_work); }

/* ---------- GET /api/images/live ---------- */

/* One socket: a hub subscription to the owner's asset.ready events. */
typedef struct live {
    app *app;
    hub_sub *sub;
    ws_conn *ws;
    hub_filter filter;
    char base[300];
} live;

/* On the hub thread: an asset.ready message -> the rendition's URL, if
 * the asset has one (documents and other kinds have not). */
static bool live_deliver(void *arg, hub_msg *m)
{
    live *l = arg;
    json_error_t err;
    json_t *msg = json_loadb(m->text, m->len, 0, &err);
    const json_t *data = json_object_get(msg, "data");
    const char *id = json_string_value(json_object_get(data, "id"));
    bool ok = true;
    if (id && has_rendition(json_object_get(data, "renditions"))) {
        char url[512];
        rendition_url(l->base, id, url, sizeof url);
        ok = ws_conn_send_text(l->ws, url, strlen(url));   /* false: closed (1013 if slow) */
    }
    json_decref(msg);
    return ok;
}

static void live_closing(void *arg) { ws_conn_close(((live *)arg)->ws, 1001, "server stopping"); }

static const hub_sink live_sink = {live_deliver, NULL, live_closing};

static void live_open(void *arg, ws_conn *c)
{
    live *l = arg;
    l->ws = c;
    l->sub = hub_subscribe(l->app->hub, &l->filter, &live_sink, l);
}

static void live_close(void *arg, ws_conn *c)
{
    (void)c;
    live *l = arg;
    hub_unsubscribe(l->app->hub, l->sub);   /* after this the hub never sends to c */
    free(l);
}

static const ws_handler live_ws = {live_open, NULL, live_close};

void opentable_live(http_req *r)
{
    app *a = http_req_app(r);
    live *l = calloc(1, sizeof *l);
    if (!l) {
        http_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    l->app = a;
    if (!api_authenticate_stream(r, l->filter.owner)) {
        free(l);
        return;
    }
    /* Live from now: images ready before the socket opened are in
     * GET /api/images; none readied in between is lost (the cursor starts
     * at the log's newest id, read here, not when the hub admits us). */
    int64_t oldest, newest;
    db_conn *c = db_acquire(a->db);
    db_status st = c ? db_events_bounds(c, &oldest, &newest) : DB_ERROR;
    db_release(a->db, c);
    if (st != DB_OK) {
        free(l);
        http_reply_error(r, 503, "database_unavailable", "try again");
        return;
    }
    l->filter.since = newest;
    hub_filter_set_types(&l->filter, "asset.ready");
    api_base_url(r, l->base, sizeof l->base);
    ws_server *ws = a->ws[atomic_fetch_add(&a->ws_next, 1) % (unsigned)a->nws];
    /* Not a handshake: 400 bad_handshake (426 for another version). */
    if (!http_reply_websocket(r, ws, &live_ws, l)) free(l);   /* it replied */
}
