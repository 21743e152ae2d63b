/* tus.c — resumable uploads: metadata, the writer's lease, completion and
 * concatenation (see tus.h for the invariants).
 *
 * The lease is renewed from the pool, never from the thread that receives
 * the bytes: tus_lease_valid() only reads an atomic and, a third of the
 * TTL after the last renewal, queues the next one.  The writer believes in
 * its lease only up to what a renewal *confirmed* minus a sixth of the TTL,
 * so by the time anyone else may take it over (lock_until < now in the
 * database), the old writer has stopped writing for at least that margin.
 */
#include "core/tus.h"
#include "core/ingest.h"
#include "db/db.h"
#include "store/store.h"
#include "util/encode.h"
#include "util/log.h"
#include "util/timefmt.h"
#include "util/workpool.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- Upload-Metadata ---------- */

static int b64_value(int ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
}

int tus_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    while (len > 0 && in[len - 1] == '=') len--;
    if (len % 4 == 1) return -1;
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == cap) return -1;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    return (int)n;
}

/* Decodes a metadata value into out as text: NUL bytes and control
 * characters would make a file name nobody can type, so they refuse it. */
static bool text_value(const char *b64, size_t len, char *out, size_t cap)
{
    uint8_t buf[TUS_METADATA_MAX];
    int n = tus_b64_decode(b64, len, buf, sizeof buf);
    if (n < 0 || (size_t)n >= cap) return false;
    for (int i = 0; i < n; i++)
        if (buf[i] < 0x20 || buf[i] == 0x7f) return false;
    memcpy(out, buf, (size_t)n);
    out[n] = '\0';
    return true;
}

bool tus_metadata_parse(const char *header, tus_upload *u)
{
    u->metadata[0] = u->filename[0] = u->filetype[0] = u->profile[0] = '\0';
    if (!header) return true;
    if (strlen(header) > TUS_METADATA_MAX) return false;
    snprintf(u->metadata, sizeof u->metadata, "%s", header);
    const char *p = header;
    while (*p) {
        while (*p == ' ') p++;
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *space = memchr(p, ' ', len);
        size_t klen = space ? (size_t)(space - p) : len;
        if (klen == 0) return false;
        const char *val = space ? space + 1 : p + len;
        size_t vlen = space ? len - klen - 1 : 0;
        uint8_t scratch[TUS_METADATA_MAX];
        if (tus_b64_decode(val, vlen, scratch, sizeof scratch) < 0) return false;
        if (klen == 8 && memcmp(p, "filename", 8) == 0) {
            if (!text_value(val, vlen, u->filename, sizeof u->filename)) return false;
        } else if (klen == 8 && memcmp(p, "filetype", 8) == 0) {
            if (!text_value(val, vlen, u->filetype, sizeof u->filetype)) return false;
        } else if (klen == 7 && memcmp(p, "profile", 7) == 0) {
            if (!text_value(val, vlen, u->profile, sizeof u->profile)) return false;
        }
        if (!end) break;
        p = end + 1;
    }
    return true;
}

/* ---------- the lease ---------- */

struct tus_lease {
    _Atomic int refs;
    _Atomic int64_t until_ms;        /* confirmed by the database */
    _Atomic int64_t renewed_ms;      /* when the last renewal was queued */
    atomic_bool renewing;            /* one renewal in flight at most */
    atomic_bool released;
    db *d;
    workpool *pool;
    int64_t ttl_ms;
    char id[ID_LEN + 1];
    char token[TUS_TOKEN_LEN + 1];
};

bool tus_token_new(char out[TUS_TOKEN_LEN + 1]) { return id_generate(out); }

tus_lease *tus_lease_new(db *d, workpool *pool, const char *id, const char *token,
                         int64_t until_ms, int64_t ttl_ms)
{
    tus_lease *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    atomic_init(&l->refs, 1);
    atomic_init(&l->until_ms, until_ms);
    atomic_init(&l->renewed_ms, time_now_ms());
    l->d = d;
    l->pool = pool;
    l->ttl_ms = ttl_ms;
    snprintf(l->id, sizeof l->id, "%s", id);
    snprintf(l->token, sizeof l->token, "%s", token);
    return l;
}

const char *tus_lease_token(const tus_lease *l) { return l->token; }

static void lease_unref(tus_lease *l)
{
    if (atomic_fetch_sub(&l->refs, 1) == 1) free(l);
}

static void renew_work(void *arg)
{
    tus_lease *l = arg;
    int64_t until = time_now_ms() + l->ttl_ms;
    db_conn *c = db_acquire(l->d);
    if (c && !atomic_load(&l->released) && db_tus_renew(c, l->id, l->token, until) == DB_OK)
        atomic_store(&l->until_ms, until);
    db_release(l->d, c);
    atomic_store(&l->renewing, false);
    lease_unref(l);
}

bool tus_lease_valid(tus_lease *l, int64_t now_ms)
{
    if (now_ms - atomic_load(&l->renewed_ms) >= l->ttl_ms / 3 &&
        !atomic_exchange(&l->renewing, true)) {
        atomic_store(&l->renewed_ms, now_ms);
        atomic_fetch_add(&l->refs, 1);
        if (!workpool_submit(l->pool, renew_work, l)) {
            atomic_store(&l->renewing, false);
            lease_unref(l);
        }
    }
    return now_ms < atomic_load(&l->until_ms) - l->ttl_ms / 6;
}

