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

typedef struct image_preset {
    const char *name;      /* "thumb" */
    int size;              /* longest edge, pixels */
    const char *format;    /* "jpeg", "webp" or "png" */
    int quality;           /* 1..100 (ignored for png) */
} image_preset;

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

/* Once per process, before any other call. */
bool image_init(const char *argv0);

/* Renders every preset from the image readable at fd.  Fills the source's
 * size; on failure writes a human-readable reason into err. */
image_status image_render(int fd, const image_preset *presets, int npresets, uint64_t max_pixels,
                          image_sink sink, void *arg, int *src_width, int *src_height,
                          char *err, size_t errcap);

#endif
