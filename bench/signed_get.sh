#!/usr/bin/env bash
# Signed download links on the disk store: what checking a link's signature
# costs per request, against the keyed download of the same bytes.
#
#   bench/signed_get.sh [extra 'assetd serve' options]
#
# Starts assetd (disk store, fresh data dir, access log off, --workers 0),
# uploads one SIGNED_KIB KiB asset, and asks POST /v1/assets/{id}/links for a
# link valid for an hour ({"expires_in":3600}).  Then runs the same wrk load
# (-t2 -c64 -d10s, keep-alive) against
#   - keyed:  GET /v1/assets/{id}/content with Authorization: Bearer KEY
#             (API-key check through the key cache, the asset's row, the
#             bytes by sendfile);
#   - signed: GET /v1/store/{id}?X-Amz-... without a key (the query's SigV4
#             signature and expiry checked, the asset's row, the same
#             bytes by sendfile).
# Both answers are checked byte for byte first.  BENCH_ROUNDS rounds
# alternate the two, after a short warm-up of each; keeps the best of each.
# Also reports assetd's CPU per request (from /proc, least of the rounds),
# steadier than req/s when other work shares the machine.  Prints one line:
#   signed_get: keyed N req/s, signed M req/s, cost ratio keyed/signed R (target <= 1.1); assetd CPU per request ...
# Exit 0 whether or not the target is met; 2 if something is broken (assetd
# did not start, the upload or the link failed, wrk saw non-2xx answers).
#
# Environment knobs (defaults in brackets):
#   WRK_THREADS [2] WRK_CONNS [64] WRK_DURATION [10s] WRK_WARMUP [2s]
#   BENCH_ROUNDS [3] SIGNED_KIB [4]
#   BENCH_PIN [none]: none = every process may run on both cores;
#                     split = assetd on CPU 0, wrk on CPU 1 (taskset).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-64}
WRK_DURATION=${WRK_DURATION:-10s}
WRK_WARMUP=${WRK_WARMUP:-2s}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
SIGNED_KIB=${SIGNED_KIB:-4}
BENCH_PIN=${BENCH_PIN:-none}
TARGET=1.1

need wrk curl cmp ps awk
bench_pin

bench_init signed

start_assetd "$BENCH_TMP/assetd" --workers 0 "$@"
AUTH="Authorization: Bearer $ASSETD_TOKEN"

# A few KiB of text: stored as is, served inline.
head -c $((SIGNED_KIB * 1024 * 3 / 4)) /dev/urandom | base64 -w 76 | head -c $((SIGNED_KIB * 1024)) >"$BENCH_TMP/asset.txt"
resp=$(curl -sS --max-time 30 -X POST -H "$AUTH" --data-binary @"$BENCH_TMP/asset.txt" \
         -w '\n%{http_code}' "$ASSETD_URL/v1/assets?filename=asset.txt") || die "upload request failed"
code=${resp##*$'\n'} body=${resp%$'\n'*}
[[ $code == 201 ]] || die "upload answered $code: $body"
ASSET_ID=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' <<<"$body")
[[ -n $ASSET_ID ]] || die "no id in upload answer: $body"

resp=$(curl -sS --max-time 30 -X POST -H "$AUTH" -H 'Content-Type: application/json' \
         --data '{"expires_in":3600}' -w '\n%{http_code}' "$ASSETD_URL/v1/assets/$ASSET_ID/links") ||
  die "link request failed"
code=${resp##*$'\n'} body=${resp%$'\n'*}
[[ $code == 201 ]] || die "POST /v1/assets/$ASSET_ID/links answered $code: $body"
SIGNED_URL=$(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' <<<"$body" | sed 's,\\/,/,g')
[[ $SIGNED_URL == "$ASSETD_URL/v1/store/$ASSET_ID?"* ]] || die "unexpected link: $body"
KEYED_URL=$ASSETD_URL/v1/assets/$ASSET_ID/content

# Both routes must answer the asset's bytes, and the signed one must need
# its signature (a tampered link is refused), or the comparison means nothing.
code=$(curl -sS --max-time 10 -H "$AUTH" -o "$BENCH_TMP/keyed.out" -w '%{http_code}' "$KEYED_URL") || die "keyed GET failed"
[[ $code == 200 ]] && cmp -s "$BENCH_TMP/asset.txt" "$BENCH_TMP/keyed.out" || die "keyed GET answered $code or other bytes"
code=$(curl -sS --max-time 10 -o "$BENCH_TMP/signed.out" -w '%{http_code}' "$SIGNED_URL") || die "signed GET failed"
[[ $code == 200 ]] && cmp -s "$BENCH_TMP/asset.txt" "$BENCH_TMP/signed.out" || die "signed GET answered $code or other bytes"
TAMPERED=$(sed 's/\(X-Amz-Signature=\)0/\11/; t; s/\(X-Amz-Signature=\)./\10/' <<<"$SIGNED_URL")
[[ $TAMPERED != "$SIGNED_URL" ]] || die "no X-Amz-Signature in the link"
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$TAMPERED") || die "tampered GET failed"
[[ $code == 403 ]] || die "a tampered link answered $code, want 403"
note "assetd pid $ASSETD_PID on :$ASSETD_PORT, asset $SIGNED_KIB KiB, args: --workers 0 ${*:-}; pinning: $BENCH_PIN"
note "signed link: ${SIGNED_URL:0:120}..."

# µs of assetd CPU per request
us_per() { awk -v c="$1" -v r="$2" 'BEGIN { printf "%.1f", c / r * 1e6 }'; }

note "warm-up ($WRK_WARMUP each)"
run_wrk keyed "$KEYED_URL" "$ASSETD_PID" "$WRK_WARMUP" "$AUTH" >/dev/null
run_wrk signed "$SIGNED_URL" "$ASSETD_PID" "$WRK_WARMUP" >/dev/null

best_k=0 best_s=0 us_k=1e9 us_s=1e9
for ((r = 1; r <= BENCH_ROUNDS; r++)); do
  wait_quiet 6 "round $r"
  read -r rps scpu wcpu <<<"$(run_wrk keyed "$KEYED_URL" "$ASSETD_PID" "$WRK_DURATION" "$AUTH")"
  note "round $r: keyed  $(fmt %.0f "$rps") req/s (CPU: assetd $scpu cores = $(us_per "$scpu" "$rps") µs/req, wrk $wcpu cores)"
  ge "$rps" "$best_k" && best_k=$rps
  u=$(us_per "$scpu" "$rps"); ge "$us_k" "$u" && us_k=$u
  read -r rps scpu wcpu <<<"$(run_wrk signed "$SIGNED_URL" "$ASSETD_PID" "$WRK_DURATION")"
  note "round $r: signed $(fmt %.0f "$rps") req/s (CPU: assetd $scpu cores = $(us_per "$scpu" "$rps") µs/req, wrk $wcpu cores)"
  ge "$rps" "$best_s" && best_s=$rps
  u=$(us_per "$scpu" "$rps"); ge "$us_s" "$u" && us_s=$u
done

stop_assetd

echo "signed_get: keyed $(fmt %.0f "$best_k") req/s, signed $(fmt %.0f "$best_s") req/s," \
     "cost ratio keyed/signed $(ratio "$best_k" "$best_s") (target <= $TARGET);" \
     "assetd CPU per request (least of the rounds) keyed $us_k µs, signed $us_s µs, ratio $(ratio "$us_s" "$us_k");" \
     "$SIGNED_KIB KiB asset${*:+ [assetd $*]}"
exit 0
