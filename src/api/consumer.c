/* consumer.c — the original consumer's HTTP protocol (promise-sub), kept
 * under /consumer/, so a publisher written for it can use assetd as its
 * consumer.  Its sessions are CSV runs without a CSV (core/run.h): the
 * other program publishes {"name","mail"} messages to the session's queue,
 * named by its UUID, and assetd's consumer stores them in the key owner's
 * people table.
 *
 *   GET /consumer/create/                      a session (its queue declared) -> JSON
 *   GET /consumer/process/?uuid&timeout&mode   starts consuming: live answers OK at
 *                                              once, batch when the queue is done
 *   GET /consumer/getSession/?uuid             the session -> JSON
 *   GET /consumer/remove/?uuid                 ends it (waits for its processing) -> JSON
 *   GET /consumer/list/                        {"sessions": {uuid: session, ...}}
 *   GET /consumer/health/                      OK
 *
 * The answers are the original's: JSON objects, or the plain texts "OK",
 * "ERROR", "Please supply a uuid", "Not a valid uuid", "Wrong mode
 * supplied, mode should be `batch` or `live`" — with a 4xx/5xx status
 * where the original said 200 to everything.  Unlike the original, a key
 * is needed (Authorization; a publisher adds one header), the queue is
 * durable, messages are acked only once stored, and a session's queue is
 * deleted when its processing ends.
 */
#include "api/app.h"
#include "api/run_wait.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SESSIONS_MAX 200
/* How long /process/?mode=batch and /remove/ may wait for the consumer. */
#define WAIT_EXTRA_MS (10LL * 60 * 1000)

static void text(http_req *r, int status, const char *body)
{
    http_reply_text(r, status, "text/plain; charset=utf-8", body);
}

static void session_reply(http_req *r, int status, const run_rec *run)
{
    app *a = http_req_app(r);
    http_reply_json(r, status, run_session_json(run, a->amqp_url.host));
}

/* The ?uuid= of the request; NULL when it is missing or malformed (a
 * reply is set). */
static const char *uuid_param(http_req *r)
{
    const char *uuid = http_req_query(r, "uuid");
    if (!uuid || !*uuid) text(r, 400, "Please supply a uuid");
    else if (!run_session_valid(uuid)) text(r, 404, "Not a valid uuid");
    else return uuid;
    return NULL;
}

static bool configured(http_req *r)
{
    app *a = http_req_app(r);
    if (a->runs_enabled) return true;
    text(r, 503, "ERROR: RabbitMQ is not configured on this server (--amqp-url)");
    return false;
}

/* Declares a queue on the broker: a short connection of its own, on the
 * work pool. */
static bool declare(http_req *r, const char *queue, bool remove, char *why, size_t cap)
{
    app *a = http_req_app(r);
    amqp_conn *c = amqp_conn_open(&a->amqp_url, 5000, false, why, cap);
    bool ok = c && (remove ? amqp_conn_delete_queue(c, queue, why, cap)
                           : amqp_conn_declare_queue(c, queue, RUN_QUEUE_EXPIRES_MS, why, cap));
    amqp_conn_close(c);
    return ok;
}

/* ---------- /create/ ---------- */

static void create_work(http_req *r)
{
    app *a = http_req_app(r);
    run_rec run = {.mode = RUN_LIVE, .timeout_s = 10};
    char why[256];
    if (!id_generate(run.id) || !run_session_generate(run.session)) {
        text(r, 500, "ERROR");
        return;
    }
    snprintf(run.owner, sizeof run.owner, "%s", http_req_owner(r));
    /* The queue first: the publisher may publish as soon as it has the id. */
    if (!declare(r, run.session, false, why, sizeof why)) {
        log_warn("consumer session: cannot declare its queue", "error", why, NULL);
        text(r, 503, "ERROR: RabbitMQ cannot be reached");
        return;
    }
    run.created_ms = time_now_ms();
    db_conn *c = db_acquire(a->db);
    bool ok = c && db_begin(c) == DB_OK && db_run_insert(c, &run) == DB_OK && db_commit(c) == DB_OK;
    if (c && !ok) db_rollback(c);
    db_release(a->db, c);
    if (!ok) {
        declare(r, run.session, true, why, sizeof why);
        text(r, 503, "ERROR");
        return;
    }
    hub_poke(a->hub);
    session_reply(r, 200, &run);
}

void consumer_create(http_req *r)
{
    if (configured(r)) http_req_defer(r, create_work);
}

/* ---------- /process/ ---------- */

static void processed(http_req *r, const char *run_id, const run_rec *run)
{
    (void)run_id;
    if (!run) text(r, 202, "OK: still processing");
    else if (run->state == RUN_SUCCEEDED) text(r, 200, "OK");
    else text(r, 503, "ERROR");
}

