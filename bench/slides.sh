#!/usr/bin/env bash
# Slideshows: slides/s for one PDF deck end to end (upload -> READY) through
# the original slideshow API, against poppler's pdftoppm rendering the same
# file to 1280-wide JPEGs in the same run (issue #5).
#
#   bench/slides.sh [extra 'assetd serve' options]
#
# Target: assetd >= 1.3x pdftoppm's slides/s on the 45-page corpus deck
# (slides_context_bachotex2018_45p.pdf).
#
# assetd: `assetd serve --workers 1` on a fresh data dir per round.  One
#   worker, because one deck is one `document` job, which runs on one core in
#   one worker process; a second worker would only sit idle.  Once the worker
#   has logged "worker started", the clock starts; the deck is uploaded with
#       curl -H "Authorization: Bearer KEY" -F file=@DECK URL/api/v1/slideshow/upload
#   and GET /api/v1/slideshow/ID.json is polled every 20 ms (bash /dev/tcp and
#   read -t: the poll forks nothing) until `status` is READY; the clock stops
#   there.  ERROR, a missing id, a slide count other than the page count, or
#   SLIDES_TIMEOUT expiring breaks the run.  So the time includes the upload
#   (multipart, SHA-256, libmagic, fsync), the queue (SQLite, the worker's
#   50 ms idle poll) and, per page, a poppler-glib + cairo render at 1280
#   wide on white, a JPEG q85 slide AND a 320-wide JPEG q85 thumbnail from the
#   same bitmap (libvips), two fsynced blob files, then the commit of the
#   `slides` rows.
# pdftoppm (poppler-utils, the same poppler):
#       pdftoppm -jpeg -scale-to-x 1280 -scale-to-y -1 DECK OUT/p
#   one process, one thread, timed from the fork to its exit.  It renders with
#   Splash (not cairo), writes one 1280-wide JPEG per page at libjpeg's
#   default quality (75), no thumbnail, no fsync.  THE reference for the
#   target.  Printed for information: the same with `-jpegopt quality=85`,
#   assetd's slide quality, and `pdftocairo -jpeg -jpegopt quality=85
#   -scale-to-x 1280 -scale-to-y -1`: poppler's cairo backend, the renderer
#   assetd uses, at assetd's quality: what the same render + encode costs
#   without assetd around it (but with no thumbnail and no fsync).
#
# Slides/s = pages / elapsed.  Best of SLIDES_ROUNDS rounds for each side;
# each round runs assetd, then pdftoppm, pdftoppm q85 and pdftocairo q85.
# Each round also prints the CPU time (user+sys) of the worker process (children of serve,
# `pgrep -P`, from /proc/PID/stat) and of pdftoppm (bash `time`), per slide.
# The machine is shared: before each timed run the script waits (up to 30 s)
# for half a second in which everything used < 0.25 cores, and prints how
# busy the machine was during the run.
#
# Prints one line (and a second when SLIDES_MANUAL is set, see below):
#   slides: DECK, N pages, 1 worker: assetd A slides/s, pdftoppm P slides/s,
#   ratio R (target >= 1.3: met|MISSED); pdftoppm q85 Q slides/s (ratio);
#   CPU per slide: assetd worker X ms, pdftoppm Y ms, q85 Z ms; pdftocairo
#   q85 C slides/s (ratio, CPU per slide)
# SLIDES_MANUAL (default: the corpus's 403-page autoconf manual; empty to
# skip): the same comparison on that file, SLIDES_MANUAL_ROUNDS rounds, no
# target, for information (a long text document instead of slides).
# Exit 0 whether or not the target is met; 2 if something is broken.
#
# Environment knobs (defaults in brackets):
#   CORPUS [../shared/corpus/pdf/slides_context_bachotex2018_45p.pdf]
#   SLIDES_ROUNDS [3]  SLIDES_TIMEOUT [300]: seconds per assetd/pdftoppm run
#   SLIDES_MANUAL [../shared/corpus/pdf/text_autoconf_manual_403p.pdf]
#   SLIDES_MANUAL_ROUNDS [1]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

