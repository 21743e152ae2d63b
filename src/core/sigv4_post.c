/* sigv4_post.c — see sigv4_post.h.
 *
 * Invariant: sigv4_post_verify() trusts nothing in the policy before the
 * signature over its base64 text has matched, and it still parses the
 * decoded JSON strictly afterwards — an authentic policy of a shape we do
 * not understand is refused, never half-applied.
 */
#include "core/sigv4_post.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ALGORITHM "AWS4-HMAC-SHA256"

/* ------------------------------------------------------------ helpers */

static bool valid_key(const char *k)
{
    size_t n = k ? strlen(k) : 0;
    if (n == 0 || n > SIGV4_KEY_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] < 0x20 || k[i] == 0x7f) return false;
    return true;
}

/* "2015-12-30T12:00:00.000Z" (or without ".000"); false outside 1970-9999. */
static bool format_expiration(int64_t t, char out[32])
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (t < 0 || t > 253402300799 || !gmtime_r(&tt, &tm)) return false;
    return strftime(out, 32, "%Y-%m-%dT%H:%M:%S.000Z", &tm) == 24;
}

static bool parse_expiration(const char *s, int64_t *t)
{
    size_t n = strlen(s);
    if (n != 20 && n != 24) return false;
    if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        s[n - 1] != 'Z')
        return false;
    if (n == 24 && (s[19] != '.' || s[20] < '0' || s[20] > '9' || s[21] < '0' || s[21] > '9' ||
                    s[22] < '0' || s[22] > '9'))
        return false;
    /* Same fields as an x-amz-date: reuse its strict parser. */
    char amz[SIGV4_AMZ_DATE_LEN + 1] = {s[0], s[1], s[2], s[3], s[5], s[6], s[8], s[9], 'T',
                                       s[11], s[12], s[14], s[15], s[17], s[18], 'Z', 0};
    return sigv4_parse_amz_date(amz, t);
}

/* Standard base64 with padding, strictly; returns a malloc'd NUL-terminated
 * buffer and its length, or NULL. */
static char *b64_decode(const char *in, size_t *outlen)
{
    size_t n = strlen(in), pad = 0;
    if (n == 0 || n % 4) return NULL;
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        if (ch == '=') {
            if (i < n - 2) return NULL;
            pad++;
        } else if (pad || !((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                            (ch >= '0' && ch <= '9') || ch == '+' || ch == '/')) {
            return NULL;
        }
    }
    unsigned char *out = malloc(n / 4 * 3 + 1);
    if (!out) return NULL;
    int got = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (got < 0 || (size_t)got < pad) {
        free(out);
        return NULL;
    }
    *outlen = (size_t)got - pad;   /* EVP_DecodeBlock counts the padding as zero bytes */
    out[*outlen] = '\0';
    return (char *)out;
}

static bool is_sig_hex(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) return false;
    return n == SIGV4_SIG_HEX;
}

/* ------------------------------------------------------------ making */

void sigv4_form_free(sigv4_form *form)
{
    for (size_t i = 0; i < form->n; i++) free(form->field[i].value);
    form->n = 0;
}

const char *sigv4_form_get(const sigv4_form *form, const char *name)
{
    for (size_t i = 0; i < form->n; i++)
        if (strcmp(form->field[i].name, name) == 0) return form->field[i].value;
    return NULL;
}

bool sigv4_sign_policy(const sigv4_creds *c, const char *amz_date, const char *policy_b64,
                       char out[SIGV4_SIG_HEX + 1])
{
    char day[9];
    memcpy(day, amz_date, 8);
    day[8] = '\0';
    return sigv4_sign_string(c, day, policy_b64, out);
}

static bool add(sigv4_form *f, const char *name, const char *value)
{
    char *v = strdup(value);
    if (!v) return false;
    f->field[f->n++] = (sigv4_form_field){name, v};
    return true;
}

