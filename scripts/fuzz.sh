#!/usr/bin/env bash
# Runs libFuzzer targets (build/fuzz/TARGET, built by `make fuzz-build`).
#   scripts/fuzz.sh [--regressions] [--fresh] TARGET...
# Each target first replays its saved regression inputs
# (tests/fuzz/regressions/TARGET/*) when --regressions is given, then fuzzes
# for FUZZ_SECONDS (default 60) from a scratch corpus, build/fuzz/corpus/TARGET,
# seeded from tests/fuzz/corpus/TARGET — what it finds stays in build/ for the
# next run, the repo's seeds stay small.  --fresh starts from the seeds alone
# (build/fuzz/fresh/TARGET), so a short run does not spend its time reloading
# what long ones found.  A failing input lands in build/fuzz/artifacts/TARGET/
# (save it under tests/fuzz/regressions/TARGET/ once the bug is fixed).
# Prints one line per target (runs, runs/s, cov, ft) and keeps them in
# build/fuzz/report.txt; exits non-zero if any target failed.
set -uo pipefail
cd "$(dirname "$0")/.."

regressions=false fresh=false
while [ $# -gt 0 ]; do
  case $1 in
    --regressions) regressions=true; shift ;;
    --fresh) fresh=true; shift ;;
    *) break ;;
  esac
done
seconds=${FUZZ_SECONDS:-60}

# Longest input per target: enough for the formats each takes (HTTP requests
# with a body, a policy document), small enough to keep runs fast.
max_len() {
  case $1 in
    http|api|multipart) echo 16384 ;;
    websocket|sigv4_post|tus|framing) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

report=build/fuzz/report.txt
mkdir -p build/fuzz
: > "$report"
failed=()
for t in "$@"; do
  bin=build/fuzz/$t
  [ -x "$bin" ] || { echo "fuzz: $bin is missing (make fuzz-build)" >&2; failed+=("$t"); continue; }
  log=build/fuzz/$t.log
  if $regressions && compgen -G "tests/fuzz/regressions/$t/*" >/dev/null; then
    if ! "$bin" -runs=1 tests/fuzz/regressions/"$t"/* > "$log" 2>&1; then
      echo "fuzz: $t fails on a saved regression input (see $log)" >&2
      tail -n 30 "$log" >&2
      failed+=("$t")
      continue
    fi
  fi
  corpus=build/fuzz/corpus/$t artifacts=build/fuzz/artifacts/$t/
  if $fresh; then corpus=build/fuzz/fresh/$t; rm -rf "$corpus"; fi
  mkdir -p "$corpus" "$artifacts"
  if [ -d tests/fuzz/corpus/$t ]; then cp -n tests/fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null; fi
  if "$bin" -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=30 \
       -print_final_stats=1 -artifact_prefix="$artifacts" "$corpus" > "$log" 2>&1; then
    line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)
    runs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<< "$line")
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<< "$line")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<< "$line")
    eps=$(sed -nE 's/.* exec\/s: ([0-9]+).*/\1/p' <<< "$line")
    printf '%-11s %6ss  runs %9s  exec/s %7s  cov %5s  ft %6s\n' \
      "$t" "$seconds" "$runs" "$eps" "$cov" "$ft" | tee -a "$report"
  else
    echo "fuzz: $t failed (log: $log; input saved in $artifacts):" >&2
    grep -E 'property failed|ERROR:|SUMMARY|neither answered|^artifact_prefix|Test unit written' "$log" | head -n 12 >&2
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
