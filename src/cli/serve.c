/* serve.c — `assetd serve`: the embedded server.
 *
 * Start-up order matters:
 *   1. lock the data directory (one serve per directory: the start-up sweep
 *      below would otherwise delete another server's uncommitted blobs);
 *   2. open and migrate the database, open the store;
 *   3. sweep: delete temp files and blobs without a row (crash leftovers);
 *   4. create the bootstrap key if there is no key at all;
 *   5. block SIGTERM/SIGINT in every thread (the main thread takes them
 *      with sigtimedwait), then start the work pool, the webhook
 *      dispatcher, the AMQP event publisher (--events-amqp-exchange; it
 *      connects on its own, so a broker that is down delays only its
 *      events), the event hub, the WebSocket threads (one per core), the
 *      HTTP server and last the worker processes (start_services).
 *
 * Finished jobs and deliveries past --history-retention are trimmed before
 * serving and then once a minute by the main thread, which otherwise only
 * waits for those signals.
 *
 * Shutdown on SIGTERM/SIGINT (stop_services): stop accepting, end event
 * streams, close WebSockets with 1001, give in-flight requests up to
 * --shutdown-timeout seconds, drain the work pool, close connections, stop
 * the event threads and the workers (each finishes its job), exit 0.
 */
#include "api/app.h"
#include "api/run_wait.h"
#include "cli/cli.h"
#include "cli/config.h"
#include "core/ingest.h"
#include "core/tus.h"
#include "events/amqp.h"
#include "events/webhooks.h"
#include "queue/supervisor.h"
#include "util/log.h"
#include "util/timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char usage_head[] =
    "usage: assetd serve [options]\n"
    "\n"
    "Serves the HTTP API on the embedded default: SQLite and local disk under\n"
    "--data.  On first start with no API key, creates one and writes it to\n"
    "DATA/admin.key.\n"
    "\n"
    "options (each also as an environment variable):\n";

static int lock_data_dir(const char *dir)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return -2;
    }
    return fd;
}

