/* runs.c — /v1/runs: CSV runs (core/run.h; worker side queue/runs.h), and
 * /v1/people, the table they fill.
 *
 *   POST /v1/runs              multipart: `file` (a CSV) or `asset_id` (one
 *                              uploaded before), `mode` live|batch,
 *                              `timeout` idle seconds, `clear` -> 202 run
 *   GET  /v1/runs              the owner's runs, newest first
 *   GET  /v1/runs/{id}         state, counts, timings
 *   GET  /v1/runs/{id}/report  JSON, or HTML when Accept asks for text/html
 *   POST /v1/runs/{id}/cancel  stops it (failed, cancelled); 409 if finished
 *   GET  /v1/people            the owner's table, by e-mail (?after=&limit=)
 *
 * Everything a run needs is checked before anything is stored, published
 * or cleared: the settings, then the file (text, within --max-upload); the
 * run, the clearing of the table and the CSV's asset commit in one
 * transaction (the upload's, through ingest's `extra`), so a refused run
 * leaves nothing.  Without --amqp-url the run routes answer 503 and say
 * what to configure.
 */
#include "api/app.h"
#include "util/parse.h"
#include "util/timefmt.h"
#include "web/run_report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LIST_DEFAULT 50
#define LIST_MAX 200
#define PEOPLE_DEFAULT 100
#define PEOPLE_MAX 1000

static void reply_db_error(http_req *r)
{
    http_reply_error(r, 503, "database_unavailable", "try again");
}

bool runs_configured(http_req *r)
{
    app *a = http_req_app(r);
    if (a->runs_enabled) return true;
    http_reply_error(r, 503, "amqp_not_configured",
                     "CSV runs need RabbitMQ: start assetd with --amqp-url "
                     "amqp://USER:PASSWORD@HOST:PORT/VHOST (or ASSETD_AMQP_URL)");
    return false;
}

/* ---------- POST /v1/runs (and the publish form's POST /simulate/) ---------- */

bool runs_create_begin(http_req *r)
{
    if (!runs_configured(r)) return false;
    const char *type = http_req_header(r, "Content-Type");
    if (!type || strncasecmp(type, "multipart/form-data", 19) != 0) {
        http_reply_error(r, 400, "invalid_multipart", "send multipart/form-data: a part `file` "
                                                      "(or `asset_id`), and mode, timeout, clear");
        return false;
    }
    return assets_create_begin(r);
}

