/* db.h — the metadata store interface.
 *
 * One interface for every back-end: SQLite (sqlite.c, the embedded default)
 * now, PostgreSQL later behind the same functions.  Callers never see SQL.
 *
 * Concurrency model: a `db` is a pool of connections.  A thread borrows a
 * `db_conn` with db_acquire(), uses it alone, and gives it back with
 * db_release(); connections are never shared between threads at once, so
 * back-ends can open them without internal mutexes.  Prepared statements live
 * on the connection and are reused across requests.
 *
 * Results are copied into caller-provided structs (asset, apikey): nothing
 * returned points into back-end memory.  Functions return a db_status.
 */
#ifndef ASSETD_DB_H
#define ASSETD_DB_H

#include "core/apikey.h"
#include "core/asset.h"
#include "core/run.h"
#include "core/tus.h"
#include "core/upload.h"
#include "core/webhook.h"
#include "queue/job.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct db db;
typedef struct db_conn db_conn;

typedef enum { DB_OK = 0, DB_NOT_FOUND = 1, DB_ERROR = -1 } db_status;

/* Opens (creating and migrating if needed) the database: SQLite in dir when
 * url is NULL or empty, else PostgreSQL at url (postgres://... or a libpq
 * conninfo).  Every statement is prepared once on the first connection, so
 * one the database refuses stops the start.  On failure returns NULL and
 * sets *err to a static message. */
db *db_open(const char *dir, const char *url, const char **err);
void db_close(db *d);

/* "The database has news", across processes and machines: a connection
 * that every write transaction's commit wakes (PostgreSQL's LISTEN/NOTIFY).
 * NULL on SQLite (its writers share a machine: events/notify.h) or when it
 * cannot connect (logged): the caller polls.  db_listener_fd is readable
 * when news came; db_listener_drain consumes it and returns false once the
 * connection is lost (close it and listen again).  A lost or merged
 * notification costs the caller one poll interval: the database is the
 * only truth. */
typedef struct db_listener db_listener;
db_listener *db_listen(db *d);
int db_listener_fd(const db_listener *l);
bool db_listener_drain(db_listener *l);
void db_listener_close(db_listener *l);

/* The pool, for /metrics: connections open (idle and borrowed) and idle. */
void db_pool_counts(db *d, int *open, int *idle);

/* Never returns NULL while the database file is usable; NULL means the
 * back-end could not open a connection (logged). */
db_conn *db_acquire(db *d);
void db_release(db *d, db_conn *c);
/* True when c's last failure (a DB_ERROR) came from a full disk, so the
 * caller can answer 507 insufficient_storage instead of 503. */
bool db_failed_full(db_conn *c);

/* Cheap round trip, for readiness checks. */
db_status db_ping(db_conn *c);

/* Assets.  Every read and delete is scoped by owner: another owner's asset
 * is indistinguishable from a missing one.
 *
 * Every function here that changes an asset's state (insert, delete,
 * set_*) also appends its event (asset.created, asset.deleted,
 * asset.processing, asset.ready, asset.failed) to the event log, and must
 * be called inside db_begin()/db_commit() so both commit together; outside
 * a transaction it refuses with DB_ERROR. */
db_status db_asset_insert(db_conn *c, asset *a);  /* sets a->seq */
db_status db_asset_get(db_conn *c, const char *owner, const char *id, asset *out);
db_status db_asset_delete(db_conn *c, const char *owner, const char *id);
/* Processing results, written by workers (no owner scope: they act for the
 * system, on jobs that carry the owner). */
db_status db_asset_get_any(db_conn *c, const char *id, asset *out);
db_status db_asset_set_processing(db_conn *c, const char *id, int64_t now_ms);
db_status db_asset_set_ready(db_conn *c, const char *id, const char *renditions_json,
                             const char *meta_json, int64_t now_ms);
db_status db_asset_set_failed(db_conn *c, const char *id, const char *code,
                              const char *message, int64_t now_ms);
