/* slideshows.c — the original slideshow service's API, kept so its clients
 * work, on top of assets, the document pipeline and the event log.
 *
 *   POST /api/v1/slideshow/upload            multipart `file`, an API key
 *   GET  /api/v1/slideshow/{id}.json         public by id
 *   GET  /api/v1/slideshow/{id}/slide/{n}.jpg  public by id (the slides list)
 *   POST /api/v1/slideshow/{id}/control      {"current": n}, control token
 *   GET  /api/v1/slideshow/{id}/listen       WebSocket, public (alias /updates)
 *   POST /v1/assets/{id}/slideshow           the owner makes a deck a slideshow
 *
 * A slideshow is a document asset (kind pdf or presentation, its slides are
 * its renditions on /v1) plus a row with the current slide and the SHA-256
 * of its control token.  The token is returned once, by the upload; the
 * owner's API key works too.  Ids are the asset ids: 128 random bits, not
 * the guessable sequence of the original.
 *
 * Control changes are `slideshow.control` events in the event log, written
 * in the same transaction as the change; listeners are hub subscriptions to
 * that asset's control events, each first sent the current state (late
 * joiners see the current slide at once), then every change as the same
 * JSON the control call returned: {"id","current","updated"}.
 *
 * Dates keep the original's format, "YYYY-MM-DD HH:MM:SS -0000" (UTC).
 */
#include "api/app.h"
#include "media/office.h"
#include "util/parse.h"
#include "util/timefmt.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONTROL_TOKEN_BYTES 32

/* "2026-11-23T23:47:57.672Z" -> "2026-11-23 23:47:57 -0000" */
static void legacy_time(const char *iso, char out[32])
{
    snprintf(out, 32, "%.10s %.8s -0000", iso, iso + 11);
}

/* "http://host" from the request's Host header: the original returned
 * absolute URLs. */
static void base_url(http_req *r, const char *scheme, char *out, size_t cap)
{
    const char *host = http_req_header(r, "Host");
    bool sane = host && *host && strlen(host) < 200 && !strpbrk(host, " \"\\<>/");
    snprintf(out, cap, "%s://%s", scheme, sane ? host : "127.0.0.1");
}

static const char *status_name(asset_status st)
{
    static const char *names[] = {"PENDING", "PROCESSING", "READY", "ERROR"};
    return names[st];
}

static json_t *control_json(const slideshow *sh)
{
    return json_pack("{s:s, s:i, s:s}", "id", sh->asset_id, "current", sh->current, "updated",
                     sh->updated);
}

/* The public JSON of a slideshow. */
static json_t *show_json(http_req *r, const asset *a, const slideshow *sh, int pages)
{
    char http[256], ws[256], created[32], url[512];
    base_url(r, "http", http, sizeof http);
    base_url(r, "ws", ws, sizeof ws);
    legacy_time(a->created, created);
    json_t *slides = json_array();
    for (int i = 1; a->status == STATUS_READY && i <= pages; i++) {
        snprintf(url, sizeof url, "%s/api/v1/slideshow/%s/slide/%03d.jpg", http, a->id, i);
        json_array_append_new(slides, json_string(url));
    }
    char self[512], listen[512];
    snprintf(self, sizeof self, "%s/api/v1/slideshow/%s.json", http, a->id);
    snprintf(listen, sizeof listen, "%s/api/v1/slideshow/%s/listen", ws, a->id);
    json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:o, s:{s:{s:s}, s:{s:s}}}", "id", a->id,
                          "status", status_name(a->status), "current", sh->current, "created",
                          created, "slides", slides, "_links", "self", "href", self,
                          "websocket", "href", listen);
    if (a->status == STATUS_FAILED)
        json_object_set_new(o, "error", json_pack("{s:s, s:s}", "code", a->error_code,
                                                  "message", a->error_message));
    return o;
}

/* ---------- audience counts ---------- */

/* A short list (one entry per slideshow with listeners now), so counting
 * costs nothing on the fan-out path: +1 when a listener opens, -1 when it
 * closes. */
typedef struct audience_count {
    char id[ID_LEN + 1];
    int n;
    struct audience_count *next;
} audience_count;

struct audiences {
    pthread_mutex_t lock;
    audience_count *head;
};

audiences *audiences_new(void)
{
    audiences *a = calloc(1, sizeof *a);
    if (a) pthread_mutex_init(&a->lock, NULL);
    return a;
}

void audiences_free(audiences *a)
{
    if (!a) return;
    while (a->head) {
        audience_count *next = a->head->next;
        free(a->head);
        a->head = next;
    }
    pthread_mutex_destroy(&a->lock);
    free(a);
}

