/* jobs.c — the job queue's storage (queue/job.h, db.h "Jobs").
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

#include <stdio.h>
#include <stdlib.h>

#define JOB_COLS "id, asset_id, owner, type, state, attempts, max_attempts, fence, run_at," \
                 " lease_until, progress, error_code, error_message, created, started, finished"
const char *const dbi_sql_jobs[Q_COUNT] = {
    [Q_JOB_INSERT] = "INSERT INTO jobs (id, asset_id, owner, type, state, max_attempts,"
                     " run_at, created) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7)"
                     " ON CONFLICT DO NOTHING RETURNING " JOB_COLS,
    [Q_JOB_LIVE] = "SELECT " JOB_COLS " FROM jobs WHERE asset_id = ?1 AND type = ?2"
                   " AND state IN (0, 1)",
    [Q_JOB_BURY_EXPIRED] = "UPDATE jobs SET state = 4, error_code = 'worker_lost',"
                           " error_message = 'the worker stopped answering on every attempt',"
                           " finished = ?2 WHERE state = 1 AND lease_until < ?1"
                           " AND attempts >= max_attempts",
    /* (any job due, any job buried); each EXISTS one index range */
    [Q_JOB_ANY_DUE] = "SELECT CASE WHEN EXISTS (SELECT 1 FROM jobs WHERE state = 1"
                      " AND lease_until < ?1) OR EXISTS (SELECT 1 FROM jobs WHERE state = 0"
                      " AND run_at <= ?1) THEN 1 ELSE 0 END, CASE WHEN EXISTS (SELECT 1"
                      " FROM jobs WHERE state = 1 AND lease_until < ?1"
                      " AND attempts >= max_attempts) THEN 1 ELSE 0 END",
    /* Expired leases first, then the queued jobs due longest; each half is
     * one range scan of jobs_runnable (an OR of the two would sort).
     * PostgreSQL's text (below) adds FOR UPDATE SKIP LOCKED. */
#define CLAIM_SQL(skip_locked)                                                              \
    "UPDATE jobs SET state = 1, attempts = attempts + 1, fence = fence + 1,"                 \
    " lease_until = ?1 + ?2, started = ?3 WHERE id IN ("                                     \
    "SELECT id FROM (SELECT id FROM jobs WHERE state = 1 AND lease_until < ?1"               \
    " LIMIT ?4" skip_locked ") AS expired UNION ALL SELECT id FROM (SELECT id FROM jobs"      \
    " WHERE state = 0 AND run_at <= ?1 ORDER BY run_at LIMIT ?4" skip_locked ") AS due"       \
    " LIMIT ?4) RETURNING " JOB_COLS
    [Q_JOB_CLAIM] = CLAIM_SQL(""),
    [Q_JOB_HEARTBEAT] = "UPDATE jobs SET lease_until = ?3,"
                        " progress = CASE WHEN CAST(?4 AS DOUBLE PRECISION) < 0 THEN progress"
                        " ELSE ?4 END"
                        " WHERE id = ?1 AND fence = ?2 AND state = 1",
    [Q_JOB_COMPLETE] = "UPDATE jobs SET state = 2, progress = 1, finished = ?3"
                       " WHERE id = ?1 AND fence = ?2 AND state = 1",
    /* ?1 is [[id, fence], ...] (db_job_complete_many).  The + keeps
     * SQLite's planner off jobs_runnable: it would scan every running job
     * and parse ?1 again for each, where the list drives primary-key
     * lookups. */
    [Q_JOB_COMPLETE_MANY] = "UPDATE jobs SET state = 2, progress = 1, finished = ?2 FROM"
                            " (SELECT json_extract(value, '$[0]') AS id,"
                            " json_extract(value, '$[1]') AS fence FROM json_each(?1)) AS done"
                            " WHERE jobs.id = done.id AND jobs.fence = done.fence"
                            " AND +jobs.state = 1",
    [Q_JOB_FAIL] = "UPDATE jobs SET state = ?3, run_at = ?4, error_code = ?5,"
                   " error_message = ?6,"
                   " finished = CASE WHEN CAST(?3 AS BIGINT) = 0 THEN '' ELSE ?7 END"
                   " WHERE id = ?1 AND fence = ?2 AND state = 1",
    [Q_JOB_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1 AND owner = ?2",
    /* Not while another job of the asset and type is live (jobs_live). */
    [Q_JOB_RETRY] = "UPDATE jobs SET state = 0, attempts = 0, run_at = ?3,"
                    " error_code = '', error_message = '', started = '', finished = '',"
                    " progress = 0 WHERE id = ?1 AND owner = ?2 AND state IN (3, 4)"
                    " AND NOT EXISTS (SELECT 1 FROM jobs live WHERE live.asset_id = jobs.asset_id"
                    " AND live.type = jobs.type AND live.state IN (0, 1))"
                    " RETURNING " JOB_COLS,
    /* INDEXED BY pins the plans: without statistics SQLite would pick the
     * owner index for one asset's jobs too, and walk all the owner's.
     * (PostgreSQL's driver drops the hint: its planner has statistics.) */
    [Q_JOB_LIST] = "SELECT " JOB_COLS " FROM jobs INDEXED BY jobs_by_owner WHERE owner = ?1"
                   " AND (?3 < 0 OR state = ?3) ORDER BY created DESC, id LIMIT ?4",
    [Q_JOB_LIST_ASSET] = "SELECT " JOB_COLS " FROM jobs INDEXED BY jobs_by_asset WHERE asset_id = ?2"
                         " AND owner = ?1 AND (?3 < 0 OR state = ?3) ORDER BY created DESC, id"
                         " LIMIT ?4",
    [Q_JOB_BURIED_ASSETS] = "SELECT asset_id FROM jobs WHERE state = 1 AND lease_until < ?1"
                            " AND attempts >= max_attempts",
    /* A finished job's run_at is when its last attempt became due: it
     * finished after that.  Both use an index range (jobs_runnable,
     * deliveries_finished); batches by key because neither dialect has
     * DELETE ... LIMIT. */
    [Q_JOBS_TRIM] = "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs"
                    " WHERE state IN (2, 3, 4) AND run_at < ?1 LIMIT ?2)",
    [Q_DELIVERIES_TRIM] = "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM"
                          " webhook_deliveries WHERE state != 0 AND finished_ms < ?1 LIMIT ?2)",
};

