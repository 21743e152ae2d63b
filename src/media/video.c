/* video.c — see video.h. */
#include "media/video.h"
#include "media/video_tool.h"
#include "media/image.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define POSTER_FRAMES 50             /* the thumbnail filter's batch */
#define POSTER_MAX_P 1080            /* its frames are held: 50 x 3 MiB at most */

/* Demuxers we transcode from: containers of audio/video streams only. */
static const char *const containers[] = {"mov", "matroska", "avi", "mpegts", "flv",
                                         "mpeg", "ogg", "asf", "mxf", "m4v"};

bool video_preset_valid(const char *p)
{
    static const char *const presets[] = {"ultrafast", "superfast", "veryfast", "faster",
                                          "fast", "medium", "slow", "slower", "veryslow"};
    for (size_t i = 0; i < sizeof presets / sizeof *presets; i++)
        if (strcmp(p, presets[i]) == 0) return true;
    return false;
}

/* ---------- probe ---------- */

static double number_of(json_t *v)
{
    if (json_is_number(v)) return json_number_value(v);
    const char *s = json_string_value(v);
    return s ? strtod(s, NULL) : 0;
}

static double rate_of(json_t *v)
{
    const char *s = json_string_value(v);
    int n, d;
    if (s && sscanf(s, "%d/%d", &n, &d) == 2 && d > 0) return (double)n / d;
    return 0;
}

/* Degrees clockwise to turn the coded frame upright: the display matrix
 * (side data, counter-clockwise in ffprobe) or the old `rotate` tag. */
static int rotation_of(json_t *stream)
{
    double r = 0;
    size_t i;
    json_t *sd;
    bool found = false;
    json_array_foreach(json_object_get(stream, "side_data_list"), i, sd) {
        json_t *rot = json_object_get(sd, "rotation");
        if (rot) r = -number_of(rot), found = true;
    }
    if (!found) r = number_of(json_object_get(json_object_get(stream, "tags"), "rotate"));
    int deg = ((int)lround(r / 90.0) * 90) % 360;
    return deg < 0 ? deg + 360 : deg;
}

static bool container_ok(const char *format_name, char *out, size_t cap)
{
    char first[64];
    snprintf(first, sizeof first, "%s", format_name ? format_name : "");
    first[strcspn(first, ",")] = '\0';
    for (size_t i = 0; i < sizeof containers / sizeof *containers; i++)
        if (strcmp(first, containers[i]) == 0) {
            snprintf(out, cap, "%s", containers[i]);
            return true;
        }
    return false;
}

