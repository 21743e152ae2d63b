/* worker.c — see worker.h. */
#include "queue/worker.h"
#include "core/asset.h"
#include "db/db.h"
#include "events/notify.h"
#include "media/image.h"
#include "queue/job.h"
#include "store/store.h"
#include "util/log.h"
#include "util/timefmt.h"

#include <openssl/rand.h>
#include <stdbool.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define IDLE_POLL_MS 50   /* an idle claim is one indexed read */
#define RETRY_BASE_MS 1000
#define RETRY_CAP_MS 60000

typedef struct worker {
    const worker_config *cfg;
    db *db;
    store *store;
    notifier *events;    /* wakes the serve process's hub after our commits */
    int64_t last_progress_ms;
} worker;

/* At most this often a running job reports progress (job.progress events
 * are for progress bars, not for every step of a 500-page document). */
#define PROGRESS_EVERY_MS 250

/* One job in progress, shared with its heartbeat thread. */
typedef struct running {
    worker *w;
    job j;
    _Atomic bool done;
    pthread_mutex_t lock;
    pthread_cond_t wake;
} running;

static volatile sig_atomic_t stopping;
static void on_signal(int sig) { stopping = 1; }

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* ---------- outcome ---------- */

/* Records a failure; when the job will not run again, the asset fails too,
 * in the same transaction. */
static void finish_failed(worker *w, const job *j, const char *code, const char *message,
                          bool retryable)
{
    db_conn *c = db_acquire(w->db);
    if (!c) return;
    uint32_t rnd = 0;
    RAND_bytes((unsigned char *)&rnd, sizeof rnd);
    int64_t now = time_now_ms();
    int64_t retry_at = now + job_backoff_ms(j->attempts, RETRY_BASE_MS, RETRY_CAP_MS,
                                            (double)rnd / 4294967296.0);
    bool final = !retryable || j->attempts >= j->max_attempts;
    if (db_begin(c) == DB_OK &&
        db_job_fail(c, j, code, message, retryable, now, retry_at) == DB_OK &&
        /* DB_NOT_FOUND: the asset was deleted meanwhile, nothing to fail */
        (!final || db_asset_set_failed(c, j->asset_id, code, message, now) != DB_ERROR) &&
        db_commit(c) == DB_OK) {
        notifier_poke(w->events);
        log_info("job failed", "job", j->id, "code", code, "message", message, "final",
                 final ? "yes" : "no", NULL);
    } else {
        db_rollback(c);   /* fenced out, or the database is gone: the lease decides */
    }
    db_release(w->db, c);
}

/* Records progress (0..1) with a job.progress event, throttled; under the
 * job's fence like every other write. */
static void report_progress(worker *w, const job *j, double progress)
{
    int64_t now = time_now_ms();
    if (now - w->last_progress_ms < PROGRESS_EVERY_MS) return;
    w->last_progress_ms = now;
    char data[160];
    snprintf(data, sizeof data, "{\"job_id\":\"%s\",\"type\":\"%s\",\"progress\":%.3f}", j->id,
             j->type, progress);
    db_conn *c = db_acquire(w->db);
    bool ok = c && db_begin(c) == DB_OK &&
              db_job_heartbeat(c, j, now, w->cfg->lease_ms, progress) == DB_OK &&
              db_event_append(c, "job.progress", j->asset_id, j->owner, now, data) == DB_OK &&
              db_commit(c) == DB_OK;
    if (!ok && c) db_rollback(c);
    db_release(w->db, c);
    if (ok) notifier_poke(w->events);
}

/* ---------- heartbeat and time limit ---------- */

