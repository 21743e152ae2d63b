# Listener processes for the WebSocket fan-out benchmarks (sourced by
# events_fanout.sh and slides_fanout.sh after lib.sh).
#
# LISTENER_PROCS node processes (bench/ws_listeners.mjs) share LISTENERS
# connections; each is driven by lines on a FIFO (mark, close) and reports
# on its stdout file.  Needs LISTENERS, LISTENER_PROCS, CONNECT_BATCH,
# FANOUT_TIMEOUT; CLI_PIN (optional) prefixes the node command.

LPIDS=() LFDS=()
# start_listeners URL [AUTH]: returns once every connection is open; AUTH
# ("Authorization: Bearer KEY") is sent on each handshake.  Sets CONNECT_MS.
start_listeners() {
  local url=$1 auth=${2:-} i n share rest fd deadline ready line
  share=$((LISTENERS / LISTENER_PROCS)) rest=$((LISTENERS % LISTENER_PROCS))
  LPIDS=() LFDS=()
  for ((i = 0; i < LISTENER_PROCS; i++)); do
    n=$((share + (i < rest ? 1 : 0)))
    rm -f "$BENCH_TMP/ctl.$i" "$BENCH_TMP/out.$i"
    mkfifo "$BENCH_TMP/ctl.$i"
    WS_AUTH=${auth#Authorization: } WS_NAME="listeners $i" ${CLI_PIN[@]+"${CLI_PIN[@]}"} \
      node "$BENCH_ROOT/bench/ws_listeners.mjs" "$url" "$n" "$CONNECT_BATCH" \
      <"$BENCH_TMP/ctl.$i" >"$BENCH_TMP/out.$i" 2>"$BENCH_TMP/err.$i" &
    LPIDS+=("$!")
    BENCH_PIDS+=("$!")
    exec {fd}>"$BENCH_TMP/ctl.$i"     # opens once node's stdin has: no deadlock
    LFDS+=("$fd")
  done
  deadline=$(($(now_us) + FANOUT_TIMEOUT * 1000000))
  CONNECT_MS=0
  while :; do
    ready=0
    for ((i = 0; i < LISTENER_PROCS; i++)); do
      line=$(grep -m1 '^\(ready\|error\) ' "$BENCH_TMP/out.$i" || true)
      [[ $line == error* ]] && die "${line#error }"
      if [[ $line == ready* ]]; then
        ready=$((ready + 1))
        read -r _ _ n <<<"$line"
        ((n > CONNECT_MS)) && CONNECT_MS=$n
      elif ! kill -0 "${LPIDS[i]}" 2>/dev/null; then
        cat "$BENCH_TMP/err.$i" >&2
        die "listener process $i exited before it was ready"
      fi
    done
    ((ready == LISTENER_PROCS)) && break
    (($(now_us) < deadline)) || die "only $ready of $LISTENER_PROCS listener processes ready after ${FANOUT_TIMEOUT} s"
    nap 0.1
  done
}

tell_listeners() {
  local fd
  for fd in "${LFDS[@]}"; do echo "$*" >&"$fd"; done
}

stop_listeners() {
  local fd p i
  tell_listeners close
  for fd in "${LFDS[@]}"; do exec {fd}>&-; done
  for p in "${LPIDS[@]}"; do
    for ((i = 0; i < 50; i++)); do kill -0 "$p" 2>/dev/null || break; nap 0.1; done
    stop_pid "$p"; forget_pid "$p"
  done
  LPIDS=() LFDS=()
}

listeners_rss_kib() {
  local p t=0
  for p in "${LPIDS[@]}"; do t=$((t + $(kib_of "$p" VmRSS))); done
  echo "$t"
}

