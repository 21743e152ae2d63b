/* The job queue against a real SQLite database, with a test-driven clock. */
#include "test.h"
#include "db/db.h"
#include "queue/job.h"
#include "core/webhook.h"
#include "util/encode.h"
#include "util/timefmt.h"

#include <stdlib.h>
#include <unistd.h>

#define LEASE 30000

static db *open_tmp(char dir[64])
{
    snprintf(dir, 64, "/tmp/assetd-queue-XXXXXX");
    const char *err;
    return mkdtemp(dir) ? db_open(dir, NULL, &err) : NULL;
}

static void close_tmp(db *d, db_conn *c, const char *dir)
{
    db_release(d, c);
    db_close(d);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

TEST(queue_enqueue_is_idempotent_per_asset_and_type)
{
    char dir[64];
    db *d = open_tmp(dir);
    db_conn *c = db_acquire(d);
    job a, b, other;
    CHECK(db_job_enqueue(c, "asset1", "alice", "image", 3, 1000, &a) == DB_OK);
    CHECK(db_job_enqueue(c, "asset1", "alice", "image", 3, 2000, &b) == DB_OK);
    CHECK_STR(a.id, b.id);                        /* the same live job */
    CHECK(db_job_enqueue(c, "asset1", "alice", "pdf", 3, 2000, &other) == DB_OK);
    CHECK(strcmp(other.id, a.id) != 0);           /* another pipeline */
    CHECK(a.state == JOB_QUEUED && a.attempts == 0 && a.max_attempts == 3);
    close_tmp(d, c, dir);
}

TEST(queue_claim_lease_expiry_and_fencing)
{
    char dir[64];
    db *d = open_tmp(dir);
    db_conn *c = db_acquire(d);
    job q, first, second, none;
    db_job_enqueue(c, "asset1", "alice", "image", 3, 1000, &q);
    CHECK(db_job_claim(c, 1000, LEASE, &first) == DB_OK);
    CHECK(first.state == JOB_RUNNING && first.attempts == 1);
    CHECK(db_job_claim(c, 1001, LEASE, &none) == DB_NOT_FOUND);   /* leased */
    CHECK(db_job_heartbeat(c, &first, 20000, LEASE, 0.5) == DB_OK);
    CHECK(db_job_heartbeat(c, &first, 20000, LEASE, -1) == DB_OK);   /* keeps the progress */
    job seen;
    CHECK(db_job_get(c, "alice", first.id, &seen) == DB_OK && seen.progress == 0.5);
    CHECK(db_job_claim(c, 40000, LEASE, &none) == DB_NOT_FOUND);  /* renewed to 50000 */

    /* The worker goes silent: after the lease, another worker takes over. */
    CHECK(db_job_claim(c, 50001, LEASE, &second) == DB_OK);
    CHECK_STR(second.id, first.id);
    CHECK(second.attempts == 2 && second.fence > first.fence);
    /* The first worker wakes up: fenced out of everything. */
    CHECK(db_job_heartbeat(c, &first, 50002, LEASE, 0.9) == DB_NOT_FOUND);
    CHECK(db_job_complete(c, &first, 50002) == DB_NOT_FOUND);
    CHECK(db_job_fail(c, &first, "x", "y", true, 50002, 50002) == DB_NOT_FOUND);
    CHECK(db_job_complete(c, &second, 50003) == DB_OK);
    job got;
    CHECK(db_job_get(c, "alice", first.id, &got) == DB_OK);
    CHECK(got.state == JOB_SUCCEEDED && got.progress == 1.0 && got.finished[0]);
    CHECK(db_job_get(c, "bob", first.id, &got) == DB_NOT_FOUND);   /* owner-scoped */
    close_tmp(d, c, dir);
}

TEST(queue_retries_with_backoff_then_dead)
{
    char dir[64];
    db *d = open_tmp(dir);
    db_conn *c = db_acquire(d);
    job q, j, got;
    db_job_enqueue(c, "asset1", "alice", "image", 2, 0, &q);
    CHECK(db_job_claim(c, 0, LEASE, &j) == DB_OK);
    CHECK(db_job_fail(c, &j, "timeout", "took too long", true, 10, 5000) == DB_OK);
    CHECK(db_job_get(c, "alice", j.id, &got) == DB_OK && got.state == JOB_QUEUED);
    CHECK_STR(got.error_code, "timeout");                          /* kept */
    CHECK(db_job_claim(c, 4999, LEASE, &j) == DB_NOT_FOUND);      /* backing off */
    CHECK(db_job_claim(c, 5000, LEASE, &j) == DB_OK && j.attempts == 2);
    CHECK(db_job_fail(c, &j, "timeout", "again", true, 5010, 9000) == DB_OK);
    CHECK(db_job_get(c, "alice", j.id, &got) == DB_OK && got.state == JOB_DEAD);
    CHECK(db_job_claim(c, 100000, LEASE, &j) == DB_NOT_FOUND);

    /* A dead job can be retried by hand, once, with attempts reset. */
    CHECK(db_job_retry(c, "bob", got.id, 200000, &j) == DB_NOT_FOUND);
    CHECK(db_job_retry(c, "alice", got.id, 200000, &j) == DB_OK);
    CHECK(j.state == JOB_QUEUED && j.attempts == 0 && j.error_code[0] == '\0');
    CHECK(db_job_retry(c, "alice", got.id, 200000, &j) == DB_NOT_FOUND);  /* not failed now */
    close_tmp(d, c, dir);
}

TEST(queue_non_retryable_failure_and_crash_on_every_attempt)
{
    char dir[64];
    db *d = open_tmp(dir);
    db_conn *c = db_acquire(d);
    job q, j, got;
    db_job_enqueue(c, "bomb", "alice", "image", 3, 0, &q);
    CHECK(db_job_claim(c, 0, LEASE, &j) == DB_OK);
    CHECK(db_job_fail(c, &j, "image_too_large", "50000x50000", false, 1, 1) == DB_OK);
    CHECK(db_job_get(c, "alice", j.id, &got) == DB_OK && got.state == JOB_FAILED);
    CHECK(got.attempts == 1);                                      /* no retry */

    /* A worker that dies on every attempt: the lease expires three times,
     * then the job is dead instead of claimable a fourth time. */
    db_job_enqueue(c, "crasher", "alice", "image", 3, 0, &q);
    int64_t now = 0;
    for (int attempt = 1; attempt <= 3; attempt++) {
        CHECK(db_job_claim(c, now, LEASE, &j) == DB_OK && j.attempts == attempt);
        now += LEASE + 1;
    }
    CHECK(db_job_claim(c, now, LEASE, &j) == DB_NOT_FOUND);
    CHECK(db_job_get(c, "alice", q.id, &got) == DB_OK && got.state == JOB_DEAD);
    CHECK_STR(got.error_code, "worker_lost");
    close_tmp(d, c, dir);
}

TEST(queue_enqueue_rolls_back_with_its_transaction)
{
    char dir[64];
    db *d = open_tmp(dir);
    db_conn *c = db_acquire(d);
    job q, j;
    CHECK(db_begin(c) == DB_OK);
    CHECK(db_job_enqueue(c, "asset1", "alice", "image", 3, 0, &q) == DB_OK);
    db_rollback(c);                                   /* the state change failed */
    CHECK(db_job_claim(c, 0, LEASE, &j) == DB_NOT_FOUND);   /* no phantom job */
    CHECK(db_begin(c) == DB_OK);
    CHECK(db_job_enqueue(c, "asset1", "alice", "image", 3, 0, &q) == DB_OK);
    CHECK(db_commit(c) == DB_OK);
    CHECK(db_job_claim(c, 0, LEASE, &j) == DB_OK);
    close_tmp(d, c, dir);
}

TEST(backoff_schedule_is_exponential_capped_and_jittered)
{
    CHECK(job_backoff_ms(1, 1000, 60000, 0.0) == 500);
    CHECK(job_backoff_ms(1, 1000, 60000, 0.999999) == 999);
    CHECK(job_backoff_ms(2, 1000, 60000, 0.0) == 1000);
    CHECK(job_backoff_ms(3, 1000, 60000, 0.0) == 2000);
    CHECK(job_backoff_ms(7, 1000, 60000, 0.0) == 30000);   /* 64 s capped at 60 */
    CHECK(job_backoff_ms(50, 1000, 60000, 0.5) == 45000);  /* no overflow */
    for (int a = 1; a < 10; a++) {
        int64_t lo = job_backoff_ms(a, 1000, 60000, 0.0), hi = job_backoff_ms(a, 1000, 60000, 0.99);
        CHECK(lo < hi && hi <= 60000 && lo >= 500);
    }
}

TEST(job_json_has_the_api_fields)
{
    job j = {0};
    strcpy(j.id, "jjjjjjjjjjjjjjjjjjjjjj");
    strcpy(j.asset_id, "aaaaaaaaaaaaaaaaaaaaaa");
    strcpy(j.type, "image");
    strcpy(j.created, "2026-01-01T00:00:00.000Z");
    j.state = JOB_RUNNING;
    j.attempts = 1;
    j.max_attempts = 3;
    json_t *o = job_to_json(&j);
    CHECK_STR(json_string_value(json_object_get(o, "state")), "running");
    CHECK(json_is_null(json_object_get(o, "error")) && json_is_null(json_object_get(o, "started")));
    CHECK(json_integer_value(json_object_get(o, "max_attempts")) == 3);
    json_decref(o);
    strcpy(j.error_code, "timeout");
    strcpy(j.error_message, "over 60 s");
    o = job_to_json(&j);
    CHECK_STR(json_string_value(json_object_get(json_object_get(o, "error"), "code")), "timeout");
    json_decref(o);
}

TEST(queue_claim_many_takes_expired_leases_first_then_oldest_due)
{
    char dir[64];
    db *d = open_tmp(dir);
    db_conn *c = db_acquire(d);
    job q, stuck, got[4];
    int n = -1;
    char name[24];
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "asset%d", i);
        CHECK(db_job_enqueue(c, name, "alice", "noop", 3, 1000 + i, &q) == DB_OK);
    }
    CHECK(db_job_claim(c, 2000, LEASE, &stuck) == DB_OK);       /* asset0, lease to 32000 */
    CHECK_STR(stuck.asset_id, "asset0");
    /* A future job is not due yet. */
    CHECK(db_job_enqueue(c, "later", "alice", "noop", 3, 40000, &q) == DB_OK);

    CHECK(db_job_claim_many(c, 3000, LEASE, 3, got, &n) == DB_OK && n == 3);
    CHECK_STR(got[0].asset_id, "asset1");
    CHECK(got[0].state == JOB_RUNNING && got[2].state == JOB_RUNNING);
    CHECK(strcmp(got[0].id, got[1].id) && strcmp(got[1].id, got[2].id) &&
          strcmp(got[0].id, got[2].id));
    /* At 33000 asset0's lease has expired (the others run to 33000): it comes
     * back, with asset4. */
    CHECK(db_job_claim_many(c, 33000, LEASE, 4, got, &n) == DB_OK && n == 2);
    CHECK((!strcmp(got[0].asset_id, "asset0") && !strcmp(got[1].asset_id, "asset4")) ||
          (!strcmp(got[1].asset_id, "asset0") && !strcmp(got[0].asset_id, "asset4")));
    for (int i = 0; i < n; i++)
        if (!strcmp(got[i].asset_id, "asset0")) CHECK(got[i].attempts == 2 && got[i].fence > stuck.fence);
    CHECK(db_job_claim_many(c, 33000, LEASE, 4, got, &n) == DB_NOT_FOUND && n == 0);
    close_tmp(d, c, dir);
}

