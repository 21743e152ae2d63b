/* app.c (tests/fuzz) — see app.h. */
#include "app.h"
#include "cli/cli.h"
#include "fuzz.h"

#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

fuzz_app fuzz_the_app;
static char *data_dir;

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

/* The data directory goes when the fuzzer exits normally (a crash leaves
 * it, with the state that led there). */
static void remove_data_dir(void)
{
    if (data_dir) nftw(data_dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "fuzz app: %s: %s\n", what, err ? err : "");
    abort();
}

/* The body of the answer to one request of the set-up's own; its Location
 * header into location (if not NULL). */
static json_t *request(const char *text, int want, char *location, size_t cap)
{
    size_t got;
    char *out = fuzz_exchange(fuzz_the_app.port, text, strlen(text), &got);
    fuzz_response r;
    fuzz_parse_response(out, got, false, &r);
    if (r.status != want) die("set-up request failed", out);
    if (location && !fuzz_response_header(&r, "Location", location, cap)) die("no Location", out);
    json_t *doc = json_loadb(r.body, r.body_len, 0, NULL);
    free(out);
    return doc;
}

fuzz_app *fuzz_app_start(void)
{
    fuzz_app *f = &fuzz_the_app;
    if (f->port) return f;
    const char *err = NULL;
    /* On tmpfs when there is one: every upload fsyncs, and on a disk that
     * would be most of what a run spends. */
    char tmpl[64];
    snprintf(tmpl, sizeof tmpl, "%s/assetd-fuzz-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    const char *dir = mkdtemp(tmpl);
    if (!dir) die("mkdtemp", NULL);
    dir = data_dir = strdup(dir);
    atexit(remove_data_dir);
    app *a = &f->a;
    a->max_upload = 1 << 20;
    a->max_pixels = 100000000;
    a->keys = keycache_new(5000);
    a->audiences = audiences_new();
    a->tus_expiry_ms = 86400000;
    a->tus_lease_ms = 30000;
    a->max_sign_ttl = 3600;
    a->stream_queue = 1 << 20;
    if (!(a->db = db_open(dir, NULL, &err))) die("db_open", err);
    if (!(a->store = store_fs_open(dir, &err))) die("store_fs_open", err);
    if (!(a->sniffer = sniffer_new())) die("sniffer_new", NULL);
    db_conn *c = db_acquire(a->db);
    if (!c || !token_secret_adopt(c, dir, a->secret)) die("token_secret_adopt", NULL);
    transfer_signer_disk(&a->signer, a->secret, sizeof a->secret);
    web_policy_make(a);
    apikey k;
    if (!c || !keys_create(c, "fuzz", "fuzz", f->key, &k)) die("keys_create", NULL);
    db_release(a->db, c);
    hub_config hc = {.data_dir = dir, .retention_ms = 86400000, .poll_ms = 250};
    if (!(a->hub = hub_start(a->db, &hc, &err))) die("hub_start", err);
    ws_config wc = {.ping_interval = 30, .pong_timeout = 10, .max_queued_bytes = 1 << 20,
                    .max_message = 4096, .close_grace = 1};
    if (!(a->ws[0] = ws_server_start(&wc, &err))) die("ws_server_start", err);
    a->nws = 1;
    if (!(a->pool = workpool_new(2))) die("workpool_new", NULL);
    http_server_config cfg = {.host = "127.0.0.1", .port = 0, .threads = 1,
                              .max_connections = 64, .idle_timeout = 60, .header_timeout = 60,
                              .body_timeout = 60, .connection_memory = 32 * 1024,
                              .max_body = a->max_upload, .access_log = "off",
                              .cors_origins = "https://app.example"};
    if (!(a->server = http_server_start(&cfg, api_routes, api_route_count, a, api_authenticate,
                                        a->pool, &err)))
        die("http_server_start", err);
    f->port = http_server_port(a->server);

    fuzz_app_remake_asset(f);
    fuzz_app_remake_tus(f);
    return f;
}

void fuzz_app_remake_asset(fuzz_app *f)
{
    char text[512];
    snprintf(text, sizeof text,
             "POST /v1/assets?filename=hello.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Authorization: Bearer %s\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\n"
             "hello, fuzz\n", f->key);
    json_t *doc = request(text, 201, NULL, 0);
    snprintf(f->asset, sizeof f->asset, "%s", json_string_value(json_object_get(doc, "id")));
    json_decref(doc);
}

void fuzz_app_remake_tus(fuzz_app *f)
{
    char text[512], location[256];
    snprintf(text, sizeof text,
             "POST /v1/tus HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
             "Tus-Resumable: 1.0.0\r\nUpload-Length: 100\r\nContent-Length: 0\r\n\r\n", f->key);
    json_decref(request(text, 201, location, sizeof location));
    const char *slash = strrchr(location, '/');
    snprintf(f->tus, sizeof f->tus, "%s", slash ? slash + 1 : "");
    if (strlen(f->tus) != ID_LEN) die("tus Location", location);
}
