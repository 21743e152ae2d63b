#include "test.h"
#include "util/utf8.h"

#include <string.h>

TEST(utf8_scrub_keeps_valid_text)
{
    char out[64];
    CHECK(strcmp(utf8_scrub("caf\xC3\xA9 \xF0\x9F\x93\xB7", out, sizeof out),
                 "caf\xC3\xA9 \xF0\x9F\x93\xB7") == 0);
    CHECK(strcmp(utf8_scrub("", out, sizeof out), "") == 0);
}

TEST(utf8_scrub_replaces_invalid_bytes)
{
    char out[64];
    /* a bare continuation byte, a lead without its continuation, an overlong
     * '/', a surrogate, a code point past U+10FFFF, 0xFF */
    CHECK(strcmp(utf8_scrub("\xFF\xFE", out, sizeof out), "\xEF\xBF\xBD\xEF\xBF\xBD") == 0);
    CHECK(strcmp(utf8_scrub("a\x80z", out, sizeof out), "a\xEF\xBF\xBDz") == 0);
    CHECK(strcmp(utf8_scrub("\xC3z", out, sizeof out), "\xEF\xBF\xBDz") == 0);
    CHECK(strcmp(utf8_scrub("\xC0\xAF", out, sizeof out), "\xEF\xBF\xBD\xEF\xBF\xBD") == 0);
    CHECK(strcmp(utf8_scrub("\xED\xA0\x80", out, sizeof out),
                 "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD") == 0);
    CHECK(utf8_seq_len((const unsigned char *)"\xF4\x90\x80\x80") == 0);
}

TEST(utf8_scrub_cuts_on_a_character_boundary)
{
    char out[5];   /* room for 4 bytes: "ab" + half of an 'é' would be invalid */
    CHECK(strcmp(utf8_scrub("ab\xC3\xA9\xC3\xA9", out, sizeof out), "ab\xC3\xA9") == 0);
    char tiny[3];
    CHECK(strcmp(utf8_scrub("\xFF", tiny, sizeof tiny), "") == 0);   /* U+FFFD needs 3 + NUL */
    /* whatever goes in, what comes out is valid */
    unsigned char junk[256];
    for (int i = 0; i < 255; i++) junk[i] = (unsigned char)(255 - i);
    junk[255] = 0;
    char big[1024];
    utf8_scrub((const char *)junk, big, sizeof big);
    for (const unsigned char *p = (const unsigned char *)big; *p;) {
        size_t n = utf8_seq_len(p);
        CHECK(n > 0);
        if (!n) break;
        p += n;
    }
}
