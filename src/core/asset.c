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

/* The hottest serialisation in the server (every GET and list item), so it
 * skips jansson's per-string UTF-8 validation: every field is ASCII we
 * generated, or a file name that filename_sanitize() made valid UTF-8. */
json_t *asset_to_json(const asset *a)
{
    char url[64];
    snprintf(url, sizeof url, "/v1/assets/%s/content", a->id);
    json_t *o = json_object();
    json_object_set_new_nocheck(o, "id", json_string_nocheck(a->id));
    json_object_set_new_nocheck(o, "kind", json_string_nocheck(kind_names[a->kind]));
    json_object_set_new_nocheck(o, "status", json_string_nocheck(status_names[a->status]));
    json_object_set_new_nocheck(o, "filename", json_string_nocheck(a->filename));
    json_object_set_new_nocheck(o, "content_type", json_string_nocheck(a->content_type));
    json_object_set_new_nocheck(o, "size", json_integer((json_int_t)a->size));
    json_object_set_new_nocheck(o, "sha256", json_string_nocheck(a->sha256));
    json_object_set_new_nocheck(o, "created", json_string_nocheck(a->created));
    json_object_set_new_nocheck(o, "updated", json_string_nocheck(a->updated));
    json_t *renditions = json_loads(a->renditions, 0, NULL);
    json_object_set_new_nocheck(o, "renditions", renditions ? renditions : json_array());
    json_t *meta = json_loads(a->meta, 0, NULL);
    json_object_set_new_nocheck(o, "meta", meta ? meta : json_object());
    json_object_set_new_nocheck(o, "error", a->error_code[0]
                                                ? json_pack("{s:s, s:s}", "code", a->error_code,
                                                            "message", a->error_message)
                                                : json_null());
    json_object_set_new_nocheck(o, "url", json_string_nocheck(url));
    return o;
}

const char *asset_pipeline(asset_kind k)
{
    if (k == ASSET_IMAGE) return "image";
    if (k == ASSET_PDF || k == ASSET_PRESENTATION) return "document";
    if (k == ASSET_VIDEO) return "video";
    return NULL;
}
