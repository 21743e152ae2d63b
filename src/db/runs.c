/* runs.c — CSV runs and the people table (db.h, core/run.h).
 *
 * runs: one row per run, its lease (fence, lease_until, attempts) and its
 * counts.  A claim bumps the fence; every write by a worker names it
 * (WHERE fence = ?2), so a worker whose lease was taken over changes
 * nothing — the same rule as jobs.
 *
 * people: the owner's table, the consumer's output; (owner, email) is the
 * key, so the first row with an e-mail wins (ON CONFLICT DO NOTHING) and a later
 * one is a duplicate.  Every value is bound, never spliced into SQL: a
 * name like `Robert'); DROP TABLE people;--` is stored as written.
 *
 * run_lines: the CSV lines each running run has stored, so a message
 * delivered twice is counted once (run.h); dropped when the run ends.
 *
 * Every state change appends its event in the caller's transaction:
 * run.created, run.progress (when asked), run.finished.  A run's events
 * carry its CSV's asset id (events need one) and the run as run_to_json
 * shows it.
 */
#include "db/db_internal.h"
#include "core/run.h"

#include <stdlib.h>
#include <string.h>

#define RUN_COLS                                                                              \
    "id, owner, asset_id, state, mode, timeout_s, clear, n_read, n_skipped, n_sent, n_nacked, " \
    "n_received, n_saved, n_duplicates, skipped_lines, pub_offset, pub_line, table_count, "    \
    "error_code, error_message, cancel, created_ms, started_ms, published_ms, "                \
    "last_message_ms, finished_ms, fence, lease_until, attempts, session, session_open"
#define FENCED "WHERE id = ?1 AND fence = ?2 AND state < 3"

