/* web.c — GET /, /app.js, /upload.js, /app.css and /tus.min.js (the browser
 * bundle of npm tus-js-client, see web/vendor/): the page; GET /present/{id},
 * /watch/{id}, /slides.js, /slides.css: the slideshow pages; GET /play/{id},
 * /play.js, /play.css and /hls.min.js (npm hls.js): the video player page;
 * GET /publish and /publish.js: the original publisher's CSV form.
 * A page with an id in its path is the same HTML for every well-formed id
 * (its script reads the id).  All are served from the copies compiled into
 * the binary (web/static.h).
 *
 * No API key is needed: the files hold no data, and a browser fetching a
 * page cannot send one anyway.  The page itself asks for the key and sends
 * it on every API call it makes.
 *
 * Caching: Cache-Control: no-cache with a strong ETag (the SHA-256 of the
 * bytes), so a browser revalidates every time and gets a 304 while the
 * binary is unchanged, and a new build is seen at once — no stale script
 * talking to a newer API.
 *
 * The page shows names and messages chosen by whoever uploaded a file, so
 * it is hardened against script injection twice: app.js only ever sets
 * text (never markup), and the Content-Security-Policy lets no script run
 * but the files served here — no inline script or style, no eval, nothing from
 * another origin — and, where the browser supports Trusted Types, makes any
 * HTML-parsing sink (innerHTML and the like) throw.  Asset bytes are never
 * shown by URL on this origin: the page fetches them with its key into blob:
 * URLs, which img-src allows.  The player streams through Media Source
 * Extensions, whose media element plays a blob: URL: media-src allows it
 * (with 'self' for the MP4 fallback); hls.js runs without a worker, since a
 * worker from a blob: URL is script, which the policy refuses.  Every page
 * gets the same policy (web_policy_make).  nosniff keeps every file its declared type.
 */
#include "api/app.h"
#include "http/etag.h"
#include "web/static.h"

#include <stdio.h>
#include <string.h>

/* With --s3-redirect, what a page loads by URL (the player's segments, MP4,
 * poster and sprite sheet; the gallery's pictures) answers a 302 to a
 * presigned URL on the bucket's origin, so img-src, media-src and
 * connect-src name that one origin too (the same function that makes the
 * URLs derives it, so the two cannot disagree) — and nothing else: script,
 * style and frames still come from here alone. */
void web_policy_make(app *a)
{
    char bucket[320] = "";
    if (a->s3_redirect) {
        bucket[0] = ' ';
        /* The signer's endpoint signed at start-up, so it parses. */
        if (!sigv4_endpoint_origin(a->signer.endpoint, bucket + 1, sizeof bucket - 1)) bucket[0] = '\0';
    }
    snprintf(a->page_csp, sizeof a->page_csp,
             "default-src 'self'; img-src 'self' blob: data:%s; media-src 'self' blob:%s; "
             "connect-src 'self'%s; "
             "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
             "require-trusted-types-for 'script'",
             bucket, bucket, bucket);
}

static void add_headers(http_req *r, const web_file *f, bool is_page)
{
    http_reply_header(r, "ETag", f->etag);
    http_reply_header(r, "Cache-Control", "no-cache");
    http_reply_header(r, "X-Content-Type-Options", "nosniff");
    if (!is_page) return;
    http_reply_header(r, "Content-Security-Policy", ((app *)http_req_app(r))->page_csp);
    http_reply_header(r, "Referrer-Policy", "no-referrer");
}

/* Replies with one embedded file, or 304 when the client's copy is current. */
static void serve(http_req *r, const char *name)
{
    const web_file *f = web_file_find(name);
    if (!f) {  /* the build embedded a different file list than the routes name */
        http_reply_error(r, 500, "internal", "%s is not in this build", name);
        return;
    }
    const char *inm = http_req_header(r, "If-None-Match");
    if (inm && http_etag_matches(inm, f->etag))
        http_reply_empty(r, 304);
    else
        http_reply_static(r, 200, web_content_type(f->name), f->data, f->size);
    size_t n = strlen(name);
    add_headers(r, f, n > 5 && strcmp(name + n - 5, ".html") == 0);
}

void web_page_headers(http_req *r)
{
    http_reply_header(r, "X-Content-Type-Options", "nosniff");
    http_reply_header(r, "Content-Security-Policy", ((app *)http_req_app(r))->page_csp);
    http_reply_header(r, "Referrer-Policy", "no-referrer");
}

void web_page(http_req *r) { serve(r, "index.html"); }
void web_script(http_req *r) { serve(r, "app.js"); }
void web_upload_script(http_req *r) { serve(r, "upload.js"); }
void web_tus_script(http_req *r) { serve(r, "tus.min.js"); }
void web_style(http_req *r) { serve(r, "app.css"); }
/* The same page for every well-formed id (whether the slideshow exists is
 * the page's question to the API); a malformed one is no slideshow's. */
static void serve_id_page(http_req *r, const char *file, const char *what)
{
    if (!id_is_valid(http_req_param(r, 0))) http_reply_error(r, 404, "not_found", "no such %s", what);
    else serve(r, file);
}

void web_present(http_req *r) { serve_id_page(r, "present.html", "slideshow"); }
void web_watch(http_req *r) { serve_id_page(r, "watch.html", "slideshow"); }
void web_slides_script(http_req *r) { serve(r, "slides.js"); }
void web_slides_style(http_req *r) { serve(r, "slides.css"); }
void web_play(http_req *r) { serve_id_page(r, "play.html", "video"); }
void web_play_script(http_req *r) { serve(r, "play.js"); }
void web_play_style(http_req *r) { serve(r, "play.css"); }
void web_hls_script(http_req *r) { serve(r, "hls.min.js"); }
void web_publish(http_req *r) { serve(r, "publish.html"); }
void web_publish_script(http_req *r) { serve(r, "publish.js"); }