static video_status parse_probe(const char *text, double max_duration, uint64_t max_pixels,
                                video_info *out, char *err, size_t errcap)
{
    json_error_t jerr;
    json_t *root = text ? json_loads(text, 0, &jerr) : NULL;
    json_t *format = json_object_get(root, "format");
    if (!json_is_object(format)) {
        json_decref(root);
        snprintf(err, errcap, "ffprobe could not read the file");
        return VIDEO_CORRUPT;
    }
    memset(out, 0, sizeof *out);
    json_t *video = NULL, *audio = NULL, *s;
    size_t i;
    json_array_foreach(json_object_get(root, "streams"), i, s) {
        const char *type = json_string_value(json_object_get(s, "codec_type"));
        bool cover_art = json_integer_value(json_object_get(
                             json_object_get(s, "disposition"), "attached_pic")) != 0;
        if (type && strcmp(type, "video") == 0 && !cover_art && !video) video = s;
        if (type && strcmp(type, "audio") == 0 && !audio) audio = s;
    }
    const char *format_name = json_string_value(json_object_get(format, "format_name"));
    video_status st = VIDEO_OK;
    if (!video || !container_ok(format_name, out->format, sizeof out->format)) {
        snprintf(err, errcap, "the file has no video stream we read (%s)",
                 format_name ? format_name : "unknown format");
        st = VIDEO_NOT_A_VIDEO;
        goto done;
    }
    int w = (int)json_integer_value(json_object_get(video, "width"));
    int h = (int)json_integer_value(json_object_get(video, "height"));
    out->duration = number_of(json_object_get(format, "duration"));
    if (out->duration <= 0) out->duration = number_of(json_object_get(video, "duration"));
    out->rotation = rotation_of(video);
    if (out->rotation == 90 || out->rotation == 270) { int t = w; w = h; h = t; }
    out->width = w, out->height = h;
    out->fps = rate_of(json_object_get(video, "avg_frame_rate"));
    if (out->fps <= 0) out->fps = rate_of(json_object_get(video, "r_frame_rate"));
    const char *vc = json_string_value(json_object_get(video, "codec_name"));
    snprintf(out->video_codec, sizeof out->video_codec, "%s", vc ? vc : "unknown");
    out->has_audio = audio != NULL;
    const char *ac = json_string_value(json_object_get(audio, "codec_name"));
    if (audio) snprintf(out->audio_codec, sizeof out->audio_codec, "%s", ac ? ac : "unknown");
    if (w <= 0 || h <= 0 || !(out->duration > 0) || !isfinite(out->duration)) {
        snprintf(err, errcap, "the video stream has no size or duration");
        st = VIDEO_CORRUPT;
    } else if (out->duration > max_duration) {
        snprintf(err, errcap, "the video lasts %.0f s; the limit is %.0f s", out->duration,
                 max_duration);
        st = VIDEO_TOO_LONG;
    } else if ((uint64_t)w * (uint64_t)h > max_pixels) {
        snprintf(err, errcap, "the video is %dx%d; the limit is %llu pixels", w, h,
                 (unsigned long long)max_pixels);
        st = VIDEO_TOO_LARGE;
    }
done:
    json_decref(root);
    return st;
}

video_status video_probe(int fd, const char *work_dir, const video_ctl *ctl,
                         double max_duration, uint64_t max_pixels, video_info *out, char *err,
                         size_t errcap)
{
    char *const argv[] = {"ffprobe", "-v", "error", "-protocol_whitelist", "file",
                          "-print_format", "json", "-show_streams", "-show_format",
                          "file:/dev/stdin", NULL};
    tool_out o = {0};
    video_status st = run_tool(argv, fd, work_dir, ctl, &o, err, errcap);
    if (st == VIDEO_CORRUPT && o.len == 0) {
        /* ffprobe refused the file outright: not a format it knows at all,
         * or a known one cut short; the sniffed type said video, so corrupt */
    } else if (st == VIDEO_OK || st == VIDEO_CORRUPT) {
        char why[256];
        snprintf(why, sizeof why, "%s", err);
        st = parse_probe(o.buf, max_duration, max_pixels, out, err, errcap);
        if (st == VIDEO_CORRUPT && why[0]) snprintf(err, errcap, "%s", why);
    }
    free(o.buf);
    return st;
}

/* ---------- plan ---------- */

/* The size at p (the short side), keeping the displayed aspect; even
 * dimensions (H.264 4:2:0).  Never more than the source. */
static video_size size_at(const video_info *in, int p, int maxrate)
{
    bool portrait = in->height > in->width;
    int shortside = portrait ? in->width : in->height, longside = portrait ? in->height : in->width;
    if (p > shortside) p = shortside;
    double l = (double)longside * p / shortside;
    int s = p & ~1, lo = 2 * (int)lround(l / 2.0);   /* 853.3 -> 854, as players expect */
    if (lo > longside) lo = longside & ~1;
    if (s < 2) s = 2;
    if (lo < 2) lo = 2;
    video_size v = {portrait ? s : lo, portrait ? lo : s, p, maxrate};
    return v;
}

static bool at_least(const video_info *in, int longside, int shortside)
{
    int l = in->width > in->height ? in->width : in->height;
    int s = in->width > in->height ? in->height : in->width;
    return l >= longside && s >= shortside;
}

