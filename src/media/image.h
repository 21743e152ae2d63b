/* image.h — image renditions with libvips.
 *
 * One source image in, several renditions out, decoded once: the source is
 * shrunk on load (JPEG/WebP/HEIF decode at reduced size) straight to the
 * largest rendition, which is kept in memory and shrunk again for each
 * smaller one.  EXIF orientation is applied, colour is converted to sRGB
 * and every output is stripped of metadata (no GPS leaks).
 *
 * Safety: the header is read first and images over `max_pixels` are refused
 * before any pixel is decoded (decompression bombs); only the loaders below
 * are accepted and libvips' untrusted loaders are blocked; a truncated or
 * corrupt file is an error, not a half-grey image.  libvips runs with one
 * thread and no operation cache: a worker process handles one image at a
 * time.
 */
#ifndef ASSETD_IMAGE_H
#define ASSETD_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMAGE_PRESETS_MAX 16
#define IMAGE_PRESET_NAME_MAX 32

typedef enum {
    IMAGE_FIT_INSIDE,      /* the whole image, inside the size x height box */
    IMAGE_FIT_COVER,       /* the size x height box filled, centre-cropped; from a
                              source too small to fill it, the largest centred
                              crop of the box's shape (never enlarged) */
} image_fit;

typedef struct image_preset {
    char name[IMAGE_PRESET_NAME_MAX + 1];  /* "thumb": [a-z0-9_] (a blob key), unique */
    int size;              /* width of the box, pixels, 1..8192; never enlarged */
    int height;            /* height of the box ("640x480"); = size for "256" */
    char format[8];        /* "jpeg", "webp", "png", or "source": the source's own
                              format where it is JPEG, PNG, GIF or WebP (a GIF
                              keeps its first frame), else JPEG */
    int quality;           /* 1..100 (ignored for png) */
    image_fit fit;
} image_preset;

/* The renditions made when nothing is configured. */
/* fit640 is the open-table API's rendition (api/opentable.c). */
#define IMAGE_PRESETS_DEFAULT "thumb:256:jpeg:80,preview:1024:webp:80,fit640:640x480:source:80"

/* The five 16:9 covers of the original's videos, never upscaled: a
 * video's from its poster frame (queue/video.c), an owner's cover image
 * (queue/covers.c), and the `cover` image profile. */
#define IMAGE_COVER_PRESETS 5
extern const image_preset image_cover_presets[IMAGE_COVER_PRESETS];
/* The presets of an image profile (core/asset.h) other than the default:
 * "cover" (the covers above) and "avatar" (the original's square PNGs,
 * avatar_256, _128, _64 and _32).  NULL for "" (the default: the
 * configured presets) or a name it does not know; *n gets the count. */
const image_preset *image_profile_presets(const char *profile, int *n);

/* Parses a preset list, "name:size:format[:quality[:fit]],...", size N (a
 * square box) or WxH, quality 80 and fit `inside` by default.  Returns the number of presets (1..max), or
 * -1 with the reason in err.  Needs no image_init(). */
int image_presets_parse(const char *spec, image_preset *out, int max, char *err, size_t errcap);

typedef enum {
    IMAGE_OK = 0,
    IMAGE_UNSUPPORTED,     /* not a format we decode */
    IMAGE_TOO_LARGE,       /* over max_pixels */
    IMAGE_CORRUPT,         /* the decoder failed */
    IMAGE_OUTPUT_FAILED,   /* the sink refused a rendition */
} image_status;

/* Receives each encoded rendition; false aborts with IMAGE_OUTPUT_FAILED.
 * The buffer is only valid during the call. */
typedef bool (*image_sink)(void *arg, const image_preset *p, const void *data, size_t len,
                           int width, int height, const char *content_type);

/* Joins n images (JPEG files we wrote ourselves, each the same size) into
 * one grid, `columns` a row and at least `rows` rows (cells past n are
 * black), saved as a JPEG at quality to out.  False with why in err. */
bool image_join_tiles(const char *const *paths, int n, int columns, int rows, int quality,
                      const char *out, char *err, size_t errcap);

/* Once per process, before any other call. */
bool image_init(const char *argv0);

/* The size of the image readable at fd as displayed (its EXIF orientation
 * applied), from its header alone; IMAGE_UNSUPPORTED, IMAGE_CORRUPT or
 * IMAGE_TOO_LARGE (over max_pixels) with err otherwise.  Leaves fd's
 * offset anywhere: rewind it before rendering. */
image_status image_size(int fd, uint64_t max_pixels, int *width, int *height, char *err,
                        size_t errcap);

/* Renders every preset from the image readable at fd.  Fills the source's
 * size; on failure writes a human-readable reason into err. */
image_status image_render(int fd, const image_preset *presets, int npresets, uint64_t max_pixels,
                          image_sink sink, void *arg, int *src_width, int *src_height,
                          char *err, size_t errcap);

#endif
