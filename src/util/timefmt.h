/* timefmt.h — wall-clock timestamps as RFC 3339 UTC with milliseconds
 * ("2026-11-23T18:55:34.123Z"), the one format assetd stores and returns.
 * Lexicographic order of these strings is chronological order. */
#ifndef ASSETD_TIMEFMT_H
#define ASSETD_TIMEFMT_H

#include <stdint.h>

#define TIME_RFC3339_LEN 25  /* without the NUL */

int64_t time_now_ms(void);           /* wall clock, ms since the epoch */
double  time_mono_seconds(void);     /* monotonic clock, for durations */
void    time_format_ms(int64_t ms, char out[32]);
void    time_format_now(char out[32]);

#endif
