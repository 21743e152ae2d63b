#!/usr/bin/env bash
# WebSocket event fan-out: N listeners on one stream, assetd against a
# minimal Node `ws` broadcast server measured the same way in the same run.
#
#   bench/events_fanout.sh [extra 'assetd serve' options]
#
# Targets (issue): for N = 10,000 listeners, delivery latency p99 <= 100 ms
# from an event's commit to its receipt at every listener; >= 100,000
# deliveries/s on 2 cores; <= 20 KB (20,000 bytes, the stricter reading)
# of server RSS per idle connection.
#
# What is subscribed: an asset has only a handful of events in its life, so
# the listeners subscribe to one owner's asset.created stream
# (ws://.../v1/events?types=asset.created, Authorization: Bearer KEY) and
# the bench makes events by uploading tiny text files (no job is queued for
# them: kind "other").  The fan-out path is the same as for one asset's
# events: the hub checks every subscription's filter against every event
# and hands the message to each match (src/events/hub.c fan_out).
#
# Listeners: LISTENER_PROCS processes (bench/listeners.sh: build/ws-listen
# from bench/ws_listen.c by default, or bench/ws_listeners.mjs with npm `ws`)
# share the N connections, each opening its share CONNECT_BATCH handshakes
# at a time and then reporting ready.  Per message
# they record receipt time minus the message's "at" (same machine, same
# clock; "at" is taken just before the event's commit and truncated to the
# millisecond, so latencies read 0-1 ms high) and count messages per
# connection; the script drives them through a FIFO each ("mark" a phase,
# "close") and reads their reports.  Every listener must get every event of
# a phase, in order (ids increasing), within FANOUT_TIMEOUT, or the run
# breaks.
#
# Each side (assetd, then the reference) goes through, on a fresh server:
#   1. idle memory: server VmRSS before the listeners connect and once all N
#      are open and have been idle 2 s -> bytes per idle connection.  The
#      listener processes' own RSS is printed for information.
#   2. latency: WARMUP_EVENTS untimed events first (their fan-out times are
#      printed): the first message on a fresh connection costs both servers
#      and the listeners more (2-3x: first writes, and the listeners' JIT
#      warming up), a start-up cost, not the steady state.  Then EVENTS
#      events, one every EVENT_INTERVAL_MS (one curl upload each) ->
#      p50/p99/max over the N x EVENTS latencies, and per event: "at" to
#      the first receipt anywhere, first to last receipt (the fan-out).
#   3. throughput: a burst of BURST events as fast as UPLOADERS concurrent
#      uploads go (one `curl -Z --parallel-max UPLOADERS`, keep-alive) ->
#      deliveries/s = N x BURST / (last receipt at any listener - the
#      earliest "at" of the burst).  Latency percentiles of the burst are
#      printed for information.
# The listeners then end (the time the server takes to see all N closed is
# printed) and the server is stopped.  Best of FANOUT_ROUNDS
# rounds per figure (lowest p99, highest rate, lowest bytes/connection).
#
# The reference (bench/ws_reference_server.mjs): a Node `ws` server that,
# on POST /event, stamps "at" (arrival time, ISO ms) and sends one message
# to every client, in the shape and size of assetd's (its "data" is the
# asset JSON of this run's warm-up upload); the same listeners, the same
# phases, the same curl commands (POST /event instead of /v1/assets).  It
# does no durability: its event is a function call, where assetd's is an
# upload (SHA-256, libmagic, fsynced blob) and a SQLite commit, all inside
# the latency.  Its idle RSS is read after a full GC (node --expose-gc).
#
# CPU is printed per phase (in cores = CPU seconds / wall seconds): assetd
# per thread group, from /proc/PID/task/*/stat and schedstat (share of
# system time, and time runnable but waiting for a CPU) — hub (the thread
# that runs fan_out), ws (the epoll threads that frame and write, one per
# core), http (libmicrohttpd's "MHD-worker" threads), other (the rest: work
# pool, uploads' writer threads, main) — the reference server, the
# listeners, the whole machine and its rest (curl, anyone else on the VM).
# Threads are told apart when the server is idle: the non-MHD threads in
# epoll_wait are ws, and the hub is the thread created just before the
# first (ws_server_start follows hub_start in src/cli/serve.c start_events:
# consecutive thread ids).
# Syscall numbers are x86-64's; elsewhere everything is "other".
#
# Prints three lines:
#   events_fanout latency: N listeners x E events: assetd p50 A ms, p99 B ms (max C);
#     ref p50 .. p99 ..; p99 ref/assetd R (target p99 <= 100 ms: met|MISSED)
#   events_fanout throughput: ... assetd X deliveries/s, ref Y; assetd/ref R
#     (target >= 100000/s: met|MISSED)
#   events_fanout memory: assetd X bytes per idle connection, ref Y; ref/assetd R
#     (target <= 20000: met|MISSED)
# Exit 0 whether or not a target is met; 2 if something is broken (a server
# or listener failed, an upload failed, a message was lost or late beyond
# FANOUT_TIMEOUT).
#
# Environment knobs (defaults in brackets):
#   LISTENERS [10000] CONNECT_BATCH [50]
#   LISTENER_IMPL [c] LISTENER_PROCS [1 for c, 4 for node]: bench/listeners.sh
#   WARMUP_EVENTS [2] EVENTS [30] EVENT_INTERVAL_MS [300] BURST [200] UPLOADERS [8]
#   FANOUT_ROUNDS [2] FANOUT_TIMEOUT [120] (seconds: opening, each phase)
#   FANOUT_SIDES ["assetd ref"]: one of them alone for profiling
#   FANOUT_PIN [none]: none = every process may run on both cores; split =
#     the server on CPU 0, the listeners on CPU 1 (taskset), to see the
#     server's fan-out with a core to itself (the curl uploads float)
#   FANOUT_HOLD [0]: seconds to keep each side's listeners connected after
#     phase 3 (idle), e.g. to look at the server
#   FANOUT_PERF [none]: lat or burst: `perf record -e cpu-clock -g` on the
#     serve process during that phase; the top of its report (by thread and
#     symbol) goes to stderr.  perf's own CPU is then on the machine too.
#     FANOUT_PERF_KEEP=FILE keeps perf.data there (for perf report -g).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/listeners.sh"   # LISTENER_IMPL, LISTENER_PROCS and the shared settings

