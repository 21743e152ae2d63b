/* app.h — what every API handler shares: the services of one running server.
 *
 * The app is built once by `assetd serve` and lives until it exits; handlers
 * get it through http_req_app().
 */
#ifndef ASSETD_APP_H
#define ASSETD_APP_H

#include "core/ingest.h"
#include "core/keycache.h"
#include "core/ratelimit.h"
#include "core/token.h"
#include "core/tus_digest.h"
#include "core/transfer.h"
#include "db/db.h"
#include "events/amqp_conn.h"
#include "events/hub.h"
#include "http/server.h"
#include "http/websocket.h"
#include "store/store.h"

#include <stdatomic.h>

#define WS_THREADS_MAX 16

/* How many listeners each slideshow has (api/slideshows.c). */
typedef struct audiences audiences;
audiences *audiences_new(void);
void audiences_free(audiences *a);

typedef struct app {
    db *db;
    store *store;
    uint64_t max_upload;
    uint64_t max_pixels;   /* --max-pixels: covers over it are refused at once */
    keycache *keys;        /* recently verified tokens; may be NULL */
    ratelimit *limits;     /* --rate-limit; NULL: none */
    sniffer *sniffer;      /* content-type detection, shared by all threads */
    http_server *server;   /* set once listening; for /metrics */
    hub *hub;              /* live event fan-out */
    struct webhooks *hooks;            /* the webhook dispatcher (woken by the hub) */
    struct amqp_events *amqp_events;   /* --events-amqp-exchange; NULL: off */
    bool runs_enabled;     /* --amqp-url is set: CSV runs (workers run them) */
    amqp_conn_url amqp_url;   /* parsed --amqp-url (consumer sessions declare queues) */
    struct run_waiters *run_waiters;   /* POST /simulate/ waiting for its run */
    /* WebSocket connections: one epoll thread per core, each connection on
     * one of them (round robin), so a fan-out's sends run in parallel. */
    ws_server *ws[WS_THREADS_MAX];
    int nws;
    _Atomic unsigned ws_next;
    size_t stream_queue;   /* unread bytes an event stream may hold */
    audiences *audiences;  /* listeners per slideshow, for the presenter */
    uint8_t secret[TOKEN_SECRET_LEN];   /* signs URL tokens (core/token.h) */
    bool webhook_allow_local;  /* loopback/link-local webhook targets allowed */
    transfer_signer signer;    /* signed direct transfers (core/transfer.h) */
    char public_url[256];      /* how clients reach us; "" = from the Host header */
    uint64_t max_sign_ttl;     /* seconds a signature may live */
    bool s3_redirect;          /* S3 downloads: 302 to a presigned GET, not a proxy */
    char page_csp[1536];       /* every page's Content-Security-Policy (web.c) */
    workpool *pool;            /* the server's work pool (tus lease renewals) */
    int64_t tus_expiry_ms;     /* a tus upload's life after its last PATCH */
    int64_t tus_lease_ms;      /* a tus writer's lease without renewal */
    tus_digests *tus_digests;  /* running SHA-256 of uploads in flight; may be NULL */
    /* What serve's gc removed since start (metrics): signed uploads never
     * completed, tus uploads past Upload-Expires. */
    _Atomic uint64_t gc_uploads, gc_tus, gc_tus_orphans;
    _Atomic int proxies;       /* downloads proxied from S3 right now (download.c) */
} app;

/* Lets WebSocket connections hold a hub message instead of a copy of it
 * (ws_conn_send_shared; api/events.c). */
extern const ws_shared_ops hub_msg_shared;

/* The route table of the whole API. */
extern const http_route api_routes[];
extern const int api_route_count;

/* http_auth_fn for the server: bearer token -> owner. */
bool api_authenticate(void *app, const char *token, char owner[OWNER_MAX + 1]);
/* --rate-limit: spends one of the request's API key's tokens; false with a
 * 429 (and Retry-After) set when it has none.  For what starts work or
 * signs: creating uploads, signing URLs.  Call after authentication. */
bool api_rate_allowed(http_req *r);

/* Handlers, one file per resource. */
void assets_create_handle(http_req *r);
bool assets_create_begin(http_req *r);
/* assets_create_begin with ?profile= (POST /v1/assets only: the kept APIs
 * that share the upload have fixed renditions). */
bool assets_post_begin(http_req *r);
bool assets_create_data(http_req *r, const char *data, size_t len);
/* The upload machinery, for other upload routes (slideshows): the body is
 * complete and well-formed (else a 400 is set), then, on the work pool,
 * the asset is stored with extra rows (see ingest_claim).  False: a reply
 * is set — by extra's caller when extra refused (INGEST_REFUSED). */
bool assets_upload_body_done(http_req *r);
bool assets_upload_store(http_req *r, ingest_extra_fn extra, void *arg, asset *out);
/* A short field of the upload's form (the first UPLOAD_FIELDS_MAX, each
 * up to UPLOAD_FIELD_MAX bytes): its value, NULL if not sent; *too_long
 * when it was longer, sent twice, or held a NUL.  Valid until the reply. */
