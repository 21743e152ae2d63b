/* image.c — see image.h. */
#include "media/image.h"
#include "util/log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---------- presets ---------- */

const image_preset image_cover_presets[IMAGE_COVER_PRESETS] = {
    {"cover_large", 1280, 720, "jpeg", 85, IMAGE_FIT_COVER},
    {"cover_medium", 640, 360, "jpeg", 85, IMAGE_FIT_COVER},
    {"cover_small", 480, 270, "jpeg", 85, IMAGE_FIT_COVER},
    {"cover_tiny", 320, 180, "jpeg", 85, IMAGE_FIT_COVER},
    {"cover_nano", 160, 90, "jpeg", 85, IMAGE_FIT_COVER},
};

static const image_preset avatar_presets[] = {
    {"avatar_256", 256, 256, "png", 80, IMAGE_FIT_COVER},
    {"avatar_128", 128, 128, "png", 80, IMAGE_FIT_COVER},
    {"avatar_64", 64, 64, "png", 80, IMAGE_FIT_COVER},
    {"avatar_32", 32, 32, "png", 80, IMAGE_FIT_COVER},
};

const image_preset *image_profile_presets(const char *profile, int *n)
{
    if (strcmp(profile, "cover") == 0) {
        *n = IMAGE_COVER_PRESETS;
        return image_cover_presets;
    }
    if (strcmp(profile, "avatar") == 0) {
        *n = (int)(sizeof avatar_presets / sizeof *avatar_presets);
        return avatar_presets;
    }
    *n = 0;
    return NULL;
}

static bool preset_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > IMAGE_PRESET_NAME_MAX) return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

static bool int_in(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return false;
    *out = (int)v;
    return true;
}

/* "256" (a square box) or "640x480". */
static bool box_parse(char *s, image_preset *p)
{
    char *x = strchr(s, 'x');
    if (!x) return int_in(s, 1, 8192, &p->size) && int_in(s, 1, 8192, &p->height);
    *x = '\0';
    bool ok = int_in(s, 1, 8192, &p->size) && int_in(x + 1, 1, 8192, &p->height);
    *x = 'x';
    return ok;
}

/* One "name:size:format[:quality[:fit]]" item, split in place. */
static bool preset_parse_one(char *item, image_preset *p, char *err, size_t errcap)
{
    char *field[6] = {0};
    int n = 0;
    for (char *save = NULL, *f = strtok_r(item, ":", &save); f && n < 6;
         f = strtok_r(NULL, ":", &save))
        field[n++] = f;
    const char *why = NULL;
    if (n < 3 || n > 5) why = "expected name:size:format[:quality[:fit]]";
    else if (!preset_name_valid(field[0])) why = "the name must be 1-32 of a-z 0-9 _";
    else if (!box_parse(field[1], p)) why = "size must be N or WxH, each 1..8192";
    else if (strcmp(field[2], "jpeg") && strcmp(field[2], "webp") && strcmp(field[2], "png") &&
             strcmp(field[2], "source"))
        why = "format must be jpeg, webp, png or source";
    else if (n >= 4 && !int_in(field[3], 1, 100, &p->quality)) why = "quality must be 1..100";
    else if (n == 5 && strcmp(field[4], "inside") && strcmp(field[4], "cover"))
        why = "fit must be inside or cover";
    if (why) {
        snprintf(err, errcap, "rendition '%s': %s", field[0] ? field[0] : "", why);
        return false;
    }
    snprintf(p->name, sizeof p->name, "%s", field[0]);
    snprintf(p->format, sizeof p->format, "%s", field[2]);
    if (n < 4) p->quality = 80;
    p->fit = n == 5 && strcmp(field[4], "cover") == 0 ? IMAGE_FIT_COVER : IMAGE_FIT_INSIDE;
    return true;
}

