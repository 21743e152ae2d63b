/* PDF pages to slides (poppler + cairo + libvips), on the corpus deck. */
#include "test.h"
#include "media/image.h"
#include "media/pdf.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#define DECK "../shared/corpus/pdf/slides_context_bachotex2018_45p.pdf"

typedef struct seen {
    int pages, calls, last_index;
    int w, h, tw, th;
    bool jpeg;
} seen;

static bool collect(void *arg, int index, int pages, const pdf_image *slide,
                    const pdf_image *thumb)
{
    seen *s = arg;
    if (index == 0) {
        s->w = slide->width, s->h = slide->height, s->tw = thumb->width, s->th = thumb->height;
        const unsigned char *b = slide->data;
        s->jpeg = slide->len > 4 && b[0] == 0xff && b[1] == 0xd8;
    }
    s->pages = pages;
    s->last_index = index;
    s->calls++;
    return true;
}

static const pdf_options options = {1280, 320, 85, 500, 30};

TEST(pdf_every_page_once_at_the_slide_and_thumb_widths)
{
    CHECK(image_init("unit"));
    int fd = open(DECK, O_RDONLY);
    CHECK(fd >= 0);
    if (fd < 0) return;
    seen s = {0};
    int pages = 0;
    char err[256] = "";
    CHECK(pdf_render(fd, &options, collect, &s, &pages, err, sizeof err) == PDF_OK);
    CHECK(pages == 45 && s.calls == 45 && s.last_index == 44);
    /* 597.758 x 448.319 pt -> 1280 x 960; the thumb keeps the aspect. */
    CHECK(s.w == 1280 && s.h == 960);
    CHECK(s.tw == 320 && s.th == 240);
    CHECK(s.jpeg);
}

TEST(pdf_limits_and_broken_input)
{
    CHECK(image_init("unit"));
    seen s = {0};
    int pages = 0;
    char err[256] = "";
    pdf_options few = options;
    few.max_pages = 10;
    CHECK(pdf_render(open(DECK, O_RDONLY), &few, collect, &s, &pages, err, sizeof err) ==
          PDF_TOO_MANY_PAGES);
    CHECK(s.calls == 0 && strstr(err, "over the limit") != NULL);

    char path[] = "/tmp/assetd-pdf-XXXXXX";
    int fd = mkstemp(path);
    static const char junk[] = "%PDF-1.7\nthis is not a PDF body at all\n";
    CHECK(fd >= 0 && write(fd, junk, sizeof junk - 1) == (ssize_t)(sizeof junk - 1));
    lseek(fd, 0, SEEK_SET);
    CHECK(pdf_render(fd, &options, collect, &s, &pages, err, sizeof err) == PDF_CORRUPT);
    CHECK(err[0] != '\0');
    unlink(path);
}