/* Adds delta to id's count (an entry at 0 goes); returns the count. */
static int audiences_add(audiences *a, const char *id, int delta)
{
    if (!a) return 0;
    pthread_mutex_lock(&a->lock);
    audience_count **p = &a->head;
    while (*p && strcmp((*p)->id, id) != 0) p = &(*p)->next;
    if (!*p && delta > 0 && (*p = calloc(1, sizeof **p)))
        snprintf((*p)->id, sizeof (*p)->id, "%s", id);
    int n = 0;
    if (*p) {
        n = (*p)->n += delta;
        if (n <= 0) {
            audience_count *gone = *p;
            *p = gone->next;
            free(gone);
        }
    }
    pthread_mutex_unlock(&a->lock);
    return n;
}

/* ---------- upload ---------- */

/* The slideshow row of deck a, with a new control token (returned in token,
 * kept only as its hash). */
static db_status insert_show(db_conn *c, const asset *a, char token[64])
{
    uint8_t raw[CONTROL_TOKEN_BYTES];
    if (RAND_bytes(raw, sizeof raw) != 1) return DB_ERROR;
    slideshow sh = {0};
    memcpy(token, "ct_", 3);
    b64url_encode(raw, sizeof raw, token + 3);
    snprintf(sh.asset_id, sizeof sh.asset_id, "%s", a->id);
    apikey_hash(token, sh.token_sha256);
    legacy_time(a->created, sh.updated);
    return db_slideshow_insert(c, &sh);
}

typedef struct upload_show {
    char token[64];            /* "ct_" + 43 base64url characters */
    const char *refusal;       /* set when the file is not a document */
} upload_show;

static db_status add_slideshow(db_conn *c, const asset *a, void *arg)
{
    upload_show *u = arg;
    if (a->kind != ASSET_PDF && a->kind != ASSET_PRESENTATION) {
        u->refusal = "upload a PDF or a presentation (PPTX, PPT, ODP, Keynote)";
        return DB_NOT_FOUND;
    }
    if (a->kind == ASSET_PRESENTATION && !office_available()) {
        u->refusal = "presentations need LibreOffice on the server: " OFFICE_INSTALL_HINT;
        return DB_NOT_FOUND;
    }
    return insert_show(c, a, u->token);
}

static void upload_work(http_req *r)
{
    upload_show u = {0};
    asset a;
    if (!assets_upload_store(r, add_slideshow, &u, &a)) {
        if (u.refusal) http_reply_error(r, 415, "unsupported_media_type", "%s", u.refusal);
        return;
    }
    slideshow sh = {.current = 0};
    snprintf(sh.asset_id, sizeof sh.asset_id, "%s", a.id);
    json_t *o = show_json(r, &a, &sh, 0);
    json_object_set_new(o, "control_token", json_string(u.token));
    http_reply_json(r, 200, o);
}

bool slideshows_upload_begin(http_req *r)
{
    if (!api_rate_allowed(r)) return false;
    const char *type = http_req_header(r, "Content-Type");
    if (!type || strncasecmp(type, "multipart/form-data", 19) != 0) {
        http_reply_error(r, 400, "invalid_multipart", "send multipart/form-data with one part "
                                                      "named 'file'");
        return false;
    }
    return assets_create_begin(r);
}

void slideshows_upload(http_req *r)
{
    if (assets_upload_body_done(r)) http_req_defer(r, upload_work);
}

/* ---------- reads ---------- */

/* The slideshow named by the path (public); false: 404/503 sent. */
static bool load_show(http_req *r, const char *id, asset *a, slideshow *sh)
{
    app *app_ = http_req_app(r);
    db_status st = DB_NOT_FOUND;
    if (id_is_valid(id)) {
        db_conn *c = db_acquire(app_->db);
        st = c ? db_slideshow_get(c, id, sh) : DB_ERROR;
        if (st == DB_OK) st = db_asset_get_any(c, id, a);
        db_release(app_->db, c);
    }
    if (st == DB_NOT_FOUND) http_reply_error(r, 404, "not_found", "no such slideshow");
    else if (st != DB_OK) http_reply_error(r, 503, "database_unavailable", "try again");
    return st == DB_OK;
}

static int pages_of(const asset *a)
{
    json_t *meta = json_loads(a->meta, 0, NULL);
    int pages = (int)json_integer_value(json_object_get(meta, "pages"));
    json_decref(meta);
    return pages;
}

