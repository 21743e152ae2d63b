/* run_publish.c — a run's publisher: the CSV's rows to the run's queue,
 * with publisher confirms (run_task.h).
 *
 * The CSV streams from the store through the reader (core/csv.h): nothing
 * holds more than one row and the window.  Each well-formed row (exactly
 * two fields) becomes one persistent message {"name","mail"} with
 * message_id = its line, published to the default exchange with the
 * queue's name as routing key; up to WINDOW of them wait for the broker's
 * confirmation at once (one at a time would be ten times slower).
 *
 * The cursor.  Every publish takes a slot of the ring (its delivery tag
 * mod WINDOW) holding where the reader was after its row: offset, line,
 * rows read and skipped.  Confirmations mark slots; the prefix of marked
 * slots is what the broker holds for sure, so the durable cursor (saved
 * every SAVE_MS, and at the end) is the snapshot of the prefix's last slot
 * — or the reader's own position when nothing is in flight.  A connection
 * that dies loses its unconfirmed publishes: the publisher reconnects and
 * reads the CSV again from the cursor (at least once: the consumer drops
 * the lines it has stored, run.h).
 *
 * A nack is counted (nacked) and not retried: the broker said it could not
 * take the message, and the report says so.
 */
#include "core/csv.h"
#include "queue/run_task.h"
#include "util/fault.h"
#include "util/log.h"
#include "util/timefmt.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW 512
#define SAVE_MS 200
/* A connection whose publishes see no confirmation this long is dead. */
#define CONFIRM_TIMEOUT_MS 30000
/* Reconnections after a lost connection before the run fails. */
#define RECONNECTS 3

typedef struct position {
    uint64_t offset, line;
    int64_t read, skipped;
} position;

typedef struct slot {
    position after;   /* the reader after this publish's row */
    int state;        /* 0 waiting, 1 acked, 2 nacked */
} slot;

typedef struct publisher {
    run_task *t;
    amqp_conn *c;
    csv_reader *reader;
    slot ring[WINDOW];
    uint64_t last_tag, done_tag;   /* published; confirmed prefix (tags from 1 per connection) */
    position reader_at;            /* after the last row read */
    position done;                 /* the cursor: after the confirmed prefix */
    int64_t sent, nacked;          /* within the confirmed prefix */
    int64_t lines[RUN_SKIPPED_LINES_MAX];
    int nlines;
    int64_t saved_ms, event_ms;
    bool dead;                     /* the connection died: reconnect */
    bool store_failed;
    char why[256];
} publisher;

static bool going(const publisher *p) { return !p->dead && !atomic_load(&p->t->stop); }

/* ---------- confirmations and the cursor ---------- */

static void on_confirm(void *arg, uint64_t tag, bool multiple, bool ack)
{
    publisher *p = arg;
    if (tag > p->last_tag) return;   /* not ours: a broker bug; ignore */
    fault_point("run.confirmed");   /* the broker has them; the cursor does not say so */
    for (uint64_t t = multiple ? p->done_tag + 1 : tag; t <= tag; t++)
        if (p->ring[t % WINDOW].state == 0) p->ring[t % WINDOW].state = ack ? 1 : 2;
    while (p->done_tag < p->last_tag && p->ring[(p->done_tag + 1) % WINDOW].state != 0) {
        slot *s = &p->ring[++p->done_tag % WINDOW];
        if (s->state == 1) p->sent++;
        else p->nacked++;
        p->done = s->after;
        s->state = 0;
    }
    if (p->done_tag == p->last_tag) p->done = p->reader_at;
}

/* Reads confirmations until at most `room` publishes are in flight. */
static bool await_confirms(publisher *p, uint64_t room)
{
    double since = time_mono_seconds();
    while (going(p) && p->last_tag - p->done_tag > room) {
        uint64_t before = p->done_tag;
        if (amqp_conn_confirms(p->c, 100, on_confirm, p, p->why, sizeof p->why) < 0) {
            p->dead = true;
            break;
        }
        if (p->done_tag != before) since = time_mono_seconds();
        else if ((time_mono_seconds() - since) * 1000 > CONFIRM_TIMEOUT_MS) {
            snprintf(p->why, sizeof p->why, "no confirmation from the broker for %d s",
                     CONFIRM_TIMEOUT_MS / 1000);
            p->dead = true;
        }
    }
    return going(p);
}

