/* pg.c — the PostgreSQL driver (sql.h): the metadata store of a
 * scale-out deployment, where several serve and worker processes on
 * several machines share one database (--db postgres://...).
 *
 * libpq, one connection per db_conn (the pool is db.c's).  Each statement
 * is prepared once per connection under its own name (s1, s2, ...), its
 * ?N parameters rewritten to $N; parameters go as text (numbers printed
 * here), and the whole result comes back at the first step (sql.h allows
 * it, and the claims interleave statements between rows).  A statement's
 * changes are PQcmdTuples of an INSERT, UPDATE or DELETE.
 *
 * Transactions keep SQLite's single-writer rule, which the db.h functions
 * were written under, except where the queue says it needs none: a write
 * transaction (db_begin) takes one transaction-scoped advisory lock
 * (WRITER_LOCK) before anything else, so write transactions
 * run one at a time across every process and commit in the order they
 * took it.  Two things follow.  Check-then-write inside a transaction
 * cannot race another writer, as on SQLite.  And event ids, drawn from a
 * sequence inside such transactions, commit in id order: a reader that
 * saw event N has seen every committed event below N, so `since` cursors
 * never skip one (a sequence alone does not order commits).  The lock is
 * released after the commit is visible (PostgreSQL ends the transaction in
 * the proc array before it releases locks), so the next writer's events
 * are ordered after it.  A queue transaction (db_begin_queue: claims with
 * FOR UPDATE SKIP LOCKED, fenced updates of rows it holds) starts without
 * the lock, so claimers on many workers neither wait for uploads nor for
 * each other; pg_order takes the lock the moment it is about to append an
 * event or enqueue a job (dbi_order), before the event's id is drawn, so
 * the order of events holds.  Reads take a REPEATABLE READ snapshot and no lock.
 * A lock is waited for 10 s at most (lock_timeout, as SQLite's busy
 * timeout), then the statement fails SQL_BUSY.
 *
 * Wake-ups: every ordered write transaction also NOTIFYs the channel `assetd`,
 * which PostgreSQL delivers at its commit (never for a rollback, merged
 * within one transaction) to every LISTEN connection (db_listen): the hub
 * of each serve process and each idle worker, on any machine.  Coarse —
 * any write wakes them — and cheap: what they do then is one indexed read.
 *
 * Schema: schema.c's migrations, SQLite's texts with a few type names
 * translated (pg_text), so the same versions with the same meaning: every
 * integer BIGINT (times are milliseconds), REAL double precision, an
 * AUTOINCREMENT key an identity column (never reused either), WITHOUT ROWID
 * dropped.  Each runs in its own transaction with its version row,
 * all under a session advisory lock (MIGRATE_LOCK) so processes starting
 * together migrate once, one after the other.
 *
 * Result codes: 22021 (a bound text not UTF-8) is SQL_UNMATCHABLE — the
 * lookups answer "not found" to a hostile id as SQLite does; class 23
 * (integrity) is SQL_CONSTRAINT; 40001
 * (serialization), 40P01 (deadlock), 55P03 (lock not available) and 57014
 * (statement timeout) are SQL_BUSY; 53100 (disk full) is SQL_FULL;
 * anything else, a lost connection included, SQL_ERROR.
 */
#include "db/sql.h"
#include "db/schema.h"
#include "util/log.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARAMS_MAX 32
#define TEXTOID 25               /* pg_type.h's, which libpq-dev does not ship */
#define MIGRATE_LOCK 0x61737364  /* "assd": the session lock of migrations */
#define WRITER_LOCK 0x61737377   /* "assw": every write transaction's */
#define CHANNEL "assetd"         /* NOTIFYed by every write transaction */

struct sql_conn {
    PGconn *h;
    unsigned next_name;
    bool ordered;   /* this transaction holds WRITER_LOCK (pg_order) */
    int64_t changes;
    sql_result last_kind;
    char last_error[512];
};

typedef struct pg_stmt {
    sql_stmt base;   /* first: sql.h dispatches through it */
    sql_conn *c;
    char name[16];
    int nparams;
    const char *values[PARAMS_MAX];
    char numbers[PARAMS_MAX][32];   /* a number's text, pointed to by values[i] */
    PGresult *res;
    int row, rows;
    bool ran;
} pg_stmt;

