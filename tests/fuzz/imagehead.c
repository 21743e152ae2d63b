/* imagehead — an image's displayed size from its first bytes
 * (media/imagehead.c), read in the server process for an owner's cover
 * before any decoder runs, from bytes the client sent.
 *
 * Input: the bytes themselves (seeds: tiny JPEG, PNG, GIF, WebP).
 * Properties:
 *   - no read outside the buffer (it is copied into an allocation of
 *     exactly its length, so ASan sees one byte past);
 *   - a size is positive in both dimensions;
 *   - the same bytes give the same answer (no hidden state);
 *   - a prefix never contradicts the whole: when the first half already
 *     gives an exact size, the whole gives that size;
 *   - an EXIF orientation is 1..8, whatever the TIFF structure says.
 */
#include "fuzz.h"
#include "media/imagehead.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    int w = -1, h = -1, w2 = -1, h2 = -1;
    bool exact = false, exact2 = false;
    imagehead_status st = imagehead_size(copy, size, &w, &h, &exact);
    if (st == IMAGEHEAD_SIZE) FUZZ_CHECK(w > 0 && h > 0);
    imagehead_status again = imagehead_size(copy, size, &w2, &h2, &exact2);
    FUZZ_CHECK(again == st);
    if (st == IMAGEHEAD_SIZE) FUZZ_CHECK(w2 == w && h2 == h && exact2 == exact);

    size_t half = size / 2;
    uint8_t *prefix = malloc(half ? half : 1);
    if (prefix) {
        memcpy(prefix, data, half);
        int pw = -1, ph = -1;
        bool pexact = false;
        if (imagehead_size(prefix, half, &pw, &ph, &pexact) == IMAGEHEAD_SIZE && pexact)
            FUZZ_CHECK(st == IMAGEHEAD_SIZE && pw == w && ph == h);
        free(prefix);
    }

    int o = imagehead_tiff_orientation(copy, size);
    FUZZ_CHECK(o >= 1 && o <= 8);
    free(copy);
    return 0;
}
