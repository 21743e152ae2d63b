#!/usr/bin/env bash
# Video: assetd's whole pipeline (upload -> asset.ready) on one clip, against
# the same outputs made by a naive pipeline of one ffmpeg per output and by
# one hand-written ffmpeg command, in the same run (issue #12).
#
#   bench/video.sh [extra 'assetd serve' options]
#
# Targets, on the corpus clip (30 s, 1920x1080, 30 fps, H.264 + AAC):
# naive time / assetd time >= 1.5, one-command time / assetd time >= 0.95.
# The outputs, all three sides alike (the plan of src/media/video.c for a
# 16:9 source of 1080p or more): a fallback MP4 1280x720 (maxrate 3000k);
# a ladder 854x480 (1400k), 1280x720 (3000k), 1920x1080 (6000k) + AAC as
# fMP4 segments of 6 s (keyframes forced every 6 s) with a DASH manifest
# and an HLS master; every video x264 CRF 23, VIDEO_PRESET, high profile,
# yuv420p, bufsize 2 x maxrate; audio AAC 128k stereo; the timeline sprite
# sheet (one frame every W s, W by the issue's rule, 240x135 tiles, 10 a
# row, JPEG -q:v 4) and its WebVTT track; a poster (ffmpeg's `thumbnail`
# filter over 50 frames from 10 % of the duration, -q:v 2) with its 16:9
# centre crop; the five cover sizes 1280x720, 640x360, 480x270, 320x180,
# 160x90 from that crop.
#
# Each round runs, in turn:
#   a) assetd: `assetd serve --workers 1 --video-preset VIDEO_PRESET` on a
#      fresh data dir (one worker: one video is one job in one worker, whose
#      ffmpeg uses every core).  Once the worker has logged "worker started",
#      the clock starts; the clip is POSTed to /v1/assets as a raw body
#      (curl -T), then every 100 ms (bash /dev/tcp and read -t: the poll
#      forks nothing) the script GETs /v1/assets/{id} until `status` is
#      ready (failed, or VIDEO_TIMEOUT, breaks the run); the clock stops
#      there.  The same tick asks GET /v1/assets/{id}/manifest.json until
#      it answers 200: "first playable" (with a ladder, the master playlist
#      over the first segments, published while ffmpeg goes on).  It
#      also reads the worker's children from /proc (ffprobe, the transcode's
#      ffmpeg, the ffmpeg that copies the 720 rung into the fallback MP4:
#      when each was first and last seen, and its CPU), which splits the
#      time into phases.  Afterwards: the
#      renditions (fallback 1280x720, dash, hls, tilesheet, timeline, poster,
#      cover_large..cover_nano), the DASH manifest's three video heights
#      (480, 720, 1080) and the HLS master's three variants are checked.
#      So the time includes the upload (SHA-256, libmagic, fsync), the queue
#      (the worker's idle poll), ffprobe, the one-decode transcode, copying
#      the fallback's remux (stream copy), every output into the store
#      (fsynced), the covers (libvips, in the worker) and the commit.
#   b) naive: one job per output, one after another, each its own process
#      reading the clip from the start, as per-output cloud transcoder jobs
#      do: ffprobe (the plan needs the size); the fallback MP4 (video +
#      audio); each ladder rung as its own DASH + HLS presentation
#      (video only, in its own directory); the audio as its own DASH + HLS
#      presentation; the sprite sheet; the poster + its crop (ffmpeg -ss
#      to 10 %, thumbnail=50); one vipsthumbnail per cover size
#      (Q=85, strip, optimize_coding: assetd's cover settings); the WebVTT
#      track (awk).  So 5 full decodes of the video where assetd has 1.
#      Audio as one job and covers from the poster's crop make this
#      pipeline cheaper than one that muxes audio into every rung or decodes
#      the video again per cover: the ratio is the conservative one.
#   c) one hand-written ffmpeg command (written out below, not taken from
#      assetd): one decode, a split filter graph feeding the fallback, the
#      three rungs + audio (one DASH/HLS output), the sprite sheet, AND the
#      poster (trim to 10 %, thumbnail=50) with its crop and the five cover
#      sizes (scale, -q:v 3); then the WebVTT track (awk).  It encodes the
#      720p picture twice (fallback and rung), as assetd did before it
#      made its fallback by copying the 720 rung; assetd makes the poster
#      in its one graph too, and the covers with libvips.
# b and c read the clip from the page cache, write into the temp dir and
# fsync nothing; they are timed from the first fork to the last exit.
# Every ffmpeg (and x264) runs with its default threads, on every core.
#
# Before each timed run: up to 10 s waiting for half a second in which the
# machine used < 0.25 cores (wait_quiet), and each run prints how busy the
# whole machine was ("machine X of N, others Y"): the machine is shared.
# CPU per side (user + sys, from /proc): a) serve + its worker + the
# worker's waited-for children (ffprobe, ffmpeg); b) and c) bash `time`.
#
# Prints one line:
#   video: CLIP ..., medians of R rounds: assetd A s (range), naive B s,
#   one command C s; naive/assetd X (target >= 1.5: met|MISSED),
#   one command/assetd Y (target >= 0.95: met|MISSED); first playable ...;
#   CPU per side and the same ratios in CPU seconds (on a machine other work
#   shares, the wall-clock ratios move with it; the CPU ones much less)
# Exit 0 whether or not a target is met; 2 if something is broken.
#
# Needs ffmpeg + ffprobe (apt-get install -y ffmpeg), vipsthumbnail
# (libvips-tools) and curl.  On a shared machine, `nice -n -5` helps.
#
# Environment knobs (defaults in brackets):
#   VIDEO_BENCH_CLIP [../shared/corpus/video/clip_1080p30_30s.mp4, relative
#     to the repo]: a 16:9 clip of 1920x1080 or more, with audio (c is
#     written for that shape)
#   VIDEO_PRESET [veryfast]: the x264 preset of all three sides (ultrafast
#     for a quick check)
#   BENCH_ROUNDS [2]: rounds, each runs a, b and c
#   VIDEO_TIMEOUT [900]: seconds per side per round
set -euo pipefail
source "$(dirname "$0")/lib.sh"

