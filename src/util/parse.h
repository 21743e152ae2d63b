/* parse.h — strict parsers for numbers that come from users (flags, env,
 * query strings).  Every parser rejects empty input, signs, trailing junk
 * and overflow instead of guessing. */
#ifndef ASSETD_PARSE_H
#define ASSETD_PARSE_H

#include <stdbool.h>
#include <stdint.h>

/* Decimal digits only. */
bool parse_u64(const char *s, uint64_t *out);
/* A byte size: digits with an optional K, M, G or T suffix (powers of 1024,
 * case-insensitive, optionally followed by "B" or "iB"): "512K", "10M",
 * "2GiB", "4096". */
bool parse_size(const char *s, uint64_t *out);

#endif
