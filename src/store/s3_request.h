/* s3_request.h — the request engine behind s3_client.h, shared by
 * s3_client.c (which implements it) and s3_multipart.c.  Not for callers
 * outside src/store/s3_*.c, except the unit tests of its pure helpers.
 *
 * One s3_req describes one S3 operation; s3_perform() makes it, attempt
 * after attempt, on a pooled curl handle, and returns once S3 answered with
 * a 2xx or the retry policy gave up.
 */
#ifndef ASSETD_S3_REQUEST_H
#define ASSETD_S3_REQUEST_H

#include "store/s3_client.h"

#include <curl/curl.h>
#include <pthread.h>

#define S3_POOL_MAX 16                      /* idle handles kept */
#define S3_MAX_PARTS_IN_FLIGHT 16           /* parts_in_flight's ceiling: memory, threads */
#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* The client (s3_client.c).  Immutable after s3_client_new() but for the
 * handle pool. */
struct s3_client {
    char *endpoint, *region, *bucket, *access_key, *secret_key, *session_token;
    char sigv4[128];
    int max_attempts;
    long retry_base_ms, retry_cap_ms, retry_budget_ms, connect_timeout_ms, low_speed_time_s;
    size_t part_size;
    int parts_in_flight;                    /* 1..S3_MAX_PARTS_IN_FLIGHT */
    int list_page_size;
    pthread_mutex_t lock;                   /* guards idle[] and nidle */
    CURL *idle[S3_POOL_MAX];
    int nidle;
};

/* A handle for one request: an idle one (with its live connections) or a
 * new one.  Give it back with s3_pool_put(), which resets its options. */
CURL *s3_pool_get(s3_client *c);
void s3_pool_put(s3_client *c, CURL *h);

/* A growable byte buffer; oom sticks once an allocation failed. */
typedef struct s3_buf {
    char *p;
    size_t len, cap;
    bool oom;
} s3_buf;

void s3_buf_add(s3_buf *b, const void *data, size_t len);
void s3_buf_adds(s3_buf *b, const char *s);
void s3_buf_free(s3_buf *b);
/* Appends s percent-encoded as SigV4 wants: every byte but A-Z a-z 0-9
 * - _ . ~ (and '/' when keep_slash) becomes %XX, upper-case hex. */
void s3_buf_add_encoded(s3_buf *b, const char *s, bool keep_slash);

/* The canonical query string of n name/value pairs (kv[2i], kv[2i+1]; a
 * NULL value is the valueless "name="): each encoded, sorted by name then
 * value.  malloc'd; NULL when out of memory. */
char *s3_query(int n, const char *const *kv);

typedef struct s3_req {
    const char *method;          /* "GET", "HEAD", "PUT", "POST", "DELETE" */
    const char *key;             /* NULL: the bucket itself */
    const char *query;           /* from s3_query(), or NULL */
    const char *content_type;    /* NULL: none sent */
    const char *header;          /* one more "Name: value" line, or NULL */
    /* The request body: from memory (signed with its SHA-256), or from
     * read (UNSIGNED-PAYLOAD), or none. */
    const void *body;
    size_t body_len;
    s3_read_fn read;
    void *read_arg;
    uint64_t read_len;
    bool has_range;
    uint64_t first, last;        /* last == UINT64_MAX: to the end */
    /* A 2xx body goes to sink, or else into out (capped at 16 MiB). */
    s3_write_fn sink;
    void *sink_arg;
    s3_buf out;
    s3_object_info *info;        /* response headers, may be NULL */
    bool error_in_200;           /* a 200 whose body is an <Error> failed */
    /* > 0: a probe, one attempt of at most this long, never retried (a
     * caller that must answer soon: the readiness check). */
    long probe_ms;
    long status;                 /* the final HTTP status, 0 if none */
} s3_req;

/* Makes the request with retries (s3_request.c).  True on a 2xx; else err is filled.
 * r->out is the caller's to free (s3_buf_free) either way. */
bool s3_perform(s3_client *c, s3_req *r, s3_error *err);

/* The "Name: value" lines s3_perform() hands libcurl for r, given the
 * payload hash; exposed so that a unit test can check them. */
struct curl_slist *s3_headers(const s3_client *c, const s3_req *r, const char *payload_hash,
                              const char *if_match);
/* The CURLOPT_AWS_SIGV4 string of c. */
const char *s3_sigv4_param(const s3_client *c);
/* The URL of r against c (malloc'd, NULL when out of memory). */
char *s3_url(const s3_client *c, const s3_req *r);

/* The text of the first <tag>...</tag> in [p, end), entities decoded,
 * into out; false if absent or longer than cap - 1. */
bool s3_xml_text(const char *p, const char *end, const char *tag, char *out, size_t cap);
/* The raw content of the first <tag>...</tag> in [p, end): its start,
 * with *len and *after (just past the closing tag) set; NULL if absent. */
const char *s3_xml_find(const char *p, const char *end, const char *tag, size_t *len,
                        const char **after);
/* Writes s into b with & < > " ' escaped. */
void s3_xml_escape(s3_buf *b, const char *s);

void s3_error_set(s3_error *err, long status, const char *code, const char *message);

/* Keys collected by s3_list (s3_keys_add is an s3_list_fn; a failed copy
 * sets oom and stops the listing), for callers that act on keys only once
 * the listing is whole.  s3_keys_free frees the keys, not l. */
typedef struct s3_keys {
    char **keys;
    size_t n, cap;
    bool oom;
} s3_keys;
bool s3_keys_add(void *arg, const char *key, uint64_t size, time_t modified);
void s3_keys_free(s3_keys *l);

#endif
