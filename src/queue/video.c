/* video.c — the video pipeline: probe, one transcode (the fallback MP4
 * and, for sources of 720p and up, the HLS/DASH ladder, a poster frame,
 * the timeline's sprite sheet and its WebVTT track; media/video.h does the
 * work with ffmpeg), then the five 16:9 cover sizes from the poster's crop
 * (libvips, here).
 *
 * Everything ffmpeg writes goes to a private scratch directory under
 * DATA/tmp, then into the store one file at a time, streamed (segments can
 * be tens of MB).  The fallback, the two manifests, the poster and the
 * covers are the asset's listed renditions; the HLS media playlists and
 * the segments are rendition parts (db_part_*): served by name, never
 * listed.  All of them commit with the result in one transaction.
 *
 * First playable.  With a ladder, the segments do not wait for the end:
 * once a second while ffmpeg runs, video_live_poll (media/video.h) hands
 * over what it finished, and each piece is stored and recorded as a part
 * at once — segments committed before the playlists that name them, and,
 * with the commit that makes the master `hls` a part, asset.playable.  The
 * manifest then answers with formats.hls while the asset is processing
 * (api/manifest.c) and a player follows the EVENT playlists.  These
 * commits are under the job's fence and only while the asset exists; the
 * final commit replaces every part, and pieces already stored are not
 * stored again.  A video without a ladder is playable when it is ready:
 * its asset.playable commits with the result.
 * The covers are always the frame's, under their own names: a cover the
 * owner sent (core/cover.h) has blobs and a record of its own, shown in
 * their place, so a retry here never brings the frame's back.
 *
 * The job's wall-clock limit grows with the probed duration
 * (worker->job_limit_s); ffmpeg is killed with its process group when the
 * limit passes, when the lease is lost, or when the asset is deleted
 * meanwhile (checked every second); then nothing is recorded and the
 * blobs already stored go with the asset (pipeline_succeed's rule) or are
 * overwritten by the retry.  meta is the probe.
 */
#include "queue/pipeline.h"
#include "media/image.h"
#include "media/video.h"
#include "util/log.h"
#include "util/timefmt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECONDS_PER_VIDEO_SECOND 10   /* the job's limit: job_timeout + this x duration */
#define PROBE_SECONDS 60
#define TRANSCODE_SHARE 0.9           /* of the progress bar; storing is the rest */

typedef struct part {
    char name[40];
    const char *content_type;
    uint64_t size;
} part;

typedef struct part_list {
    part *v;
    int n, cap;
} part_list;

typedef struct run {
    worker *w;
    const job *j;
    int64_t checked_ms;
    bool gone;               /* the asset was deleted */
    json_t *renditions;
    part_list parts;         /* the final ones */
    /* publishing while ffmpeg writes (a ladder only) */
    const video_plan *plan;
    int audio_rep;           /* the audio's representation, -1: none */
    video_live live;
    part_list pending;       /* put since the last flush */
    int64_t tick_ms;
    bool live_started;       /* a flush committed (after clearing an earlier attempt's) */
    bool live_failed;        /* logged once; the final store does it all */
    char dir[1100];
} run;

/* ---------- watching ffmpeg ---------- */

static bool cancelled(void *arg)
{
    run *r = arg;
    if (atomic_load(&r->w->abandoned)) return true;
    int64_t now = time_now_ms();
    if (now - r->checked_ms < 1000) return r->gone;
    r->checked_ms = now;
    asset a;
    db_conn *c = db_acquire(r->w->db);
    r->gone = c && db_asset_get_any(c, r->j->asset_id, &a) == DB_NOT_FOUND;
    db_release(r->w->db, c);
    return r->gone;
}

static void progress(void *arg, double f)
{
    run *r = arg;
    if (f < 1) pipeline_progress(r->w, r->j, f * TRANSCODE_SHARE);
}

static const char *video_error_code(video_status st)
{
    switch (st) {
    case VIDEO_NOT_A_VIDEO: return "not_a_video";
    case VIDEO_CORRUPT: return "corrupt_video";
    case VIDEO_TOO_LONG: return "video_too_long";
    case VIDEO_TOO_LARGE: return "video_too_large";
    case VIDEO_TIMEOUT: return "timeout";
    case VIDEO_MISSING: return "converter_missing";
    case VIDEO_CANCELLED: return "abandoned";
    default: return "storage_failed";
    }
}

