/* keycache.c — see keycache.h. */
#include "core/keycache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLOTS 1024

typedef struct slot {
    char hash[65];
    char owner[OWNER_MAX + 1];
    uint64_t expires_ms;
} slot;

struct keycache {
    unsigned ttl_ms;
    pthread_mutex_t lock;
    slot slots[SLOTS];
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The hash is uniformly random hex: its first characters index well. */
static slot *slot_for(keycache *kc, const char *hash)
{
    unsigned idx = 0;
    for (int i = 0; i < 4; i++) {
        char c = hash[i];
        idx = idx << 4 | (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    return &kc->slots[idx % SLOTS];
}

keycache *keycache_new(unsigned ttl_ms)
{
    keycache *kc = calloc(1, sizeof *kc);
    if (!kc) return NULL;
    kc->ttl_ms = ttl_ms;
    pthread_mutex_init(&kc->lock, NULL);
    return kc;
}

void keycache_free(keycache *kc)
{
    if (!kc) return;
    pthread_mutex_destroy(&kc->lock);
    free(kc);
}

bool keycache_get(keycache *kc, const char hash[65], char owner[OWNER_MAX + 1])
{
    if (!kc || kc->ttl_ms == 0) return false;
    slot *s = slot_for(kc, hash);
    uint64_t now = now_ms();
    pthread_mutex_lock(&kc->lock);
    bool hit = s->expires_ms > now && memcmp(s->hash, hash, 64) == 0;
    if (hit) memcpy(owner, s->owner, OWNER_MAX + 1);
    pthread_mutex_unlock(&kc->lock);
    return hit;
}

void keycache_put(keycache *kc, const char hash[65], const char *owner)
{
    if (!kc || kc->ttl_ms == 0) return;
    slot *s = slot_for(kc, hash);
    uint64_t expires = now_ms() + kc->ttl_ms;
    pthread_mutex_lock(&kc->lock);
    memcpy(s->hash, hash, 65);
    snprintf(s->owner, sizeof s->owner, "%s", owner);
    s->expires_ms = expires;
    pthread_mutex_unlock(&kc->lock);
}
