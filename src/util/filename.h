/* filename.h — what assetd does with client-supplied file names.
 *
 * A file name is metadata only: blobs are stored under their asset id, so a
 * name never reaches a path.  We still clean it, because it is echoed back in
 * JSON and in Content-Disposition headers:
 *   - everything up to the last '/' or '\' is dropped (browsers send
 *     "C:\Users\x\photo.jpg"; attackers send "../../etc/passwd");
 *   - control characters (C0, DEL) and invalid UTF-8 bytes are dropped;
 *   - the result is cut to FILENAME_MAX_BYTES on a UTF-8 boundary;
 *   - "", "." and ".." become "upload".
 */
#ifndef ASSETD_FILENAME_H
#define ASSETD_FILENAME_H

#include <stdbool.h>
#include <stddef.h>

#define FILENAME_MAX_BYTES 255

/* out must hold FILENAME_MAX_BYTES + 1 bytes. */
void filename_sanitize(const char *in, char out[FILENAME_MAX_BYTES + 1]);

/* Builds an RFC 6266 Content-Disposition value for a sanitised name:
 *   inline; filename="ascii_fallback"; filename*=UTF-8''percent%20encoded
 * The fallback replaces non-ASCII, quotes, backslashes and '%' with '_'.
 * Returns false if cap is too small; CONTENT_DISPOSITION_MAX is always
 * enough (the fallback, and up to three bytes per byte encoded). */
#define CONTENT_DISPOSITION_MAX (64 + 4 * FILENAME_MAX_BYTES)
bool content_disposition(const char *name, bool as_attachment, char *out, size_t cap);

#endif