CLIP=${VIDEO_BENCH_CLIP:-$BENCH_ROOT/../shared/corpus/video/clip_1080p30_30s.mp4}
VIDEO_PRESET=${VIDEO_PRESET:-veryfast}
BENCH_ROUNDS=${BENCH_ROUNDS:-2}
VIDEO_TIMEOUT=${VIDEO_TIMEOUT:-900}
POLL_S=0.1
TARGET_NAIVE=1.5
TARGET_ONE=0.95

[[ $BENCH_ROUNDS =~ ^[1-9][0-9]*$ ]] && ((BENCH_ROUNDS <= 20)) || die "BENCH_ROUNDS must be 1..20"
[[ $VIDEO_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "VIDEO_TIMEOUT must be a positive integer (seconds)"
case $VIDEO_PRESET in
  ultrafast | superfast | veryfast | faster | fast | medium | slow | slower | veryslow) ;;
  *) die "VIDEO_PRESET must be an x264 preset (ultrafast ... veryslow)" ;;
esac
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 ||
  die "'ffmpeg' is not installed (apt-get install -y ffmpeg)"
command -v vipsthumbnail >/dev/null 2>&1 || die "'vipsthumbnail' is not installed (apt-get install -y libvips-tools)"
need curl awk sed grep pgrep timeout
[[ -f $CLIP ]] || die "no clip $CLIP (set VIDEO_BENCH_CLIP)"
CLIP=$(cd "$(dirname "$CLIP")" && pwd)/$(basename "$CLIP")

# ---- the clip, and the plan's numbers that depend on it -------------------
probe_val() { ffprobe -v error "$@" -of default=noprint_wrappers=1:nokey=1 "$CLIP" 2>/dev/null | head -n1; }
SRC_W=$(probe_val -select_streams v:0 -show_entries stream=width)
SRC_H=$(probe_val -select_streams v:0 -show_entries stream=height)
DUR=$(probe_val -show_entries format=duration)
HAS_AUDIO=$(probe_val -select_streams a:0 -show_entries stream=index)
[[ $SRC_W =~ ^[0-9]+$ && $SRC_H =~ ^[0-9]+$ && $DUR =~ ^[0-9.]+$ ]] || die "ffprobe cannot read $CLIP"
((SRC_W >= 1920 && SRC_H >= 1080 && SRC_W * 9 == SRC_H * 16)) && [[ -n $HAS_AUDIO ]] ||
  die "$CLIP is ${SRC_W}x$SRC_H$([[ -n $HAS_AUDIO ]] || echo ', no audio'): the hand-written command (c) is for a 16:9 clip of 1920x1080 or more with audio"
# The timeline: a frame every W s (W by the issue's rule), N tiles, 10 a row.
read -r TL_W TL_N TL_COLS TL_ROWS SEEK < <(awk -v d="$DUR" 'BEGIN {
  w = d < 15 ? 1 : d < 60 ? 3 : d < 300 ? 5 : d < 600 ? 10 : d < 1800 ? 15 : 30
  x = d / w - 0.001; n = int(x); if (n < x) n++; if (n < 1) n = 1
  printf "%d %d %d %d %.3f\n", w, n, n < 10 ? n : 10, int((n + 9) / 10), d * 0.1 }')
