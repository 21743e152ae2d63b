/* sqlite_uploads.c — signed direct uploads on SQLite (db.h, core/upload.h).
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
const char *const sq_sql_uploads[Q_COUNT] = {
    [Q_UPLOAD_INSERT] = "INSERT INTO uploads (id, owner, object_key, filename, content_type, "
                        "size, sha256, state, expires_ms, created, profile) "
                        "VALUES (?,?,?,?,?,?,?,0,?,?,?) "
                        "ON CONFLICT (owner, object_key) DO NOTHING",
    [Q_UPLOAD_GET] = "SELECT " UPLOAD_COLS " FROM uploads WHERE id = ?1 AND owner = ?2",
    [Q_UPLOAD_GET_SEQ] = "SELECT " UPLOAD_COLS " FROM uploads WHERE seq = ?1 AND owner = ?2",
    [Q_UPLOAD_BY_KEY] = "SELECT " UPLOAD_COLS " FROM uploads WHERE owner = ?1 AND object_key = ?2",
    [Q_UPLOAD_GET_ANY] = "SELECT " UPLOAD_COLS " FROM uploads WHERE id = ?1",
    [Q_UPLOAD_SET_STATE] = "UPDATE uploads SET state = ?2, asset_made = asset_made OR ?2 = 1 "
                           "WHERE id = ?1",
    [Q_UPLOAD_RESIGN] = "UPDATE uploads SET expires_ms = ?2 WHERE id = ?1 AND state = 0",
    [Q_UPLOAD_EXPIRED] = "SELECT " UPLOAD_COLS " FROM uploads INDEXED BY uploads_pending "
                         "WHERE state = 0 AND asset_made = 0 AND expires_ms < ?1 "
                         "ORDER BY expires_ms LIMIT ?2",
    [Q_UPLOAD_DELETE] = "DELETE FROM uploads WHERE id = ?1",
};

static void read_upload(sqlite3_stmt *s, void *out)
{
    upload_rec *u = out;
    memset(u, 0, sizeof *u);
    u->seq = sqlite3_column_int64(s, 0);
    sq_copy_text(u->id, sizeof u->id, s, 1);
    sq_copy_text(u->owner, sizeof u->owner, s, 2);
    sq_copy_text(u->object_key, sizeof u->object_key, s, 3);
    sq_copy_text(u->filename, sizeof u->filename, s, 4);
    sq_copy_text(u->content_type, sizeof u->content_type, s, 5);
    u->size = (uint64_t)sqlite3_column_int64(s, 6);
    sq_copy_text(u->sha256, sizeof u->sha256, s, 7);
    u->state = sqlite3_column_int(s, 8) == 1 ? UPLOAD_COMPLETE : UPLOAD_PENDING;
    u->asset_made = sqlite3_column_int(s, 9) != 0;
    u->expires_ms = sqlite3_column_int64(s, 10);
    sq_copy_text(u->created, sizeof u->created, s, 11);
    sq_copy_text(u->profile, sizeof u->profile, s, 12);
}

db_status db_upload_insert(db_conn *c, upload_rec *u)
{
    sqlite3_stmt *s = sq_stmt(c, Q_UPLOAD_INSERT);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, u->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, u->owner, -1, SQLITE_STATIC);
    if (u->object_key[0]) sqlite3_bind_text(s, 3, u->object_key, -1, SQLITE_STATIC);
    else sqlite3_bind_null(s, 3);   /* NULLs never conflict: /v1 uploads have no key */
    sqlite3_bind_text(s, 4, u->filename, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, u->content_type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, (sqlite3_int64)u->size);
    sqlite3_bind_text(s, 7, u->sha256, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 8, u->expires_ms);
    sqlite3_bind_text(s, 9, u->created, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 10, u->profile, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return sq_fail(c, "upload insert");
    if (sqlite3_changes(c->h) == 0) return DB_NOT_FOUND;
    u->seq = sqlite3_last_insert_rowid(c->h);
    return DB_OK;
}

db_status db_upload_get(db_conn *c, const char *owner, const char *id, upload_rec *out)
{
    return sq_get_owned(c, Q_UPLOAD_GET, id, owner, read_upload, out, "upload get");
}

/* One row of statement q, whose parameters are already bound. */
static db_status one_row(db_conn *c, sqlite3_stmt *s, upload_rec *out, const char *what)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) read_upload(s, out);
    sqlite3_reset(s);
    return sq_lookup_result(c, rc, what);
}

db_status db_upload_get_seq(db_conn *c, const char *owner, int64_t seq, upload_rec *out)
{
    sqlite3_stmt *s = sq_stmt(c, Q_UPLOAD_GET_SEQ);
    if (!s) return DB_ERROR;
    sqlite3_bind_int64(s, 1, seq);
    sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
    return one_row(c, s, out, "upload get by seq");
}

db_status db_upload_by_key(db_conn *c, const char *owner, const char *object_key,
                           upload_rec *out)
{
    sqlite3_stmt *s = sq_stmt(c, Q_UPLOAD_BY_KEY);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, object_key, -1, SQLITE_STATIC);
    return one_row(c, s, out, "upload by key");
}

db_status db_upload_get_any(db_conn *c, const char *id, upload_rec *out)
{
    sqlite3_stmt *s = sq_stmt(c, Q_UPLOAD_GET_ANY);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    return one_row(c, s, out, "upload get");
}

db_status db_upload_set_state(db_conn *c, const char *id, upload_state st)
{
    sqlite3_stmt *s = sq_stmt(c, Q_UPLOAD_SET_STATE);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, (int)st);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return sq_change_result(c, rc, "upload state");
}

db_status db_upload_resign(db_conn *c, const char *id, int64_t expires_ms)
{
    sqlite3_stmt *s = sq_stmt(c, Q_UPLOAD_RESIGN);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, expires_ms);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return sq_change_result(c, rc, "upload resign");
}

db_status db_upload_expired(db_conn *c, int64_t before_ms, int limit, upload_rec *out, int *n)
{
    sqlite3_stmt *s = sq_stmt(c, Q_UPLOAD_EXPIRED);
    *n = 0;
    if (!s) return DB_ERROR;
    sqlite3_bind_int64(s, 1, before_ms);
    sqlite3_bind_int(s, 2, limit);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && *n < limit) read_upload(s, &out[(*n)++]);
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? DB_OK : sq_fail(c, "uploads expired");
}

db_status db_upload_delete(db_conn *c, const char *id)
{
    return sq_exec_one(c, Q_UPLOAD_DELETE, id, "upload delete");
}
