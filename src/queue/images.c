/* images.c — the image pipeline: one source image, the configured
 * renditions (media/image.h), the source's size as meta. */
#include "queue/pipeline.h"
#include "media/image.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>


typedef struct render_ctx {
    worker *w;
    const job *j;
    json_t *renditions;
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
    if ((int)done < rc->w->cfg->npresets)   /* completion reports the end */
        pipeline_progress(rc->w, rc->j, (double)done / rc->w->cfg->npresets);
    return true;
}

static const char *image_error_code(image_status st)
{
    switch (st) {
    case IMAGE_UNSUPPORTED: return "unsupported_format";
    case IMAGE_TOO_LARGE: return "image_too_large";
    case IMAGE_CORRUPT: return "corrupt_input";
    default: return "storage_failed";
    }
}

void pipeline_image(worker *w, const job *j)
{
    int fd;
    uint64_t size;
    if (!store_fetch(w->store, j->asset_id, &fd, &size)) {
        pipeline_fail(w, j, "source_missing", "the asset's bytes are gone", false);
        return;
    }
    render_ctx rc = {w, j, json_array()};
    w->last_progress_ms = 0;
    char err[512] = "";
    int width = 0, height = 0;
    image_status st = image_render(fd, w->cfg->presets, w->cfg->npresets, w->cfg->max_pixels, store_rendition,
                                   &rc, &width, &height, err, sizeof err);
    close(fd);
    if (st != IMAGE_OK) {
        json_decref(rc.renditions);
        pipeline_fail(w, j, image_error_code(st), err, st == IMAGE_OUTPUT_FAILED);
        return;
    }
    char *renditions = json_dumps(rc.renditions, JSON_COMPACT);
    json_decref(rc.renditions);
    char meta[96];
    snprintf(meta, sizeof meta, "{\"width\":%d,\"height\":%d}", width, height);
    if (renditions) pipeline_succeed(w, j, renditions, meta, NULL, NULL);
    free(renditions);
}