/* A video can be played (its first segments, or its outputs, are
 * visible): the asset.playable event, once per video.  In a transaction;
 * DB_NOT_FOUND when the asset is gone. */
db_status db_asset_playable(db_conn *c, const char *id, int64_t now_ms);
/* Writes a's title, description and tags (a from db_asset_get, changed by
 * asset_info_apply), with an asset.updated event.  In a transaction. */
db_status db_asset_set_info(db_conn *c, const asset *a, int64_t now_ms);
/* Writes a video's cover record (core/cover.h), with an asset.updated
 * event.  In a transaction. */
db_status db_asset_set_cover(db_conn *c, const char *id, const char *cover_json,
                             int64_t now_ms);
/* True if any owner has an asset with this id (start-up orphan sweep). */
db_status db_asset_id_exists(db_conn *c, const char *id);

typedef struct asset_filter {
    bool by_kind;
    asset_kind kind;
    bool by_status;
    asset_status status;
    int64_t before_seq;   /* 0: from the newest */
} asset_filter;

/* Newest first.  Fills up to `limit` assets; *n gets the count. */
db_status db_asset_list(db_conn *c, const char *owner, const asset_filter *f, int limit,
                        asset *out, int *n);

/* API keys. */
db_status db_key_insert(db_conn *c, const apikey *k, const char *token_sha256);
db_status db_key_find_active(db_conn *c, const char *token_sha256, apikey *out);
db_status db_key_revoke(db_conn *c, const char *id);
db_status db_key_count(db_conn *c, int64_t *n);
/* Calls fn for each key, oldest first. */
db_status db_key_each(db_conn *c, void (*fn)(const apikey *k, void *arg), void *arg);

/* The server's secret called name: the one stored, or else offer (text),
 * stored now.  Processes starting together each offer their own; the first
 * stored wins and all of them get it in out (cap bytes, NUL included;
 * DB_ERROR if the stored value does not fit). */
db_status db_secret_adopt(db_conn *c, const char *name, const char *offer, char *out, size_t cap);

/* The event log: the transactional outbox every live consumer reads (the
 * hub, webhooks).  Ids are monotonic and never reused.  The data is JSON
 * text (for asset events, the asset as asset_to_json() shows it). */
typedef struct db_event {
    int64_t id;
    const char *type, *asset_id, *owner;
    int64_t at_ms;
    const char *data_json;
} db_event;

/* Borrowed strings, valid only during the call. */
typedef void (*db_event_fn)(void *arg, const db_event *e);

/* Inside a transaction, like the state change it reports. */
db_status db_event_append(db_conn *c, const char *type, const char *asset_id, const char *owner,
                          int64_t now_ms, const char *data_json);
/* Calls fn for up to `limit` events after after_id in id order, optionally
 * only one owner's (owner != NULL) or one asset's; *n gets the count. */
db_status db_events_after(db_conn *c, int64_t after_id, const char *owner, const char *asset_id,
                          int limit, db_event_fn fn, void *arg, int *n);
/* The oldest id still kept and the newest ever written (0 before the first;
 * oldest = newest + 1 when the log is empty). */
db_status db_events_bounds(db_conn *c, int64_t *oldest, int64_t *newest);
/* Deletes events older than before_ms (retention). */
db_status db_events_trim(db_conn *c, int64_t before_ms, int64_t *removed);
/* The AMQP publisher's durable cursor (events/amqp.h): the last event the
 * broker confirmed, every one before it confirmed too.  The first read
 * creates it at the newest event (no history is published). */
db_status db_amqp_cursor_get(db_conn *c, int64_t *cursor);
/* Moves it forward; never back (an older value is ignored). */
db_status db_amqp_cursor_set(db_conn *c, int64_t cursor);

/* The pages of a document asset (pdf, presentation): its renditions
 * slide_NNN and slide_NNN_thumb, NNN from 001. */
