/* assets.c — assets (db.h "Assets").
 *
 * The assets table: insert, the owner-scoped get, list and delete, and the
 * processing results workers write (get_any, set_processing/ready/failed).
 * Every state change appends its asset.* event inside the caller's
 * transaction (the outbox rule, dbi_in_transaction), the event carrying the
 * asset's JSON as clients see it (db_asset_json, slides.c).  Deleting
 * an asset also clears its slides, its stream parts and its slideshow, so the slideshow
 * delete is one of this file's statements: a statement's SQL lives in the
 * file whose functions run it (db_internal.h).
 */
#include "db/db_internal.h"
#include "util/timefmt.h"

#include <stdlib.h>

#define ASSET_COLS "seq, id, owner, kind, status, filename, content_type, size, sha256, created," \
                   " updated, renditions, meta, error_code, error_message, title, description, tags," \
                   " profile, cover"
const char *const dbi_sql_assets[Q_COUNT] = {
    [Q_ASSET_INSERT] = "INSERT INTO assets (id, owner, kind, status, filename, content_type,"
                       " size, sha256, created, updated, error_code, error_message, profile)"
                       " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13) RETURNING seq",
    [Q_ASSET_GET] = "SELECT " ASSET_COLS " FROM assets WHERE id = ?1 AND owner = ?2",
    [Q_ASSET_DELETE] = "DELETE FROM assets WHERE id = ?1 AND owner = ?2",
    [Q_ASSET_EXISTS] = "SELECT 1 FROM assets WHERE id = ?1",
    [Q_ASSET_LIST] = "SELECT " ASSET_COLS " FROM assets WHERE owner = ?1 AND seq < ?2"
                     " AND (CAST(?3 AS BIGINT) IS NULL OR kind = ?3)"
                     " AND (CAST(?4 AS BIGINT) IS NULL OR status = ?4)"
                     " ORDER BY seq DESC LIMIT ?5",
    [Q_ASSET_GET_ANY] = "SELECT " ASSET_COLS " FROM assets WHERE id = ?1",
    [Q_ASSET_SET_PROCESSING] = "UPDATE assets SET status = 1, error_code = '', error_message = '',"
                               " updated = ?2 WHERE id = ?1",
    [Q_ASSET_SET_READY] = "UPDATE assets SET status = 2, renditions = ?2, meta = ?3,"
                          " error_code = '', error_message = '', updated = ?4 WHERE id = ?1",
    [Q_ASSET_SET_FAILED] = "UPDATE assets SET status = 3, error_code = ?2, error_message = ?3,"
                           " updated = ?4 WHERE id = ?1",
    [Q_ASSET_SET_INFO] = "UPDATE assets SET title = ?2, description = ?3, tags = ?4, updated = ?5"
                         " WHERE id = ?1",
    [Q_ASSET_SET_COVER] = "UPDATE assets SET cover = ?2, updated = ?3 WHERE id = ?1",
    [Q_SHOW_DELETE] = "DELETE FROM slideshows WHERE asset_id = ?1",
};

static void read_asset(sql_stmt *s, void *out)
{
    asset *a = out;
    a->seq = sql_column_int64(s, 0);
    dbi_copy_text(a->id, sizeof a->id, s, 1);
    dbi_copy_text(a->owner, sizeof a->owner, s, 2);
    a->kind = (asset_kind)sql_column_int64(s, 3);
    a->status = (asset_status)sql_column_int64(s, 4);
    dbi_copy_text(a->filename, sizeof a->filename, s, 5);
    dbi_copy_text(a->content_type, sizeof a->content_type, s, 6);
    a->size = (uint64_t)sql_column_int64(s, 7);
    dbi_copy_text(a->sha256, sizeof a->sha256, s, 8);
    dbi_copy_text(a->created, sizeof a->created, s, 9);
    dbi_copy_text(a->updated, sizeof a->updated, s, 10);
    dbi_copy_text(a->renditions, sizeof a->renditions, s, 11);
    dbi_copy_text(a->meta, sizeof a->meta, s, 12);
    dbi_copy_text(a->error_code, sizeof a->error_code, s, 13);
    dbi_copy_text(a->error_message, sizeof a->error_message, s, 14);
    dbi_copy_text(a->title, sizeof a->title, s, 15);
    dbi_copy_text(a->description, sizeof a->description, s, 16);
    dbi_copy_text(a->tags, sizeof a->tags, s, 17);
    dbi_copy_text(a->profile, sizeof a->profile, s, 18);
    dbi_copy_text(a->cover, sizeof a->cover, s, 19);
}

/* An asset event carries the asset's JSON as clients see it. */
static db_status event_asset(db_conn *c, const char *type, const asset *a, int64_t now_ms)
{
    json_t *j = db_asset_json(c, a);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    db_status st = text ? db_event_append(c, type, a->id, a->owner, now_ms, text) : DB_ERROR;
    free(text);
    return st;
}

static db_status event_asset_id(db_conn *c, const char *type, const char *id, int64_t now_ms)
{
    asset a;
    db_status st = db_asset_get_any(c, id, &a);
    return st == DB_OK ? event_asset(c, type, &a, now_ms) : st;
}

