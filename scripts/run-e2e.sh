#!/usr/bin/env bash
# Runs the end-to-end suite (tests/e2e, Node's test runner) against the real
# binary, then again against the AddressSanitizer + UBSan build.
set -euo pipefail
cd "$(dirname "$0")/.."

run_suite() {
  local label=$1; shift
  echo "== e2e ($label)"
  env "$@" node --test --test-concurrency=2 tests/e2e/
}

run_suite release ASSETD_BIN=build/assetd
# Sanitized: any ASan/UBSan report makes the server exit non-zero, which the
# suite checks on every stop.  Leak checking covers the whole process life.
run_suite asan ASSETD_BIN=build/assetd-asan ASSETD_SANITIZED=1 \
  ASAN_OPTIONS=detect_leaks=1:exitcode=66:abort_on_error=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=66