#define PG(s) ((pg_stmt *)(s))

/* ---------- errors ---------- */

static sql_result kind_of(const char *sqlstate)
{
    if (!sqlstate) return SQL_ERROR;
    if (strncmp(sqlstate, "23", 2) == 0) return SQL_CONSTRAINT;
    if (!strcmp(sqlstate, "40001") || !strcmp(sqlstate, "40P01") || !strcmp(sqlstate, "55P03") ||
        !strcmp(sqlstate, "57014"))
        return SQL_BUSY;
    if (!strcmp(sqlstate, "53100")) return SQL_FULL;
    if (!strcmp(sqlstate, "22021")) return SQL_UNMATCHABLE;   /* a text that is not UTF-8 */
    return SQL_ERROR;
}

/* Records res's failure (or the connection's) on c; returns its kind. */
static sql_result failed(sql_conn *c, const PGresult *res)
{
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(c->h);
    if (!msg || !*msg) msg = PQerrorMessage(c->h);
    snprintf(c->last_error, sizeof c->last_error, "%s", msg);
    size_t n = strlen(c->last_error);
    while (n && (c->last_error[n - 1] == '\n' || c->last_error[n - 1] == ' '))
        c->last_error[--n] = '\0';
    c->last_kind = kind_of(res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL);
    return c->last_kind;
}

/* Runs text (no parameters, no rows wanted): SQL_DONE or the failure. */
static sql_result run(sql_conn *c, const char *text)
{
    PGresult *res = PQexec(c->h, text);
    ExecStatusType st = PQresultStatus(res);
    sql_result r = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? SQL_DONE : failed(c, res);
    if (r == SQL_DONE) c->last_kind = SQL_DONE;
    PQclear(res);
    return r;
}

/* ---------- connections and the schema ---------- */

static void pg_close(sql_conn *c)
{
    if (!c) return;
    PQfinish(c->h);
    free(c);
}

/* The server's NOTICEs ("relation already exists, skipping") are not
 * ours to print: libpq's default writes them to stderr. */
static void ignore_notice(void *arg, const char *message) { (void)arg, (void)message; }

static sql_conn *pg_open(const char *target)
{
    sql_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->h = PQconnectdb(target);
    if (PQstatus(c->h) != CONNECTION_OK) {
        log_error("postgres connect failed", "error", PQerrorMessage(c->h), NULL);
        pg_close(c);
        return NULL;
    }
    PQsetNoticeProcessor(c->h, ignore_notice, NULL);
    if (PQsetClientEncoding(c->h, "UTF8") != 0 ||
        run(c, "SET application_name = 'assetd'; SET lock_timeout = '10s'") != SQL_DONE) {
        log_error("postgres session setup failed", "error", c->last_error, NULL);
        pg_close(c);
        return NULL;
    }
    return c;
}

/* The schema's version: the largest applied, 0 for a new database. */
static int schema_version(sql_conn *c)
{
    PGresult *res = PQexec(c->h, "SELECT coalesce(max(version), 0) FROM schema_version");
    int v = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1
                ? atoi(PQgetvalue(res, 0, 0))
                : -1;
    if (v < 0) failed(c, res);
    PQclear(res);
    return v;
}

/* A migration's SQLite text in PostgreSQL's types (see the top); the
 * caller frees it.  Replacements are whole words, outside quotes. */
static char *pg_text(const char *text)
{
    static const struct { const char *from, *to; } words[] = {
        {"INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"},
        {"INTEGER", "BIGINT"},
        {"REAL", "DOUBLE PRECISION"},
        {" WITHOUT ROWID", ""},
    };
    size_t cap = 4 * strlen(text) + 64, o = 0;   /* REAL (4) -> 16 bytes: at most 4x */
    char *out = malloc(cap);
    char quote = 0;
    for (const char *p = text; out && *p;) {
        size_t i = 0, n = 0;
        if (!quote)
            for (i = 0; i < sizeof words / sizeof *words; i++) {
                n = strlen(words[i].from);
                /* p[n] is read only once p holds the word: before, it may
                 * lie past the text's end */
                if (strncmp(p, words[i].from, n) != 0) continue;
                bool start = p == text || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
                bool end = !(isalnum((unsigned char)p[n]) || p[n] == '_');
                if (start && end) break;
            }
        if (!quote && i < sizeof words / sizeof *words) {
            size_t m = strlen(words[i].to);
            if (o + m + 1 > cap) break;
            memcpy(out + o, words[i].to, m);
            o += m, p += n;
            continue;
        }
        if (quote && *p == quote) quote = 0;
        else if (!quote && (*p == '\'' || *p == '"')) quote = *p;
        if (o + 2 > cap) break;
        out[o++] = *p++;
    }
    if (out) out[o] = '\0';
    return out;
}

