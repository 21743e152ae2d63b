/* utf8.c — see utf8.h. */
#include "util/utf8.h"

#include <stdint.h>
#include <string.h>

size_t utf8_seq_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; }
    else return 0;
    for (size_t i = 1; i < n; i++) {   /* stops at the NUL: it is no continuation byte */
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

char *utf8_scrub(const char *in, char *out, size_t cap)
{
    static const char replacement[] = "\xEF\xBF\xBD";   /* U+FFFD */
    size_t o = 0;
    for (const unsigned char *s = (const unsigned char *)in; *s;) {
        size_t n = utf8_seq_len(s);
        const void *from = n ? (const void *)s : replacement;
        size_t len = n ? n : 3;
        if (o + len >= cap) break;
        memcpy(out + o, from, len);
        o += len;
        s += n ? n : 1;
    }
    out[o] = '\0';
    return out;
}
