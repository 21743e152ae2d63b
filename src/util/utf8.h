/* utf8.h — checking and repairing UTF-8 that came from clients.
 *
 * Bytes a client sent (a method, a path segment, a header) are echoed in
 * JSON error messages and the access log, and jansson refuses to build a
 * string from invalid UTF-8: one bad byte would turn a 404 into a 500 and
 * drop the log line.  So everything we echo goes through utf8_scrub() first.
 */
#ifndef ASSETD_UTF8_H
#define ASSETD_UTF8_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if the bytes there
 * are not one (overlong forms, surrogates and code points past U+10FFFF
 * are invalid).  s must be NUL-terminated. */
size_t utf8_seq_len(const unsigned char *s);

/* Copies in to out (cap > 0 bytes, NUL included), replacing each invalid
 * byte with U+FFFD and cutting on a character boundary when out is full.
 * The result is always valid, NUL-terminated UTF-8.  Returns out. */
char *utf8_scrub(const char *in, char *out, size_t cap);

#endif
