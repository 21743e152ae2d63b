/* notify.h — "the event log has news": a wake-up from worker processes to
 * the serve process.
 *
 * Workers commit state changes (and their events) to the shared database;
 * the hub in `assetd serve` would only see them at its next poll.  After
 * each such commit a worker sends one empty datagram to a Unix socket in
 * the data directory (DATA/events.sock), which the hub waits on.  The
 * datagram carries nothing: the database is the only source of truth, so
 * a lost or duplicated wake-up costs at most one poll interval or one
 * empty read.  Sending never blocks and never fails loudly (no listener:
 * nothing to wake).
 */
#ifndef ASSETD_NOTIFY_H
#define ASSETD_NOTIFY_H

typedef struct notify_listener notify_listener;
typedef struct notifier notifier;

/* Binds DATA/events.sock (replacing a stale one).  NULL on failure, e.g. a
 * path too long for a Unix socket; the hub then only polls. */
notify_listener *notify_listen(const char *data_dir);
/* Readable when a wake-up arrived; drain it with notify_listener_drain(). */
int notify_listener_fd(const notify_listener *l);
void notify_listener_drain(notify_listener *l);
void notify_listener_close(notify_listener *l);

/* For writers in other processes.  Never NULL for a valid data_dir. */
notifier *notifier_open(const char *data_dir);
void notifier_poke(notifier *n);
void notifier_close(notifier *n);

#endif
