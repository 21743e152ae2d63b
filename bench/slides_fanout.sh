#!/usr/bin/env bash
# Slideshow control fan-out: one control request -> N listeners of one
# slideshow, assetd against the Node `ws` broadcast server (the reference of
# bench/events_fanout.sh) measured the same way in the same run.
#
#   bench/slides_fanout.sh [extra 'assetd serve' options]
#
# Target (issue #5): control -> 10,000 listeners, p99 delivery <= 100 ms.
#
# assetd: `serve --workers 1`; the deck (DECK, 45 pages) is uploaded to
# /api/v1/slideshow/upload and GET /api/v1/slideshow/ID.json polled until
# READY; then N listeners open ws://.../api/v1/slideshow/ID/listen (public)
# and each must first get the current state (slide 0).  Changes are
# POST /api/v1/slideshow/ID/control {"current":N} with the control token,
# N cycling over 1..44.
#
# Latency: the listener messages are {"id","current","updated"} and
# "updated" has second precision, so there is no timestamp to subtract from.
# Instead the script keeps the time it sent each control request (the
# wall clock just before curl is started, plus curl's time_pretransfer: when
# the request is about to be written; curl's fork, exec and start-up before
# its clock runs are inside the latency, so figures read a few ms high — the
# reference's send -> first receipt, 7-9 ms here, bounds it) and the listeners
# (bench/listeners.sh, in their CURRENTS mode) keep each change's receipt
# times (0.1 ms bins, same machine, same clock); latency = receipt - send.
# Every listener must get every change, in order (the "current" values of
# the phase, in sequence), within FANOUT_TIMEOUT, or the run breaks (exit 2).
#
# Per side and round, on a fresh server: N listeners in LISTENER_PROCS
# processes (CONNECT_BATCH handshakes at a time); WARMUP_CHANGES untimed
# changes (their fan-out times are printed: a fresh connection's first
# message costs more); then CHANGES changes, one every CHANGE_INTERVAL_MS ->
# p50/p99/max over N x CHANGES deliveries, and per change: send -> first
# receipt anywhere, first -> last receipt (the fan-out time).  Best (lowest
# p99) of FANOUT_ROUNDS rounds.
#
# The reference (bench/ws_reference_server.mjs): POST /event?current=N
# sends {"id","current","updated"} (the same shape and size) to every client
# and keeps it as the state new clients get first; driven by the same curl
# commands at the same rate, listened to by the same listeners.  It does no
# durability: assetd's change is a SQLite transaction (the row and the
# event), then the hub's fan-out.
#
# Prints one line:
#   slides_fanout: N listeners x E changes every I ms: assetd p50 A ms, p99 B ms
#     (max C), fan-out D ms; ref ...; p99 ref/assetd R (target p99 <= 100 ms: met|MISSED)
# Exit 0 whether or not the target is met; 2 if something is broken.
#
# Environment knobs (defaults in brackets):
#   LISTENERS [10000] CONNECT_BATCH [50]
#   LISTENER_IMPL [c] LISTENER_PROCS [1 for c, 4 for node]: bench/listeners.sh
#   WARMUP_CHANGES [2] CHANGES [30] CHANGE_INTERVAL_MS [300]
#   FANOUT_ROUNDS [1] FANOUT_TIMEOUT [120] (seconds: opening, each phase)
#   FANOUT_SIDES ["assetd ref"]  DECK [../shared/corpus/pdf/slides_context_bachotex2018_45p.pdf]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/listeners.sh"   # LISTENER_IMPL, LISTENER_PROCS and the shared settings

CHANGES=${CHANGES:-30}
WARMUP_CHANGES=${WARMUP_CHANGES:-2}
CHANGE_INTERVAL_MS=${CHANGE_INTERVAL_MS:-300}
FANOUT_ROUNDS=${FANOUT_ROUNDS:-1}
DECK=${DECK:-$BENCH_ROOT/../shared/corpus/pdf/slides_context_bachotex2018_45p.pdf}
TARGET_P99_MS=100

listeners_check
for v in CHANGES CHANGE_INTERVAL_MS FANOUT_ROUNDS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"
done
[[ $WARMUP_CHANGES =~ ^[0-9]+$ ]] || die "WARMUP_CHANGES must be a number"
[[ -f $DECK ]] || die "deck not found: $DECK"

bench_init slidesfanout
note "N = $LISTENERS listeners in $LISTENER_PROCS $LISTENER_IMPL processes; $WARMUP_CHANGES warm-up + $CHANGES changes every $CHANGE_INTERVAL_MS ms; $FANOUT_ROUNDS round(s); deck $(basename "$DECK"); node $(node --version); load average $(cut -d' ' -f1-3 /proc/loadavg)"


