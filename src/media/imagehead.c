/* imagehead.c — see imagehead.h.  Formats: JPEG (ITU T.81 markers, EXIF
 * in APP1), PNG (IHDR, eXIf before IDAT), GIF (logical screen), WebP
 * (RIFF: VP8, VP8L, VP8X with its EXIF chunk when within the buffer). */
#include "media/imagehead.h"

#include <string.h>

static uint32_t be16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t le16(const uint8_t *p) { return (uint32_t)p[1] << 8 | p[0]; }
static uint32_t be32(const uint8_t *p) { return be16(p) << 16 | be16(p + 2); }
static uint32_t le32(const uint8_t *p) { return le16(p + 2) << 16 | le16(p); }
static uint32_t le24(const uint8_t *p) { return (uint32_t)p[2] << 16 | le16(p); }

int imagehead_tiff_orientation(const uint8_t *p, size_t n)
{
    if (n < 8) return 1;
    bool little = p[0] == 'I' && p[1] == 'I';
    if (!little && !(p[0] == 'M' && p[1] == 'M')) return 1;
    uint32_t (*u16)(const uint8_t *) = little ? le16 : be16;
    uint32_t (*u32)(const uint8_t *) = little ? le32 : be32;
    if (u16(p + 2) != 42) return 1;
    uint32_t ifd = u32(p + 4);
    if (ifd > n - 2) return 1;
    uint32_t count = u16(p + ifd);
    for (uint32_t i = 0; i < count; i++) {
        size_t e = (size_t)ifd + 2 + (size_t)i * 12;
        if (e + 12 > n) return 1;
        /* tag 0x0112, type SHORT, one value: held in the entry itself */
        if (u16(p + e) == 0x0112 && u16(p + e + 2) == 3) {
            uint32_t v = u16(p + e + 8);
            return v >= 1 && v <= 8 ? (int)v : 1;
        }
    }
    return 1;
}

/* Orientations 5..8 show the image turned by a quarter. */
static imagehead_status sized(uint32_t w, uint32_t h, int orientation, bool exact, int *width,
                              int *height, bool *is_exact)
{
    if (w == 0 || h == 0 || w > 1u << 30 || h > 1u << 30) return IMAGEHEAD_CORRUPT;
    bool turned = orientation >= 5;
    *width = (int)(turned ? h : w);
    *height = (int)(turned ? w : h);
    *is_exact = exact;
    return IMAGEHEAD_SIZE;
}

static imagehead_status jpeg(const uint8_t *p, size_t n, int *w, int *h, bool *exact)
{
    int orientation = 1;
    size_t i = 2;
    while (i < n) {
        if (p[i] != 0xFF) return IMAGEHEAD_CORRUPT;
        while (i < n && p[i] == 0xFF) i++;   /* fill bytes */
        if (i >= n) break;
        uint8_t m = p[i++];
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) continue;   /* no length */
        if (m == 0xD9 || m == 0xDA) return IMAGEHEAD_CORRUPT;   /* pixels before a size */
        if (i + 2 > n) break;
        size_t len = be16(p + i);
        if (len < 2) return IMAGEHEAD_CORRUPT;
        const uint8_t *seg = p + i + 2;
        size_t seglen = len - 2, have = n - i - 2 < seglen ? n - i - 2 : seglen;
        /* SOF0..SOF15 but DHT (C4), JPG (C8) and DAC (CC) */
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            if (seglen < 5) return IMAGEHEAD_CORRUPT;
            if (have < 5) break;
            /* height 0 is defined later by a DNL marker: not a size we can read */
            if (be16(seg + 1) == 0) return IMAGEHEAD_UNKNOWN;
            return sized(be16(seg + 3), be16(seg + 1), orientation, true, w, h, exact);
        }
        if (m == 0xE1 && have == seglen && seglen >= 6 && memcmp(seg, "Exif\0\0", 6) == 0)
            orientation = imagehead_tiff_orientation(seg + 6, seglen - 6);
        i += len;
    }
    return IMAGEHEAD_UNKNOWN;
}

