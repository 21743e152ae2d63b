/* query.c — query parameters shared by the list routes, parsed one way.
 *
 * Every list takes ?limit= and every list refuses the same junk with the same
 * 400 (signs, hex, exponents, overflow, empty): a parameter that is silently
 * ignored on one route and refused on another hides client bugs. */
#include "api/app.h"
#include "util/parse.h"

bool query_limit(http_req *r, int fallback, int max, int *out)
{
    const char *v = http_req_query(r, "limit");
    uint64_t n = (uint64_t)fallback;
    if (v && (!parse_u64(v, &n) || n < 1 || n > (uint64_t)max)) {
        http_reply_error(r, 400, "invalid_parameter", "limit must be an integer 1..%d", max);
        return false;
    }
    *out = (int)n;
    return true;
}