static bool migrate(sql_conn *c, const char **err)
{
    *err = "database migration failed";
    if (run(c, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)") !=
        SQL_DONE)
        return false;
    int version = schema_version(c);
    if (version < 0) return false;
    if (schema_too_new(version, err)) return false;
    for (int v = version; v < DB_MIGRATIONS; v++) {
        char mark[80];
        snprintf(mark, sizeof mark, "INSERT INTO schema_version (version) VALUES (%d)", v + 1);
        char *text = pg_text(db_migrations[v]);
        bool ok = text && run(c, "BEGIN") == SQL_DONE && run(c, text) == SQL_DONE &&
                  run(c, mark) == SQL_DONE && run(c, "COMMIT") == SQL_DONE;
        free(text);
        if (!ok) {
            char n[16];
            snprintf(n, sizeof n, "%d", v + 1);
            log_error("migration failed", "migration", n, "error", c->last_error, NULL);
            run(c, "ROLLBACK");
            return false;
        }
    }
    return true;
}

/* Processes that start together take turns: the first migrates, the
 * others wait on the lock, then find nothing to do.  The lock is the
 * session's: released here, or by the server if this process dies. */
static bool pg_setup(sql_conn *c, const char **err)
{
    char lock[64];
    snprintf(lock, sizeof lock, "SELECT pg_advisory_lock(%d)", MIGRATE_LOCK);
    if (run(c, lock) != SQL_DONE) {
        log_error("postgres migration lock failed", "error", c->last_error, NULL);
        *err = "cannot lock the database for its migrations";
        return false;
    }
    bool ok = migrate(c, err);
    snprintf(lock, sizeof lock, "SELECT pg_advisory_unlock(%d)", MIGRATE_LOCK);
    run(c, lock);
    return ok;
}

/* ---------- statements ---------- */

/* text in PostgreSQL's spelling, outside quoted literals and identifiers:
 * ?N as $N, and SQLite's planner hint INDEXED BY NAME dropped (PostgreSQL's
 * planner has statistics).  false if out does not hold it or a parameter
 * is over PARAMS_MAX. */
static bool rewrite(const char *text, char *out, size_t cap, int *nparams, bool *used)
{
    static const char hint[] = " INDEXED BY ";
    size_t o = 0;
    char quote = 0;
    *nparams = 0;
    for (const char *p = text; *p; p++) {
        char ch = *p;
        if (quote) {
            if (ch == quote) quote = 0;
        } else if (ch == '\'' || ch == '"') {
            quote = ch;
        } else if (strncmp(p, hint, sizeof hint - 1) == 0) {
            p += sizeof hint - 1;
            p += strspn(p, "abcdefghijklmnopqrstuvwxyz_0123456789");
            ch = ' ';
            p--;
        } else if (ch == '?' && p[1] >= '1' && p[1] <= '9') {
            int n = (int)strtol(p + 1, NULL, 10);
            if (n > PARAMS_MAX) return false;
            if (n > *nparams) *nparams = n;
            used[n - 1] = true;
            ch = '$';
        }
        if (o + 1 >= cap) return false;
        out[o++] = ch;
    }
    out[o] = '\0';
    return true;
}