awk -v d="$DUR" 'BEGIN { exit !(d >= 1) }' || die "the clip lasts under a second: no timeline"
NSEG=$(awk -v d="$DUR" 'BEGIN { n = int(d / 6); if (n * 6 < d - 0.05) n++; print n }')

bench_init video
note "clip: $(basename "$CLIP"), ${SRC_W}x$SRC_H, $(fmt %.1f "$DUR") s, $(du -k "$CLIP" | cut -f1) KiB; preset $VIDEO_PRESET;" \
     "timeline $TL_N tiles every $TL_W s; $BENCH_ROUNDS rounds; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
note "$(ffmpeg -hide_banner -version | head -n1); $(vipsthumbnail --vips-version 2>/dev/null | head -n1)"

# Page cache and shared libraries warm for every side: read the clip, one
# untimed second of a transcode.
cat "$CLIP" >/dev/null
ffmpeg -nostdin -hide_banner -loglevel error -t 1 -i "$CLIP" -vf scale=854:480 -c:v libx264 \
  -preset "$VIDEO_PRESET" -c:a aac -f mp4 -y "$BENCH_TMP/warmup.mp4" || die "ffmpeg fails on $CLIP"
rm -f "$BENCH_TMP/warmup.mp4"

# The shared settings, written out (src/media/video.c's, for b and c).
FF=(ffmpeg -nostdin -hide_banner -nostats -loglevel error -y)
X264=(-c:v libx264 -preset "$VIDEO_PRESET" -crf 23 -pix_fmt yuv420p -profile:v high)
AAC=(-c:a aac -b:a 128k -ac 2)
# shellcheck disable=SC2016  # $RepresentationID$ is the dash muxer's
DASH=(-f dash -seg_duration 6 -use_template 1 -use_timeline 0 -hls_playlist 1
      -hls_master_name hls.m3u8 -init_seg_name 'init_$RepresentationID$.m4s'
      -media_seg_name 'seg_$RepresentationID$_$Number%05d$.m4s')
KEYS=(-force_key_frames:v 'expr:gte(t,n_forced*6)')
TILES="fps=1/$TL_W,format=yuvj444p,scale=240:135:force_original_aspect_ratio=decrease,pad=240:135:(ow-iw)/2:(oh-ih)/2,tile=${TL_COLS}x$TL_ROWS:nb_frames=$TL_N"
CROP="crop='min(iw,trunc(ih*16/9))':'min(ih,trunc(iw*9/16))'"
COVERS=(large:1280x720 medium:640x360 small:480x270 tiny:320x180 nano:160x90)

# write_vtt DIR: the WebVTT thumbnails track over DIR/tilesheet.jpg.
write_vtt() {
  awk -v n="$TL_N" -v w="$TL_W" -v d="$DUR" 'function t(s,  ms) { ms = int(s * 1000 + 0.5)
      return sprintf("%02d:%02d:%02d.%03d", int(ms / 3600000), int(ms / 60000) % 60, int(ms / 1000) % 60, ms % 1000) }
    BEGIN { print "WEBVTT"; for (i = 0; i < n; i++) { a = i * w; b = a + w; if (b > d) b = d
      printf "\n%s --> %s\ntilesheet.jpg#xywh=%d,%d,240,135\n", t(a), t(b), (i % 10) * 240, int(i / 10) * 135 } }' \
    >"$1/timeline.vtt"
}

# check_outputs SIDE DIR MPD...: the files b or c made are there and whole.
check_outputs() {
  local side=$1 dir=$2 f h; shift 2
  for f in fallback.mp4 tilesheet.jpg timeline.vtt poster.jpg cover_large.jpg cover_medium.jpg \
           cover_small.jpg cover_tiny.jpg cover_nano.jpg; do
    [[ -s $dir/$f ]] || die "$side made no $f"
  done
  [[ $(ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=p=0 "$dir/fallback.mp4") == 1280,720 ]] ||
    die "$side: the fallback is not 1280x720"
  for h in 480 720 1080; do
    grep -q "height=\"$h\"" "$@" || die "$side: no $h rung in $*"
  done
  grep -q 'contentType="audio"' "$@" || die "$side: no audio in $*"
  (($(find "$dir" -name 'seg_*.m4s' -size +0 | wc -l) >= 4 * NSEG)) ||
    die "$side: $(find "$dir" -name 'seg_*.m4s' -size +0 | wc -l) segments, want $((4 * NSEG)) (3 rungs + audio)"
  (($(find "$dir" -name '*.m3u8' | wc -l) >= 5)) || die "$side: HLS playlists missing"
}

