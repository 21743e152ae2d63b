#!/usr/bin/env bash
# Image renditions: assetd end to end (upload -> every asset `ready`) against
# vipsthumbnail making the same two renditions of the same photos.
#
#   bench/images.sh [extra 'assetd serve' options]
#
# IMAGE_ROUNDS rounds; each runs assetd, then the vipsthumbnail variants, and
# the best of each is kept.  P (IMAGE_PARALLEL, default nproc) is the same
# everywhere: worker processes, concurrent uploads, vipsthumbnail processes.
#
# assetd: `assetd serve --workers P` on a fresh data dir.  Once its P workers
#   have logged "worker started", the clock starts; every photo of the corpus
#   is uploaded as a raw body, P at a time (xargs -P), and the script polls
#   GET /v1/assets?kind=image&status=...&limit=1 every 50 ms until every
#   upload has answered 201 and no asset is `uploaded` or `processing`; the
#   clock stops there, and the full list must then show all of them `ready`
#   (any `failed` one, or IMAGE_TIMEOUT expiring, breaks the run).  So the
#   time includes the HTTP upload (SHA-256, libmagic, fsync), the queue
#   (SQLite, the workers' 200 ms idle poll), one decode per photo with
#   shrink-on-load to 1024, thumb (256, JPEG q80, strip, optimize_coding) and
#   preview (1024, WebP q80, strip) made from that copy, and two fsynced
#   rendition files.  Each worker runs libvips with vips_concurrency_set(1).
#   The poll loop forks nothing (bash /dev/tcp, read -t as sleep): a curl +
#   grep + sleep every 50 ms would take ~0.3 of the 2 cores from assetd.
# vipsthumbnail (libvips-tools, the same libvips 8.14): for each photo,
#     vipsthumbnail F --size 256  -o DIR/%s_thumb.jpg[Q=80,strip,optimize_coding]
#     vipsthumbnail F --size 1024 -o DIR/%s_preview.webp[Q=80,strip]
#   P files at a time through xargs -P (optimize_coding because assetd's JPEG
#   save sets it).  vipsthumbnail decodes each photo twice, each time with
#   shrink-on-load to its own size, where assetd decodes once; that is part of
#   the reference, not corrected for.  Three variants:
#   - per file, VIPS_CONCURRENCY=1: THE reference for the target.  It is
#     assetd's own configuration: P single-threaded libvips processes fed P
#     photos at a time, so the ratio shows what assetd adds around libvips
#     (HTTP, storage, queue).
#   - per file, libvips' default concurrency (one thread per core in each of
#     the P processes): oversubscribed while P >= nproc photos are in flight,
#     it can only help at the tail; printed for information.
#   - IMAGE_BATCH photos per vipsthumbnail process, VIPS_CONCURRENCY=1: the
#     stricter reference.  A vipsthumbnail process costs ~57 ms of CPU just to
#     start (libvips loads its modules), twice per photo in the per-file
#     runs; assetd's workers start before the clock does.  Batching pays that
#     once per batch, as a long-lived worker would.  3 photos a batch: the
#     startup is then ~38 ms a photo instead of ~114, and 10 batches still
#     share out evenly over the P processes (one batch of 15 per process
#     leaves one core idle at the end when the split is uneven: 6.5 to
#     9.5 img/s from run to run, against 8.3-8.5 for batches of 3 and 5).
#
# Images/s = photos / elapsed.  Prints one line:
#   images: N photos, P=2: assetd A img/s, vipsthumbnail (per file,
#   VIPS_CONCURRENCY=1) V img/s, ratio R (target >= 0.85); ... worker peak RSS
#   max M MiB (target <= 152.6 MiB = 160 MB: yes|NO) [each], serve peak RSS S MiB
# Peak RSS: VmHWM of every worker process (children of the serve process),
# read at the end of each assetd round, before the server stops; the max over
# rounds and workers is compared with the target (160 MB = 10^6 bytes, the
# stricter reading).  The run breaks if a worker restarted (its peak would be
# lost).  Progress on stderr, per round: each side's CPU use, and for assetd
# the phases from the jobs' own timestamps (GET /v1/jobs: queued, started,
# finished) and the workers' scheduler times (/proc/PID/task/*/schedstat).
# The machine is shared: before each timed run the script waits (up to 30 s)
# for half a second in which everything else used < 0.25 cores, and each
# round prints how busy the whole machine was ("machine X of 2") next to the
# CPU the measured side used, so a round that shared the CPU shows.
# Exit 0 whether or not a target is met; 2 if something is broken.
#
# DB=postgres bench/images.sh: the scale-out back-ends against the embedded
# default (issue #14).  The same assetd round twice per round, in alternating
# order, and no vipsthumbnail: once on SQLite + the disk store (as above),
# once with `--db` on a private PostgreSQL cluster (lib.sh start_postgres,
# durable settings; a fresh database per round) and `--store s3://bench/rN`
# on a private s3rver (lib.sh start_s3rver), so the uploads stream into S3
# multipart uploads and the workers read the originals from and write the
# renditions to s3rver.  The P workers are serve's children, as above (they
# inherit --db and --store).  PostgreSQL's and s3rver's CPU is printed beside
# assetd's: they share the 2 cores.  Prints one line:
#   images on PostgreSQL + S3: N photos, P=2: SQLite + disk A img/s,
#   PostgreSQL + s3rver B img/s, ratio B/A R; worker peak RSS ...
#
# Environment knobs (defaults in brackets):
#   CORPUS [../shared/corpus/photos, relative to the repo]
#   IMAGE_PARALLEL [nproc]  IMAGE_ROUNDS [3]  IMAGE_BATCH [3]
#   IMAGE_TIMEOUT [300]: seconds per assetd round, and per vipsthumbnail run
#   DB [sqlite]: postgres for the comparison above
set -euo pipefail
source "$(dirname "$0")/lib.sh"

