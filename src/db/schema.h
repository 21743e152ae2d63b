/* schema.h — the migrations (schema.c), for the drivers. */
#ifndef ASSETD_DB_SCHEMA_H
#define ASSETD_DB_SCHEMA_H

#define DB_MIGRATIONS 18
extern const char *const db_migrations[DB_MIGRATIONS];

#include <stdbool.h>
/* True (logged, *err set) when a database's schema version is past what
 * this binary knows: a newer assetd wrote it, and its tables are not ours
 * to read or migrate down. */
bool schema_too_new(int version, const char **err);

#endif
