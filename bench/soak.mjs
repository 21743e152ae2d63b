// The load of bench/soak.sh: a bounded mixed load against one running
// assetd, and samples of its processes.  Not a test: it measures, and says
// what went wrong instead of asserting.
//
//   node bench/soak.mjs URL TOKEN FILES_DIR SERVE_PID
//   env SOAK_SECONDS (600), SOAK_USERS (8), SOAK_SAMPLE_S (10),
//       SOAK_RUNS (1: CSV runs too; the server needs --amqp-url)
//
// SOAK_USERS virtual users loop until the time is up, each picking an
// action by weight: uploads of every kind the corpus directory has (JPEG,
// PNG, PDF, a short video, text), the asset list, ranged GETs of content,
// a rendition of a ready image, a signed link and its key-less GET, a
// delete of one of its own oldest assets (each user keeps at most
// KEEP_PER_USER), an SSE or WebSocket client that connects, reads for a
// moment and leaves, and a small CSV run followed to its end.  A request
// is an error when it fails at the network level or answers a status other
// than the one its action expects.  Every SOAK_SAMPLE_S seconds the serve
// process and its workers (its children) are sampled from /proc: RSS,
// open files, threads.
//
// Prints one JSON document on stdout: per action count, errors (with the
// first few statuses seen) and latency p50/p99 (ms); the samples; totals.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const [URL0, TOKEN, FILES, SERVE_PID] = process.argv.slice(2);
if (!URL0 || !TOKEN || !FILES || !SERVE_PID) {
  console.error('usage: node bench/soak.mjs URL TOKEN FILES_DIR SERVE_PID');
  process.exit(2);
}
const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const WebSocket = createRequire(path.join(repo, 'tests', 'package.json'))('ws');

const SECONDS = Number(process.env.SOAK_SECONDS || 600);
const USERS = Number(process.env.SOAK_USERS || 8);
const SAMPLE_S = Number(process.env.SOAK_SAMPLE_S || 10);
const RUNS = process.env.SOAK_RUNS !== '0';
const KEEP_PER_USER = 25;
const AUTH = { authorization: `Bearer ${TOKEN}` };
const END = Date.now() + SECONDS * 1000;

const files = fs.readdirSync(FILES).map((f) => ({ name: f, body: fs.readFileSync(path.join(FILES, f)) }));
const byExt = (re) => files.filter((f) => re.test(f.name));
const uploads = { image: byExt(/\.(jpe?g|png|webp)$/i), pdf: byExt(/\.pdf$/i), video: byExt(/\.mp4$/i), text: byExt(/\.txt$/i) };
const csv = files.find((f) => f.name.endsWith('.csv'));

// ------------------------------------------------------------ statistics

const stats = new Map();   // action -> {count, errors, statuses, ms: []}
function record(action, ms, ok, status) {
  let s = stats.get(action);
  if (!s) stats.set(action, (s = { count: 0, errors: 0, statuses: {}, ms: [] }));
  s.count++;
  s.ms.push(ms);
  if (!ok) {
    s.errors++;
    const k = String(status);
    if (Object.keys(s.statuses).length < 8 || s.statuses[k]) s.statuses[k] = (s.statuses[k] || 0) + 1;
  }
}
const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : null);

/** One timed request; ok when its status is one of `expect`. */
async function timed(action, url, init, expect) {
  const t0 = performance.now();
  let res = null, status = 'network';
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(60000) });
    status = res.status;
    await res.arrayBuffer();   // the whole answer is part of the request
  } catch (e) {
    status = e.name === 'TimeoutError' ? 'timeout' : 'network';
  }
  record(action, performance.now() - t0, expect.includes(status), status);
  return res && expect.includes(status) ? res : null;
}

async function timedJson(action, url, init, expect) {
  const t0 = performance.now();
  let status = 'network', body = null;
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(60000) });
    status = res.status;
    body = await res.json().catch(() => null);
  } catch (e) {
    status = e.name === 'TimeoutError' ? 'timeout' : 'network';
  }
  const ok = expect.includes(status) && body !== null;
  record(action, performance.now() - t0, ok, status);
  return ok ? body : null;
}

// ------------------------------------------------------------ actions

const pick = (a) => a[Math.floor(Math.random() * a.length)];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function upload(user, kind) {
  const list = uploads[kind];
  if (!list.length) return;
  const f = pick(list);
  const a = await timedJson(`upload ${kind}`, `${URL0}/v1/assets?filename=${encodeURIComponent(f.name)}`,
    { method: 'POST', headers: AUTH, body: f.body }, [201]);
  if (a) user.assets.push({ id: a.id, size: f.body.length, kind: a.kind });
}

async function list() {
  await timed('list', `${URL0}/v1/assets?limit=20`, { headers: AUTH }, [200]);
}

async function ranged(user) {
  const a = pick(user.assets);
  if (!a) return;
  const from = Math.floor(Math.random() * a.size);
  await timed('content range', `${URL0}/v1/assets/${a.id}/content`,
    { headers: { ...AUTH, range: `bytes=${from}-${Math.min(a.size - 1, from + 65535)}` } }, [206]);
}

async function rendition(user) {
  const images = user.assets.filter((a) => a.kind === 'image');
  const a = pick(images);
  if (!a) return;
  const asset = await timedJson('asset', `${URL0}/v1/assets/${a.id}`, { headers: AUTH }, [200]);
  if (asset?.status === 'ready') await timed('rendition', `${URL0}/v1/assets/${a.id}/renditions/thumb`, { headers: AUTH }, [200]);
}

