/* fuzz.h — what the libFuzzer targets in tests/fuzz/ share (docs/fuzzing.md).
 *
 * Every target is one file with LLVMFuzzerTestOneInput, built with
 * -fsanitize=fuzzer,address,undefined against the project's own objects.
 * A target checks properties of what it parsed, not only that nothing
 * crashed: FUZZ_CHECK names the property and traps when it fails, so
 * libFuzzer saves the input as a crash.
 *
 * Inputs are mostly split at NUL bytes into C strings (fuzz_split): the
 * parsers under test take C strings, so a NUL can never be part of what
 * they see, and the seed files stay readable.
 *
 * The targets that need a live server (http, api, multipart, websocket)
 * start one in-process on 127.0.0.1 once, then send each input over a fresh
 * TCP connection (fuzz_exchange) and check what came back.
 */
#ifndef ASSETD_FUZZ_H
#define ASSETD_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define FUZZ_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "\nproperty failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            __builtin_trap();                                                              \
        }                                                                                  \
    } while (0)

/* Splits data at NUL bytes into up to max C strings; fields past the input
 * are "".  Returns how many fields the input really had.  *buf is a copy
 * the fields point into: free it. */
int fuzz_split(const uint8_t *data, size_t size, char **field, int max, char **buf);
/* A lenient decimal number from a field (digits only are read; "" is 0). */
uint64_t fuzz_u64(const char *s);

/* ---------- a live server, for the targets that need one ---------- */

/* One response as read off the wire. */
typedef struct fuzz_response {
    int status;                /* 0: no (parsable) status line */
    const char *head;          /* the status line and headers, NUL-terminated */
    const char *body;          /* NUL-terminated; body_len bytes */
    size_t body_len;
    bool complete;             /* the whole body arrived (by Content-Length or chunking) */
} fuzz_response;

/* Connects to 127.0.0.1:port, sends len bytes, half-closes, and reads until
 * the server closes (or a 101 or an event stream begins: those stay open).
 * Traps if the server neither answers nor closes within FUZZ_SERVER_TIMEOUT
 * seconds (a hang).  Returns the bytes read (malloc'd, NUL-terminated;
 * *out_len their count). */
#define FUZZ_SERVER_TIMEOUT 10
char *fuzz_exchange(uint16_t port, const void *req, size_t len, size_t *out_len);
/* The same, reading past a 101 too, until the server closes. */
char *fuzz_exchange_all(uint16_t port, const void *req, size_t len, size_t *out_len);

/* Parses the first response in buf[0..len); head_request: it answers a
 * HEAD (no body follows the headers; also assumed when another response
 * follows the head at once: a pipelined HEAD).  Returns the bytes it took,
 * 0 if no complete head was there.  r's strings point into scratch copies
 * that live until the next call. */
size_t fuzz_parse_response(const char *buf, size_t len, bool head_request, fuzz_response *r);
/* A header's value in r->head (case-insensitive name), copied into out. */
bool fuzz_response_header(const fuzz_response *r, const char *name, char *out, size_t cap);

/* The server's error contract: a response with status >= 400 carries
 * Content-Type application/json and, when its body is complete,
 * {"error":{"code":"...","message":"..."}}; the status is never 500 (the
 * server could not even build a reply).  One known exception: syntax
 * libmicrohttpd refuses before our code runs, after a head the framing
 * guard does not follow, gets its own HTML 400, 413, 414, 431 or 505 (no
 * X-Request-Id) and the connection closes.  Traps otherwise. */
void fuzz_check_error_shape(const fuzz_response *r);

#endif
