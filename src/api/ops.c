/* ops.c — operational endpoints: liveness, readiness, Prometheus metrics.
 * None needs an API key: they reveal no asset data, and load balancers and
 * scrapers rarely carry credentials. */
#include "api/app.h"

#include <stdlib.h>

void ops_healthz(http_req *r)
{
    http_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

void ops_readyz(http_req *r)
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

void ops_metrics(http_req *r)
{
    app *a = http_req_app(r);
    char *text = metrics_render(http_server_metrics(a->server));
    if (!text) return;  /* the server answers 500 */
    http_reply_text(r, 200, "text/plain; version=0.0.4", text);
    free(text);
}
