/* sigv4.c — see sigv4.h.
 *
 * Invariant: presigning and verifying build the canonical request with the
 * same function (canonical_signature) from raw, decoded strings, so a URL
 * we emit verifies by construction and the two can never drift apart; the
 * AWS published examples pin that function to what S3 computes.
 */
#include "core/sigv4.h"
#include "util/encode.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ALGORITHM "AWS4-HMAC-SHA256"
#define DAY_LEN 8

const char *sigv4_status_str(sigv4_status s)
{
    switch (s) {
    case SIGV4_OK: return "ok";
    case SIGV4_EINVAL: return "invalid_argument";
    case SIGV4_ENOMEM: return "out_of_memory";
    case SIGV4_EMALFORMED: return "malformed";
    case SIGV4_EALGORITHM: return "unsupported_algorithm";
    case SIGV4_ECREDENTIAL: return "wrong_credential";
    case SIGV4_ETOKEN: return "wrong_security_token";
    case SIGV4_ESIGNATURE: return "signature_mismatch";
    case SIGV4_EEXPIRED: return "expired";
    case SIGV4_ENOTYET: return "not_yet_valid";
    case SIGV4_EPOLICY: return "malformed_policy";
    case SIGV4_ECONDITION: return "policy_condition_failed";
    case SIGV4_ESIZE: return "size_out_of_range";
    }
    return "unknown";
}

/* ------------------------------------------------------------ strings */

/* A growing string; after an allocation failure it stays failed (oom) and
 * every later append is a no-op, so callers check once at the end. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

/* Room for n more bytes and the NUL; false once out of memory. */
static bool sb_reserve(sbuf *b, size_t n)
{
    if (b->oom) return false;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return false;
        }
        b->p = p;
        b->cap = cap;
    }
    return true;
}

static void sb_putn(sbuf *b, const char *s, size_t n)
{
    if (!sb_reserve(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

static bool unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

size_t sigv4_uri_encode(const char *in, size_t len, bool keep_slash, char *out, size_t cap)
{
    static const char HEX[] = "0123456789ABCDEF";
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)in[i];
        char e[3] = {(char)ch, 0, 0};
        size_t k = 1;
        if (!unreserved(ch) && !(keep_slash && ch == '/')) {
            e[0] = '%';
            e[1] = HEX[ch >> 4];
            e[2] = HEX[ch & 15];
            k = 3;
        }
        for (size_t j = 0; j < k; j++, n++)
            if (n + 1 < cap) out[n] = e[j];
    }
    if (cap) out[n < cap ? n : cap - 1] = '\0';
    return n;
}

static void sb_enc(sbuf *b, const char *s, bool keep_slash)
{
    size_t len = strlen(s), need = sigv4_uri_encode(s, len, keep_slash, NULL, 0);
    if (!sb_reserve(b, need)) return;
    sigv4_uri_encode(s, len, keep_slash, b->p + b->len, b->cap - b->len);
    b->len += need;
}

/* ------------------------------------------------------------ time */

bool sigv4_amz_date(int64_t t, char out[SIGV4_AMZ_DATE_LEN + 1])
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (t < 0 || t > 253402300799 || !gmtime_r(&tt, &tm)) return false;  /* 9999-12-31 */
    return strftime(out, SIGV4_AMZ_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) == SIGV4_AMZ_DATE_LEN;
}

static bool digits(const char *s, size_t n, int *v)
{
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        *v = *v * 10 + (s[i] - '0');
    }
    return true;
}

