/* sqlite.c — the embedded metadata store (db.h on SQLite): its core.
 *
 * The database is DATA/assetd.db in WAL mode: readers never block the one
 * writer, and many serve threads read in parallel.  synchronous=FULL makes a
 * commit durable when it returns, which the upload protocol relies on (the
 * client gets 201 only after the row is on disk).
 *
 * Schema changes are an append-only list of migrations compiled into the
 * binary; PRAGMA user_version records how many have run.  Never edit a
 * migration that has shipped: add a new one.
 *
 * Every connection prepares each statement once (SQLITE_PREPARE_PERSISTENT)
 * and keeps it for its life; statement q lives in stmts[q].  This file is
 * the connection pool, that statement cache, the migrations, transactions
 * and the helpers every other sqlite_*.c shares (sqlite_internal.h); the
 * tables' functions live in one file per concern (assets, keys, jobs,
 * events, webhooks, slides).  Each of those files owns the SQL text of the
 * statements it runs, in a table indexed by the one statement enum: SQL
 * sits beside the code that binds its parameters, and adding a statement
 * touches only the enum and that file.  The cache finds a statement's text
 * in whichever table has it; db_open checks that each has exactly one.
 */
#include "db/db_internal.h"
#include "util/fault.h"
#include "util/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const migrations[] = {
    /* 1: keys and assets */
    "CREATE TABLE api_keys ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  owner TEXT NOT NULL,"
    "  token_sha256 TEXT NOT NULL UNIQUE,"
    "  created TEXT NOT NULL,"
    "  revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE assets ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  owner TEXT NOT NULL,"
    "  kind INTEGER NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  filename TEXT NOT NULL,"
    "  content_type TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  sha256 TEXT NOT NULL,"
    "  created TEXT NOT NULL,"
    "  updated TEXT NOT NULL);"
    "CREATE INDEX assets_by_owner ON assets(owner, seq);",
    /* 2: the job queue (queue/job.h) */
    "CREATE TABLE jobs ("
    "  id TEXT PRIMARY KEY,"
    "  asset_id TEXT NOT NULL,"
    "  owner TEXT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  max_attempts INTEGER NOT NULL,"
    "  fence INTEGER NOT NULL DEFAULT 0,"
    "  run_at INTEGER NOT NULL,"
    "  lease_until INTEGER NOT NULL DEFAULT 0,"
    "  progress REAL NOT NULL DEFAULT 0,"
    "  error_code TEXT NOT NULL DEFAULT '',"
    "  error_message TEXT NOT NULL DEFAULT '',"
    "  created TEXT NOT NULL,"
    "  started TEXT NOT NULL DEFAULT '',"
    "  finished TEXT NOT NULL DEFAULT '');"
    /* One live (queued/running) job per asset and type. */
    "CREATE UNIQUE INDEX jobs_live ON jobs(asset_id, type) WHERE state IN (0, 1);"
    "CREATE INDEX jobs_runnable ON jobs(state, run_at);"
    "CREATE INDEX jobs_by_asset ON jobs(asset_id);",
    /* 3: processing results on the asset */
    "ALTER TABLE assets ADD COLUMN renditions TEXT NOT NULL DEFAULT '[]';"
    "ALTER TABLE assets ADD COLUMN meta TEXT NOT NULL DEFAULT '{}';"
    "ALTER TABLE assets ADD COLUMN error_code TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE assets ADD COLUMN error_message TEXT NOT NULL DEFAULT '';",
    /* 4: the event log (db.h, "events").  AUTOINCREMENT: an id is never
     * reused, even after the newest events were trimmed, so a client's
     * `since` cursor can never point at a different event. */
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  type TEXT NOT NULL,"
    "  asset_id TEXT NOT NULL,"
    "  owner TEXT NOT NULL,"
    "  at INTEGER NOT NULL,"
    "  data TEXT NOT NULL);"
    "CREATE INDEX events_by_time ON events(at);",
    /* 5: webhooks (core/webhook.h).  A delivery keeps its exact body so
     * every retry sends the same bytes; `state_kv` holds the fan-in
     * cursor: the last event turned into deliveries. */
    "CREATE TABLE webhooks ("
    "  id TEXT PRIMARY KEY,"
    "  owner TEXT NOT NULL,"
    "  url TEXT NOT NULL,"
    "  events TEXT NOT NULL,"
    "  secret TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  disabled INTEGER NOT NULL DEFAULT 0,"
    "  disabled_reason TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX webhooks_by_owner ON webhooks(owner);"
    "CREATE TABLE webhook_deliveries ("
    "  id TEXT PRIMARY KEY,"
    "  webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,"
    "  event_id INTEGER NOT NULL,"
    "  type TEXT NOT NULL,"
    "  payload TEXT NOT NULL,"
    "  state INTEGER NOT NULL DEFAULT 0,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  last_status INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT NOT NULL DEFAULT '',"
    "  created_ms INTEGER NOT NULL,"
    "  next_at INTEGER NOT NULL,"
    "  finished_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX deliveries_due ON webhook_deliveries(state, next_at);"
    "CREATE INDEX deliveries_by_hook ON webhook_deliveries(webhook_id, created_ms);"
    "CREATE TABLE state_kv (name TEXT PRIMARY KEY, value INTEGER NOT NULL);",
    /* 6: the pages of a document asset (media/pdf.h), its renditions
     * slide_NNN and slide_NNN_thumb: too many for the assets.renditions
     * text, and each page has its own size. */
    "CREATE TABLE slides ("
    "  asset_id TEXT NOT NULL,"
    "  page INTEGER NOT NULL,"
    "  width INTEGER NOT NULL, height INTEGER NOT NULL, size INTEGER NOT NULL,"
    "  thumb_width INTEGER NOT NULL, thumb_height INTEGER NOT NULL, thumb_size INTEGER NOT NULL,"
    "  PRIMARY KEY (asset_id, page)) WITHOUT ROWID;",
    /* 7: slideshows (api/slideshows.c): a document asset with a presenter.
     * The control token is kept as its SHA-256 only, like API keys. */
    "CREATE TABLE slideshows ("
    "  asset_id TEXT PRIMARY KEY,"
    "  control_token_sha256 TEXT NOT NULL,"
    "  current INTEGER NOT NULL DEFAULT 0,"
    "  updated TEXT NOT NULL);",
    /* 8: GET /v1/jobs lists an owner's jobs newest first; without this it
     * scanned the whole table and sorted it. */
    "CREATE INDEX jobs_by_owner ON jobs(owner, created);",
    /* 9: retention of finished deliveries (jobs use jobs_runnable). */
    "CREATE INDEX deliveries_finished ON webhook_deliveries(finished_ms) WHERE state != 0;",
    /* 10: signed direct uploads (core/upload.h).  seq is the small integer
     * the cloud-asset-uploader API calls asset_id; (owner, object_key) is
     * unique, so two concurrent first uploads of one key meet here. */
    "CREATE TABLE uploads ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  owner TEXT NOT NULL,"
    "  object_key TEXT,"
    "  filename TEXT NOT NULL,"
    "  content_type TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  sha256 TEXT NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  asset_made INTEGER NOT NULL DEFAULT 0,"
    "  expires_ms INTEGER NOT NULL,"
    "  created TEXT NOT NULL,"
    "  UNIQUE (owner, object_key));"
    "CREATE INDEX uploads_pending ON uploads(expires_ms) WHERE state = 0;",
    /* 11: resumable (tus) uploads (core/tus.h).  id is the asset's id;
     * length -1 is deferred; lock_token/lock_until are the one writer's
     * lease; parts lists a final upload's partial uploads.  gc will find
     * expired ones through tus_expiring. */
    "CREATE TABLE tus_uploads ("
    "  id TEXT PRIMARY KEY,"
    "  owner TEXT NOT NULL,"
    "  length INTEGER NOT NULL,"
    "  upload_offset INTEGER NOT NULL DEFAULT 0,"
    "  metadata TEXT NOT NULL,"
    "  filename TEXT NOT NULL,"
    "  filetype TEXT NOT NULL,"
    "  concat INTEGER NOT NULL DEFAULT 0,"
    "  parts TEXT NOT NULL DEFAULT '',"
    "  state INTEGER NOT NULL DEFAULT 0,"
    "  lock_token TEXT NOT NULL DEFAULT '',"
    "  lock_until INTEGER NOT NULL DEFAULT 0,"
    "  expires_ms INTEGER NOT NULL,"
    "  created TEXT NOT NULL);"
    "CREATE INDEX tus_expiring ON tus_uploads(expires_ms) WHERE state = 0;",
    /* 12: the parts of a video's streams (queue/video.c): HLS media
     * playlists and fMP4 segments, served as renditions but too many to
     * list in assets.renditions (a 3 h video has thousands). */
    "CREATE TABLE rendition_parts ("
    "  asset_id TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  content_type TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  PRIMARY KEY (asset_id, name)) WITHOUT ROWID;",
    /* 13: what the owner says about an asset (PATCH /v1/assets/{id}):
     * tags is a JSON array of strings (asset_info_apply checked it). */
    "ALTER TABLE assets ADD COLUMN title TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE assets ADD COLUMN description TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE assets ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';",
    /* 14: an image's rendition profile ('' the default; core/asset.h),
     * named by the upload and kept through a signed or tus upload until
     * the asset exists. */
    "ALTER TABLE assets ADD COLUMN profile TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE uploads ADD COLUMN profile TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE tus_uploads ADD COLUMN profile TEXT NOT NULL DEFAULT '';",
    /* 15: a video's cover sent by its owner (core/cover.h): '' or its
     * record, JSON like renditions. */
    "ALTER TABLE assets ADD COLUMN cover TEXT NOT NULL DEFAULT '';",
    /* 16: CSV runs (core/run.h), the owner's people table they fill, and
     * the lines each running run has stored (sqlite_runs.c).  runs_live
     * finds claimable runs: queued ones have lease_until 0. */
    "CREATE TABLE runs ("
    "  id TEXT PRIMARY KEY,"
    "  owner TEXT NOT NULL,"
    "  asset_id TEXT NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  mode INTEGER NOT NULL,"
    "  timeout_s INTEGER NOT NULL,"
    "  clear INTEGER NOT NULL,"
    "  n_read INTEGER NOT NULL DEFAULT 0,"
    "  n_skipped INTEGER NOT NULL DEFAULT 0,"
    "  n_sent INTEGER NOT NULL DEFAULT 0,"
    "  n_nacked INTEGER NOT NULL DEFAULT 0,"
    "  n_received INTEGER NOT NULL DEFAULT 0,"
    "  n_saved INTEGER NOT NULL DEFAULT 0,"
    "  n_duplicates INTEGER NOT NULL DEFAULT 0,"
    "  skipped_lines TEXT NOT NULL DEFAULT '[]',"
    "  pub_offset INTEGER NOT NULL DEFAULT 0,"
    "  pub_line INTEGER NOT NULL DEFAULT 1,"
    "  table_count INTEGER NOT NULL DEFAULT -1,"
    "  error_code TEXT NOT NULL DEFAULT '',"
    "  error_message TEXT NOT NULL DEFAULT '',"
    "  cancel INTEGER NOT NULL DEFAULT 0,"
    "  created_ms INTEGER NOT NULL,"
    "  started_ms INTEGER NOT NULL DEFAULT 0,"
    "  published_ms INTEGER NOT NULL DEFAULT 0,"
    "  last_message_ms INTEGER NOT NULL DEFAULT 0,"
    "  finished_ms INTEGER NOT NULL DEFAULT 0,"
    "  fence INTEGER NOT NULL DEFAULT 0,"
    "  lease_until INTEGER NOT NULL DEFAULT 0,"
    "  attempts INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX runs_by_owner ON runs(owner, created_ms);"
    "CREATE INDEX runs_live ON runs(lease_until, created_ms) WHERE state < 3;"
    "CREATE TABLE people ("
    "  owner TEXT NOT NULL,"
    "  email TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  run_id TEXT NOT NULL,"
    "  line INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (owner, email)) WITHOUT ROWID;"
    "CREATE TABLE run_lines ("
    "  run_id TEXT NOT NULL,"
    "  line INTEGER NOT NULL,"
    "  PRIMARY KEY (run_id, line)) WITHOUT ROWID;",
    /* 17: consumer sessions (the original consumer's protocol,
     * api/consumer.c): runs without a CSV, found by their UUID while
     * listed (session_open). */
    "ALTER TABLE runs ADD COLUMN session TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE runs ADD COLUMN session_open INTEGER NOT NULL DEFAULT 0;"
    "CREATE UNIQUE INDEX runs_session ON runs(session) WHERE session != '';",
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof *migrations))

