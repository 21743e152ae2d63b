/* video_tool.h — running ffmpeg or ffprobe for media/video.c: a child
 * process in its own group, stdin from the source, stdout captured (a
 * probe's JSON, bounded), -progress lines turned into the caller's
 * progress callback, stderr into a scratch file whose tail explains a
 * failure, the group killed on the time limit or a cancellation.
 * Internal to media/video*.c. */
#ifndef ASSETD_VIDEO_TOOL_H
#define ASSETD_VIDEO_TOOL_H

#include "media/video.h"

#include <stddef.h>

#define PROBE_OUTPUT_MAX (1 << 20)   /* ffprobe's JSON for a sane file is a few KiB */

/* What a run collects; zero it first.  The caller frees buf. */
typedef struct tool_out {
    char *buf;           /* stdout, when captured (probe) */
    size_t len, cap;
    double duration;     /* > 0: parse -progress lines against it */
    char line[256];      /* a partial progress line */
    size_t line_len;
} tool_out;

/* Runs argv with stdin = in_fd, stdout into o, stderr into a scratch file
 * in work_dir; kills its process group on timeout or cancellation.
 * VIDEO_OK when it exited 0; VIDEO_CORRUPT (err: its last message) when it
 * exited otherwise; VIDEO_MISSING when the tool is not installed. */
video_status run_tool(char *const argv[], int in_fd, const char *work_dir, const video_ctl *ctl,
                      tool_out *o, char *err, size_t errcap);

/* The final hls_N.m3u8 (rendered from ffmpeg's media_N.m3u8) and hls.m3u8
 * (ffmpeg's, rewritten) in dir, after a ladder's transcode (video_hls.c). */
bool video_hls_finish(const char *dir, const video_plan *plan, bool audio);

#endif
