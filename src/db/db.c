/* db.c — the metadata store's back-end-neutral core (db.h).
 *
 * The connection pool, the per-connection statement cache, transactions
 * and the helpers every concern file shares (db_internal.h).  Everything
 * that names a database library lives in its driver (sql.h: sqlite.c
 * now); this file reaches the back-end only through the driver's table.
 *
 * Every connection prepares each statement once and keeps it for its life;
 * statement q lives in stmts[q].  The tables' functions live in one file
 * per concern (assets, keys, jobs, events, webhooks, slides, uploads, tus,
 * runs), each owning the SQL text of the statements it runs, in a table
 * indexed by the one statement enum: SQL sits beside the code that binds
 * its parameters, and adding a statement touches only the enum and that
 * file.  The cache finds a statement's text in whichever table has it;
 * db_open checks that each has exactly one, with numbered parameters.
 */
#include "db/db_internal.h"
#include "util/fault.h"
#include "util/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const sql_core[Q_COUNT] = {
    [Q_PING] = "SELECT 1",
};

/* Every file's statements; sql_text(q) is the one that has q. */
static const char *const *const sql_tables[] = {
    sql_core, dbi_sql_assets, dbi_sql_keys, dbi_sql_jobs, dbi_sql_events, dbi_sql_webhooks,
    dbi_sql_slides, dbi_sql_uploads, dbi_sql_tus, dbi_sql_runs,
};
#define N_SQL_TABLES (sizeof sql_tables / sizeof *sql_tables)

static const char *sql_text(int q)
{
    for (size_t t = 0; t < N_SQL_TABLES; t++)
        if (sql_tables[t][q]) return sql_tables[t][q];
    return NULL;
}

/* PostgreSQL's own texts, where the dialects disagree. */
static const char *const *const pg_tables[] = {dbi_pg_sql_events, dbi_pg_sql_jobs,
                                               dbi_pg_sql_webhooks};

/* The text of statement q in dialect d. */
static const char *sql_text_for(sql_dialect d, int q)
{
    for (size_t t = 0; d == SQL_DIALECT_POSTGRES && t < sizeof pg_tables / sizeof *pg_tables; t++)
        if (pg_tables[t][q]) return pg_tables[t][q];
    return sql_text(q);
}

/* A bare ? has no number for a driver to rewrite ($N in PostgreSQL). */
static bool numbered_params(const char *text)
{
    for (const char *p = strchr(text, '?'); p; p = strchr(p + 1, '?'))
        if (p[1] < '1' || p[1] > '9') return false;
    return true;
}

/* A statement added to the enum but given text in no table, or in two, or
 * with a bare ?, stops db_open instead of the first request that would run it. */
static bool sql_tables_complete(void)
{
    for (int q = 0; q < Q_COUNT; q++) {
        int found = 0;
        for (size_t t = 0; t < N_SQL_TABLES; t++) found += sql_tables[t][q] != NULL;
        const char *pg = sql_text_for(SQL_DIALECT_POSTGRES, q);
        if (found != 1 || !numbered_params(sql_text(q)) || !numbered_params(pg)) {
            char n[16];
            snprintf(n, sizeof n, "%d", q);
            log_error("statement must have its SQL, with ?N parameters, in exactly one table",
                      "statement", n, NULL);
            return false;
        }
    }
    return true;
}

struct db {
    const sql_driver *drv;
    char target[4096];
    pthread_mutex_t lock;
    db_conn *idle;     /* LIFO free list: the warmest connection first */
    int open, nidle;   /* connections, and how many of them are idle (under lock) */
};

static void conn_free(db_conn *c)
{
    if (!c) return;
    for (int i = 0; i < Q_COUNT; i++)
        if (c->stmts[i]) c->drv->finalize(c->stmts[i]);
    c->drv->close(c->sc);
    free(c);
}

static db_conn *conn_open(const sql_driver *drv, const char *target)
{
    db_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->drv = drv;
    c->last_fail = SQL_DONE;
    if (!(c->sc = drv->open(target))) {
        free(c);
        return NULL;
    }
    return c;
}

/* Statements are prepared lazily so a connection opened before migrations
 * (in db_open) never prepares against a missing table. */
sql_stmt *dbi_stmt(db_conn *c, int q)
{
    if (!c->stmts[q] &&
        !(c->stmts[q] = c->drv->prepare(c->sc, sql_text_for(c->drv->dialect, q))))
        return NULL;
    sql_reset(c->stmts[q]);
    return c->stmts[q];
}

db_status dbi_fail(db_conn *c, const char *what)
{
    /* Kept: a statement run after the failure (dbi_relaxed's, a rollback)
     * resets the driver's own error. */
    c->last_fail = c->drv->error_kind(c->sc);
    log_error(c->drv->error_msg, "op", what, "error", c->drv->error_text(c->sc), NULL);
    return DB_ERROR;
}

