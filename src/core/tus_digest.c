/* tus_digest.c — the running SHA-256 of tus uploads; see tus_digest.h. */
#include "core/tus_digest.h"
#include "util/encode.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char id[ID_LEN + 1];       /* "" = free */
    uint64_t offset;
    uint64_t saved;            /* a clock for eviction: higher is newer */
    EVP_MD_CTX *md;
} entry;

struct tus_digests {
    pthread_mutex_t mu;
    uint64_t clock;
    _Atomic uint64_t running, reread;   /* completions (tus_digest_count) */
    entry slots[TUS_DIGESTS_MAX];
};

tus_digests *tus_digests_new(void)
{
    tus_digests *t = calloc(1, sizeof *t);
    if (t) pthread_mutex_init(&t->mu, NULL);
    return t;
}

void tus_digests_free(tus_digests *t)
{
    if (!t) return;
    for (int i = 0; i < TUS_DIGESTS_MAX; i++) EVP_MD_CTX_free(t->slots[i].md);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static EVP_MD_CTX *fresh(void)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        md = NULL;
    }
    return md;
}

/* The slot holding id, or NULL; t->mu held.  An id has at most one slot. */
static entry *find(tus_digests *t, const char *id)
{
    for (int i = 0; i < TUS_DIGESTS_MAX; i++)
        if (t->slots[i].id[0] && strcmp(t->slots[i].id, id) == 0) return &t->slots[i];
    return NULL;
}

EVP_MD_CTX *tus_digest_get(tus_digests *t, const char *id, uint64_t offset)
{
    if (!t) return NULL;
    if (offset == 0) return fresh();
    EVP_MD_CTX *md = NULL;
    pthread_mutex_lock(&t->mu);
    entry *e = find(t, id);
    if (e && e->offset == offset && (md = EVP_MD_CTX_new()) && EVP_MD_CTX_copy_ex(md, e->md) != 1) {
        EVP_MD_CTX_free(md);
        md = NULL;
    }
    pthread_mutex_unlock(&t->mu);
    return md;
}

void tus_digest_drop(tus_digests *t, const char *id)
{
    if (!t) return;
    pthread_mutex_lock(&t->mu);
    entry *e = find(t, id);
    if (e) {
        EVP_MD_CTX_free(e->md);
        e->md = NULL;
        e->id[0] = '\0';
    }
    pthread_mutex_unlock(&t->mu);
}

void tus_digest_save(tus_digests *t, const char *id, uint64_t offset, EVP_MD_CTX *md)
{
    if (!md) return;
    if (!t || strlen(id) > ID_LEN) {
        EVP_MD_CTX_free(md);
        return;
    }
    pthread_mutex_lock(&t->mu);
    entry *e = find(t, id), *oldest = &t->slots[0];
    for (int i = 0; !e && i < TUS_DIGESTS_MAX; i++) {
        if (!t->slots[i].id[0]) e = &t->slots[i];
        else if (t->slots[i].saved < oldest->saved) oldest = &t->slots[i];
    }
    if (!e) e = oldest;   /* that upload's completion will read its blob */
    EVP_MD_CTX_free(e->md);
    strcpy(e->id, id);
    e->offset = offset;
    e->saved = ++t->clock;
    e->md = md;
    pthread_mutex_unlock(&t->mu);
}

void tus_digest_count(tus_digests *t, bool running)
{
    if (t) atomic_fetch_add(running ? &t->running : &t->reread, 1);
}

void tus_digests_counts(tus_digests *t, uint64_t *running, uint64_t *reread)
{
    *running = t ? atomic_load(&t->running) : 0;
    *reread = t ? atomic_load(&t->reread) : 0;
}

bool tus_digest_hex(EVP_MD_CTX *md, char out[65])
{
    unsigned char digest[32];
    unsigned n = 0;
    bool ok = md && EVP_DigestFinal_ex(md, digest, &n) == 1 && n == sizeof digest;
    EVP_MD_CTX_free(md);
    if (ok) hex_encode(digest, sizeof digest, out);
    return ok;
}
