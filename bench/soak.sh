#!/usr/bin/env bash
# Soak: a bounded mixed load against one assetd for a while, watching for
# errors, slow routes and growth (issue #15).
#
#   bench/soak.sh                      # 10 minutes
#   SOAK_SECONDS=120 bench/soak.sh     # a short one
#
# One `assetd serve --workers 2` on a fresh data directory (SQLite + disk,
# the embedded default) with --amqp-url to a private RabbitMQ node (CSV
# runs; SOAK_RUNS=0 leaves both out), then bench/soak.mjs: SOAK_USERS (8)
# virtual users for SOAK_SECONDS, each looping over weighted actions —
# uploads of every kind (JPEGs and a PNG from the corpus or made by vips,
# a two-page PDF, a 2 s 360p video, text), the asset list, ranged content
# GETs, a ready image's thumb, signed links fetched without a key, deletes
# that keep each user's assets bounded, SSE and WebSocket clients that
# connect, read a moment and leave, and small CSV runs followed to the
# end.  Every SOAK_SAMPLE_S (10) seconds it samples serve and its workers
# from /proc: RSS, open files, threads.
#
# Reports requests served, errors (target 0), p50/p99 latency per action,
# and the samples; "flat after warm-up" compares the mean of the last
# third of the samples with the middle third (the first third is warm-up:
# caches, SQLite's page cache, the workers' libvips).  Targets: RSS and
# open files of serve grow by at most 10 % (and 8 MiB) between them;
# threads equal.  Exit 0 even when a target is missed (benchmarks report);
# non-zero only when the run broke.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SOAK_SECONDS=${SOAK_SECONDS:-600}
SOAK_USERS=${SOAK_USERS:-8}
SOAK_SAMPLE_S=${SOAK_SAMPLE_S:-10}
SOAK_RUNS=${SOAK_RUNS:-1}
CORPUS=${CORPUS:-$BENCH_ROOT/../shared/corpus}

need node curl ffmpeg vips
[[ -d $BENCH_ROOT/tests/node_modules/ws ]] || die "ws is not installed: run 'scripts/install-deps.sh --test'"
if [[ $SOAK_RUNS == 1 && ! -x $RABBIT_SBIN/rabbitmq-server ]]; then
  note "rabbitmq-server is not installed: no CSV runs (scripts/install-deps.sh --test installs it)"
  SOAK_RUNS=0
fi

bench_init soak
soak_cleanup() {
  local rc=$?
  set +e
  stop_assetd
  stop_rabbit
  (exit "$rc")
  bench_cleanup
}
trap soak_cleanup EXIT

