/* sqlite.c — the SQLite driver (sql.h): the embedded metadata store.
 *
 * The database is DATA/assetd.db in WAL mode: readers never block the one
 * writer, and many serve threads read in parallel.  synchronous=FULL makes a
 * commit durable when it returns, which the upload protocol relies on (the
 * client gets 201 only after the row is on disk); sql_driver.relaxed
 * switches a connection to NORMAL for the writes that may be lost.  A
 * write waits up to 10 s for the one writer's lock (busy timeout).
 *
 * Schema changes are the append-only list of migrations of schema.c,
 * compiled into the binary; PRAGMA user_version records how many have run.
 *
 * Everything that names sqlite3 lives here: opening a connection and its
 * PRAGMAs, the integrity check and the migrations (sql_driver.setup), the
 * statement calls over sqlite3_stmt (prepared SQLITE_PREPARE_PERSISTENT,
 * texts bound SQLITE_STATIC: sql.h's lifetime rule), transactions, and
 * the mapping of SQLite's result codes onto sql_result.  The pool, the
 * statement cache and the db.h functions are db.c and the concern files,
 * shared with every back-end.
 */
#include "db/schema.h"
#include "db/sql.h"
#include "util/log.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* A connection and the statements this driver runs itself (transactions,
 * durability), prepared on first use like the cache's. */
enum { T_BEGIN, T_BEGIN_READ, T_COMMIT, T_ROLLBACK, T_SYNC_NORMAL, T_SYNC_FULL, T_COUNT };
static const char *const own_sql[T_COUNT] = {
    [T_BEGIN] = "BEGIN IMMEDIATE",
    [T_BEGIN_READ] = "BEGIN",
    [T_COMMIT] = "COMMIT",
    [T_ROLLBACK] = "ROLLBACK",
    [T_SYNC_NORMAL] = "PRAGMA synchronous=NORMAL",
    [T_SYNC_FULL] = "PRAGMA synchronous=FULL",
};

struct sql_conn {
    sqlite3 *h;
    sqlite3_stmt *own[T_COUNT];
};

typedef struct lite_stmt {
    sql_stmt base;      /* first: sql.h dispatches through it */
    sqlite3_stmt *h;
} lite_stmt;

#define LITE(s) (((lite_stmt *)(s))->h)

static sql_result result_of(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_ROW: return SQL_ROW;
    case SQLITE_OK:
    case SQLITE_DONE: return SQL_DONE;
    case SQLITE_CONSTRAINT: return SQL_CONSTRAINT;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return SQL_BUSY;
    case SQLITE_FULL: return SQL_FULL;
    default: return SQL_ERROR;
    }
}

/* A damaged file is refused at start rather than served from: answers
 * built on a broken page are silent damage.  quick_check reads every page
 * once (O(size): about a second per GB here), without the index checks of
 * integrity_check. */
static bool intact(sql_conn *c, const char **err)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(c->h, "PRAGMA quick_check(1)", -1, &s, NULL) != SQLITE_OK) {
        log_error("sqlite quick_check failed", "error", sqlite3_errmsg(c->h), NULL);
        *err = "the database cannot be read: restore it from a backup";
        return false;
    }
    bool ok = sqlite3_step(s) == SQLITE_ROW;
    const char *verdict = ok ? (const char *)sqlite3_column_text(s, 0) : sqlite3_errmsg(c->h);
    ok = ok && verdict && strcmp(verdict, "ok") == 0;
    if (!ok) {
        log_error("the database is damaged", "quick_check", verdict ? verdict : "?", NULL);
        *err = "the database is damaged (see the log): restore it from a backup";
    }
    sqlite3_finalize(s);
    return ok;
}

static bool migrate(sql_conn *c, const char **err)
{
    sqlite3_stmt *s;
    *err = "database migration failed";
    if (sqlite3_prepare_v2(c->h, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK) return false;
    int version = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
    sqlite3_finalize(s);
    if (version < 0) return false;
    if (schema_too_new(version, err)) return false;
    for (int v = version; v < DB_MIGRATIONS; v++) {
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d;", v + 1);
        char *why = NULL;
        /* BEGIN IMMEDIATE: two processes starting at once migrate one at a time. */
        if (sqlite3_exec(c->h, "BEGIN IMMEDIATE", NULL, NULL, &why) != SQLITE_OK) goto fail;
        if (sqlite3_exec(c->h, db_migrations[v], NULL, NULL, &why) != SQLITE_OK ||
            sqlite3_exec(c->h, pragma, NULL, NULL, &why) != SQLITE_OK ||
            sqlite3_exec(c->h, "COMMIT", NULL, NULL, &why) != SQLITE_OK) {
            sqlite3_exec(c->h, "ROLLBACK", NULL, NULL, NULL);
            goto fail;
        }
        continue;
    fail:
        log_error("migration failed", "error", why, NULL);
        sqlite3_free(why);
        return false;
    }
    return true;
}

/* SQLite keeps global allocation statistics behind one process-wide mutex
 * taken on every malloc; we never read them, and with many HTTP threads that
 * mutex is the hottest lock in the server.  Must run before SQLite starts. */
static void configure_sqlite(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}


static void lite_close(sql_conn *c)
{
    if (!c) return;
    for (int i = 0; i < T_COUNT; i++) sqlite3_finalize(c->own[i]);
    sqlite3_close(c->h);
    free(c);
}

static sql_conn *lite_open(const char *path)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, configure_sqlite);
    sql_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &c->h, flags, NULL) != SQLITE_OK) {
        log_error("sqlite open failed", "path", path, "error", sqlite3_errmsg(c->h), NULL);
        lite_close(c);
        return NULL;
    }
    sqlite3_busy_timeout(c->h, 10000);
    char *err = NULL;
    if (sqlite3_exec(c->h, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                           " PRAGMA foreign_keys=ON;", NULL, NULL, &err) != SQLITE_OK) {
        log_error("sqlite pragma failed", "error", err, NULL);
        sqlite3_free(err);
        lite_close(c);
        return NULL;
    }
    return c;
}

