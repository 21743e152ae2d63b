/* writer.c — see writer.h.
 *
 * The ring is single-producer, single-consumer.  `in` and `out` count bytes
 * ever appended and ever written; the producer only fills [in, out + size)
 * and the consumer only drains [out, in), so the memcpy and the write run
 * outside the lock, which guards just the counters and the flags.
 */
#include "store/writer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RING_BYTES ((size_t)8 << 20)
#define WRITE_MAX ((size_t)1 << 20)          /* one write(2) at most */
#define WRITEBACK_CHUNK ((off_t)8 << 20)

struct file_writer {
    writer_sink sink;
    void *sink_arg;
    int fd;                                  /* the file sink's, when sink is NULL */
    file_pos *pos;
    _Atomic int *slots;
    char *ring;
    size_t in, out;
    bool closing;
    int error;                               /* errno of the first failure */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    pthread_t thread;
};

bool file_append(int fd, file_pos *pos, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        p += w;
        len -= (size_t)w;
        pos->written += w;
    }
    if (pos->written - pos->flushed >= WRITEBACK_CHUNK) {
        /* Asynchronous: queues the range for writeback and returns. */
        sync_file_range(fd, pos->flushed, pos->written - pos->flushed, SYNC_FILE_RANGE_WRITE);
        pos->flushed = pos->written;
    }
    return true;
}

/* file_pos.sync_every: on the writer thread only, never inline. */
static bool keep_durable(file_writer *w)
{
    file_pos *p = w->pos;
    if (p->sync_every <= 0 || p->written - p->synced < p->sync_every) return true;
    if (fdatasync(w->fd) != 0) return false;
    p->synced = p->written;
    return true;
}

static void *drain(void *arg)
{
    file_writer *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (w->in == w->out && !w->closing) pthread_cond_wait(&w->changed, &w->lock);
        if (w->in == w->out) break;                  /* closing and drained */
        size_t at = w->out % RING_BYTES;
        size_t n = w->in - w->out;
        if (n > RING_BYTES - at) n = RING_BYTES - at;  /* up to the wrap */
        if (n > WRITE_MAX) n = WRITE_MAX;
        pthread_mutex_unlock(&w->lock);
        bool ok = w->sink ? w->sink(w->sink_arg, w->ring + at, n)
                          : file_append(w->fd, w->pos, w->ring + at, n) && keep_durable(w);
        int err = errno;
        pthread_mutex_lock(&w->lock);
        if (!ok) {
            w->error = err;
            pthread_cond_broadcast(&w->changed);
            break;
        }
        w->out += n;
        pthread_cond_broadcast(&w->changed);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static file_writer *start(writer_sink sink, void *arg, int fd, file_pos *pos,
                          _Atomic int *slots)
{
    if (atomic_fetch_sub(slots, 1) <= 0) {
        atomic_fetch_add(slots, 1);
        return NULL;
    }
    /* mmap, not malloc: malloc would keep a freed ring in the thread's arena
     * (glibc raises its mmap threshold after the first free), so every HTTP
     * thread would end up holding one for good. */
    file_writer *w = calloc(1, sizeof *w);
    void *ring = w ? mmap(NULL, RING_BYTES, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                   : MAP_FAILED;
    if (ring != MAP_FAILED) {
        w->ring = ring;
        w->sink = sink;
        w->sink_arg = arg;
        w->fd = fd;
        w->pos = pos;
        w->slots = slots;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->changed, NULL);
        if (pthread_create(&w->thread, NULL, drain, w) == 0) return w;
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->changed);
        munmap(ring, RING_BYTES);
    }
    free(w);
    atomic_fetch_add(slots, 1);
    return NULL;
}

file_writer *file_writer_start(int fd, file_pos *pos, _Atomic int *slots)
{
    return start(NULL, NULL, fd, pos, slots);
}

file_writer *writer_start(writer_sink sink, void *arg, _Atomic int *slots)
{
    return start(sink, arg, -1, NULL, slots);
}

bool file_writer_append(file_writer *w, const void *data, size_t len)
{
    const char *p = data;
    pthread_mutex_lock(&w->lock);
    while (len > 0 && !w->error) {
        size_t space = RING_BYTES - (w->in - w->out);
        if (space == 0) {
            pthread_cond_wait(&w->changed, &w->lock);
            continue;
        }
        size_t at = w->in % RING_BYTES;
        size_t n = len < space ? len : space;
        if (n > RING_BYTES - at) n = RING_BYTES - at;
        pthread_mutex_unlock(&w->lock);
        memcpy(w->ring + at, p, n);
        pthread_mutex_lock(&w->lock);
        w->in += n;
        p += n;
        len -= n;
        pthread_cond_broadcast(&w->changed);
    }
    int err = w->error;
    pthread_mutex_unlock(&w->lock);
    if (err) errno = err;
    return err == 0;
}

bool file_writer_finish(file_writer *w)
{
    pthread_mutex_lock(&w->lock);
    w->closing = true;
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    int err = w->error;
    atomic_fetch_add(w->slots, 1);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->changed);
    munmap(w->ring, RING_BYTES);
    free(w);
    if (err) errno = err;
    return err == 0;
}
