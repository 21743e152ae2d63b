/* webhook — the JSON body of POST /v1/webhooks as core/webhook.c checks it
 * (the target URL and the event list), and the delivery signature.
 *
 * Input: "URL\0HOST\0EVENTS-JSON\0BODY".
 * Properties:
 *   - a URL allowed with local targets refused has an http(s) scheme, and
 *     the host libcurl will connect to is no loopback name (localhost,
 *     *.localhost, ip6-localhost...) and no loopback, link-local or
 *     unspecified address, in any spelling inet_aton or inet_pton reads —
 *     also with the host put into "http://HOST/x" and "https://u@HOST:8443/";
 *   - allowing local targets only ever allows more;
 *   - an accepted event list is its array's strings, each a known type,
 *     joined by commas, and fits;
 *   - a delivery signature changes when one byte of the body does.
 */
#include "fuzz.h"
#include "core/event.h"
#include "core/webhook.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool local_name(const char *h)
{
    char name[300];
    size_t n = strlen(h);
    if (n >= sizeof name) return false;
    memcpy(name, h, n + 1);
    while (n && name[n - 1] == '.') name[--n] = '\0';
    static const char *const names[] = {"localhost", "localhost.localdomain", "localhost6",
                                        "localhost6.localdomain6", "ip6-localhost",
                                        "ip6-loopback"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcasecmp(name, names[i]) == 0) return true;
    if (n > 10 && strcasecmp(name + n - 10, ".localhost") == 0) return true;
    if (n > 2 && name[0] == '[' && name[n - 1] == ']') {
        memmove(name, name + 1, n - 2);
        name[n - 2] = '\0';
    }
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_aton(name, &v4) == 1) {
        uint32_t a = ntohl(v4.s_addr);
        return (a >> 24) == 127 || (a >> 16) == 0xa9fe || a == 0;
    }
    if (inet_pton(AF_INET6, name, &v6) == 1) {
        if (IN6_IS_ADDR_V4MAPPED(&v6)) {
            uint32_t a = (uint32_t)v6.s6_addr[12] << 24 | (uint32_t)v6.s6_addr[13] << 16 |
                         (uint32_t)v6.s6_addr[14] << 8 | v6.s6_addr[15];
            return (a >> 24) == 127 || (a >> 16) == 0xa9fe || a == 0;
        }
        return IN6_IS_ADDR_LOOPBACK(&v6) || IN6_IS_ADDR_LINKLOCAL(&v6) ||
               IN6_IS_ADDR_UNSPECIFIED(&v6);
    }
    return false;
}

static void check_url(const char *url)
{
    const char *why = NULL;
    bool strict = webhook_url_allowed(url, false, &why);
    bool loose = webhook_url_allowed(url, true, &why);
    FUZZ_CHECK(!strict || loose);
    if (!strict) {
        FUZZ_CHECK(why != NULL);
        return;
    }
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    FUZZ_CHECK(curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
               curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
               curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK);
    FUZZ_CHECK(strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0);
    if (local_name(host)) {
        fprintf(stderr, "\nallowed a local target: url '%s', host '%s'\n", url, host);
        __builtin_trap();
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
}

static void check_events(const char *text)
{
    json_t *doc = json_loads(text, 0, NULL);
    char out[WEBHOOK_EVENTS_MAX + 1];
    const char *why = NULL;
    if (webhook_events_parse(doc, out, &why)) {
        FUZZ_CHECK(json_is_array(doc) && json_array_size(doc) > 0 && strlen(out) <= WEBHOOK_EVENTS_MAX);
        size_t i, o = 0;
        json_t *v;
        json_array_foreach(doc, i, v) {
            const char *t = json_string_value(v);
            FUZZ_CHECK(t && event_type_known(t));
            size_t n = strlen(t);
            if (i) FUZZ_CHECK(out[o++] == ',');
            FUZZ_CHECK(strncmp(out + o, t, n) == 0);
            o += n;
        }
        FUZZ_CHECK(out[o] == '\0');
    } else {
        FUZZ_CHECK(why != NULL);
    }
    json_decref(doc);
}

static void check_signature(const char *body, size_t at)
{
    static const char secret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw4nCEWn7K2pc=";
    char a[128], b[128];
    size_t n = strlen(body);
    FUZZ_CHECK(webhook_sign(secret, "msg_x", 1700000000, body, n, a, sizeof a));
    if (!n) return;
    char *copy = strdup(body);
    copy[at % n] ^= 1;
    FUZZ_CHECK(webhook_sign(secret, "msg_x", 1700000000, copy, n, b, sizeof b));
    FUZZ_CHECK(strcmp(a, b) != 0);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *f[4], *buf;
    fuzz_split(data, size, f, 4, &buf);
    check_url(f[0]);
    if (strlen(f[1]) < 300) {
        char url[400];
        snprintf(url, sizeof url, "http://%s/x", f[1]);
        check_url(url);
        snprintf(url, sizeof url, "https://u@%s:8443/", f[1]);
        check_url(url);
    }
    check_events(f[2]);
    check_signature(f[3], size);
    free(buf);
    return 0;
}
