/* webhooks.c — webhook endpoints and deliveries (core/webhook.h).
 *
 * Registration (owner-scoped), fan-in (new events become deliveries, one
 * batch a transaction, from the cursor kept in state_kv), the lease on due
 * deliveries, and their results, which may disable an endpoint and end its
 * pending deliveries.  The dispatcher polls: fan-in and due answer
 * "nothing to do" with reads alone, so an idle dispatcher never takes the
 * write lock.  Each of these functions opens its own transaction.
 */
#include "db/db_internal.h"

#define HOOK_COLS "id, owner, url, events, secret, created_ms, disabled, disabled_reason"
const char *const dbi_sql_webhooks[Q_COUNT] = {
    [Q_HOOK_INSERT] = "INSERT INTO webhooks (id, owner, url, events, secret, created_ms)"
                      " VALUES (?1,?2,?3,?4,?5,?6)",
    [Q_HOOK_GET] = "SELECT " HOOK_COLS " FROM webhooks WHERE id = ?1 AND owner = ?2",
    [Q_HOOK_LIST] = "SELECT " HOOK_COLS " FROM webhooks WHERE owner = ?1"
                    " ORDER BY created_ms DESC, id LIMIT ?2",
    [Q_HOOK_DELETE] = "DELETE FROM webhooks WHERE id = ?1 AND owner = ?2",
    /* The first fan-in starts from the newest event: no history.
     * sqlite_sequence as in events.c's Q_EVENT_BOUNDS. */
    [Q_HOOK_CURSOR_INIT] = "INSERT INTO state_kv (name, value) VALUES ('webhook_cursor',"
                           " coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0))"
                           " ON CONFLICT (name) DO NOTHING",
    [Q_HOOK_CURSOR] = "SELECT value FROM state_kv WHERE name = 'webhook_cursor'",
    [Q_HOOK_BATCH_END] = "SELECT max(id) FROM (SELECT id FROM events WHERE id > ?1"
                         " ORDER BY id LIMIT ?2) AS batch",
    /* One delivery per (event, endpoint of its owner that wants its type,
     * registered before it happened).  The body is Standard Webhooks'.
     * PostgreSQL spells the random id, the timestamp and instr otherwise
     * (dbi_pg_sql_webhooks). */
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
                    " finished_ms = CASE WHEN CAST(?2 AS BIGINT) = 0 THEN 0"
                    " ELSE CAST(?6 AS BIGINT) END"
                    " WHERE id = ?1",
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

static void read_webhook(sql_stmt *s, void *out)
{
    webhook *w = out;
    dbi_copy_text(w->id, sizeof w->id, s, 0);
    dbi_copy_text(w->owner, sizeof w->owner, s, 1);
    dbi_copy_text(w->url, sizeof w->url, s, 2);
    dbi_copy_text(w->events, sizeof w->events, s, 3);
    dbi_copy_text(w->secret, sizeof w->secret, s, 4);
    w->created_ms = sql_column_int64(s, 5);
    w->disabled = sql_column_int64(s, 6) != 0;
    dbi_copy_text(w->disabled_reason, sizeof w->disabled_reason, s, 7);
}

db_status db_webhook_insert(db_conn *c, const webhook *w)
{
    sql_stmt *s = dbi_stmt(c, Q_HOOK_INSERT);
    if (!s) return DB_ERROR;
    const char *texts[] = {w->id, w->owner, w->url, w->events, w->secret};
    for (int i = 0; i < 5; i++) sql_bind_text(s, i + 1, texts[i]);
    sql_bind_int64(s, 6, w->created_ms);
    return dbi_done(c, s, "webhook insert");
}

db_status db_webhook_get(db_conn *c, const char *owner, const char *id, webhook *out)
{
    return dbi_get_owned(c, Q_HOOK_GET, id, owner, read_webhook, out, "webhook get");
}

db_status db_webhook_list(db_conn *c, const char *owner, int limit, webhook *out, int *n)
{
    sql_stmt *s = dbi_stmt(c, Q_HOOK_LIST);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, owner);
    sql_bind_int64(s, 2, limit);
    return dbi_rows(c, s, read_webhook, out, sizeof *out, limit, n, "webhook list");
}

