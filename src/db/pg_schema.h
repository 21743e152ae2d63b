/* pg_schema.h — the PostgreSQL migrations (pg_schema.c), for pg.c. */
#ifndef ASSETD_DB_PG_SCHEMA_H
#define ASSETD_DB_PG_SCHEMA_H

#define PG_MIGRATIONS 17
extern const char *const pg_migrations[PG_MIGRATIONS];

#endif