TEST(queue_complete_many_is_fenced_per_job)
{
    char dir[64];
    db *d = open_tmp(dir);
    db_conn *c = db_acquire(d);
    job q, got[3], again;
    int n = -1, done = -1;
    char name[24];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "asset%d", i);
        CHECK(db_job_enqueue(c, name, "alice", "noop", 3, 1000 + i, &q) == DB_OK);
    }
    CHECK(db_job_claim_many(c, 2000, LEASE, 3, got, &n) == DB_OK && n == 3);
    /* got[0]'s lease expires and another worker takes it: its old fence no
     * longer completes it, the other two still do. */
    CHECK(db_job_heartbeat(c, &got[1], 20000, LEASE, -1) == DB_OK);
    CHECK(db_job_heartbeat(c, &got[2], 20000, LEASE, -1) == DB_OK);
    CHECK(db_job_claim(c, 40000, LEASE, &again) == DB_OK);
    CHECK_STR(again.id, got[0].id);
    CHECK(db_job_complete_many(c, got, 3, 40001, &done) == DB_OK && done == 2);
    job seen;
    CHECK(db_job_get(c, "alice", got[0].id, &seen) == DB_OK && seen.state == JOB_RUNNING &&
          seen.fence == again.fence);
    CHECK(db_job_get(c, "alice", got[1].id, &seen) == DB_OK && seen.state == JOB_SUCCEEDED &&
          seen.progress == 1.0 && seen.finished[0]);
    CHECK(db_job_get(c, "alice", got[2].id, &seen) == DB_OK && seen.state == JOB_SUCCEEDED);
    /* Done jobs are not done twice; the new holder completes its own. */
    CHECK(db_job_complete_many(c, got, 3, 40002, &done) == DB_OK && done == 0);
    CHECK(db_job_complete_many(c, &again, 1, 40003, &done) == DB_OK && done == 1);
    CHECK(db_job_complete_many(c, got, 0, 40004, &done) == DB_OK && done == 0);
    close_tmp(d, c, dir);
}

