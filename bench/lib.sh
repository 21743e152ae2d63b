# Shared helpers for the benchmark scripts (sourced, not run).
#
# Every server started here listens on 127.0.0.1 only and is stopped by
# bench_cleanup, which the scripts install as their EXIT trap; every temporary
# file lives under one directory ($BENCH_TMP) that the cleanup removes.

# shellcheck disable=SC2034  # globals set here are read by the scripts
BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ASSETD_BIN=${ASSETD_BIN:-$BENCH_ROOT/build/assetd}
BENCH_TMP=""
BENCH_PIDS=()        # servers to stop on exit (their main process ids)
SERVER_WRAP=()       # command prefix for servers, e.g. (taskset -c 0); must exec

die() { echo "$(basename "$0"): error: $*" >&2; exit 2; }
note() { echo "  $*" >&2; }

# bench_init PREFIX: make the private temp dir and install the cleanup trap.
# The temp dir is on the filesystem of ${BENCH_TMPDIR:-${TMPDIR:-/tmp}}.
bench_init() {
  local base=${BENCH_TMPDIR:-${TMPDIR:-/tmp}}
  BENCH_TMP=$(mktemp -d "$base/assetd-bench-$1.XXXXXX") || die "mktemp failed in $base"
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# Stop one process: SIGTERM, wait up to 15 s, then SIGKILL.
stop_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    note "pid $pid ignored SIGTERM for 15 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

bench_cleanup() {
  local rc=$? pid
  set +e
  for pid in "${BENCH_PIDS[@]}"; do stop_pid "$pid"; done
  BENCH_PIDS=()
  # after the servers, which hold connections to it; before its directory goes
  stop_postgres
  [[ -n $BENCH_TMP && -d $BENCH_TMP ]] && rm -rf -- "$BENCH_TMP"
  exit "$rc"
}

forget_pid() {
  local keep=() p
  for p in "${BENCH_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  BENCH_PIDS=("${keep[@]}")
}

need() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || die "'$c' is not installed (apt-get install -y wrk nginx-light curl)"
  done
}

# start_assetd DATADIR [extra serve args...]
# Sets ASSETD_PID, ASSETD_PORT, ASSETD_TOKEN, ASSETD_URL.  The server's stderr
# goes to DATADIR.log.
start_assetd() {
  local data=$1; shift
  local log=$data.log i
  [[ -x $ASSETD_BIN ]] || die "$ASSETD_BIN not found: run 'make -C $BENCH_ROOT' first"
  # Run a private copy: a rebuild of build/assetd during a run must not mix
  # two binaries into one set of figures.
  if [[ ! -x $BENCH_TMP/assetd-bin ]]; then
    cp "$ASSETD_BIN" "$BENCH_TMP/assetd-bin" || die "cannot copy $ASSETD_BIN"
    note "binary: $ASSETD_BIN ($(date -r "$ASSETD_BIN" '+%F %T'), sha256 $(sha256sum "$ASSETD_BIN" | cut -c1-12))"
  fi
  mkdir -p "$data"
  : >"$log"
  "${SERVER_WRAP[@]}" "$BENCH_TMP/assetd-bin" serve --listen 127.0.0.1:0 --data "$data" --access-log off \
      --log-level info "$@" >/dev/null 2>"$log" &
  ASSETD_PID=$!
  BENCH_PIDS+=("$ASSETD_PID")
  ASSETD_PORT=""
  for ((i = 0; i < 100; i++)); do           # up to 10 s
    ASSETD_PORT=$(sed -n 's/.*"msg":"listening".*"addr":"127\.0\.0\.1:\([0-9][0-9]*\)".*/\1/p' "$log" | head -n1 || true)
    [[ -n $ASSETD_PORT ]] && break
    kill -0 "$ASSETD_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z $ASSETD_PORT ]]; then
    cat "$log" >&2
    die "assetd did not start (no 'listening' line in its log)"
  fi
  [[ -s $data/admin.key ]] || die "assetd started but wrote no $data/admin.key"
  ASSETD_TOKEN=$(<"$data/admin.key")
  ASSETD_URL=http://127.0.0.1:$ASSETD_PORT
}