/* The step result of a lookup that returns at most one row. */
db_status dbi_lookup_result(db_conn *c, sql_result rc, const char *what)
{
    if (rc == SQL_ROW) return DB_OK;
    return rc == SQL_DONE || rc == SQL_UNMATCHABLE ? DB_NOT_FOUND : dbi_fail(c, what);
}

/* The step result of an UPDATE or DELETE aimed at one row. */
db_status dbi_change_result(db_conn *c, sql_result rc, const char *what)
{
    if (rc == SQL_UNMATCHABLE) return DB_NOT_FOUND;   /* a hostile id names nothing */
    if (rc != SQL_DONE) return dbi_fail(c, what);
    return dbi_changes(c) ? DB_OK : DB_NOT_FOUND;
}

int64_t dbi_changes(db_conn *c) { return c->drv->changes(c->sc); }

db_status dbi_done(db_conn *c, sql_stmt *s, const char *what)
{
    sql_result rc = sql_step(s);
    sql_reset(s);
    return rc == SQL_DONE ? DB_OK : dbi_fail(c, what);
}

db_status dbi_change(db_conn *c, sql_stmt *s, const char *what)
{
    sql_result rc = sql_step(s);
    sql_reset(s);
    return dbi_change_result(c, rc, what);
}

db_status dbi_row(db_conn *c, sql_stmt *s, void (*read)(sql_stmt *s, void *out), void *out,
                  const char *what)
{
    sql_result rc = sql_step(s);
    bool found = rc == SQL_ROW;
    if (found && read) read(s, out);
    while (rc == SQL_ROW) rc = sql_step(s);
    sql_reset(s);
    if (rc == SQL_UNMATCHABLE) return DB_NOT_FOUND;
    if (rc != SQL_DONE) return dbi_fail(c, what);
    return found ? DB_OK : DB_NOT_FOUND;
}

db_status dbi_rows(db_conn *c, sql_stmt *s, void (*read)(sql_stmt *s, void *out), void *out,
                   size_t elem_size, int limit, int *n, const char *what)
{
    sql_result rc;
    *n = 0;
    /* To the end, past the limit too, as dbi_row does: the statement's
     * LIMIT keeps that short. */
    while ((rc = sql_step(s)) == SQL_ROW)
        if (*n < limit) read(s, (char *)out + elem_size * (size_t)(*n)++);
    sql_reset(s);
    if (rc == SQL_DONE) return DB_OK;
    *n = 0;
    return rc == SQL_UNMATCHABLE ? DB_OK : dbi_fail(c, what);
}

static void read_int64(sql_stmt *s, void *out) { *(int64_t *)out = sql_column_int64(s, 0); }

db_status dbi_int64(db_conn *c, sql_stmt *s, int64_t *out, const char *what)
{
    return dbi_row(c, s, read_int64, out, what);
}

/* Runs a statement that returns no rows, binding arg (if any) to ?1. */
db_status dbi_exec_one(db_conn *c, int q, const char *arg, const char *what)
{
    sql_stmt *s = dbi_stmt(c, q);
    if (!s) return DB_ERROR;
    if (arg) sql_bind_text(s, 1, arg);
    return dbi_done(c, s, what);
}

/* Runs an UPDATE or DELETE of the one row id (?1) names (dbi_change). */
db_status dbi_change_one(db_conn *c, int q, const char *id, const char *what)
{
    sql_stmt *s = dbi_stmt(c, q);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, id);
    return dbi_change(c, s, what);
}

void dbi_copy_text(char *dst, size_t cap, sql_stmt *s, int col)
{
    const char *t = sql_column_text(s, col);
    snprintf(dst, cap, "%s", t ? t : "");
}

/* The row of a "... WHERE id = ?1 AND owner = ?2" lookup, read into out by
 * read; DB_NOT_FOUND for another owner's row exactly as for a missing one. */
db_status dbi_get_owned(db_conn *c, int q, const char *id, const char *owner,
                        void (*read)(sql_stmt *s, void *out), void *out, const char *what)
{
    sql_stmt *s = dbi_stmt(c, q);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, id);
    sql_bind_text(s, 2, owner);
    return dbi_row(c, s, read, out, what);
}

/* The outbox rule: an event commits with the change it reports, so every
 * function that changes an asset's state must run inside db_begin(); one
 * that does not is a bug, refused here rather than half-applied. */
bool dbi_in_transaction(db_conn *c, const char *what)
{
    if (c->drv->in_transaction(c->sc)) return true;
    log_error("state change outside a transaction (no event would commit with it)", "op", what,
              NULL);
    return false;
}

void dbi_relaxed(db_conn *c, bool relaxed)
{
    if (!c->drv->in_transaction(c->sc) && c->drv->relaxed(c->sc, relaxed) != SQL_DONE)
        dbi_fail(c, "synchronous");
}

/* ---------- the pool (db.h) ---------- */

