/* upload.h — a signed direct upload: the bytes go straight to the store
 * (S3, or assetd's own signed store routes on disk), never through the API.
 *
 * POST /v1/uploads (or the cloud-asset-uploader's POST /api/upload) records
 * an upload: what the client promised to send (size, optional SHA-256),
 * under which key, until when the signature is good.  The asset it will
 * become does not exist yet: a client that never completes leaves no asset
 * behind, only this row, which `gc` removes with whatever bytes arrived.
 * `complete` checks the object against the promise, and creates the asset,
 * its job and its asset.created event in the transaction that marks the
 * upload complete — exactly as a normal upload would.
 *
 * Invariant: the upload's id is the id of the asset it creates and the
 * store key of its bytes; a blob key is written by one upload only, and
 * never again once an asset owns it.
 */
#ifndef ASSETD_UPLOAD_H
#define ASSETD_UPLOAD_H

#include "core/asset.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define UPLOAD_OBJECT_KEY_MAX 1024
/* The size of an upload whose client declared none (the cloud-asset-
 * uploader API): any count up to --max-upload is accepted, checked by the
 * form's content-length-range and again by `complete`.  Such an upload is
 * only ever signed a POST form, never a PUT URL (a presigned PUT on S3
 * cannot bound its size). */
#define UPLOAD_SIZE_ANY UINT64_MAX

typedef enum { UPLOAD_PENDING = 0, UPLOAD_COMPLETE = 1 } upload_state;

typedef struct upload_rec {
    int64_t seq;                /* a small integer id (the cloud-asset-uploader's asset_id) */
    char id[ID_LEN + 1];        /* the asset id, and the store key */
    char owner[OWNER_MAX + 1];
    char object_key[UPLOAD_OBJECT_KEY_MAX + 1];   /* the client's name for it; "" on /v1 */
    char filename[FILENAME_MAX_BYTES + 1];
    char content_type[CONTENT_TYPE_MAX + 1];      /* declared, untrusted */
    uint64_t size;              /* declared: the object must have exactly this many
                                   bytes; or UPLOAD_SIZE_ANY */
    char sha256[65];            /* declared hex SHA-256, or "" */
    char profile[ASSET_PROFILE_MAX + 1];   /* the image profile the asset gets ("" default) */
    upload_state state;
    bool asset_made;            /* complete once: the key belongs to an asset for good */
    int64_t expires_ms;         /* the signature's end; gc'd --upload-grace after if pending */
    char created[32];
} upload_rec;

const char *upload_state_name(upload_state s);
/* The most bytes u may have: its declared size, or max_upload when it
 * declared none. */
uint64_t upload_size_limit(const upload_rec *u, uint64_t max_upload);

/* Removes pending uploads whose signature expired before before_ms (now
 * less a grace: a transfer that began in time may still be running), bytes
 * first, then the row (a crash in between leaves a row whose bytes are
 * gone: the next round removes it).  Returns how many, or -1 if the
 * database failed.  Blocks (store, db). */
typedef struct db db;
typedef struct store store;
int upload_gc(db *d, store *s, int64_t before_ms);

#endif
