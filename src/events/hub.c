/* hub.c — see hub.h.
 *
 * Threads: one hub thread reads the database and calls the sinks; other
 * threads only add subscriptions to `pending` and remove them.  One mutex
 * guards both lists and is held while sinks run, which is what makes
 * hub_unsubscribe() a barrier: once it has the lock and unlinks the
 * subscription, no delivery to it is in progress or can start.
 */
#include "events/hub.h"
#include "core/event.h"
#include "events/notify.h"
#include "util/log.h"
#include "util/timefmt.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define TAIL_BATCH 512
#define TRIM_EVERY_MS 60000
#define DBLISTEN_RETRY_MS 5000   /* after losing db_listen's connection */

struct hub_sub {
    hub_filter f;
    const hub_sink *sink;
    void *arg;
    int64_t cursor;          /* id of the last event given to the sink */
    bool refused;            /* the sink refused a message: deliver nothing more */
    bool live;               /* on the live list (else pending); under the lock */
    hub_sub *prev, *next;
};

typedef struct sub_list {
    hub_sub *head;
    int count;
} sub_list;

struct hub {
    db *db;
    hub_config cfg;
    pthread_t thread;
    int wake_fd;                    /* eventfd: hub_poke() and hub_stop() */
    notify_listener *listener;      /* wake-ups from worker processes */
    db_listener *dblisten;          /* from any process on the database (PostgreSQL), or NULL */
    int64_t dblisten_retry_ms;      /* when to listen again after losing it */
    _Atomic bool listening;         /* dblisten != NULL, for other threads (/metrics) */
    _Atomic bool stopping;
    pthread_mutex_t lock;
    sub_list live, pending;
    int64_t position;               /* newest event id handed out (hub thread) */
    int64_t last_trim_ms, last_tick_ms;
    _Atomic int64_t dropped;
};

/* ---------- messages ---------- */

hub_msg *hub_msg_ref(hub_msg *m)
{
    atomic_fetch_add(&m->refs, 1);
    return m;
}

void hub_msg_unref(hub_msg *m)
{
    if (m && atomic_fetch_sub(&m->refs, 1) == 1) free(m);
}

/* The data is JSON we wrote ourselves (asset_to_json), so it is embedded as
 * it is rather than parsed and printed again for every event. */
static hub_msg *msg_new(int64_t id, const char *type, const char *asset_id, int64_t at_ms,
                        const char *data_json)
{
    char at[32];
    time_format_ms(at_ms, at);
    const char *fmt = "{\"id\":%lld,\"type\":\"%s\",\"asset_id\":\"%s\",\"at\":\"%s\",\"data\":%s}";
    int len = snprintf(NULL, 0, fmt, (long long)id, type, asset_id, at, data_json);
    hub_msg *m = len > 0 ? malloc(sizeof *m + (size_t)len + 1) : NULL;
    if (!m) return NULL;
    atomic_init(&m->refs, 1);
    m->id = id;
    snprintf(m->type, sizeof m->type, "%s", type);
    m->len = (size_t)len;
    snprintf(m->text, (size_t)len + 1, fmt, (long long)id, type, asset_id, at, data_json);
    return m;
}

hub_msg *hub_msg_for_event(const db_event *e)
{
    return msg_new(e->id, e->type, e->asset_id, e->at_ms, e->data_json);
}

/* ---------- filters ---------- */

bool hub_filter_set_types(hub_filter *f, const char *csv)
{
    f->ntypes = 0;
    const char *p = csv;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 0 || n >= sizeof f->types[0] || f->ntypes == HUB_MAX_TYPES) return false;
        memcpy(f->types[f->ntypes], p, n);
        f->types[f->ntypes][n] = '\0';
        if (!event_type_known(f->types[f->ntypes++])) return false;
        p += n + (p[n] == ',');
    }
    return true;
}

static bool type_wanted(const hub_filter *f, const char *type)
{
    if (f->ntypes == 0) return true;
    for (int i = 0; i < f->ntypes; i++)
        if (strcmp(f->types[i], type) == 0) return true;
    return false;
}

