/* tus.c — resumable (tus) uploads (db.h, core/tus.h).
 *
 * The tus_uploads table: one row per upload until it is terminated.  The
 * lease is two columns, taken by a conditional UPDATE inside a write
 * transaction (db_tus_lock, db_begin), so two writers — threads or processes — can
 * never both see themselves holding it; every later write names the token
 * (WHERE lock_token = ?2), so a writer whose lease was taken over changes
 * nothing.
 *
 * The lease and the offset commit without waiting for the disk
 * (dbi_relaxed): a PATCH waits for them before its answer, and a client
 * waits for that answer before its next PATCH, so two syncs per PATCH
 * were a third of tus's cost against a plain POST (bench/tus.sh).  Safe
 * because the bytes an offset names are fdatasync'ed before the offset is
 * written: a power cut that loses the commit leaves an older offset, still
 * no greater than the durable bytes, and the client sends the rest again;
 * a lost lease only means nobody holds it.  A process crash loses nothing.
 */
#include "db/db_internal.h"

#include <string.h>

#define TUS_COLS \
    "id, owner, length, upload_offset, metadata, filename, filetype, concat, parts, state, " \
    "lock_token, lock_until, expires_ms, created, profile"
const char *const dbi_sql_tus[Q_COUNT] = {
    [Q_TUS_INSERT] = "INSERT INTO tus_uploads (" TUS_COLS ") "
                     "VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)",
    [Q_TUS_GET] = "SELECT " TUS_COLS " FROM tus_uploads WHERE id = ?1 AND owner = ?2",
    [Q_TUS_EXISTS] = "SELECT 1 FROM tus_uploads WHERE id = ?1",
    [Q_TUS_LOCK] = "UPDATE tus_uploads SET lock_token = ?3, lock_until = ?4 "
                   "WHERE id = ?1 AND owner = ?2 AND state = 0 AND upload_offset = ?5 "
                   "AND expires_ms > ?6 AND (lock_token = '' OR lock_until < ?6)",
    [Q_TUS_RENEW] = "UPDATE tus_uploads SET lock_until = ?3 WHERE id = ?1 AND lock_token = ?2",
    [Q_TUS_UNLOCK] = "UPDATE tus_uploads SET lock_token = '', lock_until = 0 "
                     "WHERE id = ?1 AND lock_token = ?2",
    [Q_TUS_ADVANCE] = "UPDATE tus_uploads SET upload_offset = ?3, length = ?4, expires_ms = ?5, "
                      "lock_token = CASE WHEN ?6 = 1 THEN lock_token ELSE '' END, "
                      "lock_until = CASE WHEN ?6 = 1 THEN lock_until ELSE 0 END "
                      "WHERE id = ?1 AND lock_token = ?2",
    [Q_TUS_COMPLETE] = "UPDATE tus_uploads SET state = 1, lock_token = '', lock_until = 0 "
                       "WHERE id = ?1 AND state = 0",
    [Q_TUS_DELETE] = "DELETE FROM tus_uploads WHERE id = ?1",
    /* Uploading, past its expiry, and nobody writing (a lease that ran out
     * counts as nobody).  PostgreSQL's driver drops the INDEXED BY. */
    [Q_TUS_EXPIRED] = "SELECT " TUS_COLS " FROM tus_uploads INDEXED BY tus_expiring "
                      "WHERE state = 0 AND expires_ms < ?1 AND lock_until < ?2 "
                      "ORDER BY expires_ms LIMIT ?3",
    /* The collector's lease on an expired upload (Q_TUS_EXPIRED's test,
     * rechecked): one collector at a time removes its bytes. */
    [Q_TUS_CLAIM_EXPIRED] = "UPDATE tus_uploads SET lock_token = ?2, lock_until = ?3 "
                            "WHERE id = ?1 AND state = 0 AND expires_ms < ?4 AND lock_until < ?4",
};

static void read_tus(sql_stmt *s, void *out)
{
    tus_upload *u = out;
    memset(u, 0, sizeof *u);
    dbi_copy_text(u->id, sizeof u->id, s, 0);
    dbi_copy_text(u->owner, sizeof u->owner, s, 1);
    u->length = sql_column_int64(s, 2);
    u->offset = (uint64_t)sql_column_int64(s, 3);
    dbi_copy_text(u->metadata, sizeof u->metadata, s, 4);
    dbi_copy_text(u->filename, sizeof u->filename, s, 5);
    dbi_copy_text(u->filetype, sizeof u->filetype, s, 6);
    int concat = sql_column_int64(s, 7);
    u->concat = concat == 1 ? TUS_PARTIAL : concat == 2 ? TUS_FINAL : TUS_PLAIN;
    dbi_copy_text(u->parts, sizeof u->parts, s, 8);
    u->state = sql_column_int64(s, 9) == 1 ? TUS_COMPLETE : TUS_UPLOADING;
    dbi_copy_text(u->lock_token, sizeof u->lock_token, s, 10);
    u->lock_until = sql_column_int64(s, 11);
    u->expires_ms = sql_column_int64(s, 12);
    dbi_copy_text(u->created, sizeof u->created, s, 13);
    dbi_copy_text(u->profile, sizeof u->profile, s, 14);
}

db_status db_tus_insert(db_conn *c, const tus_upload *u)
{
    sql_stmt *s = dbi_stmt(c, Q_TUS_INSERT);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, u->id);
    sql_bind_text(s, 2, u->owner);
    sql_bind_int64(s, 3, u->length);
    sql_bind_int64(s, 4, (int64_t)u->offset);
    sql_bind_text(s, 5, u->metadata);
    sql_bind_text(s, 6, u->filename);
    sql_bind_text(s, 7, u->filetype);
    sql_bind_int64(s, 8, (int)u->concat);
    sql_bind_text(s, 9, u->parts);
    sql_bind_int64(s, 10, (int)u->state);
    sql_bind_text(s, 11, u->lock_token);
    sql_bind_int64(s, 12, u->lock_until);
    sql_bind_int64(s, 13, u->expires_ms);
    sql_bind_text(s, 14, u->created);
    sql_bind_text(s, 15, u->profile);
    return dbi_done(c, s, "tus insert");
}

