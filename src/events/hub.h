/* hub.h — fan-out of the event log to live subscribers (WebSocket, SSE).
 *
 * The event log in the database is the only source of truth: every state
 * change commits its event with it (db.h, "events").  The hub is one thread
 * in the serve process that tails that log — woken at once by hub_poke()
 * from this process and by a datagram from worker processes (notify.h),
 * with a short poll as the fallback — and hands each new event to every
 * subscription whose filter matches.
 *
 * Ordering, gaps and duplicates.  Each subscription has a cursor: the id of
 * the last event it was given.  The hub delivers an event only if its id is
 * above the cursor, and only the hub thread delivers, so a subscription sees
 * ids strictly increasing.  A new subscription is admitted on the hub
 * thread between two tails:
 *   - with `since`: the missed events (since, newest] are read from the log
 *     and delivered first; if the log no longer reaches back to since+1 a
 *     `replay.incomplete` message says so before the oldest kept event;
 *   - with an asset and no `since`: a `snapshot` message carries the asset's
 *     current JSON and, as its id, the newest event id read in the same
 *     transaction, so the live events that follow are exactly the later ones;
 *   - otherwise it starts at the hub's current position.
 * The tail then continues from there for every subscription alike.
 *
 * Delivery never blocks the hub: a sink queues the message or refuses it
 * (a slow consumer over its bound); a refused subscription gets nothing
 * more, and the sink closes its connection and unsubscribes.
 *
 * Messages are JSON text, built once per event and shared by reference
 * among all subscribers:
 *   {"id":N,"type":"asset.ready","asset_id":"…","at":"…","data":{…}}
 */
#ifndef ASSETD_HUB_H
#define ASSETD_HUB_H

#include "core/asset.h"
#include "db/db.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HUB_MAX_TYPES 8

typedef struct hub hub;
typedef struct hub_sub hub_sub;

/* An immutable message shared by every subscriber it goes to. */
typedef struct hub_msg {
    _Atomic int refs;
    int64_t id;              /* 0 for messages outside the log (replay.incomplete) */
    char type[32];
    size_t len;
    char text[];             /* JSON, NUL-terminated */
} hub_msg;

/* A sink that keeps a message beyond deliver() takes a reference. */
hub_msg *hub_msg_ref(hub_msg *m);
void hub_msg_unref(hub_msg *m);
/* The message of an event of the log, exactly as subscribers get it (for
 * other publishers of the log: events/amqp.h); one reference, or NULL. */
hub_msg *hub_msg_for_event(const db_event *e);

typedef struct hub_filter {
    char owner[OWNER_MAX + 1];           /* required: nobody sees another owner's events */
    char asset_id[ID_LEN + 1];           /* "": all of the owner's assets */
    char types[HUB_MAX_TYPES][32];       /* empty list: every type */
    int ntypes;
    int64_t since;                       /* replay after this id; -1: none */
} hub_filter;

/* Parses "asset.ready,asset.failed" into f->types; false if malformed,
 * unknown (core/event.h) or too many. */
bool hub_filter_set_types(hub_filter *f, const char *csv);

typedef struct hub_sink {
    /* On the hub thread, in id order.  Queue the message (taking a
     * reference) and return true, or return false to refuse it: the
     * subscription then gets nothing more and the sink should close. */
    bool (*deliver)(void *arg, hub_msg *m);
    /* On the hub thread every HUB_TICK_SECONDS (keep-alives); may be NULL. */
    void (*tick)(void *arg);
    /* From hub_close_all(): the server is stopping, end the connection.
     * Must not unsubscribe synchronously (the hub lock is held). */
    void (*closing)(void *arg);
} hub_sink;

#define HUB_TICK_SECONDS 15

typedef struct hub_config {
    const char *data_dir;     /* where worker processes send their wake-ups */
    int64_t retention_ms;     /* events older than this are trimmed */
    int poll_ms;              /* fallback poll interval */
    /* Called on the hub thread when new events were found (e.g. to wake
     * the webhook dispatcher); may be NULL. */
    void (*on_news)(void *arg);
    void *news_arg;
} hub_config;

/* Starts the hub thread on d (borrowed, must outlive the hub).  NULL with
 * *err set on failure. */
hub *hub_start(db *d, const hub_config *cfg, const char **err);
/* Stops the thread; every subscription must be gone already. */
void hub_stop(hub *h);

/* After a commit that appended events: look now.  Cheap, any thread. */
void hub_poke(hub *h);

/* Registers a subscription (admitted asynchronously on the hub thread).
 * sink and arg must stay valid until hub_unsubscribe() returns. */
hub_sub *hub_subscribe(hub *h, const hub_filter *f, const hub_sink *sink, void *arg);
/* Any thread except the hub's (never from a sink callback).  After it
 * returns the sink is not called again for this subscription, which is
 * freed. */
void hub_unsubscribe(hub *h, hub_sub *s);
/* Asks every subscription's sink to close (shutdown). */
void hub_close_all(hub *h);
/* Live subscriptions (metrics, tests). */
int hub_subscribers(hub *h);
/* Subscriptions whose sink refused a message (slow consumers), ever. */
int64_t hub_dropped(hub *h);
/* True while the hub hears other processes' commits from the database
 * itself (PostgreSQL's LISTEN); false on SQLite, or while it polls. */
bool hub_listening(hub *h);

#endif
