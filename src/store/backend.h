/* backend.h — what a store backend implements (store/ internal).
 *
 * store.c checks keys and dispatches every call of store.h through the
 * backend's table; a backend's store and upload structs begin with the
 * shared headers below, so store.c can find the table from either. */
#ifndef ASSETD_STORE_BACKEND_H
#define ASSETD_STORE_BACKEND_H

#include "store/store.h"

typedef struct store_backend {
    bool local;
    void (*close)(store *s);
    store_upload *(*upload_begin)(store *s, const char *key);
    bool (*upload_write)(store_upload *u, const void *data, size_t len);
    bool (*upload_commit)(store_upload *u);
    void (*upload_abort)(store_upload *u);
    bool (*read_head)(store *s, const char *key, void *buf, size_t cap, size_t *n);
    bool (*fetch)(store *s, const char *key, int *fd, uint64_t *size);
    bool (*stream)(store *s, const char *key, uint64_t first, uint64_t last, store_sink sink,
                   void *arg);
    bool (*open)(store *s, const char *key, int *fd, uint64_t *size);   /* local only */
    bool (*stat)(store *s, const char *key, uint64_t *size, bool *missing);
    bool (*remove)(store *s, const char *key);
    void (*remove_asset)(store *s, const char *id);
    bool (*check)(store *s);
    /* Appendable objects (store.h). */
    store_append *(*append_open)(store *s, const char *id, uint64_t offset);
    bool (*append_write)(store_append *a, const void *data, size_t len);
    bool (*append_commit)(store_append *a);
    void (*append_abort)(store_append *a);
    bool (*append_read)(store *s, const char *id, uint64_t length, store_sink sink, void *arg);
    bool (*append_publish)(store *s, const char *id, uint64_t length);
    bool (*append_remove)(store *s, const char *id);
    int (*sweep)(store *s, bool (*is_live)(const char *key, void *arg), void *arg);
    int (*sweep_appends)(store *s, bool (*is_live)(const char *key, void *arg), void *arg);
} store_backend;

/* The first member of every backend's store. */
struct store {
    const store_backend *be;
};

/* The first member of every backend's upload. */
struct store_upload {
    store *s;
};

/* The first member of every backend's appendable object. */
struct store_append {
    store *s;
};

#endif
