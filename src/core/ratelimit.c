/* ratelimit.c — see ratelimit.h.
 *
 * The buckets are an open-addressing table of RATELIMIT_KEYS slots keyed by
 * a hash of the key (linear probing, no deletion: a slot is reused in place
 * by eviction, so probe chains never break).  A bucket stores its tokens as
 * of `at`; refilling is computed on access, so idle buckets cost nothing.
 *
 * Invariant: 0 <= tokens <= capacity for every bucket as of its `at`. */
#include "core/ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 72

typedef struct bucket {
    char key[KEY_MAX];      /* "" = never used */
    double tokens, at;
} bucket;

struct ratelimit {
    pthread_mutex_t lock;
    double capacity, per_second;
    bucket slots[RATELIMIT_KEYS];
};

ratelimit *ratelimit_new(unsigned per_minute)
{
    if (per_minute == 0) return NULL;
    ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl) return NULL;
    pthread_mutex_init(&rl->lock, NULL);
    rl->capacity = per_minute;
    rl->per_second = per_minute / 60.0;
    return rl;
}

void ratelimit_free(ratelimit *rl)
{
    if (!rl) return;
    pthread_mutex_destroy(&rl->lock);
    free(rl);
}

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static double level(const ratelimit *rl, const bucket *b, double now)
{
    double t = b->tokens + (now - b->at) * rl->per_second;
    return t > rl->capacity ? rl->capacity : t;
}

/* key's bucket, found or made (rl->lock held). */
static bucket *find(ratelimit *rl, const char *key, double now)
{
    size_t start = (size_t)(hash(key) % RATELIMIT_KEYS);
    bucket *full = NULL, *emptiest = NULL;
    for (size_t i = 0; i < RATELIMIT_KEYS; i++) {
        bucket *b = &rl->slots[(start + i) % RATELIMIT_KEYS];
        if (!b->key[0]) {   /* the end of key's chain: it is new */
            snprintf(b->key, sizeof b->key, "%s", key);
            b->tokens = rl->capacity;
            b->at = now;
            return b;
        }
        if (strcmp(b->key, key) == 0) return b;
        double l = level(rl, b, now);
        if (!full && l >= rl->capacity) full = b;
        if (!emptiest || l < level(rl, emptiest, now)) emptiest = b;
    }
    /* The table is full of other keys. */
    if (full) {
        snprintf(full->key, sizeof full->key, "%s", key);
        full->tokens = rl->capacity;
        full->at = now;
        return full;
    }
    return emptiest;   /* shared with its owner: no fresh allowance */
}

bool ratelimit_take(ratelimit *rl, const char *key, double now_s, int *retry_after_s)
{
    if (!rl) return true;
    pthread_mutex_lock(&rl->lock);
    bucket *b = find(rl, key, now_s);
    double t = level(rl, b, now_s);
    bool ok = t >= 1.0;
    b->tokens = ok ? t - 1.0 : t;
    b->at = now_s;
    pthread_mutex_unlock(&rl->lock);
    if (!ok && retry_after_s) {
        double wait = ceil((1.0 - t) / rl->per_second);
        *retry_after_s = wait < 1 ? 1 : wait > 86400 ? 86400 : (int)wait;
    }
    return ok;
}
