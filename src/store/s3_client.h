/* s3_client.h — a blocking S3 REST client (path-style, SigV4 by libcurl).
 *
 * The lowest layer of the S3 store: objects in one bucket of any
 * S3-compatible service, addressed as ENDPOINT/BUCKET/KEY.  Every call
 * blocks until S3 has answered (it is made from worker and pool threads,
 * never from an HTTP thread's event loop) and is retried with exponential
 * backoff and full jitter on connection errors and 500/502/503/504
 * (SlowDown is a 503), within a bounded number of attempts and a bounded
 * total time; a 4xx is never retried.  A failure fills an s3_error with the
 * HTTP status and S3's own <Code>/<Message>, which the caller turns into
 * its `storage_failed` error.
 *
 * Requests are signed by libcurl (CURLOPT_AWS_SIGV4).  libcurl 7.88, the
 * version Debian 12 ships, signs S3 requests correctly only when the caller
 * (1) sends x-amz-content-sha256 itself, (2) gives the query string already
 * in canonical order with "name=" for valueless names, (3) encodes the path
 * itself, (4) names provider, region and service ("aws:amz:REGION:s3")
 * rather than letting curl guess them from the host name, and (5) puts no
 * header-removal entries ("Name:") in the header list, since 7.88 signs
 * them as empty headers it never sends.  s3_client.c does all five.
 *
 * Thread-safety: an s3_client may be used by any number of threads at
 * once.  An s3_multipart belongs to one thread at a time (the threads it
 * starts for its parts are its own, and gone when finish() or abort()
 * returns).
 *
 * Ownership: s3_client_new() copies everything it is given; the caller
 * frees the client with s3_client_free() after every call on it returned.
 * Strings a call returns through a char ** are the caller's to free().
 */
#ifndef ASSETD_S3_CLIENT_H
#define ASSETD_S3_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

typedef struct s3_client s3_client;
typedef struct s3_multipart s3_multipart;

#define S3_MIN_PART_SIZE ((size_t)5 << 20)   /* S3's minimum for all parts but the last */
#define S3_DEFAULT_PART_SIZE ((size_t)8 << 20)
#define S3_ETAG_MAX 130                       /* an ETag as S3 sends it, quotes included */

typedef struct s3_config {
    const char *endpoint;      /* "http://127.0.0.1:9000", "https://s3.eu-west-1.amazonaws.com" */
    const char *region;        /* NULL: "us-east-1" */
    const char *bucket;
    /* NULL: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN
     * from the environment (read once, by s3_client_new). */
    const char *access_key;
    const char *secret_key;
    const char *session_token; /* optional */
    /* Zero fields take the defaults in brackets. */
    int max_attempts;          /* [5] tries per call, the first included */
    long retry_base_ms;        /* [100] first backoff; doubles per retry */
    long retry_cap_ms;         /* [5000] largest single backoff */
    long retry_budget_ms;      /* [30000] no retry starts after this much time */
    long connect_timeout_ms;   /* [10000] */
    long low_speed_time_s;     /* [30] an attempt slower than 1 KiB/s this long fails (and
                                * is retried): how long a stalled S3 holds a call */
    size_t part_size;          /* [8 MiB] s3_multipart part size, >= S3_MIN_PART_SIZE */
    int parts_in_flight;       /* [3] s3_multipart parts uploading at once, 1..16 (1: in
                                * the appending thread, one at a time) */
    int list_page_size;        /* [1000] keys per ListObjectsV2 page (tests use fewer) */
} s3_config;

/* Why a call failed.  status is the HTTP status (0: no response);
 * code is S3's <Code> ("NoSuchKey", "SignatureDoesNotMatch", ...) or, with
 * no S3 answer, a name of ours ("ConnectFailed", "Timeout", "Aborted",
 * "BadResponse", "OutOfMemory", "ReadFailed"); message is S3's <Message>
 * or libcurl's error text. */
typedef struct s3_error {
    long status;
    int curl_code;             /* CURLcode of the last attempt, 0 if none */
    int attempts;              /* requests made, retries included */
    char code[64];
    char message[256];
} s3_error;

