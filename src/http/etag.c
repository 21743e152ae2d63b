/* etag.c — see etag.h.  A tolerant scan rather than a strict parser: a
 * malformed list only ever fails to match, which costs a full 200, never a
 * wrong 304. */
#include "http/etag.h"

#include <string.h>

bool http_etag_matches(const char *header, const char *etag)
{
    const char *p = header;
    size_t elen = strlen(etag);
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == '*') return true;
        if (strncmp(p, "W/", 2) == 0) p += 2;
        if (strncmp(p, etag, elen) == 0 && (p[elen] == '\0' || p[elen] == ',' || p[elen] == ' '))
            return true;
        while (*p && *p != ',') p++;
    }
    return false;
}
