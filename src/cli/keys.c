/* keys.c — `assetd keys create|list|revoke`: API key administration.
 *
 * Works directly on the database file, so it runs beside a live server
 * (SQLite WAL lets both write); a revoked key stops working on the server's
 * next request, because every request checks the key row. */
#include "cli/cli.h"
#include "cli/config.h"
#include "util/timefmt.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: assetd keys create --data DIR --name NAME [--owner OWNER]\n"
    "       assetd keys list   --data DIR\n"
    "       assetd keys revoke --data DIR KEY_ID\n"
    "\n"
    "create prints the new token as the only line on stdout; it is stored\n"
    "hashed and cannot be shown again.  Keys with the same owner (default:\n"
    "the name) see the same assets.\n";

bool keys_create(db_conn *c, const char *name, const char *owner,
                 char token[APIKEY_TOKEN_LEN + 1], apikey *out)
{
    memset(out, 0, sizeof *out);
    if (!apikey_generate(token, out->id)) return false;
    snprintf(out->name, sizeof out->name, "%s", name);
    snprintf(out->owner, sizeof out->owner, "%s", owner);
    time_format_now(out->created);
    char hash[65];
    apikey_hash(token, hash);
    return db_key_insert(c, out, hash) == DB_OK;
}

static void print_key(const apikey *k, void *arg)
{
    printf("%s\t%s\t%s\t%s\t%s\n", k->id, k->name, k->owner, k->created,
           k->revoked ? "revoked" : "active");
}

/* Scans --name/--owner out of the positional words config_parse left. */
static const char *flag_value(const char **rest, int n, const char *flag)
{
    for (int i = 0; i + 1 < n; i++)
        if (strcmp(rest[i], flag) == 0) return rest[i + 1];
    return NULL;
}

static int run(const char *action, const char **rest, int nrest, db_conn *c)
{
    if (strcmp(action, "create") == 0) {
        const char *name = flag_value(rest, nrest, "name");
        const char *owner = flag_value(rest, nrest, "owner");
        if (!name || !*name || strlen(name) > APIKEY_NAME_MAX ||
            (owner && (!*owner || strlen(owner) > OWNER_MAX))) {
            fputs(usage, stderr);
            return 2;
        }
        char token[APIKEY_TOKEN_LEN + 1];
        apikey k;
        if (!keys_create(c, name, owner ? owner : name, token, &k)) return 1;
        printf("%s\n", token);
        fprintf(stderr, "created key %s (owner %s)\n", k.id, k.owner);
        return 0;
    }
    if (strcmp(action, "list") == 0) return db_key_each(c, print_key, NULL) == DB_OK ? 0 : 1;
    if (strcmp(action, "revoke") == 0 && nrest == 1) {
        db_status st = db_key_revoke(c, rest[0]);
        if (st == DB_NOT_FOUND) fprintf(stderr, "assetd: no key with id %s\n", rest[0]);
        return st == DB_OK ? 0 : 1;
    }
    fputs(usage, stderr);
    return 2;
}

int cli_keys(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        fputs(usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    /* --name/--owner are ours, not config flags: turn them into positional
     * words so config_parse only sees --data. */
    char *args[64];
    int n = 0;
    for (int i = 1; i < argc && n < 62; i++) {
        if (strcmp(argv[i], "--name") == 0 || strcmp(argv[i], "--owner") == 0)
            args[n++] = argv[i] + 2;
        else
            args[n++] = argv[i];
    }
    config cfg;
    const char *rest[64];
    int nrest;
    int rc = config_parse(&cfg, n, args, "data,db", rest, &nrest);
    if (rc == 1) { fputs(usage, stdout); return 0; }
    if (rc) return rc;
    mkdir(cfg.data_dir, 0700);
    const char *err;
    db *d = db_open(cfg.data_dir, cfg.db_url, &err);
    if (!d) {
        fprintf(stderr, "assetd: %s (%s)\n", err, cfg.data_dir);
        return 1;
    }
    db_conn *c = db_acquire(d);
    rc = c ? run(argv[0], rest, nrest, c) : 1;
    db_release(d, c);
    db_close(d);
    return rc;
}
