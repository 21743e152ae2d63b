/* sigv4_post — S3 POST-policy forms (core/sigv4_post.c), as the disk
 * store checks browser uploads.
 *
 * Two halves.  (1) A form we make (fuzzed key, sizes, content type,
 * times, token) verifies for its bucket and any size in its range, and
 * fails for a size outside it, another key, another bucket, a changed
 * policy or signature byte, or after its expiration.  (2) A fuzzed policy
 * document, base64-encoded and properly signed (so the parser behind the
 * signature is reached), with fuzzed extra fields: whatever verifies obeys
 * what the policy says — the key and bucket satisfy its "eq" and
 * "starts-with" conditions, the size lies in its content-length-range, the
 * time is before its expiration — and one changed byte of the policy or
 * the signature is always refused.
 *
 * Input: "KEY\0BUCKET\0SIZE\0MAX\0NOW\0EXPIRES\0TYPE\0FLAGS\0MUTATE-AT\0
 *         POLICY-JSON\0FIELD\0VALUE\0FIELD\0VALUE".
 */
#include "fuzz.h"
#include "core/sigv4_post.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const sigv4_creds creds = {"AKIDFUZZ", "fuzz/secret+key", NULL, "local", NULL};
static const sigv4_creds creds_tok = {"AKIDFUZZ", "fuzz/secret+key", "tok", "local", NULL};

static void check_made(char **f)
{
    uint64_t flags = fuzz_u64(f[7]);
    const sigv4_creds *c = flags & 1 ? &creds_tok : &creds;
    int64_t size = (int64_t)(fuzz_u64(f[2]) % 100000), max = (int64_t)(fuzz_u64(f[3]) % 100000);
    int64_t now = (int64_t)(fuzz_u64(f[4]) % 253402000000u), exp = (int64_t)fuzz_u64(f[5]) % 700000;
    sigv4_post_request r = {.bucket = f[1], .key = f[0], .size = size, .max_size = max,
                            .content_type = flags & 2 ? f[6] : NULL, .now_s = now,
                            .expires_s = exp};
    sigv4_form form;
    if (sigv4_post_policy(c, &r, &form) != SIGV4_OK) {
        sigv4_form_free(&form);
        return;
    }
    sigv4_param fields[SIGV4_FORM_MAX];
    char *copy[SIGV4_FORM_MAX];
    for (size_t i = 0; i < form.n; i++) {
        copy[i] = strdup(form.field[i].value);
        fields[i] = (sigv4_param){form.field[i].name, copy[i]};
    }
    int64_t hi = max > size ? max : size;
    sigv4_post_info info;
    FUZZ_CHECK(sigv4_post_verify(c, f[1], fields, form.n, size, now, &info) == SIGV4_OK);
    FUZZ_CHECK(info.min_size == size && info.max_size == hi && strcmp(info.key, f[0]) == 0 &&
               info.expires_at_s == now + exp);
    FUZZ_CHECK(sigv4_post_verify(c, f[1], fields, form.n, hi, now + exp, NULL) == SIGV4_OK);
    FUZZ_CHECK(sigv4_post_verify(c, f[1], fields, form.n, hi + 1, now, NULL) == SIGV4_ESIZE);
    if (size > 0)
        FUZZ_CHECK(sigv4_post_verify(c, f[1], fields, form.n, size - 1, now, NULL) == SIGV4_ESIZE);
    FUZZ_CHECK(sigv4_post_verify(c, f[1], fields, form.n, -1, now + exp + 1, NULL) ==
               SIGV4_EEXPIRED);
    char other[80];
    snprintf(other, sizeof other, "%.70s-x", f[1]);
    FUZZ_CHECK(sigv4_post_verify(c, other, fields, form.n, -1, now, NULL) == SIGV4_ECONDITION);
    /* One byte changed in the key, the policy or the signature. */
    size_t at = fuzz_u64(f[8]);
    for (size_t i = 0; i < form.n; i++) {
        const char *name = fields[i].name;
        if (strcmp(name, "key") && strcmp(name, "policy") && strcmp(name, "x-amz-signature"))
            continue;
        size_t len = strlen(copy[i]);
        char saved = copy[i][at % len];
        copy[i][at % len] = saved == '0' ? '1' : '0';
        FUZZ_CHECK(sigv4_post_verify(c, f[1], fields, form.n, size, now, NULL) != SIGV4_OK);
        copy[i][at % len] = saved;
    }
    for (size_t i = 0; i < form.n; i++) free(copy[i]);
    sigv4_form_free(&form);
}

