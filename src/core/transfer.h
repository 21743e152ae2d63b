/* transfer.h — where a client sends and fetches bytes without an API key:
 * the URLs and forms of signed direct transfers, for either store.
 *
 * One client protocol covers both stores: S3's presigned URLs and POST
 * policies (core/sigv4.h).  With the S3 store they point at S3, signed
 * with the AWS credentials, and S3 checks them.  With the disk store they
 * point at assetd's own store routes (/v1/store/KEY, POST /v1/store),
 * signed with a key derived from DATA/secret, and assetd checks them
 * itself (api/store_routes.c) — so clients never need to know which store
 * is in use.
 *
 * A transfer_signer is built once at start-up and read-only afterwards.
 */
#ifndef ASSETD_TRANSFER_H
#define ASSETD_TRANSFER_H

#include "core/sigv4.h"
#include "core/sigv4_post.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

/* The disk store's routes: a path prefix, and the "bucket" its forms name. */
#define TRANSFER_DISK_BUCKET "v1/store"

typedef struct transfer_signer {
    bool to_s3;                 /* URLs point at S3; else at assetd */
    char access_key[128], secret_key[128], session_token[2048], region[64];
    char endpoint[512];         /* S3's; the disk store's comes per request */
    char bucket[64];            /* S3 bucket, or TRANSFER_DISK_BUCKET */
    char prefix[STORE_S3_PREFIX_MAX + 2];   /* prepended to keys on S3 */
} transfer_signer;

/* S3: the bucket, prefix and endpoint of the store, credentials from the
 * environment (as the S3 client reads them).  False if they are missing. */
bool transfer_signer_s3(transfer_signer *t, const store_s3_config *cfg);
/* Disk: a signing secret derived from the server's secret (never the
 * secret itself, which also signs event tokens). */
void transfer_signer_disk(transfer_signer *t, const uint8_t *secret, size_t len);
void transfer_creds(const transfer_signer *t, sigv4_creds *out);

/* base_url: how clients reach assetd ("http://host:port"), used by the
 * disk store; ignored on S3.  Every URL is malloc'd: the caller frees. */
sigv4_status transfer_put_url(const transfer_signer *t, const char *base_url, const char *key,
                              int64_t now_s, int64_t expires_s, char **url);
/* disposition: a Content-Disposition value the download must carry, or
 * NULL. */
sigv4_status transfer_get_url(const transfer_signer *t, const char *base_url, const char *key,
                              const char *disposition, int64_t now_s, int64_t expires_s,
                              char **url);
/* A POST form pinned to key and min_size..max_size bytes (equal: exactly
 * that many); *url is where to post. */
sigv4_status transfer_post_form(const transfer_signer *t, const char *base_url, const char *key,
                                uint64_t min_size, uint64_t max_size, int64_t now_s,
                                int64_t expires_s, char **url, sigv4_form *form);

#endif
