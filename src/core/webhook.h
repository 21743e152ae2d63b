/* webhook.h — webhook endpoints and their deliveries.
 *
 * An owner registers a URL and the event types it wants; every matching
 * event of theirs becomes one delivery, sent in the Standard Webhooks
 * format (https://www.standardwebhooks.com):
 *
 *   POST url
 *   webhook-id: msg_…          the delivery id, the same on every retry
 *   webhook-timestamp: 1700000000
 *   webhook-signature: v1,<base64 HMAC-SHA256(key, id "." timestamp "." body)>
 *   {"type":"asset.ready","timestamp":"…","data":{…asset…}}
 *
 * where key is the endpoint's secret ("whsec_" + base64 of 32 random bytes)
 * decoded.  A 2xx answer delivers; anything else (or no answer in time) is
 * retried with exponential backoff until the retry window (24 h by
 * default) has passed, then the delivery has failed — and an endpoint that
 * failed for that long is disabled (sustained failure), with the reason.
 *
 * Targets: http(s) only; loopback, link-local and unspecified addresses are
 * refused unless the server allows them (--webhook-allow-local), both when
 * the URL is registered and again at connect time, after DNS resolution.
 */
#ifndef ASSETD_WEBHOOK_H
#define ASSETD_WEBHOOK_H

#include "core/asset.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define WEBHOOK_ID_LEN (3 + ID_LEN)          /* "wh_" + id */
#define DELIVERY_ID_LEN (4 + ID_LEN)         /* "msg_" + id */
#define WEBHOOK_URL_MAX 2048
#define WEBHOOK_EVENTS_MAX 255               /* comma-separated types */
#define WEBHOOK_SECRET_LEN 50                /* "whsec_" + 44 */

typedef struct webhook {
    char id[WEBHOOK_ID_LEN + 1];
    char owner[OWNER_MAX + 1];
    char url[WEBHOOK_URL_MAX + 1];
    char events[WEBHOOK_EVENTS_MAX + 1];
    char secret[WEBHOOK_SECRET_LEN + 1];
    int64_t created_ms;
    bool disabled;
    char disabled_reason[128];
} webhook;

typedef enum { DELIVERY_PENDING, DELIVERY_DELIVERED, DELIVERY_FAILED } delivery_state;

typedef struct webhook_delivery {
    char id[DELIVERY_ID_LEN + 1];
    char webhook_id[WEBHOOK_ID_LEN + 1];
    int64_t event_id;
    char type[32];
    delivery_state state;
    int attempts;
    int last_status;            /* HTTP status of the last attempt; 0: none */
    char last_error[256];
    int64_t created_ms, next_at_ms, finished_ms;
} webhook_delivery;

/* Fills id, secret and created_ms of a new endpoint; false if the CSPRNG
 * failed. */
bool webhook_init(webhook *w, const char *owner, const char *url, const char *events_csv,
                  int64_t now_ms);

/* A JSON array of event types -> "a,b" in out; false (with why) if empty,
 * unknown types, or too long. */
bool webhook_events_parse(const json_t *array, char out[WEBHOOK_EVENTS_MAX + 1], const char **why);
/* True if url is an http(s) URL we may call; false with why otherwise. */
bool webhook_url_allowed(const char *url, bool allow_local, const char **why);
/* True if a connection to this address is allowed (checked after DNS). */
bool webhook_address_allowed(const struct sockaddr *sa, bool allow_local);

/* Writes the webhook-signature value for one attempt into out (>= 64 +
 * 4 bytes); false if the secret is malformed. */
bool webhook_sign(const char *secret, const char *msg_id, int64_t timestamp_s,
                  const char *body, size_t len, char *out, size_t cap);

/* Delay before attempt number `attempt` (1: the first retry): base * 2^(n-1),
 * capped at 4 hours. */
int64_t webhook_retry_delay_ms(int attempt, int64_t base_ms);

/* New references; the secret is shown only when include_secret. */
json_t *webhook_to_json(const webhook *w, bool include_secret);
json_t *webhook_delivery_to_json(const webhook_delivery *d);

#endif