db_status db_webhook_delete(db_conn *c, const char *owner, const char *id)
{
    sql_stmt *s = dbi_stmt(c, Q_HOOK_DELETE);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, id);
    sql_bind_text(s, 2, owner);
    return dbi_change(c, s, "webhook delete");
}

static db_status fan_in_batch(db_conn *c, int64_t now_ms, int limit, int *created)
{
    int64_t cursor = 0, end = 0;
    if (dbi_exec_one(c, Q_HOOK_CURSOR_INIT, NULL, "webhook cursor init") != DB_OK) return DB_ERROR;
    sql_stmt *s = dbi_stmt(c, Q_HOOK_CURSOR);
    if (!s || dbi_int64(c, s, &cursor, "webhook cursor") != DB_OK) return DB_ERROR;
    if (!(s = dbi_stmt(c, Q_HOOK_BATCH_END))) return DB_ERROR;
    sql_bind_int64(s, 1, cursor);
    sql_bind_int64(s, 2, limit);
    if (dbi_int64(c, s, &end, "webhook batch") != DB_OK) return DB_ERROR;
    if (end <= cursor) return DB_NOT_FOUND;   /* max() of nothing is NULL: 0 */
    if (!(s = dbi_stmt(c, Q_HOOK_FAN_IN))) return DB_ERROR;
    sql_bind_int64(s, 1, cursor);
    sql_bind_int64(s, 2, end);
    sql_bind_int64(s, 3, now_ms);
    if (dbi_done(c, s, "webhook fan-in") != DB_OK) return DB_ERROR;
    *created = (int)dbi_changes(c);
    if (!(s = dbi_stmt(c, Q_HOOK_SET_CURSOR))) return DB_ERROR;
    sql_bind_int64(s, 1, end);
    return dbi_done(c, s, "webhook cursor update");
}

/* Polled every few hundred ms: answer "nothing new" with reads alone, so an
 * idle dispatcher never takes the write lock. */
static bool fan_in_has_news(db_conn *c)
{
    int64_t cursor = -1, end = 0;
    sql_stmt *s = dbi_stmt(c, Q_HOOK_CURSOR);
    if (!s || dbi_int64(c, s, &cursor, "webhook cursor") != DB_OK) return true;   /* not yet set */
    if (!(s = dbi_stmt(c, Q_HOOK_BATCH_END))) return true;
    sql_bind_int64(s, 1, cursor);
    sql_bind_int64(s, 2, 1);
    return dbi_int64(c, s, &end, "webhook batch") != DB_OK || end > cursor;
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
    sql_stmt *probe = dbi_stmt(c, Q_HOOK_ANY_DUE);
    if (!probe) return DB_ERROR;
    sql_bind_int64(probe, 1, now_ms);
    sql_result due = sql_step(probe);
    sql_reset(probe);
    if (due == SQL_DONE) return DB_OK;   /* nothing due: no write lock */
    if (db_begin(c) != DB_OK) return DB_ERROR;
    sql_stmt *s = dbi_stmt(c, Q_HOOK_DUE), *lease = dbi_stmt(c, Q_HOOK_LEASE);
    if (!s || !lease) {
        db_rollback(c);
        return DB_ERROR;
    }
    sql_bind_int64(s, 1, now_ms);
    sql_bind_int64(s, 2, limit);
    sql_result rc;
    /* Leasing each row (next_at moves past the send timeout) keeps the next
     * poll, or another serve process, from sending it twice at once. */
    while ((rc = sql_step(s)) == SQL_ROW) {
        db_delivery_due d = {
            .id = sql_column_text(s, 0),
            .webhook_id = sql_column_text(s, 1),
            .url = sql_column_text(s, 2),
            .secret = sql_column_text(s, 3),
            .payload = sql_column_text(s, 4),
            .attempts = sql_column_int64(s, 5),
            .created_ms = sql_column_int64(s, 6),
        };
        sql_bind_text(lease, 1, d.id);
        sql_bind_int64(lease, 2, now_ms + lease_ms);
        sql_result lrc = sql_step(lease);
        sql_reset(lease);
        if (lrc != SQL_DONE) break;
        fn(arg, &d);
        (*n)++;
    }
    sql_reset(s);
    if (rc != SQL_DONE || db_commit(c) != DB_OK) {
        dbi_fail(c, "webhook due");
        db_rollback(c);
        *n = 0;
        return DB_ERROR;
    }
    return DB_OK;
}