/* What S3 says about an object (HEAD, or the headers of a GET). */
typedef struct s3_object_info {
    uint64_t size;             /* the whole object's size, even for a range */
    char etag[S3_ETAG_MAX];
    char content_type[128];
    time_t last_modified;      /* 0 if S3 sent none */
} s3_object_info;

/* Reads up to cap bytes of a body at offset into buf: returns the count
 * (> 0), or -1 on failure.  Positional, so a retried request can read the
 * same bytes again. */
typedef ssize_t (*s3_read_fn)(void *arg, uint64_t offset, void *buf, size_t cap);
/* Takes the next len bytes of a body; false stops the transfer (the call
 * then fails with code "Aborted" and is not retried). */
typedef bool (*s3_write_fn)(void *arg, const void *data, size_t len);
/* One listed object (modified: its LastModified, 0 if S3 sent none); false
 * stops the listing (the call still succeeds). */
typedef bool (*s3_list_fn)(void *arg, const char *key, uint64_t size, time_t modified);

/* Call from one thread before any others use libcurl (it runs
 * curl_global_init).  NULL, with *err filled, on a bad configuration or
 * missing credentials.  Makes no request. */
s3_client *s3_client_new(const s3_config *cfg, s3_error *err);
void s3_client_free(s3_client *c);
size_t s3_client_part_size(const s3_client *c);
/* A one-line "status code: message" of err for logs and API errors. */
const char *s3_error_text(const s3_error *err, char *buf, size_t cap);
/* True when err says the key (or bucket) does not exist. */
bool s3_error_is_not_found(const s3_error *err);

/* Creates the bucket; an existing bucket of ours counts as success. */
bool s3_create_bucket(s3_client *c, s3_error *err);

/* PUT of len bytes from memory, signed with their SHA-256.  etag (may be
 * NULL) receives the new object's ETag. */
bool s3_put(s3_client *c, const char *key, const void *data, size_t len,
            const char *content_type, char etag[S3_ETAG_MAX], s3_error *err);
/* PUT of len bytes produced by read (UNSIGNED-PAYLOAD: nothing is read
 * twice to hash it). */
bool s3_put_stream(s3_client *c, const char *key, uint64_t len, s3_read_fn read, void *arg,
                   const char *content_type, char etag[S3_ETAG_MAX], s3_error *err);
/* s3_put_stream() of the first len bytes of fd (read with pread). */
bool s3_put_fd(s3_client *c, const char *key, int fd, uint64_t len,
               const char *content_type, char etag[S3_ETAG_MAX], s3_error *err);

bool s3_head(s3_client *c, const char *key, s3_object_info *info, s3_error *err);
/* s3_head() as one attempt of at most timeout_ms, connect included, never
 * retried: for a caller that must answer soon whatever S3 does (a stalled
 * S3 holds an s3_head() for the low-speed time, 30 s by default, per attempt). */
bool s3_head_probe(s3_client *c, const char *key, long timeout_ms, s3_error *err);

/* GET of bytes first..last (inclusive) of key, or the whole object when
 * has_range is false; last may be UINT64_MAX for "to the end".  The body
 * goes to write in pieces; info (may be NULL) gets the response headers
 * before the first piece.  A transfer cut after some bytes is resumed from
 * where it stopped (If-Match on the first ETag), so write never sees a byte
 * twice.  An unsatisfiable range fails with status 416. */
bool s3_get(s3_client *c, const char *key, bool has_range, uint64_t first, uint64_t last,
            s3_write_fn write, void *arg, s3_object_info *info, s3_error *err);
/* s3_get() into fd (written with write(2), all of it). */
bool s3_get_fd(s3_client *c, const char *key, bool has_range, uint64_t first, uint64_t last,
               int fd, s3_object_info *info, s3_error *err);

/* DELETE; a key that is not there counts as deleted (as S3 says). */
bool s3_delete(s3_client *c, const char *key, s3_error *err);
/* Every key starting with prefix, in S3's (byte) order, ListObjectsV2 page
 * after page. */
