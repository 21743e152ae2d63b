/* stream.c — see stream.h.
 *
 * The buffer is a flat array consumed from `start`; it is compacted when a
 * write would not fit at the end.  One mutex guards it together with the
 * `suspended` flag, which is what keeps suspend and resume in order: the
 * reader suspends only while holding the lock with nothing to send, and a
 * writer resumes only a connection it saw suspended under the same lock.
 *
 * Sized streams (proxied downloads) add a condition variable on which the
 * producer waits for room, and a reference count: the response holds one,
 * the producer the other, and whoever drops the last frees the stream.
 */
#include "http/stream.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct http_stream {
    pthread_mutex_t lock;
    pthread_cond_t room;       /* sized streams: signalled as the client reads */
    struct MHD_Connection *conn;
    char *buf;
    size_t start, end, cap, max;
    bool suspended, ended, failed, gone;
    int refs;                  /* owners left: the response, and a producer */
    void (*on_gone)(void *arg);
    void *arg;
};

static ssize_t read_stream(void *cls, uint64_t pos, char *out, size_t max)
{
    http_stream *s = cls;
    pthread_mutex_lock(&s->lock);
    size_t n = s->end - s->start;
    ssize_t ret;
    if (n > 0) {
        if (n > max) n = max;
        memcpy(out, s->buf + s->start, n);
        s->start += n;
        if (s->start == s->end) s->start = s->end = 0;
        ret = (ssize_t)n;
        pthread_cond_broadcast(&s->room);
    } else if (s->failed) {
        ret = MHD_CONTENT_READER_END_WITH_ERROR;
    } else if (s->ended) {
        ret = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        s->suspended = true;
        MHD_suspend_connection(s->conn);
        ret = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return ret;
}

static void destroy(http_stream *s)
{
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->room);
    free(s->buf);
    free(s);
}

/* Drops one owner; the last one frees. */
static void unref(http_stream *s)
{
    pthread_mutex_lock(&s->lock);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&s->lock);
    if (last) destroy(s);
}

static void free_stream(void *cls)
{
    http_stream *s = cls;
    if (s->on_gone) s->on_gone(s->arg);   /* the producer stops here */
    pthread_mutex_lock(&s->lock);
    s->gone = true;
    pthread_cond_broadcast(&s->room);
    pthread_mutex_unlock(&s->lock);
    unref(s);
}

static http_stream *stream_new(http_req *r, size_t max_buffered, int refs)
{
    http_stream *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->room, NULL);
    s->conn = http_req_connection(r);
    s->max = max_buffered;
    s->refs = refs;
    return s;
}

http_stream *http_reply_stream(http_req *r, const char *content_type, size_t max_buffered,
                               void (*on_gone)(void *arg), void *arg)
{
    http_stream *s = stream_new(r, max_buffered, 1);
    if (!s) return NULL;
    s->on_gone = on_gone;
    s->arg = arg;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, read_stream, s, free_stream);
    if (!resp) {
        destroy(s);
        return NULL;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    http_reply_response(r, 200, resp, 0);
    return s;
}

static bool make_room(http_stream *s, size_t len)
{
    size_t used = s->end - s->start;
    if (used + len > s->max) return false;
    if (s->end + len <= s->cap) return true;
    if (used) memmove(s->buf, s->buf + s->start, used);   /* buf is NULL until the first write */
    s->start = 0;
    s->end = used;
    if (used + len <= s->cap) return true;
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < used + len) cap *= 2;
    if (cap > s->max) cap = s->max;
    char *grown = realloc(s->buf, cap);
    if (!grown) return false;
    s->buf = grown;
    s->cap = cap;
    return true;
}

static void wake(http_stream *s)
{
    if (!s->suspended) return;
    s->suspended = false;
    MHD_resume_connection(s->conn);
}

bool http_stream_write(http_stream *s, const char *data, size_t len)
{
    pthread_mutex_lock(&s->lock);
    bool ok = !s->ended && make_room(s, len);
    if (ok) {
        memcpy(s->buf + s->end, data, len);
        s->end += len;
        wake(s);
    }
    pthread_mutex_unlock(&s->lock);
    return ok;
}

void http_stream_end(http_stream *s)
{
    pthread_mutex_lock(&s->lock);
    s->ended = true;
    wake(s);
    pthread_mutex_unlock(&s->lock);
}

http_stream *http_reply_stream_sized(http_req *r, int status, const char *content_type,
                                     uint64_t length, size_t max_buffered)
{
    http_stream *s = stream_new(r, max_buffered, 2);
    if (!s) return NULL;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(length, 64 * 1024, read_stream, s, free_stream);
    if (!resp) {
        destroy(s);
        return NULL;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    http_reply_response(r, status, resp, length);
    return s;
}

bool http_stream_write_wait(http_stream *s, const char *data, size_t len)
{
    pthread_mutex_lock(&s->lock);
    while (len > 0 && !s->gone && !s->ended) {
        size_t piece = len < s->max ? len : s->max;
        if (!make_room(s, piece)) {
            /* Full: wait for the client.  Empty and still no room: the
             * buffer could not grow, and no read would ever make room. */
            if (s->end == s->start) break;
            pthread_cond_wait(&s->room, &s->lock);
            continue;
        }
        memcpy(s->buf + s->end, data, piece);
        s->end += piece;
        data += piece;
        len -= piece;
        wake(s);
    }
    bool ok = len == 0;
    pthread_mutex_unlock(&s->lock);
    return ok;
}

void http_stream_fail(http_stream *s)
{
    pthread_mutex_lock(&s->lock);
    s->failed = s->ended = true;
    wake(s);
    pthread_mutex_unlock(&s->lock);
}

void http_stream_release(http_stream *s) { unref(s); }
