/* config.c — see config.h. */
#include "cli/config.h"
#include "events/amqp_conn.h"
#include "util/log.h"
#include "util/parse.h"
#include "media/video.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* OPT_SECRET: a string that error messages never echo (it holds a password). */
typedef enum { OPT_STRING, OPT_SECRET, OPT_SIZE, OPT_COUNT, OPT_UINT, OPT_LISTEN, OPT_RENDITIONS } opt_type;

typedef struct option_def {
    const char *flag;      /* without the leading dashes */
    const char *env;
    opt_type type;
    size_t offset;         /* into config */
    size_t cap;            /* for strings */
    const char *fallback;  /* default, as text; NULL: computed */
    const char *help;
} option_def;

#define STR(f) OPT_STRING, offsetof(config, f), sizeof(((config *)0)->f)
#define NUM(t, f) t, offsetof(config, f), 0

static const option_def options[] = {
    {"listen", "ASSETD_LISTEN", OPT_LISTEN, offsetof(config, listen), sizeof(((config *)0)->listen),
     "127.0.0.1:8080", "address to listen on, HOST:PORT (port 0: any free port)"},
    {"data", "ASSETD_DATA", STR(data_dir), "./data", "data directory (database, blobs)"},
    {"db", "ASSETD_DB", OPT_SECRET, offsetof(config, db_url), sizeof(((config *)0)->db_url), "",
     "metadata database: empty for SQLite in DATA/assetd.db, or PostgreSQL as "
     "postgres://USER:PASSWORD@HOST:PORT/DB or a libpq conninfo (the password never appears in "
     "logs or errors)"},
    {"store", "ASSETD_STORE", STR(store), "disk",
     "where blobs live: disk (DATA/blobs) or s3://BUCKET[/PREFIX]"},
    {"s3-endpoint", "ASSETD_S3_ENDPOINT", STR(s3_endpoint), "",
     "S3-compatible endpoint URL, path-style (empty: AWS for --s3-region); credentials from "
     "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN"},
    {"s3-region", "ASSETD_S3_REGION", STR(s3_region), "us-east-1", "S3 region (signing)"},
    {"s3-stall-timeout", "ASSETD_S3_STALL_TIMEOUT", NUM(OPT_COUNT, s3_stall_timeout), "30",
     "seconds an S3 request may move less than 1 KiB/s (a stalled S3) before that attempt "
     "fails and is retried, within the calls' 30 s retry budget"},
    {"s3-redirect", "ASSETD_S3_REDIRECT", NUM(OPT_UINT, s3_redirect), "0",
     "1: downloads from an S3 store answer 302 to a presigned URL instead of proxying"},
    {"public-url", "ASSETD_PUBLIC_URL", STR(public_url), "",
     "how clients reach this server (http://host:port), for the URLs it signs on the disk "
     "store; empty: http:// and the request's Host"},
    {"max-sign-ttl", "ASSETD_MAX_SIGN_TTL", NUM(OPT_COUNT, max_sign_ttl), "3600",
     "longest lifetime, in seconds, of a signed upload or download URL"},
    {"upload-grace", "ASSETD_UPLOAD_GRACE", NUM(OPT_UINT, upload_grace), "3600",
     "seconds a signed upload never completed is kept after its signature expired; then gc "
     "removes it and its bytes"},
    {"cors-origins", "ASSETD_CORS_ORIGINS", STR(cors_origins), "",
     "origins whose pages may use the tus routes (comma-separated, * for any; empty: none)"},
    {"tus-expiry", "ASSETD_TUS_EXPIRY", NUM(OPT_COUNT, tus_expiry), "86400",
     "seconds a resumable (tus) upload stays resumable after its creation or last PATCH"},
    {"tus-lease", "ASSETD_TUS_LEASE", NUM(OPT_COUNT, tus_lease), "30",
     "seconds a tus writer's lock lasts without renewal (how long a crashed writer blocks its "
     "upload)"},
    {"rate-limit", "ASSETD_RATE_LIMIT", NUM(OPT_UINT, rate_limit), "0",
     "uploads and signatures each API key may start per minute (and at once); past it, 429 "
     "with Retry-After.  Per serve process; 0: no limit"},
    {"max-upload", "ASSETD_MAX_UPLOAD", NUM(OPT_SIZE, max_upload), "1G",
     "largest accepted upload (K, M, G, T suffixes)"},
    {"http-threads", "ASSETD_HTTP_THREADS", NUM(OPT_COUNT, http_threads), NULL,
     "HTTP threads (default: twice the number of cores)"},
    {"io-threads", "ASSETD_IO_THREADS", NUM(OPT_COUNT, io_threads), "4",
     "threads for blocking work (fsync, database writes)"},
    {"max-connections", "ASSETD_MAX_CONNECTIONS", NUM(OPT_COUNT, max_connections), "4096",
     "concurrent client connections"},
    {"idle-timeout", "ASSETD_IDLE_TIMEOUT", NUM(OPT_COUNT, idle_timeout), "60",
     "seconds a connection may stay silent"},
    {"header-timeout", "ASSETD_HEADER_TIMEOUT", NUM(OPT_COUNT, header_timeout), "10",
     "seconds to receive a request's headers; also the keep-alive idle limit"},
    {"body-timeout", "ASSETD_BODY_TIMEOUT", NUM(OPT_COUNT, body_timeout), "3600",
     "seconds to receive a whole request body"},
    {"shutdown-timeout", "ASSETD_SHUTDOWN_TIMEOUT", NUM(OPT_COUNT, shutdown_timeout), "30",
     "seconds in-flight requests get to finish after SIGTERM"},
    {"connection-memory", "ASSETD_CONNECTION_MEMORY", NUM(OPT_SIZE, connection_memory), "64K",
     "per-connection buffer; also the largest request header block"},
    /* 64K: libmicrohttpd zeroes the whole buffer on every request (GET cost
     * grows with it) while bodies arrive in chunks of a fraction of it
     * (upload speed grows with it); see docs/benchmarks.md. */
    {"key-cache-ms", "ASSETD_KEY_CACHE_MS", NUM(OPT_COUNT, key_cache_ms), "1000",
     "how long a verified API key is trusted without a database check (revocation delay)"},
    {"workers", "ASSETD_WORKERS", NUM(OPT_UINT, workers), NULL,
     "worker processes to supervise (default: number of cores; 0: none)"},
    {"job-timeout", "ASSETD_JOB_TIMEOUT", NUM(OPT_COUNT, job_timeout), "120",
     "seconds a job may run before it fails with 'timeout'"},
    {"job-lease", "ASSETD_JOB_LEASE", NUM(OPT_COUNT, job_lease), "30",
     "seconds a worker's claim on a job lasts without a heartbeat (crash recovery delay)"},
    {"worker-memory", "ASSETD_WORKER_MEMORY", NUM(OPT_SIZE, worker_memory), "2G",
     "address-space limit of each worker process"},
    {"max-pixels", "ASSETD_MAX_PIXELS", NUM(OPT_COUNT, max_pixels), "100000000",
     "largest image (width x height) a worker will decode"},
    {"slide-width", "ASSETD_SLIDE_WIDTH", NUM(OPT_COUNT, slide_width), "1280",
     "width of the slides made from each page of a document (thumbnails: 320)"},
    {"max-pages", "ASSETD_MAX_PAGES", NUM(OPT_COUNT, max_pages), "500",
     "documents with more pages fail with 'too_many_pages'"},
    {"page-timeout", "ASSETD_PAGE_TIMEOUT", NUM(OPT_COUNT, page_timeout), "30",
     "seconds one document page may take to render"},
    {"max-video-duration", "ASSETD_MAX_VIDEO_DURATION", NUM(OPT_COUNT, max_video_duration),
     "10800", "longest video, in seconds, a worker will transcode (video_too_long)"},
    {"max-video-pixels", "ASSETD_MAX_VIDEO_PIXELS", NUM(OPT_COUNT, max_video_pixels), "35389440",
     "largest video frame (displayed width x height) a worker will transcode (video_too_large)"},
    {"video-preset", "ASSETD_VIDEO_PRESET", STR(video_preset), "veryfast",
     "x264 preset of the video transcodes (ultrafast ... veryslow): speed against size"},
    {"renditions", "ASSETD_RENDITIONS", OPT_RENDITIONS, offsetof(config, renditions),
     sizeof(((config *)0)->renditions), IMAGE_PRESETS_DEFAULT,
     "image renditions, name:size:format[:quality[:fit]],... (size N or WxH, format "
     "jpeg|webp|png|source, fit inside|cover)"},
    {"event-retention", "ASSETD_EVENT_RETENTION", NUM(OPT_COUNT, event_retention), "604800",
     "seconds events are kept for replay (since=, Last-Event-ID)"},
    {"history-retention", "ASSETD_HISTORY_RETENTION", NUM(OPT_COUNT, history_retention),
     "2592000", "seconds finished jobs and webhook deliveries are kept"},
    {"stream-queue", "ASSETD_STREAM_QUEUE", NUM(OPT_SIZE, stream_queue), "1M",
     "bytes of events a WebSocket or SSE client may have unread before it is disconnected"},
    {"ws-close-grace", "ASSETD_WS_CLOSE_GRACE", NUM(OPT_COUNT, ws_close_grace), "30",
     "seconds a WebSocket client cut off for reading too slowly has to read its 1013 close "
     "frame before the connection is dropped"},
    {"webhook-allow-local", "ASSETD_WEBHOOK_ALLOW_LOCAL", NUM(OPT_UINT, webhook_allow_local), "0",
     "1: allow webhook URLs on loopback and link-local addresses (development, tests)"},
    {"webhook-retry-ms", "ASSETD_WEBHOOK_RETRY_MS", NUM(OPT_COUNT, webhook_retry_ms), "5000",
     "first webhook retry delay in ms; doubles each attempt (capped at 4 h)"},
    {"webhook-retry-window", "ASSETD_WEBHOOK_RETRY_WINDOW", NUM(OPT_COUNT, webhook_retry_window),
     "86400", "seconds a failing delivery is retried; then it fails and its endpoint is disabled"},
    {"webhook-timeout", "ASSETD_WEBHOOK_TIMEOUT", NUM(OPT_COUNT, webhook_timeout), "10",
     "seconds per webhook delivery attempt"},
    {"amqp-url", "ASSETD_AMQP_URL", OPT_SECRET, offsetof(config, amqp_url),
     sizeof(((config *)0)->amqp_url), "",
     "RabbitMQ broker, amqp://USER:PASSWORD@HOST:PORT/VHOST (the vhost / is %2f); the password "
     "never appears in logs or errors"},
    {"events-amqp-exchange", "ASSETD_EVENTS_AMQP_EXCHANGE", STR(events_amqp_exchange), "",
     "publish every event to this durable topic exchange on --amqp-url (routing key = event "
     "type, persistent, publisher confirms; empty: off)"},
    {"runs-per-worker", "ASSETD_RUNS_PER_WORKER", NUM(OPT_COUNT, runs_per_worker), "4",
     "CSV runs (/v1/runs) each worker process publishes and consumes at once, beside its jobs"},
    {"access-log", "ASSETD_ACCESS_LOG", STR(access_log), "stdout",
     "access log: stdout, off, or a file path (JSON lines)"},
    {"log-level", "ASSETD_LOG_LEVEL", STR(log_level), "info", "debug, info, warn or error"},
};
#define N_OPTIONS ((int)(sizeof options / sizeof *options))

