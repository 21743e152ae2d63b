/* run.c — CSV runs: names, settings, JSON; see run.h. */
#include "core/run.h"
#include "util/parse.h"
#include "util/timefmt.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const state_names[] = {"queued", "publishing", "consuming", "succeeded",
                                          "failed", "open"};
static const char *const mode_names[] = {"live", "batch"};

const char *run_state_name(run_state s) { return state_names[s]; }
const char *run_mode_name(run_mode m) { return mode_names[m]; }
bool run_finished(const run_rec *r) { return r->state == RUN_SUCCEEDED || r->state == RUN_FAILED; }

static bool parse_flag(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "on", "yes"};
    static const char *const no[] = {"0", "false", "off", "no", ""};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        if (strcasecmp(s, yes[i]) == 0) return *out = true;
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (strcasecmp(s, no[i]) == 0) return !(*out = false);
    return false;
}

bool run_parse_settings(const char *mode, const char *timeout, const char *clear, run_rec *out,
                        const char **why)
{
    out->mode = RUN_LIVE;
    if (mode && *mode) {
        if (strcmp(mode, "live") == 0) out->mode = RUN_LIVE;
        else if (strcmp(mode, "batch") == 0) out->mode = RUN_BATCH;
        else {
            *why = "Wrong mode supplied, options are `live` and `batch`";
            return false;
        }
    }
    out->timeout_s = 5;
    if (timeout && *timeout) {
        uint64_t t;
        if (!parse_u64(timeout, &t)) {
            *why = "Wrong timeout value supplied, timeout must be an int (whole seconds, 0 or more)";
            return false;
        }
        if (t > RUN_TIMEOUT_MAX) {
            *why = "the timeout is longer than an hour (3600 seconds)";
            return false;
        }
        out->timeout_s = (int)t;
    }
    out->clear = false;
    if (clear && !parse_flag(clear, &out->clear)) {
        *why = "clear must be true or false";
        return false;
    }
    return true;
}

void run_queue_name(const run_rec *r, char out[ID_LEN + 16])
{
    if (r->session[0]) snprintf(out, ID_LEN + 16, "%s", r->session);
    else snprintf(out, ID_LEN + 16, "assetd.run.%s", r->id);
}

bool run_session_generate(char out[RUN_SESSION_LEN + 1])
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1) return false;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);   /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
    snprintf(out, RUN_SESSION_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
    return true;
}

bool run_session_valid(const char *s)
{
    if (strlen(s) != RUN_SESSION_LEN) return false;
    for (int i = 0; i < RUN_SESSION_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !strchr("0123456789abcdef", s[i]) || !s[i]) return false;
    }
    return true;
}

/* Go's time.Time JSON: RFC 3339; the zero time while a session goes on. */
static json_t *go_time(int64_t ms)
{
    if (!ms) return json_string("0001-01-01T00:00:00Z");
    char t[32];
    time_format_ms(ms, t);
    return json_string(t);
}

json_t *run_session_json(const run_rec *r, const char *host)
{
    return json_pack("{s:s, s:o, s:o, s:I, s:I, s:s, s:s, s:I, s:s}", "uuid", r->session,
                     "started", go_time(r->created_ms), "ended",
                     go_time(run_finished(r) ? r->finished_ms : 0), "checksum",
                     (json_int_t)r->n.received, "saved", (json_int_t)r->n.saved, "host", host,
                     "state", state_names[r->state], "duplicates",
                     (json_int_t)r->n.duplicates, "run_id", r->id);
}

static json_t *time_or_null(int64_t ms)
{
    if (!ms) return json_null();
    char t[32];
    time_format_ms(ms, t);
    return json_string(t);
}