stats() {   # numbers on stdin -> "MEDIAN MIN MAX"
  sort -g | awk '{ v[NR] = $1 } END {
    m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.3f %.3f %.3f\n", m, v[1], v[NR] }'
}
# all_ticks PID...: CPU ticks of the processes AND their waited-for
# children (utime stime cutime cstime).
all_ticks() {
  local p t=0 f
  for p in "$@"; do
    [[ -r /proc/$p/stat ]] || continue
    read -r -a f < <(sed 's/^.*) //' "/proc/$p/stat")
    t=$((t + f[11] + f[12] + f[13] + f[14]))
  done
  echo "$t"
}
cpu_s() { awk -v t="$1" -v hz="$TICK" 'BEGIN { printf "%.1f", t / hz }'; }
# machine_note M0 M1 WALL CPU_TICKS: "machine X of N, others Y".
machine_note() {
  awk -v a="$1" -v b="$2" -v w="$3" -v c="$4" -v hz="$TICK" -v n="$(nproc)" 'BEGIN {
    m = (b - a) / hz / w; o = m - c / hz / w; if (o < 0) o = 0
    printf "machine %.2f of %d cores, others %.2f", m, n, o }'
}

# ---- a) assetd ------------------------------------------------------------
assetd_broken() {
  note "server log tail:"; grep -v '"level":"debug"' "$RUN_DIR/assetd.log" 2>/dev/null | tail -n 20 >&2 || true
  die "$1"
}

