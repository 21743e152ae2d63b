/* sql.h — the statement layer under db.h: what a back-end driver provides.
 * Internal to src/db.
 *
 * The db.h functions are written once (db/assets.c, keys.c, ...) on the
 * sql_* calls below; a driver (db/sqlite.c: SQLite; PostgreSQL next) is a
 * table of function pointers behind them, chosen when the pool opens, so
 * each call costs one indirect call into the driver.
 *
 * Statement text: parameters are numbered ?1, ?2, ... (never a bare ?); a
 * driver whose dialect spells them otherwise rewrites them when it
 * prepares ($1, $2 for PostgreSQL).  Where the dialects disagree, a
 * concern file gives PostgreSQL its own text in a second table
 * (db_internal.h), beside the SQLite one.
 *
 * Lifetimes:
 * - A statement belongs to its connection (prepared once, kept for the
 *   connection's life, finalized before it closes); one thread uses both
 *   at a time.
 * - A bound text is borrowed, not copied: it must stay valid until the
 *   statement is reset (SQLite reads it on every step; libpq sends it at
 *   the first).  Binding NULL text binds SQL NULL.  sql_reset clears the
 *   bindings too; a parameter left unbound is NULL.
 * - A column text is valid until the next step or reset of its statement.
 * - A statement's writes (INSERT/UPDATE/DELETE, with or without RETURNING)
 *   are complete only once a step returned SQL_DONE: step a RETURNING
 *   statement to the end before resetting it.
 * - Rows may be read while other statements of the same connection run
 *   (the claims insert events between rows): a driver that cannot
 *   interleave fetches the whole result at the first step.
 */
#ifndef ASSETD_DB_SQL_H
#define ASSETD_DB_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sql_conn sql_conn;   /* a driver's connection */
typedef struct sql_stmt sql_stmt;   /* a driver's prepared statement */

typedef enum {
    SQL_ROW,          /* a row is ready to read */
    SQL_DONE,         /* no more rows; the statement's writes are complete */
    SQL_CONSTRAINT,   /* a unique or check constraint refused the write */
    SQL_BUSY,         /* locked by another writer (past the driver's wait) */
    SQL_FULL,         /* the disk is full */
    SQL_UNMATCHABLE,  /* a bound text the database cannot hold (PostgreSQL: not
                         UTF-8): no row can match it */
    SQL_ERROR         /* anything else (the driver's message says what) */
} sql_result;

typedef enum { SQL_DIALECT_SQLITE, SQL_DIALECT_POSTGRES } sql_dialect;

typedef enum { SQL_TX_READ, SQL_TX_WRITE, SQL_TX_QUEUE } sql_tx;