EVENTS=${EVENTS:-30}
WARMUP_EVENTS=${WARMUP_EVENTS:-2}
EVENT_INTERVAL_MS=${EVENT_INTERVAL_MS:-300}
BURST=${BURST:-200}
UPLOADERS=${UPLOADERS:-8}
FANOUT_ROUNDS=${FANOUT_ROUNDS:-2}
FANOUT_HOLD=${FANOUT_HOLD:-0}
FANOUT_PERF=${FANOUT_PERF:-none}
FANOUT_PIN=${FANOUT_PIN:-none}
TARGET_P99_MS=100
TARGET_RATE=100000
TARGET_BYTES=20000

listeners_check
for v in EVENTS EVENT_INTERVAL_MS BURST UPLOADERS FANOUT_ROUNDS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"
done
[[ $FANOUT_HOLD =~ ^[0-9]+$ ]] || die "FANOUT_HOLD must be a number of seconds"
[[ $WARMUP_EVENTS =~ ^[0-9]+$ ]] || die "WARMUP_EVENTS must be a number"
case $FANOUT_PIN in
  none) SRV_PIN=(); CLI_PIN=() ;;
  split) need taskset; SRV_PIN=(taskset -c 0); CLI_PIN=(taskset -c 1) ;;
  *) die "FANOUT_PIN must be none or split" ;;
esac
case $FANOUT_PERF in none) ;; lat|burst) need perf ;; *) die "FANOUT_PERF must be none, lat or burst" ;; esac

bench_init fanout
note "N = $LISTENERS listeners in $LISTENER_PROCS $LISTENER_IMPL processes (pinning: $FANOUT_PIN); latency: $EVENTS events every $EVENT_INTERVAL_MS ms; burst: $BURST events, $UPLOADERS uploaders; $FANOUT_ROUNDS round(s); node $(node --version), ws $(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$WS_DIR/package.json"); load average $(cut -d' ' -f1-3 /proc/loadavg)"