CORPUS=${CORPUS:-$BENCH_ROOT/../shared/corpus/pdf/slides_context_bachotex2018_45p.pdf}
SLIDES_ROUNDS=${SLIDES_ROUNDS:-3}
SLIDES_TIMEOUT=${SLIDES_TIMEOUT:-300}
SLIDES_MANUAL=${SLIDES_MANUAL-$BENCH_ROOT/../shared/corpus/pdf/text_autoconf_manual_403p.pdf}
SLIDES_MANUAL_ROUNDS=${SLIDES_MANUAL_ROUNDS:-1}
POLL_S=0.02
TARGET_RATIO=1.3

[[ $SLIDES_ROUNDS =~ ^[1-9][0-9]*$ ]] || die "SLIDES_ROUNDS must be a positive integer"
[[ $SLIDES_MANUAL_ROUNDS =~ ^[1-9][0-9]*$ ]] || die "SLIDES_MANUAL_ROUNDS must be a positive integer"
[[ $SLIDES_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "SLIDES_TIMEOUT must be a positive integer (seconds)"
command -v pdftoppm >/dev/null 2>&1 || die "'pdftoppm' is not installed (apt-get install -y poppler-utils)"
command -v pdfinfo >/dev/null 2>&1 || die "'pdfinfo' is not installed (apt-get install -y poppler-utils)"
need curl awk sed grep pgrep timeout find
[[ -f $CORPUS ]] || die "no deck $CORPUS (set CORPUS)"
[[ -z $SLIDES_MANUAL || -f $SLIDES_MANUAL ]] || die "no file $SLIDES_MANUAL (set SLIDES_MANUAL, empty to skip)"

pages_of() {
  local n
  n=$(pdfinfo "$1" 2>/dev/null | sed -n 's/^Pages: *\([0-9][0-9]*\)$/\1/p')
  [[ -n $n ]] || die "pdfinfo cannot read $1"
  echo "$n"
}

bench_init slides
note "deck: $(basename "$CORPUS"), $(pages_of "$CORPUS") pages, $(du -k "$CORPUS" | cut -f1) KiB; $SLIDES_ROUNDS rounds; load average $(cut -d' ' -f1-3 /proc/loadavg)"
note "pdftoppm $(pdftoppm -v 2>&1 | sed -n 's/^pdftoppm version //p'); assetd links $(ldd "$ASSETD_BIN" | awk '/libpoppler-glib\.so/ { print $3 }' | xargs -r readlink -f | xargs -r basename)"

# ms_per N CPU_SECONDS: milliseconds of CPU per page.
ms_per() { awk -v n="$1" -v c="$2" 'BEGIN { printf "%.0f", c / n * 1000 }'; }

# The 20 ms poll forks nothing (lib.sh's nap and http_get), so it takes no
# CPU from assetd.

assetd_broken() {
  note "server log tail:"; grep -v '"level":"debug"' "$RUN_DIR/assetd.log" 2>/dev/null | tail -n 20 >&2 || true
  die "$1"
}

# ---- assetd ---------------------------------------------------------------
# run_assetd ROUND DECK PAGES [serve args...]: one end-to-end round on a fresh
# data dir.  Sets A_RATE and A_CPU (worker CPU seconds).
run_assetd() {
  local r=$1 deck=$2 n=$3; shift 3
  RUN_DIR=$BENCH_TMP/r$r
  mkdir -p "$RUN_DIR"
  start_assetd_one_worker "$RUN_DIR/assetd" "$@"
  local wpid=$WORKER_PID
  wait_quiet 60 run   # up to 30 s
  local m0 m1 w0 w1 c0 c1 t0 t1="" id status="" polls body
  local max_polls=$((SLIDES_TIMEOUT * 50 + 1))   # 20 ms apart at best
  read -r m0 _ < <(machine_ticks)
  w0=$(ticks_of "$wpid"); c0=$(ticks_of "$ASSETD_PID")
  t0=$EPOCHREALTIME
  body=$(curl -sS --max-time "$SLIDES_TIMEOUT" -H "Authorization: Bearer $ASSETD_TOKEN" \
              -F "file=@$deck" -w '\n%{http_code}' "$ASSETD_URL/api/v1/slideshow/upload") ||
    assetd_broken "round $r: upload failed"
  [[ ${body##*$'\n'} == 201 || ${body##*$'\n'} == 200 ]] ||
    assetd_broken "round $r: upload answered ${body##*$'\n'}: ${body%$'\n'*}"
  id=$(sed -n 's/^{"id":"\([^"]*\)".*/\1/p' <<<"${body%$'\n'*}")
  [[ -n $id ]] || assetd_broken "round $r: no id in the upload's answer: $body"
  local deadline=$((${t0%.*} + SLIDES_TIMEOUT + 1))
  for ((polls = 1; polls <= max_polls; polls++)); do
    if http_get "/api/v1/slideshow/$id.json" && [[ $HTTP_CODE == 200 ]]; then
      status=$(sed -n 's/.*"status":"\([A-Z]*\)".*/\1/p' <<<"$HTTP_BODY")
      [[ $status == READY ]] && { t1=$EPOCHREALTIME; break; }
      [[ $status == ERROR ]] && assetd_broken "round $r: the slideshow ended ERROR: $HTTP_BODY"
    fi
    kill -0 "$ASSETD_PID" 2>/dev/null || assetd_broken "round $r: assetd died"
    ((${EPOCHREALTIME%.*} < deadline)) || break
    nap "$POLL_S"
  done
  read -r m1 _ < <(machine_ticks)
  w1=$(ticks_of "$wpid"); c1=$(ticks_of "$ASSETD_PID")
  [[ -n $t1 ]] || assetd_broken "round $r: not READY after $SLIDES_TIMEOUT s (last status '${status:-none}', HTTP $HTTP_CODE)"
  local nslides
  nslides=$({ grep -o '/slide/[0-9]*\.jpg' <<<"$HTTP_BODY" || true; } | wc -l)
  ((nslides == n)) || assetd_broken "round $r: READY with $nslides slides, want $n"
  [[ $(pgrep -P "$ASSETD_PID") == "$wpid" ]] || assetd_broken "round $r: the worker restarted during the run"
  local wall
  wall=$(secs "$t0" "$t1")
  A_RATE=$(per_s "$n" "$t0" "$t1")
  A_CPU=$(awk -v a="$w0" -v b="$w1" -v hz="$TICK" 'BEGIN { printf "%.2f", (b - a) / hz }')
  note "round $r: assetd $wall s = $A_RATE slides/s (worker CPU $A_CPU s = $(ms_per "$n" "$A_CPU") ms/page, $(busy_cores "$w0" "$w1" "$wall") cores; serve $(busy_cores "$c0" "$c1" "$wall") cores; machine $(busy_cores "$m0" "$m1" "$wall") of $(nproc); $polls polls)"
  stop_assetd
  rm -rf "$RUN_DIR"
}

# ---- pdftoppm -------------------------------------------------------------
# run_pdftoppm ROUND DECK PAGES LABEL TOOL [extra options]: TOOL (pdftoppm
# or pdftocairo) -jpeg -scale-to-x 1280 over DECK; sets P_RATE and P_CPU (CPU
# seconds, user+sys).
run_pdftoppm() {
  local r=$1 deck=$2 n=$3 label=$4 tool=$5; shift 5
  local out=$BENCH_TMP/ppm-r$r t0 t1 m0 m1 rc=0 got
  rm -rf "$out"; mkdir -p "$out"
  local TIMEFORMAT='%U %S'
  wait_quiet 60 run   # up to 30 s
  read -r m0 _ < <(machine_ticks)
  t0=$EPOCHREALTIME
  { time timeout "$SLIDES_TIMEOUT" "$tool" -jpeg -scale-to-x 1280 -scale-to-y -1 "$@" "$deck" "$out/p" \
      2>"$out.err"; } 2>"$out.time" || rc=$?
  t1=$EPOCHREALTIME
  read -r m1 _ < <(machine_ticks)
  ((rc == 0)) || { cat "$out.err" >&2; die "round $r: $tool ($label) failed (exit $rc)"; }
  got=$(find "$out" -type f -name 'p*.jpg' -size +0 | wc -l)
  ((got == n)) || die "round $r: $tool ($label) wrote $got files, want $n"
  local wall
  wall=$(secs "$t0" "$t1")
  P_RATE=$(per_s "$n" "$t0" "$t1")
  P_CPU=$(awk '{ printf "%.2f", $1 + $2 }' "$out.time")
  note "round $r: $tool ($label) $wall s = $P_RATE slides/s (CPU $P_CPU s = $(ms_per "$n" "$P_CPU") ms/page; machine $(busy_cores "$m0" "$m1" "$wall") of $(nproc); $(du -sk "$out" | cut -f1) KiB of JPEG)"
  rm -rf "$out" "$out.err" "$out.time"
}

# ---- rounds ---------------------------------------------------------------
# compare DECK ROUNDS [serve args...]: best of ROUNDS for each side.  Sets
# PAGES, BEST_A, BEST_P, BEST_Q, BEST_C and the CPU seconds of the best rounds.
compare() {
  local deck=$1 rounds=$2 r; shift 2
  PAGES=$(pages_of "$deck")
  # Page cache and shared libraries warm for both sides: read the file, one
  # untimed pdftoppm of the first page.
  cat "$deck" >/dev/null
  pdftoppm -jpeg -scale-to-x 1280 -scale-to-y -1 -f 1 -l 1 "$deck" "$BENCH_TMP/warmup" ||
    die "pdftoppm failed on $deck"
  rm -f "$BENCH_TMP"/warmup*
  note "== $(basename "$deck"): $PAGES pages"
  BEST_A=0 BEST_P=0 BEST_Q=0 BEST_C=0 CPU_A="" CPU_P="" CPU_Q="" CPU_C=""
  for ((r = 1; r <= rounds; r++)); do
    run_assetd "$r" "$deck" "$PAGES" "$@"
    if ge "$A_RATE" "$BEST_A"; then BEST_A=$A_RATE; CPU_A=$A_CPU; fi
    run_pdftoppm "$r" "$deck" "$PAGES" "default quality 75" pdftoppm
    if ge "$P_RATE" "$BEST_P"; then BEST_P=$P_RATE; CPU_P=$P_CPU; fi
    run_pdftoppm "$r" "$deck" "$PAGES" "quality=85" pdftoppm -jpegopt quality=85
    if ge "$P_RATE" "$BEST_Q"; then BEST_Q=$P_RATE; CPU_Q=$P_CPU; fi
    run_pdftoppm "$r" "$deck" "$PAGES" "cairo, quality=85" pdftocairo -jpegopt quality=85
    if ge "$P_RATE" "$BEST_C"; then BEST_C=$P_RATE; CPU_C=$P_CPU; fi
  done
}

compare "$CORPUS" "$SLIDES_ROUNDS" "$@"
met=met
ge "$(ratio "$BEST_A" "$BEST_P")" "$TARGET_RATIO" || met=MISSED
echo "slides: $(basename "$CORPUS"), $PAGES pages, 1 worker: assetd $BEST_A slides/s (1280 slide + 320 thumb, fsynced)," \
     "pdftoppm -jpeg -scale-to-x 1280 $BEST_P slides/s, ratio $(ratio "$BEST_A" "$BEST_P")" \
     "(target >= $TARGET_RATIO: $met); pdftoppm quality=85 $BEST_Q slides/s (ratio $(ratio "$BEST_A" "$BEST_Q"));" \
     "CPU per page in the best rounds: assetd worker $(ms_per "$PAGES" "$CPU_A") ms, pdftoppm $(ms_per "$PAGES" "$CPU_P") ms," \
     "q85 $(ms_per "$PAGES" "$CPU_Q") ms; pdftocairo q85 $BEST_C slides/s (ratio $(ratio "$BEST_A" "$BEST_C")," \
     "$(ms_per "$PAGES" "$CPU_C") ms)${*:+ [assetd $*]}"

if [[ -n $SLIDES_MANUAL ]]; then
  compare "$SLIDES_MANUAL" "$SLIDES_MANUAL_ROUNDS" "$@"
  echo "slides: $(basename "$SLIDES_MANUAL"), $PAGES pages (information, no target): assetd $BEST_A slides/s," \
       "pdftoppm $BEST_P slides/s, ratio $(ratio "$BEST_A" "$BEST_P"); pdftoppm quality=85 $BEST_Q slides/s" \
       "(ratio $(ratio "$BEST_A" "$BEST_Q")); CPU per page: assetd worker $(ms_per "$PAGES" "$CPU_A") ms," \
       "pdftoppm $(ms_per "$PAGES" "$CPU_P") ms, q85 $(ms_per "$PAGES" "$CPU_Q") ms; pdftocairo q85 $BEST_C slides/s" \
       "(ratio $(ratio "$BEST_A" "$BEST_C"), $(ms_per "$PAGES" "$CPU_C") ms)"
fi
exit 0
