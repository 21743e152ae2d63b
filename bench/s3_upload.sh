#!/usr/bin/env bash
# Upload to the S3 store: 1 GiB through assetd into s3rver, against
# `aws s3 cp` of the same file to the same s3rver as the reference.
#
#   bench/s3_upload.sh [extra 'assetd serve' options]
#
# Starts a private s3rver (tests/node_modules; its objects in the temp dir,
# same filesystem as the source file), creates the bucket, and starts
# assetd --store s3://bench/assetd --s3-endpoint <s3rver> --workers 0
# --max-upload 2G (no worker: nothing reads the object back during the
# timing).  Writes a 1 GiB file from /dev/urandom once, then for
# S3_ROUNDS rounds, alternating:
#   - assetd: `curl -T FILE` POST /v1/assets?filename=big.bin (raw body with
#     Content-Length), timed as the wall time of the curl process, until the
#     201 (the multipart upload completed in s3rver, the row committed);
#     checks the answer's size and sha256 and that s3rver has the object at
#     that size, then deletes the asset (and so the object);
#   - aws: `aws s3 cp FILE s3://bench/ref`, timed as the wall time of the aws
#     process (Python start-up included; measured apart and printed), with
#     its multipart settings written out in a private config file:
#     S3_AWS_CHUNK [8MB] parts, S3_AWS_CONCURRENCY [10] in flight (aws-cli's
#     defaults); checks the object's size in s3rver, then removes it.
# Both clients read the file from the page cache and send it over loopback;
# assetd sends 8 MiB parts, up to 3 at a time (the next part arrives meanwhile).
# Keeps the best of each.  Server memory: assetd's VmRSS before each upload
# and the peak VmHWM after it (the peak is reset before each round through
# /proc/PID/clear_refs); reports the largest growth.  Prints one line:
#   s3_upload: assetd N MiB/s, aws s3 cp M MiB/s, ratio R (target >= 1.0), server RSS growth G MiB (target <= 64) ...
# Exit 0 whether or not a target is met; 2 if something is broken.
#
# Needs aws-cli (`aws` on PATH: Debian's awscli, `scripts/install-deps.sh
# --bench`, or pip's), Node.js and tests/node_modules (s3rver).
#
# Environment knobs: S3_UPLOAD_MIB [1024]  S3_ROUNDS [3]
#   S3_AWS_CHUNK [8MB]  S3_AWS_CONCURRENCY [10]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

S3_UPLOAD_MIB=${S3_UPLOAD_MIB:-1024}
S3_ROUNDS=${S3_ROUNDS:-3}
S3_AWS_CHUNK=${S3_AWS_CHUNK:-8MB}
S3_AWS_CONCURRENCY=${S3_AWS_CONCURRENCY:-10}
TARGET_RATIO=1.0
TARGET_RSS_MIB=64
SIZE=$((S3_UPLOAD_MIB * 1024 * 1024))
BUCKET=bench

need curl sha256sum awk
command -v aws >/dev/null 2>&1 ||
  die "'aws' (aws-cli) is not installed: scripts/install-deps.sh --bench (Debian's awscli)"
bench_init s3upload

# Room for the source, s3rver's copy of the parts and the assembled object
# (both live until the upload completes), with a margin.
avail_kib=$(df -Pk "$BENCH_TMP" | awk 'NR == 2 { print $4 }')
((avail_kib > 3 * SIZE / 1024 + 1048576)) ||
  die "need $((3 * S3_UPLOAD_MIB + 1024)) MiB free in $BENCH_TMP, have $((avail_kib / 1024)) MiB"

# ---- s3rver and the bucket ------------------------------------------------
start_s3rver "$BENCH_TMP/s3rver"
code=$(curl -sS --max-time 30 -X PUT -o /dev/null -w '%{http_code}' "$S3RVER_URL/$BUCKET") ||
  die "cannot reach s3rver to create the bucket"
[[ $code == 200 ]] || die "creating the bucket answered $code"
note "s3rver pid $S3RVER_PID on :$S3RVER_PORT, objects in $BENCH_TMP/s3rver/data"

