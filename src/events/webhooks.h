/* webhooks.h — the webhook dispatcher: one thread that turns events into
 * deliveries and sends them with libcurl's multi interface.
 *
 * Durability comes from the database, not from this thread: the fan-in
 * (events after a stored cursor -> delivery rows, cursor moved) is one
 * transaction, and a delivery is leased before it is sent and updated after
 * the answer.  A crash between send and update re-sends after the lease:
 * delivery is at least once, and the webhook-id header (the same on every
 * attempt) lets receivers drop duplicates.
 *
 * Many transfers run at once (max_in_flight), each bounded by a timeout;
 * redirects are not followed; the connect-time address check refuses
 * loopback and link-local targets after DNS (unless allow_local), so a
 * hostname that resolves to 127.0.0.1 is caught too.  The response body is
 * read and discarded (bounded).  Polling (poll_ms) finds new events and
 * retries that came due; a poke wakes the thread at once.
 */
#ifndef ASSETD_WEBHOOKS_H
#define ASSETD_WEBHOOKS_H

#include "db/db.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct webhooks webhooks;

typedef struct webhooks_config {
    bool allow_local;          /* loopback/link-local targets allowed */
    int64_t retry_base_ms;     /* first retry delay; doubles each attempt */
    int64_t retry_window_ms;   /* a delivery failing this long fails for good */
    long timeout_s;            /* per attempt, connect included */
    int max_in_flight;
    int poll_ms;
} webhooks_config;

/* d is borrowed and must outlive the dispatcher. */
webhooks *webhooks_start(db *d, const webhooks_config *cfg, const char **err);
/* New events were committed: look now.  Any thread. */
void webhooks_poke(webhooks *w);
/* Abandons transfers in flight (their leases expire; they are retried). */
void webhooks_stop(webhooks *w);

#endif
