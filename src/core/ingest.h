/* ingest.h — turning a stream of bytes into a durable asset.
 *
 * An ingest is one upload in progress: bytes are appended as they arrive
 * (never buffered whole), hashed with SHA-256 on the way, and counted
 * against the size limit.  ingest_finish() then runs the durability
 * protocol:
 *
 *     commit the blob (store_upload_commit)  ->  sniff its first bytes
 *       ->  INSERT the row
 *
 * and only then reports success, so a row never exists without its bytes.
 * If the insert fails the blob is removed again; if the process dies in
 * between, the start-up sweep removes it.
 *
 * ingest_finish() blocks (fsync, libmagic, a database write): call it from a
 * work-pool thread, never from an HTTP thread.
 */
#ifndef ASSETD_INGEST_H
#define ASSETD_INGEST_H

#include "core/asset.h"
#include "db/db.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How much of a file libmagic may read.  Its own default (7 MiB in 5.44)
 * leaves that much heap behind per sniff; every format we classify is
 * recognisable in its first megabyte. */
#define SNIFF_BYTES_MAX ((size_t)1 << 20)

/* Attempts a processing job gets before it is dead. */
#define INGEST_JOB_ATTEMPTS 3

typedef struct ingest ingest;
typedef struct sniffer sniffer;

typedef enum {
    INGEST_OK = 0,
    INGEST_TOO_LARGE,   /* the byte count passed max_size */
    INGEST_IO_ERROR,    /* the store could not take the bytes */
    INGEST_NO_SPACE,    /* ... because it is full (ENOSPC, EDQUOT): nothing was kept */
    INGEST_NO_FDS,      /* ... because the process is out of file descriptors (EMFILE,
                         * ENFILE): nothing was kept, the same upload works later */
    INGEST_DB_ERROR,
    INGEST_REFUSED,     /* claim->extra said no */
} ingest_result;

/* What the client said about the file: its name and declared type (either
 * may be ""), both untrusted.  The stored type and kind always come from
 * the bytes; the claim only decides one thing: a file that claims to be an
 * image (an image extension or an image/ type) but is not one is recorded
 * as failed, `unsupported_format`, instead of quietly becoming `other`, so
 * a client waiting for thumbnails gets an answer; one that claims to be a
 * video (extension or video/ type) likewise fails with `not_a_video`. */
typedef db_status (*ingest_extra_fn)(db_conn *c, const asset *a, void *arg);

typedef struct ingest_claim {
    const char *filename;
    const char *content_type;
    /* The image profile the upload named, in its stored form
     * (asset_profile_parse), or NULL / "" for the default.  Naming one
     * claims an image: other bytes fail as unsupported_format. */
    const char *profile;
    /* Optional: more rows to commit with the asset (a slideshow), called
     * inside the insert's transaction once the asset is known.  DB_NOT_FOUND
     * refuses the upload (INGEST_REFUSED: nothing is kept). */
    ingest_extra_fn extra;
    void *extra_arg;
} ingest_claim;

/* NULL if the store cannot create a temporary file.  The caller owns the
 * ingest and ends it with ingest_finish() or ingest_abort(). */
ingest *ingest_begin(store *s, uint64_t max_size);
ingest_result ingest_write(ingest *in, const void *data, size_t len);
uint64_t ingest_size(const ingest *in);
/* Makes the asset durable and fills *out.  Frees the ingest either way. */
ingest_result ingest_finish(ingest *in, sniffer *sn, db_conn *c, const char *owner,
                            const ingest_claim *claim, asset *out);
void ingest_abort(ingest *in);
/* The hex SHA-256 of a committed blob of `size` bytes, read through the
 * store (bounded memory; blocks): what both kinds of direct upload check
 * and record before their asset exists. */
bool ingest_blob_sha256(store *s, const char *key, uint64_t size, char out[65]);
/* The second half of ingest_finish, for bytes that reached the store by
 * another way (a signed direct upload): out->id (the blob's key), size and
 * sha256 are set; sniffs the blob, classifies it, and inserts the row, its
 * job and claim->extra's rows in one transaction.  The blob is left alone
 * on failure. */
ingest_result ingest_record(sniffer *sn, store *s, db_conn *c, const char *owner,
                            const ingest_claim *claim, asset *out);
/* Whether a store key (a blob, a rendition "<id>.<name>", an appendable
 * object's id) belongs to something the database names: an asset, a
 * pending signed upload, a tus upload.  The is_live of store_sweep and
 * store_sweep_appends, with a db_conn as arg.  A database error counts as
 * live: deleting data we cannot prove unreferenced is the one mistake a
 * sweep must never make. */
bool ingest_key_is_live(const char *key, void *conn);

/* Content sniffing (libmagic).  One sniffer serves every thread: libmagic
 * handles are not thread-safe, so calls are serialised by a mutex (a sniff
 * reads at most 1 MiB and takes well under a millisecond), and the magic
 * database is loaded once.  sniffer_new() returns NULL if it is missing. */
sniffer *sniffer_new(void);
void sniffer_free(sniffer *sn);
/* Writes the MIME type of the bytes (a file's first SNIFF_BYTES_MAX at
 * most) into out. */
void sniffer_mime_buffer(sniffer *sn, const void *data, size_t len, char *out, size_t cap);
/* Sniffs a committed blob of size bytes from its first SNIFF_BYTES_MAX
 * bytes (an empty one without reading it); false if the store cannot read
 * it. */
bool ingest_sniff(sniffer *sn, store *s, const char *key, uint64_t size, char *out, size_t cap);

#endif
