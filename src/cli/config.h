/* config.h — settings of `assetd serve`, from flags and environment.
 *
 * Every setting has a flag and an ASSETD_* environment variable; a flag
 * wins over the environment, which wins over the default.  The one table in
 * config.c is the single source for parsing, --help and the README table.
 *
 * The config is filled once at start-up and read-only afterwards (one of
 * the two globals assetd allows, with the logger; here passed explicitly).
 */
#ifndef ASSETD_CONFIG_H
#define ASSETD_CONFIG_H

#include "media/image.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct config {
    char listen[256];
    char host[64];
    uint16_t port;
    char data_dir[1024];
    char store[300];           /* "disk" or s3://BUCKET[/PREFIX] */
    char s3_endpoint[512];
    char s3_region[64];
    uint64_t s3_redirect;
    uint64_t s3_stall_timeout; /* seconds; 1..S3_STALL_TIMEOUT_MAX */
    char public_url[256];
    uint64_t max_sign_ttl;
    uint64_t upload_grace;
    uint64_t max_upload;
    char cors_origins[1024];
    uint64_t tus_expiry;
    uint64_t tus_lease;
    uint64_t rate_limit;
    uint64_t http_threads;
    uint64_t io_threads;
    uint64_t max_connections;
    uint64_t idle_timeout;
    uint64_t header_timeout;
    uint64_t body_timeout;
    uint64_t shutdown_timeout;
    uint64_t connection_memory;
    uint64_t key_cache_ms;
    uint64_t workers;
    uint64_t job_timeout;
    uint64_t job_lease;
    uint64_t worker_memory;
    uint64_t max_pixels;
    uint64_t slide_width;
    uint64_t max_pages;
    uint64_t page_timeout;
    uint64_t max_video_duration;
    uint64_t max_video_pixels;
    char video_preset[16];
    char renditions[1024];
    image_preset presets[IMAGE_PRESETS_MAX];   /* renditions, parsed */
    int npresets;
    uint64_t event_retention;
    uint64_t history_retention;
    uint64_t stream_queue;
    uint64_t ws_close_grace;
    uint64_t webhook_allow_local;
    uint64_t webhook_retry_ms;
    uint64_t webhook_retry_window;
    uint64_t webhook_timeout;
    char db_url[1024];                /* secret: "" SQLite in data_dir, else PostgreSQL */
    char amqp_url[512];               /* secret: never printed (has the password) */
    char events_amqp_exchange[256];
    uint64_t runs_per_worker;
    char access_log[1024];
    char log_level[16];
} config;

/* Parses argv (after the command name) over defaults and environment.
 * `only` limits the accepted flags to a comma-separated list (NULL: all).
 * Returns 0 on success, 2 on a usage error (message printed), 1 for --help
 * (usage printed).  Positional arguments are returned in rest/nrest. */
int config_parse(config *c, int argc, char **argv, const char *only, const char **rest,
                 int *nrest);
void config_usage(FILE *out, const char *only);

/* Renders the `only` options (comma-separated flags) of c as "--flag=value"
 * arguments: the strings go into buf, pointers into argv (NULL-terminated).
 * Returns the count, or -1 if buf or argv is too small.  How serve passes
 * its effective settings to the worker processes it starts. */
int config_to_args(const config *c, const char *only, char *buf, size_t cap, char **argv,
                   int max);

/* The flags `assetd worker` takes. */
#define CONFIG_WORKER_FLAGS                                                                   \
    "data,db,store,s3-endpoint,s3-region,s3-stall-timeout,job-timeout,job-lease,worker-memory,max-pixels,renditions,slide-width,max-pages,"   \
    "page-timeout,max-video-duration,max-video-pixels,video-preset,amqp-url,runs-per-worker,"      \
    "log-level"

/* Opens the store --store names (the data directory's, or an S3 bucket);
 * NULL with *err set on failure.  Makes no network request. */
store *config_open_store(const config *c, const char **err);

/* The preamble of a command that takes only flags: parses them (printing
 * usage_head and the flag list for --help), refuses positional words, and
 * applies --log-level.  Returns -1 to go on, else the exit status. */
int config_for_command(config *c, int argc, char **argv, const char *only,
                       const char *usage_head);

#endif
