#!/usr/bin/env bash
# No-op job throughput of the queue: enqueue + claim + complete.
#
#   bench/jobs.sh            (JOBS=20000 ROUNDS=3 CONSUMERS=2 to change)
#   DB=postgres bench/jobs.sh
#
# Runs build/bench-queue (bench/queue_bench.c: the server's own db.h queue
# functions, synchronous=FULL, no work in the jobs) in two shapes, on a
# fresh database each round, best of ROUNDS:
#   unbatched  one job per transaction at each step (3 commits per job);
#              bounded by the fdatasync rate / 3
#   batched    100 enqueues per transaction, claims of up to 32 jobs
#              (db_job_claim_many) completed in one statement (db_job_complete_many)
# The reference, measured in the same run on the same disk, is the
# fdatasync rate of a small append: the commits per second any durable
# store can make here.  Target: batched >= 5000 jobs/s.
#
# DB=postgres: the same on a private PostgreSQL cluster (durable settings;
# lib.sh start_postgres), batched, with 1, 2 and 4 consumers (each a
# claimer on its own connection, as worker processes are), the queue filled
# first (--prefill: how graphile-worker's and River's benchmarks measure):
# the work rate (claim + complete) and its scaling from 1 to 4, and the
# enqueue rate apart.  Target: >= 10000 jobs/s batched.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

JOBS=${JOBS:-20000}
ROUNDS=${ROUNDS:-3}
CONSUMERS=${CONSUMERS:-2}
BIN=$BENCH_ROOT/build/bench-queue
[[ -x $BIN ]] || make -C "$BENCH_ROOT" --no-print-directory build/bench-queue >&2
bench_init jobs

best() {  # best jobs/s of ROUNDS runs; echoes "jobs fsync"
  local eb=$1 cb=$2 r line jobs fs best_jobs=0 best_fs=0
  for ((r = 1; r <= ROUNDS; r++)); do
    rm -rf "$BENCH_TMP/db" && mkdir "$BENCH_TMP/db"
    line=$(timeout 300 "$BIN" "$BENCH_TMP/db" --jobs "$JOBS" --consumers "$CONSUMERS" \
      --enqueue-batch "$eb" --claim-batch "$cb") || die "bench-queue failed"
    jobs=$(sed -n 's/.*jobs_per_s=\([0-9]*\).*/\1/p' <<<"$line")
    fs=$(sed -n 's/.*fsync_per_s=\([0-9]*\).*/\1/p' <<<"$line")
    note "enqueue batch $eb, claim batch $cb, round $r: $line"
    ((jobs > best_jobs)) && best_jobs=$jobs
    ((fs > best_fs)) && best_fs=$fs
  done
  echo "$best_jobs $best_fs"
}

if [[ ${DB:-sqlite} == postgres ]]; then
  start_postgres
  note "PostgreSQL on $PG_URL"
  declare -A per
  enq=0
  for n in 1 2 4; do
    jobs_pg=0
    for ((r = 1; r <= ROUNDS; r++)); do
      psql -X -q -d "$PG_URL/bench" -c 'TRUNCATE jobs, events' 2>/dev/null || true
      line=$(timeout 300 "$BIN" "$BENCH_TMP" --db "$PG_URL/bench" --jobs "$JOBS" --consumers "$n" \
        --enqueue-batch 100 --claim-batch 32 --prefill) || die "bench-queue failed on PostgreSQL"
      j=$(sed -n 's/.*jobs_per_s=\([0-9]*\).*/\1/p' <<<"$line")
      e=$(sed -n 's/.*enqueue_per_s=\([0-9]*\).*/\1/p' <<<"$line")
      note "postgres, $n consumers, round $r: $line"
      ((j > jobs_pg)) && jobs_pg=$j
      ((e > enq)) && enq=$e
    done
    per[$n]=$jobs_pg
  done
  awk -v a="${per[1]}" -v b="${per[2]}" -v c="${per[4]}" -v e="$enq" 'BEGIN {
    printf "jobs on PostgreSQL, batched, queue filled first: %d / %d / %d jobs/s worked with 1 / 2 / 4 consumers (target >= 10000: %s); 4 vs 1: %.2f; enqueued %d jobs/s\n",
      a, b, c, ((c > a ? (c > b ? c : b) : (a > b ? a : b)) >= 10000 ? "met" : "MISSED"), c / a, e
  }'
  exit 0
fi

read -r unbatched fs1 < <(best 1 1)
read -r batched fs2 < <(best 100 32)
fsyncs=$((fs1 > fs2 ? fs1 : fs2))
awk -v u="$unbatched" -v b="$batched" -v f="$fsyncs" 'BEGIN {
  printf "jobs: batched %d jobs/s (target >= 5000: %s), unbatched %d jobs/s; fdatasync %d/s (unbatched %.2f of fsync/3)\n",
    b, (b >= 5000 ? "met" : "MISSED"), u, f, u / (f / 3)
}'
