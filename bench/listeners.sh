# Listener processes for the WebSocket fan-out benchmarks (sourced by
# events_fanout.sh and slides_fanout.sh after lib.sh).
#
# LISTENER_PROCS processes share LISTENERS connections; each is driven by
# lines on a FIFO (mark, close) and reports on its stdout file.  Two
# programs speak that protocol (see bench/ws_listeners.mjs):
#   LISTENER_IMPL=c     build/ws-listen (bench/ws_listen.c: epoll +
#                       libwslay, one read per message), the default: the
#                       listeners share the server's two cores, and this
#                       one leaves it the most.  One process by default:
#                       it finds many sockets ready per epoll_wait, so it
#                       is woken (and wakes the sender's CPU) least; 10,000
#                       listeners cost it ~0.15 of a core at 3 events/s
#                       (2 processes: 0.22, and p99 10-15 % higher)
#   LISTENER_IMPL=node  bench/ws_listeners.mjs (npm ws), 4 processes by
#                       default; about twice the CPU per message
# Settings shared by both benchmarks (defaults here; the scripts' headers
# document them): LISTENERS, CONNECT_BATCH, FANOUT_TIMEOUT, FANOUT_SIDES.
# CLI_PIN (optional) prefixes the listener command.

LISTENER_IMPL=${LISTENER_IMPL:-c}
case $LISTENER_IMPL in
  c)
    LISTENER_PROCS=${LISTENER_PROCS:-1}
    LISTENER_CMD=("$BENCH_ROOT/build/ws-listen")
    [[ -x ${LISTENER_CMD[0]} && ${LISTENER_CMD[0]} -nt $BENCH_ROOT/bench/ws_listen.c ]] ||
      make -C "$BENCH_ROOT" --no-print-directory build/ws-listen >&2 || die "cannot build build/ws-listen"
    ;;
  node)
    LISTENER_PROCS=${LISTENER_PROCS:-4}
    LISTENER_CMD=(node "$BENCH_ROOT/bench/ws_listeners.mjs")
    ;;
  *) die "LISTENER_IMPL must be c or node" ;;
esac
LISTENERS=${LISTENERS:-10000}
CONNECT_BATCH=${CONNECT_BATCH:-50}
FANOUT_TIMEOUT=${FANOUT_TIMEOUT:-120}
FANOUT_SIDES=${FANOUT_SIDES:-assetd ref}
WS_DIR=$BENCH_ROOT/tests/node_modules/ws   # npm ws: the reference server's

# listeners_check: validates the shared settings, checks for what both
# benchmarks run (node and npm ws for the reference, curl, the tools the
# reports go through), and raises ulimit -n: the server holds N sockets and
# the listener processes their shares.
listeners_check() {
  local v s want_fds=$((LISTENERS + 2048))
  for v in LISTENERS LISTENER_PROCS CONNECT_BATCH FANOUT_TIMEOUT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"
  done
  ((LISTENER_PROCS <= LISTENERS)) || die "LISTENER_PROCS must be <= LISTENERS"
  for s in $FANOUT_SIDES; do [[ $s == assetd || $s == ref ]] || die "FANOUT_SIDES: assetd and/or ref"; done
  need node curl awk sed sort mkfifo
  [[ -f $WS_DIR/package.json ]] ||
    die "npm package ws not found in $BENCH_ROOT/tests/node_modules (scripts/install-deps.sh --test)"
  if (($(ulimit -n) < want_fds)); then
    ulimit -n "$want_fds" 2>/dev/null || die "ulimit -n is $(ulimit -n) and cannot be raised to $want_fds"
  fi
}

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
      "${LISTENER_CMD[@]}" "$url" "$n" "$CONNECT_BATCH" \
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

