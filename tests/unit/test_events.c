/* The event log: every asset state change appends its event in the same
 * transaction; ids are monotonic and survive trimming. */
#include "test.h"
#include "db/db.h"
#include "util/timefmt.h"

#include <jansson.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct seen {
    int n;
    int64_t ids[16];
    char types[16][32];
    char status[16][16];
} seen;

static void collect(void *arg, const db_event *e)
{
    seen *s = arg;
    if (s->n == 16) return;
    s->ids[s->n] = e->id;
    snprintf(s->types[s->n], sizeof s->types[0], "%s", e->type);
    json_t *data = json_loads(e->data_json, 0, NULL);
    snprintf(s->status[s->n], sizeof s->status[0], "%s",
             json_string_value(json_object_get(data, "status")));
    json_decref(data);
    s->n++;
}

static asset make_asset(const char *owner)
{
    asset a = {0};
    id_generate(a.id);
    snprintf(a.owner, sizeof a.owner, "%s", owner);
    a.kind = ASSET_IMAGE;
    strcpy(a.filename, "f.jpg");
    strcpy(a.content_type, "image/jpeg");
    strcpy(a.sha256, "00");
    time_format_now(a.created);
    strcpy(a.updated, a.created);
    return a;
}

TEST(events_follow_every_asset_state_change_in_order)
{
    char dir[] = "/tmp/assetd-events-XXXXXX";
    const char *err;
    db *d = mkdtemp(dir) ? db_open(dir, NULL, &err) : NULL;
    CHECK(d != NULL);
    db_conn *c = db_acquire(d);
    asset a = make_asset("alice"), b = make_asset("bob");
    int64_t now = time_now_ms();
    CHECK(db_begin(c) == DB_OK && db_asset_insert(c, &a) == DB_OK &&
          db_asset_insert(c, &b) == DB_OK && db_commit(c) == DB_OK);
    CHECK(db_begin(c) == DB_OK && db_asset_set_processing(c, a.id, now) == DB_OK &&
          db_commit(c) == DB_OK);
    CHECK(db_begin(c) == DB_OK &&
          db_asset_set_ready(c, a.id, "[]", "{\"width\":1,\"height\":1}", now) == DB_OK &&
          db_commit(c) == DB_OK);
    /* Rolled back: neither the change nor its event exists. */
    CHECK(db_begin(c) == DB_OK && db_asset_set_failed(c, a.id, "x", "y", now) == DB_OK);
    db_rollback(c);
    CHECK(db_begin(c) == DB_OK && db_asset_delete(c, "alice", a.id) == DB_OK &&
          db_commit(c) == DB_OK);

    seen s = {0};
    int n;
    CHECK(db_events_after(c, 0, "alice", NULL, 100, collect, &s, &n) == DB_OK && n == 4);
    CHECK_STR(s.types[0], "asset.created");
    CHECK_STR(s.status[0], "uploaded");
    CHECK_STR(s.types[1], "asset.processing");
    CHECK_STR(s.types[2], "asset.ready");
    CHECK_STR(s.status[2], "ready");
    CHECK_STR(s.types[3], "asset.deleted");
    CHECK(s.ids[0] < s.ids[1] && s.ids[1] < s.ids[2] && s.ids[2] < s.ids[3]);

    /* Resuming after an id gives exactly the rest; filters by owner/asset. */
    seen rest = {0};
    CHECK(db_events_after(c, s.ids[1], "alice", NULL, 100, collect, &rest, &n) == DB_OK && n == 2);
    CHECK(rest.ids[0] == s.ids[2]);
    seen bobs = {0};
    CHECK(db_events_after(c, 0, NULL, b.id, 100, collect, &bobs, &n) == DB_OK && n == 1);
    CHECK_STR(bobs.types[0], "asset.created");

    /* Trimming keeps the ids: the newest stays, the oldest moves on. */
    int64_t oldest, newest, removed;
    CHECK(db_events_bounds(c, &oldest, &newest) == DB_OK && oldest == s.ids[0] && newest >= s.ids[3]);
    CHECK(db_events_trim(c, time_now_ms() + 1000, &removed) == DB_OK && removed == 5);
    CHECK(db_events_bounds(c, &oldest, &newest) == DB_OK && newest >= s.ids[3] && oldest == newest + 1);
    asset again = make_asset("alice");
    CHECK(db_begin(c) == DB_OK && db_asset_insert(c, &again) == DB_OK && db_commit(c) == DB_OK);
    seen after = {0};
    CHECK(db_events_after(c, 0, "alice", NULL, 100, collect, &after, &n) == DB_OK && n == 1);
    CHECK(after.ids[0] > newest);   /* never reused */

    db_release(d, c);
    db_close(d);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

TEST(events_trim_removes_a_prefix_of_ids_never_a_hole)
{
    char dir[] = "/tmp/assetd-events-XXXXXX";
    const char *err;
    db *d = mkdtemp(dir) ? db_open(dir, NULL, &err) : NULL;
    CHECK(d != NULL);
    db_conn *c = db_acquire(d);
    /* Writers stamp `at` before they commit, so times can run backwards. */
    const int64_t at[] = {100, 300, 50, 400};
    CHECK(db_begin(c) == DB_OK);
    for (int i = 0; i < 4; i++) CHECK(db_event_append(c, "t", "a", "o", at[i], "{}") == DB_OK);
    CHECK(db_commit(c) == DB_OK);
    int64_t removed, oldest, newest;
    CHECK(db_events_trim(c, 150, &removed) == DB_OK && removed == 1);   /* id 3 (at 50) stays */
    CHECK(db_events_bounds(c, &oldest, &newest) == DB_OK && oldest == 2 && newest == 4);
    CHECK(db_events_trim(c, 1000, &removed) == DB_OK && removed == 3);
    CHECK(db_events_bounds(c, &oldest, &newest) == DB_OK && oldest == 5 && newest == 4);
    db_release(d, c);
    db_close(d);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}
