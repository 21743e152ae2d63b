#include "test.h"
#include "core/apikey.h"
#include "util/encode.h"

TEST(b64url_roundtrip)
{
    uint8_t in[40], out[40];
    for (int i = 0; i < 40; i++) in[i] = (uint8_t)(i * 37 + 11);
    for (size_t len = 0; len <= sizeof in; len++) {
        char text[64];
        b64url_encode(in, len, text);
        CHECK(strlen(text) == (len * 4 + 2) / 3);
        CHECK(strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
              strlen(text));
        CHECK(b64url_decode(text, out, sizeof out) == (int)len && memcmp(in, out, len) == 0);
    }
}

TEST(b64url_rejects)
{
    uint8_t out[8];
    CHECK(b64url_decode("abc=", out, sizeof out) == -1);    /* padding */
    CHECK(b64url_decode("ab+/", out, sizeof out) == -1);    /* standard alphabet */
    CHECK(b64url_decode("a", out, sizeof out) == -1);       /* impossible length */
    CHECK(b64url_decode("AB", out, sizeof out) == -1);      /* non-zero leftover bits */
    CHECK(b64url_decode("AAAAAAAAAAAAAAAA", out, 8) == -1); /* too long for cap */
}

TEST(ids_are_random_and_valid)
{
    char a[ID_LEN + 1], b[ID_LEN + 1];
    CHECK(id_generate(a) && id_generate(b));
    CHECK(strlen(a) == ID_LEN && id_is_valid(a) && id_is_valid(b));
    CHECK(strcmp(a, b) != 0);
    CHECK(!id_is_valid("../../../../etc/passwd"));
    CHECK(!id_is_valid("short"));
    CHECK(!id_is_valid("aaaaaaaaaaaaaaaaaaaaa/"));
}

TEST(cursor_roundtrip)
{
    int64_t seqs[] = {1, 2, 255, 256, 1234567890123LL, INT64_MAX};
    for (size_t i = 0; i < sizeof seqs / sizeof *seqs; i++) {
        char c[CURSOR_MAX + 1];
        int64_t back = 0;
        cursor_encode(seqs[i], c);
        CHECK(cursor_decode(c, &back) && back == seqs[i]);
    }
    int64_t v;
    CHECK(!cursor_decode("", &v));
    CHECK(!cursor_decode("garbage!!!!", &v));
    CHECK(!cursor_decode("AAAAAAAAAAA", &v));         /* zero */
    CHECK(!cursor_decode("gAAAAAAAAAA", &v));         /* negative */
    CHECK(!cursor_decode("AAAAAAAAAAAA", &v));        /* wrong length */
}

TEST(apikey_tokens_and_hashes)
{
    char token[APIKEY_TOKEN_LEN + 1], id[APIKEY_ID_LEN + 1], h1[65], h2[65];
    CHECK(apikey_generate(token, id));
    CHECK(strlen(token) == APIKEY_TOKEN_LEN && strncmp(token, "ak_", 3) == 0);
    CHECK(strlen(id) == APIKEY_ID_LEN && strncmp(id, "key_", 4) == 0);
    CHECK(apikey_token_well_formed(token));
    apikey_hash(token, h1);
    apikey_hash(token, h2);
    CHECK_STR(h1, h2);
    CHECK(strlen(h1) == 64 && strstr(h1, token + 3) == NULL);
    /* Known answer: SHA-256("abc"). */
    apikey_hash("abc", h1);
    CHECK_STR(h1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(!apikey_token_well_formed("ak_short"));
    CHECK(!apikey_token_well_formed("xx_n3Uca4uDTH9TPwz2vWaEjhBxPdSm6ms1DehUmu1Fm4k"));
}
