/* play.c — a video for its player page (/play/{id}, web/play.js) without
 * an API key: play links, and the loader of the routes that accept them.
 *
 *   POST /v1/assets/{id}/links {"page": "play", "expires_in"?}   (uploads.c)
 *     -> {"url": BASE/play/ID#token=T, "token", "expires", "asset_id"}
 *   GET  /v1/assets/{id}/manifest.json?token=T
 *   GET  /v1/assets/{id}/renditions/{name}?token=T
 *
 * A play token is a signed token (core/token.h) whose purpose names the
 * asset, "play." + id: it opens that video's manifest and renditions (the
 * HLS playlists and segments, the fallback MP4, poster, covers, sprite
 * sheet, WebVTT track) until it expires, and nothing else — not the
 * original's bytes, not the asset's JSON, not another asset, nothing that
 * writes.  Why a token and not the SigV4 links of downloads: a video is
 * hundreds of files named by relative URLs inside its playlists, which no
 * per-URL signature can cover, while one token goes on every request the
 * page (and hls.js, through its xhrSetup) makes.  Like every signed token
 * it cannot be revoked early: its lifetime (at most --max-sign-ttl) is the
 * link's.  The page URL carries it in the fragment, so the request for the
 * HTML, access logs of it and Referers never hold it.
 *
 * The page opened from the gallery (the owner's key in localStorage) asks
 * for a token the same way, with the key, so both ways in run the same
 * requests.
 *
 * An Authorization header, when sent, decides alone (as on /v1/events): a
 * wrong key is a 401 even with a good token beside it.
 */
#include "api/app.h"
#include "util/timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* "play." + an asset id: 27 bytes, under token.h's 31. */
static void purpose_of(const char *id, char out[ID_LEN + 8])
{
    snprintf(out, ID_LEN + 8, "play.%s", id);
}

bool play_link(http_req *r, const asset *as, int64_t ttl, json_t **out)
{
    app *a = http_req_app(r);
    char purpose[ID_LEN + 8], token[TOKEN_MAX + 1], base[300], expires[32];
    purpose_of(as->id, purpose);
    int64_t expires_s = time_now_ms() / 1000 + ttl;
    if (!token_sign(a->secret, purpose, as->owner, expires_s, token)) {
        http_reply_error(r, 500, "internal", "cannot sign the link");
        return false;
    }
    api_base_url(r, base, sizeof base);
    size_t cap = strlen(base) + strlen(token) + ID_LEN + 32;
    char *url = malloc(cap);
    if (!url) {
        http_reply_error(r, 500, "internal", "out of memory");
        return false;
    }
    snprintf(url, cap, "%s/play/%s#token=%s", base, as->id, token);
    time_format_ms(expires_s * 1000, expires);
    *out = json_pack("{s:s, s:s, s:s, s:s}", "url", url, "token", token, "expires", expires,
                     "asset_id", as->id);
    free(url);
    return true;
}

static void refuse(http_req *r, const char *why)
{
    http_reply_error(r, 401, "unauthorized", "%s", why);
    http_reply_header(r, "WWW-Authenticate", "Bearer");
}

bool assets_load_playable(http_req *r, asset *out)
{
    app *a = http_req_app(r);
    const char *id = http_req_param(r, 0);
    const char *auth = http_req_header(r, "Authorization");
    const char *token = http_req_query(r, "token");
    char owner[OWNER_MAX + 1];
    if (auth) {
        const char *key = strncasecmp(auth, "Bearer ", 7) == 0 ? auth + 7 : "";
        while (*key == ' ') key++;
        if (!api_authenticate(a, key, owner)) {
            refuse(r, "a valid API key is required: send 'Authorization: Bearer <token>'");
            return false;
        }
    } else if (token) {
        char purpose[ID_LEN + 8];
        /* A malformed id names no asset, and no token was signed for it. */
        if (!id_is_valid(id)) {
            http_reply_error(r, 404, "not_found", "no such asset");
            return false;
        }
        purpose_of(id, purpose);
        if (!token_verify(a->secret, purpose, token, time_now_ms() / 1000, owner)) {
            refuse(r, "the play link is invalid, expired, or for another video");
            return false;
        }
    } else {
        refuse(r, "send an API key ('Authorization: Bearer <token>') or a play link's ?token=");
        return false;
    }
    db_status st = DB_NOT_FOUND;
    if (id_is_valid(id)) {
        db_conn *c = db_acquire(a->db);
        st = c ? db_asset_get(c, owner, id, out) : DB_ERROR;
        db_release(a->db, c);
    }
    if (st == DB_NOT_FOUND) http_reply_error(r, 404, "not_found", "no such asset");
    else if (st != DB_OK) http_reply_error(r, 503, "database_unavailable", "try again");
    return st == DB_OK;
}
