/* cli.h — the subcommands of the assetd binary.  Each returns the process
 * exit status: 0 success, 1 runtime failure, 2 usage error. */
#ifndef ASSETD_CLI_H
#define ASSETD_CLI_H

#include "core/apikey.h"
#include "db/db.h"

int cli_serve(int argc, char **argv);
int cli_keys(int argc, char **argv);
int cli_worker(int argc, char **argv, const char *argv0);
int cli_gc(int argc, char **argv);

/* Creates a key and writes its token (shown once) into token.  Used by
 * `keys create` and by serve's bootstrap key. */
bool keys_create(db_conn *c, const char *name, const char *owner,
                 char token[APIKEY_TOKEN_LEN + 1], apikey *out);

#endif