static void process_work(http_req *r)
{
    app *a = http_req_app(r);
    const char *uuid = uuid_param(r);
    if (!uuid) return;
    const char *mode = http_req_query(r, "mode");
    run_rec settings;
    const char *why;
    if (mode && strcmp(mode, "live") != 0 && strcmp(mode, "batch") != 0) {
        text(r, 400, "Wrong mode supplied, mode should be `batch` or `live`");
        return;
    }
    const char *timeout = http_req_query(r, "timeout");
    if (!run_parse_settings(mode, timeout && *timeout ? timeout : "10", NULL, &settings, &why)) {
        text(r, 400, why);
        return;
    }
    run_rec run;
    db_conn *c = db_acquire(a->db);
    db_status st = DB_ERROR;
    if (c && db_begin(c) == DB_OK)
        st = db_end(c, db_run_process(c, http_req_owner(r), uuid, settings.mode,
                                      settings.timeout_s, time_now_ms(), &run));
    db_release(a->db, c);
    if (st == DB_NOT_FOUND) {
        text(r, 404, "Not a valid uuid");
        return;
    }
    if (st != DB_OK) {
        text(r, 503, "ERROR");
        return;
    }
    hub_poke(a->hub);
    /* live: the consumer goes on by itself; batch: answer when it is done */
    if (run.mode == RUN_LIVE ||
        !run_waiters_add(a->run_waiters, r, run.owner, run.id,
                         time_now_ms() + (int64_t)run.timeout_s * 1000 + WAIT_EXTRA_MS,
                         processed))
        text(r, 200, "OK");
}

void consumer_process(http_req *r)
{
    if (configured(r)) http_req_defer(r, process_work);
}

/* ---------- /getSession/, /list/ ---------- */

static bool load(http_req *r, const char *uuid, run_rec *out)
{
    app *a = http_req_app(r);
    db_conn *c = db_acquire(a->db);
    db_status st = c ? db_run_by_session(c, http_req_owner(r), uuid, out) : DB_ERROR;
    db_release(a->db, c);
    if (st == DB_NOT_FOUND) text(r, 404, "Not a valid uuid");
    else if (st != DB_OK) text(r, 503, "ERROR");
    return st == DB_OK;
}

void consumer_get(http_req *r)
{
    const char *uuid = uuid_param(r);
    run_rec run;
    if (uuid && load(r, uuid, &run)) session_reply(r, 200, &run);
}

void consumer_list(http_req *r)
{
    app *a = http_req_app(r);
    run_rec *runs = calloc(SESSIONS_MAX, sizeof *runs);
    int n = 0;
    db_conn *c = runs ? db_acquire(a->db) : NULL;
    db_status st = c ? db_run_sessions(c, http_req_owner(r), SESSIONS_MAX, runs, &n) : DB_ERROR;
    db_release(a->db, c);
    if (st != DB_OK) {
        free(runs);
        text(r, 503, "ERROR");
        return;
    }
    json_t *sessions = json_object();
    for (int i = 0; i < n; i++)
        json_object_set_new(sessions, runs[i].session, run_session_json(&runs[i], a->amqp_url.host));
    free(runs);
    http_reply_json(r, 200, json_pack("{s:o}", "sessions", sessions));
}

/* ---------- /remove/ ---------- */

/* Takes the session off the list, deleting the queue of one never
 * processed (a processed one's went with its run).  Replies. */
static void close_session(http_req *r, const char *uuid)
{
    app *a = http_req_app(r);
    run_rec run;
    if (!load(r, uuid, &run)) return;
    char why[256];
    if (run.state == RUN_OPEN && !declare(r, uuid, true, why, sizeof why))
        log_warn("consumer session: queue not deleted (it expires by itself)", "error", why, NULL);
    db_conn *c = db_acquire(a->db);
    db_status st = DB_ERROR;
    if (c && db_begin(c) == DB_OK)
        st = db_end(c,
                    db_run_close_session(c, http_req_owner(r), uuid, time_now_ms(), &run));
    db_release(a->db, c);
    if (st == DB_OK) {
        hub_poke(a->hub);
        session_reply(r, 200, &run);
    } else {
        text(r, st == DB_NOT_FOUND ? 404 : 503, "ERROR");
    }
}

static void removed_after_wait(http_req *r, const char *run_id, const run_rec *run)
{
    (void)run_id;
    if (!run) text(r, 503, "ERROR: the session is still processing");
    else close_session(r, run->session);
}

static void remove_work(http_req *r)
{
    app *a = http_req_app(r);
    const char *uuid = uuid_param(r);
    run_rec run;
    if (!uuid || !load(r, uuid, &run)) return;
    /* As the original: a session being processed is removed once done. */
    if (run.state == RUN_CONSUMING || run.state == RUN_QUEUED || run.state == RUN_PUBLISHING) {
        if (!run_waiters_add(a->run_waiters, r, run.owner, run.id,
                             time_now_ms() + (int64_t)run.timeout_s * 1000 + WAIT_EXTRA_MS,
                             removed_after_wait))
            text(r, 503, "ERROR: too many requests are waiting");
        return;
    }
    close_session(r, uuid);
}

void consumer_remove(http_req *r)
{
    if (configured(r)) http_req_defer(r, remove_work);
}

void consumer_health(http_req *r) { text(r, 200, "OK"); }
