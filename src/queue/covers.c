/* covers.c — the cover pipeline: an owner's cover image (core/cover.h)
 * becomes the five 16:9 sizes of image_cover_presets, in place of the
 * ones the video pipeline made from a frame.
 *
 * A job renders the record's latest version, not the one that queued it:
 * a cover sent while a job is live gets no job of its own (one live job
 * per asset and type, queue/job.h), so the live one must find it.  It
 * checks the decoded size (COVER_MIN_WIDTH x COVER_MIN_HEIGHT as shown,
 * EXIF orientation applied: the API's header check could not be sure of
 * every format), writes the sizes under names carrying the version, and
 * commits them only if that version is still the latest, in the
 * transaction that completes the job; otherwise it drops them and renders
 * the newer one (COVER_ROUNDS times at most, then it fails retryably and
 * runs again after a backoff).  The video's status is never touched
 * (worker.c skips asset.processing for cover jobs), and a failure is the
 * record's, not the asset's (pipeline_cover_failed).
 *
 * Blobs: the source ("coversrc_V") goes once its sizes are committed; the
 * sizes of the version they replace go then too.  A crash in between
 * leaves blobs of a live asset, removed with it.
 */
#include "queue/pipeline.h"
#include "core/cover.h"
#include "core/ingest.h"
#include "media/image.h"
#include "util/log.h"
#include "util/timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COVER_ROUNDS 3

typedef struct cover_run {
    worker *w;
    const job *j;
    char version[COVER_VERSION_LEN + 1];
    json_t *sizes;
} cover_run;

static uint64_t version_number(const char *version) { return strtoull(version, NULL, 16) + 1; }

static bool store_size(void *arg, const image_preset *p, const void *data, size_t len,
                       int width, int height, const char *content_type)
{
    cover_run *cr = arg;
    char name[IMAGE_PRESET_NAME_MAX + COVER_VERSION_LEN + 2], url[ID_LEN + 96];
    snprintf(name, sizeof name, "%s_%s", p->name, cr->version);
    if (!pipeline_store(cr->w, cr->j->asset_id, name, data, len)) return false;
    /* a new cover is a new URL: caches keep the old one for a year */
    snprintf(url, sizeof url, "/v1/assets/%s/renditions/%s?v=%s", cr->j->asset_id, p->name,
             cr->version);
    json_array_append_new(cr->sizes,
                          json_pack("{s:s, s:s, s:i, s:i, s:I, s:s, s:s}", "name", p->name,
                                    "content_type", content_type, "width", width, "height",
                                    height, "size", (json_int_t)len, "url", url, "version",
                                    cr->version));
    return true;
}

static void remove_blob(worker *w, const char *asset_id, const char *name, const char *version)
{
    char key[ID_LEN + 64];   /* names are short: the store refuses anything else */
    snprintf(key, sizeof key, "%.22s.%.24s%.12s", asset_id, name, version);
    store_remove(w->store, key);
}

static void remove_sizes(worker *w, const char *asset_id, const char *version)
{
    for (int i = 0; i < IMAGE_COVER_PRESETS; i++) {
        char name[IMAGE_PRESET_NAME_MAX + 3];
        snprintf(name, sizeof name, "%.32s_", image_cover_presets[i].name);
        remove_blob(w, asset_id, name, version);
    }
}

/* Completes the job with nothing to commit (the asset is gone, or its
 * latest cover is made). */
static void finish(worker *w, const job *j)
{
    db_conn *c = db_acquire(w->db);
    bool ok = c && db_begin(c) == DB_OK && db_job_complete(c, j, time_now_ms()) == DB_OK &&
              db_commit(c) == DB_OK;
    if (!ok && c) db_rollback(c);
    db_release(w->db, c);
}

typedef enum { COMMITTED, SUPERSEDED, GONE, LOST } commit_result;

/* The sizes become the record's, if their version is still the latest. */
static commit_result commit(cover_run *cr, char replaced[COVER_VERSION_LEN + 1])
{
    worker *w = cr->w;
    asset *a = malloc(sizeof *a);
    db_conn *c = a ? db_acquire(w->db) : NULL;
    char latest[COVER_VERSION_LEN + 1], next[ASSET_COVER_JSON_MAX + 1];
    bool ready;
    int64_t now = time_now_ms();
    commit_result res = LOST;
    replaced[0] = '\0';
    db_status st = c && db_begin(c) == DB_OK ? db_asset_get_any(c, cr->j->asset_id, a) : DB_ERROR;
    if (st == DB_NOT_FOUND) {
        res = db_job_complete(c, cr->j, now) == DB_OK && db_commit(c) == DB_OK ? GONE : LOST;
    } else if (st == DB_OK && cover_latest(a->cover, latest, &ready) &&
               strcmp(latest, cr->version) != 0) {
        res = SUPERSEDED;
    } else if (st == DB_OK) {
        if (!cover_ready_version(a->cover, replaced)) replaced[0] = '\0';
        if (cover_record_ready(cr->version, cr->sizes, next, sizeof next) &&
            db_asset_set_cover(c, cr->j->asset_id, next, now) == DB_OK &&
            db_job_complete(c, cr->j, now) == DB_OK && db_commit(c) == DB_OK)
            res = COMMITTED;
    }
    if (res != COMMITTED && res != GONE && c) db_rollback(c);
    db_release(w->db, c);
    free(a);
    return res;
}

