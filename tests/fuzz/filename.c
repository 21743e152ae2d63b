/* filename — client file names (util/filename.c) and UTF-8 checks
 * (util/utf8.c), both of which guard what is echoed in JSON and headers.
 *
 * Input: "NAME\0SCRUB-CAP".
 * Properties:
 *   - a sanitised name is 1..FILENAME_MAX_BYTES bytes of valid UTF-8 with no
 *     '/', '\', control character or DEL, and is not "." or "..";
 *   - sanitising is idempotent, and leaves a name that was already clean as
 *     it was;
 *   - Content-Disposition: the quoted fallback holds only printable ASCII
 *     other than '"', '\' and '%'; filename* (present exactly when the name
 *     is not ASCII) holds only RFC 5987 attr-chars and %XX, and
 *     percent-decodes back to the name;
 *   - utf8_seq_len agrees with a reference decoder (Unicode table 3-7);
 *   - utf8_scrub's output is valid UTF-8 that fits its buffer, and is the
 *     input itself when that was valid and fits.
 */
#include "fuzz.h"
#include "util/filename.h"
#include "util/utf8.h"

#include <stdlib.h>
#include <string.h>

/* The well-formed byte sequences of Unicode 15, table 3-7. */
static size_t ref_seq_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80) return 1;
#define IN(x, lo, hi) ((x) >= (lo) && (x) <= (hi))
    if (IN(c, 0xC2, 0xDF)) return IN(s[1], 0x80, 0xBF) ? 2 : 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
    if (IN(c, 0xE0, 0xEF)) return IN(s[1], lo, hi) && IN(s[2], 0x80, 0xBF) ? 3 : 0;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
    if (IN(c, 0xF0, 0xF4))
        return IN(s[1], lo, hi) && IN(s[2], 0x80, 0xBF) && IN(s[3], 0x80, 0xBF) ? 4 : 0;
    return 0;
#undef IN
}

static bool valid_utf8(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = ref_seq_len(p);
        if (!n) return false;
        p += n;
    }
    return true;
}

static bool clean(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > FILENAME_MAX_BYTES || !valid_utf8(s) || strcmp(s, ".") == 0 ||
        strcmp(s, "..") == 0)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7F || *p == '/' || *p == '\\') return false;
    return true;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void check_disposition(const char *name, bool attachment)
{
    char out[CONTENT_DISPOSITION_MAX];
    FUZZ_CHECK(content_disposition(name, attachment, out, sizeof out));
    const char *prefix = attachment ? "attachment; filename=\"" : "inline; filename=\"";
    FUZZ_CHECK(strncmp(out, prefix, strlen(prefix)) == 0);
    const char *p = out + strlen(prefix);
    bool ascii = true;
    for (const unsigned char *s = (const unsigned char *)name; *s; s++) ascii &= *s < 0x80;
    const char *q = p;
    for (; *q && *q != '"'; q++)
        FUZZ_CHECK(*q >= 0x20 && *q < 0x7F && *q != '\\' && *q != '%');
    FUZZ_CHECK(*q == '"' && (size_t)(q - p) == strlen(name));
    q++;
    if (ascii) {
        FUZZ_CHECK(*q == '\0');
        for (size_t i = 0; name[i]; i++)
            FUZZ_CHECK(p[i] == name[i] || (p[i] == '_' && strchr("\"\\%", name[i])));
        return;
    }
    const char *star = "; filename*=UTF-8''";
    FUZZ_CHECK(strncmp(q, star, strlen(star)) == 0);
    q += strlen(star);
    char decoded[FILENAME_MAX_BYTES + 1];
    size_t o = 0;
    for (; *q; q++) {
        FUZZ_CHECK(o < sizeof decoded - 1);
        if (*q == '%') {
            int a = hexval(q[1]), b = a < 0 ? -1 : hexval(q[2]);
            FUZZ_CHECK(a >= 0 && b >= 0);
            decoded[o++] = (char)(a << 4 | b);
            q += 2;
        } else {
            FUZZ_CHECK(strchr("!#$&+-.^_`|~", *q) || (*q >= '0' && *q <= '9') ||
                       (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z'));
            decoded[o++] = *q;
        }
    }
    decoded[o] = '\0';
    FUZZ_CHECK(strcmp(decoded, name) == 0);
}

static void check_scrub(const char *in, size_t cap)
{
    char *out = malloc(cap);
    utf8_scrub(in, out, cap);
    FUZZ_CHECK(strlen(out) < cap && valid_utf8(out));
    if (valid_utf8(in) && strlen(in) < cap) FUZZ_CHECK(strcmp(in, out) == 0);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *f[2], *buf;
    fuzz_split(data, size, f, 2, &buf);
    const char *in = f[0];

    for (const unsigned char *p = (const unsigned char *)in; *p; p++)
        FUZZ_CHECK(utf8_seq_len(p) == ref_seq_len(p));

    char name[FILENAME_MAX_BYTES + 1], again[FILENAME_MAX_BYTES + 1];
    filename_sanitize(in, name);
    FUZZ_CHECK(clean(name));
    filename_sanitize(name, again);
    FUZZ_CHECK(strcmp(name, again) == 0);
    if (clean(in)) FUZZ_CHECK(strcmp(in, name) == 0);
    check_disposition(name, false);
    check_disposition(name, true);

    check_scrub(in, 1 + fuzz_u64(f[1]) % 600);
    check_scrub(in, 3 * strlen(in) + 1);   /* always enough: the whole input, scrubbed */
    free(buf);
    return 0;
}
