/* sqlite.c — the embedded metadata store (db.h on SQLite).
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
 * and keeps it for its life; statement i of `sql_text` lives in stmts[i].
 */
#include "db/db.h"
#include "util/log.h"
#include "util/timefmt.h"

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
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof *migrations))

enum {
    Q_PING,
    Q_ASSET_INSERT,
    Q_ASSET_GET,
    Q_ASSET_DELETE,
    Q_ASSET_EXISTS,
    Q_ASSET_LIST,
    Q_KEY_INSERT,
    Q_KEY_FIND,
    Q_KEY_REVOKE,
    Q_KEY_COUNT,
    Q_KEY_EACH,
    Q_BEGIN,
    Q_BEGIN_READ,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_JOB_INSERT,
    Q_JOB_LIVE,
    Q_JOB_BURY_EXPIRED,
    Q_JOB_ANY_DUE,
    Q_JOB_CLAIM,
    Q_JOB_HEARTBEAT,
    Q_JOB_COMPLETE,
    Q_JOB_FAIL,
    Q_JOB_GET,
    Q_JOB_RETRY,
    Q_JOB_LIST,
    Q_JOB_LIST_ASSET,
    Q_JOBS_TRIM,
    Q_DELIVERIES_TRIM,
    Q_ASSET_GET_ANY,
    Q_ASSET_SET_PROCESSING,
    Q_ASSET_SET_READY,
    Q_ASSET_SET_FAILED,
    Q_JOB_BURIED_ASSETS,
    Q_EVENT_INSERT,
    Q_EVENT_AFTER,
    Q_EVENT_BOUNDS,
    Q_EVENT_TRIM,
    Q_HOOK_INSERT,
    Q_HOOK_GET,
    Q_HOOK_LIST,
    Q_HOOK_DELETE,
    Q_HOOK_CURSOR_INIT,
    Q_HOOK_CURSOR,
    Q_HOOK_BATCH_END,
    Q_HOOK_FAN_IN,
    Q_HOOK_SET_CURSOR,
    Q_HOOK_ANY_DUE,
    Q_HOOK_DUE,
    Q_HOOK_LEASE,
    Q_HOOK_DONE,
    Q_HOOK_DISABLE,
    Q_HOOK_DROP_PENDING,
    Q_HOOK_DELIVERIES,
    Q_SHOW_INSERT,
    Q_SHOW_GET,
    Q_SHOW_SET,
    Q_SHOW_DELETE,
    Q_SLIDES_CLEAR,
    Q_SLIDE_INSERT,
    Q_SLIDES_LIST,
    Q_COUNT
};

#define HOOK_COLS "id, owner, url, events, secret, created_ms, disabled, disabled_reason"
#define ASSET_COLS "seq, id, owner, kind, status, filename, content_type, size, sha256, created," \
                   " updated, renditions, meta, error_code, error_message"
#define KEY_COLS "id, name, owner, created, revoked"
#define JOB_COLS "id, asset_id, owner, type, state, attempts, max_attempts, fence, run_at," \
                 " lease_until, progress, error_code, error_message, created, started, finished"

