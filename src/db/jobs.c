/* sqlite_jobs.c — the job queue's storage on SQLite (queue/job.h, db.h "Jobs").
 *
 * One live (queued or running) job per asset and type (the jobs_live
 * index); a claim leases jobs and bumps their fence, so a worker whose
 * lease expired can no longer heartbeat, complete or fail the job.  The
 * claim buries the jobs whose worker died on their last attempt and fails
 * their assets in the same transaction.  The history trim (retention of
 * finished jobs and webhook deliveries) lives here with both of its
 * statements, although one deletes from webhook_deliveries: it is one
 * function run by one caller.
 */
#include "db/db_internal.h"
#include "util/timefmt.h"

#define JOB_COLS "id, asset_id, owner, type, state, attempts, max_attempts, fence, run_at," \
                 " lease_until, progress, error_code, error_message, created, started, finished"
const char *const sq_sql_jobs[Q_COUNT] = {
    [Q_JOB_INSERT] = "INSERT OR IGNORE INTO jobs (id, asset_id, owner, type, state, max_attempts,"
                     " run_at, created) VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
    [Q_JOB_LIVE] = "SELECT " JOB_COLS " FROM jobs WHERE asset_id = ? AND type = ?"
                   " AND state IN (0, 1)",
    [Q_JOB_BURY_EXPIRED] = "UPDATE jobs SET state = 4, error_code = 'worker_lost',"
                           " error_message = 'the worker stopped answering on every attempt',"
                           " finished = ?2 WHERE state = 1 AND lease_until < ?1"
                           " AND attempts >= max_attempts",
    [Q_JOB_ANY_DUE] = "SELECT 1 FROM jobs WHERE state = 1 AND lease_until < ?1 UNION ALL"
                      " SELECT 1 FROM jobs WHERE state = 0 AND run_at <= ?1 LIMIT 1",
    /* Expired leases first, then the queued jobs due longest; each half is
     * one range scan of jobs_runnable (an OR of the two would sort). */
    [Q_JOB_CLAIM] = "UPDATE jobs SET state = 1, attempts = attempts + 1, fence = fence + 1,"
                    " lease_until = ?1 + ?2, started = ?3 WHERE id IN ("
                    "SELECT id FROM (SELECT id FROM jobs WHERE state = 1 AND lease_until < ?1"
                    " LIMIT ?4) UNION ALL SELECT id FROM (SELECT id FROM jobs"
                    " WHERE state = 0 AND run_at <= ?1 ORDER BY run_at LIMIT ?4) LIMIT ?4)"
                    " RETURNING " JOB_COLS,
    [Q_JOB_HEARTBEAT] = "UPDATE jobs SET lease_until = ?3,"
                        " progress = CASE WHEN ?4 < 0 THEN progress ELSE ?4 END"
                        " WHERE id = ?1 AND fence = ?2 AND state = 1",
    [Q_JOB_COMPLETE] = "UPDATE jobs SET state = 2, progress = 1, finished = ?3"
                       " WHERE id = ?1 AND fence = ?2 AND state = 1",
    [Q_JOB_FAIL] = "UPDATE jobs SET state = ?3, run_at = ?4, error_code = ?5,"
                   " error_message = ?6, finished = CASE WHEN ?3 = 0 THEN '' ELSE ?7 END"
                   " WHERE id = ?1 AND fence = ?2 AND state = 1",
    [Q_JOB_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id = ? AND owner = ?",
    [Q_JOB_RETRY] = "UPDATE OR IGNORE jobs SET state = 0, attempts = 0, run_at = ?3,"
                    " error_code = '', error_message = '', started = '', finished = '',"
                    " progress = 0 WHERE id = ?1 AND owner = ?2 AND state IN (3, 4)"
                    " RETURNING " JOB_COLS,
    /* INDEXED BY pins the plans: without statistics SQLite would pick the
     * owner index for one asset's jobs too, and walk all the owner's. */
    [Q_JOB_LIST] = "SELECT " JOB_COLS " FROM jobs INDEXED BY jobs_by_owner WHERE owner = ?1"
                   " AND (?3 < 0 OR state = ?3) ORDER BY created DESC, id LIMIT ?4",
    [Q_JOB_LIST_ASSET] = "SELECT " JOB_COLS " FROM jobs INDEXED BY jobs_by_asset WHERE asset_id = ?2"
                         " AND owner = ?1 AND (?3 < 0 OR state = ?3) ORDER BY created DESC, id"
                         " LIMIT ?4",
    [Q_JOB_BURIED_ASSETS] = "SELECT asset_id FROM jobs WHERE state = 1 AND lease_until < ?1"
                            " AND attempts >= max_attempts",
    /* A finished job's run_at is when its last attempt became due: it
     * finished after that.  Both use an index range (jobs_runnable,
     * deliveries_finished); rowid batches because SQLite has no DELETE ... LIMIT. */
    [Q_JOBS_TRIM] = "DELETE FROM jobs WHERE rowid IN (SELECT rowid FROM jobs"
                    " WHERE state IN (2, 3, 4) AND run_at < ?1 LIMIT ?2)",
    [Q_DELIVERIES_TRIM] = "DELETE FROM webhook_deliveries WHERE rowid IN (SELECT rowid FROM"
                          " webhook_deliveries WHERE state != 0 AND finished_ms < ?1 LIMIT ?2)",
};

static void read_job(sqlite3_stmt *s, void *out)
{
    job *j = out;
    sq_copy_text(j->id, sizeof j->id, s, 0);
    sq_copy_text(j->asset_id, sizeof j->asset_id, s, 1);
    sq_copy_text(j->owner, sizeof j->owner, s, 2);
    sq_copy_text(j->type, sizeof j->type, s, 3);
    j->state = (job_state)sqlite3_column_int(s, 4);
    j->attempts = sqlite3_column_int(s, 5);
    j->max_attempts = sqlite3_column_int(s, 6);
    j->fence = sqlite3_column_int64(s, 7);
    j->run_at_ms = sqlite3_column_int64(s, 8);
    j->lease_until_ms = sqlite3_column_int64(s, 9);
    j->progress = sqlite3_column_double(s, 10);
    sq_copy_text(j->error_code, sizeof j->error_code, s, 11);
    sq_copy_text(j->error_message, sizeof j->error_message, s, 12);
    sq_copy_text(j->created, sizeof j->created, s, 13);
    sq_copy_text(j->started, sizeof j->started, s, 14);
    sq_copy_text(j->finished, sizeof j->finished, s, 15);
}

/* Steps a statement that yields at most one job row. */
static db_status step_job(db_conn *c, sqlite3_stmt *s, job *out, const char *what)
{
    int rc = sqlite3_step(s);
    bool found = rc == SQLITE_ROW;
    if (found) read_job(s, out);
    /* Drain: an UPDATE ... RETURNING finishes its writes on the last step. */
    while (rc == SQLITE_ROW) rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return sq_fail(c, what);
    return found ? DB_OK : DB_NOT_FOUND;
}

static db_status live_job(db_conn *c, const char *asset_id, const char *type, job *out)
{
    sqlite3_stmt *s = sq_stmt(c, Q_JOB_LIVE);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, asset_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, type, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) read_job(s, out);
    sqlite3_reset(s);
    return sq_lookup_result(c, rc, "job live");
}

