#!/usr/bin/env bash
# GET /v1/assets/{id} throughput: assetd vs nginx serving a 100-byte static file.
#
#   bench/get_asset.sh [extra 'assetd serve' options, e.g. --http-threads 4]
#
# Starts assetd (fresh data dir, access log off), uploads one small asset, then
# runs the same wrk load (-t2 -c64 -d10s, keep-alive, same Authorization
# header) against assetd's GET /v1/assets/{id} and against a private nginx
# (worker_processes 2, access_log off) serving a 100-byte file.  Runs
# BENCH_ROUNDS rounds alternating assetd, nginx and keeps the best of each.
# Prints one line:
#   get_asset: assetd N req/s, nginx M req/s, ratio R (target >= 1.0)
# Exit 0 whether or not the target is met; 2 if something is broken (a server
# did not start, the upload failed, wrk saw non-2xx answers).
#
# Environment knobs (defaults in brackets):
#   WRK_THREADS [2] WRK_CONNS [64] WRK_DURATION [10s] WRK_WARMUP [2s]
#   BENCH_ROUNDS [2] NGINX_WORKERS [2]
#   BENCH_PIN [none]: none = every process may run on both cores;
#                     split = servers on CPU 0, wrk on CPU 1 (taskset).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-64}
WRK_DURATION=${WRK_DURATION:-10s}
WRK_WARMUP=${WRK_WARMUP:-2s}
BENCH_ROUNDS=${BENCH_ROUNDS:-2}
NGINX_WORKERS=${NGINX_WORKERS:-2}
BENCH_PIN=${BENCH_PIN:-none}
TARGET=1.0

need wrk nginx curl ps awk
bench_pin

bench_init get

# ---- assetd ---------------------------------------------------------------
start_assetd "$BENCH_TMP/assetd" "$@"
AUTH="Authorization: Bearer $ASSETD_TOKEN"

head -c 100 /dev/urandom | base64 -w0 | head -c 100 >"$BENCH_TMP/small.txt"
resp=$(curl -sS --max-time 30 -X POST -H "$AUTH" --data-binary @"$BENCH_TMP/small.txt" \
         -w '\n%{http_code}' "$ASSETD_URL/v1/assets?filename=small.txt") || die "upload request failed"
code=${resp##*$'\n'}
body=${resp%$'\n'*}
[[ $code == 201 ]] || die "upload answered $code: $body"
ASSET_ID=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' <<<"$body")
[[ -n $ASSET_ID ]] || die "no id in upload answer: $body"
ASSETD_GET=$ASSETD_URL/v1/assets/$ASSET_ID
code=$(curl -sS --max-time 10 -H "$AUTH" -o "$BENCH_TMP/get.json" -w '%{http_code}' "$ASSETD_GET") || die "GET failed"
[[ $code == 200 ]] || die "GET $ASSETD_GET answered $code"
note "assetd pid $ASSETD_PID on :$ASSETD_PORT, GET body $(wc -c <"$BENCH_TMP/get.json") bytes, args: ${*:-(none)}"

# ---- nginx ----------------------------------------------------------------
mkdir -p "$BENCH_TMP/nginx/www"
head -c 100 "$BENCH_TMP/small.txt" >"$BENCH_TMP/nginx/www/asset.json"
start_nginx "$BENCH_TMP/nginx" "$NGINX_WORKERS"
NGINX_GET=$NGINX_URL/asset.json
code=$(curl -sS --max-time 10 -H "$AUTH" -o /dev/null -w '%{http_code} %{size_download}' "$NGINX_GET") || die "nginx GET failed"
[[ $code == "200 100" ]] || die "nginx GET answered '$code' (want '200 100')"
note "nginx pid $NGINX_PID on :$NGINX_PORT, $NGINX_WORKERS workers, pinning: $BENCH_PIN"

# ---- load -----------------------------------------------------------------
note "warm-up ($WRK_WARMUP each)"
run_wrk assetd "$ASSETD_GET" "$ASSETD_PID" "$WRK_WARMUP" "$AUTH" >/dev/null
run_wrk nginx "$NGINX_GET" "$NGINX_PID" "$WRK_WARMUP" "$AUTH" >/dev/null

best_a=0 best_n=0
for ((r = 1; r <= BENCH_ROUNDS; r++)); do
  res=$(run_wrk assetd "$ASSETD_GET" "$ASSETD_PID" "$WRK_DURATION" "$AUTH")
  read -r rps scpu wcpu <<<"$res"
  note "round $r: assetd $(fmt %.0f "$rps") req/s (CPU: assetd $scpu cores, wrk $wcpu cores)"
  ge "$rps" "$best_a" && best_a=$rps
  res=$(run_wrk nginx "$NGINX_GET" "$NGINX_PID" "$WRK_DURATION" "$AUTH")
  read -r rps scpu wcpu <<<"$res"
  note "round $r: nginx  $(fmt %.0f "$rps") req/s (CPU: nginx $scpu cores, wrk $wcpu cores)"
  ge "$rps" "$best_n" && best_n=$rps
done

stop_assetd
stop_nginx

echo "get_asset: assetd $(fmt %.0f "$best_a") req/s, nginx $(fmt %.0f "$best_n") req/s," \
     "ratio $(ratio "$best_a" "$best_n") (target >= $TARGET)${*:+ [assetd $*]}"
exit 0
