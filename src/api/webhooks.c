/* webhooks.c — /v1/webhooks: endpoints that receive the owner's events
 * (core/webhook.h for the delivery format; events/webhooks.h sends them). */
#include "api/app.h"
#include "util/timefmt.h"

#include <stdlib.h>
#include <string.h>

#define HOOK_LIST_MAX 100
#define DELIVERY_LIST_MAX 100

static void reply_db_error(http_req *r)
{
    http_reply_error(r, 503, "database_unavailable", "try again");
}

static void create_work(http_req *r)
{
    app *a = http_req_app(r);
    json_t *body = json_body_object(r);
    if (!body) return;
    const char *url = json_string_value(json_object_get(body, "url"));
    char events[WEBHOOK_EVENTS_MAX + 1];
    const char *why = "url must be a string";
    webhook w;
    bool valid = url && webhook_url_allowed(url, a->webhook_allow_local, &why) &&
                 webhook_events_parse(json_object_get(body, "events"), events, &why);
    if (!valid) {
        http_reply_error(r, 422, "invalid_webhook", "%s", why);
    } else if (!webhook_init(&w, http_req_owner(r), url, events, time_now_ms())) {
        http_reply_error(r, 500, "internal", "cannot generate a secret");
    } else {
        db_conn *c = db_acquire(a->db);
        db_status st = c ? db_webhook_insert(c, &w) : DB_ERROR;
        db_release(a->db, c);
        if (st == DB_OK) http_reply_json(r, 201, webhook_to_json(&w, true));
        else reply_db_error(r);
    }
    json_decref(body);
}

void webhooks_create(http_req *r) { http_req_defer(r, create_work); }

static bool load(http_req *r, webhook *w)
{
    app *a = http_req_app(r);
    db_conn *c = db_acquire(a->db);
    db_status st = c ? db_webhook_get(c, http_req_owner(r), http_req_param(r, 0), w) : DB_ERROR;
    db_release(a->db, c);
    if (st == DB_NOT_FOUND) http_reply_error(r, 404, "not_found", "no such webhook");
    else if (st != DB_OK) reply_db_error(r);
    return st == DB_OK;
}

void webhooks_get(http_req *r)
{
    webhook w;
    if (load(r, &w)) http_reply_json(r, 200, webhook_to_json(&w, false));
}

void webhooks_list(http_req *r)
{
    app *a = http_req_app(r);
    int limit;
    if (!query_limit(r, HOOK_LIST_MAX, HOOK_LIST_MAX, &limit)) return;
    webhook *rows = malloc(sizeof *rows * (size_t)limit);
    db_conn *c = rows ? db_acquire(a->db) : NULL;
    int n = 0;
    db_status st = c ? db_webhook_list(c, http_req_owner(r), limit, rows, &n) : DB_ERROR;
    db_release(a->db, c);
    json_t *items = json_array();
    for (int i = 0; st == DB_OK && i < n; i++)
        json_array_append_new(items, webhook_to_json(&rows[i], false));
    free(rows);
    if (st == DB_OK) http_reply_json(r, 200, json_pack("{s:o}", "items", items));
    else {
        json_decref(items);
        reply_db_error(r);
    }
}

static void delete_work(http_req *r)
{
    app *a = http_req_app(r);
    db_conn *c = db_acquire(a->db);
    db_status st = c ? db_webhook_delete(c, http_req_owner(r), http_req_param(r, 0)) : DB_ERROR;
    db_release(a->db, c);
    if (st == DB_OK) http_reply_empty(r, 204);
    else if (st == DB_NOT_FOUND) http_reply_error(r, 404, "not_found", "no such webhook");
    else reply_db_error(r);
}

void webhooks_delete(http_req *r) { http_req_defer(r, delete_work); }

void webhooks_deliveries(http_req *r)
{
    app *a = http_req_app(r);
    webhook w;
    int limit;
    if (!query_limit(r, DELIVERY_LIST_MAX, DELIVERY_LIST_MAX, &limit) || !load(r, &w)) return;
    webhook_delivery *rows = malloc(sizeof *rows * (size_t)limit);
    db_conn *c = rows ? db_acquire(a->db) : NULL;
    int n = 0;
    db_status st = c ? db_webhook_deliveries(c, http_req_owner(r), w.id, limit, rows, &n)
                     : DB_ERROR;
    db_release(a->db, c);
    json_t *items = json_array();
    for (int i = 0; st == DB_OK && i < n; i++)
        json_array_append_new(items, webhook_delivery_to_json(&rows[i]));
    free(rows);
    if (st == DB_OK) http_reply_json(r, 200, json_pack("{s:o}", "items", items));
    else {
        json_decref(items);
        reply_db_error(r);
    }
}
