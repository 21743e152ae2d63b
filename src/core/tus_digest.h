/* tus_digest.h — the SHA-256 of a tus upload, kept running across its
 * PATCHes, so completing an upload need not read it all back.
 *
 * POST /v1/assets hashes a body as it arrives.  A tus upload arrives over
 * many requests, perhaps to several serve processes sharing a database, so
 * its hash cannot simply be carried by one request.  Each serve keeps a
 * bounded table: upload id -> the SHA-256 state after its first `offset`
 * committed bytes.  A PATCH at offset N works on a copy of the state saved
 * at N (a fresh one at 0) and feeds it every byte it receives; once its
 * bytes are committed and the new offset recorded, it saves the state at
 * the new offset in place of the old.  Completion at length L uses the
 * state saved at L.
 *
 * Invariant: a state saved at (id, N) has seen exactly the upload's
 * committed bytes [0, N), in order.  It holds because offsets only grow,
 * one writer holds the lease at a time, and a state is saved only after
 * its bytes are committed and the offset recorded; a PATCH that fails, is
 * refused, or whose checksum mismatches saves nothing, so the state at N
 * stays right for the next try.  Whenever the chain breaks — a restart, an
 * eviction, a PATCH served by another process, a concatenation — there is
 * no state at the offset asked for, and completion falls back to hashing
 * the published blob (the answer is the same, only slower).
 *
 * Thread-safe; one mutex, held for a scan of at most TUS_DIGESTS_MAX
 * entries (microseconds, against a PATCH of megabytes).
 */
#ifndef ASSETD_TUS_DIGEST_H
#define ASSETD_TUS_DIGEST_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>

#define TUS_DIGESTS_MAX 1024   /* uploads in flight whose hash is kept (~250 B each) */

typedef struct tus_digests tus_digests;

tus_digests *tus_digests_new(void);
void tus_digests_free(tus_digests *t);

/* A copy of the state after the first `offset` bytes of upload id, the
 * caller's (EVP_MD_CTX_free it); a new state when offset is 0; NULL when
 * the chain is broken (or t is NULL). */
EVP_MD_CTX *tus_digest_get(tus_digests *t, const char *id, uint64_t offset);
/* Saves md (taking it; NULL is ignored) as the state after `offset` bytes,
 * replacing id's, or the least recently saved entry when the table is full. */
void tus_digest_save(tus_digests *t, const char *id, uint64_t offset, EVP_MD_CTX *md);
/* Forgets id (its upload is complete). */
void tus_digest_drop(tus_digests *t, const char *id);
/* Finishes md (taking it) into lowercase hex; false if md is NULL. */
bool tus_digest_hex(EVP_MD_CTX *md, char out[65]);
/* Counts a completion that found its running hash, or read its blob back
 * (metrics: a high share of the latter says PATCHes of one upload go to
 * different processes, or the table is too small). */
void tus_digest_count(tus_digests *t, bool running);
void tus_digests_counts(tus_digests *t, uint64_t *running, uint64_t *reread);

#endif
