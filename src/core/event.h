/* event.h — the event types of the event log (db.h, "events").
 *
 * One list for every consumer that lets clients name types: stream filters
 * (?types=) and webhook subscriptions.
 */
#ifndef ASSETD_EVENT_H
#define ASSETD_EVENT_H

#include <stdbool.h>

/* For error messages. */
#define EVENT_TYPES_TEXT \
    "asset.created, asset.processing, asset.ready, asset.failed, asset.deleted, asset.updated, " \
    "asset.playable, job.progress, slideshow.control, run.created, run.progress, run.finished"

bool event_type_known(const char *type);

#endif
