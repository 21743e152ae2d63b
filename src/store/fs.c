/* fs.c — the blob store on a local file system (store.h).
 *
 * Layout under the data directory:
 *     tmp/<random>.part      uploads in progress (private, mode 0600)
 *     blobs/<k0k1>/<key>     committed blobs, fanned out by the key's first
 *                            two characters (4096 directories at most)
 *     tus/<id>.part          resumable uploads' bytes (appendable objects,
 *                            store.h): never swept at start-up, their
 *                            uploads' rows decide; published by a rename
 *                            into blobs/ exactly like a commit
 *
 * Durability protocol for a new blob (the order is the invariant):
 *     write tmp file -> fsync(file) -> mkdir fan-out dir if needed ->
 *     rename(tmp, blob) -> fsync(fan-out dir)
 * tmp/ and blobs/ are on the same file system, so rename is atomic: a blob
 * path either does not exist or holds the complete bytes.  The caller commits
 * the database row only after store_upload_commit() returns, so a crash
 * leaves at worst an unreferenced blob, which store_sweep() removes.
 */
#include "store/backend.h"
#include "store/writer.h"
#include "util/encode.h"
#include "util/fault.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* An upload that grows past this gets a writer thread (writer.h), if one
 * of the store's slots is free; smaller ones are written inline. */
#define OFFLOAD_AFTER ((off_t)4 << 20)
/* A tus PATCH's writer thread makes its bytes durable every this many, so
 * the commit that acknowledges the offset waits only for the tail. */
#define DURABLE_EVERY ((off_t)4 << 20)

typedef struct fs_store {
    store base;
    char root[1024];
    char tmp_dir[1100];
    char blob_dir[1100];
    char tus_dir[1100];
    _Atomic int writer_slots;   /* writer threads still allowed */
} fs_store;

typedef struct fs_upload {
    store_upload base;
    fs_store *s;
    int fd;
    file_pos pos;
    file_writer *writer;        /* NULL: writing inline */
    bool offload_tried;
    bool failed;                /* a write failed: the upload cannot commit */
    char tmp_path[1200];
    char key[64];
} fs_upload;

static bool ensure_dir(const char *path)
{
    return mkdir(path, 0700) == 0 || errno == EEXIST;
}

static bool fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = fsync(fd) == 0;
    close(fd);
    return ok;
}

/* Returns false if key could reach outside blobs/ (store.c checked it:
 * keys are ids we generated, but this is the last line before a path). */
static bool blob_path(const fs_store *s, const char *key, char *out, size_t cap, bool dir_only)
{
    if (!store_key_valid(key)) return false;
    int n = dir_only ? snprintf(out, cap, "%s/%.2s", s->blob_dir, key)
                     : snprintf(out, cap, "%s/%.2s/%s", s->blob_dir, key, key);
    return n > 0 && (size_t)n < cap;
}