/* A damaged file is refused at start, then the schema is brought up to
 * date.  Another process may be migrating the same file: its BEGIN
 * IMMEDIATE makes ours wait, then we re-read user_version and find
 * nothing to do. */
static bool lite_setup(sql_conn *c, const char **err)
{
    return intact(c, err) && migrate(c, err);
}

static sql_stmt *lite_prepare(sql_conn *c, const char *text)
{
    lite_stmt *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (sqlite3_prepare_v3(c->h, text, -1, SQLITE_PREPARE_PERSISTENT, &s->h, NULL) != SQLITE_OK) {
        log_error("sqlite prepare failed", "error", sqlite3_errmsg(c->h), "sql", text, NULL);
        sqlite3_finalize(s->h);
        free(s);
        return NULL;
    }
    s->base.drv = &sql_sqlite;
    return &s->base;
}

static void lite_finalize(sql_stmt *s)
{
    sqlite3_finalize(LITE(s));
    free(s);
}

/* SQLITE_STATIC: sql.h's rule keeps the text alive until the reset. */
static void lite_bind_text(sql_stmt *s, int i, const char *v)
{
    if (v) sqlite3_bind_text(LITE(s), i, v, -1, SQLITE_STATIC);
    else sqlite3_bind_null(LITE(s), i);
}
static void lite_bind_int64(sql_stmt *s, int i, int64_t v) { sqlite3_bind_int64(LITE(s), i, v); }
static void lite_bind_double(sql_stmt *s, int i, double v) { sqlite3_bind_double(LITE(s), i, v); }
static void lite_bind_null(sql_stmt *s, int i) { sqlite3_bind_null(LITE(s), i); }
static sql_result lite_step(sql_stmt *s) { return result_of(sqlite3_step(LITE(s))); }
static const char *lite_column_text(sql_stmt *s, int col)
{
    return (const char *)sqlite3_column_text(LITE(s), col);
}
static size_t lite_column_bytes(sql_stmt *s, int col)
{
    return (size_t)sqlite3_column_bytes(LITE(s), col);
}
static int64_t lite_column_int64(sql_stmt *s, int col)
{
    return sqlite3_column_int64(LITE(s), col);
}
static double lite_column_double(sql_stmt *s, int col)
{
    return sqlite3_column_double(LITE(s), col);
}
static bool lite_column_is_null(sql_stmt *s, int col)
{
    return sqlite3_column_type(LITE(s), col) == SQLITE_NULL;
}
static void lite_reset(sql_stmt *s)
{
    sqlite3_reset(LITE(s));
    sqlite3_clear_bindings(LITE(s));
}
static int64_t lite_changes(sql_conn *c) { return sqlite3_changes(c->h); }

/* Runs one of the driver's own statements. */
static sql_result run_own(sql_conn *c, int t)
{
    if (!c->own[t] &&
        sqlite3_prepare_v3(c->h, own_sql[t], -1, SQLITE_PREPARE_PERSISTENT, &c->own[t], NULL) !=
            SQLITE_OK)
        return SQL_ERROR;
    int rc = sqlite3_step(c->own[t]);
    sqlite3_reset(c->own[t]);
    return result_of(rc);
}

/* One writer at a time is all SQLite has: a queue transaction is a write
 * transaction, ordered from its start (no order op). */
static sql_result lite_begin(sql_conn *c, sql_tx mode)
{
    return run_own(c, mode == SQL_TX_READ ? T_BEGIN_READ : T_BEGIN);
}
static sql_result lite_commit(sql_conn *c) { return run_own(c, T_COMMIT); }
static sql_result lite_rollback(sql_conn *c) { return run_own(c, T_ROLLBACK); }
static bool lite_in_transaction(sql_conn *c) { return !sqlite3_get_autocommit(c->h); }
static sql_result lite_relaxed(sql_conn *c, bool relaxed)
{
    return run_own(c, relaxed ? T_SYNC_NORMAL : T_SYNC_FULL);
}
static sql_result lite_error_kind(sql_conn *c) { return result_of(sqlite3_errcode(c->h)); }
static const char *lite_error_text(sql_conn *c) { return sqlite3_errmsg(c->h); }

const sql_driver sql_sqlite = {
    .error_msg = "sqlite error",
    .dialect = SQL_DIALECT_SQLITE,
    .open = lite_open,
    .close = lite_close,
    .setup = lite_setup,
    .prepare = lite_prepare,
    .finalize = lite_finalize,
    .bind_text = lite_bind_text,
    .bind_int64 = lite_bind_int64,
    .bind_double = lite_bind_double,
    .bind_null = lite_bind_null,
    .step = lite_step,
    .column_text = lite_column_text,
    .column_bytes = lite_column_bytes,
    .column_int64 = lite_column_int64,
    .column_double = lite_column_double,
    .column_is_null = lite_column_is_null,
    .reset = lite_reset,
    .changes = lite_changes,
    .begin = lite_begin,
    .commit = lite_commit,
    .rollback = lite_rollback,
    .in_transaction = lite_in_transaction,
    .relaxed = lite_relaxed,
    .error_kind = lite_error_kind,
    .error_text = lite_error_text,
};