# ---- inputs ------------------------------------------------------------------
FILES=$BENCH_TMP/files
mkdir -p "$FILES"
found=0
for f in "$CORPUS"/photos/*.jpg; do   # a few real photos, if the corpus is here
  [[ -r $f ]] || continue
  cp "$f" "$FILES/$(basename "$f")"
  ((++found >= 3)) && break
done
if ((found == 0)); then
  vips gaussnoise "$FILES/noise.jpg" 1600 1200 >/dev/null
  vips gaussnoise "$FILES/small.jpg" 640 480 >/dev/null
fi
vips gaussnoise "$FILES/alpha.png" 800 600 >/dev/null
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=640x360:rate=25 -f lavfi -i sine=frequency=440 \
  -t 2 -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -shortest "$FILES/clip.mp4"
printf '%%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 320 180] >> endobj\ntrailer << /Root 1 0 R >>\n%%%%EOF\n' >"$FILES/deck.pdf"
for i in $(seq 1 200); do echo "line $i of a text asset"; done >"$FILES/notes.txt"
for i in $(seq 1 50); do echo "Person $i,person$i@example.com"; done >"$FILES/people.csv"

# ---- the server -------------------------------------------------------------
args=(--workers 2)
if [[ $SOAK_RUNS == 1 ]]; then
  start_rabbit
  note "rabbitmq-server on $RABBIT_URL"
  args+=(--amqp-url "$RABBIT_URL")
fi
start_assetd "$BENCH_TMP/assetd" "${args[@]}"
note "assetd pid $ASSETD_PID on :$ASSETD_PORT; $SOAK_USERS users for $SOAK_SECONDS s; load average $(cut -d' ' -f1-3 /proc/loadavg)"

OUT=$BENCH_TMP/soak.json
SOAK_SECONDS=$SOAK_SECONDS SOAK_USERS=$SOAK_USERS SOAK_SAMPLE_S=$SOAK_SAMPLE_S SOAK_RUNS=$SOAK_RUNS \
  node "$BENCH_ROOT/bench/soak.mjs" "$ASSETD_URL" "$ASSETD_TOKEN" "$FILES" "$ASSETD_PID" >"$OUT" ||
  die "the load generator failed"
kill -0 "$ASSETD_PID" 2>/dev/null || die "assetd died during the soak"

# ---- the report ---------------------------------------------------------------
node - "$OUT" <<'EOF'
const fs = require('node:fs');
const r = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const line = (s) => process.stderr.write(`  ${s}\n`);
line(`${r.requests} requests in ${r.seconds} s by ${r.users} users, ${r.errors} errors (target 0: ${r.errors ? 'MISSED' : 'met'})`);
line('action                  count  errors   p50 ms   p99 ms');
for (const [name, a] of Object.entries(r.actions))
  line(`${name.padEnd(22)} ${String(a.count).padStart(6)} ${String(a.errors).padStart(7)} ${String(a.p50_ms).padStart(8)} ${String(a.p99_ms).padStart(8)}` +
    (a.errors ? `   ${JSON.stringify(a.statuses)}` : ''));
line('t(s)  serve RSS MiB  fds  threads | workers  RSS MiB  fds  threads');
for (const s of r.samples)
  line(`${String(s.t_s).padStart(4)} ${(s.serve?.rss_mib ?? 0).toFixed(1).padStart(14)} ${String(s.serve?.fds).padStart(4)} ${String(s.serve?.threads).padStart(8)} | ${String(s.workers.count).padStart(7)} ${s.workers.rss_mib.toFixed(1).padStart(8)} ${String(s.workers.fds).padStart(4)} ${String(s.workers.threads).padStart(8)}`);
const n = r.samples.length, third = Math.floor(n / 3);
const mean = (a, f) => a.reduce((x, s) => x + f(s), 0) / a.length;
let verdict = 'too few samples to judge growth';
if (third >= 1) {
  const mid = r.samples.slice(third, 2 * third), last = r.samples.slice(n - third);
  const rss = [mean(mid, (s) => s.serve.rss_mib), mean(last, (s) => s.serve.rss_mib)];
  const fds = [mean(mid, (s) => s.serve.fds), mean(last, (s) => s.serve.fds)];
  const thr = [mean(mid, (s) => s.serve.threads), mean(last, (s) => s.serve.threads)];
  const flat = rss[1] <= Math.max(rss[0] * 1.1, rss[0] + 8) && fds[1] <= fds[0] * 1.1 + 2 && thr[1] <= thr[0];
  verdict = `serve after warm-up: RSS ${rss[0].toFixed(1)} -> ${rss[1].toFixed(1)} MiB, fds ${fds[0].toFixed(1)} -> ${fds[1].toFixed(1)}, ` +
    `threads ${thr[0].toFixed(1)} -> ${thr[1].toFixed(1)} (flat: ${flat ? 'met' : 'MISSED'})`;
}
line(verdict);
const worst = Object.entries(r.actions).sort((a, b) => b[1].p99_ms - a[1].p99_ms)[0];
console.log(`soak: ${r.requests} requests in ${r.seconds} s, ${r.errors} errors; slowest p99 ${worst ? `${worst[0]} ${worst[1].p99_ms} ms` : '-'}; ${verdict}`);
EOF
