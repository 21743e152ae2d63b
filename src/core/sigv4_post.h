/* sigv4_post.h — S3 browser-based upload forms (POST policy, Signature
 * Version 4): making them, and checking them the way S3 does.
 *
 * A POST upload is a multipart form whose fields come before the file.
 * The policy is a JSON document, base64-encoded into the "policy" field;
 * the signature is the SigV4 signature of that base64 text (the string to
 * sign) with the signing key of the day in x-amz-date.  The policy we write
 * pins everything an upload could vary:
 *
 *   {"expiration":"2026-01-01T00:01:00.000Z","conditions":[
 *     {"bucket":B}, ["eq","$key",K], ["content-length-range",N,N],
 *     {"x-amz-algorithm":"AWS4-HMAC-SHA256"}, {"x-amz-credential":C},
 *     {"x-amz-date":D}, [{"x-amz-security-token":T}],
 *     [["eq","$Content-Type",CT]]]}
 *
 * (or ["content-length-range",N,M] when the request allows a range)
 * so the client can send exactly one object, of exactly N bytes, under
 * exactly that key, until the expiration.  S3 checks it on S3; the disk
 * store checks it with sigv4_post_verify(), which applies S3's rules
 * (every field but policy, x-amz-signature, file and x-ignore-* must be
 * allowed by a condition, and every condition must hold) to policies of
 * the shapes above and refuses any other shape.
 */
#ifndef ASSETD_SIGV4_POST_H
#define ASSETD_SIGV4_POST_H

#include "core/sigv4.h"

#define SIGV4_FORM_MAX 8            /* fields we emit, at most */
#define SIGV4_POLICY_MAX 16384      /* base64 chars in a policy we accept */
#define SIGV4_CONDITIONS_MAX 32     /* conditions in a policy we accept */

typedef struct sigv4_post_request {
    const char *bucket;
    const char *key;            /* exact key, 1..SIGV4_KEY_MAX bytes of UTF-8 */
    int64_t size;               /* exact byte count, >= 0 */
    int64_t max_size;           /* > size: any count in size..max_size (a client that
                                   declared none); else exactly size */
    const char *content_type;   /* NULL: not pinned, no Content-Type field */
    int64_t now_s;              /* signing time, Unix seconds */
    int64_t expires_s;          /* 1 .. SIGV4_MAX_EXPIRES */
} sigv4_post_request;

typedef struct sigv4_form_field {
    const char *name;           /* static */
    char *value;                /* owned by the form */
} sigv4_form_field;

/* The fields to send, in this order, before the file (which goes last):
 * key, [Content-Type], x-amz-algorithm, x-amz-credential, x-amz-date,
 * [x-amz-security-token], policy, x-amz-signature. */
typedef struct sigv4_form {
    size_t n;
    sigv4_form_field field[SIGV4_FORM_MAX];
} sigv4_form;

/* Fills form (freed with sigv4_form_free, on any result); SIGV4_EINVAL for
 * inputs out of range (including a key or type that is not UTF-8). */
sigv4_status sigv4_post_policy(const sigv4_creds *c, const sigv4_post_request *r, sigv4_form *form);
void sigv4_form_free(sigv4_form *form);
/* The value of a field, or NULL. */
const char *sigv4_form_get(const sigv4_form *form, const char *name);

/* Signs an already base64-encoded policy for the day of amz_date
 * (YYYYMMDD or the full YYYYMMDDTHHMMSSZ); false if memory ran out. */
bool sigv4_sign_policy(const sigv4_creds *c, const char *amz_date, const char *policy_b64,
                       char out[SIGV4_SIG_HEX + 1]);

typedef struct sigv4_post_info {
    char key[SIGV4_KEY_MAX + 1];   /* the form's key, as the policy allowed it */
    int64_t min_size, max_size;    /* content-length-range */
    int64_t expires_at_s;          /* the policy's expiration */
} sigv4_post_info;

/* Checks a received form: fields are every field before the file, decoded
 * (names compared case-insensitively, as S3 does; a duplicate or a "file"
 * field is SIGV4_EMALFORMED), bucket is the one the form was posted to.
 * In order: shape, algorithm, credential and token, signature (constant
 * time), policy (strictly parsed: only the condition shapes above, and a
 * content-length-range is required), time (x-amz-date not more than
 * SIGV4_MAX_SKEW ahead, now <= expiration), conditions, and — if size >= 0
 * — the size.  Pass size -1 while the file has not been received yet and
 * call sigv4_post_check_size() when it has.  info may be NULL; it is
 * filled once the policy is authentic and parsed. */
sigv4_status sigv4_post_verify(const sigv4_creds *c, const char *bucket, const sigv4_param *fields,
                               size_t nfields, int64_t size, int64_t now_s,
                               sigv4_post_info *info);

/* SIGV4_OK if size is inside the verified range, else SIGV4_ESIZE. */
sigv4_status sigv4_post_check_size(const sigv4_post_info *info, int64_t size);

#endif