# "TID UTIME STIME WAIT_NS" for each live thread of a process: user and
# system CPU ticks, and the time spent runnable but waiting for a CPU.
task_ticks() {
  awk '{ n = split(FILENAME, p, "/"); tid = p[n - 1] }
       p[n] == "schedstat" { w[tid] = $2; next }
       { sub(/^.*\) /, ""); split($0, f, " "); u[tid] = f[12]; s[tid] = f[13] }
       END { for (t in u) print t, u[t], s[t], w[t] + 0 }' \
    /proc/"$1"/task/*/stat /proc/"$1"/task/*/schedstat 2>/dev/null || true
}
cores() { awk -v t="$1" -v hz="$TICK" -v us="$2" 'BEGIN { printf "%.2f", (us > 0 ? t / hz / (us / 1e6) : 0) }'; }

# ---- assetd's threads -----------------------------------------------------
# label_threads PID: writes "TID LABEL" lines to $BENCH_TMP/labels (see the
# header for how they are told apart).
label_threads() {
  local pid=$1 t tid comm sc prev="" hub="" nws=0
  : >"$BENCH_TMP/labels"
  for t in $(printf '%s\n' /proc/"$pid"/task/* | sort -t/ -k5,5n); do
    tid=${t##*/}
    comm=$(<"$t/comm")
    read -r sc _ 2>/dev/null <"$t/syscall" || sc=x
    if [[ $comm == MHD-* ]]; then
      echo "$tid http" >>"$BENCH_TMP/labels"
    elif [[ $sc == 232 || $sc == 281 ]]; then
      ((nws++ == 0)) && hub=$prev
      echo "$tid ws" >>"$BENCH_TMP/labels"
    fi
    prev=$tid
  done
  if ((nws == 0)) || [[ -z $hub ]]; then
    note "thread labels unknown: no non-MHD thread in epoll_wait; CPU by thread group will be wrong"
    return 0
  fi
  echo "$hub hub" >>"$BENCH_TMP/labels"
}
# cpu_snap PID FILE: the process's total ticks, then its threads'.
cpu_snap() { { echo "total $(ticks_of "$1") 0 0"; task_ticks "$1"; } >"$2"; }
# cpu_groups SNAP0 SNAP1 WALL_US: "hub X (S% sys, waited W s), ws ..., http
# Z, other W" in cores; "waited": runnable, but no CPU free.
cpu_groups() {
  awk -v hz="$TICK" -v us="$3" '
    FILENAME == ARGV[1] { lab[$1] = $2; next }
    FILENAME == ARGV[2] { u0[$1] = $2; s0[$1] = $3; w0[$1] = $4; next }
    { du = $2 - u0[$1]; ds = $3 - s0[$1]; dw = $4 - w0[$1]
      if ($1 == "total") total = du
      else if ($1 in lab) { g[lab[$1]] += du + ds; sy[lab[$1]] += ds; wt[lab[$1]] += dw } }
    END { c = hz * us / 1e6; known = g["hub"] + g["ws"] + g["http"]
          printf "hub %.2f (%.0f%% sys, waited %.2f s), ws %.2f (%.0f%% sys, waited %.2f s), http %.2f, other %.2f",
            g["hub"] / c, g["hub"] ? 100 * sy["hub"] / g["hub"] : 0, wt["hub"] / 1e9, g["ws"] / c,
            g["ws"] ? 100 * sy["ws"] / g["ws"] : 0, wt["ws"] / 1e9, g["http"] / c, (total - known) / c }
  ' "$BENCH_TMP/labels" "$1" "$2"
}