static bool matches(const hub_filter *f, const db_event *e)
{
    return strcmp(f->owner, e->owner) == 0 &&
           (!f->asset_id[0] || strcmp(f->asset_id, e->asset_id) == 0) &&
           type_wanted(f, e->type);
}

/* ---------- subscriptions ---------- */

static void list_add(sub_list *l, hub_sub *s)
{
    s->prev = NULL;
    s->next = l->head;
    if (l->head) l->head->prev = s;
    l->head = s;
    l->count++;
}

static void list_remove(sub_list *l, hub_sub *s)
{
    if (s->prev) s->prev->next = s->next;
    else l->head = s->next;
    if (s->next) s->next->prev = s->prev;
    l->count--;
}

static void give(hub *h, hub_sub *s, hub_msg *m)
{
    if (s->refused) return;
    if (!s->sink->deliver(s->arg, m)) {
        s->refused = true;
        atomic_fetch_add(&h->dropped, 1);
    }
    if (m->id > s->cursor) s->cursor = m->id;
}

hub_sub *hub_subscribe(hub *h, const hub_filter *f, const hub_sink *sink, void *arg)
{
    hub_sub *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->f = *f;
    s->sink = sink;
    s->arg = arg;
    pthread_mutex_lock(&h->lock);
    list_add(&h->pending, s);
    pthread_mutex_unlock(&h->lock);
    hub_poke(h);
    return s;
}

void hub_unsubscribe(hub *h, hub_sub *s)
{
    if (!s) return;
    pthread_mutex_lock(&h->lock);
    list_remove(s->live ? &h->live : &h->pending, s);
    pthread_mutex_unlock(&h->lock);
    free(s);
}

void hub_close_all(hub *h)
{
    pthread_mutex_lock(&h->lock);
    for (sub_list *l = &h->live; l; l = l == &h->live ? &h->pending : NULL)
        for (hub_sub *s = l->head; s; s = s->next) s->sink->closing(s->arg);
    pthread_mutex_unlock(&h->lock);
}

int64_t hub_dropped(hub *h) { return atomic_load(&h->dropped); }

int hub_subscribers(hub *h)
{
    pthread_mutex_lock(&h->lock);
    int n = h->live.count + h->pending.count;
    pthread_mutex_unlock(&h->lock);
    return n;
}

/* ---------- the tail (hub thread, lock held) ---------- */

static void fan_out(void *arg, const db_event *e)
{
    hub *h = arg;
    hub_msg *m = NULL;
    for (hub_sub *s = h->live.head; s; s = s->next) {
        if (e->id <= s->cursor || s->refused || !matches(&s->f, e)) continue;
        if (!m && !(m = msg_new(e->id, e->type, e->asset_id, e->at_ms, e->data_json))) return;
        give(h, s, m);
    }
    hub_msg_unref(m);
    h->position = e->id;
}

static void tail(hub *h, db_conn *c)
{
    int64_t before = h->position;
    int n;
    do {
        if (db_events_after(c, h->position, NULL, NULL, TAIL_BATCH, fan_out, h, &n) != DB_OK)
            break;
    } while (n == TAIL_BATCH);
    if (h->position != before && h->cfg.on_news) h->cfg.on_news(h->cfg.news_arg);
}

/* ---------- admission (hub thread, lock held) ---------- */

typedef struct replay_ctx {
    hub *h;
    hub_sub *s;
} replay_ctx;

static void replay_one(void *arg, const db_event *e)
{
    replay_ctx *rc = arg;
    hub_sub *s = rc->s;
    if (e->id <= s->cursor || !matches(&s->f, e)) {
        if (e->id > s->cursor) s->cursor = e->id;
        return;
    }
    hub_msg *m = msg_new(e->id, e->type, e->asset_id, e->at_ms, e->data_json);
    if (m) give(rc->h, s, m);
    hub_msg_unref(m);
}