sigv4_status sigv4_post_policy(const sigv4_creds *c, const sigv4_post_request *r, sigv4_form *form)
{
    form->n = 0;
    char amz[SIGV4_AMZ_DATE_LEN + 1], cred[512], exp[32];
    if (!c->access_key || !c->secret_key || !c->region || !r->bucket || !*r->bucket ||
        !valid_key(r->key) || r->size < 0 || r->expires_s < 1 ||
        r->expires_s > SIGV4_MAX_EXPIRES || !sigv4_amz_date(r->now_s, amz) ||
        !format_expiration(r->now_s + r->expires_s, exp) ||
        !sigv4_credential(c, amz, cred, sizeof cred))
        return SIGV4_EINVAL;
    bool token = c->session_token && *c->session_token;

    json_t *cond = json_array();
    if (!cond) return SIGV4_ENOMEM;
    /* json_pack refuses strings that are not UTF-8: such a key or type is EINVAL. */
    int bad = json_array_append_new(cond, json_pack("{s:s}", "bucket", r->bucket));
    bad |= json_array_append_new(cond, json_pack("[s,s,s]", "eq", "$key", r->key));
    bad |= json_array_append_new(cond, json_pack("[s,I,I]", "content-length-range",
                                                 (json_int_t)r->size,
                                                 (json_int_t)(r->max_size > r->size ? r->max_size
                                                                                    : r->size)));
    bad |= json_array_append_new(cond, json_pack("{s:s}", "x-amz-algorithm", ALGORITHM));
    bad |= json_array_append_new(cond, json_pack("{s:s}", "x-amz-credential", cred));
    bad |= json_array_append_new(cond, json_pack("{s:s}", "x-amz-date", amz));
    if (token)
        bad |= json_array_append_new(cond, json_pack("{s:s}", "x-amz-security-token",
                                                     c->session_token));
    if (r->content_type)
        bad |= json_array_append_new(cond, json_pack("[s,s,s]", "eq", "$Content-Type",
                                                     r->content_type));
    json_t *doc = bad ? NULL : json_pack("{s:s,s:O}", "expiration", exp, "conditions", cond);
    json_decref(cond);
    if (!doc) return SIGV4_EINVAL;
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (!text) return SIGV4_ENOMEM;

    size_t tlen = strlen(text);
    char *b64 = malloc(4 * ((tlen + 2) / 3) + 1);
    char sig[SIGV4_SIG_HEX + 1];
    bool ok = b64 != NULL;
    if (ok) {
        EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)text, (int)tlen);
        ok = sigv4_sign_policy(c, amz, b64, sig);
    }
    free(text);
    ok = ok && add(form, "key", r->key);
    if (ok && r->content_type) ok = add(form, "Content-Type", r->content_type);
    ok = ok && add(form, "x-amz-algorithm", ALGORITHM) && add(form, "x-amz-credential", cred) &&
         add(form, "x-amz-date", amz);
    if (ok && token) ok = add(form, "x-amz-security-token", c->session_token);
    ok = ok && add(form, "policy", b64) && add(form, "x-amz-signature", sig);
    free(b64);
    if (!ok) {
        sigv4_form_free(form);
        return SIGV4_ENOMEM;
    }
    return SIGV4_OK;
}

/* ------------------------------------------------------------ checking */

/* One parsed condition: field (without '$', or "bucket") op value, or the
 * size range. */
typedef struct condition {
    const char *field;
    bool prefix;                 /* starts-with instead of eq */
    const char *value;
} condition;

typedef struct policy {
    int64_t expires_at;
    size_t n;
    condition cond[SIGV4_CONDITIONS_MAX];
    bool has_range;
    int64_t min, max;
} policy;

/* Borrowed strings in p point into doc. */
static bool parse_policy(json_t *doc, policy *p)
{
    json_t *exp = json_object_get(doc, "expiration"), *conds = json_object_get(doc, "conditions");
    if (!json_is_object(doc) || json_object_size(doc) != 2 || !json_is_string(exp) ||
        !json_is_array(conds) || !parse_expiration(json_string_value(exp), &p->expires_at) ||
        json_array_size(conds) > SIGV4_CONDITIONS_MAX)
        return false;
    p->n = 0;
    p->has_range = false;
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c) {
        if (json_is_object(c)) {
            const char *name;
            json_t *v;
            if (json_object_size(c) != 1) return false;
            json_object_foreach(c, name, v) {
                if (!json_is_string(v) || !*name) return false;
                p->cond[p->n++] = (condition){name, false, json_string_value(v)};
            }
            continue;
        }
        if (!json_is_array(c) || json_array_size(c) != 3 || !json_is_string(json_array_get(c, 0)))
            return false;
        const char *op = json_string_value(json_array_get(c, 0));
        json_t *a = json_array_get(c, 1), *b = json_array_get(c, 2);
        if (strcmp(op, "content-length-range") == 0) {
            if (p->has_range || !json_is_integer(a) || !json_is_integer(b)) return false;
            p->min = json_integer_value(a);
            p->max = json_integer_value(b);
            if (p->min < 0 || p->min > p->max) return false;
            p->has_range = true;
            continue;
        }
        bool prefix = strcmp(op, "starts-with") == 0;
        if ((!prefix && strcmp(op, "eq") != 0) || !json_is_string(a) || !json_is_string(b))
            return false;
        const char *f = json_string_value(a);
        if (f[0] != '$' || !f[1]) return false;
        p->cond[p->n++] = (condition){f + 1, prefix, json_string_value(b)};
    }
    return p->has_range;   /* ours always pin the size: refuse a policy that does not */
}

