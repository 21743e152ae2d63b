#!/usr/bin/env bash
# Resumable upload: 2 GiB through tus in 64 MiB PATCHes into assetd, against
# the same file as one plain POST to the same assetd, and against the tus
# project's own Node server (@tus/server + @tus/file-store).
#
#   bench/tus.sh [extra 'assetd serve' options]
#
# Writes a 2 GiB file from /dev/urandom once, in the temp dir (the same
# filesystem as both servers' data, so the client reads it from the page
# cache), does one untimed dd of it as a page-cache warm-up (see upload.sh),
# starts assetd (--max-upload 4G --workers 0: nothing reads the asset back
# during the timing) and bench/tus-server/server.mjs, then for TUS_ROUNDS
# rounds, in turn:
#   a) assetd tus: POST /v1/tus (Upload-Length, Upload-Metadata filename),
#      then PATCHes of TUS_CHUNK_MIB at Upload-Offset, each checked (204, the
#      new Upload-Offset); timed from the POST to the last PATCH's 204, which
#      assetd sends once the upload is an asset (bytes fsynced, SHA-256 of
#      the whole file, the row).  Checks the asset's size and sha256, then
#      deletes it.
#   b) assetd POST /v1/assets?filename=big.bin, the file as a raw body: the
#      reference for the target (timed to the 201; size and sha256 checked).
#   c) @tus/server: the same requests as (a) to /files/; its FileStore
#      neither fsyncs nor hashes, so its time ends with the bytes in the page
#      cache.  The time of a `sync FILE` right after (fsync of that file) is
#      printed beside it, as "c+fsync", for comparison; the ratio uses c.
#      Checks the file's size (and its sha256 in round 1), then DELETEs it.
# The tus uploads (a, c) are one build/tus-client each (bench/tus_client.c:
# the creation and every PATCH over one kept-alive connection, as browsers
# and tus-js-client send them); the POST (b) and the DELETEs one
# build/http-send (bench/http_send.c).  Both send bodies from the file with
# sendfile (why not curl is in http_send.c's header): one copy per byte.  Before each leg: sync, and up to 5 s
# waiting for a quiet machine (wait_quiet).  Server memory: assetd's VmRSS
# before each tus upload and its VmHWM after (the peak reset through
# /proc/PID/clear_refs); the largest growth is reported.  Prints one line:
#   tus: ... medians: assetd tus N MiB/s, POST M MiB/s, @tus/server K MiB/s;
#   ratio tus/POST R (target >= 0.9), assetd/@tus/server R2, RSS growth G MiB (target <= 32)
# Exit 0 whether or not a target is met; 2 if something is broken.
#
# Needs Node.js and bench/tus-server/node_modules (scripts/install-deps.sh
# --bench), and a C compiler for build/http-send and build/tus-client (built
# on first use).
#
# Environment knobs: TUS_BENCH_MIB [2048]  TUS_CHUNK_MIB [64]  TUS_ROUNDS [5]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

TUS_BENCH_MIB=${TUS_BENCH_MIB:-2048}
TUS_CHUNK_MIB=${TUS_CHUNK_MIB:-64}
TUS_ROUNDS=${TUS_ROUNDS:-5}
TARGET_RATIO=0.9
TARGET_RSS_MIB=32
SIZE=$((TUS_BENCH_MIB * 1024 * 1024))
CHUNK=$((TUS_CHUNK_MIB * 1024 * 1024))
((SIZE > 0 && CHUNK > 0 && TUS_ROUNDS > 0 && TUS_ROUNDS <= 50)) ||
  die "TUS_BENCH_MIB and TUS_CHUNK_MIB must be > 0, TUS_ROUNDS 1..50"
NPATCH=$(((SIZE + CHUNK - 1) / CHUNK))
TUS_SERVER_DIR=$BENCH_ROOT/bench/tus-server
SEND=$BENCH_ROOT/build/http-send
TUS_CLIENT=$BENCH_ROOT/build/tus-client

need node dd sha256sum awk curl sync
[[ -d $TUS_SERVER_DIR/node_modules/@tus/server && -d $TUS_SERVER_DIR/node_modules/@tus/file-store ]] ||
  die "@tus/server is not installed: scripts/install-deps.sh --bench (npm ci in bench/tus-server)"
make -C "$BENCH_ROOT" --no-print-directory build/http-send build/tus-client >&2 || die "cannot build build/http-send and build/tus-client"
bench_init tus

# Room for the source, one upload at a time (each is removed after its
# round), the warm-up copy, and a margin.
avail_kib=$(df -Pk "$BENCH_TMP" | awk 'NR == 2 { print $4 }')
((avail_kib > 3 * SIZE / 1024 + 1048576)) ||
  die "need $((3 * TUS_BENCH_MIB + 1024)) MiB free in $BENCH_TMP, have $((avail_kib / 1024)) MiB"