bool sigv4_parse_amz_date(const char *s, int64_t *t)
{
    int y, mo, d, h, mi, se;
    if (!s || strlen(s) != SIGV4_AMZ_DATE_LEN || s[8] != 'T' || s[15] != 'Z' ||
        !digits(s, 4, &y) || !digits(s + 4, 2, &mo) || !digits(s + 6, 2, &d) ||
        !digits(s + 9, 2, &h) || !digits(s + 11, 2, &mi) || !digits(s + 13, 2, &se))
        return false;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                    .tm_hour = h, .tm_min = mi, .tm_sec = se};
    time_t tt = timegm(&tm);
    /* timegm normalises (Feb 30 -> Mar 2): a date that moved was not real. */
    struct tm back;
    if (y < 1970 || !gmtime_r(&tt, &back) || back.tm_year != y - 1900 ||
        back.tm_mon != mo - 1 || back.tm_mday != d || back.tm_hour != h ||
        back.tm_min != mi || back.tm_sec != se)
        return false;
    *t = (int64_t)tt;
    return true;
}

/* ------------------------------------------------------------ signing */

static void hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &n);
}

static const char *service_of(const sigv4_creds *c) { return c->service ? c->service : "s3"; }

/* The signing key (four chained HMACs from the secret) changes once a day
 * per credential, and every request signed that day by that credential
 * uses the same one: each thread keeps the last it derived.  Those four
 * HMACs were over half of what checking a signed link cost.
 * Invariant: a cached key is used only for the exact secret, day, region
 * and service it was derived from (all compared in full; a secret or
 * scope too long for the cache is derived each time, as before). */
#define KEY_CACHE_SECRET 128
#define KEY_CACHE_SCOPE 64
typedef struct signing_key_cache {
    bool valid;
    char secret[KEY_CACHE_SECRET + 1], day[DAY_LEN + 1];
    char region[KEY_CACHE_SCOPE + 1], service[KEY_CACHE_SCOPE + 1];
    unsigned char key[32];
} signing_key_cache;
static _Thread_local signing_key_cache key_cache;

static bool derive_signing_key(const sigv4_creds *c, const char *day8, unsigned char k[32])
{
    size_t slen = strlen(c->secret_key);
    char k0[KEY_CACHE_SECRET + 5];
    char *p = slen <= KEY_CACHE_SECRET ? k0 : malloc(slen + 5);
    if (!p) return false;
    memcpy(p, "AWS4", 4);
    memcpy(p + 4, c->secret_key, slen + 1);
    hmac(p, slen + 4, day8, k);
    OPENSSL_cleanse(p, slen + 4);
    if (p != k0) free(p);
    hmac(k, 32, c->region, k);
    hmac(k, 32, service_of(c), k);
    hmac(k, 32, "aws4_request", k);
    return true;
}

static bool signing_key(const sigv4_creds *c, const char *day8, unsigned char k[32])
{
    signing_key_cache *kc = &key_cache;
    const char *service = service_of(c);
    size_t slen = strlen(c->secret_key), rlen = strlen(c->region), vlen = strlen(service);
    bool cacheable = slen <= KEY_CACHE_SECRET && rlen <= KEY_CACHE_SCOPE &&
                     vlen <= KEY_CACHE_SCOPE && strlen(day8) == DAY_LEN;
    if (cacheable && kc->valid && strcmp(kc->day, day8) == 0 && strcmp(kc->region, c->region) == 0 &&
        strcmp(kc->service, service) == 0 && strlen(kc->secret) == slen &&
        CRYPTO_memcmp(kc->secret, c->secret_key, slen) == 0) {
        memcpy(k, kc->key, 32);
        return true;
    }
    if (!derive_signing_key(c, day8, k)) return false;
    if (!cacheable) return true;
    memcpy(kc->secret, c->secret_key, slen + 1);
    memcpy(kc->day, day8, DAY_LEN + 1);
    memcpy(kc->region, c->region, rlen + 1);
    memcpy(kc->service, service, vlen + 1);
    memcpy(kc->key, k, 32);
    kc->valid = true;
    return true;
}

bool sigv4_sign_string(const sigv4_creds *c, const char *day8, const char *string_to_sign,
                       char out[SIGV4_SIG_HEX + 1])
{
    unsigned char k[32], sig[32];
    if (!signing_key(c, day8, k)) return false;
    hmac(k, 32, string_to_sign, sig);
    OPENSSL_cleanse(k, sizeof k);
    hex_encode(sig, 32, out);
    return true;
}

