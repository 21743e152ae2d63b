/* apikey.h — API keys: generation and hashing.
 *
 * A token is "ak_" + 43 base64url chars (32 random bytes).  Only its SHA-256
 * is stored: tokens carry 256 bits of entropy, so a fast hash is enough (no
 * password-style stretching needed) and lookups stay a single index probe.
 * The token is shown once, at creation, and can never be recovered.
 *
 * Every key belongs to an owner; keys with the same owner see the same
 * assets.  Key ids ("key_" + 16 chars) are public handles for list/revoke.
 */
#ifndef ASSETD_APIKEY_H
#define ASSETD_APIKEY_H

#include "core/asset.h"

#include <stdbool.h>

#define APIKEY_TOKEN_LEN 46   /* "ak_" + 43 */
#define APIKEY_ID_LEN 20      /* "key_" + 16 */
#define APIKEY_NAME_MAX 128

typedef struct apikey {
    char id[APIKEY_ID_LEN + 1];
    char name[APIKEY_NAME_MAX + 1];
    char owner[OWNER_MAX + 1];
    char created[32];
    bool revoked;
} apikey;

/* Fills a fresh token and key id; false if the CSPRNG failed. */
bool apikey_generate(char token[APIKEY_TOKEN_LEN + 1], char id[APIKEY_ID_LEN + 1]);
/* Hex SHA-256 of the token, the only form that is stored. */
void apikey_hash(const char *token, char out[65]);
/* Cheap shape check before hashing and a database lookup. */
bool apikey_token_well_formed(const char *token);

#endif
