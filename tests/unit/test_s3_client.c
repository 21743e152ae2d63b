/* The S3 client's request building, without a network: what libcurl 7.88
 * is handed must already be what SigV4 signs (see s3_client.c).  The
 * requests themselves are checked against real servers by
 * tests/e2e/s3client.test.mjs. */
#include "test.h"
#include "store/s3_request.h"

#include <stdlib.h>

static s3_client *client(const char *region)
{
    s3_config cfg = {.endpoint = "http://127.0.0.1:9/", .bucket = "bkt", .region = region,
                     .access_key = "AKIDEXAMPLE", .secret_key = "secret"};
    s3_error err;
    s3_client *c = s3_client_new(&cfg, &err);
    CHECK(c != NULL);
    return c;
}

static char *enc(const char *s, bool keep_slash)
{
    s3_buf b = {0};
    s3_buf_add_encoded(&b, s, keep_slash);
    s3_buf_add(&b, "", 0);
    return b.p;
}

TEST(s3_path_encoded_by_us)
{
    char *e = enc("a b+c/ü~x.y_z-0(1)*'!&=?#%", true);
    CHECK_STR(e, "a%20b%2Bc/%C3%BC~x.y_z-0%281%29%2A%27%21%26%3D%3F%23%25");
    free(e);
    e = enc("a/b", false);
    CHECK_STR(e, "a%2Fb");
    free(e);

    s3_client *c = client(NULL);
    s3_req r = {.method = "GET", .key = "dir/sp ace+plus~é"};
    char *url = s3_url(c, &r);
    CHECK_STR(url, "http://127.0.0.1:9/bkt/dir/sp%20ace%2Bplus~%C3%A9");
    free(url);
    s3_req b = {.method = "GET", .query = "list-type=2"};
    url = s3_url(c, &b);
    CHECK_STR(url, "http://127.0.0.1:9/bkt?list-type=2");
    free(url);
    s3_client_free(c);
}

TEST(s3_query_sorted_with_equals)
{
    const char *uploads[] = {"uploads", NULL};
    char *q = s3_query(1, uploads);
    CHECK_STR(q, "uploads=");
    free(q);
    const char *part[] = {"uploadId", "a/b+c=", "partNumber", "7"};
    q = s3_query(2, part);
    CHECK_STR(q, "partNumber=7&uploadId=a%2Fb%2Bc%3D");
    free(q);
    const char *list[] = {"prefix", "x y", "list-type", "2", "continuation-token", "t==", "max-keys", "10"};
    q = s3_query(4, list);
    CHECK_STR(q, "continuation-token=t%3D%3D&list-type=2&max-keys=10&prefix=x%20y");
    free(q);
}

TEST(s3_headers_sha256_and_no_removals)
{
    s3_client *c = client(NULL);
    s3_req r = {.method = "PUT", .key = "k", .content_type = "image/png", .has_range = true,
                .first = 5, .last = UINT64_MAX};
    struct curl_slist *h = s3_headers(c, &r, "UNSIGNED-PAYLOAD", "\"etag\"");
    int n = 0;
    bool sha = false;
    for (struct curl_slist *l = h; l; l = l->next, n++) {
        const char *colon = strchr(l->data, ':');
        /* "Name:" (removal) or "Name;" (empty) would be signed by 7.88 as
         * a header it never sends. */
        CHECK(colon != NULL);
        CHECK(colon && colon[1] == ' ' && colon[2] != '\0');
        if (strcmp(l->data, "x-amz-content-sha256: UNSIGNED-PAYLOAD") == 0) sha = true;
    }
    CHECK(sha);
    CHECK(n == 4);
    CHECK_STR(h->next->data, "Content-Type: image/png");
    CHECK_STR(h->next->next->data, "Range: bytes=5-");
    CHECK_STR(h->next->next->next->data, "If-Match: \"etag\"");
    curl_slist_free_all(h);

    s3_req g = {.method = "GET", .key = "k"};
    h = s3_headers(c, &g, S3_EMPTY_SHA256, NULL);
    CHECK(h && !h->next);
    CHECK_STR(h->data, "x-amz-content-sha256: " S3_EMPTY_SHA256);
    curl_slist_free_all(h);
    s3_client_free(c);
}

TEST(s3_sigv4_names_provider_region_service)
{
    s3_client *c = client("eu-west-3");
    CHECK_STR(s3_sigv4_param(c), "aws:amz:eu-west-3:s3");
    s3_client_free(c);
    c = client(NULL);
    CHECK_STR(s3_sigv4_param(c), "aws:amz:us-east-1:s3");
    s3_client_free(c);
}

TEST(s3_xml_answers)
{
    const char *x = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code>"
                    "<Message>a &amp; b &lt;c&gt; &quot;d&quot; &#39;e&#x27;</Message></Error>";
    char out[64];
    CHECK(s3_xml_text(x, x + strlen(x), "Code", out, sizeof out));
    CHECK_STR(out, "NoSuchKey");
    CHECK(s3_xml_text(x, x + strlen(x), "Message", out, sizeof out));
    CHECK_STR(out, "a & b <c> \"d\" 'e'");
    CHECK(!s3_xml_text(x, x + strlen(x), "Missing", out, sizeof out));
    CHECK(!s3_xml_text(x, x + strlen(x), "Message", out, 5));
}

TEST(s3_config_checked)
{
    s3_error err;
    s3_config none = {.endpoint = "http://h", .bucket = "b", .access_key = "", .secret_key = ""};
    CHECK(s3_client_new(&none, &err) == NULL);
    CHECK_STR(err.code, "NoCredentials");
    s3_config bad = {.endpoint = "ftp://h", .bucket = "b", .access_key = "a", .secret_key = "s"};
    CHECK(s3_client_new(&bad, &err) == NULL);
    CHECK_STR(err.code, "BadConfig");
    s3_config small = {.endpoint = "http://h", .bucket = "b", .access_key = "a", .secret_key = "s",
                       .part_size = 1024};
    s3_client *c = s3_client_new(&small, &err);
    CHECK(c && s3_client_part_size(c) == S3_MIN_PART_SIZE);
    s3_client_free(c);
}
