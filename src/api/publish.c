/* publish.c — the original publisher's pages, kept (promise-pub):
 *
 *   GET  /publish     its form: timeout, mode, clear, input_file (the page
 *                     asks for the API key, as the gallery does; web/)
 *   POST /simulate/   the form's target: runs the CSV (a run of /v1/runs)
 *                     and answers when it has ended, with the report page
 *
 * The original answered 200 to everything, errors included; here an error
 * keeps the original's message and gets its status: 400 for a form it
 * cannot use ("Please supply a csv file to process", "Wrong mode supplied,
 * options are `live` and `batch`", "Wrong timeout value supplied, timeout
 * must be an int"), 503 when RabbitMQ is not configured or unreachable.
 * The original took timeout and mode from the query string; form fields
 * work too.  A client that sends Accept: application/json gets the same
 * outcomes as JSON (the run's report, or an error), which is what the page
 * uses: it renders text, never HTML (its CSP allows no HTML sink).
 *
 * The request waits for the run without holding a thread (run_wait.h).
 */
#include "api/app.h"
#include "api/run_wait.h"
#include "util/timefmt.h"
#include "web/run_report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* How long the form's request may wait past the run's idle timeout; then
 * it answers with a link to the report and the run goes on. */
#define WAIT_EXTRA_MS (10LL * 60 * 1000)

/* Sends html (freed here) with the page headers; NULL: out of memory. */
static void send_html(http_req *r, int status, char *html)
{
    if (!html) {
        http_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    http_reply_text(r, status, "text/html; charset=utf-8", html);
    web_page_headers(r);
    free(html);
}

static bool wants_json(http_req *r)
{
    const char *accept = http_req_header(r, "Accept");
    return accept && strstr(accept, "application/json");
}

/* Every page this file sends, HTML unless the client asked for JSON. */
static void reply_page(http_req *r, int status, const char *code, const char *message,
                       const char *link)
{
    if (wants_json(r)) {
        http_reply_error(r, status, code, "%s", message);
        return;
    }
    send_html(r, status, run_message_html(status < 300 ? "Run going on" : "Error", message, link));
}

/* The shared upload machinery replied with a JSON error: the same status,
 * as a page (unless the client wants JSON). */
static void as_page(http_req *r)
{
    if (wants_json(r)) return;
    int status = http_req_reply_status(r);
    http_reply_discard(r);
    reply_page(r, status, "", status == 413 ? "The CSV is over this server's upload limit."
                              : status == 400 ? "The form is malformed or cut short."
                                              : "The CSV could not be stored; try again.",
               NULL);
}

bool publish_simulate_begin(http_req *r)
{
    app *a = http_req_app(r);
    if (!a->runs_enabled) {
        reply_page(r, 503, "amqp_not_configured",
                   "RabbitMQ is not configured on this server: start assetd with --amqp-url "
                   "amqp://USER:PASSWORD@HOST:PORT/VHOST (or ASSETD_AMQP_URL)", NULL);
        return false;
    }
    const char *type = http_req_header(r, "Content-Type");
    if (!type || strncasecmp(type, "multipart/form-data", 19) != 0) {
        reply_page(r, 400, "missing_file", "Please supply a csv file to process", NULL);
        return false;
    }
    if (!assets_create_begin(r)) {
        as_page(r);
        return false;
    }
    assets_upload_file_part(r, "input_file");
    return true;
}

/* The status of a finished run's page: 200, or what its failure means. */
static int run_status(const run_rec *run)
{
    if (run->state == RUN_SUCCEEDED) return 200;
    const char *c = run->error_code;
    if (strcmp(c, "broker_unavailable") == 0 || strcmp(c, "broker_lost") == 0 ||
        strcmp(c, "database_unavailable") == 0)
        return 503;
    if (strcmp(c, "cancelled") == 0) return 409;
    if (strcmp(c, "source_deleted") == 0 || strcmp(c, "source_unreadable") == 0) return 422;
    return 500;
}

static void reply_finished(http_req *r, const char *run_id, const run_rec *run)
{
    if (!run) {
        /* the wait ended first: the server stops, or the run is long */
        char link[64];
        snprintf(link, sizeof link, "/v1/runs/%s/report", run_id);
        reply_page(r, 202, "run_going_on", "The run is still going on; its report will be here:",
                   link);
        return;
    }
    int status = run_status(run);
    if (wants_json(r)) {
        http_reply_json(r, status, run_report_json(run, time_now_ms()));
        return;
    }
    send_html(r, status, run_report_html(run, time_now_ms()));
}

static void simulate_work(http_req *r)
{
    app *a = http_req_app(r);
    run_start *out = malloc(sizeof *out);
    if (!out) {
        http_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    runs_start(r, out);
    if (out->status != 202) {
        reply_page(r, out->status, out->code, out->message, NULL);
    } else {
        int64_t deadline = time_now_ms() + (int64_t)out->run.timeout_s * 1000 + WAIT_EXTRA_MS;
        if (!run_waiters_add(a->run_waiters, r, out->run.owner, out->run.id, deadline,
                             reply_finished)) {
            char link[64];
            snprintf(link, sizeof link, "/v1/runs/%s/report", out->run.id);
            reply_page(r, 202, "run_going_on",
                       "The run has started; too many forms are waiting to wait for it here.",
                       link);
        }
    }
    free(out);
}

void publish_simulate(http_req *r)
{
    if (assets_upload_form_done(r)) http_req_defer(r, simulate_work);
    else as_page(r);
}
