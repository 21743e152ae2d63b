/* parse.c — see parse.h. */
#include "util/parse.h"

#include <ctype.h>
#include <strings.h>

bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s) return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool parse_size(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s)) return false;
    uint64_t v = 0;
    while (isdigit((unsigned char)*s)) {
        unsigned d = (unsigned)(*s++ - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    unsigned shift = 0;
    switch (toupper((unsigned char)*s)) {
    case '\0': *out = v; return true;
    case 'K': shift = 10; break;
    case 'M': shift = 20; break;
    case 'G': shift = 30; break;
    case 'T': shift = 40; break;
    case 'B': if (s[1] == '\0') { *out = v; return true; } return false;
    default: return false;
    }
    s++;
    if (*s && strcasecmp(s, "B") != 0 && strcasecmp(s, "iB") != 0) return false;
    if (v > (UINT64_MAX >> shift)) return false;
    *out = v << shift;
    return true;
}
