/* pdf.c — see pdf.h. */
#include "media/pdf.h"
#include "util/timefmt.h"

#include <cairo.h>
#include <math.h>
#include <poppler.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <vips/vips.h>

#define MAX_ASPECT 4.0   /* height / width beyond this is scaled down */

/* cairo's RGB24 is one native-endian 32-bit word per pixel, 0xXXRRGGBB;
 * libvips wants packed RGB bytes. */
static uint8_t *to_rgb(cairo_surface_t *surface, int w, int h)
{
    uint8_t *rgb = malloc((size_t)w * (size_t)h * 3);
    if (!rgb) return NULL;
    const uint8_t *src = cairo_image_surface_get_data(surface);
    int stride = cairo_image_surface_get_stride(surface);
    for (int y = 0; y < h; y++) {
        const uint32_t *row = (const uint32_t *)(src + (size_t)y * (size_t)stride);
        uint8_t *out = rgb + (size_t)y * (size_t)w * 3;
        for (int x = 0; x < w; x++) {
            uint32_t p = row[x];
            out[3 * x] = (uint8_t)(p >> 16);
            out[3 * x + 1] = (uint8_t)(p >> 8);
            out[3 * x + 2] = (uint8_t)p;
        }
    }
    return rgb;
}

/* Renders one page at width w on white; NULL if cairo failed. */
static cairo_surface_t *render_page(PopplerPage *page, int w, int *h)
{
    double pw, ph;
    poppler_page_get_size(page, &pw, &ph);
    if (pw <= 0 || ph <= 0) return NULL;
    double scale = w / pw;
    if (ph * scale > w * MAX_ASPECT) scale = w * MAX_ASPECT / ph;
    int rw = (int)lround(pw * scale), rh = (int)lround(ph * scale);
    if (rw < 1) rw = 1;
    if (rh < 1) rh = 1;
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, rw, rh);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(s);
        return NULL;
    }
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_scale(cr, scale, scale);
    poppler_page_render(page, cr);
    cairo_destroy(cr);
    cairo_surface_flush(s);
    *h = rh;
    return s;
}

/* No optimize_coding: slides are many and big, and the extra Huffman pass
 * costs ~10 % of a page for ~5 % of bytes. */
static bool encode(VipsImage *img, int quality, void **buf, size_t *len)
{
    return vips_jpegsave_buffer(img, buf, len, "Q", quality, "strip", TRUE, NULL) == 0;
}

/* One page: the slide and its thumbnail, handed to the sink. */
static pdf_status emit_page(PopplerPage *page, const pdf_options *o, int index, int pages,
                            pdf_sink sink, void *arg)
{
    int h = 0;
    cairo_surface_t *surface = render_page(page, o->width, &h);
    if (!surface) return PDF_CORRUPT;
    int w = cairo_image_surface_get_width(surface);
    uint8_t *rgb = to_rgb(surface, w, h);
    cairo_surface_destroy(surface);
    VipsImage *img = rgb ? vips_image_new_from_memory(rgb, (size_t)w * (size_t)h * 3, w, h, 3,
                                                      VIPS_FORMAT_UCHAR)
                         : NULL;
    VipsImage *small = NULL;
    void *slide_buf = NULL, *thumb_buf = NULL;
    size_t slide_len = 0, thumb_len = 0;
    pdf_status st = PDF_CORRUPT;
    if (img && encode(img, o->quality, &slide_buf, &slide_len) &&
        /* A linear kernel: measured per 1280x1656 page (single-threaded, with
         * the JPEG encode) 5.5 ms against 9.7 ms for vips_shrink's box
         * filter; lanczos (vips_thumbnail) cost 4x more than the box. */
        vips_reduce(img, &small, (double)w / o->thumb_width, (double)w / o->thumb_width,
                    "kernel", VIPS_KERNEL_LINEAR, NULL) == 0 &&
        encode(small, o->quality, &thumb_buf, &thumb_len)) {
        pdf_image slide = {slide_buf, slide_len, w, h};
        pdf_image thumb = {thumb_buf, thumb_len, vips_image_get_width(small),
                           vips_image_get_height(small)};
        st = sink(arg, index, pages, &slide, &thumb) ? PDF_OK : PDF_OUTPUT_FAILED;
    }
    g_free(slide_buf);
    g_free(thumb_buf);
    if (small) g_object_unref(small);
    if (img) g_object_unref(img);
    free(rgb);
    vips_error_clear();
    return st;
}

static pdf_status open_document(int fd, PopplerDocument **doc, char *err, size_t errcap)
{
    GError *gerr = NULL;
    *doc = poppler_document_new_from_fd(fd, NULL, &gerr);
    if (*doc) return PDF_OK;
    bool encrypted = gerr && gerr->domain == POPPLER_ERROR && gerr->code == POPPLER_ERROR_ENCRYPTED;
    snprintf(err, errcap, "%s", encrypted ? "the PDF is encrypted (password protected)"
                                          : gerr ? gerr->message : "not a readable PDF");
    g_clear_error(&gerr);
    return encrypted ? PDF_ENCRYPTED : PDF_CORRUPT;
}

pdf_status pdf_render(int fd, const pdf_options *o, pdf_sink sink, void *arg, int *pages,
                      char *err, size_t errcap)
{
    PopplerDocument *doc;
    pdf_status st = open_document(fd, &doc, err, errcap);
    if (st != PDF_OK) return st;
    *pages = poppler_document_get_n_pages(doc);
    if (*pages < 1) {
        snprintf(err, errcap, "the PDF has no pages");
        st = PDF_CORRUPT;
    } else if (*pages > o->max_pages) {
        snprintf(err, errcap, "%d pages is over the limit of %d", *pages, o->max_pages);
        st = PDF_TOO_MANY_PAGES;
    }
    for (int i = 0; st == PDF_OK && i < *pages; i++) {
        double started = time_mono_seconds();
        PopplerPage *page = poppler_document_get_page(doc, i);
        st = page ? emit_page(page, o, i, *pages, sink, arg) : PDF_CORRUPT;
        if (page) g_object_unref(page);
        if (st == PDF_CORRUPT) snprintf(err, errcap, "page %d could not be rendered", i + 1);
        else if (st == PDF_OUTPUT_FAILED) snprintf(err, errcap, "could not store page %d", i + 1);
        else if (time_mono_seconds() - started > o->page_seconds) {
            snprintf(err, errcap, "page %d took longer than %.0f s", i + 1, o->page_seconds);
            st = PDF_TOO_SLOW;
        }
    }
    g_object_unref(doc);
    return st;
}
