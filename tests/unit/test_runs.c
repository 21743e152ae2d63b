/* CSV runs: settings, the message format, and the runs/people tables on a
 * real SQLite database with a test-driven clock — the invariants run.h
 * promises, broken on purpose (a redelivered batch, a worker fenced out). */
#include "test.h"
#include "core/run.h"
#include "db/db.h"
#include "util/encode.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LEASE 30000

TEST(runs_settings_are_checked_like_the_original_form)
{
    run_rec r;
    const char *why = NULL;
    CHECK(run_parse_settings(NULL, NULL, NULL, &r, &why));
    CHECK(r.mode == RUN_LIVE && r.timeout_s == 5 && !r.clear);
    CHECK(run_parse_settings("batch", "0", "on", &r, &why));
    CHECK(r.mode == RUN_BATCH && r.timeout_s == 0 && r.clear);
    CHECK(run_parse_settings("live", "3600", "false", &r, &why) && r.timeout_s == 3600 && !r.clear);
    CHECK(!run_parse_settings("stream", NULL, NULL, &r, &why));
    CHECK_STR(why, "Wrong mode supplied, options are `live` and `batch`");
    const char *bad_timeouts[] = {"abc", "-1", "1.5", " 3", "3601", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad_timeouts / sizeof *bad_timeouts; i++) {
        why = NULL;
        CHECK(!run_parse_settings(NULL, bad_timeouts[i], NULL, &r, &why));
        CHECK(why != NULL);
    }
    CHECK(!run_parse_settings(NULL, NULL, "maybe", &r, &why));
}

TEST(runs_message_round_trips_every_byte)
{
    const char *names[] = {"Ann O'Neil", "Doe, Jane", "Bob \"Bobby\" Tables", "Zoë Ångström",
                           "Robert'); DROP TABLE people;--", "", "Multi\nLine", "Tab\tName"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        size_t len;
        char *body = run_message_encode(names[i], strlen(names[i]), "a@example.com", 13, &len);
        CHECK(body != NULL);
        char name[64], mail[64];
        CHECK(run_message_decode(body, len, name, sizeof name, mail, sizeof mail));
        CHECK_STR(name, names[i]);
        CHECK_STR(mail, "a@example.com");
        free(body);
    }
    CHECK(run_message_encode("\xff", 1, "m", 1, &(size_t){0}) == NULL);   /* not UTF-8 */
    char name[8], mail[8];
    CHECK(!run_message_decode("{\"name\":\"x\"}", 12, name, sizeof name, mail, sizeof mail));
    CHECK(!run_message_decode("{\"name\":\"a\\u0000b\",\"mail\":\"m\"}", 30, name, sizeof name,
                              mail, sizeof mail));
    CHECK(!run_message_decode("{\"name\":\"much too long\",\"mail\":\"m\"}", 36, name,
                              sizeof name, mail, sizeof mail));
}

