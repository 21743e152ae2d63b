/* token.h — short-lived signed tokens (HMAC-SHA256 with the server secret).
 *
 * Browsers cannot set an Authorization header on a WebSocket or an
 * EventSource, so `POST /v1/events/token` trades an API key for a token the
 * page can put in the URL.  A token names its owner, what it is for and
 * when it expires; it is not stored anywhere — its MAC is the proof.  So it
 * cannot be revoked early: keep the lifetime short (minutes).  Later signed
 * URLs (uploads, downloads) use the same primitive with another purpose.
 *
 *   token = b64url(payload) "." b64url(HMAC-SHA256(secret, payload))
 *   payload = "1|" purpose "|" expires_unix_s "|" owner
 *
 * Checked in constant time (CRYPTO_memcmp) before anything in it is
 * trusted.  The secret is 32 random bytes kept in DATA/secret (0600),
 * created on first start.
 */
#ifndef ASSETD_TOKEN_H
#define ASSETD_TOKEN_H

#include "core/asset.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOKEN_SECRET_LEN 32
#define TOKEN_MAX 512

/* Loads DATA/secret, creating it (fsynced, 0600) if missing. */
bool token_secret_load(const char *data_dir, uint8_t secret[TOKEN_SECRET_LEN]);

/* Writes a token into out (TOKEN_MAX + 1 bytes); false if it does not fit,
 * or purpose (1..31 bytes, no '|') or owner (1..OWNER_MAX bytes) could not
 * be read back by token_verify. */
bool token_sign(const uint8_t secret[TOKEN_SECRET_LEN], const char *purpose, const char *owner,
                int64_t expires_s, char out[TOKEN_MAX + 1]);
/* True if the token is ours, for this purpose and not expired at now_s;
 * fills the owner. */
bool token_verify(const uint8_t secret[TOKEN_SECRET_LEN], const char *purpose, const char *token,
                  int64_t now_s, char owner[OWNER_MAX + 1]);

#endif
