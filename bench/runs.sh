#!/usr/bin/env bash
# CSV runs (issue #13): people_11273.csv through assetd's /v1/runs against a
# pipeline like the one it replaces, and assetd's confirmed publishes
# against npm amqplib's ConfirmChannel, on one private RabbitMQ node, in the
# same run.
#
#   bench/runs.sh [extra 'assetd serve' options]
#
# Targets (issue #13):
#   1. end to end >= 5x the reference's rows/s.  assetd: POST /v1/runs
#      (multipart file, mode=live, timeout=0, clear=true) on
#      `serve --workers 1 --amqp-url ...`.  Its time is from just before the
#      upload starts (this script's clock) to the run's `last_message` (the
#      consumer's clock, same machine, CLOCK_REALTIME, ms): upload, claim,
#      connections, publishing with confirms, storing; the idle timeout is
#      excluded, as the report's durations.work excludes it (work counts
#      from `started`, i.e. without the upload and the claim; it is printed
#      too).  The time to `finished` (the last batch's commit, the empty
#      queue check, the queue's deletion) is printed as well, with its ratio:
#      the conservative reading.
#      The reference (bench/runs_reference.py): a python3-pika consumer
#      listening first (live mode), storing each message with one INSERT and
#      one commit into SQLite (WAL, synchronous=FULL: one fsync per row, as
#      the original's PostgreSQL autocommit INSERT), then a python3-pika
#      publisher sending each row with basic_publish, no confirms,
#      transient, as promise-pub did.  Its time: publisher start (before it
#      connects) to the consumer's commit of the last row.
#   2. confirmed publishes/s >= 1.0x amqplib's.  assetd: a run in batch
#      mode (the consumer starts only once every row is confirmed, so it
#      takes no CPU from the publisher); rates.sent_per_second of its report
#      = sent / (published - started), i.e. from the claim through the
#      connection, queue declare and CSV reading to the last confirmation
#      and the cursor's save.  The reference (bench/runs_amqplib.mjs): the
#      same 11,273 bodies, persistent, to a durable queue, publish 512 then
#      waitForConfirms, timed from amqplib.connect() to the last
#      confirmation (its publishing-only rate is printed too).
# Each of ROUNDS rounds runs: assetd live, the reference pipeline, assetd
# batch, amqplib, each after up to 3 s of waiting for a quiet machine
# (wait_quiet).  Medians over the rounds (ratios of medians); per-round
# figures go to stderr with the CPU that assetd (serve + worker) and the
# broker used.
# Exit 0 whether or not a target is met; 2 if something is broken (a run
# did not succeed, counts are wrong, a process did not start).
#
# Knobs: ROUNDS [3]  CSV [../shared/corpus/csv/people_11273.csv]
#        PYTHON [/usr/bin/python3: Debian's, where python3-pika is]
#        WINDOW [512: amqplib's confirm window]
# Needs rabbitmq-server and python3-pika (scripts/install-deps.sh --bench),
# Node.js with amqplib in tests/node_modules (--test), curl.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
CSV=${CSV:-$BENCH_ROOT/../shared/corpus/csv/people_11273.csv}
PYTHON=${PYTHON:-/usr/bin/python3}
WINDOW=${WINDOW:-512}
TARGET_E2E=5
TARGET_PUB=1.0

need curl node ss epmd
[[ -x $RABBIT_SBIN/rabbitmq-server ]] || die "rabbitmq-server is not installed (scripts/install-deps.sh --bench)"
"$PYTHON" -c 'import pika' 2>/dev/null ||
  die "$PYTHON has no pika: apt-get install -y python3-pika (scripts/install-deps.sh --bench)"
[[ -d $BENCH_ROOT/tests/node_modules/amqplib ]] ||
  die "amqplib is not installed: run 'scripts/install-deps.sh --test' (npm ci in tests/)"
[[ -r $CSV ]] || die "no CSV at $CSV"
ROWS=$("$PYTHON" -c 'import csv, sys; print(sum(len(r) == 2 for r in csv.reader(open(sys.argv[1], newline="", encoding="utf-8"))))' "$CSV")
((ROWS > 0)) || die "$CSV has no two-field rows"

bench_init runs