# ---- changes --------------------------------------------------------------
NEXT_SLIDE=0      # the changes cycle over 1..44
# phase_run TAG COUNT: marks a phase of COUNT changes, sends them
# CHANGE_INTERVAL_MS apart ("K SENT_MS" lines to $BENCH_TMP/sent.TAG), waits
# for every listener's report and checks it; sets PH_P50 PH_P99 PH_MAX (ms),
# PH_SPLIT, PH_SPREADS.
phase_run() {
  local tag=$1 count=$2 k seq=() i t0 due tb out code
  for ((k = 0; k < count; k++)); do seq+=($((1 + (NEXT_SLIDE + k) % 44))); done
  NEXT_SLIDE=$((NEXT_SLIDE + count))
  local csv
  csv=$(IFS=,; echo "${seq[*]}")
  for ((i = 0; i < LISTENER_PROCS; i++)); do
    echo "mark $tag $count $((FANOUT_TIMEOUT * 1000)) $BENCH_TMP/hist.$tag.$i $csv" >&"${LFDS[i]}"
  done
  nap 0.2                                   # the marks are read before the first change
  : >"$BENCH_TMP/sent.$tag"
  t0=$(now_us)
  for ((k = 0; k < count; k++)); do
    due=$((t0 + k * CHANGE_INTERVAL_MS * 1000))
    while (($(now_us) < due)); do nap "$(printf '0.%06d' $(((due - $(now_us)) % 1000000)))"; done
    tb=$(now_us)
    if [[ $SIDE == assetd ]]; then
      out=$(curl -sS --max-time 10 -X POST -H "Authorization: Bearer $CONTROL_TOKEN" \
              -d "{\"current\":${seq[k]}}" -o "$BENCH_TMP/ctl.body" -w '%{http_code} %{time_pretransfer}' \
              "$CONTROL_URL") || out=000
    else
      out=$(curl -sS --max-time 10 -X POST -H "Authorization: Bearer unused" \
              -d "{\"current\":${seq[k]}}" -o "$BENCH_TMP/ctl.body" -w '%{http_code} %{time_pretransfer}' \
              "$CONTROL_URL?current=${seq[k]}") || out=000
    fi
    code=${out%% *}
    [[ $code == 200 || $code == 201 ]] || die "$SIDE: control $k (current ${seq[k]}) answered $code: $(head -c 300 "$BENCH_TMP/ctl.body" 2>/dev/null)"
    awk -v k="$k" -v tb="$tb" -v pt="${out#* }" 'BEGIN { printf "%d %.3f\n", k, tb / 1000 + pt * 1000 }' \
      >>"$BENCH_TMP/sent.$tag"
  done
  # Wait for every report.
  local deadline n
  deadline=$(($(now_us) + (FANOUT_TIMEOUT + 10) * 1000000))
  while :; do
    n=0
    for ((i = 0; i < LISTENER_PROCS; i++)); do
      grep -q "^report $tag " "$BENCH_TMP/out.$i" && n=$((n + 1))
    done
    ((n == LISTENER_PROCS)) && break
    (($(now_us) < deadline)) || die "$SIDE: phase $tag: $n of $LISTENER_PROCS listener processes reported"
    nap 0.02
  done
  local agg conns complete msgs closed order unparsed late mc xc pconns pmsgs
  agg=$(cat "$BENCH_TMP"/out.* | awk -v tag="$tag" '
    $1 == "report" && $2 == tag {
      s = $3; gsub(/[{}"]/, "", s); n = split(s, kv, ",")
      for (i = 1; i <= n; i++) { split(kv[i], p, ":"); v[p[1]] = p[2] }
      conns += v["conns"]; complete += v["complete"]; msgs += v["msgs"]; closed += v["closed"]
      order += v["order_errors"]; unparsed += v["unparsed"]; if (v["timed_out"] == "true") late++
      if (mc == "" || v["min_count"] + 0 < mc) mc = v["min_count"] + 0
      if (v["max_count"] + 0 > xc) xc = v["max_count"] + 0
      pc += v["pre_conns"]; pm += v["pre_msgs"]
    }
    END { printf "%d %d %d %d %d %d %d %d %d %d %d\n", conns, complete, msgs, closed, order, unparsed, late, mc, xc, pc, pm }')
  read -r conns complete msgs closed order unparsed late mc xc pconns pmsgs <<<"$agg"
  ((conns == LISTENERS && complete == LISTENERS && msgs == LISTENERS * count && closed == 0 &&
    order == 0 && unparsed == 0)) ||
    die "$SIDE: phase $tag: $complete of $conns listeners got all $count changes (messages $msgs of $((LISTENERS * count)), per connection $mc-$xc; closed $closed, out of order $order, unparsed $unparsed; $late process(es) timed out after ${FANOUT_TIMEOUT} s)"
  ((pconns == LISTENERS && pmsgs == LISTENERS)) ||
    die "$SIDE: $pconns of $LISTENERS listeners got the current state on connect ($pmsgs messages; want exactly one each)"
  # Latency histogram (0.1 ms bins): receipt bin - send time of its change.
  read -r PH_MIN PH_P50 PH_P99 PH_MAX < <(cat "$BENCH_TMP/sent.$tag" "$BENCH_TMP"/hist."$tag".* | awk '
      NF == 2 { sent[$1] = $2 * 10; next }
      $1 == "R" { h[sprintf("%d", $3 - sent[$2])] += $4 }
      END { for (b in h) print b, h[b] }' | sort -n -k1,1 |
    awk -v n="$msgs" 'BEGIN { r50 = int(n * 0.50 + 0.999999); r99 = int(n * 0.99 + 0.999999) }
      NR == 1 { mn = $1 }
      { c += $2; if (p50 == "" && c >= r50) p50 = $1; if (p99 == "" && c >= r99) p99 = $1; mx = $1 }
      END { printf "%.1f %.1f %.1f %.1f\n", mn / 10, p50 / 10, p99 / 10, mx / 10 }')
  # Per change: send -> first receipt anywhere, first -> last receipt.
  local per
  per=$(cat "$BENCH_TMP/sent.$tag" "$BENCH_TMP"/hist."$tag".* | awk '
      NF == 2 { sent[$1] = $2 * 10; next }
      $1 == "R" { if (!($2 in f) || $3 < f[$2]) f[$2] = $3; if (!($2 in l) || $3 > l[$2]) l[$2] = $3 }
      END { for (k in f) printf "%d %.1f %.1f\n", k, (f[k] - sent[k]) / 10, (l[k] - f[k]) / 10 }' | sort -n)
  local first spread
  first=$(cut -d' ' -f2 <<<"$per" | median_max)
  spread=$(cut -d' ' -f3 <<<"$per" | median_max)
  PH_SPREAD_MED=${spread% *}
  PH_SPLIT="send -> first receipt median ${first% *} ms (max ${first#* }), first -> last receipt (fan-out) median ${spread% *} ms (max ${spread#* }), over $(wc -l <<<"$per") changes"
  PH_SPREADS=$(awk '{ printf "%s%.0f", (NR > 1 ? " " : ""), $3 }' <<<"$per")
}

# ---- one side, one round --------------------------------------------------
# run_side SIDE ROUND [serve args]: sets R_P50 R_P99 R_MAX R_SPREAD.
run_side() {
  SIDE=$1
  local r=$2; shift 2
  local spid url_ws i resp id status
  NEXT_SLIDE=0
  if [[ $SIDE == assetd ]]; then
    start_assetd "$BENCH_TMP/r$r/assetd" --workers 1 "$@"
    spid=$ASSETD_PID
    resp=$(curl -sS --max-time 120 -H "Authorization: Bearer $ASSETD_TOKEN" -F "file=@$DECK" \
             "$ASSETD_URL/api/v1/slideshow/upload") || die "upload failed"
    id=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' <<<"$resp")
    CONTROL_TOKEN=$(sed -n 's/.*"control_token":"\([^"]*\)".*/\1/p' <<<"$resp")
    [[ -n $id && -n $CONTROL_TOKEN ]] || die "upload answered: $(head -c 300 <<<"$resp")"
    for ((i = 0; i < 1200; i++)); do                 # up to 120 s
      status=$(curl -sS --max-time 10 "$ASSETD_URL/api/v1/slideshow/$id.json" |
                 sed -n 's/.*"status":"\([A-Z]*\)".*/\1/p')
      [[ $status == READY ]] && break
      [[ $status == ERROR ]] && die "the slideshow ended ERROR"
      nap 0.1
    done
    [[ $status == READY ]] || die "the slideshow is not READY after 120 s (status ${status:-?})"
    note "round $r: assetd: slideshow $id READY in $(awk -v i="$i" 'BEGIN { printf "%.1f", i / 10 }') s"
    printf '{"id":"%s"}\n' "$id" >"$BENCH_TMP/show.json"
    CONTROL_URL=$ASSETD_URL/api/v1/slideshow/$id/control
    url_ws="ws://127.0.0.1:$ASSETD_PORT/api/v1/slideshow/$id/listen"
  else
    [[ -s $BENCH_TMP/show.json ]] || printf '{"id":"%s"}\n' XXXXXXXXXXXXXXXXXXXXXX >"$BENCH_TMP/show.json"
    node "$BENCH_ROOT/bench/ws_reference_server.mjs" "$BENCH_TMP/show.json" \
      >"$BENCH_TMP/ref.out" 2>"$BENCH_TMP/ref.err" &
    spid=$!
    BENCH_PIDS+=("$spid")
    local port=""
    for ((i = 0; i < 100; i++)); do
      port=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$BENCH_TMP/ref.out")
      [[ -n $port ]] && break
      kill -0 "$spid" 2>/dev/null || break
      nap 0.1
    done
    [[ -n $port ]] || { cat "$BENCH_TMP/ref.err" >&2; die "the reference server did not start"; }
    CONTROL_URL=http://127.0.0.1:$port/event
    url_ws="ws://127.0.0.1:$port/v1/events"
    # The state new listeners get first: slide 0, as a fresh slideshow.
    [[ $(curl -sS --max-time 10 -X POST -o /dev/null -w '%{http_code}' "$CONTROL_URL?current=0") == 201 ]] ||
      die "the reference's first POST /event failed"
  fi
  start_listeners "$url_ws"
  nap 1
  note "round $r: $SIDE: $LISTENERS listeners open in $(awk -v m="$CONNECT_MS" 'BEGIN { printf "%.1f", m / 1000 }') s"
  if ((WARMUP_CHANGES > 0)); then
    phase_run warm "$WARMUP_CHANGES"
    note "round $r: $SIDE: warm-up: fan-out time of each change, ms: $PH_SPREADS (latency p50 $PH_P50 ms, p99 $PH_P99 ms)"
  fi
  local t0 c0 c1
  c0=$(ticks_of "$spid"); t0=$(now_us)
  phase_run lat "$CHANGES"
  c1=$(ticks_of "$spid")
  R_P50=$PH_P50 R_P99=$PH_P99 R_MAX=$PH_MAX R_SPREAD=$PH_SPREAD_MED
  note "round $r: $SIDE: latency over $((LISTENERS * CHANGES)) deliveries: min $PH_MIN ms, p50 $R_P50 ms, p99 $R_P99 ms, max $R_MAX ms; $PH_SPLIT"
  note "round $r: $SIDE: fan-out time (first -> last receipt) of each change, ms: $PH_SPREADS"
  note "round $r: $SIDE: server CPU $(awk -v t=$((c1 - c0)) -v hz="$TICK" -v us=$(($(now_us) - t0)) 'BEGIN { printf "%.2f", t / hz / (us / 1e6) }') cores over the phase"
  stop_listeners
  stop_pid "$spid"; forget_pid "$spid"
  ASSETD_PID=""
  rm -rf "$BENCH_TMP/r$r" "$BENCH_TMP"/hist.* "$BENCH_TMP"/out.* "$BENCH_TMP"/err.* "$BENCH_TMP"/ctl.* "$BENCH_TMP"/sent.*
}

declare -A best_p50 best_p99 best_max best_spread
for s in assetd ref; do best_p99[$s]=""; best_p50[$s]=""; best_max[$s]=""; best_spread[$s]=""; done
for ((r = 1; r <= FANOUT_ROUNDS; r++)); do
  for s in $FANOUT_SIDES; do
    if [[ $s == assetd ]]; then run_side assetd "$r" "$@"; else run_side ref "$r"; fi
    if [[ -z ${best_p99[$s]} ]] || ge "${best_p99[$s]}" "$R_P99"; then
      best_p99[$s]=$R_P99 best_p50[$s]=$R_P50 best_max[$s]=$R_MAX best_spread[$s]=$R_SPREAD
    fi
  done
done

a_p99=${best_p99[assetd]} r_p99=${best_p99[ref]}
verdict=-
if [[ -n $a_p99 ]]; then
  if awk -v a="$a_p99" -v b="$TARGET_P99_MS" 'BEGIN { exit !(a <= b) }'; then verdict=met; else verdict=MISSED; fi
fi
echo "slides_fanout: $LISTENERS listeners x $CHANGES changes every $CHANGE_INTERVAL_MS ms:" \
     "assetd p50 $(na "${best_p50[assetd]}") ms, p99 $(na "$a_p99") ms (max $(na "${best_max[assetd]}"), fan-out median $(na "${best_spread[assetd]}") ms);" \
     "ref p50 $(na "${best_p50[ref]}") ms, p99 $(na "$r_p99") ms (max $(na "${best_max[ref]}"), fan-out median $(na "${best_spread[ref]}") ms);" \
     "p99 ref/assetd $(ratio "${r_p99:-0}" "${a_p99:-0}") (target p99 <= $TARGET_P99_MS ms: $verdict)${*:+ [assetd $*]}"
exit 0
