/* fs.c — the blob store on a local file system (store.h).
 *
 * Layout under the data directory:
 *     tmp/<random>.part      uploads in progress (private, mode 0600)
 *     blobs/<k0k1>/<key>     committed blobs, fanned out by the key's first
 *                            two characters (4096 directories at most)
 *
 * Durability protocol for a new blob (the order is the invariant):
 *     write tmp file -> fsync(file) -> mkdir fan-out dir if needed ->
 *     rename(tmp, blob) -> fsync(fan-out dir)
 * tmp/ and blobs/ are on the same file system, so rename is atomic: a blob
 * path either does not exist or holds the complete bytes.  The caller commits
 * the database row only after store_upload_commit() returns, so a crash
 * leaves at worst an unreferenced blob, which store_sweep() removes.
 */
#include "store/store.h"
#include "store/writer.h"
#include "util/encode.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* An upload that grows past this gets a writer thread (writer.h), if one
 * of the store's slots is free; smaller ones are written inline. */
#define OFFLOAD_AFTER ((off_t)4 << 20)

struct store {
    char root[1024];
    char tmp_dir[1100];
    char blob_dir[1100];
    _Atomic int writer_slots;   /* writer threads still allowed */
};

struct store_upload {
    store *s;
    int fd;
    file_pos pos;
    file_writer *writer;        /* NULL: writing inline */
    bool offload_tried;
    bool failed;                /* a write failed: the upload cannot commit */
    char tmp_path[1200];
};

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

store *store_fs_open(const char *dir, const char **err)
{
    store *s = calloc(1, sizeof *s);
    if (!s) { *err = "out of memory"; return NULL; }
    snprintf(s->root, sizeof s->root, "%s", dir);
    snprintf(s->tmp_dir, sizeof s->tmp_dir, "%s/tmp", dir);
    snprintf(s->blob_dir, sizeof s->blob_dir, "%s/blobs", dir);
    if (!ensure_dir(s->tmp_dir) || !ensure_dir(s->blob_dir)) {
        *err = "cannot create store directories";
        free(s);
        return NULL;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    atomic_init(&s->writer_slots, cores > 0 ? (int)cores : 2);
    return s;
}

void store_close(store *s) { free(s); }

/* A key is an asset id, optionally followed by "." and a rendition name of
 * [a-z0-9_] (1..32 chars): nothing that could leave blobs/. */
static bool key_valid(const char *key)
{
    char id[ID_LEN + 1];
    size_t n = strlen(key);
    if (n < ID_LEN) return false;
    memcpy(id, key, ID_LEN);
    id[ID_LEN] = '\0';
    if (!id_is_valid(id)) return false;
    if (n == ID_LEN) return true;
    const char *name = key + ID_LEN + 1;
    size_t len = strlen(name);
    return key[ID_LEN] == '.' && len >= 1 && len <= 32 &&
           strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == len;
}

/* Returns false if key could reach outside blobs/ (defence in depth: keys
 * are ids we generated, but this is the last line before a path). */
static bool blob_path(const store *s, const char *key, char *out, size_t cap, bool dir_only)
{
    if (!key_valid(key)) return false;
    int n = dir_only ? snprintf(out, cap, "%s/%.2s", s->blob_dir, key)
                     : snprintf(out, cap, "%s/%.2s/%s", s->blob_dir, key, key);
    return n > 0 && (size_t)n < cap;
}

store_upload *store_upload_begin(store *s)
{
    store_upload *u = calloc(1, sizeof *u);
    if (!u) return NULL;
    u->s = s;
    char name[ID_LEN + 1];
    if (!id_generate(name)) { free(u); return NULL; }
    snprintf(u->tmp_path, sizeof u->tmp_path, "%s/%s.part", s->tmp_dir, name);
    u->fd = open(u->tmp_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (u->fd < 0) {
        log_error("cannot create temp file", "path", u->tmp_path, "error", strerror(errno), NULL);
        free(u);
        return NULL;
    }
    return u;
}

bool store_upload_write(store_upload *u, const void *data, size_t len)
{
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
static void finish_writes(store_upload *u)
{
    if (u->writer && !file_writer_finish(u->writer)) u->failed = true;
    u->writer = NULL;
}

int store_upload_fd(store_upload *u)
{
    finish_writes(u);
    return u->failed ? -1 : u->fd;
}

bool store_upload_commit(store_upload *u, const char *key)
{
    char dir[1200], path[1300];
    finish_writes(u);
    bool renamed = false;
    bool ok = !u->failed && blob_path(u->s, key, dir, sizeof dir, true) &&
              blob_path(u->s, key, path, sizeof path, false) &&
              fsync(u->fd) == 0 && ensure_dir(dir) &&
              (renamed = rename(u->tmp_path, path) == 0) && fsync_path(dir);
    if (!ok) {
        log_error("blob commit failed", "key", key, "error", strerror(errno), NULL);
        /* Only what this commit created: path may name another blob. */
        unlink(renamed ? path : u->tmp_path);
    }
    close(u->fd);
    free(u);
    return ok;
}

void store_upload_abort(store_upload *u)
{
    if (!u) return;
    finish_writes(u);
    close(u->fd);
    unlink(u->tmp_path);
    free(u);
}

bool store_open(store *s, const char *key, int *fd, uint64_t *size)
{
    char path[1300];
    if (!blob_path(s, key, path, sizeof path, false)) return false;
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0) return false;
    struct stat st;
    if (fstat(f, &st) != 0) { close(f); return false; }
    *fd = f;
    *size = (uint64_t)st.st_size;
    return true;
}

bool store_remove(store *s, const char *key)
{
    char path[1300];
    if (!blob_path(s, key, path, sizeof path, false)) return false;
    return unlink(path) == 0 || errno == ENOENT;
}

void store_remove_asset(store *s, const char *id)
{
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

bool store_check(store *s)
{
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
    if (key_valid(name) && ctx->is_live(name, ctx->arg)) return 0;
    return remove_file(dir, name, NULL);
}

static int sweep_fanout(const char *dir, const char *name, void *arg)
{
    char sub[1400];
    snprintf(sub, sizeof sub, "%s/%s", dir, name);
    return each_file(sub, sweep_blob, arg);
}

int store_sweep(store *s, bool (*is_live)(const char *key, void *arg), void *arg)
{
    struct sweep_ctx ctx = {is_live, arg};
    return each_file(s->tmp_dir, remove_file, NULL) +
           each_file(s->blob_dir, sweep_fanout, &ctx);
}