async function signedLink(user) {
  const a = pick(user.assets);
  if (!a) return;
  const link = await timedJson('link', `${URL0}/v1/assets/${a.id}/links`,
    { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json' }, body: '{"expires_in":300}' }, [200, 201]);
  if (link?.url) await timed('signed get', new URL(link.url, URL0).href, {}, [200]);
}

async function remove(user) {
  if (user.assets.length <= KEEP_PER_USER) return;
  const a = user.assets.shift();
  await timed('delete', `${URL0}/v1/assets/${a.id}`, { method: 'DELETE', headers: AUTH }, [204]);
}

async function sse() {
  const t0 = performance.now();
  const ctl = new AbortController();
  let status = 'network';
  try {
    const res = await fetch(`${URL0}/v1/events?since=0`, { headers: { ...AUTH, accept: 'text/event-stream' }, signal: ctl.signal });
    status = res.status;
    const reader = res.body.getReader();
    const until = Date.now() + 500 + Math.random() * 2500;
    while (Date.now() < until) {
      const r = await Promise.race([reader.read(), sleep(until - Date.now()).then(() => null)]);
      if (!r || r.done) break;
    }
  } catch { /* status says */ }
  ctl.abort();
  record('sse session', performance.now() - t0, status === 200, status);
}

function websocket() {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let opened = false, done = false;
    const ws = new WebSocket(`${URL0.replace(/^http/, 'ws')}/v1/events`, { headers: AUTH });
    const finish = (ok, status) => {
      if (done) return;
      done = true;
      record('websocket session', performance.now() - t0, ok, status);
      resolve();
    };
    ws.on('open', () => {
      opened = true;
      setTimeout(() => ws.close(1000), 500 + Math.random() * 2500);
    });
    ws.on('close', (code) => finish(opened && code === 1000, opened ? `close ${code}` : 'refused'));
    ws.on('error', () => finish(false, opened ? 'error' : 'refused'));
    ws.on('unexpected-response', (_, res) => { finish(false, res.statusCode); ws.terminate(); });
  });
}

async function run() {
  if (!RUNS || !csv) return;
  const form = new FormData();
  form.append('file', new Blob([csv.body]), csv.name);
  form.append('mode', Math.random() < 0.5 ? 'live' : 'batch');
  form.append('timeout', '1');
  const r = await timedJson('run create', `${URL0}/v1/runs`, { method: 'POST', headers: AUTH, body: form }, [202]);
  if (!r) return;
  const t0 = performance.now();
  let state = r.state;
  while (!['succeeded', 'failed'].includes(state) && Date.now() < END + 60000) {
    await sleep(500);
    const s = await timedJson('run get', `${URL0}/v1/runs/${r.id}`, { headers: AUTH }, [200]);
    state = s?.state ?? state;
  }
  record('run to the end', performance.now() - t0, state === 'succeeded', state);
}

// weights: what a busy app's clients mostly do is read
const actions = [
  [10, (u) => upload(u, 'image')], [2, (u) => upload(u, 'pdf')], [1, (u) => upload(u, 'video')],
  [3, (u) => upload(u, 'text')], [12, list], [20, ranged], [10, rendition], [6, signedLink],
  [6, remove], [3, sse], [3, websocket], [1, run],
];
const total = actions.reduce((n, [w]) => n + w, 0);
function choose() {
  let x = Math.random() * total;
  for (const [w, f] of actions) if ((x -= w) < 0) return f;
  return actions[0][1];
}

async function user() {
  const u = { assets: [] };
  while (Date.now() < END) await choose()(u);
  return u;
}

// ------------------------------------------------------------ samples

function children(pid) {
  try {
    return fs.readdirSync(`/proc/${pid}/task`).flatMap((t) =>
      fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
  } catch { return []; }
}
function proc(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
    return { rss_mib: field('VmRSS') / 1024, threads: field('Threads'), fds: fs.readdirSync(`/proc/${pid}/fd`).length };
  } catch { return null; }
}
const samples = [];
function sample(t0) {
  const serve = proc(SERVE_PID);
  const workers = children(SERVE_PID).map(proc).filter(Boolean);
  samples.push({ t_s: Math.round((Date.now() - t0) / 1000), serve,
    workers: { count: workers.length, rss_mib: workers.reduce((n, w) => n + w.rss_mib, 0),
      fds: workers.reduce((n, w) => n + w.fds, 0), threads: workers.reduce((n, w) => n + w.threads, 0) } });
}

// ------------------------------------------------------------ main

const t0 = Date.now();
sample(t0);
const timer = setInterval(() => sample(t0), SAMPLE_S * 1000);
await Promise.all(Array.from({ length: USERS }, user));
clearInterval(timer);
sample(t0);

const actionsOut = {};
let requests = 0, errors = 0;
for (const [name, s] of [...stats].sort()) {
  const sorted = s.ms.sort((a, b) => a - b);
  requests += s.count;
  errors += s.errors;
  actionsOut[name] = { count: s.count, errors: s.errors, statuses: s.statuses,
    p50_ms: Math.round(pct(sorted, 0.5) * 10) / 10, p99_ms: Math.round(pct(sorted, 0.99) * 10) / 10 };
}
console.log(JSON.stringify({ seconds: SECONDS, users: USERS, requests, errors, actions: actionsOut, samples }));
