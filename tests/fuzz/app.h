/* app.h (tests/fuzz) — the whole API server in-process for the api and
 * multipart targets: the real route table and handlers over SQLite and the
 * disk store in a fresh temporary data directory, with the work pool, the
 * event hub and one WebSocket thread; no worker processes and no webhook
 * dispatcher (nothing leaves the machine).  Started once per process; its
 * data directory (in /dev/shm, else /tmp) is removed at exit.
 *
 * Besides the API key it also makes one asset (fuzz_app.asset, bytes
 * "hello, fuzz\n" as text/plain) and one tus upload of 100 bytes, so
 * requests can name things that exist. */
#ifndef ASSETD_FUZZ_APP_H
#define ASSETD_FUZZ_APP_H

#include "api/app.h"

typedef struct fuzz_app {
    app a;
    uint16_t port;
    char key[APIKEY_TOKEN_LEN + 1];   /* an API key of owner "fuzz" */
    char asset[ID_LEN + 1];
    char tus[ID_LEN + 1];
} fuzz_app;

extern fuzz_app fuzz_the_app;
/* Starts it (aborts on failure); later calls return the same. */
fuzz_app *fuzz_app_start(void);
/* Makes the asset or the tus upload again (after a request removed it). */
void fuzz_app_remake_asset(fuzz_app *f);
void fuzz_app_remake_tus(fuzz_app *f);

#endif
