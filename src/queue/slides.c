/* slides.c — the document pipeline: every page of a PDF (or of a
 * presentation, converted to PDF by LibreOffice first) becomes a slide
 * (slide_NNN, width --slide-width) and its thumbnail (slide_NNN_thumb),
 * stored as renditions, listed in the slides table, with a job.progress
 * event per page (throttled).  meta: pages, and the first page's size. */
#include "queue/pipeline.h"
#include "media/office.h"
#include "media/pdf.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define THUMB_WIDTH 320
#define SLIDE_QUALITY 85

typedef struct deck {
    worker *w;
    const job *j;
    slide *slides;     /* one per page, filled as pages are stored */
    int pages;
} deck;

static bool store_page(void *arg, int index, int pages, const pdf_image *s, const pdf_image *t)
{
    deck *d = arg;
    if (!d->slides && !(d->slides = calloc((size_t)pages, sizeof *d->slides))) return false;
    char name[32], thumb[40];
    snprintf(name, sizeof name, "slide_%03d", index + 1);
    snprintf(thumb, sizeof thumb, "%s_thumb", name);
    if (!pipeline_store(d->w, d->j->asset_id, name, s->data, s->len) ||
        !pipeline_store(d->w, d->j->asset_id, thumb, t->data, t->len))
        return false;
    d->slides[index] = (slide){index + 1, s->width, s->height, s->len,
                               t->width, t->height, t->len};
    d->pages = index + 1;
    if (index + 1 < pages) pipeline_progress(d->w, d->j, (double)(index + 1) / pages);
    return true;
}

static db_status write_slides(db_conn *c, void *arg)
{
    deck *d = arg;
    db_status st = db_slides_clear(c, d->j->asset_id);
    for (int i = 0; st == DB_OK && i < d->pages; i++)
        st = db_slide_insert(c, d->j->asset_id, &d->slides[i]);
    return st;
}

static const char *pdf_error_code(pdf_status st)
{
    switch (st) {
    case PDF_ENCRYPTED: return "encrypted_pdf";
    case PDF_CORRUPT: return "corrupt_input";
    case PDF_TOO_MANY_PAGES: return "too_many_pages";
    case PDF_TOO_SLOW: return "timeout";
    default: return "storage_failed";
    }
}

static const char *office_error_code(office_status st)
{
    switch (st) {
    case OFFICE_MISSING: return "converter_missing";
    case OFFICE_TIMEOUT: return "timeout";
    case OFFICE_FAILED: return "corrupt_input";
    default: return "storage_failed";
    }
}

/* The asset's bytes as a PDF: the original, or a presentation converted. */
static bool open_pdf(worker *w, const job *j, int *fd)
{
    asset a;
    uint64_t size;
    db_conn *c = db_acquire(w->db);
    db_status st = c ? db_asset_get_any(c, j->asset_id, &a) : DB_ERROR;
    db_release(w->db, c);
    if (st != DB_OK) {
        pipeline_fail(w, j, "source_missing", "the asset or its bytes are gone", false);
        return false;
    }
    if (!store_fetch(w->store, j->asset_id, fd, &size)) {
        pipeline_fetch_failed(w, j, "the asset or its bytes are gone");
        return false;
    }
    if (a.kind != ASSET_PRESENTATION) return true;
    char tmp[1100], err[256];
    snprintf(tmp, sizeof tmp, "%s/tmp", w->cfg->data_dir);
    int pdf = -1;
    office_status os = office_to_pdf(*fd, a.content_type, tmp, (int)w->cfg->job_timeout, &pdf,
                                     err, sizeof err);
    close(*fd);
    *fd = pdf;
    if (os != OFFICE_OK)
        pipeline_fail(w, j, office_error_code(os), err, os == OFFICE_IO_ERROR);
    return os == OFFICE_OK;
}

void pipeline_document(worker *w, const job *j)
{
    int fd;
    if (!open_pdf(w, j, &fd)) return;
    const worker_config *cfg = w->cfg;
    pdf_options o = {cfg->slide_width, THUMB_WIDTH, SLIDE_QUALITY, cfg->max_pages,
                     cfg->page_seconds};
    deck d = {w, j, NULL, 0};
    w->last_progress_ms = 0;
    char err[512] = "";
    int pages = 0;
    pdf_status st = pdf_render(fd, &o, store_page, &d, &pages, err, sizeof err);   /* owns fd */
    if (st != PDF_OK) {
        pipeline_fail(w, j, pdf_error_code(st), err, st == PDF_OUTPUT_FAILED);
    } else {
        char meta[128];
        snprintf(meta, sizeof meta, "{\"pages\":%d,\"width\":%d,\"height\":%d}", pages,
                 d.slides[0].width, d.slides[0].height);
        pipeline_succeed(w, j, "[]", meta, write_slides, &d);
    }
    free(d.slides);
}