typedef struct slide {
    int page;                      /* from 1 */
    int width, height;
    uint64_t size;
    int thumb_width, thumb_height;
    uint64_t thumb_size;
} slide;

/* Inside the transaction that marks the asset ready (a retry replaces). */
db_status db_slides_clear(db_conn *c, const char *asset_id);
db_status db_slide_insert(db_conn *c, const char *asset_id, const slide *s);

/* The parts of a video's streams (HLS media playlists, fMP4 segments):
 * served as renditions by name, never listed (too many).  Written inside
 * the transaction that marks the asset ready (a retry clears first);
 * deleting the asset clears them. */
db_status db_parts_clear(db_conn *c, const char *asset_id);
db_status db_part_insert(db_conn *c, const char *asset_id, const char *name,
                         const char *content_type, uint64_t size);
/* DB_NOT_FOUND when the asset has no such part. */
db_status db_part_get(db_conn *c, const char *asset_id, const char *name, char *content_type,
                      size_t cap, uint64_t *size);

/* An asset's renditions as clients see them: the assets.renditions text
 * with an owner's cover sizes in place of the frame's (asset_renditions),
 * or for documents one slide and one thumb per page.  New reference. */
db_status db_asset_renditions(db_conn *c, const asset *a, json_t **out);
/* asset_to_json() with the renditions of db_asset_renditions(); new
 * reference.  Every JSON form of an asset goes through this. */
json_t *db_asset_json(db_conn *c, const asset *a);

/* A slideshow: a document asset with a presenter (api/slideshows.c).
 * Looked up by id alone: the original slideshow API is public by id. */
typedef struct slideshow {
    char asset_id[ID_LEN + 1];
    char token_sha256[65];     /* of the control token */
    int current;               /* the slide shown, from 0 */
    char updated[32];
} slideshow;

db_status db_slideshow_insert(db_conn *c, const slideshow *s);
db_status db_slideshow_get(db_conn *c, const char *asset_id, slideshow *out);
/* Inside a transaction: sets the current slide (and its `updated` text)
 * and appends the slideshow.control event with event_data; fills *out. */
db_status db_slideshow_set_current(db_conn *c, const char *asset_id, const char *owner,
                                   int current, int64_t now_ms, const char *updated,
                                   const char *event_data, slideshow *out);

/* Webhooks (core/webhook.h), owner-scoped like assets. */
db_status db_webhook_insert(db_conn *c, const webhook *w);
db_status db_webhook_get(db_conn *c, const char *owner, const char *id, webhook *out);
db_status db_webhook_list(db_conn *c, const char *owner, int limit, webhook *out, int *n);
/* Deletes the endpoint and its deliveries. */
db_status db_webhook_delete(db_conn *c, const char *owner, const char *id);
db_status db_webhook_deliveries(db_conn *c, const char *owner, const char *webhook_id, int limit,
                                webhook_delivery *out, int *n);

/* The dispatcher's side.  Fan-in turns up to `limit` events after the
 * durable cursor into deliveries and moves the cursor, in one transaction
 * (DB_NOT_FOUND: no new events). */
db_status db_webhook_fan_in(db_conn *c, int64_t now_ms, int limit, int *created);

/* A due delivery; borrowed strings, valid during the call. */
typedef struct db_delivery_due {
    const char *id, *webhook_id, *url, *secret, *payload;
    int attempts;
    int64_t created_ms;
} db_delivery_due;
typedef void (*db_delivery_fn)(void *arg, const db_delivery_due *d);

/* Leases up to `limit` due deliveries for lease_ms and calls fn for each. */
db_status db_webhook_due(db_conn *c, int64_t now_ms, int64_t lease_ms, int limit,
                         db_delivery_fn fn, void *arg, int *n);
/* Records an attempt: delivered, failed for good, or pending again at
 * next_at_ms; disable_reason (or NULL) disables the endpoint with it. */
