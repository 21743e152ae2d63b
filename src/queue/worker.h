/* worker.h — a worker process: claims jobs and runs their pipelines.
 *
 * Workers are processes, not threads, so a decoder that crashes or runs out
 * of memory takes down one worker and never the server: the job's lease
 * expires and another worker retries it (or it ends dead).  `assetd serve`
 * supervises --workers of them; `assetd worker` runs one alone (the
 * scale-out shape).
 *
 * Per job: a heartbeat thread renews the lease every lease/3 and enforces
 * the wall-clock limit (on overrun it records `timeout`, kills the job's
 * external tool if one runs, and exits the process, the only safe way to
 * stop a decoder mid-pixel); a lost lease is flagged so that a pipeline
 * running a tool (video) stops it; the address space is capped with
 * setrlimit at start (inherited by tools: ffmpeg runs within it too).
 */
#ifndef ASSETD_WORKER_H
#define ASSETD_WORKER_H

#include "media/image.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct worker_config {
    const char *data_dir;
    const char *db_url;         /* "" or NULL: SQLite in data_dir (db.h db_open) */
    store *store;              /* where blobs live; the caller's */
    int64_t lease_ms;
    unsigned job_timeout;      /* seconds */
    uint64_t memory_limit;     /* bytes of address space; 0: none */
    uint64_t max_pixels;
    const image_preset *presets;   /* the renditions of an image */
    int npresets;
    int slide_width;               /* documents: slide width in pixels */
    int max_pages;
    double page_seconds;           /* a slower page fails the job */
    uint64_t max_video_duration;   /* seconds; longer videos fail (video_too_long) */
    uint64_t max_video_pixels;     /* per frame (video_too_large) */
    const char *video_preset;      /* x264's, media/video.h */
    const char *amqp_url;          /* "" : no CSV runs here (queue/runs.h) */
    int runs_per_worker;
} worker_config;

/* Runs until SIGTERM/SIGINT; returns the exit status. */
int worker_main(const worker_config *cfg, const char *argv0);

#endif
