/* pdf.h — PDF pages to slide images with poppler-glib and cairo.
 *
 * The document is opened once and its pages rendered in order (re-opening
 * a PDF per page, as ImageMagick-based pipelines do, costs more than the
 * rendering).  Each page is rendered at the slide width into a cairo image
 * surface on white, encoded as JPEG with libvips, and shrunk from that
 * bitmap to the thumbnail width — one render per page, two images out.
 *
 * Limits: max_pages is checked before the first page is rendered; a page
 * taller than 4x its width is scaled down to that (no 1280x100000 bitmaps
 * from a hostile MediaBox); an encrypted or unreadable document is an
 * error, not an empty deck.  Rendering one page cannot be interrupted, so
 * the wall-clock limit of the whole job (queue/worker.c) is what stops a
 * pathological page; page_seconds reports a slow page after the fact.
 *
 * Needs image_init() (libvips) first; poppler needs no set-up.
 */
#ifndef ASSETD_PDF_H
#define ASSETD_PDF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct pdf_options {
    int width;             /* slide width, pixels (1280) */
    int thumb_width;       /* thumbnail width (320) */
    int quality;           /* JPEG quality (85) */
    int max_pages;         /* more: PDF_TOO_MANY_PAGES (500) */
    double page_seconds;   /* a page slower than this: PDF_TOO_SLOW */
} pdf_options;

typedef enum {
    PDF_OK = 0,
    PDF_ENCRYPTED,         /* needs a password */
    PDF_CORRUPT,           /* not a readable PDF, or a page failed */
    PDF_TOO_MANY_PAGES,
    PDF_TOO_SLOW,
    PDF_OUTPUT_FAILED,     /* the sink refused a page */
} pdf_status;

typedef struct pdf_image {
    const void *data;      /* JPEG bytes, valid during the sink call */
    size_t len;
    int width, height;
} pdf_image;

/* Receives each page (index from 0) in order; false aborts. */
typedef bool (*pdf_sink)(void *arg, int index, int pages, const pdf_image *slide,
                         const pdf_image *thumb);

/* Renders every page of the PDF readable at fd (the call takes ownership
 * of fd).  Sets *pages as soon as it is known; on failure writes a reason
 * into err. */
pdf_status pdf_render(int fd, const pdf_options *o, pdf_sink sink, void *arg, int *pages,
                      char *err, size_t errcap);

#endif
