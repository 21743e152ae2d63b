/* tus — the tus headers core/tus.c parses: Upload-Metadata
 * (tus_metadata_parse) and the base64 it and Upload-Checksum use
 * (tus_b64_decode).  Upload-Checksum, Upload-Concat and Upload-Length
 * themselves are parsed in api/tus.c's handlers and reached by the api
 * target.
 *
 * Input: "METADATA-HEADER\0KEY\0VALUE\0KEY\0VALUE\0BYTES..." (the last
 * field's raw bytes, NULs included).
 * Properties:
 *   - base64: decoding the standard encoding of any bytes (padded or not)
 *     gives the bytes back; a decoded length is exactly 3/4 of the
 *     unpadded text, rounded down; a decoder never writes past its cap;
 *   - a header tus_metadata_parse accepts is kept verbatim, and its
 *     filename and filetype hold no control characters;
 *   - a header built from fuzzed pairs (keys without ' ' or ',', values
 *     base64-encoded) parses exactly when its filename and filetype values
 *     are text that fits, and
 *     then gives them back.
 */
#include "fuzz.h"
#include "core/tus.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

static void check_b64(const uint8_t *raw, size_t n)
{
    char *enc = malloc(4 * ((n + 2) / 3) + 1);
    uint8_t *dec = malloc(n + 1);
    int elen = EVP_EncodeBlock((unsigned char *)enc, raw, (int)n);
    FUZZ_CHECK(tus_b64_decode(enc, (size_t)elen, dec, n) == (int)n && memcmp(dec, raw, n) == 0);
    size_t bare = (size_t)elen;
    while (bare && enc[bare - 1] == '=') bare--;
    FUZZ_CHECK(tus_b64_decode(enc, bare, dec, n) == (int)n && memcmp(dec, raw, n) == 0);
    if (n) FUZZ_CHECK(tus_b64_decode(enc, bare, dec, n - 1) == -1);
    free(enc);
    free(dec);
}

static void check_header(const char *h)
{
    tus_upload *u = malloc(sizeof *u);
    uint8_t out[TUS_METADATA_MAX];
    /* raw base64 too */
    int n = tus_b64_decode(h, strlen(h), out, sizeof out);
    if (n >= 0) {
        size_t bare = strlen(h);
        while (bare && h[bare - 1] == '=') bare--;
        FUZZ_CHECK((size_t)n == bare * 6 / 8);
    }
    if (tus_metadata_parse(h, u)) {
        FUZZ_CHECK(strcmp(u->metadata, h) == 0);
        for (const char *p = u->filename; *p; p++) FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
        for (const char *p = u->filetype; *p; p++) FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
    }
    free(u);
}

static bool text_ok(const char *v, size_t cap)
{
    if (strlen(v) >= cap) return false;
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) return false;
    return true;
}

static void check_built(char **f)
{
    char header[TUS_METADATA_MAX * 2];
    size_t o = 0;
    bool want = true;
    const char *fname = NULL, *ftype = NULL, *profile = NULL;
    for (int i = 0; i < 2; i++) {
        const char *k = f[1 + 2 * i], *v = f[2 + 2 * i];
        if (!*k || strlen(k) > 64 || strlen(v) > 600 || strpbrk(k, " ,")) return;
        size_t vl = strlen(v);
        o += (size_t)snprintf(header + o, sizeof header - o, "%s%s", i ? "," : "", k);
        if (vl) {
            header[o++] = ' ';
            o += (size_t)EVP_EncodeBlock((unsigned char *)header + o, (const unsigned char *)v,
                                         (int)vl);
        }
        header[o] = '\0';
        if (strcmp(k, "filename") == 0) {
            fname = v;
            want &= text_ok(v, FILENAME_MAX_BYTES + 1);
        } else if (strcmp(k, "filetype") == 0) {
            ftype = v;
            want &= text_ok(v, CONTENT_TYPE_MAX + 1);
        } else if (strcmp(k, "profile") == 0) {   /* the name is checked later (profiles) */
            profile = v;
            want &= text_ok(v, ASSET_PROFILE_MAX + 1);
        }
    }
    tus_upload *u = malloc(sizeof *u);
    bool ok = tus_metadata_parse(header, u);
    FUZZ_CHECK(ok == want);
    if (ok && fname) FUZZ_CHECK(strcmp(u->filename, fname) == 0);
    if (ok && ftype) FUZZ_CHECK(strcmp(u->filetype, ftype) == 0);
    if (ok && profile) FUZZ_CHECK(strcmp(u->profile, profile) == 0);
    free(u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *f[5], *buf;
    int nf = fuzz_split(data, size, f, 5, &buf);
    check_header(f[0]);
    check_built(f);
    /* the bytes after the fifth NUL, raw */
    const uint8_t *raw = data;
    size_t left = size;
    for (int i = 0; i < 5 && i < nf; i++) {
        const uint8_t *nul = memchr(raw, 0, left);
        if (!nul) { left = 0; break; }
        left -= (size_t)(nul + 1 - raw);
        raw = nul + 1;
    }
    check_b64(raw, left > 3000 ? 3000 : left);
    free(buf);
    return 0;
}