static sql_stmt *pg_prepare(sql_conn *c, const char *text)
{
    pg_stmt *s = calloc(1, sizeof *s);
    char *sql = malloc(strlen(text) + 1);
    bool used[PARAMS_MAX] = {false};
    if (!s || !sql || !rewrite(text, sql, strlen(text) + 1, &s->nparams, used)) {
        log_error("postgres prepare failed", "error", "too many parameters", "sql", text, NULL);
        free(sql);
        free(s);
        return NULL;
    }
    snprintf(s->name, sizeof s->name, "s%u", ++c->next_name);
    /* A parameter the text never names (one statement of a pair that
     * share their binding code) has no type to infer: text. */
    Oid types[PARAMS_MAX] = {0};
    for (int i = 0; i < s->nparams; i++)
        if (!used[i]) types[i] = TEXTOID;
    PGresult *res = PQprepare(c->h, s->name, sql, s->nparams, types);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) {
        failed(c, res);
        log_error("postgres prepare failed", "error", c->last_error, "sql", sql, NULL);
    }
    PQclear(res);
    free(sql);
    if (!ok) {
        free(s);
        return NULL;
    }
    s->base.drv = &sql_postgres;
    s->c = c;
    return &s->base;
}

/* The prepared statement itself lives until the connection closes
 * (PQfinish drops every one): nothing to tell the server. */
static void pg_finalize(sql_stmt *s)
{
    PQclear(PG(s)->res);
    free(s);
}

static void pg_bind_text(sql_stmt *s, int i, const char *v)
{
    if (i >= 1 && i <= PG(s)->nparams) PG(s)->values[i - 1] = v;
}
static void pg_bind_int64(sql_stmt *s, int i, int64_t v)
{
    if (i < 1 || i > PG(s)->nparams) return;
    snprintf(PG(s)->numbers[i - 1], sizeof PG(s)->numbers[i - 1], "%lld", (long long)v);
    PG(s)->values[i - 1] = PG(s)->numbers[i - 1];
}
static void pg_bind_double(sql_stmt *s, int i, double v)
{
    if (i < 1 || i > PG(s)->nparams) return;
    snprintf(PG(s)->numbers[i - 1], sizeof PG(s)->numbers[i - 1], "%.17g", v);
    PG(s)->values[i - 1] = PG(s)->numbers[i - 1];
}
static void pg_bind_null(sql_stmt *s, int i)
{
    if (i >= 1 && i <= PG(s)->nparams) PG(s)->values[i - 1] = NULL;
}

static sql_result pg_step(sql_stmt *st)
{
    pg_stmt *s = PG(st);
    if (!s->ran) {
        s->ran = true;
        s->res = PQexecPrepared(s->c->h, s->name, s->nparams, s->values, NULL, NULL, 0);
        ExecStatusType es = PQresultStatus(s->res);
        if (es != PGRES_COMMAND_OK && es != PGRES_TUPLES_OK) {
            s->rows = 0;
            return failed(s->c, s->res);
        }
        s->c->last_kind = SQL_DONE;
        const char *cmd = PQcmdStatus(s->res);
        if (!strncmp(cmd, "INSERT", 6) || !strncmp(cmd, "UPDATE", 6) || !strncmp(cmd, "DELETE", 6))
            s->c->changes = strtoll(PQcmdTuples(s->res), NULL, 10);
        s->rows = PQntuples(s->res);
        s->row = -1;
    }
    if (s->row + 1 < s->rows) {
        s->row++;
        return SQL_ROW;
    }
    s->row = s->rows;
    return SQL_DONE;
}

static const char *pg_column_text(sql_stmt *s, int col)
{
    pg_stmt *p = PG(s);
    if (!p->res || p->row < 0 || p->row >= p->rows || PQgetisnull(p->res, p->row, col))
        return NULL;
    return PQgetvalue(p->res, p->row, col);
}
static size_t pg_column_bytes(sql_stmt *s, int col)
{
    pg_stmt *p = PG(s);
    return pg_column_text(s, col) ? (size_t)PQgetlength(p->res, p->row, col) : 0;
}
static int64_t pg_column_int64(sql_stmt *s, int col)
{
    const char *t = pg_column_text(s, col);
    return t ? strtoll(t, NULL, 10) : 0;
}
static double pg_column_double(sql_stmt *s, int col)
{
    const char *t = pg_column_text(s, col);
    return t ? strtod(t, NULL) : 0;
}
static bool pg_column_is_null(sql_stmt *s, int col) { return pg_column_text(s, col) == NULL; }

