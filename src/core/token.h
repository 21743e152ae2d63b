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
 * trusted.  The secret is 32 random bytes kept in the database (so every
 * serve process on one database shares it; db_secret_adopt), made by the
 * first process to start; a DATA/secret file from before is adopted, so
 * links signed by an older assetd still verify.
 */
#ifndef ASSETD_TOKEN_H
#define ASSETD_TOKEN_H

#include "core/asset.h"
#include "db/db.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOKEN_SECRET_LEN 32
#define TOKEN_MAX 512

/* Fills secret with the database's (db_secret_adopt "url_token"), storing
 * one first if there is none: DATA/secret's bytes if an older assetd left
 * that file, else fresh random ones.  False (logged) on a database error,
 * a failed CSPRNG or a stored value that is not a secret. */
bool token_secret_adopt(db_conn *c, const char *data_dir, uint8_t secret[TOKEN_SECRET_LEN]);

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