/* Claimers in several processes at once (db_begin_queue: no write lock)
 * each lock the rows they take and pass over the rows another holds, so
 * they take different jobs instead of waiting for each other. */
const char *const dbi_pg_sql_jobs[Q_COUNT] = {
    [Q_JOB_CLAIM] = CLAIM_SQL(" FOR UPDATE SKIP LOCKED"),
    [Q_JOB_COMPLETE_MANY] = "UPDATE jobs SET state = 2, progress = 1, finished = ?2 FROM"
                            " (SELECT e->>0 AS id, (e->>1)::bigint AS fence"
                            " FROM jsonb_array_elements(?1::jsonb) AS e) AS done"
                            " WHERE jobs.id = done.id AND jobs.fence = done.fence"
                            " AND jobs.state = 1",
};

static void read_job(sql_stmt *s, void *out)
{
    job *j = out;
    dbi_copy_text(j->id, sizeof j->id, s, 0);
    dbi_copy_text(j->asset_id, sizeof j->asset_id, s, 1);
    dbi_copy_text(j->owner, sizeof j->owner, s, 2);
    dbi_copy_text(j->type, sizeof j->type, s, 3);
    j->state = (job_state)sql_column_int64(s, 4);
    j->attempts = sql_column_int64(s, 5);
    j->max_attempts = sql_column_int64(s, 6);
    j->fence = sql_column_int64(s, 7);
    j->run_at_ms = sql_column_int64(s, 8);
    j->lease_until_ms = sql_column_int64(s, 9);
    j->progress = sql_column_double(s, 10);
    dbi_copy_text(j->error_code, sizeof j->error_code, s, 11);
    dbi_copy_text(j->error_message, sizeof j->error_message, s, 12);
    dbi_copy_text(j->created, sizeof j->created, s, 13);
    dbi_copy_text(j->started, sizeof j->started, s, 14);
    dbi_copy_text(j->finished, sizeof j->finished, s, 15);
}

static db_status live_job(db_conn *c, const char *asset_id, const char *type, job *out)
{
    sql_stmt *s = dbi_stmt(c, Q_JOB_LIVE);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, asset_id);
    sql_bind_text(s, 2, type);
    return dbi_row(c, s, read_job, out, "job live");
}