static void pg_reset(sql_stmt *s)
{
    pg_stmt *p = PG(s);
    PQclear(p->res);
    p->res = NULL;
    p->ran = false;
    p->rows = p->row = 0;
    memset(p->values, 0, sizeof p->values);
}

static int64_t pg_changes(sql_conn *c) { return c->changes; }

/* ---------- transactions ---------- */

/* Takes WRITER_LOCK and NOTIFYs, once per transaction; after `first`
 * (a BEGIN, or nothing) in the same round trip. */
static sql_result take_order(sql_conn *c, const char *first)
{
    if (c->ordered) return SQL_DONE;
    char text[112];
    snprintf(text, sizeof text, "%sSELECT pg_advisory_xact_lock(%d); NOTIFY " CHANNEL, first,
             WRITER_LOCK);
    sql_result r = run(c, text);
    c->ordered = r == SQL_DONE;
    return r;
}

static sql_result pg_order(sql_conn *c) { return take_order(c, ""); }

static sql_result pg_begin(sql_conn *c, sql_tx mode)
{
    c->ordered = false;
    if (mode == SQL_TX_READ) return run(c, "BEGIN ISOLATION LEVEL REPEATABLE READ");
    sql_result r = mode == SQL_TX_WRITE ? take_order(c, "BEGIN; ") : run(c, "BEGIN");
    if (r != SQL_DONE && PQtransactionStatus(c->h) != PQTRANS_IDLE) run(c, "ROLLBACK");
    return r;
}
static sql_result pg_commit(sql_conn *c) { return run(c, "COMMIT"); }
static sql_result pg_rollback(sql_conn *c) { return run(c, "ROLLBACK"); }
static bool pg_in_transaction(sql_conn *c)
{
    PGTransactionStatusType t = PQtransactionStatus(c->h);
    return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}
/* synchronous_commit off: a commit returns before its WAL is flushed
 * (a crash of the database server may lose the last ones; never a
 * partial one), the same trade as SQLite's synchronous=NORMAL. */
static sql_result pg_relaxed(sql_conn *c, bool relaxed)
{
    return run(c, relaxed ? "SET synchronous_commit = off" : "SET synchronous_commit = on");
}
static bool pg_broken(sql_conn *c) { return PQstatus(c->h) != CONNECTION_OK; }

/* ---------- wake-ups (LISTEN/NOTIFY) ---------- */

static sql_conn *pg_listen(const char *target)
{
    sql_conn *c = pg_open(target);
    if (c && run(c, "LISTEN " CHANNEL) != SQL_DONE) {
        log_error("postgres LISTEN failed", "error", c->last_error, NULL);
        pg_close(c);
        return NULL;
    }
    return c;
}
static int pg_listen_fd(sql_conn *c) { return PQsocket(c->h); }
static bool pg_listen_drain(sql_conn *c)
{
    if (!PQconsumeInput(c->h)) return false;
    PGnotify *n;
    while ((n = PQnotifies(c->h))) PQfreemem(n);
    return PQstatus(c->h) == CONNECTION_OK;
}

static sql_result pg_error_kind(sql_conn *c) { return c->last_kind; }
static const char *pg_error_text(sql_conn *c) { return c->last_error; }

const sql_driver sql_postgres = {
    .error_msg = "postgres error",
    .dialect = SQL_DIALECT_POSTGRES,
    .open = pg_open,
    .close = pg_close,
    .setup = pg_setup,
    .prepare = pg_prepare,
    .finalize = pg_finalize,
    .bind_text = pg_bind_text,
    .bind_int64 = pg_bind_int64,
    .bind_double = pg_bind_double,
    .bind_null = pg_bind_null,
    .step = pg_step,
    .column_text = pg_column_text,
    .column_bytes = pg_column_bytes,
    .column_int64 = pg_column_int64,
    .column_double = pg_column_double,
    .column_is_null = pg_column_is_null,
    .reset = pg_reset,
    .changes = pg_changes,
    .begin = pg_begin,
    .order = pg_order,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .in_transaction = pg_in_transaction,
    .relaxed = pg_relaxed,
    .listen = pg_listen,
    .listen_fd = pg_listen_fd,
    .listen_drain = pg_listen_drain,
    .broken = pg_broken,
    .error_kind = pg_error_kind,
    .error_text = pg_error_text,
};
