/* slides.c — slides, stream parts and slideshows (db.h "Slides").
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

const char *const dbi_sql_slides[Q_COUNT] = {
    [Q_SLIDES_CLEAR] = "DELETE FROM slides WHERE asset_id = ?1",
    [Q_SLIDE_INSERT] = "INSERT INTO slides (asset_id, page, width, height, size, thumb_width,"
                       " thumb_height, thumb_size) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
    [Q_SLIDES_LIST] = "SELECT page, width, height, size, thumb_width, thumb_height, thumb_size"
                      " FROM slides WHERE asset_id = ?1 ORDER BY page",
    [Q_SHOW_INSERT] = "INSERT INTO slideshows (asset_id, control_token_sha256, updated)"
                      " VALUES (?1, ?2, ?3)",
    [Q_SHOW_GET] = "SELECT asset_id, control_token_sha256, current, updated FROM slideshows"
                   " WHERE asset_id = ?1",
    [Q_SHOW_SET] = "UPDATE slideshows SET current = ?2, updated = ?3 WHERE asset_id = ?1",
    [Q_PARTS_CLEAR] = "DELETE FROM rendition_parts WHERE asset_id = ?1",
    /* A retry writes the same names again. */
    [Q_PART_INSERT] = "INSERT INTO rendition_parts (asset_id, name, content_type, size)"
                      " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (asset_id, name) DO UPDATE"
                      " SET content_type = excluded.content_type, size = excluded.size",
    [Q_PART_GET] = "SELECT content_type, size FROM rendition_parts WHERE asset_id = ?1 AND name = ?2",
};

db_status db_slides_clear(db_conn *c, const char *asset_id)
{
    return dbi_exec_one(c, Q_SLIDES_CLEAR, asset_id, "slides clear");
}

db_status db_slide_insert(db_conn *c, const char *asset_id, const slide *sl)
{
    sql_stmt *s = dbi_stmt(c, Q_SLIDE_INSERT);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, asset_id);
    const int64_t v[] = {sl->page, sl->width, sl->height, (int64_t)sl->size, sl->thumb_width,
                         sl->thumb_height, (int64_t)sl->thumb_size};
    for (int i = 0; i < 7; i++) sql_bind_int64(s, i + 2, v[i]);
    return dbi_done(c, s, "slide insert");
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
    sql_stmt *s = dbi_stmt(c, Q_SLIDES_LIST);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, a->id);
    json_t *list = json_array();
    sql_result rc;
    while ((rc = sql_step(s)) == SQL_ROW) {
        char name[32];
        int page = sql_column_int64(s, 0);
        snprintf(name, sizeof name, "slide_%03d", page);
        add_rendition(list, a->id, name, sql_column_int64(s, 1), sql_column_int64(s, 2),
                      sql_column_int64(s, 3));
        snprintf(name, sizeof name, "slide_%03d_thumb", page);
        add_rendition(list, a->id, name, sql_column_int64(s, 4), sql_column_int64(s, 5),
                      sql_column_int64(s, 6));
    }
    sql_reset(s);
    if (rc != SQL_DONE) {
        json_decref(list);
        return dbi_fail(c, "slides list");
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
    return dbi_exec_one(c, Q_PARTS_CLEAR, asset_id, "parts clear");
}

db_status db_part_insert(db_conn *c, const char *asset_id, const char *name,
                         const char *content_type, uint64_t size)
{
    sql_stmt *s = dbi_stmt(c, Q_PART_INSERT);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, asset_id);
    sql_bind_text(s, 2, name);
    sql_bind_text(s, 3, content_type);
    sql_bind_int64(s, 4, (int64_t)size);
    return dbi_done(c, s, "part insert");
}

typedef struct part {
    char *content_type;
    size_t cap;
    uint64_t *size;
} part;

static void read_part(sql_stmt *s, void *out)
{
    part *p = out;
    dbi_copy_text(p->content_type, p->cap, s, 0);
    *p->size = (uint64_t)sql_column_int64(s, 1);
}

db_status db_part_get(db_conn *c, const char *asset_id, const char *name, char *content_type,
                      size_t cap, uint64_t *size)
{
    sql_stmt *s = dbi_stmt(c, Q_PART_GET);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, asset_id);
    sql_bind_text(s, 2, name);
    part p = {content_type, cap, size};
    return dbi_row(c, s, read_part, &p, "part get");
}

/* ---------- slideshows ---------- */

db_status db_slideshow_insert(db_conn *c, const slideshow *sh)
{
    sql_stmt *s = dbi_stmt(c, Q_SHOW_INSERT);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, sh->asset_id);
    sql_bind_text(s, 2, sh->token_sha256);
    sql_bind_text(s, 3, sh->updated);
    return dbi_done(c, s, "slideshow insert");
}

static void read_slideshow(sql_stmt *s, void *out)
{
    slideshow *sh = out;
    dbi_copy_text(sh->asset_id, sizeof sh->asset_id, s, 0);
    dbi_copy_text(sh->token_sha256, sizeof sh->token_sha256, s, 1);
    sh->current = sql_column_int64(s, 2);
    dbi_copy_text(sh->updated, sizeof sh->updated, s, 3);
}

db_status db_slideshow_get(db_conn *c, const char *asset_id, slideshow *out)
{
    sql_stmt *s = dbi_stmt(c, Q_SHOW_GET);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, asset_id);
    return dbi_row(c, s, read_slideshow, out, "slideshow get");
}

db_status db_slideshow_set_current(db_conn *c, const char *asset_id, const char *owner,
                                   int current, int64_t now_ms, const char *updated,
                                   const char *event_data, slideshow *out)
{
    if (!dbi_in_transaction(c, "slideshow.control")) return DB_ERROR;
    sql_stmt *s = dbi_stmt(c, Q_SHOW_SET);
    if (!s) return DB_ERROR;
    sql_bind_text(s, 1, asset_id);
    sql_bind_int64(s, 2, current);
    sql_bind_text(s, 3, updated);
    db_status st = dbi_change(c, s, "slideshow control");
    if (st != DB_OK || (st = db_slideshow_get(c, asset_id, out)) != DB_OK) return st;
    return db_event_append(c, "slideshow.control", asset_id, owner, now_ms, event_data);
}
