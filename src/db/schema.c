/* schema.c — the schema's migrations, one text per version, in SQLite's
 * spelling; PostgreSQL runs each through db/pg.c's translation (a few type
 * names), so both back-ends have the same versions with the same meaning.
 * Append only: never edit a migration that has shipped, add one.  Write
 * what both can read: no SQLite-only statement beyond what pg.c
 * translates (INTEGER PRIMARY KEY AUTOINCREMENT, INTEGER, REAL, WITHOUT
 * ROWID). */
#include "db/schema.h"
#include "util/log.h"

#include <stdio.h>

const char *const db_migrations[] = {
    /* 1: keys and assets */
    "CREATE TABLE api_keys ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  owner TEXT NOT NULL,"
    "  token_sha256 TEXT NOT NULL UNIQUE,"
    "  created TEXT NOT NULL,"
    "  revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE assets ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  owner TEXT NOT NULL,"
    "  kind INTEGER NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  filename TEXT NOT NULL,"
    "  content_type TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  sha256 TEXT NOT NULL,"
    "  created TEXT NOT NULL,"
    "  updated TEXT NOT NULL);"
    "CREATE INDEX assets_by_owner ON assets(owner, seq);",
    /* 2: the job queue (queue/job.h) */
    "CREATE TABLE jobs ("
    "  id TEXT PRIMARY KEY,"
    "  asset_id TEXT NOT NULL,"
    "  owner TEXT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  max_attempts INTEGER NOT NULL,"
    "  fence INTEGER NOT NULL DEFAULT 0,"
    "  run_at INTEGER NOT NULL,"
    "  lease_until INTEGER NOT NULL DEFAULT 0,"
    "  progress REAL NOT NULL DEFAULT 0,"
    "  error_code TEXT NOT NULL DEFAULT '',"
    "  error_message TEXT NOT NULL DEFAULT '',"
    "  created TEXT NOT NULL,"
    "  started TEXT NOT NULL DEFAULT '',"
    "  finished TEXT NOT NULL DEFAULT '');"
    /* One live (queued/running) job per asset and type. */
    "CREATE UNIQUE INDEX jobs_live ON jobs(asset_id, type) WHERE state IN (0, 1);"
    "CREATE INDEX jobs_runnable ON jobs(state, run_at);"
    "CREATE INDEX jobs_by_asset ON jobs(asset_id);",
    /* 3: processing results on the asset */
    "ALTER TABLE assets ADD COLUMN renditions TEXT NOT NULL DEFAULT '[]';"
    "ALTER TABLE assets ADD COLUMN meta TEXT NOT NULL DEFAULT '{}';"
    "ALTER TABLE assets ADD COLUMN error_code TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE assets ADD COLUMN error_message TEXT NOT NULL DEFAULT '';",
    /* 4: the event log (db.h, "events").  AUTOINCREMENT: an id is never
     * reused, even after the newest events were trimmed, so a client's
     * `since` cursor can never point at a different event. */
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  type TEXT NOT NULL,"
    "  asset_id TEXT NOT NULL,"
    "  owner TEXT NOT NULL,"
    "  at INTEGER NOT NULL,"
    "  data TEXT NOT NULL);"
    "CREATE INDEX events_by_time ON events(at);",
    /* 5: webhooks (core/webhook.h).  A delivery keeps its exact body so
     * every retry sends the same bytes; `state_kv` holds the fan-in
     * cursor: the last event turned into deliveries. */
    "CREATE TABLE webhooks ("
    "  id TEXT PRIMARY KEY,"
    "  owner TEXT NOT NULL,"
    "  url TEXT NOT NULL,"
    "  events TEXT NOT NULL,"
    "  secret TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  disabled INTEGER NOT NULL DEFAULT 0,"
    "  disabled_reason TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX webhooks_by_owner ON webhooks(owner);"
    "CREATE TABLE webhook_deliveries ("
    "  id TEXT PRIMARY KEY,"
    "  webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,"
    "  event_id INTEGER NOT NULL,"
    "  type TEXT NOT NULL,"
    "  payload TEXT NOT NULL,"
    "  state INTEGER NOT NULL DEFAULT 0,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  last_status INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT NOT NULL DEFAULT '',"
    "  created_ms INTEGER NOT NULL,"
    "  next_at INTEGER NOT NULL,"
    "  finished_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX deliveries_due ON webhook_deliveries(state, next_at);"
    "CREATE INDEX deliveries_by_hook ON webhook_deliveries(webhook_id, created_ms);"
    "CREATE TABLE state_kv (name TEXT PRIMARY KEY, value INTEGER NOT NULL);",
    /* 6: the pages of a document asset (media/pdf.h), its renditions
     * slide_NNN and slide_NNN_thumb: too many for the assets.renditions
     * text, and each page has its own size. */
    "CREATE TABLE slides ("
    "  asset_id TEXT NOT NULL,"
    "  page INTEGER NOT NULL,"
    "  width INTEGER NOT NULL, height INTEGER NOT NULL, size INTEGER NOT NULL,"
    "  thumb_width INTEGER NOT NULL, thumb_height INTEGER NOT NULL, thumb_size INTEGER NOT NULL,"
    "  PRIMARY KEY (asset_id, page)) WITHOUT ROWID;",
    /* 7: slideshows (api/slideshows.c): a document asset with a presenter.
     * The control token is kept as its SHA-256 only, like API keys. */
    "CREATE TABLE slideshows ("
    "  asset_id TEXT PRIMARY KEY,"
    "  control_token_sha256 TEXT NOT NULL,"
    "  current INTEGER NOT NULL DEFAULT 0,"
    "  updated TEXT NOT NULL);",
    /* 8: GET /v1/jobs lists an owner's jobs newest first; without this it
     * scanned the whole table and sorted it. */
    "CREATE INDEX jobs_by_owner ON jobs(owner, created);",
    /* 9: retention of finished deliveries (jobs use jobs_runnable). */
    "CREATE INDEX deliveries_finished ON webhook_deliveries(finished_ms) WHERE state != 0;",
    /* 10: signed direct uploads (core/upload.h).  seq is the small integer
     * the cloud-asset-uploader API calls asset_id; (owner, object_key) is
     * unique, so two concurrent first uploads of one key meet here. */
    "CREATE TABLE uploads ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  owner TEXT NOT NULL,"
    "  object_key TEXT,"
    "  filename TEXT NOT NULL,"
    "  content_type TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  sha256 TEXT NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  asset_made INTEGER NOT NULL DEFAULT 0,"
    "  expires_ms INTEGER NOT NULL,"
    "  created TEXT NOT NULL,"
    "  UNIQUE (owner, object_key));"
    "CREATE INDEX uploads_pending ON uploads(expires_ms) WHERE state = 0;",
    /* 11: resumable (tus) uploads (core/tus.h).  id is the asset's id;
     * length -1 is deferred; lock_token/lock_until are the one writer's
     * lease; parts lists a final upload's partial uploads.  gc will find
     * expired ones through tus_expiring. */
    "CREATE TABLE tus_uploads ("
    "  id TEXT PRIMARY KEY,"
    "  owner TEXT NOT NULL,"
    "  length INTEGER NOT NULL,"
    "  upload_offset INTEGER NOT NULL DEFAULT 0,"
    "  metadata TEXT NOT NULL,"
    "  filename TEXT NOT NULL,"
    "  filetype TEXT NOT NULL,"
    "  concat INTEGER NOT NULL DEFAULT 0,"
    "  parts TEXT NOT NULL DEFAULT '',"
    "  state INTEGER NOT NULL DEFAULT 0,"
    "  lock_token TEXT NOT NULL DEFAULT '',"
    "  lock_until INTEGER NOT NULL DEFAULT 0,"
    "  expires_ms INTEGER NOT NULL,"
    "  created TEXT NOT NULL);"
    "CREATE INDEX tus_expiring ON tus_uploads(expires_ms) WHERE state = 0;",
    /* 12: the parts of a video's streams (queue/video.c): HLS media
     * playlists and fMP4 segments, served as renditions but too many to
     * list in assets.renditions (a 3 h video has thousands). */
    "CREATE TABLE rendition_parts ("
    "  asset_id TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  content_type TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  PRIMARY KEY (asset_id, name)) WITHOUT ROWID;",
    /* 13: what the owner says about an asset (PATCH /v1/assets/{id}):
     * tags is a JSON array of strings (asset_info_apply checked it). */
    "ALTER TABLE assets ADD COLUMN title TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE assets ADD COLUMN description TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE assets ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';",
    /* 14: an image's rendition profile ('' the default; core/asset.h),
     * named by the upload and kept through a signed or tus upload until
     * the asset exists. */
    "ALTER TABLE assets ADD COLUMN profile TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE uploads ADD COLUMN profile TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE tus_uploads ADD COLUMN profile TEXT NOT NULL DEFAULT '';",
    /* 15: a video's cover sent by its owner (core/cover.h): '' or its
     * record, JSON like renditions. */
    "ALTER TABLE assets ADD COLUMN cover TEXT NOT NULL DEFAULT '';",
    /* 16: CSV runs (core/run.h), the owner's people table they fill, and
     * the lines each running run has stored (runs.c).  runs_live
     * finds claimable runs: queued ones have lease_until 0. */
    "CREATE TABLE runs ("
    "  id TEXT PRIMARY KEY,"
    "  owner TEXT NOT NULL,"
    "  asset_id TEXT NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  mode INTEGER NOT NULL,"
    "  timeout_s INTEGER NOT NULL,"
    "  clear INTEGER NOT NULL,"
    "  n_read INTEGER NOT NULL DEFAULT 0,"
    "  n_skipped INTEGER NOT NULL DEFAULT 0,"
    "  n_sent INTEGER NOT NULL DEFAULT 0,"
    "  n_nacked INTEGER NOT NULL DEFAULT 0,"
    "  n_received INTEGER NOT NULL DEFAULT 0,"
    "  n_saved INTEGER NOT NULL DEFAULT 0,"
    "  n_duplicates INTEGER NOT NULL DEFAULT 0,"
    "  skipped_lines TEXT NOT NULL DEFAULT '[]',"
    "  pub_offset INTEGER NOT NULL DEFAULT 0,"
    "  pub_line INTEGER NOT NULL DEFAULT 1,"
    "  table_count INTEGER NOT NULL DEFAULT -1,"
    "  error_code TEXT NOT NULL DEFAULT '',"
    "  error_message TEXT NOT NULL DEFAULT '',"
    "  cancel INTEGER NOT NULL DEFAULT 0,"
    "  created_ms INTEGER NOT NULL,"
    "  started_ms INTEGER NOT NULL DEFAULT 0,"
    "  published_ms INTEGER NOT NULL DEFAULT 0,"
    "  last_message_ms INTEGER NOT NULL DEFAULT 0,"
    "  finished_ms INTEGER NOT NULL DEFAULT 0,"
    "  fence INTEGER NOT NULL DEFAULT 0,"
    "  lease_until INTEGER NOT NULL DEFAULT 0,"
    "  attempts INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX runs_by_owner ON runs(owner, created_ms);"
    "CREATE INDEX runs_live ON runs(lease_until, created_ms) WHERE state < 3;"
    "CREATE TABLE people ("
    "  owner TEXT NOT NULL,"
    "  email TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  run_id TEXT NOT NULL,"
    "  line INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (owner, email)) WITHOUT ROWID;"
    "CREATE TABLE run_lines ("
    "  run_id TEXT NOT NULL,"
    "  line INTEGER NOT NULL,"
    "  PRIMARY KEY (run_id, line)) WITHOUT ROWID;",
    /* 17: consumer sessions (the original consumer's protocol,
     * api/consumer.c): runs without a CSV, found by their UUID while
     * listed (session_open). */
    "ALTER TABLE runs ADD COLUMN session TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE runs ADD COLUMN session_open INTEGER NOT NULL DEFAULT 0;"
    "CREATE UNIQUE INDEX runs_session ON runs(session) WHERE session != '';",
    /* 18: the server's secrets (db_secret_adopt), so every serve process
     * on one database signs and verifies URL tokens with the same key. */
    "CREATE TABLE secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL);",
};

_Static_assert(sizeof db_migrations / sizeof *db_migrations == DB_MIGRATIONS,
               "schema.h's DB_MIGRATIONS counts the migrations");

bool schema_too_new(int version, const char **err)
{
    if (version <= DB_MIGRATIONS) return false;
    char have[16], know[16];
    snprintf(have, sizeof have, "%d", version);
    snprintf(know, sizeof know, "%d", DB_MIGRATIONS);
    log_error("the database was made by a newer assetd", "schema", have, "this_binary_knows", know,
              NULL);
    *err = "the database was made by a newer assetd: run that version (or newer)";
    return true;
}
