/* filename.c — see filename.h. */
#include "util/filename.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; }
    else return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

void filename_sanitize(const char *in, char out[FILENAME_MAX_BYTES + 1])
{
    const char *base = in ? in : "";
    for (const char *p = base; *p; p++)
        if (*p == '/' || *p == '\\') base = p + 1;

    size_t o = 0;
    const unsigned char *s = (const unsigned char *)base;
    while (*s) {
        size_t n = utf8_seq_len(s);
        if (n == 0) { s++; continue; }                   /* invalid byte */
        if (n == 1 && (*s < 0x20 || *s == 0x7F)) { s++; continue; }
        if (o + n > FILENAME_MAX_BYTES) break;
        memcpy(out + o, s, n);
        o += n;
        s += n;
    }
    out[o] = '\0';
    if (o == 0 || strcmp(out, ".") == 0 || strcmp(out, "..") == 0)
        strcpy(out, "upload");
}

static bool is_attr_char(unsigned char c)
{
    /* RFC 5987 attr-char */
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           strchr("!#$&+-.^_`|~", c) != NULL;
}

bool content_disposition(const char *name, bool as_attachment, char *out, size_t cap)
{
    size_t len = strlen(name);
    /* Worst case: prefix + len fallback + 3*len encoded + quotes/params. */
    if (cap < 64 + 4 * len) return false;
    char *o = out;
    o += sprintf(o, "%s; filename=\"", as_attachment ? "attachment" : "inline");
    bool ascii = true;
    for (const unsigned char *s = (const unsigned char *)name; *s; s++) {
        bool plain = *s >= 0x20 && *s < 0x7F && *s != '"' && *s != '\\' && *s != '%';
        if (*s >= 0x80) ascii = false;
        *o++ = plain ? (char)*s : '_';
    }
    *o++ = '"';
    if (!ascii) {
        o += sprintf(o, "; filename*=UTF-8''");
        for (const unsigned char *s = (const unsigned char *)name; *s; s++) {
            if (is_attr_char(*s)) *o++ = (char)*s;
            else o += sprintf(o, "%%%02X", *s);
        }
    }
    *o = '\0';
    return true;
}