static void timeline_make(double duration, video_timeline *t)
{
    static const struct { double under; int interval; } steps[] = {
        {15, 1}, {60, 3}, {300, 5}, {600, 10}, {1800, 15},
    };
    memset(t, 0, sizeof *t);
    if (!(duration >= 1)) return;   /* under a second: no timeline */
    t->interval = 30;
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++)
        if (duration < steps[i].under) {
            t->interval = steps[i].interval;
            break;
        }
    /* ffmpeg's fps filter emits the frame at k*interval for every
     * k*interval before the end; the millisecond keeps an exact multiple
     * (a 4.000 s clip at 1 s) from counting a frame past the end */
    t->count = (int)ceil(duration / t->interval - 0.001);
    if (t->count < 1) t->count = 1;
    t->columns = t->count < VIDEO_TILE_COLUMNS ? t->count : VIDEO_TILE_COLUMNS;
    t->rows = (t->count + VIDEO_TILE_COLUMNS - 1) / VIDEO_TILE_COLUMNS;
}

void video_plan_make(const video_info *in, video_plan *out)
{
    memset(out, 0, sizeof *out);
    out->fallback = at_least(in, 1280, 720)  ? size_at(in, 720, 3000)
                    : at_least(in, 854, 480) ? size_at(in, 480, 1400)
                                             : size_at(in, 360, 800);
    out->fallback_rung = -1;
    video_size as_is = {in->width, in->height, 0, 0};
    out->poster = at_least(in, POSTER_MAX_P + 1, POSTER_MAX_P + 1) ? size_at(in, POSTER_MAX_P, 0)
                                                                   : as_is;
    timeline_make(in->duration, &out->timeline);
    if (!at_least(in, 1280, 720)) return;
    out->rungs[out->nrungs++] = size_at(in, 480, 1400);
    out->rungs[out->nrungs++] = size_at(in, 720, 3000);
    if (at_least(in, 1920, 1080)) out->rungs[out->nrungs++] = size_at(in, 1080, 6000);
    /* with a ladder the fallback is 720p, a rung: encoded once, for both */
    for (int i = 0; i < out->nrungs; i++)
        if (out->rungs[i].width == out->fallback.width &&
            out->rungs[i].height == out->fallback.height)
            out->fallback_rung = i;
}

/* ---------- transcode ---------- */

typedef struct args {
    char *v[160];
    int n;
    char store[4096];   /* the formatted ones */
    size_t used;
    bool full;          /* something did not fit: never run it */
} args;

static void add(args *a, const char *s)
{
    if (a->n < (int)(sizeof a->v / sizeof *a->v) - 1) a->v[a->n++] = (char *)s;
    else a->full = true;
    a->v[a->n] = NULL;
}

