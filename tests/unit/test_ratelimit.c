#include "test.h"
#include "core/ratelimit.h"

#include <stdio.h>

TEST(ratelimit_off_allows_everything)
{
    CHECK(ratelimit_new(0) == NULL);
    for (int i = 0; i < 1000; i++) CHECK(ratelimit_take(NULL, "k", 0, NULL));
}

TEST(ratelimit_burst_then_refill_per_key)
{
    ratelimit *rl = ratelimit_new(6);   /* 6 at once, one back every 10 s */
    int retry = 0;
    for (int i = 0; i < 6; i++) CHECK(ratelimit_take(rl, "a", 100.0, &retry));
    CHECK(!ratelimit_take(rl, "a", 100.0, &retry));
    CHECK(retry == 10);
    CHECK(ratelimit_take(rl, "b", 100.0, &retry));       /* another key: its own bucket */
    CHECK(!ratelimit_take(rl, "a", 104.0, &retry));
    CHECK(retry == 6);                                    /* 0.4 of a token earned */
    CHECK(ratelimit_take(rl, "a", 110.0, &retry));        /* refused takes cost nothing */
    CHECK(!ratelimit_take(rl, "a", 110.0, &retry));
    /* Idle for an hour: full again, never more than the burst. */
    for (int i = 0; i < 6; i++) CHECK(ratelimit_take(rl, "a", 4000.0, &retry));
    CHECK(!ratelimit_take(rl, "a", 4000.0, &retry));
    ratelimit_free(rl);
}

TEST(ratelimit_full_table_gives_new_keys_no_fresh_allowance)
{
    ratelimit *rl = ratelimit_new(2);
    char key[32];
    /* Every slot taken by a key that spent its tokens. */
    for (int i = 0; i < RATELIMIT_KEYS; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        CHECK(ratelimit_take(rl, key, 0, NULL));
        CHECK(ratelimit_take(rl, key, 0, NULL));
    }
    int retry = 0;
    CHECK(!ratelimit_take(rl, "newcomer", 0, &retry));   /* shares an empty bucket */
    CHECK(retry >= 1);
    /* Once a bucket has refilled, a newcomer may take its slot. */
    CHECK(ratelimit_take(rl, "newcomer", 60.0, &retry));
    CHECK(ratelimit_take(rl, "key-7", 60.0, &retry));    /* the others still work */
    ratelimit_free(rl);
}