CORPUS=${CORPUS:-$BENCH_ROOT/../shared/corpus/photos}
IMAGE_PARALLEL=${IMAGE_PARALLEL:-$(nproc)}
IMAGE_ROUNDS=${IMAGE_ROUNDS:-3}
IMAGE_TIMEOUT=${IMAGE_TIMEOUT:-300}
IMAGE_BATCH=${IMAGE_BATCH:-3}
POLL_S=0.05
TARGET_RATIO=0.85
TARGET_RSS_KB=$((160 * 1000 * 1000 / 1024))   # 160 MB in KiB (VmHWM's unit)

[[ $IMAGE_PARALLEL =~ ^[1-9][0-9]*$ ]] || die "IMAGE_PARALLEL must be a positive integer"
[[ $IMAGE_ROUNDS =~ ^[1-9][0-9]*$ ]] || die "IMAGE_ROUNDS must be a positive integer"
[[ $IMAGE_BATCH =~ ^[1-9][0-9]*$ ]] || die "IMAGE_BATCH must be a positive integer"
[[ $IMAGE_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "IMAGE_TIMEOUT must be a positive integer (seconds)"
P=$IMAGE_PARALLEL
command -v vipsthumbnail >/dev/null 2>&1 || die "'vipsthumbnail' is not installed (apt-get install -y libvips-tools)"
need curl xargs awk date sed grep ps

[[ -d $CORPUS ]] || die "no corpus dir $CORPUS (set CORPUS)"
FILES=()
mapfile -d '' -t FILES < <(find -L "$CORPUS" -maxdepth 1 -type f \
  \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' -o -iname '*.webp' -o -iname '*.tif' -o -iname '*.tiff' \) \
  -print0 | sort -z)
N=${#FILES[@]}
((N > 0)) || die "no images in $CORPUS"
((N <= 100)) || die "$N images in $CORPUS: the job list this script reads holds 100 at most"

bench_init images
DB=${DB:-sqlite}
case $DB in
  sqlite) ;;
  postgres)
    need psql
    start_postgres
    start_s3rver "$BENCH_TMP/s3rver"
    code=$(curl -sS --max-time 30 -X PUT -o /dev/null -w '%{http_code}' "$S3RVER_URL/bench") ||
      die "cannot reach s3rver to create the bucket"
    [[ $code == 200 ]] || die "creating the bucket answered $code"
    # s3rver knows the access key S3RVER and checks no signature.
    export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
    unset AWS_SESSION_TOKEN
    PG_PID=$(head -n1 "$PG_DIR/data/postmaster.pid")
    note "PostgreSQL on $PG_URL (pid $PG_PID), s3rver on $S3RVER_URL (pid $S3RVER_PID)"
    ;;
  *) die "DB must be sqlite or postgres" ;;
esac
note "corpus: $N files, $(du -sh "$CORPUS" | cut -f1) in $CORPUS; P = $P; $IMAGE_ROUNDS rounds; load average $(cut -d' ' -f1-3 /proc/loadavg)"
note "vipsthumbnail: $(vipsthumbnail --vips-version 2>/dev/null | head -n1); assetd links $(ldd "$ASSETD_BIN" | awk '/libvips\.so/ { print $3 }' | xargs -r readlink -f | xargs -r basename)"

# Page-cache warm-up for both sides, and one untimed vipsthumbnail run (its
# shared libraries, the corpus files).
cat "${FILES[@]}" >/dev/null
vipsthumbnail "${FILES[0]}" --size 256 -o "$BENCH_TMP/warmup_%s.jpg[Q=80,strip]" ||
  die "vipsthumbnail failed on ${FILES[0]}"
rm -f "$BENCH_TMP"/warmup_*

# count STRING FILE: occurrences (not lines) of STRING in FILE.
count() { { grep -o -F -- "$1" "$2" || true; } | wc -l; }
# sched_ns PID...: nanoseconds on a CPU and waiting for one (runnable, not
# running), summed over the live threads of the given processes.
sched_ns() {
  local p
  for p in "$@"; do cat "/proc/$p/task/"*/schedstat 2>/dev/null || true; done |
    awk '{ r += $1; w += $2 } END { printf "%.0f %.0f\n", r, w }'
}

# The poll loop below forks nothing (lib.sh's nap and http_get): on 2
# cores, a curl + grep + sleep every 50 ms costs about 0.3 cores, taken
# from assetd.
# no_assets STATUS: true when assetd answers that no image asset has STATUS.
no_assets() {
  http_get "/v1/assets?kind=image&status=$1&limit=1" &&
    [[ $HTTP_CODE == 200 && $HTTP_BODY == *'"items":[]'* ]]
}

# ---- assetd ---------------------------------------------------------------
# Run by xargs: upload one file, leave "CODE TIME_TOTAL" in UP_DIR/NAME.code.
# shellcheck disable=SC2317  # called through xargs
upload_one() {
  local f=$1 name
  name=$(basename "$f")
  curl -sS --max-time 60 -X POST -H "Authorization: Bearer $ASSETD_TOKEN" \
       -H 'Content-Type: application/octet-stream' --data-binary @"$f" \
       -o "$UP_DIR/$name.json" -w '%{http_code} %{time_total}\n' \
       --url-query "filename=$name" "$ASSETD_URL/v1/assets" >"$UP_DIR/$name.code" 2>"$UP_DIR/$name.err" ||
    echo "000 0" >"$UP_DIR/$name.code"
}
export -f upload_one

# Fails the run with whatever explains an asset's failure or a stuck upload.
assetd_broken() {
  local msg=$1
  [[ -n ${UPLOADER_PID:-} ]] && { stop_pid "$UPLOADER_PID"; forget_pid "$UPLOADER_PID"; }
  if [[ -s ${RUN_DIR:-}/list.json ]]; then
    note "failed assets: $({ grep -o '"status":"failed","filename":"[^"]*"\|"error":{[^}]*}' "$RUN_DIR/list.json" || true; } | tr '\n' ' ')"
  fi
  note "server log tail:"; tail -n 20 "$RUN_DIR/assetd.log" >&2 2>/dev/null || true
  die "$msg"
}

# run_assetd ROUND [serve args...]: one end-to-end round.  Sets A_RATE and
# appends "PID:HWM_KIB" per worker to WORKER_HWM, the serve process's to SERVE_HWM.
run_assetd() {
  local r=$1; shift
  RUN_DIR=$BENCH_TMP/r$r
  UP_DIR=$RUN_DIR/up
  mkdir -p "$UP_DIR"
  start_assetd "$RUN_DIR/assetd" --workers "$P" "$@"
  local log=$RUN_DIR/assetd.log i started=0
  for ((i = 0; i < 100; i++)); do            # up to 10 s for the workers to start
    started=$(grep -c '"msg":"worker started"' "$log" || true)
    ((started >= P)) && break
    sleep 0.1
  done
  ((started >= P)) || assetd_broken "only $started of $P workers started in 10 s"
  local workers=()
  mapfile -t workers < <(ps -o pid= --ppid "$ASSETD_PID" | tr -d ' ')
  ((${#workers[@]} == P)) || assetd_broken "serve has ${#workers[@]} child processes, want $P"
  no_assets uploaded || assetd_broken "GET /v1/assets does not answer as expected: $HTTP_CODE $HTTP_BODY"
  wait_quiet 60 run   # up to 30 s
  export ASSETD_TOKEN ASSETD_URL UP_DIR
  local m0 m1 c0 c1 w0 w1 s0 s1 t0 t1="" polls nup=-1
  local max_polls=$((IMAGE_TIMEOUT * 20 + 1))   # 50 ms apart at best
  read -r m0 _ < <(machine_ticks)
  c0=$(ticks_of "$ASSETD_PID"); w0=$(ticks_of "${workers[@]}"); s0=$(sched_ns "${workers[@]}")
  local x0=0 x1=0 y0=0 y1=0
  if [[ $DB == postgres ]]; then x0=$(cpu_ticks "$PG_PID"); y0=$(cpu_ticks "$S3RVER_PID"); fi

  t0=$EPOCHREALTIME
  (
    rc=0
    # shellcheck disable=SC2016  # $1 is for the inner bash
    printf '%s\0' "${FILES[@]}" | xargs -0 -P "$P" -n 1 bash -c 'upload_one "$1"' _ || rc=$?
    echo "$EPOCHREALTIME" >"$RUN_DIR/up.end"
    echo "$rc" >"$RUN_DIR/up.rc"
  ) &
  UPLOADER_PID=$!
  BENCH_PIDS+=("$UPLOADER_PID")
  local deadline=$((${t0%.*} + IMAGE_TIMEOUT + 1))   # whole seconds: at least IMAGE_TIMEOUT
  # Done when every upload has answered and no asset is uploaded (queued) or
  # processing; uploaded -> processing -> ready|failed only moves forward, so
  # asking in that order cannot miss one.
  for ((polls = 1; polls <= max_polls; polls++)); do
    if ((nup < 0)) && [[ -s $RUN_DIR/up.rc ]]; then
      nup=$({ grep -l '^201 ' "$UP_DIR"/*.code || true; } | wc -l)
      ((nup == N)) || assetd_broken "round $r: $nup of $N uploads answered 201: $(grep -v '^201 ' "$UP_DIR"/*.code | head -n3 | tr '\n' ' ') $(cat "$UP_DIR"/*.err | head -n3)"
    fi
    if ((nup == N)) && no_assets uploaded && no_assets processing; then
      t1=$EPOCHREALTIME
      break
    fi
    kill -0 "$ASSETD_PID" 2>/dev/null || assetd_broken "round $r: assetd died"
    ((${EPOCHREALTIME%.*} < deadline)) || break
    nap "$POLL_S"
  done
  read -r m1 _ < <(machine_ticks)
  c1=$(ticks_of "$ASSETD_PID"); w1=$(ticks_of "${workers[@]}"); s1=$(sched_ns "${workers[@]}")
  if [[ $DB == postgres ]]; then x1=$(cpu_ticks "$PG_PID"); y1=$(cpu_ticks "$S3RVER_PID"); fi
  curl -sS --max-time 10 -H "Authorization: Bearer $ASSETD_TOKEN" -o "$RUN_DIR/list.json" \
       "$ASSETD_URL/v1/assets?kind=image&limit=1000" || assetd_broken "GET /v1/assets failed"
  local ready failed
  ready=$(count '"status":"ready"' "$RUN_DIR/list.json")
  failed=$(count '"status":"failed"' "$RUN_DIR/list.json")
  ((failed == 0)) || assetd_broken "round $r: $failed asset(s) ended 'failed'"
  [[ -n $t1 ]] || assetd_broken "round $r: $ready of $N assets ready after $(secs "$t0" "$EPOCHREALTIME") s (timeout ${IMAGE_TIMEOUT} s)"
  ((ready == N)) || assetd_broken "round $r: $ready assets ready, want $N"
  wait "$UPLOADER_PID" 2>/dev/null || true
  forget_pid "$UPLOADER_PID"; UPLOADER_PID=""

  # Same worker processes as at the start: none crashed and was restarted
  # (its peak RSS would be lost with it).
  local now_workers=()
  mapfile -t now_workers < <(ps -o pid= --ppid "$ASSETD_PID" | tr -d ' ')
  if [[ "${now_workers[*]}" != "${workers[*]}" ]] || grep -q '"msg":"worker exited' "$log"; then
    assetd_broken "round $r: workers restarted during the run (${workers[*]} -> ${now_workers[*]})"
  fi
  local p hwm each=()
  for p in "${workers[@]}"; do
    hwm=$(kib_of "$p" VmHWM)
    WORKER_HWM+=("$p:$hwm")
    each+=("$(mib "$hwm") (now $(mib "$(kib_of "$p" VmRSS)"))")
  done
  hwm=$(kib_of "$ASSETD_PID" VmHWM)
  SERVE_HWM+=("$hwm")

  # Phases, from the jobs' own timestamps (the same clock as EPOCHREALTIME).
  curl -sS --max-time 10 -H "Authorization: Bearer $ASSETD_TOKEN" -o "$RUN_DIR/jobs.json" \
       "$ASSETD_URL/v1/jobs" || assetd_broken "GET /v1/jobs failed"
  local njobs
  njobs=$(count '"state":"succeeded"' "$RUN_DIR/jobs.json")
  ((njobs == N)) || note "round $r: $njobs of $N jobs succeeded (retries?)"
  grep -o '"created":"[^"]*","started":"[^"]*","finished":"[^"]*"' "$RUN_DIR/jobs.json" |
    sed 's/"[a-z]*":"\([^"]*\)",*/\1\n/g' | grep . | date -f - +%s.%N | paste - - - |
    sort -k2,2n >"$RUN_DIR/jobs.tsv" ||
    assetd_broken "round $r: no finished jobs in $(head -c 500 "$RUN_DIR/jobs.json")"
  local wall phases sched
  wall=$(secs "$t0" "$t1")
  # Worker time outside jobs: at the start (until each of the first P jobs
  # started), at the end (the other workers idle while the last job runs) and
  # the rest (between jobs: claim, commits; the 200 ms idle poll).
  local tail_idle
  tail_idle=$(sort -k3,3n "$RUN_DIR/jobs.tsv" | tail -n "$P" |
    awk '{ f[NR] = $3 } END { for (i = 1; i < NR; i++) s += f[NR] - f[i]; printf "%.2f", s }')
  phases=$(awk -v t0="$t0" -v t1="$t1" -v ue="$(<"$RUN_DIR/up.end")" -v p="$P" -v tail="$tail_idle" '
    NR == 1 { fs = $2; lf = $3; fc = $1; lc = $1 }
    NR <= p { head += $2 - t0; ps = $2 }
    { d = $3 - $2; busy += d; if (NR == 1 || d < dmin) dmin = d; if (d > dmax) dmax = d
      if ($3 > lf) lf = $3; if ($1 < fc) fc = $1; if ($1 > lc) lc = $1 }
    END { tot = p * (t1 - t0)
          printf "uploads +0 to +%.2f s (queued +%.2f to +%.2f); job 1 started +%.2f s, job %d +%.2f s;" \
                 " jobs %.0f ms mean (%.0f-%.0f); last done +%.2f s, seen +%.2f s;" \
                 " worker time %d x %.2f s: in jobs %.0f%%, before the first %.1f%%, after the last %.1f%%, between %.1f%%",
            ue - t0, fc - t0, lc - t0, fs - t0, p, ps - t0, busy / NR * 1000, dmin * 1000, dmax * 1000,
            lf - t0, t1 - t0, p, t1 - t0, 100 * busy / tot, 100 * head / tot, 100 * tail / tot,
            100 * (tot - busy - head - tail) / tot }' "$RUN_DIR/jobs.tsv")
  # Per thread, summed: libvips' write-behind thread can run beside its
  # worker thread, so this is not bounded by P x wall.
  sched=$(awk -v a="$s0" -v b="$s1" 'BEGIN { split(a, x, " "); split(b, y, " ")
      printf "on a CPU %.2f s, runnable but waiting for a CPU %.2f s", (y[1] - x[1]) / 1e9, (y[2] - x[2]) / 1e9 }')
  A_RATE=$(per_s "$N" "$t0" "$t1")
  local backs=""
  [[ $BACKEND == pg-s3 ]] && backs=", PostgreSQL $(busy_cores "$x0" "$x1" "$wall"), s3rver $(busy_cores "$y0" "$y1" "$wall")"
  note "round $r: assetd ($BACKEND) $wall s = $A_RATE img/s (CPU: serve $(busy_cores "$c0" "$c1" "$wall") cores, workers $(busy_cores "$w0" "$w1" "$wall") = $(awk -v a="$w0" -v b="$w1" -v hz="$TICK" -v n="$N" 'BEGIN { printf "%.0f", (b - a) / hz / n * 1000 }') ms/img$backs, machine $(busy_cores "$m0" "$m1" "$wall") of $(nproc))"
  note "round $r: assetd $phases"
  note "round $r: assetd worker threads $sched"
  note "round $r: assetd peak RSS MiB: workers ${each[*]}, serve $(mib "$hwm")"
  stop_assetd
  rm -rf "$RUN_DIR"
}

# ---- vipsthumbnail --------------------------------------------------------
# run_vips ROUND TAG LABEL CONCURRENCY BATCH: vipsthumbnail over the corpus, P
# processes at a time, BATCH files per process (1 = one file per process);
# CONCURRENCY is VIPS_CONCURRENCY, empty for libvips' default.  Sets V_RATE.
run_vips() {
  local r=$1 tag=$2 label=$3 conc=$4 batch=$5
  local out=$BENCH_TMP/vips-r$r-$tag t0 t1 m0 m1 rc=0 n
  rm -rf "$out"; mkdir -p "$out"
  local envs=(env -u VIPS_CONCURRENCY)
  [[ -n $conc ]] && envs+=("VIPS_CONCURRENCY=$conc")
  export VIPS_OUT=$out
  local TIMEFORMAT='%U %S'
  wait_quiet 60 run   # up to 30 s
  read -r m0 _ < <(machine_ticks)
  t0=$EPOCHREALTIME
  # shellcheck disable=SC2016  # "$@" and $VIPS_OUT are for the inner bash
  { time printf '%s\0' "${FILES[@]}" |
      timeout "$IMAGE_TIMEOUT" "${envs[@]}" xargs -0 -P "$P" -n "$batch" bash -c '
        vipsthumbnail "$@" --size 256 -o "$VIPS_OUT/%s_thumb.jpg[Q=80,strip,optimize_coding]" &&
        vipsthumbnail "$@" --size 1024 -o "$VIPS_OUT/%s_preview.webp[Q=80,strip]"' _ \
      2>"$out.err"; } 2>"$out.time" || rc=$?
  t1=$EPOCHREALTIME
  read -r m1 _ < <(machine_ticks)
  ((rc == 0)) || { cat "$out.err" >&2; die "round $r: vipsthumbnail ($label) failed (exit $rc)"; }
  n=$(find "$out" -type f -size +0 | wc -l)
  ((n == 2 * N)) || die "round $r: vipsthumbnail ($label) wrote $n files, want $((2 * N))"
  local wall
  wall=$(secs "$t0" "$t1")
  V_RATE=$(per_s "$N" "$t0" "$t1")
  note "round $r: vipsthumbnail ($label) $wall s = $V_RATE img/s (CPU: $(awk -v w="$wall" -v n="$N" '{ printf "%.2f cores = %.0f ms/img", ($1 + $2) / w, ($1 + $2) / n * 1000 }' "$out.time"), machine $(busy_cores "$m0" "$m1" "$wall") of $(nproc))"
  rm -rf "$out" "$out.err" "$out.time"
}

# ---- rounds ---------------------------------------------------------------
WORKER_HWM=() SERVE_HWM=()
BACKEND=disk
if [[ $DB == postgres ]]; then
  best_d=0 best_p=0
  for ((r = 1; r <= IMAGE_ROUNDS; r++)); do
    order="disk pg-s3"
    ((r % 2 == 0)) && order="pg-s3 disk"
    for BACKEND in $order; do
      if [[ $BACKEND == disk ]]; then
        run_assetd "$r" "$@"
        ge "$A_RATE" "$best_d" && best_d=$A_RATE
      else
        psql -X -q -d "$PG_URL/postgres" -c "CREATE DATABASE r$r" || die "cannot make database r$r"
        run_assetd "$r" --db "$PG_URL/r$r" --store "s3://bench/r$r" --s3-endpoint "$S3RVER_URL" "$@"
        ge "$A_RATE" "$best_p" && best_p=$A_RATE
      fi
    done
  done
  max_hwm=0
  for e in "${WORKER_HWM[@]}"; do k=${e#*:}; ((k > max_hwm)) && max_hwm=$k; done
  echo "images on PostgreSQL + S3: $N photos, P=$P, $IMAGE_ROUNDS rounds: SQLite + disk $best_d img/s," \
       "PostgreSQL + s3rver $best_p img/s, ratio $(ratio "$best_p" "$best_d") (PG+S3 / SQLite+disk);" \
       "worker peak RSS max $(mib "$max_hwm") MiB${*:+ [assetd $*]}"
  exit 0
fi
best_a=0 best_v1=0 best_vd=0 best_vb=0
for ((r = 1; r <= IMAGE_ROUNDS; r++)); do
  run_assetd "$r" "$@"
  ge "$A_RATE" "$best_a" && best_a=$A_RATE
  run_vips "$r" file1 "per file, 1 thread" 1 1
  ge "$V_RATE" "$best_v1" && best_v1=$V_RATE
  run_vips "$r" filedef "per file, default threads" "" 1
  ge "$V_RATE" "$best_vd" && best_vd=$V_RATE
  run_vips "$r" batch1 "$IMAGE_BATCH files per process, 1 thread" 1 "$IMAGE_BATCH"
  ge "$V_RATE" "$best_vb" && best_vb=$V_RATE
done

max_hwm=0 all_hwm=()
for e in "${WORKER_HWM[@]}"; do
  k=${e#*:}
  ((k > max_hwm)) && max_hwm=$k
  all_hwm+=("$(mib "$k")")
done
max_serve=0
for k in "${SERVE_HWM[@]}"; do ((k > max_serve)) && max_serve=$k; done
rss_ok=yes
((max_hwm <= TARGET_RSS_KB)) || rss_ok=NO

echo "images: $N photos, P=$P: assetd $best_a img/s, vipsthumbnail (per file, VIPS_CONCURRENCY=1) $best_v1 img/s," \
     "ratio $(ratio "$best_a" "$best_v1") (target >= $TARGET_RATIO); vipsthumbnail default concurrency" \
     "$best_vd img/s (ratio $(ratio "$best_a" "$best_vd")), $IMAGE_BATCH files per process $best_vb img/s" \
     "(ratio $(ratio "$best_a" "$best_vb")); worker peak RSS max $(mib "$max_hwm") MiB" \
     "(target <= $(mib "$TARGET_RSS_KB") MiB = 160 MB: $rss_ok) [${all_hwm[*]}], serve peak RSS $(mib "$max_serve") MiB${*:+ [assetd $*]}"
exit 0
