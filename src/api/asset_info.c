/* asset_info.c — PATCH /v1/assets/{id}: the owner's title, description and
 * tags, for an asset of any kind.
 *
 * The body is a small JSON object (json_body.c); core/asset.c checks it
 * (asset_info_apply).  The read, the change and its asset.updated event
 * are one transaction on the work pool (a write never runs on an HTTP
 * thread), so two PATCHes of different fields never lose one another.
 * Another owner's asset is a 404 like a missing one.
 */
#include "api/app.h"
#include "util/timefmt.h"

#include <stdlib.h>

static void patch_work(http_req *r)
{
    app *a = http_req_app(r);
    asset *as = malloc(sizeof *as);   /* ~8 KB: not on a pool thread's stack */
    db_conn *c = as ? db_acquire(a->db) : NULL;
    char err[160] = "";
    json_t *body = NULL, *reply = NULL;
    /* the owner first: another owner's asset is a 404 whatever the body */
    db_status st = c && db_begin(c) == DB_OK
                       ? db_asset_get(c, http_req_owner(r), http_req_param(r, 0), as)
                       : DB_ERROR;
    bool replied = false;
    if (st == DB_OK && !(body = json_body_object(r))) replied = true;
    else if (st == DB_OK && !asset_info_apply(as, body, err, sizeof err)) {
        http_reply_error(r, 400, "invalid_parameter", "%s", err);
        replied = true;
    } else if (st == DB_OK) {
        st = db_asset_set_info(c, as, time_now_ms());
        if (st == DB_OK && db_commit(c) != DB_OK) st = DB_ERROR;
        if (st == DB_OK && db_asset_get_any(c, as->id, as) == DB_OK) reply = db_asset_json(c, as);
    }
    if ((st != DB_OK || replied) && c) db_rollback(c);
    db_release(a->db, c);
    json_decref(body);
    free(as);
    if (replied) return;
    if (st == DB_NOT_FOUND) {
        http_reply_error(r, 404, "not_found", "no such asset");
    } else if (st != DB_OK || !reply) {
        json_decref(reply);
        http_reply_error(r, 503, "database_unavailable", "try again");
    } else {
        hub_poke(a->hub);
        http_reply_json(r, 200, reply);
    }
}

void assets_patch(http_req *r)
{
    if (!id_is_valid(http_req_param(r, 0))) {
        http_reply_error(r, 404, "not_found", "no such asset");
        return;
    }
    http_req_defer(r, patch_work);
}
