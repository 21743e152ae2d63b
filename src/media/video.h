/* video.h — video probing and transcoding with the ffmpeg command-line
 * tools (Debian's `ffmpeg` package), run by worker processes.
 *
 * The tools are separate programs: each run is fork+exec with an argv
 * array (never a shell), in its own process group, with the parent's death
 * signal set, the source on stdin (a regular file: seekable, read through
 * /dev/stdin, so S3's unlinked private copy works too), its output in a
 * private scratch directory, a wall-clock limit, and the whole group killed
 * on timeout or when the caller says the job was abandoned.  Inputs are
 * untrusted: only the file protocol is allowed, and transcoding names the
 * demuxer the probe found, which must be one of a short list of video
 * containers (never a playlist or concat demuxer that could read other
 * files).
 *
 * Sizes are the displayed ones: rotation (display matrix or the old rotate
 * tag) is applied, so a portrait phone clip stored as 1920x1080 + 90 degrees
 * is 1080x1920 here, and ffmpeg's autorotate gives the encoders upright
 * frames.
 *
 * This module never touches the database or the store (queue/video.c does).
 */
#ifndef ASSETD_VIDEO_H
#define ASSETD_VIDEO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    VIDEO_OK = 0,
    VIDEO_NOT_A_VIDEO,     /* no video stream, or not a container we accept */
    VIDEO_CORRUPT,         /* the probe or the decoder failed on the bytes */
    VIDEO_TOO_LONG,        /* over max_duration */
    VIDEO_TOO_LARGE,       /* over max_pixels */
    VIDEO_TIMEOUT,
    VIDEO_CANCELLED,       /* ctl->cancelled() said so */
    VIDEO_MISSING,         /* ffmpeg/ffprobe are not installed */
    VIDEO_IO_ERROR,        /* scratch files, fork, pipes */
} video_status;

#define VIDEO_INSTALL_HINT "install ffmpeg (apt-get install ffmpeg)"

typedef struct video_info {
    double duration;       /* seconds */
    int width, height;     /* displayed: rotation applied */
    int rotation;          /* degrees clockwise, 0/90/180/270 */
    double fps;
    bool has_audio;
    char format[16];       /* the demuxer ("mov", "matroska", ...) */
    char video_codec[24];
    char audio_codec[24];  /* "" without audio */
} video_info;

/* How a tool run is watched.  Every callback is optional. */
typedef struct video_ctl {
    double timeout_s;                     /* wall clock for one tool run */
    bool (*cancelled)(void *arg);         /* polled a few times a second */
    void (*progress)(void *arg, double);  /* 0..1 of the transcode */
    void (*tick)(void *arg);              /* a few times a second while it runs */
    void *arg;
    /* The running tool's process group while one runs, else 0, so a
     * caller about to _exit (the worker's time limit) can kill it. */
    _Atomic int *child_pgid;
} video_ctl;

/* Probes the video readable at fd (not closed): streams, duration,
 * displayed size.  Refuses (before any decoding) files over max_duration
 * seconds or max_pixels per frame.  work_dir holds the tool's scratch. */
video_status video_probe(int fd, const char *work_dir, const video_ctl *ctl,
                         double max_duration, uint64_t max_pixels, video_info *out, char *err,
                         size_t errcap);

/* The outputs for a source, by the original's rules on the displayed size
 * (short side is the "p", so portrait keeps its orientation; never
 * upscaled): the fallback MP4 at 720p (source >= 1280x720), 480p
 * (>= 854x480) or 360p; the adaptive ladder 480p + 720p (+ 1080p when the
 * source has it) only for sources of 720p and up.  A fallback the size of
 * a rung is that rung's encode, copied (fallback_rung): with a ladder, the
 * 720p fallback has the 720 rung's settings and its keyframes every 6 s. */
#define VIDEO_RUNGS_MAX 3
#define VIDEO_SEGMENT_SECONDS 6   /* the ladder's segments, and its keyframe interval */
#define VIDEO_AUDIO_KBPS 128
typedef struct video_size {
    int width, height, p;
    int maxrate_kbps;
} video_size;
/* The scrubbing timeline: one frame every `interval` seconds (1 s under
 * 15 s of video, 3 s under 60 s, 5 s under 5 min, 10 s under 10 min, 15 s
 * under 30 min, else 30 s), each fitted whole into a TILE_W x TILE_H tile
 * (letterboxed: a portrait frame keeps its sides, the rest is black), up
 * to TILE_COLUMNS a row, in one sprite sheet.  count 0: none (a clip under
 * one second). */
