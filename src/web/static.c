/* static.c — lookups in the embedded web files (see static.h).
 *
 * The table holds a handful of files, so a linear scan by name is all the
 * index it needs.  Types come from a fixed extension list rather than from
 * libmagic: these are our own files, and sniffing CSS or JavaScript from
 * bytes is unreliable anyway (both are plain text).  Every type is sent with
 * nosniff by the API, so the list must be exact: a script served as
 * text/plain would be refused by the browser.
 */
#include "web/static.h"

#include <string.h>
#include <strings.h>

const web_file *web_file_find(const char *name)
{
    for (int i = 0; i < web_file_count; i++)
        if (strcmp(web_files[i].name, name) == 0) return &web_files[i];
    return NULL;
}

static const struct {
    const char *ext;
    const char *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
};

const char *web_content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof *types; i++)
        if (strcasecmp(dot, types[i].ext) == 0) return types[i].type;
    return "application/octet-stream";
}
