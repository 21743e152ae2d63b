/* Store, database and ingest against a real temporary directory. */
#include "test.h"
#include "core/ingest.h"
#include "db/db.h"
#include "store/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *make_tmpdir(void)
{
    static char dir[64];
    snprintf(dir, sizeof dir, "/tmp/assetd-unit-XXXXXX");
    return mkdtemp(dir);
}

static void rm_rf(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static bool never_live(const char *key, void *arg) { return false; }
static bool always_live(const char *key, void *arg) { return true; }

TEST(store_commit_abort_and_sweep)
{
    char *dir = make_tmpdir();
    const char *err;
    store *s = store_fs_open(dir, &err);
    CHECK(s != NULL);
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);

    char key[ID_LEN + 1];
    id_generate(key);
    store_upload *u = store_upload_begin(s, key);
    CHECK(store_upload_write(u, "hello", 5));
    CHECK(count_files(tmp) == 1);
    int fd;
    uint64_t size;
    CHECK(!store_open(s, key, &fd, &size));   /* invisible until the commit */
    store_upload_abort(u);
    CHECK(count_files(tmp) == 0);

    u = store_upload_begin(s, key);
    CHECK(store_upload_write(u, "hello", 5));
    CHECK(store_upload_commit(u));
    CHECK(store_open(s, key, &fd, &size) && size == 5);
    close(fd);

    /* A crash mid-upload leaves a temp file; a crash before the row commit
     * leaves an unreferenced blob.  The sweep keeps live blobs... */
    char other[ID_LEN + 1];
    id_generate(other);
    u = store_upload_begin(s, other);
    store_upload_write(u, "partial", 7);
    CHECK(store_sweep(s, always_live, NULL) == 1);   /* the temp file only */
    CHECK(store_open(s, key, &fd, &size));
    close(fd);
    /* ...and removes dead ones. */
    CHECK(store_sweep(s, never_live, NULL) == 1);
    CHECK(!store_open(s, key, &fd, &size));
    store_upload_abort(u);   /* its file is already gone: must not fail */

    CHECK(!store_upload_begin(s, "../../escape"));
    CHECK(count_files(tmp) == 0);
    store_close(s);
    rm_rf(dir);
}

static asset sample(const char *owner, asset_kind kind)
{
    asset a = {0};
    id_generate(a.id);
    snprintf(a.owner, sizeof a.owner, "%s", owner);
    a.kind = kind;
    a.status = STATUS_UPLOADED;
    strcpy(a.filename, "f.bin");
    strcpy(a.content_type, "application/octet-stream");
    strcpy(a.sha256, "00");
    strcpy(a.created, "2026-01-01T00:00:00.000Z");
    strcpy(a.updated, a.created);
    return a;
}

/* Keys that are not ours are refused before anything is written, and the
 * refusals leave the blobs already there alone. */
TEST(store_refuses_bad_keys_and_keeps_other_blobs)
{
    char *dir = make_tmpdir();
    const char *err;
    store *s = store_fs_open(dir, &err);
    char id[ID_LEN + 1], key[ID_LEN + 8];
    id_generate(id);
    snprintf(key, sizeof key, "%s.thumb", id);
    store_upload *u = store_upload_begin(s, key);
    CHECK(u && store_upload_write(u, "kept", 4) && store_upload_commit(u));
    const char *bad[] = {"../../etc/passwd", "short", "", NULL};
    for (int i = 0; i < 4; i++) CHECK(!store_upload_begin(s, bad[i]));
    /* A rendition name the store refuses (presets cannot produce it). */
    char dashed[ID_LEN + 8];
    snprintf(dashed, sizeof dashed, "%s.sq-1", id);
    CHECK(!store_upload_begin(s, dashed));
    CHECK(!store_put(s, dashed, "x", 1));
    int fd;
    uint64_t size;
    CHECK(store_open(s, key, &fd, &size) && size == 4);
    if (size == 4) close(fd);
    store_close(s);
    rm_rf(dir);
}

