/* run_report.h — a CSV run's report as a readable HTML page (GET
 * /v1/runs/{id}/report with Accept: text/html, and the publish form's
 * answer).  It keeps the original report's lines ("Rows sent", "Received",
 * "Saved", "Database count", the session's id) and adds what the original
 * could not know: skipped rows and their lines, duplicates, refused
 * publishes, timings and rates, the failure.  Every value from the run or
 * the CSV is HTML-escaped. */
#ifndef ASSETD_RUN_REPORT_H
#define ASSETD_RUN_REPORT_H

#include "core/run.h"

#include <stdint.h>

/* A complete page; NULL when out of memory.  Caller frees. */
char *run_report_html(const run_rec *r, int64_t now_ms);
/* A page that says only message (an error before a run could start, or
 * where to find a run still going); link, if not NULL, is a path shown
 * as a link.  NULL when out of memory.  Caller frees. */
char *run_message_html(const char *title, const char *message, const char *link);

#endif
