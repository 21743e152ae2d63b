/* routes.c — the API surface in one table, and the glue every handler needs
 * (authentication, rate limits).  docs/openapi.yaml documents the
 * same routes; keep them in step. */
#include "api/app.h"
#include "util/timefmt.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

const http_route api_routes[] = {
    {"POST", "/v1/assets", true, assets_create_handle, assets_post_begin, assets_create_data,
     NULL},
    {"GET", "/v1/assets", true, assets_list, NULL, NULL, NULL},
    {"GET", "/v1/assets/{id}", true, assets_get, NULL, NULL, NULL},
    {"DELETE", "/v1/assets/{id}", true, assets_delete, NULL, NULL, NULL},
    {"PATCH", "/v1/assets/{id}", true, assets_patch, json_body_begin, json_body_data, NULL},
    {"GET", "/v1/assets/{id}/content", true, assets_content, NULL, NULL, NULL},
    /* Authenticate themselves: an API key, or a play link's ?token= (play.c). */
    {"GET", "/v1/assets/{id}/renditions/{name}", false, assets_rendition, NULL, NULL, NULL},
    {"GET", "/v1/assets/{id}/manifest.json", false, manifest_get, NULL, NULL, NULL},
    {"PUT", "/v1/assets/{id}/cover", true, covers_put, covers_put_begin, covers_put_data, NULL},
    {"POST", "/v1/assets/{id}/links", true, assets_link, json_body_begin, json_body_data, NULL},
    {"POST", "/v1/assets/{id}/slideshow", true, slideshows_make, NULL, NULL, NULL},
    {"POST", "/v1/uploads", true, uploads_create, json_body_begin, json_body_data, NULL},
    {"GET", "/v1/uploads/{id}", true, uploads_get, NULL, NULL, NULL},
    {"POST", "/v1/uploads/{id}/complete", true, uploads_complete, NULL, NULL, NULL},
    /* The disk store's signed transfers: the signature is the key. */
    {"GET", "/v1/store/{key}", false, signed_get, NULL, NULL, NULL},
    {"PUT", "/v1/store/{key}", false, signed_put, signed_put_begin, signed_put_data, NULL},
    {"POST", "/v1/store", false, signed_post, signed_post_begin, signed_post_data, NULL},
    /* Resumable uploads (tus 1.0); OPTIONS answers browsers' preflights,
     * which carry no key. */
    {"OPTIONS", "/v1/tus", false, tus_options, NULL, NULL, &tus_cors},
    {"OPTIONS", "/v1/tus/", false, tus_options, NULL, NULL, &tus_cors},
    {"OPTIONS", "/v1/tus/{id}", false, tus_options, NULL, NULL, &tus_cors},
    {"POST", "/v1/tus", true, tus_create, tus_create_begin, tus_create_data, &tus_cors},
    {"POST", "/v1/tus/", true, tus_create, tus_create_begin, tus_create_data, &tus_cors},
    {"HEAD", "/v1/tus/{id}", true, tus_head, NULL, NULL, &tus_cors},
    {"PATCH", "/v1/tus/{id}", true, tus_patch, tus_patch_begin, tus_patch_data, &tus_cors},
    {"DELETE", "/v1/tus/{id}", true, tus_delete, NULL, NULL, &tus_cors},
    {"POST", "/v1/runs", true, runs_create, runs_create_begin, assets_create_data, NULL},
    {"GET", "/v1/runs", true, runs_list, NULL, NULL, NULL},
    {"GET", "/v1/runs/{id}", true, runs_get, NULL, NULL, NULL},
    {"GET", "/v1/runs/{id}/report", true, runs_report, NULL, NULL, NULL},
    {"POST", "/v1/runs/{id}/cancel", true, runs_cancel, NULL, NULL, NULL},
    {"GET", "/v1/people", true, people_list, NULL, NULL, NULL},
    /* The original consumer's protocol (consumer.c). */
    {"GET", "/consumer/create/", true, consumer_create, NULL, NULL, NULL},
    {"GET", "/consumer/process/", true, consumer_process, NULL, NULL, NULL},
    {"GET", "/consumer/getSession/", true, consumer_get, NULL, NULL, NULL},
    {"GET", "/consumer/remove/", true, consumer_remove, NULL, NULL, NULL},
    {"GET", "/consumer/list/", true, consumer_list, NULL, NULL, NULL},
    {"GET", "/consumer/health/", false, consumer_health, NULL, NULL, NULL},
    /* The original publisher's form (publish.c; the page is web.c's). */
    {"POST", "/simulate/", true, publish_simulate, publish_simulate_begin, assets_create_data, NULL},
    {"GET", "/v1/jobs", true, jobs_list, NULL, NULL, NULL},
    {"GET", "/v1/jobs/{id}", true, jobs_get, NULL, NULL, NULL},
    {"POST", "/v1/jobs/{id}/retry", true, jobs_retry, NULL, NULL, NULL},
    /* Authenticates itself: an API key or a ?token= (browsers). */
    {"GET", "/v1/events", false, events_stream, NULL, NULL, NULL},
    {"POST", "/v1/events/token", true, events_token, NULL, NULL, NULL},
    {"POST", "/v1/webhooks", true, webhooks_create, json_body_begin, json_body_data, NULL},
    {"GET", "/v1/webhooks", true, webhooks_list, NULL, NULL, NULL},
    {"GET", "/v1/webhooks/{id}", true, webhooks_get, NULL, NULL, NULL},
    {"DELETE", "/v1/webhooks/{id}", true, webhooks_delete, NULL, NULL, NULL},
    {"GET", "/v1/webhooks/{id}/deliveries", true, webhooks_deliveries, NULL, NULL, NULL},
    /* The original slideshow API: public by id, control by token. */
    {"POST", "/api/v1/slideshow/upload", true, slideshows_upload, slideshows_upload_begin,
     assets_create_data, NULL},
    {"GET", "/api/v1/slideshow/{file}", false, slideshows_get, NULL, NULL, NULL},
    {"GET", "/api/v1/slideshow/{id}/slide/{file}", false, slideshows_slide, NULL, NULL, NULL},
    {"POST", "/api/v1/slideshow/{id}/control", false, slideshows_control, json_body_begin,
     json_body_data, NULL},
    {"GET", "/api/v1/slideshow/{id}/listen", false, slideshows_listen, NULL, NULL, NULL},
    {"GET", "/api/v1/slideshow/{id}/updates", false, slideshows_listen, NULL, NULL, NULL},
    /* The original cloud-asset-uploader and open-table APIs (cloud.c,
     * opentable.c): one upload route, the Content-Type chooses. */
    {"POST", "/api/upload", true, legacy_upload, legacy_upload_begin, legacy_upload_data, NULL},
    {"PUT", "/api/status", true, cloud_status, json_body_begin, json_body_data, NULL},
    {"GET", "/api/access", true, cloud_access, NULL, NULL, NULL},
    {"GET", "/api/images", true, opentable_images, NULL, NULL, NULL},
    /* Authenticates itself, like /v1/events. */
    {"GET", "/api/images/live", false, opentable_live, NULL, NULL, NULL},
    {"GET", "/healthz", false, ops_healthz, NULL, NULL, NULL},
    {"GET", "/readyz", false, ops_readyz, NULL, NULL, NULL},
    {"GET", "/metrics", false, ops_metrics, NULL, NULL, NULL},
    /* The web page (web/, compiled in): public files; the page asks for a key. */
    {"GET", "/", false, web_page, NULL, NULL, NULL},
    {"GET", "/app.js", false, web_script, NULL, NULL, NULL},
    {"GET", "/upload.js", false, web_upload_script, NULL, NULL, NULL},
    {"GET", "/tus.min.js", false, web_tus_script, NULL, NULL, NULL},
    {"GET", "/app.css", false, web_style, NULL, NULL, NULL},
    /* The slideshow pages: the same HTML for every id (the script reads it). */
    {"GET", "/present/{id}", false, web_present, NULL, NULL, NULL},
    {"GET", "/watch/{id}", false, web_watch, NULL, NULL, NULL},
    {"GET", "/slides.js", false, web_slides_script, NULL, NULL, NULL},
    {"GET", "/slides.css", false, web_slides_style, NULL, NULL, NULL},
    /* The player page: the same HTML for every video (play.js reads the id). */
    {"GET", "/play/{id}", false, web_play, NULL, NULL, NULL},
    {"GET", "/publish", false, web_publish, NULL, NULL, NULL},
    {"GET", "/publish.js", false, web_publish_script, NULL, NULL, NULL},
    {"GET", "/play.js", false, web_play_script, NULL, NULL, NULL},
    {"GET", "/play.css", false, web_play_style, NULL, NULL, NULL},
    {"GET", "/hls.min.js", false, web_hls_script, NULL, NULL, NULL},
};
const int api_route_count = sizeof api_routes / sizeof *api_routes;

