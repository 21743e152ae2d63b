/* store.c — see store.h: key checks, then the backend (backend.h). */
#include "store/backend.h"
#include "util/encode.h"

#include <errno.h>
#include <string.h>

bool store_error_is_full(int err)
{
    return err == ENOSPC || err == EDQUOT;
}

bool store_error_is_exhausted(int err)
{
    return err == EMFILE || err == ENFILE;
}

bool store_key_valid(const char *key)
{
    char id[ID_LEN + 1];
    size_t n = key ? strlen(key) : 0;
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

void store_close(store *s)
{
    if (s) s->be->close(s);
}

bool store_local(const store *s) { return s->be->local; }

store_upload *store_upload_begin(store *s, const char *key)
{
    return store_key_valid(key) ? s->be->upload_begin(s, key) : NULL;
}

bool store_upload_write(store_upload *u, const void *data, size_t len)
{
    return u->s->be->upload_write(u, data, len);
}

bool store_upload_commit(store_upload *u) { return u->s->be->upload_commit(u); }

void store_upload_abort(store_upload *u)
{
    if (u) u->s->be->upload_abort(u);
}

bool store_put(store *s, const char *key, const void *data, size_t len)
{
    store_upload *u = store_upload_begin(s, key);
    if (!u) return false;
    if (!store_upload_write(u, data, len)) {
        store_upload_abort(u);
        return false;
    }
    return store_upload_commit(u);
}

bool store_read_head(store *s, const char *key, void *buf, size_t cap, size_t *n)
{
    return store_key_valid(key) && s->be->read_head(s, key, buf, cap, n);
}

bool store_fetch(store *s, const char *key, int *fd, uint64_t *size)
{
    return store_key_valid(key) && s->be->fetch(s, key, fd, size);
}

bool store_read(store *s, const char *key, uint64_t first, uint64_t last, store_sink sink,
                void *arg)
{
    return store_key_valid(key) && first <= last && s->be->stream(s, key, first, last, sink, arg);
}

bool store_open(store *s, const char *key, int *fd, uint64_t *size)
{
    return s->be->local && store_key_valid(key) && s->be->open(s, key, fd, size);
}

bool store_stat(store *s, const char *key, uint64_t *size, bool *missing)
{
    *missing = false;
    return store_key_valid(key) && s->be->stat(s, key, size, missing);
}

bool store_remove(store *s, const char *key)
{
    return store_key_valid(key) && s->be->remove(s, key);
}

void store_remove_asset(store *s, const char *id)
{
    if (store_key_valid(id) && strlen(id) == ID_LEN) s->be->remove_asset(s, id);
}

bool store_check(store *s) { return s->be->check(s); }

int store_sweep(store *s, bool (*is_live)(const char *key, void *arg), void *arg)
{
    return s->be->sweep(s, is_live, arg);
}

int store_sweep_appends(store *s, bool (*is_live)(const char *key, void *arg), void *arg)
{
    return s->be->sweep_appends(s, is_live, arg);
}

/* ---------- appendable objects: ids only (no rendition suffix) ---------- */

static bool append_id_ok(const char *id)
{
    return store_key_valid(id) && strlen(id) == ID_LEN;
}

store_append *store_append_open(store *s, const char *id, uint64_t offset)
{
    return append_id_ok(id) ? s->be->append_open(s, id, offset) : NULL;
}

bool store_append_write(store_append *a, const void *data, size_t len)
{
    return a->s->be->append_write(a, data, len);
}

bool store_append_commit(store_append *a) { return a->s->be->append_commit(a); }

void store_append_abort(store_append *a)
{
    if (a) a->s->be->append_abort(a);
}

bool store_append_read(store *s, const char *id, uint64_t length, store_sink sink, void *arg)
{
    return append_id_ok(id) && s->be->append_read(s, id, length, sink, arg);
}

bool store_append_publish(store *s, const char *id, uint64_t length)
{
    return append_id_ok(id) && s->be->append_publish(s, id, length);
}

bool store_append_remove(store *s, const char *id)
{
    return append_id_ok(id) && s->be->append_remove(s, id);
}
