/* range.h — the single-range subset of RFC 9110 Range requests.
 *
 * We serve one range per request ("bytes=a-b", "bytes=a-", "bytes=-n").
 * Anything we do not understand (other units, several ranges, junk) is
 * ignored and the full representation is sent, which RFC 9110 §14.2 allows;
 * only a well-formed range that lies wholly past the end is "unsatisfiable".
 */
#ifndef ASSETD_RANGE_H
#define ASSETD_RANGE_H

#include <stdint.h>

typedef enum {
    RANGE_NONE,           /* no usable Range: send 200 with everything */
    RANGE_PARTIAL,        /* send 206 with [start, start+length) */
    RANGE_UNSATISFIABLE,  /* send 416 with Content-Range: bytes * / size */
} range_result;

range_result range_parse(const char *header, uint64_t size, uint64_t *start,
                         uint64_t *length);

#endif