static const char *const sql_text[Q_COUNT] = {
    [Q_PING] = "SELECT 1",
    [Q_ASSET_INSERT] = "INSERT INTO assets (id, owner, kind, status, filename, content_type,"
                       " size, sha256, created, updated, error_code, error_message)"
                       " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
    [Q_ASSET_GET] = "SELECT " ASSET_COLS " FROM assets WHERE id = ? AND owner = ?",
    [Q_ASSET_DELETE] = "DELETE FROM assets WHERE id = ? AND owner = ?",
    [Q_ASSET_EXISTS] = "SELECT 1 FROM assets WHERE id = ?",
    [Q_ASSET_LIST] = "SELECT " ASSET_COLS " FROM assets WHERE owner = ?1 AND seq < ?2"
                     " AND (?3 IS NULL OR kind = ?3) AND (?4 IS NULL OR status = ?4)"
                     " ORDER BY seq DESC LIMIT ?5",
    [Q_KEY_INSERT] = "INSERT INTO api_keys (id, name, owner, token_sha256, created)"
                     " VALUES (?,?,?,?,?)",
    [Q_KEY_FIND] = "SELECT " KEY_COLS " FROM api_keys WHERE token_sha256 = ? AND revoked = 0",
    [Q_KEY_REVOKE] = "UPDATE api_keys SET revoked = 1 WHERE id = ?",
    [Q_KEY_COUNT] = "SELECT count(*) FROM api_keys",
    [Q_KEY_EACH] = "SELECT " KEY_COLS " FROM api_keys ORDER BY created, id",
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_BEGIN_READ] = "BEGIN",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
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
    /* A finished job's run_at is when its last attempt became due: it
     * finished after that.  Both use an index range (jobs_runnable,
     * deliveries_finished); rowid batches because SQLite has no DELETE ... LIMIT. */
    [Q_JOBS_TRIM] = "DELETE FROM jobs WHERE rowid IN (SELECT rowid FROM jobs"
                    " WHERE state IN (2, 3, 4) AND run_at < ?1 LIMIT ?2)",
    [Q_DELIVERIES_TRIM] = "DELETE FROM webhook_deliveries WHERE rowid IN (SELECT rowid FROM"
                          " webhook_deliveries WHERE state != 0 AND finished_ms < ?1 LIMIT ?2)",
    [Q_ASSET_GET_ANY] = "SELECT " ASSET_COLS " FROM assets WHERE id = ?",
    [Q_ASSET_SET_PROCESSING] = "UPDATE assets SET status = 1, error_code = '', error_message = '',"
                               " updated = ?2 WHERE id = ?1",
    [Q_ASSET_SET_READY] = "UPDATE assets SET status = 2, renditions = ?2, meta = ?3,"
                          " error_code = '', error_message = '', updated = ?4 WHERE id = ?1",
    [Q_ASSET_SET_FAILED] = "UPDATE assets SET status = 3, error_code = ?2, error_message = ?3,"
                           " updated = ?4 WHERE id = ?1",
    [Q_JOB_BURIED_ASSETS] = "SELECT asset_id FROM jobs WHERE state = 1 AND lease_until < ?1"
                            " AND attempts >= max_attempts",
    [Q_EVENT_INSERT] = "INSERT INTO events (type, asset_id, owner, at, data) VALUES (?,?,?,?,?)",
    [Q_EVENT_AFTER] = "SELECT id, type, asset_id, owner, at, data FROM events WHERE id > ?1"
                      " AND (?2 IS NULL OR owner = ?2) AND (?3 IS NULL OR asset_id = ?3)"
                      " ORDER BY id LIMIT ?4",
    [Q_EVENT_BOUNDS] = "SELECT (SELECT min(id) FROM events),"
                       " (SELECT seq FROM sqlite_sequence WHERE name = 'events')",
    /* A prefix of ids, never a hole: `at` is taken by each writer before
     * its commit, so it is not strictly in id order.  Stops at the first
     * event young enough to keep; the scan costs what it deletes. */
    [Q_EVENT_TRIM] = "DELETE FROM events WHERE id < coalesce((SELECT id FROM events"
                     " WHERE at >= ?1 ORDER BY id LIMIT 1),"
                     " (SELECT coalesce(max(id), 0) + 1 FROM events))",
    [Q_SHOW_INSERT] = "INSERT INTO slideshows (asset_id, control_token_sha256, updated)"
                      " VALUES (?1, ?2, ?3)",
    [Q_SHOW_GET] = "SELECT asset_id, control_token_sha256, current, updated FROM slideshows"
                   " WHERE asset_id = ?1",
    [Q_SHOW_SET] = "UPDATE slideshows SET current = ?2, updated = ?3 WHERE asset_id = ?1",
    [Q_SHOW_DELETE] = "DELETE FROM slideshows WHERE asset_id = ?1",
    [Q_SLIDES_CLEAR] = "DELETE FROM slides WHERE asset_id = ?1",
    [Q_SLIDE_INSERT] = "INSERT INTO slides (asset_id, page, width, height, size, thumb_width,"
                       " thumb_height, thumb_size) VALUES (?,?,?,?,?,?,?,?)",
    [Q_SLIDES_LIST] = "SELECT page, width, height, size, thumb_width, thumb_height, thumb_size"
                      " FROM slides WHERE asset_id = ?1 ORDER BY page",
    [Q_HOOK_INSERT] = "INSERT INTO webhooks (id, owner, url, events, secret, created_ms)"
                      " VALUES (?,?,?,?,?,?)",
    [Q_HOOK_GET] = "SELECT " HOOK_COLS " FROM webhooks WHERE id = ?1 AND owner = ?2",
    [Q_HOOK_LIST] = "SELECT " HOOK_COLS " FROM webhooks WHERE owner = ?1"
                    " ORDER BY created_ms DESC, id LIMIT ?2",
    [Q_HOOK_DELETE] = "DELETE FROM webhooks WHERE id = ?1 AND owner = ?2",
    /* The first fan-in starts from the newest event: no history. */
    [Q_HOOK_CURSOR_INIT] = "INSERT OR IGNORE INTO state_kv (name, value) VALUES ('webhook_cursor',"
                           " coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0))",
    [Q_HOOK_CURSOR] = "SELECT value FROM state_kv WHERE name = 'webhook_cursor'",
    [Q_HOOK_BATCH_END] = "SELECT max(id) FROM (SELECT id FROM events WHERE id > ?1"
                         " ORDER BY id LIMIT ?2)",
    /* One delivery per (event, endpoint of its owner that wants its type,
     * registered before it happened).  The body is Standard Webhooks'. */
    [Q_HOOK_FAN_IN] = "INSERT INTO webhook_deliveries (id, webhook_id, event_id, type, payload,"
                       " created_ms, next_at) SELECT 'msg_' || lower(hex(randomblob(11))), w.id,"
                      " e.id, e.type, '{\"type\":\"' || e.type ||"
                      " '\",\"timestamp\":\"' || strftime('%Y-%m-%dT%H:%M:%fZ', e.at / 1000.0,"
                      " 'unixepoch') || '\",\"data\":' || e.data || '}', ?3, ?3"
                      " FROM events e JOIN webhooks w ON w.owner = e.owner AND w.disabled = 0"
                      " AND instr(',' || w.events || ',', ',' || e.type || ',') > 0"
                      " AND w.created_ms <= e.at WHERE e.id > ?1 AND e.id <= ?2",
    [Q_HOOK_SET_CURSOR] = "INSERT INTO state_kv (name, value) VALUES ('webhook_cursor', ?1)"
                          " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    [Q_HOOK_ANY_DUE] = "SELECT 1 FROM webhook_deliveries WHERE state = 0 AND next_at <= ?1 LIMIT 1",
    [Q_HOOK_DUE] = "SELECT d.id, d.webhook_id, w.url, w.secret, d.payload, d.attempts,"
                   " d.created_ms FROM webhook_deliveries d JOIN webhooks w ON w.id ="
                   " d.webhook_id WHERE d.state = 0 AND d.next_at <= ?1 AND w.disabled = 0"
                   " ORDER BY d.next_at LIMIT ?2",
    [Q_HOOK_LEASE] = "UPDATE webhook_deliveries SET next_at = ?2 WHERE id = ?1",
    [Q_HOOK_DONE] = "UPDATE webhook_deliveries SET state = ?2, attempts = attempts + 1,"
                    " last_status = ?3, last_error = ?4, next_at = ?5,"
                    " finished_ms = CASE WHEN ?2 = 0 THEN 0 ELSE ?6 END WHERE id = ?1",
    [Q_HOOK_DISABLE] = "UPDATE webhooks SET disabled = 1, disabled_reason = ?2 WHERE id = ?1",
    [Q_HOOK_DROP_PENDING] = "UPDATE webhook_deliveries SET state = 2, finished_ms = ?2,"
                            " last_error = 'the endpoint was disabled'"
                            " WHERE webhook_id = ?1 AND state = 0",
    [Q_HOOK_DELIVERIES] = "SELECT d.id, d.webhook_id, d.event_id, d.type, d.state, d.attempts,"
                          " d.last_status, d.last_error, d.created_ms, d.next_at, d.finished_ms"
                          " FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id"
                          " WHERE d.webhook_id = ?1 AND w.owner = ?2"
                          " ORDER BY d.created_ms DESC, d.event_id DESC LIMIT ?3",
};

