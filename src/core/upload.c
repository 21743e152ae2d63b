/* upload.c — see upload.h. */
#include "core/upload.h"
#include "db/db.h"
#include "store/store.h"
#include "util/log.h"

#include <stdlib.h>

#define GC_BATCH 100

const char *upload_state_name(upload_state s)
{
    return s == UPLOAD_COMPLETE ? "complete" : "pending";
}

uint64_t upload_size_limit(const upload_rec *u, uint64_t max_upload)
{
    return u->size == UPLOAD_SIZE_ANY ? max_upload : u->size;
}

int upload_gc(db *d, store *s, int64_t before_ms)
{
    upload_rec *batch = malloc(GC_BATCH * sizeof *batch);
    db_conn *c = batch ? db_acquire(d) : NULL;
    int removed = 0, n = 0, before;
    do {
        before = removed;
        if (!c || db_upload_expired(c, before_ms, GC_BATCH, batch, &n) != DB_OK) {
            removed = -1;
            break;
        }
        for (int i = 0; i < n; i++) {
            /* Bytes first: if their removal fails the row stays, and with
             * it the reason to try again. */
            if (!store_remove(s, batch[i].id) || db_upload_delete(c, batch[i].id) != DB_OK) continue;
            log_info("expired upload removed", "upload", batch[i].id, NULL);
            removed++;
        }
    } while (n == GC_BATCH && removed > before);   /* more, and this round made progress */
    db_release(d, c);
    free(batch);
    return removed;
}