/* ---------- outputs ---------- */

static void add_rendition(run *r, const char *name, const char *type, int width, int height,
                          uint64_t size)
{
    char url[ID_LEN + 64];
    snprintf(url, sizeof url, "/v1/assets/%s/renditions/%s", r->j->asset_id, name);
    json_array_append_new(r->renditions,
                          json_pack("{s:s, s:s, s:i, s:i, s:I, s:s}", "name", name,
                                    "content_type", type, "width", width, "height", height,
                                    "size", (json_int_t)size, "url", url));
}

static bool store_cover(void *arg, const image_preset *p, const void *data, size_t len,
                        int width, int height, const char *content_type)
{
    run *r = arg;
    if (!pipeline_store(r->w, r->j->asset_id, p->name, data, len)) return false;
    add_rendition(r, p->name, content_type, width, height, len);
    return true;
}

static bool add_part(part_list *l, const char *name, const char *type, uint64_t size)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        part *p = realloc(l->v, (size_t)cap * sizeof *p);
        if (!p) return false;
        l->v = p, l->cap = cap;
    }
    part *p = &l->v[l->n++];
    snprintf(p->name, sizeof p->name, "%.39s", name);
    p->content_type = type;
    p->size = size;
    return true;
}

/* What a file ffmpeg wrote is, by its name; NULL: not an output. */
static const char *type_of(const char *name, int audio_rep)
{
    int rep;
    if (strcmp(name, "hls") == 0 || strncmp(name, "hls_", 4) == 0)
        return "application/vnd.apple.mpegurl";
    if (strcmp(name, "dash") == 0) return "application/dash+xml";
    if (sscanf(name, "init_%d", &rep) == 1 || sscanf(name, "seg_%d_", &rep) == 1)
        return rep == audio_rep ? "audio/mp4" : "video/mp4";
    return NULL;
}

/* Stores every stream file of the scratch directory: the manifests as
 * listed renditions, the rest as parts. */
static bool store_streams(run *r, const video_plan *plan)
{
    DIR *d = opendir(r->dir);
    if (!d) return false;
    const video_size *top = &plan->rungs[plan->nrungs - 1];
    struct dirent *e;
    bool ok = true;
    while (ok && (e = readdir(d))) {
        char name[40];   /* the file's name up to the extension */
        snprintf(name, sizeof name, "%.*s", (int)strcspn(e->d_name, "."), e->d_name);
        const char *type = type_of(name, r->audio_rep);
        if (!type) continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", r->dir, e->d_name);
        uint64_t size = 0;
        struct stat sb;
        if (video_live_published(&r->live, name))   /* stored while ffmpeg ran */
            ok = stat(path, &sb) == 0 && (size = (uint64_t)sb.st_size, true);
        else
            ok = pipeline_store_file(r->w, r->j->asset_id, name, path, &size);
        if (!ok) break;
        if (strcmp(name, "hls") == 0 || strcmp(name, "dash") == 0)
            add_rendition(r, name, type, top->width, top->height, size);
        else
            ok = add_part(&r->parts, name, type, size);
    }
    closedir(d);
    return ok;
}

static bool store_outputs(run *r, const video_info *in, const video_plan *plan,
                          char *err, size_t errcap)
{
    char path[1400];
    uint64_t size;
    snprintf(path, sizeof path, "%s/fallback", r->dir);
    if (!pipeline_store_file(r->w, r->j->asset_id, "fallback", path, &size)) goto fail;
    add_rendition(r, "fallback", "video/mp4", plan->fallback.width, plan->fallback.height, size);
    if (plan->nrungs > 0 && !store_streams(r, plan)) goto fail;
    const video_timeline *t = &plan->timeline;
    if (t->count > 0) {
        snprintf(path, sizeof path, "%s/tilesheet.jpg", r->dir);
        if (!pipeline_store_file(r->w, r->j->asset_id, "tilesheet", path, &size)) goto fail;
        add_rendition(r, "tilesheet", "image/jpeg", t->columns * VIDEO_TILE_W,
                      t->rows * VIDEO_TILE_H, size);
        snprintf(path, sizeof path, "%s/timeline.vtt", r->dir);
        if (!pipeline_store_file(r->w, r->j->asset_id, "timeline", path, &size)) goto fail;
        add_rendition(r, "timeline", "text/vtt", 0, 0, size);
    }
    pipeline_progress(r->w, r->j, 0.95);
    snprintf(path, sizeof path, "%s/poster.jpg", r->dir);
    if (!pipeline_store_file(r->w, r->j->asset_id, "poster", path, &size)) goto fail;
    add_rendition(r, "poster", "image/jpeg", plan->poster.width, plan->poster.height, size);
    snprintf(path, sizeof path, "%s/cover.jpg", r->dir);
    int cover = open(path, O_RDONLY | O_CLOEXEC);
    int w = 0, h = 0;
    image_status ist = cover < 0 ? IMAGE_CORRUPT
                                 : image_render(cover, image_cover_presets, IMAGE_COVER_PRESETS,
                                                r->w->cfg->max_pixels, store_cover, r, &w, &h,
                                                err, errcap);
    if (cover >= 0) close(cover);
    if (ist != IMAGE_OK) goto fail;
    return true;
fail:
    if (!err[0]) snprintf(err, errcap, "cannot store the outputs");
    return false;
}