void tus_lease_released(tus_lease *l) { atomic_store(&l->released, true); }

static void unlock_work(void *arg)
{
    tus_lease *l = arg;
    db_conn *c = db_acquire(l->d);
    if (c) db_tus_unlock(c, l->id, l->token);   /* DB_NOT_FOUND: it ran out and was taken */
    db_release(l->d, c);
    lease_unref(l);
}

void tus_lease_end(tus_lease *l)
{
    if (!l) return;
    /* A request that died mid-body: its bytes were never committed, the
     * next writer drops them; give the lease back so it need not wait. */
    if (!atomic_exchange(&l->released, true) && workpool_submit(l->pool, unlock_work, l)) return;
    lease_unref(l);
}

/* ---------- completion ---------- */

static db_status mark_complete(db_conn *c, const asset *a, void *arg)
{
    (void)arg;
    return db_tus_set_complete(c, a->id);
}

tus_done tus_complete(db_conn *c, store *s, sniffer *sn, tus_digests *digests,
                      const tus_upload *u, asset *out)
{
    EVP_MD_CTX *running = tus_digest_get(digests, u->id, (uint64_t)u->length);
    if (!store_append_publish(s, u->id, u->offset)) {
        EVP_MD_CTX_free(running);
        return TUS_DONE_STORAGE;
    }
    memset(out, 0, sizeof *out);
    tus_digest_count(digests, running != NULL);
    /* Without the running hash (a restart, another process, a
     * concatenation), the published blob is read back: the same bytes. */
    if (!tus_digest_hex(running, out->sha256) &&
        !ingest_blob_sha256(s, u->id, (uint64_t)u->length, out->sha256))
        return TUS_DONE_STORAGE;
    snprintf(out->id, sizeof out->id, "%s", u->id);
    out->size = (uint64_t)u->length;
    ingest_claim claim = {u->filename, u->filetype, u->profile, mark_complete, NULL};
    ingest_result res = ingest_record(sn, s, c, u->owner, &claim, out);
    if (res == INGEST_OK) tus_digest_drop(digests, u->id);
    /* The blob stays on failure: the upload's row keeps it alive (the
     * start-up sweep asks db_tus_exists) until the completion runs again. */
    return res == INGEST_OK                                   ? TUS_DONE_OK
           : res == INGEST_IO_ERROR || res == INGEST_NO_SPACE || res == INGEST_NO_FDS
               ? TUS_DONE_STORAGE
                                                              : TUS_DONE_DB;
}

static bool append_sink(void *arg, const void *data, size_t len)
{
    return store_append_write(arg, data, len);
}

bool tus_concat(store *s, const char *final_id, const tus_upload *parts, int n)
{
    store_append *a = store_append_open(s, final_id, 0);
    if (!a) return false;
    for (int i = 0; i < n; i++) {
        if (parts[i].length > 0 &&
            !store_append_read(s, parts[i].id, (uint64_t)parts[i].length, append_sink, a)) {
            log_error("cannot read a partial upload", "id", parts[i].id, NULL);
            store_append_abort(a);
            return false;
        }
    }
    return store_append_commit(a);
}

bool tus_bytes_remove(store *s, const tus_upload *u)
{
    /* A partial's object may have been published to be read (store.h): its
     * blob goes too, which is safe because a partial never is an asset. */
    return store_append_remove(s, u->id) && (u->concat != TUS_PARTIAL || store_remove(s, u->id));
}

/* ---------- expiry ---------- */

#define GC_BATCH 32   /* a tus_upload is ~5 KiB: a batch stays small */
/* How long a collector holds an expired upload while it removes its bytes;
 * if it dies, the upload is collected after that. */
#define GC_LEASE_MS (5 * 60 * 1000)

int tus_gc(db *d, store *s, int64_t now_ms)
{
    tus_upload *batch = malloc(GC_BATCH * sizeof *batch);
    char token[TUS_TOKEN_LEN + 1];
    db_conn *c = batch && tus_token_new(token) ? db_acquire(d) : NULL;
    int removed = 0, n = 0, before;
    do {
        before = removed;
        if (!c || db_tus_expired(c, now_ms, now_ms, GC_BATCH, batch, &n) != DB_OK) {
            removed = -1;
            break;
        }
        for (int i = 0; i < n; i++) {
            /* Another serve process may be collecting the same list: the
             * lease makes the bytes one collector's to remove (two would
             * abort and delete the same S3 objects, and each count it). */
            if (db_tus_claim_expired(c, batch[i].id, token, now_ms, now_ms + GC_LEASE_MS) != DB_OK)
                continue;
            /* Bytes first: if they cannot go, the row stays to say so. */
            if (!tus_bytes_remove(s, &batch[i]) || db_tus_delete(c, batch[i].id) != DB_OK)
                continue;
            log_info("expired tus upload removed", "upload", batch[i].id, NULL);
            removed++;
        }
    } while (n == GC_BATCH && removed > before);
    db_release(d, c);
    free(batch);
    return removed;
}