db_status db_webhook_delivery_done(db_conn *c, const char *delivery_id, const char *webhook_id,
                                   delivery_state state, int status, const char *error,
                                   int64_t next_at_ms, int64_t now_ms, const char *disable_reason);

/* Retention: deletes finished jobs (succeeded, failed, dead) last scheduled
 * before before_ms and finished webhook deliveries finished before it, at
 * most `batch` rows per transaction (a writer waits for one batch at most,
 * not for a whole backlog) and about max_rows of each per call (a backlog
 * goes over several calls).  Counts go to *jobs and *deliveries. */
db_status db_history_trim(db_conn *c, int64_t before_ms, int batch, int64_t max_rows,
                          int64_t *jobs, int64_t *deliveries);

/* Transactions, to commit a state change together with the job it needs.
 * db_begin() takes the write lock at once (no upgrade deadlocks). */
/* A read transaction: later reads see one consistent snapshot, and no
 * write lock is taken.  End it with db_rollback(). */
db_status db_begin_read(db_conn *c);
db_status db_begin(db_conn *c);
/* A write transaction for the queue's own bookkeeping: claims, heartbeats,
 * completions — rows it locks itself (SKIP LOCKED claims, fenced updates),
 * never a check-then-write.  On PostgreSQL it does not wait for other
 * writers (or make them wait) until it appends an event or enqueues a job,
 * which take the write lock then; on SQLite it is db_begin(). */
db_status db_begin_queue(db_conn *c);
db_status db_commit(db_conn *c);
void db_rollback(db_conn *c);
/* Ends the transaction by the status of the work done in it: commits
 * after DB_OK, else rolls back.  Returns st, or DB_ERROR if the commit
 * failed.  `if (db_begin(c) == DB_OK) st = db_end(c, work(c, ...));` */
db_status db_end(db_conn *c, db_status st);

/* The job queue (queue/job.h).  Times are milliseconds since the epoch,
 * passed in so tests can drive the clock. */
/* Queues a job unless a live one exists for (asset_id, type); either way
 * *out is the live job. */
db_status db_job_enqueue(db_conn *c, const char *asset_id, const char *owner, const char *type,
                         int max_attempts, int64_t now_ms, job *out);
/* Claims the runnable job queued longest (or one whose lease expired),
 * taking a lease and a new fencing token.  DB_NOT_FOUND when none.  Running
 * jobs whose lease expired with no attempts left become dead first. */
db_status db_job_claim(db_conn *c, int64_t now_ms, int64_t lease_ms, job *out);
/* The same for up to max jobs in one transaction (cheap jobs amortise the
 * commit); *n says how many were written to out. */
db_status db_job_claim_many(db_conn *c, int64_t now_ms, int64_t lease_ms, int max, job *out,
                            int *n);
/* These act only while j->fence is current; DB_NOT_FOUND means the lease
 * was lost and the caller must drop its work. */
db_status db_job_heartbeat(db_conn *c, const job *j, int64_t now_ms, int64_t lease_ms,
                           double progress);   /* progress < 0: unchanged */
db_status db_job_complete(db_conn *c, const job *j, int64_t now_ms);
/* db_job_complete of n jobs in one statement (a batching consumer's
 * round trip); *done says how many were still theirs. */
db_status db_job_complete_many(db_conn *c, const job *jobs, int n, int64_t now_ms, int *done);
/* Retryable with attempts left: queued again at retry_at_ms.  Retryable
 * without: dead.  Not retryable: failed.  The error is kept. */
db_status db_job_fail(db_conn *c, const job *j, const char *code, const char *message,
                      bool retryable, int64_t now_ms, int64_t retry_at_ms);
db_status db_job_get(db_conn *c, const char *owner, const char *id, job *out);
/* The owner's jobs, newest first; asset_id may be NULL, state < 0 for any. */
db_status db_job_list(db_conn *c, const char *owner, const char *asset_id, int state, int limit,
                      job *out, int *n);