db_status db_job_enqueue(db_conn *c, const char *asset_id, const char *owner, const char *type,
                         int max_attempts, int64_t now_ms, job *out)
{
    char id[ID_LEN + 1], created[32];
    if (dbi_order(c) != DB_OK) return DB_ERROR;   /* its commit wakes the workers */
    sql_stmt *s = dbi_stmt(c, Q_JOB_INSERT);
    if (!s || !id_generate(id)) return DB_ERROR;
    time_format_ms(now_ms, created);
    sql_bind_text(s, 1, id);
    sql_bind_text(s, 2, asset_id);
    sql_bind_text(s, 3, owner);
    sql_bind_text(s, 4, type);
    sql_bind_int64(s, 5, max_attempts);
    sql_bind_int64(s, 6, now_ms);
    sql_bind_text(s, 7, created);
    /* Inserted, or ignored because a live job exists: report that one. */
    db_status st = dbi_row(c, s, read_job, out, "job enqueue");
    return st == DB_NOT_FOUND ? live_job(c, asset_id, type, out) : st;
}

/* Assets whose job is about to be buried (its worker died on the last
 * attempt) fail, each with its asset.failed event.  In a queue transaction
 * another claimer may be burying the same jobs: when there are any, the
 * write lock is taken (dbi_order) and they are read again under it, so
 * only the first claimer fails each asset. */
static db_status fail_buried_assets(db_conn *c, int64_t now_ms)
{
    sql_stmt *s = dbi_stmt(c, Q_JOB_BURIED_ASSETS);
    if (!s) return DB_ERROR;
    sql_bind_int64(s, 1, now_ms);
    sql_result rc = sql_step(s);
    sql_reset(s);
    if (rc == SQL_DONE) return DB_OK;
    if (rc != SQL_ROW) return dbi_fail(c, "job bury");
    if (dbi_order(c) != DB_OK) return DB_ERROR;
    sql_bind_int64(s, 1, now_ms);
    db_status st = DB_OK;
    /* Another statement may write assets and events while this one reads jobs. */
    while (st == DB_OK && (rc = sql_step(s)) == SQL_ROW) {
        char id[ID_LEN + 1];
        dbi_copy_text(id, sizeof id, s, 0);
        st = db_asset_set_failed(c, id, "worker_lost", "processing crashed on every attempt",
                                 now_ms);
        if (st == DB_NOT_FOUND) st = DB_OK;   /* the asset was deleted meanwhile */
    }
    sql_reset(s);
    return st == DB_OK && rc == SQL_DONE ? DB_OK : (st == DB_OK ? dbi_fail(c, "job bury") : st);
}

/* Runs the burial statement (?1 now, ?2 its text). */
static db_status bury(db_conn *c, int q, int64_t now_ms, const char *now_text)
{
    sql_stmt *s = dbi_stmt(c, q);
    if (!s) return DB_ERROR;
    sql_bind_int64(s, 1, now_ms);
    sql_bind_text(s, 2, now_text);
    return dbi_done(c, s, "job bury");
}

db_status db_job_claim_many(db_conn *c, int64_t now_ms, int64_t lease_ms, int max, job *out,
                            int *n)
{
    char now_text[32];
    time_format_ms(now_ms, now_text);
    *n = 0;
    /* Idle workers poll: a read (no lock against writers) answers "nothing
     * to do" without taking the write lock an upload's INSERT is waiting for.
     * It also says whether a job crashed its worker on every attempt. */
    sql_stmt *probe = dbi_stmt(c, Q_JOB_ANY_DUE);
    if (!probe) return DB_ERROR;
    sql_bind_int64(probe, 1, now_ms);
    sql_result rc = sql_step(probe);
    bool due = rc == SQL_ROW && sql_column_int64(probe, 0) != 0;
    bool buried = rc == SQL_ROW && sql_column_int64(probe, 1) != 0;
    sql_reset(probe);
    if (rc != SQL_ROW) return dbi_fail(c, "job probe");
    if (!due) return DB_NOT_FOUND;
    /* Such a job is dead and its asset failed in the claim's transaction.
     * Without one the claim is a statement alone, its own transaction: no
     * other transaction moves a lease back into the past (claims and
     * heartbeats only extend one), so none can turn up meanwhile. */
    if (buried && db_begin_queue(c) != DB_OK) return DB_ERROR;
    sql_stmt *s = NULL;
    db_status st = buried ? fail_buried_assets(c, now_ms) : DB_OK;
    if (st == DB_OK && buried) st = bury(c, Q_JOB_BURY_EXPIRED, now_ms, now_text);
    if (st == DB_OK && !(s = dbi_stmt(c, Q_JOB_CLAIM))) st = DB_ERROR;
    if (st == DB_OK) {
        sql_bind_int64(s, 1, now_ms);
        sql_bind_int64(s, 2, lease_ms);
        sql_bind_text(s, 3, now_text);
        sql_bind_int64(s, 4, max);
        st = dbi_rows(c, s, read_job, out, sizeof *out, max, n, "job claim");
    }
    if (buried) st = db_end(c, st);
    if (st != DB_OK) {
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
    sql_stmt *s = dbi_stmt(c, Q_JOB_HEARTBEAT);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, j->id);
    sql_bind_int64(s, 2, j->fence);
    sql_bind_int64(s, 3, now_ms + lease_ms);
    sql_bind_double(s, 4, progress);
    return dbi_change(c, s, "job heartbeat");
}

