/* webhook.c — see webhook.h. */
#include "core/webhook.h"
#include "core/event.h"
#include "util/timefmt.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define SECRET_BYTES 32
/* 253 characters in a DNS name, and trailing dots; IPv6 literals are shorter. */
#define HOST_MAX 255
#define RETRY_CAP_MS (4LL * 3600 * 1000)

bool webhook_init(webhook *w, const char *owner, const char *url, const char *events_csv,
                  int64_t now_ms)
{
    memset(w, 0, sizeof *w);
    char id[ID_LEN + 1];
    unsigned char key[SECRET_BYTES];
    if (!id_generate(id) || RAND_bytes(key, sizeof key) != 1) return false;
    snprintf(w->id, sizeof w->id, "wh_%s", id);
    memcpy(w->secret, "whsec_", 6);
    EVP_EncodeBlock((unsigned char *)w->secret + 6, key, sizeof key);
    snprintf(w->owner, sizeof w->owner, "%s", owner);
    snprintf(w->url, sizeof w->url, "%s", url);
    snprintf(w->events, sizeof w->events, "%s", events_csv);
    w->created_ms = now_ms;
    return true;
}

bool webhook_events_parse(const json_t *array, char out[WEBHOOK_EVENTS_MAX + 1], const char **why)
{
    size_t i, used = 0;
    const json_t *v;
    out[0] = '\0';
    if (!json_is_array(array) || json_array_size(array) == 0) {
        *why = "events must be a non-empty array of event types";
        return false;
    }
    json_array_foreach(array, i, v) {
        const char *t = json_string_value(v);
        if (!t || !event_type_known(t)) {
            *why = "unknown event type (known: " EVENT_TYPES_TEXT ")";
            return false;
        }
        size_t n = strlen(t);
        if (used + n + 1 > WEBHOOK_EVENTS_MAX) {
            *why = "too many event types";
            return false;
        }
        if (used) out[used++] = ',';
        memcpy(out + used, t, n + 1);
        used += n;
    }
    return true;
}

/* Names that mean this machine whatever DNS says: RFC 6761's localhost and
 * everything under it, and the aliases Linux distributions put in /etc/hosts
 * (ip6-localhost, ip6-loopback on Debian). */
static bool name_is_loopback(const char *name)
{
    static const char *const names[] = {"localhost", "localhost.localdomain", "localhost6",
                                        "localhost6.localdomain6", "ip6-localhost",
                                        "ip6-loopback"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcasecmp(name, names[i]) == 0) return true;
    size_t len = strlen(name);
    return len > 10 && strcasecmp(name + len - 10, ".localhost") == 0;
}

static bool address_text_is_local(const char *text)
{
    struct in_addr v4;
    struct in6_addr v6;
    char bare[64];
    size_t len = strlen(text);
    if (len > 2 && len < sizeof bare && text[0] == '[' && text[len - 1] == ']') {
        memcpy(bare, text + 1, len - 2);   /* curl keeps IPv6 brackets */
        bare[len - 2] = '\0';
        text = bare;
    }
    /* inet_aton, not inet_pton: it also reads the shorthand forms some
     * resolvers accept ("127.1", "0x7f.1", "2130706433"). */
    if (inet_aton(text, &v4) == 1) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = v4};
        return !webhook_address_allowed((struct sockaddr *)&sa, false);
    }
    if (inet_pton(AF_INET6, text, &v6) == 1) {
        struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = v6};
        return !webhook_address_allowed((struct sockaddr *)&sa, false);
    }
    return false;
}

/* A registration-time check, so an obviously local target is refused with a
 * clear message.  It does not resolve names (no DNS on the request path, and
 * a name may resolve differently later): the connect-time check after DNS
 * (events/webhooks.c) is the one that cannot be fooled. */
static bool host_is_local(const char *host)
{
    char name[256];
    size_t len = strlen(host);
    while (len > 0 && host[len - 1] == '.') len--;   /* "localhost." is localhost */
    /* A name too long to check (past any DNS name: webhook_url_allowed
     * refuses those first) counts as local: refused, never waved through. */
    if (len == 0 || len >= sizeof name) return true;
    memcpy(name, host, len);
    name[len] = '\0';
    return name_is_loopback(name) || address_text_is_local(name);
}

