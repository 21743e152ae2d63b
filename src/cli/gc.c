/* gc.c — `assetd gc`: removes what signed uploads that were never completed
 * left behind (rows and bytes), once.  serve does the same every minute;
 * this is for a store shared by many serve processes, or a cron job. */
#include "cli/cli.h"
#include "cli/config.h"
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
    "Upload-Expires, with the bytes they left in the store.\n"
    "\n"
    "options (each also as an environment variable):\n";

int cli_gc(int argc, char **argv)
{
    config cfg;
    int rc = config_for_command(&cfg, argc, argv, "data,store,s3-endpoint,s3-region,upload-grace,log-level",
                                usage_head);
    if (rc >= 0) return rc;
    const char *err;
    db *d = db_open(cfg.data_dir, &err);
    store *s = d ? config_open_store(&cfg, &err) : NULL;
    if (!s) {
        log_error("gc cannot open the data", "dir", cfg.data_dir, "error", err, NULL);
        db_close(d);
        return 1;
    }
    int removed = upload_gc(d, s, time_now_ms() - (int64_t)cfg.upload_grace * 1000);
    int tus = store_append_supported(s) ? tus_gc(d, s, time_now_ms()) : 0;
    if (removed >= 0) printf("removed %d expired uploads\n", removed);
    if (tus >= 0) printf("removed %d expired tus uploads\n", tus);
    store_close(s);
    db_close(d);
    return removed >= 0 && tus >= 0 ? 0 : 1;
}