/* Does the policy document (parsed again here) allow what verify let in? */
static void check_obeyed(const char *json, const char *bucket, const sigv4_param *f, size_t n,
                         int64_t size, int64_t now, const sigv4_post_info *info)
{
    json_t *doc = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
    FUZZ_CHECK(doc != NULL);
    FUZZ_CHECK(now <= info->expires_at_s);
    FUZZ_CHECK(size < 0 || (size >= info->min_size && size <= info->max_size));
    size_t i;
    json_t *c;
    bool has_range = false;
    json_array_foreach(json_object_get(doc, "conditions"), i, c) {
        const char *field = NULL, *want = NULL;
        bool prefix = false;
        if (json_is_object(c)) {
            const char *k;
            json_t *v;
            json_object_foreach(c, k, v) { field = k; want = json_string_value(v); }
        } else {
            const char *op = json_string_value(json_array_get(c, 0));
            if (strcmp(op, "content-length-range") == 0) {
                has_range = true;
                FUZZ_CHECK(json_integer_value(json_array_get(c, 1)) == info->min_size &&
                           json_integer_value(json_array_get(c, 2)) == info->max_size);
                continue;
            }
            prefix = strcmp(op, "starts-with") == 0;
            field = json_string_value(json_array_get(c, 1)) + 1;   /* after '$' */
            want = json_string_value(json_array_get(c, 2));
        }
        FUZZ_CHECK(field && want);
        const char *got = NULL;
        if (strcasecmp(field, "bucket") == 0) got = bucket;
        for (size_t j = 0; !got && j < n; j++)
            if (strcasecmp(f[j].name, field) == 0) got = f[j].value;
        FUZZ_CHECK(got != NULL);
        FUZZ_CHECK(prefix ? strncmp(got, want, strlen(want)) == 0 : strcmp(got, want) == 0);
    }
    FUZZ_CHECK(has_range);
    json_decref(doc);
}

static void check_policy(char **f)
{
    const sigv4_creds *c = &creds;
    int64_t now = (int64_t)(fuzz_u64(f[4]) % 253402000000u);
    char date[SIGV4_AMZ_DATE_LEN + 1], cred[256], sig[SIGV4_SIG_HEX + 1];
    if (!sigv4_amz_date(now, date) || !sigv4_credential(c, date, cred, sizeof cred)) return;
    size_t jl = strlen(f[9]);
    if (jl > 9000) return;
    char *b64 = malloc(4 * ((jl + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)f[9], (int)jl);
    if (!sigv4_sign_policy(c, date, b64, sig)) abort();
    sigv4_param fields[8] = {
        {"key", f[0]}, {"x-amz-algorithm", "AWS4-HMAC-SHA256"}, {"x-amz-credential", cred},
        {"x-amz-date", date}, {"policy", b64}, {"x-amz-signature", sig},
    };
    size_t n = 6;
    if (f[10][0]) fields[n++] = (sigv4_param){f[10], f[11]};
    if (f[12][0]) fields[n++] = (sigv4_param){f[12], f[13]};
    int64_t size = fuzz_u64(f[2]) % 3 == 0 ? -1 : (int64_t)(fuzz_u64(f[2]) % 100000);
    sigv4_post_info info;
    sigv4_status st = sigv4_post_verify(c, f[1], fields, n, size, now, &info);
    if (st == SIGV4_OK) {
        FUZZ_CHECK(strcmp(info.key, f[0]) == 0);
        check_obeyed(f[9], f[1], fields, n, size, now, &info);
    }
    if (st == SIGV4_OK || st == SIGV4_EPOLICY || st == SIGV4_ECONDITION ||
        st == SIGV4_ESIZE || st == SIGV4_EEXPIRED || st == SIGV4_ENOTYET) {
        /* Authentic: one changed byte of the policy or signature is not. */
        size_t at = fuzz_u64(f[8]);
        char *p = at % 2 ? b64 : sig;
        size_t len = strlen(p);
        if (len) {
            p[at % len] = p[at % len] == 'A' ? 'B' : 'A';
            st = sigv4_post_verify(c, f[1], fields, n, size, now, NULL);
            FUZZ_CHECK(st == SIGV4_ESIGNATURE || st == SIGV4_EMALFORMED);
        }
    }
    free(b64);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *f[14], *buf;
    fuzz_split(data, size, f, 14, &buf);
    check_made(f);
    check_policy(f);
    free(buf);
    return 0;
}
