/* store.h — the blob store interface: where asset bytes live.
 *
 * Two backends implement it: the local disk (fs.c, the embedded default)
 * and S3 (s3.c).  Callers never know which one they have, except for the
 * one question store_local() answers (a blob that is a local file can be
 * sent with sendfile; an S3 blob is proxied or redirected).
 *
 * A blob is written once and never modified: it is created through a
 * store_upload (invisible to every reader until committed: a private
 * temporary file on disk, an uncompleted multipart upload on S3), made
 * durable and visible under its key by store_upload_commit(), and later
 * removed whole.  Keys are asset ids (base64url), or an id, "." and a
 * rendition name ("<id>.thumb"); never client input such as file names
 * (store_key_valid() is checked by every call that takes a key).
 *
 * Every call may block (fsync, network): call from a worker or work-pool
 * thread, never from an HTTP thread — except store_open() on a local store,
 * which is an open() and an fstat().
 *
 * Ownership: store_upload_begin() returns an upload the caller must end
 * with exactly one of commit or abort, both of which free it.
 */
#ifndef ASSETD_STORE_H
#define ASSETD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store;
typedef struct store_upload store_upload;

/* Opens the store rooted at dir (creating blobs/ and tmp/ as needed).
 * NULL with *err set to a static message on failure. */
store *store_fs_open(const char *dir, const char **err);

/* An S3 store: --store s3://BUCKET[/PREFIX], path-style requests to the
 * endpoint (empty: AWS's for the region); credentials from AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN. */
#define STORE_S3_PREFIX_MAX 200
typedef struct store_s3_config {
    char bucket[64];
    char prefix[STORE_S3_PREFIX_MAX + 2];   /* "" or "PREFIX/" */
    const char *endpoint;
    const char *region;
    long stall_timeout_s;   /* 0: s3_client's default (30); see s3_config.low_speed_time_s */
} store_s3_config;
#define S3_STALL_TIMEOUT_MAX 3600
/* Fills bucket and prefix from "s3://BUCKET[/PREFIX]"; false if malformed. */
bool store_s3_parse_url(const char *url, store_s3_config *c);
/* data_dir/tmp holds the decoders' private copies.  Makes no request. */
store *store_s3_open(const store_s3_config *c, const char *data_dir, const char **err);
void store_close(store *s);
/* True when blobs are local files (store_open works). */
bool store_local(const store *s);

/* A key is an asset id, optionally followed by "." and a rendition name of
 * [a-z0-9_] (1..32 chars): nothing that could leave the store's namespace. */
bool store_key_valid(const char *key);

/* Starts a blob under key (NULL if the key is invalid or the store cannot
 * take it).  Nothing is visible under key until the commit. */
store_upload *store_upload_begin(store *s, const char *key);
/* Appends bytes; false on an I/O error (errno set). */
bool store_upload_write(store_upload *u, const void *data, size_t len);
/* Makes the blob durable and visible under its key: after this returns
 * true it survives a crash.  Frees u either way; false with errno set. */
bool store_upload_commit(store_upload *u);
void store_upload_abort(store_upload *u);
/* begin + write + commit of a blob already in memory (renditions). */
bool store_put(store *s, const char *key, const void *data, size_t len);

/* Reads up to cap bytes from the start of a committed blob (content
 * sniffing); *n is how many. */
bool store_read_head(store *s, const char *key, void *buf, size_t cap, size_t *n);
/* A readable descriptor holding the whole blob, for decoders: the blob
 * itself on a local store, a private downloaded copy (already unlinked) on
 * S3.  The caller owns *fd. */
bool store_fetch(store *s, const char *key, int *fd, uint64_t *size);
/* Streams bytes first..last (inclusive) of a blob to sink, in order; a
 * sink that returns false stops the read (which then fails). */
typedef bool (*store_sink)(void *arg, const void *data, size_t len);
bool store_read(store *s, const char *key, uint64_t first, uint64_t last, store_sink sink,
                void *arg);
/* Local stores only: opens a blob for reading; the caller owns *fd. */
bool store_open(store *s, const char *key, int *fd, uint64_t *size);
/* The size of a committed blob: true if it exists; false with *missing set
 * when the store says it does not, false alone when the store failed. */
