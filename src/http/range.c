/* range.c — see range.h. */
#include "http/range.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

/* Parses digits at *p (advancing it); false on no digits or overflow. */
static bool take_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    if (!isdigit((unsigned char)*s)) return false;
    uint64_t v = 0;
    while (isdigit((unsigned char)*s)) {
        unsigned d = (unsigned)(*s++ - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return true;
}

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    return s;
}

range_result range_parse(const char *header, uint64_t size, uint64_t *start,
                         uint64_t *length)
{
    if (!header || strncmp(header, "bytes=", 6) != 0) return RANGE_NONE;
    const char *p = skip_ws(header + 6);
    uint64_t first = 0, last = 0;
    if (*p == '-') {                       /* suffix: the last n bytes */
        p++;
        if (!take_u64(&p, &last) || *skip_ws(p) != '\0') return RANGE_NONE;
        if (last == 0) return RANGE_UNSATISFIABLE;
        if (size == 0) return RANGE_UNSATISFIABLE;
        if (last > size) last = size;
        *start = size - last;
        *length = last;
        return RANGE_PARTIAL;
    }
    if (!take_u64(&p, &first) || *p++ != '-') return RANGE_NONE;
    if (*skip_ws(p) == '\0') {
        last = UINT64_MAX;                 /* "a-": to the end */
    } else {
        if (!take_u64(&p, &last) || *skip_ws(p) != '\0') return RANGE_NONE;
        if (last < first) return RANGE_NONE;  /* invalid: ignore it */
    }
    if (first >= size) return RANGE_UNSATISFIABLE;
    if (last >= size) last = size - 1;
    *start = first;
    *length = last - first + 1;
    return RANGE_PARTIAL;
}
