#!/usr/bin/env bash
# Large raw upload: 2 GiB over loopback into assetd, against the disk's own
# write speed (dd conv=fsync) as the reference.
#
#   bench/upload.sh [extra 'assetd serve' options]
#
# Starts assetd (--max-upload 4G, access log off) on a fresh data dir, writes
# a 2 GiB source file into the same temp dir (same filesystem as the data
# dir, so curl reads from the page cache and no generator competes for CPU),
# does one untimed dd of it as a page-cache warm-up, then for UPLOAD_ROUNDS
# rounds:
#   - POSTs it with `curl -T FILE` as a raw body; the time is curl's
#     time_total, i.e. until the 201 (bytes fsynced, row committed); checks
#     the answer's size and sha256, then deletes the asset;
#   - copies it with `dd bs=1M conv=fsync` next to the data dir (timed to the
#     end of the fsync) and deletes the copy.
# Keeps the best of each.  Server memory: VmRSS before each upload and the
# peak VmHWM after it (the peak is reset before each round through
# /proc/PID/clear_refs); reports the largest growth.  Prints one line:
#   upload: 2048 MiB in T s = N MiB/s (target >= 700), server RSS growth G MiB (target < 32), ...
# (MiB = 2^20 bytes throughout; the targets are read in MiB too, the stricter
# reading.)
# Exit 0 whether or not a target is met; 2 if something is broken.
#
# Environment knobs: UPLOAD_MIB [2048]  UPLOAD_ROUNDS [3]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

UPLOAD_MIB=${UPLOAD_MIB:-2048}
UPLOAD_ROUNDS=${UPLOAD_ROUNDS:-3}
TARGET_MIBS=700
TARGET_RSS_MIB=32
SIZE=$((UPLOAD_MIB * 1024 * 1024))

need curl dd sha256sum awk
bench_init upload

# Room for the source, one upload (plus its temp file while it is in flight)
# and one dd copy, with a margin.
avail_kib=$(df -Pk "$BENCH_TMP" | awk 'NR == 2 { print $4 }')
((avail_kib > 3 * SIZE / 1024 + 1048576)) ||
  die "need $((3 * UPLOAD_MIB + 1024)) MiB free in $BENCH_TMP, have $((avail_kib / 1024)) MiB"

SRC=$BENCH_TMP/source.bin
note "writing a $UPLOAD_MIB MiB source file in $BENCH_TMP"
head -c "$SIZE" /dev/zero >"$SRC"
sync
SRC_SHA=$(sha256sum "$SRC" | awk '{ print $1 }')   # also warms the page cache

# Warm-up, not timed: on a VM, page-cache pages the guest has never touched
# are slow to fault in on first use; writing (and freeing) one file's worth
# first makes round 1 less of an outlier for both contenders.
dd if="$SRC" of="$BENCH_TMP/warmup.out" bs=1M conv=fsync status=none || die "dd warm-up failed"
rm -f "$BENCH_TMP/warmup.out"

start_assetd "$BENCH_TMP/assetd" --max-upload 4G "$@"
AUTH="Authorization: Bearer $ASSETD_TOKEN"
note "assetd pid $ASSETD_PID on :$ASSETD_PORT, args: --max-upload 4G ${*:-}"

kib_field() { kib_of "$ASSETD_PID" "$1"; }
rss_start=$(kib_field VmRSS)
can_reset_hwm=0
if echo 5 2>/dev/null >"/proc/$ASSETD_PID/clear_refs"; then can_reset_hwm=1; fi