TEST(db_assets_are_owner_scoped_and_paged)
{
    char *dir = make_tmpdir();
    const char *err;
    db *d = db_open(dir, NULL, &err);
    CHECK(d != NULL);
    db_conn *c = db_acquire(d);
    asset made[10];
    /* A state change outside a transaction is refused (its event could not
     * commit with it). */
    made[0] = sample("alice", ASSET_IMAGE);
    CHECK(db_asset_insert(c, &made[0]) == DB_ERROR);
    CHECK(db_begin(c) == DB_OK);
    for (int i = 0; i < 10; i++) {
        made[i] = sample(i % 2 ? "bob" : "alice", i < 4 ? ASSET_IMAGE : ASSET_PDF);
        CHECK(db_asset_insert(c, &made[i]) == DB_OK && made[i].seq > 0);
    }
    CHECK(db_commit(c) == DB_OK);
    asset got;
    CHECK(db_asset_get(c, "alice", made[0].id, &got) == DB_OK);
    CHECK_STR(got.id, made[0].id);
    CHECK(db_asset_get(c, "bob", made[0].id, &got) == DB_NOT_FOUND);

    /* alice owns 0,2,4,6,8: pages of two, newest first, no gaps. */
    asset page[3];
    int n;
    asset_filter f = {0};
    CHECK(db_asset_list(c, "alice", &f, 2, page, &n) == DB_OK && n == 2);
    CHECK_STR(page[0].id, made[8].id);
    CHECK_STR(page[1].id, made[6].id);
    f.before_seq = page[1].seq;
    CHECK(db_asset_list(c, "alice", &f, 2, page, &n) == DB_OK && n == 2);
    CHECK_STR(page[0].id, made[4].id);
    f.before_seq = page[1].seq;
    CHECK(db_asset_list(c, "alice", &f, 2, page, &n) == DB_OK && n == 1);
    CHECK_STR(page[0].id, made[0].id);

    asset_filter images = {.by_kind = true, .kind = ASSET_IMAGE};
    CHECK(db_asset_list(c, "alice", &images, 3, page, &n) == DB_OK && n == 2);

    CHECK(db_begin(c) == DB_OK);
    CHECK(db_asset_delete(c, "bob", made[0].id) == DB_NOT_FOUND);
    CHECK(db_asset_delete(c, "alice", made[0].id) == DB_OK);
    CHECK(db_asset_delete(c, "alice", made[0].id) == DB_NOT_FOUND);
    CHECK(db_commit(c) == DB_OK);
    CHECK(db_asset_id_exists(c, made[0].id) == DB_NOT_FOUND);
    CHECK(db_asset_id_exists(c, made[1].id) == DB_OK);
    db_release(d, c);
    db_close(d);

    /* Reopening runs no migration twice and keeps the data. */
    d = db_open(dir, NULL, &err);
    c = db_acquire(d);
    CHECK(db_asset_get(c, "bob", made[1].id, &got) == DB_OK);
    db_release(d, c);
    db_close(d);
    rm_rf(dir);
}

TEST(db_keys_hash_lookup_and_revoke)
{
    char *dir = make_tmpdir();
    const char *err;
    db *d = db_open(dir, NULL, &err);
    db_conn *c = db_acquire(d);
    apikey k = {0}, got;
    strcpy(k.id, "key_aaaaaaaaaaaaaaaa");
    strcpy(k.name, "ci");
    strcpy(k.owner, "team");
    strcpy(k.created, "2026-01-01T00:00:00.000Z");
    int64_t count;
    CHECK(db_key_count(c, &count) == DB_OK && count == 0);
    CHECK(db_key_insert(c, &k, "hash1") == DB_OK);
    CHECK(db_key_count(c, &count) == DB_OK && count == 1);
    CHECK(db_key_find_active(c, "hash1", &got) == DB_OK);
    CHECK_STR(got.owner, "team");
    CHECK(db_key_find_active(c, "hash2", &got) == DB_NOT_FOUND);
    CHECK(db_key_revoke(c, k.id) == DB_OK);
    CHECK(db_key_find_active(c, "hash1", &got) == DB_NOT_FOUND);
    CHECK(db_key_revoke(c, "key_missing") == DB_NOT_FOUND);
    db_release(d, c);
    db_close(d);
    rm_rf(dir);
}

TEST(ingest_hashes_limits_and_commits)
{
    char *dir = make_tmpdir();
    const char *err;
    store *s = store_fs_open(dir, &err);
    db *d = db_open(dir, NULL, &err);
    db_conn *c = db_acquire(d);
    sniffer *sn = sniffer_new();
    CHECK(sn != NULL);

    ingest *in = ingest_begin(s, 10);
    CHECK(ingest_write(in, "0123456789", 10) == INGEST_OK);
    CHECK(ingest_write(in, "x", 1) == INGEST_TOO_LARGE);
    ingest_abort(in);

    in = ingest_begin(s, 1000);
    CHECK(ingest_write(in, "ab", 2) == INGEST_OK && ingest_write(in, "c", 1) == INGEST_OK);
    asset a;
    CHECK(ingest_finish(in, sn, c, "alice", &(ingest_claim){.filename = "../x.txt", .content_type = ""}, &a) == INGEST_OK);
    CHECK_STR(a.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK_STR(a.filename, "x.txt");
    CHECK_STR(a.content_type, "text/plain");
    CHECK(a.kind == ASSET_OTHER && a.size == 3);
    asset got;
    CHECK(db_asset_get(c, "alice", a.id, &got) == DB_OK && got.size == 3);
    int fd;
    uint64_t size;
    CHECK(store_open(s, a.id, &fd, &size) && size == 3);
    close(fd);

    /* A PNG signature is an image whatever the name says. */
    in = ingest_begin(s, 1000);
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                                        0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 1, 0, 0, 0, 1,
                                        8, 6, 0, 0, 0};
    ingest_write(in, png, sizeof png);
    CHECK(ingest_finish(in, sn, c, "alice", &(ingest_claim){.filename = "notes.txt", .content_type = "text/plain"}, &a) == INGEST_OK);
    CHECK_STR(a.content_type, "image/png");
    CHECK(a.kind == ASSET_IMAGE && a.status == STATUS_UPLOADED);

    /* Bytes that are not an image, claimed to be one by name or by type:
     * recorded as failed, and no job is queued for them. */
    const ingest_claim liars[] = {{.filename = "photo.JPG", .content_type = ""},
                                  {.filename = "blob", .content_type = "image/png"}};
    for (int i = 0; i < 2; i++) {
        in = ingest_begin(s, 1000);
        ingest_write(in, "plain words, not pixels\n", 24);
        CHECK(ingest_finish(in, sn, c, "alice", &liars[i], &a) == INGEST_OK);
        CHECK(a.kind == ASSET_OTHER && a.status == STATUS_FAILED);
        CHECK_STR(a.error_code, "unsupported_format");
        CHECK(db_asset_get(c, "alice", a.id, &got) == DB_OK && got.status == STATUS_FAILED);
        CHECK_STR(got.error_code, "unsupported_format");
        job jobs[2];
        int n = 0;
        CHECK(db_job_list(c, "alice", a.id, -1, 2, jobs, &n) == DB_OK && n == 0);
    }

    sniffer_free(sn);
    db_release(d, c);
    db_close(d);
    store_close(s);
    rm_rf(dir);
}

