/* keycache.h — a short-lived memory of recently verified API keys.
 *
 * Every request authenticates; without a cache that is a database read
 * transaction per request, as costly as the request's real work.  A positive
 * answer (token hash -> owner) is remembered for `ttl_ms`, so a revoked key
 * keeps working for at most that long (documented in the README).  Unknown
 * tokens are never cached: they always reach the database.
 *
 * Direct-mapped and fixed-size: no allocation after creation, and a
 * collision simply evicts.  One mutex; the critical section is a memcmp.
 */
#ifndef ASSETD_KEYCACHE_H
#define ASSETD_KEYCACHE_H

#include "core/asset.h"

#include <stdbool.h>

typedef struct keycache keycache;

keycache *keycache_new(unsigned ttl_ms);
void keycache_free(keycache *kc);
/* True (and owner filled) if hash was verified less than ttl_ms ago. */
bool keycache_get(keycache *kc, const char hash[65], char owner[OWNER_MAX + 1]);
void keycache_put(keycache *kc, const char hash[65], const char *owner);

#endif