SRC=$BENCH_TMP/source.bin
note "writing a $TUS_BENCH_MIB MiB file from /dev/urandom in $BENCH_TMP"
head -c "$SIZE" /dev/urandom >"$SRC"
sync
SRC_SHA=$(sha256sum "$SRC" | awk '{ print $1 }')   # also warms the page cache
dd if="$SRC" of="$BENCH_TMP/warmup.out" bs=1M conv=fsync status=none || die "dd warm-up failed"
rm -f "$BENCH_TMP/warmup.out"

# ---- the servers ----------------------------------------------------------
start_assetd "$BENCH_TMP/assetd" --max-upload 4G --workers 0 "$@"
AUTH="Authorization: Bearer $ASSETD_TOKEN"
note "assetd pid $ASSETD_PID on :$ASSETD_PORT, args: --max-upload 4G --workers 0 ${*:-}"

# start_tus_server DIR: bench/tus-server/server.mjs storing in DIR/files, on
# a port it picks itself.  Sets TUSD_PID, TUSD_PORT.
start_tus_server() {
  local dir=$1 i
  mkdir -p "$dir/files"
  : >"$dir/server.log"
  "${SERVER_WRAP[@]}" node "$TUS_SERVER_DIR/server.mjs" "$dir/files" >"$dir/server.log" 2>&1 &
  TUSD_PID=$!
  BENCH_PIDS+=("$TUSD_PID")
  TUSD_PORT=""
  for ((i = 0; i < 300; i++)); do           # up to 30 s
    TUSD_PORT=$(sed -n 's/^{"port":\([0-9][0-9]*\)}$/\1/p' "$dir/server.log" | head -n1 || true)
    [[ -n $TUSD_PORT ]] && break
    kill -0 "$TUSD_PID" 2>/dev/null || break
    nap 0.1
  done
  if [[ -z $TUSD_PORT ]]; then
    cat "$dir/server.log" >&2
    die "@tus/server did not start (no port line on its output)"
  fi
}
start_tus_server "$BENCH_TMP/tusd"
TUSD_FILES=$BENCH_TMP/tusd/files
note "@tus/server $(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$TUS_SERVER_DIR/node_modules/@tus/server/package.json")" \
     "+ @tus/file-store $(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$TUS_SERVER_DIR/node_modules/@tus/file-store/package.json")," \
     "node $(node -v), pid $TUSD_PID on :$TUSD_PORT"

# ---- one request, and its answer ------------------------------------------
# The upload loops fork nothing but the client: answers are parsed with bash
# builtins (a fork and exec costs about a millisecond here, and a tus upload
# makes 33 requests where the plain POST makes one).
RESP=$BENCH_TMP/resp.http
declare -A HDR
# send PORT METHOD PATH OFFSET LENGTH [HEADER ...]: one request with bytes
# OFFSET.. of SRC as its body.  Sets CODE, HDR[lowercase name] and BODY.
send() {
  local port=$1 method=$2 path=$3 off=$4 len=$5 line name; shift 5
  "$SEND" "$port" "$method" "$path" "$SRC" "$off" "$len" "$@" >"$RESP" ||
    die "$method $path to :$port failed"
  CODE="" BODY="" HDR=()
  {
    IFS= read -r line || true
    line=${line%$'\r'}
    [[ $line == HTTP/1.?\ [0-9][0-9][0-9]* ]] && CODE=${line:9:3}
    while IFS= read -r line; do
      line=${line%$'\r'}
      [[ -z $line ]] && break
      name=${line%%:*}
      line=${line#*:}
      line=${line#"${line%%[! ]*}"}
      HDR[${name,,}]=$line
    done
    IFS= read -r -d '' BODY || true
  } <"$RESP"
}
# json_field NAME: a string or number field of the JSON on stdin.
json_field() { sed -n "s/.*\"$1\":\"\\{0,1\\}\\([^\",}]*\\).*/\\1/p"; }
# tus_upload PORT CREATE_PATH [HEADER ...]: the whole file through tus, by
# build/tus-client over one kept-alive connection (POST, then every PATCH,
# each answer checked there).  Sets TUS_PATH (the upload's path), ASSET_ID
# (assetd's Asset-Id, if any), LAST_PATCH_S (the last PATCH's seconds: it
# includes the completion).
tus_upload() {
  local port=$1 create=$2; shift 2
  local line last=0 patches=0
  "$TUS_CLIENT" "$port" "$create" "$SRC" "$CHUNK" "$@" >"$RESP" ||
    die "the tus upload to :$port$create failed"
  TUS_PATH="" ASSET_ID=""
  while IFS= read -r line; do
    case $line in
      "location "*) TUS_PATH=${line#location } ;;
      "patch "*) last=${line##* }; patches=$((patches + 1)) ;;
      "header "[Aa]sset-[Ii]d:*) ASSET_ID=${line#*: } ;;
    esac
  done <"$RESP"
  [[ $TUS_PATH == "$create"/* ]] || die "tus POST answered Location '$TUS_PATH'"
  ((patches == NPATCH)) || die "$patches PATCHes, want $NPATCH"
  LAST_PATCH_S=$(awk -v u="$last" 'BEGIN { printf "%.2f", u / 1e6 }')
}

# check_asset ID: assetd's answer for ID has the file's size and sha256.
check_asset() {
  local size sha
  http_get "/v1/assets/$1" || die "GET /v1/assets/$1 failed"
  [[ $HTTP_CODE == 200 ]] || die "GET /v1/assets/$1 answered $HTTP_CODE"
  size=$(json_field size <<<"$HTTP_BODY")
  sha=$(json_field sha256 <<<"$HTTP_BODY")
  [[ $size == "$SIZE" ]] || die "asset $1 has size '$size', want $SIZE"
  [[ $sha == "$SRC_SHA" ]] || die "asset $1 has sha256 '$sha', want $SRC_SHA"
}
delete_asset() {
  local code
  code=$(curl -sS --max-time 120 -X DELETE -H "$AUTH" -o /dev/null -w '%{http_code}' \
           "$ASSETD_URL/v1/assets/$1") || die "DELETE failed"
  [[ $code == 204 ]] || die "DELETE /v1/assets/$1 answered $code"
}

kib_field() { kib_of "$ASSETD_PID" "$1"; }
rss_start=$(kib_field VmRSS)
can_reset_hwm=0
if echo 5 2>/dev/null >"/proc/$ASSETD_PID/clear_refs"; then can_reset_hwm=1; fi
mibs() { awk -v s="$SIZE" -v t="$1" 'BEGIN { printf "%.1f", s / 1048576 / t }'; }
cores() { awk -v c="$1" -v hz="$TICK" -v t="$2" 'BEGIN { printf "%.2f", c / hz / t }'; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e6 }'; }
# stats: numbers on stdin -> "MEDIAN MIN MAX" (the mean of the two
# middle ones for an even count).
stats() {
  sort -g | awk '{ v[NR] = $1 } END {
    m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.3f %.3f %.3f\n", m, v[1], v[NR] }'
}

A=() B=() C=() CF=() RAB=() RAC=() GROWTH=() LASTP=()
for ((r = 1; r <= TUS_ROUNDS; r++)); do
  # --- a) assetd, tus ---
  sync
  wait_quiet 10 "assetd tus upload"
  ((can_reset_hwm)) && echo 5 >"/proc/$ASSETD_PID/clear_refs"
  rss0=$(kib_field VmRSS)
  c0=$(cpu_ticks "$ASSETD_PID")
  t0=$(now_us)
  tus_upload "$ASSETD_PORT" /v1/tus "$AUTH"
  t1=$(now_us)
  c1=$(cpu_ticks "$ASSETD_PID")
  kill -0 "$ASSETD_PID" 2>/dev/null || die "assetd died during the tus upload"
  hwm=$(kib_field VmHWM)
  secs=$(elapsed "$t0" "$t1")
  [[ -n $ASSET_ID ]] || die "the last PATCH named no Asset-Id"
  check_asset "$ASSET_ID"
  growth=$((hwm - rss0))
  a=$(mibs "$secs"); A+=("$a"); GROWTH+=("$growth"); LASTP+=("$LAST_PATCH_S")
  note "round $r: a) assetd tus  $(fmt %.2f "$secs") s = $a MiB/s (last PATCH $LAST_PATCH_S s;" \
       "CPU assetd $(cores $((c1 - c0)) "$secs") cores); RSS $(mib "$rss0") MiB before, peak $(mib "$hwm"), after $(mib "$(kib_field VmRSS)")"
  delete_asset "$ASSET_ID"

  # --- b) assetd, one plain POST ---
  sync
  wait_quiet 10 "assetd POST"
  c0=$(cpu_ticks "$ASSETD_PID")
  t0=$(now_us)
  send "$ASSETD_PORT" POST "/v1/assets?filename=big.bin" 0 "$SIZE" "$AUTH" \
       "Content-Type: application/octet-stream"
  t1=$(now_us)
  c1=$(cpu_ticks "$ASSETD_PID")
  [[ $CODE == 201 ]] || { cat "$RESP" >&2; die "POST /v1/assets answered $CODE"; }
  secs=$(elapsed "$t0" "$t1")
  id=$(json_field id <<<"$BODY")
  [[ -n $id ]] || die "POST /v1/assets answered no id"
  check_asset "$id"
  b=$(mibs "$secs"); B+=("$b")
  note "round $r: b) assetd POST $(fmt %.2f "$secs") s = $b MiB/s (CPU assetd $(cores $((c1 - c0)) "$secs") cores)"
  delete_asset "$id"

  # --- c) @tus/server, tus ---
  sync
  wait_quiet 10 "@tus/server upload"
  rss0=$(kib_of "$TUSD_PID" VmRSS)
  c0=$(cpu_ticks "$TUSD_PID")
  t0=$(now_us)
  tus_upload "$TUSD_PORT" /files
  t1=$(now_us)
  c1=$(cpu_ticks "$TUSD_PID")
  sync "$TUSD_FILES/${TUS_PATH##*/}" || die "sync of @tus/server's file failed"
  t2=$(now_us)
  kill -0 "$TUSD_PID" 2>/dev/null || die "@tus/server died during the upload"
  secs=$(elapsed "$t0" "$t1")
  fsecs=$(elapsed "$t0" "$t2")
  file=$TUSD_FILES/${TUS_PATH##*/}
  [[ $(stat -c %s "$file") == "$SIZE" ]] || die "@tus/server's file has $(stat -c %s "$file") bytes, want $SIZE"
  if ((r == 1)); then
    [[ $(sha256sum "$file" | awk '{ print $1 }') == "$SRC_SHA" ]] || die "@tus/server's file differs"
  fi
  c=$(mibs "$secs"); C+=("$c"); cf=$(mibs "$fsecs"); CF+=("$cf")
  note "round $r: c) @tus/server $(fmt %.2f "$secs") s = $c MiB/s, c+fsync $(fmt %.2f "$fsecs") s = $cf MiB/s" \
       "(CPU node $(cores $((c1 - c0)) "$secs") cores); node RSS $(mib "$rss0") MiB before, after $(mib "$(kib_of "$TUSD_PID" VmRSS)")"
  send "$TUSD_PORT" DELETE "$TUS_PATH" 0 0 "Tus-Resumable: 1.0.0"
  [[ $CODE == 204 ]] || die "DELETE $TUS_PATH on @tus/server answered $CODE"
  [[ ! -e $file ]] || die "@tus/server kept $file after DELETE"

  RAB+=("$(ratio "$a" "$b")"); RAC+=("$(ratio "$a" "$c")")
  note "round $r: a/b $(ratio "$a" "$b"), a/c $(ratio "$a" "$c")"
done

rss_end=$(kib_field VmRSS)
stop_assetd
rm -f "$SRC"

read -r ma mina maxa < <(printf '%s\n' "${A[@]}" | stats)
read -r mb minb maxb < <(printf '%s\n' "${B[@]}" | stats)
read -r mc minc maxc < <(printf '%s\n' "${C[@]}" | stats)
read -r mcf _ _ < <(printf '%s\n' "${CF[@]}" | stats)
read -r _ minrab maxrab < <(printf '%s\n' "${RAB[@]}" | stats)
read -r _ minrac maxrac < <(printf '%s\n' "${RAC[@]}" | stats)
read -r _ _ maxg < <(printf '%s\n' "${GROWTH[@]}" | stats)
read -r mlast _ _ < <(printf '%s\n' "${LASTP[@]}" | stats)
hwm_note=""
((can_reset_hwm)) || hwm_note=" (peak not resettable: growth since the first upload)"
echo "tus: $TUS_BENCH_MIB MiB in $TUS_CHUNK_MIB MiB PATCHes, medians of $TUS_ROUNDS rounds:" \
     "assetd tus $(fmt %.0f "$ma") MiB/s ($(fmt %.0f "$mina")-$(fmt %.0f "$maxa"); last PATCH $(fmt %.2f "$mlast") s)," \
     "assetd POST $(fmt %.0f "$mb") MiB/s ($(fmt %.0f "$minb")-$(fmt %.0f "$maxb"))," \
     "@tus/server $(fmt %.0f "$mc") MiB/s ($(fmt %.0f "$minc")-$(fmt %.0f "$maxc"); $(fmt %.0f "$mcf") with an fsync);" \
     "ratio tus/POST $(ratio "$ma" "$mb") (rounds $(fmt %.2f "$minrab")-$(fmt %.2f "$maxrab"); target >= $TARGET_RATIO)," \
     "assetd/@tus/server $(ratio "$ma" "$mc") (rounds $(fmt %.2f "$minrac")-$(fmt %.2f "$maxrac"));" \
     "server RSS growth $(mib "$maxg") MiB (target <= $TARGET_RSS_MIB)$hwm_note, RSS $(mib "$rss_start") -> $(mib "$rss_end") MiB"
exit 0
