/* keys.c — API keys (db.h "API keys").
 *
 * The api_keys table.  Only a token's SHA-256 is stored and looked up, and
 * a revoked key is never found: authentication needs nothing else.  Kept
 * apart from assets because keys are their own concern (issued and revoked
 * by the keys command, read on every request), not because it is large.
 */
#include "db/db_internal.h"

#define KEY_COLS "id, name, owner, created, revoked"
const char *const dbi_sql_keys[Q_COUNT] = {
    [Q_KEY_INSERT] = "INSERT INTO api_keys (id, name, owner, token_sha256, created)"
                     " VALUES (?1,?2,?3,?4,?5)",
    [Q_KEY_FIND] = "SELECT " KEY_COLS " FROM api_keys WHERE token_sha256 = ?1 AND revoked = 0",
    [Q_KEY_REVOKE] = "UPDATE api_keys SET revoked = 1 WHERE id = ?1",
    [Q_KEY_COUNT] = "SELECT count(*) FROM api_keys",
    [Q_KEY_EACH] = "SELECT " KEY_COLS " FROM api_keys ORDER BY created, id",
};

db_status db_key_insert(db_conn *c, const apikey *k, const char *token_sha256)
{
    sql_stmt *s = dbi_stmt(c, Q_KEY_INSERT);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, k->id);
    sql_bind_text(s, 2, k->name);
    sql_bind_text(s, 3, k->owner);
    sql_bind_text(s, 4, token_sha256);
    sql_bind_text(s, 5, k->created);
    return dbi_done(c, s, "key insert");
}

static void read_key(sql_stmt *s, void *out)
{
    apikey *k = out;
    dbi_copy_text(k->id, sizeof k->id, s, 0);
    dbi_copy_text(k->name, sizeof k->name, s, 1);
    dbi_copy_text(k->owner, sizeof k->owner, s, 2);
    dbi_copy_text(k->created, sizeof k->created, s, 3);
    k->revoked = sql_column_int64(s, 4) != 0;
}

db_status db_key_find_active(db_conn *c, const char *token_sha256, apikey *out)
{
    sql_stmt *s = dbi_stmt(c, Q_KEY_FIND);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, token_sha256);
    return dbi_row(c, s, read_key, out, "key find");
}

db_status db_key_revoke(db_conn *c, const char *id)
{
    sql_stmt *s = dbi_stmt(c, Q_KEY_REVOKE);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, id);
    return dbi_change(c, s, "key revoke");
}

db_status db_key_count(db_conn *c, int64_t *n)
{
    sql_stmt *s = dbi_stmt(c, Q_KEY_COUNT);
    return s ? dbi_int64(c, s, n, "key count") : dbi_fail(c, "key count");
}

db_status db_key_each(db_conn *c, void (*fn)(const apikey *k, void *arg), void *arg)
{
    sql_stmt *s = dbi_stmt(c, Q_KEY_EACH);
    if (!s) return DB_ERROR;
    sql_result rc;
    while ((rc = sql_step(s)) == SQL_ROW) {
        apikey k;
        read_key(s, &k);
        fn(&k, arg);
    }
    sql_reset(s);
    return rc == SQL_DONE ? DB_OK : dbi_fail(c, "key list");
}
