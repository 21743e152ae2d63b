/* ingest.c — see ingest.h. */
#include "core/ingest.h"
#include "util/fault.h"
#include "util/log.h"
#include "util/timefmt.h"

#include <errno.h>
#include <magic.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct ingest {
    store *s;
    store_upload *up;
    char id[ID_LEN + 1];   /* the asset's id, and so its blob's key */
    EVP_MD_CTX *sha;
    uint64_t size, max_size;
};

struct sniffer {
    magic_t m;
    pthread_mutex_t lock;
};

ingest *ingest_begin(store *s, uint64_t max_size)
{
    ingest *in = calloc(1, sizeof *in);
    if (!in) return NULL;
    in->s = s;
    in->max_size = max_size;
    in->sha = EVP_MD_CTX_new();
    /* The key is known from the start: an S3 multipart upload is named
     * when it begins (nothing is visible under it until the commit). */
    if (id_generate(in->id)) in->up = store_upload_begin(s, in->id);
    if (!in->sha || !in->up || EVP_DigestInit_ex(in->sha, EVP_sha256(), NULL) != 1) {
        int err = errno;   /* the store's reason, for the reply */
        ingest_abort(in);
        errno = err;
        return NULL;
    }
    return in;
}

/* Why the store refused, from the errno its failure left. */
static ingest_result store_failure(void)
{
    int err = errno;
    return store_error_is_full(err)        ? INGEST_NO_SPACE
           : store_error_is_exhausted(err) ? INGEST_NO_FDS
                                           : INGEST_IO_ERROR;
}

ingest_result ingest_write(ingest *in, const void *data, size_t len)
{
    if (len > in->max_size - in->size) return INGEST_TOO_LARGE;
    in->size += len;
    EVP_DigestUpdate(in->sha, data, len);
    return store_upload_write(in->up, data, len) ? INGEST_OK : store_failure();
}

uint64_t ingest_size(const ingest *in) { return in->size; }

void ingest_abort(ingest *in)
{
    if (!in) return;
    store_upload_abort(in->up);
    EVP_MD_CTX_free(in->sha);
    free(in);
}

/* Extensions of the image formats a client might think it sent. */
static const char *const image_extensions[] = {"jpg", "jpeg", "jpe", "jfif", "png", "gif",
                                               "webp", "tif", "tiff", "heic", "heif", "avif",
                                               "bmp"};

static bool claims_image(const ingest_claim *claim)
{
    if (claim->content_type && strncasecmp(claim->content_type, "image/", 6) == 0) return true;
    const char *dot = claim->filename ? strrchr(claim->filename, '.') : NULL;
    if (!dot) return false;
    for (size_t i = 0; i < sizeof image_extensions / sizeof *image_extensions; i++)
        if (strcasecmp(dot + 1, image_extensions[i]) == 0) return true;
    return false;
}

/* Extensions of the video formats a client might think it sent. */
static const char *const video_extensions[] = {"mp4", "m4v", "mov", "qt", "webm", "mkv", "avi",
                                               "wmv", "flv", "mpg", "mpeg", "ts", "3gp", "ogv"};

static bool claims_video(const ingest_claim *claim)
{
    if (claim->content_type && strncasecmp(claim->content_type, "video/", 6) == 0) return true;
    const char *dot = claim->filename ? strrchr(claim->filename, '.') : NULL;
    if (!dot) return false;
    for (size_t i = 0; i < sizeof video_extensions / sizeof *video_extensions; i++)
        if (strcasecmp(dot + 1, video_extensions[i]) == 0) return true;
    return false;
}

/* Sets the fields that come from the bytes and the claim. */
static void classify(asset *out, const ingest_claim *claim)
{
    out->kind = asset_kind_from_mime(out->content_type);
    out->status = STATUS_UPLOADED;
    const char *what = NULL, *code = NULL;
    bool profiled = claim->profile && claim->profile[0];
    if (out->kind != ASSET_IMAGE && profiled) {
        out->status = STATUS_FAILED;
        snprintf(out->error_code, sizeof out->error_code, "unsupported_format");
        snprintf(out->error_message, sizeof out->error_message,
                 "the %s profile is for images, but the bytes are %s", claim->profile,
                 out->content_type);
        return;
    }
    if (out->kind != ASSET_IMAGE && claims_image(claim))
        what = "an image", code = "unsupported_format";
    else if (out->kind != ASSET_VIDEO && claims_video(claim))
        what = "a video", code = "not_a_video";
    if (code) {
        out->status = STATUS_FAILED;
        snprintf(out->error_code, sizeof out->error_code, "%s", code);
        snprintf(out->error_message, sizeof out->error_message,
                 "the file claims to be %s, but its bytes are %s", what, out->content_type);
    }
}

ingest_result ingest_finish(ingest *in, sniffer *sn, db_conn *c, const char *owner,
                            const ingest_claim *claim, asset *out)
{
    memset(out, 0, sizeof *out);
    unsigned char digest[32];
    unsigned int dlen = 0;
    EVP_DigestFinal_ex(in->sha, digest, &dlen);
    hex_encode(digest, sizeof digest, out->sha256);
    memcpy(out->id, in->id, sizeof out->id);
    out->size = in->size;
    store *s = in->s;
    store_upload *up = in->up;
    in->up = NULL;
    ingest_abort(in);  /* frees the hash; the upload is ours now */
    if (!store_upload_commit(up)) return store_failure();
    ingest_result res = ingest_record(sn, s, c, owner, claim, out);
    if (res != INGEST_OK) store_remove(s, out->id);
    return res;
}