/* A failed or dead job goes back to queued with its attempts reset.
 * DB_NOT_FOUND for other states, or when another live job exists. */
db_status db_job_retry(db_conn *c, const char *owner, const char *id, int64_t now_ms, job *out);

/* Signed direct uploads (core/upload.h).  Reads are owner-scoped except
 * get_any, which the signed store routes use (the signature is their
 * authority, not an owner). */
/* Inserts u (sets u->seq).  With an object_key that the owner already has,
 * inserts nothing and returns DB_NOT_FOUND: the caller reads that one. */
db_status db_upload_insert(db_conn *c, upload_rec *u);
db_status db_upload_get(db_conn *c, const char *owner, const char *id, upload_rec *out);
db_status db_upload_get_seq(db_conn *c, const char *owner, int64_t seq, upload_rec *out);
db_status db_upload_by_key(db_conn *c, const char *owner, const char *object_key,
                           upload_rec *out);
db_status db_upload_get_any(db_conn *c, const char *id, upload_rec *out);
/* Sets the state; UPLOAD_COMPLETE also marks the key as an asset's. */
db_status db_upload_set_state(db_conn *c, const char *id, upload_state st);
/* A new signature for a pending upload: its new expiry. */
db_status db_upload_resign(db_conn *c, const char *id, int64_t expires_ms);
/* Pending uploads whose expiry is before before_ms, oldest first; never
 * one whose bytes an asset owns (a cloud-API upload set back to pending). */
db_status db_upload_expired(db_conn *c, int64_t before_ms, int limit, upload_rec *out, int *n);
/* DB_NOT_FOUND when there was no such row (another process removed it). */
db_status db_upload_delete(db_conn *c, const char *id);

/* Resumable uploads (core/tus.h).  Reads are owner-scoped, except exists
 * (the start-up sweep keeps a blob whose upload is not recorded yet). */
db_status db_tus_insert(db_conn *c, const tus_upload *u);
db_status db_tus_get(db_conn *c, const char *owner, const char *id, tus_upload *out);
db_status db_tus_exists(db_conn *c, const char *id);
/* Takes the lease for token until until_ms, in one transaction that reads
 * the row into out: only if the upload is still uploading, unexpired at
 * now_ms, at offset `expect`, and its lease free or expired.  DB_OK with
 * *taken saying whether it was; out then says why not. */
db_status db_tus_lock(db_conn *c, const char *owner, const char *id, uint64_t expect,
                      const char *token, int64_t now_ms, int64_t until_ms, tus_upload *out,
                      bool *taken);
/* These act only while token holds the lease (DB_NOT_FOUND otherwise). */
db_status db_tus_renew(db_conn *c, const char *id, const char *token, int64_t until_ms);
db_status db_tus_unlock(db_conn *c, const char *id, const char *token);
/* The new committed offset (and length, once no longer deferred) and
 * expiry, releasing the lease unless keep (the writer goes on to complete
 * the upload): one statement, so offset and lease agree. */
db_status db_tus_advance(db_conn *c, const char *id, const char *token, uint64_t offset,
                         int64_t length, int64_t expires_ms, bool keep);
/* Inside the transaction that records the asset (ingest extra). */
db_status db_tus_set_complete(db_conn *c, const char *id);
/* DB_NOT_FOUND when there was no such row (another process removed it). */
db_status db_tus_delete(db_conn *c, const char *id);
/* Leases an upload db_tus_expired listed to token until until_ms, if it is
 * still expired and unleased at now_ms: DB_OK for the one collector that
 * got it, DB_NOT_FOUND for any other (serve processes collect at once). */
db_status db_tus_claim_expired(db_conn *c, const char *id, const char *token, int64_t now_ms,
                               int64_t until_ms);
/* Uploads still uploading whose expiry is before before_ms and whose lease
 * (if any) ended before now_ms, oldest first. */
db_status db_tus_expired(db_conn *c, int64_t before_ms, int64_t now_ms, int limit,
                         tus_upload *out, int *n);