int image_presets_parse(const char *spec, image_preset *out, int max, char *err, size_t errcap)
{
    char copy[2048];
    if (snprintf(copy, sizeof copy, "%s", spec) >= (int)sizeof copy) {
        snprintf(err, errcap, "the rendition list is too long");
        return -1;
    }
    int n = 0;
    for (char *save = NULL, *item = strtok_r(copy, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        if (n == max) {
            snprintf(err, errcap, "at most %d renditions", max);
            return -1;
        }
        if (!preset_parse_one(item, &out[n], err, errcap)) return -1;
        for (int i = 0; i < n; i++)
            if (strcmp(out[i].name, out[n].name) == 0) {
                snprintf(err, errcap, "rendition '%s' is listed twice", out[n].name);
                return -1;
            }
        n++;
    }
    if (n == 0) snprintf(err, errcap, "the rendition list is empty");
    return n > 0 ? n : -1;
}

/* ---------- rendering ---------- */

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

static int save(VipsImage *img, const image_preset *p, const char *format, void **buf,
                size_t *len)
{
    if (strcmp(format, "webp") == 0)
        return vips_webpsave_buffer(img, buf, len, "Q", p->quality, "strip", TRUE, NULL);
    if (strcmp(format, "png") == 0)
        return vips_pngsave_buffer(img, buf, len, "strip", TRUE, NULL);
    if (strcmp(format, "gif") == 0) return vips_gifsave_buffer(img, buf, len, "strip", TRUE, NULL);
    return vips_jpegsave_buffer(img, buf, len, "Q", p->quality, "strip", TRUE,
                                "optimize_coding", TRUE, NULL);
}

static const char *content_type_of(const char *format)
{
    if (strcmp(format, "webp") == 0) return "image/webp";
    if (strcmp(format, "png") == 0) return "image/png";
    if (strcmp(format, "gif") == 0) return "image/gif";
    return "image/jpeg";
}

/* What a `source` preset writes for an image this loader read. */
static const char *source_format_of(const char *loader)
{
    const char *nick = vips_nickname_find(g_type_from_name(loader));
    static const char *const kept[][2] = {
        {"jpegload", "jpeg"}, {"pngload", "png"}, {"gifload", "gif"}, {"webpload", "webp"},
    };
    for (size_t i = 0; nick && i < sizeof kept / sizeof *kept; i++)
        if (strncmp(nick, kept[i][0], strlen(kept[i][0])) == 0) return kept[i][1];
    return "jpeg";
}

/* What `base` is shrunk from for p: itself, or for a `cover` box it cannot
 * fill, its largest centred part of the box's shape (libvips would crop
 * to the box clipped to the image, which has another shape).  A new
 * reference, or NULL. */
static VipsImage *shape_for(VipsImage *base, const image_preset *p)
{
    int w = vips_image_get_width(base), h = vips_image_get_height(base);
    if (p->fit != IMAGE_FIT_COVER || (w >= p->size && h >= p->height)) {
        g_object_ref(base);
        return base;
    }
    double want = (double)p->size / p->height;
    int cw = w, ch = h;
    if ((double)w / h > want) cw = (int)lround(h * want);
    else ch = (int)lround(w / want);
    cw = cw < 1 ? 1 : cw > w ? w : cw;
    ch = ch < 1 ? 1 : ch > h ? h : ch;
    VipsImage *out = NULL;
    return vips_extract_area(base, &out, (w - cw) / 2, (h - ch) / 2, cw, ch, NULL) == 0 ? out
                                                                                      : NULL;
}

/* Encodes one rendition of `base` and hands it to the sink. */
static image_status emit(VipsImage *base, const image_preset *p, const char *source_format,
                         image_sink sink, void *arg, char *err, size_t errcap)
{
    const char *format = strcmp(p->format, "source") == 0 ? source_format : p->format;
    VipsImage *shaped = NULL, *sized = NULL, *ready = NULL;
    void *buf = NULL;
    size_t len = 0;
    image_status st = IMAGE_CORRUPT;
    VipsInteresting crop = p->fit == IMAGE_FIT_COVER ? VIPS_INTERESTING_CENTRE
                                                     : VIPS_INTERESTING_NONE;
    if ((shaped = shape_for(base, p)) &&
        vips_thumbnail_image(shaped, &sized, p->size, "height", p->height, "size",
                             VIPS_SIZE_DOWN, "crop", crop, NULL) == 0 &&
        (ready = flatten_for(sized, format)) && save(ready, p, format, &buf, &len) == 0) {
        st = sink(arg, p, buf, len, vips_image_get_width(ready), vips_image_get_height(ready),
                  content_type_of(format))
                 ? IMAGE_OK
                 : IMAGE_OUTPUT_FAILED;
    } else {
        take_error(err, errcap, "encoding failed");
    }
    g_free(buf);
    if (ready) g_object_unref(ready);
    if (sized) g_object_unref(sized);
    if (shaped) g_object_unref(shaped);
    return st;
}

/* The longest edge the decoded source needs so that every preset is a
 * shrink of it: `inside` needs its size on the longest edge, `cover` on the
 * shortest.  Never more than the source has. */
static int base_edge(const image_preset *presets, int n, int width, int height)
{
    int longest = width > height ? width : height, shortest = width < height ? width : height;
    double need = 0;
    for (int i = 0; i < n; i++) {
        /* the longer side of the box: enough for either fit's shorter one */
        double edge = presets[i].size > presets[i].height ? presets[i].size : presets[i].height;
        if (presets[i].fit == IMAGE_FIT_COVER && shortest > 0)
            edge = ceil(edge * longest / shortest);
        if (edge > need) need = edge;
    }
    return need < longest ? (int)need : longest;
}

/* The source's header, once its loader is one we accept, and checked
 * against max_pixels: dimensions without decoding a pixel.  *header is
 * set (the caller's) whenever it could be read. */
static image_status open_header(VipsSource *src, uint64_t max_pixels, const char **loader,
                                VipsImage **header, char *err, size_t errcap)
{
    *header = NULL;
    *loader = vips_foreign_find_load_source(src);
    if (!*loader || !loader_allowed(*loader)) {
        snprintf(err, errcap, "not an image format assetd decodes (JPEG, PNG, WebP, GIF, TIFF, "
                              "HEIC, AVIF)");
        vips_error_clear();
        return IMAGE_UNSUPPORTED;
    }
    if (!(*header = vips_image_new_from_source(src, "", "access", VIPS_ACCESS_SEQUENTIAL, NULL))) {
        take_error(err, errcap, "unreadable image header");
        return IMAGE_CORRUPT;
    }
    int w = vips_image_get_width(*header), h = vips_image_get_height(*header);
    if ((uint64_t)w * (uint64_t)h > max_pixels) {
        snprintf(err, errcap, "%dx%d is over the limit of %llu pixels", w, h,
                 (unsigned long long)max_pixels);
        return IMAGE_TOO_LARGE;
    }
    return IMAGE_OK;
}

image_status image_size(int fd, uint64_t max_pixels, int *width, int *height, char *err,
                        size_t errcap)
{
    VipsSource *src = vips_source_new_from_descriptor(fd);
    if (!src) {
        take_error(err, errcap, "cannot read the file");
        return IMAGE_CORRUPT;
    }
    const char *loader;
    VipsImage *header;
    image_status st = open_header(src, max_pixels, &loader, &header, err, errcap);
    if (st == IMAGE_OK) {
        bool turned = vips_image_get_orientation_swap(header);
        *width = vips_image_get_width(header);
        *height = vips_image_get_height(header);
        if (turned) {
            int t = *width;
            *width = *height, *height = t;
        }
    }
    if (header) g_object_unref(header);
    g_object_unref(src);
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
    VipsImage *header = NULL, *largest = NULL, *base = NULL;
    const char *loader;
    image_status st = open_header(src, max_pixels, &loader, &header, err, errcap);
    if (header) {
        *src_width = vips_image_get_width(header);
        *src_height = vips_image_get_height(header);
    }
    if (st != IMAGE_OK) goto done;
    int biggest = base_edge(presets, npresets, *src_width, *src_height);
    /* Decode once, shrinking on load, to the largest rendition; fail on a
     * truncated or corrupt file instead of padding it. */
    if (vips_thumbnail_source(src, &largest, biggest, "height", biggest, "size", VIPS_SIZE_DOWN,
                              "option_string", "fail_on=error", NULL) != 0 ||
        !(base = vips_image_copy_memory(largest))) {
        take_error(err, errcap, "the image could not be decoded");
        st = IMAGE_CORRUPT;
        goto done;
    }
    const char *source_format = source_format_of(loader);
    for (int i = 0; i < npresets && st == IMAGE_OK; i++)
        st = emit(base, &presets[i], source_format, sink, arg, err, errcap);
done:
    if (base) g_object_unref(base);
    if (largest) g_object_unref(largest);
    if (header) g_object_unref(header);
    g_object_unref(src);
    return st;
}

bool image_join_tiles(const char *const *paths, int n, int columns, int rows, int quality,
                      const char *out, char *err, size_t errcap)
{
    VipsImage **tiles = calloc((size_t)n, sizeof *tiles);
    VipsImage *grid = NULL, *sheet = NULL;
    bool ok = tiles != NULL && n > 0 && columns > 0;
    for (int i = 0; ok && i < n; i++) ok = (tiles[i] = vips_image_new_from_file(paths[i], NULL)) != NULL;
    int w = ok ? vips_image_get_width(tiles[0]) : 0, h = ok ? vips_image_get_height(tiles[0]) : 0;
    if (rows * columns < n) rows = (n + columns - 1) / columns;
    ok = ok && vips_arrayjoin(tiles, &grid, n, "across", columns, NULL) == 0 &&
         vips_embed(grid, &sheet, 0, 0, columns * w, rows * h, "extend", VIPS_EXTEND_BLACK,
                    NULL) == 0 &&
         vips_jpegsave(sheet, out, "Q", quality, "strip", TRUE, NULL) == 0;
    if (!ok) take_error(err, errcap, "cannot join the timeline's tiles");
    if (sheet) g_object_unref(sheet);
    if (grid) g_object_unref(grid);
    for (int i = 0; tiles && i < n; i++)
        if (tiles[i]) g_object_unref(tiles[i]);
    free(tiles);
    return ok;
}