static bool hash_piece(void *arg, const void *data, size_t len)
{
    return EVP_DigestUpdate(arg, data, len) == 1;
}

bool ingest_blob_sha256(store *s, const char *key, uint64_t size, char out[65])
{
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    unsigned char digest[32];
    unsigned int n = 0;
    bool ok = sha && EVP_DigestInit_ex(sha, EVP_sha256(), NULL) == 1 &&
              (size == 0 || store_read(s, key, 0, size - 1, hash_piece, sha)) &&
              EVP_DigestFinal_ex(sha, digest, &n) == 1;
    EVP_MD_CTX_free(sha);
    if (ok) hex_encode(digest, sizeof digest, out);
    return ok;
}

ingest_result ingest_record(sniffer *sn, store *s, db_conn *c, const char *owner,
                            const ingest_claim *claim, asset *out)
{
    /* Sniffed from the committed blob (an upload in progress on S3 cannot be
     * read back); the row does not exist yet, so nobody sees it unsniffed. */
    if (!ingest_sniff(sn, s, out->id, out->size, out->content_type, sizeof out->content_type))
        return store_failure();   /* reading the blob back needs a descriptor too */
    classify(out, claim);
    snprintf(out->owner, sizeof out->owner, "%s", owner);
    snprintf(out->profile, sizeof out->profile, "%s", claim->profile ? claim->profile : "");
    filename_sanitize(claim->filename ? claim->filename : "", out->filename);
    time_format_now(out->created);
    memcpy(out->updated, out->created, sizeof out->updated);
    /* The row and the job that processes it commit together: no asset
     * waits for a job that was never queued, no job runs for a missing row. */
    const char *pipeline = out->status == STATUS_UPLOADED ? asset_pipeline(out->kind) : NULL;
    job j;
    db_status extra = DB_OK;
    bool ok = db_begin(c) == DB_OK && db_asset_insert(c, out) == DB_OK &&
              (!pipeline || db_job_enqueue(c, out->id, owner, pipeline, INGEST_JOB_ATTEMPTS,
                                           time_now_ms(), &j) == DB_OK) &&
              (!claim->extra || (extra = claim->extra(c, out, claim->extra_arg)) == DB_OK) &&
              db_commit(c) == DB_OK;
    if (!ok) {
        db_rollback(c);
        return extra == DB_NOT_FOUND ? INGEST_REFUSED : INGEST_DB_ERROR;
    }
    fault_point("event.appended");   /* asset.created is durable; nobody was told */
    return INGEST_OK;
}

sniffer *sniffer_new(void)
{
    sniffer *sn = calloc(1, sizeof *sn);
    if (!sn) return NULL;
    /* MIME type only; never look inside compressed data (cost, attack
     * surface); magic_load(NULL) uses the system database. */
    pthread_mutex_init(&sn->lock, NULL);
    sn->m = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR);
    size_t bytes_max = SNIFF_BYTES_MAX;
    if (!sn->m || magic_load(sn->m, NULL) != 0 ||
        magic_setparam(sn->m, MAGIC_PARAM_BYTES_MAX, &bytes_max) != 0) {
        log_error("libmagic unavailable", "error", sn->m ? magic_error(sn->m) : "open", NULL);
        sniffer_free(sn);
        return NULL;
    }
    return sn;
}

void sniffer_free(sniffer *sn)
{
    if (!sn) return;
    if (sn->m) magic_close(sn->m);
    pthread_mutex_destroy(&sn->lock);
    free(sn);
}

void sniffer_mime_buffer(sniffer *sn, const void *data, size_t len, char *out, size_t cap)
{
    pthread_mutex_lock(&sn->lock);
    const char *mime = magic_buffer(sn->m, data, len);
    snprintf(out, cap, "%s", mime ? mime : "application/octet-stream");
    pthread_mutex_unlock(&sn->lock);
}

bool ingest_sniff(sniffer *sn, store *s, const char *key, uint64_t size, char *out, size_t cap)
{
    /* Nothing to read, and a range on an empty object is an error on S3
     * (416) or, on some S3 look-alikes (s3rver), a reply that lies about
     * its length. */
    if (size == 0) {
        sniffer_mime_buffer(sn, "", 0, out, cap);
        return true;
    }
    size_t n = 0;
    char *head = malloc(SNIFF_BYTES_MAX);
    bool ok = head && store_read_head(s, key, head, SNIFF_BYTES_MAX, &n);
    if (ok) sniffer_mime_buffer(sn, head, n, out, cap);
    free(head);
    return ok;
}

bool ingest_key_is_live(const char *key, void *conn)
{
    char id[ID_LEN + 1];
    snprintf(id, sizeof id, "%s", key);   /* renditions are "<id>.<name>" */
    upload_rec u;
    bool whole_id = strlen(key) == ID_LEN;
    return db_asset_id_exists(conn, id) != DB_NOT_FOUND ||
           /* a pending signed upload's bytes: `complete` will come */
           (whole_id && db_upload_get_any(conn, id, &u) != DB_NOT_FOUND) ||
           /* a tus upload's bytes, or its blob published but not yet
            * recorded: its completion runs again */
           (whole_id && db_tus_exists(conn, id) != DB_NOT_FOUND);
}
