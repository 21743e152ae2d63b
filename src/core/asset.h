/* asset.h — the asset: one uploaded file and what assetd knows about it.
 *
 * An asset is plain data with fixed-size fields, so it can be copied, put on
 * the stack and filled by any database back-end without ownership questions.
 * Its JSON form (asset_to_json) is the one clients see everywhere.
 *
 * Invariant (see docs/architecture.md): a row exists only once its bytes are
 * durable in the store, so every asset a client can see has content.
 */
#ifndef ASSETD_ASSET_H
#define ASSETD_ASSET_H

#include "util/encode.h"
#include "util/filename.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define OWNER_MAX 128
#define CONTENT_TYPE_MAX 128
#define ASSET_RENDITIONS_JSON_MAX 4095   /* 16 presets of ~200 bytes */
#define ASSET_META_JSON_MAX 255
/* An owner's cover record (core/cover.h): five sizes of ~240 bytes. */
#define ASSET_COVER_JSON_MAX 1535
/* Image profiles (?profile=): which set of renditions an image gets.
 * Stored by name, "" for the default (the server's --renditions); the
 * presets of the others are media/image.h's (image_profile_presets). */
#define ASSET_PROFILE_MAX 15
#define ASSET_PROFILES "default, cover or avatar"
/* What the owner may say about an asset (PATCH /v1/assets/{id}), in bytes
 * of UTF-8: a title of one line, a description (newlines and tabs allowed),
 * up to ASSET_TAGS_MAX tags of one line each. */
#define ASSET_TITLE_MAX 200
#define ASSET_DESCRIPTION_MAX 2000
#define ASSET_TAGS_MAX 20
#define ASSET_TAG_MAX 40
/* the tags as a JSON array: at worst every byte escaped as \" or \\ */
#define ASSET_TAGS_JSON_MAX (ASSET_TAGS_MAX * (2 * ASSET_TAG_MAX + 3) + 2)

typedef enum { ASSET_IMAGE, ASSET_PDF, ASSET_PRESENTATION, ASSET_VIDEO, ASSET_OTHER } asset_kind;
typedef enum { STATUS_UPLOADED, STATUS_PROCESSING, STATUS_READY, STATUS_FAILED } asset_status;

typedef struct asset {
    int64_t seq;                        /* creation order; the list cursor */
    char id[ID_LEN + 1];
    char owner[OWNER_MAX + 1];
    asset_kind kind;
    asset_status status;
    char filename[FILENAME_MAX_BYTES + 1];
    char content_type[CONTENT_TYPE_MAX + 1];
    uint64_t size;
    char sha256[65];
    char created[32];
    char updated[32];
    /* Filled by processing (queue/worker.c).  JSON texts, as the API shows
     * them: renditions is an array of {name, content_type, width, height,
     * size, url}, meta an object (source width/height). */
    char renditions[ASSET_RENDITIONS_JSON_MAX + 1];
    char meta[ASSET_META_JSON_MAX + 1];
    char error_code[64];       /* "" unless status is failed */
    char error_message[256];
    char title[ASSET_TITLE_MAX + 1];
    char description[ASSET_DESCRIPTION_MAX + 1];
    char tags[ASSET_TAGS_JSON_MAX + 1];   /* JSON array of strings */
    char profile[ASSET_PROFILE_MAX + 1];  /* "" (default), "cover", "avatar" */
    char cover[ASSET_COVER_JSON_MAX + 1]; /* a video's uploaded cover (core/cover.h), or "" */
} asset;

const char *asset_kind_name(asset_kind k);
const char *asset_status_name(asset_status s);
bool asset_kind_parse(const char *s, asset_kind *out);
bool asset_status_parse(const char *s, asset_status *out);

/* Maps a sniffed MIME type ("image/png", "application/pdf", ...) to a kind. */
asset_kind asset_kind_from_mime(const char *mime);

/* True when the type is safe to render inline in a browser from our origin
 * (no script-capable types like HTML or SVG). */
bool asset_inline_safe(const asset *a);

/* The profile named by s (NULL or "" is the default) in its stored form
 * into out: "" for the default, else the name.  False if s names none. */
bool asset_profile_parse(const char *s, char out[ASSET_PROFILE_MAX + 1]);

/* New reference; the caller owns it. */
json_t *asset_to_json(const asset *a);
/* The renditions as clients see them: the stored list, with an owner's
 * cover sizes in place of the automatic ones (cover_merge).  New
 * reference, always an array. */
json_t *asset_renditions(const asset *a);

/* Applies a PATCH body to a: "title", "description" (strings) and "tags"
 * (an array of strings; duplicates dropped, order kept), each optional;
 * trimmed of surrounding blanks.  False, with a message naming the field
 * in err, for an unknown field, a wrong type, an over-long value, a
 * control character (but newline and tab in a description), or too many
 * tags; a is then unchanged.  jansson already refused invalid UTF-8. */
bool asset_info_apply(asset *a, json_t *body, char *err, size_t errcap);

/* The processing pipeline for a kind ("image"), or NULL when assets of that
 * kind are stored as they are. */
const char *asset_pipeline(asset_kind k);

#endif
