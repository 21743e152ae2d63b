/* amqp.h — the event log on a RabbitMQ exchange (--events-amqp-exchange).
 *
 * One thread in the serve process publishes every event of the log, in id
 * order, to a durable topic exchange: routing key = the event type
 * (asset.created, job.progress, ...), body = the event's JSON exactly as
 * /v1/events serves it ({"id","type","asset_id","at","data"}), persistent
 * (delivery_mode 2), content_type application/json, message_id = the event
 * id.  Consumers bind queues with patterns such as `asset.*` or `#`.
 *
 * Durability comes from a cursor in the database (db_amqp_cursor_*): the
 * last event the broker confirmed, every event before it confirmed too.
 * The channel is in confirm mode; up to `window` publishes are in flight at
 * once, and the cursor moves only over the prefix of them the broker has
 * acked.  So:
 *   - an outage (broker down, connection cut, channel closed, a nack, no
 *     confirmation within confirm_timeout_ms) drops the connection and the
 *     in-flight publishes; after a reconnect (backoff backoff_min_ms,
 *     doubling to backoff_max_ms) publishing starts again after the
 *     cursor.  Events are delayed, never dropped or reordered;
 *   - delivery is at least once: what was in flight when the connection
 *     died may arrive twice (each first arrival still in id order);
 *     consumers drop duplicates by message_id;
 *   - a serve crash loses no event either: the cursor is written after
 *     the confirmations (at most every 200 ms while busy), so a restart
 *     republishes at most what was confirmed since the last write.
 * The first start with the flag begins at the newest event: the history
 * before it is not published.  Events trimmed by --event-retention before
 * they could be published (an outage longer than the retention) are lost;
 * the thread counts them as failures and logs how many.
 *
 * The thread never blocks the HTTP threads: it is woken by
 * amqp_events_poke() (from the hub, when events were committed) or a short
 * poll, and does its database reads and network work alone.  A broker that
 * stops reading (a resource alarm) may hold it in a send; the server keeps
 * serving meanwhile.
 *
 * Credentials never leave this module's memory: logs show the URL with its
 * password masked (amqp_conn_url_masked), errors carry none.
 */
#ifndef ASSETD_AMQP_H
#define ASSETD_AMQP_H

#include "db/db.h"
#include "events/amqp_conn.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct amqp_events amqp_events;

typedef struct amqp_events_config {
    amqp_conn_url url;          /* copied */
    const char *exchange;       /* copied */
    int window;                 /* publishes awaiting confirmation, at most */
    int poll_ms;                /* fallback poll for new events */
    int timeout_ms;             /* each network step: connect, login, RPCs */
    int confirm_timeout_ms;     /* a publish unconfirmed this long drops the connection */
    int backoff_min_ms, backoff_max_ms;
} amqp_events_config;

/* Starts the thread (it connects on its own: a broker that is down does not
 * stop the server).  d is borrowed and must outlive it.  NULL with *err set. */
amqp_events *amqp_events_start(db *d, const amqp_events_config *cfg, const char **err);
/* New events were committed: look now.  Any thread; NULL is a no-op. */
void amqp_events_poke(amqp_events *p);
/* Saves the cursor, closes the connection, joins the thread.  NULL: no-op. */
void amqp_events_stop(amqp_events *p);

typedef struct amqp_events_stats {
    uint64_t published;   /* publishes the broker confirmed */
    uint64_t failures;    /* failed connects, lost connections, nacks, timeouts, trimmed events */
    int64_t lag;          /* events in the log after the cursor */
    bool connected;
} amqp_events_stats;

/* For /metrics; any thread. */
void amqp_events_get_stats(amqp_events *p, amqp_events_stats *out);

#endif