static const char *const sql_core[Q_COUNT] = {
    [Q_PING] = "SELECT 1",
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_BEGIN_READ] = "BEGIN",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_SYNC_NORMAL] = "PRAGMA synchronous=NORMAL",
    [Q_SYNC_FULL] = "PRAGMA synchronous=FULL",
};

/* Every file's statements; sql_text(q) is the one that has q. */
static const char *const *const sql_tables[] = {
    sql_core, sq_sql_assets, sq_sql_keys, sq_sql_jobs, sq_sql_events, sq_sql_webhooks,
    sq_sql_slides, sq_sql_uploads, sq_sql_tus, sq_sql_runs,
};
#define N_SQL_TABLES (sizeof sql_tables / sizeof *sql_tables)

static const char *sql_text(int q)
{
    for (size_t t = 0; t < N_SQL_TABLES; t++)
        if (sql_tables[t][q]) return sql_tables[t][q];
    return NULL;
}

/* A statement added to the enum but given text in no table, or in two,
 * stops db_open instead of the first request that would run it. */
static bool sql_tables_complete(void)
{
    for (int q = 0; q < Q_COUNT; q++) {
        int found = 0;
        for (size_t t = 0; t < N_SQL_TABLES; t++) found += sql_tables[t][q] != NULL;
        if (found != 1) {
            char n[16];
            snprintf(n, sizeof n, "%d", q);
            log_error("statement must have its SQL in exactly one table", "statement", n, NULL);
            return false;
        }
    }
    return true;
}

