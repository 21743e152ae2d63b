/* A video's cover sent by its owner: the record (core/cover.h), and the
 * image sizes read from headers alone before it is accepted
 * (media/imagehead.h). */
#include "test.h"
#include "core/cover.h"
#include "media/imagehead.h"

#include <stdlib.h>

static json_t *sizes_of(const char *version)
{
    json_t *list = json_array();
    const char *names[] = {"cover_large", "cover_nano"};
    for (int i = 0; i < 2; i++)
        json_array_append_new(list, json_pack("{s:s, s:i, s:s}", "name", names[i], "size",
                                              100 + i, "version", version));
    return list;
}

TEST(cover_record_keeps_the_ready_sizes_until_a_newer_cover_is_made)
{
    char rec[ASSET_COVER_JSON_MAX + 1], next[ASSET_COVER_JSON_MAX + 1];
    char v[COVER_VERSION_LEN + 1], w[COVER_VERSION_LEN + 1], got[COVER_VERSION_LEN + 1];
    bool ready = true;
    CHECK(cover_version_new(v) && cover_version_new(w) && strcmp(v, w) != 0);
    CHECK(strlen(v) == COVER_VERSION_LEN && strspn(v, "0123456789abcdef") == COVER_VERSION_LEN);
    CHECK(!cover_latest("", got, &ready));
    json_t *pub = cover_public("");
    CHECK(json_is_null(pub));
    json_decref(pub);

    CHECK(cover_record_processing("", v, rec, sizeof rec));
    CHECK(cover_latest(rec, got, &ready) && !ready);
    CHECK_STR(got, v);
    CHECK(!cover_ready_version(rec, got));
    json_t *sizes = sizes_of(v);
    CHECK(cover_record_ready(v, sizes, rec, sizeof rec));
    json_decref(sizes);
    CHECK(cover_latest(rec, got, &ready) && ready);
    CHECK(cover_ready_version(rec, got));
    CHECK_STR(got, v);

    /* a newer cover: processing, then failed; the ready sizes stay */
    CHECK(cover_record_processing(rec, w, next, sizeof next));
    CHECK(cover_latest(next, got, &ready) && !ready);
    CHECK_STR(got, w);
    CHECK(cover_ready_version(next, got));
    CHECK_STR(got, v);
    char failed[ASSET_COVER_JSON_MAX + 1];
    char long_message[600];
    memset(long_message, 'x', sizeof long_message - 1);
    long_message[sizeof long_message - 1] = '\0';
    CHECK(cover_record_failed(next, w, "cover_too_small", long_message, failed, sizeof failed));
    pub = cover_public(failed);
    CHECK_STR(json_string_value(json_object_get(pub, "status")), "failed");
    CHECK_STR(json_string_value(json_object_get(json_object_get(pub, "error"), "code")),
              "cover_too_small");
    CHECK(json_object_size(pub) == 2);   /* status and error: not the sizes */
    json_decref(pub);
    CHECK(cover_ready_version(failed, got));
    CHECK_STR(got, v);

    /* the list clients see: the owner's sizes in place of the frame's,
     * the others untouched, a size the list lacked added */
    json_t *list = json_pack("[{s:s, s:i}, {s:s, s:i}, {s:s, s:i}]", "name", "fallback", "size",
                             1, "name", "cover_large", "size", 2, "name", "cover_tiny", "size",
                             3);
    cover_merge(list, failed);
    CHECK(json_array_size(list) == 4);
    CHECK(json_integer_value(json_object_get(json_array_get(list, 1), "size")) == 100);
    CHECK_STR(json_string_value(json_object_get(json_array_get(list, 1), "version")), v);
    CHECK(json_integer_value(json_object_get(json_array_get(list, 2), "size")) == 3);
    CHECK_STR(json_string_value(json_object_get(json_array_get(list, 3), "name")), "cover_nano");
    json_decref(list);
    /* a record that cannot be read changes nothing */
    list = json_array();
    cover_merge(list, "{not json");
    CHECK(json_array_size(list) == 0);
    json_decref(list);
}

