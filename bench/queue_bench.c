/* queue_bench.c — no-op job throughput of the SQLite queue (build/bench-queue).
 *
 * What a job costs the queue itself, with no work in it: enqueue, claim
 * (lease + fencing token) and complete, each a durable transaction
 * (synchronous=FULL: one WAL fdatasync per commit).  Runs through the same
 * db.h functions the server and the workers call.
 *
 * One producer thread enqueues --jobs jobs, --enqueue-batch per transaction;
 * --consumers threads each claim up to --claim-batch jobs per transaction
 * (db_job_claim_many) and complete what they claimed in one statement
 * (db_job_complete_many).
 * The clock runs from the first enqueue until every job has succeeded.
 * With --prefill the producer fills the queue first and the consumers
 * start after it: jobs_per_s is then the work rate alone (claim +
 * complete on a full queue, as graphile-worker's and River's benchmarks
 * measure it) and enqueue_per_s the producer's rate alone.
 *
 * The reference, measured first in the same run on the same file system:
 * the fdatasync rate of a 100-byte append, which bounds how many commits
 * per second any durable store can make here.  With one job per commit the
 * ceiling is a third of it; batching is what lifts the queue above that.
 *
 * Prints one line: `fsync_per_s=… jobs_per_s=… ratio_to_fsync=… seconds=…
 * enqueue_seconds=… enqueue_per_s=…`.
 */
#include "db/db.h"
#include "util/timefmt.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LEASE_MS 30000
#define MAX_BATCH 256

typedef struct bench {
    db *d;
    int jobs, enqueue_batch, claim_batch;
    _Atomic int done;
    _Atomic bool failed;
} bench;

static double fsync_rate(const char *dir)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/fsync-probe", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return 0;
    char buf[100] = {0};
    int n = 0;
    double start = time_mono_seconds();
    while (time_mono_seconds() - start < 1.0 && n < 100000) {
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf || fdatasync(fd) != 0) break;
        n++;
    }
    double rate = n / (time_mono_seconds() - start);
    close(fd);
    unlink(path);
    return rate;
}

static void *produce(void *arg)
{
    bench *b = arg;
    db_conn *c = db_acquire(b->d);
    job j;
    char asset_id[32];
    for (int i = 0; c && i < b->jobs && !b->failed;) {
        bool ok = db_begin(c) == DB_OK;
        for (int k = 0; ok && k < b->enqueue_batch && i < b->jobs; k++, i++) {
            snprintf(asset_id, sizeof asset_id, "asset%d", i);
            ok = db_job_enqueue(c, asset_id, "bench", "noop", 3, time_now_ms(), &j) == DB_OK;
        }
        if (!ok || db_commit(c) != DB_OK) {
            db_rollback(c);
            b->failed = true;
        }
    }
    db_release(b->d, c);
    return NULL;
}

static void *consume(void *arg)
{
    bench *b = arg;
    db_conn *c = db_acquire(b->d);
    job got[MAX_BATCH];
    double deadline = time_mono_seconds() + 120;
    while (c && atomic_load(&b->done) < b->jobs && !b->failed) {
        if (time_mono_seconds() > deadline) { b->failed = true; break; }
        int n = 0;
        db_status st = db_job_claim_many(c, time_now_ms(), LEASE_MS, b->claim_batch, got, &n);
        if (st == DB_NOT_FOUND) { usleep(100); continue; }
        int done = 0;   /* one fenced statement, its own transaction */
        if (st != DB_OK || db_job_complete_many(c, got, n, time_now_ms(), &done) != DB_OK ||
            done != n)
            b->failed = true;
        atomic_fetch_add(&b->done, n);
    }
    db_release(b->d, c);
    return NULL;
}

static int arg_int(int argc, char **argv, const char *name, int fallback)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return atoi(argv[i + 1]);
    return fallback;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
    int consumers = arg_int(argc, argv, "--consumers", 2);
    bench b = {.jobs = arg_int(argc, argv, "--jobs", 20000),
               .enqueue_batch = arg_int(argc, argv, "--enqueue-batch", 1),
               .claim_batch = arg_int(argc, argv, "--claim-batch", 1)};
    if (!dir || b.jobs < 1 || consumers < 1 || consumers > 64 || b.enqueue_batch < 1 ||
        b.claim_batch < 1 || b.claim_batch > MAX_BATCH) {
        fprintf(stderr, "usage: bench-queue DIR [--jobs N] [--consumers N] "
                        "[--enqueue-batch N] [--claim-batch N<=%d] [--db URL] [--prefill]\n", MAX_BATCH);
        return 2;
    }
    double fsyncs = fsync_rate(dir);
    const char *err;
    const char *url = NULL;   /* --db: PostgreSQL instead of SQLite in DIR */
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--db") == 0) url = argv[i + 1];
    if (!(b.d = db_open(dir, url, &err))) {
        fprintf(stderr, "bench-queue: %s\n", err);
        return 1;
    }
    bool prefill = false;
    for (int i = 1; i < argc; i++) prefill |= strcmp(argv[i], "--prefill") == 0;
    pthread_t producer, consumer[64];
    double start = time_mono_seconds();
    pthread_create(&producer, NULL, produce, &b);
    if (prefill) pthread_join(producer, NULL);
    double work_start = prefill ? time_mono_seconds() : start;
    for (int i = 0; i < consumers; i++) pthread_create(&consumer[i], NULL, consume, &b);
    if (!prefill) pthread_join(producer, NULL);
    double enqueued = time_mono_seconds() - start;
    if (prefill) enqueued = work_start - start;
    for (int i = 0; i < consumers; i++) pthread_join(consumer[i], NULL);
    double elapsed = time_mono_seconds() - work_start;
    db_close(b.d);
    if (b.failed || atomic_load(&b.done) != b.jobs) {
        fprintf(stderr, "bench-queue: failed after %d of %d jobs\n", atomic_load(&b.done), b.jobs);
        return 1;
    }
    double rate = b.jobs / elapsed;
    printf("fsync_per_s=%.0f jobs_per_s=%.0f ratio_to_fsync=%.2f seconds=%.2f"
           " enqueue_seconds=%.2f enqueue_per_s=%.0f\n", fsyncs, rate, rate / fsyncs, elapsed,
           enqueued, b.jobs / enqueued);
    return 0;
}