const char *const dbi_sql_runs[Q_COUNT] = {
    [Q_RUN_INSERT] = "INSERT INTO runs (id, owner, asset_id, state, mode, timeout_s, clear,"
                     " created_ms, session, session_open) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [Q_RUN_BY_SESSION] = "SELECT " RUN_COLS " FROM runs WHERE session = ?1 AND owner = ?2"
                         " AND session_open = 1",
    [Q_RUN_SESSIONS] = "SELECT " RUN_COLS " FROM runs WHERE owner = ?1 AND session_open = 1"
                       " ORDER BY created_ms LIMIT ?2",
    /* /process/: an open session starts consuming (claimable: lease 0). */
    [Q_RUN_PROCESS] = "UPDATE runs SET state = 2, mode = ?3, timeout_s = ?4, lease_until = 0"
                      " WHERE session = ?1 AND owner = ?2 AND session_open = 1 AND state = 5"
                      " RETURNING " RUN_COLS,
    /* /remove/: off the list; one never processed ends here. */
    [Q_RUN_CLOSE_SESSION] = "UPDATE runs SET session_open = 0,"
                            " finished_ms = CASE WHEN state = 5 THEN ?3 ELSE finished_ms END,"
                            " table_count = CASE WHEN state = 5 THEN (SELECT count(*) FROM people"
                            " WHERE owner = runs.owner) ELSE table_count END,"
                            " state = CASE WHEN state = 5 THEN 3 ELSE state END"
                            " WHERE session = ?1 AND owner = ?2 AND session_open = 1"
                            " AND state IN (3, 4, 5) RETURNING " RUN_COLS,
    [Q_RUN_GET] = "SELECT " RUN_COLS " FROM runs WHERE id = ?1 AND owner = ?2",
    [Q_RUN_LIST] = "SELECT " RUN_COLS " FROM runs WHERE owner = ?1 AND created_ms < ?2"
                   " ORDER BY created_ms DESC, id LIMIT ?3",
    [Q_RUN_CANCEL_QUEUED] = "UPDATE runs SET state = 4, error_code = 'cancelled',"
                            " error_message = 'the run was cancelled before it started',"
                            " finished_ms = ?3 WHERE id = ?1 AND owner = ?2 AND state = 0"
                            " RETURNING " RUN_COLS,
    [Q_RUN_CANCEL] = "UPDATE runs SET cancel = 1 WHERE id = ?1 AND owner = ?2 AND state < 3"
                     " RETURNING " RUN_COLS,
    [Q_RUN_BURY] = "UPDATE runs SET state = 4, error_code = 'worker_lost',"
                   " error_message = 'the worker running it stopped answering on every attempt',"
                   " finished_ms = ?1 WHERE state < 3 AND lease_until < ?1 AND attempts >= ?2"
                   " RETURNING " RUN_COLS,
    /* Queued runs have lease_until 0: one scan finds them and expired ones.
     * PostgreSQL's driver drops INDEXED BY; it will want FOR UPDATE SKIP
     * LOCKED in the subquery, as jobs.c's Q_JOB_CLAIM. */
    [Q_RUN_CLAIM] = "UPDATE runs SET fence = fence + 1, attempts = attempts + 1,"
                    " lease_until = ?1 + ?2, state = CASE WHEN state = 0 THEN 1 ELSE state END,"
                    " started_ms = CASE WHEN started_ms = 0 THEN ?1 ELSE started_ms END"
                    " WHERE id = (SELECT id FROM runs INDEXED BY runs_live WHERE state < 3"
                    " AND lease_until < ?1 ORDER BY lease_until, created_ms LIMIT 1)"
                    " RETURNING " RUN_COLS,
    [Q_RUN_RENEW] = "UPDATE runs SET lease_until = ?3 " FENCED " RETURNING cancel",
    [Q_RUN_SAVE_PUBLISHER] = "UPDATE runs SET state = ?3, n_read = ?4, n_skipped = ?5,"
                             " n_sent = ?6, n_nacked = ?7, skipped_lines = ?8, pub_offset = ?9,"
                             " pub_line = ?10, published_ms = ?11 " FENCED
                             " RETURNING " RUN_COLS,
    [Q_RUN_LINE] = "INSERT INTO run_lines (run_id, line) VALUES (?1, ?2)"
                   " ON CONFLICT (run_id, line) DO NOTHING",
    [Q_PEOPLE_INSERT] = "INSERT INTO people (owner, email, name, run_id, line, created_ms)"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (owner, email) DO NOTHING",
    [Q_RUN_SAVE_CONSUMER] = "UPDATE runs SET n_received = n_received + ?3,"
                            " n_saved = n_saved + ?4, n_duplicates = n_duplicates + ?5,"
                            " last_message_ms = CASE WHEN ?3 > 0 THEN ?6 ELSE last_message_ms END"
                            " " FENCED " RETURNING " RUN_COLS,
    [Q_RUN_FINISH] = "UPDATE runs SET state = ?3, error_code = ?4, error_message = ?5,"
                     " finished_ms = ?6, lease_until = 0,"
                     " table_count = (SELECT count(*) FROM people WHERE owner = runs.owner) "
                     FENCED " RETURNING " RUN_COLS,
    [Q_RUN_LINES_DROP] = "DELETE FROM run_lines WHERE run_id = ?1",
    [Q_PEOPLE_CLEAR] = "DELETE FROM people WHERE owner = ?1",
    [Q_PEOPLE_LIST] = "SELECT email, name, run_id, line, created_ms FROM people"
                      " WHERE owner = ?1 AND email > ?2 ORDER BY email LIMIT ?3",
    [Q_PEOPLE_COUNT] = "SELECT count(*) FROM people WHERE owner = ?1",
};

static void read_run(sql_stmt *s, void *out)
{
    run_rec *r = out;
    memset(r, 0, sizeof *r);
    dbi_copy_text(r->id, sizeof r->id, s, 0);
    dbi_copy_text(r->owner, sizeof r->owner, s, 1);
    dbi_copy_text(r->asset_id, sizeof r->asset_id, s, 2);
    int state = sql_column_int64(s, 3);
    r->state = state >= RUN_QUEUED && state <= RUN_OPEN ? (run_state)state : RUN_FAILED;
    r->mode = sql_column_int64(s, 4) == RUN_BATCH ? RUN_BATCH : RUN_LIVE;
    r->timeout_s = sql_column_int64(s, 5);
    r->clear = sql_column_int64(s, 6) != 0;
    int64_t *counts[] = {&r->n.read, &r->n.skipped, &r->n.sent, &r->n.nacked,
                         &r->n.received, &r->n.saved, &r->n.duplicates};
    for (int i = 0; i < 7; i++) *counts[i] = sql_column_int64(s, 7 + i);
    dbi_copy_text(r->skipped_lines, sizeof r->skipped_lines, s, 14);
    r->pub_offset = (uint64_t)sql_column_int64(s, 15);
    r->pub_line = (uint64_t)sql_column_int64(s, 16);
    r->table_count = sql_column_int64(s, 17);
    dbi_copy_text(r->error_code, sizeof r->error_code, s, 18);
    dbi_copy_text(r->error_message, sizeof r->error_message, s, 19);
    r->cancel = sql_column_int64(s, 20) != 0;
    int64_t *times[] = {&r->created_ms, &r->started_ms, &r->published_ms, &r->last_message_ms,
                        &r->finished_ms, &r->fence, &r->lease_until_ms};
    for (int i = 0; i < 7; i++) *times[i] = sql_column_int64(s, 21 + i);
    r->attempts = sql_column_int64(s, 28);
    dbi_copy_text(r->session, sizeof r->session, s, 29);
    r->session_open = sql_column_int64(s, 30) != 0;
}