static db *open_tmp(char dir[64])
{
    snprintf(dir, 64, "/tmp/assetd-runs-XXXXXX");
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

static void new_run(db_conn *c, const char *owner, bool clear, int64_t now, run_rec *out)
{
    memset(out, 0, sizeof *out);
    CHECK(id_generate(out->id));
    snprintf(out->owner, sizeof out->owner, "%s", owner);
    snprintf(out->asset_id, sizeof out->asset_id, "csvcsvcsvcsvcsvcsvcsv");
    out->clear = clear;
    out->created_ms = now;
    CHECK(db_begin(c) == DB_OK && db_run_insert(c, out) == DB_OK && db_commit(c) == DB_OK);
}

static db_status store_batch(db_conn *c, run_rec *r, const run_row *rows, int n, int64_t now)
{
    if (db_begin(c) != DB_OK) return DB_ERROR;
    db_status st = db_run_store_rows(c, r, rows, n, false, now);
    if (st == DB_OK) return db_commit(c);
    db_rollback(c);
    return st;
}

TEST(runs_a_redelivered_batch_counts_nothing_and_the_first_mail_wins)
{
    char dir[64];
    db *d = open_tmp(dir);
    db_conn *c = db_acquire(d);
    run_rec r, claimed;
    new_run(c, "alice", false, 1000, &r);
    CHECK(db_run_claim(c, 2000, LEASE, &claimed) == DB_OK);
    CHECK_STR(claimed.id, r.id);
    CHECK(claimed.state == RUN_PUBLISHING && claimed.attempts == 1 && claimed.started_ms == 2000);
    run_row batch[] = {{"Ann", "ann@x", 1}, {"Bob", "bob@x", 2}, {"Ann Again", "ann@x", 3}};
    CHECK(store_batch(c, &claimed, batch, 3, 3000) == DB_OK);
    CHECK(claimed.n.received == 3 && claimed.n.saved == 2 && claimed.n.duplicates == 1);
    CHECK(claimed.last_message_ms == 3000);
    /* The consumer died before its ack: the broker delivers the batch
     * again, with one new row.  Only the new row counts. */
    run_row again[] = {{"Ann", "ann@x", 1}, {"Cy", "cy@x", 4}, {"Ann Again", "ann@x", 3}};
    CHECK(store_batch(c, &claimed, again, 3, 4000) == DB_OK);
    CHECK(claimed.n.received == 4 && claimed.n.saved == 3 && claimed.n.duplicates == 1);
    /* Another run of the same owner meets the same table. */
    run_rec other, other_claimed;
    new_run(c, "alice", false, 1500, &other);
    CHECK(db_run_claim(c, 5000, LEASE, &other_claimed) == DB_OK);
    run_row mine[] = {{"Bob Two", "bob@x", 1}};
    CHECK(store_batch(c, &other_claimed, mine, 1, 5000) == DB_OK);
    CHECK(other_claimed.n.saved == 0 && other_claimed.n.duplicates == 1);
    int64_t count = 0;
    CHECK(db_people_count(c, "alice", &count) == DB_OK && count == 3);
    CHECK(db_people_count(c, "bob", &count) == DB_OK && count == 0);
    /* Finishing counts the table and drops the run's line memory. */
    claimed.state = RUN_SUCCEEDED;
    CHECK(db_begin(c) == DB_OK && db_run_finish(c, &claimed, 6000) == DB_OK &&
          db_commit(c) == DB_OK);
    CHECK(claimed.table_count == 3 && claimed.finished_ms == 6000);
    close_tmp(d, c, dir);
}

TEST(runs_a_worker_fenced_out_writes_nothing_and_dead_runs_fail)
{
    char dir[64];
    db *d = open_tmp(dir);
    db_conn *c = db_acquire(d);
    run_rec r, first, second, none;
    new_run(c, "alice", false, 1000, &r);
    CHECK(db_run_claim(c, 2000, LEASE, &first) == DB_OK);
    CHECK(db_run_claim(c, 2001, LEASE, &none) == DB_NOT_FOUND);   /* leased */
    /* The first worker stops answering; after its lease another takes over. */
    CHECK(db_run_claim(c, 2000 + LEASE + 1, LEASE, &second) == DB_OK);
    CHECK(second.fence == first.fence + 1 && second.attempts == 2);
    CHECK(second.state == RUN_PUBLISHING && second.started_ms == 2000);   /* not restarted */
    run_row row[] = {{"Ann", "ann@x", 1}};
    CHECK(store_batch(c, &first, row, 1, 40000) == DB_NOT_FOUND);
    bool cancel;
    CHECK(db_run_renew(c, &first, 99999, &cancel) == DB_NOT_FOUND);
    first.n.sent = 99;
    CHECK(db_begin(c) == DB_OK);
    CHECK(db_run_save_publisher(c, &first, false, 40000) == DB_NOT_FOUND);
    db_rollback(c);
    int64_t count = -1;
    CHECK(db_people_count(c, "alice", &count) == DB_OK && count == 0);
    /* The owner cancels: the holder reads the flag at its next renewal. */
    run_rec cancelled;
    CHECK(db_begin(c) == DB_OK && db_run_cancel(c, "alice", r.id, 40000, &cancelled) == DB_OK &&
          db_commit(c) == DB_OK);
    CHECK(cancelled.state == RUN_PUBLISHING && cancelled.cancel);
    CHECK(db_run_renew(c, &second, 50000, &cancel) == DB_OK && cancel);
    CHECK(db_begin(c) == DB_OK);
    CHECK(db_run_cancel(c, "bob", r.id, 40000, &cancelled) == DB_NOT_FOUND);   /* not bob's */
    db_rollback(c);
    /* Workers that die on every attempt: the run fails instead of looping. */
    int64_t now = 50000;
    run_rec last;
    for (int i = 2; i < RUN_MAX_ATTEMPTS; i++) {
        now += LEASE + 1;
        CHECK(db_run_claim(c, now, LEASE, &last) == DB_OK);
    }
    now += LEASE + 1;
    CHECK(db_run_claim(c, now, LEASE, &none) == DB_NOT_FOUND);
    run_rec dead;
    CHECK(db_run_get(c, "alice", r.id, &dead) == DB_OK);
    CHECK(dead.state == RUN_FAILED);
    CHECK_STR(dead.error_code, "worker_lost");
    /* A queued run is cancelled at once. */
    run_rec q;
    new_run(c, "alice", false, now, &q);
    CHECK(db_begin(c) == DB_OK && db_run_cancel(c, "alice", q.id, now, &cancelled) == DB_OK &&
          db_commit(c) == DB_OK);
    CHECK(cancelled.state == RUN_FAILED);
    CHECK_STR(cancelled.error_code, "cancelled");
    close_tmp(d, c, dir);
}

TEST(runs_clear_empties_only_the_owners_table)
{
    char dir[64];
    db *d = open_tmp(dir);
    db_conn *c = db_acquire(d);
    run_rec a, b, claimed;
    new_run(c, "alice", false, 1000, &a);
    new_run(c, "bob", false, 1001, &b);
    run_row row[] = {{"X", "x@x", 1}};
    CHECK(db_run_claim(c, 2000, LEASE, &claimed) == DB_OK);
    CHECK(store_batch(c, &claimed, row, 1, 2000) == DB_OK);
    CHECK(db_run_claim(c, 2000, LEASE, &claimed) == DB_OK);
    CHECK(store_batch(c, &claimed, row, 1, 2000) == DB_OK);
    run_rec again;
    new_run(c, "alice", true, 3000, &again);
    int64_t n;
    CHECK(db_people_count(c, "alice", &n) == DB_OK && n == 0);
    CHECK(db_people_count(c, "bob", &n) == DB_OK && n == 1);
    close_tmp(d, c, dir);
}

TEST(runs_consumer_sessions_open_process_close)
{
    char uuid[RUN_SESSION_LEN + 1];
    CHECK(run_session_generate(uuid) && run_session_valid(uuid));
    CHECK(uuid[14] == '4');                                   /* version 4 */
    CHECK(!run_session_valid("3f0e") && !run_session_valid("../../../../etc/passwd-aaaaaaaaaaaaa"));
    CHECK(!run_session_valid("3F0E0000-0000-4000-8000-000000000000"));   /* the original's are lower case */
    char dir[64];
    db *d = open_tmp(dir);
    db_conn *c = db_acquire(d);
    run_rec s = {0}, out, none;
    CHECK(id_generate(s.id));
    snprintf(s.owner, sizeof s.owner, "alice");
    memcpy(s.session, uuid, sizeof uuid);
    s.created_ms = 1000;
    CHECK(db_begin(c) == DB_OK && db_run_insert(c, &s) == DB_OK && db_commit(c) == DB_OK);
    CHECK(s.state == RUN_OPEN && s.session_open);
    CHECK(db_run_claim(c, 2000, LEASE, &none) == DB_NOT_FOUND);   /* open: not a worker's yet */
    CHECK(db_run_by_session(c, "bob", uuid, &out) == DB_NOT_FOUND);
    CHECK(db_begin(c) == DB_OK);
    CHECK(db_run_process(c, "alice", uuid, RUN_BATCH, 3, 2000, &out) == DB_OK);
    CHECK(db_commit(c) == DB_OK);
    CHECK(out.state == RUN_CONSUMING && out.mode == RUN_BATCH && out.timeout_s == 3);
    CHECK(db_begin(c) == DB_OK);
    CHECK(db_run_process(c, "alice", uuid, RUN_LIVE, 3, 2000, &out) == DB_NOT_FOUND);   /* once */
    CHECK(db_run_close_session(c, "alice", uuid, 2500, &out) == DB_NOT_FOUND);   /* consuming */
    db_rollback(c);
    run_rec claimed;
    CHECK(db_run_claim(c, 3000, LEASE, &claimed) == DB_OK && claimed.state == RUN_CONSUMING);
    /* another publisher's messages carry no line: each is stored */
    run_row rows[] = {{"Ann", "ann@x", 0}, {"Ann", "ann@x", 0}};
    CHECK(store_batch(c, &claimed, rows, 2, 3500) == DB_OK);
    CHECK(claimed.n.received == 2 && claimed.n.saved == 1 && claimed.n.duplicates == 1);
    claimed.state = RUN_SUCCEEDED;
    CHECK(db_begin(c) == DB_OK && db_run_finish(c, &claimed, 4000) == DB_OK && db_commit(c) == DB_OK);
    CHECK(db_begin(c) == DB_OK && db_run_close_session(c, "alice", uuid, 5000, &out) == DB_OK &&
          db_commit(c) == DB_OK);
    CHECK(!out.session_open && out.finished_ms == 4000);
    CHECK(db_run_by_session(c, "alice", uuid, &out) == DB_NOT_FOUND);
    close_tmp(d, c, dir);
}
