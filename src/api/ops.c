/* ops.c — operational endpoints: liveness, readiness, Prometheus metrics.
 * None needs an API key: they reveal no asset data, and load balancers and
 * scrapers rarely carry credentials. */
#include "api/app.h"
#include "events/amqp.h"

#include <stdio.h>
#include <stdlib.h>

void ops_healthz(http_req *r)
{
    http_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

/* On the work pool: the database ping and the store's check may wait (an
 * S3 that stalls holds the check for its 2 s bound), and an HTTP thread
 * that waited would hold every connection it serves — probes every few
 * seconds during an S3 stall took the threads one by one. */
static void readyz_work(http_req *r)
{
    app *a = http_req_app(r);
    db_conn *c = db_acquire(a->db);
    bool db_ok = c && db_ping(c) == DB_OK;
    db_release(a->db, c);
    bool store_ok = store_check(a->store);
    if (db_ok && store_ok) {
        http_reply_json(r, 200, json_pack("{s:s}", "status", "ready"));
        return;
    }
    http_reply_error(r, 503, "not_ready", "database %s, store %s", db_ok ? "ok" : "unavailable",
                     store_ok ? "ok" : "unavailable");
}

void ops_readyz(http_req *r) { http_req_defer(r, readyz_work); }

static int websocket_connections(app *a)
{
    int n = 0;
    for (int i = 0; i < a->nws; i++) n += ws_server_connections(a->ws[i]);
    return n;
}

/* --events-amqp-exchange's series, appended to text; only when it is on. */
static char *with_amqp(app *a, char *text)
{
    if (!a->amqp_events || !text) return text;
    amqp_events_stats st;
    amqp_events_get_stats(a->amqp_events, &st);
    char *all = NULL;
    int n = asprintf(&all,
                     "%s# HELP assetd_amqp_events_published_total Events the broker confirmed "
                     "(a retry after an outage may count one twice).\n"
                     "# TYPE assetd_amqp_events_published_total counter\n"
                     "assetd_amqp_events_published_total %llu\n"
                     "# HELP assetd_amqp_events_failures_total Failed connects, lost connections, "
                     "nacks, confirmation timeouts, events trimmed before publishing.\n"
                     "# TYPE assetd_amqp_events_failures_total counter\n"
                     "assetd_amqp_events_failures_total %llu\n"
                     "# HELP assetd_amqp_events_lag Events in the log not yet confirmed.\n"
                     "# TYPE assetd_amqp_events_lag gauge\n"
                     "assetd_amqp_events_lag %lld\n"
                     "# HELP assetd_amqp_events_connected 1 while connected to the broker.\n"
                     "# TYPE assetd_amqp_events_connected gauge\n"
                     "assetd_amqp_events_connected %d\n",
                     text, (unsigned long long)st.published, (unsigned long long)st.failures,
                     (long long)st.lag, st.connected ? 1 : 0);
    free(text);
    return n < 0 ? NULL : all;
}

void ops_metrics(http_req *r)
{
    app *a = http_req_app(r);
    char *text = metrics_render(http_server_metrics(a->server));
    if (!text) return;  /* the server answers 500 */
    char *all = NULL;
    uint64_t running, reread;
    tus_digests_counts(a->tus_digests, &running, &reread);
    int db_open_n, db_idle_n;
    db_pool_counts(a->db, &db_open_n, &db_idle_n);
    int n = asprintf(&all,
                     "%s# HELP assetd_event_subscribers Open event streams (WebSocket and SSE).\n"
                     "# TYPE assetd_event_subscribers gauge\n"
                     "assetd_event_subscribers %d\n"
                     "# HELP assetd_event_subscribers_dropped_total Streams cut off for reading "
                     "too slowly.\n"
                     "# TYPE assetd_event_subscribers_dropped_total counter\n"
                     "assetd_event_subscribers_dropped_total %lld\n"
                     "# HELP assetd_websocket_connections Open WebSocket connections.\n"
                     "# TYPE assetd_websocket_connections gauge\n"
                     "assetd_websocket_connections %d\n"
                     "# HELP assetd_gc_removed_total Abandoned uploads removed with their "
                     "bytes.\n"
                     "# TYPE assetd_gc_removed_total counter\n"
                     "assetd_gc_removed_total{kind=\"signed_upload\"} %llu\n"
                     "assetd_gc_removed_total{kind=\"tus\"} %llu\n"
                     "assetd_gc_removed_total{kind=\"tus_orphan\"} %llu\n"
                     "# HELP assetd_tus_completions_total Finished tus uploads, by how their "
                     "SHA-256 was had: kept running over the PATCHes, or read back.\n"
                     "# TYPE assetd_tus_completions_total counter\n"
                     "assetd_tus_completions_total{hash=\"running\"} %llu\n"
                     "assetd_tus_completions_total{hash=\"reread\"} %llu\n"
                     "# HELP assetd_db_connections This process's database connections.\n"
                     "# TYPE assetd_db_connections gauge\n"
                     "assetd_db_connections{state=\"open\"} %d\n"
                     "assetd_db_connections{state=\"idle\"} %d\n"
                     "# HELP assetd_db_listening 1 while the hub hears other processes' "
                     "commits from the database (PostgreSQL LISTEN); 0 on SQLite or while "
                     "it polls.\n"
                     "# TYPE assetd_db_listening gauge\n"
                     "assetd_db_listening %d\n",
                     text, hub_subscribers(a->hub), (long long)hub_dropped(a->hub),
                     websocket_connections(a), (unsigned long long)atomic_load(&a->gc_uploads),
                     (unsigned long long)atomic_load(&a->gc_tus),
                     (unsigned long long)atomic_load(&a->gc_tus_orphans),
                     (unsigned long long)running, (unsigned long long)reread, db_open_n,
                     db_idle_n, hub_listening(a->hub) ? 1 : 0);
    free(text);
    if (n < 0 || !(all = with_amqp(a, all))) return;
    http_reply_text(r, 200, "text/plain; version=0.0.4", all);
    free(all);
}
