/* etag.h — conditional requests: does an If-None-Match list match our ETag?
 *
 * Shared by every route that sends validators (asset bytes, renditions, the
 * embedded web page), so they all answer 304 by the same rules.
 */
#ifndef ASSETD_HTTP_ETAG_H
#define ASSETD_HTTP_ETAG_H

#include <stdbool.h>

/* header: an If-None-Match value (a list of entity tags, or "*"); etag: ours,
 * quoted.  Weak comparison (RFC 9110 §13.1.2), so W/"x" matches "x". */
bool http_etag_matches(const char *header, const char *etag);

#endif