struct db {
    char path[4096];
    pthread_mutex_t lock;
    db_conn *idle;     /* LIFO free list: the warmest connection first */
};

static void conn_free(db_conn *c)
{
    if (!c) return;
    for (int i = 0; i < Q_COUNT; i++) sqlite3_finalize(c->stmts[i]);
    sqlite3_close(c->h);
    free(c);
}

static db_conn *conn_open(const char *path)
{
    db_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &c->h, flags, NULL) != SQLITE_OK) {
        log_error("sqlite open failed", "path", path, "error", sqlite3_errmsg(c->h), NULL);
        conn_free(c);
        return NULL;
    }
    sqlite3_busy_timeout(c->h, 10000);
    char *err = NULL;
    if (sqlite3_exec(c->h, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                           " PRAGMA foreign_keys=ON;", NULL, NULL, &err) != SQLITE_OK) {
        log_error("sqlite pragma failed", "error", err, NULL);
        sqlite3_free(err);
        conn_free(c);
        return NULL;
    }
    return c;
}

/* Statements are prepared lazily so a connection opened before migrations
 * (in db_open) never prepares against a missing table. */
sqlite3_stmt *sq_stmt(db_conn *c, int q)
{
    if (!c->stmts[q] &&
        sqlite3_prepare_v3(c->h, sql_text(q), -1, SQLITE_PREPARE_PERSISTENT, &c->stmts[q],
                           NULL) != SQLITE_OK) {
        log_error("sqlite prepare failed", "error", sqlite3_errmsg(c->h), "sql", sql_text(q),
                  NULL);
        return NULL;
    }
    sqlite3_reset(c->stmts[q]);
    sqlite3_clear_bindings(c->stmts[q]);
    return c->stmts[q];
}