TEST(job_list_is_per_owner_newest_first_and_filters)
{
    char dir[64];
    db *d = open_tmp(dir);
    db_conn *c = db_acquire(d);
    job j[4], running, out[8];
    int n = 0;
    CHECK(db_job_enqueue(c, "asset1", "alice", "image", 3, 1000, &j[0]) == DB_OK);
    CHECK(db_job_enqueue(c, "asset2", "alice", "image", 3, 2000, &j[1]) == DB_OK);
    CHECK(db_job_enqueue(c, "asset1", "alice", "pdf", 3, 3000, &j[2]) == DB_OK);
    CHECK(db_job_enqueue(c, "asset3", "bob", "image", 3, 4000, &j[3]) == DB_OK);
    CHECK(db_job_list(c, "alice", NULL, -1, 8, out, &n) == DB_OK && n == 3);
    CHECK(n == 3 && !strcmp(out[0].id, j[2].id) && !strcmp(out[1].id, j[1].id) &&
          !strcmp(out[2].id, j[0].id));   /* newest first, no one else's */
    CHECK(db_job_list(c, "alice", NULL, -1, 2, out, &n) == DB_OK && n == 2);   /* the limit */
    CHECK(db_job_list(c, "alice", "asset1", -1, 8, out, &n) == DB_OK && n == 2);
    CHECK(n == 2 && !strcmp(out[0].id, j[2].id) && !strcmp(out[1].id, j[0].id));
    CHECK(db_job_list(c, "bob", "asset1", -1, 8, out, &n) == DB_OK && n == 0);   /* not bob's */
    CHECK(db_job_claim(c, 5000, LEASE, &running) == DB_OK);   /* the oldest due: j[0] */
    CHECK(db_job_list(c, "alice", NULL, JOB_RUNNING, 8, out, &n) == DB_OK && n == 1);
    CHECK(n == 1 && !strcmp(out[0].id, running.id));
    CHECK(db_job_list(c, "alice", "asset2", JOB_RUNNING, 8, out, &n) == DB_OK && n == 0);
    close_tmp(d, c, dir);
}

