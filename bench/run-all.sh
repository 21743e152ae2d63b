#!/usr/bin/env bash
# Runs every benchmark and prints a summary (`make bench` runs this).
#
#   bench/run-all.sh
#
# Benchmarks report, they don't gate: exit 0 even when a target is missed,
# non-zero only when a benchmark is broken (a server did not start, an
# upload failed, ...).  Each script's progress goes to stderr as it runs.
#
# GET_THREADS="1 2 4" also runs the GET benchmark once per --http-threads
# value (default: once, with the server's default thread count).  Other
# knobs are passed through to the scripts (see their headers).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

[[ -x build/assetd ]] || make --no-print-directory build/assetd || exit 2

summary=()
failed=0

run() {
  local name=$1; shift
  echo "== $name $*" >&2
  local out rc
  out=$("$@")
  rc=$?
  if ((rc != 0)); then
    summary+=("$name: BROKEN (exit $rc)")
    failed=1
  else
    summary+=("$out")
  fi
}

if [[ -n ${GET_THREADS:-} ]]; then
  for t in $GET_THREADS; do run get_asset bench/get_asset.sh --http-threads "$t"; done
else
  run get_asset bench/get_asset.sh
fi
run upload bench/upload.sh
run s3_upload bench/s3_upload.sh
run tus bench/tus.sh
run signed_get bench/signed_get.sh
run jobs bench/jobs.sh
run images bench/images.sh
run images_pg env DB=postgres IMAGE_ROUNDS=2 bench/images.sh
run slides bench/slides.sh
run video bench/video.sh
run events_fanout bench/events_fanout.sh
run events_cross bench/events_cross.sh
run slides_fanout bench/slides_fanout.sh
run runs bench/runs.sh

echo
echo "== summary ($(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -n1))"
printf '%s\n' "${summary[@]}"
exit "$failed"
