/* token — signed tokens (core/token.c: events tokens and the like) and API
 * key shape checks (core/apikey.c).
 *
 * Input: "PURPOSE\0OWNER\0EXPIRES\0NOW\0FLIP-AT\0FLIP-TO\0RAW-TOKEN".
 * Properties:
 *   - only a purpose and owner token_verify can read back are signed; a
 *     token we signed verifies, for its purpose, until it expires, and
 *     gives back its owner;
 *   - it fails for another purpose, after its expiry, and with any one byte
 *     changed (the signature covers exactly the bytes that were signed);
 *   - an arbitrary string never verifies (no forgery without the secret);
 *   - apikey_token_well_formed is exactly "ak_" + 43 canonical base64url
 *     characters (32 bytes).
 */
#include "fuzz.h"
#include "core/apikey.h"
#include "core/token.h"
#include "util/encode.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t secret[TOKEN_SECRET_LEN] = "fuzzing secret, 32 bytes long!!";

static bool ref_key_shape(const char *t)
{
    if (strlen(t) != APIKEY_TOKEN_LEN || strncmp(t, "ak_", 3) != 0) return false;
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if (strspn(t + 3, alphabet) != 43) return false;
    /* 43 characters carry 258 bits: the last one's low 2 bits must be 0. */
    return (strchr(alphabet, t[45]) - alphabet) % 4 == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *f[7], *buf;
    fuzz_split(data, size, f, 7, &buf);
    const char *purpose = f[0], *owner = f[1];
    int64_t expires = (int64_t)(fuzz_u64(f[2]) % 4000000000u);
    int64_t now = (int64_t)(fuzz_u64(f[3]) % 4000000000u);
    char tok[TOKEN_MAX + 1], got[OWNER_MAX + 1];

    /* What verify can give back: a purpose of 1..31 bytes without '|', an
     * owner of 1..OWNER_MAX bytes. */
    bool sane = *purpose && strlen(purpose) < 32 && !strchr(purpose, '|') && *owner &&
                strlen(owner) <= OWNER_MAX;
    bool made = token_sign(secret, purpose, owner, expires, tok);
    FUZZ_CHECK(!made || sane);   /* signs only what verifies */
    if (made) {
        bool ok = token_verify(secret, purpose, tok, now, got);
        FUZZ_CHECK(ok == (now <= expires));
        if (ok) FUZZ_CHECK(strcmp(got, owner) == 0);
        FUZZ_CHECK(!token_verify(secret, "another purpose", tok, now, got) ||
                   strcmp(purpose, "another purpose") == 0);
        FUZZ_CHECK(!token_verify(secret, purpose, tok, expires + 1, got));
        size_t len = strlen(tok), at = fuzz_u64(f[4]) % len;
        char to = f[5][0] ? f[5][0] : 'A';
        if (tok[at] != to) {
            tok[at] = to;
            FUZZ_CHECK(!token_verify(secret, purpose, tok, now, got));
        }
    }
    FUZZ_CHECK(!token_verify(secret, purpose, f[6], now, got));

    FUZZ_CHECK(apikey_token_well_formed(f[6]) == ref_key_shape(f[6]));
    free(buf);
    return 0;
}
