// WebSocket listeners for bench/events_fanout.sh: COUNT connections to one
// URL, driven by commands on stdin, reporting on stdout.  Not a test: it
// measures, and says what went wrong instead of asserting.
//
//   node bench/ws_listeners.mjs URL COUNT [BATCH]
//   env WS_AUTH="Bearer KEY" (sent as Authorization), WS_NAME (for messages)
//
// Opens COUNT connections, at most BATCH (default 100) handshakes at a time,
// then prints "ready COUNT MS" (MS: how long the opening took).  Commands,
// one per line on stdin:
//   mark TAG EXPECT TIMEOUT_MS HISTFILE
//       a new phase: counters reset; every connection should now receive
//       EXPECT messages.  As soon as all have (or TIMEOUT_MS after the mark)
//       prints "report TAG {json}" and writes the latency histogram to
//       HISTFILE ("BIN COUNT" lines, BIN = latency in units of 0.1 ms), then
//       one line per event: "E ID AT FIRST_RX LAST_RX" (ms since the epoch;
//       the first and last receipt of that event in this process).
//   mark TAG EXPECT TIMEOUT_MS HISTFILE CURRENTS
//       the same, for slideshow listeners (bench/slides_fanout.sh), whose
//       messages are {"id","current","updated"} with no usable time in them:
//       CURRENTS (comma-separated) is the "current" each connection should
//       get, in order (anything else counts as out of order), and instead of
//       latencies HISTFILE gets receipt times, "R K BIN COUNT" lines (K: the
//       change's index in CURRENTS, BIN: receipt time in units of 0.1 ms since
//       the epoch); the script subtracts the time it sent each change.
//   close
//       terminates every connection and exits 0.
// Messages that arrive before the first mark (a slideshow's current state,
// sent on connect) are counted: "pre_conns" (connections that got at least
// one) and "pre_msgs" in every report.
// Any failure while opening prints "error ..." and exits 1; a connection
// that closes later is counted in every later report ("closed").
//
// Per message: receipt time (wall clock, sub-millisecond: performance.now()
// anchored to Date.now() at a millisecond edge at each mark) minus the
// message's "at" (ISO time, millisecond precision, truncated: so every
// latency reads 0-1 ms high, 0.5 ms on average).  "at" and "id" are found by
// searching the raw bytes, not by JSON.parse: the listeners share two cores
// with the server, and their CPU per message is kept small.  For the same
// reason UTF-8 validation is off (skipUTF8Validation) and no compression is
// offered.  Both servers in the bench are measured with this same client.
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

// `ws` comes from the repo's tests/node_modules (scripts/install-deps.sh --test).
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let WebSocket;
try {
  WebSocket = createRequire(path.join(repo, 'tests', 'package.json'))('ws');
} catch (e) {
  console.log(`error cannot load the npm package ws from ${repo}/tests/node_modules: ${e.message}`);
  process.exit(1);
}

const [url, countArg, batchArg] = process.argv.slice(2);
const COUNT = Number(countArg);
const BATCH = Number(batchArg || 100);
const NAME = process.env.WS_NAME || 'listeners';
if (!url || !(COUNT > 0) || !(BATCH > 0)) {
  console.log('error usage: ws_listeners.mjs URL COUNT [BATCH]');
  process.exit(1);
}
const headers = process.env.WS_AUTH ? { Authorization: process.env.WS_AUTH } : {};

const AT = Buffer.from('"at":"');
const ID = Buffer.from('"id":');
const CUR = Buffer.from('"current":');

// Wall-clock milliseconds with sub-millisecond resolution.
let offset = 0;
function calibrate() {
  const t0 = Date.now();
  let t;
  while ((t = Date.now()) === t0) { /* spin to a millisecond edge (< 1 ms) */ }
  offset = t - performance.now();
}
const now = () => offset + performance.now();

const counts = new Int32Array(COUNT);
const lastId = new Float64Array(COUNT);
const socks = new Array(COUNT);
let phase = null;     // { tag, expect, hist, done, msgs, ... }
let closedLate = 0;
const preCounts = new Int32Array(COUNT);
let preMsgs = 0;
let opened = false;

function finish(timedOut) {
  const p = phase;
  if (!p || p.reported) return;
  p.reported = true;
  clearTimeout(p.timer);
  let minCount = Infinity, maxCount = 0;
  for (let i = 0; i < COUNT; i++) {
    if (counts[i] < minCount) minCount = counts[i];
    if (counts[i] > maxCount) maxCount = counts[i];
  }
  const lines = [];
  for (const [bin, n] of p.hist) lines.push(`${bin} ${n}`);
  for (const [id, e] of p.events) lines.push(`E ${id} ${e[0]} ${e[1].toFixed(3)} ${e[2].toFixed(3)}`);
  if (p.seq) p.rx.forEach((m, k) => { for (const [bin, n] of m) lines.push(`R ${k} ${bin} ${n}`); });
  let preConns = 0;
  for (let i = 0; i < COUNT; i++) if (preCounts[i] > 0) preConns++;
  writeFileSync(p.histFile, lines.join('\n') + '\n');
  const r = {
    conns: COUNT, expect: p.expect, complete: p.done, msgs: p.msgs, min_count: minCount,
    max_count: maxCount, order_errors: p.orderErrors, unparsed: p.unparsed, closed: closedLate,
    min_at: p.minAt, max_rx: p.maxRx, first_rx: p.firstRx, timed_out: timedOut,
    mark_at: p.markAt, report_at: now(), pre_conns: preConns, pre_msgs: preMsgs,
  };
  console.log(`report ${p.tag} ${JSON.stringify(r)}`);
}