static imagehead_status png(const uint8_t *p, size_t n, int *w, int *h, bool *exact)
{
    if (n < 33) return IMAGEHEAD_UNKNOWN;
    if (be32(p + 8) != 13 || memcmp(p + 12, "IHDR", 4) != 0) return IMAGEHEAD_CORRUPT;
    uint32_t width = be32(p + 16), height = be32(p + 20);
    int orientation = 1;
    bool exact_size = false;
    /* chunks after IHDR (length, type, data, CRC) up to the first IDAT */
    for (size_t i = 33; i + 8 <= n;) {
        uint32_t len = be32(p + i);
        if (len > 0x7fffffff) return IMAGEHEAD_CORRUPT;
        if (memcmp(p + i + 4, "IDAT", 4) == 0) {
            exact_size = true;
            break;
        }
        if (memcmp(p + i + 4, "eXIf", 4) == 0 && len <= n - i - 8) {
            orientation = imagehead_tiff_orientation(p + i + 8, len);
            exact_size = true;
            break;
        }
        if ((size_t)len + 12 > n - i) break;
        i += (size_t)len + 12;
    }
    return sized(width, height, orientation, exact_size, w, h, exact);
}

static imagehead_status gif(const uint8_t *p, size_t n, int *w, int *h, bool *exact)
{
    if (n < 10) return IMAGEHEAD_UNKNOWN;
    return sized(le16(p + 6), le16(p + 8), 1, true, w, h, exact);
}

/* The orientation in a WebP's EXIF chunk, found among the chunks from
 * offset i; 0 when the buffer ends before one. */
static int webp_exif(const uint8_t *p, size_t n, size_t i)
{
    while (i + 8 <= n) {
        size_t len = le32(p + i + 4);
        if (memcmp(p + i, "EXIF", 4) == 0) {
            if (len > n - i - 8) return 0;
            const uint8_t *e = p + i + 8;
            if (len >= 6 && memcmp(e, "Exif\0\0", 6) == 0) e += 6, len -= 6;
            return imagehead_tiff_orientation(e, len);
        }
        len += len & 1;   /* chunks are padded to an even size */
        if (len > n - i - 8) return 0;
        i += 8 + len;
    }
    return 0;
}

static imagehead_status webp(const uint8_t *p, size_t n, int *w, int *h, bool *exact)
{
    if (n < 30) return IMAGEHEAD_UNKNOWN;
    const uint8_t *d = p + 20;   /* the first chunk's data */
    if (memcmp(p + 12, "VP8 ", 4) == 0) {
        if (d[3] != 0x9d || d[4] != 0x01 || d[5] != 0x2a) return IMAGEHEAD_CORRUPT;
        return sized(le16(d + 6) & 0x3fff, le16(d + 8) & 0x3fff, 1, true, w, h, exact);
    }
    if (memcmp(p + 12, "VP8L", 4) == 0) {
        if (d[0] != 0x2f) return IMAGEHEAD_CORRUPT;
        uint32_t bits = le32(d + 1);
        return sized((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1, 1, true, w, h, exact);
    }
    if (memcmp(p + 12, "VP8X", 4) == 0) {
        uint32_t width = le24(d + 4) + 1, height = le24(d + 7) + 1;
        if (!(d[0] & 0x08)) return sized(width, height, 1, true, w, h, exact);   /* no EXIF */
        size_t first = le32(p + 16);   /* VP8X's own data, padded to an even size */
        int orientation = webp_exif(p, n, 20 + first + (first & 1));
        return sized(width, height, orientation ? orientation : 1, orientation != 0, w, h,
                     exact);
    }
    return IMAGEHEAD_CORRUPT;
}

imagehead_status imagehead_size(const uint8_t *p, size_t n, int *width, int *height,
                                bool *exact)
{
    *width = *height = 0;
    *exact = false;
    if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
        return jpeg(p, n, width, height, exact);
    if (n >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0) return png(p, n, width, height, exact);
    if (n >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0))
        return gif(p, n, width, height, exact);
    if (n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0)
        return webp(p, n, width, height, exact);
    return IMAGEHEAD_UNKNOWN;
}
