/* workpool.h — a fixed set of threads for blocking work.
 *
 * The HTTP threads must never wait on fsync, libmagic or a database write;
 * they suspend the connection and hand the work here.  Each pool thread owns
 * a context made by `thread_init` (e.g. its own libmagic handle, which is not
 * thread-safe) and released by `thread_fini`.
 *
 * The queue is unbounded in count but every entry is a small struct owned by
 * a suspended connection, and connections are bounded, so memory is too.
 */
#ifndef ASSETD_WORKPOOL_H
#define ASSETD_WORKPOOL_H

#include <stdbool.h>

typedef struct workpool workpool;
typedef void (*work_fn)(void *thread_ctx, void *arg);

workpool *workpool_new(int threads, void *(*thread_init)(void *arg),
                       void (*thread_fini)(void *ctx), void *arg);
bool workpool_submit(workpool *p, work_fn fn, void *arg);
/* Runs every queued item, then joins the threads and frees the pool. */
void workpool_free(workpool *p);

#endif
