/* pipeline.c — what every pipeline does with a job's outcome; see
 * pipeline.h. */
#include "queue/pipeline.h"
#include "core/cover.h"
#include "util/fault.h"
#include "util/log.h"
#include "util/timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RETRY_BASE_MS 1000
#define RETRY_CAP_MS 60000

/* ---------- outcome ---------- */

/* A job's last failure: its asset's, or for a cover job its cover's. */
static db_status fail_finally(worker *w, db_conn *c, const job *j, const char *code,
                              const char *message, int64_t now)
{
    if (strcmp(j->type, COVER_JOB) == 0)
        return pipeline_cover_failed(w, c, j, code, message, now);
    return db_asset_set_failed(c, j->asset_id, code, message, now);
}

/* Records a failure; when the job will not run again, the asset fails too,
 * in the same transaction. */
void pipeline_fail(worker *w, const job *j, const char *code, const char *message,
                   bool retryable)
{
    db_conn *c = db_acquire(w->db);
    if (!c) return;
    uint32_t rnd = 0;
    RAND_bytes((unsigned char *)&rnd, sizeof rnd);
    int64_t now = time_now_ms();
    int64_t retry_at = now + job_backoff_ms(j->attempts, RETRY_BASE_MS, RETRY_CAP_MS,
                                            (double)rnd / 4294967296.0);
    bool final = !retryable || j->attempts >= j->max_attempts;
    if (db_begin(c) == DB_OK &&
        db_job_fail(c, j, code, message, retryable, now, retry_at) == DB_OK &&
        /* DB_NOT_FOUND: the asset was deleted meanwhile, nothing to fail */
        (!final || fail_finally(w, c, j, code, message, now) != DB_ERROR) &&
        db_commit(c) == DB_OK) {
        notifier_poke(w->events);
        log_info("job failed", "job", j->id, "code", code, "message", message, "final",
                 final ? "yes" : "no", NULL);
    } else {
        db_rollback(c);   /* fenced out, or the database is gone: the lease decides */
    }
    db_release(w->db, c);
}

void pipeline_fetch_failed(worker *w, const job *j, const char *message)
{
    if (store_error_is_exhausted(errno))
        pipeline_fail(w, j, "overloaded", "the worker is out of file descriptors", true);
    else
        pipeline_fail(w, j, "source_missing", message, false);
}

/* Records progress (0..1) with a job.progress event, throttled; under the
 * job's fence like every other write. */
void pipeline_progress(worker *w, const job *j, double progress)
{
    int64_t now = time_now_ms();
    if (now - w->last_progress_ms < PROGRESS_EVERY_MS) return;
    w->last_progress_ms = now;
    char data[160];
    snprintf(data, sizeof data, "{\"job_id\":\"%s\",\"type\":\"%s\",\"progress\":%.3f}", j->id,
             j->type, progress);
    db_conn *c = db_acquire(w->db);
    bool ok = c && db_begin(c) == DB_OK &&
              db_job_heartbeat(c, j, now, w->cfg->lease_ms, progress) == DB_OK &&
              db_event_append(c, "job.progress", j->asset_id, j->owner, now, data) == DB_OK &&
              db_commit(c) == DB_OK;
    if (!ok && c) db_rollback(c);
    db_release(w->db, c);
    if (ok) notifier_poke(w->events);
}

bool pipeline_store(worker *w, const char *asset_id, const char *name, const void *data,
                    size_t len)
{
    char key[ID_LEN + 40];
    snprintf(key, sizeof key, "%s.%s", asset_id, name);
    return store_put(w->store, key, data, len) && fault_point("rendition.stored");
}

bool pipeline_store_file(worker *w, const char *asset_id, const char *name, const char *path,
                         uint64_t *size)
{
    char key[ID_LEN + 40];
    snprintf(key, sizeof key, "%s.%s", asset_id, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    store_upload *u = fd >= 0 ? store_upload_begin(w->store, key) : NULL;
    bool ok = u != NULL;
    char buf[65536];
    ssize_t n = 0;
    *size = 0;
    while (ok && (n = read(fd, buf, sizeof buf)) > 0) {
        ok = store_upload_write(u, buf, (size_t)n);
        *size += (uint64_t)n;
    }
    if (fd >= 0) close(fd);
    if (ok && n == 0) return store_upload_commit(u) && fault_point("rendition.stored");
    store_upload_abort(u);
    return false;
}

void pipeline_succeed(worker *w, const job *j, const char *renditions, const char *meta,
                      pipeline_rows rows, void *arg)
{
    db_conn *c = db_acquire(w->db);
    int64_t now = time_now_ms();
    /* Output and completion commit together, and only under our fence.  An
     * asset deleted while we worked completes the job all the same (there
     * is nothing to retry); its renditions, written after the delete
     * removed its blobs, go too. */
    db_status asset_st = DB_ERROR;
    bool ok = c && db_begin(c) == DB_OK && (!rows || rows(c, arg) == DB_OK) &&
              (asset_st = db_asset_set_ready(c, j->asset_id, renditions, meta, now)) !=
                  DB_ERROR &&
              db_job_complete(c, j, now) == DB_OK && db_commit(c) == DB_OK;
    if (!ok && c) db_rollback(c);
    if (ok) fault_point("event.appended");   /* asset.ready is durable; the hub not poked */
    db_release(w->db, c);
    if (ok && asset_st == DB_NOT_FOUND) store_remove_asset(w->store, j->asset_id);
    if (ok) notifier_poke(w->events);
    log_info(!ok ? "job result discarded (lease lost)"
             : asset_st == DB_NOT_FOUND ? "job done for a deleted asset"
                                        : "job succeeded",
             "job", j->id, "asset", j->asset_id, NULL);
}