# assetd first (it holds connections to the broker), then the broker, then
# lib.sh's cleanup (other processes, the temp dir), keeping the exit code.
# shellcheck disable=SC2317  # the EXIT trap
runs_cleanup() {
  local rc=$?
  set +e
  stop_assetd
  stop_rabbit
  set_rc "$rc"
  bench_cleanup
}
# shellcheck disable=SC2317
set_rc() { return "$1"; }
trap runs_cleanup EXIT

assetd_broken() { tail -n 20 "$BENCH_TMP/assetd.log" >&2; die "$*"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "nan" }'; }
f3() { fmt %.3f "$1"; }

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
start_rabbit
note "rabbitmq-server node $RABBIT_NODE (beam pid $BEAM_PID) on $RABBIT_URL"
start_assetd_one_worker "$BENCH_TMP/assetd" --amqp-url "$RABBIT_URL" "$@"
AUTH="Authorization: Bearer $ASSETD_TOKEN"
note "assetd pid $ASSETD_PID, worker $WORKER_PID, on :$ASSETD_PORT; $ROWS rows in $CSV"
"$PYTHON" "$BENCH_ROOT/bench/runs_reference.py" bodies "$CSV" "$BENCH_TMP/bodies.jsonl"

# assetd_run MODE: one run of the CSV; sets RUN_* from its report (times in
# epoch seconds) and T_POST (this script's clock just before the upload).
assetd_run() {
  local mode=$1 out code id i a0 a1 b0 b1 r
  a0=$(cpu_ticks "$ASSETD_PID"); b0=$(ticks_of "$BEAM_PID")
  T_POST=$EPOCHREALTIME
  out=$(curl -sS --max-time 120 -X POST -H "$AUTH" -F "file=@$CSV;type=text/csv" \
          -F "mode=$mode" -F timeout=0 -F clear=true -o "$BENCH_TMP/post.json" \
          -w '%{http_code} %{time_total}' "$ASSETD_URL/v1/runs") || die "POST /v1/runs failed"
  read -r code UPLOAD_S <<<"$out"
  [[ $code == 202 ]] || die "POST /v1/runs answered $code: $(<"$BENCH_TMP/post.json")"
  id=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$BENCH_TMP/post.json" | head -n1)
  [[ -n $id ]] || die "no run id in $(<"$BENCH_TMP/post.json")"
  for ((i = 0; i < 3000; i++)); do          # up to 300 s
    nap 0.1
    http_get "/v1/runs/$id" || continue
    [[ $HTTP_BODY == *'"state":"succeeded"'* || $HTTP_BODY == *'"state":"failed"'* ]] && break
  done
  a1=$(cpu_ticks "$ASSETD_PID"); b1=$(ticks_of "$BEAM_PID")
  if ! http_get "/v1/runs/$id/report" || [[ $HTTP_CODE != 200 ]]; then
    die "GET report of run $id failed ($HTTP_CODE)"
  fi
  printf '%s' "$HTTP_BODY" >"$BENCH_TMP/report-$mode.json"
  r=$("$PYTHON" - "$BENCH_TMP/report-$mode.json" <<'EOF'
import datetime, json, sys
r = json.load(open(sys.argv[1]))
def t(k):
    v = r.get(k)
    return "%.3f" % datetime.datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp() if v else "0"
c = r["counts"]
print(r["state"], c["sent"], c["received"], c["saved"], r["table_count"], t("created"), t("started"),
      t("published"), t("last_message"), t("finished"), r["rates"]["sent_per_second"] or 0,
      r["durations"]["work"] or 0)
EOF
) || die "cannot read the report of run $id"
  read -r RUN_STATE RUN_SENT RUN_RECEIVED RUN_SAVED RUN_TABLE RUN_CREATED RUN_STARTED RUN_PUBLISHED \
    RUN_LAST RUN_FINISHED RUN_SENT_PS RUN_WORK <<<"$r"
  [[ $RUN_STATE == succeeded && $RUN_SENT == "$ROWS" && $RUN_RECEIVED == "$ROWS" ]] ||
    assetd_broken "run $id ($mode): state $RUN_STATE, sent $RUN_SENT, received $RUN_RECEIVED (want $ROWS): $(<"$BENCH_TMP/report-$mode.json")"
  RUN_CPU=$(awk -v c=$((a1 - a0)) -v hz="$TICK" 'BEGIN { printf "%.2f", c / hz }')
  RUN_BEAM=$(awk -v c=$((b1 - b0)) -v hz="$TICK" 'BEGIN { printf "%.2f", c / hz }')
}