struct db_conn {
    sqlite3 *h;
    sqlite3_stmt *stmts[Q_COUNT];
    db_conn *next_idle;
};

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
static sqlite3_stmt *stmt(db_conn *c, int q)
{
    if (!c->stmts[q] &&
        sqlite3_prepare_v3(c->h, sql_text[q], -1, SQLITE_PREPARE_PERSISTENT, &c->stmts[q],
                           NULL) != SQLITE_OK) {
        log_error("sqlite prepare failed", "error", sqlite3_errmsg(c->h), "sql", sql_text[q],
                  NULL);
        return NULL;
    }
    sqlite3_reset(c->stmts[q]);
    sqlite3_clear_bindings(c->stmts[q]);
    return c->stmts[q];
}

static db_status fail(db_conn *c, const char *what)
{
    log_error("sqlite error", "op", what, "error", sqlite3_errmsg(c->h), NULL);
    return DB_ERROR;
}

/* The step result of a lookup that returns at most one row. */
static db_status lookup_result(db_conn *c, int rc, const char *what)
{
    if (rc == SQLITE_ROW) return DB_OK;
    return rc == SQLITE_DONE ? DB_NOT_FOUND : fail(c, what);
}

/* The step result of an UPDATE or DELETE aimed at one row. */
static db_status change_result(db_conn *c, int rc, const char *what)
{
    if (rc != SQLITE_DONE) return fail(c, what);
    return sqlite3_changes(c->h) ? DB_OK : DB_NOT_FOUND;
}