# start_assetd_one_worker DATADIR [serve args...]: start_assetd with one
# worker; waits up to 10 s for it to start and sets WORKER_PID (serve's only
# child).  Otherwise calls the script's assetd_broken.
start_assetd_one_worker() {
  local data=$1; shift
  start_assetd "$data" --workers 1 "$@"
  local i started=0 kids=()
  for ((i = 0; i < 100; i++)); do
    started=$(grep -c '"msg":"worker started"' "$data.log" || true)
    ((started >= 1)) && break
    nap 0.1
  done
  ((started >= 1)) || assetd_broken "the worker did not start in 10 s"
  mapfile -t kids < <(pgrep -P "$ASSETD_PID")
  ((${#kids[@]} == 1)) || assetd_broken "serve has ${#kids[@]} child processes, want 1"
  WORKER_PID=${kids[0]}
}

stop_assetd() {
  [[ -n ${ASSETD_PID:-} ]] || return 0
  stop_pid "$ASSETD_PID"
  forget_pid "$ASSETD_PID"
  ASSETD_PID=""
}

# A TCP port on 127.0.0.1 that nothing listens on right now.  (The caller
# retries if it is taken before it binds.)
free_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 40000))
    if command -v ss >/dev/null 2>&1; then
      [[ -z $(ss -Htln "sport = :$p" 2>/dev/null) ]] && { echo "$p"; return 0; }
    elif ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then   # nobody answers
      echo "$p"; return 0
    fi
  done
  return 1
}

# start_nginx DIR WORKERS: nginx serving DIR/www on 127.0.0.1:free port, with
# its config, pid file, temp paths and error log all inside DIR.
# Sets NGINX_PID, NGINX_PORT, NGINX_URL.
start_nginx() {
  local dir=$1 workers=$2 attempt i
  mkdir -p "$dir/www" "$dir/tmp"
  # Run as root, nginx's workers drop to 'nobody': let them reach the files
  # (mktemp -d dirs are 0700).  Traversal only on the dirs above www.
  chmod 0711 "$BENCH_TMP" "$dir"
  chmod -R a+rX "$dir/www"
  for ((attempt = 0; attempt < 5; attempt++)); do
    NGINX_PORT=$(free_port) || die "no free port found for nginx"
    cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $workers;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  default_type application/json;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $dir/www;
  }
}
EOF
    "${SERVER_WRAP[@]}" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
    NGINX_PID=$!
    BENCH_PIDS+=("$NGINX_PID")
    for ((i = 0; i < 50; i++)); do          # up to 5 s
      # Any HTTP answer (even 404) from our own, still-running nginx will do.
      if kill -0 "$NGINX_PID" 2>/dev/null &&
         [[ $(curl -s -o /dev/null --max-time 1 -w '%{http_code}' "http://127.0.0.1:$NGINX_PORT/" || true) != 000 ]]; then
        NGINX_URL=http://127.0.0.1:$NGINX_PORT
        return 0
      fi
      kill -0 "$NGINX_PID" 2>/dev/null || break
      sleep 0.1
    done
    stop_pid "$NGINX_PID"; forget_pid "$NGINX_PID"
    note "nginx failed on port $NGINX_PORT (retrying): $(tail -n1 "$dir/error.log" 2>/dev/null)"
  done
  cat "$dir/error.log" >&2 2>/dev/null
  die "nginx did not start"
}

stop_nginx() {
  [[ -n ${NGINX_PID:-} ]] || return 0
  stop_pid "$NGINX_PID"
  forget_pid "$NGINX_PID"
  NGINX_PID=""
}

# start_s3rver DIR: a private s3rver (tests/node_modules, the e2e tests'
# child script) storing its objects in DIR/data, on a port it picks itself
# (port 0), its output in DIR/s3rver.log.  s3rver knows the access key
# S3RVER and checks no signature.  Sets S3RVER_PID, S3RVER_PORT, S3RVER_URL.
start_s3rver() {
  local dir=$1 i
  local child=$BENCH_ROOT/tests/e2e/s3rver-child.mjs
  [[ -d $BENCH_ROOT/tests/node_modules/s3rver ]] ||
    die "s3rver is not installed: run 'scripts/install-deps.sh --test' (npm ci in tests/)"
  need node
  mkdir -p "$dir/data"
  : >"$dir/s3rver.log"
  # --openssl-legacy-provider: s3rver's continuation tokens use DES.
  "${SERVER_WRAP[@]}" node --openssl-legacy-provider "$child" "$dir/data" >"$dir/s3rver.log" 2>&1 &
  S3RVER_PID=$!
  BENCH_PIDS+=("$S3RVER_PID")
  S3RVER_PORT=""
  for ((i = 0; i < 300; i++)); do           # up to 30 s
    S3RVER_PORT=$(sed -n 's/^{"port":\([0-9][0-9]*\)}$/\1/p' "$dir/s3rver.log" | head -n1 || true)
    [[ -n $S3RVER_PORT ]] && break
    kill -0 "$S3RVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z $S3RVER_PORT ]]; then
    cat "$dir/s3rver.log" >&2
    die "s3rver did not start (no port line on its output)"
  fi
  S3RVER_URL=http://127.0.0.1:$S3RVER_PORT
}