/* The skipped lines behind the cursor (all of them once the CSV is done:
 * a last row without a line end ends on the cursor's own line). */
static void lines_json(const publisher *p, bool all, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < p->nlines && (all || (uint64_t)p->lines[i] < p->done.line) && n < cap;
         i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%" PRId64, n > 1 ? "," : "", p->lines[i]);
    if (n < cap) snprintf(out + n, cap - n, "]");
}

/* Writes the cursor and counts; false if the lease is lost (or the
 * database failed: the run cannot go on without saving). */
static bool save(publisher *p, bool finished)
{
    run_task *t = p->t;
    int64_t now = time_now_ms();
    t->r.n.read = p->done.read;
    t->r.n.skipped = p->done.skipped;
    t->r.n.sent = p->sent;
    t->r.n.nacked = p->nacked;
    t->r.pub_offset = p->done.offset;
    t->r.pub_line = p->done.line;
    lines_json(p, finished, t->r.skipped_lines, sizeof t->r.skipped_lines);
    if (finished) {
        t->r.state = RUN_CONSUMING;
        t->r.published_ms = now;
    }
    bool event = finished || now - p->event_ms >= RUN_PROGRESS_MS;
    db_conn *c = db_acquire(t->db);
    db_status st = DB_ERROR;
    if (c && db_begin(c) == DB_OK)
        st = db_end(c, db_run_save_publisher(c, &t->r, event, now));
    db_release(t->db, c);
    if (st == DB_NOT_FOUND) {
        atomic_store(&t->lost, true);
        atomic_store(&t->stop, true);
        return false;
    }
    if (st != DB_OK) {
        run_task_fail(t, "database_unavailable", "cannot record the run's progress");
        return false;
    }
    p->saved_ms = now;
    if (event) {
        p->event_ms = now;
        notifier_poke(t->events);
    }
    return true;
}

/* ---------- reading and publishing ---------- */

static bool on_row(void *arg, const csv_row *row)
{
    publisher *p = arg;
    p->reader_at = (position){row->next_offset, row->next_line, p->reader_at.read + 1,
                              p->reader_at.skipped};
    if (row->problem != CSV_OK || row->nfields != 2) {
        p->reader_at.skipped++;
        if (p->nlines < RUN_SKIPPED_LINES_MAX) p->lines[p->nlines++] = (int64_t)row->line;
        if (p->done_tag == p->last_tag) p->done = p->reader_at;
        return going(p);
    }
    size_t len;
    char *body = run_message_encode(row->fields[0], row->lens[0], row->fields[1], row->lens[1],
                                    &len);
    if (!body) {   /* the reader checked UTF-8: only memory can fail here */
        run_task_fail(p->t, "internal", "out of memory");
        return false;
    }
    char id[24];
    snprintf(id, sizeof id, "%" PRIu64, row->line);
    amqp_conn_message m = {.exchange = "", .routing_key = p->t->queue, .body = body, .len = len,
                           .content_type = "application/json", .message_id = id,
                           .persistent = true};
    uint64_t tag;
    bool ok = amqp_conn_publish(p->c, &m, &tag, p->why, sizeof p->why);
    free(body);
    if (!ok) {
        p->dead = true;
        return false;
    }
    p->last_tag = tag;
    p->ring[tag % WINDOW] = (slot){p->reader_at, 0};
    if (!await_confirms(p, WINDOW - 1)) return false;
    if (time_now_ms() - p->saved_ms >= SAVE_MS) {
        /* Take what has arrived, without waiting, before saving. */
        if (amqp_conn_confirms(p->c, 0, on_confirm, p, p->why, sizeof p->why) < 0) {
            p->dead = true;
            return false;
        }
        if (!save(p, false)) return false;
    }
    return going(p);
}

