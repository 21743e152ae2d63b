/* Publishing a ladder while ffmpeg writes it (media/video_hls.c): the
 * scratch directory is played by hand, as ffmpeg's dash muxer leaves it
 * segment after segment, and the order of what is handed out, the
 * append-only playlists and the retries after a failed put are checked. */
#include "test.h"
#include "media/video.h"
#include "media/video_tool.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct seen {
    char log[2048];     /* "put:NAME " and "flush " in order */
    const char *fail;   /* a put of this name fails */
    char dir[64];
    char hls_0[4096];   /* the last hls_0 handed out */
} seen;

static bool put(void *arg, const char *name, const char *path)
{
    seen *s = arg;
    if (s->fail && strcmp(name, s->fail) == 0) return false;
    size_t n = strlen(s->log);
    snprintf(s->log + n, sizeof s->log - n, "put:%s ", name);
    if (strcmp(name, "hls_0") == 0) {
        FILE *f = fopen(path, "r");
        size_t got = f ? fread(s->hls_0, 1, sizeof s->hls_0 - 1, f) : 0;
        s->hls_0[got] = '\0';
        if (f) fclose(f);
    }
    return true;
}

static bool flush(void *arg)
{
    seen *s = arg;
    strncat(s->log, "flush ", sizeof s->log - strlen(s->log) - 1);
    return true;
}

static void write_file(const seen *s, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", s->dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* ffmpeg's media playlist of rep listing segments 1..n */
static void media(const seen *s, int rep, int n)
{
    char text[2048] = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:6\n"
                      "#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-MAP:URI=\"init_x.m4s\"\n";
    for (int k = 1; k <= n; k++) {
        size_t len = strlen(text);
        snprintf(text + len, sizeof text - len,
                 "#EXTINF:6.000000,\n#EXT-X-PROGRAM-DATE-TIME:2026-12-06T07:00:0%dZ\n"
                 "seg_%d_%05d.m4s\n",
                 k, rep, k);
    }
    char name[32];
    snprintf(name, sizeof name, "media_%d.m3u8", rep);
    write_file(s, name, text);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

TEST(video_live_segments_before_playlists_master_once_every_rep_plays)
{
    seen s = {.log = ""};
    snprintf(s.dir, sizeof s.dir, "/tmp/assetd-unit-live-XXXXXX");
    CHECK(mkdtemp(s.dir) != NULL);
    video_plan plan = {.nrungs = 1, .rungs = {{854, 480, 480, 1400}}};
    video_live l = {{0}, false};
    video_live_ops ops = {put, flush, &s};

    /* nothing finished yet: nothing handed out */
    CHECK(video_live_poll(&l, s.dir, &plan, true, &ops));
    CHECK_STR(s.log, "");

    /* the video's first segment, not yet the audio's: no master */
    write_file(&s, "hls.m3u8",
               "#EXTM3U\n#EXT-X-VERSION:7\n"
               "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"group_A1\",NAME=\"audio_1\",DEFAULT=YES,"
               "URI=\"media_1.m3u8\"\n"
               "#EXT-X-STREAM-INF:BANDWIDTH=131453,RESOLUTION=854x480,AUDIO=\"group_A1\"\n"
               "media_0.m3u8\n");
    media(&s, 0, 1);
    CHECK(video_live_poll(&l, s.dir, &plan, true, &ops));
    CHECK_STR(s.log, "put:init_0 put:seg_0_00001 flush put:hls_0 flush ");
    CHECK(!l.playable);
    char first[4096];
    snprintf(first, sizeof first, "%s", s.hls_0);
    CHECK(strstr(first, "#EXT-X-PLAYLIST-TYPE:EVENT\n") != NULL);
    CHECK(strstr(first, "#EXT-X-MAP:URI=\"init_0.m4s\"\n") != NULL);
    CHECK(strstr(first, "PROGRAM-DATE-TIME") == NULL);
    CHECK(strstr(first, "ENDLIST") == NULL);

    /* a failed put hands nothing more out, and the next poll again */
    media(&s, 0, 2);
    media(&s, 1, 1);
    s.log[0] = '\0';
    s.fail = "seg_1_00001";
    CHECK(!video_live_poll(&l, s.dir, &plan, true, &ops));
    CHECK_STR(s.log, "put:seg_0_00002 put:init_1 ");
    CHECK(!video_live_published(&l, "seg_0_00002"));
    s.log[0] = '\0';
    s.fail = NULL;
    CHECK(video_live_poll(&l, s.dir, &plan, true, &ops));
    CHECK_STR(s.log, "put:seg_0_00002 put:init_1 put:seg_1_00001 flush put:hls_0 put:hls_1 "
                        "put:hls flush ");
    CHECK(l.playable);
    CHECK(video_live_published(&l, "init_1"));
    CHECK(video_live_published(&l, "seg_0_00002"));
    CHECK(!video_live_published(&l, "seg_0_00003"));
    CHECK(!video_live_published(&l, "hls_0"));
    /* each version extends the one before */
    CHECK(strncmp(s.hls_0, first, strlen(first)) == 0 && strlen(s.hls_0) > strlen(first));

    /* a gap in the numbering: the list stops before it; the master goes once */
    write_file(&s, "media_0.m3u8",
               "#EXTINF:6.000000,\nseg_0_00001.m4s\n#EXTINF:6.000000,\nseg_0_00002.m4s\n"
               "#EXTINF:6.000000,\nseg_0_00003.m4s\n#EXTINF:6.000000,\nseg_0_00009.m4s\n"
               "#EXTINF:6.000000,\nseg_1_00004.m4s\n");
    s.log[0] = '\0';
    CHECK(video_live_poll(&l, s.dir, &plan, true, &ops));
    CHECK_STR(s.log, "put:seg_0_00003 flush put:hls_0 put:hls_1 flush ");

    /* the final playlists: the last live one plus #EXT-X-ENDLIST; the
     * master points at ours, with the rung's true bandwidth */
    media(&s, 0, 3);
    char live[4096];
    snprintf(live, sizeof live, "%s", s.hls_0);
    CHECK(video_hls_finish(s.dir, &plan, true));
    char path[256], final[4096];
    snprintf(path, sizeof path, "%s/hls_0.m3u8", s.dir);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(final, 1, sizeof final - 1, f) : 0;
    final[n] = '\0';
    if (f) fclose(f);
    CHECK(strlen(final) == strlen(live) + strlen("#EXT-X-ENDLIST\n"));
    CHECK(strncmp(final, live, strlen(live)) == 0);
    snprintf(path, sizeof path, "%s/hls.m3u8", s.dir);
    f = fopen(path, "r");
    n = f ? fread(final, 1, sizeof final - 1, f) : 0;
    final[n] = '\0';
    if (f) fclose(f);
    CHECK(strstr(final, "BANDWIDTH=1528000,") != NULL);
    CHECK(strstr(final, "\nhls_0.m3u8\n") != NULL);
    CHECK(strstr(final, "URI=\"hls_1.m3u8\"") != NULL);
    CHECK(strstr(final, "media_") == NULL);
    nftw(s.dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}