json_t *run_to_json(const run_rec *r)
{
    char queue[ID_LEN + 16];
    run_queue_name(r, queue);
    json_t *error = r->error_code[0] ? json_pack("{s:s, s:s}", "code", r->error_code, "message",
                                                 r->error_message)
                                     : json_null();
    json_t *counts = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "read", (json_int_t)r->n.read,
                               "skipped", (json_int_t)r->n.skipped, "sent",
                               (json_int_t)r->n.sent, "nacked", (json_int_t)r->n.nacked,
                               "received", (json_int_t)r->n.received, "saved",
                               (json_int_t)r->n.saved, "duplicates",
                               (json_int_t)r->n.duplicates);
    return json_pack("{s:s, s:s, s:s, s:s, s:i, s:b, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
                     "s:o, s:o}",
                     "id", r->id, "asset_id", r->asset_id, "state", state_names[r->state],
                     "mode", mode_names[r->mode], "timeout", r->timeout_s, "clear", r->clear,
                     "queue", queue, "counts", counts, "table_count",
                     r->table_count < 0 ? json_null() : json_integer(r->table_count), "error",
                     error, "created", time_or_null(r->created_ms), "started",
                     time_or_null(r->started_ms), "published", time_or_null(r->published_ms),
                     "last_message", time_or_null(r->last_message_ms), "finished",
                     time_or_null(r->finished_ms), "session",
                     r->session[0] ? json_string(r->session) : json_null());
}

static json_t *rate(int64_t rows, int64_t from_ms, int64_t to_ms)
{
    if (!from_ms || to_ms <= from_ms) return json_null();
    return json_real((double)rows * 1000.0 / (double)(to_ms - from_ms));
}

static json_t *seconds(int64_t from_ms, int64_t to_ms)
{
    if (!from_ms || to_ms < from_ms) return json_null();
    return json_real((double)(to_ms - from_ms) / 1000.0);
}

json_t *run_report_json(const run_rec *r, int64_t now_ms)
{
    json_t *o = run_to_json(r);
    json_t *lines = json_loads(r->skipped_lines[0] ? r->skipped_lines : "[]", 0, NULL);
    json_object_set_new(o, "skipped_lines", lines ? lines : json_array());
    int64_t end = r->finished_ms ? r->finished_ms : now_ms;
    /* The idle timeout is the consumer waiting for nothing: the rates stop
     * at the last message, as the original's report measured its work. */
    int64_t work_end = r->last_message_ms ? r->last_message_ms : end;
    int64_t pub_end = r->published_ms ? r->published_ms : end;
    json_object_set_new(o, "durations",
                        json_pack("{s:o, s:o, s:o}", "total", seconds(r->started_ms, end),
                                  "publish", seconds(r->started_ms, pub_end), "work",
                                  seconds(r->started_ms, work_end)));
    json_object_set_new(o, "rates",
                        json_pack("{s:o, s:o}", "sent_per_second",
                                  rate(r->n.sent, r->started_ms, pub_end), "received_per_second",
                                  rate(r->n.received, r->started_ms, work_end)));
    return o;
}

char *run_message_encode(const char *name, size_t name_len, const char *mail, size_t mail_len,
                         size_t *len)
{
    json_t *n = json_stringn(name, name_len), *m = json_stringn(mail, mail_len);
    json_t *o = n && m ? json_pack("{s:o, s:o}", "name", n, "mail", m) : NULL;
    if (!o) {
        json_decref(n);
        json_decref(m);
        return NULL;
    }
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (text) *len = strlen(text);
    return text;
}

static bool copy_field(const json_t *o, const char *key, char *out, size_t cap)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_string(v) || json_string_length(v) >= cap) return false;
    /* A field with NUL inside would be cut by C strings: refuse it. */
    if (strlen(json_string_value(v)) != json_string_length(v)) return false;
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return true;
}

bool run_message_decode(const void *body, size_t len, char *name, size_t name_cap, char *mail,
                        size_t mail_cap)
{
    json_t *o = json_loadb(body, len, JSON_ALLOW_NUL, NULL);
    bool ok = json_is_object(o) && copy_field(o, "name", name, name_cap) &&
              copy_field(o, "mail", mail, mail_cap);
    json_decref(o);
    return ok;
}
