/* ws_handshake.c — see ws_handshake.h. */
#include "http/ws_handshake.h"

#include <string.h>
#include <strings.h>
#include <openssl/evp.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* value is a comma-separated list containing token (case-insensitive). */
static bool has_token(const char *value, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = value; p && *p;) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, ",");
        size_t end = len;
        while (end > 0 && (p[end - 1] == ' ' || p[end - 1] == '\t')) end--;
        if (end == n && strncasecmp(p, token, n) == 0) return true;
        p += len;
    }
    return false;
}

/* 24 base64 characters ending in "==" decode to exactly 16 bytes. */
static bool key_is_valid(const char *key)
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    return key && strlen(key) == 24 && strspn(key, b64) == 22 && strcmp(key + 22, "==") == 0;
}

/* base64(SHA-1(key + GUID)), RFC 6455 section 4.2.2. */
bool ws_handshake_accept(const char *key, char out[29])
{
    char joined[24 + sizeof WS_GUID];
    memcpy(joined, key, 24);
    memcpy(joined + 24, WS_GUID, sizeof WS_GUID);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(joined, strlen(joined), md, &mdlen, EVP_sha1(), NULL) || mdlen != 20)
        return false;
    EVP_EncodeBlock((unsigned char *)out, md, 20);   /* 28 characters and a NUL */
    return true;
}

/* NULL for a valid handshake; else why not, with the status to answer. */
const char *ws_handshake_problem(http_req *r, int *status)
{
    *status = 400;
    const char *upgrade = http_req_header(r, "Upgrade");
    const char *connection = http_req_header(r, "Connection");
    const char *length = http_req_header(r, "Content-Length");
    if (strcmp(http_req_method(r), "GET") != 0) return "a WebSocket handshake is a GET";
    if (!upgrade || !has_token(upgrade, "websocket") || !connection ||
        !has_token(connection, "upgrade"))
        return "this is a WebSocket endpoint: send 'Upgrade: websocket' and "
               "'Connection: Upgrade'";
    if ((length && strcmp(length, "0") != 0) || http_req_header(r, "Transfer-Encoding"))
        return "a WebSocket handshake has no body";
    const char *version = http_req_header(r, "Sec-WebSocket-Version");
    if (!version) return "Sec-WebSocket-Version is missing";
    if (strcmp(version, "13") != 0) {
        *status = 426;
        return "only WebSocket version 13 is supported";
    }
    if (!key_is_valid(http_req_header(r, "Sec-WebSocket-Key")))
        return "Sec-WebSocket-Key must be 16 bytes in base64";
    return NULL;
}