/* Disables the endpoint; its other pending deliveries end too: nothing
 * would send them. */
static db_status disable(db_conn *c, const char *webhook_id, const char *reason, int64_t now_ms)
{
    sql_stmt *s = dbi_stmt(c, Q_HOOK_DISABLE);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, webhook_id);
    sql_bind_text(s, 2, reason);
    if (dbi_done(c, s, "webhook disable") != DB_OK || !(s = dbi_stmt(c, Q_HOOK_DROP_PENDING)))
        return DB_ERROR;
    sql_bind_text(s, 1, webhook_id);
    sql_bind_int64(s, 2, now_ms);
    return dbi_done(c, s, "webhook drop pending");
}

db_status db_webhook_delivery_done(db_conn *c, const char *delivery_id, const char *webhook_id,
                                   delivery_state state, int status, const char *error,
                                   int64_t next_at_ms, int64_t now_ms, const char *disable_reason)
{
    if (db_begin(c) != DB_OK) return DB_ERROR;
    sql_stmt *s = dbi_stmt(c, Q_HOOK_DONE);
    db_status st = DB_ERROR;
    if (s) {
        sql_bind_text(s, 1, delivery_id);
        sql_bind_int64(s, 2, (int)state);
        sql_bind_int64(s, 3, status);
        sql_bind_text(s, 4, error ? error : "");
        sql_bind_int64(s, 5, next_at_ms);
        sql_bind_int64(s, 6, now_ms);
        st = dbi_done(c, s, "webhook delivery update");
    }
    if (st == DB_OK && disable_reason) st = disable(c, webhook_id, disable_reason, now_ms);
    return db_end(c, st);
}

static void read_delivery(sql_stmt *s, void *out)
{
    webhook_delivery *d = out;
    dbi_copy_text(d->id, sizeof d->id, s, 0);
    dbi_copy_text(d->webhook_id, sizeof d->webhook_id, s, 1);
    d->event_id = sql_column_int64(s, 2);
    dbi_copy_text(d->type, sizeof d->type, s, 3);
    d->state = (delivery_state)sql_column_int64(s, 4);
    d->attempts = sql_column_int64(s, 5);
    d->last_status = sql_column_int64(s, 6);
    dbi_copy_text(d->last_error, sizeof d->last_error, s, 7);
    d->created_ms = sql_column_int64(s, 8);
    d->next_at_ms = sql_column_int64(s, 9);
    d->finished_ms = sql_column_int64(s, 10);
}

db_status db_webhook_deliveries(db_conn *c, const char *owner, const char *webhook_id, int limit,
                                webhook_delivery *out, int *n)
{
    sql_stmt *s = dbi_stmt(c, Q_HOOK_DELIVERIES);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, webhook_id);
    sql_bind_text(s, 2, owner);
    sql_bind_int64(s, 3, limit);
    return dbi_rows(c, s, read_delivery, out, sizeof *out, limit, n, "webhook deliveries");
}

/* The random id: 88 bits of a version 4 UUID's hex (gen_random_uuid is
 * core PostgreSQL; gen_random_bytes would need pgcrypto). */
const char *const dbi_pg_sql_webhooks[Q_COUNT] = {
    [Q_HOOK_CURSOR_INIT] = "INSERT INTO state_kv (name, value) VALUES ('webhook_cursor',"
                           " coalesce(pg_sequence_last_value('events_id_seq'), 0))"
                           " ON CONFLICT (name) DO NOTHING",
    [Q_HOOK_FAN_IN] = "INSERT INTO webhook_deliveries (id, webhook_id, event_id, type, payload,"
                      " created_ms, next_at) SELECT 'msg_' ||"
                      " substr(replace(gen_random_uuid()::text, '-', ''), 1, 22), w.id,"
                      " e.id, e.type, '{\"type\":\"' || e.type || '\",\"timestamp\":\"' ||"
                      " to_char(to_timestamp(e.at / 1000.0) AT TIME ZONE 'UTC',"
                      " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') || '\",\"data\":' || e.data || '}',"
                      " ?3, ?3 FROM events e JOIN webhooks w ON w.owner = e.owner"
                      " AND w.disabled = 0 AND strpos(',' || w.events || ',', ',' || e.type || ',') > 0"
                      " AND w.created_ms <= e.at WHERE e.id > ?1 AND e.id <= ?2",
};