db_status db_job_enqueue(db_conn *c, const char *asset_id, const char *owner, const char *type,
                         int max_attempts, int64_t now_ms, job *out)
{
    char id[ID_LEN + 1], created[32];
    sqlite3_stmt *s = sq_stmt(c, Q_JOB_INSERT);
    if (!s || !id_generate(id)) return DB_ERROR;
    time_format_ms(now_ms, created);
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, asset_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, type, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, max_attempts);
    sqlite3_bind_int64(s, 6, now_ms);
    sqlite3_bind_text(s, 7, created, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return sq_fail(c, "job enqueue");
    /* Inserted or ignored (a live job exists): report the live one. */
    return live_job(c, asset_id, type, out);
}

/* Assets whose job is about to be buried (its worker died on the last
 * attempt) fail, each with its asset.failed event. */
static db_status fail_buried_assets(db_conn *c, int64_t now_ms)
{
    sqlite3_stmt *s = sq_stmt(c, Q_JOB_BURIED_ASSETS);
    if (!s) return DB_ERROR;
    sqlite3_bind_int64(s, 1, now_ms);
    int rc = SQLITE_DONE;
    db_status st = DB_OK;
    /* Another statement may write assets and events while this one reads jobs. */
    while (st == DB_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        char id[ID_LEN + 1];
        sq_copy_text(id, sizeof id, s, 0);
        st = db_asset_set_failed(c, id, "worker_lost", "processing crashed on every attempt",
                                 now_ms);
        if (st == DB_NOT_FOUND) st = DB_OK;   /* the asset was deleted meanwhile */
    }
    sqlite3_reset(s);
    return st == DB_OK && rc == SQLITE_DONE ? DB_OK : (st == DB_OK ? sq_fail(c, "job bury") : st);
}