/* One round: renders version; false with the job's failure recorded. */
static bool render(cover_run *cr, int fd)
{
    worker *w = cr->w;
    char err[512] = "";
    int width = 0, height = 0;
    image_status st = image_size(fd, w->cfg->max_pixels, &width, &height, err, sizeof err);
    if (st == IMAGE_OK && (width < COVER_MIN_WIDTH || height < COVER_MIN_HEIGHT)) {
        snprintf(err, sizeof err, "the cover is %dx%d as shown; a cover must be at least %dx%d",
                 width, height, COVER_MIN_WIDTH, COVER_MIN_HEIGHT);
        pipeline_fail(w, cr->j, "cover_too_small", err, false);
        return false;
    }
    if (st == IMAGE_OK && lseek(fd, 0, SEEK_SET) != 0) st = IMAGE_OUTPUT_FAILED;
    if (st == IMAGE_OK)
        st = image_render(fd, image_cover_presets, IMAGE_COVER_PRESETS, w->cfg->max_pixels,
                          store_size, cr, &width, &height, err, sizeof err);
    if (st != IMAGE_OK) {
        remove_sizes(w, cr->j->asset_id, cr->version);
        pipeline_fail(w, cr->j, pipeline_image_error(st), err[0] ? err : "cannot store the cover",
                      st == IMAGE_OUTPUT_FAILED);
    }
    return st == IMAGE_OK;
}

/* One round on the record's latest version: true when the job is over
 * (done, failed, or lost), false to read the record again. */
static bool round_on_latest(cover_run *cr, asset *a, bool last)
{
    worker *w = cr->w;
    const job *j = cr->j;
    db_conn *c = db_acquire(w->db);
    db_status st = c ? db_asset_get_any(c, j->asset_id, a) : DB_ERROR;
    db_release(w->db, c);
    bool ready;
    if (st == DB_ERROR) {
        pipeline_fail(w, j, "database_unavailable", "cannot read the asset", true);
        return true;
    }
    if (st == DB_NOT_FOUND || !cover_latest(a->cover, cr->version, &ready) || ready) {
        finish(w, j);   /* deleted, or nothing left to make */
        return true;
    }
    atomic_store(&w->cover_version, version_number(cr->version));
    char key[ID_LEN + 40];
    int fd;
    uint64_t size;
    cover_source_key(j->asset_id, cr->version, key, sizeof key);
    if (!store_fetch(w->store, key, &fd, &size)) {
        /* a newer cover removed this one's image: read the record again */
        if (!last) return false;
        pipeline_fetch_failed(w, j, "the cover image is gone");
        return true;
    }
    cr->sizes = json_array();
    bool made = render(cr, fd);
    close(fd);
    char replaced[COVER_VERSION_LEN + 1];
    commit_result res = made ? commit(cr, replaced) : LOST;
    json_decref(cr->sizes);
    if (res == GONE) {
        store_remove_asset(w->store, j->asset_id);   /* written after the delete's removal */
    } else if (res == COMMITTED) {
        remove_blob(w, j->asset_id, COVER_SOURCE_PREFIX, cr->version);
        if (replaced[0] && strcmp(replaced, cr->version) != 0)
            remove_sizes(w, j->asset_id, replaced);
        notifier_poke(w->events);
        log_info("cover made", "asset", j->asset_id, "version", cr->version, NULL);
    } else if (res == SUPERSEDED) {
        remove_sizes(w, j->asset_id, cr->version);
        return false;
    }
    return true;   /* also LOST: the lease, and the job, are another worker's */
}

void pipeline_cover(worker *w, const job *j)
{
    asset *a = malloc(sizeof *a);   /* ~10 KB */
    cover_run cr = {.w = w, .j = j};
    bool over = false;
    for (int round = 0; a && !over && round < COVER_ROUNDS; round++)
        over = round_on_latest(&cr, a, round + 1 == COVER_ROUNDS);
    if (!over)
        pipeline_fail(w, j, a ? "superseded" : "out_of_memory",
                      "newer covers kept arriving while one was made; trying again", true);
    free(a);
}

db_status pipeline_cover_failed(worker *w, db_conn *c, const job *j, const char *code,
                                const char *message, int64_t now_ms)
{
    asset *a = malloc(sizeof *a);
    char latest[COVER_VERSION_LEN + 1], next[ASSET_COVER_JSON_MAX + 1];
    bool ready;
    db_status st = a ? db_asset_get_any(c, j->asset_id, a) : DB_ERROR;
    uint64_t tried = atomic_load(&w->cover_version);
    if (st == DB_NOT_FOUND) st = DB_OK;   /* deleted: nothing to fail */
    else if (st == DB_OK && cover_latest(a->cover, latest, &ready) && !ready) {
        job again;
        if (tried && tried != version_number(latest))
            /* a newer cover than the one that failed: its own job (this
             * one is not live any more, db_job_fail ran first) */
            st = db_job_enqueue(c, j->asset_id, j->owner, COVER_JOB, INGEST_JOB_ATTEMPTS, now_ms,
                                &again);
        else
            st = cover_record_failed(a->cover, latest, code, message, next, sizeof next)
                     ? db_asset_set_cover(c, j->asset_id, next, now_ms)
                     : DB_ERROR;
    }
    free(a);
    return st;
}
