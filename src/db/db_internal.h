/* db_internal.h — what the metadata store's files share.  Internal to
 * src/db: everything else uses db.h.
 *
 * Three layers:
 * - the concern files (assets.c, keys.c, jobs.c, events.c, webhooks.c,
 *   slides.c, uploads.c, tus.c, runs.c): the db.h functions, written once
 *   for every back-end on the statement calls of sql.h and the helpers
 *   below;
 * - db.c, the back-end-neutral core: the connection pool, the statement
 *   cache, transactions, these helpers;
 * - a driver per back-end (sql.h's sql_driver): sqlite.c now.  Only a
 *   driver names its database library.
 *
 * Statements: the enum below names every statement, grouped by the file
 * that owns it; a connection caches statement q in stmts[q].  Each file
 * owns the SQL of the statements its functions run, in its own table
 * indexed by this enum (dbi_sql_jobs[Q_JOB_GET] = "SELECT ..."), and gives
 * text to its own statements only.  To add one: its name in the file's
 * group here, its text in that file's table; db_open refuses to start if a
 * statement has no text, text in two tables, or a bare ? parameter.
 *
 * The helpers are prefixed dbi_ because, shared, they have external linkage
 * in a binary that links every module.  Nothing they return outlives the
 * connection: statements belong to it, column text to the statement until
 * its next step or reset (sql.h).
 */
#ifndef ASSETD_DB_INTERNAL_H
#define ASSETD_DB_INTERNAL_H

#include "db/db.h"
#include "db/sql.h"

#include <stdbool.h>
#include <stddef.h>

enum {
    /* db.c */
    Q_PING,
    /* assets.c */
    Q_ASSET_INSERT, Q_ASSET_GET, Q_ASSET_DELETE, Q_ASSET_EXISTS, Q_ASSET_LIST, Q_ASSET_GET_ANY,
    Q_ASSET_SET_PROCESSING, Q_ASSET_SET_READY, Q_ASSET_SET_FAILED, Q_ASSET_SET_INFO, Q_ASSET_SET_COVER,
    Q_SHOW_DELETE,
    /* keys.c */
    Q_KEY_INSERT, Q_KEY_FIND, Q_KEY_REVOKE, Q_KEY_COUNT, Q_KEY_EACH, Q_SECRET_OFFER, Q_SECRET_GET,
    /* jobs.c */
    Q_JOB_INSERT, Q_JOB_LIVE, Q_JOB_BURY_EXPIRED, Q_JOB_ANY_DUE, Q_JOB_CLAIM, Q_JOB_HEARTBEAT,
    Q_JOB_COMPLETE, Q_JOB_COMPLETE_MANY, Q_JOB_FAIL, Q_JOB_GET, Q_JOB_RETRY, Q_JOB_LIST, Q_JOB_LIST_ASSET,
    Q_JOB_BURIED_ASSETS, Q_JOBS_TRIM, Q_DELIVERIES_TRIM,
    /* events.c */
    Q_EVENT_INSERT, Q_EVENT_AFTER, Q_EVENT_BOUNDS, Q_EVENT_TRIM, Q_AMQP_CURSOR_INIT, Q_AMQP_CURSOR,
    Q_AMQP_SET_CURSOR,
    /* webhooks.c */
    Q_HOOK_INSERT, Q_HOOK_GET, Q_HOOK_LIST, Q_HOOK_DELETE, Q_HOOK_CURSOR_INIT, Q_HOOK_CURSOR,
    Q_HOOK_BATCH_END, Q_HOOK_FAN_IN, Q_HOOK_SET_CURSOR, Q_HOOK_ANY_DUE, Q_HOOK_DUE, Q_HOOK_LEASE,
    Q_HOOK_DONE, Q_HOOK_DISABLE, Q_HOOK_DROP_PENDING, Q_HOOK_DELIVERIES,
    /* slides.c */
    Q_SLIDES_CLEAR, Q_SLIDE_INSERT, Q_SLIDES_LIST, Q_SHOW_INSERT, Q_SHOW_GET, Q_SHOW_SET,
    Q_PARTS_CLEAR, Q_PART_INSERT, Q_PART_GET,
    /* uploads.c */
    Q_UPLOAD_INSERT, Q_UPLOAD_GET, Q_UPLOAD_GET_SEQ, Q_UPLOAD_BY_KEY, Q_UPLOAD_GET_ANY,
    Q_UPLOAD_SET_STATE, Q_UPLOAD_RESIGN, Q_UPLOAD_EXPIRED, Q_UPLOAD_DELETE,
    /* tus.c */
    Q_TUS_INSERT, Q_TUS_GET, Q_TUS_EXISTS, Q_TUS_LOCK, Q_TUS_RENEW, Q_TUS_UNLOCK, Q_TUS_ADVANCE,
    Q_TUS_COMPLETE, Q_TUS_DELETE, Q_TUS_EXPIRED, Q_TUS_CLAIM_EXPIRED,
    /* runs.c */
    Q_RUN_INSERT, Q_RUN_GET, Q_RUN_LIST, Q_RUN_CANCEL_QUEUED, Q_RUN_CANCEL, Q_RUN_BURY,
    Q_RUN_CLAIM, Q_RUN_RENEW, Q_RUN_SAVE_PUBLISHER, Q_RUN_LINE, Q_PEOPLE_INSERT,
    Q_RUN_SAVE_CONSUMER, Q_RUN_FINISH, Q_RUN_LINES_DROP, Q_PEOPLE_CLEAR, Q_PEOPLE_LIST,
    Q_PEOPLE_COUNT, Q_RUN_BY_SESSION, Q_RUN_SESSIONS, Q_RUN_PROCESS, Q_RUN_CLOSE_SESSION,
    Q_COUNT
};

