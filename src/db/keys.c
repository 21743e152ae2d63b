/* sqlite_keys.c — API keys on SQLite (db.h "API keys").
 *
 * The api_keys table.  Only a token's SHA-256 is stored and looked up, and
 * a revoked key is never found: authentication needs nothing else.  Kept
 * apart from assets because keys are their own concern (issued and revoked
 * by the keys command, read on every request), not because it is large.
 */
#include "db/db_internal.h"

#define KEY_COLS "id, name, owner, created, revoked"
const char *const sq_sql_keys[Q_COUNT] = {
    [Q_KEY_INSERT] = "INSERT INTO api_keys (id, name, owner, token_sha256, created)"
                     " VALUES (?,?,?,?,?)",
    [Q_KEY_FIND] = "SELECT " KEY_COLS " FROM api_keys WHERE token_sha256 = ? AND revoked = 0",
    [Q_KEY_REVOKE] = "UPDATE api_keys SET revoked = 1 WHERE id = ?",
    [Q_KEY_COUNT] = "SELECT count(*) FROM api_keys",
    [Q_KEY_EACH] = "SELECT " KEY_COLS " FROM api_keys ORDER BY created, id",
};

db_status db_key_insert(db_conn *c, const apikey *k, const char *token_sha256)
{
    sqlite3_stmt *s = sq_stmt(c, Q_KEY_INSERT);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, k->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, k->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, k->owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, token_sha256, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, k->created, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? DB_OK : sq_fail(c, "key insert");
}

static void read_key(sqlite3_stmt *s, apikey *k)
{
    sq_copy_text(k->id, sizeof k->id, s, 0);
    sq_copy_text(k->name, sizeof k->name, s, 1);
    sq_copy_text(k->owner, sizeof k->owner, s, 2);
    sq_copy_text(k->created, sizeof k->created, s, 3);
    k->revoked = sqlite3_column_int(s, 4) != 0;
}

db_status db_key_find_active(db_conn *c, const char *token_sha256, apikey *out)
{
    sqlite3_stmt *s = sq_stmt(c, Q_KEY_FIND);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, token_sha256, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) read_key(s, out);
    sqlite3_reset(s);
    return sq_lookup_result(c, rc, "key find");
}

db_status db_key_revoke(db_conn *c, const char *id)
{
    sqlite3_stmt *s = sq_stmt(c, Q_KEY_REVOKE);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return sq_change_result(c, rc, "key revoke");
}

db_status db_key_count(db_conn *c, int64_t *n)
{
    sqlite3_stmt *s = sq_stmt(c, Q_KEY_COUNT);
    if (!s || sqlite3_step(s) != SQLITE_ROW) return sq_fail(c, "key count");
    *n = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return DB_OK;
}

db_status db_key_each(db_conn *c, void (*fn)(const apikey *k, void *arg), void *arg)
{
    sqlite3_stmt *s = sq_stmt(c, Q_KEY_EACH);
    if (!s) return DB_ERROR;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        apikey k;
        read_key(s, &k);
        fn(&k, arg);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? DB_OK : sq_fail(c, "key list");
}
