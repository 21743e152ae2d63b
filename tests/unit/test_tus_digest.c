/* The running SHA-256 of tus uploads (core/tus_digest.h): a state is handed
 * out only at the offset it was saved at, a failed write (nothing saved)
 * leaves it usable, and the table stays bounded. */
#include "test.h"
#include "core/tus_digest.h"

#include <stdio.h>

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ABC_SHA256 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

TEST(tus_digest_chains_across_saves)
{
    tus_digests *t = tus_digests_new();
    EVP_MD_CTX *md = tus_digest_get(t, "u1", 0);   /* a new upload: fresh */
    CHECK(md != NULL);
    EVP_DigestUpdate(md, "ab", 2);
    tus_digest_save(t, "u1", 2, md);
    CHECK(tus_digest_get(t, "u1", 3) == NULL);     /* another offset: the chain broke */

    md = tus_digest_get(t, "u1", 2);               /* a write that fails: saves nothing */
    CHECK(md != NULL);
    EVP_DigestUpdate(md, "garbage", 7);
    EVP_MD_CTX_free(md);
    md = tus_digest_get(t, "u1", 2);               /* the retry starts from the saved state */
    EVP_DigestUpdate(md, "c", 1);
    tus_digest_save(t, "u1", 3, md);
    CHECK(tus_digest_get(t, "u1", 2) == NULL);     /* replaced */
    char hex[65] = "";
    CHECK(tus_digest_hex(tus_digest_get(t, "u1", 3), hex));
    CHECK_STR(hex, ABC_SHA256);
    tus_digest_drop(t, "u1");
    CHECK(tus_digest_get(t, "u1", 3) == NULL);

    CHECK(tus_digest_hex(tus_digest_get(t, "u3", 0), hex));
    CHECK_STR(hex, EMPTY_SHA256);
    CHECK(!tus_digest_hex(NULL, hex));
    CHECK(tus_digest_get(NULL, "u4", 0) == NULL);   /* no table: always read back */
    tus_digests_free(t);
}

TEST(tus_digest_evicts_the_oldest_when_full)
{
    tus_digests *t = tus_digests_new();
    char id[32];
    for (int i = 0; i <= TUS_DIGESTS_MAX; i++) {   /* one more than fits */
        snprintf(id, sizeof id, "up%d", i);
        tus_digest_save(t, id, 7, tus_digest_get(t, id, 0));
    }
    CHECK(tus_digest_get(t, "up0", 7) == NULL);     /* the oldest went */
    EVP_MD_CTX *md = tus_digest_get(t, "up1", 7);
    CHECK(md != NULL);
    EVP_MD_CTX_free(md);
    snprintf(id, sizeof id, "up%d", TUS_DIGESTS_MAX);
    md = tus_digest_get(t, id, 7);
    CHECK(md != NULL);
    EVP_MD_CTX_free(md);
    tus_digests_free(t);                            /* frees the rest (ASan: no leak) */
}