static void send_replay_incomplete(hub *h, hub_sub *s, int64_t oldest)
{
    char text[160];
    int len = snprintf(text, sizeof text,
                       "{\"type\":\"replay.incomplete\",\"since\":%lld,\"oldest\":%lld}",
                       (long long)s->f.since, (long long)oldest);
    hub_msg *m = malloc(sizeof *m + (size_t)len + 1);
    if (!m) return;
    atomic_init(&m->refs, 1);
    m->id = 0;
    snprintf(m->type, sizeof m->type, "replay.incomplete");
    m->len = (size_t)len;
    memcpy(m->text, text, (size_t)len + 1);
    give(h, s, m);
    hub_msg_unref(m);
}

/* Everything after `since` the log still has, then live. */
/* The database failed us mid-admission: end the connection (the client
 * reconnects with since=) rather than let it believe nothing happened. */
static void give_up(hub *h, hub_sub *s)
{
    s->refused = true;
    atomic_fetch_add(&h->dropped, 1);
    s->sink->closing(s->arg);
}

static void admit_replay(hub *h, db_conn *c, hub_sub *s)
{
    int64_t oldest, newest;
    if (db_events_bounds(c, &oldest, &newest) != DB_OK) {
        give_up(h, s);
        return;
    }
    s->cursor = s->f.since;
    if (s->f.since + 1 < oldest && s->f.since < newest) send_replay_incomplete(h, s, oldest);
    const char *only = s->f.asset_id[0] ? s->f.asset_id : NULL;
    replay_ctx rc = {h, s};
    int n;
    do {
        int64_t before = s->cursor;
        if (db_events_after(c, s->cursor, s->f.owner, only, TAIL_BATCH, replay_one, &rc, &n) !=
            DB_OK) {
            give_up(h, s);
            return;
        }
        if (s->cursor == before) break;
    } while (n == TAIL_BATCH && !s->refused);
}

/* The asset as it is now, stamped with the newest event id of the same
 * read, so the live events after it are exactly the later changes. */
static void admit_snapshot(hub *h, db_conn *c, hub_sub *s)
{
    asset a;
    int64_t oldest, newest = h->position;
    db_status st = db_begin_read(c) == DB_OK ? db_events_bounds(c, &oldest, &newest) : DB_ERROR;
    if (st == DB_OK) st = db_asset_get(c, s->f.owner, s->f.asset_id, &a);
    db_rollback(c);
    s->cursor = newest > h->position ? newest : h->position;
    if (st == DB_ERROR) give_up(h, s);
    if (st != DB_OK) return;   /* deleted meanwhile: its asset.deleted event follows */
    json_t *j = db_asset_json(c, &a);
    char *data = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    hub_msg *m = data ? msg_new(s->cursor, "snapshot", a.id, time_now_ms(), data) : NULL;
    free(data);
    if (m) give(h, s, m);
    hub_msg_unref(m);
}

static void admit(hub *h, db_conn *c)
{
    while (h->pending.head) {
        hub_sub *s = h->pending.head;
        list_remove(&h->pending, s);
        if (s->f.since >= 0) admit_replay(h, c, s);
        else if (s->f.asset_id[0]) admit_snapshot(h, c, s);
        else s->cursor = h->position;
        if (s->cursor < h->position) s->cursor = h->position;  /* the tail has given the rest */
        s->live = true;
        list_add(&h->live, s);
    }
}

/* ---------- the thread ---------- */

/* Three ways news arrives: this process's own writers (wake_fd), worker
 * processes on this machine (notify.h), and — on PostgreSQL — any process
 * anywhere (db_listen).  The poll interval covers a lost wake-up. */
