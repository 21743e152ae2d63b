/* pipeline.h — the processing pipelines and what they share (queue/
 * internal: worker.c runs them, images.c, slides.c and video.c are them).
 *
 * A pipeline reads the asset's bytes, writes its renditions to the store
 * (pipeline_store), reports progress, and ends with exactly one of
 * pipeline_succeed() or pipeline_fail().  Both write under the job's fence:
 * a worker whose lease was lost changes nothing.
 */
#ifndef ASSETD_PIPELINE_H
#define ASSETD_PIPELINE_H

#include "db/db.h"
#include "events/notify.h"
#include "queue/job.h"
#include "queue/worker.h"
#include "store/store.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct worker {
    const worker_config *cfg;
    db *db;
    store *store;
    notifier *events;    /* wakes the serve process's hub after our commits */
    int64_t last_progress_ms;
    /* Shared with the heartbeat thread (worker.c) for the job in hand: its
     * wall-clock limit (job_timeout; a pipeline may raise it once it knows
     * the work, e.g. a video's duration), whether its lease was lost, and
     * the process group of a tool it runs (killed on the limit). */
    _Atomic unsigned job_limit_s;
    _Atomic bool abandoned;
    _Atomic int child_pgid;
    /* The cover version (core/cover.h) a cover job renders, as its number
     * + 1 (0: none yet): its failure is that version's, not a newer one's,
     * also when the heartbeat records it (a timeout). */
    _Atomic uint64_t cover_version;
} worker;

/* At most this often a running job reports progress (job.progress events
 * are for progress bars, not for every step of a 500-page document). */
#define PROGRESS_EVERY_MS 250

/* Records a failure; when the job will not run again (not retryable, or no
 * attempts left) the asset fails too, in the same transaction — for a
 * cover job, the cover (pipeline_cover_failed) and never the video. */
void pipeline_fail(worker *w, const job *j, const char *code, const char *message,
                   bool retryable);
/* store_fetch() of the job's source failed (errno says why): the bytes are
 * gone (source_missing: message; not retried), or the worker is out of
 * file descriptors (overloaded, retried after backoff: the asset is fine). */
void pipeline_fetch_failed(worker *w, const job *j, const char *message);
/* Progress 0..1 with a job.progress event, at most every PROGRESS_EVERY_MS. */
void pipeline_progress(worker *w, const job *j, double progress);
/* Stores one rendition as blob "<asset_id>.<name>" (durable on return). */
bool pipeline_store(worker *w, const char *asset_id, const char *name, const void *data,
                    size_t len);

/* Stores the file at path as "<asset_id>.<name>", streamed; *size gets
 * its length. */
bool pipeline_store_file(worker *w, const char *asset_id, const char *name, const char *path,
                         uint64_t *size);

/* Extra rows to commit with the result (e.g. slides); DB_OK to go on. */
typedef db_status (*pipeline_rows)(db_conn *c, void *arg);
/* Marks the asset ready with its renditions JSON and meta, writes rows,
 * completes the job: one transaction. */
void pipeline_succeed(worker *w, const job *j, const char *renditions, const char *meta,
                      pipeline_rows rows, void *arg);

void pipeline_image(worker *w, const job *j);      /* images.c */
void pipeline_document(worker *w, const job *j);   /* slides.c */
void pipeline_video(worker *w, const job *j);      /* video.c */
void pipeline_cover(worker *w, const job *j);      /* covers.c */
/* The job error code of a libvips failure (media/image.h's image_status,
 * passed as an int so this header needs no media types); images.c. */
const char *pipeline_image_error(int image_status);
/* A cover job's final failure, in pipeline_fail's transaction: the
 * record's error when the job rendered its latest version; a fresh job for
 * the latest when a newer cover arrived meanwhile. */
db_status pipeline_cover_failed(worker *w, db_conn *c, const job *j, const char *code,
                                const char *message, int64_t now_ms);

#endif