#define UPLOAD_FIELDS_MAX 8
#define UPLOAD_FIELD_MAX 256
const char *assets_upload_field(http_req *r, const char *name, bool *too_long);
/* assets_upload_body_done for a form whose file part is optional (it may
 * name an uploaded asset instead); assets_upload_has_file then says
 * whether it came. */
bool assets_upload_form_done(http_req *r);
bool assets_upload_has_file(http_req *r);
/* After assets_create_begin: the form's file part has this name (static). */
void assets_upload_file_part(http_req *r, const char *name);
/* A blob to download (download.c): its store key, size (from the
 * database), how to label it. */
typedef struct blob_ref {
    const char *key;
    uint64_t size;
    const char *content_type;
    const char *etag;          /* quoted */
    const char *filename;
    bool as_attachment;
    /* Bytes a name may come to stand for others (a video's cover sizes,
     * which an owner's cover replaces): cached only with revalidation
     * instead of as immutable. */
    bool revalidate;
    /* Text that names other blobs by relative URL (HLS playlists, the DASH
     * manifest, the sprite sheet's WebVTT): never redirected, since a
     * client resolves those names against the URL it finally read, which
     * after a redirect is the bucket's, where the objects have other keys. */
    bool names_relative;
} blob_ref;
/* Replies with the blob: 304 on a matching If-None-Match, one Range (206,
 * 416), sendfile from a local store, a proxied stream from S3. */
void blob_send(http_req *r, const blob_ref *b);
/* Sends the rendition `name` of an asset already authorised (404 if it has
 * none by that name), with the caching/range behaviour of content. */
void assets_reply_rendition(http_req *r, const asset *as, const char *name);
/* Loads the caller's asset named by the path's first parameter, or
 * replies 404 (another owner's, or none) / 503 and returns false. */
bool assets_load(http_req *r, asset *out);
/* The same for the routes a video's player reads (manifest, renditions;
 * play.c): the owner is an API key's, or a play token's (?token=) when no
 * Authorization header is sent; false: a 401/404/503 is set. */
bool assets_load_playable(http_req *r, asset *out);
/* {"url", "token", "expires", "asset_id"} of a play link for the video as
 * (play.c), valid ttl seconds; false: a 500 is set. */
bool play_link(http_req *r, const asset *as, int64_t ttl, json_t **out);
void assets_get(http_req *r);
/* PATCH /v1/assets/{id}: title, description, tags (asset_info.c). */
void assets_patch(http_req *r);
/* PUT /v1/assets/{id}/cover (covers.c). */
bool covers_put_begin(http_req *r);
bool covers_put_data(http_req *r, const char *data, size_t len);
void covers_put(http_req *r);
/* GET /v1/assets/{id}/manifest.json (manifest.c). */
void manifest_get(http_req *r);
void assets_list(http_req *r);
void assets_content(http_req *r);
void assets_delete(http_req *r);
void assets_rendition(http_req *r);
void jobs_get(http_req *r);
void jobs_list(http_req *r);
void jobs_retry(http_req *r);
void events_stream(http_req *r);
/* For live streams a browser opens (no headers): the owner behind an API
 * key or an events token (?token=); false: a 401 is set. */
bool api_authenticate_stream(http_req *r, char owner[OWNER_MAX + 1]);
void events_token(http_req *r);
bool slideshows_upload_begin(http_req *r);
void slideshows_upload(http_req *r);
void slideshows_get(http_req *r);
void slideshows_slide(http_req *r);
void slideshows_control(http_req *r);
void slideshows_listen(http_req *r);
void webhooks_create(http_req *r);
void webhooks_list(http_req *r);
void webhooks_get(http_req *r);
void webhooks_delete(http_req *r);
void webhooks_deliveries(http_req *r);
void ops_healthz(http_req *r);
/* The kept cloud-asset-uploader (cloud.c) and open-table (opentable.c)
 * APIs; POST /api/upload is both, chosen by Content-Type (cloud.c). */
bool legacy_upload_begin(http_req *r);
bool legacy_upload_data(http_req *r, const char *data, size_t len);
void legacy_upload(http_req *r);
void cloud_status(http_req *r);
void cloud_access(http_req *r);
bool opentable_upload_begin(http_req *r);
bool opentable_upload_data(http_req *r, const char *data, size_t len);
void opentable_upload(http_req *r);
void opentable_images(http_req *r);
void opentable_live(http_req *r);
void uploads_create(http_req *r);
void uploads_get(http_req *r);
void uploads_complete(http_req *r);
void assets_link(http_req *r);
/* runs.c: CSV runs and the people table. */
/* False, with a 503 set, when the server has no broker (--amqp-url). */
bool runs_configured(http_req *r);
bool runs_create_begin(http_req *r);
/* On the work pool, after the form's body: reads its settings and source
 * (a file part, or asset_id) and records the run (with the CSV's asset, in
 * one transaction).  status 202 with run, or an error for the caller to
 * reply in its own shape (publish.c answers pages).  Nothing is replied. */