const char *api_storage_code(int err)
{
    if (store_error_is_exhausted(err)) return "overloaded";
    return store_error_is_full(err) ? "insufficient_storage" : "storage_failed";
}

void api_reply_overloaded(http_req *r)
{
    http_reply_error(r, 503, "overloaded",
                     "the server is out of file descriptors; retry later");
    http_reply_header(r, "Retry-After", "1");
}

void api_reply_storage_failed(http_req *r, int err)
{
    if (store_error_is_exhausted(err)) api_reply_overloaded(r);
    else if (store_error_is_full(err))
        http_reply_error(r, 507, "insufficient_storage",
                         "the server's storage is full: nothing was kept; try again later");
    else http_reply_error(r, 507, "storage_failed", "could not store the bytes");
}

bool api_rate_allowed(http_req *r)
{
    app *a = http_req_app(r);
    if (!a->limits) return true;
    /* The bucket is the key's: the hash of its token, as the key is stored
     * (authentication checked the header already). */
    const char *h = http_req_header(r, "Authorization");
    const char *token = h && strncasecmp(h, "Bearer ", 7) == 0 ? h + 7 : "";
    while (*token == ' ') token++;
    char hash[65];
    apikey_hash(token, hash);
    int retry;
    if (ratelimit_take(a->limits, hash, time_mono_seconds(), &retry)) return true;
    char after[16];
    snprintf(after, sizeof after, "%d", retry);
    http_reply_error(r, 429, "rate_limited", "this key started too many uploads or signatures; "
                                             "try again in %d s", retry);
    http_reply_header(r, "Retry-After", after);
    return false;
}

bool api_authenticate(void *ctx, const char *token, char owner[OWNER_MAX + 1])
{
    app *a = ctx;
    if (!apikey_token_well_formed(token)) return false;
    char hash[65];
    apikey_hash(token, hash);
    if (keycache_get(a->keys, hash, owner)) return true;
    db_conn *c = db_acquire(a->db);
    if (!c) return false;
    apikey k;
    bool ok = db_key_find_active(c, hash, &k) == DB_OK;
    db_release(a->db, c);
    if (!ok) return false;
    memcpy(owner, k.owner, sizeof k.owner);
    keycache_put(a->keys, hash, k.owner);
    return true;
}
