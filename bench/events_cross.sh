#!/usr/bin/env bash
# Cross-process event latency on PostgreSQL: an event committed by one serve
# process, delivered to WebSocket listeners on another (issue #14).
#
#   bench/events_cross.sh [extra 'assetd serve' options, all servers]
#
# A private PostgreSQL cluster (lib.sh start_postgres: durable settings) and,
# each round, a fresh database and two `assetd serve --workers 0 --db URL`
# processes, A and B, each with a data directory of its own (the disk store:
# the blobs of A's uploads stay in A's directory, which no event reads).
# B starts second and finds A's API key in the database; the script copies
# A's admin.key beside it.  Events are made as in events_fanout.sh: tiny text
# uploads (kind "other": no job) through A, EVENT_INTERVAL_MS apart, and the
# LISTENERS WebSocket listeners (bench/listeners.sh: build/ws-listen)
# subscribe to ws://.../v1/events?types=asset.created.  Three sides:
#   cross   listeners on B, uploads through A: A commits and sends NOTIFY
#           assetd; B's hub wakes on its LISTEN connection, reads the event
#           from the database and fans it out.  The figure the issue asks.
#   same    listeners on A, uploads through A, B running beside: A's hub is
#           woken by its own eventfd (and by the NOTIFY too); the same
#           database, the same commit, no second process on the path.
#   sqlite  one serve on the embedded default (SQLite, disk), a fresh data
#           dir: the single-process figure of events_fanout.sh at this N.
# Latency is the listeners' receipt time minus the message's "at", which A
# stamps just before its commit (same machine, same clock; "at" is truncated
# to the millisecond, so every side reads 0-1 ms high).  Every listener must
# get every event, in order, within FANOUT_TIMEOUT, or the run breaks.
# Per side and round: WARMUP_EVENTS untimed events, then EVENTS timed ones
# -> p50/p99/max over LISTENERS x EVENTS deliveries, and per event "at" to
# the first receipt anywhere (commit + wake-up + first write: where the
# cross-process path differs) and first to last receipt (the fan-out).
# Events later than LATE_MS at their first receipt are counted: B's hub
# polls every 250 ms should a NOTIFY be lost, so a lost wake-up shows as
# such an outlier.  Best of CROSS_ROUNDS rounds by p99, per side; the side
# order alternates between rounds.
#
# Prints one line:
#   events_cross: N listeners x E events every I ms: cross (PostgreSQL, A -> B)
#     p50 X ms, p99 Y ms (max M); same process (PostgreSQL, A -> A) p50 ..,
#     p99 ..; SQLite p50 .., p99 ..; p99 cross/same R, cross/sqlite S
# Exit 0 always when it ran; 2 if something is broken.
#
# Environment knobs (defaults in brackets):
#   LISTENERS [1000] CONNECT_BATCH [50] LISTENER_IMPL [c] (bench/listeners.sh)
#   WARMUP_EVENTS [3] EVENTS [50] EVENT_INTERVAL_MS [200] CROSS_ROUNDS [2]
#   CROSS_SIDES ["same cross sqlite"] FANOUT_TIMEOUT [60] (seconds) LATE_MS [100]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
LISTENERS=${LISTENERS:-1000}
FANOUT_TIMEOUT=${FANOUT_TIMEOUT:-60}
source "$(dirname "$0")/listeners.sh"

EVENTS=${EVENTS:-50}
WARMUP_EVENTS=${WARMUP_EVENTS:-3}
EVENT_INTERVAL_MS=${EVENT_INTERVAL_MS:-200}
CROSS_ROUNDS=${CROSS_ROUNDS:-2}
CROSS_SIDES=${CROSS_SIDES:-same cross sqlite}
LATE_MS=${LATE_MS:-100}
# shellcheck disable=SC2034
CLI_PIN=()   # read by listeners.sh's start_listeners

listeners_check
for v in EVENTS EVENT_INTERVAL_MS CROSS_ROUNDS LATE_MS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"
done
[[ $WARMUP_EVENTS =~ ^[0-9]+$ ]] || die "WARMUP_EVENTS must be a number"
for s in $CROSS_SIDES; do [[ $s == same || $s == cross || $s == sqlite ]] || die "CROSS_SIDES: same, cross and/or sqlite"; done
need psql

bench_init cross
start_postgres
note "PostgreSQL on $PG_URL; N = $LISTENERS listeners ($LISTENER_IMPL); $EVENTS events every $EVENT_INTERVAL_MS ms after $WARMUP_EVENTS warm-up; $CROSS_ROUNDS round(s); load average $(cut -d' ' -f1-3 /proc/loadavg)"

head -c 48 /dev/urandom | base64 -w0 >"$BENCH_TMP/small.txt"

