/* imagehead.h — an image's displayed size from its first bytes, without a
 * decoder.
 *
 * For checks the server process makes before it accepts an image (a
 * video's cover, core/cover.c): decoders run only in worker processes
 * (docs/architecture.md), but a JPEG's SOF segment, a PNG's IHDR, a GIF's
 * screen descriptor and a WebP's frame header say the size in a few
 * bytes, and EXIF says whether the image is shown turned.  This is a
 * bounded walk over a buffer the caller already holds (the sniffed first
 * MiB): no allocation, every offset checked against the length, no
 * recursion, at most one pass over the bytes.
 *
 * Only what the header proves is reported; anything else is UNKNOWN and
 * left to the worker, which decodes and checks again.  *exact is false
 * when the image may carry an orientation the walk did not reach (a
 * WebP's EXIF chunk comes after its pixels; a PNG's eXIf may follow the
 * first MiB): the size is then the stored one, and may be shown turned.
 */
#ifndef ASSETD_IMAGEHEAD_H
#define ASSETD_IMAGEHEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    IMAGEHEAD_SIZE,      /* *width x *height, as displayed when *exact */
    IMAGEHEAD_UNKNOWN,   /* another format, or the size is past the buffer */
    IMAGEHEAD_CORRUPT,   /* a format we read, broken before its size */
} imagehead_status;

imagehead_status imagehead_size(const uint8_t *p, size_t n, int *width, int *height,
                                bool *exact);

/* The EXIF orientation (1..8) in a TIFF structure (an Exif block after
 * its "Exif\0\0"), or 1 when it has none or cannot be read. */
int imagehead_tiff_orientation(const uint8_t *p, size_t n);

#endif