static store_upload *fs_upload_begin(store *base, const char *key)
{
    fs_store *s = (fs_store *)base;
    fs_upload *u = calloc(1, sizeof *u);
    if (!u || strlen(key) >= sizeof u->key) { free(u); return NULL; }
    u->base.s = base;
    u->s = s;
    memcpy(u->key, key, strlen(key) + 1);
    char name[ID_LEN + 1];
    if (!id_generate(name)) { free(u); return NULL; }
    snprintf(u->tmp_path, sizeof u->tmp_path, "%s/%s.part", s->tmp_dir, name);
    u->fd = open(u->tmp_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (u->fd < 0) {
        int err = errno;   /* the caller tells a lack of descriptors from the rest */
        log_error("cannot create temp file", "path", u->tmp_path, "error", strerror(err), NULL);
        free(u);
        errno = err;
        return NULL;
    }
    return &u->base;
}

static bool fs_upload_write(store_upload *base, const void *data, size_t len)
{
    fs_upload *u = (fs_upload *)base;
    if (!u->offload_tried && u->pos.written >= OFFLOAD_AFTER) {
        u->offload_tried = true;
        u->writer = file_writer_start(u->fd, &u->pos, &u->s->writer_slots);
    }
    bool ok = u->writer ? file_writer_append(u->writer, data, len)
                        : file_append(u->fd, &u->pos, data, len);
    if (!ok) u->failed = true;
    return ok;
}

/* Waits until every byte is in the file and the writer thread is gone. */
static void finish_writes(fs_upload *u)
{
    if (u->writer && !file_writer_finish(u->writer)) u->failed = true;
    u->writer = NULL;
}

static bool fs_upload_commit(store_upload *base)
{
    fs_upload *u = (fs_upload *)base;
    const char *key = u->key;
    char dir[1200], path[1300];
    finish_writes(u);
    bool renamed = false;
    bool ok = !u->failed && blob_path(u->s, key, dir, sizeof dir, true) &&
              blob_path(u->s, key, path, sizeof path, false) &&
              fault_point("blob.written") && fsync(u->fd) == 0 &&
              fault_point("blob.synced") && ensure_dir(dir) &&
              (renamed = rename(u->tmp_path, path) == 0) && fsync_path(dir) &&
              fault_point("blob.renamed");
    int err = errno;   /* the caller tells a full disk from the rest */
    if (!ok) {
        log_error("blob commit failed", "key", key, "error", strerror(err), NULL);
        /* Only what this commit created: path may name another blob. */
        unlink(renamed ? path : u->tmp_path);
    }
    close(u->fd);
    free(u);
    errno = err;
    return ok;
}

static void fs_upload_abort(store_upload *base)
{
    fs_upload *u = (fs_upload *)base;
    finish_writes(u);
    close(u->fd);
    unlink(u->tmp_path);
    free(u);
}

static bool fs_open(store *base, const char *key, int *fd, uint64_t *size)
{
    fs_store *s = (fs_store *)base;
    char path[1300];
    if (!blob_path(s, key, path, sizeof path, false)) return false;
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0) return false;
    struct stat st;
    if (fstat(f, &st) != 0) {
        int err = errno;
        close(f);
        errno = err;
        return false;
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    return true;
}

static bool fs_read_head(store *base, const char *key, void *buf, size_t cap, size_t *n)
{
    int fd;
    uint64_t size;
    if (!fs_open(base, key, &fd, &size)) return false;
    size_t got = 0;
    while (got < cap) {
        ssize_t r = pread(fd, (char *)buf + got, cap - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    *n = got;
    return got == cap || got == size;
}

/* Sends bytes first..last of fd to sink, then closes fd. */
static bool stream_fd(int fd, uint64_t first, uint64_t last, store_sink sink, void *arg)
{
    char buf[64 * 1024];
    uint64_t at = first;
    bool ok = true;
    while (ok && at <= last) {
        size_t want = last - at + 1 < sizeof buf ? (size_t)(last - at + 1) : sizeof buf;
        ssize_t r = pread(fd, buf, want, (off_t)at);
        if (r < 0 && errno == EINTR) continue;
        ok = r > 0 && sink(arg, buf, (size_t)r);
        at += r > 0 ? (uint64_t)r : 0;
    }
    close(fd);
    return ok;
}

static bool fs_stream(store *base, const char *key, uint64_t first, uint64_t last,
                      store_sink sink, void *arg)
{
    int fd;
    uint64_t size;
    if (!fs_open(base, key, &fd, &size)) return false;
    if (last >= size) {
        close(fd);
        return false;
    }
    return stream_fd(fd, first, last, sink, arg);
}

static bool fs_stat(store *base, const char *key, uint64_t *size, bool *missing)
{
    fs_store *s = (fs_store *)base;
    char path[1300];
    struct stat st;
    if (!blob_path(s, key, path, sizeof path, false)) return false;
    if (stat(path, &st) != 0) {
        *missing = errno == ENOENT;
        return false;
    }
    *size = (uint64_t)st.st_size;
    return true;
}

static bool fs_remove(store *base, const char *key)
{
    fs_store *s = (fs_store *)base;
    char path[1300];
    if (!blob_path(s, key, path, sizeof path, false)) return false;
    return unlink(path) == 0 || errno == ENOENT;
}

static void fs_remove_asset(store *base, const char *id)
{
    fs_store *s = (fs_store *)base;
    char dir[1200];
    if (!blob_path(s, id, dir, sizeof dir, true)) return;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, id, ID_LEN) == 0 && (e->d_name[ID_LEN] == '\0' || e->d_name[ID_LEN] == '.'))
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
}

static bool fs_check(store *base)
{
    fs_store *s = (fs_store *)base;
    return access(s->tmp_dir, W_OK | X_OK) == 0 && access(s->blob_dir, W_OK | X_OK) == 0;
}

/* Calls fn(dir, name) for each regular file in dir. */
static int each_file(const char *dir, int (*fn)(const char *dir, const char *name, void *arg),
                     void *arg)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        removed += fn(dir, e->d_name, arg);
    }
    closedir(d);
    return removed;
}

static int remove_file(const char *dir, const char *name, void *arg)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (unlink(path) != 0) return 0;
    log_info("removed leftover file", "path", path, NULL);
    return 1;
}

struct sweep_ctx {
    bool (*is_live)(const char *key, void *arg);
    void *arg;
};

