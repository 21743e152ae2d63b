/* ws_handshake.h — checking an HTTP request that asks for a WebSocket
 * (RFC 6455 section 4.2.1) and computing the 101's Sec-WebSocket-Accept.
 * Pure functions of the request, used by http_reply_websocket() on HTTP
 * threads. */
#ifndef ASSETD_WS_HANDSHAKE_H
#define ASSETD_WS_HANDSHAKE_H

#include "http/server.h"

#include <stdbool.h>

/* NULL for a valid handshake; else why not (a static string), with the
 * status to answer in *status (400, or 426 for another version). */
const char *ws_handshake_problem(http_req *r, int *status);
/* base64(SHA-1(key + GUID)) into out (28 characters and a NUL); key is a
 * valid Sec-WebSocket-Key.  false if the digest failed. */
bool ws_handshake_accept(const char *key, char out[29]);

#endif