bool sigv4_credential(const sigv4_creds *c, const char *day8, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%.8s/%s/%s/aws4_request", c->access_key, day8, c->region,
                     service_of(c));
    return n > 0 && (size_t)n < cap;
}

bool sigv4_sig_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    /* Lengths are not secret (a signature is always 64 hex chars). */
    return la == lb && CRYPTO_memcmp(a, b, la) == 0;
}

typedef struct enc_pair {
    char *name, *value;   /* encoded, owned */
} enc_pair;

static int pair_cmp(const void *a, const void *b)
{
    const enc_pair *x = a, *y = b;
    int r = strcmp(x->name, y->name);
    return r ? r : strcmp(x->value, y->value);
}

static char *enc_dup(const char *s)
{
    size_t n = sigv4_uri_encode(s, strlen(s), false, NULL, 0);
    char *o = malloc(n + 1);
    if (o) sigv4_uri_encode(s, strlen(s), false, o, n + 1);
    return o;
}

/* The canonical query (sorted, encoded) of params, skipping skip (NULL: none)
 * into *out.  false on allocation failure. */
static bool canonical_query(const sigv4_param *p, size_t n, const char *skip, sbuf *out)
{
    enc_pair *e = calloc(n ? n : 1, sizeof *e);
    size_t m = 0;
    bool ok = e != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        if (skip && strcmp(p[i].name, skip) == 0) continue;
        e[m].name = enc_dup(p[i].name);
        e[m].value = enc_dup(p[i].value ? p[i].value : "");
        ok = e[m].name && e[m].value;
        m++;
    }
    if (ok) {
        qsort(e, m, sizeof *e, pair_cmp);
        for (size_t i = 0; i < m; i++) {
            if (i) sb_putn(out, "&", 1);
            sb_puts(out, e[i].name);
            sb_putn(out, "=", 1);
            sb_puts(out, e[i].value);
        }
        ok = !out->oom;
    }
    for (size_t i = 0; e && i < m; i++) {
        free(e[i].name);
        free(e[i].value);
    }
    free(e);
    return ok;
}

/* Signs a host-only, UNSIGNED-PAYLOAD request: path decoded, params raw
 * (the signature parameter skipped); cq receives the canonical query. */
static bool canonical_signature(const sigv4_creds *c, const char *method, const char *host,
                                const char *path, const sigv4_param *p, size_t n,
                                const char *amz_date, sbuf *cq, char sig[SIGV4_SIG_HEX + 1])
{
    if (!canonical_query(p, n, "X-Amz-Signature", cq)) return false;
    sbuf req = {0};
    sb_puts(&req, method);
    sb_putn(&req, "\n", 1);
    sb_enc(&req, path, true);
    sb_putn(&req, "\n", 1);
    sb_puts(&req, cq->p ? cq->p : "");
    sb_puts(&req, "\nhost:");
    sb_puts(&req, host);
    sb_puts(&req, "\n\nhost\nUNSIGNED-PAYLOAD");
    if (req.oom) {
        free(req.p);
        return false;
    }
    unsigned char h[32];
    char hh[65], day[DAY_LEN + 1], scope[256], sts[512];
    SHA256((const unsigned char *)req.p, req.len, h);
    free(req.p);
    hex_encode(h, 32, hh);
    memcpy(day, amz_date, DAY_LEN);
    day[DAY_LEN] = '\0';
    int k = snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", day, c->region, service_of(c));
    if (k < 0 || k >= (int)sizeof scope) return false;
    k = snprintf(sts, sizeof sts, ALGORITHM "\n%s\n%s\n%s", amz_date, scope, hh);
    if (k < 0 || k >= (int)sizeof sts) return false;
    return sigv4_sign_string(c, day, sts, sig);
}

/* ------------------------------------------------------------ presign */

