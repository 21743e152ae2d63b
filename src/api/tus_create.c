/* tus_create.c — POST /v1/tus: creating a resumable upload (tus 1.0's
 * creation, creation-with-upload, creation-defer-length, and the final
 * upload of concatenation); the rest of the protocol is api/tus.c.
 *
 * A POST without bytes inserts the row on the pool (create_work).  With
 * bytes (creation-with-upload) the row is inserted when the headers arrive,
 * born locked by this request, and the body is a write like a PATCH's
 * (tus_internal.h).  A final upload checks that its parts are complete
 * partial uploads of the same owner, copies them into its own object
 * (tus_concat), then completes like any upload whose last byte arrived;
 * the parts go once it is an asset.
 */
#include "api/tus_internal.h"
#include "util/encode.h"
#include "util/parse.h"
#include "util/timefmt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The parts of Upload-Concat: final;<url> <url>...: ids, for create_work. */
static bool parse_final(http_req *r, tus_write *w, const char *list)
{
    if (!(w->parts = calloc(TUS_PARTS_MAX, sizeof *w->parts))) return false;
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, " ");
        const char *slash = len ? memrchr(p, '/', len) : NULL;
        const char *id = slash ? slash + 1 : p;
        size_t idlen = len - (size_t)(id - p);
        if (idlen != ID_LEN || w->nparts == TUS_PARTS_MAX) return false;
        memcpy(w->parts[w->nparts].id, id, ID_LEN);
        w->parts[w->nparts++].id[ID_LEN] = '\0';
        if (!id_is_valid(w->parts[w->nparts - 1].id)) return false;
        p += len;
        while (*p == ' ') p++;
    }
    return w->nparts > 0;
}

/* What every POST says: concat, length, metadata; false with a reply. */
static bool parse_creation(http_req *r, tus_write *w)
{
    app *a = http_req_app(r);
    tus_upload *u = &w->up;
    const char *concat = http_req_header(r, "Upload-Concat");
    const char *length = http_req_header(r, "Upload-Length");
    const char *defer = http_req_header(r, "Upload-Defer-Length");
    uint64_t n = 0;
    if (concat && strcmp(concat, "partial") == 0) u->concat = TUS_PARTIAL;
    else if (concat && strncmp(concat, "final;", 6) == 0) u->concat = TUS_FINAL;
    else if (concat) {
        tus_error(r, 400, "invalid_concat", "Upload-Concat is partial or final;<urls>");
        return false;
    }
    if (u->concat == TUS_FINAL) {
        if (length || defer || !parse_final(r, w, concat + 6)) {
            tus_error(r, 400, "invalid_concat", "a final upload lists 1 to %d partial uploads "
                                                "and no length", TUS_PARTS_MAX);
            return false;
        }
    } else if ((length != NULL) == (defer != NULL) || (defer && strcmp(defer, "1") != 0) ||
               (length && !parse_u64(length, &n))) {
        tus_error(r, 400, "invalid_length", "send Upload-Length, or Upload-Defer-Length: 1");
        return false;
    }
    if (n > a->max_upload) {
        tus_error(r, 413, "payload_too_large", "Tus-Max-Size is %llu",
                  (unsigned long long)a->max_upload);
        return false;
    }
    if (!tus_metadata_parse(http_req_header(r, "Upload-Metadata"), u)) {
        tus_error(r, 400, "invalid_metadata", "Upload-Metadata: key base64,key base64 "
                                              "(at most %d bytes)", TUS_METADATA_MAX);
        return false;
    }
    if (!asset_profile_parse(u->profile, u->profile)) {
        tus_error(r, 400, "unknown_profile", "profile must be " ASSET_PROFILES);
        return false;
    }
    u->length = u->concat == TUS_FINAL ? 0 : defer ? -1 : (int64_t)n;
    snprintf(u->owner, sizeof u->owner, "%s", http_req_owner(r));
    time_format_now(u->created);
    u->expires_ms = time_now_ms() + a->tus_expiry_ms;
    if (!id_generate(u->id)) {
        tus_error(r, 500, "internal", "cannot make an id");
        return false;
    }
    w->length = u->length;
    w->creating = true;
    return true;
}

