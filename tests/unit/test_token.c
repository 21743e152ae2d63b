/* Signed tokens: authentic, scoped to a purpose, expiring. */
#include "test.h"
#include "core/token.h"

TEST(tokens_verify_only_when_authentic_current_and_for_this_purpose)
{
    uint8_t secret[TOKEN_SECRET_LEN] = {1, 2, 3}, other[TOKEN_SECRET_LEN] = {9};
    char t[TOKEN_MAX + 1], owner[OWNER_MAX + 1];
    CHECK(token_sign(secret, "events", "alice|x", 1000, t));
    CHECK(token_verify(secret, "events", t, 999, owner));
    CHECK_STR(owner, "alice|x");
    CHECK(token_verify(secret, "events", t, 1000, owner));
    CHECK(!token_verify(secret, "events", t, 1001, owner));        /* expired */
    CHECK(!token_verify(secret, "upload", t, 999, owner));         /* another purpose */
    CHECK(!token_verify(other, "events", t, 999, owner));          /* another server */
    char tampered[TOKEN_MAX + 1];
    strcpy(tampered, t);
    tampered[3] = tampered[3] == 'A' ? 'B' : 'A';                  /* payload bit flipped */
    CHECK(!token_verify(secret, "events", tampered, 999, owner));
    strcpy(tampered, t);
    tampered[strlen(tampered) - 2] ^= 1;                           /* MAC changed */
    CHECK(!token_verify(secret, "events", tampered, 999, owner));
    const char *junk[] = {"", ".", "abc", "abc.def", NULL};
    for (int i = 0; junk[i]; i++) CHECK(!token_verify(secret, "events", junk[i], 0, owner));
    CHECK(!token_verify(secret, "events", NULL, 0, owner));
}
