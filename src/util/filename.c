/* filename.c — see filename.h. */
#include "util/filename.h"
#include "util/utf8.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

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
