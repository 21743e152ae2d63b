/* video_hls.c — the HLS playlists of a ladder, and publishing them while
 * ffmpeg still writes the ladder (see video.h, "publishing while
 * transcoding").
 *
 * ffmpeg's dash muxer writes each finished segment as NAME.tmp and renames
 * it when whole, then rewrites (through a temporary file and a rename) the
 * media playlist media_N.m3u8 of representation N listing it, and after
 * the first segments the master hls.m3u8, once.  So a segment named in a
 * media_N.m3u8 read here is complete on disk.
 *
 * We never serve ffmpeg's media playlists: each is rendered as ours, an
 * HLS EVENT playlist with a fixed header and one EXTINF + URI per segment,
 * and the final one is the same text with #EXT-X-ENDLIST appended.  Every
 * version is the previous one plus lines at the end (append-only), which is
 * what lets a reader that knows an older version's size read that version
 * whole out of a newer blob (a download sends the row's size, from disk or
 * S3: api/download.c), and lets the live versions and the final one share
 * one name.  That matters at the end: each playlist is stored anew before
 * the commit that records it and the segments it adds.
 *
 * The header's TARGETDURATION is fixed at the segment length: keyframes are
 * forced every SEGMENT_SECONDS, so a segment's EXTINF rounds to it (a
 * variable-rate source with gaps over half a second between frames could
 * exceed it by a frame; players tolerate that, and a header that changed
 * would break the append-only rule).
 */
#include "media/video.h"
#include "media/video_tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PLAYLIST_MAX (1 << 20)   /* 30 s segments cap a 10 h video at ~1,200 lines */

/* ---------- reading ffmpeg's playlists ---------- */

/* The whole file at path, NUL-terminated (the caller frees); NULL if it is
 * missing, unreadable or over PLAYLIST_MAX. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *text = malloc(PLAYLIST_MAX + 1);
    size_t n = text ? fread(text, 1, PLAYLIST_MAX + 1, f) : 0;
    bool ok = text && !ferror(f) && n <= PLAYLIST_MAX;
    fclose(f);
    if (!ok) {
        free(text);
        return NULL;
    }
    text[n] = '\0';
    return text;
}

/* Renders ffmpeg's media_<rep>.m3u8 in dir as our playlist into out (see
 * the top): every segment it lists, in order, with its EXTINF; `final`
 * appends #EXT-X-ENDLIST.  Returns the number of segments, -1 on error. */
static int render_media(const char *dir, int rep, bool final, const char *out)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/media_%d.m3u8", dir, rep);
    char *text = slurp(path);
    if (!text) return -1;
    FILE *o = fopen(out, "w");
    if (!o) {
        free(text);
        return -1;
    }
    fprintf(o, "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:%d\n"
               "#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-MEDIA-SEQUENCE:1\n"
               "#EXT-X-MAP:URI=\"init_%d.m4s\"\n",
            VIDEO_SEGMENT_SECONDS, rep);
    int count = 0;
    const char *extinf = NULL;   /* waiting for its segment's URI */
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        int r, k;
        char tail;
        if (strncmp(line, "#EXTINF:", 8) == 0) {
            extinf = line + 8;
        } else if (extinf && sscanf(line, "seg_%d_%d.m4s%c", &r, &k, &tail) == 2 && r == rep &&
                   k == count + 1) {
            fprintf(o, "#EXTINF:%s\n%s\n", extinf, line);
            count++;
            extinf = NULL;
        }
    }
    if (final) fputs("#EXT-X-ENDLIST\n", o);
    free(text);
    return fclose(o) == 0 ? count : -1;
}

/* ---------- the master ---------- */

/* Variant k's BANDWIDTH in the HLS master: its rung's peak (the VBV cap,
 * -maxrate) plus the audio it plays with.  The dash muxer writes the master
 * once, early, from bitrates it does not know yet (seen: 1080p given the
 * audio's 129744), and players pick the starting rung by it. */
static long variant_bandwidth(const video_plan *plan, bool audio, int k)
{
    return (long)plan->rungs[k].maxrate_kbps * 1000 + (audio ? VIDEO_AUDIO_KBPS * 1000L : 0);
}

/* Writes an #EXT-X-STREAM-INF line with BANDWIDTH replaced. */
static void put_stream_inf(FILE *o, const char *line, long bandwidth)
{
    const char *b = strstr(line, "BANDWIDTH=");
    if (!b) {
        fprintf(o, "%s\n", line);
        return;
    }
    fprintf(o, "%.*sBANDWIDTH=%ld%s\n", (int)(b - line), line, bandwidth,
            b + 10 + strspn(b + 10, "0123456789"));
}

/* ffmpeg's master hls.m3u8 rewritten into out: its media playlists
 * media_N.m3u8 are ours, hls_N.m3u8 (rendition part hls_N), and each
 * variant has its true BANDWIDTH.  The same text live and final. */