static void *heartbeat(void *arg)
{
    running *run = arg;
    worker *w = run->w;
    double started = time_mono_seconds();
    pthread_mutex_lock(&run->lock);
    while (!atomic_load(&run->done)) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)(w->cfg->lease_ms / 3000 > 0 ? w->cfg->lease_ms / 3000 : 1);
        pthread_cond_timedwait(&run->wake, &run->lock, &until);
        if (atomic_load(&run->done)) break;
        if (time_mono_seconds() - started > w->cfg->job_timeout) {
            char msg[96];
            snprintf(msg, sizeof msg, "the job ran longer than %u s", w->cfg->job_timeout);
            finish_failed(w, &run->j, "timeout", msg, false);
            _exit(3);   /* a decoder cannot be stopped mid-call; the supervisor restarts us */
        }
        db_conn *c = db_acquire(w->db);
        if (c && db_job_heartbeat(c, &run->j, time_now_ms(), w->cfg->lease_ms, 0.5) ==
                     DB_NOT_FOUND)
            log_warn("lease lost", "job", run->j.id, NULL);
        db_release(w->db, c);
    }
    pthread_mutex_unlock(&run->lock);
    return NULL;
}

/* ---------- the image pipeline ---------- */

typedef struct render_ctx {
    worker *w;
    const job *j;
    json_t *renditions;
} render_ctx;

static bool store_rendition(void *arg, const image_preset *p, const void *data, size_t len,
                            int width, int height, const char *content_type)
{
    render_ctx *rc = arg;
    char key[ID_LEN + 40], url[ID_LEN + 64];
    snprintf(key, sizeof key, "%s.%s", rc->j->asset_id, p->name);
    store_upload *u = store_upload_begin(rc->w->store);
    if (!u) return false;
    if (!store_upload_write(u, data, len)) {
        store_upload_abort(u);
        return false;
    }
    if (!store_upload_commit(u, key)) return false;
    snprintf(url, sizeof url, "/v1/assets/%s/renditions/%s", rc->j->asset_id, p->name);
    json_array_append_new(rc->renditions,
                          json_pack("{s:s, s:s, s:i, s:i, s:I, s:s}", "name", p->name,
                                    "content_type", content_type, "width", width, "height",
                                    height, "size", (json_int_t)len, "url", url));
    size_t done = json_array_size(rc->renditions);
    if ((int)done < rc->w->cfg->npresets)   /* completion reports the end */
        report_progress(rc->w, rc->j, (double)done / rc->w->cfg->npresets);
    return true;
}

static const char *image_error_code(image_status st)
{
    switch (st) {
    case IMAGE_UNSUPPORTED: return "unsupported_format";
    case IMAGE_TOO_LARGE: return "image_too_large";
    case IMAGE_CORRUPT: return "corrupt_input";
    default: return "storage_failed";
    }
}

static void run_image(worker *w, const job *j)
{
    int fd;
    uint64_t size;
    if (!store_open(w->store, j->asset_id, &fd, &size)) {
        finish_failed(w, j, "source_missing", "the asset's bytes are gone", false);
        return;
    }
    render_ctx rc = {w, j, json_array()};
    w->last_progress_ms = 0;
    char err[512] = "";
    int width = 0, height = 0;
    image_status st = image_render(fd, w->cfg->presets, w->cfg->npresets, w->cfg->max_pixels, store_rendition,
                                   &rc, &width, &height, err, sizeof err);
    close(fd);
    if (st != IMAGE_OK) {
        json_decref(rc.renditions);
        finish_failed(w, j, image_error_code(st), err, st == IMAGE_OUTPUT_FAILED);
        return;
    }
    char *renditions = json_dumps(rc.renditions, JSON_COMPACT);
    json_decref(rc.renditions);
    char meta[96];
    snprintf(meta, sizeof meta, "{\"width\":%d,\"height\":%d}", width, height);
    db_conn *c = db_acquire(w->db);
    int64_t now = time_now_ms();
    /* Output and completion commit together, and only under our fence.  An
     * asset deleted while we worked completes the job all the same (there
     * is nothing to retry); its renditions, written after the delete
     * removed its blobs, go too. */
    db_status asset_st = DB_ERROR;
    bool ok = c && renditions && db_begin(c) == DB_OK &&
              (asset_st = db_asset_set_ready(c, j->asset_id, renditions, meta, now)) !=
                  DB_ERROR &&
              db_job_complete(c, j, now) == DB_OK && db_commit(c) == DB_OK;
    if (!ok && c) db_rollback(c);
    db_release(w->db, c);
    if (ok && asset_st == DB_NOT_FOUND) store_remove_asset(w->store, j->asset_id);
    if (ok) notifier_poke(w->events);
    free(renditions);
    log_info(!ok ? "job result discarded (lease lost)"
             : asset_st == DB_NOT_FOUND ? "job done for a deleted asset"
                                        : "job succeeded",
             "job", j->id, "asset", j->asset_id, NULL);
}