static int sweep_blob(const char *dir, const char *name, void *arg)
{
    struct sweep_ctx *ctx = arg;
    if (store_key_valid(name) && ctx->is_live(name, ctx->arg)) return 0;
    return remove_file(dir, name, NULL);
}

static int sweep_fanout(const char *dir, const char *name, void *arg)
{
    char sub[1400];
    snprintf(sub, sizeof sub, "%s/%s", dir, name);
    return each_file(sub, sweep_blob, arg);
}

/* A tus upload's bytes whose id nothing names any more (a termination or
 * gc that died between the row and the file), left alone for an hour in
 * case a writer still holds them. */
#define ORPHAN_MARGIN_S 3600

static int sweep_append(const char *dir, const char *name, void *arg)
{
    struct sweep_ctx *ctx = arg;
    char id[ID_LEN + 1], path[2048];
    size_t n = strlen(name);
    if (n != ID_LEN + 5 || strcmp(name + ID_LEN, ".part") != 0) return 0;   /* not ours */
    memcpy(id, name, ID_LEN);
    id[ID_LEN] = '\0';
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    if (!store_key_valid(id) || ctx->is_live(id, ctx->arg) || stat(path, &st) != 0 ||
        st.st_mtime > time(NULL) - ORPHAN_MARGIN_S)
        return 0;
    return remove_file(dir, name, NULL);
}

static int fs_sweep_appends(store *base, bool (*is_live)(const char *key, void *arg), void *arg)
{
    fs_store *s = (fs_store *)base;
    struct sweep_ctx ctx = {is_live, arg};
    return each_file(s->tus_dir, sweep_append, &ctx);
}

static int fs_sweep(store *base, bool (*is_live)(const char *key, void *arg), void *arg)
{
    fs_store *s = (fs_store *)base;
    struct sweep_ctx ctx = {is_live, arg};
    return each_file(s->tmp_dir, remove_file, NULL) +
           each_file(s->blob_dir, sweep_fanout, &ctx) + fs_sweep_appends(base, is_live, arg);
}

/* ---------- appendable objects (store.h) ---------- */

typedef struct fs_append {
    store_append base;
    fs_store *s;
    int fd;
    file_pos pos;
    off_t opened_at;            /* the committed offset this writer started at */
    file_writer *writer;        /* as fs_upload's: NULL while writing inline */
    bool offload_tried;
    bool failed;
} fs_append;

static bool append_path(const fs_store *s, const char *id, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s.part", s->tus_dir, id);
    return n > 0 && (size_t)n < cap;
}

static store_append *fs_append_open(store *base, const char *id, uint64_t offset)
{
    fs_store *s = (fs_store *)base;
    char path[1300];
    if (!append_path(s, id, path, sizeof path)) return NULL;
    /* O_CREAT only for a new object: a missing file at offset > 0 means
     * acknowledged bytes are gone, which must not pass for a fresh start. */
    int fd = open(path, O_WRONLY | O_CLOEXEC | (offset == 0 ? O_CREAT : 0), 0600);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || (uint64_t)st.st_size < offset ||
        ((uint64_t)st.st_size > offset && ftruncate(fd, (off_t)offset) != 0) ||
        lseek(fd, (off_t)offset, SEEK_SET) < 0) {
        int err = fd < 0 ? errno : EIO;   /* the caller tells a lack of descriptors */
        log_error("cannot open a resumable upload", "path", path, "error",
                  fd < 0 ? strerror(err) : "shorter than its committed offset", NULL);
        if (fd >= 0) close(fd);
        errno = err;
        return NULL;
    }
    fs_append *a = calloc(1, sizeof *a);
    if (!a) { close(fd); return NULL; }
    a->base.s = base;
    a->s = s;
    a->fd = fd;
    a->pos.written = a->pos.flushed = a->pos.synced = a->opened_at = (off_t)offset;
    a->pos.sync_every = DURABLE_EVERY;
    return &a->base;
}

/* Like fs_upload_write: a PATCH that brings megabytes gets a writer thread,
 * so receiving (and hashing) and writing run on two cores. */
static bool fs_append_write(store_append *base, const void *data, size_t len)
{
    fs_append *a = (fs_append *)base;
    if (a->failed) return false;
    if (!a->offload_tried && a->pos.written - a->opened_at >= OFFLOAD_AFTER) {
        a->offload_tried = true;
        a->writer = file_writer_start(a->fd, &a->pos, &a->s->writer_slots);
    }
    if (!(a->writer ? file_writer_append(a->writer, data, len)
                    : file_append(a->fd, &a->pos, data, len)))
        a->failed = true;
    return !a->failed;
}