static void collect_due(void *arg, const db_delivery_due *d)
{
    snprintf(arg, DELIVERY_ID_LEN + 1, "%s", d->id);
}

/* One delivery, of a new asset's asset.created event, to alice's endpoint. */
static void one_delivery(db_conn *c, int64_t now)
{
    asset a = {0};
    id_generate(a.id);
    strcpy(a.owner, "alice");
    strcpy(a.filename, "f.txt");
    strcpy(a.content_type, "text/plain");
    strcpy(a.sha256, "00");
    time_format_now(a.created);
    strcpy(a.updated, a.created);
    int created = 0;
    CHECK(db_begin(c) == DB_OK && db_asset_insert(c, &a) == DB_OK && db_commit(c) == DB_OK);
    CHECK(db_webhook_fan_in(c, now, 100, &created) == DB_OK && created == 1);
}

TEST(history_trim_removes_only_finished_jobs_and_deliveries_past_retention)
{
    char dir[64];
    db *d = open_tmp(dir);
    db_conn *c = db_acquire(d);
    job done, failed, queued, recent, j;
    CHECK(db_job_enqueue(c, "asset1", "alice", "image", 3, 1000, &done) == DB_OK);
    CHECK(db_job_claim(c, 1000, LEASE, &j) == DB_OK && db_job_complete(c, &j, 1500) == DB_OK);
    CHECK(db_job_enqueue(c, "asset2", "alice", "image", 3, 2000, &failed) == DB_OK);
    CHECK(db_job_claim(c, 2000, LEASE, &j) == DB_OK &&
          db_job_fail(c, &j, "corrupt_input", "no", false, 2500, 0) == DB_OK);
    CHECK(db_job_enqueue(c, "asset3", "alice", "image", 3, 3000, &queued) == DB_OK);
    CHECK(db_job_enqueue(c, "asset4", "alice", "image", 3, 9000, &recent) == DB_OK);

    webhook w;
    CHECK(webhook_init(&w, "alice", "https://example.com/h", "asset.created", 1000));
    CHECK(db_webhook_insert(c, &w) == DB_OK);
    int created = -1;   /* the first fan-in starts the cursor at the newest event */
    CHECK(db_webhook_fan_in(c, 1000, 100, &created) != DB_ERROR && created == 0);
    one_delivery(c, 1000);
    char due_id[DELIVERY_ID_LEN + 1] = "";
    int n = 0;
    CHECK(db_webhook_due(c, 1000, LEASE, 10, collect_due, due_id, &n) == DB_OK && n == 1);
    CHECK(db_webhook_delivery_done(c, due_id, w.id, DELIVERY_DELIVERED, 200, NULL, 0, 1200,
                                   NULL) == DB_OK);
    one_delivery(c, 1300);   /* still pending: kept however old */

    int64_t jobs = -1, deliveries = -1;
    /* batches of 1, at most 1 row of each per call: a backlog takes calls */
    CHECK(db_history_trim(c, 5000, 1, 1, &jobs, &deliveries) == DB_OK);
    CHECK(jobs == 1 && deliveries == 1);
    /* batches of 1: the loop goes round until nothing is left */
    CHECK(db_history_trim(c, 5000, 1, 100, &jobs, &deliveries) == DB_OK);
    CHECK(jobs == 1 && deliveries == 0);
    CHECK(db_job_get(c, "alice", done.id, &j) == DB_NOT_FOUND);
    CHECK(db_job_get(c, "alice", failed.id, &j) == DB_NOT_FOUND);
    CHECK(db_job_get(c, "alice", queued.id, &j) == DB_OK);    /* not finished */
    /* finished, but after the cutoff */
    CHECK(db_job_claim(c, 9000, LEASE, &j) == DB_OK);       /* the queued one (run_at 3000) */
    CHECK(db_job_complete(c, &j, 9100) == DB_OK);
    CHECK(db_job_claim(c, 9000, LEASE, &j) == DB_OK && db_job_complete(c, &j, 9100) == DB_OK);
    CHECK(db_history_trim(c, 5000, 1000, 100000, &jobs, &deliveries) == DB_OK);
    CHECK(jobs == 1 && deliveries == 0);                    /* run_at 3000 < 5000, 9000 is not */
    CHECK(db_job_get(c, "alice", recent.id, &j) == DB_OK);
    webhook_delivery left[4];
    CHECK(db_webhook_deliveries(c, "alice", w.id, 4, left, &n) == DB_OK && n == 1);
    CHECK(n == 1 && left[0].state == DELIVERY_PENDING);
    close_tmp(d, c, dir);
}