TICK=$(getconf CLK_TCK)
# CPU ticks (user+sys, all threads, dead ones included) of the given processes.
ticks_of() {
  local p t=0
  for p in "$@"; do
    [[ -r /proc/$p/stat ]] || continue
    t=$((t + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
  done
  echo "$t"
}
# CPU ticks used so far by a process and its live children (nginx's workers).
cpu_ticks() {
  local pids=("$1")
  mapfile -t -O 1 pids < <(ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' ')
  ticks_of "${pids[@]}"
}
# Machine-wide busy CPU ticks (all cores) and the total, from /proc/stat.
machine_ticks() { awk '$1 == "cpu" { t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t; exit }' /proc/stat; }
# busy_cores B0 B1 WALL: cores kept busy between two tick samples.
busy_cores() { awk -v a="$1" -v b="$2" -v hz="$TICK" -v w="$3" 'BEGIN { printf "%.2f", (b - a) / hz / w }'; }
# kib_of PID FIELD: a /proc/PID/status size (VmRSS, VmHWM...) in KiB.
kib_of() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null; }

# Sleeping is a read with a timeout on a pipe nobody writes: polling loops
# fork nothing, so they take no CPU from what they measure.
exec {SLEEP_FD}<> <(:)
nap() { read -r -t "$1" -u "$SLEEP_FD" _ || true; }
now_us() { echo "${EPOCHREALTIME/./}"; }

# wait_quiet TRIES WHEN: the machine is shared (tests run beside us).  Wait
# up to TRIES half seconds for one in which the whole machine used less than
# 0.25 cores; go ahead anyway after that, with a note naming WHEN.
wait_quiet() {
  local i a b busy
  for ((i = 0; i < $1; i++)); do
    read -r a _ < <(machine_ticks)
    nap 0.5
    read -r b _ < <(machine_ticks)
    busy=$(busy_cores "$a" "$b" 0.5)
    ge 0.25 "$busy" && return 0
  done
  note "the machine is busy ($busy cores used by others before the $2): figures will be low"
}

# http_get PATH: sets HTTP_CODE and HTTP_BODY (assetd at ASSETD_PORT with
# ASSETD_TOKEN, Connection: close).  Bash's /dev/tcp: no fork per poll.
http_get() {
  local fd resp=""
  HTTP_CODE=000 HTTP_BODY=""
  { exec {fd}<>"/dev/tcp/127.0.0.1/$ASSETD_PORT"; } 2>/dev/null || return 1
  printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n' \
    "$1" "$ASSETD_TOKEN" >&"$fd"
  IFS= read -r -d '' -t 5 -u "$fd" resp || true    # to EOF (no NUL in the answer)
  exec {fd}<&-
  [[ $resp == HTTP/1.?\ [0-9][0-9][0-9]* ]] || return 1
  HTTP_CODE=${resp:9:3}
  HTTP_BODY=${resp#*$'\r\n\r\n'}
}

# Format helpers (awk, so no bc needed).
fmt() { awk -v v="$2" "BEGIN { printf \"$1\", v }"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "nan" }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# secs T0 T1 and per_s N T0 T1, for $EPOCHREALTIME stamps.
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
per_s() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.2f", n / (b - a) }'; }
# median_max: numbers on stdin -> "MEDIAN MAX" (%.1f).
median_max() { sort -g | awk '{ v[NR] = $1 } END { printf "%.1f %.1f", v[int((NR + 1) / 2)], v[NR] }'; }
# na VALUE: the value, or "-" when there is none.
na() { [[ -n $1 ]] && echo "$1" || echo "-"; }

# ---- wrk load (get_asset.sh, signed_get.sh) --------------------------------
# BENCH_PIN none|split: with split, servers run on CPU 0 (SERVER_WRAP) and
# wrk on CPU 1 (WRK_PIN), so neither steals the other's core.
bench_pin() {
  case ${BENCH_PIN:-none} in
    none) SERVER_WRAP=(); WRK_PIN=() ;;
    split) need taskset; SERVER_WRAP=(taskset -c 0); WRK_PIN=(taskset -c 1) ;;   # taskset execs: same pid
    *) die "BENCH_PIN must be none or split" ;;
  esac
}

