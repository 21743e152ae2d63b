/* images.c — the image pipeline: one source image, the renditions of its
 * profile (media/image.h: the configured ones by default), the source's
 * size as meta.  The profile is read from the asset's row, not carried by
 * the worker: a retry on another worker, or after a restart with other
 * --renditions, renders the set the upload asked for. */
#include "queue/pipeline.h"
#include "media/image.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>


typedef struct render_ctx {
    worker *w;
    const job *j;
    json_t *renditions;
    int npresets;
} render_ctx;

static bool store_rendition(void *arg, const image_preset *p, const void *data, size_t len,
                            int width, int height, const char *content_type)
{
    render_ctx *rc = arg;
    char url[ID_LEN + 64];
    if (!pipeline_store(rc->w, rc->j->asset_id, p->name, data, len)) return false;
    snprintf(url, sizeof url, "/v1/assets/%s/renditions/%s", rc->j->asset_id, p->name);
    json_array_append_new(rc->renditions,
                          json_pack("{s:s, s:s, s:i, s:i, s:I, s:s}", "name", p->name,
                                    "content_type", content_type, "width", width, "height",
                                    height, "size", (json_int_t)len, "url", url));
    size_t done = json_array_size(rc->renditions);
    if ((int)done < rc->npresets)   /* completion reports the end */
        pipeline_progress(rc->w, rc->j, (double)done / rc->npresets);
    return true;
}

const char *pipeline_image_error(int st)
{
    switch ((image_status)st) {
    case IMAGE_UNSUPPORTED: return "unsupported_format";
    case IMAGE_TOO_LARGE: return "image_too_large";
    case IMAGE_CORRUPT: return "corrupt_input";
    default: return "storage_failed";
    }
}

/* The presets of the asset's profile; NULL with the job failed. */
static const image_preset *profile_presets(worker *w, const job *j, int *n)
{
    asset *a = malloc(sizeof *a);   /* ~10 KB */
    db_conn *c = a ? db_acquire(w->db) : NULL;
    db_status st = c ? db_asset_get_any(c, j->asset_id, a) : DB_ERROR;
    db_release(w->db, c);
    const image_preset *p = NULL;
    if (st == DB_OK && !a->profile[0]) {
        p = w->cfg->presets;
        *n = w->cfg->npresets;
    } else if (st == DB_OK && !(p = image_profile_presets(a->profile, n))) {
        /* a name a newer server wrote: no retry here makes it known */
        pipeline_fail(w, j, "unknown_profile", a->profile, false);
    } else if (st == DB_NOT_FOUND) {
        pipeline_succeed(w, j, "[]", "{}", NULL, NULL);   /* deleted meanwhile */
    } else if (st != DB_OK) {
        pipeline_fail(w, j, "database_unavailable", "cannot read the asset", true);
    }
    free(a);
    return p;
}

void pipeline_image(worker *w, const job *j)
{
    render_ctx rc = {w, j, NULL, 0};
    const image_preset *presets = profile_presets(w, j, &rc.npresets);
    if (!presets) return;
    int fd;
    uint64_t size;
    if (!store_fetch(w->store, j->asset_id, &fd, &size)) {
        pipeline_fetch_failed(w, j, "the asset's bytes are gone");
        return;
    }
    rc.renditions = json_array();
    w->last_progress_ms = 0;
    char err[512] = "";
    int width = 0, height = 0;
    image_status st = image_render(fd, presets, rc.npresets, w->cfg->max_pixels, store_rendition,
                                   &rc, &width, &height, err, sizeof err);
    close(fd);
    if (st != IMAGE_OK) {
        json_decref(rc.renditions);
        pipeline_fail(w, j, pipeline_image_error(st), err, st == IMAGE_OUTPUT_FAILED);
        return;
    }
    char *renditions = json_dumps(rc.renditions, JSON_COMPACT);
    json_decref(rc.renditions);
    char meta[96];
    snprintf(meta, sizeof meta, "{\"width\":%d,\"height\":%d}", width, height);
    if (renditions) pipeline_succeed(w, j, renditions, meta, NULL, NULL);
    free(renditions);
}