/* Splits "scheme://host[:port][/]" into the URL prefix and the Host value,
 * both without a default port. */
static bool parse_endpoint(const char *ep, char *base, size_t bcap, char *host, size_t hcap)
{
    const char *scheme = NULL, *rest;
    if (strncmp(ep, "https://", 8) == 0) scheme = "https", rest = ep + 8;
    else if (strncmp(ep, "http://", 7) == 0) scheme = "http", rest = ep + 7;
    else return false;
    size_t n = strlen(rest);
    if (n && rest[n - 1] == '/') n--;
    if (n == 0 || n >= hcap) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = rest[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '-' || ch == ':' || ch == '[' || ch == ']'))
            return false;   /* no path, query, userinfo or anything to escape */
    }
    memcpy(host, rest, n);
    host[n] = '\0';
    /* Clients leave a default port out of Host; so must the signed value. */
    const char *dflt = strcmp(scheme, "https") == 0 ? ":443" : ":80";
    size_t dl = strlen(dflt);
    if (n > dl && strcmp(host + n - dl, dflt) == 0 && host[n - dl - 1] != ':') host[n - dl] = '\0';
    int k = snprintf(base, bcap, "%s://%s", scheme, host);
    return k > 0 && (size_t)k < bcap;
}

bool sigv4_endpoint_origin(const char *endpoint, char *out, size_t cap)
{
    char host[280];
    return endpoint && parse_endpoint(endpoint, out, cap, host, sizeof host);
}

/* Path parts we emit must reach the server unchanged: no empty key, no
 * control bytes, no "." or ".." segments (clients resolve those). */
static bool valid_path_part(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SIGV4_KEY_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return false;
    for (const char *seg = s; seg; ) {
        const char *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
        seg = end ? end + 1 : NULL;
    }
    return true;
}

static bool valid_method(const char *m)
{
    if (!m || !*m || strlen(m) > 16) return false;
    for (; *m; m++)
        if (*m < 'A' || *m > 'Z') return false;
    return true;
}

sigv4_status sigv4_presign_url(const sigv4_creds *c, const sigv4_url_request *r, char **url)
{
    *url = NULL;
    char base[300], host[280], amz[SIGV4_AMZ_DATE_LEN + 1], cred[512], exp[16];
    bool has_bucket = r->bucket && *r->bucket;
    if (!c->access_key || !c->secret_key || !c->region || !valid_method(r->method) ||
        !r->endpoint || !parse_endpoint(r->endpoint, base, sizeof base, host, sizeof host) ||
        !r->key || !valid_path_part(r->key) || (has_bucket && !valid_path_part(r->bucket)) ||
        r->expires_s < 1 || r->expires_s > SIGV4_MAX_EXPIRES || !sigv4_amz_date(r->now_s, amz) ||
        !sigv4_credential(c, amz, cred, sizeof cred) || r->nparams > SIGV4_QUERY_MAX - 7)
        return SIGV4_EINVAL;
    for (size_t i = 0; i < r->nparams; i++) {
        if (!r->params[i].name || !*r->params[i].name ||
            strncasecmp(r->params[i].name, "x-amz-", 6) == 0)
            return SIGV4_EINVAL;
        for (size_t j = 0; j < i; j++)   /* sigv4_verify_url refuses duplicates */
            if (strcmp(r->params[i].name, r->params[j].name) == 0) return SIGV4_EINVAL;
    }
    snprintf(exp, sizeof exp, "%" PRId64, r->expires_s);

    sigv4_param p[SIGV4_QUERY_MAX];
    size_t n = 0;
    p[n++] = (sigv4_param){"X-Amz-Algorithm", ALGORITHM};
    p[n++] = (sigv4_param){"X-Amz-Credential", cred};
    p[n++] = (sigv4_param){"X-Amz-Date", amz};
    p[n++] = (sigv4_param){"X-Amz-Expires", exp};
    if (c->session_token && *c->session_token)
        p[n++] = (sigv4_param){"X-Amz-Security-Token", c->session_token};
    p[n++] = (sigv4_param){"X-Amz-SignedHeaders", "host"};
    for (size_t i = 0; i < r->nparams; i++) p[n++] = r->params[i];

    sbuf path = {0}, cq = {0}, out = {0};
    sb_putn(&path, "/", 1);
    if (has_bucket) {
        sb_puts(&path, r->bucket);
        sb_putn(&path, "/", 1);
    }
    sb_puts(&path, r->key);
    char sig[SIGV4_SIG_HEX + 1];
    bool ok = !path.oom && canonical_signature(c, r->method, host, path.p, p, n, amz, &cq, sig);
    if (ok) {
        sb_puts(&out, base);
        sb_enc(&out, path.p, true);
        sb_putn(&out, "?", 1);
        sb_puts(&out, cq.p);
        sb_puts(&out, "&X-Amz-Signature=");
        sb_puts(&out, sig);
        ok = !out.oom;
    }
    free(path.p);
    free(cq.p);
    if (!ok) {
        free(out.p);
        return SIGV4_ENOMEM;
    }
    *url = out.p;
    return SIGV4_OK;
}

