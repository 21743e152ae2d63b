#include "test.h"
#include "core/keycache.h"

#include <time.h>

static const char H1[] = "0000aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char H2[] = "0000bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"; /* same slot */

TEST(keycache_hits_then_expires)
{
    keycache *kc = keycache_new(50);
    char owner[OWNER_MAX + 1];
    CHECK(!keycache_get(kc, H1, owner));
    keycache_put(kc, H1, "alice");
    CHECK(keycache_get(kc, H1, owner));
    CHECK_STR(owner, "alice");
    struct timespec ts = {0, 80 * 1000 * 1000};
    nanosleep(&ts, NULL);
    CHECK(!keycache_get(kc, H1, owner));   /* a revoked key stops working */
    keycache_free(kc);
}

TEST(keycache_collision_evicts_never_confuses)
{
    keycache *kc = keycache_new(10000);
    char owner[OWNER_MAX + 1];
    keycache_put(kc, H1, "alice");
    keycache_put(kc, H2, "bob");
    CHECK(!keycache_get(kc, H1, owner));   /* evicted, not answered as bob */
    CHECK(keycache_get(kc, H2, owner));
    CHECK_STR(owner, "bob");
    keycache_free(kc);
}