/* A back-end.  Every op runs on one connection from one thread at a time. */
typedef struct sql_driver {
    const char *error_msg;   /* the log line of a failure ("sqlite error") */
    sql_dialect dialect;     /* which of a statement's texts it runs (db_internal.h) */
    /* Opens a connection to target (SQLite: a file path), NULL on failure
     * (logged); close frees it, after finalize freed its statements. */
    sql_conn *(*open)(const char *target);
    void (*close)(sql_conn *c);
    /* Checks the database and brings its schema up to date, on the first
     * connection before any statement is prepared; false sets *err to a
     * static message (the details logged). */
    bool (*setup)(sql_conn *c, const char **err);
    /* NULL on failure (logged with the text). */
    sql_stmt *(*prepare)(sql_conn *c, const char *text);
    void (*finalize)(sql_stmt *s);
    void (*bind_text)(sql_stmt *s, int i, const char *v);
    void (*bind_int64)(sql_stmt *s, int i, int64_t v);
    void (*bind_double)(sql_stmt *s, int i, double v);
    void (*bind_null)(sql_stmt *s, int i);
    sql_result (*step)(sql_stmt *s);
    const char *(*column_text)(sql_stmt *s, int col);   /* NULL for SQL NULL */
    size_t (*column_bytes)(sql_stmt *s, int col);
    /* A number column reads 0 for SQL NULL. */
    int64_t (*column_int64)(sql_stmt *s, int col);
    double (*column_double)(sql_stmt *s, int col);
    bool (*column_is_null)(sql_stmt *s, int col);
    void (*reset)(sql_stmt *s);
    /* Rows written by the connection's last completed INSERT, UPDATE or
     * DELETE: read after its SQL_DONE (before or after its reset), before
     * another statement runs. */
    int64_t (*changes)(sql_conn *c);
    /* Transactions (sql_tx): SQL_TX_WRITE takes the write lock at once
     * (no upgrade deadlocks); SQL_TX_READ reads one snapshot without it;
     * SQL_TX_QUEUE writes without it where the back-end can (row locks
     * only) until order() is called, which takes it then (PostgreSQL); a
     * back-end that cannot (SQLite) takes it at once and has no order. */
    sql_result (*begin)(sql_conn *c, sql_tx mode);
    sql_result (*order)(sql_conn *c);
    sql_result (*commit)(sql_conn *c);
    sql_result (*rollback)(sql_conn *c);
    bool (*in_transaction)(sql_conn *c);
    /* Commits stop (true) or start again (false) waiting for the disk;
     * only outside a transaction (db_internal.h, dbi_relaxed). */
    sql_result (*relaxed)(sql_conn *c, bool relaxed);
    /* Wake-ups across processes, NULL where the back-end has none (SQLite:
     * one machine, events/notify.h): listen opens a connection to target
     * that hears every write transaction's commit (PostgreSQL: LISTEN, and
     * each write transaction NOTIFYs); listen_fd is readable when one
     * came; listen_drain consumes them, false when the connection is
     * lost.  Closed with close. */
    sql_conn *(*listen)(const char *target);
    /* True when the connection is lost for good (the pool drops it on
     * release, and opens a new one when needed); NULL: never. */
    bool (*broken)(sql_conn *c);
    int (*listen_fd)(sql_conn *c);
    bool (*listen_drain)(sql_conn *c);
    /* The kind and text of the connection's last error. */
    sql_result (*error_kind)(sql_conn *c);
    const char *(*error_text)(sql_conn *c);
} sql_driver;

extern const sql_driver sql_sqlite;     /* db/sqlite.c */
extern const sql_driver sql_postgres;   /* db/pg.c */

/* The head of every driver's statement, through which the calls below
 * dispatch: drivers embed it first; nothing else reads it. */
struct sql_stmt {
    const sql_driver *drv;
};

/* The statement calls, for the concern files; parameters count from 1,
 * columns from 0.  Inline: one indirect call into the driver each. */
static inline void sql_bind_text(sql_stmt *s, int i, const char *v)
{
    s->drv->bind_text(s, i, v);
}
static inline void sql_bind_int64(sql_stmt *s, int i, int64_t v) { s->drv->bind_int64(s, i, v); }
static inline void sql_bind_double(sql_stmt *s, int i, double v) { s->drv->bind_double(s, i, v); }
static inline void sql_bind_null(sql_stmt *s, int i) { s->drv->bind_null(s, i); }
static inline sql_result sql_step(sql_stmt *s) { return s->drv->step(s); }
static inline const char *sql_column_text(sql_stmt *s, int col)
{
    return s->drv->column_text(s, col);
}
static inline size_t sql_column_bytes(sql_stmt *s, int col)
{
    return s->drv->column_bytes(s, col);
}
static inline int64_t sql_column_int64(sql_stmt *s, int col)
{
    return s->drv->column_int64(s, col);
}
static inline double sql_column_double(sql_stmt *s, int col)
{
    return s->drv->column_double(s, col);
}
static inline bool sql_column_is_null(sql_stmt *s, int col)
{
    return s->drv->column_is_null(s, col);
}
static inline void sql_reset(sql_stmt *s) { s->drv->reset(s); }

#endif