bool store_stat(store *s, const char *key, uint64_t *size, bool *missing);
/* Removes one blob (a missing one is not an error). */
bool store_remove(store *s, const char *key);
/* Removes the blob of asset `id` and every rendition of it. */
void store_remove_asset(store *s, const char *id);
/* True when the store can take writes (readiness).  May wait on the
 * network (S3: one HEAD of at most 2 s): not on an HTTP thread. */
bool store_check(store *s);

/* ---------- appendable objects (resumable uploads, api/tus.c) ----------
 *
 * A resumable upload's bytes grow over many requests, hours apart, before
 * they become a blob.  They live in a namespace of their own, named by the
 * upload's id (the id of the asset it will become), invisible to every
 * blob reader until store_append_publish() turns them into the blob of
 * that id.  The caller keeps the durable length (its committed offset, in
 * the database) and is the only writer (it holds the upload's lease):
 *
 *   open(id, offset)  -> write ...  -> commit  (the bytes are durable)
 *                                   -> abort   (forget this handle)
 *
 * open() discards whatever lies past offset (bytes of a request that died
 * before its commit), so an object never holds bytes nobody acknowledged;
 * abort() truncates nothing, because after a lost lease those bytes may be
 * the next writer's.  The disk store appends to DATA/tus/<id>.part; the S3
 * store keeps an S3 multipart upload open across writes, with a checkpoint
 * object per commit (s3_append.c).
 *
 * open() and write() are cheap, like store_upload_begin/write (disk: an
 * open(2)/ftruncate(2) and a write(2); S3: a ring to a writer thread, which
 * finds the upload's state itself, so an S3 object that is lost shows as a
 * failed write or commit rather than a NULL open): fine on an HTTP thread.
 * commit (fsync; S3: the parts and a checkpoint), read, publish and remove
 * block: work-pool threads only. */
typedef struct store_append store_append;
/* Opens id's object (creating it empty when offset is 0) for writing at
 * offset, dropping any bytes past it.  NULL on an I/O error, or if the
 * object holds fewer than offset bytes (lost; S3: known at the first write
 * or the commit instead). */
store_append *store_append_open(store *s, const char *id, uint64_t offset);
/* False on an I/O error (errno set). */
bool store_append_write(store_append *a, const void *data, size_t len);
/* Makes every byte written durable; frees a.  False on an I/O error
 * (errno set). */
bool store_append_commit(store_append *a);
/* True when the errno of a failed write or commit says the store is full
 * (ENOSPC, EDQUOT): the client may try again once space returns. */
bool store_error_is_full(int err);
/* True when errno err says the process (EMFILE) or the system (ENFILE) is
 * out of file descriptors: nothing is wrong with the store, and the same
 * call succeeds once descriptors are closed (callers answer 503). */
bool store_error_is_exhausted(int err);
void store_append_abort(store_append *a);
/* Streams the whole of id's committed object, length bytes, to sink.  Only
 * for objects that never become assets (the parts of a concatenation): the
 * S3 store publishes the object to read it, so a blob `id` may be left,
 * which the caller removes with store_remove(id) when it removes the
 * object. */
bool store_append_read(store *s, const char *id, uint64_t length, store_sink sink, void *arg);
/* Makes the first length bytes of id's object (its committed offset) the
 * durable blob `id` (disk: a rename; S3: CompleteMultipartUpload).
 * Idempotent: true when the object is already gone and the blob is there
 * (a completion that crashed before recording the asset runs again). */
bool store_append_publish(store *s, const char *id, uint64_t length);
/* Removes id's object (a missing one is not an error), never the blob `id`:
 * once published, that may be an asset's. */
bool store_append_remove(store *s, const char *id);

/* Start-up recovery: removes every temporary file (or unfinished upload)
 * left by a crash, and every blob for which is_live(key) is false (a crash
 * between the commit and the database commit).  Returns the number of
 * blobs and temporary files removed. */
int store_sweep(store *s, bool (*is_live)(const char *key, void *arg), void *arg);
/* The part of the sweep that may run at any time (gc): removes appendable
 * objects whose id is_live() denies once an hour has passed since they were
 * last written (a writer may still hold them).  Returns how many. */
int store_sweep_appends(store *s, bool (*is_live)(const char *key, void *arg), void *arg);

#endif
