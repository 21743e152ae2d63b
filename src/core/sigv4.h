/* sigv4.h — AWS Signature Version 4 for S3 presigned URLs (query-string
 * auth), computed by assetd itself, and checked by it too.
 *
 * Two users: the S3 store hands clients URLs that S3 checks, and the disk
 * store hands out URLs of the same form that assetd checks (it has the
 * same secret), so one client protocol covers both stores.  The POST form
 * side (policy documents) is core/sigv4_post.h; both share the signing
 * key derivation here.
 *
 *   canonical request = METHOD \n /enc(path) \n sorted enc(query) \n
 *                       "host:" HOST \n \n "host" \n "UNSIGNED-PAYLOAD"
 *   string to sign    = "AWS4-HMAC-SHA256" \n YYYYMMDDTHHMMSSZ \n scope \n
 *                       hex(SHA-256(canonical request))
 *   scope             = YYYYMMDD/region/service/aws4_request
 *   signing key       = HMAC(HMAC(HMAC(HMAC("AWS4" secret, day), region),
 *                       service), "aws4_request")
 *   signature         = hex(HMAC-SHA256(signing key, string to sign))
 *
 * Only the host header is signed and the payload is UNSIGNED-PAYLOAD: the
 * client (a browser, curl) sends no other header we could pin, and the
 * size is pinned by the POST policy or by the store's own checks.
 *
 * Encoding: RFC 3986 unreserved bytes (A-Z a-z 0-9 - . _ ~) stay, every
 * other byte becomes %XX (uppercase hex); '/' stays in the path but is
 * encoded in query names and values.  The URL we emit carries the query
 * exactly as it was signed, so what the client sends is what we signed.
 *
 * Untrusted input (a query string, a form, a policy) goes through strict
 * parsers: anything we would never have produced — a duplicate parameter,
 * a '+', a bad escape, a date that is not a date — is refused with a
 * reason code (sigv4_status) before a signature is even computed.
 *
 * No HTTP or database here: callers pass strings and the current time,
 * which also makes every result reproducible in tests.
 */
#ifndef ASSETD_SIGV4_H
#define ASSETD_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIGV4_SIG_HEX 64            /* hex chars in a signature */
#define SIGV4_AMZ_DATE_LEN 16       /* "20130524T000000Z" */
#define SIGV4_MAX_EXPIRES 604800    /* 7 days: S3's limit for presigned URLs */
#define SIGV4_MAX_SKEW 900          /* a signing time this far ahead is refused */
#define SIGV4_KEY_MAX 1024          /* bytes in an S3 object key */
#define SIGV4_QUERY_MAX 32          /* parameters in a query we accept */
#define SIGV4_VALUE_MAX 4096        /* bytes in one query value (session tokens are long) */

/* Reason codes.  Stable: sigv4_status_str() names them for logs and error
 * bodies.  SIGV4_EINVAL is the caller's mistake (bad arguments when
 * signing); the others describe untrusted input being verified. */
typedef enum sigv4_status {
    SIGV4_OK = 0,
    SIGV4_EINVAL,       /* signing inputs out of range (expiry, endpoint, key) */
    SIGV4_ENOMEM,
    SIGV4_EMALFORMED,   /* unparsable, missing or duplicated parameter/field */
    SIGV4_EALGORITHM,   /* not AWS4-HMAC-SHA256, or signs more than host */
    SIGV4_ECREDENTIAL,  /* another access key, region, service or day */
    SIGV4_ETOKEN,       /* session token missing, unexpected or different */
    SIGV4_ESIGNATURE,   /* authentic-looking but the signature differs */
    SIGV4_EEXPIRED,
    SIGV4_ENOTYET,      /* signed more than SIGV4_MAX_SKEW in the future */
    SIGV4_EPOLICY,      /* POST policy: bad base64, JSON or shape */
    SIGV4_ECONDITION,   /* POST form: a field breaks or escapes the policy */
    SIGV4_ESIZE,        /* POST: size outside content-length-range */
} sigv4_status;

const char *sigv4_status_str(sigv4_status s);

/* Borrowed strings; nothing is copied or kept. */
typedef struct sigv4_creds {
    const char *access_key;     /* "AKIAIOSFODNN7EXAMPLE" */
    const char *secret_key;
    const char *session_token;  /* NULL unless temporary credentials */
    const char *region;         /* "us-east-1" */
    const char *service;        /* NULL means "s3" */
} sigv4_creds;

typedef struct sigv4_param {
    const char *name;
    const char *value;          /* NULL is the same as "" */
} sigv4_param;

/* A presigned URL to make.  The path is "/" bucket "/" key, or "/" key when
 * bucket is NULL or "" (virtual-hosted style: the endpoint's host names the
 * bucket; the disk store can also put a fixed route prefix in bucket, '/'
 * allowed).  key is raw (not encoded); keys with "." or ".." segments are
 * refused because clients rewrite them before sending. */
