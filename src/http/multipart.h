/* multipart.h — streaming multipart/form-data upload with exactly one file.
 *
 * Parsing is libmicrohttpd's post processor; this module adds the rules of
 * our upload API on top: the file travels in the part named `file` (or
 * the name multipart_file_part() sets, for a kept form), there
 * must be exactly one such part, other fields are ignored, and a body that
 * ends before the closing boundary is an error.  File bytes are passed to
 * the sink as they are parsed; nothing is buffered beyond one chunk.
 */
#ifndef ASSETD_MULTIPART_H
#define ASSETD_MULTIPART_H

#include "util/filename.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct MHD_Connection;
typedef struct multipart multipart;

typedef enum {
    MP_OK = 0,
    MP_MALFORMED,       /* bad framing, or truncated */
    MP_NO_FILE,         /* no part named `file` */
    MP_MULTIPLE_FILES,  /* more than one */
    MP_SINK_FAILED,     /* the sink refused bytes (it has set the reason) */
} multipart_status;

/* The sink gets each run of file bytes; false stops parsing. */
typedef bool (*multipart_sink)(void *arg, const char *data, size_t len);

/* NULL when the request has no usable multipart boundary. */
multipart *multipart_new(struct MHD_Connection *conn, multipart_sink sink, void *arg);
multipart_status multipart_feed(multipart *mp, const char *data, size_t len);
/* The file part's name, before the first feed: a kept form's (the
 * original publisher's `input_file`).  name is borrowed for mp's life. */
void multipart_file_part(multipart *mp, const char *name);
/* Optional: every other field's bytes go to fn as they are parsed (off is
 * the offset within the field's value); false stops parsing (MP_SINK_FAILED).
 * Fields that come after the file part are still given. */
typedef bool (*multipart_field_fn)(void *arg, const char *name, const char *data, uint64_t off,
                                   size_t len);
void multipart_on_field(multipart *mp, multipart_field_fn fn);
/* What the client said about the file part: unsanitised, possibly "". */
typedef struct multipart_file {
    char filename[FILENAME_MAX_BYTES + 1];
    char content_type[128];
} multipart_file;

/* Checks the body ended cleanly with exactly one file part and copies what
 * the client said about it into *out. */
multipart_status multipart_finish(multipart *mp, multipart_file *out);
void multipart_free(multipart *mp);

#endif
