/* workpool.h — a fixed set of threads for blocking work.
 *
 * The HTTP threads must never wait on fsync, libmagic or a database write;
 * they suspend the connection and hand the work here.
 *
 * The queue is unbounded in count but every entry is a small struct owned by
 * a suspended connection, and connections are bounded, so memory is too.
 */
#ifndef ASSETD_WORKPOOL_H
#define ASSETD_WORKPOOL_H

#include <stdbool.h>

typedef struct workpool workpool;
typedef void (*work_fn)(void *arg);

workpool *workpool_new(int threads);
bool workpool_submit(workpool *p, work_fn fn, void *arg);
/* Runs every queued item, then joins the threads and frees the pool. */
void workpool_free(workpool *p);

#endif