# Credentials for both clients: s3rver knows the access key S3RVER and
# checks no signature (any secret).
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_PROFILE
export AWS_CONFIG_FILE=$BENCH_TMP/aws.config AWS_SHARED_CREDENTIALS_FILE=$BENCH_TMP/aws.credentials
cat >"$AWS_CONFIG_FILE" <<EOF
[default]
region = us-east-1
s3 =
  multipart_threshold = 8MB
  multipart_chunksize = $S3_AWS_CHUNK
  max_concurrent_requests = $S3_AWS_CONCURRENCY
EOF
: >"$AWS_SHARED_CREDENTIALS_FILE"
export AWS_PAGER=""   # aws-cli v2 would page; v1 ignores it
AWS=(aws --endpoint-url "$S3RVER_URL")
aws_version=$(aws --version 2>&1 | head -n1)

# object_size KEY: the object's size in s3rver ("" if it has none).
object_size() {
  curl -sS --max-time 30 -I "$S3RVER_URL/$BUCKET/$1" 2>/dev/null |
    awk 'tolower($1) == "content-length:" { sub(/\r$/, "", $2); print $2 }'
}

# ---- the source -----------------------------------------------------------
SRC=$BENCH_TMP/source.bin
note "writing a $S3_UPLOAD_MIB MiB file from /dev/urandom in $BENCH_TMP"
head -c "$SIZE" /dev/urandom >"$SRC"
sync
SRC_SHA=$(sha256sum "$SRC" | awk '{ print $1 }')   # also warms the page cache

# ---- assetd ---------------------------------------------------------------
start_assetd "$BENCH_TMP/assetd" --store "s3://$BUCKET/assetd" --s3-endpoint "$S3RVER_URL" \
  --workers 0 --max-upload 2G "$@"
AUTH="Authorization: Bearer $ASSETD_TOKEN"
note "assetd pid $ASSETD_PID on :$ASSETD_PORT, args: --store s3://$BUCKET/assetd --workers 0 --max-upload 2G ${*:-}"
note "aws: $aws_version, multipart_chunksize $S3_AWS_CHUNK, max_concurrent_requests $S3_AWS_CONCURRENCY"

# aws-cli's own start-up (Python imports), part of each aws timing.
t0=$(now_us)
"${AWS[@]}" s3 ls "s3://$BUCKET/none/" >/dev/null 2>&1 || true
t1=$(now_us)
AWS_START=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e6 }')
note "aws-cli start-up + one request: $AWS_START s (included in its timings)"

kib_field() { kib_of "$ASSETD_PID" "$1"; }
rss_start=$(kib_field VmRSS)
can_reset_hwm=0
if echo 5 2>/dev/null >"/proc/$ASSETD_PID/clear_refs"; then can_reset_hwm=1; fi
mibs() { awk -v s="$SIZE" -v t="$1" 'BEGIN { printf "%.1f", s / 1048576 / t }'; }
cores() { awk -v c="$1" -v hz="$TICK" -v t="$2" 'BEGIN { printf "%.2f", c / hz / t }'; }