/* ------------------------------------------------------------ queries */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Decodes s[0..n) in place into dst (dst may equal s); false if malformed. */
static bool pct_decode(const char *s, size_t n, char *dst, size_t *outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') return false;
        if (s[i] != '%') {
            dst[o++] = s[i];
            continue;
        }
        if (i + 2 >= n) return false;
        int a = hexval(s[i + 1]), b = hexval(s[i + 2]);
        if (a < 0 || b < 0 || (a == 0 && b == 0)) return false;
        dst[o++] = (char)(a << 4 | b);
        i += 2;
    }
    dst[o] = '\0';
    *outlen = o;
    return true;
}

void sigv4_query_free(sigv4_query *q)
{
    free(q->buf);
    q->buf = NULL;
    q->n = 0;
}

sigv4_status sigv4_query_parse(const char *raw, sigv4_query *q)
{
    q->n = 0;
    q->buf = NULL;
    if (!raw) return SIGV4_EMALFORMED;
    size_t len = strlen(raw);
    if (len > (size_t)SIGV4_QUERY_MAX * (SIGV4_VALUE_MAX + 64)) return SIGV4_EMALFORMED;
    /* Each pair becomes "name\0value\0": at most len + 2 per pair. */
    q->buf = malloc(len + 2 * SIGV4_QUERY_MAX + 2);
    if (!q->buf) return SIGV4_ENOMEM;
    if (len == 0) return SIGV4_OK;
    char *o = q->buf;
    const char *s = raw;
    for (;;) {
        const char *amp = strchr(s, '&');
        size_t plen = amp ? (size_t)(amp - s) : strlen(s);
        const char *eq = memchr(s, '=', plen);
        size_t nlen = eq ? (size_t)(eq - s) : plen, vlen = eq ? plen - nlen - 1 : 0, dn, dv;
        if (q->n == SIGV4_QUERY_MAX || nlen == 0 || vlen > 3 * SIGV4_VALUE_MAX) goto bad;
        char *name = o;
        if (!pct_decode(s, nlen, name, &dn) || dn == 0) goto bad;
        char *value = name + dn + 1;
        if (!pct_decode(eq ? eq + 1 : "", vlen, value, &dv) || dv > SIGV4_VALUE_MAX) goto bad;
        o = value + dv + 1;
        q->param[q->n++] = (sigv4_param){name, value};
        if (!amp) break;
        s = amp + 1;
    }
    return SIGV4_OK;
bad:
    sigv4_query_free(q);
    return SIGV4_EMALFORMED;
}

/* ------------------------------------------------------------ verify */

