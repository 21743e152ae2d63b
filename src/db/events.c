/* events.c — the event log (db.h "Events").
 *
 * Append, read after a cursor, bounds, trim.  An append must run inside
 * the transaction of the change it reports (dbi_in_transaction), so an
 * event commits with its change or not at all; ids are AUTOINCREMENT, so a
 * client's `since` cursor never names a reused id.  The asset.* events are
 * built in assets.c, which knows the asset's JSON.
 *
 * The AMQP publisher's cursor lives in state_kv (the table of named
 * cursors, beside the webhook fan-in's) as 'amqp_cursor'.
 */
#include "db/db_internal.h"

const char *const dbi_sql_events[Q_COUNT] = {
    [Q_EVENT_INSERT] = "INSERT INTO events (type, asset_id, owner, at, data) VALUES (?1,?2,?3,?4,?5)",
    [Q_EVENT_AFTER] = "SELECT id, type, asset_id, owner, at, data FROM events WHERE id > ?1"
                      " AND (CAST(?2 AS TEXT) IS NULL OR owner = ?2)"
                      " AND (CAST(?3 AS TEXT) IS NULL OR asset_id = ?3)"
                      " ORDER BY id LIMIT ?4",
    /* sqlite_sequence is where SQLite's AUTOINCREMENT keeps the newest id
     * ever given; PostgreSQL reads the identity's sequence instead. */
    [Q_EVENT_BOUNDS] = "SELECT (SELECT min(id) FROM events),"
                       " (SELECT seq FROM sqlite_sequence WHERE name = 'events')",
    /* A prefix of ids, never a hole: `at` is taken by each writer before
     * its commit, so it is not strictly in id order.  Stops at the first
     * event young enough to keep; the scan costs what it deletes. */
    [Q_EVENT_TRIM] = "DELETE FROM events WHERE id < coalesce((SELECT id FROM events"
                     " WHERE at >= ?1 ORDER BY id LIMIT 1),"
                     " (SELECT coalesce(max(id), 0) + 1 FROM events))",
    /* sqlite_sequence as in Q_EVENT_BOUNDS. */
    [Q_AMQP_CURSOR_INIT] = "INSERT INTO state_kv (name, value) VALUES ('amqp_cursor',"
                           " coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0))"
                           " ON CONFLICT (name) DO NOTHING",
    [Q_AMQP_CURSOR] = "SELECT value FROM state_kv WHERE name = 'amqp_cursor'",
    /* The larger: a late writer with an older position never moves it back. */
    [Q_AMQP_SET_CURSOR] = "INSERT INTO state_kv (name, value) VALUES ('amqp_cursor', ?1)"
                          " ON CONFLICT (name) DO UPDATE SET value = CASE WHEN excluded.value >"
                          " state_kv.value THEN excluded.value ELSE state_kv.value END",
};

db_status db_event_append(db_conn *c, const char *type, const char *asset_id, const char *owner,
                          int64_t now_ms, const char *data_json)
{
    if (!dbi_in_transaction(c, type)) return DB_ERROR;
    /* Event ids commit in id order only among holders of the write lock. */
    if (dbi_order(c) != DB_OK) return DB_ERROR;
    sql_stmt *s = dbi_stmt(c, Q_EVENT_INSERT);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, type);
    sql_bind_text(s, 2, asset_id);
    sql_bind_text(s, 3, owner);
    sql_bind_int64(s, 4, now_ms);
    sql_bind_text(s, 5, data_json);
    return dbi_done(c, s, "event append");
}

db_status db_events_after(db_conn *c, int64_t after_id, const char *owner, const char *asset_id,
                          int limit, db_event_fn fn, void *arg, int *n)
{
    sql_stmt *s = dbi_stmt(c, Q_EVENT_AFTER);
    if (!s) return DB_ERROR;
    sql_bind_int64(s, 1, after_id);
    if (owner) sql_bind_text(s, 2, owner);
    if (asset_id) sql_bind_text(s, 3, asset_id);
    sql_bind_int64(s, 4, limit);
    sql_result rc;
    *n = 0;
    while ((rc = sql_step(s)) == SQL_ROW) {
        db_event e = {
            .id = sql_column_int64(s, 0),
            .type = sql_column_text(s, 1),
            .asset_id = sql_column_text(s, 2),
            .owner = sql_column_text(s, 3),
            .at_ms = sql_column_int64(s, 4),
            .data_json = sql_column_text(s, 5),
        };
        fn(arg, &e);
        (*n)++;
    }
    sql_reset(s);
    return rc == SQL_DONE ? DB_OK : dbi_fail(c, "events after");
}

db_status db_events_bounds(db_conn *c, int64_t *oldest, int64_t *newest)
{
    sql_stmt *s = dbi_stmt(c, Q_EVENT_BOUNDS);
    if (!s) return DB_ERROR;
    sql_result rc = sql_step(s);
    if (rc == SQL_ROW) {
        *newest = sql_column_int64(s, 1);           /* 0 before the first event */
        *oldest = sql_column_is_null(s, 0) ? *newest + 1 : sql_column_int64(s, 0);
    }
    sql_reset(s);
    return rc == SQL_ROW ? DB_OK : dbi_fail(c, "events bounds");
}

db_status db_events_trim(db_conn *c, int64_t before_ms, int64_t *removed)
{
    sql_stmt *s = dbi_stmt(c, Q_EVENT_TRIM);
    if (!s) return DB_ERROR;
    sql_bind_int64(s, 1, before_ms);
    db_status st = dbi_done(c, s, "events trim");
    *removed = st == DB_OK ? dbi_changes(c) : 0;
    return st;
}

db_status db_amqp_cursor_get(db_conn *c, int64_t *cursor)
{
    sql_stmt *s = dbi_stmt(c, Q_AMQP_CURSOR_INIT);
    if (!s) return DB_ERROR;
    if (dbi_done(c, s, "amqp cursor init") != DB_OK) return DB_ERROR;
    if (!(s = dbi_stmt(c, Q_AMQP_CURSOR))) return DB_ERROR;
    db_status st = dbi_int64(c, s, cursor, "amqp cursor");
    return st == DB_NOT_FOUND ? dbi_fail(c, "amqp cursor") : st;
}

db_status db_amqp_cursor_set(db_conn *c, int64_t cursor)
{
    sql_stmt *s = dbi_stmt(c, Q_AMQP_SET_CURSOR);
    if (!s) return DB_ERROR;
    sql_bind_int64(s, 1, cursor);
    return dbi_done(c, s, "amqp cursor update");
}

/* The newest id ever given: the identity's sequence (NULL before the
 * first event). */
#define PG_EVENTS_NEWEST "pg_sequence_last_value('events_id_seq')"

const char *const dbi_pg_sql_events[Q_COUNT] = {
    [Q_EVENT_BOUNDS] = "SELECT (SELECT min(id) FROM events), " PG_EVENTS_NEWEST,
    [Q_AMQP_CURSOR_INIT] = "INSERT INTO state_kv (name, value) VALUES ('amqp_cursor',"
                           " coalesce(" PG_EVENTS_NEWEST ", 0)) ON CONFLICT (name) DO NOTHING",
};