best_a=0 best_w=0 max_growth_kib=0 best_a_secs=0 best_w_secs=0
for ((r = 1; r <= S3_ROUNDS; r++)); do
  # --- assetd ---
  sync
  wait_quiet 10 "assetd upload"
  ((can_reset_hwm)) && echo 5 >"/proc/$ASSETD_PID/clear_refs"
  rss0=$(kib_field VmRSS)
  c0=$(cpu_ticks "$ASSETD_PID"); s0=$(cpu_ticks "$S3RVER_PID")
  t0=$(now_us)
  code=$(curl -sS --max-time 900 -X POST -H "$AUTH" -H 'Content-Type: application/octet-stream' \
           -T "$SRC" -o "$BENCH_TMP/resp.json" -w '%{http_code}' \
           "$ASSETD_URL/v1/assets?filename=big.bin") || die "upload request failed"
  t1=$(now_us)
  c1=$(cpu_ticks "$ASSETD_PID"); s1=$(cpu_ticks "$S3RVER_PID")
  kill -0 "$ASSETD_PID" 2>/dev/null || die "assetd died during the upload"
  hwm=$(kib_field VmHWM)
  body=$(<"$BENCH_TMP/resp.json")
  [[ $code == 201 ]] || die "upload answered $code: $body"
  got_size=$(sed -n 's/.*"size":\([0-9]*\).*/\1/p' <<<"$body")
  got_sha=$(sed -n 's/.*"sha256":"\([0-9a-f]*\)".*/\1/p' <<<"$body")
  id=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' <<<"$body")
  [[ $got_size == "$SIZE" ]] || die "upload answered size '$got_size', want $SIZE"
  [[ $got_sha == "$SRC_SHA" ]] || die "upload answered sha256 '$got_sha', want $SRC_SHA"
  osize=$(object_size "assetd/$id")
  [[ $osize == "$SIZE" ]] || die "s3rver has assetd/$id at size '$osize', want $SIZE"
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')
  growth=$((hwm - rss0))
  ((growth > max_growth_kib)) && max_growth_kib=$growth
  up=$(mibs "$secs")
  note "round $r: assetd  $(fmt %.2f "$secs") s = $up MiB/s (CPU: assetd $(cores $((c1 - c0)) "$secs"), s3rver $(cores $((s1 - s0)) "$secs") cores); RSS $(mib "$rss0") MiB before, peak $(mib "$hwm"), after $(mib "$(kib_field VmRSS)")"
  if ge "$up" "$best_a"; then best_a=$up; best_a_secs=$secs; fi
  code=$(curl -sS --max-time 120 -X DELETE -H "$AUTH" -o /dev/null -w '%{http_code}' \
           "$ASSETD_URL/v1/assets/$id") || die "DELETE failed"
  [[ $code == 204 ]] || die "DELETE answered $code"

  # --- aws s3 cp: same file, same s3rver ---
  sync
  wait_quiet 10 "aws upload"
  s0=$(cpu_ticks "$S3RVER_PID")
  t0=$(now_us)
  "${AWS[@]}" s3 cp --only-show-errors "$SRC" "s3://$BUCKET/ref" >"$BENCH_TMP/aws.out" 2>&1 ||
    { cat "$BENCH_TMP/aws.out" >&2; die "aws s3 cp failed"; }
  t1=$(now_us)
  s1=$(cpu_ticks "$S3RVER_PID")
  osize=$(object_size ref)
  [[ $osize == "$SIZE" ]] || die "s3rver has ref at size '$osize', want $SIZE"
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')
  wr=$(mibs "$secs")
  note "round $r: aws cp  $(fmt %.2f "$secs") s = $wr MiB/s (CPU: s3rver $(cores $((s1 - s0)) "$secs") cores)"
  if ge "$wr" "$best_w"; then best_w=$wr; best_w_secs=$secs; fi
  "${AWS[@]}" s3 rm --only-show-errors "s3://$BUCKET/ref" >/dev/null 2>&1 || die "aws s3 rm failed"
done

rss_end=$(kib_field VmRSS)
stop_assetd
rm -f "$SRC"

hwm_note=""
((can_reset_hwm)) || hwm_note=" (peak not resettable: growth since the first upload)"
echo "s3_upload: $S3_UPLOAD_MIB MiB, assetd $(fmt %.2f "$best_a_secs") s = $(fmt %.0f "$best_a") MiB/s," \
     "aws s3 cp ($S3_AWS_CHUNK x $S3_AWS_CONCURRENCY) $(fmt %.2f "$best_w_secs") s = $(fmt %.0f "$best_w") MiB/s," \
     "ratio $(ratio "$best_a" "$best_w") (target >= $TARGET_RATIO), server RSS growth" \
     "$(fmt %.1f "$(awk -v g="$max_growth_kib" 'BEGIN { print g / 1024 }')") MiB (target <= $TARGET_RSS_MIB)$hwm_note," \
     "RSS $(mib "$rss_start") -> $(mib "$rss_end") MiB after $S3_ROUNDS uploads"
exit 0