static bool write_master(const char *dir, const video_plan *plan, bool audio, const char *out)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/hls.m3u8", dir);
    char *text = slurp(path);
    FILE *o = text ? fopen(out, "w") : NULL;
    if (!o) {
        free(text);
        return false;
    }
    const char *inf = NULL;   /* an #EXT-X-STREAM-INF line waiting for its URI */
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        int k;
        char *uri = strstr(line, "URI=\"media_");
        if (strncmp(line, "#EXT-X-STREAM-INF:", 18) == 0) {
            inf = line;
        } else if (sscanf(line, "media_%d.m3u8", &k) == 1) {
            if (inf && k >= 0 && k < plan->nrungs)
                put_stream_inf(o, inf, variant_bandwidth(plan, audio, k));
            else if (inf) fprintf(o, "%s\n", inf);   /* not a rung: as ffmpeg wrote it */
            inf = NULL;
            fprintf(o, "hls_%d.m3u8\n", k);
        } else if (uri && sscanf(uri, "URI=\"media_%d.m3u8\"", &k) == 1) {
            fprintf(o, "%.*sURI=\"hls_%d.m3u8\"%s\n", (int)(uri - line), line, k,
                    strchr(uri + 5, '"') + 1);
        } else {
            fprintf(o, "%s\n", line);
        }
    }
    free(text);
    return fclose(o) == 0;
}

bool video_hls_finish(const char *dir, const video_plan *plan, bool audio)
{
    int nstreams = plan->nrungs + (audio ? 1 : 0);
    char path[1200];
    for (int i = 0; i < nstreams; i++) {
        snprintf(path, sizeof path, "%s/hls_%d.m3u8", dir, i);
        if (render_media(dir, i, true, path) < 1) return false;
    }
    char tmp[1200], master[1200];
    snprintf(tmp, sizeof tmp, "%s/master.tmp", dir);
    snprintf(master, sizeof master, "%s/hls.m3u8", dir);
    return write_master(dir, plan, audio, tmp) && rename(tmp, master) == 0;
}

/* ---------- publishing while ffmpeg writes ---------- */

bool video_live_poll(video_live *l, const char *dir, const video_plan *plan, bool audio,
                     const video_live_ops *ops)
{
    int nstreams = plan->nrungs + (audio ? 1 : 0);
    int listed[VIDEO_RUNGS_MAX + 1];
    char path[1200], name[40];
    bool fresh = false;
    /* 1. what ffmpeg has finished, rendered; each new segment handed out */
    for (int i = 0; i < nstreams; i++) {
        snprintf(path, sizeof path, "%s/live_%d.m3u8", dir, i);
        listed[i] = render_media(dir, i, false, path);
        if (listed[i] < 0) listed[i] = l->published[i];   /* not written yet */
        if (listed[i] > l->published[i] && l->published[i] == 0) {
            snprintf(name, sizeof name, "init_%d", i);
            snprintf(path, sizeof path, "%s/init_%d.m4s", dir, i);
            if (!ops->put(ops->arg, name, path)) return false;
        }
        for (int k = l->published[i] + 1; k <= listed[i]; k++) {
            snprintf(name, sizeof name, "seg_%d_%05d", i, k);
            snprintf(path, sizeof path, "%s/seg_%d_%05d.m4s", dir, i, k);
            if (!ops->put(ops->arg, name, path)) return false;
            fresh = true;
        }
    }
    if (!fresh) return true;
    /* 2. the segments visible before any playlist names them */
    if (!ops->flush(ops->arg)) return false;
    /* 3. the playlists; the master once every representation can play */
    bool all = true;
    for (int i = 0; i < nstreams; i++) {
        l->published[i] = listed[i];
        all = all && listed[i] > 0;
        snprintf(name, sizeof name, "hls_%d", i);
        snprintf(path, sizeof path, "%s/live_%d.m3u8", dir, i);
        if (listed[i] > 0 && !ops->put(ops->arg, name, path)) return false;
    }
    if (all && !l->playable) {
        snprintf(path, sizeof path, "%s/live_master.m3u8", dir);
        if (!write_master(dir, plan, audio, path) || !ops->put(ops->arg, "hls", path))
            return false;
    }
    if (!ops->flush(ops->arg)) return false;
    if (all) l->playable = true;
    return true;
}

bool video_live_published(const video_live *l, const char *name)
{
    int rep, k;
    char tail;
    if (sscanf(name, "init_%d%c", &rep, &tail) == 1)
        return rep >= 0 && rep <= VIDEO_RUNGS_MAX && l->published[rep] > 0;
    if (sscanf(name, "seg_%d_%d%c", &rep, &k, &tail) == 2)
        return rep >= 0 && rep <= VIDEO_RUNGS_MAX && k >= 1 && k <= l->published[rep];
    return false;
}