#define VIDEO_TILE_W 240
#define VIDEO_TILE_H 135
#define VIDEO_TILE_COLUMNS 10
typedef struct video_timeline {
    int interval;     /* seconds */
    int count;        /* frames: one per started interval */
    int columns, rows;
} video_timeline;
typedef struct video_plan {
    video_size fallback;
    int fallback_rung;                    /* the rung it copies; -1: its own encode */
    video_size poster;                    /* the source's size, at most 1080p */
    int nrungs;                           /* 0: no ladder */
    video_size rungs[VIDEO_RUNGS_MAX];    /* ascending */
    video_timeline timeline;
} video_plan;
void video_plan_make(const video_info *in, video_plan *out);

/* One ffmpeg process, one decode: every output of the plan into out_dir:
 *   fallback                H.264 + AAC MP4, +faststart (with a ladder: the
 *                           fallback rung's segments and the audio's,
 *                           remuxed by a second ffmpeg, stream copy)
 *   dash.mpd                DASH manifest (when the plan has a ladder)
 *   hls.m3u8, hls_N.m3u8    HLS master and media playlists (EVENT
 *                           playlists ended by #EXT-X-ENDLIST) over the same
 *   init_N.m4s,             fMP4 (CMAF) init and 6 s media segments; N is
 *   seg_N_NNNNN.m4s         the rung (0 = smallest), audio is N = nrungs
 *   tilesheet.jpg           the timeline's sprite sheet (plan->timeline),
 *   timeline.vtt            and its WebVTT thumbnails track: one cue per
 *                           tile, "tilesheet.jpg#xywh=x,y,w,h"
 *   poster.jpg              a frame chosen by ffmpeg's thumbnail filter (the
 *                           most typical of 50 frames from 10% of the
 *                           duration: not the first, rarely black) at the
 *                           source's displayed size up to 1080p
 *                           (plan->poster),
 *   cover.jpg               and its largest 16:9 centre crop (for the cover
 *                           sizes)
 * A file's name up to the dot is its rendition name ([a-z0-9_]); the
 * manifests refer to each other and to segments relatively, with the
 * extension (players and ffmpeg's HLS reader want one; the rendition route
 * ignores it).  preset is x264's. */
video_status video_transcode(int fd, const video_info *in, const video_plan *plan,
                             const char *preset, const char *out_dir, const video_ctl *ctl,
                             char *err, size_t errcap);

/* ---------- publishing while transcoding (video_hls.c) ----------
 * With a ladder, a player can start long before the transcode ends: ffmpeg
 * finishes one 6 s segment of every representation at a time.  Called
 * from ctl->tick while video_transcode runs, video_live_poll hands the
 * caller what is new since the last call, in an order that keeps whatever
 * a player can read true:
 *   1. put(init_N / seg_N_k): each finished piece (the caller stores it,
 *      under that rendition name, from the scratch file at path);
 *   2. flush(): the caller makes what it was put visible (commits rows);
 *   3. put(hls_N): representation N's playlist so far, an HLS EVENT
 *      playlist (each version extends the previous one: see video_hls.c),
 *      and, once every representation has a segment, put(hls): the master,
 *      the same text as the final one;
 *   4. flush().
 * l->playable turns true after the flush that made the master visible.
 * false: a put or flush failed; the next call hands out again everything
 * not flushed.  The final outputs (video_transcode) extend every live
 * version; the caller need not store again a piece video_live_published()
 * says was flushed (same name, same bytes). */
typedef struct video_live {
    int published[VIDEO_RUNGS_MAX + 1];   /* segments flushed, per representation */
    bool playable;
} video_live;
typedef struct video_live_ops {
    bool (*put)(void *arg, const char *name, const char *path);
    bool (*flush)(void *arg);
    void *arg;
} video_live_ops;
bool video_live_poll(video_live *l, const char *dir, const video_plan *plan, bool audio,
                     const video_live_ops *ops);
bool video_live_published(const video_live *l, const char *name);

/* The x264 presets --video-preset accepts. */
bool video_preset_valid(const char *preset);

#endif