sigv4_status sigv4_check_credential(const sigv4_creds *c, const char *credential,
                                    const char *amz_date)
{
    char buf[512];
    const char *part[6];
    size_t n = 0;
    if (!credential || strlen(credential) >= sizeof buf) return SIGV4_EMALFORMED;
    strcpy(buf, credential);
    for (char *s = buf, *slash; n < 6; s = slash + 1) {
        part[n++] = s;
        if (!(slash = strchr(s, '/'))) break;
        *slash = '\0';
    }
    if (n != 5 || strcmp(part[4], "aws4_request") != 0 || strlen(part[1]) != DAY_LEN)
        return SIGV4_EMALFORMED;
    if (strcmp(part[0], c->access_key) != 0 || strncmp(part[1], amz_date, DAY_LEN) != 0 ||
        strcmp(part[2], c->region) != 0 || strcmp(part[3], service_of(c)) != 0)
        return SIGV4_ECREDENTIAL;
    return SIGV4_OK;
}

static bool parse_expires(const char *s, int64_t *v)
{
    size_t n = strlen(s);
    if (n == 0 || n > 6 || s[0] == '0') return false;
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        *v = *v * 10 + (s[i] - '0');
    }
    return *v <= SIGV4_MAX_EXPIRES;
}

static bool is_sig_hex(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) return false;
    return n == SIGV4_SIG_HEX;
}

sigv4_status sigv4_verify_url(const sigv4_creds *c, const char *method, const char *host,
                              const char *path, const sigv4_param *query, size_t nquery,
                              int64_t now_s, sigv4_url_info *info)
{
    static const char *const NAMES[] = {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date",
                                        "X-Amz-Expires", "X-Amz-SignedHeaders",
                                        "X-Amz-Signature", "X-Amz-Security-Token"};
    enum { ALG, CRED, DATE, EXP, SH, SIG, TOK, NNAMES };
    const char *v[NNAMES] = {0};
    if (!valid_method(method) || !host || !*host || !path || path[0] != '/' ||
        nquery > SIGV4_QUERY_MAX)
        return SIGV4_EMALFORMED;
    for (size_t i = 0; i < nquery; i++) {
        if (!query[i].name || !*query[i].name) return SIGV4_EMALFORMED;
        for (size_t j = 0; j < i; j++)
            if (strcmp(query[i].name, query[j].name) == 0) return SIGV4_EMALFORMED;
        for (int k = 0; k < NNAMES; k++)
            if (strcmp(query[i].name, NAMES[k]) == 0) v[k] = query[i].value ? query[i].value : "";
    }
    for (int k = 0; k < TOK; k++)
        if (!v[k]) return SIGV4_EMALFORMED;
    int64_t signed_s, expires;
    if (!sigv4_parse_amz_date(v[DATE], &signed_s) || !parse_expires(v[EXP], &expires) ||
        !is_sig_hex(v[SIG]))
        return SIGV4_EMALFORMED;
    if (strcmp(v[ALG], ALGORITHM) != 0 || strcmp(v[SH], "host") != 0) return SIGV4_EALGORITHM;
    sigv4_status st = sigv4_check_credential(c, v[CRED], v[DATE]);
    if (st != SIGV4_OK) return st;
    bool want_token = c->session_token && *c->session_token;
    if (want_token != (v[TOK] != NULL) || (want_token && !sigv4_sig_equal(v[TOK], c->session_token)))
        return SIGV4_ETOKEN;

    sbuf cq = {0};
    char sig[SIGV4_SIG_HEX + 1];
    bool ok = canonical_signature(c, method, host, path, query, nquery, v[DATE], &cq, sig);
    free(cq.p);
    if (!ok) return SIGV4_ENOMEM;
    if (!sigv4_sig_equal(sig, v[SIG])) return SIGV4_ESIGNATURE;
    /* Authentic from here on: the times are ours. */
    if (info) *info = (sigv4_url_info){signed_s, signed_s + expires};
    if (signed_s > now_s + SIGV4_MAX_SKEW) return SIGV4_ENOTYET;
    if (now_s > signed_s + expires) return SIGV4_EEXPIRED;
    return SIGV4_OK;
}
