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

# run_suite LABEL [FILES] -- ENV...: FILES (default: every test file) with ENV.
run_suite() {
  local label=$1 files=tests/e2e/; shift
  if [ "$1" != -- ]; then files=$1; shift; fi
  shift
  echo "== e2e ($label)"
  # shellcheck disable=SC2086  # FILES is a list of paths without spaces
  env "$@" node --test --test-concurrency=2 $files
}
SANITIZED=(ASSETD_BIN=build/assetd-asan ASSETD_SANITIZED=1
  ASAN_OPTIONS=detect_leaks=1:exitcode=66:abort_on_error=0
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=66)

run_suite release -- ASSETD_BIN=build/assetd
# Sanitized: any ASan/UBSan report makes the server exit non-zero, which the
# suite checks on every stop.  Leak checking covers the whole process life.
run_suite asan -- "${SANITIZED[@]}"
PG_S3=(ASSETD_TEST_PG_URL="$ASSETD_TEST_PG_CLUSTER" ASSETD_TEST_S3_URL="$ASSETD_TEST_S3_CLUSTER")
run_suite postgres+s3 -- ASSETD_BIN=build/assetd "${PG_S3[@]}"
# The PostgreSQL driver's own memory safety, where only its files run it:
# the multi-process files, sanitized (a whole fourth suite would not fit).
run_suite "postgres+s3, asan: the multi-process files" "tests/e2e/postgres.test.mjs tests/e2e/postgres_nodes.test.mjs" \
  -- "${SANITIZED[@]}" "${PG_S3[@]}"
