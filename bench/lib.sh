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

TICK=$(getconf CLK_TCK)
# CPU ticks (user+sys, all threads) used so far by a process and its live
# children (nginx's workers).
cpu_ticks() {
  local pids=("$1") p t=0
  mapfile -t -O 1 pids < <(ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' ')
  for p in "${pids[@]}"; do
    [[ -r /proc/$p/stat ]] || continue
    t=$((t + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
  done
  echo "$t"
}

# Format helpers (awk, so no bc needed).
fmt() { awk -v v="$2" "BEGIN { printf \"$1\", v }"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "nan" }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
