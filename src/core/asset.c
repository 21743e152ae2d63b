/* asset.c — asset kinds, statuses and JSON form; see asset.h. */
#include "core/asset.h"

#include <stdio.h>
#include <string.h>

static const char *kind_names[] = {"image", "pdf", "presentation", "video", "other"};
static const char *status_names[] = {"uploaded", "processing", "ready", "failed"};

const char *asset_kind_name(asset_kind k) { return kind_names[k]; }
const char *asset_status_name(asset_status s) { return status_names[s]; }

static bool lookup(const char *const *names, int n, const char *s, int *out)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0) { *out = i; return true; }
    return false;
}

bool asset_kind_parse(const char *s, asset_kind *out)
{
    int i;
    if (!lookup(kind_names, 5, s, &i)) return false;
    *out = (asset_kind)i;
    return true;
}

bool asset_status_parse(const char *s, asset_status *out)
{
    int i;
    if (!lookup(status_names, 4, s, &i)) return false;
    *out = (asset_status)i;
    return true;
}

/* Office and Keynote presentation formats, as libmagic names them. */
static const char *presentation_mimes[] = {
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.openxmlformats-officedocument.presentationml.slideshow",
    "application/vnd.ms-powerpoint",
    "application/vnd.oasis.opendocument.presentation",
    "application/vnd.apple.keynote",
    "application/x-iwork-keynote-sffkey",
};

asset_kind asset_kind_from_mime(const char *mime)
{
    if (strncmp(mime, "image/", 6) == 0) return ASSET_IMAGE;
    if (strncmp(mime, "video/", 6) == 0) return ASSET_VIDEO;
    if (strcmp(mime, "application/pdf") == 0) return ASSET_PDF;
    for (size_t i = 0; i < sizeof presentation_mimes / sizeof *presentation_mimes; i++)
        if (strcmp(mime, presentation_mimes[i]) == 0) return ASSET_PRESENTATION;
    return ASSET_OTHER;
}

bool asset_inline_safe(const asset *a)
{
    if (strcmp(a->content_type, "image/svg+xml") == 0) return false;
    return a->kind == ASSET_IMAGE || a->kind == ASSET_VIDEO || a->kind == ASSET_PDF ||
           strncmp(a->content_type, "audio/", 6) == 0;
}

json_t *asset_to_json(const asset *a)
{
    char url[64];
    snprintf(url, sizeof url, "/v1/assets/%s/content", a->id);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:[], s:s}",
                     "id", a->id, "kind", kind_names[a->kind], "status",
                     status_names[a->status], "filename", a->filename, "content_type",
                     a->content_type, "size", (json_int_t)a->size, "sha256", a->sha256,
                     "created", a->created, "updated", a->updated, "renditions", "url", url);
}