static db_status append_event(db_conn *c, const char *type, const run_rec *r, int64_t now_ms)
{
    json_t *o = run_to_json(r);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    db_status st = text ? db_event_append(c, type, r->asset_id, r->owner, now_ms, text) : DB_ERROR;
    free(text);
    return st;
}

db_status db_run_insert(db_conn *c, run_rec *r)
{
    if (!dbi_in_transaction(c, "run insert")) return DB_ERROR;
    if (r->clear && dbi_exec_one(c, Q_PEOPLE_CLEAR, r->owner, "people clear") != DB_OK)
        return DB_ERROR;
    sql_stmt *s = dbi_stmt(c, Q_RUN_INSERT);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, r->id);
    sql_bind_text(s, 2, r->owner);
    sql_bind_text(s, 3, r->asset_id);
    r->state = r->session[0] ? RUN_OPEN : RUN_QUEUED;
    r->session_open = r->session[0] != '\0';
    sql_bind_int64(s, 4, (int)r->state);
    sql_bind_int64(s, 5, (int)r->mode);
    sql_bind_int64(s, 6, r->timeout_s);
    sql_bind_int64(s, 7, r->clear);
    sql_bind_int64(s, 8, r->created_ms);
    sql_bind_text(s, 9, r->session);
    sql_bind_int64(s, 10, r->session_open);
    if (dbi_done(c, s, "run insert") != DB_OK) return DB_ERROR;
    r->table_count = -1;
    return append_event(c, "run.created", r, r->created_ms);
}

db_status db_run_get(db_conn *c, const char *owner, const char *id, run_rec *out)
{
    return dbi_get_owned(c, Q_RUN_GET, id, owner, read_run, out, "run get");
}

db_status db_run_list(db_conn *c, const char *owner, int64_t before_ms, int limit, run_rec *out,
                      int *n)
{
    sql_stmt *s = dbi_stmt(c, Q_RUN_LIST);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, owner);
    sql_bind_int64(s, 2, before_ms > 0 ? before_ms : INT64_MAX);
    sql_bind_int64(s, 3, limit);
    return dbi_rows(c, s, read_run, out, sizeof *out, limit, n, "run list");
}

db_status db_run_cancel(db_conn *c, const char *owner, const char *id, int64_t now_ms, run_rec *out)
{
    if (!dbi_in_transaction(c, "run cancel")) return DB_ERROR;
    sql_stmt *s = dbi_stmt(c, Q_RUN_CANCEL_QUEUED);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, id);
    sql_bind_text(s, 2, owner);
    sql_bind_int64(s, 3, now_ms);
    db_status st = dbi_row(c, s, read_run, out, "run cancel");
    if (st == DB_OK) return append_event(c, "run.finished", out, now_ms);
    if (st != DB_NOT_FOUND) return st;
    /* Running: its worker sees the flag at its next write and stops. */
    if (!(s = dbi_stmt(c, Q_RUN_CANCEL))) return DB_ERROR;
    sql_bind_text(s, 1, id);
    sql_bind_text(s, 2, owner);
    return dbi_row(c, s, read_run, out, "run cancel");
}

db_status db_run_claim(db_conn *c, int64_t now_ms, int64_t lease_ms, run_rec *out)
{
    if (db_begin(c) != DB_OK) return DB_ERROR;
    /* Runs whose worker died on their last attempt fail first, each with
     * its run.finished, so a run that kills workers stops being retried. */
    sql_stmt *s = dbi_stmt(c, Q_RUN_BURY);
    if (!s) goto fail;
    sql_bind_int64(s, 1, now_ms);
    sql_bind_int64(s, 2, RUN_MAX_ATTEMPTS);
    sql_result rc;
    while ((rc = sql_step(s)) == SQL_ROW) {
        run_rec dead;
        read_run(s, &dead);
        if (append_event(c, "run.finished", &dead, now_ms) != DB_OK) {
            sql_reset(s);
            goto fail;
        }
    }
    sql_reset(s);
    if (rc != SQL_DONE) {
        dbi_fail(c, "run bury");
        goto fail;
    }
    if (!(s = dbi_stmt(c, Q_RUN_CLAIM))) goto fail;
    sql_bind_int64(s, 1, now_ms);
    sql_bind_int64(s, 2, lease_ms);
    db_status st = dbi_row(c, s, read_run, out, "run claim");
    if (st == DB_ERROR || db_commit(c) != DB_OK) goto fail;
    return st;
fail:
    db_rollback(c);
    return DB_ERROR;
}

