/* event.c — see event.h. */
#include "core/event.h"

#include <string.h>

static const char *const types[] = {"asset.created",  "asset.processing",  "asset.ready",
                                    "asset.failed",   "asset.deleted",     "asset.updated",
                                    "asset.playable", "job.progress",      "slideshow.control",
                                    "run.created",    "run.progress",      "run.finished"};

bool event_type_known(const char *type)
{
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (strcmp(types[i], type) == 0) return true;
    return false;
}