static void fail(run_start *out, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(run_start *out, int status, const char *code, const char *fmt, ...)
{
    out->status = status;
    snprintf(out->code, sizeof out->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof out->message, fmt, ap);
    va_end(ap);
}

/* A form field, or the query parameter of the same name (the original
 * publisher took timeout and mode in its query string). */
static const char *setting(http_req *r, const char *name, bool *too_long)
{
    const char *v = assets_upload_field(r, name, too_long);
    return v ? v : http_req_query(r, name);
}

/* The form's settings and source; false with out's error set. */
static bool read_form(http_req *r, run_start *out)
{
    run_rec *run = &out->run;
    bool long_mode, long_timeout, long_clear, long_id;
    const char *mode = setting(r, "mode", &long_mode);
    const char *timeout = setting(r, "timeout", &long_timeout);
    const char *clear = setting(r, "clear", &long_clear);
    const char *asset_id = assets_upload_field(r, "asset_id", &long_id);
    const char *why = NULL;
    if (long_mode) why = "Wrong mode supplied, options are `live` and `batch`";
    else if (long_timeout) why = "Wrong timeout value supplied, timeout must be an int";
    else if (long_clear) why = "clear must be true or false";
    if (why || !run_parse_settings(mode, timeout, clear, run, &why)) {
        fail(out, 400, "invalid_setting", "%s", why);
        return false;
    }
    bool has_file = assets_upload_has_file(r);
    bool has_id = asset_id && *asset_id;
    if (has_file && has_id) {
        fail(out, 400, "invalid_source", "send a file or an asset_id, not both");
        return false;
    }
    if (!has_file && !has_id) {
        fail(out, 400, "missing_file", "Please supply a csv file to process");
        return false;
    }
    if (has_id && (long_id || strlen(asset_id) != ID_LEN)) {
        fail(out, 404, "not_found", "no such asset");
        return false;
    }
    if (has_id) memcpy(run->asset_id, asset_id, ID_LEN + 1);
    if (!id_generate(run->id)) {
        fail(out, 500, "internal", "cannot generate an id");
        return false;
    }
    snprintf(run->owner, sizeof run->owner, "%s", http_req_owner(r));
    return true;
}

/* A CSV is text: libmagic calls it text/plain, text/csv, or application/csv. */
static bool is_text(const char *type)
{
    return strncmp(type, "text/", 5) == 0 || strcmp(type, "application/csv") == 0;
}

static db_status insert_run(db_conn *c, run_rec *run)
{
    run->created_ms = time_now_ms();
    return db_run_insert(c, run);
}

/* ingest's extra: inside the transaction that records the CSV's asset. */
static db_status make_run(db_conn *c, const asset *as, void *arg)
{
    run_start *out = arg;
    if (as->size == 0 || !is_text(as->content_type)) {
        if (as->size == 0) fail(out, 415, "not_csv", "the file is empty: send a CSV of name,e-mail rows");
        else fail(out, 415, "not_csv", "the file is not text (its bytes say %s): send a CSV",
                  as->content_type);
        return DB_NOT_FOUND;
    }
    memcpy(out->run.asset_id, as->id, sizeof out->run.asset_id);
    return insert_run(c, &out->run);
}

/* The run on an asset uploaded before: the owner's, text. */
static void start_from_asset(http_req *r, run_start *out)
{
    app *a = http_req_app(r);
    db_conn *c = db_acquire(a->db);
    asset as;
    db_status st = c ? db_asset_get(c, http_req_owner(r), out->run.asset_id, &as) : DB_ERROR;
    if (st == DB_OK && (as.size == 0 || !is_text(as.content_type))) {
        db_release(a->db, c);
        fail(out, 415, "not_csv", "asset %s is not text (%s): name a CSV", as.id, as.content_type);
        return;
    }
    if (st == DB_OK) {
        st = db_begin(c) == DB_OK && insert_run(c, &out->run) == DB_OK && db_commit(c) == DB_OK
                 ? DB_OK : DB_ERROR;
        if (st != DB_OK) db_rollback(c);
    }
    db_release(a->db, c);
    if (st == DB_NOT_FOUND) fail(out, 404, "not_found", "no such asset");
    else if (st != DB_OK) fail(out, 503, "database_unavailable", "try again");
    else out->status = 202;
}

void runs_start(http_req *r, run_start *out)
{
    memset(out, 0, sizeof *out);
    if (!read_form(r, out)) return;
    if (out->run.asset_id[0]) {
        start_from_asset(r, out);
    } else {
        asset as;
        if (assets_upload_store(r, make_run, out, &as)) {
            out->status = 202;
        } else if (!out->status) {
            /* The upload machinery replied (413, 507, 503): say it our way. */
            int status = http_req_reply_status(r);
            http_reply_discard(r);
            if (status == 413) fail(out, 413, "payload_too_large", "the CSV is over this server's upload limit (--max-upload)");
            else if (status == 507) fail(out, 507, "insufficient_storage", "the server has no room for the CSV");
            else fail(out, status ? status : 503, "storage_failed", "the CSV could not be stored");
        }
    }
    if (out->status == 202) {
        app *a = http_req_app(r);
        hub_poke(a->hub);
    }
}

static void create_work(http_req *r)
{
    run_start *out = malloc(sizeof *out);
    if (!out) {
        http_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    runs_start(r, out);
    if (out->status == 202) {
        char location[64];
        snprintf(location, sizeof location, "/v1/runs/%s", out->run.id);
        http_reply_json(r, 202, run_to_json(&out->run));
        http_reply_header(r, "Location", location);
    } else {
        http_reply_error(r, out->status, out->code, "%s", out->message);
    }
    free(out);
}

void runs_create(http_req *r)
{
    if (assets_upload_form_done(r)) http_req_defer(r, create_work);
}

/* ---------- reading ---------- */

/* A run id is an id (util/encode.h); anything else names no run and never
 * reaches the database (PostgreSQL refuses text that is not UTF-8). */
static bool load(http_req *r, run_rec *out)
{
    app *a = http_req_app(r);
    if (!id_is_valid(http_req_param(r, 0))) {
        http_reply_error(r, 404, "not_found", "no such run");
        return false;
    }
    db_conn *c = db_acquire(a->db);
    db_status st = c ? db_run_get(c, http_req_owner(r), http_req_param(r, 0), out) : DB_ERROR;
    db_release(a->db, c);
    if (st == DB_NOT_FOUND) http_reply_error(r, 404, "not_found", "no such run");
    else if (st != DB_OK) reply_db_error(r);
    return st == DB_OK;
}

void runs_get(http_req *r)
{
    run_rec run;
    if (load(r, &run)) http_reply_json(r, 200, run_to_json(&run));
}

static bool wants_html(http_req *r)
{
    const char *accept = http_req_header(r, "Accept");
    return accept && strstr(accept, "text/html") &&
           (!strstr(accept, "application/json") ||
            strstr(accept, "text/html") < strstr(accept, "application/json"));
}

void runs_report(http_req *r)
{
    run_rec run;
    if (!load(r, &run)) return;
    if (!wants_html(r)) {
        http_reply_json(r, 200, run_report_json(&run, time_now_ms()));
        return;
    }
    char *html = run_report_html(&run, time_now_ms());
    if (!html) {
        http_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    http_reply_text(r, 200, "text/html; charset=utf-8", html);
    web_page_headers(r);
    free(html);
}

void runs_list(http_req *r)
{
    app *a = http_req_app(r);
    uint64_t limit = LIST_DEFAULT;
    const char *l = http_req_query(r, "limit");
    if (l && (!parse_u64(l, &limit) || limit < 1 || limit > LIST_MAX)) {
        http_reply_error(r, 400, "invalid_limit", "limit must be from 1 to %d", LIST_MAX);
        return;
    }
    run_rec *runs = calloc(limit, sizeof *runs);
    if (!runs) {
        http_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    int n = 0;
    db_conn *c = db_acquire(a->db);
    db_status st = c ? db_run_list(c, http_req_owner(r), 0, (int)limit, runs, &n) : DB_ERROR;
    db_release(a->db, c);
    if (st != DB_OK) {
        free(runs);
        reply_db_error(r);
        return;
    }
    json_t *items = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(items, run_to_json(&runs[i]));
    free(runs);
    http_reply_json(r, 200, json_pack("{s:o}", "runs", items));
}

/* ---------- POST /v1/runs/{id}/cancel ---------- */

static void cancel_work(http_req *r)
{
    app *a = http_req_app(r);
    run_rec run;
    db_conn *c = db_acquire(a->db);
    db_status st = DB_ERROR;
    if (c && db_begin(c) == DB_OK)
        st = db_end(c, db_run_cancel(c, http_req_owner(r), http_req_param(r, 0), time_now_ms(),
                                     &run));
    /* Not cancellable: unknown (404), or there and finished already (409). */
    bool finished = st == DB_NOT_FOUND &&
                    db_run_get(c, http_req_owner(r), http_req_param(r, 0), &run) == DB_OK;
    db_release(a->db, c);
    if (st == DB_OK) {
        hub_poke(a->hub);
        http_reply_json(r, 202, run_to_json(&run));
    } else if (finished) {
        http_reply_error(r, 409, "run_finished", "the run has already %s",
                         run.state == RUN_SUCCEEDED ? "succeeded" : "failed");
    } else if (st == DB_NOT_FOUND) {
        http_reply_error(r, 404, "not_found", "no such run");
    } else {
        reply_db_error(r);
    }
}

void runs_cancel(http_req *r)
{
    if (!id_is_valid(http_req_param(r, 0))) http_reply_error(r, 404, "not_found", "no such run");
    else http_req_defer(r, cancel_work);
}

/* ---------- GET /v1/people ---------- */

static void person_json(void *arg, const db_person *p)
{
    json_array_append_new(arg, json_pack("{s:s%, s:s%, s:s, s:I}", "mail", p->email,
                                         p->email_len, "name", p->name, p->name_len, "run_id",
                                         p->run_id, "line", (json_int_t)p->line));
}

void people_list(http_req *r)
{
    app *a = http_req_app(r);
    uint64_t limit = PEOPLE_DEFAULT;
    const char *l = http_req_query(r, "limit");
    if (l && (!parse_u64(l, &limit) || limit < 1 || limit > PEOPLE_MAX)) {
        http_reply_error(r, 400, "invalid_limit", "limit must be from 1 to %d", PEOPLE_MAX);
        return;
    }
    json_t *items = json_array();
    int n = 0;
    int64_t total = 0;
    db_conn *c = db_acquire(a->db);
    db_status st = c ? db_people_list(c, http_req_owner(r), http_req_query(r, "after"),
                                      (int)limit, person_json, items, &n)
                     : DB_ERROR;
    if (st == DB_OK) st = db_people_count(c, http_req_owner(r), &total);
    db_release(a->db, c);
    if (st != DB_OK) {
        json_decref(items);
        reply_db_error(r);
        return;
    }
    json_t *last = json_array_get(items, json_array_size(items) - 1);
    json_t *next = (uint64_t)n == limit && last ? json_object_get(last, "mail") : NULL;
    http_reply_json(r, 200, json_pack("{s:o, s:I, s:O?}", "people", items, "count",
                                      (json_int_t)total, "next_after", next));
}