/* Runs the burial statement (?1 now, ?2 its text). */
static db_status bury(db_conn *c, int q, int64_t now_ms, const char *now_text)
{
    sqlite3_stmt *s = sq_stmt(c, q);
    if (!s) return DB_ERROR;
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_text(s, 2, now_text, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? DB_OK : sq_fail(c, "job bury");
}

db_status db_job_claim_many(db_conn *c, int64_t now_ms, int64_t lease_ms, int max, job *out,
                            int *n)
{
    char now_text[32];
    time_format_ms(now_ms, now_text);
    *n = 0;
    /* Idle workers poll: a read (no lock against writers) answers "nothing
     * to do" without taking the write lock an upload's INSERT is waiting for. */
    sqlite3_stmt *probe = sq_stmt(c, Q_JOB_ANY_DUE);
    if (!probe) return DB_ERROR;
    sqlite3_bind_int64(probe, 1, now_ms);
    int due = sqlite3_step(probe);
    sqlite3_reset(probe);
    if (due == SQLITE_DONE) return DB_NOT_FOUND;
    if (due != SQLITE_ROW) return sq_fail(c, "job probe");
    /* One transaction: a job that crashed its worker on every attempt is
     * dead and its asset failed together, then the next jobs are claimed. */
    if (db_begin(c) != DB_OK) return DB_ERROR;
    sqlite3_stmt *s;
    int rc = SQLITE_ERROR;
    if (fail_buried_assets(c, now_ms) == DB_OK &&
        bury(c, Q_JOB_BURY_EXPIRED, now_ms, now_text) == DB_OK && (s = sq_stmt(c, Q_JOB_CLAIM))) {
        sqlite3_bind_int64(s, 1, now_ms);
        sqlite3_bind_int64(s, 2, lease_ms);
        sqlite3_bind_text(s, 3, now_text, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 4, max);
        /* Drain: an UPDATE ... RETURNING finishes its writes on the last step. */
        while ((rc = sqlite3_step(s)) == SQLITE_ROW)
            if (*n < max) read_job(s, &out[(*n)++]);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE) sq_fail(c, "job claim");
    }
    if (rc != SQLITE_DONE || db_commit(c) != DB_OK) {
        db_rollback(c);
        *n = 0;
        return DB_ERROR;
    }
    return *n > 0 ? DB_OK : DB_NOT_FOUND;
}

db_status db_job_claim(db_conn *c, int64_t now_ms, int64_t lease_ms, job *out)
{
    int n;
    return db_job_claim_many(c, now_ms, lease_ms, 1, out, &n);
}

