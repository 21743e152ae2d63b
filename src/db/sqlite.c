/* sqlite.c — the SQLite driver (sql.h): the embedded metadata store.
 *
 * The database is DATA/assetd.db in WAL mode: readers never block the one
 * writer, and many serve threads read in parallel.  synchronous=FULL makes a
 * commit durable when it returns, which the upload protocol relies on (the
 * client gets 201 only after the row is on disk); sql_driver.relaxed
 * switches a connection to NORMAL for the writes that may be lost.  A
 * write waits up to 10 s for the one writer's lock (busy timeout).
 *
 * Schema changes are an append-only list of migrations compiled into the
 * binary; PRAGMA user_version records how many have run.  Never edit a
 * migration that has shipped: add a new one.
 *
 * Everything that names sqlite3 lives here: opening a connection and its
 * PRAGMAs, the integrity check and the migrations (sql_driver.setup), the
 * statement calls over sqlite3_stmt (prepared SQLITE_PREPARE_PERSISTENT,
 * texts bound SQLITE_STATIC: sql.h's lifetime rule), transactions, and
 * the mapping of SQLite's result codes onto sql_result.  The pool, the
 * statement cache and the db.h functions are db.c and the concern files,
 * shared with every back-end.
 */
#include "db/sql.h"
#include "util/log.h"

#include <pthread.h>
#include <sqlite3.h>
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
     * the lines each running run has stored (runs.c).  runs_live
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

static sql_result lite_begin(sql_conn *c, bool write)
{
    return run_own(c, write ? T_BEGIN : T_BEGIN_READ);
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