void slideshows_get(http_req *r)
{
    const char *file = http_req_param(r, 0);
    size_t n = strlen(file);
    char id[ID_LEN + 1] = "";
    if (n == ID_LEN + 5 && strcmp(file + ID_LEN, ".json") == 0) memcpy(id, file, ID_LEN);
    asset a;
    slideshow sh;
    if (!load_show(r, id, &a, &sh)) return;
    json_t *o = show_json(r, &a, &sh, pages_of(&a));
    app *ap = http_req_app(r);
    /* New: how many are watching (the presenter page shows it). */
    json_object_set_new(o, "listeners", json_integer(audiences_add(ap->audiences, a.id, 0)));
    http_reply_json(r, 200, o);
}

void slideshows_slide(http_req *r)
{
    asset a;
    slideshow sh;
    if (!load_show(r, http_req_param(r, 0), &a, &sh)) return;
    const char *file = http_req_param(r, 1);
    uint64_t n = 0;
    char digits[8] = "", name[32];
    size_t len = strlen(file);
    if (len > 4 && len < 4 + sizeof digits && strcmp(file + len - 4, ".jpg") == 0)
        memcpy(digits, file, len - 4);
    if (!parse_u64(digits, &n) || n < 1 || n > 9999) {
        http_reply_error(r, 404, "not_found", "no such slide");
        return;
    }
    snprintf(name, sizeof name, "slide_%03d", (int)n);
    assets_reply_rendition(r, &a, name);
}

/* ---------- POST /v1/assets/{id}/slideshow ---------- */

/* A deck that came in any other way (the gallery, /v1/assets, tus) becomes
 * a slideshow when its owner asks — the gallery's presenter and audience
 * pages do — and is public by id from then on, like an upload to
 * /api/v1/slideshow/upload.  201 with the control token the first time;
 * 200 without it after (it was returned once; the owner's key controls the
 * deck as well).  Look-up and insert share one write transaction, so two
 * calls at once make one row. */
static void make_work(http_req *r)
{
    app *ap = http_req_app(r);
    asset a;
    slideshow sh = {.current = 0};
    char token[64] = "";
    db_conn *c = db_acquire(ap->db);
    bool began = c && db_begin(c) == DB_OK, committed = false;
    db_status st = began ? db_asset_get(c, http_req_owner(r), http_req_param(r, 0), &a)
                         : DB_ERROR;
    bool deck = st == DB_OK && (a.kind == ASSET_PDF || a.kind == ASSET_PRESENTATION);
    if (deck && (st = db_slideshow_get(c, a.id, &sh)) == DB_NOT_FOUND &&
        (st = insert_show(c, &a, token)) == DB_OK)
        committed = (st = db_commit(c)) == DB_OK;
    if (began && !committed) db_rollback(c);   /* nothing written, or a failure */
    db_release(ap->db, c);
    if (st == DB_NOT_FOUND) {
        http_reply_error(r, 404, "not_found", "no such asset");
    } else if (st != DB_OK) {
        http_reply_error(r, 503, "database_unavailable", "try again");
    } else if (!deck) {
        http_reply_error(r, 409, "not_a_deck", "only a PDF or a presentation can be a slideshow");
    } else {
        snprintf(sh.asset_id, sizeof sh.asset_id, "%s", a.id);
        json_t *o = show_json(r, &a, &sh, pages_of(&a));
        if (token[0]) json_object_set_new(o, "control_token", json_string(token));
        http_reply_json(r, token[0] ? 201 : 200, o);
    }
}

void slideshows_make(http_req *r)
{
    if (!id_is_valid(http_req_param(r, 0))) {
        http_reply_error(r, 404, "not_found", "no such asset");
        return;
    }
    http_req_defer(r, make_work);
}

/* ---------- control ---------- */

/* The control token, or the owner's API key. */
static int control_auth(http_req *r, const asset *a, const slideshow *sh)
{
    const char *auth = http_req_header(r, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) return 401;
    char hash[65], owner[OWNER_MAX + 1];
    apikey_hash(auth + 7, hash);
    if (CRYPTO_memcmp(hash, sh->token_sha256, 64) == 0) return 0;
    if (api_authenticate(http_req_app(r), auth + 7, owner) && strcmp(owner, a->owner) == 0)
        return 0;
    return 403;
}

/* {"current": n} with n an integer; false: 400 sent. */
static bool parse_current(http_req *r, json_t *body, int *current)
{
    json_t *v = json_object_get(body, "current");
    if (!json_is_integer(v)) {
        http_reply_error(r, 400, "invalid_current", "current must be an integer");
        return false;
    }
    json_int_t n = json_integer_value(v);
    *current = n < 0 || n > 100000 ? -1 : (int)n;
    return true;
}