# post_event URL: one upload; 201 or die.
post_event() {
  local code
  code=$(curl -sS --max-time 10 -X POST -H "$AUTH" -H 'Content-Type: text/plain' \
           --data-binary @"$BENCH_TMP/small.txt" -o /dev/null -w '%{http_code}' "$1") || code=000
  [[ $code == 201 ]] || die "POST $1 answered $code"
}
# steady_events URL_PREFIX NAME COUNT: COUNT events, EVENT_INTERVAL_MS apart.
steady_events() {
  local e due t0 left
  t0=$(now_us)
  for ((e = 0; e < $3; e++)); do
    due=$((t0 + e * EVENT_INTERVAL_MS * 1000))
    while left=$((due - $(now_us))); ((left > 0)); do nap "$(printf '%d.%06d' $((left / 1000000)) $((left % 1000000)))"; done
    post_event "$1$2$e.txt"
  done
}

# metric URL NAME: one value from /metrics.
metric() {
  curl -sS --max-time 10 -H "$AUTH" "$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}

# phase TAG EXPECT PREFIX: marks the listeners, makes EXPECT events through
# PREFIX, waits for every report, checks nothing was lost and sets PH_*
# (latency percentiles in ms, per-event splits).
phase() {
  local tag=$1 expect=$2 prefix=$3 i deadline n
  for ((i = 0; i < LISTENER_PROCS; i++)); do
    echo "mark $tag $expect $((FANOUT_TIMEOUT * 1000)) $BENCH_TMP/hist.$tag.$i" >&"${LFDS[i]}"
  done
  steady_events "$prefix" "$tag" "$expect"
  deadline=$(($(now_us) + (FANOUT_TIMEOUT + 10) * 1000000))
  while :; do
    n=0
    for ((i = 0; i < LISTENER_PROCS; i++)); do
      grep -q "^report $tag " "$BENCH_TMP/out.$i" && n=$((n + 1))
    done
    ((n == LISTENER_PROCS)) && break
    (($(now_us) < deadline)) || die "phase $tag: $n of $LISTENER_PROCS listener processes reported"
    nap 0.02
  done
  local conns complete msgs closed order unparsed
  read -r conns complete msgs closed order unparsed < <(cat "$BENCH_TMP"/out.* | awk -v tag="$tag" '
    $1 == "report" && $2 == tag {
      s = $3; gsub(/[{}"]/, "", s); k = split(s, kv, ",")
      for (i = 1; i <= k; i++) { split(kv[i], p, ":"); v[p[1]] = p[2] }
      conns += v["conns"]; complete += v["complete"]; msgs += v["msgs"]; closed += v["closed"]
      order += v["order_errors"]; unparsed += v["unparsed"]
    }
    END { print conns + 0, complete + 0, msgs + 0, closed + 0, order + 0, unparsed + 0 }')
  ((conns == LISTENERS && complete == LISTENERS && msgs == LISTENERS * expect && closed == 0 &&
    order == 0 && unparsed == 0)) ||
    die "phase $tag: $complete of $conns listeners got all $expect events (messages $msgs of $((LISTENERS * expect)); closed $closed, out of order $order, unparsed $unparsed)"
  # Histograms (0.1 ms bins) -> min p50 p99 max in ms.
  read -r PH_MIN PH_P50 PH_P99 PH_MAX < <(cat "$BENCH_TMP"/hist."$tag".* |
    awk 'NF == 2 { h[$1] += $2 } END { for (k in h) print k, h[k] }' | sort -n -k1,1 |
    awk -v n="$msgs" 'BEGIN { r50 = int(n * 0.50 + 0.999999); r99 = int(n * 0.99 + 0.999999) }
      NR == 1 { mn = $1 }
      { c += $2; if (p50 == "" && c >= r50) p50 = $1; if (p99 == "" && c >= r99) p99 = $1; mx = $1 }
      END { printf "%.1f %.1f %.1f %.1f\n", mn / 10, p50 / 10, p99 / 10, mx / 10 }')
  # Per event: "at" -> first receipt anywhere, first -> last receipt.
  local per_event
  per_event=$(cat "$BENCH_TMP"/hist."$tag".* | awk '
      $1 == "E" { at[$2] = $3; if (!($2 in f) || $4 < f[$2]) f[$2] = $4; if ($5 > l[$2]) l[$2] = $5 }
      END { for (i in at) print i, f[i] - at[i], l[i] - f[i] }' | sort -n)
  PH_FIRST=$(cut -d' ' -f2 <<<"$per_event" | median_max)
  PH_SPREAD=$(cut -d' ' -f3 <<<"$per_event" | median_max)
  PH_LATE=$(awk -v l="$LATE_MS" '$2 >= l { n++ } END { print n + 0 }' <<<"$per_event")
  PH_FIRSTS=$(awk '{ printf "%s%.0f", (NR > 1 ? " " : ""), $2 }' <<<"$per_event")
}

# measure SIDE ROUND WS_URL POST_PREFIX: listeners on WS_URL, events through
# POST_PREFIX; sets R_P50 R_P99 R_MAX and prints the round's figures.
measure() {
  local side=$1 r=$2 ws=$3 prefix=$4
  start_listeners "$ws" "$AUTH"
  if ((WARMUP_EVENTS > 0)); then
    phase "warm$r$side" "$WARMUP_EVENTS" "$prefix"
  fi
  wait_quiet 20 phase   # up to 10 s
  phase "lat$r$side" "$EVENTS" "$prefix"
  R_P50=$PH_P50 R_P99=$PH_P99 R_MAX=$PH_MAX
  note "round $r: $side: $((LISTENERS * EVENTS)) deliveries: min $PH_MIN ms, p50 $PH_P50 ms, p99 $PH_P99 ms, max $PH_MAX ms; at -> first receipt median ${PH_FIRST% *} ms (max ${PH_FIRST#* }), first -> last receipt median ${PH_SPREAD% *} ms (max ${PH_SPREAD#* }); $PH_LATE of $EVENTS events first received >= $LATE_MS ms after at"
  note "round $r: $side: at -> first receipt of each event, ms: $PH_FIRSTS"
  stop_listeners
  rm -f "$BENCH_TMP"/hist.* "$BENCH_TMP"/out.* "$BENCH_TMP"/err.* "$BENCH_TMP"/ctl.*
}

# pg_round ROUND SIDES... [-- serve args]: A and B on a fresh database.
pg_round() {
  local r=$1 sides=$2; shift 2
  local db=$PG_URL/r$r a_url a_port a_pid b_url b_port s listening
  psql -X -q -d "$PG_URL/postgres" -c "CREATE DATABASE r$r" || die "cannot make database r$r"
  start_assetd "$BENCH_TMP/r$r/a" --workers 0 --db "$db" "$@"
  a_url=$ASSETD_URL a_port=$ASSETD_PORT a_pid=$ASSETD_PID
  AUTH="Authorization: Bearer $ASSETD_TOKEN"
  mkdir -p "$BENCH_TMP/r$r/b"
  cp "$BENCH_TMP/r$r/a/admin.key" "$BENCH_TMP/r$r/b/admin.key"   # B finds the key in the database
  start_assetd "$BENCH_TMP/r$r/b" --workers 0 --db "$db" "$@"
  b_url=$ASSETD_URL b_port=$ASSETD_PORT
  for s in "$a_url" "$b_url"; do
    listening=$(metric "$s" assetd_db_listening)
    [[ $listening == 1 ]] || die "$s: assetd_db_listening is '${listening:-?}', want 1"
  done
  note "round $r: A pid $a_pid on :$a_port, B pid $ASSETD_PID on :$b_port, database r$r"
  post_event "$a_url/v1/assets?filename=warmup.txt"
  for s in $sides; do
    case $s in
      same)  measure same "$r" "ws://127.0.0.1:$a_port/v1/events?types=asset.created" "$a_url/v1/assets?filename=" ;;
      cross) measure cross "$r" "ws://127.0.0.1:$b_port/v1/events?types=asset.created" "$a_url/v1/assets?filename=" ;;
    esac
    keep "$s"
  done
  stop_assetd                                   # B
  stop_pid "$a_pid"; forget_pid "$a_pid"
  rm -rf "$BENCH_TMP/r$r"
}

sqlite_round() {
  local r=$1; shift
  start_assetd "$BENCH_TMP/r$r/sqlite" --workers 0 "$@"
  AUTH="Authorization: Bearer $ASSETD_TOKEN"
  post_event "$ASSETD_URL/v1/assets?filename=warmup.txt"
  measure sqlite "$r" "ws://127.0.0.1:$ASSETD_PORT/v1/events?types=asset.created" "$ASSETD_URL/v1/assets?filename="
  keep sqlite
  stop_assetd
  rm -rf "$BENCH_TMP/r$r"
}

declare -A best_p50 best_p99 best_max
keep() {
  if [[ -z ${best_p99[$1]:-} ]] || ge "${best_p99[$1]}" "$R_P99"; then
    best_p99[$1]=$R_P99 best_p50[$1]=$R_P50 best_max[$1]=$R_MAX
  fi
}

for ((r = 1; r <= CROSS_ROUNDS; r++)); do
  order=$CROSS_SIDES
  ((r % 2 == 0)) && order=$(tr ' ' '\n' <<<"$CROSS_SIDES" | tac | tr '\n' ' ')
  pg_sides=""
  for s in $order; do [[ $s == sqlite ]] || pg_sides+="$s "; done
  for s in $order; do
    if [[ $s == sqlite ]]; then sqlite_round "$r" "$@"
    elif [[ -n $pg_sides ]]; then pg_round "$r" "$pg_sides" "$@"; pg_sides=""
    fi
  done
done

fig() { echo "p50 $(na "${best_p50[$1]:-}") ms, p99 $(na "${best_p99[$1]:-}") ms (max $(na "${best_max[$1]:-}"))"; }
echo "events_cross: $LISTENERS listeners x $EVENTS events every $EVENT_INTERVAL_MS ms:" \
     "cross (PostgreSQL, commit on A -> listeners on B) $(fig cross);" \
     "same process (PostgreSQL, A -> A) $(fig same); SQLite $(fig sqlite);" \
     "p99 cross/same $(ratio "${best_p99[cross]:-0}" "${best_p99[same]:-0}")," \
     "cross/sqlite $(ratio "${best_p99[cross]:-0}" "${best_p99[sqlite]:-0}")${*:+ [assetd $*]}"
exit 0
