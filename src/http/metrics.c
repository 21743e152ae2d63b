/* metrics.c — see metrics.h. */
#include "http/metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define STATUS_MIN 100
#define STATUS_SPAN 500   /* codes 100..599 */

static const double upload_buckets[] = {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300};
#define N_BUCKETS ((int)(sizeof upload_buckets / sizeof *upload_buckets))

struct metrics {
    int nroutes;                     /* plus one "unmatched" row */
    const char *const *labels;
    _Atomic uint64_t *requests;      /* [(nroutes+1) * STATUS_SPAN] */
    _Atomic uint64_t bytes_in, bytes_out;
    _Atomic uint64_t upload_bucket[N_BUCKETS + 1];  /* last one is +Inf */
    _Atomic uint64_t upload_micros;
    _Atomic int64_t open_connections;
};

metrics *metrics_new(int nroutes, const char *const *labels)
{
    metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->nroutes = nroutes;
    m->labels = labels;
    m->requests = calloc((size_t)(nroutes + 1) * STATUS_SPAN, sizeof *m->requests);
    if (!m->requests) { free(m); return NULL; }
    return m;
}

void metrics_free(metrics *m)
{
    if (!m) return;
    free(m->requests);
    free(m);
}

void metrics_request(metrics *m, int route, int status, uint64_t bytes_in, uint64_t bytes_out)
{
    int row = (route < 0 || route >= m->nroutes) ? m->nroutes : route;
    if (status >= STATUS_MIN && status < STATUS_MIN + STATUS_SPAN)
        atomic_fetch_add_explicit(&m->requests[row * STATUS_SPAN + status - STATUS_MIN], 1,
                                  memory_order_relaxed);
    atomic_fetch_add_explicit(&m->bytes_in, bytes_in, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->bytes_out, bytes_out, memory_order_relaxed);
}

void metrics_upload_seconds(metrics *m, double seconds)
{
    int b = 0;
    while (b < N_BUCKETS && seconds > upload_buckets[b]) b++;
    atomic_fetch_add_explicit(&m->upload_bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->upload_micros, (uint64_t)(seconds * 1e6), memory_order_relaxed);
}

void metrics_connections(metrics *m, int delta)
{
    atomic_fetch_add_explicit(&m->open_connections, delta, memory_order_relaxed);
}

char *metrics_render(metrics *m)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    fputs("# HELP assetd_http_requests_total HTTP requests by route and status.\n"
          "# TYPE assetd_http_requests_total counter\n", f);
    for (int r = 0; r <= m->nroutes; r++)
        for (int s = 0; s < STATUS_SPAN; s++) {
            uint64_t v = atomic_load_explicit(&m->requests[r * STATUS_SPAN + s],
                                              memory_order_relaxed);
            if (v)
                fprintf(f, "assetd_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                        r < m->nroutes ? m->labels[r] : "unmatched", s + STATUS_MIN,
                        (unsigned long long)v);
        }
    fprintf(f, "# HELP assetd_http_request_bytes_total Request body bytes received.\n"
               "# TYPE assetd_http_request_bytes_total counter\n"
               "assetd_http_request_bytes_total %llu\n"
               "# HELP assetd_http_response_bytes_total Response body bytes sent.\n"
               "# TYPE assetd_http_response_bytes_total counter\n"
               "assetd_http_response_bytes_total %llu\n",
            (unsigned long long)atomic_load(&m->bytes_in),
            (unsigned long long)atomic_load(&m->bytes_out));
    fputs("# HELP assetd_upload_seconds Time from request headers to stored upload.\n"
          "# TYPE assetd_upload_seconds histogram\n", f);
    uint64_t cumulative = 0;
    for (int b = 0; b <= N_BUCKETS; b++) {
        cumulative += atomic_load(&m->upload_bucket[b]);
        if (b < N_BUCKETS)
            fprintf(f, "assetd_upload_seconds_bucket{le=\"%g\"} %llu\n", upload_buckets[b],
                    (unsigned long long)cumulative);
        else
            fprintf(f, "assetd_upload_seconds_bucket{le=\"+Inf\"} %llu\n",
                    (unsigned long long)cumulative);
    }
    fprintf(f, "assetd_upload_seconds_sum %.6f\nassetd_upload_seconds_count %llu\n",
            (double)atomic_load(&m->upload_micros) / 1e6, (unsigned long long)cumulative);
    fprintf(f, "# HELP assetd_http_open_connections Open client connections.\n"
               "# TYPE assetd_http_open_connections gauge\n"
               "assetd_http_open_connections %lld\n",
            (long long)atomic_load(&m->open_connections));
    fclose(f);
    return buf;
}
