/* run_consume.c — a run's consumer: the run's queue into the owner's
 * people table (run_task.h), as the original consumer did, minus its
 * flaws: parameterised statements, batches, and acks only after commit.
 *
 * Deliveries are taken in batches of up to BATCH (prefetch PREFETCH, so
 * the next batch is already on its way while one commits): one
 * transaction stores the batch and adds its counts (db_run_store_rows),
 * and only after the commit one basic.ack with `multiple` acknowledges
 * it.  A consumer that dies between the commit and the ack sees its batch
 * again on the next connection; run_lines makes the second storing count
 * nothing (run.h).
 *
 * The end: once the publisher is done, the consumer stops after the run's
 * idle timeout without a message, once it has every row the broker
 * confirmed (received, distinct lines, >= sent).  "The queue is empty" is
 * not enough: deliveries on their way to us (prefetched, unacked) are not
 * in the queue's count.  Only when rows are missing for another
 * MISSING_GRACE_MS (a nacked publish the broker kept after all cannot be
 * missing; a queue someone else drained can) does an empty queue end it.
 * While the publisher still publishes (live mode) an idle consumer keeps
 * listening: a slow publisher does not lose rows.
 */
#include "queue/run_task.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 500
#define PREFETCH 1000
#define POLL_MS 100
/* With rows taken but not stored: a pause this long ends the batch, so the
 * last rows of a run are stored at once, not after a whole POLL_MS. */
#define PAUSE_MS 2
#define RECONNECTS 3
#define MISSING_GRACE_MS 5000

typedef struct consumer {
    run_task *t;
    run_rec r;              /* this thread's copy: id, owner, fence, counts */
    amqp_conn *c;
    run_row rows[BATCH];
    int n;
    uint64_t last_tag;      /* the last delivery taken: acked with the batch */
    int64_t last_ms;        /* when it came (the run's last_message) */
    int64_t ignored;        /* deliveries that were not a row message */
    int64_t event_ms;
    char name[RUN_ROW_MAX + 1], mail[RUN_ROW_MAX + 1];
    char why[256];
} consumer;

static void drop_rows(consumer *k)
{
    for (int i = 0; i < k->n; i++) {
        free((char *)k->rows[i].name);
        free((char *)k->rows[i].mail);
    }
    k->n = 0;
}

static void on_delivery(void *arg, uint64_t tag, const void *body, size_t len,
                        const char *message_id, size_t id_len)
{
    consumer *k = arg;
    k->last_tag = tag;
    k->last_ms = time_now_ms();
    /* Our publisher names each message by its CSV line; another one (a
     * consumer session's) does not: line 0, stored without the
     * redelivery check. */
    char id[24];
    uint64_t line = 0;
    bool numbered = message_id && id_len > 0 && id_len < sizeof id;
    if (numbered) {
        memcpy(id, message_id, id_len);
        id[id_len] = '\0';
        numbered = parse_u64(id, &line) && line > 0 && line <= INT64_MAX;
    }
    if (!numbered) line = 0;
    /* In a CSV run every row is numbered: anything else is not a row. */
    bool ok = (numbered || k->r.session[0]) &&
              run_message_decode(body, len, k->name, sizeof k->name, k->mail, sizeof k->mail);
    char *name = ok ? strdup(k->name) : NULL, *mail = ok ? strdup(k->mail) : NULL;
    if (!name || !mail) {
        /* Someone else's message in our queue: acked with the batch, not stored. */
        free(name);
        free(mail);
        k->ignored++;
        return;
    }
    k->rows[k->n++] = (run_row){name, mail, (int64_t)line};
}

/* Stores the batch, then acks it.  false: stop (the reason is recorded). */
static bool flush(consumer *k)
{
    run_task *t = k->t;
    if (!k->last_tag) return true;
    int64_t now = time_now_ms();
    bool event = now - k->event_ms >= RUN_PROGRESS_MS;
    db_conn *c = db_acquire(t->db);
    db_status st = DB_ERROR;
    if (c && db_begin(c) == DB_OK)
        st = db_end(c, db_run_store_rows(c, &k->r, k->rows, k->n, event, k->last_ms));
    db_release(t->db, c);
    drop_rows(k);
    if (st == DB_NOT_FOUND) {
        atomic_store(&t->lost, true);
        atomic_store(&t->stop, true);
        return false;
    }
    if (st != DB_OK) {
        run_task_fail(t, "database_unavailable", "cannot store the run's rows");
        return false;
    }
    if (event) {
        k->event_ms = now;
        notifier_poke(t->events);
    }
    bool acked = amqp_conn_ack(k->c, k->last_tag, true, k->why, sizeof k->why);
    k->last_tag = 0;
    return acked;   /* a failed ack: the connection died; the rows are stored */
}

/* One connection: consume until the end (true) or a failure (false; the
 * connection died if the task still runs). */
static bool consume_on(consumer *k)
{
    run_task *t = k->t;
    if (!amqp_conn_declare_queue(k->c, t->queue, RUN_QUEUE_EXPIRES_MS, k->why, sizeof k->why) ||
        !amqp_conn_consume(k->c, t->queue, PREFETCH, k->why, sizeof k->why))
        return false;
    atomic_store(&t->consumer_ready, true);
    double idle_since = time_mono_seconds();
    while (!atomic_load(&t->stop)) {
        int got = amqp_conn_deliveries(k->c, k->n ? PAUSE_MS : POLL_MS, BATCH - k->n,
                                       on_delivery, k, k->why, sizeof k->why);
        if (got < 0) return false;
        if (got > 0) idle_since = time_mono_seconds();
        if ((k->n == BATCH || got == 0) && !flush(k)) return false;
        if (got > 0 || !atomic_load(&t->published)) continue;
        double idle_ms = (time_mono_seconds() - idle_since) * 1000;
        if (idle_ms < (double)k->r.timeout_s * 1000) continue;
        if (k->r.n.received >= atomic_load(&t->sent)) return true;
        if (idle_ms < (double)k->r.timeout_s * 1000 + MISSING_GRACE_MS) continue;
        uint32_t ready;
        if (!amqp_conn_queue_ready(k->c, t->queue, &ready, k->why, sizeof k->why)) return false;
        if (ready == 0) return true;
    }
    return false;
}

void *run_consume(void *arg)
{
    run_task *t = arg;
    consumer *k = calloc(1, sizeof *k);
    if (!k) {
        run_task_fail(t, "internal", "out of memory");
        return NULL;
    }
    k->t = t;
    k->r = t->r;
    for (int attempt = 0; attempt <= RECONNECTS && !atomic_load(&t->stop); attempt++) {
        char why[256];
        if (!(k->c = run_task_connect(t, false, why, sizeof why))) {
            if (!atomic_load(&t->stop))
                run_task_fail(t, "broker_unavailable", "cannot reach RabbitMQ: %s", why);
            break;
        }
        bool done = consume_on(k);
        drop_rows(k);   /* unacked: the broker delivers them again */
        k->last_tag = 0;
        amqp_conn_close(k->c);
        k->c = NULL;
        if (done || atomic_load(&t->stop)) break;
        log_warn("run consumer lost its connection", "run", t->r.id, "error", k->why, NULL);
        if (attempt == RECONNECTS)
            run_task_fail(t, "broker_lost", "the consumer's connection to RabbitMQ failed %d "
                          "times: %s", RECONNECTS + 1, k->why);
    }
    if (k->ignored) {
        char n[24];
        snprintf(n, sizeof n, "%lld", (long long)k->ignored);
        log_warn("run queue held messages that were not rows", "run", t->r.id, "count", n, NULL);
    }
    free(k);
    return NULL;
}