static bool sink(void *arg, const void *data, size_t len)
{
    publisher *p = arg;
    return csv_reader_feed(p->reader, data, len);
}

/* One connection's worth: from the cursor to the end of the CSV and its
 * last confirmation.  false: stopped, failed, or the connection died
 * (p->dead: the caller reconnects). */
static bool publish_from_cursor(publisher *p, uint64_t size)
{
    run_task *t = p->t;
    p->last_tag = p->done_tag = 0;
    memset(p->ring, 0, sizeof p->ring);
    p->reader_at = p->done;
    int keep = 0;   /* skipped lines past the cursor are read again */
    while (keep < p->nlines && (uint64_t)p->lines[keep] < p->done.line) keep++;
    p->nlines = keep;
    p->reader = csv_reader_new(RUN_ROW_MAX, 2, p->done.offset, p->done.line, on_row, p);
    if (!p->reader) {
        run_task_fail(t, "internal", "out of memory");
        return false;
    }
    bool read = p->done.offset >= size ||
                store_read(t->store, t->r.asset_id, p->done.offset, size - 1, sink, p);
    if (read) read = csv_reader_finish(p->reader);
    csv_reader_free(p->reader);
    p->reader = NULL;
    if (!going(p)) return false;
    if (!read) {
        run_task_fail(t, "source_unreadable", "cannot read the CSV from the store");
        return false;
    }
    if (!await_confirms(p, 0)) return false;
    p->done = p->reader_at;
    return save(p, true);
}

bool run_publish(run_task *t)
{
    publisher *p = calloc(1, sizeof *p);
    if (!p) {
        run_task_fail(t, "internal", "out of memory");
        return false;
    }
    p->t = t;
    p->done = (position){t->r.pub_offset, t->r.pub_line ? t->r.pub_line : 1, t->r.n.read,
                         t->r.n.skipped};
    p->sent = t->r.n.sent;
    p->nacked = t->r.n.nacked;
    json_t *lines = json_loads(t->r.skipped_lines, 0, NULL);
    for (size_t i = 0; i < json_array_size(lines) && p->nlines < RUN_SKIPPED_LINES_MAX; i++)
        p->lines[p->nlines++] = json_integer_value(json_array_get(lines, i));
    json_decref(lines);

    db_conn *c = db_acquire(t->db);
    asset a;
    db_status st = c ? db_asset_get_any(c, t->r.asset_id, &a) : DB_ERROR;
    db_release(t->db, c);
    bool ok = false;
    if (st == DB_NOT_FOUND) run_task_fail(t, "source_deleted", "the CSV asset was deleted");
    else if (st != DB_OK) run_task_fail(t, "database_unavailable", "cannot read the CSV's record");
    for (int attempt = 0; st == DB_OK && attempt <= RECONNECTS && !atomic_load(&t->stop);
         attempt++) {
        char why[256];
        if (!(p->c = run_task_connect(t, true, why, sizeof why))) {
            if (!atomic_load(&t->stop))
                run_task_fail(t, "broker_unavailable", "cannot reach RabbitMQ: %s", why);
            break;
        }
        if (!amqp_conn_declare_queue(p->c, t->queue, RUN_QUEUE_EXPIRES_MS, p->why,
                                     sizeof p->why))
            p->dead = true;
        else
            ok = publish_from_cursor(p, a.size);
        amqp_conn_close(p->c);
        p->c = NULL;
        if (ok || !p->dead) break;
        log_warn("run publisher lost its connection", "run", t->r.id, "error", p->why, NULL);
        p->dead = false;
        if (attempt == RECONNECTS)
            run_task_fail(t, "broker_lost", "the connection to RabbitMQ failed %d times: %s",
                          RECONNECTS + 1, p->why);
    }
    if (ok) {
        atomic_store(&t->sent, p->sent);
        atomic_store(&t->published, true);
    }
    free(p);
    return ok;
}