bool webhook_url_allowed(const char *url, bool allow_local, const char **why)
{
    if (strlen(url) > WEBHOOK_URL_MAX) {
        *why = "the URL is too long";
        return false;
    }
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK;
    *why = "the URL is not a valid absolute URL";
    if (ok && strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
        ok = false;
        *why = "only http and https URLs are allowed";
    }
    if (ok && strlen(host) > HOST_MAX) {
        ok = false;
        *why = "the host name is longer than DNS allows";
    }
    if (ok && !allow_local && host_is_local(host)) {
        ok = false;
        *why = "loopback and link-local targets are not allowed on this server";
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

bool webhook_address_allowed(const struct sockaddr *sa, bool allow_local)
{
    if (allow_local) return true;
    if (sa->sa_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
        return (a >> 24) != 127 && (a >> 16) != 0xa9fe && a != 0;   /* 127/8, 169.254/16, 0 */
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            struct sockaddr_in v4 = {.sin_family = AF_INET};
            memcpy(&v4.sin_addr, &a->s6_addr[12], 4);
            return webhook_address_allowed((struct sockaddr *)&v4, false);
        }
        return !IN6_IS_ADDR_LOOPBACK(a) && !IN6_IS_ADDR_LINKLOCAL(a) &&
               !IN6_IS_ADDR_UNSPECIFIED(a);
    }
    return false;
}

bool webhook_sign(const char *secret, const char *msg_id, int64_t timestamp_s,
                  const char *body, size_t len, char *out, size_t cap)
{
    unsigned char key[SECRET_BYTES + 2], mac[32];
    if (strncmp(secret, "whsec_", 6) != 0 ||
        EVP_DecodeBlock(key, (const unsigned char *)secret + 6, (int)strlen(secret + 6)) <
            SECRET_BYTES)
        return false;
    char head[DELIVERY_ID_LEN + 32];
    int hn = snprintf(head, sizeof head, "%s.%lld.", msg_id, (long long)timestamp_s);
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    size_t maclen = 0;
    bool ok = ctx && EVP_MAC_init(ctx, key, SECRET_BYTES, params) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)head, (size_t)hn) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)body, len) == 1 &&
              EVP_MAC_final(ctx, mac, &maclen, sizeof mac) == 1 && cap >= 4 + 45;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
    if (!ok) return false;
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)maclen);
    return true;
}

int64_t webhook_retry_delay_ms(int attempt, int64_t base_ms)
{
    int64_t d = base_ms;
    for (int i = 1; i < attempt && d < RETRY_CAP_MS; i++) d *= 2;
    return d < RETRY_CAP_MS ? d : RETRY_CAP_MS;
}

static json_t *events_array(const char *csv)
{
    json_t *a = json_array();
    for (const char *p = csv; *p;) {
        size_t n = strcspn(p, ",");
        json_array_append_new(a, json_stringn(p, n));
        p += n + (p[n] == ',');
    }
    return a;
}

static json_t *time_or_null(int64_t ms)
{
    char t[32];
    if (!ms) return json_null();
    time_format_ms(ms, t);
    return json_string(t);
}

json_t *webhook_to_json(const webhook *w, bool include_secret)
{
    json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:b, s:s?}", "id", w->id, "url", w->url,
                          "events", events_array(w->events), "created",
                          time_or_null(w->created_ms), "disabled", w->disabled,
                          "disabled_reason", w->disabled ? w->disabled_reason : NULL);
    if (include_secret) json_object_set_new(o, "secret", json_string(w->secret));
    return o;
}

json_t *webhook_delivery_to_json(const webhook_delivery *d)
{
    static const char *states[] = {"pending", "delivered", "failed"};
    return json_pack("{s:s, s:I, s:s, s:s, s:i, s:o, s:s?, s:o, s:o, s:o}", "id", d->id,
                     "event_id", (json_int_t)d->event_id, "type", d->type, "state",
                     states[d->state], "attempts", d->attempts, "last_status",
                     d->last_status ? json_integer(d->last_status) : json_null(), "last_error",
                     d->last_error[0] ? d->last_error : NULL, "created",
                     time_or_null(d->created_ms), "next_attempt",
                     d->state == DELIVERY_PENDING ? time_or_null(d->next_at_ms) : json_null(),
                     "finished", time_or_null(d->finished_ms));
}
