/* run.h — a CSV run: the rows of a `Full Name,e-mail` CSV published to
 * RabbitMQ and stored by a consumer in the owner's `people` table (the
 * publishing system assetd replaces, promise-pub; api/runs.c,
 * queue/runs.c).  This file is the domain: the record, its settings, its
 * JSON and the message format.  No I/O.
 *
 * Life of a run (state):
 *
 *     queued --claim--> publishing --all rows confirmed--> consuming --> succeeded
 *        \                  \                                  \
 *         `------------------`------ any error, cancel --------`--> failed
 *
 * A consumer session (the original consumer's HTTP protocol, api/consumer.c)
 * is a run without a CSV: another program publishes to its queue, named by
 * the session's UUID; it is `open` until /process/ makes it `consuming`.
 *
 * In live mode the consumer listens before the first publish and stores
 * rows while they are published; in batch mode it starts once every row is
 * published.  Either way `state` says what the publisher is doing: it is
 * `consuming` once the publisher is done.
 *
 * Invariants (kept by queue/runs.c and the db functions it calls):
 *   - counts only grow, and each is written in the transaction that makes
 *     it true: `sent` (rows the broker confirmed) with the publisher's
 *     cursor (pub_offset: the byte offset in the CSV after the last row
 *     whose publish and every earlier one are confirmed), `received`,
 *     `saved` and `duplicates` with the rows they count;
 *   - a row is counted once even if delivered twice (a publisher that
 *     reconnected re-sends from its cursor, a consumer that died before
 *     its ack sees its batch again): the consumer records each CSV line it
 *     stored per run (run_lines) and ignores a line it has seen;
 *   - only the lease holder writes: every write names the fence it claimed
 *     with, so a worker that lost its lease changes nothing;
 *   - a finished run has no queue on the broker (deleted by the run, and a
 *     queue left by a broker outage expires by itself: RUN_QUEUE_EXPIRES_MS).
 */
#ifndef ASSETD_RUN_H
#define ASSETD_RUN_H

#include "core/asset.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    RUN_QUEUED = 0,
    RUN_PUBLISHING = 1,
    RUN_CONSUMING = 2,
    RUN_SUCCEEDED = 3,
    RUN_FAILED = 4,
    RUN_OPEN = 5,        /* a consumer session (api/consumer.c) not yet processed */
} run_state;

typedef enum { RUN_LIVE = 0, RUN_BATCH = 1 } run_mode;

/* Skipped lines a report lists (the count covers them all). */
#define RUN_SKIPPED_LINES_MAX 100
/* "[1,2,...]" of RUN_SKIPPED_LINES_MAX line numbers of up to 19 digits. */
#define RUN_SKIPPED_JSON_MAX (RUN_SKIPPED_LINES_MAX * 20 + 2)
/* The longest idle timeout a run may ask for, in seconds. */
#define RUN_TIMEOUT_MAX 3600
/* A run's queue expires on the broker this long after its last use, so a
 * run that could not delete it (the broker was gone) leaks nothing. */
#define RUN_QUEUE_EXPIRES_MS (60LL * 60 * 1000)
/* A session id: a version 4 UUID in its 36-character text form. */
#define RUN_SESSION_LEN 36
/* Bytes of one CSV row at most (a longer one is skipped as too_long). */
#define RUN_ROW_MAX 4096

typedef struct run_counts {
    int64_t read;        /* rows read from the CSV */
    int64_t skipped;     /* rows without exactly two fields, or malformed */
    int64_t sent;        /* publishes the broker confirmed */
    int64_t nacked;      /* publishes the broker refused */
    int64_t received;    /* distinct rows the consumer got */
    int64_t saved;       /* rows stored (the first of their e-mail) */
    int64_t duplicates;  /* rows whose e-mail the table had already */
} run_counts;

typedef struct run_rec {
    char id[ID_LEN + 1];
    char owner[OWNER_MAX + 1];
    char asset_id[ID_LEN + 1];   /* the CSV, an asset of the owner */
    run_state state;
    run_mode mode;
    int timeout_s;               /* the consumer stops after this long without a message */
    bool clear;                  /* the owner's table was emptied when the run was made */
    run_counts n;
    char skipped_lines[RUN_SKIPPED_JSON_MAX + 1];   /* JSON array, the first ones */
    uint64_t pub_offset;         /* the publisher's cursor: bytes of the CSV done */
    uint64_t pub_line;           /* the physical line at pub_offset (from 1) */
    int64_t table_count;         /* rows in the owner's table when the run ended; -1 before */
    char error_code[48];
    char error_message[256];
    bool cancel;                 /* the owner asked to stop */
    char session[RUN_SESSION_LEN + 1];   /* a consumer session's UUID (its queue), or "" */
    bool session_open;           /* listed by the session protocol until /remove/ */
    int64_t created_ms, started_ms, published_ms, last_message_ms, finished_ms;   /* 0: not yet */
    /* The lease: who works on it (queue/runs.c). */
    int64_t fence;
    int64_t lease_until_ms;
    int attempts;
} run_rec;

/* Claims that found a run's lease expired this many times fail it
 * (worker_lost) instead of taking it again. */
#define RUN_MAX_ATTEMPTS 5

const char *run_state_name(run_state s);
const char *run_mode_name(run_mode m);
bool run_finished(const run_rec *r);

/* The settings a client sends (form fields, all optional), checked before
 * anything is stored or cleared.  mode: "live" (default) | "batch";
 * timeout: whole seconds 0..RUN_TIMEOUT_MAX (default 5); clear: "", "0",
 * "1", "true", "false", "on", "off" (a checkbox sends "on").  NULL or "" is
 * the default.  false with *why set to a message for the client. */
bool run_parse_settings(const char *mode, const char *timeout, const char *clear, run_rec *out,
                        const char **why);

/* The queue a run publishes to: "assetd.run.<id>", or a session's UUID. */
void run_queue_name(const run_rec *r, char out[ID_LEN + 16]);

/* A fresh session id (RAND_bytes); false if the CSPRNG failed. */
bool run_session_generate(char out[RUN_SESSION_LEN + 1]);
/* Whether s has the form of one (any version, lower-case hex). */
bool run_session_valid(const char *s);
/* A session as the original consumer showed it: uuid, started, ended
 * (Go's zero time while going on), checksum (messages received), saved,
 * host, plus assetd's state and duplicates.  New reference. */
json_t *run_session_json(const run_rec *r, const char *host);

/* The run as the API shows it; new reference. */
json_t *run_to_json(const run_rec *r);
/* The report: run_to_json plus skipped lines, durations and rates; new
 * reference.  now_ms stands in for the end of a run still going. */
json_t *run_report_json(const run_rec *r, int64_t now_ms);

/* A row's message body, {"name":..., "mail":...} as the original
 * consumer reads it.  NULL if a field is not UTF-8.  Caller frees. */
char *run_message_encode(const char *name, size_t name_len, const char *mail, size_t mail_len,
                         size_t *len);
/* Parses a message body back into name and mail (NUL-terminated copies);
 * false if it is not that shape or a field does not fit its buffer. */
bool run_message_decode(const void *body, size_t len, char *name, size_t name_cap, char *mail,
                        size_t mail_cap);

#endif
