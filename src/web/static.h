/* static.h — the web page's files (web/), compiled into the binary.
 *
 * assetd is one file to install, so the page ships inside it: at build time
 * scripts/embed-web.sh turns each file of web/ into a byte array in
 * build/gen/web_files.c (see the Makefile), which defines web_files[].  The
 * bytes and their ETag are fixed at build time and live as long as the
 * process: every pointer here is static and nothing is ever freed.
 *
 * This module only knows files and their types; how they are served
 * (caching, Content-Security-Policy) is the API's business (api/web.c).
 */
#ifndef ASSETD_WEB_STATIC_H
#define ASSETD_WEB_STATIC_H

#include <stddef.h>

typedef struct web_file {
    const char *name;              /* base name in web/: "app.js" */
    const unsigned char *data;     /* size bytes, then a NUL */
    size_t size;
    const char *etag;              /* quoted SHA-256 hex of the bytes: a strong validator */
} web_file;

/* Defined by the generated build/gen/web_files.c. */
extern const web_file web_files[];
extern const int web_file_count;

/* The embedded file with this base name, or NULL. */
const web_file *web_file_find(const char *name);

/* The Content-Type for a file name, by extension (charset for text);
 * application/octet-stream for an unknown one. */
const char *web_content_type(const char *name);

#endif