# watch_children WPID NOW: notes which tool the worker runs (ffprobe, the
# transcode's ffmpeg, the fallback's remux: -c copy), when each was
# first and last seen, and its CPU ticks so far.  /proc reads only.
declare -A PH_FIRST PH_LAST PH_CPU
watch_children() {
  local wpid=$1 now=$2 f kids k kind args=() st=()
  for f in /proc/"$wpid"/task/*/children; do
    kids=""
    { read -r kids <"$f"; } 2>/dev/null || true
    for k in $kids; do
      { mapfile -d '' -t args <"/proc/$k/cmdline"; } 2>/dev/null || continue
      case ${args[0]:-} in
        ffprobe) kind=probe ;;
        ffmpeg) kind=transcode; [[ " ${args[*]} " == *" -c copy "* ]] && kind=remux ;;
        *) continue ;;   # forked, not yet exec'd
      esac
      [[ -n ${PH_FIRST[$kind]:-} ]] || PH_FIRST[$kind]=$now
      PH_LAST[$kind]=$now
      { read -r -a st < <(sed 's/^.*) //' "/proc/$k/stat"); } 2>/dev/null || continue
      ((${#st[@]} > 13)) && PH_CPU[$kind]=$((st[11] + st[12]))
    done
  done
  return 0
}

# run_assetd ROUND [serve args...]: sets A_S (upload -> ready, seconds),
# A_PLAY_S (upload -> first playable), A_CPU (seconds).
run_assetd() {
  local r=$1; shift
  RUN_DIR=$BENCH_TMP/a$r
  mkdir -p "$RUN_DIR"
  start_assetd_one_worker "$RUN_DIR/assetd" --video-preset "$VIDEO_PRESET" "$@"
  local wpid=$WORKER_PID
  PH_FIRST=() PH_LAST=() PH_CPU=()
  wait_quiet 20 "assetd run (round $r)"
  local m0 m1 c0 c1 t0 t1="" tplay="" tup id="" status="" polls body now
  read -r m0 _ < <(machine_ticks)
  c0=$(all_ticks "$ASSETD_PID" "$wpid")
  t0=$EPOCHREALTIME
  body=$(curl -sS --max-time "$VIDEO_TIMEOUT" -X POST -T "$CLIP" -H "Authorization: Bearer $ASSETD_TOKEN" \
              -w '\n%{http_code} %{time_total}' "$ASSETD_URL/v1/assets?filename=$(basename "$CLIP")") ||
    assetd_broken "round $r: the upload failed"
  tup=${body##*$'\n'}
  [[ ${tup%% *} == 201 ]] || assetd_broken "round $r: the upload answered ${tup%% *}: ${body%$'\n'*}"
  tup=${tup#* }
  id=$(sed -n 's/^{"id":"\([^"]*\)".*/\1/p' <<<"${body%$'\n'*}")
  [[ -n $id ]] || assetd_broken "round $r: no id in the upload's answer: $body"
  local deadline=$((${t0%.*} + VIDEO_TIMEOUT + 1))
  for ((polls = 1; ; polls++)); do
    now=$EPOCHREALTIME
    watch_children "$wpid" "$now"
    if [[ -z $tplay ]] && http_get "/v1/assets/$id/manifest.json" && [[ $HTTP_CODE == 200 ]]; then
      tplay=$EPOCHREALTIME
    fi
    if http_get "/v1/assets/$id" && [[ $HTTP_CODE == 200 ]]; then
      status=$(sed -n 's/^{"id":"[^"]*","kind":"[a-z]*","status":"\([a-z]*\)".*/\1/p' <<<"$HTTP_BODY")
      [[ $status == ready ]] && { t1=$EPOCHREALTIME; break; }
      [[ $status == failed ]] && assetd_broken "round $r: the asset failed: $HTTP_BODY"
    fi
    kill -0 "$ASSETD_PID" 2>/dev/null || assetd_broken "round $r: assetd died"
    ((${EPOCHREALTIME%.*} < deadline)) || break
    nap "$POLL_S"
  done
  read -r m1 _ < <(machine_ticks)
  c1=$(all_ticks "$ASSETD_PID" "$wpid")
  [[ -n $t1 ]] || assetd_broken "round $r: not ready after $VIDEO_TIMEOUT s (status '${status:-none}', HTTP $HTTP_CODE)"
  if [[ -z $tplay ]]; then   # ready at the same tick: the manifest answers now
    http_get "/v1/assets/$id/manifest.json"
    [[ $HTTP_CODE == 200 ]] || assetd_broken "round $r: ready, but the manifest answers $HTTP_CODE"
    tplay=$t1
  fi
  [[ $(pgrep -P "$ASSETD_PID") == "$wpid" ]] || assetd_broken "round $r: the worker restarted during the run"

  # Every output is there.
  local n
  for n in fallback dash hls tilesheet timeline poster cover_large cover_medium cover_small cover_tiny cover_nano; do
    [[ $HTTP_BODY == *"\"name\":\"$n\""* ]] || assetd_broken "round $r: ready without the rendition '$n': $HTTP_BODY"
  done
  [[ $HTTP_BODY == *'"name":"fallback","content_type":"video/mp4","width":1280,"height":720,'* ]] ||
    assetd_broken "round $r: the fallback is not 1280x720: $HTTP_BODY"
  http_get "/v1/assets/$id/renditions/dash" && [[ $HTTP_CODE == 200 ]] || assetd_broken "round $r: GET dash answered $HTTP_CODE"
  for n in 480 720 1080; do
    [[ $HTTP_BODY == *"height=\"$n\""* ]] || assetd_broken "round $r: the DASH manifest has no $n rung"
  done
  [[ $HTTP_BODY == *'contentType="audio"'* ]] || assetd_broken "round $r: the DASH manifest has no audio"
  http_get "/v1/assets/$id/renditions/hls" && [[ $HTTP_CODE == 200 ]] || assetd_broken "round $r: GET hls answered $HTTP_CODE"
  (($(grep -c '^#EXT-X-STREAM-INF' <<<"$HTTP_BODY") == 3)) || assetd_broken "round $r: the HLS master has not 3 variants"

  local wall
  wall=$(secs "$t0" "$t1")
  A_S=$wall
  A_PLAY_S=$(secs "$t0" "$tplay")
  A_CPU=$(cpu_s $((c1 - c0)))
  # Phases, from what the 100 ms poll saw of the worker's children.
  local at=() k
  for k in probe transcode remux; do
    at+=("$(secs "$t0" "${PH_FIRST[$k]:-$t0}")" "$(secs "$t0" "${PH_LAST[$k]:-$t0}")")
  done
  A_TRANSCODE_S=$(awk -v a="${at[2]}" -v b="${at[3]}" 'BEGIN { printf "%.1f", b - a }')
  A_AFTER_S=$(awk -v b="${at[3]}" -v e="$wall" 'BEGIN { printf "%.1f", e - b }')
  A_REMUX_S=$(awk -v a="${at[4]}" -v b="${at[5]}" 'BEGIN { printf "%.1f", b - a + 0.1 }')
  [[ -n ${PH_FIRST[remux]:-} ]] || A_REMUX_S=0   # under one 100 ms sample
  note "round $r: a) assetd $(fmt %.1f "$wall") s upload -> ready; first playable (manifest 200) at $(fmt %.1f "$A_PLAY_S") s" \
       "= $(awk -v p="$A_PLAY_S" -v w="$wall" 'BEGIN { printf "%.0f", 100 * p / w }') %; CPU $A_CPU s" \
       "($(machine_note "$m0" "$m1" "$wall" $((c1 - c0))); $polls polls)"
  note "round $r: a) phases (100 ms samples): upload $(fmt %.2f "$tup") s; ffprobe seen $(na "${PH_FIRST[probe]:+${at[0]}}") s;" \
       "transcode ffmpeg +${at[2]} to +${at[3]} s (CPU $(cpu_s "${PH_CPU[transcode]:-0}") s);" \
       "the fallback's remux $(na "${PH_FIRST[remux]:++${at[4]} to +${at[5]}}") s (CPU $(cpu_s "${PH_CPU[remux]:-0}") s);" \
       "then covers + commit until ready +$(fmt %.1f "$wall") s; after the transcode: $A_AFTER_S s"
  stop_assetd
  rm -rf "$RUN_DIR"
}

