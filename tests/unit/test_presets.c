/* Rendition presets: the --renditions grammar and its defaults. */
#include "test.h"
#include "media/image.h"

static int parse(const char *spec, image_preset *out, char *err)
{
    return image_presets_parse(spec, out, IMAGE_PRESETS_MAX, err, 160);
}

TEST(presets_default_and_full_form)
{
    image_preset p[IMAGE_PRESETS_MAX];
    char err[160];
    CHECK(parse(IMAGE_PRESETS_DEFAULT, p, err) == 3);
    CHECK_STR(p[0].name, "thumb");
    CHECK(p[0].size == 256 && p[0].quality == 80 && p[0].fit == IMAGE_FIT_INSIDE);
    CHECK_STR(p[0].format, "jpeg");
    CHECK_STR(p[1].name, "preview");
    CHECK_STR(p[1].format, "webp");
    CHECK(p[1].size == 1024 && p[1].height == 1024);
    /* the open-table API's: inside 640x480, in the source's format */
    CHECK_STR(p[2].name, "fit640");
    CHECK(p[2].size == 640 && p[2].height == 480 && p[2].fit == IMAGE_FIT_INSIDE);
    CHECK_STR(p[2].format, "source");

    CHECK(parse("sq_1:128:png:50:cover,hero_2x:2048:webp:90:inside", p, err) == 2);
    CHECK(p[0].fit == IMAGE_FIT_COVER && p[0].quality == 50 && p[0].size == 128);
    CHECK(p[1].fit == IMAGE_FIT_INSIDE && p[1].quality == 90);
}

TEST(presets_rejected_with_a_reason)
{
    image_preset p[IMAGE_PRESETS_MAX];
    char err[160];
    const char *bad[] = {
        "",                           /* empty */
        "thumb:256",                  /* too few fields */
        "thumb:256:jpeg:80:cover:x",  /* too many */
        "Thumb:256:jpeg",             /* upper case */
        "../x:256:jpeg",              /* a path in a name */
        "sq-1:256:jpeg",              /* not a blob key character */
        "thumb:0:jpeg",               /* size */
        "thumb:9000:jpeg",
        "thumb:12px:jpeg",
        "thumb:640x:jpeg",            /* a box needs both sides */
        "thumb:x480:jpeg",
        "thumb:640x0:jpeg",
        "thumb:640x480x2:jpeg",
        "thumb:256:gif",              /* format */
        "thumb:256:jpeg:0",           /* quality */
        "thumb:256:jpeg:101",
        "thumb:256:jpeg:80:fill",     /* fit */
        "a:1:png,a:2:png",            /* duplicate name */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        CHECK(parse(bad[i], p, err) == -1);
        CHECK(err[0] != '\0');
    }
    /* More than the maximum. */
    char many[2048] = "";
    for (int i = 0; i <= IMAGE_PRESETS_MAX; i++) {
        char item[32];
        snprintf(item, sizeof item, "%sp%d:10:png", i ? "," : "", i);
        strcat(many, item);
    }
    CHECK(parse(many, p, err) == -1);
}
