/* gc.c — `assetd gc`: removes what uploads that were never completed left
 * behind (signed and tus: rows and bytes), once.  serve does the same every minute;
 * this is for a store shared by many serve processes, or a cron job. */
#include "cli/cli.h"
#include "cli/config.h"
#include "core/ingest.h"
#include "core/tus.h"
#include "core/upload.h"
#include "util/log.h"
#include "util/timefmt.h"

#include <stdio.h>

static const char usage_head[] =
    "usage: assetd gc [options]\n"
    "\n"
    "Removes signed uploads whose signature expired more than --upload-grace\n"
    "seconds ago without being completed, and tus uploads past their\n"
    "Upload-Expires, with the bytes they left in the store; and the bytes of\n"
    "tus uploads no row names any more, once an hour old.\n"
    "\n"
    "options (each also as an environment variable):\n";

int cli_gc(int argc, char **argv)
{
    config cfg;
    int rc = config_for_command(&cfg, argc, argv, "data,db,store,s3-endpoint,s3-region,s3-stall-timeout,upload-grace,log-level",
                                usage_head);
    if (rc >= 0) return rc;
    const char *err;
    db *d = db_open(cfg.data_dir, cfg.db_url, &err);
    store *s = d ? config_open_store(&cfg, &err) : NULL;
    if (!s) {
        log_error("gc cannot open the data", "dir", cfg.data_dir, "error", err, NULL);
        db_close(d);
        return 1;
    }
    int removed = upload_gc(d, s, time_now_ms() - (int64_t)cfg.upload_grace * 1000);
    int tus = tus_gc(d, s, time_now_ms());
    db_conn *c = db_acquire(d);
    int orphans = c ? store_sweep_appends(s, ingest_key_is_live, c) : -1;
    db_release(d, c);
    if (removed >= 0) printf("removed %d expired uploads\n", removed);
    if (tus >= 0) printf("removed %d expired tus uploads\n", tus);
    if (orphans >= 0) printf("removed %d abandoned tus uploads no row names\n", orphans);
    store_close(s);
    db_close(d);
    return removed >= 0 && tus >= 0 && orphans >= 0 ? 0 : 1;
}
