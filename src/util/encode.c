/* encode.c — see encode.h. */
#include "util/encode.h"

#include <openssl/rand.h>
#include <string.h>

static const char B64URL[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void b64url_encode(const uint8_t *in, size_t len, char *out)
{
    size_t i = 0;
    char *o = out;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = B64URL[v >> 18 & 63];
        *o++ = B64URL[v >> 12 & 63];
        *o++ = B64URL[v >> 6 & 63];
        *o++ = B64URL[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *o++ = B64URL[v >> 18 & 63];
        *o++ = B64URL[v >> 12 & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *o++ = B64URL[v >> 18 & 63];
        *o++ = B64URL[v >> 12 & 63];
        *o++ = B64URL[v >> 6 & 63];
    }
    *o = '\0';
}

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

int b64url_decode(const char *in, uint8_t *out, size_t cap)
{
    size_t n = strlen(in);
    if (n % 4 == 1) return -1;
    size_t produced = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value(in[i]);
        if (v < 0) return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (produced == cap) return -1;
            out[produced++] = (uint8_t)(acc >> bits);
        }
    }
    /* Canonical form only: the leftover bits must be zero. */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return -1;
    return (int)produced;
}

void hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

bool id_generate(char out[ID_LEN + 1])
{
    uint8_t raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1) return false;
    b64url_encode(raw, sizeof raw, out);
    return true;
}

bool id_is_valid(const char *s)
{
    size_t n = strlen(s);
    if (n != ID_LEN) return false;
    for (size_t i = 0; i < n; i++)
        if (b64url_value(s[i]) < 0) return false;
    return true;
}

void cursor_encode(int64_t seq, char out[CURSOR_MAX + 1])
{
    uint8_t raw[8];
    for (int i = 7; i >= 0; i--) {
        raw[i] = (uint8_t)(seq & 0xff);
        seq >>= 8;
    }
    b64url_encode(raw, sizeof raw, out);
}

bool cursor_decode(const char *s, int64_t *seq)
{
    uint8_t raw[8];
    if (strlen(s) != 11 || b64url_decode(s, raw, sizeof raw) != 8) return false;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | raw[i];
    if (v == 0 || v > INT64_MAX) return false;
    *seq = (int64_t)v;
    return true;
}