static db_status insert_parts(db_conn *c, const char *asset_id, const part_list *l)
{
    db_status st = DB_OK;
    for (int i = 0; st == DB_OK && i < l->n; i++)
        st = db_part_insert(c, asset_id, l->v[i].name, l->v[i].content_type, l->v[i].size);
    return st;
}

/* With the result: every part anew, and asset.playable if no live commit
 * made the video playable before. */
static db_status write_parts(db_conn *c, void *arg)
{
    run *r = arg;
    db_status st = db_parts_clear(c, r->j->asset_id);
    if (st == DB_OK) st = insert_parts(c, r->j->asset_id, &r->parts);
    if (st == DB_OK && !r->live.playable) st = db_asset_playable(c, r->j->asset_id, time_now_ms());
    return st;
}

/* ---------- publishing while ffmpeg writes ---------- */

#define LIVE_EVERY_MS 1000

static bool live_put(void *arg, const char *name, const char *path)
{
    run *r = arg;
    uint64_t size;
    const char *type = type_of(name, r->audio_rep);
    return type && pipeline_store_file(r->w, r->j->asset_id, name, path, &size) &&
           add_part(&r->pending, name, type, size);
}

/* The pending parts commit under the job's fence, only while the asset
 * exists (a delete meanwhile: cancelled() stops ffmpeg); the first commit
 * of the job drops what an earlier attempt published. */
static bool live_flush(void *arg)
{
    run *r = arg;
    const char *id = r->j->asset_id;
    bool master = false;
    for (int i = 0; i < r->pending.n; i++)
        master = master || strcmp(r->pending.v[i].name, "hls") == 0;
    int64_t now = time_now_ms();
    db_conn *c = db_acquire(r->w->db);
    db_status st = c ? db_begin(c) : DB_ERROR;
    if (st == DB_OK && (st = db_asset_id_exists(c, id)) == DB_NOT_FOUND) r->gone = true;
    if (st == DB_OK) st = db_job_heartbeat(c, r->j, now, r->w->cfg->lease_ms, -1);
    if (st == DB_OK && !r->live_started) st = db_parts_clear(c, id);
    if (st == DB_OK) st = insert_parts(c, id, &r->pending);
    if (st == DB_OK && master) st = db_asset_playable(c, id, now);
    if (c) st = db_end(c, st);
    db_release(r->w->db, c);
    if (st != DB_OK) return false;
    r->pending.n = 0;
    r->live_started = true;
    if (master) notifier_poke(r->w->events);
    return true;
}

static void tick(void *arg)
{
    run *r = arg;
    int64_t now = time_now_ms();
    if (!r->plan || r->plan->nrungs == 0 || r->gone || r->live_failed ||
        now - r->tick_ms < LIVE_EVERY_MS)
        return;
    r->tick_ms = now;
    video_live_ops ops = {live_put, live_flush, r};
    if (!video_live_poll(&r->live, r->dir, r->plan, r->audio_rep >= 0, &ops) && !r->gone) {
        r->live_failed = true;
        log_warn("publishing the video while it is transcoded failed; it will be playable "
                 "when ready", "job", r->j->id, NULL);
    }
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* The probe, and the timeline's n and W (the manifest names the sheet as
 * the original did from them, tilesheet_{n}_{W}_240_135.jpg; the rendition
 * is `tilesheet`).  Under ASSET_META_JSON_MAX: codec names are under 24
 * bytes, the numbers bounded by the probe's limits. */