# phase_begin TAG EXPECT: every listener should now get EXPECT messages.
phase_begin() {
  local i
  for ((i = 0; i < LISTENER_PROCS; i++)); do
    echo "mark $1 $2 $((FANOUT_TIMEOUT * 1000)) $BENCH_TMP/hist.$1.$i" >&"${LFDS[i]}"
  done
}
# phase_wait TAG: waits for every process's report, checks that nothing was
# lost, and sets PH_* (latency percentiles in ms, min_at, max_rx, end time).
phase_wait() {
  local tag=$1 i deadline n
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
  PH_END_US=$(now_us)
  local agg
  agg=$(cat "$BENCH_TMP"/out.* | awk -v tag="$tag" '
    $1 == "report" && $2 == tag {
      s = $3; gsub(/[{}"]/, "", s); n = split(s, kv, ",")
      for (i = 1; i <= n; i++) { split(kv[i], p, ":"); v[p[1]] = p[2] }
      conns += v["conns"]; complete += v["complete"]; msgs += v["msgs"]; closed += v["closed"]
      order += v["order_errors"]; unparsed += v["unparsed"]; if (v["timed_out"] == "true") late++
      if (mc == "" || v["min_count"] + 0 < mc) mc = v["min_count"] + 0
      if (v["max_count"] + 0 > xc) xc = v["max_count"] + 0
      if (v["min_at"] != "null" && (at == "" || v["min_at"] + 0 < at)) at = v["min_at"] + 0
      if (v["max_rx"] + 0 > rx) rx = v["max_rx"] + 0
    }
    END { printf "%d %d %d %d %d %d %d %d %d %.3f %.3f\n", conns, complete, msgs, closed, order, unparsed, late, mc, xc, at, rx }')
  local conns complete msgs closed order unparsed late mc xc
  read -r conns complete msgs closed order unparsed late mc xc PH_MIN_AT PH_MAX_RX <<<"$agg"
  local expect=$2
  ((conns == LISTENERS && complete == LISTENERS && msgs == LISTENERS * expect && closed == 0 &&
    order == 0 && unparsed == 0)) ||
    die "phase $tag: $complete of $conns listeners got all $expect events (messages $msgs of $((LISTENERS * expect)), per connection $mc-$xc; closed $closed, out of order $order, unparsed $unparsed; $late process(es) timed out after ${FANOUT_TIMEOUT} s)"
  # Merge the histograms (0.1 ms bins) -> min p50 p99 max in ms.
  read -r PH_MIN PH_P50 PH_P99 PH_MAX < <(cat "$BENCH_TMP"/hist."$tag".* |
    awk 'NF == 2 { h[$1] += $2 } END { for (k in h) print k, h[k] }' | sort -n -k1,1 |
    awk -v n="$msgs" 'BEGIN { r50 = int(n * 0.50 + 0.999999); r99 = int(n * 0.99 + 0.999999) }
      NR == 1 { mn = $1 }
      { c += $2; if (p50 == "" && c >= r50) p50 = $1; if (p99 == "" && c >= r99) p99 = $1; mx = $1 }
      END { printf "%.1f %.1f %.1f %.1f\n", mn / 10, p50 / 10, p99 / 10, mx / 10 }')
  # Per event, over all listeners: "at" to the first receipt anywhere (the
  # commit, the hub, the first write), and first to last receipt (the
  # fan-out itself).  Medians and maxima over the phase's events, in ms.
  local per_event first spread
  per_event=$(cat "$BENCH_TMP"/hist."$tag".* | awk '
      $1 == "E" { at[$2] = $3; if (!($2 in f) || $4 < f[$2]) f[$2] = $4; if ($5 > l[$2]) l[$2] = $5 }
      END { for (i in at) print f[i] - at[i], l[i] - f[i] }')
  first=$(cut -d' ' -f1 <<<"$per_event" | median_max)
  spread=$(cut -d' ' -f2 <<<"$per_event" | median_max)
  PH_SPLIT="at -> first receipt median ${first% *} ms (max ${first#* }), first -> last receipt median ${spread% *} ms (max ${spread#* }), over $(wc -l <<<"$per_event") events"
  # Each event's fan-out time (first -> last receipt), in event order.
  PH_SPREADS=$(cat "$BENCH_TMP"/hist."$tag".* | awk '
      $1 == "E" { if (!($2 in f) || $4 < f[$2]) f[$2] = $4; if ($5 > l[$2]) l[$2] = $5 }
      END { for (i in f) print i, l[i] - f[i] }' | sort -n | awk '{ printf "%s%.0f", (NR > 1 ? " " : ""), $2 }')
}

# perf_start PHASE PID / perf_stop: profile the serve process during PHASE.
PERF_PID=""
perf_start() {
  [[ $FANOUT_PERF == "$1" ]] || return 0
  perf record -e cpu-clock -g -o "$BENCH_TMP/perf.data" -p "$2" >/dev/null 2>"$BENCH_TMP/perf.err" &
  PERF_PID=$!
  BENCH_PIDS+=("$PERF_PID")
  nap 0.5
}
perf_stop() {
  [[ -n $PERF_PID ]] || return 0
  kill -INT "$PERF_PID" 2>/dev/null || true
  wait "$PERF_PID" 2>/dev/null || true
  forget_pid "$PERF_PID"
  PERF_PID=""
  [[ -z ${FANOUT_PERF_KEEP:-} ]] || cp "$BENCH_TMP/perf.data" "$FANOUT_PERF_KEEP"
  note "perf ($FANOUT_PERF), by thread and symbol, self time:"
  perf report -i "$BENCH_TMP/perf.data" --no-children -g none --sort pid,sym --stdio 2>/dev/null |
    grep -v '^#' | grep '%.*\[' | head -n 45 >&2 || true
}

# ---- events ---------------------------------------------------------------
head -c 48 /dev/urandom | base64 -w0 >"$BENCH_TMP/small.txt"
# post_event URL: one upload (assetd) or one POST /event (reference); 201 or die.
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
    # the time left is read once: read twice it can be negative the second time
    while left=$((due - $(now_us))); ((left > 0)); do nap "$(printf '0.%06d' $((left % 1000000)))"; done
    post_event "$1$2$e.txt"
  done
}
# burst URL_PREFIX: BURST events, UPLOADERS at a time, over keep-alive connections.
burst() {
  local i
  for ((i = 1; i <= BURST; i++)); do printf 'url = "%sb%d.txt"\noutput = "/dev/null"\n' "$1" "$i"; done \
    >"$BENCH_TMP/burst.cfg"
  timeout "$FANOUT_TIMEOUT" curl -sS --no-progress-meter -Z --parallel-max "$UPLOADERS" --parallel-immediate \
    --max-time 30 -X POST -H "$AUTH" -H 'Content-Type: text/plain' --data-binary @"$BENCH_TMP/small.txt" \
    -K "$BENCH_TMP/burst.cfg" -w '%{http_code}\n' >"$BENCH_TMP/burst.codes" 2>"$BENCH_TMP/burst.err" || true
  local ok
  ok=$(grep -c '^201$' "$BENCH_TMP/burst.codes" || true)
  ((ok == BURST)) || die "burst: $ok of $BURST posts answered 201 ($(sort "$BENCH_TMP/burst.codes" | uniq -c | tr '\n' ' ')) $(head -c 300 "$BENCH_TMP/burst.err")"
}

# server_conns SIDE: WebSocket connections the server counts (assetd's
# /metrics, the reference's /stats).
server_conns() {
  if [[ $1 == assetd ]]; then
    curl -sS --max-time 10 -H "$AUTH" "$ASSETD_URL/metrics" | awk '$1 == "assetd_websocket_connections" { print $2 }'
  else
    curl -sS --max-time 10 "$REF_URL/stats" | sed -n 's/.*"clients":\([0-9]*\).*/\1/p'
  fi
}

# ---- one side, one round --------------------------------------------------
# run_side SIDE ROUND [serve args]: sets R_P50 R_P99 R_MAX R_RATE R_BYTES.
run_side() {
  local side=$1 r=$2; shift 2
  local i spid url_ws rss0 rss1 rss2 lrss t0 t1 s0 s1 m0 m1 l0 l1 prefix
  if [[ $side == assetd ]]; then
    start_assetd "$BENCH_TMP/r$r/assetd" --workers 0 "$@"
    spid=$ASSETD_PID
    AUTH="Authorization: Bearer $ASSETD_TOKEN"
    prefix="$ASSETD_URL/v1/assets?filename="
    url_ws="ws://127.0.0.1:$ASSETD_PORT/v1/events?types=asset.created"
    # Warm-up (and the asset JSON the reference sends as its data).
    curl -sS --max-time 10 -X POST -H "$AUTH" -H 'Content-Type: text/plain' --data-binary @"$BENCH_TMP/small.txt" \
      -o "$BENCH_TMP/asset.json" -w '%{http_code}' "${prefix}warmup.txt" >"$BENCH_TMP/code" || true
    [[ $(<"$BENCH_TMP/code") == 201 ]] || die "warm-up upload answered $(<"$BENCH_TMP/code"): $(head -c 300 "$BENCH_TMP/asset.json")"
    label_threads "$spid"
  else
    [[ -s $BENCH_TMP/asset.json ]] ||
      printf '{"id":"%s","kind":"other","status":"uploaded","filename":"warmup.txt","content_type":"text/plain","size":64,"sha256":"%s","created":"2026-01-01T00:00:00.000Z","updated":"2026-01-01T00:00:00.000Z","renditions":[],"meta":{},"error":null,"url":"/v1/assets/%s/content"}\n' \
        XXXXXXXXXXXXXXXXXXXXXX "$(sha256sum "$BENCH_TMP/small.txt" | cut -c1-64)" XXXXXXXXXXXXXXXXXXXXXX >"$BENCH_TMP/asset.json"
    "${SRV_PIN[@]}" node --expose-gc "$BENCH_ROOT/bench/ws_reference_server.mjs" "$BENCH_TMP/asset.json" \
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
    AUTH="Authorization: Bearer unused"
    REF_URL=http://127.0.0.1:$port
    prefix="$REF_URL/event?filename="
    url_ws="ws://127.0.0.1:$port/v1/events?types=asset.created"
    post_event "${prefix}warmup.txt"
    curl -sS --max-time 10 -X POST -o /dev/null "http://127.0.0.1:$port/gc"
  fi
  nap 0.5
  rss0=$(kib_of "$spid" VmRSS)

  # 1. idle memory
  t0=$(now_us)
  start_listeners "$url_ws" "$AUTH"
  nap 2
  [[ $side == ref ]] && curl -sS --max-time 10 -X POST -o /dev/null "http://127.0.0.1:$port/gc"
  rss1=$(kib_of "$spid" VmRSS)
  lrss=$(listeners_rss_kib)
  local nconn
  nconn=$(server_conns "$side")
  [[ $nconn == "$LISTENERS" ]] || die "$side counts ${nconn:-?} WebSocket connections, want $LISTENERS"
  R_BYTES=$(awk -v a="$rss0" -v b="$rss1" -v n="$LISTENERS" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }')
  note "round $r: $side: $LISTENERS connections open in $(fmt %.1f "$(awk -v m="$CONNECT_MS" 'BEGIN { print m / 1000 }')") s; server RSS $(mib "$rss0") -> $(mib "$rss1") MiB idle = $R_BYTES bytes per connection; listeners' RSS $(mib "$lrss") MiB in $LISTENER_PROCS processes"

  # 2. latency (after untimed warm-up events)
  if ((WARMUP_EVENTS > 0)); then
    phase_begin warm "$WARMUP_EVENTS"
    steady_events "$prefix" warm "$WARMUP_EVENTS"
    phase_wait warm "$WARMUP_EVENTS"
    note "round $r: $side: warm-up: fan-out time of each event, ms: $PH_SPREADS (latency p50 $PH_P50 ms, p99 $PH_P99 ms)"
  fi
  wait_quiet 40 phase   # up to 20 s; the idle listeners and server count
  [[ $side == assetd ]] && cpu_snap "$spid" "$BENCH_TMP/cpu0"
  s0=$(ticks_of "$spid"); l0=$(ticks_of "${LPIDS[@]}"); read -r m0 _ < <(machine_ticks)
  perf_start lat "$spid"
  phase_begin lat "$EVENTS"
  t0=$(now_us)
  steady_events "$prefix" lat "$EVENTS"
  phase_wait lat "$EVENTS"
  t1=$PH_END_US
  s1=$(ticks_of "$spid"); l1=$(ticks_of "${LPIDS[@]}"); read -r m1 _ < <(machine_ticks)
  perf_stop
  R_P50=$PH_P50 R_P99=$PH_P99 R_MAX=$PH_MAX
  local groups=""
  if [[ $side == assetd ]]; then
    cpu_snap "$spid" "$BENCH_TMP/cpu1"
    groups=" ($(cpu_groups "$BENCH_TMP/cpu0" "$BENCH_TMP/cpu1" $((t1 - t0))))"
  fi
  note "round $r: $side: latency over $((LISTENERS * EVENTS)) deliveries: min $PH_MIN ms, p50 $R_P50 ms, p99 $R_P99 ms, max $R_MAX ms; $PH_SPLIT"
  note "round $r: $side: fan-out time (first -> last receipt) of each event, ms: $PH_SPREADS"
  note "round $r: $side: latency phase CPU over $(fmt %.1f "$(awk -v u=$((t1 - t0)) 'BEGIN { print u / 1e6 }')") s: server $(cores $((s1 - s0)) $((t1 - t0)))$groups, listeners $(cores $((l1 - l0)) $((t1 - t0))), machine $(cores $((m1 - m0)) $((t1 - t0))) of $(nproc) (rest: $(cores $((m1 - m0 - (s1 - s0) - (l1 - l0))) $((t1 - t0))), curl and others)"

  # 3. throughput
  wait_quiet 40 phase   # up to 20 s; the idle listeners and server count
  [[ $side == assetd ]] && cpu_snap "$spid" "$BENCH_TMP/cpu0"
  s0=$(ticks_of "$spid"); l0=$(ticks_of "${LPIDS[@]}"); read -r m0 _ < <(machine_ticks)
  phase_begin burst "$BURST"
  perf_start burst "$spid"
  t0=$(now_us)
  burst "$prefix"
  local t_up
  t_up=$(now_us)
  phase_wait burst "$BURST"
  t1=$PH_END_US
  s1=$(ticks_of "$spid"); l1=$(ticks_of "${LPIDS[@]}"); read -r m1 _ < <(machine_ticks)
  perf_stop
  R_RATE=$(awk -v n=$((LISTENERS * BURST)) -v a="$PH_MIN_AT" -v b="$PH_MAX_RX" 'BEGIN { printf "%.0f", (b > a ? n / ((b - a) / 1000) : 0) }')
  groups=""
  if [[ $side == assetd ]]; then
    cpu_snap "$spid" "$BENCH_TMP/cpu1"
    groups=" ($(cpu_groups "$BENCH_TMP/cpu0" "$BENCH_TMP/cpu1" $((t1 - t0))))"
  fi
  note "round $r: $side: burst of $BURST: posts done in $(awk -v u=$((t_up - t0)) 'BEGIN { printf "%.2f", u / 1e6 }') s, $((LISTENERS * BURST)) deliveries in $(awk -v a="$PH_MIN_AT" -v b="$PH_MAX_RX" 'BEGIN { printf "%.2f", (b - a) / 1000 }') s = $R_RATE/s (latency p50 $PH_P50 ms, p99 $PH_P99 ms, max $PH_MAX ms); CPU over $(awk -v u=$((t1 - t0)) 'BEGIN { printf "%.1f", u / 1e6 }') s: server $(cores $((s1 - s0)) $((t1 - t0)))$groups, listeners $(cores $((l1 - l0)) $((t1 - t0))), machine $(cores $((m1 - m0)) $((t1 - t0))) of $(nproc) (rest: $(cores $((m1 - m0 - (s1 - s0) - (l1 - l0))) $((t1 - t0))), curl and others)"

  ((FANOUT_HOLD == 0)) || { note "holding $FANOUT_HOLD s (server pid $spid)"; nap "$FANOUT_HOLD"; }
  stop_listeners
  local tc left=""
  tc=$(now_us)
  for ((i = 0; i < 300; i++)); do
    left=$(server_conns "$side")
    [[ $left == 0 ]] && break
    nap 0.1
  done
  note "round $r: $side: $((LISTENERS - ${left:-0})) of $LISTENERS connections closed on the server in $(awk -v u=$(($(now_us) - tc)) 'BEGIN { printf "%.1f", u / 1e6 }') s after the listeners ended"
  rss2=$(kib_of "$spid" VmRSS)
  note "round $r: $side: server RSS $(mib "${rss2:-0}") MiB after the listeners left (peak $(mib "$(kib_of "$spid" VmHWM)") MiB)"
  stop_pid "$spid"; forget_pid "$spid"
  ASSETD_PID=""
  rm -rf "$BENCH_TMP/r$r" "$BENCH_TMP"/hist.* "$BENCH_TMP"/out.* "$BENCH_TMP"/err.* "$BENCH_TMP"/ctl.*
}

# ---- rounds ---------------------------------------------------------------
# shellcheck disable=SC2034  # read by start_assetd (lib.sh)
SERVER_WRAP=("${SRV_PIN[@]}")   # taskset execs the server: same pid
declare -A best_p50 best_p99 best_max best_rate best_bytes
for s in assetd ref; do best_p99[$s]=""; best_rate[$s]=0; best_bytes[$s]=""; best_p50[$s]=""; best_max[$s]=""; done
for ((r = 1; r <= FANOUT_ROUNDS; r++)); do
  for s in $FANOUT_SIDES; do
    if [[ $s == assetd ]]; then run_side assetd "$r" "$@"; else run_side ref "$r"; fi
    if [[ -z ${best_p99[$s]} ]] || ge "${best_p99[$s]}" "$R_P99"; then
      best_p99[$s]=$R_P99 best_p50[$s]=$R_P50 best_max[$s]=$R_MAX
    fi
    ge "$R_RATE" "${best_rate[$s]}" && best_rate[$s]=$R_RATE
    if [[ -z ${best_bytes[$s]} ]] || ge "${best_bytes[$s]}" "$R_BYTES"; then best_bytes[$s]=$R_BYTES; fi
  done
done

verdict() { if awk -v a="$1" -v b="$2" -v op="$3" 'BEGIN { exit !(op == "le" ? a <= b : a >= b) }'; then echo met; else echo MISSED; fi; }
a_p99=${best_p99[assetd]} r_p99=${best_p99[ref]}
echo "events_fanout latency: $LISTENERS listeners x $EVENTS events every $EVENT_INTERVAL_MS ms:" \
     "assetd p50 $(na "${best_p50[assetd]}") ms, p99 $(na "$a_p99") ms (max $(na "${best_max[assetd]}"));" \
     "ref p50 $(na "${best_p50[ref]}") ms, p99 $(na "$r_p99") ms (max $(na "${best_max[ref]}"));" \
     "p99 ref/assetd $(ratio "${r_p99:-0}" "${a_p99:-0}") (target p99 <= $TARGET_P99_MS ms: $( [[ -n $a_p99 ]] && verdict "$a_p99" "$TARGET_P99_MS" le || echo '-'))"
echo "events_fanout throughput: $LISTENERS listeners x burst of $BURST ($UPLOADERS uploaders):" \
     "assetd ${best_rate[assetd]} deliveries/s, ref ${best_rate[ref]}; assetd/ref $(ratio "${best_rate[assetd]}" "${best_rate[ref]}")" \
     "(target >= $TARGET_RATE/s: $( [[ ${best_rate[assetd]} != 0 ]] && verdict "${best_rate[assetd]}" "$TARGET_RATE" ge || echo '-'))"
echo "events_fanout memory: assetd $(na "${best_bytes[assetd]}") bytes per idle connection, ref $(na "${best_bytes[ref]}");" \
     "ref/assetd $(ratio "${best_bytes[ref]:-0}" "${best_bytes[assetd]:-0}")" \
     "(target <= $TARGET_BYTES: $( [[ -n ${best_bytes[assetd]} ]] && verdict "${best_bytes[assetd]}" "$TARGET_BYTES" le || echo '-'))${*:+ [assetd $*]}"
exit 0
