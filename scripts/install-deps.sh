#!/usr/bin/env bash
# Installs the Debian packages assetd needs to build, run and test.
# Idempotent: asks dpkg first and calls apt-get only for what is missing.
#   scripts/install-deps.sh          build + run dependencies
#   scripts/install-deps.sh --test   also what the test suite and benchmarks use
set -euo pipefail

build_pkgs=(
  build-essential pkg-config
  libmicrohttpd-dev libjansson-dev libsqlite3-dev libssl-dev libmagic-dev
  libvips-dev libcurl4-openssl-dev libwslay-dev libpoppler-glib-dev libcairo2-dev
)
test_pkgs=(curl wrk nginx-light procps libvips-tools qpdf poppler-utils libreoffice-impress)

want=("${build_pkgs[@]}")
if [ "${1:-}" = "--test" ]; then
  want+=("${test_pkgs[@]}")
  # The end-to-end suite runs on Node's built-in test runner (Node >= 18).
  command -v node >/dev/null 2>&1 || want+=(nodejs npm)
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