/* Runs a statement that returns no rows, binding arg (if any) to ?1. */
static db_status exec_one(db_conn *c, int q, const char *arg, const char *what)
{
    sqlite3_stmt *s = stmt(c, q);
    if (!s) return DB_ERROR;
    if (arg) sqlite3_bind_text(s, 1, arg, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? DB_OK : fail(c, what);
}

static bool migrate(db_conn *c)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(c->h, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK) return false;
    int version = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
    sqlite3_finalize(s);
    if (version < 0) return false;
    for (int v = version; v < N_MIGRATIONS; v++) {
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d;", v + 1);
        char *err = NULL;
        /* BEGIN IMMEDIATE: two processes starting at once migrate one at a time. */
        if (sqlite3_exec(c->h, "BEGIN IMMEDIATE", NULL, NULL, &err) != SQLITE_OK) goto fail;
        if (sqlite3_exec(c->h, migrations[v], NULL, NULL, &err) != SQLITE_OK ||
            sqlite3_exec(c->h, pragma, NULL, NULL, &err) != SQLITE_OK ||
            sqlite3_exec(c->h, "COMMIT", NULL, NULL, &err) != SQLITE_OK) {
            sqlite3_exec(c->h, "ROLLBACK", NULL, NULL, NULL);
            goto fail;
        }
        continue;
    fail:
        log_error("migration failed", "error", err, NULL);
        sqlite3_free(err);
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
    db *d = calloc(1, sizeof *d);
    if (!d) { *err = "out of memory"; return NULL; }
    snprintf(d->path, sizeof d->path, "%s/assetd.db", dir);
    pthread_mutex_init(&d->lock, NULL);
    db_conn *c = conn_open(d->path);
    if (!c) { *err = "cannot open database"; free(d); return NULL; }
    /* Another process may be migrating the same file: its BEGIN IMMEDIATE
     * makes ours wait, then we re-read user_version and find nothing to do. */
    if (!migrate(c)) {
        *err = "database migration failed";
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

void db_release(db *d, db_conn *c)
{
    if (!c) return;
    pthread_mutex_lock(&d->lock);
    c->next_idle = d->idle;
    d->idle = c;
    pthread_mutex_unlock(&d->lock);
}

db_status db_ping(db_conn *c)
{
    sqlite3_stmt *s = stmt(c, Q_PING);
    if (!s || sqlite3_step(s) != SQLITE_ROW) return fail(c, "ping");
    sqlite3_reset(s);
    return DB_OK;
}

static void copy_text(char *dst, size_t cap, sqlite3_stmt *s, int col)
{
    const char *t = (const char *)sqlite3_column_text(s, col);
    snprintf(dst, cap, "%s", t ? t : "");
}

/* The row of a "... WHERE id = ?1 AND owner = ?2" lookup, read into out by
 * read; DB_NOT_FOUND for another owner's row exactly as for a missing one. */
static db_status get_owned(db_conn *c, int q, const char *id, const char *owner,
                           void (*read)(sqlite3_stmt *s, void *out), void *out, const char *what)
{
    sqlite3_stmt *s = stmt(c, q);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) read(s, out);
    sqlite3_reset(s);
    return lookup_result(c, rc, what);
}

static void read_asset(sqlite3_stmt *s, void *out)
{
    asset *a = out;
    a->seq = sqlite3_column_int64(s, 0);
    copy_text(a->id, sizeof a->id, s, 1);
    copy_text(a->owner, sizeof a->owner, s, 2);
    a->kind = (asset_kind)sqlite3_column_int(s, 3);
    a->status = (asset_status)sqlite3_column_int(s, 4);
    copy_text(a->filename, sizeof a->filename, s, 5);
    copy_text(a->content_type, sizeof a->content_type, s, 6);
    a->size = (uint64_t)sqlite3_column_int64(s, 7);
    copy_text(a->sha256, sizeof a->sha256, s, 8);
    copy_text(a->created, sizeof a->created, s, 9);
    copy_text(a->updated, sizeof a->updated, s, 10);
    copy_text(a->renditions, sizeof a->renditions, s, 11);
    copy_text(a->meta, sizeof a->meta, s, 12);
    copy_text(a->error_code, sizeof a->error_code, s, 13);
    copy_text(a->error_message, sizeof a->error_message, s, 14);
}

/* ---------- events ---------- */

/* The outbox rule: an event commits with the change it reports, so every
 * function that changes an asset's state must run inside db_begin(); one
 * that does not is a bug, refused here rather than half-applied. */
static bool in_transaction(db_conn *c, const char *what)
{
    if (!sqlite3_get_autocommit(c->h)) return true;
    log_error("state change outside a transaction (no event would commit with it)", "op", what,
              NULL);
    return false;
}

db_status db_event_append(db_conn *c, const char *type, const char *asset_id, const char *owner,
                          int64_t now_ms, const char *data_json)
{
    if (!in_transaction(c, type)) return DB_ERROR;
    sqlite3_stmt *s = stmt(c, Q_EVENT_INSERT);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, asset_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, now_ms);
    sqlite3_bind_text(s, 5, data_json, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? DB_OK : fail(c, "event append");
}

/* An asset event carries the asset's JSON as clients see it. */
static db_status event_asset(db_conn *c, const char *type, const asset *a, int64_t now_ms)
{
    json_t *j = db_asset_json(c, a);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    db_status st = text ? db_event_append(c, type, a->id, a->owner, now_ms, text) : DB_ERROR;
    free(text);
    return st;
}

static db_status event_asset_id(db_conn *c, const char *type, const char *id, int64_t now_ms)
{
    asset a;
    db_status st = db_asset_get_any(c, id, &a);
    return st == DB_OK ? event_asset(c, type, &a, now_ms) : st;
}

db_status db_events_after(db_conn *c, int64_t after_id, const char *owner, const char *asset_id,
                          int limit, db_event_fn fn, void *arg, int *n)
{
    sqlite3_stmt *s = stmt(c, Q_EVENT_AFTER);
    if (!s) return DB_ERROR;
    sqlite3_bind_int64(s, 1, after_id);
    if (owner) sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
    if (asset_id) sqlite3_bind_text(s, 3, asset_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, limit);
    int rc;
    *n = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        db_event e = {
            .id = sqlite3_column_int64(s, 0),
            .type = (const char *)sqlite3_column_text(s, 1),
            .asset_id = (const char *)sqlite3_column_text(s, 2),
            .owner = (const char *)sqlite3_column_text(s, 3),
            .at_ms = sqlite3_column_int64(s, 4),
            .data_json = (const char *)sqlite3_column_text(s, 5),
        };
        fn(arg, &e);
        (*n)++;
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? DB_OK : fail(c, "events after");
}

db_status db_events_bounds(db_conn *c, int64_t *oldest, int64_t *newest)
{
    sqlite3_stmt *s = stmt(c, Q_EVENT_BOUNDS);
    if (!s) return DB_ERROR;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *newest = sqlite3_column_int64(s, 1);           /* 0 before the first event */
        *oldest = sqlite3_column_type(s, 0) == SQLITE_NULL ? *newest + 1
                                                           : sqlite3_column_int64(s, 0);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? DB_OK : fail(c, "events bounds");
}

db_status db_events_trim(db_conn *c, int64_t before_ms, int64_t *removed)
{
    sqlite3_stmt *s = stmt(c, Q_EVENT_TRIM);
    if (!s) return DB_ERROR;
    sqlite3_bind_int64(s, 1, before_ms);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    *removed = rc == SQLITE_DONE ? sqlite3_changes(c->h) : 0;
    return rc == SQLITE_DONE ? DB_OK : fail(c, "events trim");
}

db_status db_asset_insert(db_conn *c, asset *a)
{
    if (!in_transaction(c, "asset.created")) return DB_ERROR;
    sqlite3_stmt *s = stmt(c, Q_ASSET_INSERT);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, a->owner, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, (int)a->kind);
    sqlite3_bind_int(s, 4, (int)a->status);
    sqlite3_bind_text(s, 5, a->filename, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, a->content_type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 7, (sqlite3_int64)a->size);
    sqlite3_bind_text(s, 8, a->sha256, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 9, a->created, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 10, a->updated, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 11, a->error_code, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 12, a->error_message, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return fail(c, "asset insert");
    a->seq = sqlite3_last_insert_rowid(c->h);
    int64_t now = time_now_ms();
    db_status st = event_asset(c, "asset.created", a, now);
    if (st == DB_OK && a->status == STATUS_FAILED) st = event_asset(c, "asset.failed", a, now);
    return st;
}

db_status db_asset_get(db_conn *c, const char *owner, const char *id, asset *out)
{
    return get_owned(c, Q_ASSET_GET, id, owner, read_asset, out, "asset get");
}

db_status db_asset_delete(db_conn *c, const char *owner, const char *id)
{
    if (!in_transaction(c, "asset.deleted")) return DB_ERROR;
    asset gone;   /* the last state, for the event */
    db_status st = db_asset_get(c, owner, id, &gone);
    sqlite3_stmt *s = st == DB_OK ? stmt(c, Q_ASSET_DELETE) : NULL;
    if (!s) return st == DB_OK ? DB_ERROR : st;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    st = change_result(c, rc, "asset delete");
    if (st == DB_OK) st = event_asset(c, "asset.deleted", &gone, time_now_ms());
    if (st == DB_OK) st = db_slides_clear(c, id);
    return st == DB_OK ? exec_one(c, Q_SHOW_DELETE, id, "slideshow delete") : st;
}

db_status db_asset_id_exists(db_conn *c, const char *id)
{
    sqlite3_stmt *s = stmt(c, Q_ASSET_EXISTS);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return lookup_result(c, rc, "asset exists");
}

db_status db_asset_list(db_conn *c, const char *owner, const asset_filter *f, int limit,
                        asset *out, int *n)
{
    sqlite3_stmt *s = stmt(c, Q_ASSET_LIST);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, f->before_seq > 0 ? f->before_seq : INT64_MAX);
    if (f->by_kind) sqlite3_bind_int(s, 3, (int)f->kind);
    if (f->by_status) sqlite3_bind_int(s, 4, (int)f->status);
    sqlite3_bind_int(s, 5, limit);
    int rc, count = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && count < limit) read_asset(s, &out[count++]);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return fail(c, "asset list");
    *n = count;
    return DB_OK;
}

db_status db_key_insert(db_conn *c, const apikey *k, const char *token_sha256)
{
    sqlite3_stmt *s = stmt(c, Q_KEY_INSERT);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, k->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, k->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, k->owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, token_sha256, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, k->created, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? DB_OK : fail(c, "key insert");
}

static void read_key(sqlite3_stmt *s, apikey *k)
{
    copy_text(k->id, sizeof k->id, s, 0);
    copy_text(k->name, sizeof k->name, s, 1);
    copy_text(k->owner, sizeof k->owner, s, 2);
    copy_text(k->created, sizeof k->created, s, 3);
    k->revoked = sqlite3_column_int(s, 4) != 0;
}

db_status db_key_find_active(db_conn *c, const char *token_sha256, apikey *out)
{
    sqlite3_stmt *s = stmt(c, Q_KEY_FIND);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, token_sha256, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) read_key(s, out);
    sqlite3_reset(s);
    return lookup_result(c, rc, "key find");
}

