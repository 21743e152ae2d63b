#!/usr/bin/env bash
# Installs the Debian packages assetd needs to build, run and test, and the
# npm packages the web page embeds (web/vendor/package.json: the build needs them).
# Idempotent: asks dpkg first and calls apt-get only for what is missing, and
# runs npm ci only where node_modules does not match its lock file.
#   scripts/install-deps.sh          build + run dependencies (ffmpeg; web/vendor's npm packages too)
#   scripts/install-deps.sh --test   also what the test suite and benchmarks use,
#                                    and the suite's npm packages (tests/package.json)
#   scripts/install-deps.sh --bench  --test, aws-cli (bench/s3_upload.sh's
#                                    reference client) unless an `aws` is on PATH,
#                                    python3-pika (bench/runs.sh's reference pipeline),
#                                    and bench/tus-server's npm packages (tus.sh's
#                                    reference server, @tus/server)
set -euo pipefail
cd "$(dirname "$0")/.."

build_pkgs=(
  build-essential pkg-config
  libmicrohttpd-dev libjansson-dev libsqlite3-dev libssl-dev libmagic-dev
  libvips-dev libcurl4-openssl-dev libwslay-dev libpoppler-glib-dev libcairo2-dev
  librabbitmq-dev libpq-dev
)
# What assetd runs at run time besides its libraries: the workers transcode
# and probe videos with the ffmpeg and ffprobe programs (media/video.c).
run_pkgs=(ffmpeg)
# chromium: the web page's tests drive it headless (through npm playwright-core);
# qpdf makes an encrypted PDF; libreoffice-impress converts presentations;
# poppler-utils' pdftoppm is the slides benchmark's reference; clang and its
# runtime (libFuzzer, the sanitizers) build the fuzz targets (tests/fuzz);
# rabbitmq-server is the broker the AMQP tests start as a private node
# (tests/e2e/rabbitmq.mjs; its Debian service is not needed); the sqlite3
# shell holds the database's write lock from outside (tests/e2e/dblock.test.mjs);
# postgresql's binaries run the private cluster of the suite on PostgreSQL
# (tests/e2e/postgres.mjs; its Debian service is not needed).
test_pkgs=(curl wrk nginx-light procps libvips-tools chromium qpdf poppler-utils
  libreoffice-impress clang libclang-rt-14-dev rabbitmq-server sqlite3 postgresql)

test_mode=false bench_mode=false
[ "${1:-}" = "--test" ] && test_mode=true
[ "${1:-}" = "--bench" ] && test_mode=true bench_mode=true

want=("${build_pkgs[@]}" "${run_pkgs[@]}")
# npm fetches the browser libraries the web page embeds (web/vendor).
command -v npm >/dev/null 2>&1 || want+=(npm)
if $test_mode; then
  want+=("${test_pkgs[@]}")
  # The end-to-end suite runs on Node's built-in test runner (Node >= 20, for
  # playwright-core).
  command -v node >/dev/null 2>&1 || want+=(nodejs)
fi
# Only the S3 upload benchmark needs aws-cli (Debian 12: awscli 2.9); any
# aws-cli already on PATH (pip's v1 too) will do.
if $bench_mode && ! command -v aws >/dev/null 2>&1; then want+=(awscli); fi
# bench/runs.sh's reference, a pipeline like the one CSV runs replace: pika
# for Debian's /usr/bin/python3 (the script runs that one, not a python3
# that PATH may find first).
if $bench_mode; then want+=(python3-pika); fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages, exactly as locked, into DIR/node_modules.  npm ci starts from
# scratch each time, so skip it while the installed tree matches the lock
# file (npm writes node_modules/.package-lock.json after a successful
# install; the Makefile checks the same stamp before embedding web/vendor).
npm_ci() {
  local dir=$1 installed=$1/node_modules/.package-lock.json
  shift
  if [ ! -f "$installed" ] || [ "$dir/package-lock.json" -nt "$installed" ] || [ "$dir/package.json" -nt "$installed" ]; then
    echo "install-deps: npm ci in $dir/" >&2
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error "$@" >/dev/null
  fi
}

# The web page's browser libraries (tus-js-client's browser bundle), which
# `make` compiles into the binary: no install scripts are needed to copy a
# bundle, so none are run.
npm_ci web/vendor --ignore-scripts

# The test suite's npm packages: tests/node_modules is where Node resolves
# them from tests/e2e/*.mjs.
if $test_mode; then
  npm_ci tests
fi

# bench/tus.sh's reference server (@tus/server), a bench-only npm project of
# its own so that the test suite's lock file does not carry it.
if $bench_mode; then
  lock=bench/tus-server/package-lock.json installed=bench/tus-server/node_modules/.package-lock.json
  if [ ! -f "$installed" ] || [ "$lock" -nt "$installed" ] ||
     [ bench/tus-server/package.json -nt "$installed" ]; then
    echo "install-deps: npm ci in bench/tus-server/" >&2
    npm ci --prefix bench/tus-server --no-audit --no-fund --loglevel=error >/dev/null
  fi
fi
