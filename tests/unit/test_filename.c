#include "test.h"
#include "util/filename.h"

static const char *clean(const char *in)
{
    static char out[FILENAME_MAX_BYTES + 1];
    filename_sanitize(in, out);
    return out;
}

TEST(filename_strips_paths_and_controls)
{
    CHECK_STR(clean("photo.jpg"), "photo.jpg");
    CHECK_STR(clean("../../etc/passwd"), "passwd");
    CHECK_STR(clean("C:\\Users\\me\\photo.jpg"), "photo.jpg");
    CHECK_STR(clean("a\r\nb\x01\x7f.txt"), "ab.txt");
    CHECK_STR(clean(""), "upload");
    CHECK_STR(clean(NULL), "upload");
    CHECK_STR(clean(".."), "upload");
    CHECK_STR(clean("dir/"), "upload");
    CHECK_STR(clean("caf\xc3\xa9.png"), "caf\xc3\xa9.png");         /* valid UTF-8 kept */
    CHECK_STR(clean("bad\xff\xfe.png"), "bad.png");                   /* invalid bytes dropped */
    CHECK_STR(clean("over\xc0\xaflong"), "overlong");                 /* overlong '/' dropped */
}

TEST(filename_truncates_on_utf8_boundary)
{
    char in[600];
    memset(in, 0, sizeof in);
    for (int i = 0; i < 200; i++) memcpy(in + 2 * i, "\xc3\xa9", 2);  /* 400 bytes of é */
    const char *out = clean(in);
    CHECK(strlen(out) == 254);   /* 127 whole characters: 255 would split one */
}

TEST(content_disposition_is_safe)
{
    char out[1024];
    CHECK(content_disposition("photo.jpg", false, out, sizeof out));
    CHECK_STR(out, "inline; filename=\"photo.jpg\"");
    CHECK(content_disposition("a\"b\\c%d.txt", true, out, sizeof out));
    CHECK_STR(out, "attachment; filename=\"a_b_c_d.txt\"");
    CHECK(content_disposition("t\xc3\xa9st.txt", true, out, sizeof out));
    CHECK_STR(out, "attachment; filename=\"t__st.txt\"; filename*=UTF-8''t%C3%A9st.txt");
    CHECK(!content_disposition("x.txt", true, out, 10));
}