now() { date +%s.%N; }
best_up=0 best_dd=0 max_growth_kib=0
for ((r = 1; r <= UPLOAD_ROUNDS; r++)); do
  # --- assetd ---
  sync
  ((can_reset_hwm)) && echo 5 >"/proc/$ASSETD_PID/clear_refs"
  rss0=$(kib_field VmRSS)
  c0=$(cpu_ticks "$ASSETD_PID")
  out=$( TIMEFORMAT='%U %S'; { time curl -sS --max-time 900 -X POST -H "$AUTH" -H 'Content-Type: application/octet-stream' \
          -T "$SRC" -o "$BENCH_TMP/resp.json" -w '%{http_code} %{time_total}' \
          "$ASSETD_URL/v1/assets?filename=big.bin"; } 2>"$BENCH_TMP/curl.time" ) ||
    { cat "$BENCH_TMP/curl.time" >&2; die "upload request failed"; }
  c1=$(cpu_ticks "$ASSETD_PID")
  kill -0 "$ASSETD_PID" 2>/dev/null || die "assetd died during the upload"
  hwm=$(kib_field VmHWM)
  read -r code secs <<<"$out"
  body=$(<"$BENCH_TMP/resp.json")
  [[ $code == 201 ]] || die "upload answered $code: $body"
  got_size=$(sed -n 's/.*"size":\([0-9]*\).*/\1/p' <<<"$body")
  got_sha=$(sed -n 's/.*"sha256":"\([0-9a-f]*\)".*/\1/p' <<<"$body")
  id=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' <<<"$body")
  [[ $got_size == "$SIZE" ]] || die "upload answered size '$got_size', want $SIZE"
  [[ $got_sha == "$SRC_SHA" ]] || die "upload answered sha256 '$got_sha', want $SRC_SHA"
  growth=$((hwm - rss0))
  ((growth > max_growth_kib)) && max_growth_kib=$growth
  up=$(awk -v s="$SIZE" -v t="$secs" 'BEGIN { printf "%.1f", s / 1048576 / t }')
  srv_cpu=$(awk -v c=$((c1 - c0)) -v hz="$TICK" -v t="$secs" 'BEGIN { printf "%.2f", c / hz / t }')
  curl_cpu=$(awk -v t="$secs" '{ printf "%.2f", ($1 + $2) / t }' "$BENCH_TMP/curl.time")
  note "round $r: assetd $(fmt %.2f "$secs") s = $up MiB/s (CPU: assetd $srv_cpu cores, curl $curl_cpu); RSS $(mib "$rss0") MiB before, peak $(mib "$hwm") MiB, after $(mib "$(kib_field VmRSS)") MiB (anon $(mib "$(kib_field RssAnon)"), file $(mib "$(kib_field RssFile)"))"
  if ge "$up" "$best_up"; then best_up=$up; best_secs=$secs; fi
  code=$(curl -sS --max-time 60 -X DELETE -H "$AUTH" -o /dev/null -w '%{http_code}' \
           "$ASSETD_URL/v1/assets/$id") || die "DELETE failed"
  [[ $code == 204 ]] || die "DELETE answered $code"

  # --- dd reference: same bytes, same filesystem, fsync at the end ---
  sync
  t0=$(now)
  dd if="$SRC" of="$BENCH_TMP/dd.out" bs=1M conv=fsync status=none || die "dd failed"
  t1=$(now)
  rm -f "$BENCH_TMP/dd.out"
  ddr=$(awk -v s="$SIZE" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", s / 1048576 / (b - a) }')
  note "round $r: dd     $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s = $ddr MiB/s"
  ge "$ddr" "$best_dd" && best_dd=$ddr
done

rss_end=$(kib_field VmRSS)
stop_assetd
rm -f "$SRC"

hwm_note=""
((can_reset_hwm)) || hwm_note=" (peak not resettable: growth since the first upload)"
echo "upload: $UPLOAD_MIB MiB in $(fmt %.2f "$best_secs") s = $(fmt %.0f "$best_up") MiB/s" \
     "(target >= $TARGET_MIBS), server RSS growth $(fmt %.1f "$(awk -v g="$max_growth_kib" 'BEGIN { print g / 1024 }')") MiB" \
     "(target < $TARGET_RSS_MIB)$hwm_note, RSS $(mib "$rss_start") -> $(mib "$rss_end") MiB after $UPLOAD_ROUNDS uploads; disk dd conv=fsync $(fmt %.0f "$best_dd") MiB/s, ratio assetd/dd $(ratio "$best_up" "$best_dd")"
exit 0
