/* json_body.c — small JSON request bodies (POST /v1/webhooks, ...).
 *
 * Uploads stream to disk; a JSON body is the one thing read into memory,
 * so it is capped (JSON_BODY_MAX, 413 beyond it, checked against
 * Content-Length before any byte is read) and parsed only when complete.
 */
#include "api/app.h"
#include "util/parse.h"

#include <stdlib.h>
#include <string.h>

typedef struct json_body {
    size_t len;
    bool too_large;
    char data[JSON_BODY_MAX];
} json_body;

bool json_body_begin(http_req *r)
{
    const char *length = http_req_header(r, "Content-Length");
    uint64_t declared;
    if (length && parse_u64(length, &declared) && declared > JSON_BODY_MAX) {
        http_reply_error(r, 413, "payload_too_large", "a JSON body is at most %d bytes",
                         JSON_BODY_MAX);
        return false;
    }
    if (!http_req_body_limit(r, JSON_BODY_MAX)) return false;
    json_body *b = malloc(sizeof *b);
    if (!b) {
        http_reply_error(r, 500, "internal", "out of memory");
        return false;
    }
    b->len = 0;
    http_req_set_data(r, b, free);
    return true;
}

bool json_body_data(http_req *r, const char *data, size_t len)
{
    json_body *b = http_req_data(r);
    if (len > JSON_BODY_MAX - b->len) {
        http_reply_error(r, 413, "payload_too_large", "a JSON body is at most %d bytes",
                         JSON_BODY_MAX);
        return false;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return true;
}

json_t *json_body_object(http_req *r)
{
    json_body *b = http_req_data(r);
    json_error_t err;
    json_t *o = b ? json_loadb(b->data, b->len, JSON_REJECT_DUPLICATES, &err) : NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        if (!b || b->len == 0) http_reply_error(r, 400, "invalid_json", "send a JSON object");
        else if (o == NULL)
            http_reply_error(r, 400, "invalid_json", "line %d: %s", err.line, err.text);
        else http_reply_error(r, 400, "invalid_json", "the body must be a JSON object");
        return NULL;
    }
    return o;
}
