/* apikey.c — see apikey.h. */
#include "core/apikey.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
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

/* OpenSSL 3 looks the algorithm up (under a lock) on every one-shot
 * SHA256() call; every authenticated request hashes a token, so we fetch the
 * implementation once and keep it (immutable after the first call). */
static EVP_MD *sha256_md;

static void fetch_sha256(void) { sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); }

void apikey_hash(const char *token, char out[65])
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, fetch_sha256);
    uint8_t digest[SHA256_DIGEST_LENGTH];
    unsigned int len = 0;
    if (!sha256_md || !EVP_Digest(token, strlen(token), digest, &len, sha256_md, NULL))
        SHA256((const unsigned char *)token, strlen(token), digest);
    hex_encode(digest, sizeof digest, out);
}

bool apikey_token_well_formed(const char *token)
{
    if (strlen(token) != APIKEY_TOKEN_LEN || strncmp(token, "ak_", 3) != 0) return false;
    uint8_t raw[32];
    return b64url_decode(token + 3, raw, sizeof raw) == 32;
}