static bool bootstrap_key(db_conn *c, const char *dir)
{
    int64_t count;
    if (db_key_count(c, &count) != DB_OK) return false;
    if (count > 0) return true;
    char token[APIKEY_TOKEN_LEN + 1], path[1100];
    apikey k;
    if (!keys_create(c, "admin", "admin", token, &k)) return false;
    snprintf(path, sizeof path, "%s/admin.key", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool written = fd >= 0 && fchmod(fd, 0600) == 0 && dprintf(fd, "%s\n", token) > 0 &&
                   fsync(fd) == 0;
    if (fd >= 0) close(fd);
    log_info("bootstrap key created", "token", token, "key_id", k.id, "file",
             written ? path : "(could not write)", NULL);
    return true;
}

static bool prepare(const config *cfg, app *a)
{
    const char *err;
    if (!(a->db = db_open(cfg->data_dir, cfg->db_url, &err))) {
        log_error("cannot open data directory", "dir", cfg->data_dir, "error", err, NULL);
        return false;
    }
    if (!(a->store = config_open_store(cfg, &err))) {
        log_error("cannot open the store", "store", cfg->store, "error", err, NULL);
        return false;
    }
    if (!(a->sniffer = sniffer_new())) return false;   /* logged */
    db_conn *c = db_acquire(a->db);
    if (!c) return false;
    bool ok = token_secret_adopt(c, cfg->data_dir, a->secret);   /* logged */
    db_release(a->db, c);
    if (!ok) return false;
    store_s3_config s3 = {.endpoint = cfg->s3_endpoint, .region = cfg->s3_region};
    if (strcmp(cfg->store, "disk") == 0) {
        transfer_signer_disk(&a->signer, a->secret, sizeof a->secret);
    } else if (!store_s3_parse_url(cfg->store, &s3) || !transfer_signer_s3(&a->signer, &s3)) {
        log_error("S3 credentials missing: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", NULL);
        return false;
    }
    snprintf(a->public_url, sizeof a->public_url, "%s", cfg->public_url);
    size_t n = strlen(a->public_url);
    while (n > 0 && a->public_url[n - 1] == '/') a->public_url[--n] = '\0';
    a->max_sign_ttl = cfg->max_sign_ttl < SIGV4_MAX_EXPIRES ? cfg->max_sign_ttl : SIGV4_MAX_EXPIRES;
    a->s3_redirect = cfg->s3_redirect && a->signer.to_s3;
    web_policy_make(a);
    char why[160];
    a->runs_enabled = *cfg->amqp_url != '\0' &&
                      amqp_conn_parse_url(cfg->amqp_url, &a->amqp_url, why, sizeof why);
    if (!(c = db_acquire(a->db))) return false;
    char removed[24];
    snprintf(removed, sizeof removed, "%d", store_sweep(a->store, ingest_key_is_live, c));
    log_info("recovery sweep done", "files_removed", removed, NULL);
    ok = bootstrap_key(c, cfg->data_dir);
    db_release(a->db, c);
    return ok;
}

/* Worker processes: this binary again, as `assetd worker` on our data. */
static supervisor *start_workers(const config *cfg)
{
    if (cfg->workers == 0) return NULL;
    /* --amqp-url is a secret: the workers read it from their environment,
     * never from a command line (config_to_args leaves it out). */
    if (*cfg->amqp_url) setenv("ASSETD_AMQP_URL", cfg->amqp_url, 1);
    if (*cfg->db_url) setenv("ASSETD_DB", cfg->db_url, 1);
    char buf[8192], *argv[48] = {"assetd", "worker"};
    supervisor *s = NULL;
    if (config_to_args(cfg, CONFIG_WORKER_FLAGS, buf, sizeof buf, argv + 2, 46) >= 0)
        s = supervisor_start((int)cfg->workers, argv);
    if (!s) log_error("cannot start worker processes", NULL);
    return s;
}

/* POST /simulate/ requests waiting for their run at once, at most. */
#define RUN_WAITERS_MAX 64

static void wait_for_drain(http_server *s, uint64_t timeout)
{
    double deadline = time_mono_seconds() + (double)timeout;
    while (http_server_in_flight(s) > 0 && time_mono_seconds() < deadline) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* What run() starts, stopped in reverse by stop_services(); NULL members
 * were not started. */
typedef struct services {
    workpool *pool;
    webhooks *hooks;
    supervisor *workers;
} services;

/* The hub found new events: wake their other readers. */
static void wake_readers(void *arg)
{
    app *a = arg;
    webhooks_poke(a->hooks);
    amqp_events_poke(a->amqp_events);
}

/* --events-amqp-exchange: the publisher; NULL (and true) without it. */
static bool start_amqp_events(const config *cfg, app *a, const char **err)
{
    if (!*cfg->events_amqp_exchange) return true;
    amqp_events_config acfg = {
        .exchange = cfg->events_amqp_exchange, .window = 256, .poll_ms = 250,
        .timeout_ms = 10000, .confirm_timeout_ms = 30000,
        .backoff_min_ms = 500, .backoff_max_ms = 30000,
    };
    char why[160];
    /* config_parse checked it already */
    bool ok = amqp_conn_parse_url(cfg->amqp_url, &acfg.url, why, sizeof why) &&
              (a->amqp_events = amqp_events_start(a->db, &acfg, err)) != NULL;
    memset(&acfg.url, 0, sizeof acfg.url);
    if (!a->amqp_events && ok) return false;
    if (!ok) *err = "--amqp-url does not parse";
    return ok;
}

static bool start_events(const config *cfg, app *a, services *sv, const char **err)
{
    webhooks_config wcfg = {
        .allow_local = cfg->webhook_allow_local != 0, .retry_base_ms = (int64_t)cfg->webhook_retry_ms,
        .retry_window_ms = (int64_t)cfg->webhook_retry_window * 1000,
        .timeout_s = (long)cfg->webhook_timeout, .max_in_flight = 32, .poll_ms = 250,
    };
    a->webhook_allow_local = wcfg.allow_local;
    if (!(sv->hooks = a->hooks = webhooks_start(a->db, &wcfg, err))) return false;
    if (!start_amqp_events(cfg, a, err)) return false;
    hub_config hcfg = {.data_dir = cfg->data_dir,
                       .retention_ms = (int64_t)cfg->event_retention * 1000, .poll_ms = 250,
                       .on_news = wake_readers, .news_arg = a};
    if (!(a->hub = hub_start(a->db, &hcfg, err))) return false;
    ws_config wscfg = {.ping_interval = 30, .pong_timeout = 10,
                       .max_queued_bytes = (size_t)cfg->stream_queue, .max_message = 4096,
                       .close_grace = cfg->ws_close_grace > 86400 ? 86400u
                                                                   : (unsigned)cfg->ws_close_grace};
    a->stream_queue = (size_t)cfg->stream_queue;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int n = cores < 1 ? 1 : cores > WS_THREADS_MAX ? WS_THREADS_MAX : (int)cores;
    for (a->nws = 0; a->nws < n; a->nws++)
        if (!(a->ws[a->nws] = ws_server_start(&wscfg, err))) return false;
    return true;
}

static bool start_services(const config *cfg, app *a, services *sv)
{
    const char *err = "cannot start the work pool";
    http_server_config hc = {
        .host = cfg->host, .port = cfg->port, .threads = (int)cfg->http_threads,
        .max_connections = (int)cfg->max_connections, .idle_timeout = (int)cfg->idle_timeout,
        .header_timeout = (unsigned)cfg->header_timeout, .body_timeout = (unsigned)cfg->body_timeout,
        .connection_memory = (size_t)cfg->connection_memory, .access_log = cfg->access_log,
        /* the largest body of any route: an upload, or a JSON body */
        .max_body = cfg->max_upload > JSON_BODY_MAX ? cfg->max_upload : JSON_BODY_MAX,
        .cors_origins = cfg->cors_origins,
    };
    if (a->runs_enabled && !(a->run_waiters = run_waiters_start(a->db, RUN_WAITERS_MAX))) {
        log_error("cannot start serving", "error", "cannot start the run waiter", NULL);
        return false;
    }
    if (!(sv->pool = a->pool = workpool_new((int)cfg->io_threads)) ||
        !start_events(cfg, a, sv, &err) ||
        !(a->server = http_server_start(&hc, api_routes, api_route_count, a, api_authenticate,
                                        sv->pool, &err))) {
        log_error("cannot start serving", "listen", cfg->listen, "error", err, NULL);
        return false;
    }
    sv->workers = start_workers(cfg);
    return true;
}

/* The order matters: no new requests; event streams end (they would never
 * drain); WebSockets close with 1001 before libmicrohttpd drops their
 * sockets; in-flight requests finish; then the threads behind them. */
static void stop_services(const config *cfg, app *a, services *sv)
{
    if (a->server) {
        http_server_quiesce(a->server);
        hub_close_all(a->hub);
    }
    for (int i = 0; i < a->nws; i++) ws_server_stop(a->ws[i]);
    run_waiters_stop(a->run_waiters);   /* forms waiting for a run answer "going on" */
    if (a->server) wait_for_drain(a->server, cfg->shutdown_timeout);
    workpool_free(sv->pool);   /* finishes deferred work, which resumes its requests */
    if (a->server) http_server_stop(a->server);
    for (int i = 0; i < a->nws; i++) ws_server_free(a->ws[i]);
    hub_stop(a->hub);   /* first: it wakes the two below */
    webhooks_stop(sv->hooks);
    amqp_events_stop(a->amqp_events);
    supervisor_stop(sv->workers, 10);
}

#define HISTORY_TRIM_EVERY_S 60
#define HISTORY_TRIM_BATCH 1000
#define HISTORY_TRIM_MAX 100000   /* rows of each per round: a backlog must not delay start-up */

/* Finished jobs and webhook deliveries past --history-retention go (events
 * have their own retention, in the hub: replay depends on it), and so do
 * signed uploads that were never completed and tus uploads past their
 * Upload-Expires, with their bytes. */
static void trim_history(const config *cfg, app *a)
{
    db_conn *c = db_acquire(a->db);
    if (!c) return;
    int64_t jobs = 0, deliveries = 0;
    int64_t before = time_now_ms() - (int64_t)cfg->history_retention * 1000;
    db_status st =
        db_history_trim(c, before, HISTORY_TRIM_BATCH, HISTORY_TRIM_MAX, &jobs, &deliveries);
    if (st == DB_OK && jobs + deliveries > 0) {
        char nj[24], nd[24];
        snprintf(nj, sizeof nj, "%lld", (long long)jobs);
        snprintf(nd, sizeof nd, "%lld", (long long)deliveries);
        log_info("history trimmed", "jobs", nj, "deliveries", nd, NULL);
    }
    db_release(a->db, c);
    /* signed uploads never completed */
    int uploads = upload_gc(a->db, a->store, time_now_ms() - (int64_t)cfg->upload_grace * 1000);
    int tus = tus_gc(a->db, a->store, time_now_ms());
    /* and bytes of tus uploads whose row is gone */
    int orphans = (c = db_acquire(a->db)) ? store_sweep_appends(a->store, ingest_key_is_live, c) : 0;
    db_release(a->db, c);
    if (uploads > 0) atomic_fetch_add(&a->gc_uploads, (uint64_t)uploads);
    if (tus > 0) atomic_fetch_add(&a->gc_tus, (uint64_t)tus);
    if (orphans > 0) atomic_fetch_add(&a->gc_tus_orphans, (uint64_t)orphans);
}

/* The main thread's life while serving: housekeeping once a minute until
 * SIGTERM or SIGINT, which it returns. */
static int wait_for_signal(const sigset_t *sigs, const config *cfg, app *a)
{
    const struct timespec every = {HISTORY_TRIM_EVERY_S, 0};
    for (;;) {
        int sig = sigtimedwait(sigs, NULL, &every);
        if (sig > 0) return sig;   /* otherwise the minute passed (or EINTR) */
        trim_history(cfg, a);
    }
}

static int run(const config *cfg, app *a)
{
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    trim_history(cfg, a);   /* before serving: nothing past retention is ever shown */
    services sv = {0};
    if (!start_services(cfg, a, &sv)) {
        stop_services(cfg, a, &sv);
        return 1;
    }
    char addr[96];
    snprintf(addr, sizeof addr, "%s:%u", cfg->host, http_server_port(a->server));
    log_info("listening", "addr", addr, "data", cfg->data_dir, "version", ASSETD_VERSION, NULL);

    int sig = wait_for_signal(&sigs, cfg, a);
    log_info("shutting down", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
    stop_services(cfg, a, &sv);
    log_info("stopped", NULL);
    return 0;
}

int cli_serve(int argc, char **argv)
{
    config cfg;
    int rc = config_for_command(&cfg, argc, argv, NULL, usage_head);
    if (rc >= 0) return rc;
    if (mkdir(cfg.data_dir, 0700) != 0 && errno != EEXIST) {
        log_error("cannot create data directory", "dir", cfg.data_dir, "error", strerror(errno),
                  NULL);
        return 1;
    }
    int lock = lock_data_dir(cfg.data_dir);
    if (lock < 0) {
        log_error(lock == -2 ? "another assetd serve is using this data directory"
                             : "cannot lock the data directory",
                  "dir", cfg.data_dir, NULL);
        return 1;
    }
    app a = {.max_upload = cfg.max_upload, .max_pixels = cfg.max_pixels,
             .keys = keycache_new((unsigned)cfg.key_cache_ms), .audiences = audiences_new(),
             .tus_expiry_ms = (int64_t)cfg.tus_expiry * 1000,
             .tus_lease_ms = (int64_t)cfg.tus_lease * 1000, .tus_digests = tus_digests_new(),
             .limits = ratelimit_new((unsigned)cfg.rate_limit)};
    rc = prepare(&cfg, &a) ? run(&cfg, &a) : 1;
    store_close(a.store);
    db_close(a.db);
    keycache_free(a.keys);
    ratelimit_free(a.limits);
    audiences_free(a.audiences);
    tus_digests_free(a.tus_digests);
    sniffer_free(a.sniffer);
    close(lock);
    return rc;
}
