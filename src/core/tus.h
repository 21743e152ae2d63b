/* tus.h — resumable uploads (the tus 1.0 protocol, api/tus.c): the domain.
 *
 * A tus upload is an asset being built over many requests.  Its record
 * (the tus_uploads table) holds what is durable: the declared length (or
 * -1 while deferred), the committed offset, the client's metadata, and a
 * lease.  Its bytes are a store appendable object (store.h) under the
 * upload's id, which is also the id of the asset it becomes and the key of
 * that asset's blob.
 *
 * Invariants:
 *   - the object holds at least `offset` bytes, all durable, before the
 *     offset is committed (store_append_commit, then db_tus_advance);
 *     bytes past the offset are garbage the next writer drops;
 *   - one writer at a time: whoever writes holds the lease (lock_token,
 *     lock_until) taken in a database transaction that also checks the
 *     offset, so it holds across serve processes sharing a database.  A
 *     writer renews it while bytes flow and stops writing once it cannot
 *     prove the lease still has TUS_LEASE_MARGIN left (tus_lease_valid), so
 *     a taker after expiry never meets a straggler's bytes; a crashed
 *     holder's lease simply runs out;
 *   - an upload becomes an asset exactly once: tus_complete publishes the
 *     object as the blob, hashes it (or finishes the hash kept running), and records the asset, its job and
 *     asset.created in the transaction that marks the upload complete
 *     (ingest_record).  A crash in between leaves offset == length and
 *     state uploading; the next HEAD or PATCH runs tus_complete again
 *     (publishing is idempotent).
 *
 * Concatenation: partial uploads are ordinary uploads that never become
 * assets; a final upload is assembled from complete partials by copying
 * their bytes (tus_concat), then completes like any other.
 */
#ifndef ASSETD_TUS_H
#define ASSETD_TUS_H

#include "core/asset.h"
#include "core/tus_digest.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TUS_METADATA_MAX 4096
#define TUS_PARTS_MAX 64
#define TUS_TOKEN_LEN ID_LEN

typedef enum { TUS_UPLOADING = 0, TUS_COMPLETE = 1 } tus_state;
typedef enum { TUS_PLAIN = 0, TUS_PARTIAL = 1, TUS_FINAL = 2 } tus_concat_kind;

typedef struct tus_upload {
    char id[ID_LEN + 1];          /* = the asset's id = the blob's key */
    char owner[OWNER_MAX + 1];
    int64_t length;               /* -1: deferred (Upload-Defer-Length) */
    uint64_t offset;              /* committed: durable bytes */
    char metadata[TUS_METADATA_MAX + 1];   /* Upload-Metadata as sent */
    char filename[FILENAME_MAX_BYTES + 1]; /* from metadata `filename` */
    char filetype[CONTENT_TYPE_MAX + 1];   /* from metadata `filetype` */
    char profile[ASSET_PROFILE_MAX + 1];   /* from metadata `profile`, checked by the
                                              caller (asset_profile_parse) */
    tus_concat_kind concat;
    char parts[TUS_PARTS_MAX * (ID_LEN + 1) + 1];   /* final: part ids, space-separated */
    tus_state state;
    char lock_token[TUS_TOKEN_LEN + 1];   /* "" when nobody writes */
    int64_t lock_until;
    int64_t expires_ms;
    char created[32];
} tus_upload;

/* Parses Upload-Metadata ("key base64,key base64,key"): false if malformed.
 * Fills u->metadata with the header and filename/filetype/profile when
 * present (profile as sent: the caller checks the name). */
bool tus_metadata_parse(const char *header, tus_upload *u);
/* Standard base64 (padding optional), as tus uses it: the byte count, or
 * -1 if malformed or longer than cap. */
int tus_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/* ---------- the lease ---------- */

/* A writer's lease, shared by the request that writes and the renewals it
 * queued (refcounted: a renewal may outlive its request). */
typedef struct tus_lease tus_lease;
typedef struct db db;
typedef struct db_conn db_conn;
typedef struct store store;
typedef struct sniffer sniffer;
typedef struct workpool workpool;

/* A new token (random, unguessable). */
bool tus_token_new(char out[TUS_TOKEN_LEN + 1]);
tus_lease *tus_lease_new(db *d, workpool *pool, const char *id, const char *token,
                         int64_t until_ms, int64_t ttl_ms);
const char *tus_lease_token(const tus_lease *l);
/* True while the lease is known to last a sixth of its TTL more; also queues
 * a renewal on the pool when a third of the TTL has passed since the last. */
bool tus_lease_valid(tus_lease *l, int64_t now_ms);
/* Gives the lease up in the database (queued on the pool, does not block)
 * unless tus_lease_released() said it is done, then drops the caller's
 * reference. */
void tus_lease_end(tus_lease *l);
void tus_lease_released(tus_lease *l);

/* ---------- completion (blocking: a work-pool thread) ---------- */

typedef enum {
    TUS_DONE_OK,
    TUS_DONE_STORAGE,   /* the store failed */
    TUS_DONE_DB,        /* the database failed */
} tus_done;

/* Publishes the upload's object as its blob, hashes it, and records the
 * asset (out) with its job and asset.created, marking the upload complete
 * in the same transaction.  u->offset == u->length.  The hash is the one
 * kept running in digests when it saw every byte (tus_digest.h), else it is
 * read back from the blob; digests may be NULL. */
tus_done tus_complete(db_conn *c, store *s, sniffer *sn, tus_digests *digests,
                      const tus_upload *u, asset *out);

/* Removes uploads past their Upload-Expires that nobody is writing: the
 * object first, then the row (a crash in between leaves a row without
 * bytes, which the next round removes).  Complete uploads are assets and
 * never touched.  Returns how many, or -1 if the database failed. */
int tus_gc(db *d, store *s, int64_t now_ms);

/* Removes the bytes of an upload that is not (or no longer) complete, or of
 * a partial one; never an asset's blob.  Blocking. */
bool tus_bytes_remove(store *s, const tus_upload *u);

/* Copies the complete partial uploads parts[0..n) into final's object (its
 * lease held, offset 0) and commits it; false if the store failed. */
bool tus_concat(store *s, const char *final_id, const tus_upload *parts, int n);

#endif