/* Stops the writer thread, if any: every byte is in the file then.  False
 * if a write failed. */
static bool append_drain(fs_append *a)
{
    if (a->writer && !file_writer_finish(a->writer)) a->failed = true;
    a->writer = NULL;
    return !a->failed;
}

static bool fs_append_commit(store_append *base)
{
    fs_append *a = (fs_append *)base;
    bool ok = append_drain(a) && fsync(a->fd) == 0;
    int err = errno;
    if (!ok) log_error("resumable upload commit failed", "error", strerror(err), NULL);
    close(a->fd);
    free(a);
    errno = err;
    return ok;
}

static void fs_append_abort(store_append *base)
{
    fs_append *a = (fs_append *)base;
    append_drain(a);   /* the thread must end before fd closes; the bytes are garbage */
    close(a->fd);
    free(a);
}

static bool fs_append_read(store *base, const char *id, uint64_t length, store_sink sink,
                           void *arg)
{
    fs_store *s = (fs_store *)base;
    char path[1300];
    if (length == 0) return true;
    int fd = append_path(s, id, path, sizeof path) ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    return fd >= 0 && stream_fd(fd, 0, length - 1, sink, arg);
}

static bool truncate_durably(const char *path, uint64_t length)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    bool ok = fd >= 0 && ftruncate(fd, (off_t)length) == 0 && fsync(fd) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

/* The blob protocol's last steps (see the top): the object is durable
 * already (every commit fsynced it), so rename + fsync of both dirs.  Bytes
 * past length (of a writer that lost its lease) are cut first. */
static bool fs_append_publish(store *base, const char *id, uint64_t length)
{
    fs_store *s = (fs_store *)base;
    char from[1300], dir[1200], to[1300];
    struct stat st;
    if (!append_path(s, id, from, sizeof from) || !blob_path(s, id, dir, sizeof dir, true) ||
        !blob_path(s, id, to, sizeof to, false))
        return false;
    if (stat(from, &st) != 0) {
        if (errno == ENOENT) return stat(to, &st) == 0 && (uint64_t)st.st_size == length;
        return false;   /* done before, or lost */
    }
    if ((uint64_t)st.st_size < length) {
        log_error("a resumable upload lost bytes", "id", id, NULL);
        return false;
    }
    bool ok = ((uint64_t)st.st_size == length || truncate_durably(from, length)) &&
              ensure_dir(dir) && rename(from, to) == 0 && fsync_path(dir) &&
              fsync_path(s->tus_dir);
    if (!ok) log_error("cannot publish a resumable upload", "id", id, "error", strerror(errno),
                       NULL);
    return ok;
}

static bool fs_append_remove(store *base, const char *id)
{
    fs_store *s = (fs_store *)base;
    char path[1300];
    return append_path(s, id, path, sizeof path) && (unlink(path) == 0 || errno == ENOENT);
}

static void fs_close(store *base) { free(base); }

static const store_backend fs_backend = {
    .local = true,
    .close = fs_close,
    .upload_begin = fs_upload_begin,
    .upload_write = fs_upload_write,
    .upload_commit = fs_upload_commit,
    .upload_abort = fs_upload_abort,
    .read_head = fs_read_head,
    .fetch = fs_open,
    .stream = fs_stream,
    .open = fs_open,
    .stat = fs_stat,
    .remove = fs_remove,
    .remove_asset = fs_remove_asset,
    .check = fs_check,
    .append_open = fs_append_open,
    .append_write = fs_append_write,
    .append_commit = fs_append_commit,
    .append_abort = fs_append_abort,
    .append_read = fs_append_read,
    .append_publish = fs_append_publish,
    .append_remove = fs_append_remove,
    .sweep = fs_sweep,
    .sweep_appends = fs_sweep_appends,
};

store *store_fs_open(const char *dir, const char **err)
{
    fs_store *s = calloc(1, sizeof *s);
    if (!s) { *err = "out of memory"; return NULL; }
    s->base.be = &fs_backend;
    snprintf(s->root, sizeof s->root, "%s", dir);
    snprintf(s->tmp_dir, sizeof s->tmp_dir, "%s/tmp", dir);
    snprintf(s->blob_dir, sizeof s->blob_dir, "%s/blobs", dir);
    snprintf(s->tus_dir, sizeof s->tus_dir, "%s/tus", dir);
    if (!ensure_dir(s->tmp_dir) || !ensure_dir(s->blob_dir) || !ensure_dir(s->tus_dir)) {
        *err = "cannot create store directories";
        free(s);
        return NULL;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    atomic_init(&s->writer_slots, cores > 0 ? (int)cores : 2);
    return &s->base;
}