/* ---------- header sizes ---------- */

static imagehead_status head(const uint8_t *p, size_t n, int *w, int *h, bool *exact)
{
    /* a copy of exactly n bytes, so ASan sees any read past the end */
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, p, n);
    imagehead_status st = imagehead_size(copy, n, w, h, exact);
    free(copy);
    return st;
}

/* A JPEG head: SOI, optionally an APP1 Exif with the orientation, an APP0,
 * then SOF0 of w x h; returns its length. */
static size_t jpeg_head(uint8_t *b, int w, int h, int orientation)
{
    size_t n = 0;
    b[n++] = 0xFF, b[n++] = 0xD8;
    if (orientation) {
        static const uint8_t exif[] = {
            0xFF, 0xE1, 0x00, 0x22, 'E', 'x', 'i', 'f', 0, 0,
            'M', 'M', 0, 42, 0, 0, 0, 8,           /* big-endian TIFF, IFD at 8 */
            0, 1,                                    /* one entry */
            0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, /* orientation, SHORT, 1 */
            0, 0, 0, 0};                             /* no next IFD */
        memcpy(b + n, exif, sizeof exif);
        b[n + 29] = (uint8_t)orientation;   /* the value's first (high) byte is 0 */
        n += sizeof exif;
    }
    static const uint8_t app0[] = {0xFF, 0xE0, 0x00, 0x04, 0x4A, 0x46};
    memcpy(b + n, app0, sizeof app0);
    n += sizeof app0;
    const uint8_t sof[] = {0xFF, 0xFF, 0xC0, 0x00, 0x11, 8, (uint8_t)(h >> 8), (uint8_t)h,
                           (uint8_t)(w >> 8), (uint8_t)w, 3};
    memcpy(b + n, sof, sizeof sof);
    n += sizeof sof;
    memset(b + n, 0, 9);   /* the rest of SOF0's components */
    return n + 9;
}

TEST(imagehead_reads_jpeg_sizes_with_their_orientation)
{
    uint8_t b[256];
    int w, h;
    bool exact;
    size_t n = jpeg_head(b, 1600, 900, 0);
    CHECK(head(b, n, &w, &h, &exact) == IMAGEHEAD_SIZE && w == 1600 && h == 900 && exact);
    n = jpeg_head(b, 270, 480, 6);   /* stored portrait, shown turned */
    CHECK(head(b, n, &w, &h, &exact) == IMAGEHEAD_SIZE && w == 480 && h == 270 && exact);
    n = jpeg_head(b, 400, 200, 3);   /* upside down: same size */
    CHECK(head(b, n, &w, &h, &exact) == IMAGEHEAD_SIZE && w == 400 && h == 200);
    /* every truncation is unknown, or the size once SOF's is whole: never
     * a wrong one, never corrupt */
    for (size_t cut = 0; cut < n; cut++) {
        imagehead_status st = head(b, cut, &w, &h, &exact);
        CHECK(st == IMAGEHEAD_UNKNOWN || (st == IMAGEHEAD_SIZE && w == 400 && h == 200));
    }
    /* pixels before any size, and junk between segments */
    const uint8_t scan[] = {0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02};
    CHECK(head(scan, sizeof scan, &w, &h, &exact) == IMAGEHEAD_CORRUPT);
    const uint8_t junk[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x02, 0x12, 0x34};
    CHECK(head(junk, sizeof junk, &w, &h, &exact) == IMAGEHEAD_CORRUPT);
    const uint8_t zero[] = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 8, 0, 10, 0, 0, 3};
    CHECK(head(zero, sizeof zero, &w, &h, &exact) == IMAGEHEAD_CORRUPT);
}

