/* image.c — see image.h. */
#include "media/image.h"
#include "util/log.h"

#include <stdio.h>
#include <string.h>
#include <vips/vips.h>

/* Loaders we accept, by libvips nickname prefix (…load_source). */
static const char *const allowed_loaders[] = {"jpegload", "pngload", "webpload", "gifload",
                                              "tiffload", "heifload"};

/* libvips reports oddities it recovers from (an ignored colour profile) as
 * GLib warnings on stderr; they belong in our log, at debug level. */
static void on_vips_log(const gchar *domain, GLogLevelFlags level, const gchar *message,
                        gpointer data)
{
    log_debug("libvips", "detail", message, NULL);
}

bool image_init(const char *argv0)
{
    if (VIPS_INIT(argv0)) return false;
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO,
                      on_vips_log, NULL);
    vips_block_untrusted_set(TRUE);
    vips_concurrency_set(1);
    vips_cache_set_max(0);
    return true;
}

/* vips_foreign_find_load_source() names the class ("VipsForeignLoadJpegSource");
 * we compare its operation nickname ("jpegload_source"). */
static bool loader_allowed(const char *loader)
{
    const char *nick = vips_nickname_find(g_type_from_name(loader));
    if (!nick) return false;
    loader = nick;
    for (size_t i = 0; i < sizeof allowed_loaders / sizeof *allowed_loaders; i++)
        if (strncmp(loader, allowed_loaders[i], strlen(allowed_loaders[i])) == 0) return true;
    return false;
}

static void take_error(char *err, size_t cap, const char *fallback)
{
    const char *msg = vips_error_buffer();
    snprintf(err, cap, "%s", msg && *msg ? msg : fallback);
    size_t n = strlen(err);
    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' ')) err[--n] = '\0';
    for (char *p = err; *p; p++)
        if (*p == '\n') *p = ' ';
    vips_error_clear();
}

/* JPEG has no alpha: composite over white rather than letting black show. */
static VipsImage *flatten_for(VipsImage *in, const char *format)
{
    VipsImage *out = NULL;
    if (strcmp(format, "jpeg") == 0 && vips_image_hasalpha(in)) {
        VipsArrayDouble *white = vips_array_double_newv(1, 255.0);
        int rc = vips_flatten(in, &out, "background", white, NULL);
        vips_area_unref(VIPS_AREA(white));
        return rc == 0 ? out : NULL;
    }
    g_object_ref(in);
    return in;
}

static int save(VipsImage *img, const image_preset *p, void **buf, size_t *len)
{
    if (strcmp(p->format, "webp") == 0)
        return vips_webpsave_buffer(img, buf, len, "Q", p->quality, "strip", TRUE, NULL);
    if (strcmp(p->format, "png") == 0)
        return vips_pngsave_buffer(img, buf, len, "strip", TRUE, NULL);
    return vips_jpegsave_buffer(img, buf, len, "Q", p->quality, "strip", TRUE,
                                "optimize_coding", TRUE, NULL);
}

static const char *content_type_of(const char *format)
{
    if (strcmp(format, "webp") == 0) return "image/webp";
    if (strcmp(format, "png") == 0) return "image/png";
    return "image/jpeg";
}

/* Encodes one rendition of `base` and hands it to the sink. */
static image_status emit(VipsImage *base, const image_preset *p, image_sink sink, void *arg,
                         char *err, size_t errcap)
{
    VipsImage *sized = NULL, *ready = NULL;
    void *buf = NULL;
    size_t len = 0;
    image_status st = IMAGE_CORRUPT;
    if (vips_thumbnail_image(base, &sized, p->size, "height", p->size, "size", VIPS_SIZE_DOWN,
                             NULL) == 0 &&
        (ready = flatten_for(sized, p->format)) && save(ready, p, &buf, &len) == 0) {
        st = sink(arg, p, buf, len, vips_image_get_width(ready), vips_image_get_height(ready),
                  content_type_of(p->format))
                 ? IMAGE_OK
                 : IMAGE_OUTPUT_FAILED;
    } else {
        take_error(err, errcap, "encoding failed");
    }
    g_free(buf);
    if (ready) g_object_unref(ready);
    if (sized) g_object_unref(sized);
    return st;
}

image_status image_render(int fd, const image_preset *presets, int npresets, uint64_t max_pixels,
                          image_sink sink, void *arg, int *src_width, int *src_height,
                          char *err, size_t errcap)
{
    VipsSource *src = vips_source_new_from_descriptor(fd);
    if (!src) {
        take_error(err, errcap, "cannot read the file");
        return IMAGE_CORRUPT;
    }
    image_status st = IMAGE_OK;
    VipsImage *header = NULL, *largest = NULL, *base = NULL;
    const char *loader = vips_foreign_find_load_source(src);
    if (!loader || !loader_allowed(loader)) {
        snprintf(err, errcap, "not an image format assetd decodes (JPEG, PNG, WebP, GIF, TIFF, "
                              "HEIC, AVIF)");
        vips_error_clear();
        st = IMAGE_UNSUPPORTED;
        goto done;
    }
    /* The header only: dimensions without decoding a pixel. */
    if (!(header = vips_image_new_from_source(src, "", "access", VIPS_ACCESS_SEQUENTIAL, NULL))) {
        take_error(err, errcap, "unreadable image header");
        st = IMAGE_CORRUPT;
        goto done;
    }
    *src_width = vips_image_get_width(header);
    *src_height = vips_image_get_height(header);
    if ((uint64_t)*src_width * (uint64_t)*src_height > max_pixels) {
        snprintf(err, errcap, "%dx%d is over the limit of %llu pixels", *src_width, *src_height,
                 (unsigned long long)max_pixels);
        st = IMAGE_TOO_LARGE;
        goto done;
    }
    int biggest = 0;
    for (int i = 0; i < npresets; i++)
        if (presets[i].size > biggest) biggest = presets[i].size;
    /* Decode once, shrinking on load, to the largest rendition; fail on a
     * truncated or corrupt file instead of padding it. */
    if (vips_thumbnail_source(src, &largest, biggest, "height", biggest, "size", VIPS_SIZE_DOWN,
                              "option_string", "fail_on=error", NULL) != 0 ||
        !(base = vips_image_copy_memory(largest))) {
        take_error(err, errcap, "the image could not be decoded");
        st = IMAGE_CORRUPT;
        goto done;
    }
    for (int i = 0; i < npresets && st == IMAGE_OK; i++)
        st = emit(base, &presets[i], sink, arg, err, errcap);
done:
    if (base) g_object_unref(base);
    if (largest) g_object_unref(largest);
    if (header) g_object_unref(header);
    g_object_unref(src);
    return st;
}