/* ---------- the loop ---------- */

static void run_job(worker *w, const job *j)
{
    if (w->cfg->crash_after_claim) abort();
    db_conn *c = db_acquire(w->db);
    int64_t now = time_now_ms();
    /* Under the fence: a worker that lost its lease before getting here
     * must not turn another worker's finished asset back to processing. */
    if (c && !(db_begin(c) == DB_OK &&
               db_job_heartbeat(c, j, now, w->cfg->lease_ms, 0) == DB_OK &&
               db_asset_set_processing(c, j->asset_id, now) == DB_OK && db_commit(c) == DB_OK))
        db_rollback(c);   /* the job still runs; its outcome event follows */
    db_release(w->db, c);
    notifier_poke(w->events);

    running run = {.w = w, .j = *j};
    pthread_mutex_init(&run.lock, NULL);
    pthread_cond_init(&run.wake, NULL);
    pthread_t hb;
    bool beating = pthread_create(&hb, NULL, heartbeat, &run) == 0;
    if (strcmp(j->type, "image") == 0) run_image(w, j);
    else finish_failed(w, j, "unknown_job_type", j->type, false);
    atomic_store(&run.done, true);
    pthread_mutex_lock(&run.lock);
    pthread_cond_signal(&run.wake);
    pthread_mutex_unlock(&run.lock);
    if (beating) pthread_join(hb, NULL);
    pthread_mutex_destroy(&run.lock);
    pthread_cond_destroy(&run.wake);
}

static void limit_memory(uint64_t bytes)
{
#ifdef __SANITIZE_ADDRESS__
    /* AddressSanitizer reserves terabytes of address space for its shadow
     * memory; an RLIMIT_AS would stop the sanitized build from starting. */
    bytes = 0;
#endif
    if (!bytes) return;
    struct rlimit rl = {(rlim_t)bytes, (rlim_t)bytes};
    if (setrlimit(RLIMIT_AS, &rl) != 0) log_warn("cannot set the memory limit", NULL);
}

int worker_main(const worker_config *cfg, const char *argv0)
{
    /* One image at a time: one malloc arena is enough, and per-thread
     * arenas (heartbeat, libvips) would each keep freed memory resident.
     * With malloc_trim() after each job this keeps a worker's peak at one
     * image's needs (bench/images.sh: 148 MiB for the progressive 4096^2
     * JPEG, whose libjpeg coefficient buffer alone is 96 MiB). */
    mallopt(M_ARENA_MAX, 1);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    const char *err;
    worker w = {.cfg = cfg};
    if (!(w.db = db_open(cfg->data_dir, &err)) || !(w.store = store_fs_open(cfg->data_dir, &err))) {
        log_error("worker cannot open data directory", "dir", cfg->data_dir, "error", err, NULL);
        db_close(w.db);
        return 1;
    }
    if (!image_init(argv0)) {
        log_error("libvips failed to start", NULL);
        return 1;
    }
    w.events = notifier_open(cfg->data_dir);
    limit_memory(cfg->memory_limit);
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    log_info("worker started", "pid", pid, NULL);
    while (!stopping) {
        db_conn *c = db_acquire(w.db);
        job j;
        db_status st = c ? db_job_claim(c, time_now_ms(), cfg->lease_ms, &j) : DB_ERROR;
        db_release(w.db, c);
        if (st == DB_OK) {
            run_job(&w, &j);
            /* Give the decoder's freed heap back to the system: a worker's
             * peak is then one image's, not the sum of its history. */
            malloc_trim(0);
        }
        else sleep_ms(IDLE_POLL_MS);
    }
    notifier_close(w.events);
    store_close(w.store);
    db_close(w.db);
    return 0;
}