TEST(imagehead_reads_png_gif_and_webp_sizes)
{
    int w, h;
    bool exact;
    uint8_t png[41] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D',
                       'R', 0, 0, 0x07, 0x80, 0, 0, 0x04, 0x38};
    memcpy(png + 33, "\0\0\0\0IDAT", 8);
    CHECK(head(png, sizeof png, &w, &h, &exact) == IMAGEHEAD_SIZE && w == 1920 && h == 1080 &&
          exact);
    /* without IDAT in the buffer an eXIf may follow: the size, not exact */
    CHECK(head(png, 33, &w, &h, &exact) == IMAGEHEAD_SIZE && w == 1920 && !exact);
    png[12] = 'X';
    CHECK(head(png, sizeof png, &w, &h, &exact) == IMAGEHEAD_CORRUPT);

    const uint8_t gif[] = {'G', 'I', 'F', '8', '9', 'a', 0x90, 0x01, 0xC8, 0x00};
    CHECK(head(gif, sizeof gif, &w, &h, &exact) == IMAGEHEAD_SIZE && w == 400 && h == 200);

    uint8_t vp8[30] = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', ' '};
    const uint8_t frame[] = {0, 0, 0, 0x9d, 0x01, 0x2a, 0x40, 0x06, 0x84, 0x03};
    memcpy(vp8 + 20, frame, sizeof frame);
    CHECK(head(vp8, sizeof vp8, &w, &h, &exact) == IMAGEHEAD_SIZE && w == 1600 && h == 900);
    uint8_t vp8l[30] = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', 'L'};
    /* 14 bits of width - 1, 14 of height - 1: 400 x 200 */
    uint32_t bits = (400 - 1) | (uint32_t)(200 - 1) << 14;
    vp8l[20] = 0x2f;
    for (int i = 0; i < 4; i++) vp8l[21 + i] = (uint8_t)(bits >> (8 * i));
    CHECK(head(vp8l, sizeof vp8l, &w, &h, &exact) == IMAGEHEAD_SIZE && w == 400 && h == 200);
    uint8_t vp8x[30] = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', 'X',
                        10, 0, 0, 0, 0x08 /* EXIF */, 0, 0, 0, 0x7f, 0x07, 0, 0x37, 0x04, 0};
    /* the EXIF chunk is past the buffer: the stored size, maybe turned */
    CHECK(head(vp8x, sizeof vp8x, &w, &h, &exact) == IMAGEHEAD_SIZE && w == 1920 && h == 1080 &&
          !exact);
    vp8x[20] = 0;
    CHECK(head(vp8x, sizeof vp8x, &w, &h, &exact) == IMAGEHEAD_SIZE && exact);

    const uint8_t text[] = "hello, not an image at all";
    CHECK(head(text, sizeof text, &w, &h, &exact) == IMAGEHEAD_UNKNOWN);
    const uint8_t tiff[] = {'I', 'I', 42, 0, 8, 0, 0, 0};
    CHECK(head(tiff, sizeof tiff, &w, &h, &exact) == IMAGEHEAD_UNKNOWN);   /* the worker's */
}

TEST(imagehead_survives_random_bytes_after_each_signature)
{
    static const char *const sigs[] = {"\xFF\xD8\xFF", "\x89PNG\r\n\x1a\n", "GIF89a",
                                       "RIFF\0\0\0\0WEBPVP8X", "RIFF\0\0\0\0WEBPVP8 ",
                                       "RIFF\0\0\0\0WEBPVP8L"};
    static const size_t lens[] = {3, 8, 6, 16, 16, 16};
    uint32_t seed = 12345;
    uint8_t b[512];
    for (int round = 0; round < 4000; round++) {
        size_t s = (size_t)round % 6, n = lens[s] + (size_t)(round * 7 % 400);
        memcpy(b, sigs[s], lens[s]);
        for (size_t i = lens[s]; i < n; i++) {
            seed = seed * 1103515245 + 12345;
            b[i] = (uint8_t)(seed >> 16);
            if (round % 3 == 0 && i % 5 == 0) b[i] = 0xFF;   /* JPEG markers often */
        }
        int w = -1, h = -1;
        bool exact;
        if (head(b, n, &w, &h, &exact) == IMAGEHEAD_SIZE) CHECK(w > 0 && h > 0);
    }
}