/* CSV runs (core/run.h) and the owner's people table they fill.  Reads
 * and the owner's writes are owner-scoped; a worker's writes name the
 * fence of its claim and change nothing once another worker claimed the
 * run (DB_NOT_FOUND: drop the work).  Writes run inside a transaction and
 * append their events there (run.created, run.progress when asked,
 * run.finished). */
/* Records a queued run; with r->clear, empties the owner's table first. */
db_status db_run_insert(db_conn *c, run_rec *r);
db_status db_run_get(db_conn *c, const char *owner, const char *id, run_rec *out);
/* The owner's runs made before before_ms (0: any), newest first. */
db_status db_run_list(db_conn *c, const char *owner, int64_t before_ms, int limit, run_rec *out,
                      int *n);
/* A queued run fails at once (cancelled); a running one is flagged and its
 * worker stops at its next write.  DB_NOT_FOUND when finished or unknown. */
db_status db_run_cancel(db_conn *c, const char *owner, const char *id, int64_t now_ms, run_rec *out);
/* In its own transaction: fails the runs whose lease expired on their last
 * attempt (worker_lost), then claims the oldest run that is queued or
 * whose lease expired, with a new fence.  DB_NOT_FOUND when none. */
db_status db_run_claim(db_conn *c, int64_t now_ms, int64_t lease_ms, run_rec *out);
/* Extends the lease; *cancel gets the owner's flag. */
db_status db_run_renew(db_conn *c, const run_rec *r, int64_t until_ms, bool *cancel);
/* Writes the publisher's part of r (state, read/skipped/sent/nacked,
 * skipped lines, cursor, published time) and reads back the consumer's
 * counts and the cancel flag into r. */
db_status db_run_save_publisher(db_conn *c, run_rec *r, bool progress_event, int64_t now_ms);
/* One consumer batch: each row not stored by this run before goes into
 * the people table (saved, or a duplicate when its e-mail is there); the
 * counts are added and read back into r with the cancel flag.  now_ms is
 * when the batch's last message came (the run's last_message). */
typedef struct run_row {
    const char *name, *mail;
    int64_t line;
} run_row;
db_status db_run_store_rows(db_conn *c, run_rec *r, const run_row *rows, int n, bool progress_event,
                            int64_t now_ms);
/* Ends the run with r->state and error, counting the owner's table; r is
 * read back. */
db_status db_run_finish(db_conn *c, run_rec *r, int64_t now_ms);

/* Consumer sessions (core/run.h: runs with a session UUID).  Only listed
 * ones (until /remove/) are found. */
db_status db_run_by_session(db_conn *c, const char *owner, const char *session, run_rec *out);
/* The owner's listed sessions, oldest first. */
db_status db_run_sessions(db_conn *c, const char *owner, int limit, run_rec *out, int *n);
/* An open session starts consuming (a worker claims it); DB_NOT_FOUND if
 * it is not open (unknown, already processed, removed). */
db_status db_run_process(db_conn *c, const char *owner, const char *session, run_mode mode,
                         int timeout_s, int64_t now_ms, run_rec *out);
/* Takes a session off the list (one never processed ends succeeded, with
 * its run.finished).  DB_NOT_FOUND while it is consuming, or unknown. */
db_status db_run_close_session(db_conn *c, const char *owner, const char *session,
                               int64_t now_ms, run_rec *out);

db_status db_people_count(db_conn *c, const char *owner, int64_t *n);
/* A person; borrowed strings, valid during the call. */
typedef struct db_person {
    const char *email, *name, *run_id;
    size_t email_len, name_len;
    int64_t line, created_ms;
} db_person;
typedef void (*db_person_fn)(void *arg, const db_person *p);
/* The owner's people by e-mail after after_email (NULL: from the first). */
db_status db_people_list(db_conn *c, const char *owner, const char *after_email, int limit,
                         db_person_fn fn, void *arg, int *n);

#endif