db_status db_asset_insert(db_conn *c, asset *a)
{
    if (!dbi_in_transaction(c, "asset.created")) return DB_ERROR;
    sql_stmt *s = dbi_stmt(c, Q_ASSET_INSERT);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, a->id);
    sql_bind_text(s, 2, a->owner);
    sql_bind_int64(s, 3, (int)a->kind);
    sql_bind_int64(s, 4, (int)a->status);
    sql_bind_text(s, 5, a->filename);
    sql_bind_text(s, 6, a->content_type);
    sql_bind_int64(s, 7, (int64_t)a->size);
    sql_bind_text(s, 8, a->sha256);
    sql_bind_text(s, 9, a->created);
    sql_bind_text(s, 10, a->updated);
    sql_bind_text(s, 11, a->error_code);
    sql_bind_text(s, 12, a->error_message);
    sql_bind_text(s, 13, a->profile);
    db_status st = dbi_int64(c, s, &a->seq, "asset insert");
    if (st != DB_OK) return st == DB_NOT_FOUND ? dbi_fail(c, "asset insert") : st;
    int64_t now = time_now_ms();
    st = event_asset(c, "asset.created", a, now);
    if (st == DB_OK && a->status == STATUS_FAILED) st = event_asset(c, "asset.failed", a, now);
    return st;
}

db_status db_asset_get(db_conn *c, const char *owner, const char *id, asset *out)
{
    return dbi_get_owned(c, Q_ASSET_GET, id, owner, read_asset, out, "asset get");
}

db_status db_asset_delete(db_conn *c, const char *owner, const char *id)
{
    if (!dbi_in_transaction(c, "asset.deleted")) return DB_ERROR;
    asset gone;   /* the last state, for the event */
    db_status st = db_asset_get(c, owner, id, &gone);
    sql_stmt *s = st == DB_OK ? dbi_stmt(c, Q_ASSET_DELETE) : NULL;
    if (!s) return st == DB_OK ? DB_ERROR : st;
    sql_bind_text(s, 1, id);
    sql_bind_text(s, 2, owner);
    st = dbi_change(c, s, "asset delete");
    if (st == DB_OK) st = event_asset(c, "asset.deleted", &gone, time_now_ms());
    if (st == DB_OK) st = db_slides_clear(c, id);
    if (st == DB_OK) st = db_parts_clear(c, id);
    return st == DB_OK ? dbi_exec_one(c, Q_SHOW_DELETE, id, "slideshow delete") : st;
}

db_status db_asset_id_exists(db_conn *c, const char *id)
{
    sql_stmt *s = dbi_stmt(c, Q_ASSET_EXISTS);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, id);
    return dbi_row(c, s, NULL, NULL, "asset exists");
}

db_status db_asset_list(db_conn *c, const char *owner, const asset_filter *f, int limit,
                        asset *out, int *n)
{
    sql_stmt *s = dbi_stmt(c, Q_ASSET_LIST);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, owner);
    sql_bind_int64(s, 2, f->before_seq > 0 ? f->before_seq : INT64_MAX);
    if (f->by_kind) sql_bind_int64(s, 3, (int)f->kind);
    if (f->by_status) sql_bind_int64(s, 4, (int)f->status);
    sql_bind_int64(s, 5, limit);
    return dbi_rows(c, s, read_asset, out, sizeof *out, limit, n, "asset list");
}

/* ---------- processing results ---------- */

db_status db_asset_get_any(db_conn *c, const char *id, asset *out)
{
    sql_stmt *s = dbi_stmt(c, Q_ASSET_GET_ANY);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, id);
    return dbi_row(c, s, read_asset, out, "asset get any");
}

/* Binds id as ?1, the texts as ?2.., the time as the last parameter, then
 * appends the event named `event` with the changed asset. */
static db_status update_asset(db_conn *c, int q, const char *id, const char *const *texts,
                              int ntexts, int64_t now_ms, const char *event)
{
    if (!dbi_in_transaction(c, event)) return DB_ERROR;
    char now_text[32];
    time_format_ms(now_ms, now_text);
    sql_stmt *s = dbi_stmt(c, q);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, id);
    for (int i = 0; i < ntexts; i++) sql_bind_text(s, 2 + i, texts[i]);
    sql_bind_text(s, 2 + ntexts, now_text);
    db_status st = dbi_change(c, s, event);
    return st == DB_OK ? event_asset_id(c, event, id, now_ms) : st;
}

db_status db_asset_set_processing(db_conn *c, const char *id, int64_t now_ms)
{
    return update_asset(c, Q_ASSET_SET_PROCESSING, id, NULL, 0, now_ms, "asset.processing");
}

db_status db_asset_set_ready(db_conn *c, const char *id, const char *renditions_json,
                             const char *meta_json, int64_t now_ms)
{
    const char *texts[] = {renditions_json, meta_json};
    return update_asset(c, Q_ASSET_SET_READY, id, texts, 2, now_ms, "asset.ready");
}

db_status db_asset_set_info(db_conn *c, const asset *a, int64_t now_ms)
{
    const char *texts[] = {a->title, a->description, a->tags};
    return update_asset(c, Q_ASSET_SET_INFO, a->id, texts, 3, now_ms, "asset.updated");
}

db_status db_asset_set_cover(db_conn *c, const char *id, const char *cover_json,
                             int64_t now_ms)
{
    return update_asset(c, Q_ASSET_SET_COVER, id, &cover_json, 1, now_ms, "asset.updated");
}

db_status db_asset_set_failed(db_conn *c, const char *id, const char *code,
                              const char *message, int64_t now_ms)
{
    const char *texts[] = {code, message};
    return update_asset(c, Q_ASSET_SET_FAILED, id, texts, 2, now_ms, "asset.failed");
}

db_status db_asset_playable(db_conn *c, const char *id, int64_t now_ms)
{
    if (!dbi_in_transaction(c, "asset.playable")) return DB_ERROR;
    return event_asset_id(c, "asset.playable", id, now_ms);
}