static void wait_for_news(hub *h)
{
    int64_t now = time_now_ms();
    if (!h->dblisten && h->dblisten_retry_ms && now >= h->dblisten_retry_ms) {
        h->dblisten = db_listen(h->db);
        h->dblisten_retry_ms = h->dblisten ? 0 : now + DBLISTEN_RETRY_MS;
        atomic_store(&h->listening, h->dblisten != NULL);
    }
    struct pollfd fds[3] = {{.fd = h->wake_fd, .events = POLLIN}, {.fd = -1}, {.fd = -1}};
    if (h->listener) fds[1] = (struct pollfd){.fd = notify_listener_fd(h->listener), .events = POLLIN};
    if (h->dblisten) fds[2] = (struct pollfd){.fd = db_listener_fd(h->dblisten), .events = POLLIN};
    if (poll(fds, 3, h->cfg.poll_ms) <= 0) return;
    uint64_t v;
    if (fds[0].revents & POLLIN) (void)!read(h->wake_fd, &v, sizeof v);
    if (fds[1].revents & POLLIN) notify_listener_drain(h->listener);
    if (fds[2].revents & (POLLIN | POLLERR | POLLHUP) && !db_listener_drain(h->dblisten)) {
        log_warn("lost the database's wake-ups; polling until they are back", NULL);
        db_listener_close(h->dblisten);
        h->dblisten = NULL;
        atomic_store(&h->listening, false);
        h->dblisten_retry_ms = now + DBLISTEN_RETRY_MS;
    }
}

bool hub_listening(hub *h) { return h && atomic_load(&h->listening); }

static void housekeeping(hub *h, db_conn *c)
{
    int64_t now = time_now_ms();
    if (now - h->last_tick_ms >= HUB_TICK_SECONDS * 1000) {
        h->last_tick_ms = now;
        for (hub_sub *s = h->live.head; s; s = s->next)
            if (s->sink->tick && !s->refused) s->sink->tick(s->arg);
    }
    if (now - h->last_trim_ms >= TRIM_EVERY_MS) {
        h->last_trim_ms = now;
        int64_t removed = 0;
        if (db_events_trim(c, now - h->cfg.retention_ms, &removed) == DB_OK && removed > 0) {
            char n[24];
            snprintf(n, sizeof n, "%lld", (long long)removed);
            log_info("events trimmed", "removed", n, NULL);
        }
    }
}

static void *run(void *arg)
{
    hub *h = arg;
    while (!atomic_load(&h->stopping)) {
        wait_for_news(h);
        db_conn *c = db_acquire(h->db);
        if (!c) continue;
        pthread_mutex_lock(&h->lock);
        housekeeping(h, c);   /* trim first: a replay must not hand out expired events */
        tail(h, c);
        admit(h, c);
        pthread_mutex_unlock(&h->lock);
        db_release(h->db, c);
    }
    return NULL;
}

hub *hub_start(db *d, const hub_config *cfg, const char **err)
{
    hub *h = calloc(1, sizeof *h);
    if (!h) { *err = "out of memory"; return NULL; }
    h->db = d;
    h->cfg = *cfg;
    pthread_mutex_init(&h->lock, NULL);
    h->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    db_conn *c = db_acquire(d);
    int64_t oldest;
    h->last_tick_ms = time_now_ms();
    h->last_trim_ms = h->last_tick_ms - TRIM_EVERY_MS;   /* trim once before serving */
    /* Live subscribers start from now; history is for replays. */
    bool ok = h->wake_fd >= 0 && c && db_events_bounds(c, &oldest, &h->position) == DB_OK;
    if (ok) housekeeping(h, c);
    db_release(d, c);
    if (!ok) {
        *err = "cannot read the event log";
        if (h->wake_fd >= 0) close(h->wake_fd);
        free(h);
        return NULL;
    }
    h->listener = notify_listen(cfg->data_dir);
    h->dblisten = db_listen(d);   /* NULL on SQLite: notify.h is enough */
    atomic_store(&h->listening, h->dblisten != NULL);
    if (pthread_create(&h->thread, NULL, run, h) != 0) {
        *err = "cannot start the hub thread";
        notify_listener_close(h->listener);
        db_listener_close(h->dblisten);
        close(h->wake_fd);
        free(h);
        return NULL;
    }
    return h;
}

void hub_poke(hub *h)
{
    uint64_t one = 1;
    if (h) (void)!write(h->wake_fd, &one, sizeof one);
}

void hub_stop(hub *h)
{
    if (!h) return;
    atomic_store(&h->stopping, true);
    hub_poke(h);
    pthread_join(h->thread, NULL);
    notify_listener_close(h->listener);
    db_listener_close(h->dblisten);
    close(h->wake_fd);
    pthread_mutex_destroy(&h->lock);
    free(h);
}
