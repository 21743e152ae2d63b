#!/usr/bin/env bash
# Runs the end-to-end suite (tests/e2e, Node's test runner) against the real
# binary, then again against the AddressSanitizer + UBSan build, both on the
# embedded default (SQLite in each server's data directory), then the real
# binary once more on PostgreSQL + S3 (a database per data directory in one
# private cluster, a bucket per data directory on one private s3rver).
set -euo pipefail
cd "$(dirname "$0")/.."

# One private RabbitMQ node, one PostgreSQL cluster and one s3rver serve
# every suite (~12 s, ~2 s and ~1 s a start): the script runs again under
# tests/e2e/with-services.mjs, which starts them, sets ASSETD_TEST_AMQP_URL,
# ASSETD_TEST_PG_CLUSTER and ASSETD_TEST_S3_CLUSTER, and destroys them when
# the suites end, pass, fail or interrupt.  Tests that stop the broker start
# their own (rabbitmq.mjs).
if [ -z "${ASSETD_TEST_AMQP_URL:-}" ] || [ -z "${ASSETD_TEST_PG_CLUSTER:-}" ] ||
   [ -z "${ASSETD_TEST_S3_CLUSTER:-}" ]; then
  exec node tests/e2e/with-services.mjs scripts/run-e2e.sh "$@"
fi

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
run_suite postgres+s3 ASSETD_BIN=build/assetd ASSETD_TEST_PG_URL="$ASSETD_TEST_PG_CLUSTER" \
  ASSETD_TEST_S3_URL="$ASSETD_TEST_S3_CLUSTER"