# reference_run ROUND: the python3-pika pipeline; sets REF_S (publisher start
# -> last row stored), REF_PUB_S (its publishing), REF_SAVED.
reference_run() {
  local q=bench.reference.$1 cons=$BENCH_TMP/ref-consumer.out pid i b0 b1 pub rc=0
  rm -f "$BENCH_TMP/ref.db" "$BENCH_TMP/ref.db-wal" "$BENCH_TMP/ref.db-shm"
  : >"$cons"
  timeout 300 "$PYTHON" "$BENCH_ROOT/bench/runs_reference.py" consume "$RABBIT_URL" "$q" \
    "$BENCH_TMP/ref.db" "$ROWS" >"$cons" 2>"$BENCH_TMP/ref-consumer.err" &
  pid=$!
  BENCH_PIDS+=("$pid")
  for ((i = 0; i < 300; i++)); do           # up to 30 s
    grep -q '^ready$' "$cons" && break
    kill -0 "$pid" 2>/dev/null || break
    nap 0.1
  done
  grep -q '^ready$' "$cons" || { cat "$BENCH_TMP/ref-consumer.err" >&2; die "the reference consumer did not start"; }
  b0=$(ticks_of "$BEAM_PID")
  pub=$(timeout 300 "$PYTHON" "$BENCH_ROOT/bench/runs_reference.py" publish "$RABBIT_URL" "$q" "$CSV") ||
    die "the reference publisher failed"
  wait "$pid" || rc=$?
  forget_pid "$pid"
  b1=$(ticks_of "$BEAM_PID")
  ((rc == 0)) || { cat "$BENCH_TMP/ref-consumer.err" >&2; die "the reference consumer failed (exit $rc)"; }
  read -r REF_S REF_PUB_S REF_STORED REF_SAVED < <("$PYTHON" -c '
import json, sys
p = json.loads(sys.argv[1]); c = json.loads(open(sys.argv[2]).read().split("\n")[1])
print("%.3f %.3f %d %d" % (c["last"] - p["start"], p["end"] - p["start"], c["stored"], c["saved"]))' "$pub" "$cons")
  [[ $REF_STORED == "$ROWS" ]] || die "the reference consumer stored $REF_STORED rows, want $ROWS"
  REF_BEAM=$(awk -v c=$((b1 - b0)) -v hz="$TICK" 'BEGIN { printf "%.2f", c / hz }')
}

# amqplib_run ROUND: sets AMQ_TOTAL_S, AMQ_PUB_S.
amqplib_run() {
  local out
  out=$(timeout 300 node "$BENCH_ROOT/bench/runs_amqplib.mjs" "$RABBIT_URL" "bench.amqplib.$1" \
          "$BENCH_TMP/bodies.jsonl" "$WINDOW") || die "the amqplib reference failed"
  read -r AMQ_TOTAL_S AMQ_PUB_S AMQ_SENT < <("$PYTHON" -c '
import json, sys
o = json.loads(sys.argv[1]); print("%.4f %.4f %d" % (o["total"], o["publish"], o["sent"]))' "$out")
  [[ $AMQ_SENT == "$ROWS" ]] || die "amqplib had $AMQ_SENT of $ROWS confirmed"
}

declare -a E2E_RATE E2E_FIN_RATE WORK_RATE REF_RATE PUB_RATE AMQ_RATE AMQ_PUBONLY LIVE_PUB_RATE
for ((r = 1; r <= ROUNDS; r++)); do
  wait_quiet 6 "assetd live run of round $r"
  assetd_run live
  e2e=$(secs "$T_POST" "$RUN_LAST") fin=$(secs "$T_POST" "$RUN_FINISHED")
  E2E_RATE+=("$(awk -v n="$ROWS" -v s="$e2e" 'BEGIN { printf "%.1f", n / s }')")
  E2E_FIN_RATE+=("$(awk -v n="$ROWS" -v s="$fin" 'BEGIN { printf "%.1f", n / s }')")
  WORK_RATE+=("$(awk -v n="$ROWS" -v s="$RUN_WORK" 'BEGIN { printf "%.1f", n / s }')")
  LIVE_PUB_RATE+=("$RUN_SENT_PS")
  note "round $r: assetd live: upload $(f3 "$UPLOAD_S") s (curl), created +$(secs "$T_POST" "$RUN_CREATED"), started +$(secs "$T_POST" "$RUN_STARTED"), published +$(secs "$T_POST" "$RUN_PUBLISHED"), last message +$e2e, finished +$fin s; saved $RUN_SAVED, table $RUN_TABLE; ${E2E_RATE[-1]} rows/s to the last message (${E2E_FIN_RATE[-1]} to finished; durations.work $(f3 "$RUN_WORK") s = ${WORK_RATE[-1]} rows/s); confirmed $(fmt %.0f "$RUN_SENT_PS")/s while consuming; CPU assetd $RUN_CPU s, broker $RUN_BEAM s"

  wait_quiet 6 "reference pipeline of round $r"
  reference_run "$r"
  REF_RATE+=("$(awk -v n="$ROWS" -v s="$REF_S" 'BEGIN { printf "%.1f", n / s }')")
  note "round $r: reference: published in $REF_PUB_S s, last row stored at +$REF_S s = ${REF_RATE[-1]} rows/s; saved $REF_SAVED; CPU broker $REF_BEAM s"

  wait_quiet 6 "assetd batch run of round $r"
  assetd_run batch
  PUB_RATE+=("$(fmt %.1f "$RUN_SENT_PS")")
  note "round $r: assetd batch: started +$(secs "$T_POST" "$RUN_STARTED"), published +$(secs "$T_POST" "$RUN_PUBLISHED") s: ${PUB_RATE[-1]} confirmed/s (started -> published $(secs "$RUN_STARTED" "$RUN_PUBLISHED") s); drained by +$(secs "$T_POST" "$RUN_LAST") s; CPU assetd $RUN_CPU s, broker $RUN_BEAM s"

  wait_quiet 6 "amqplib reference of round $r"
  amqplib_run "$r"
  AMQ_RATE+=("$(awk -v n="$ROWS" -v s="$AMQ_TOTAL_S" 'BEGIN { printf "%.1f", n / s }')")
  AMQ_PUBONLY+=("$(awk -v n="$ROWS" -v s="$AMQ_PUB_S" 'BEGIN { printf "%.1f", n / s }')")
  note "round $r: amqplib: connect -> last confirm $AMQ_TOTAL_S s = ${AMQ_RATE[-1]} confirmed/s (publishing alone $AMQ_PUB_S s = ${AMQ_PUBONLY[-1]}/s)"
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

med() { printf '%s\n' "$@" | median; }
e2e_m=$(med "${E2E_RATE[@]}") fin_m=$(med "${E2E_FIN_RATE[@]}") work_m=$(med "${WORK_RATE[@]}")
ref_m=$(med "${REF_RATE[@]}") pub_m=$(med "${PUB_RATE[@]}") amq_m=$(med "${AMQ_RATE[@]}")
amq_only_m=$(med "${AMQ_PUBONLY[@]}") live_pub_m=$(med "${LIVE_PUB_RATE[@]}")
r1=$(ratio "$e2e_m" "$ref_m") r2=$(ratio "$pub_m" "$amq_m")
met() { ge "$1" "$2" && echo met || echo MISSED; }
echo "runs: $ROWS rows end to end (upload -> last message, idle timeout excluded) assetd $(fmt %.0f "$e2e_m") rows/s vs python3-pika + one commit per row $(fmt %.0f "$ref_m") rows/s = ${r1}x (target >= $TARGET_E2E: $(met "$r1" "$TARGET_E2E")); to finished $(fmt %.0f "$fin_m") rows/s = $(ratio "$fin_m" "$ref_m")x, durations.work $(fmt %.0f "$work_m") rows/s; confirmed publishes (batch run, report) assetd $(fmt %.0f "$pub_m")/s vs amqplib ConfirmChannel (window $WINDOW, from connect) $(fmt %.0f "$amq_m")/s = ${r2}x (target >= $TARGET_PUB: $(met "$r2" "$TARGET_PUB")), amqplib publishing alone $(fmt %.0f "$amq_only_m")/s, assetd while its consumer runs (live) $(fmt %.0f "$live_pub_m")/s; medians of $ROUNDS rounds; load average $LOAD0 -> $LOAD1"
exit 0
