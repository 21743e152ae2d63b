#!/usr/bin/env bash
# Installs the Debian packages assetd needs to build, run and test.
# Idempotent: asks dpkg first and calls apt-get only for what is missing.
#   scripts/install-deps.sh          build + run dependencies
#   scripts/install-deps.sh --test   also what the test suite and benchmarks use,
#                                    and the suite's npm packages (tests/package.json)
#   scripts/install-deps.sh --bench  --test, and aws-cli (bench/s3_upload.sh's
#                                    reference client) unless an `aws` is on PATH
set -euo pipefail
cd "$(dirname "$0")/.."

build_pkgs=(
  build-essential pkg-config
  libmicrohttpd-dev libjansson-dev libsqlite3-dev libssl-dev libmagic-dev
  libvips-dev libcurl4-openssl-dev libwslay-dev libpoppler-glib-dev libcairo2-dev
)
# chromium: the web page's tests drive it headless (through npm playwright-core);
# qpdf makes an encrypted PDF; libreoffice-impress converts presentations;
# poppler-utils' pdftoppm is the slides benchmark's reference; clang and its
# runtime (libFuzzer, the sanitizers) build the fuzz targets (tests/fuzz).
test_pkgs=(curl wrk nginx-light procps libvips-tools chromium qpdf poppler-utils
  libreoffice-impress clang libclang-rt-14-dev)

test_mode=false bench_mode=false
[ "${1:-}" = "--test" ] && test_mode=true
[ "${1:-}" = "--bench" ] && test_mode=true bench_mode=true

want=("${build_pkgs[@]}")
if $test_mode; then
  want+=("${test_pkgs[@]}")
  # The end-to-end suite runs on Node's built-in test runner (Node >= 20, for
  # playwright-core); npm installs its packages.
  command -v node >/dev/null 2>&1 || want+=(nodejs)
  command -v npm >/dev/null 2>&1 || want+=(npm)
fi
# Only the S3 upload benchmark needs aws-cli (Debian 12: awscli 2.9); any
# aws-cli already on PATH (pip's v1 too) will do.
if $bench_mode && ! command -v aws >/dev/null 2>&1; then want+=(awscli); fi

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

# The test suite's npm packages, exactly as locked.  tests/node_modules is
# where Node resolves them from tests/e2e/*.mjs.  npm ci starts from scratch
# each time, so skip it while the installed tree matches the lock file (npm
# writes node_modules/.package-lock.json after a successful install).
if $test_mode; then
  lock=tests/package-lock.json installed=tests/node_modules/.package-lock.json
  if [ ! -f "$installed" ] || [ "$lock" -nt "$installed" ] || [ tests/package.json -nt "$installed" ]; then
    echo "install-deps: npm ci in tests/" >&2
    npm ci --prefix tests --no-audit --no-fund --loglevel=error >/dev/null
  fi
fi