db *db_open(const char *dir, const char *url, const char **err)
{
    if (!sql_tables_complete()) { *err = "statement table incomplete"; return NULL; }
    db *d = calloc(1, sizeof *d);
    if (!d) { *err = "out of memory"; return NULL; }
    /* The embedded default: one SQLite file in the data directory. */
    if (url && *url) {
        d->drv = &sql_postgres;
        snprintf(d->target, sizeof d->target, "%s", url);
    } else {
        d->drv = &sql_sqlite;
        snprintf(d->target, sizeof d->target, "%s/assetd.db", dir);
    }
    pthread_mutex_init(&d->lock, NULL);
    db_conn *c = conn_open(d->drv, d->target);
    if (!c) { *err = "cannot open database"; free(d); return NULL; }
    /* Another process may be setting up the same database: the driver
     * makes one wait for the other (db/sqlite.c: migrations). */
    bool ok = d->drv->setup(c->sc, err);
    bool setup = ok;   /* then every statement, each refusal logged */
    for (int q = 0; setup && q < Q_COUNT; q++)
        if (!dbi_stmt(c, q)) {
            *err = "the database refused a statement (see the log)";
            ok = false;
        }
    if (!ok) {
        conn_free(c);
        pthread_mutex_destroy(&d->lock);
        free(d);
        return NULL;
    }
    d->idle = c;
    d->open = d->nidle = 1;
    return d;
}

void db_close(db *d)
{
    if (!d) return;
    while (d->idle) {
        db_conn *c = d->idle;
        d->idle = c->next_idle;
        conn_free(c);
    }
    pthread_mutex_destroy(&d->lock);
    free(d);
}

db_conn *db_acquire(db *d)
{
    pthread_mutex_lock(&d->lock);
    db_conn *c = d->idle;
    if (c) d->idle = c->next_idle, d->nidle--;
    pthread_mutex_unlock(&d->lock);
    if (c) return c;
    if ((c = conn_open(d->drv, d->target))) {
        pthread_mutex_lock(&d->lock);
        d->open++;
        pthread_mutex_unlock(&d->lock);
    }
    return c;
}

void db_pool_counts(db *d, int *open, int *idle)
{
    pthread_mutex_lock(&d->lock);
    *open = d->open;
    *idle = d->nidle;
    pthread_mutex_unlock(&d->lock);
}

bool db_failed_full(db_conn *c)
{
    return c && (c->last_fail == SQL_FULL || c->drv->error_kind(c->sc) == SQL_FULL);
}

void db_release(db *d, db_conn *c)
{
    if (!c) return;
    c->last_fail = SQL_DONE;   /* no failure */
    bool broken = c->drv->broken && c->drv->broken(c->sc);
    pthread_mutex_lock(&d->lock);
    if (broken) {
        d->open--;
    } else {
        c->next_idle = d->idle;
        d->idle = c;
        d->nidle++;
    }
    pthread_mutex_unlock(&d->lock);
    if (broken) {
        log_warn("database connection lost; a new one will be opened", NULL);
        conn_free(c);
    }
}

db_status db_ping(db_conn *c)
{
    sql_stmt *s = dbi_stmt(c, Q_PING);
    return s ? dbi_row(c, s, NULL, NULL, "ping") : dbi_fail(c, "ping");
}

/* ---------- transactions ---------- */

static db_status txn(db_conn *c, sql_result rc, const char *what)
{
    return rc == SQL_DONE ? DB_OK : dbi_fail(c, what);
}

db_status db_begin(db_conn *c) { return txn(c, c->drv->begin(c->sc, SQL_TX_WRITE), "begin"); }
db_status db_begin_read(db_conn *c) { return txn(c, c->drv->begin(c->sc, SQL_TX_READ), "begin read"); }
db_status db_begin_queue(db_conn *c)
{
    return txn(c, c->drv->begin(c->sc, SQL_TX_QUEUE), "begin queue");
}

db_status dbi_order(db_conn *c)
{
    return c->drv->order ? txn(c, c->drv->order(c->sc), "order") : DB_OK;
}
db_status db_commit(db_conn *c)
{
    db_status st = txn(c, c->drv->commit(c->sc), "commit");
    if (st == DB_OK) fault_point("db.committed");
    return st;
}

db_status db_end(db_conn *c, db_status st)
{
    if (st == DB_OK && db_commit(c) == DB_OK) return DB_OK;
    db_rollback(c);
    return st == DB_OK ? DB_ERROR : st;
}

void db_rollback(db_conn *c)
{
    if (c->drv->in_transaction(c->sc)) txn(c, c->drv->rollback(c->sc), "rollback");
}

/* ---------- wake-ups across processes (db.h) ---------- */

struct db_listener {
    const sql_driver *drv;
    sql_conn *sc;
};

db_listener *db_listen(db *d)
{
    if (!d->drv->listen) return NULL;
    db_listener *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->drv = d->drv;
    if (!(l->sc = d->drv->listen(d->target))) {
        free(l);
        return NULL;
    }
    return l;
}

int db_listener_fd(const db_listener *l) { return l->drv->listen_fd(l->sc); }
bool db_listener_drain(db_listener *l) { return l->drv->listen_drain(l->sc); }

void db_listener_close(db_listener *l)
{
    if (!l) return;
    l->drv->close(l->sc);
    free(l);
}
