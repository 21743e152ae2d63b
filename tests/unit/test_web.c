#include "test.h"
#include "http/etag.h"
#include "web/static.h"

#include <openssl/sha.h>

TEST(web_files_are_embedded_with_their_hash)
{
    const char *names[] = {"index.html", "app.js", "app.css"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const web_file *f = web_file_find(names[i]);
        CHECK(f != NULL);
        if (!f) continue;
        CHECK(f->size > 0);
        CHECK(f->data[f->size] == '\0');
        /* The ETag is the quoted SHA-256 hex of exactly these bytes. */
        unsigned char md[SHA256_DIGEST_LENGTH];
        SHA256(f->data, f->size, md);
        char want[2 * SHA256_DIGEST_LENGTH + 3] = "\"";
        for (int b = 0; b < SHA256_DIGEST_LENGTH; b++) snprintf(want + 1 + 2 * b, 3, "%02x", md[b]);
        strcat(want, "\"");
        CHECK_STR(f->etag, want);
    }
    CHECK(web_file_find("missing.html") == NULL);
    CHECK(web_file_find("") == NULL);
    CHECK(web_file_find("INDEX.HTML") == NULL);
}

TEST(web_content_types_by_extension)
{
    CHECK_STR(web_content_type("index.html"), "text/html; charset=utf-8");
    CHECK_STR(web_content_type("app.js"), "text/javascript; charset=utf-8");
    CHECK_STR(web_content_type("app.css"), "text/css; charset=utf-8");
    CHECK_STR(web_content_type("APP.CSS"), "text/css; charset=utf-8");
    CHECK_STR(web_content_type("a.tar.js"), "text/javascript; charset=utf-8");
    CHECK_STR(web_content_type("README"), "application/octet-stream");
    CHECK_STR(web_content_type("app.js.map"), "application/octet-stream");
}

TEST(etag_if_none_match_lists)
{
    const char *e = "\"abc\"";
    CHECK(http_etag_matches("\"abc\"", e));
    CHECK(http_etag_matches("W/\"abc\"", e));
    CHECK(http_etag_matches("\"x\", \"abc\"", e));
    CHECK(http_etag_matches("\"x\",\"abc\" ", e));
    CHECK(http_etag_matches("*", e));
    CHECK(!http_etag_matches("\"abcd\"", e));
    CHECK(!http_etag_matches("\"ab\"", e));
    CHECK(!http_etag_matches("abc", e));
    CHECK(!http_etag_matches("", e));
    CHECK(!http_etag_matches(" , ,", e));
}