static void meta_of(const video_info *in, const video_timeline *t, char *out, size_t cap)
{
    char timeline[64] = "null";
    if (t->count > 0)
        snprintf(timeline, sizeof timeline, "{\"count\":%d,\"interval\":%d}", t->count,
                 t->interval);
    snprintf(out, cap,
             "{\"duration\":%.3f,\"width\":%d,\"height\":%d,\"rotation\":%d,\"fps\":%.3f,"
             "\"video_codec\":\"%s\",\"audio_codec\":%s%s%s,\"has_audio\":%s,\"timeline\":%s}",
             in->duration, in->width, in->height, in->rotation, in->fps, in->video_codec,
             in->has_audio ? "\"" : "", in->has_audio ? in->audio_codec : "null",
             in->has_audio ? "\"" : "", in->has_audio ? "true" : "false", timeline);
}

/* The body of pipeline_video, with the scratch directory made. */
static void transcode(run *r, int fd)
{
    worker *w = r->w;
    const job *j = r->j;
    const worker_config *cfg = w->cfg;
    char err[512] = "";
    video_info in;
    video_plan plan;
    video_ctl ctl = {.timeout_s = PROBE_SECONDS, .cancelled = cancelled, .arg = r,
                     .child_pgid = &w->child_pgid};
    video_status st = video_probe(fd, r->dir, &ctl, (double)cfg->max_video_duration,
                                  cfg->max_video_pixels, &in, err, sizeof err);
    if (st == VIDEO_OK) {
        unsigned limit = cfg->job_timeout + (unsigned)(in.duration * SECONDS_PER_VIDEO_SECOND);
        atomic_store(&w->job_limit_s, limit);
        video_plan_make(&in, &plan);
        r->plan = &plan;
        r->audio_rep = in.has_audio ? plan.nrungs : -1;
        video_ctl tctl = {.timeout_s = (double)limit, .cancelled = cancelled,
                          .progress = progress, .tick = tick, .arg = r,
                          .child_pgid = &w->child_pgid};
        st = video_transcode(fd, &in, &plan, cfg->video_preset, r->dir, &tctl, err, sizeof err);
        r->plan = NULL;   /* on this stack frame: no tick after the tools */
        if (st == VIDEO_OK && !store_outputs(r, &in, &plan, err, sizeof err))
            st = r->gone || atomic_load(&w->abandoned) ? VIDEO_CANCELLED : VIDEO_IO_ERROR;
    }
    if (st == VIDEO_CANCELLED) {
        /* deleted or fenced out: nothing to record; a deleted asset's
         * blobs are removed like any completed job's (pipeline_succeed) */
        if (r->gone) pipeline_succeed(w, j, "[]", "{}", NULL, NULL);
        return;
    }
    if (st != VIDEO_OK) {
        pipeline_fail(w, j, video_error_code(st), err, st == VIDEO_IO_ERROR);
        return;
    }
    char meta[ASSET_META_JSON_MAX + 1];
    meta_of(&in, &plan.timeline, meta, sizeof meta);
    char *renditions = json_dumps(r->renditions, JSON_COMPACT);
    if (renditions) pipeline_succeed(w, j, renditions, meta, write_parts, r);
    free(renditions);
}

void pipeline_video(worker *w, const job *j)
{
    int fd;
    uint64_t size;
    if (!store_fetch(w->store, j->asset_id, &fd, &size)) {
        pipeline_fetch_failed(w, j, "the asset's bytes are gone");
        return;
    }
    run r = {.w = w, .j = j, .renditions = json_array()};
    snprintf(r.dir, sizeof r.dir, "%s/tmp/video-XXXXXX", w->cfg->data_dir);
    w->last_progress_ms = 0;
    if (!mkdtemp(r.dir)) {
        char err[256];
        snprintf(err, sizeof err, "cannot make a scratch directory: %s", strerror(errno));
        pipeline_fail(w, j, "storage_failed", err, true);
    } else {
        transcode(&r, fd);
        nftw(r.dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    close(fd);
    json_decref(r.renditions);
    free(r.parts.v);
    free(r.pending.v);
}
