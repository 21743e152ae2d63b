/* worker.c — see worker.h. */
#include "queue/worker.h"
#include "queue/pipeline.h"
#include "core/asset.h"
#include "core/cover.h"
#include "db/db.h"
#include "events/notify.h"
#include "media/image.h"
#include "queue/job.h"
#include "queue/runs.h"
#include "store/store.h"
#include "util/fault.h"
#include "util/log.h"
#include "util/timefmt.h"

#include <openssl/rand.h>
#include <stdbool.h>
#include <poll.h>
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
/* With the database's wake-ups (PostgreSQL), an idle worker waits for a
 * commit instead, and claims at least this often (a job whose retry
 * becomes due is no commit; a lost wake-up). */
#define IDLE_LISTEN_MS 1000

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
        unsigned limit = atomic_load(&w->job_limit_s);
        if (time_mono_seconds() - started > limit) {
            char msg[96];
            snprintf(msg, sizeof msg, "the job ran longer than %u s", limit);
            int child = atomic_load(&w->child_pgid);
            if (child > 0) kill(-child, SIGKILL);   /* a tool's group is not ours to leave */
            pipeline_fail(w, &run->j, "timeout", msg, false);
            _exit(3);   /* a decoder cannot be stopped mid-call; the supervisor restarts us */
        }
        db_conn *c = db_acquire(w->db);
        if (c && db_job_heartbeat(c, &run->j, time_now_ms(), w->cfg->lease_ms, -1) ==
                     DB_NOT_FOUND) {
            log_warn("lease lost", "job", run->j.id, NULL);
            atomic_store(&w->abandoned, true);   /* pipelines that can stop, stop */
        }
        db_release(w->db, c);
    }
    pthread_mutex_unlock(&run->lock);
    return NULL;
}

/* ---------- the loop ---------- */

static void run_job(worker *w, const job *j)
{
    db_conn *c = db_acquire(w->db);
    int64_t now = time_now_ms();
    /* Under the fence: a worker that lost its lease before getting here
     * must not turn another worker's finished asset back to processing.  A
     * cover job leaves the video's status alone: its cover has its own. */
    bool cover = strcmp(j->type, COVER_JOB) == 0;
    if (c && !(db_begin(c) == DB_OK &&
               db_job_heartbeat(c, j, now, w->cfg->lease_ms, 0) == DB_OK &&
               (cover || db_asset_set_processing(c, j->asset_id, now) == DB_OK) &&
               db_commit(c) == DB_OK))
        db_rollback(c);   /* the job still runs; its outcome event follows */
    db_release(w->db, c);
    notifier_poke(w->events);

    atomic_store(&w->job_limit_s, w->cfg->job_timeout);
    atomic_store(&w->abandoned, false);
    atomic_store(&w->child_pgid, 0);
    atomic_store(&w->cover_version, 0);
    running run = {.w = w, .j = *j};
    pthread_mutex_init(&run.lock, NULL);
    pthread_cond_init(&run.wake, NULL);
    pthread_t hb;
    bool beating = pthread_create(&hb, NULL, heartbeat, &run) == 0;
    if (strcmp(j->type, "image") == 0) pipeline_image(w, j);
    else if (strcmp(j->type, "document") == 0) pipeline_document(w, j);
    else if (strcmp(j->type, "video") == 0) pipeline_video(w, j);
    else if (cover) pipeline_cover(w, j);
    else pipeline_fail(w, j, "unknown_job_type", j->type, false);
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

/* With a broker, CSV runs go on beside the jobs (queue/runs.h). */
static run_executor *start_runs(worker *w)
{
    if (!w->cfg->amqp_url || !*w->cfg->amqp_url) return NULL;
    run_executor_config rc = {.db = w->db, .store = w->store, .events = w->events,
                              .lease_ms = w->cfg->lease_ms, .max_runs = w->cfg->runs_per_worker};
    char why[160];
    if (!amqp_conn_parse_url(w->cfg->amqp_url, &rc.url, why, sizeof why)) {
        log_error("CSV runs are off: --amqp-url", "error", why, NULL);
        return NULL;
    }
    run_executor *x = run_executor_start(&rc);
    memset(&rc.url, 0, sizeof rc.url);
    return x;
}

/* Between claims that found nothing: a nap, or, where the database can
 * wake us (db_listen), until a commit or IDLE_LISTEN_MS.  A lost listener
 * is dropped: polling from then on. */
static void idle_wait(db_listener **l)
{
    if (!*l) {
        sleep_ms(IDLE_POLL_MS);
        return;
    }
    struct pollfd p = {db_listener_fd(*l), POLLIN, 0};
    if (poll(&p, 1, IDLE_LISTEN_MS) > 0 && !db_listener_drain(*l)) {
        log_warn("lost the database's wake-ups; polling", NULL);
        db_listener_close(*l);
        *l = NULL;
    }
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
    worker w = {.cfg = cfg, .store = cfg->store};
    if (!(w.db = db_open(cfg->data_dir, cfg->db_url, &err))) {
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
    run_executor *runs = start_runs(&w);
    db_listener *listener = db_listen(w.db);
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    log_info("worker started", "pid", pid, NULL);
    while (!stopping) {
        db_conn *c = db_acquire(w.db);
        job j;
        db_status st = c ? db_job_claim(c, time_now_ms(), cfg->lease_ms, &j) : DB_ERROR;
        db_release(w.db, c);
        if (st == DB_OK) {
            fault_point("job.claimed");
            run_job(&w, &j);
            /* Give the decoder's freed heap back to the system: a worker's
             * peak is then one image's, not the sum of its history. */
            malloc_trim(0);
        }
        else idle_wait(&listener);
    }
    db_listener_close(listener);
    run_executor_stop(runs);
    notifier_close(w.events);
    db_close(w.db);
    return 0;
}