db_status db_key_revoke(db_conn *c, const char *id)
{
    sqlite3_stmt *s = stmt(c, Q_KEY_REVOKE);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return change_result(c, rc, "key revoke");
}

db_status db_key_count(db_conn *c, int64_t *n)
{
    sqlite3_stmt *s = stmt(c, Q_KEY_COUNT);
    if (!s || sqlite3_step(s) != SQLITE_ROW) return fail(c, "key count");
    *n = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return DB_OK;
}

db_status db_key_each(db_conn *c, void (*fn)(const apikey *k, void *arg), void *arg)
{
    sqlite3_stmt *s = stmt(c, Q_KEY_EACH);
    if (!s) return DB_ERROR;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        apikey k;
        read_key(s, &k);
        fn(&k, arg);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? DB_OK : fail(c, "key list");
}

/* ---------- transactions ---------- */

db_status db_begin(db_conn *c) { return exec_one(c, Q_BEGIN, NULL, "begin"); }
db_status db_begin_read(db_conn *c) { return exec_one(c, Q_BEGIN_READ, NULL, "begin read"); }
db_status db_commit(db_conn *c) { return exec_one(c, Q_COMMIT, NULL, "commit"); }
void db_rollback(db_conn *c)
{
    if (!sqlite3_get_autocommit(c->h)) exec_one(c, Q_ROLLBACK, NULL, "rollback");
}

/* ---------- jobs ---------- */

static void read_job(sqlite3_stmt *s, void *out)
{
    job *j = out;
    copy_text(j->id, sizeof j->id, s, 0);
    copy_text(j->asset_id, sizeof j->asset_id, s, 1);
    copy_text(j->owner, sizeof j->owner, s, 2);
    copy_text(j->type, sizeof j->type, s, 3);
    j->state = (job_state)sqlite3_column_int(s, 4);
    j->attempts = sqlite3_column_int(s, 5);
    j->max_attempts = sqlite3_column_int(s, 6);
    j->fence = sqlite3_column_int64(s, 7);
    j->run_at_ms = sqlite3_column_int64(s, 8);
    j->lease_until_ms = sqlite3_column_int64(s, 9);
    j->progress = sqlite3_column_double(s, 10);
    copy_text(j->error_code, sizeof j->error_code, s, 11);
    copy_text(j->error_message, sizeof j->error_message, s, 12);
    copy_text(j->created, sizeof j->created, s, 13);
    copy_text(j->started, sizeof j->started, s, 14);
    copy_text(j->finished, sizeof j->finished, s, 15);
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
    if (rc != SQLITE_DONE) return fail(c, what);
    return found ? DB_OK : DB_NOT_FOUND;
}

static db_status live_job(db_conn *c, const char *asset_id, const char *type, job *out)
{
    sqlite3_stmt *s = stmt(c, Q_JOB_LIVE);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, asset_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, type, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) read_job(s, out);
    sqlite3_reset(s);
    return lookup_result(c, rc, "job live");
}

db_status db_job_enqueue(db_conn *c, const char *asset_id, const char *owner, const char *type,
                         int max_attempts, int64_t now_ms, job *out)
{
    char id[ID_LEN + 1], created[32];
    sqlite3_stmt *s = stmt(c, Q_JOB_INSERT);
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
    if (rc != SQLITE_DONE) return fail(c, "job enqueue");
    /* Inserted or ignored (a live job exists): report the live one. */
    return live_job(c, asset_id, type, out);
}

/* Assets whose job is about to be buried (its worker died on the last
 * attempt) fail, each with its asset.failed event. */
static db_status fail_buried_assets(db_conn *c, int64_t now_ms)
{
    sqlite3_stmt *s = stmt(c, Q_JOB_BURIED_ASSETS);
    if (!s) return DB_ERROR;
    sqlite3_bind_int64(s, 1, now_ms);
    int rc = SQLITE_DONE;
    db_status st = DB_OK;
    /* Another statement may write assets and events while this one reads jobs. */
    while (st == DB_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        char id[ID_LEN + 1];
        copy_text(id, sizeof id, s, 0);
        st = db_asset_set_failed(c, id, "worker_lost", "processing crashed on every attempt",
                                 now_ms);
        if (st == DB_NOT_FOUND) st = DB_OK;   /* the asset was deleted meanwhile */
    }
    sqlite3_reset(s);
    return st == DB_OK && rc == SQLITE_DONE ? DB_OK : (st == DB_OK ? fail(c, "job bury") : st);
}

/* Runs the burial statement (?1 now, ?2 its text). */
static db_status bury(db_conn *c, int q, int64_t now_ms, const char *now_text)
{
    sqlite3_stmt *s = stmt(c, q);
    if (!s) return DB_ERROR;
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_text(s, 2, now_text, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? DB_OK : fail(c, "job bury");
}

db_status db_job_claim_many(db_conn *c, int64_t now_ms, int64_t lease_ms, int max, job *out,
                            int *n)
{
    char now_text[32];
    time_format_ms(now_ms, now_text);
    *n = 0;
    /* Idle workers poll: a read (no lock against writers) answers "nothing
     * to do" without taking the write lock an upload's INSERT is waiting for. */
    sqlite3_stmt *probe = stmt(c, Q_JOB_ANY_DUE);
    if (!probe) return DB_ERROR;
    sqlite3_bind_int64(probe, 1, now_ms);
    int due = sqlite3_step(probe);
    sqlite3_reset(probe);
    if (due == SQLITE_DONE) return DB_NOT_FOUND;
    if (due != SQLITE_ROW) return fail(c, "job probe");
    /* One transaction: a job that crashed its worker on every attempt is
     * dead and its asset failed together, then the next jobs are claimed. */
    if (db_begin(c) != DB_OK) return DB_ERROR;
    sqlite3_stmt *s;
    int rc = SQLITE_ERROR;
    if (fail_buried_assets(c, now_ms) == DB_OK &&
        bury(c, Q_JOB_BURY_EXPIRED, now_ms, now_text) == DB_OK && (s = stmt(c, Q_JOB_CLAIM))) {
        sqlite3_bind_int64(s, 1, now_ms);
        sqlite3_bind_int64(s, 2, lease_ms);
        sqlite3_bind_text(s, 3, now_text, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 4, max);
        /* Drain: an UPDATE ... RETURNING finishes its writes on the last step. */
        while ((rc = sqlite3_step(s)) == SQLITE_ROW)
            if (*n < max) read_job(s, &out[(*n)++]);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE) fail(c, "job claim");
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
    sqlite3_stmt *s = stmt(c, Q_JOB_HEARTBEAT);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, j->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, j->fence);
    sqlite3_bind_int64(s, 3, now_ms + lease_ms);
    sqlite3_bind_double(s, 4, progress);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return change_result(c, rc, "job heartbeat");
}

