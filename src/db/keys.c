/* keys.c — API keys and the server's secrets (db.h "API keys").
 *
 * The api_keys table.  Only a token's SHA-256 is stored and looked up, and
 * a revoked key is never found: authentication needs nothing else.  Kept
 * apart from assets because keys are their own concern (issued and revoked
 * by the keys command, read on every request), not because it is large.
 *
 * The secrets table holds what the server signs with (the URL-token key),
 * in the database rather than a data directory so that every serve process
 * on one database verifies what another signed.  Whoever can read the
 * database can forge those tokens; it already holds the webhook signing
 * secrets, so it is guarded as a secret store either way.
 */
#include "db/db_internal.h"

#include <string.h>

#define KEY_COLS "id, name, owner, created, revoked"
const char *const dbi_sql_keys[Q_COUNT] = {
    [Q_KEY_INSERT] = "INSERT INTO api_keys (id, name, owner, token_sha256, created)"
                     " VALUES (?1,?2,?3,?4,?5)",
    [Q_KEY_FIND] = "SELECT " KEY_COLS " FROM api_keys WHERE token_sha256 = ?1 AND revoked = 0",
    [Q_KEY_REVOKE] = "UPDATE api_keys SET revoked = 1 WHERE id = ?1",
    [Q_KEY_COUNT] = "SELECT count(*) FROM api_keys",
    [Q_KEY_EACH] = "SELECT " KEY_COLS " FROM api_keys ORDER BY created, id",
    [Q_SECRET_OFFER] = "INSERT INTO secrets (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
    [Q_SECRET_GET] = "SELECT value FROM secrets WHERE name = ?1",
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
    return dbi_change_one(c, Q_KEY_REVOKE, id, "key revoke");
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

typedef struct { char *out; size_t cap; bool fits; } secret_out;

static void read_secret(sql_stmt *s, void *arg)
{
    secret_out *o = arg;
    const char *v = sql_column_text(s, 0);
    o->fits = v && strlen(v) < o->cap;
    if (o->fits) memcpy(o->out, v, strlen(v) + 1);
}

db_status db_secret_adopt(db_conn *c, const char *name, const char *offer, char *out, size_t cap)
{
    sql_stmt *s = dbi_stmt(c, Q_SECRET_OFFER);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, name);
    sql_bind_text(s, 2, offer);
    db_status st = dbi_done(c, s, "secret offer");
    if (st != DB_OK) return st;
    if (!(s = dbi_stmt(c, Q_SECRET_GET))) return DB_ERROR;
    sql_bind_text(s, 1, name);
    secret_out o = {out, cap, false};
    st = dbi_row(c, s, read_secret, &o, "secret get");
    return st == DB_OK && !o.fits ? DB_ERROR : st;
}
