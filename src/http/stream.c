/* stream.c — see stream.h.
 *
 * The buffer is a flat array consumed from `start`; it is compacted when a
 * write would not fit at the end.  One mutex guards it together with the
 * `suspended` flag, which is what keeps suspend and resume in order: the
 * reader suspends only while holding the lock with nothing to send, and a
 * writer resumes only a connection it saw suspended under the same lock.
 */
#include "http/stream.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct http_stream {
    pthread_mutex_t lock;
    struct MHD_Connection *conn;
    char *buf;
    size_t start, end, cap, max;
    bool suspended, ended;
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

static void free_stream(void *cls)
{
    http_stream *s = cls;
    s->on_gone(s->arg);   /* the producer stops here; nobody else holds s */
    pthread_mutex_destroy(&s->lock);
    free(s->buf);
    free(s);
}

http_stream *http_reply_stream(http_req *r, const char *content_type, size_t max_buffered,
                               void (*on_gone)(void *arg), void *arg)
{
    http_stream *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    pthread_mutex_init(&s->lock, NULL);
    s->conn = http_req_connection(r);
    s->max = max_buffered;
    s->on_gone = on_gone;
    s->arg = arg;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, read_stream, s, free_stream);
    if (!resp) {
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    http_reply_response(r, 200, resp);
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
