/* SigV4 presigned URLs and POST policies: AWS's published examples, then
 * the verifier the disk store uses (valid accepted; tampered, expired,
 * foreign and malformed refused with the right reason). */
#include "test.h"
#include "core/sigv4.h"
#include "core/sigv4_post.h"

#include <openssl/evp.h>
#include <stdlib.h>

#define AK "AKIAIOSFODNN7EXAMPLE"
#define SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

static const sigv4_creds AWS = {AK, SK, NULL, "us-east-1", NULL};

/* 2013-05-24T00:00:00Z and 2015-12-29T00:00:00Z */
#define T_2013 1369353600
#define T_2015 1451347200

/* The example of "Authenticating Requests: Using Query Parameters (AWS
 * Signature Version 4)", S3 API reference: GET examplebucket/test.txt,
 * virtual-hosted (the host names the bucket, the path is /test.txt). */
TEST(sigv4_presign_reproduces_the_aws_get_example)
{
    sigv4_url_request r = {.method = "GET", .endpoint = "https://examplebucket.s3.amazonaws.com",
                           .key = "test.txt", .now_s = T_2013, .expires_s = 86400};
    char *url = NULL;
    CHECK(sigv4_presign_url(&AWS, &r, &url) == SIGV4_OK);
    CHECK_STR(url ? url : "",
              "https://examplebucket.s3.amazonaws.com/test.txt"
              "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
              "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
              "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
              "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    free(url);
}

/* "Example: Browser-Based Upload using HTTP POST (Using AWS Signature
 * Version 4)": the published base64 policy (CRLF line ends) and the
 * signature the page states. */
static const char AWS_POLICY[] =
    "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAg"
    "ICB7ImJ1Y2tldCI6ICJzaWd2NGV4YW1wbGVidWNrZXQifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAi"
    "dXNlci91c2VyMS8iXSwNCiAgICB7ImFjbCI6ICJwdWJsaWMtcmVhZCJ9LA0KICAgIHsic3VjY2Vzc19hY3Rpb25f"
    "cmVkaXJlY3QiOiAiaHR0cDovL3NpZ3Y0ZXhhbXBsZWJ1Y2tldC5zMy5hbWF6b25hd3MuY29tL3N1Y2Nlc3NmdWxf"
    "dXBsb2FkLmh0bWwifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRDb250ZW50LVR5cGUiLCAiaW1hZ2UvIl0sDQog"
    "ICAgeyJ4LWFtei1tZXRhLXV1aWQiOiAiMTQzNjUxMjM2NTEyNzQifSwNCiAgICB7IngtYW16LXNlcnZlci1zaWRl"
    "LWVuY3J5cHRpb24iOiAiQUVTMjU2In0sDQogICAgWyJzdGFydHMtd2l0aCIsICIkeC1hbXotbWV0YS10YWciLCAi"
    "Il0sDQoNCiAgICB7IngtYW16LWNyZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMt"
    "ZWFzdC0xL3MzL2F3czRfcmVxdWVzdCJ9LA0KICAgIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEy"
    "NTYifSwNCiAgICB7IngtYW16LWRhdGUiOiAiMjAxNTEyMjlUMDAwMDAwWiIgfQ0KICBdDQp9";
#define AWS_POLICY_SIG "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e"

TEST(sigv4_policy_signature_reproduces_the_aws_post_example)
{
    char sig[SIGV4_SIG_HEX + 1];
    CHECK(sigv4_sign_policy(&AWS, "20151229T000000Z", AWS_POLICY, sig));
    CHECK_STR(sig, AWS_POLICY_SIG);
    CHECK(sigv4_sign_policy(&AWS, "20151229", AWS_POLICY, sig));
    CHECK_STR(sig, AWS_POLICY_SIG);
}

/* The same example as a received form: it passes every check up to the
 * policy's shape, and the verifier refuses it there, since it has no
 * content-length-range (ours always pin the size). */
TEST(sigv4_post_verify_takes_the_aws_example_up_to_its_shape)
{
    sigv4_param f[] = {
        {"key", "user/user1/photo.jpg"},          {"acl", "public-read"},
        {"success_action_redirect", "http://sigv4examplebucket.s3.amazonaws.com/successful_upload.html"},
        {"Content-Type", "image/jpeg"},           {"x-amz-meta-uuid", "14365123651274"},
        {"x-amz-server-side-encryption", "AES256"},
        {"X-Amz-Credential", AK "/20151229/us-east-1/s3/aws4_request"},
        {"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},  {"X-Amz-Date", "20151229T000000Z"},
        {"x-amz-meta-tag", ""},                   {"Policy", AWS_POLICY},
        {"X-Amz-Signature", AWS_POLICY_SIG},
    };
    size_t n = sizeof f / sizeof f[0];
    CHECK(sigv4_post_verify(&AWS, "sigv4examplebucket", f, n, -1, T_2015, NULL) == SIGV4_EPOLICY);
    f[n - 1].value = "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699f";
    CHECK(sigv4_post_verify(&AWS, "sigv4examplebucket", f, n, -1, T_2015, NULL) == SIGV4_ESIGNATURE);
}

TEST(sigv4_uri_encoding_keeps_only_unreserved)
{
    char out[128];
    const char *in = "a b/c~d_e.f-g!*'()+=&%\xc3\xa9";
    CHECK(sigv4_uri_encode(in, strlen(in), true, out, sizeof out) == strlen(out));
    CHECK_STR(out, "a%20b/c~d_e.f-g%21%2A%27%28%29%2B%3D%26%25%C3%A9");
    sigv4_uri_encode(in, strlen(in), false, out, sizeof out);
    CHECK_STR(out, "a%20b%2Fc~d_e.f-g%21%2A%27%28%29%2B%3D%26%25%C3%A9");
    char small[6];
    CHECK(sigv4_uri_encode("a b c", 5, false, small, sizeof small) == 9);  /* needs 9, truncated */
    CHECK_STR(small, "a%20b");
}

TEST(sigv4_amz_dates_are_strict)
{
    char s[SIGV4_AMZ_DATE_LEN + 1];
    int64_t t;
    CHECK(sigv4_amz_date(T_2013, s));
    CHECK_STR(s, "20130524T000000Z");
    CHECK(sigv4_parse_amz_date("20130524T000000Z", &t) && t == T_2013);
    CHECK(sigv4_parse_amz_date("20240229T235959Z", &t));
    const char *bad[] = {"20130230T000000Z", "20230229T000000Z", "20130524T240000Z",
                         "20130524T000060Z", "20130524 000000Z", "20130524T000000",
                         "20130524T000000Z ", "2013052AT000000Z", "", "19691231T235959Z", NULL};
    for (int i = 0; bad[i]; i++) CHECK(!sigv4_parse_amz_date(bad[i], &t));
}

/* ---------------------------------------------------------------- URLs */

static char *pct_decode_path(const char *s, size_t n)
{
    char *o = malloc(n + 1);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n) {
            char h[3] = {s[i + 1], s[i + 2], 0};
            o[j++] = (char)strtol(h, NULL, 16);
            i += 2;
        } else {
            o[j++] = s[i];
        }
    }
    o[j] = '\0';
    return o;
}