db_status db_job_complete(db_conn *c, const job *j, int64_t now_ms)
{
    char now_text[32];
    time_format_ms(now_ms, now_text);
    sql_stmt *s = dbi_stmt(c, Q_JOB_COMPLETE);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, j->id);
    sql_bind_int64(s, 2, j->fence);
    sql_bind_text(s, 3, now_text);
    return dbi_change(c, s, "job complete");
}

db_status db_job_complete_many(db_conn *c, const job *jobs, int n, int64_t now_ms, int *done)
{
    *done = 0;
    if (n <= 0) return DB_OK;
    /* [["id",fence],...]: ids are [A-Za-z0-9_-], nothing to escape */
    size_t cap = (size_t)n * (sizeof jobs->id + 24) + 2;
    char *list = malloc(cap), *at = list;
    if (!list) return DB_ERROR;
    *at++ = '[';
    for (int i = 0; i < n; i++)
        at += snprintf(at, cap - (size_t)(at - list), "%s[\"%s\",%lld]", i ? "," : "",
                       jobs[i].id, (long long)jobs[i].fence);
    snprintf(at, cap - (size_t)(at - list), "]");
    char now_text[32];
    time_format_ms(now_ms, now_text);
    sql_stmt *s = dbi_stmt(c, Q_JOB_COMPLETE_MANY);
    db_status st = DB_ERROR;
    if (s) {
        sql_bind_text(s, 1, list);
        sql_bind_text(s, 2, now_text);
        st = dbi_done(c, s, "job complete many");
    }
    free(list);
    if (st == DB_OK) *done = (int)dbi_changes(c);
    return st;
}

db_status db_job_fail(db_conn *c, const job *j, const char *code, const char *message,
                      bool retryable, int64_t now_ms, int64_t retry_at_ms)
{
    job_state next = !retryable ? JOB_FAILED
                     : j->attempts < j->max_attempts ? JOB_QUEUED
                                                     : JOB_DEAD;
    char now_text[32];
    time_format_ms(now_ms, now_text);
    sql_stmt *s = dbi_stmt(c, Q_JOB_FAIL);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, j->id);
    sql_bind_int64(s, 2, j->fence);
    sql_bind_int64(s, 3, (int)next);
    sql_bind_int64(s, 4, retry_at_ms);
    sql_bind_text(s, 5, code);
    sql_bind_text(s, 6, message);
    sql_bind_text(s, 7, now_text);
    return dbi_change(c, s, "job fail");
}

db_status db_job_get(db_conn *c, const char *owner, const char *id, job *out)
{
    return dbi_get_owned(c, Q_JOB_GET, id, owner, read_job, out, "job get");
}

db_status db_job_retry(db_conn *c, const char *owner, const char *id, int64_t now_ms, job *out)
{
    sql_stmt *s = dbi_stmt(c, Q_JOB_RETRY);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, id);
    sql_bind_text(s, 2, owner);
    sql_bind_int64(s, 3, now_ms);
    return dbi_row(c, s, read_job, out, "job retry");
}

db_status db_job_list(db_conn *c, const char *owner, const char *asset_id, int state, int limit,
                      job *out, int *n)
{
    sql_stmt *s = dbi_stmt(c, asset_id ? Q_JOB_LIST_ASSET : Q_JOB_LIST);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, owner);
    if (asset_id) sql_bind_text(s, 2, asset_id);
    sql_bind_int64(s, 3, state);
    sql_bind_int64(s, 4, limit);
    return dbi_rows(c, s, read_job, out, sizeof *out, limit, n, "job list");
}

/* Runs the trim statement q until a batch deletes fewer than `batch` rows
 * or max_rows are gone; each run is its own transaction. */
static db_status trim_in_batches(db_conn *c, int q, int64_t before_ms, int batch,
                                 int64_t max_rows, int64_t *removed, const char *what)
{
    *removed = 0;
    while (*removed < max_rows) {
        sql_stmt *s = dbi_stmt(c, q);
        if (!s) return DB_ERROR;
        sql_bind_int64(s, 1, before_ms);
        sql_bind_int64(s, 2, batch);
        if (dbi_done(c, s, what) != DB_OK) return DB_ERROR;
        int64_t n = dbi_changes(c);
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