static bool allowed(const option_def *o, const char *only)
{
    if (!only) return true;
    size_t n = strlen(o->flag);
    for (const char *p = only; (p = strstr(p, o->flag)); p += n)
        if ((p == only || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) return true;
    return false;
}

static bool split_listen(config *c)
{
    const char *colon = strrchr(c->listen, ':');
    uint64_t port;
    if (!colon || colon == c->listen || (size_t)(colon - c->listen) >= sizeof c->host ||
        !parse_u64(colon + 1, &port) || port > 65535)
        return false;
    memcpy(c->host, c->listen, (size_t)(colon - c->listen));
    c->host[colon - c->listen] = '\0';
    if (strcmp(c->host, "localhost") == 0) strcpy(c->host, "127.0.0.1");
    struct in_addr probe;
    if (inet_pton(AF_INET, c->host, &probe) != 1) return false;
    c->port = (uint16_t)port;
    return true;
}

static bool set_option(config *c, const option_def *o, const char *value)
{
    char *field = (char *)c + o->offset;
    uint64_t n;
    switch (o->type) {
    case OPT_STRING:
    case OPT_SECRET:
    case OPT_LISTEN:
        if (strlen(value) >= o->cap) return false;
        strcpy(field, value);
        return o->type != OPT_LISTEN || split_listen(c);
    case OPT_RENDITIONS: {
        char why[160];
        if (strlen(value) >= o->cap) return false;
        strcpy(field, value);
        c->npresets = image_presets_parse(value, c->presets, IMAGE_PRESETS_MAX, why, sizeof why);
        if (c->npresets < 0) fprintf(stderr, "assetd: %s\n", why);
        return c->npresets > 0;
    }
    case OPT_SIZE:
        if (!parse_size(value, &n) || n == 0) return false;
        memcpy(field, &n, sizeof n);
        return true;
    case OPT_COUNT:
    case OPT_UINT:
        if (!parse_u64(value, &n) || (n == 0 && o->type == OPT_COUNT)) return false;
        memcpy(field, &n, sizeof n);
        return true;
    }
    return false;
}

static bool apply(config *c, const option_def *o, const char *value, const char *source)
{
    if (set_option(c, o, value)) return true;
    if (o->type == OPT_SECRET) fprintf(stderr, "assetd: invalid value for %s (too long)\n", source);
    else fprintf(stderr, "assetd: invalid value '%s' for %s\n", value, source);
    return false;
}

/* An exchange name as RabbitMQ takes it (letters, digits, - _ . :), not in
 * the reserved amq. namespace. */
static bool exchange_name_valid(const char *name)
{
    if (strlen(name) > 127 || strncmp(name, "amq.", 4) == 0) return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.' || *p == ':'))
            return false;
    return true;
}

/* --amqp-url parses (its text is never printed: it holds the password);
 * --events-amqp-exchange needs it and a usable name. */
static bool amqp_settings_valid(const config *c)
{
    char why[160];
    amqp_conn_url u;
    if (*c->amqp_url && !amqp_conn_parse_url(c->amqp_url, &u, why, sizeof why)) {
        fprintf(stderr, "assetd: --amqp-url: %s\n", why);
        return false;
    }
    memset(&u, 0, sizeof u);
    if (*c->events_amqp_exchange && !*c->amqp_url) {
        fprintf(stderr, "assetd: --events-amqp-exchange needs --amqp-url (or ASSETD_AMQP_URL)\n");
        return false;
    }
    if (*c->events_amqp_exchange && !exchange_name_valid(c->events_amqp_exchange)) {
        fprintf(stderr, "assetd: --events-amqp-exchange must be up to 127 letters, digits and "
                        "- _ . : and not start with amq., not '%s'\n",
                c->events_amqp_exchange);
        return false;
    }
    return true;
}

void config_usage(FILE *out, const char *only)
{
    for (int i = 0; i < N_OPTIONS; i++) {
        const option_def *o = &options[i];
        if (!allowed(o, only)) continue;
        fprintf(out, "  --%-18s %s\n  %-20s   env %s, default %s\n", o->flag, o->help, "",
                o->env, o->fallback ? o->fallback : "see above");
    }
}

int config_parse(config *c, int argc, char **argv, const char *only, const char **rest,
                 int *nrest)
{
    memset(c, 0, sizeof *c);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    /* Twice the cores: a thread blocked in a page-cache write or a SQLite
     * lock leaves a core to another (bench: 4 threads beat 2 on 2 cores). */
    c->http_threads = cores > 0 ? 2 * (uint64_t)cores : 4;
    c->workers = cores > 0 ? (uint64_t)cores : 2;
    for (int i = 0; i < N_OPTIONS; i++) {
        const option_def *o = &options[i];
        const char *env = getenv(o->env);
        if (o->fallback && !set_option(c, o, o->fallback)) return 2;
        if (env && *env && allowed(o, only) && !apply(c, o, env, o->env)) return 2;
    }
    *nrest = 0;
    for (int a = 0; a < argc; a++) {
        const char *arg = argv[a];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) return 1;
        if (strncmp(arg, "--", 2) != 0) {
            rest[(*nrest)++] = arg;
            continue;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const option_def *o = NULL;
        for (int i = 0; i < N_OPTIONS; i++)
            if (strlen(options[i].flag) == len && strncmp(options[i].flag, name, len) == 0 &&
                allowed(&options[i], only))
                o = &options[i];
        if (!o) {
            fprintf(stderr, "assetd: unknown option '%s'\n", arg);
            return 2;
        }
        const char *value = eq ? eq + 1 : (a + 1 < argc ? argv[++a] : NULL);
        if (!value) {
            fprintf(stderr, "assetd: option '%s' needs a value\n", arg);
            return 2;
        }
        if (!apply(c, o, value, arg)) return 2;
    }
    if (!video_preset_valid(c->video_preset)) {
        fprintf(stderr, "assetd: --video-preset must be an x264 preset (ultrafast, superfast, "
                        "veryfast, faster, fast, medium, slow, slower, veryslow), not '%s'\n",
                c->video_preset);
        return 2;
    }
    if (!amqp_settings_valid(c)) return 2;
    if (c->s3_stall_timeout > S3_STALL_TIMEOUT_MAX) {
        fprintf(stderr, "assetd: --s3-stall-timeout must be 1..%d seconds\n", S3_STALL_TIMEOUT_MAX);
        return 2;
    }
    store_s3_config s3;
    if (strcmp(c->store, "disk") != 0 && !store_s3_parse_url(c->store, &s3)) {
        fprintf(stderr, "assetd: --store must be disk or s3://BUCKET[/PREFIX], not '%s'\n",
                c->store);
        return 2;
    }
    return 0;
}

store *config_open_store(const config *c, const char **err)
{
    store_s3_config s3 = {.endpoint = c->s3_endpoint, .region = c->s3_region,
                          .stall_timeout_s = (long)c->s3_stall_timeout};
    if (strcmp(c->store, "disk") == 0) return store_fs_open(c->data_dir, err);
    if (!store_s3_parse_url(c->store, &s3)) {
        *err = "--store must be disk or s3://BUCKET[/PREFIX]";
        return NULL;
    }
    return store_s3_open(&s3, c->data_dir, err);
}

/* One option's current value as text. */
static void option_text(const config *c, const option_def *o, char *out, size_t cap)
{
    const char *field = (const char *)c + o->offset;
    uint64_t n;
    if (o->type == OPT_STRING || o->type == OPT_SECRET || o->type == OPT_LISTEN ||
        o->type == OPT_RENDITIONS) {
        snprintf(out, cap, "%s", field);
        return;
    }
    memcpy(&n, field, sizeof n);
    snprintf(out, cap, "%llu", (unsigned long long)n);
}

int config_to_args(const config *c, const char *only, char *buf, size_t cap, char **argv,
                   int max)
{
    int n = 0;
    size_t used = 0;
    for (int i = 0; i < N_OPTIONS; i++) {
        const option_def *o = &options[i];
        /* A secret never goes on a command line (ps shows it to every
         * user): serve hands it to its workers in their environment. */
        if (!allowed(o, only) || o->type == OPT_SECRET) continue;
        char value[1100];
        option_text(c, o, value, sizeof value);
        int len = snprintf(buf + used, cap - used, "--%s=%s", o->flag, value);
        if (len < 0 || (size_t)len >= cap - used || n + 1 >= max) return -1;
        argv[n++] = buf + used;
        used += (size_t)len + 1;
    }
    argv[n] = NULL;
    return n;
}

int config_for_command(config *c, int argc, char **argv, const char *only,
                       const char *usage_head)
{
    const char *rest[64];
    int nrest;
    int rc = argc < 64 ? config_parse(c, argc, argv, only, rest, &nrest) : 2;
    if (rc == 1) {
        fputs(usage_head, stdout);
        config_usage(stdout, only);
        return 0;
    }
    if (rc) return rc;
    if (nrest > 0) {
        fprintf(stderr, "assetd: unexpected argument '%s'\n", rest[0]);
        return 2;
    }
    log_set_level(strcmp(c->log_level, "debug") == 0   ? LOG_DEBUG
                  : strcmp(c->log_level, "warn") == 0  ? LOG_WARN
                  : strcmp(c->log_level, "error") == 0 ? LOG_ERROR
                                                       : LOG_INFO);
    return -1;
}
