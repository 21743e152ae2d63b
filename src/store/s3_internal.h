/* s3_internal.h — what the S3 store's files share (store/ internal):
 * s3.c (blobs) and s3_append.c (resumable uploads' appendable objects). */
#ifndef ASSETD_STORE_S3_INTERNAL_H
#define ASSETD_STORE_S3_INTERNAL_H

#include "store/backend.h"
#include "store/s3_client.h"

#include <stdatomic.h>

typedef struct s3_store {
    store base;
    s3_client *client;
    char prefix[STORE_S3_PREFIX_MAX + 2];   /* "" or "p/" */
    char scratch[1024];                      /* where decoders' copies live */
    _Atomic int writer_slots;                /* concurrent uploads with a thread */
} s3_store;

/* Uploads (and appends) with their own writer thread at once; past this,
 * they are refused (507) rather than make HTTP threads wait on S3. */
#define UPLOAD_THREADS_MAX 256

/* The longest object key the store makes. */
#define S3_OBJECT_KEY_MAX (STORE_S3_PREFIX_MAX + 96)

/* PREFIX + key into out: false if it does not fit. */
bool object_key(const s3_store *s, const char *key, char *out, size_t cap);
void log_s3_error(const char *what, const char *key, const s3_error *err);

/* s3_append.c: the appendable-object entries of the backend table, and
 * the sweep of what no upload names. */
store_append *s3_append_open(store *s, const char *id, uint64_t offset);
bool s3_append_write(store_append *a, const void *data, size_t len);
bool s3_append_commit(store_append *a);
void s3_append_abort(store_append *a);
bool s3_append_read(store *s, const char *id, uint64_t length, store_sink sink, void *arg);
bool s3_append_publish(store *s, const char *id, uint64_t length);
bool s3_append_remove(store *s, const char *id);
/* Removes the objects of every upload whose id is_live() denies, once its
 * newest object is older than margin_s; returns how many uploads. */
int s3_append_sweep(s3_store *s, bool (*is_live)(const char *key, void *arg), void *arg,
                    long margin_s);

#endif