db_status sq_fail(db_conn *c, const char *what)
{
    /* Kept: a statement run after the failure (sq_relaxed's PRAGMA, a
     * rollback) resets SQLite's own error code. */
    c->last_fail = sqlite3_errcode(c->h);
    log_error("sqlite error", "op", what, "error", sqlite3_errmsg(c->h), NULL);
    return DB_ERROR;
}

/* The step result of a lookup that returns at most one row. */
db_status sq_lookup_result(db_conn *c, int rc, const char *what)
{
    if (rc == SQLITE_ROW) return DB_OK;
    return rc == SQLITE_DONE ? DB_NOT_FOUND : sq_fail(c, what);
}

/* The step result of an UPDATE or DELETE aimed at one row. */
db_status sq_change_result(db_conn *c, int rc, const char *what)
{
    if (rc != SQLITE_DONE) return sq_fail(c, what);
    return sqlite3_changes(c->h) ? DB_OK : DB_NOT_FOUND;
}

/* Runs a statement that returns no rows, binding arg (if any) to ?1. */
db_status sq_exec_one(db_conn *c, int q, const char *arg, const char *what)
{
    sqlite3_stmt *s = sq_stmt(c, q);
    if (!s) return DB_ERROR;
    if (arg) sqlite3_bind_text(s, 1, arg, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? DB_OK : sq_fail(c, what);
}

/* A damaged file is refused at start rather than served from: answers
 * built on a broken page are silent damage.  quick_check reads every page
 * once (O(size): about a second per GB here), without the index checks of
 * integrity_check. */
static bool intact(db_conn *c, const char **err)
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

static bool migrate(db_conn *c, const char **err)
{
    sqlite3_stmt *s;
    *err = "database migration failed";
    if (sqlite3_prepare_v2(c->h, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK) return false;
    int version = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
    sqlite3_finalize(s);
    if (version < 0) return false;
    if (version > N_MIGRATIONS) {
        /* A newer assetd wrote it: this binary does not know its tables. */
        char have[16], know[16];
        snprintf(have, sizeof have, "%d", version);
        snprintf(know, sizeof know, "%d", N_MIGRATIONS);
        log_error("the database was made by a newer assetd", "schema", have,
                  "this_binary_knows", know, NULL);
        *err = "the database was made by a newer assetd: run that version (or newer)";
        return false;
    }
    for (int v = version; v < N_MIGRATIONS; v++) {
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d;", v + 1);
        char *why = NULL;
        /* BEGIN IMMEDIATE: two processes starting at once migrate one at a time. */
        if (sqlite3_exec(c->h, "BEGIN IMMEDIATE", NULL, NULL, &why) != SQLITE_OK) goto fail;
        if (sqlite3_exec(c->h, migrations[v], NULL, NULL, &why) != SQLITE_OK ||
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

db *db_open(const char *dir, const char **err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, configure_sqlite);
    if (!sql_tables_complete()) { *err = "statement table incomplete"; return NULL; }
    db *d = calloc(1, sizeof *d);
    if (!d) { *err = "out of memory"; return NULL; }
    snprintf(d->path, sizeof d->path, "%s/assetd.db", dir);
    pthread_mutex_init(&d->lock, NULL);
    db_conn *c = conn_open(d->path);
    if (!c) { *err = "cannot open database"; free(d); return NULL; }
    /* Another process may be migrating the same file: its BEGIN IMMEDIATE
     * makes ours wait, then we re-read user_version and find nothing to do. */
    if (!intact(c, err) || !migrate(c, err)) {
        conn_free(c);
        free(d);
        return NULL;
    }
    d->idle = c;
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
    if (c) d->idle = c->next_idle;
    pthread_mutex_unlock(&d->lock);
    return c ? c : conn_open(d->path);
}

bool db_failed_full(db_conn *c)
{
    return c && (c->last_fail == SQLITE_FULL || sqlite3_errcode(c->h) == SQLITE_FULL);
}

void db_release(db *d, db_conn *c)
{
    if (!c) return;
    c->last_fail = SQLITE_OK;
    pthread_mutex_lock(&d->lock);
    c->next_idle = d->idle;
    d->idle = c;
    pthread_mutex_unlock(&d->lock);
}

db_status db_ping(db_conn *c)
{
    sqlite3_stmt *s = sq_stmt(c, Q_PING);
    if (!s || sqlite3_step(s) != SQLITE_ROW) return sq_fail(c, "ping");
    sqlite3_reset(s);
    return DB_OK;
}

/* ---------- shared helpers (sqlite_internal.h) ---------- */

void sq_copy_text(char *dst, size_t cap, sqlite3_stmt *s, int col)
{
    const char *t = (const char *)sqlite3_column_text(s, col);
    snprintf(dst, cap, "%s", t ? t : "");
}

/* The row of a "... WHERE id = ?1 AND owner = ?2" lookup, read into out by
 * read; DB_NOT_FOUND for another owner's row exactly as for a missing one. */
db_status sq_get_owned(db_conn *c, int q, const char *id, const char *owner,
                       void (*read)(sqlite3_stmt *s, void *out), void *out, const char *what)
{
    sqlite3_stmt *s = sq_stmt(c, q);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) read(s, out);
    sqlite3_reset(s);
    return sq_lookup_result(c, rc, what);
}

/* The outbox rule: an event commits with the change it reports, so every
 * function that changes an asset's state must run inside db_begin(); one
 * that does not is a bug, refused here rather than half-applied. */
bool sq_in_transaction(db_conn *c, const char *what)
{
    if (!sqlite3_get_autocommit(c->h)) return true;
    log_error("state change outside a transaction (no event would commit with it)", "op", what,
              NULL);
    return false;
}

void sq_relaxed(db_conn *c, bool relaxed)
{
    if (sqlite3_get_autocommit(c->h))
        sq_exec_one(c, relaxed ? Q_SYNC_NORMAL : Q_SYNC_FULL, NULL, "synchronous");
}

/* ---------- transactions ---------- */

db_status db_begin(db_conn *c) { return sq_exec_one(c, Q_BEGIN, NULL, "begin"); }
db_status db_begin_read(db_conn *c) { return sq_exec_one(c, Q_BEGIN_READ, NULL, "begin read"); }
db_status db_commit(db_conn *c)
{
    db_status st = sq_exec_one(c, Q_COMMIT, NULL, "commit");
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
    if (!sqlite3_get_autocommit(c->h)) sq_exec_one(c, Q_ROLLBACK, NULL, "rollback");
}
