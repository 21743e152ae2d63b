/* worker.c — `assetd worker`: one worker process (see queue/worker.h). */
#include "cli/cli.h"
#include "cli/config.h"
#include "queue/worker.h"
#include "util/log.h"

#include <stdio.h>


static const char usage_head[] =
    "usage: assetd worker [options]\n"
    "\n"
    "Runs one worker process: claims jobs from the queue in --data and runs\n"
    "their pipelines.  `assetd serve` starts and supervises --workers of these\n"
    "itself; run this alone to add processing capacity.\n"
    "\n"
    "options (each also as an environment variable):\n";

int cli_worker(int argc, char **argv, const char *argv0)
{
    config cfg;
    int rc = config_for_command(&cfg, argc, argv, CONFIG_WORKER_FLAGS, usage_head);
    if (rc >= 0) return rc;
    const char *err;
    store *st = config_open_store(&cfg, &err);
    if (!st) {
        log_error("worker cannot open the store", "store", cfg.store, "error", err, NULL);
        return 1;
    }
    worker_config wc = {
        .data_dir = cfg.data_dir, .db_url = cfg.db_url, .store = st, .lease_ms = (int64_t)cfg.job_lease * 1000, .job_timeout = (unsigned)cfg.job_timeout,
        .memory_limit = cfg.worker_memory, .max_pixels = cfg.max_pixels,
        .presets = cfg.presets, .npresets = cfg.npresets,
        .slide_width = (int)cfg.slide_width, .max_pages = (int)cfg.max_pages,
        .page_seconds = (double)cfg.page_timeout,
        .max_video_duration = cfg.max_video_duration, .max_video_pixels = cfg.max_video_pixels,
        .video_preset = cfg.video_preset,
        .amqp_url = cfg.amqp_url, .runs_per_worker = (int)cfg.runs_per_worker,
    };
    rc = worker_main(&wc, argv0);
    store_close(st);
    return rc;
}