typedef struct run_start {
    int status;
    char code[48];
    char message[300];
    run_rec run;
} run_start;
void runs_start(http_req *r, run_start *out);
void runs_create(http_req *r);
void runs_list(http_req *r);
void runs_get(http_req *r);
void runs_report(http_req *r);
void runs_cancel(http_req *r);
void people_list(http_req *r);
/* consumer.c: the original consumer's protocol under /consumer/. */
void consumer_create(http_req *r);
void consumer_process(http_req *r);
void consumer_get(http_req *r);
void consumer_remove(http_req *r);
void consumer_list(http_req *r);
void consumer_health(http_req *r);
/* publish.c: the original publisher's form target. */
bool publish_simulate_begin(http_req *r);
void publish_simulate(http_req *r);
void signed_get(http_req *r);
bool signed_put_begin(http_req *r);
bool signed_put_data(http_req *r, const char *data, size_t len);
void signed_put(http_req *r);
bool signed_post_begin(http_req *r);
bool signed_post_data(http_req *r, const char *data, size_t len);
void signed_post(http_req *r);
/* tus (tus.c): resumable uploads; tus_cors for their routes. */
extern const http_cors tus_cors;
void tus_options(http_req *r);
bool tus_create_begin(http_req *r);
bool tus_create_data(http_req *r, const char *data, size_t len);
void tus_create(http_req *r);
void tus_head(http_req *r);
bool tus_patch_begin(http_req *r);
bool tus_patch_data(http_req *r, const char *data, size_t len);
void tus_patch(http_req *r);
void tus_delete(http_req *r);

/* The reply for a store that refused bytes, from the errno it left: a full
 * disk is 507 `insufficient_storage` (try again later), a process out of
 * file descriptors 503 `overloaded` with Retry-After (api_reply_overloaded),
 * the rest 507 `storage_failed`.  api_storage_code() returns the code. */
const char *api_storage_code(int err);
void api_reply_storage_failed(http_req *r, int err);
void api_reply_overloaded(http_req *r);

/* What signed transfers share (uploads.c), for every API that signs. */
/* How clients reach this server: --public-url, else http:// + Host. */
void api_base_url(http_req *r, char *out, size_t cap);
/* A signature's lifetime from a JSON value: absent -> fallback; else an
 * integer 1..max, or false with why. */
bool api_parse_ttl(const json_t *v, int64_t fallback, uint64_t max, int64_t *out,
                   const char **why);
/* {"url", "fields": {...}} of a signed POST form. */
json_t *api_form_json(const char *url, const sigv4_form *form);
/* Adds "post" (form) and "put" (URL) for u's bytes to o; false: a 500 is set. */
bool api_sign_upload(http_req *r, const upload_rec *u, int64_t ttl, json_t *o);
/* {"url", "expires", "asset_id"} of a signed download; false: a 500 is set. */
bool api_signed_link(http_req *r, const asset *as, int64_t ttl, bool attachment, json_t **out);
typedef enum {
    COMPLETE_OK, COMPLETE_ALREADY, COMPLETE_MISSING, COMPLETE_SIZE_MISMATCH,
    COMPLETE_SHA_MISMATCH, COMPLETE_STORAGE_FAILED, COMPLETE_DB_ERROR,
} complete_result;
/* Checks u's object against its promise and records the asset (blocking:
 * a work-pool thread). */
complete_result api_complete_upload(app *a, const upload_rec *u, asset *out);

/* Small JSON request bodies (json_body.c): body_begin/body_data for the
 * route table (with body_max JSON_BODY_MAX), then json_body_object() in the
 * handler (NULL: a 400/413 is set).  The caller owns the object. */
#define JSON_BODY_MAX (64 * 1024)
bool json_body_begin(http_req *r);
bool json_body_data(http_req *r, const char *data, size_t len);
json_t *json_body_object(http_req *r);
/* ?limit= of a list (query.c): absent → fallback; else 1..max, or a 400 is
 * set and false returned. */
bool query_limit(http_req *r, int fallback, int max, int *out);
void ops_readyz(http_req *r);
void ops_metrics(http_req *r);
void web_page(http_req *r);
void web_script(http_req *r);
void web_upload_script(http_req *r);
void web_tus_script(http_req *r);
void web_style(http_req *r);
void web_present(http_req *r);
void web_watch(http_req *r);
void web_slides_script(http_req *r);
void web_slides_style(http_req *r);
void web_play(http_req *r);
void web_play_script(http_req *r);
void web_play_style(http_req *r);
void web_hls_script(http_req *r);
void web_publish(http_req *r);
/* The headers of every HTML page (CSP, nosniff, no-referrer), for pages
 * built by handlers (run reports): call after setting the reply. */
void web_page_headers(http_req *r);
/* Writes a->page_csp, once at start-up, after a->signer and s3_redirect. */
void web_policy_make(app *a);
void web_publish_script(http_req *r);
/* POST /v1/assets/{id}/slideshow: the owner makes a deck a slideshow. */
void slideshows_make(http_req *r);

#endif