static void control_work(http_req *r)
{
    app *ap = http_req_app(r);
    asset a;
    slideshow sh;
    if (!load_show(r, http_req_param(r, 0), &a, &sh)) return;
    int denied = control_auth(r, &a, &sh);
    if (denied) {
        http_reply_error(r, denied, denied == 401 ? "unauthorized" : "forbidden",
                         "send Authorization: Bearer CONTROL_TOKEN (or the owner's API key)");
        return;
    }
    json_t *body = json_body_object(r);
    int current;
    bool ok = body && parse_current(r, body, &current);
    json_decref(body);
    if (!ok) return;
    int pages = pages_of(&a);
    if (a.status != STATUS_READY) {
        http_reply_error(r, 409, "not_ready", "the slideshow is %s", status_name(a.status));
        return;
    }
    if (current < 0 || current >= pages) {
        http_reply_error(r, 400, "invalid_current", "current must be 0..%d", pages - 1);
        return;
    }
    int64_t now = time_now_ms();
    char iso[32], updated[32], data[160];
    time_format_ms(now, iso);
    legacy_time(iso, updated);
    snprintf(data, sizeof data, "{\"id\":\"%s\",\"current\":%d,\"updated\":\"%s\"}", a.id, current,
             updated);
    db_conn *c = db_acquire(ap->db);
    db_status st = c && db_begin(c) == DB_OK
                       ? db_slideshow_set_current(c, a.id, a.owner, current, now, updated, data,
                                                  &sh)
                       : DB_ERROR;
    if (st == DB_OK && db_commit(c) != DB_OK) st = DB_ERROR;
    if (st != DB_OK && c) db_rollback(c);
    db_release(ap->db, c);
    if (st != DB_OK) {
        http_reply_error(r, 503, "database_unavailable", "try again");
        return;
    }
    hub_poke(ap->hub);
    http_reply_json(r, 200, control_json(&sh));
}

void slideshows_control(http_req *r) { http_req_defer(r, control_work); }

/* ---------- listeners ---------- */

typedef struct audience {
    app *app;
    hub_sub *sub;
    bool counted;              /* on_open ran: on_close takes it off the count */
    ws_conn *ws;
    hub_filter filter;
    char state[160];           /* the first message: the current slide */
} audience;

/* Listeners get the event's data alone: {"id","current","updated"}. */
static bool audience_deliver(void *arg, hub_msg *m)
{
    audience *au = arg;
    const char *data = strstr(m->text, ",\"data\":");
    if (!data) return true;
    data += 8;
    size_t len = m->len - (size_t)(data - m->text) - 1;   /* the envelope's closing brace */
    return ws_conn_send_shared(au->ws, data, len, &hub_msg_shared, m);
}

static void audience_closing(void *arg)
{
    ws_conn_close(((audience *)arg)->ws, 1001, "server stopping");
}

static const hub_sink audience_sink = {audience_deliver, NULL, audience_closing};

static void audience_open(void *arg, ws_conn *c)
{
    audience *au = arg;
    au->ws = c;
    au->counted = true;
    audiences_add(au->app->audiences, au->filter.asset_id, 1);
    ws_conn_send_text(c, au->state, strlen(au->state));
    au->sub = hub_subscribe(au->app->hub, &au->filter, &audience_sink, au);
}

static void audience_close(void *arg, ws_conn *c)
{
    audience *au = arg;
    hub_unsubscribe(au->app->hub, au->sub);
    if (au->counted) audiences_add(au->app->audiences, au->filter.asset_id, -1);
    free(au);
}

static const ws_handler audience_ws = {audience_open, NULL, audience_close};

void slideshows_listen(http_req *r)
{
    app *ap = http_req_app(r);
    asset a;
    slideshow sh;
    int64_t oldest, newest = 0;
    /* The cursor is read before the state: a change in between is both in
     * the state and replayed (the same slide twice), never lost. */
    db_conn *c = db_acquire(ap->db);
    bool read = c && db_events_bounds(c, &oldest, &newest) == DB_OK;
    db_release(ap->db, c);
    if (!load_show(r, http_req_param(r, 0), &a, &sh)) return;
    audience *au = read ? calloc(1, sizeof *au) : NULL;
    if (!au) {
        http_reply_error(r, 503, "database_unavailable", "try again");
        return;
    }
    au->app = ap;
    snprintf(au->filter.owner, sizeof au->filter.owner, "%s", a.owner);
    snprintf(au->filter.asset_id, sizeof au->filter.asset_id, "%s", a.id);
    hub_filter_set_types(&au->filter, "slideshow.control");
    au->filter.since = newest;
    json_t *state = control_json(&sh);
    json_dumpb(state, au->state, sizeof au->state - 1, JSON_COMPACT);
    json_decref(state);
    ws_server *ws = ap->ws[atomic_fetch_add(&ap->ws_next, 1) % (unsigned)ap->nws];
    if (!http_reply_websocket(r, ws, &audience_ws, au)) free(au);
}
