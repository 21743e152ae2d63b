/* metrics.h — Prometheus counters for the HTTP layer.
 *
 * Lock-free: every counter is a relaxed atomic bumped by whichever thread
 * finished the request, and metrics_render() reads them without stopping
 * anyone (a scrape may see a request counted in one series and not yet in
 * another, which Prometheus tolerates).  Routes are a fixed list known at
 * start-up, so series are preallocated: route x status code.
 */
#ifndef ASSETD_METRICS_H
#define ASSETD_METRICS_H

#include <stdint.h>

typedef struct metrics metrics;

/* labels[0..nroutes-1] name the routes; one more series, "unmatched",
 * is added for requests that matched no route.  Labels are borrowed and
 * must outlive the metrics. */
metrics *metrics_new(int nroutes, const char *const *labels);
void metrics_free(metrics *m);

/* route == -1 for unmatched requests. */
void metrics_request(metrics *m, int route, int status, uint64_t bytes_in, uint64_t bytes_out);
void metrics_upload_seconds(metrics *m, double seconds);
void metrics_connections(metrics *m, int delta);

/* Prometheus text exposition format; the caller frees the result. */
char *metrics_render(metrics *m);

#endif