# ---- b) naive: one job per output ------------------------------------------
# job NAME CMD...: one job, bounded by what is left of the side's time.
# Appends "NAME WALL CPU" to JOB_TIMES (CPU: user + sys of the job's
# processes, children_cpu).
job() {
  local name=$1 t0 left rc=0 c0 c1; shift
  left=$((JOB_DEADLINE - ${EPOCHREALTIME%.*}))
  ((left > 0)) || { echo "$name: no time left" >>"$JOB_LOG"; return 1; }
  children_cpu; c0=$CHILD_CPU
  t0=$EPOCHREALTIME
  if declare -F "$1" >/dev/null; then   # a shell function (write_vtt): no fork
    "$@" >>"$JOB_LOG" 2>&1 || rc=$?
  else
    timeout "$left" "$@" >>"$JOB_LOG" 2>&1 || rc=$?
  fi
  children_cpu; c1=$CHILD_CPU
  JOB_TIMES+=("$name $(secs "$t0" "$EPOCHREALTIME") $(secs "$c0" "$c1")")
  ((rc == 0)) || { echo "$name exited $rc" >>"$JOB_LOG"; return 1; }
}
# children_cpu: sets CHILD_CPU, seconds of CPU (user + sys) of this
# shell's waited-for children so far.  `times` prints "0m1.234s 0m0.056s"
# (children: the 2nd line); it must run in this shell, not in $(...).
children_cpu() {
  local u s
  times >"$BENCH_TMP/times"
  { read -r _; read -r u s; } <"$BENCH_TMP/times"
  CHILD_CPU=$(awk -v u="$u" -v s="$s" 'function sec(x,  m) { m = x; sub(/m.*/, "", m); sub(/^[0-9]*m/, "", x); sub(/s$/, "", x); return m * 60 + x }
    BEGIN { printf "%.3f", sec(u) + sec(s) }')
}

naive_jobs() {
  local o=$1 c
  mkdir -p "$o/r480" "$o/r720" "$o/r1080" "$o/audio"
  job probe ffprobe -v error -show_streams -show_format -of json "$CLIP" &&
  job fallback "${FF[@]}" -i "$CLIP" -map 0:v:0 -map 0:a:0 -vf scale=1280:720 "${X264[@]}" \
      -maxrate 3000k -bufsize 6000k "${AAC[@]}" -movflags +faststart "$o/fallback.mp4" &&
  job r480 "${FF[@]}" -i "$CLIP" -map 0:v:0 -vf scale=854:480 "${X264[@]}" -maxrate 1400k -bufsize 2800k \
      "${KEYS[@]}" "${DASH[@]}" "$o/r480/dash.mpd" &&
  job r720 "${FF[@]}" -i "$CLIP" -map 0:v:0 -vf scale=1280:720 "${X264[@]}" -maxrate 3000k -bufsize 6000k \
      "${KEYS[@]}" "${DASH[@]}" "$o/r720/dash.mpd" &&
  job r1080 "${FF[@]}" -i "$CLIP" -map 0:v:0 -vf scale=1920:1080 "${X264[@]}" -maxrate 6000k -bufsize 12000k \
      "${KEYS[@]}" "${DASH[@]}" "$o/r1080/dash.mpd" &&
  job audio "${FF[@]}" -i "$CLIP" -map 0:a:0 "${AAC[@]}" "${DASH[@]}" "$o/audio/dash.mpd" &&
  job tilesheet "${FF[@]}" -i "$CLIP" -map 0:v:0 -vf "$TILES" -frames:v 1 -q:v 4 -update 1 "$o/tilesheet.jpg" &&
  job poster "${FF[@]}" -ss "$SEEK" -i "$CLIP" -filter_complex "[0:v]thumbnail=50,split=2[p][c];[c]${CROP}[cc]" \
      -map '[p]' -frames:v 1 -q:v 2 -update 1 "$o/poster.jpg" \
      -map '[cc]' -frames:v 1 -q:v 2 -update 1 "$o/cover.jpg" || return 1
  for c in "${COVERS[@]}"; do
    job "cover_${c%%:*}" vipsthumbnail "$o/cover.jpg" --size "${c#*:}>" --smartcrop centre \
        -o "$o/cover_${c%%:*}.jpg[Q=85,strip,optimize_coding]" || return 1
  done
  job vtt write_vtt "$o"
}

# ---- c) one hand-written ffmpeg command -------------------------------------
# One decode; split once per consumer; the 720p scale feeds both the
# fallback and the 720 rung.  The poster branch takes 50 frames from 10 %
# (trim by time, then by count) through `thumbnail`; its crop is scaled to
# the five cover sizes.  Outputs with -frames:v 1 end early; their branches'
# frames are dropped from then on.
one_command() {
  local o=$1
  mkdir -p "$o/ladder"
  job ffmpeg "${FF[@]}" -i "$CLIP" -filter_complex "
      [0:v]split=5[v480][v720][v1080][vt][vp];
      [v480]scale=854:480[r480];
      [v720]scale=1280:720,split=2[r720][fb];
      [v1080]scale=1920:1080[r1080];
      [vt]${TILES}[sheet];
      [vp]trim=start=$SEEK,trim=end_frame=50,thumbnail=50,split=2[poster][pc];
      [pc]$CROP,split=5[c1][c2][c3][c4][c5];
      [c1]scale=1280:720[cl]; [c2]scale=640:360[cm]; [c3]scale=480:270[cs];
      [c4]scale=320:180[ct]; [c5]scale=160:90[cn]" \
    -map '[fb]' -map 0:a:0 "${X264[@]}" -maxrate 3000k -bufsize 6000k "${AAC[@]}" \
      -movflags +faststart "$o/fallback.mp4" \
    -map '[r480]' -map '[r720]' -map '[r1080]' -map 0:a:0 "${X264[@]}" \
      -maxrate:v:0 1400k -bufsize:v:0 2800k -maxrate:v:1 3000k -bufsize:v:1 6000k \
      -maxrate:v:2 6000k -bufsize:v:2 12000k "${AAC[@]}" "${KEYS[@]}" "${DASH[@]}" \
      -adaptation_sets 'id=0,streams=v id=1,streams=a' "$o/ladder/dash.mpd" \
    -map '[sheet]' -frames:v 1 -q:v 4 -update 1 "$o/tilesheet.jpg" \
    -map '[poster]' -frames:v 1 -q:v 2 -update 1 "$o/poster.jpg" \
    -map '[cl]' -frames:v 1 -q:v 3 -update 1 "$o/cover_large.jpg" \
    -map '[cm]' -frames:v 1 -q:v 3 -update 1 "$o/cover_medium.jpg" \
    -map '[cs]' -frames:v 1 -q:v 3 -update 1 "$o/cover_small.jpg" \
    -map '[ct]' -frames:v 1 -q:v 3 -update 1 "$o/cover_tiny.jpg" \
    -map '[cn]' -frames:v 1 -q:v 3 -update 1 "$o/cover_nano.jpg" &&
  job vtt write_vtt "$o"
}

# run_side ROUND TAG LABEL FUNCTION: times FUNCTION OUTDIR; sets S_S (wall
# seconds) and S_CPU (CPU seconds), checks the outputs.
run_side() {
  local r=$1 tag=$2 label=$3 fn=$4 out=$BENCH_TMP/$2$1 t0 t1 m0 m1 rc=0 cpu
  rm -rf "$out"; mkdir -p "$out"
  JOB_LOG=$out.log JOB_TIMES=()
  : >"$JOB_LOG"
  local TIMEFORMAT='%U %S'
  wait_quiet 20 "$label run (round $r)"
  read -r m0 _ < <(machine_ticks)
  t0=$EPOCHREALTIME
  JOB_DEADLINE=$((${t0%.*} + VIDEO_TIMEOUT + 1))
  { time "$fn" "$out"; } 2>"$out.time" || rc=$?
  t1=$EPOCHREALTIME
  read -r m1 _ < <(machine_ticks)
  ((rc == 0)) || { tail -n 20 "$JOB_LOG" >&2; die "round $r: $label failed"; }
  local mpds=()
  mapfile -t mpds < <(find "$out" -name '*.mpd')
  check_outputs "$label" "$out" "${mpds[@]}"
  S_S=$(secs "$t0" "$t1")
  S_CPU=$(awk '{ printf "%.1f", $1 + $2 }' "$out.time")
  cpu=$(awk -v c="$S_CPU" -v hz="$TICK" 'BEGIN { printf "%.0f", c * hz }')
  note "round $r: $tag) $label $(fmt %.1f "$S_S") s; CPU $S_CPU s ($(machine_note "$m0" "$m1" "$S_S" "$cpu"))"
  ((${#JOB_TIMES[@]} > 1)) &&
    note "round $r: $tag) jobs, wall/CPU s: $(printf '%s\n' "${JOB_TIMES[@]}" | awk '{ printf "%s%s %.1f/%.1f", (NR > 1 ? ", " : ""), $1, $2, $3 }')"
  rm -rf "$out" "$out.log" "$out.time"
}

# ---- rounds ---------------------------------------------------------------
A=() B=() C=() P=() PS=() RB=() RC=() CA=() CB=() CC=() TR=() AF=() PO=()
for ((r = 1; r <= BENCH_ROUNDS; r++)); do
  run_assetd "$r" "$@"
  A+=("$A_S") P+=("$A_PLAY_S") CA+=("$A_CPU") TR+=("$A_TRANSCODE_S") AF+=("$A_AFTER_S") PO+=("$A_REMUX_S")
  PS+=("$(awk -v p="$A_PLAY_S" -v w="$A_S" 'BEGIN { printf "%.3f", 100 * p / w }')")
  run_side "$r" b "naive (one job per output)" naive_jobs
  B+=("$S_S") CB+=("$S_CPU")
  run_side "$r" c "one ffmpeg command" one_command
  C+=("$S_S") CC+=("$S_CPU")
  RB+=("$(ratio "${B[-1]}" "$A_S")")
  RC+=("$(ratio "${C[-1]}" "$A_S")")
  note "round $r: naive/assetd ${RB[-1]}, one command/assetd ${RC[-1]}"
done

med() { printf '%s\n' "$@" | stats; }
read -r ma mina maxa < <(med "${A[@]}")
read -r mb minb maxb < <(med "${B[@]}")
read -r mc minc maxc < <(med "${C[@]}")
read -r mp _ _ < <(med "${P[@]}")
read -r mps minps maxps < <(med "${PS[@]}")
read -r _ minrb maxrb < <(med "${RB[@]}")
read -r _ minrc maxrc < <(med "${RC[@]}")
read -r mca _ _ < <(med "${CA[@]}")
read -r mcb _ _ < <(med "${CB[@]}")
read -r mcc _ _ < <(med "${CC[@]}")
read -r mtr _ _ < <(med "${TR[@]}")
read -r maf _ _ < <(med "${AF[@]}")
read -r mpo _ _ < <(med "${PO[@]}")
rb=$(ratio "$mb" "$ma") rc=$(ratio "$mc" "$ma")
met_b=met met_c=met
ge "$rb" "$TARGET_NAIVE" || met_b=MISSED
ge "$rc" "$TARGET_ONE" || met_c=MISSED
r1() { fmt %.1f "$1"; }
echo "video: $(basename "$CLIP") ($(fmt %.0f "$DUR") s ${SRC_W}x$SRC_H), preset $VIDEO_PRESET, medians of $BENCH_ROUNDS rounds:" \
     "assetd upload->ready $(r1 "$ma") s ($(r1 "$mina")-$(r1 "$maxa"); transcode $(r1 "$mtr") s, after it $(r1 "$maf") s of which the fallback's remux $(r1 "$mpo") s)," \
     "naive one-ffmpeg-per-output $(r1 "$mb") s ($(r1 "$minb")-$(r1 "$maxb")), one ffmpeg command $(r1 "$mc") s ($(r1 "$minc")-$(r1 "$maxc"));" \
     "naive/assetd $rb (rounds $(fmt %.2f "$minrb")-$(fmt %.2f "$maxrb"); target >= $TARGET_NAIVE: $met_b)," \
     "one command/assetd $rc (rounds $(fmt %.2f "$minrc")-$(fmt %.2f "$maxrc"); target >= $TARGET_ONE: $met_c);" \
     "first playable (HLS master) at $(r1 "$mp") s = $(fmt %.0f "$mps") % of the whole ($(fmt %.0f "$minps")-$(fmt %.0f "$maxps") %);" \
     "CPU assetd $(r1 "$mca") s, naive $(r1 "$mcb") s, one command $(r1 "$mcc") s" \
     "(CPU ratios naive/assetd $(ratio "$mcb" "$mca"), one command/assetd $(ratio "$mcc" "$mca"))${*:+ [assetd $*]}"
exit 0
