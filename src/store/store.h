/* store.h — the blob store interface: where asset bytes live.
 *
 * Local disk (fs.c) is the embedded default; S3 will implement the same
 * interface.  A blob is written once and never modified: it is created
 * through a store_upload (a private temporary file that nobody else can
 * see), made durable and visible under its key by store_upload_commit(),
 * and later removed whole.  Keys are asset ids (base64url), or an id, "."
 * and a rendition name ("<id>.thumb"); never client input such as file
 * names.
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
void store_close(store *s);

store_upload *store_upload_begin(store *s);
/* Appends bytes; false on an I/O error (errno set). */
bool store_upload_write(store_upload *u, const void *data, size_t len);
/* A read-only view of the upload once every byte written so far is in the
 * file (waits for a writer thread to drain), for content sniffing; -1 if a
 * write failed.  The descriptor stays owned by the upload. */
int store_upload_fd(store_upload *u);
/* fsync the data, rename it to its key, fsync the directory: after this
 * returns true the blob survives a crash.  Frees u either way. */
bool store_upload_commit(store_upload *u, const char *key);
void store_upload_abort(store_upload *u);

/* Opens a blob for reading; the caller owns *fd. */
bool store_open(store *s, const char *key, int *fd, uint64_t *size);
bool store_remove(store *s, const char *key);
/* Removes the blob of asset `id` and every rendition of it. */
void store_remove_asset(store *s, const char *id);
/* True when the store can take writes (readiness). */
bool store_check(store *s);

/* Start-up recovery: removes every temporary file left by a crash, and every
 * blob for which is_live(key) is false (a crash between the rename and the
 * database commit).  Returns the number of files removed. */
int store_sweep(store *s, bool (*is_live)(const char *key, void *arg), void *arg);

#endif
