/* ratelimit.h — per-key rate limits (--rate-limit): a token bucket per API
 * key, in this process's memory.
 *
 * Each key may spend `per_minute` tokens at once (the burst) and earns them
 * back at per_minute / 60 a second.  What costs a token is the caller's
 * choice (api/: creating uploads, signing URLs); reads never do.  Limits are
 * per serve process: several processes behind one balancer each allow the
 * rate (documented).  Memory is bounded: at most RATELIMIT_KEYS buckets; a
 * new key evicts a full bucket (one that has forgotten nothing), and when
 * none is full the new key is limited as if its bucket were the emptiest
 * one's, so flooding with fresh keys buys nothing.
 *
 * Thread-safe (one mutex; a take is a hash lookup). */
#ifndef ASSETD_RATELIMIT_H
#define ASSETD_RATELIMIT_H

#include <stdbool.h>

#define RATELIMIT_KEYS 4096

typedef struct ratelimit ratelimit;

/* NULL when per_minute is 0 (no limit) or out of memory. */
ratelimit *ratelimit_new(unsigned per_minute);
void ratelimit_free(ratelimit *rl);
/* Spends one of key's tokens at time now_s (monotonic seconds): true if it
 * had one; false with *retry_after_s (>= 1) the seconds until it will.  A
 * NULL rl allows everything. */
bool ratelimit_take(ratelimit *rl, const char *key, double now_s, int *retry_after_s);

#endif