/* What a server does with a request for url: the Host header, the decoded
 * path, the decoded query. */
static sigv4_status verify(const sigv4_creds *c, const char *method, const char *url, int64_t now)
{
    const char *host = strstr(url, "://") + 3, *path = strchr(host, '/'), *q = strchr(path, '?');
    char hostbuf[256];
    snprintf(hostbuf, sizeof hostbuf, "%.*s", (int)(path - host), host);
    char *p = pct_decode_path(path, (size_t)(q - path));
    sigv4_query query;
    sigv4_status st = sigv4_query_parse(q + 1, &query);
    if (st == SIGV4_OK) st = sigv4_verify_url(c, method, hostbuf, p, query.param, query.n, now, NULL);
    sigv4_query_free(&query);
    free(p);
    return st;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static char *replace(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    if (!at) return strdup(s);
    char *o = malloc(strlen(s) + strlen(to) + 1);
    sprintf(o, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
    return o;
}

static const sigv4_creds ME = {"AKIDASSETD", "s3cr3t/key+with=odd", NULL, "eu-west-1", NULL};
#define NOW 1767225600   /* 2026-01-01T00:00:00Z */

static char *sample(const sigv4_creds *c)
{
    sigv4_param extra[] = {{"response-content-disposition", "attachment; filename=\"a b.pdf\""}};
    sigv4_url_request r = {.method = "PUT", .endpoint = "http://127.0.0.1:9000",
                           .bucket = "assets", .key = "o/ab c/\xc3\xa9t\xc3\xa9+1.pdf",
                           .now_s = NOW, .expires_s = 60, .params = extra, .nparams = 1};
    char *url = NULL;
    CHECK(sigv4_presign_url(c, &r, &url) == SIGV4_OK);
    return url ? url : strdup("http://x/?");
}

TEST(sigv4_presigned_urls_verify_and_refuse_tampering)
{
    char *url = sample(&ME);
    CHECK(starts_with(url, "http://127.0.0.1:9000/assets/o/ab%20c/%C3%A9t%C3%A9%2B1.pdf?"));
    CHECK(strstr(url, "&response-content-disposition=attachment%3B%20filename%3D%22a%20b.pdf%22&"));
    CHECK(verify(&ME, "PUT", url, NOW) == SIGV4_OK);
    CHECK(verify(&ME, "PUT", url, NOW + 60) == SIGV4_OK);               /* last second */
    CHECK(verify(&ME, "PUT", url, NOW + 61) == SIGV4_EEXPIRED);
    CHECK(verify(&ME, "PUT", url, NOW - SIGV4_MAX_SKEW) == SIGV4_OK);
    CHECK(verify(&ME, "PUT", url, NOW - SIGV4_MAX_SKEW - 1) == SIGV4_ENOTYET);
    CHECK(verify(&ME, "GET", url, NOW) == SIGV4_ESIGNATURE);            /* another method */

    sigv4_creds other = ME;
    other.secret_key = "s3cr3t/key+with=odE";                            /* wrong secret */
    CHECK(verify(&other, "PUT", url, NOW) == SIGV4_ESIGNATURE);
    other = ME;
    other.access_key = "AKIDOTHER";
    CHECK(verify(&other, "PUT", url, NOW) == SIGV4_ECREDENTIAL);
    other = ME;
    other.region = "us-east-1";
    CHECK(verify(&other, "PUT", url, NOW) == SIGV4_ECREDENTIAL);

    /* Every single changed byte after the scheme is refused. */
    size_t len = strlen(url), refused = 0, tried = 0;
    for (size_t i = 7; i < len; i++) {
        char *t = strdup(url);
        t[i] = t[i] == 'A' ? 'B' : (t[i] == '0' ? '1' : 'A');
        if (strchr(t + 7, '/') && strchr(t, '?')) {
            tried++;
            refused += verify(&ME, "PUT", t, NOW) != SIGV4_OK;
        }
        free(t);
    }
    CHECK(tried > 200 && refused == tried);

    const struct { const char *from, *to; sigv4_status want; } edits[] = {
        {"X-Amz-Expires=60", "X-Amz-Expires=3600", SIGV4_ESIGNATURE},
        {"X-Amz-Expires=60", "X-Amz-Expires=060", SIGV4_EMALFORMED},
        {"X-Amz-Expires=60", "X-Amz-Expires=604801", SIGV4_EMALFORMED},
        {"X-Amz-Expires=60", "X-Amz-Expires=0", SIGV4_EMALFORMED},
        {"X-Amz-Date=20260101T000000Z", "X-Amz-Date=20260101T000001Z", SIGV4_ESIGNATURE},
        {"X-Amz-Date=20260101T000000Z", "X-Amz-Date=20260230T000000Z", SIGV4_EMALFORMED},
        {"X-Amz-Date=20260101T000000Z", "X-Amz-Date=20260102T000000Z", SIGV4_ECREDENTIAL},
        {"X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=host%3Brange", SIGV4_EALGORITHM},
        {"AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1", SIGV4_EALGORITHM},
        {"&X-Amz-Signature=", "&x=1&X-Amz-Signature=", SIGV4_ESIGNATURE},    /* unsigned extra */
        {"&X-Amz-Signature=", "&X-Amz-Date=20260101T000000Z&X-Amz-Signature=", SIGV4_EMALFORMED},
        {"&X-Amz-Signature=", "&X-Amz-Security-Token=t&X-Amz-Signature=", SIGV4_ETOKEN},
        {"X-Amz-Signature=", "X-Amz-Signature=A", SIGV4_EMALFORMED},         /* 65 chars */
        {"X-Amz-Signature=", "X-Amz-Sig=", SIGV4_EMALFORMED},                /* missing */
        {"filename%3D", "filename+", SIGV4_EMALFORMED},                      /* literal '+' */
        {"filename%3D", "filename%3", SIGV4_EMALFORMED},
        {"filename%3D", "filename%00", SIGV4_EMALFORMED},
        {"filename%3D", "filename%3d", SIGV4_OK},                            /* same byte */
        {"?X-Amz-Algorithm", "?&X-Amz-Algorithm", SIGV4_EMALFORMED},         /* empty pair */
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        char *t = replace(url, edits[i].from, edits[i].to);
        sigv4_status st = verify(&ME, "PUT", t, NOW);
        if (st != edits[i].want)
            fprintf(stderr, "  edit %zu (%s): %s\n", i, edits[i].to, sigv4_status_str(st));
        CHECK(st == edits[i].want);
        free(t);
    }
    free(url);
}

/* The canonical query is sorted by encoded name, whatever order the caller
 * or the client used. */
TEST(sigv4_query_order_is_canonical)
{
    sigv4_param extra[] = {{"uploadId", "u"}, {"Action", "a b"}, {"partNumber", "2"}};
    sigv4_url_request r = {.method = "PUT", .endpoint = "http://h:9000", .bucket = "b", .key = "k",
                           .now_s = NOW, .expires_s = 60, .params = extra, .nparams = 3};
    char *url = NULL;
    CHECK(sigv4_presign_url(&ME, &r, &url) == SIGV4_OK && url);
    if (!url) return;
    CHECK(starts_with(url, "http://h:9000/b/k?Action=a%20b&X-Amz-Algorithm="));
    CHECK(strstr(url, "&X-Amz-SignedHeaders=host&partNumber=2&uploadId=u&X-Amz-Signature="));
    CHECK(verify(&ME, "PUT", url, NOW) == SIGV4_OK);
    char *moved = replace(url, "Action=a%20b&", "");                   /* Action last instead */
    char *t = replace(moved, "&X-Amz-Signature=", "&Action=a%20b&X-Amz-Signature=");
    CHECK(verify(&ME, "PUT", t, NOW) == SIGV4_OK);
    free(moved);
    free(t);
    /* Reversing the extra parameters signs the same request. */
    sigv4_param rev[] = {extra[2], extra[1], extra[0]};
    r.params = rev;
    char *url2 = NULL;
    CHECK(sigv4_presign_url(&ME, &r, &url2) == SIGV4_OK && url2 && strcmp(url, url2) == 0);
    free(url2);
    free(url);
}

TEST(sigv4_session_tokens_are_signed_and_required)
{
    sigv4_creds tc = ME;
    tc.session_token = "FQoG/ZXIvYXdzE+token==";
    char *url = sample(&tc);
    CHECK(strstr(url, "&X-Amz-Security-Token=FQoG%2FZXIvYXdzE%2Btoken%3D%3D&"));
    CHECK(verify(&tc, "PUT", url, NOW) == SIGV4_OK);
    CHECK(verify(&ME, "PUT", url, NOW) == SIGV4_ETOKEN);               /* not expected */
    sigv4_creds other = tc;
    other.session_token = "another";
    CHECK(verify(&other, "PUT", url, NOW) == SIGV4_ETOKEN);
    free(url);
    url = sample(&ME);
    CHECK(verify(&tc, "PUT", url, NOW) == SIGV4_ETOKEN);               /* missing */
    free(url);
}

/* What a page's CSP must name for the URLs presigned on an endpoint. */
TEST(sigv4_endpoint_origin_is_that_of_the_presigned_urls)
{
    char o[64];
    CHECK(sigv4_endpoint_origin("https://s3.example.com:443/", o, sizeof o) &&
          strcmp(o, "https://s3.example.com") == 0);
    CHECK(sigv4_endpoint_origin("http://127.0.0.1:9000", o, sizeof o) &&
          strcmp(o, "http://127.0.0.1:9000") == 0);
    CHECK(!sigv4_endpoint_origin("https://h/path", o, sizeof o));
    CHECK(!sigv4_endpoint_origin("https://h; script-src *", o, sizeof o));
    CHECK(!sigv4_endpoint_origin("https://a-rather-long-host-name.example.com", o, 16));
}

TEST(sigv4_presign_refuses_bad_arguments)
{
    sigv4_url_request ok = {.method = "GET", .endpoint = "https://s3.example.com:443/",
                            .bucket = "b", .key = "k", .now_s = NOW, .expires_s = 1};
    char *url = NULL;
    CHECK(sigv4_presign_url(&ME, &ok, &url) == SIGV4_OK);
    CHECK(url && starts_with(url, "https://s3.example.com/b/k?"));  /* default port dropped */
    free(url);
    const char *endpoints[] = {"ftp://h", "https://", "https://h/path", "https://u@h",
                               "https://h?x", "h:80", NULL};
    for (int i = 0; endpoints[i]; i++) {
        sigv4_url_request r = ok;
        r.endpoint = endpoints[i];
        CHECK(sigv4_presign_url(&ME, &r, &url) == SIGV4_EINVAL && url == NULL);
    }
    const char *keys[] = {"", ".", "..", "a/./b", "a/../b", "../a", "a/..", "a\nb", NULL};
    for (int i = 0; keys[i]; i++) {
        sigv4_url_request r = ok;
        r.key = keys[i];
        CHECK(sigv4_presign_url(&ME, &r, &url) == SIGV4_EINVAL);
    }
    sigv4_url_request r = ok;
    r.expires_s = 0;
    CHECK(sigv4_presign_url(&ME, &r, &url) == SIGV4_EINVAL);
    r.expires_s = SIGV4_MAX_EXPIRES + 1;
    CHECK(sigv4_presign_url(&ME, &r, &url) == SIGV4_EINVAL);
    r.expires_s = SIGV4_MAX_EXPIRES;
    CHECK(sigv4_presign_url(&ME, &r, &url) == SIGV4_OK);
    free(url);
    sigv4_param amz = {"X-Amz-Expires", "1"};
    r = ok;
    r.params = &amz;
    r.nparams = 1;
    CHECK(sigv4_presign_url(&ME, &r, &url) == SIGV4_EINVAL);
    sigv4_param twice[] = {{"a", "1"}, {"a", "2"}};
    r.params = twice;
    r.nparams = 2;
    CHECK(sigv4_presign_url(&ME, &r, &url) == SIGV4_EINVAL);
    r = ok;
    r.method = "get";
    CHECK(sigv4_presign_url(&ME, &r, &url) == SIGV4_EINVAL);
}

TEST(sigv4_query_parser_is_strict)
{
    sigv4_query q;
    CHECK(sigv4_query_parse("a=1&b=&c&d=%41%2f", &q) == SIGV4_OK && q.n == 4);
    if (q.n == 4) {
        CHECK_STR(q.param[1].value, "");
        CHECK_STR(q.param[2].name, "c");
        CHECK_STR(q.param[2].value, "");
        CHECK_STR(q.param[3].value, "A/");
    }
    sigv4_query_free(&q);
    CHECK(sigv4_query_parse("", &q) == SIGV4_OK && q.n == 0);
    sigv4_query_free(&q);
    const char *bad[] = {"a=1&", "&a=1", "=1", "a=%", "a=%4", "a=%zz", "a=%00", "a+b=1", "a=b+c",
                         "%00=1", NULL};
    for (int i = 0; bad[i]; i++) {
        CHECK(sigv4_query_parse(bad[i], &q) == SIGV4_EMALFORMED);
        sigv4_query_free(&q);
    }
    char many[200] = "";
    for (int i = 0; i <= SIGV4_QUERY_MAX; i++) strcat(many, i ? "&a=1" : "a=1");
    CHECK(sigv4_query_parse(many, &q) == SIGV4_EMALFORMED);
    sigv4_query_free(&q);
}

/* ---------------------------------------------------------------- POST */

static size_t form_params(const sigv4_form *f, sigv4_param *p)
{
    for (size_t i = 0; i < f->n; i++) p[i] = (sigv4_param){f->field[i].name, f->field[i].value};
    return f->n;
}

static const sigv4_post_request UPLOAD = {.bucket = "assets", .key = "o/abc/photo 1.jpg",
                                          .size = 1234, .content_type = "image/jpeg",
                                          .now_s = NOW, .expires_s = 60};

TEST(sigv4_post_policy_pins_key_size_type_and_expiry)
{
    sigv4_form f;
    CHECK(sigv4_post_policy(&ME, &UPLOAD, &f) == SIGV4_OK && f.n == 7);
    const char *order[] = {"key", "Content-Type", "x-amz-algorithm", "x-amz-credential",
                           "x-amz-date", "policy", "x-amz-signature"};
    for (size_t i = 0; i < 7 && i < f.n; i++) CHECK_STR(f.field[i].name, order[i]);
    CHECK_STR(sigv4_form_get(&f, "key"), "o/abc/photo 1.jpg");
    CHECK_STR(sigv4_form_get(&f, "x-amz-credential"), "AKIDASSETD/20260101/eu-west-1/s3/aws4_request");
    CHECK_STR(sigv4_form_get(&f, "x-amz-date"), "20260101T000000Z");
    /* The policy, decoded, is exactly this document. */
    const char *b64 = sigv4_form_get(&f, "policy");
    unsigned char text[2048];
    int n = b64 ? EVP_DecodeBlock(text, (const unsigned char *)b64, (int)strlen(b64)) : -1;
    CHECK(n > 0);
    if (n > 0) {
        while (n > 0 && text[n - 1] == 0) n--;   /* padding decoded as zero bytes */
        text[n] = '\0';
        CHECK_STR((char *)text,
                  "{\"expiration\":\"2026-01-01T00:01:00.000Z\",\"conditions\":["
                  "{\"bucket\":\"assets\"},[\"eq\",\"$key\",\"o/abc/photo 1.jpg\"],"
                  "[\"content-length-range\",1234,1234],"
                  "{\"x-amz-algorithm\":\"AWS4-HMAC-SHA256\"},"
                  "{\"x-amz-credential\":\"AKIDASSETD/20260101/eu-west-1/s3/aws4_request\"},"
                  "{\"x-amz-date\":\"20260101T000000Z\"},"
                  "[\"eq\",\"$Content-Type\",\"image/jpeg\"]]}");
    }
    char sig[SIGV4_SIG_HEX + 1];
    CHECK(b64 && sigv4_sign_policy(&ME, "20260101", b64, sig));
    CHECK_STR(sigv4_form_get(&f, "x-amz-signature"), sig);
    sigv4_form_free(&f);

    sigv4_creds tc = ME;
    tc.session_token = "tok";
    sigv4_post_request r = UPLOAD;
    r.content_type = NULL;
    CHECK(sigv4_post_policy(&tc, &r, &f) == SIGV4_OK && f.n == 7);
    CHECK(!sigv4_form_get(&f, "Content-Type"));
    CHECK_STR(f.n == 7 ? f.field[4].name : "", "x-amz-security-token");
    sigv4_form_free(&f);

    const sigv4_post_request bad[] = {
        {.bucket = "assets", .key = "", .size = 1, .now_s = NOW, .expires_s = 60},
        {.bucket = "assets", .key = "k", .size = -1, .now_s = NOW, .expires_s = 60},
        {.bucket = "assets", .key = "k", .size = 1, .now_s = NOW, .expires_s = 0},
        {.bucket = "assets", .key = "k", .size = 1, .now_s = NOW, .expires_s = SIGV4_MAX_EXPIRES + 1},
        {.bucket = "", .key = "k", .size = 1, .now_s = NOW, .expires_s = 60},
        {.bucket = "assets", .key = "\xff", .size = 1, .now_s = NOW, .expires_s = 60},  /* not UTF-8 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(sigv4_post_policy(&ME, &bad[i], &f) == SIGV4_EINVAL && f.n == 0);
        sigv4_form_free(&f);
    }
}

static sigv4_status post_verify(const sigv4_form *f, const char *field, const char *value,
                                int64_t size, int64_t now)
{
    sigv4_param p[SIGV4_FORM_MAX + 1];
    size_t n = form_params(f, p);
    bool found = false;
    for (size_t i = 0; field && i < n; i++)
        if (strcmp(p[i].name, field) == 0) p[i].value = value, found = true;
    if (field && !found) p[n++] = (sigv4_param){field, value};
    return sigv4_post_verify(&ME, "assets", p, n, size, now, NULL);
}

TEST(sigv4_post_verify_accepts_the_form_and_refuses_changes)
{
    sigv4_form f;
    CHECK(sigv4_post_policy(&ME, &UPLOAD, &f) == SIGV4_OK);
    sigv4_param p[SIGV4_FORM_MAX + 2];
    size_t n = form_params(&f, p);
    sigv4_post_info info;
    CHECK(sigv4_post_verify(&ME, "assets", p, n, 1234, NOW, &info) == SIGV4_OK);
    CHECK_STR(info.key, "o/abc/photo 1.jpg");
    CHECK(info.min_size == 1234 && info.max_size == 1234 && info.expires_at_s == NOW + 60);
    CHECK(sigv4_post_verify(&ME, "assets", p, n, -1, NOW + 60, &info) == SIGV4_OK);
    CHECK(sigv4_post_check_size(&info, 1234) == SIGV4_OK);
    CHECK(sigv4_post_check_size(&info, 1235) == SIGV4_ESIZE);

    CHECK(post_verify(&f, NULL, NULL, 1233, NOW) == SIGV4_ESIZE);
    CHECK(post_verify(&f, NULL, NULL, 1235, NOW) == SIGV4_ESIZE);
    CHECK(post_verify(&f, NULL, NULL, 1234, NOW + 61) == SIGV4_EEXPIRED);
    CHECK(post_verify(&f, NULL, NULL, 1234, NOW - SIGV4_MAX_SKEW - 1) == SIGV4_ENOTYET);
    CHECK(post_verify(&f, "key", "o/abc/photo 2.jpg", 1234, NOW) == SIGV4_ECONDITION);
    CHECK(post_verify(&f, "Content-Type", "text/html", 1234, NOW) == SIGV4_ECONDITION);
    CHECK(post_verify(&f, "acl", "public-read", 1234, NOW) == SIGV4_ECONDITION);  /* not allowed */
    CHECK(post_verify(&f, "x-ignore-me", "1", 1234, NOW) == SIGV4_OK);
    CHECK(post_verify(&f, "file", "x", 1234, NOW) == SIGV4_EMALFORMED);
    CHECK(post_verify(&f, "X-AMZ-DATE", "20260101T000000Z", 1234, NOW) == SIGV4_EMALFORMED);
    CHECK(post_verify(&f, "x-amz-algorithm", "AWS4-HMAC-SHA1", 1234, NOW) == SIGV4_EALGORITHM);
    /* Same day, same signing key: the policy's own x-amz-date condition catches it. */
    CHECK(post_verify(&f, "x-amz-date", "20260101T000001Z", 1234, NOW) == SIGV4_ECONDITION);
    CHECK(post_verify(&f, "x-amz-date", "20260102T000000Z", 1234, NOW) == SIGV4_ECREDENTIAL);
    CHECK(post_verify(&f, "x-amz-security-token", "t", 1234, NOW) == SIGV4_ETOKEN);
    /* Another bucket, another secret. */
    CHECK(sigv4_post_verify(&ME, "other", p, n, 1234, NOW, NULL) == SIGV4_ECONDITION);
    sigv4_creds other = ME;
    other.secret_key = "another";
    CHECK(sigv4_post_verify(&other, "assets", p, n, 1234, NOW, NULL) == SIGV4_ESIGNATURE);
    /* Field names are case-insensitive, as on S3. */
    p[2].name = "X-Amz-Algorithm";
    p[5].name = "Policy";
    CHECK(sigv4_post_verify(&ME, "assets", p, n, 1234, NOW, NULL) == SIGV4_OK);
    /* Every changed byte of the policy or the signature is refused. */
    const char *pol = sigv4_form_get(&f, "policy"), *sig = sigv4_form_get(&f, "x-amz-signature");
    size_t refused = 0, total = strlen(pol) + strlen(sig);
    for (int which = 0; which < 2; which++) {
        const char *orig = which ? sig : pol;
        for (size_t i = 0; i < strlen(orig); i++) {
            char *t = strdup(orig);
            t[i] = t[i] == 'a' ? 'b' : 'a';
            refused += post_verify(&f, which ? "x-amz-signature" : "policy", t, 1234, NOW) != SIGV4_OK;
            free(t);
        }
    }
    CHECK(refused == total);
    sigv4_form_free(&f);
}

/* A policy we signed ourselves but of a shape we never write: refused. */
static sigv4_status verify_policy_text(const char *json)
{
    unsigned char b64[4096];
    EVP_EncodeBlock(b64, (const unsigned char *)json, (int)strlen(json));
    char sig[SIGV4_SIG_HEX + 1];
    sigv4_sign_policy(&ME, "20260101", (const char *)b64, sig);
    sigv4_param p[] = {
        {"key", "k"}, {"x-amz-algorithm", "AWS4-HMAC-SHA256"},
        {"x-amz-credential", "AKIDASSETD/20260101/eu-west-1/s3/aws4_request"},
        {"x-amz-date", "20260101T000000Z"}, {"policy", (const char *)b64}, {"x-amz-signature", sig},
    };
    return sigv4_post_verify(&ME, "assets", p, 6, 5, NOW, NULL);
}

#define CONDS "{\"bucket\":\"assets\"},[\"eq\",\"$key\",\"k\"],{\"x-amz-algorithm\":\"AWS4-HMAC-SHA256\"}," \
              "{\"x-amz-credential\":\"AKIDASSETD/20260101/eu-west-1/s3/aws4_request\"}," \
              "{\"x-amz-date\":\"20260101T000000Z\"}"

TEST(sigv4_post_policy_parser_is_strict)
{
    CHECK(verify_policy_text("{\"expiration\":\"2026-01-01T00:01:00.000Z\",\"conditions\":["
                             CONDS ",[\"content-length-range\",0,10]]}") == SIGV4_OK);
    CHECK(verify_policy_text("{\"expiration\":\"2026-01-01T00:01:00Z\",\"conditions\":["
                             CONDS ",[\"starts-with\",\"$key\",\"\"],[\"content-length-range\",5,5]]}")
          == SIGV4_OK);
    CHECK(verify_policy_text("{\"expiration\":\"2026-01-01T00:01:00Z\",\"conditions\":["
                             CONDS ",[\"content-length-range\",6,10]]}") == SIGV4_ESIZE);
    CHECK(verify_policy_text("{\"expiration\":\"2026-01-01T00:01:00Z\",\"conditions\":["
                             CONDS ",[\"starts-with\",\"$key\",\"j\"],[\"content-length-range\",5,5]]}")
          == SIGV4_ECONDITION);
    const char *bad[] = {
        "not json",
        "[]",
        "{\"expiration\":\"2026-01-01T00:01:00Z\",\"conditions\":[" CONDS "]}",   /* no range */
        "{\"expiration\":\"2026-01-01T00:01:00Z\",\"conditions\":[" CONDS ",[\"content-length-range\",5,4]]}",
        "{\"expiration\":\"2026-01-01T00:01:00Z\",\"conditions\":[" CONDS ",[\"content-length-range\",-1,5]]}",
        "{\"expiration\":\"2026-01-01T00:01:00Z\",\"conditions\":[" CONDS ",[\"content-length-range\",\"0\",\"5\"]]}",
        "{\"expiration\":\"2026-01-01T00:01:00Z\",\"conditions\":[" CONDS ",[\"content-length-range\",0,5.0]]}",
        "{\"expiration\":\"2026-01-01T00:01:00Z\",\"conditions\":[" CONDS ",[\"content-length-range\",0,5],"
        "[\"content-length-range\",0,9]]}",
        "{\"expiration\":\"2026-01-01T00:01:00Z\",\"conditions\":[" CONDS ",[\"content-length-range\",0,5],"
        "[\"ends-with\",\"$key\",\"k\"]]}",
        "{\"expiration\":\"2026-01-01T00:01:00Z\",\"conditions\":[" CONDS ",[\"content-length-range\",0,5],"
        "[\"eq\",\"key\",\"k\"]]}",
        "{\"expiration\":\"2026-01-01T00:01:00Z\",\"conditions\":[" CONDS ",[\"content-length-range\",0,5],"
        "[\"eq\",\"$key\",\"k\",\"x\"]]}",
        "{\"expiration\":\"2026-01-01T00:01:00Z\",\"conditions\":[" CONDS ",[\"content-length-range\",0,5],"
        "{\"a\":\"1\",\"b\":\"2\"}]}",
        "{\"expiration\":\"2026-01-01T00:01:00Z\",\"conditions\":[" CONDS ",[\"content-length-range\",0,5],"
        "{\"a\":1}]}",
        "{\"expiration\":\"2026-01-01T00:01:00Z\",\"conditions\":[" CONDS ",[\"content-length-range\",0,5],7]}",
        "{\"expiration\":\"2026-02-30T00:01:00Z\",\"conditions\":[" CONDS ",[\"content-length-range\",0,5]]}",
        "{\"expiration\":\"2026-01-01 00:01:00Z\",\"conditions\":[" CONDS ",[\"content-length-range\",0,5]]}",
        "{\"expiration\":\"2026-01-01T00:01:00.0Z\",\"conditions\":[" CONDS ",[\"content-length-range\",0,5]]}",
        "{\"expiration\":1767225660,\"conditions\":[" CONDS ",[\"content-length-range\",0,5]]}",
        "{\"expiration\":\"2026-01-01T00:01:00Z\",\"expiration\":\"2027-01-01T00:01:00Z\","
        "\"conditions\":[" CONDS ",[\"content-length-range\",0,5]]}",
        "{\"expiration\":\"2026-01-01T00:01:00Z\",\"conditions\":[" CONDS ",[\"content-length-range\",0,5]],"
        "\"extra\":1}",
        NULL,
    };
    for (int i = 0; bad[i]; i++) {
        sigv4_status st = verify_policy_text(bad[i]);
        if (st != SIGV4_EPOLICY) fprintf(stderr, "  policy %d: %s\n", i, sigv4_status_str(st));
        CHECK(st == SIGV4_EPOLICY);
    }
}
