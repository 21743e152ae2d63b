/* jobs.c — /v1/jobs: what the background workers are doing with your assets.
 * Owner-scoped like assets: another owner's job answers 404. */
#include "api/app.h"
#include "core/cover.h"
#include "util/timefmt.h"

#include <stdlib.h>
#include <string.h>

#define JOB_LIST_MAX 100

static void reply_db_error(http_req *r)
{
    http_reply_error(r, 503, "database_unavailable", "try again");
}

void jobs_get(http_req *r)
{
    app *a = http_req_app(r);
    const char *id = http_req_param(r, 0);
    job j;
    db_status st = DB_NOT_FOUND;
    if (id_is_valid(id)) {
        db_conn *c = db_acquire(a->db);
        st = c ? db_job_get(c, http_req_owner(r), id, &j) : DB_ERROR;
        db_release(a->db, c);
    }
    if (st == DB_OK) http_reply_json(r, 200, job_to_json(&j));
    else if (st == DB_NOT_FOUND) http_reply_error(r, 404, "not_found", "no such job");
    else reply_db_error(r);
}

void jobs_list(http_req *r)
{
    app *a = http_req_app(r);
    const char *asset_id = http_req_query(r, "asset");
    const char *state_name = http_req_query(r, "state");
    job_state state;
    int limit;
    if (!query_limit(r, JOB_LIST_MAX, JOB_LIST_MAX, &limit)) return;
    if (state_name && !job_state_parse(state_name, &state)) {
        http_reply_error(r, 400, "invalid_parameter",
                         "state must be queued, running, succeeded, failed or dead");
        return;
    }
    if (asset_id && !id_is_valid(asset_id)) {
        http_reply_error(r, 400, "invalid_parameter", "asset must be an asset id");
        return;
    }
    job *rows = malloc(sizeof *rows * (size_t)limit);
    db_conn *c = rows ? db_acquire(a->db) : NULL;
    int n = 0;
    db_status st = c ? db_job_list(c, http_req_owner(r), asset_id, state_name ? (int)state : -1,
                                   limit, rows, &n)
                     : DB_ERROR;
    db_release(a->db, c);
    if (st != DB_OK) {
        free(rows);
        reply_db_error(r);
        return;
    }
    json_t *items = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(items, job_to_json(&rows[i]));
    free(rows);
    http_reply_json(r, 200, json_pack("{s:o}", "items", items));
}

static void retry_work(http_req *r)
{
    app *a = http_req_app(r);
    job j;
    db_conn *c = db_acquire(a->db);
    int64_t now = time_now_ms();
    /* The asset goes back to processing with the job, in one transaction
     * (a cover job's: its cover, not the video). */
    db_status st = c && db_begin(c) == DB_OK
                       ? db_job_retry(c, http_req_owner(r), http_req_param(r, 0), now, &j)
                       : DB_ERROR;
    bool cover = st == DB_OK && strcmp(j.type, COVER_JOB) == 0;
    db_status asset_st = st != DB_OK ? DB_OK
                         : cover     ? cover_retried(c, j.asset_id, now)
                                     : db_asset_set_processing(c, j.asset_id, now);
    if (st == DB_OK && (asset_st != DB_OK || db_commit(c) != DB_OK)) st = DB_ERROR;
    if (st != DB_OK && c) db_rollback(c);
    if (asset_st == DB_NOT_FOUND) {
        db_release(a->db, c);
        http_reply_error(r, 409, "not_retryable", "the job's asset has been deleted");
        return;
    }
    if (st == DB_NOT_FOUND && c && db_job_get(c, http_req_owner(r), http_req_param(r, 0), &j) == DB_OK) {
        db_release(a->db, c);
        http_reply_error(r, 409, "not_retryable", "the job is %s; only failed or dead jobs "
                         "can be retried", job_state_name(j.state));
        return;
    }
    db_release(a->db, c);
    if (st == DB_OK) {
        hub_poke(a->hub);
        http_reply_json(r, 200, job_to_json(&j));
    } else if (st == DB_NOT_FOUND) http_reply_error(r, 404, "not_found", "no such job");
    else reply_db_error(r);
}

void jobs_retry(http_req *r)
{
    if (!id_is_valid(http_req_param(r, 0))) {
        http_reply_error(r, 404, "not_found", "no such job");
        return;
    }
    http_req_defer(r, retry_work);
}