static void addf(args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(args *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *at = a->store + a->used;
    int n = vsnprintf(at, sizeof a->store - a->used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof a->store - a->used) {
        a->full = true;
        return;
    }
    a->used += (size_t)n + 1;
    add(a, at);
}

static void add_video_codec(args *a, const char *spec, const video_size *s, const char *preset)
{
    addf(a, "-c:v%s", spec), add(a, "libx264");
    addf(a, "-preset:v%s", spec), add(a, preset);
    addf(a, "-crf:v%s", spec), add(a, "23");
    addf(a, "-maxrate:v%s", spec), addf(a, "%dk", s->maxrate_kbps);
    addf(a, "-bufsize:v%s", spec), addf(a, "%dk", 2 * s->maxrate_kbps);
    addf(a, "-pix_fmt:v%s", spec), add(a, "yuv420p");
    addf(a, "-profile:v%s", spec), add(a, "high");
}

static void add_audio_codec(args *a)
{
    add(a, "-c:a"), add(a, "aac");
    add(a, "-b:a"), addf(a, "%dk", VIDEO_AUDIO_KBPS);
    add(a, "-ac"), add(a, "2");
}

/* The filter graph's text, appended to with a bound: past the end,
 * len only grows and nothing more is written. */
typedef struct graph {
    char text[1400];
    size_t len;
} graph;

static void graph_add(graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void graph_add(graph *g, const char *fmt, ...)
{
    if (g->len >= sizeof g->text) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(g->text + g->len, sizeof g->text - g->len, fmt, ap);
    va_end(ap);
    g->len += n > 0 ? (size_t)n : sizeof g->text;
}

/* The filter graph: one decode, split once per distinct size.  A size
 * rounded to even numbers (854x480 for 16:9) keeps the exact display
 * aspect through its sample aspect ratio (1280:1281): the DASH muxer
 * requires one display aspect per adaptation set, so never setsar=1.
 * With a ladder the fallback has no branch: it is its rung's encode. */
static void add_graph(args *a, const video_plan *plan, int in_width, int in_height,
                      double duration)
{
    graph gr = {.len = 0};
    int n = plan->nrungs;
    const video_timeline *t = &plan->timeline;
    bool own_fallback = plan->fallback_rung < 0;
    int branches = n + own_fallback + (t->count > 0) + 1, b = n;
    graph_add(&gr, "[0:v]split=%d", branches);
    for (int i = 0; i < branches; i++) graph_add(&gr, "[s%d]", i);
    for (int i = 0; i < n; i++)
        graph_add(&gr, ";[s%d]scale=%d:%d[r%d]", i, plan->rungs[i].width, plan->rungs[i].height, i);
    if (own_fallback)
        graph_add(&gr, ";[s%d]scale=%d:%d[f]", b++, plan->fallback.width, plan->fallback.height);
    /* the timeline: frames dropped first, so its scale costs little; 4:4:4
     * because a letterboxed tile may be odd-sized.  Each tile is a JPEG of
     * its own, written as it comes (the sheet is joined after ffmpeg ends,
     * join_tiles): ffmpeg reports -progress only once every output has
     * started, and a `tile` filter's one frame starts at the very end.
     * The tiles span the container's duration, which the video stream may
     * end well before (1 s of picture in 20 s of audio): its last frame,
     * which players show meanwhile, is held (tpad) up to that duration, or
     * fps would make no tile past the picture's end, or none at all. */
    if (t->count > 0)
        graph_add(&gr,
                  ";[s%d]tpad=stop_mode=clone:stop_duration=%.3f,fps=1/%d,format=yuvj444p,"
                  "scale=%d:%d:force_original_aspect_ratio=decrease,"
                  "pad=%d:%d:(ow-iw)/2:(oh-ih)/2[t]",
                  b++, duration, t->interval, VIDEO_TILE_W, VIDEO_TILE_H, VIDEO_TILE_W,
                  VIDEO_TILE_H);
    /* the poster: `thumbnail` picks the most typical of the POSTER_FRAMES
     * frames from 10% of the duration (trim by time, then by count: its
     * one frame comes when they are in, or at the end of a shorter clip).
     * The very first frame goes first (concat) to the poster's outputs,
     * each written over with -update: for the same reason as the tiles,
     * an output must start early or -progress waits for it.  A video
     * stream shorter than 10% of the duration keeps that first frame.
     * The thumbnail holds its frames in this process, which has the
     * worker's address-space limit: a source over 1080p gives them scaled
     * to plan->poster (a 4K one's 50 frames would take 600 MiB). */
    char scale[48] = "";
    if (plan->poster.width != in_width || plan->poster.height != in_height)
        snprintf(scale, sizeof scale, ",scale=%d:%d", plan->poster.width, plan->poster.height);
    graph_add(&gr,
              ";[s%d]split=2[pa][pb];[pa]trim=end_frame=1%s[p0];"
              "[pb]trim=start=%.3f,trim=end_frame=%d%s,thumbnail=%d[p1];"
              "[p0][p1]concat=n=2:v=1:a=0,split=2[p][c];"
              "[c]crop='min(iw,trunc(ih*16/9))':'min(ih,trunc(iw*9/16))'[cc]",
              b, scale, duration * 0.1, POSTER_FRAMES, scale, POSTER_FRAMES);
    if (gr.len >= sizeof gr.text) a->full = true;   /* cut short: never run it */
    add(a, "-filter_complex"), addf(a, "%s", gr.text);
}

static void vtt_time(FILE *f, double t)
{
    long ms = lround(t * 1000);
    fprintf(f, "%02ld:%02ld:%02ld.%03ld", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60,
            ms % 1000);
}

/* The WebVTT thumbnails track: tile i covers [i*interval, next) and is
 * cut from the sheet by a media fragment, relative to the track's URL. */
static bool write_vtt(const char *dir, const video_timeline *t, double duration)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/timeline.vtt", dir);
    FILE *f = fopen(path, "w");
    if (!f) return false;
    fputs("WEBVTT\n", f);
    for (int i = 0; i < t->count; i++) {
        double from = (double)i * t->interval, to = from + t->interval;
        if (to > duration) to = duration;
        fputs("\n", f);
        vtt_time(f, from);
        fputs(" --> ", f);
        vtt_time(f, to);
        fprintf(f, "\ntilesheet.jpg#xywh=%d,%d,%d,%d\n", i % VIDEO_TILE_COLUMNS * VIDEO_TILE_W,
                i / VIDEO_TILE_COLUMNS * VIDEO_TILE_H, VIDEO_TILE_W, VIDEO_TILE_H);
    }
    return fclose(f) == 0;
}

/* tile_00001.jpg ... into tilesheet.jpg, t->columns a row.  A
 * clip whose last interval ffmpeg found no frame for has one tile fewer:
 * the sheet keeps a black cell there. */
static bool join_tiles(const char *dir, const video_timeline *t, char *err, size_t errcap)
{
    char sheet[1200];
    snprintf(sheet, sizeof sheet, "%s/tilesheet.jpg", dir);
    char **paths = calloc((size_t)t->count, sizeof *paths);
    int n = 0;
    bool copied = paths != NULL;
    for (int i = 0; copied && i < t->count; i++) {   /* ffmpeg numbers them from 1, no gaps */
        char path[1200];
        snprintf(path, sizeof path, "%s/tile_%05d.jpg", dir, i + 1);
        if (access(path, R_OK) != 0) break;
        if (!(paths[n] = strdup(path))) copied = false;
        else n++;
    }
    bool ok = copied && n > 0 &&
              image_join_tiles((const char *const *)paths, n, t->columns, t->rows, 80,
                               sheet, err, errcap);
    if (copied && n == 0) snprintf(err, errcap, "ffmpeg made no timeline frame");
    else if (!copied) snprintf(err, errcap, "out of memory");
    for (int i = 0; paths && i < n; i++) free(paths[i]);
    free(paths);
    return ok;
}

/* Lists representation rep's fMP4 pieces, init_N.m4s then seg_N_00001.m4s
 * on (ffmpeg numbers them from 1, no gaps), one URL a line, in list: read
 * through the concatf protocol, they are one fragmented MP4 file. */
static bool list_pieces(const char *dir, int rep, char *list, size_t cap)
{
    char path[1200];
    snprintf(list, cap, "%s/pieces_%d.txt", dir, rep);
    FILE *f = fopen(list, "w");
    if (!f) return false;
    snprintf(path, sizeof path, "%s/init_%d.m4s", dir, rep);
    fprintf(f, "file:%s\n", path);
    for (int k = 1;; k++) {
        snprintf(path, sizeof path, "%s/seg_%d_%05d.m4s", dir, rep, k);
        if (access(path, R_OK) != 0) break;
        fprintf(f, "file:%s\n", path);
    }
    return fclose(f) == 0;
}

/* The fallback of a source with a ladder: its rung's video and the audio,
 * copied (no decode, no encode) into a progressive MP4, moov first.  Its
 * keyframes are the rung's, every segment (6 s) at least. */
static video_status remux_fallback(int fd, const video_info *in, const video_plan *plan,
                                   const char *out_dir, const video_ctl *ctl, char *err,
                                   size_t errcap)
{
    char vlist[1200], alist[1200];
    if (!list_pieces(out_dir, plan->fallback_rung, vlist, sizeof vlist) ||
        (in->has_audio && !list_pieces(out_dir, plan->nrungs, alist, sizeof alist))) {
        snprintf(err, errcap, "cannot list the segments: %s", strerror(errno));
        return VIDEO_IO_ERROR;
    }
    args a = {.n = 0};
    add(&a, "ffmpeg");
    add(&a, "-nostdin"), add(&a, "-hide_banner"), add(&a, "-nostats");
    add(&a, "-loglevel"), add(&a, "error");
    add(&a, "-protocol_whitelist"), add(&a, "file,concatf");
    add(&a, "-f"), add(&a, "mp4");
    add(&a, "-i"), addf(&a, "concatf:file:%s", vlist);
    if (in->has_audio) {
        add(&a, "-f"), add(&a, "mp4");
        add(&a, "-i"), addf(&a, "concatf:file:%s", alist);
    }
    add(&a, "-map"), add(&a, "0:v:0");
    if (in->has_audio) add(&a, "-map"), add(&a, "1:a:0");
    add(&a, "-c"), add(&a, "copy");
    add(&a, "-movflags"), add(&a, "+faststart");
    add(&a, "-f"), add(&a, "mp4");
    addf(&a, "%s/fallback", out_dir);
    if (a.full) {
        snprintf(err, errcap, "the ffmpeg command does not fit");   /* a bug */
        return VIDEO_IO_ERROR;
    }
    tool_out o = {0};
    video_status st = run_tool(a.v, fd, out_dir, ctl, &o, err, errcap);
    free(o.buf);
    return st;
}

video_status video_transcode(int fd, const video_info *in, const video_plan *plan,
                             const char *preset, const char *out_dir, const video_ctl *ctl,
                             char *err, size_t errcap)
{
    args a = {.n = 0};
    add(&a, "ffmpeg");
    add(&a, "-nostdin"), add(&a, "-hide_banner"), add(&a, "-nostats");
    add(&a, "-loglevel"), add(&a, "error");
    add(&a, "-progress"), add(&a, "pipe:1");
    add(&a, "-protocol_whitelist"), add(&a, "file");
    add(&a, "-f"), add(&a, in->format);
    add(&a, "-i"), add(&a, "file:/dev/stdin");
    add_graph(&a, plan, in->width, in->height, in->duration);
    if (plan->fallback_rung < 0) {   /* no ladder: a progressive MP4, moov first */
        add(&a, "-map"), add(&a, "[f]");
        if (in->has_audio) add(&a, "-map"), add(&a, "0:a:0");
        add_video_codec(&a, "", &plan->fallback, preset);
        if (in->has_audio) add_audio_codec(&a);
        add(&a, "-movflags"), add(&a, "+faststart");
        add(&a, "-f"), add(&a, "mp4");
        addf(&a, "%s/fallback", out_dir);
    }
    if (plan->nrungs > 0) {
        for (int i = 0; i < plan->nrungs; i++) add(&a, "-map"), addf(&a, "[r%d]", i);
        if (in->has_audio) add(&a, "-map"), add(&a, "0:a:0");
        for (int i = 0; i < plan->nrungs; i++) {
            char spec[16];
            snprintf(spec, sizeof spec, ":%d", i);
            add_video_codec(&a, spec, &plan->rungs[i], preset);
        }
        if (in->has_audio) add_audio_codec(&a);
        /* keyframes on every segment boundary, in every rung alike */
        add(&a, "-force_key_frames:v"), addf(&a, "expr:gte(t,n_forced*%d)", VIDEO_SEGMENT_SECONDS);
        add(&a, "-f"), add(&a, "dash");
        add(&a, "-seg_duration"), addf(&a, "%d", VIDEO_SEGMENT_SECONDS);
        add(&a, "-use_template"), add(&a, "1");
        add(&a, "-use_timeline"), add(&a, "0");
        add(&a, "-hls_playlist"), add(&a, "1");
        add(&a, "-hls_master_name"), add(&a, "hls.m3u8");
        add(&a, "-adaptation_sets");
        add(&a, in->has_audio ? "id=0,streams=v id=1,streams=a" : "id=0,streams=v");
        add(&a, "-init_seg_name"), add(&a, "init_$RepresentationID$.m4s");
        add(&a, "-media_seg_name"), add(&a, "seg_$RepresentationID$_$Number%05d$.m4s");
        addf(&a, "%s/dash.mpd", out_dir);
    }
    if (plan->timeline.count > 0) {
        add(&a, "-map"), add(&a, "[t]");
        add(&a, "-frames:v"), addf(&a, "%d", plan->timeline.count);
        add(&a, "-q:v"), add(&a, "4");
        add(&a, "-f"), add(&a, "image2");
        addf(&a, "%s/tile_%%05d.jpg", out_dir);
    }
    /* the poster and its crop: two frames each, the last one stays */
    add(&a, "-map"), add(&a, "[p]");
    add(&a, "-fps_mode"), add(&a, "passthrough");
    add(&a, "-q:v"), add(&a, "2");
    add(&a, "-update"), add(&a, "1");
    add(&a, "-f"), add(&a, "image2");
    addf(&a, "%s/poster.jpg", out_dir);
    add(&a, "-map"), add(&a, "[cc]");
    add(&a, "-fps_mode"), add(&a, "passthrough");
    add(&a, "-q:v"), add(&a, "2");
    add(&a, "-update"), add(&a, "1");
    add(&a, "-f"), add(&a, "image2");
    addf(&a, "%s/cover.jpg", out_dir);
    if (a.full) {
        snprintf(err, errcap, "the ffmpeg command does not fit");   /* a bug */
        return VIDEO_IO_ERROR;
    }
    tool_out o = {.duration = in->duration};
    video_status st = run_tool(a.v, fd, out_dir, ctl, &o, err, errcap);
    if (st == VIDEO_OK && plan->nrungs > 0 && !video_hls_finish(out_dir, plan, in->has_audio)) {
        snprintf(err, errcap, "ffmpeg's HLS playlists are not where expected");
        st = VIDEO_IO_ERROR;
    }
    if (st == VIDEO_OK && plan->fallback_rung >= 0)
        st = remux_fallback(fd, in, plan, out_dir, ctl, err, errcap);
    char poster[1200];
    snprintf(poster, sizeof poster, "%s/poster.jpg", out_dir);
    struct stat sb;
    if (st == VIDEO_OK && (stat(poster, &sb) != 0 || sb.st_size == 0)) {
        snprintf(err, errcap, "ffmpeg made no poster frame");
        st = VIDEO_CORRUPT;
    }
    if (st == VIDEO_OK && plan->timeline.count > 0 &&
        !join_tiles(out_dir, &plan->timeline, err, errcap))
        st = VIDEO_IO_ERROR;
    if (st == VIDEO_OK && plan->timeline.count > 0 &&
        !write_vtt(out_dir, &plan->timeline, in->duration)) {
        snprintf(err, errcap, "cannot write the timeline track: %s", strerror(errno));
        st = VIDEO_IO_ERROR;
    }
    return st;
}