static const char *field_get(const sigv4_param *f, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(f[i].name, name) == 0) return f[i].value ? f[i].value : "";
    return NULL;
}

/* S3's rules: every condition holds, and every field is named by one. */
static bool conditions_hold(const policy *p, const char *bucket, const sigv4_param *f, size_t n)
{
    for (size_t i = 0; i < p->n; i++) {
        const condition *c = &p->cond[i];
        const char *v = strcasecmp(c->field, "bucket") == 0 ? bucket : field_get(f, n, c->field);
        if (!v) return false;
        if (c->prefix ? strncmp(v, c->value, strlen(c->value)) != 0 : strcmp(v, c->value) != 0)
            return false;
    }
    for (size_t j = 0; j < n; j++) {
        const char *name = f[j].name;
        if (strcasecmp(name, "policy") == 0 || strcasecmp(name, "x-amz-signature") == 0 ||
            strncasecmp(name, "x-ignore-", 9) == 0)
            continue;
        bool named = false;
        for (size_t i = 0; i < p->n && !named; i++) named = strcasecmp(p->cond[i].field, name) == 0;
        if (!named) return false;
    }
    return true;
}

sigv4_status sigv4_post_check_size(const sigv4_post_info *info, int64_t size)
{
    return size >= info->min_size && size <= info->max_size ? SIGV4_OK : SIGV4_ESIZE;
}

sigv4_status sigv4_post_verify(const sigv4_creds *c, const char *bucket, const sigv4_param *fields,
                               size_t nfields, int64_t size, int64_t now_s,
                               sigv4_post_info *info)
{
    if (!bucket || !fields || nfields > SIGV4_QUERY_MAX) return SIGV4_EMALFORMED;
    for (size_t i = 0; i < nfields; i++) {
        if (!fields[i].name || !*fields[i].name || strcasecmp(fields[i].name, "file") == 0)
            return SIGV4_EMALFORMED;
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(fields[i].name, fields[j].name) == 0) return SIGV4_EMALFORMED;
    }
    const char *pol = field_get(fields, nfields, "policy"),
               *alg = field_get(fields, nfields, "x-amz-algorithm"),
               *cred = field_get(fields, nfields, "x-amz-credential"),
               *date = field_get(fields, nfields, "x-amz-date"),
               *sig = field_get(fields, nfields, "x-amz-signature"),
               *tok = field_get(fields, nfields, "x-amz-security-token"),
               *key = field_get(fields, nfields, "key");
    int64_t signed_s;
    if (!pol || !alg || !cred || !date || !sig || !key || !*pol ||
        strlen(pol) > SIGV4_POLICY_MAX || !sigv4_parse_amz_date(date, &signed_s) ||
        !is_sig_hex(sig) || !valid_key(key))
        return SIGV4_EMALFORMED;
    if (strcmp(alg, ALGORITHM) != 0) return SIGV4_EALGORITHM;
    sigv4_status st = sigv4_check_credential(c, cred, date);
    if (st != SIGV4_OK) return st;
    bool want_token = c->session_token && *c->session_token;
    if (want_token != (tok != NULL) || (want_token && !sigv4_sig_equal(tok, c->session_token)))
        return SIGV4_ETOKEN;

    char want[SIGV4_SIG_HEX + 1];
    if (!sigv4_sign_policy(c, date, pol, want)) return SIGV4_ENOMEM;
    if (!sigv4_sig_equal(want, sig)) return SIGV4_ESIGNATURE;

    /* Authentic from here on, but still parsed strictly. */
    size_t tlen;
    char *text = b64_decode(pol, &tlen);
    json_t *doc = text ? json_loadb(text, tlen, JSON_REJECT_DUPLICATES, NULL) : NULL;
    free(text);
    policy p;
    st = doc && parse_policy(doc, &p) ? SIGV4_OK : SIGV4_EPOLICY;
    if (st == SIGV4_OK && info) {
        info->min_size = p.min;
        info->max_size = p.max;
        info->expires_at_s = p.expires_at;
        strcpy(info->key, key);   /* valid_key: at most SIGV4_KEY_MAX bytes */
    }
    if (st == SIGV4_OK && signed_s > now_s + SIGV4_MAX_SKEW) st = SIGV4_ENOTYET;
    if (st == SIGV4_OK && now_s > p.expires_at) st = SIGV4_EEXPIRED;
    if (st == SIGV4_OK && !conditions_hold(&p, bucket, fields, nfields)) st = SIGV4_ECONDITION;
    if (st == SIGV4_OK && size >= 0 && (size < p.min || size > p.max)) st = SIGV4_ESIZE;
    json_decref(doc);
    return st;
}