db_status db_run_renew(db_conn *c, const run_rec *r, int64_t until_ms, bool *cancel)
{
    sql_stmt *s = dbi_stmt(c, Q_RUN_RENEW);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, r->id);
    sql_bind_int64(s, 2, r->fence);
    sql_bind_int64(s, 3, until_ms);
    int64_t flag = 0;
    db_status st = dbi_int64(c, s, &flag, "run renew");
    if (st == DB_OK) *cancel = flag != 0;
    return st;
}

/* What the other side of the run wrote, and the owner's cancel flag: the
 * row's, not the caller's copy. */
static void take_row_side(run_rec *r, const run_rec *row)
{
    r->n.received = row->n.received;
    r->n.saved = row->n.saved;
    r->n.duplicates = row->n.duplicates;
    r->last_message_ms = row->last_message_ms;
    r->cancel = row->cancel;
}

db_status db_run_save_publisher(db_conn *c, run_rec *r, bool progress_event, int64_t now_ms)
{
    if (!dbi_in_transaction(c, "run save publisher")) return DB_ERROR;
    sql_stmt *s = dbi_stmt(c, Q_RUN_SAVE_PUBLISHER);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, r->id);
    sql_bind_int64(s, 2, r->fence);
    sql_bind_int64(s, 3, (int)r->state);
    sql_bind_int64(s, 4, r->n.read);
    sql_bind_int64(s, 5, r->n.skipped);
    sql_bind_int64(s, 6, r->n.sent);
    sql_bind_int64(s, 7, r->n.nacked);
    sql_bind_text(s, 8, r->skipped_lines[0] ? r->skipped_lines : "[]");
    sql_bind_int64(s, 9, (int64_t)r->pub_offset);
    sql_bind_int64(s, 10, (int64_t)r->pub_line);
    sql_bind_int64(s, 11, r->published_ms);
    run_rec now;
    db_status st = dbi_row(c, s, read_run, &now, "run save publisher");
    if (st != DB_OK) return st;
    take_row_side(r, &now);
    return progress_event ? append_event(c, "run.progress", &now, now_ms) : DB_OK;
}

/* A row's outcome: 0 seen before (a redelivery), 1 saved, 2 duplicate. */
static int store_row(db_conn *c, const run_rec *r, const run_row *row, int64_t now_ms)
{
    sql_stmt *s;
    if (row->line > 0) {   /* 0: a message with no line (another publisher's) */
        if (!(s = dbi_stmt(c, Q_RUN_LINE))) return -1;
        sql_bind_text(s, 1, r->id);
        sql_bind_int64(s, 2, row->line);
        if (dbi_done(c, s, "run line") != DB_OK) return -1;
        if (dbi_changes(c) == 0) return 0;
    }
    if (!(s = dbi_stmt(c, Q_PEOPLE_INSERT))) return -1;
    sql_bind_text(s, 1, r->owner);
    sql_bind_text(s, 2, row->mail);
    sql_bind_text(s, 3, row->name);
    sql_bind_text(s, 4, r->id);
    sql_bind_int64(s, 5, row->line);
    sql_bind_int64(s, 6, now_ms);
    if (dbi_done(c, s, "people insert") != DB_OK) return -1;
    return dbi_changes(c) ? 1 : 2;
}

db_status db_run_store_rows(db_conn *c, run_rec *r, const run_row *rows, int n, bool progress_event,
                            int64_t now_ms)
{
    if (!dbi_in_transaction(c, "run store rows")) return DB_ERROR;
    int64_t received = 0, saved = 0, duplicates = 0;
    for (int i = 0; i < n; i++) {
        int out = store_row(c, r, &rows[i], now_ms);
        if (out < 0) return DB_ERROR;
        received += out > 0;
        saved += out == 1;
        duplicates += out == 2;
    }
    sql_stmt *s = dbi_stmt(c, Q_RUN_SAVE_CONSUMER);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, r->id);
    sql_bind_int64(s, 2, r->fence);
    sql_bind_int64(s, 3, received);
    sql_bind_int64(s, 4, saved);
    sql_bind_int64(s, 5, duplicates);
    sql_bind_int64(s, 6, now_ms);
    run_rec now;
    db_status st = dbi_row(c, s, read_run, &now, "run save consumer");
    if (st != DB_OK) return st;
    take_row_side(r, &now);
    return progress_event ? append_event(c, "run.progress", &now, now_ms) : DB_OK;
}

