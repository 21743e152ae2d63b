/* workpool.c — see workpool.h.  A mutex, a condition variable and a FIFO. */
#include "util/workpool.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct work_item {
    work_fn fn;
    void *arg;
    struct work_item *next;
} work_item;

struct workpool {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    work_item *head, *tail;
    bool stopping;
    int nthreads;
    pthread_t *threads;
};

static void *worker_main(void *arg)
{
    workpool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !p->stopping) pthread_cond_wait(&p->wake, &p->lock);
        work_item *it = p->head;
        if (!it) break;  /* stopping and drained */
        p->head = it->next;
        if (!p->head) p->tail = NULL;
        pthread_mutex_unlock(&p->lock);
        it->fn(it->arg);
        free(it);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

workpool *workpool_new(int threads)
{
    workpool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->threads = calloc((size_t)threads, sizeof *p->threads);
    if (!p->threads) { free(p); return NULL; }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) break;
        p->nthreads++;
    }
    if (p->nthreads == 0) { workpool_free(p); return NULL; }
    return p;
}

bool workpool_submit(workpool *p, work_fn fn, void *arg)
{
    work_item *it = malloc(sizeof *it);
    if (!it) return false;
    it->fn = fn;
    it->arg = arg;
    it->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->tail) p->tail->next = it;
    else p->head = it;
    p->tail = it;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    return true;
}

void workpool_free(workpool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    free(p->threads);
    free(p);
}