function onMessage(i, data) {
  const rx = now();
  const p = phase;
  if (!p) { preCounts[i]++; preMsgs++; return; }
  const buf = Buffer.isBuffer(data) ? data : Buffer.concat(data);   // text frames: a Buffer
  p.msgs++;
  if (p.seq) { onChange(i, p, buf, rx); return; }
  const a = buf.indexOf(AT);
  const d = buf.indexOf(ID);
  if (a < 0 || d < 0) { p.unparsed++; return; }
  const at = Date.parse(buf.toString('latin1', a + 6, a + 30));
  const id = parseInt(buf.toString('latin1', d + 5, d + 25), 10);
  if (!(at > 0)) { p.unparsed++; return; }
  if (!(id > lastId[i])) p.orderErrors++;
  lastId[i] = id;
  const bin = Math.round((rx - at) * 10);
  p.hist.set(bin, (p.hist.get(bin) || 0) + 1);
  const ev = p.events.get(id);
  if (!ev) p.events.set(id, [at, rx, rx]);
  else if (rx > ev[2]) ev[2] = rx;
  if (at < p.minAt) p.minAt = at;
  if (rx > p.maxRx) p.maxRx = rx;
  if (rx < p.firstRx) p.firstRx = rx;
  if (++counts[i] === p.expect) {
    if (++p.done === COUNT) finish(false);
  }
}

// A slideshow change: checked against the expected sequence, its receipt
// time kept (binned) by the change's index.
function onChange(i, p, buf, rx) {
  const c = buf.indexOf(CUR);
  if (c < 0) { p.unparsed++; return; }
  const cur = parseInt(buf.toString('latin1', c + 10, c + 30), 10);
  const k = counts[i];
  if (k >= p.seq.length || p.seq[k] !== cur) p.orderErrors++;
  if (k < p.seq.length) {
    const m = p.rx[k];
    const bin = Math.round(rx * 10);
    m.set(bin, (m.get(bin) || 0) + 1);
  }
  if (rx > p.maxRx) p.maxRx = rx;
  if (rx < p.firstRx) p.firstRx = rx;
  if (++counts[i] === p.expect) {
    if (++p.done === COUNT) finish(false);
  }
}

function open(i) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false, skipUTF8Validation: true,
                                    handshakeTimeout: 30000 });
    socks[i] = ws;
    ws.on('message', (data) => onMessage(i, data));
    ws.once('open', resolve);
    ws.once('unexpected-response', (req, res) => reject(new Error(`connection ${i}: HTTP ${res.statusCode}`)));
    ws.on('error', (e) => { if (!opened) reject(new Error(`connection ${i}: ${e.message}`)); });
    ws.on('close', (code) => {
      if (opened) closedLate++;
      else reject(new Error(`connection ${i}: closed (${code}) before ready`));
    });
  });
}

async function openAll() {
  const t0 = performance.now();
  let next = 0;
  async function lane() {
    while (next < COUNT) await open(next++);
  }
  await Promise.all(Array.from({ length: Math.min(BATCH, COUNT) }, lane));
  opened = true;
  console.log(`ready ${COUNT} ${Math.round(performance.now() - t0)}`);
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const w = line.trim().split(/\s+/);
  if (w[0] === 'mark') {
    calibrate();
    counts.fill(0);
    phase = {
      tag: w[1], expect: Number(w[2]), histFile: w[4], hist: new Map(), events: new Map(), done: 0, msgs: 0,
      orderErrors: 0, unparsed: 0, minAt: Infinity, maxRx: 0, firstRx: Infinity, reported: false,
      markAt: now(), seq: null,
    };
    if (w[5]) {
      phase.seq = w[5].split(',').map(Number);
      phase.rx = phase.seq.map(() => new Map());
    }
    phase.timer = setTimeout(() => finish(true), Number(w[3]));
  } else if (w[0] === 'close') {
    for (const ws of socks) if (ws) ws.terminate();
    setTimeout(() => process.exit(0), 100);
  }
});
// The script went away (its end of the control pipe closed): so do we.
rl.on('close', () => { for (const ws of socks) if (ws) ws.terminate(); process.exit(0); });

openAll().catch((e) => {
  console.log(`error ${NAME}: ${e.message}`);
  process.exit(1);
});
