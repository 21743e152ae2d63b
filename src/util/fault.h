/* fault.h — crash points: a test hook that kills the process at a named
 * durable step, exactly as `kill -9` would.
 *
 * Inert unless the environment variable ASSETD_FAULT is set when the
 * process starts (main() reads it once, before any thread exists):
 *
 *     ASSETD_FAULT=NAME      the first time this process reaches NAME
 *     ASSETD_FAULT=NAME@N    the Nth time (N >= 1)
 *     ASSETD_FAULT=CMD:NAME[@N]   only in processes running `assetd CMD`
 *                            (serve or worker): both reach some points
 *
 * The process then sends itself SIGKILL: no atexit handler, no stdio flush,
 * no sanitizer report — what a power cut or the OOM killer leaves.  Worker
 * processes inherit serve's environment, so a point a worker reaches kills
 * that worker (serve's supervisor restarts it, and the restarted worker is
 * armed again); counts are per process.  Unset, fault_point() costs one
 * predictable branch on a global.
 *
 * The points (tests/e2e/crashpoints.test.mjs crashes at each, restarts and
 * checks the invariants; docs/architecture.md, "Crash points"):
 *     blob.written         store/fs.c: a new blob's temp file is whole, before its fsync
 *     blob.synced          store/fs.c: after the fsync, before the rename
 *     blob.renamed         store/fs.c: the blob is published (rename + dir fsync), no row yet
 *     db.committed         db: after any successful COMMIT
 *     event.appended       after an upload's row + asset.created event commit (core/ingest.c,
 *                          serve) or a job's asset.ready commit (queue/pipeline.c, worker),
 *                          before anyone is told (the reply, the hub's poke)
 *     job.claimed          queue/worker.c: a job's claim committed, before it runs
 *     rendition.stored     queue/pipeline.c: a rendition's blob committed, before its row
 *     webhook.sent         events/webhooks.c: the target answered 2xx, before the delivery
 *                          is recorded
 *     s3.part_uploaded     store/s3_multipart.c: S3 acknowledged a multipart part
 *     tus.offset_recorded  api/tus.c: a PATCH's new offset committed, before the reply (and
 *                          before the completion, for the last one)
 *     run.confirmed        queue/run_publish.c: the broker confirmed publishes, before the
 *                          run's cursor is saved
 * A name that is none of these is refused with a warning at start.
 */
#ifndef ASSETD_FAULT_H
#define ASSETD_FAULT_H

#include <stdbool.h>

/* Set by fault_init() when ASSETD_FAULT names a point; never changes after. */
extern bool fault_armed;

/* Reads ASSETD_FAULT for a process running `assetd command`.  Call once,
 * at start, before any thread. */
void fault_init(const char *command);

/* The slow half of fault_point(): counts NAME and kills at the Nth. */
void fault_hit(const char *name);

/* A crash point.  Returns true (when it returns at all), so it can sit in
 * a chain of && steps. */
static inline bool fault_point(const char *name)
{
    if (__builtin_expect(fault_armed, 0)) fault_hit(name);
    return true;
}

#endif
