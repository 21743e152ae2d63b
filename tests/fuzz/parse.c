/* parse — numbers and encodings that come from users: util/parse.c
 * (parse_u64, parse_size: flags, ?limit=, Content-Length, Upload-Length)
 * and util/encode.c (base64url, ids, list cursors).
 *
 * Input: "TEXT\0BYTES..." (the second field's raw bytes, NULs included).
 * Properties:
 *   - parse_u64 accepts exactly the non-empty all-digit strings whose value
 *     fits, and reads that value (checked against strtoull);
 *   - parse_size agrees with a reference reading of "digits [KMGT] [B|iB]"
 *     (or "digits B"), overflow refused;
 *   - a printed number parses back to itself;
 *   - base64url: decode(encode(bytes)) == bytes; and whatever decodes is
 *     canonical: encode(decode(text)) == text;
 *   - cursors: decode succeeds only for 1..INT64_MAX and re-encodes to the
 *     same text; id_is_valid is exactly "22 base64url characters".
 */
#include "fuzz.h"
#include "util/encode.h"
#include "util/parse.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool ref_u64(const char *s, uint64_t *v)
{
    if (!*s || strspn(s, "0123456789") != strlen(s)) return false;
    errno = 0;
    unsigned long long x = strtoull(s, NULL, 10);
    if (errno == ERANGE) return false;
    *v = x;
    return true;
}

static bool ref_size(const char *s, uint64_t *v)
{
    size_t nd = strspn(s, "0123456789");
    if (nd == 0) return false;
    char *digits = strndup(s, nd);
    uint64_t n;
    bool fits = ref_u64(digits, &n);
    free(digits);
    if (!fits) return false;
    const char *suffix = s + nd;
    if (!*suffix || strcasecmp(suffix, "b") == 0) { *v = n; return true; }
    const char *units = "KMGT", *u = strchr(units, toupper((unsigned char)*suffix));
    if (!u || !*u) return false;
    const char *rest = suffix + 1;
    if (*rest && strcasecmp(rest, "b") != 0 && strcasecmp(rest, "ib") != 0) return false;
    unsigned shift = 10 * (unsigned)(u - units + 1);
    if (n > (UINT64_MAX >> shift)) return false;
    *v = n << shift;
    return true;
}

static bool b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *f[1], *buf;
    fuzz_split(data, size, f, 1, &buf);
    const char *s = f[0];
    size_t slen = strlen(s);
    const uint8_t *raw = data + (slen < size ? slen + 1 : size);
    size_t rawlen = size - (size_t)(raw - data);

    uint64_t a = 0, b = 0;
    bool ok = parse_u64(s, &a), want = ref_u64(s, &b);
    FUZZ_CHECK(ok == want && (!ok || a == b));
    ok = parse_size(s, &a);
    want = ref_size(s, &b);
    FUZZ_CHECK(ok == want && (!ok || a == b));

    /* Printed numbers parse back. */
    uint64_t x = 0;
    memcpy(&x, raw, rawlen < 8 ? rawlen : 8);
    char text[32];
    snprintf(text, sizeof text, "%" PRIu64, x);
    FUZZ_CHECK(parse_u64(text, &a) && a == x);
    snprintf(text, sizeof text, "%" PRIu64 "MiB", x >> 20);
    FUZZ_CHECK(parse_size(text, &a) && a == (x >> 20) << 20);

    /* base64url both ways. */
    char *enc = malloc(rawlen * 4 / 3 + 4);
    uint8_t *dec = malloc(rawlen + 1);
    b64url_encode(raw, rawlen, enc);
    FUZZ_CHECK(strlen(enc) == (rawlen * 4 + 2) / 3);
    FUZZ_CHECK(b64url_decode(enc, dec, rawlen) == (int)rawlen && memcmp(dec, raw, rawlen) == 0);
    if (rawlen > 0) FUZZ_CHECK(b64url_decode(enc, dec, rawlen - 1) == -1);   /* cap respected */
    free(enc);
    free(dec);

    uint8_t *out = malloc(slen + 1);
    int n = b64url_decode(s, out, slen);
    if (n >= 0) {
        char *back = malloc(slen + 4);
        b64url_encode(out, (size_t)n, back);
        FUZZ_CHECK(strcmp(back, s) == 0);
        free(back);
    }
    free(out);

    int64_t seq;
    if (cursor_decode(s, &seq)) {
        char back[CURSOR_MAX + 1];
        FUZZ_CHECK(seq >= 1);
        cursor_encode(seq, back);
        FUZZ_CHECK(strcmp(back, s) == 0);
    }
    bool id_ref = slen == ID_LEN;
    for (size_t i = 0; id_ref && i < slen; i++) id_ref = b64url_char(s[i]);
    FUZZ_CHECK(id_is_valid(s) == id_ref);
    free(buf);
    return 0;
}