bool tus_create_begin(http_req *r)
{
    app *a = http_req_app(r);
    if (!tus_check_version(r)) return false;
    if (!api_rate_allowed(r)) {
        http_reply_header(r, "Tus-Resumable", TUS_VERSION);
        return false;
    }
    tus_write *w = tus_write_new(r);
    if (!w || !parse_creation(r, w)) return false;
    if (!tus_has_body(r)) return true;   /* create_work, after the (empty) body */
    /* creation-with-upload: the row is born locked by this request. */
    if (w->up.concat == TUS_FINAL) {
        tus_error(r, 400, "invalid_concat", "a final upload takes no bytes");
        return false;
    }
    if (!tus_is_octets(r) || !tus_parse_checksum(r, w)) return false;
    int64_t until = time_now_ms() + a->tus_lease_ms;
    if (!tus_token_new(w->up.lock_token)) return false;
    w->up.lock_until = until;
    db_conn *c = db_acquire(a->db);
    db_status st = c ? db_tus_insert(c, &w->up) : DB_ERROR;
    db_release(a->db, c);
    if (st != DB_OK) {
        tus_error(r, 503, "database_unavailable", "try again");
        return false;
    }
    return tus_write_open(r, w, w->up.lock_token, until);
}

bool tus_create_data(http_req *r, const char *data, size_t len) { return tus_write_data(r, data, len); }

/* A final upload: checks its parts, assembles them, completes. */
static void concat_work(http_req *r, db_conn *c, tus_write *w)
{
    app *a = http_req_app(r);
    tus_upload *u = &w->up;
    uint64_t total = 0;
    size_t used = 0;
    for (int i = 0; i < w->nparts; i++) {
        tus_upload *p = &w->parts[i];
        db_status st = db_tus_get(c, u->owner, p->id, p);
        if (st == DB_ERROR) {
            tus_error(r, 503, "database_unavailable", "try again");
            return;
        }
        if (st == DB_NOT_FOUND || p->concat != TUS_PARTIAL || p->length < 0 ||
            p->offset != (uint64_t)p->length) {
            tus_error(r, 400, "invalid_concat", "part %d is not a complete partial upload", i + 1);
            return;
        }
        total += p->offset;
        used += (size_t)snprintf(u->parts + used, sizeof u->parts - used, "%s%s",
                                 i ? " " : "", p->id);
    }
    if (total > a->max_upload) {
        tus_error(r, 413, "payload_too_large", "Tus-Max-Size is %llu",
                  (unsigned long long)a->max_upload);
        return;
    }
    /* Born locked, assembled, then at offset == length like any upload
     * whose last PATCH committed: completion is the same from here. */
    u->length = (int64_t)total;
    if (!tus_token_new(u->lock_token)) return;
    u->lock_until = time_now_ms() + a->tus_lease_ms;
    if (db_tus_insert(c, u) != DB_OK) {
        tus_error(r, 503, "database_unavailable", "try again");
        return;
    }
    if (!tus_concat(a->store, u->id, w->parts, w->nparts)) {
        db_tus_unlock(c, u->id, u->lock_token);
        tus_error(r, 507, "storage_failed", "could not concatenate the parts");
        return;
    }
    if (db_tus_advance(c, u->id, u->lock_token, total, u->length, u->expires_ms, true) != DB_OK) {
        tus_error(r, 503, "database_unavailable", "try again");
        return;
    }
    u->offset = total;
    asset as;
    tus_done d = tus_complete(c, a->store, a->sniffer, a->tus_digests, u, &as);
    if (d != TUS_DONE_OK) {
        db_tus_unlock(c, u->id, u->lock_token);
        tus_reply_done_failure(r, d);
        return;
    }
    u->state = TUS_COMPLETE;
    hub_poke(a->hub);
    /* The parts served their purpose: nobody resumes them any more. */
    for (int i = 0; i < w->nparts; i++) {
        if (db_tus_delete(c, w->parts[i].id) == DB_OK) tus_bytes_remove(a->store, &w->parts[i]);
    }
    tus_reply_written(r, w);
}

static void create_work(http_req *r)
{
    app *a = http_req_app(r);
    tus_write *w = http_req_data(r);
    tus_upload *u = &w->up;
    db_conn *c = db_acquire(a->db);
    if (!c) {
        tus_error(r, 503, "database_unavailable", "try again");
    } else if (u->concat == TUS_FINAL) {
        concat_work(r, c, w);
    } else if (u->length == 0 && u->concat == TUS_PLAIN) {
        /* Nothing to wait for: an empty object, and the asset at once. */
        store_append *obj = store_append_open(a->store, u->id, 0);
        if (!obj || !store_append_commit(obj)) tus_storage_error(r, errno, "try again");
        else if (db_tus_insert(c, u) != DB_OK) tus_error(r, 503, "database_unavailable", "again");
        else if (tus_finish_upload(r, c, u, NULL)) tus_reply_written(r, w);
    } else if (db_tus_insert(c, u) != DB_OK) {
        tus_error(r, 503, "database_unavailable", "try again");
    } else {
        tus_reply_written(r, w);
    }
    db_release(a->db, c);
}

void tus_create(http_req *r)
{
    tus_write *w = http_req_data(r);
    http_req_defer(r, w->obj ? tus_commit_work : create_work);
}
