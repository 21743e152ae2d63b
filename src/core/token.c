/* token.c — see token.h. */
#include "core/token.h"
#include "util/encode.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAC_LEN 32
#define PAYLOAD_MAX 256
#define PURPOSE_MAX 31   /* token_verify's %31[^|] */

static bool read_exact(const char *path, uint8_t *out, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t n = read(fd, out, len);
    close(fd);
    return n == (ssize_t)len;
}

#define SECRET_TEXT 44   /* base64url of TOKEN_SECRET_LEN bytes, with its NUL */

bool token_secret_adopt(db_conn *c, const char *data_dir, uint8_t secret[TOKEN_SECRET_LEN])
{
    char path[1100], offer[SECRET_TEXT], stored[SECRET_TEXT + 16];
    uint8_t buf[TOKEN_SECRET_LEN + 3];
    snprintf(path, sizeof path, "%s/secret", data_dir);
    bool ok = read_exact(path, buf, TOKEN_SECRET_LEN) || RAND_bytes(buf, TOKEN_SECRET_LEN) == 1;
    if (ok) {
        b64url_encode(buf, TOKEN_SECRET_LEN, offer);
        ok = db_secret_adopt(c, "url_token", offer, stored, sizeof stored) == DB_OK &&
             b64url_decode(stored, buf, sizeof buf) == TOKEN_SECRET_LEN;
    }
    if (ok) memcpy(secret, buf, TOKEN_SECRET_LEN);
    else log_error("cannot adopt the URL-token secret (database, or CSPRNG)", NULL);
    OPENSSL_cleanse(buf, sizeof buf);
    OPENSSL_cleanse(offer, sizeof offer);
    OPENSSL_cleanse(stored, sizeof stored);
    return ok;
}

static void mac(const uint8_t secret[TOKEN_SECRET_LEN], const char *payload, size_t len,
                uint8_t out[MAC_LEN])
{
    unsigned int n = MAC_LEN;
    HMAC(EVP_sha256(), secret, TOKEN_SECRET_LEN, (const unsigned char *)payload, len, out, &n);
}

bool token_sign(const uint8_t secret[TOKEN_SECRET_LEN], const char *purpose, const char *owner,
                int64_t expires_s, char out[TOKEN_MAX + 1])
{
    /* Only what token_verify reads back as signed: a purpose with a '|'
     * would verify for the purpose before it, with its own expiry. */
    size_t plen = strlen(purpose), olen = strlen(owner);
    if (plen == 0 || plen > PURPOSE_MAX || strchr(purpose, '|') || olen == 0 || olen > OWNER_MAX)
        return false;
    char payload[PAYLOAD_MAX];
    int len = snprintf(payload, sizeof payload, "1|%s|%" PRId64 "|%s", purpose, expires_s, owner);
    if (len < 0 || len >= (int)sizeof payload) return false;
    uint8_t m[MAC_LEN];
    mac(secret, payload, (size_t)len, m);
    char p64[PAYLOAD_MAX * 4 / 3 + 4], m64[MAC_LEN * 4 / 3 + 4];
    b64url_encode((const uint8_t *)payload, (size_t)len, p64);
    b64url_encode(m, MAC_LEN, m64);
    return snprintf(out, TOKEN_MAX + 1, "%s.%s", p64, m64) <= TOKEN_MAX;
}

bool token_verify(const uint8_t secret[TOKEN_SECRET_LEN], const char *purpose, const char *token,
                  int64_t now_s, char owner[OWNER_MAX + 1])
{
    const char *dot = token ? strchr(token, '.') : NULL;
    char p64[TOKEN_MAX + 1];
    if (!dot || strlen(token) > TOKEN_MAX) return false;
    memcpy(p64, token, (size_t)(dot - token));
    p64[dot - token] = '\0';
    char payload[PAYLOAD_MAX + 1];
    uint8_t given[MAC_LEN + 1], want[MAC_LEN];
    int len = b64url_decode(p64, (uint8_t *)payload, PAYLOAD_MAX);
    if (len <= 0 || b64url_decode(dot + 1, given, sizeof given) != MAC_LEN) return false;
    mac(secret, payload, (size_t)len, want);
    if (CRYPTO_memcmp(given, want, MAC_LEN) != 0) return false;
    /* Authentic from here on: the payload is one we wrote. */
    payload[len] = '\0';
    char what[PURPOSE_MAX + 1];
    long long expires;
    int used = 0;
    if (sscanf(payload, "1|%31[^|]|%lld|%n", what, &expires, &used) != 2 || used == 0 ||
        strcmp(what, purpose) != 0 || expires < now_s || strlen(payload + used) > OWNER_MAX)
        return false;
    strcpy(owner, payload + used);
    return owner[0] != '\0';
}