db_status db_job_complete(db_conn *c, const job *j, int64_t now_ms)
{
    char now_text[32];
    time_format_ms(now_ms, now_text);
    sqlite3_stmt *s = stmt(c, Q_JOB_COMPLETE);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, j->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, j->fence);
    sqlite3_bind_text(s, 3, now_text, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return change_result(c, rc, "job complete");
}

db_status db_job_fail(db_conn *c, const job *j, const char *code, const char *message,
                      bool retryable, int64_t now_ms, int64_t retry_at_ms)
{
    job_state next = !retryable ? JOB_FAILED
                     : j->attempts < j->max_attempts ? JOB_QUEUED
                                                     : JOB_DEAD;
    char now_text[32];
    time_format_ms(now_ms, now_text);
    sqlite3_stmt *s = stmt(c, Q_JOB_FAIL);
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
    return change_result(c, rc, "job fail");
}

db_status db_job_get(db_conn *c, const char *owner, const char *id, job *out)
{
    return get_owned(c, Q_JOB_GET, id, owner, read_job, out, "job get");
}

db_status db_job_retry(db_conn *c, const char *owner, const char *id, int64_t now_ms, job *out)
{
    sqlite3_stmt *s = stmt(c, Q_JOB_RETRY);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, now_ms);
    return step_job(c, s, out, "job retry");
}

/* ---------- processing results ---------- */

db_status db_asset_get_any(db_conn *c, const char *id, asset *out)
{
    sqlite3_stmt *s = stmt(c, Q_ASSET_GET_ANY);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) read_asset(s, out);
    sqlite3_reset(s);
    return lookup_result(c, rc, "asset get any");
}

/* Binds id as ?1, the texts as ?2.., the time as the last parameter, then
 * appends the event named `event` with the changed asset. */
static db_status update_asset(db_conn *c, int q, const char *id, const char *const *texts,
                              int ntexts, int64_t now_ms, const char *event)
{
    if (!in_transaction(c, event)) return DB_ERROR;
    char now_text[32];
    time_format_ms(now_ms, now_text);
    sqlite3_stmt *s = stmt(c, q);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    for (int i = 0; i < ntexts; i++) sqlite3_bind_text(s, 2 + i, texts[i], -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2 + ntexts, now_text, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    db_status st = change_result(c, rc, event);
    return st == DB_OK ? event_asset_id(c, event, id, now_ms) : st;
}

db_status db_asset_set_processing(db_conn *c, const char *id, int64_t now_ms)
{
    return update_asset(c, Q_ASSET_SET_PROCESSING, id, NULL, 0, now_ms, "asset.processing");
}

db_status db_asset_set_ready(db_conn *c, const char *id, const char *renditions_json,
                             const char *meta_json, int64_t now_ms)
{
    const char *texts[] = {renditions_json, meta_json};
    return update_asset(c, Q_ASSET_SET_READY, id, texts, 2, now_ms, "asset.ready");
}

db_status db_asset_set_failed(db_conn *c, const char *id, const char *code,
                              const char *message, int64_t now_ms)
{
    const char *texts[] = {code, message};
    return update_asset(c, Q_ASSET_SET_FAILED, id, texts, 2, now_ms, "asset.failed");
}

db_status db_job_list(db_conn *c, const char *owner, const char *asset_id, int state, int limit,
                      job *out, int *n)
{
    sqlite3_stmt *s = stmt(c, asset_id ? Q_JOB_LIST_ASSET : Q_JOB_LIST);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, owner, -1, SQLITE_STATIC);
    if (asset_id) sqlite3_bind_text(s, 2, asset_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, state);
    sqlite3_bind_int(s, 4, limit);
    int rc = SQLITE_DONE, count = 0;
    while (count < limit && (rc = sqlite3_step(s)) == SQLITE_ROW) read_job(s, &out[count++]);
    if (count == limit) rc = SQLITE_DONE;
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return fail(c, "job list");
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
        sqlite3_stmt *s = stmt(c, q);
        if (!s) return DB_ERROR;
        sqlite3_bind_int64(s, 1, before_ms);
        sqlite3_bind_int(s, 2, batch);
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE) return fail(c, what);
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

/* ---------- webhooks ---------- */

static void read_webhook(sqlite3_stmt *s, void *out)
{
    webhook *w = out;
    copy_text(w->id, sizeof w->id, s, 0);
    copy_text(w->owner, sizeof w->owner, s, 1);
    copy_text(w->url, sizeof w->url, s, 2);
    copy_text(w->events, sizeof w->events, s, 3);
    copy_text(w->secret, sizeof w->secret, s, 4);
    w->created_ms = sqlite3_column_int64(s, 5);
    w->disabled = sqlite3_column_int(s, 6) != 0;
    copy_text(w->disabled_reason, sizeof w->disabled_reason, s, 7);
}

db_status db_webhook_insert(db_conn *c, const webhook *w)
{
    sqlite3_stmt *s = stmt(c, Q_HOOK_INSERT);
    if (!s) return DB_ERROR;
    const char *texts[] = {w->id, w->owner, w->url, w->events, w->secret};
    for (int i = 0; i < 5; i++) sqlite3_bind_text(s, i + 1, texts[i], -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, w->created_ms);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? DB_OK : fail(c, "webhook insert");
}

db_status db_webhook_get(db_conn *c, const char *owner, const char *id, webhook *out)
{
    return get_owned(c, Q_HOOK_GET, id, owner, read_webhook, out, "webhook get");
}

