/* cover.h — a video's cover image sent by its owner (PUT
 * /v1/assets/{id}/cover): the checks before it is accepted, and its record
 * on the asset.
 *
 * A video gets five 16:9 cover sizes from a frame of its own (queue/
 * video.c); the owner may replace them with an image.  The image is
 * refused at once when its first bytes show it is not one (415), or is
 * smaller than COVER_MIN_WIDTH x COVER_MIN_HEIGHT as displayed or over the
 * pixel limit (422): media/imagehead.h reads the size of a JPEG, PNG, GIF
 * or WebP from its header without a decoder, which is safe in the server
 * process.  Otherwise it is accepted (202) and a `cover` job renders the
 * five sizes in a worker, which checks the decoded size again (the only
 * check for TIFF, HEIF and AVIF, whose headers we do not read): a refusal
 * there is the record's error, announced by asset.updated like every
 * change of the record.
 *
 * The record (assets.cover) is JSON text, "" until the owner sends a cover:
 *
 *   {"version": V, "status": "processing" | "ready" | "failed",
 *    "error": null | {"code", "message"},
 *    "renditions": [the five sizes of the last cover that became ready]}
 *
 * V names the latest cover sent: 12 random hex digits, also in the names
 * of its blobs ("<id>.coversrc_V" the image sent, "<id>.cover_large_V" …
 * its sizes), so a cover never overwrites another's bytes: a video job
 * retried meanwhile writes only the automatic covers ("<id>.cover_large"),
 * and the asset's rendition list shows the uploaded ones in their place
 * (cover_merge) for as long as the record has them.  Each uploaded size
 * carries its version, and its URL ends in "?v=V": a new cover is a new
 * URL for every cache.
 *
 * Invariants: the image's bytes are durable before the record names them;
 * the record and the job that renders it commit together; a job renders
 * the record's latest version and commits its sizes only while that
 * version is still the latest (queue/covers.c), so a cover sent while
 * another renders is never lost nor overtaken by the older one.
 */
#ifndef ASSETD_COVER_H
#define ASSETD_COVER_H

#include "core/asset.h"
#include "db/db.h"
#include "store/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define COVER_VERSION_LEN 12
#define COVER_MIN_WIDTH 480
#define COVER_MIN_HEIGHT 270
/* The most bytes a cover image may have (and never more than --max-upload). */
#define COVER_MAX_BYTES ((uint64_t)32 << 20)
/* Blob names: "coversrc_V" (the image sent), "<size>_V" (its sizes). */
#define COVER_SOURCE_PREFIX "coversrc_"
/* The type of the job that makes a cover's sizes (queue/covers.c). */
#define COVER_JOB "cover"

typedef struct sniffer sniffer;

/* A fresh random version. */
bool cover_version_new(char out[COVER_VERSION_LEN + 1]);
/* The store key of version's source image of asset_id. */
void cover_source_key(const char *asset_id, const char *version, char *out, size_t cap);

/* ---------- the record ---------- */

/* What clients see of the record: JSON null, or {"status", "error"}.  New
 * reference. */
json_t *cover_public(const char *record);
/* Puts the record's ready sizes into renditions (an asset's list) in place
 * of the automatic ones of the same names (added when it has none). */
void cover_merge(json_t *renditions, const char *record);
/* The latest version and whether its sizes are made (else it is still to
 * be rendered, or its rendering failed); false when there is no record
 * (or it cannot be read). */
bool cover_latest(const char *record, char version[COVER_VERSION_LEN + 1], bool *ready);
/* The version of the ready sizes; false when there are none. */
bool cover_ready_version(const char *record, char version[COVER_VERSION_LEN + 1]);

/* The record after a change, into out (ASSET_COVER_JSON_MAX + 1 bytes):
 * version sent (processing, the ready sizes kept); version ready with its
 * sizes (renditions, borrowed); version failed (the ready sizes kept).
 * False if it would not fit (it always does: sizes are bounded). */
bool cover_record_processing(const char *record, const char *version, char *out, size_t cap);
bool cover_record_ready(const char *version, json_t *renditions, char *out, size_t cap);
bool cover_record_failed(const char *record, const char *version, const char *code,
                         const char *message, char *out, size_t cap);

/* ---------- accepting a cover (blocking: a work-pool thread) ---------- */

typedef enum {
    COVER_OK = 0,
    COVER_NOT_FOUND,     /* no such asset of this owner */
    COVER_NOT_VIDEO,     /* the asset is not a video */
    COVER_UNSUPPORTED,   /* the bytes are not an image format the workers decode */
    COVER_TOO_SMALL,     /* under COVER_MIN_WIDTH x COVER_MIN_HEIGHT */
    COVER_TOO_LARGE,     /* over max_pixels */
    COVER_CORRUPT,       /* the header is broken */
    COVER_STORAGE,       /* the store failed */
    COVER_DB,            /* the database failed */
} cover_result;

/* What the check learnt, for the reply: the sniffed type, and the size
 * when the header gave it (0 otherwise). */
typedef struct cover_check {
    char content_type[CONTENT_TYPE_MAX + 1];
    int width, height;
} cover_check;

/* Checks the image committed as version's source of asset_id and, if it
 * passes, records it as the owner's latest cover (asset.updated) with its
 * `cover` job, one transaction; fills *out with the asset.  The source
 * blob is removed when the cover is refused, and the previous version's
 * source once it can no longer be rendered. */
cover_result cover_accept(db_conn *c, store *s, sniffer *sn, const char *owner,
                          const char *asset_id, const char *version, uint64_t max_pixels,
                          cover_check *check, asset *out);

/* A cover job retried (POST /v1/jobs/{id}/retry), in its transaction: the
 * record's latest version is processing again (asset.updated) unless it
 * is made; the video's status is not the job's.  DB_NOT_FOUND when the
 * asset is gone. */
db_status cover_retried(db_conn *c, const char *asset_id, int64_t now_ms);

#endif
