/* apikey.c — see apikey.h. */
#include "core/apikey.h"

#include <openssl/rand.h>
#include <openssl/sha.h>
#include <string.h>

bool apikey_generate(char token[APIKEY_TOKEN_LEN + 1], char id[APIKEY_ID_LEN + 1])
{
    uint8_t secret[32], handle[12];
    if (RAND_bytes(secret, sizeof secret) != 1 || RAND_bytes(handle, sizeof handle) != 1)
        return false;
    memcpy(token, "ak_", 3);
    b64url_encode(secret, sizeof secret, token + 3);
    memcpy(id, "key_", 4);
    b64url_encode(handle, sizeof handle, id + 4);
    return true;
}

void apikey_hash(const char *token, char out[65])
{
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, strlen(token), digest);
    hex_encode(digest, sizeof digest, out);
}

bool apikey_token_well_formed(const char *token)
{
    if (strlen(token) != APIKEY_TOKEN_LEN || strncmp(token, "ak_", 3) != 0) return false;
    uint8_t raw[32];
    return b64url_decode(token + 3, raw, sizeof raw) == 32;
}