db_status db_job_heartbeat(db_conn *c, const job *j, int64_t now_ms, int64_t lease_ms,
                           double progress)
{
    sqlite3_stmt *s = sq_stmt(c, Q_JOB_HEARTBEAT);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, j->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, j->fence);
    sqlite3_bind_int64(s, 3, now_ms + lease_ms);
    sqlite3_bind_double(s, 4, progress);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return sq_change_result(c, rc, "job heartbeat");
}

db_status db_job_complete(db_conn *c, const job *j, int64_t now_ms)
{
    char now_text[32];
    time_format_ms(now_ms, now_text);
    sqlite3_stmt *s = sq_stmt(c, Q_JOB_COMPLETE);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, j->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, j->fence);
    sqlite3_bind_text(s, 3, now_text, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return sq_change_result(c, rc, "job complete");
}

db_status db_job_fail(db_conn *c, const job *j, const char *code, const char *message,
                      bool retryable, int64_t now_ms, int64_t retry_at_ms)
{
    job_state next = !retryable ? JOB_FAILED
                     : j->attempts < j->max_attempts ? JOB_QUEUED
                                                     : JOB_DEAD;
    char now_text[32];
    time_format_ms(now_ms, now_text);
    sqlite3_stmt *s = sq_stmt(c, Q_JOB_FAIL);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, j->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, j->fence);
    sqlite3_bind_int(s, 3, (int)next);
    sqlite3_bind_int64(s, 4, retry_at_ms);
    sqlite3_bind_text(s, 5, code, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, message, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, now_text, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return sq_change_result(c, rc, "job fail");
}

db_status db_job_get(db_conn *c, const char *owner, const char *id, job *out)
{
    return sq_get_owned(c, Q_JOB_GET, id, owner, read_job, out, "job get");
}

db_status db_job_retry(db_conn *c, const char *owner, const char *id, int64_t now_ms, job *out)
{
    sqlite3_stmt *s = sq_stmt(c, Q_JOB_RETRY);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, now_ms);
    return step_job(c, s, out, "job retry");
}

db_status db_job_list(db_conn *c, const char *owner, const char *asset_id, int state, int limit,
                      job *out, int *n)
{
    sqlite3_stmt *s = sq_stmt(c, asset_id ? Q_JOB_LIST_ASSET : Q_JOB_LIST);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, owner, -1, SQLITE_STATIC);
    if (asset_id) sqlite3_bind_text(s, 2, asset_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, state);
    sqlite3_bind_int(s, 4, limit);
    int rc = SQLITE_DONE, count = 0;
    while (count < limit && (rc = sqlite3_step(s)) == SQLITE_ROW) read_job(s, &out[count++]);
    if (count == limit) rc = SQLITE_DONE;
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return sq_fail(c, "job list");
    *n = count;
    return DB_OK;
}

/* Runs the trim statement q until a batch deletes fewer than `batch` rows
 * or max_rows are gone; each run is its own transaction. */
static db_status trim_in_batches(db_conn *c, int q, int64_t before_ms, int batch,
                                 int64_t max_rows, int64_t *removed, const char *what)
{
    *removed = 0;
    while (*removed < max_rows) {
        sqlite3_stmt *s = sq_stmt(c, q);
        if (!s) return DB_ERROR;
        sqlite3_bind_int64(s, 1, before_ms);
        sqlite3_bind_int(s, 2, batch);
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE) return sq_fail(c, what);
        int n = sqlite3_changes(c->h);
        *removed += n;
        if (n < batch) break;
    }
    return DB_OK;
}

db_status db_history_trim(db_conn *c, int64_t before_ms, int batch, int64_t max_rows,
                          int64_t *jobs, int64_t *deliveries)
{
    *deliveries = 0;
    db_status st = trim_in_batches(c, Q_JOBS_TRIM, before_ms, batch, max_rows, jobs, "jobs trim");
    if (st != DB_OK) return st;
    return trim_in_batches(c, Q_DELIVERIES_TRIM, before_ms, batch, max_rows, deliveries,
                           "deliveries trim");
}
