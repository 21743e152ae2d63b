/* encode.h — identifiers and the encodings they travel in.
 *
 * Asset ids are 16 random bytes (128 bits, from the OS CSPRNG via OpenSSL)
 * written as 22 characters of unpadded base64url: unguessable and safe in a
 * URL path or a file name.  List cursors are opaque to clients but are just
 * the base64url of a big-endian sequence number, so a tampered cursor fails
 * to decode rather than reaching SQL.
 */
#ifndef ASSETD_ENCODE_H
#define ASSETD_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ID_LEN 22       /* chars in an asset id, without the NUL */
#define CURSOR_MAX 16   /* chars in a cursor, without the NUL */

/* Writes ceil(len*4/3) chars plus a NUL into out. */
void b64url_encode(const uint8_t *in, size_t len, char *out);
/* Decodes unpadded base64url; returns the byte count or -1 if malformed
 * or longer than cap. */
int  b64url_decode(const char *in, uint8_t *out, size_t cap);
void hex_encode(const uint8_t *in, size_t len, char *out);

/* Fills out[ID_LEN+1] with a fresh random id; false if the CSPRNG failed. */
bool id_generate(char out[ID_LEN + 1]);
/* True if s looks like an id we could have generated (cheap rejection of
 * junk before it touches the database). */
bool id_is_valid(const char *s);

void cursor_encode(int64_t seq, char out[CURSOR_MAX + 1]);
bool cursor_decode(const char *s, int64_t *seq);

#endif
