/* sqlite_slides.c — slides and slideshows on SQLite (db.h "Slides").
 *
 * A document asset's pages (media/pdf.h) are rows of `slides`, too many and
 * each with its own size for the assets.renditions text;
 * db_asset_renditions and db_asset_json join them into the rendition list
 * clients see.  A video's stream parts (rendition_parts: HLS media
 * playlists, fMP4 segments) are served by name but never listed.  A
 * slideshow is a document asset with a presenter; moving its current slide
 * appends slideshow.control in the caller's transaction.
 */
#include "db/db_internal.h"

#include <stdio.h>

const char *const sq_sql_slides[Q_COUNT] = {
    [Q_SLIDES_CLEAR] = "DELETE FROM slides WHERE asset_id = ?1",
    [Q_SLIDE_INSERT] = "INSERT INTO slides (asset_id, page, width, height, size, thumb_width,"
                       " thumb_height, thumb_size) VALUES (?,?,?,?,?,?,?,?)",
    [Q_SLIDES_LIST] = "SELECT page, width, height, size, thumb_width, thumb_height, thumb_size"
                      " FROM slides WHERE asset_id = ?1 ORDER BY page",
    [Q_SHOW_INSERT] = "INSERT INTO slideshows (asset_id, control_token_sha256, updated)"
                      " VALUES (?1, ?2, ?3)",
    [Q_SHOW_GET] = "SELECT asset_id, control_token_sha256, current, updated FROM slideshows"
                   " WHERE asset_id = ?1",
    [Q_SHOW_SET] = "UPDATE slideshows SET current = ?2, updated = ?3 WHERE asset_id = ?1",
    [Q_PARTS_CLEAR] = "DELETE FROM rendition_parts WHERE asset_id = ?1",
    [Q_PART_INSERT] = "INSERT OR REPLACE INTO rendition_parts (asset_id, name, content_type, size)"
                      " VALUES (?1, ?2, ?3, ?4)",
    [Q_PART_GET] = "SELECT content_type, size FROM rendition_parts WHERE asset_id = ?1 AND name = ?2",
};

db_status db_slides_clear(db_conn *c, const char *asset_id)
{
    return sq_exec_one(c, Q_SLIDES_CLEAR, asset_id, "slides clear");
}

db_status db_slide_insert(db_conn *c, const char *asset_id, const slide *sl)
{
    sqlite3_stmt *s = sq_stmt(c, Q_SLIDE_INSERT);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, asset_id, -1, SQLITE_STATIC);
    const int64_t v[] = {sl->page, sl->width, sl->height, (int64_t)sl->size, sl->thumb_width,
                         sl->thumb_height, (int64_t)sl->thumb_size};
    for (int i = 0; i < 7; i++) sqlite3_bind_int64(s, i + 2, v[i]);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? DB_OK : sq_fail(c, "slide insert");
}

static void add_rendition(json_t *list, const char *asset_id, const char *name, int w, int h,
                          int64_t size)
{
    char url[ID_LEN + 64];
    snprintf(url, sizeof url, "/v1/assets/%s/renditions/%s", asset_id, name);
    json_array_append_new(list, json_pack("{s:s, s:s, s:i, s:i, s:I, s:s}", "name", name,
                                          "content_type", "image/jpeg", "width", w, "height", h,
                                          "size", (json_int_t)size, "url", url));
}

db_status db_asset_renditions(db_conn *c, const asset *a, json_t **out)
{
    *out = NULL;
    if (a->kind != ASSET_PDF && a->kind != ASSET_PRESENTATION) {
        *out = asset_renditions(a);
        return DB_OK;
    }
    sqlite3_stmt *s = sq_stmt(c, Q_SLIDES_LIST);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, a->id, -1, SQLITE_STATIC);
    json_t *list = json_array();
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        char name[32];
        int page = sqlite3_column_int(s, 0);
        snprintf(name, sizeof name, "slide_%03d", page);
        add_rendition(list, a->id, name, sqlite3_column_int(s, 1), sqlite3_column_int(s, 2),
                      sqlite3_column_int64(s, 3));
        snprintf(name, sizeof name, "slide_%03d_thumb", page);
        add_rendition(list, a->id, name, sqlite3_column_int(s, 4), sqlite3_column_int(s, 5),
                      sqlite3_column_int64(s, 6));
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        json_decref(list);
        return sq_fail(c, "slides list");
    }
    *out = list;
    return DB_OK;
}

json_t *db_asset_json(db_conn *c, const asset *a)
{
    json_t *o = asset_to_json(a), *renditions;
    if (a->kind == ASSET_PDF || a->kind == ASSET_PRESENTATION) {
        if (db_asset_renditions(c, a, &renditions) == DB_OK)
            json_object_set_new(o, "renditions", renditions);
    }
    return o;
}

/* ---------- rendition parts ---------- */

db_status db_parts_clear(db_conn *c, const char *asset_id)
{
    return sq_exec_one(c, Q_PARTS_CLEAR, asset_id, "parts clear");
}

db_status db_part_insert(db_conn *c, const char *asset_id, const char *name,
                         const char *content_type, uint64_t size)
{
    sqlite3_stmt *s = sq_stmt(c, Q_PART_INSERT);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, asset_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, content_type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, (int64_t)size);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? DB_OK : sq_fail(c, "part insert");
}

db_status db_part_get(db_conn *c, const char *asset_id, const char *name, char *content_type,
                      size_t cap, uint64_t *size)
{
    sqlite3_stmt *s = sq_stmt(c, Q_PART_GET);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, asset_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        sq_copy_text(content_type, cap, s, 0);
        *size = (uint64_t)sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    return sq_lookup_result(c, rc, "part get");
}

/* ---------- slideshows ---------- */

db_status db_slideshow_insert(db_conn *c, const slideshow *sh)
{
    sqlite3_stmt *s = sq_stmt(c, Q_SHOW_INSERT);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, sh->asset_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, sh->token_sha256, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, sh->updated, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? DB_OK : sq_fail(c, "slideshow insert");
}

static void read_slideshow(sqlite3_stmt *s, void *out)
{
    slideshow *sh = out;
    sq_copy_text(sh->asset_id, sizeof sh->asset_id, s, 0);
    sq_copy_text(sh->token_sha256, sizeof sh->token_sha256, s, 1);
    sh->current = sqlite3_column_int(s, 2);
    sq_copy_text(sh->updated, sizeof sh->updated, s, 3);
}

db_status db_slideshow_get(db_conn *c, const char *asset_id, slideshow *out)
{
    sqlite3_stmt *s = sq_stmt(c, Q_SHOW_GET);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, asset_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) read_slideshow(s, out);
    sqlite3_reset(s);
    return sq_lookup_result(c, rc, "slideshow get");
}

db_status db_slideshow_set_current(db_conn *c, const char *asset_id, const char *owner,
                                   int current, int64_t now_ms, const char *updated,
                                   const char *event_data, slideshow *out)
{
    if (!sq_in_transaction(c, "slideshow.control")) return DB_ERROR;
    sqlite3_stmt *s = sq_stmt(c, Q_SHOW_SET);
    if (!s) return DB_ERROR;
    sqlite3_bind_text(s, 1, asset_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, current);
    sqlite3_bind_text(s, 3, updated, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    db_status st = sq_change_result(c, rc, "slideshow control");
    if (st != DB_OK || (st = db_slideshow_get(c, asset_id, out)) != DB_OK) return st;
    return db_event_append(c, "slideshow.control", asset_id, owner, now_ms, event_data);
}