# run_wrk NAME URL SERVER_PID DURATION [HEADER] -> prints
# "REQS_PER_S SERVER_CORES WRK_CORES"; dies on wrk failure, non-2xx answers
# or a server that died under load.  Uses WRK_THREADS and WRK_CONNS.
run_wrk() {
  local name=$1 url=$2 spid=$3 dur=$4 hdr=() out=$BENCH_TMP/wrk.out t0 t1 c0 c1 wall rps non2xx sockerr wrkcpu
  [[ -n ${5:-} ]] && hdr=(-H "$5")
  c0=$(cpu_ticks "$spid"); t0=$(date +%s.%N)
  local TIMEFORMAT='%U %S'
  { time timeout 120 "${WRK_PIN[@]}" wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$dur" \
        "${hdr[@]}" "$url" >"$out" 2>&1; } 2>"$BENCH_TMP/wrk.time" ||
    { cat "$out" >&2; die "wrk against $name failed"; }
  t1=$(date +%s.%N); c1=$(cpu_ticks "$spid")
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  [[ -n $rps ]] || { cat "$out" >&2; die "no Requests/sec in wrk output for $name"; }
  non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
  [[ -z $non2xx ]] || { cat "$out" >&2; die "$name answered $non2xx non-2xx responses under load"; }
  sockerr=$(grep -m1 'Socket errors' "$out" || true)
  [[ -z $sockerr ]] || note "$name: $sockerr"
  kill -0 "$spid" 2>/dev/null || die "$name died under load"
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  wrkcpu=$(awk -v w="$wall" '{ printf "%.2f", ($1 + $2) / w }' "$BENCH_TMP/wrk.time")
  printf '%s %s %s\n' "$rps" \
    "$(awk -v c=$((c1 - c0)) -v hz="$TICK" -v w="$wall" 'BEGIN { printf "%.2f", c / hz / w }')" "$wrkcpu"
}

# ---- a private RabbitMQ node (as tests/e2e/rabbitmq.mjs starts it) ----------
# start_rabbit sets RABBIT_URL, RABBIT_PID, BEAM_PID; stop_rabbit ends it
# (call it from the script's EXIT trap, before bench_cleanup).
RABBIT_SBIN=/usr/lib/rabbitmq/bin
RABBIT_PID="" RABBIT_ENV=() RABBIT_NODE=""
port_free() { [[ -z $(ss -Htln "sport = :$1" 2>/dev/null) ]]; }
rabbitctl() { env "${RABBIT_ENV[@]}" timeout 90 "$RABBIT_SBIN/rabbitmqctl" -n "$RABBIT_NODE" "$@"; }

# The node's AMQP port p must be <= 45535: its distribution port is
# p + 20000.  A private epmd (ERL_EPMD_PORT) so `epmd -kill` ends ours only.
start_rabbit() {
  local dir=$BENCH_TMP/rabbit port epmd i ok=0
  mkdir -p "$dir"
  echo '[].' >"$dir/enabled_plugins"   # no management plugin: faster
  for ((i = 0; i < 200; i++)); do
    port=$((20000 + RANDOM % 25536)) epmd=$((10000 + RANDOM % 9999))
    port_free "$port" && port_free $((port + 20000)) && port_free "$epmd" && { ok=1; break; }
  done
  ((ok)) || die "no free ports for RabbitMQ"
  RABBIT_NODE=assetd-bench-$$@localhost
  RABBIT_ENV=(HOME="$dir" RABBITMQ_NODENAME="$RABBIT_NODE"
    RABBITMQ_MNESIA_BASE="$dir/mnesia" RABBITMQ_LOG_BASE="$dir/log"
    RABBITMQ_PID_FILE="$dir/rabbit.pid" RABBITMQ_CONFIG_FILE="$dir/rabbitmq"
    RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
    RABBITMQ_NODE_PORT="$port" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    ERL_EPMD_PORT="$epmd" ERL_EPMD_ADDRESS=127.0.0.1 ERL_CRASH_DUMP="$dir/erl_crash.dump"
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}')
  # setsid: its own process group, killed whole if shutdown fails.
  env "${RABBIT_ENV[@]}" setsid "$RABBIT_SBIN/rabbitmq-server" >"$dir/server.out" 2>&1 </dev/null &
  RABBIT_PID=$!
  # `wait PIDFILE` until the node is registered, then await_startup until
  # the AMQP listener is up (ping answers before it is).
  if ! rabbitctl wait --timeout 60 "$dir/rabbit.pid" >"$dir/ctl.out" 2>&1 ||
     ! rabbitctl --timeout 60 await_startup >>"$dir/ctl.out" 2>&1; then
    cat "$dir/ctl.out" >&2; tail -n 30 "$dir/server.out" >&2
    die "rabbitmq-server did not start"
  fi
  RABBIT_URL="amqp://guest:guest@127.0.0.1:$port/%2f"
  BEAM_PID=$(<"$dir/rabbit.pid")
}

# shellcheck disable=SC2317  # called from the EXIT trap
stop_rabbit() {
  [[ -n $RABBIT_PID ]] || return 0
  local i
  rabbitctl shutdown >/dev/null 2>&1 || true
  for ((i = 0; i < 300; i++)); do kill -0 "$RABBIT_PID" 2>/dev/null || break; nap 0.1; done
  if kill -0 "$RABBIT_PID" 2>/dev/null; then
    note "rabbitmq-server did not shut down in 30 s; killing its process group"
    kill -KILL -- "-$RABBIT_PID" 2>/dev/null || true
  fi
  wait "$RABBIT_PID" 2>/dev/null || true
  env "${RABBIT_ENV[@]}" timeout 10 epmd -kill >/dev/null 2>&1 || true
  RABBIT_PID=""
}

# ---- a private PostgreSQL cluster (as tests/e2e/postgres.mjs starts it) ----
# start_postgres sets PG_URL (postgres://assetd@127.0.0.1:PORT, superuser,
# trust on 127.0.0.1) and makes database `bench`; durable settings (fsync,
# synchronous_commit on): a benchmark compares stores that keep their word.
# bench_cleanup stops it (stop_postgres), after the servers.
PG_BIN=/usr/lib/postgresql/15/bin
PG_DIR="" PG_URL=""
pg_as() { if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi; }
start_postgres() {
  local port i ok=0
  [[ -x $PG_BIN/initdb ]] || die "PostgreSQL 15 is not installed (scripts/install-deps.sh --test)"
  PG_DIR=$BENCH_TMP/pg
  mkdir -p "$PG_DIR"
  # as root the cluster runs as postgres, which must reach its directory
  ((EUID == 0)) && chmod o+x "$BENCH_TMP" && chown postgres: "$PG_DIR"
  pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U assetd -E UTF8 --locale C >"$BENCH_TMP/initdb.log" 2>&1 ||
    { cat "$BENCH_TMP/initdb.log" >&2; die "initdb failed"; }
  # A port free when ss looked can be taken before the postmaster binds it
  # (other work runs beside us): up to 5 tries, each on another port.
  local attempt
  for ((attempt = 0; attempt < 5; attempt++)); do
    ok=0
    for ((i = 0; i < 200; i++)); do
      port=$((20000 + RANDOM % 25536))
      port_free "$port" && { ok=1; break; }
    done
    ((ok)) || die "no free port for PostgreSQL"
    rm -f "$PG_DIR/log"
    pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 60 \
      -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null && break
    grep -q 'could not bind' "$PG_DIR/log" 2>/dev/null || attempt=5
    note "PostgreSQL did not start on port $port$( ((attempt < 4)) && echo ', retrying')"
  done
  ((attempt < 5)) || { cat "$PG_DIR/log" >&2; die "PostgreSQL did not start"; }
  PG_URL=postgres://assetd@127.0.0.1:$port
  psql -X -q -d "$PG_URL/postgres" -c 'CREATE DATABASE bench' || die "cannot make the bench database"
}
# shellcheck disable=SC2317  # called from the EXIT trap
stop_postgres() {
  [[ -n $PG_URL ]] || return 0
  pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  PG_URL=""
}
