/* asset.c — asset kinds, statuses and JSON form; see asset.h. */
#include "core/asset.h"
#include "core/cover.h"

#include <stdio.h>
#include <stdlib.h>
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

/* The profiles besides the default, by name (media/image.h has their
 * presets). */
static const char *const profile_names[] = {"cover", "avatar"};

bool asset_profile_parse(const char *s, char out[ASSET_PROFILE_MAX + 1])
{
    const char *name = "";   /* s and out may be one buffer: out is written last */
    if (s && s[0] && strcmp(s, "default") != 0) {
        name = NULL;
        for (size_t i = 0; i < sizeof profile_names / sizeof *profile_names; i++)
            if (strcmp(s, profile_names[i]) == 0) name = profile_names[i];
        if (!name) return false;
    }
    snprintf(out, ASSET_PROFILE_MAX + 1, "%s", name);
    return true;
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
    json_object_set_new_nocheck(o, "renditions", asset_renditions(a));
    json_t *meta = json_loads(a->meta, 0, NULL);
    json_object_set_new_nocheck(o, "meta", meta ? meta : json_object());
    json_object_set_new_nocheck(o, "title", json_string(a->title));
    json_object_set_new_nocheck(o, "description", json_string(a->description));
    json_t *tags = json_loads(a->tags, 0, NULL);
    json_object_set_new_nocheck(o, "tags", json_is_array(tags) ? tags : json_array());
    if (tags && !json_is_array(tags)) json_decref(tags);
    /* an image's profile is shown even when it is the default; another
     * kind's only when the upload named one (and failed: core/ingest.c) */
    json_object_set_new_nocheck(o, "profile",
                                a->profile[0] ? json_string_nocheck(a->profile)
                                : a->kind == ASSET_IMAGE ? json_string_nocheck("default")
                                                         : json_null());
    json_object_set_new_nocheck(o, "cover", cover_public(a->cover));
    json_object_set_new_nocheck(o, "error", a->error_code[0]
                                                ? json_pack("{s:s, s:s}", "code", a->error_code,
                                                            "message", a->error_message)
                                                : json_null());
    json_object_set_new_nocheck(o, "url", json_string_nocheck(url));
    return o;
}

json_t *asset_renditions(const asset *a)
{
    json_t *list = json_loads(a->renditions, 0, NULL);
    if (!json_is_array(list)) {
        json_decref(list);
        list = json_array();
    }
    if (a->cover[0]) cover_merge(list, a->cover);
    return list;
}

const char *asset_pipeline(asset_kind k)
{
    if (k == ASSET_IMAGE) return "image";
    if (k == ASSET_PDF || k == ASSET_PRESENTATION) return "document";
    if (k == ASSET_VIDEO) return "video";
    return NULL;
}

/* ---------- what the owner says (PATCH) ---------- */

/* value trimmed of blanks into out (cap bytes); false with err when it is
 * too long or holds a control character (newline and tab only when
 * multiline). */
static bool info_text(const char *field, json_t *v, bool multiline, char *out, size_t cap,
                      char *err, size_t errcap)
{
    if (!json_is_string(v)) {
        snprintf(err, errcap, "%s must be a string", field);
        return false;
    }
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    while (len > 0 && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) s++, len--;
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' ||
                       s[len - 1] == '\r'))
        len--;
    if (len >= cap) {
        snprintf(err, errcap, "%s is longer than %zu bytes", field, cap - 1);
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && !(multiline && (ch == '\n' || ch == '\t'))) || ch == 0x7f) {
            snprintf(err, errcap, "%s holds a control character", field);
            return false;
        }
    }
    memcpy(out, s, len);
    out[len] = '\0';
    return true;
}

static bool info_tags(json_t *v, char *out, size_t cap, char *err, size_t errcap)
{
    if (!json_is_array(v)) {
        snprintf(err, errcap, "tags must be an array of strings");
        return false;
    }
    if (json_array_size(v) > ASSET_TAGS_MAX) {
        snprintf(err, errcap, "at most %d tags", ASSET_TAGS_MAX);
        return false;
    }
    json_t *tags = json_array(), *t;
    size_t i;
    json_array_foreach(v, i, t) {
        char tag[ASSET_TAG_MAX + 1], field[32];
        snprintf(field, sizeof field, "tags[%zu]", i);
        if (!info_text(field, t, false, tag, sizeof tag, err, errcap)) {
            json_decref(tags);
            return false;
        }
        if (!tag[0]) {
            snprintf(err, errcap, "%s is empty", field);
            json_decref(tags);
            return false;
        }
        bool seen = false;
        size_t k;
        json_t *o;
        json_array_foreach(tags, k, o) seen = seen || strcmp(json_string_value(o), tag) == 0;
        if (!seen) json_array_append_new(tags, json_string(tag));
    }
    char *text = json_dumps(tags, JSON_COMPACT);
    json_decref(tags);
    /* cannot overflow: ASSET_TAGS_JSON_MAX allows every byte escaped */
    bool ok = text && strlen(text) < cap;
    if (ok) memcpy(out, text, strlen(text) + 1);
    else snprintf(err, errcap, "the tags are too long");
    free(text);
    return ok;
}

bool asset_info_apply(asset *a, json_t *body, char *err, size_t errcap)
{
    asset next;
    memcpy(next.title, a->title, sizeof next.title);
    memcpy(next.description, a->description, sizeof next.description);
    memcpy(next.tags, a->tags, sizeof next.tags);
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        bool ok;
        if (strcmp(key, "title") == 0)
            ok = info_text("title", v, false, next.title, sizeof next.title, err, errcap);
        else if (strcmp(key, "description") == 0)
            ok = info_text("description", v, true, next.description, sizeof next.description,
                           err, errcap);
        else if (strcmp(key, "tags") == 0)
            ok = info_tags(v, next.tags, sizeof next.tags, err, errcap);
        else {
            /* the key is valid UTF-8 (jansson checked); bounded in the message */
            snprintf(err, errcap, "unknown field '%.40s': title, description and tags can be set",
                     key);
            ok = false;
        }
        if (!ok) return false;
    }
    memcpy(a->title, next.title, sizeof next.title);
    memcpy(a->description, next.description, sizeof next.description);
    memcpy(a->tags, next.tags, sizeof next.tags);
    return true;
}