typedef struct sigv4_url_request {
    const char *method;         /* "GET", "PUT", "HEAD" */
    const char *endpoint;       /* "https://s3.eu-west-1.amazonaws.com", "http://127.0.0.1:9000";
                                 * scheme://host[:port], no path; a default port is dropped */
    const char *bucket;         /* NULL or "": virtual-hosted */
    const char *key;
    int64_t now_s;              /* signing time, Unix seconds */
    int64_t expires_s;          /* 1 .. SIGV4_MAX_EXPIRES */
    const sigv4_param *params;  /* extra signed query parameters, raw (e.g. */
    size_t nparams;             /* response-content-disposition); no X-Amz-*, no
                                 * name twice, at most SIGV4_QUERY_MAX - 7 */
} sigv4_url_request;

/* Returns a malloc'd URL (the caller frees it) in *url, or a status:
 * SIGV4_EINVAL for inputs out of range, SIGV4_ENOMEM. */
sigv4_status sigv4_presign_url(const sigv4_creds *c, const sigv4_url_request *r, char **url);
/* The origin ("scheme://host[:port]", no default port) of every URL
 * sigv4_presign_url makes for this endpoint, as a browser names it; false
 * for an endpoint it would refuse, or cap too small. */
bool sigv4_endpoint_origin(const char *endpoint, char *out, size_t cap);

/* A parsed query: strictly percent-decoded pairs that point into buf. */
typedef struct sigv4_query {
    size_t n;
    sigv4_param param[SIGV4_QUERY_MAX];
    char *buf;                  /* owned; sigv4_query_free() */
} sigv4_query;

/* Splits and decodes a raw query string (the part after '?', without any
 * '#').  Strict: %xx in either case is decoded, but a malformed escape,
 * an escaped NUL, a literal '+' (space or plus? we never emit one), an
 * empty name, more than SIGV4_QUERY_MAX pairs or a value over
 * SIGV4_VALUE_MAX is SIGV4_EMALFORMED.  On any
 * result q is safe to free. */
sigv4_status sigv4_query_parse(const char *raw, sigv4_query *q);
void sigv4_query_free(sigv4_query *q);

typedef struct sigv4_url_info {
    int64_t signed_s;           /* X-Amz-Date */
    int64_t expires_at_s;       /* X-Amz-Date + X-Amz-Expires */
} sigv4_url_info;

/* Checks a presigned request as received: method, Host header value,
 * decoded path ("/bucket/key") and every decoded query parameter (all of
 * them: an unsigned extra parameter breaks the signature, as on S3).  In
 * order: shape (SIGV4_EMALFORMED, EALGORITHM), credential scope and token,
 * signature (constant time), then time: valid while
 * X-Amz-Date <= now + SIGV4_MAX_SKEW and now <= X-Amz-Date + X-Amz-Expires
 * (at most SIGV4_MAX_EXPIRES).  info may be NULL. */
sigv4_status sigv4_verify_url(const sigv4_creds *c, const char *method, const char *host,
                              const char *path, const sigv4_param *query, size_t nquery,
                              int64_t now_s, sigv4_url_info *info);

/* ---- shared with sigv4_post.c (and handy in tests) ---- */

/* Writes the SigV4 encoding of in[0..len) into out (cap bytes, NUL
 * included) and returns the full encoded length, as snprintf does: a
 * result >= cap means out was too small (and holds a truncated prefix). */
size_t sigv4_uri_encode(const char *in, size_t len, bool keep_slash, char *out, size_t cap);

/* "YYYYMMDDTHHMMSSZ" for a Unix time; false outside years 1970-9999. */
bool sigv4_amz_date(int64_t t, char out[SIGV4_AMZ_DATE_LEN + 1]);
/* Strict inverse: exactly 16 chars, a real calendar date and time. */
bool sigv4_parse_amz_date(const char *s, int64_t *t);

/* hex(HMAC-SHA256(signing key for day YYYYMMDD, string_to_sign)) into out;
 * false only if memory ran out.  The POST policy signature is this with
 * the base64 policy as the string to sign. */
bool sigv4_sign_string(const sigv4_creds *c, const char *day8, const char *string_to_sign,
                       char out[SIGV4_SIG_HEX + 1]);

/* "access/YYYYMMDD/region/service/aws4_request" into out; false if it does
 * not fit. */
bool sigv4_credential(const sigv4_creds *c, const char *day8, char *out, size_t cap);

/* Checks a received credential against ours and the received X-Amz-Date
 * (same day); SIGV4_OK, SIGV4_EMALFORMED or SIGV4_ECREDENTIAL. */
sigv4_status sigv4_check_credential(const sigv4_creds *c, const char *credential,
                                    const char *amz_date);

/* Constant-time comparison of two signatures as hex strings (of any
 * length: a wrong length is simply unequal). */
bool sigv4_sig_equal(const char *a, const char *b);

#endif
