/* tus_internal.h — what api/tus.c (HEAD, PATCH, DELETE, OPTIONS, and the
 * write machinery) shares with api/tus_create.c (POST): one request's
 * write, the protocol's checks and replies.  Not for other modules. */
#ifndef ASSETD_TUS_INTERNAL_H
#define ASSETD_TUS_INTERNAL_H

#include "api/app.h"
#include "core/tus.h"

#include <openssl/evp.h>

#define TUS_VERSION "1.0.0"
#define OCTETS "application/offset+octet-stream"

/* A write: PATCH, or a POST with its first bytes (or, for a POST without
 * any, the upload to create).  The request's data (http_req_data), freed
 * with it; a write its client cut off is salvaged from there. */
typedef struct tus_write {
    app *app;
    tus_upload up;            /* the row as the lease found it */
    tus_lease *lease;
    store_append *obj;
    uint64_t received;
    int64_t length;           /* what to record: a deferred length may arrive now */
    EVP_MD_CTX *sum;          /* Upload-Checksum, when sent */
    EVP_MD_CTX *whole;        /* the upload's SHA-256 so far (tus_digest.h); may be NULL */
    uint8_t expect[EVP_MAX_MD_SIZE];
    int expect_len;
    bool creating;            /* a POST: 201 with Location */
    bool failed;              /* a reply refused the body: keep none of it */
    /* a POST without bytes: the upload to create, the parts of a final */
    tus_upload *parts;
    int nparts;
} tus_write;

/* ---------- replies ---------- */

/* A JSON error with Tus-Resumable. */
void tus_error(http_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A store open that failed, from the errno it left: 503 `overloaded` with
 * Retry-After when the process is out of file descriptors, else 507
 * `storage_failed` with message. */
void tus_storage_error(http_req *r, int err, const char *message);
void tus_reply_done_failure(http_req *r, tus_done d);
/* 201 with Location (a POST) or 204, and the upload's headers. */
void tus_reply_written(http_req *r, tus_write *w);

/* ---------- checks: false with the reply ---------- */

bool tus_check_version(http_req *r);   /* Tus-Resumable */
bool tus_is_octets(http_req *r);       /* Content-Type */
bool tus_has_body(http_req *r);        /* not a reply: true if bytes come */
bool tus_parse_checksum(http_req *r, tus_write *w);   /* Upload-Checksum */

/* ---------- the write ---------- */

/* A new write, attached to r; NULL (with a 500) without memory. */
tus_write *tus_write_new(http_req *r);
/* The lease (token, until) is ours: opens the object at w->up.offset. */
bool tus_write_open(http_req *r, tus_write *w, const char *token, int64_t until);
/* A body chunk: checked against the length and the lease, appended. */
bool tus_write_data(http_req *r, const char *data, size_t len);
/* On the pool, once the body ended: verdict, commit, offset, maybe the asset. */
void tus_commit_work(http_req *r);
/* Completes u (offset == length, lease held unless NULL); false with a reply. */
bool tus_finish_upload(http_req *r, db_conn *c, tus_upload *u, tus_lease *lease);

#endif