db_status db_webhook_list(db_conn *c, const char *owner, int limit, webhook *out, int *n)
{
    sqlite3_stmt *s = stmt(c, Q_HOOK_LIST);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, limit);
    int rc = SQLITE_DONE;
    *n = 0;
    while (*n < limit && (rc = sqlite3_step(s)) == SQLITE_ROW) read_webhook(s, &out[(*n)++]);
    if (*n == limit) rc = SQLITE_DONE;
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? DB_OK : fail(c, "webhook list");
}

db_status db_webhook_delete(db_conn *c, const char *owner, const char *id)
{
    sqlite3_stmt *s = stmt(c, Q_HOOK_DELETE);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return change_result(c, rc, "webhook delete");
}

static db_status step_int64(db_conn *c, sqlite3_stmt *s, int64_t *out, const char *what)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) *out = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? DB_OK : fail(c, what);
}

static db_status fan_in_batch(db_conn *c, int64_t now_ms, int limit, int *created)
{
    int64_t cursor = 0, end = 0;
    sqlite3_stmt *s = stmt(c, Q_HOOK_CURSOR_INIT);
    if (!s || sqlite3_step(s) != SQLITE_DONE) return fail(c, "webhook cursor init");
    if (!(s = stmt(c, Q_HOOK_CURSOR)) || step_int64(c, s, &cursor, "webhook cursor") != DB_OK)
        return DB_ERROR;
    if (!(s = stmt(c, Q_HOOK_BATCH_END))) return DB_ERROR;
    sqlite3_bind_int64(s, 1, cursor);
    sqlite3_bind_int(s, 2, limit);
    if (step_int64(c, s, &end, "webhook batch") != DB_OK) return DB_ERROR;
    if (end <= cursor) return DB_NOT_FOUND;   /* max() of nothing is NULL: 0 */
    if (!(s = stmt(c, Q_HOOK_FAN_IN))) return DB_ERROR;
    sqlite3_bind_int64(s, 1, cursor);
    sqlite3_bind_int64(s, 2, end);
    sqlite3_bind_int64(s, 3, now_ms);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return fail(c, "webhook fan-in");
    *created = sqlite3_changes(c->h);
    if (!(s = stmt(c, Q_HOOK_SET_CURSOR))) return DB_ERROR;
    sqlite3_bind_int64(s, 1, end);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? DB_OK : fail(c, "webhook cursor update");
}

/* Polled every few hundred ms: answer "nothing new" with reads alone, so an
 * idle dispatcher never takes the write lock. */
static bool fan_in_has_news(db_conn *c)
{
    int64_t cursor = -1, end = 0;
    sqlite3_stmt *s = stmt(c, Q_HOOK_CURSOR);
    if (!s) return true;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) cursor = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (rc != SQLITE_ROW || !(s = stmt(c, Q_HOOK_BATCH_END))) return true;   /* not yet set */
    sqlite3_bind_int64(s, 1, cursor);
    sqlite3_bind_int(s, 2, 1);
    return step_int64(c, s, &end, "webhook batch") != DB_OK || end > cursor;
}

db_status db_webhook_fan_in(db_conn *c, int64_t now_ms, int limit, int *created)
{
    *created = 0;
    if (!fan_in_has_news(c)) return DB_NOT_FOUND;
    if (db_begin(c) != DB_OK) return DB_ERROR;
    db_status st = fan_in_batch(c, now_ms, limit, created);
    if (st == DB_ERROR || db_commit(c) != DB_OK) {
        db_rollback(c);
        return DB_ERROR;
    }
    return st;
}

db_status db_webhook_due(db_conn *c, int64_t now_ms, int64_t lease_ms, int limit,
                         db_delivery_fn fn, void *arg, int *n)
{
    *n = 0;
    sqlite3_stmt *probe = stmt(c, Q_HOOK_ANY_DUE);
    if (!probe) return DB_ERROR;
    sqlite3_bind_int64(probe, 1, now_ms);
    int due = sqlite3_step(probe);
    sqlite3_reset(probe);
    if (due == SQLITE_DONE) return DB_OK;   /* nothing due: no write lock */
    if (db_begin(c) != DB_OK) return DB_ERROR;
    sqlite3_stmt *s = stmt(c, Q_HOOK_DUE), *lease = stmt(c, Q_HOOK_LEASE);
    if (!s || !lease) {
        db_rollback(c);
        return DB_ERROR;
    }
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_int(s, 2, limit);
    int rc;
    /* Leasing each row (next_at moves past the send timeout) keeps the next
     * poll, or another serve process, from sending it twice at once. */
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        db_delivery_due d = {
            .id = (const char *)sqlite3_column_text(s, 0),
            .webhook_id = (const char *)sqlite3_column_text(s, 1),
            .url = (const char *)sqlite3_column_text(s, 2),
            .secret = (const char *)sqlite3_column_text(s, 3),
            .payload = (const char *)sqlite3_column_text(s, 4),
            .attempts = sqlite3_column_int(s, 5),
            .created_ms = sqlite3_column_int64(s, 6),
        };
        sqlite3_bind_text(lease, 1, d.id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(lease, 2, now_ms + lease_ms);
        int lrc = sqlite3_step(lease);
        sqlite3_reset(lease);
        if (lrc != SQLITE_DONE) break;
        fn(arg, &d);
        (*n)++;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE || db_commit(c) != DB_OK) {
        fail(c, "webhook due");
        db_rollback(c);
        *n = 0;
        return DB_ERROR;
    }
    return DB_OK;
}

