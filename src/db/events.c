/* sqlite_events.c — the event log on SQLite (db.h "Events").
 *
 * Append, read after a cursor, bounds, trim.  An append must run inside
 * the transaction of the change it reports (sq_in_transaction), so an
 * event commits with its change or not at all; ids are AUTOINCREMENT, so a
 * client's `since` cursor never names a reused id.  The asset.* events are
 * built in sqlite_assets.c, which knows the asset's JSON.
 *
 * The AMQP publisher's cursor lives in state_kv (the table of named
 * cursors, beside the webhook fan-in's) as 'amqp_cursor'.
 */
#include "db/db_internal.h"

const char *const sq_sql_events[Q_COUNT] = {
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
    [Q_AMQP_CURSOR_INIT] = "INSERT OR IGNORE INTO state_kv (name, value) VALUES ('amqp_cursor',"
                           " coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0))",
    [Q_AMQP_CURSOR] = "SELECT value FROM state_kv WHERE name = 'amqp_cursor'",
    /* max(): a late writer with an older position never moves it back. */
    [Q_AMQP_SET_CURSOR] = "INSERT INTO state_kv (name, value) VALUES ('amqp_cursor', ?1)"
                          " ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
};

db_status db_event_append(db_conn *c, const char *type, const char *asset_id, const char *owner,
                          int64_t now_ms, const char *data_json)
{
    if (!sq_in_transaction(c, type)) return DB_ERROR;
    sqlite3_stmt *s = sq_stmt(c, Q_EVENT_INSERT);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, asset_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, now_ms);
    sqlite3_bind_text(s, 5, data_json, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? DB_OK : sq_fail(c, "event append");
}

db_status db_events_after(db_conn *c, int64_t after_id, const char *owner, const char *asset_id,
                          int limit, db_event_fn fn, void *arg, int *n)
{
    sqlite3_stmt *s = sq_stmt(c, Q_EVENT_AFTER);
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
    return rc == SQLITE_DONE ? DB_OK : sq_fail(c, "events after");
}

db_status db_events_bounds(db_conn *c, int64_t *oldest, int64_t *newest)
{
    sqlite3_stmt *s = sq_stmt(c, Q_EVENT_BOUNDS);
    if (!s) return DB_ERROR;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *newest = sqlite3_column_int64(s, 1);           /* 0 before the first event */
        *oldest = sqlite3_column_type(s, 0) == SQLITE_NULL ? *newest + 1
                                                           : sqlite3_column_int64(s, 0);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? DB_OK : sq_fail(c, "events bounds");
}

db_status db_events_trim(db_conn *c, int64_t before_ms, int64_t *removed)
{
    sqlite3_stmt *s = sq_stmt(c, Q_EVENT_TRIM);
    if (!s) return DB_ERROR;
    sqlite3_bind_int64(s, 1, before_ms);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    *removed = rc == SQLITE_DONE ? sqlite3_changes(c->h) : 0;
    return rc == SQLITE_DONE ? DB_OK : sq_fail(c, "events trim");
}

db_status db_amqp_cursor_get(db_conn *c, int64_t *cursor)
{
    sqlite3_stmt *s = sq_stmt(c, Q_AMQP_CURSOR_INIT);
    if (!s) return DB_ERROR;
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return sq_fail(c, "amqp cursor init");
    if (!(s = sq_stmt(c, Q_AMQP_CURSOR))) return DB_ERROR;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) *cursor = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? DB_OK : sq_fail(c, "amqp cursor");
}

db_status db_amqp_cursor_set(db_conn *c, int64_t cursor)
{
    sqlite3_stmt *s = sq_stmt(c, Q_AMQP_SET_CURSOR);
    if (!s) return DB_ERROR;
    sqlite3_bind_int64(s, 1, cursor);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? DB_OK : sq_fail(c, "amqp cursor update");
}