db_status db_run_finish(db_conn *c, run_rec *r, int64_t now_ms)
{
    if (!dbi_in_transaction(c, "run finish")) return DB_ERROR;
    sql_stmt *s = dbi_stmt(c, Q_RUN_FINISH);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, r->id);
    sql_bind_int64(s, 2, r->fence);
    sql_bind_int64(s, 3, (int)r->state);
    sql_bind_text(s, 4, r->error_code);
    sql_bind_text(s, 5, r->error_message);
    sql_bind_int64(s, 6, now_ms);
    db_status st = dbi_row(c, s, read_run, r, "run finish");
    if (st != DB_OK) return st;
    if (dbi_exec_one(c, Q_RUN_LINES_DROP, r->id, "run lines drop") != DB_OK) return DB_ERROR;
    return append_event(c, "run.finished", r, now_ms);
}

db_status db_run_by_session(db_conn *c, const char *owner, const char *session, run_rec *out)
{
    return dbi_get_owned(c, Q_RUN_BY_SESSION, session, owner, read_run, out, "run by session");
}

db_status db_run_sessions(db_conn *c, const char *owner, int limit, run_rec *out, int *n)
{
    sql_stmt *s = dbi_stmt(c, Q_RUN_SESSIONS);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, owner);
    sql_bind_int64(s, 2, limit);
    return dbi_rows(c, s, read_run, out, sizeof *out, limit, n, "run sessions");
}

db_status db_run_process(db_conn *c, const char *owner, const char *session, run_mode mode,
                         int timeout_s, int64_t now_ms, run_rec *out)
{
    if (!dbi_in_transaction(c, "run process")) return DB_ERROR;
    sql_stmt *s = dbi_stmt(c, Q_RUN_PROCESS);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, session);
    sql_bind_text(s, 2, owner);
    sql_bind_int64(s, 3, (int)mode);
    sql_bind_int64(s, 4, timeout_s);
    db_status st = dbi_row(c, s, read_run, out, "run process");
    return st == DB_OK ? append_event(c, "run.progress", out, now_ms) : st;
}

db_status db_run_close_session(db_conn *c, const char *owner, const char *session,
                               int64_t now_ms, run_rec *out)
{
    if (!dbi_in_transaction(c, "run close session")) return DB_ERROR;
    sql_stmt *s = dbi_stmt(c, Q_RUN_CLOSE_SESSION);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, session);
    sql_bind_text(s, 2, owner);
    sql_bind_int64(s, 3, now_ms);
    db_status st = dbi_row(c, s, read_run, out, "run close session");
    /* ended here (never processed): its run.finished */
    if (st == DB_OK && out->finished_ms == now_ms)
        return append_event(c, "run.finished", out, now_ms);
    return st;
}

db_status db_people_count(db_conn *c, const char *owner, int64_t *n)
{
    sql_stmt *s = dbi_stmt(c, Q_PEOPLE_COUNT);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, owner);
    return dbi_int64(c, s, n, "people count");
}

db_status db_people_list(db_conn *c, const char *owner, const char *after_email, int limit,
                         db_person_fn fn, void *arg, int *n)
{
    sql_stmt *s = dbi_stmt(c, Q_PEOPLE_LIST);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, owner);
    sql_bind_text(s, 2, after_email ? after_email : "");
    sql_bind_int64(s, 3, limit);
    sql_result rc;
    *n = 0;
    while ((rc = sql_step(s)) == SQL_ROW) {
        db_person p = {
            .email = sql_column_text(s, 0),
            .email_len = (size_t)sql_column_bytes(s, 0),
            .name = sql_column_text(s, 1),
            .name_len = (size_t)sql_column_bytes(s, 1),
            .run_id = sql_column_text(s, 2),
            .line = sql_column_int64(s, 3),
            .created_ms = sql_column_int64(s, 4),
        };
        fn(arg, &p);
        (*n)++;
    }
    sql_reset(s);
    return rc == SQL_DONE ? DB_OK : dbi_fail(c, "people list");
}