db_status db_tus_get(db_conn *c, const char *owner, const char *id, tus_upload *out)
{
    return dbi_get_owned(c, Q_TUS_GET, id, owner, read_tus, out, "tus get");
}

db_status db_tus_exists(db_conn *c, const char *id)
{
    sql_stmt *s = dbi_stmt(c, Q_TUS_EXISTS);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, id);
    return dbi_row(c, s, NULL, NULL, "tus exists");
}

static db_status lock_relaxed(db_conn *c, const char *owner, const char *id, uint64_t expect,
                              const char *token, int64_t now_ms, int64_t until_ms,
                              tus_upload *out, bool *taken);

db_status db_tus_lock(db_conn *c, const char *owner, const char *id, uint64_t expect,
                      const char *token, int64_t now_ms, int64_t until_ms, tus_upload *out,
                      bool *taken)
{
    *taken = false;
    dbi_relaxed(c, true);
    db_status st = lock_relaxed(c, owner, id, expect, token, now_ms, until_ms, out, taken);
    dbi_relaxed(c, false);
    return st;
}

static db_status lock_relaxed(db_conn *c, const char *owner, const char *id, uint64_t expect,
                              const char *token, int64_t now_ms, int64_t until_ms,
                              tus_upload *out, bool *taken)
{
    sql_stmt *s;
    if (db_begin(c) != DB_OK || !(s = dbi_stmt(c, Q_TUS_LOCK))) {
        db_rollback(c);
        return DB_ERROR;
    }
    sql_bind_text(s, 1, id);
    sql_bind_text(s, 2, owner);
    sql_bind_text(s, 3, token);
    sql_bind_int64(s, 4, until_ms);
    sql_bind_int64(s, 5, (int64_t)expect);
    sql_bind_int64(s, 6, now_ms);
    if (dbi_done(c, s, "tus lock") != DB_OK) {
        db_rollback(c);
        return DB_ERROR;
    }
    *taken = dbi_changes(c) == 1;
    db_status st = db_tus_get(c, owner, id, out);
    if (st == DB_ERROR || db_commit(c) != DB_OK) {
        db_rollback(c);
        *taken = false;
        return DB_ERROR;
    }
    return st;
}

/* Runs q, "... WHERE id = ?1 AND lock_token = ?2", with ?3.. bound by the caller. */
static db_status with_token(db_conn *c, sql_stmt *s, const char *id, const char *token,
                            const char *what)
{
    sql_bind_text(s, 1, id);
    sql_bind_text(s, 2, token);
    dbi_relaxed(c, true);
    db_status st = dbi_change(c, s, what);
    dbi_relaxed(c, false);
    return st;
}

db_status db_tus_renew(db_conn *c, const char *id, const char *token, int64_t until_ms)
{
    sql_stmt *s = dbi_stmt(c, Q_TUS_RENEW);
    if (!s) return DB_ERROR;
    sql_bind_int64(s, 3, until_ms);
    return with_token(c, s, id, token, "tus renew");
}

db_status db_tus_unlock(db_conn *c, const char *id, const char *token)
{
    sql_stmt *s = dbi_stmt(c, Q_TUS_UNLOCK);
    return s ? with_token(c, s, id, token, "tus unlock") : DB_ERROR;
}

db_status db_tus_advance(db_conn *c, const char *id, const char *token, uint64_t offset,
                         int64_t length, int64_t expires_ms, bool keep)
{
    sql_stmt *s = dbi_stmt(c, Q_TUS_ADVANCE);
    if (!s) return DB_ERROR;
    sql_bind_int64(s, 3, (int64_t)offset);
    sql_bind_int64(s, 4, length);
    sql_bind_int64(s, 5, expires_ms);
    sql_bind_int64(s, 6, keep);
    return with_token(c, s, id, token, "tus advance");
}

db_status db_tus_set_complete(db_conn *c, const char *id)
{
    return dbi_change_one(c, Q_TUS_COMPLETE, id, "tus complete");
}

/* DB_NOT_FOUND when the row was already gone: processes collecting at
 * once (serve processes on one database) count only what they removed. */
db_status db_tus_delete(db_conn *c, const char *id)
{
    return dbi_change_one(c, Q_TUS_DELETE, id, "tus delete");
}

db_status db_tus_claim_expired(db_conn *c, const char *id, const char *token, int64_t now_ms,
                               int64_t until_ms)
{
    sql_stmt *s = dbi_stmt(c, Q_TUS_CLAIM_EXPIRED);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, id);
    sql_bind_text(s, 2, token);
    sql_bind_int64(s, 3, until_ms);
    sql_bind_int64(s, 4, now_ms);
    return dbi_change(c, s, "tus claim expired");
}

db_status db_tus_expired(db_conn *c, int64_t before_ms, int64_t now_ms, int limit,
                         tus_upload *out, int *n)
{
    sql_stmt *s = dbi_stmt(c, Q_TUS_EXPIRED);
    *n = 0;
    if (!s) return DB_ERROR;
    sql_bind_int64(s, 1, before_ms);
    sql_bind_int64(s, 2, now_ms);
    sql_bind_int64(s, 3, limit);
    return dbi_rows(c, s, read_tus, out, sizeof *out, limit, n, "tus expired");
}
