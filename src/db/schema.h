/* schema.h — the migrations (schema.c), for the drivers. */
#ifndef ASSETD_DB_SCHEMA_H
#define ASSETD_DB_SCHEMA_H

#define DB_MIGRATIONS 17
extern const char *const db_migrations[DB_MIGRATIONS];

#endif