db_status db_webhook_delivery_done(db_conn *c, const char *delivery_id, const char *webhook_id,
                                   delivery_state state, int status, const char *error,
                                   int64_t next_at_ms, int64_t now_ms, const char *disable_reason)
{
    if (db_begin(c) != DB_OK) return DB_ERROR;
    sqlite3_stmt *s = stmt(c, Q_HOOK_DONE);
    int rc = SQLITE_ERROR;
    if (s) {
        sqlite3_bind_text(s, 1, delivery_id, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, (int)state);
        sqlite3_bind_int(s, 3, status);
        sqlite3_bind_text(s, 4, error ? error : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 5, next_at_ms);
        sqlite3_bind_int64(s, 6, now_ms);
        rc = sqlite3_step(s);
        sqlite3_reset(s);
    }
    if (rc == SQLITE_DONE && disable_reason && (s = stmt(c, Q_HOOK_DISABLE))) {
        sqlite3_bind_text(s, 1, webhook_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, disable_reason, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        sqlite3_reset(s);
        /* Its other pending deliveries end too: nothing would send them. */
        if (rc == SQLITE_DONE && (s = stmt(c, Q_HOOK_DROP_PENDING))) {
            sqlite3_bind_text(s, 1, webhook_id, -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 2, now_ms);
            rc = sqlite3_step(s);
            sqlite3_reset(s);
        }
    }
    if (rc != SQLITE_DONE || db_commit(c) != DB_OK) {
        fail(c, "webhook delivery update");
        db_rollback(c);
        return DB_ERROR;
    }
    return DB_OK;
}

db_status db_webhook_deliveries(db_conn *c, const char *owner, const char *webhook_id, int limit,
                                webhook_delivery *out, int *n)
{
    sqlite3_stmt *s = stmt(c, Q_HOOK_DELIVERIES);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, webhook_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, limit);
    int rc = SQLITE_DONE;
    *n = 0;
    while (*n < limit && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        webhook_delivery *d = &out[(*n)++];
        copy_text(d->id, sizeof d->id, s, 0);
        copy_text(d->webhook_id, sizeof d->webhook_id, s, 1);
        d->event_id = sqlite3_column_int64(s, 2);
        copy_text(d->type, sizeof d->type, s, 3);
        d->state = (delivery_state)sqlite3_column_int(s, 4);
        d->attempts = sqlite3_column_int(s, 5);
        d->last_status = sqlite3_column_int(s, 6);
        copy_text(d->last_error, sizeof d->last_error, s, 7);
        d->created_ms = sqlite3_column_int64(s, 8);
        d->next_at_ms = sqlite3_column_int64(s, 9);
        d->finished_ms = sqlite3_column_int64(s, 10);
    }
    if (*n == limit) rc = SQLITE_DONE;
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? DB_OK : fail(c, "webhook deliveries");
}

/* ---------- slides ---------- */

db_status db_slides_clear(db_conn *c, const char *asset_id)
{
    return exec_one(c, Q_SLIDES_CLEAR, asset_id, "slides clear");
}

db_status db_slide_insert(db_conn *c, const char *asset_id, const slide *sl)
{
    sqlite3_stmt *s = stmt(c, Q_SLIDE_INSERT);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, asset_id, -1, SQLITE_STATIC);
    const int64_t v[] = {sl->page, sl->width, sl->height, (int64_t)sl->size, sl->thumb_width,
                         sl->thumb_height, (int64_t)sl->thumb_size};
    for (int i = 0; i < 7; i++) sqlite3_bind_int64(s, i + 2, v[i]);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? DB_OK : fail(c, "slide insert");
}

static void add_rendition(json_t *list, const char *asset_id, const char *name, int w, int h,
                          int64_t size)
{
    char url[ID_LEN + 64];
    snprintf(url, sizeof url, "/v1/assets/%s/renditions/%s", asset_id, name);
    json_array_append_new(list, json_pack("{s:s, s:s, s:i, s:i, s:I, s:s}", "name", name,
                                          "content_type", "image/jpeg", "width", w, "height", h,
                                          "size", (json_int_t)size, "url", url));
}

db_status db_asset_renditions(db_conn *c, const asset *a, json_t **out)
{
    *out = NULL;
    if (a->kind != ASSET_PDF && a->kind != ASSET_PRESENTATION) {
        *out = json_loads(a->renditions, 0, NULL);
        if (!json_is_array(*out)) {
            json_decref(*out);
            *out = json_array();
        }
        return DB_OK;
    }
    sqlite3_stmt *s = stmt(c, Q_SLIDES_LIST);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, a->id, -1, SQLITE_STATIC);
    json_t *list = json_array();
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        char name[32];
        int page = sqlite3_column_int(s, 0);
        snprintf(name, sizeof name, "slide_%03d", page);
        add_rendition(list, a->id, name, sqlite3_column_int(s, 1), sqlite3_column_int(s, 2),
                      sqlite3_column_int64(s, 3));
        snprintf(name, sizeof name, "slide_%03d_thumb", page);
        add_rendition(list, a->id, name, sqlite3_column_int(s, 4), sqlite3_column_int(s, 5),
                      sqlite3_column_int64(s, 6));
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        json_decref(list);
        return fail(c, "slides list");
    }
    *out = list;
    return DB_OK;
}

json_t *db_asset_json(db_conn *c, const asset *a)
{
    json_t *o = asset_to_json(a), *renditions;
    if (a->kind == ASSET_PDF || a->kind == ASSET_PRESENTATION) {
        if (db_asset_renditions(c, a, &renditions) == DB_OK)
            json_object_set_new(o, "renditions", renditions);
    }
    return o;
}

/* ---------- slideshows ---------- */

db_status db_slideshow_insert(db_conn *c, const slideshow *sh)
{
    sqlite3_stmt *s = stmt(c, Q_SHOW_INSERT);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, sh->asset_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, sh->token_sha256, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, sh->updated, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? DB_OK : fail(c, "slideshow insert");
}

static void read_slideshow(sqlite3_stmt *s, void *out)
{
    slideshow *sh = out;
    copy_text(sh->asset_id, sizeof sh->asset_id, s, 0);
    copy_text(sh->token_sha256, sizeof sh->token_sha256, s, 1);
    sh->current = sqlite3_column_int(s, 2);
    copy_text(sh->updated, sizeof sh->updated, s, 3);
}

db_status db_slideshow_get(db_conn *c, const char *asset_id, slideshow *out)
{
    sqlite3_stmt *s = stmt(c, Q_SHOW_GET);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, asset_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) read_slideshow(s, out);
    sqlite3_reset(s);
    return lookup_result(c, rc, "slideshow get");
}

db_status db_slideshow_set_current(db_conn *c, const char *asset_id, const char *owner,
                                   int current, int64_t now_ms, const char *updated,
                                   const char *event_data, slideshow *out)
{
    if (!in_transaction(c, "slideshow.control")) return DB_ERROR;
    sqlite3_stmt *s = stmt(c, Q_SHOW_SET);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, asset_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, current);
    sqlite3_bind_text(s, 3, updated, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    db_status st = change_result(c, rc, "slideshow control");
    if (st != DB_OK || (st = db_slideshow_get(c, asset_id, out)) != DB_OK) return st;
    return db_event_append(c, "slideshow.control", asset_id, owner, now_ms, event_data);
}
