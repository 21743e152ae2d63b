/* uploads.c — signed direct uploads (db.h, core/upload.h).
 *
 * The uploads table: one row per signed upload, pending until `complete`
 * verified the object and created its asset.  Expired pending rows are
 * found through the partial index uploads_pending, so gc never scans the
 * completed ones.
 */
#include "db/db_internal.h"

#include <string.h>

#define UPLOAD_COLS \
    "seq, id, owner, object_key, filename, content_type, size, sha256, state, asset_made, " \
    "expires_ms, created, profile"
const char *const dbi_sql_uploads[Q_COUNT] = {
    [Q_UPLOAD_INSERT] = "INSERT INTO uploads (id, owner, object_key, filename, content_type, "
                        "size, sha256, state, expires_ms, created, profile) "
                        "VALUES (?1,?2,?3,?4,?5,?6,?7,0,?8,?9,?10) "
                        "ON CONFLICT (owner, object_key) DO NOTHING RETURNING seq",
    [Q_UPLOAD_GET] = "SELECT " UPLOAD_COLS " FROM uploads WHERE id = ?1 AND owner = ?2",
    [Q_UPLOAD_GET_SEQ] = "SELECT " UPLOAD_COLS " FROM uploads WHERE seq = ?1 AND owner = ?2",
    [Q_UPLOAD_BY_KEY] = "SELECT " UPLOAD_COLS " FROM uploads WHERE owner = ?1 AND object_key = ?2",
    [Q_UPLOAD_GET_ANY] = "SELECT " UPLOAD_COLS " FROM uploads WHERE id = ?1",
    [Q_UPLOAD_SET_STATE] = "UPDATE uploads SET state = ?2,"
                           " asset_made = CASE WHEN CAST(?2 AS BIGINT) = 1 THEN 1"
                           " ELSE asset_made END "
                           "WHERE id = ?1",
    [Q_UPLOAD_RESIGN] = "UPDATE uploads SET expires_ms = ?2 WHERE id = ?1 AND state = 0",
    /* PostgreSQL's driver drops the INDEXED BY. */
    [Q_UPLOAD_EXPIRED] = "SELECT " UPLOAD_COLS " FROM uploads INDEXED BY uploads_pending "
                         "WHERE state = 0 AND asset_made = 0 AND expires_ms < ?1 "
                         "ORDER BY expires_ms LIMIT ?2",
    [Q_UPLOAD_DELETE] = "DELETE FROM uploads WHERE id = ?1",
};

static void read_upload(sql_stmt *s, void *out)
{
    upload_rec *u = out;
    memset(u, 0, sizeof *u);
    u->seq = sql_column_int64(s, 0);
    dbi_copy_text(u->id, sizeof u->id, s, 1);
    dbi_copy_text(u->owner, sizeof u->owner, s, 2);
    dbi_copy_text(u->object_key, sizeof u->object_key, s, 3);
    dbi_copy_text(u->filename, sizeof u->filename, s, 4);
    dbi_copy_text(u->content_type, sizeof u->content_type, s, 5);
    u->size = (uint64_t)sql_column_int64(s, 6);
    dbi_copy_text(u->sha256, sizeof u->sha256, s, 7);
    u->state = sql_column_int64(s, 8) == 1 ? UPLOAD_COMPLETE : UPLOAD_PENDING;
    u->asset_made = sql_column_int64(s, 9) != 0;
    u->expires_ms = sql_column_int64(s, 10);
    dbi_copy_text(u->created, sizeof u->created, s, 11);
    dbi_copy_text(u->profile, sizeof u->profile, s, 12);
}

db_status db_upload_insert(db_conn *c, upload_rec *u)
{
    sql_stmt *s = dbi_stmt(c, Q_UPLOAD_INSERT);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, u->id);
    sql_bind_text(s, 2, u->owner);
    if (u->object_key[0]) sql_bind_text(s, 3, u->object_key);
    else sql_bind_null(s, 3);   /* NULLs never conflict: /v1 uploads have no key */
    sql_bind_text(s, 4, u->filename);
    sql_bind_text(s, 5, u->content_type);
    sql_bind_int64(s, 6, (int64_t)u->size);
    sql_bind_text(s, 7, u->sha256);
    sql_bind_int64(s, 8, u->expires_ms);
    sql_bind_text(s, 9, u->created);
    sql_bind_text(s, 10, u->profile);
    return dbi_int64(c, s, &u->seq, "upload insert");   /* no row: the key's upload exists */
}

db_status db_upload_get(db_conn *c, const char *owner, const char *id, upload_rec *out)
{
    return dbi_get_owned(c, Q_UPLOAD_GET, id, owner, read_upload, out, "upload get");
}

db_status db_upload_get_seq(db_conn *c, const char *owner, int64_t seq, upload_rec *out)
{
    sql_stmt *s = dbi_stmt(c, Q_UPLOAD_GET_SEQ);
    if (!s) return DB_ERROR;
    sql_bind_int64(s, 1, seq);
    sql_bind_text(s, 2, owner);
    return dbi_row(c, s, read_upload, out, "upload get by seq");
}

db_status db_upload_by_key(db_conn *c, const char *owner, const char *object_key,
                           upload_rec *out)
{
    sql_stmt *s = dbi_stmt(c, Q_UPLOAD_BY_KEY);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, owner);
    sql_bind_text(s, 2, object_key);
    return dbi_row(c, s, read_upload, out, "upload by key");
}

db_status db_upload_get_any(db_conn *c, const char *id, upload_rec *out)
{
    sql_stmt *s = dbi_stmt(c, Q_UPLOAD_GET_ANY);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, id);
    return dbi_row(c, s, read_upload, out, "upload get");
}

db_status db_upload_set_state(db_conn *c, const char *id, upload_state st)
{
    sql_stmt *s = dbi_stmt(c, Q_UPLOAD_SET_STATE);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, id);
    sql_bind_int64(s, 2, (int)st);
    return dbi_change(c, s, "upload state");
}

db_status db_upload_resign(db_conn *c, const char *id, int64_t expires_ms)
{
    sql_stmt *s = dbi_stmt(c, Q_UPLOAD_RESIGN);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, id);
    sql_bind_int64(s, 2, expires_ms);
    return dbi_change(c, s, "upload resign");
}

db_status db_upload_expired(db_conn *c, int64_t before_ms, int limit, upload_rec *out, int *n)
{
    sql_stmt *s = dbi_stmt(c, Q_UPLOAD_EXPIRED);
    *n = 0;
    if (!s) return DB_ERROR;
    sql_bind_int64(s, 1, before_ms);
    sql_bind_int64(s, 2, limit);
    return dbi_rows(c, s, read_upload, out, sizeof *out, limit, n, "uploads expired");
}

/* DB_NOT_FOUND when the row was already gone: processes collecting at
 * once (serve processes on one database) count only what they removed. */
db_status db_upload_delete(db_conn *c, const char *id)
{
    return dbi_change_one(c, Q_UPLOAD_DELETE, id, "upload delete");
}