/* Owned by the pool (db.c); used by one thread at a time (db.h). */
struct db_conn {
    const sql_driver *drv;
    sql_conn *sc;
    sql_stmt *stmts[Q_COUNT];
    db_conn *next_idle;
    sql_result last_fail;   /* the kind of the last dbi_fail while borrowed (db_failed_full) */
};

/* Each file's statement texts, NULL for the statements of other files;
 * and, for the few statements PostgreSQL spells otherwise, its texts in a
 * second table of the same file (NULL: the first table's text serves). */
extern const char *const dbi_sql_assets[Q_COUNT];
extern const char *const dbi_sql_keys[Q_COUNT];
extern const char *const dbi_sql_jobs[Q_COUNT];
extern const char *const dbi_sql_events[Q_COUNT];
extern const char *const dbi_sql_webhooks[Q_COUNT];
extern const char *const dbi_sql_slides[Q_COUNT];
extern const char *const dbi_sql_uploads[Q_COUNT];
extern const char *const dbi_sql_tus[Q_COUNT];
extern const char *const dbi_sql_runs[Q_COUNT];
extern const char *const dbi_pg_sql_events[Q_COUNT];
extern const char *const dbi_pg_sql_jobs[Q_COUNT];
extern const char *const dbi_pg_sql_webhooks[Q_COUNT];

/* Statement q of c, prepared on first use, reset with no bindings; NULL
 * (logged) if it cannot be prepared.  The caller resets it after stepping
 * (the helpers below that step a statement reset it themselves). */
sql_stmt *dbi_stmt(db_conn *c, int q);
/* Logs the connection's last error for `what`; returns DB_ERROR. */
db_status dbi_fail(db_conn *c, const char *what);
/* A step result: of a lookup of at most one row (DB_NOT_FOUND for none),
 * of an UPDATE or DELETE of one row (DB_NOT_FOUND if it changed nothing). */
db_status dbi_lookup_result(db_conn *c, sql_result rc, const char *what);
db_status dbi_change_result(db_conn *c, sql_result rc, const char *what);
/* Rows written by c's last completed statement (sql_driver.changes). */
int64_t dbi_changes(db_conn *c);

/* Steppers for a statement whose parameters are bound; each resets it.
 * dbi_done: one that returns no rows.  dbi_change: an UPDATE or DELETE
 * aimed at one row (dbi_change_result).  dbi_row: at most one row, read()
 * into out when there is one (read may be NULL), stepped to the end so a
 * RETURNING statement's writes complete.  dbi_rows: up to limit rows into
 * the array out of elements of elem_size bytes, *n the count (0 on error),
 * stepped to the end likewise (its SQL's LIMIT should be limit). */
db_status dbi_done(db_conn *c, sql_stmt *s, const char *what);
db_status dbi_change(db_conn *c, sql_stmt *s, const char *what);
db_status dbi_row(db_conn *c, sql_stmt *s, void (*read)(sql_stmt *s, void *out), void *out,
                  const char *what);
db_status dbi_rows(db_conn *c, sql_stmt *s, void (*read)(sql_stmt *s, void *out), void *out,
                   size_t elem_size, int limit, int *n, const char *what);
/* Column 0 of the first row as an integer (NULL reads 0), by dbi_row:
 * an aggregate's, an INSERT ... RETURNING's (DB_NOT_FOUND: no row). */
db_status dbi_int64(db_conn *c, sql_stmt *s, int64_t *out, const char *what);
/* Runs statement q, which returns no rows, binding arg (if any) to ?1. */
db_status dbi_exec_one(db_conn *c, int q, const char *arg, const char *what);
/* dbi_change of statement q with id bound to ?1. */
db_status dbi_change_one(db_conn *c, int q, const char *id, const char *what);
/* Copies column col of s into dst (cap bytes, truncated, "" for NULL). */
void dbi_copy_text(char *dst, size_t cap, sql_stmt *s, int col);
/* Runs q, a "WHERE id = ?1 AND owner = ?2" lookup, and read()s its row into
 * out: another owner's row is DB_NOT_FOUND exactly like a missing one. */
db_status dbi_get_owned(db_conn *c, int q, const char *id, const char *owner,
                        void (*read)(sql_stmt *s, void *out), void *out, const char *what);
/* Switches c's commits between not waiting for the disk (SQLite: WAL,
 * synchronous NORMAL: durable at the next synced commit or checkpoint; a
 * process crash loses nothing, a power cut may lose the last commits) and
 * waiting (the default).  Only outside a transaction; for writes whose
 * loss after a power cut is harmless by construction — say why at the call. */
void dbi_relaxed(db_conn *c, bool relaxed);
/* Called by a function about to append an event or enqueue work: in a
 * queue transaction (db_begin_queue) it takes the write lock now, so the
 * event commits in id order and the commit wakes the listeners; in any
 * other write transaction it already holds it (a no-op). */
db_status dbi_order(db_conn *c);
/* True inside a transaction; false, logged, outside (the outbox rule:
 * every state change must commit with its event). */
bool dbi_in_transaction(db_conn *c, const char *what);

#endif