TEST(asset_kinds_from_mime)
{
    CHECK(asset_kind_from_mime("image/heic") == ASSET_IMAGE);
    CHECK(asset_kind_from_mime("video/mp4") == ASSET_VIDEO);
    CHECK(asset_kind_from_mime("application/pdf") == ASSET_PDF);
    CHECK(asset_kind_from_mime(
              "application/vnd.openxmlformats-officedocument.presentationml.presentation") ==
          ASSET_PRESENTATION);
    CHECK(asset_kind_from_mime("application/vnd.oasis.opendocument.presentation") ==
          ASSET_PRESENTATION);
    CHECK(asset_kind_from_mime("text/html") == ASSET_OTHER);
}

typedef struct collected {
    char buf[64];
    size_t n;
} collected;

static bool collect(void *arg, const void *data, size_t len)
{
    collected *c = arg;
    if (c->n + len > sizeof c->buf) return false;
    memcpy(c->buf + c->n, data, len);
    c->n += len;
    return true;
}

/* store_read streams exactly the asked range; store_read_head stops at the
 * end of a short blob; both refuse keys that are not ours. */
TEST(store_reads_ranges_and_heads)
{
    char *dir = make_tmpdir();
    const char *err;
    store *s = store_fs_open(dir, &err);
    char key[ID_LEN + 1];
    id_generate(key);
    CHECK(store_put(s, key, "0123456789", 10));
    collected c = {.n = 0};
    CHECK(store_read(s, key, 2, 5, collect, &c) && c.n == 4 && memcmp(c.buf, "2345", 4) == 0);
    c.n = 0;
    CHECK(store_read(s, key, 9, 9, collect, &c) && c.n == 1 && c.buf[0] == '9');
    c.n = 0;
    CHECK(!store_read(s, key, 5, 10, collect, &c));   /* past the end */
    CHECK(!store_read(s, key, 5, 4, collect, &c));    /* empty range */
    CHECK(!store_read(s, "../x", 0, 1, collect, &c));
    char head[32];
    size_t n = 0;
    CHECK(store_read_head(s, key, head, sizeof head, &n) && n == 10);
    CHECK(store_read_head(s, key, head, 4, &n) && n == 4 && memcmp(head, "0123", 4) == 0);
    CHECK(!store_read_head(s, "nope", head, 4, &n));
    store_close(s);
    rm_rf(dir);
}

static bool live_if_first_char_a(const char *key, void *arg) { return key[0] == 'A'; }

/* Orphaned tus bytes (DATA/tus/<id>.part that nothing names) go at start-up,
 * but only once they are older than the safety margin; named ones stay. */
TEST(store_sweep_removes_old_orphaned_append_files_only)
{
    char *dir = make_tmpdir();
    const char *err;
    store *s = store_fs_open(dir, &err);
    char live[ID_LEN + 1], old[ID_LEN + 1], young[ID_LEN + 1], path[512];
    id_generate(live);
    live[0] = 'A';
    do id_generate(old); while (old[0] == 'A');
    do id_generate(young); while (young[0] == 'A');
    const char *ids[] = {live, old, young};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/tus/%s.part", dir, ids[i]);
        FILE *f = fopen(path, "w");
        CHECK(f != NULL);
        if (f) { fputs("bytes", f); fclose(f); }
        if (i < 2) {   /* two hours old */
            struct timespec t[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
            CHECK(utimensat(AT_FDCWD, path, t, 0) == 0);
        }
    }
    CHECK(store_sweep(s, live_if_first_char_a, NULL) == 1);
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/tus/%s.part", dir, ids[i]);
        CHECK((access(path, F_OK) == 0) == (i != 1));
    }
    store_close(s);
    rm_rf(dir);
}
