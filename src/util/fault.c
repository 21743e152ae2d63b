/* fault.c — crash points (see fault.h).
 *
 * Global state, like the logger's: the armed point is read once from the
 * environment before any thread starts and is constant afterwards; only
 * the hit counter changes, atomically, so points on any thread count. */
#include "util/fault.h"
#include "util/log.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Every point the code has: a name not listed here is a typo in a test. */
static const char *const points[] = {
    "blob.written", "blob.synced", "blob.renamed", "db.committed", "event.appended",
    "job.claimed", "rendition.stored", "webhook.sent", "s3.part_uploaded",
    "tus.offset_recorded", "run.confirmed",
};

bool fault_armed;
static char armed_name[32];
static unsigned long armed_at = 1;   /* kill at this hit */
static _Atomic unsigned long hits;

void fault_init(const char *command)
{
    const char *v = getenv("ASSETD_FAULT");
    if (!v || !*v) return;
    const char *colon = strchr(v, ':');
    if (colon) {
        size_t n = (size_t)(colon - v);
        if (!(n == 5 && memcmp(v, "serve", 5) == 0) && !(n == 6 && memcmp(v, "worker", 6) == 0)) {
            log_warn("ASSETD_FAULT names no command (serve: or worker:); ignored", "value", v,
                     NULL);
            return;
        }
        if (strlen(command) != n || memcmp(command, v, n) != 0) return;   /* another's */
        v = colon + 1;
    }
    const char *at = strchr(v, '@');
    size_t len = at ? (size_t)(at - v) : strlen(v);
    if (at) {
        char *end;
        armed_at = strtoul(at + 1, &end, 10);
        if (*end || end == at + 1 || armed_at == 0) len = 0;   /* refused below */
    }
    bool known = false;
    for (size_t i = 0; i < sizeof points / sizeof points[0]; i++)
        if (len && strlen(points[i]) == len && memcmp(points[i], v, len) == 0) known = true;
    if (!known) {
        log_warn("ASSETD_FAULT names no crash point; ignored (util/fault.h lists them)", "value",
                 v, NULL);
        return;
    }
    memcpy(armed_name, v, len);
    armed_name[len] = '\0';
    fault_armed = true;
    char n[24];
    snprintf(n, sizeof n, "%lu", armed_at);
    log_warn("crash point armed", "point", armed_name, "at", n, NULL);
}

void fault_hit(const char *name)
{
    if (strcmp(name, armed_name) != 0 || atomic_fetch_add(&hits, 1) + 1 != armed_at) return;
    kill(getpid(), SIGKILL);
    for (;;) pause();   /* no thread of ours takes another step */
}
