/* transfer.c — see transfer.h. */
#include "core/transfer.h"
#include "util/encode.h"

#include <stdint.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool copy_env(char *out, size_t cap, const char *name, bool required)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        out[0] = '\0';
        return !required;
    }
    return (size_t)snprintf(out, cap, "%s", v) < cap;
}

bool transfer_signer_s3(transfer_signer *t, const store_s3_config *cfg)
{
    memset(t, 0, sizeof *t);
    t->to_s3 = true;
    const char *region = cfg->region && *cfg->region ? cfg->region : "us-east-1";
    snprintf(t->region, sizeof t->region, "%s", region);
    if (cfg->endpoint && *cfg->endpoint) snprintf(t->endpoint, sizeof t->endpoint, "%s", cfg->endpoint);
    else snprintf(t->endpoint, sizeof t->endpoint, "https://s3.%s.amazonaws.com", region);
    size_t n = strlen(t->endpoint);
    while (n > 0 && t->endpoint[n - 1] == '/') t->endpoint[--n] = '\0';
    snprintf(t->bucket, sizeof t->bucket, "%s", cfg->bucket);
    snprintf(t->prefix, sizeof t->prefix, "%s", cfg->prefix);
    return copy_env(t->access_key, sizeof t->access_key, "AWS_ACCESS_KEY_ID", true) &&
           copy_env(t->secret_key, sizeof t->secret_key, "AWS_SECRET_ACCESS_KEY", true) &&
           copy_env(t->session_token, sizeof t->session_token, "AWS_SESSION_TOKEN", false);
}

void transfer_signer_disk(transfer_signer *t, const uint8_t *secret, size_t len)
{
    memset(t, 0, sizeof *t);
    unsigned char mac[32];
    unsigned int maclen = 0;
    static const char purpose[] = "assetd signed transfers v1";
    HMAC(EVP_sha256(), secret, (int)len, (const unsigned char *)purpose, sizeof purpose - 1, mac,
         &maclen);
    hex_encode(mac, maclen, t->secret_key);
    snprintf(t->access_key, sizeof t->access_key, "ASSETD");
    snprintf(t->region, sizeof t->region, "local");
    snprintf(t->bucket, sizeof t->bucket, "%s", TRANSFER_DISK_BUCKET);
}

void transfer_creds(const transfer_signer *t, sigv4_creds *out)
{
    *out = (sigv4_creds){t->access_key, t->secret_key,
                         t->session_token[0] ? t->session_token : NULL, t->region, "s3"};
}

/* The object key and endpoint a URL for key names. */
static bool target(const transfer_signer *t, const char *base_url, const char *key, char *obj,
                   size_t cap, const char **endpoint)
{
    *endpoint = t->to_s3 ? t->endpoint : base_url;
    return (size_t)snprintf(obj, cap, "%s%s", t->prefix, key) < cap;
}

static sigv4_status presign(const transfer_signer *t, const char *method, const char *base_url,
                            const char *key, const sigv4_param *params, size_t nparams,
                            int64_t now_s, int64_t expires_s, char **url)
{
    char obj[STORE_S3_PREFIX_MAX + 64];
    const char *endpoint;
    if (!target(t, base_url, key, obj, sizeof obj, &endpoint)) return SIGV4_EINVAL;
    sigv4_creds c;
    transfer_creds(t, &c);
    sigv4_url_request r = {method, endpoint, t->bucket, obj, now_s, expires_s, params, nparams};
    return sigv4_presign_url(&c, &r, url);
}

sigv4_status transfer_put_url(const transfer_signer *t, const char *base_url, const char *key,
                              int64_t now_s, int64_t expires_s, char **url)
{
    return presign(t, "PUT", base_url, key, NULL, 0, now_s, expires_s, url);
}

sigv4_status transfer_get_url(const transfer_signer *t, const char *base_url, const char *key,
                              const char *disposition, int64_t now_s, int64_t expires_s,
                              char **url)
{
    sigv4_param p = {"response-content-disposition", disposition};
    return presign(t, "GET", base_url, key, disposition ? &p : NULL, disposition ? 1 : 0, now_s,
                   expires_s, url);
}

sigv4_status transfer_post_form(const transfer_signer *t, const char *base_url, const char *key,
                                uint64_t min_size, uint64_t max_size, int64_t now_s,
                                int64_t expires_s, char **url, sigv4_form *form)
{
    char obj[STORE_S3_PREFIX_MAX + 64];
    const char *endpoint;
    memset(form, 0, sizeof *form);
    *url = NULL;
    if (!target(t, base_url, key, obj, sizeof obj, &endpoint)) return SIGV4_EINVAL;
    sigv4_creds c;
    transfer_creds(t, &c);
    if (min_size > INT64_MAX || max_size > INT64_MAX) return SIGV4_EINVAL;
    sigv4_post_request r = {.bucket = t->bucket, .key = obj, .size = (int64_t)min_size,
                            .max_size = (int64_t)max_size, .now_s = now_s,
                            .expires_s = expires_s};
    sigv4_status st = sigv4_post_policy(&c, &r, form);
    if (st != SIGV4_OK) return st;
    /* Path-style: the form goes to the bucket's URL. */
    size_t cap = strlen(endpoint) + strlen(t->bucket) + 2;
    if (!(*url = malloc(cap))) {
        sigv4_form_free(form);
        return SIGV4_ENOMEM;
    }
    snprintf(*url, cap, "%s/%s", endpoint, t->bucket);
    return SIGV4_OK;
}
