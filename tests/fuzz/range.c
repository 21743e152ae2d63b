/* range — Range and conditional request headers (http/range.c, http/etag.c).
 *
 * Input: "SIZE\0RANGE\0IF-NONE-MATCH\0ETAG-TEXT".
 * Properties:
 *   - a partial range lies inside the file: 1 <= length, start + length <= size;
 *   - "unsatisfiable" only for a "bytes=" header;
 *   - trailing spaces and tabs never change the answer;
 *   - the numbers of a fuzzed range, written out well-formed ("bytes=a-b",
 *     "bytes=a-", "bytes=-n"), give exactly the RFC 9110 answer;
 *   - If-None-Match: our ETag matches itself, its weak form, and a list that
 *     ends with it; a list that contains neither the ETag's text nor "*"
 *     never matches (a wrong 304 would serve stale bytes).
 */
#include "fuzz.h"
#include "http/etag.h"
#include "http/range.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void check_range(const char *h, uint64_t size)
{
    uint64_t start = 7, length = 7;
    range_result rr = range_parse(h, size, &start, &length);
    if (rr == RANGE_PARTIAL) {
        FUZZ_CHECK(length >= 1 && start < size && length <= size - start);
    }
    if (rr == RANGE_UNSATISFIABLE) FUZZ_CHECK(strncmp(h, "bytes=", 6) == 0);

    /* Trailing OWS is ignored. */
    size_t n = strlen(h);
    char *padded = malloc(n + 3);
    memcpy(padded, h, n);
    memcpy(padded + n, " \t", 3);
    uint64_t s2 = 0, l2 = 0;
    range_result r2 = range_parse(padded, size, &s2, &l2);
    FUZZ_CHECK(r2 == rr);
    if (rr == RANGE_PARTIAL) FUZZ_CHECK(s2 == start && l2 == length);
    free(padded);
}

/* The RFC 9110 answer for numbers written out well-formed. */
static void check_well_formed(uint64_t a, uint64_t b, uint64_t size)
{
    char h[80];
    uint64_t start, length;
    snprintf(h, sizeof h, "bytes=%" PRIu64 "-%" PRIu64, a, b);
    range_result rr = range_parse(h, size, &start, &length);
    if (b < a) FUZZ_CHECK(rr == RANGE_NONE);
    else if (a >= size) FUZZ_CHECK(rr == RANGE_UNSATISFIABLE);
    else FUZZ_CHECK(rr == RANGE_PARTIAL && start == a && length == (b < size ? b : size - 1) - a + 1);

    snprintf(h, sizeof h, "bytes=%" PRIu64 "-", a);
    rr = range_parse(h, size, &start, &length);
    if (a >= size) FUZZ_CHECK(rr == RANGE_UNSATISFIABLE);
    else FUZZ_CHECK(rr == RANGE_PARTIAL && start == a && length == size - a);

    snprintf(h, sizeof h, "bytes=-%" PRIu64, b);
    rr = range_parse(h, size, &start, &length);
    if (b == 0 || size == 0) FUZZ_CHECK(rr == RANGE_UNSATISFIABLE);
    else FUZZ_CHECK(rr == RANGE_PARTIAL && length == (b < size ? b : size) &&
                    start == size - length);
}

static void check_etag(const char *inm, const char *text)
{
    /* Ours are quoted strong tags of safe characters. */
    char etag[80] = "\"";
    size_t n = 1;
    for (const char *p = text; *p && n < 64; p++)
        if ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || *p == '-') etag[n++] = *p;
    etag[n++] = '"';
    etag[n] = '\0';

    bool m = http_etag_matches(inm, etag);
    if (!strchr(inm, '*') && !strstr(inm, etag)) FUZZ_CHECK(!m);

    FUZZ_CHECK(http_etag_matches(etag, etag));
    char buf[4200];
    snprintf(buf, sizeof buf, "W/%s", etag);
    FUZZ_CHECK(http_etag_matches(buf, etag));
    snprintf(buf, sizeof buf, "%.4000s, %s", inm, etag);
    FUZZ_CHECK(http_etag_matches(buf, etag));
    snprintf(buf, sizeof buf, "%.4000s,W/%s ", inm, etag);
    FUZZ_CHECK(http_etag_matches(buf, etag));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *f[4], *buf;
    fuzz_split(data, size, f, 4, &buf);
    uint64_t fsize = fuzz_u64(f[0]);
    check_range(f[1], fsize);
    check_range(f[1], fsize % 1000);

    /* The digits of the header, as numbers, written out well-formed. */
    const char *p = f[1];
    uint64_t nums[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        p += strcspn(p, "0123456789");
        nums[i] = strtoull(p, (char **)&p, 10);   /* saturates at UINT64_MAX */
    }
    check_well_formed(nums[0], nums[1], fsize);
    check_well_formed(nums[0] % 2000, nums[1] % 2000, fsize % 1000);

    check_etag(f[2], f[3]);
    free(buf);
    return 0;
}
