/* multipart.c — see multipart.h. */
#include "http/multipart.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libmicrohttpd's parse buffer; larger means fewer calls per byte. */
#define PP_BUFFER (64 * 1024)

struct multipart {
    struct MHD_PostProcessor *pp;
    multipart_sink sink;
    multipart_field_fn on_field;
    const char *file_part;     /* "file" unless multipart_file_part() said */
    void *arg;
    int file_parts;
    bool in_file_part;         /* the last callback was for a `file` part */
    size_t part_bytes;         /* bytes seen in the current `file` part */
    multipart_status error;
    multipart_file file;
};

/* libmicrohttpd calls this for each run of bytes of each part, with `off`
 * the offset of the run within its part.  A run at offset 0 after bytes
 * of a `file` part have been seen therefore starts a second `file` part. */
static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *content_type,
                               const char *transfer_encoding, const char *data,
                               uint64_t off, size_t size)
{
    multipart *mp = cls;
    if (!key || strcmp(key, mp->file_part) != 0) {
        mp->in_file_part = false;
        if (key && mp->on_field && !mp->on_field(mp->arg, key, data, off, size)) {
            mp->error = MP_SINK_FAILED;
            return MHD_NO;
        }
        return MHD_YES;
    }
    if (!mp->in_file_part || (off == 0 && mp->part_bytes > 0)) {
        if (++mp->file_parts > 1) {
            mp->error = MP_MULTIPLE_FILES;
            return MHD_NO;
        }
        mp->in_file_part = true;
        mp->part_bytes = 0;
        snprintf(mp->file.filename, sizeof mp->file.filename, "%s", filename ? filename : "");
        snprintf(mp->file.content_type, sizeof mp->file.content_type, "%s",
                 content_type ? content_type : "");
    }
    mp->part_bytes += size;
    if (size > 0 && !mp->sink(mp->arg, data, size)) {
        mp->error = MP_SINK_FAILED;
        return MHD_NO;
    }
    return MHD_YES;
}

/* RFC 2046 wants a boundary of 1 to 70 characters, but libmicrohttpd
 * 0.9.75 takes `boundary=""` for an empty one, and then reads the body
 * differently depending on how it arrives: in one piece it may make a file
 * of it (of 0 bytes, the file part's bytes lost, in the case the multipart
 * fuzz target found), in several pieces it calls it malformed.  Its reading
 * of the header: what follows the first "boundary=", quotes dropped. */
static bool boundary_empty(struct MHD_Connection *conn)
{
    const char *type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_CONTENT_TYPE);
    const char *b = type ? strstr(type, "boundary=") : NULL;
    if (!b) return false;   /* no boundary: libmicrohttpd refuses it itself */
    b += 9;
    return b[0] == '\0' || strcmp(b, "\"\"") == 0;
}

multipart *multipart_new(struct MHD_Connection *conn, multipart_sink sink, void *arg)
{
    if (boundary_empty(conn)) return NULL;
    multipart *mp = calloc(1, sizeof *mp);
    if (!mp) return NULL;
    mp->sink = sink;
    mp->arg = arg;
    mp->file_part = "file";
    mp->pp = MHD_create_post_processor(conn, PP_BUFFER, on_part, mp);
    if (!mp->pp) { free(mp); return NULL; }
    return mp;
}

void multipart_on_field(multipart *mp, multipart_field_fn fn) { mp->on_field = fn; }
void multipart_file_part(multipart *mp, const char *name) { mp->file_part = name; }

multipart_status multipart_feed(multipart *mp, const char *data, size_t len)
{
    if (mp->error) return mp->error;
    if (MHD_post_process(mp->pp, data, len) != MHD_YES && !mp->error) mp->error = MP_MALFORMED;
    return mp->error;
}

multipart_status multipart_finish(multipart *mp, multipart_file *out)
{
    if (mp->error) return mp->error;
    /* MHD_destroy_post_processor() reports whether the body was complete. */
    enum MHD_Result complete = MHD_destroy_post_processor(mp->pp);
    mp->pp = NULL;
    if (mp->error) return mp->error;
    if (complete != MHD_YES) return mp->error = MP_MALFORMED;
    if (mp->file_parts == 0) return mp->error = MP_NO_FILE;
    *out = mp->file;
    return MP_OK;
}

void multipart_free(multipart *mp)
{
    if (!mp) return;
    if (mp->pp) MHD_destroy_post_processor(mp->pp);
    free(mp);
}