bool s3_list(s3_client *c, const char *prefix, s3_list_fn fn, void *arg, s3_error *err);
/* Deletes every object whose key starts with prefix (an asset's blob and
 * its renditions); *deleted (may be NULL) counts them.  A non-empty prefix
 * is required. */
bool s3_delete_prefix(s3_client *c, const char *prefix, size_t *deleted, s3_error *err);

/* ---- multipart upload, one call per S3 operation (s3_multipart.c) ---- */

typedef struct s3_part {
    int number;                /* 1..10000 */
    uint64_t size;             /* its bytes (s3_multipart fills it; complete ignores it) */
    char etag[S3_ETAG_MAX];
} s3_part;

/* POST ?uploads=: *upload_id is the caller's to free(). */
bool s3_mpu_create(s3_client *c, const char *key, const char *content_type,
                   char **upload_id, s3_error *err);
bool s3_mpu_upload_part(s3_client *c, const char *key, const char *upload_id, int number,
                        const void *data, size_t len, char etag[S3_ETAG_MAX], s3_error *err);
bool s3_mpu_complete(s3_client *c, const char *key, const char *upload_id,
                     const s3_part *parts, int nparts, s3_error *err);
bool s3_mpu_abort(s3_client *c, const char *key, const char *upload_id, s3_error *err);

/* ---- a stream of bytes into one object ----
 *
 * Takes the bytes through append() in chunks of any size into part
 * buffers of s3_client_part_size(), at most parts_in_flight (N) of them:
 * each time one fills, the part is uploaded on a thread of the
 * s3_multipart's own (the multipart upload is created with the first one)
 * while append() fills the next buffer; append() blocks only while N parts
 * are uploading.  So memory stays at N parts at most (24 MiB at the
 * defaults) whatever the object's size.  finish() uploads what is left,
 * waits for every part and completes; an object smaller than one part is
 * sent as a single PUT instead.  A failed part fails the stream: its error
 * is returned by the next append() or finish().  After a failed append()
 * only abort() (or finish(), which then fails and aborts) is allowed.
 * finish() and abort() free m; abort() waits for the parts in flight, then
 * aborts the S3 upload, so no part is left behind (best effort: a failure
 * is logged). */
s3_multipart *s3_multipart_begin(s3_client *c, const char *key, const char *content_type);
bool s3_multipart_append(s3_multipart *m, const void *data, size_t len, s3_error *err);
bool s3_multipart_finish(s3_multipart *m, char etag[S3_ETAG_MAX], s3_error *err);
void s3_multipart_abort(s3_multipart *m);
uint64_t s3_multipart_size(const s3_multipart *m);   /* bytes appended so far */

/* ---- a stream over many sessions (resumable uploads, s3_append.c) ----
 *
 * An upload whose bytes come over hours stops between sessions with its
 * S3 upload left open: checkpoint() sends every whole part and waits for
 * them, then gives the parts sent (ETags included) and the tail (the bytes
 * of a part not yet whole); the caller keeps both durably and release()s m
 * (the S3 upload stays).  A later session resume()s from what was kept:
 * the tail becomes the first bytes of part nparts + 1.  complete() ends it
 * like finish() but, on failure, leaves the S3 upload for another try
 * instead of aborting it (a resumable upload's parts are hours of a
 * client's work).  Pointers from checkpoint() last until m's next call.
 * resume() needs upload_id and at most 9,999 parts; NULL on bad arguments
 * or out of memory. */
s3_multipart *s3_multipart_resume(s3_client *c, const char *key, const char *upload_id,
                                  const s3_part *parts, int nparts, const void *tail,
                                  size_t tail_len);
bool s3_multipart_checkpoint(s3_multipart *m, const s3_part **parts, int *nparts,
                             const void **tail, size_t *tail_len, s3_error *err);
void s3_multipart_release(s3_multipart *m);
bool s3_multipart_complete(s3_multipart *m, s3_error *err);

#endif
