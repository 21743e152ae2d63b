// lib.mjs — shared helpers for the assetd end-to-end tests.
//
// Every server is started on 127.0.0.1 port 0 (the real port is read from
// the "listening" log line), every wait is bounded, and every process/temp
// dir a test creates is removed by the test (t.after / after) and, as a last
// resort, by the exit hook at the bottom of this file.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes, createCipheriv } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = process.env.ASSETD_BIN ? path.resolve(process.env.ASSETD_BIN) : path.join(REPO, 'build', 'assetd');
export const SANITIZED = process.env.ASSETD_SANITIZED === '1';
export const CORPUS = path.resolve(REPO, '..', 'shared', 'corpus');
/* ASan builds are slower; scale every deadline. */
export const SLOW = SANITIZED ? 4 : 1;
/** Per-test deadline: a hung server must fail a test, not stall the suite. */
export const TEST_TIMEOUT = 90000 * SLOW;

export const TOKEN_RE = /^ak_[A-Za-z0-9_-]{43}$/;
export const ID_RE = /^[A-Za-z0-9_-]{22}$/;
export const TS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
export const SHA_RE = /^[0-9a-f]{64}$/;

// A 1x1 JPEG (libmagic: image/jpeg) and a 1x1 PNG (image/png).
export const TINY_JPEG = Buffer.from(
  '/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////////' +
  '////////////////////////////////wgALCAABAAEBAREA/8QAFBABAAAAAAAAAAAAAAAAAAAAAP/aAAgBAQABPxA=',
  'base64');
export const TINY_PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC',
  'base64');
export const TINY_PDF = Buffer.from(
  '%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n' +
  '2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n');
export const TEXT = Buffer.from('hello, this is just plain text.\nnothing to see here.\n');

/** A PNG made of an IHDR (w x h, 8-bit RGB) and the deflated raw rows. */
function pngOf(w, h, raw) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);   // 8-bit RGB, no interlace
  return Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}
/** A small RGB PNG (w x h, a gradient): real work for the image
 *  pipeline, quick under ASan, and unlike TINY_PNG's bytes. */
export function gradientPng(w, h) {
  const rows = [];
  for (let y = 0; y < h; y++) {
    const row = Buffer.alloc(1 + 3 * w);   // filter 0
    for (let x = 0; x < w; x++) row.set([(x * 255) / w, (y * 255) / h, 128], 1 + 3 * x);
    rows.push(row);
  }
  return pngOf(w, h, Buffer.concat(rows));
}
/** A valid PNG whose header declares 50000 x 50000 (a decompression bomb):
 *  refused before decoding. */
export const pngBomb = () => pngOf(50000, 50000, Buffer.alloc(1 << 16));

// ---------------------------------------------------------------- utilities

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves to the promise's value, or null after ms (the timer is cleared either way). */
export function within(promise, ms) {
  let timer;
  const t = new Promise((r) => { timer = setTimeout(() => r(null), ms); });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}
export const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

export function sha256File(p) {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    fs.createReadStream(p).on('data', (d) => h.update(d)).on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

/** Polls fn() (sync or async) until it returns a truthy value; bounded by timeoutMs. */
export async function waitFor(fn, { timeoutMs = 5000, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs * SLOW;
  let last;
  for (let i = 0; i < 100000; i++) {
    last = await fn();
    if (last) return last;
    if (Date.now() >= deadline) break;
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs * SLOW} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}

const tempDirs = new Set();
export function makeTempDir(prefix = 'assetd-e2e-') {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}
export function removeDir(d) {
  if (!d) return;
  fs.rmSync(d, { recursive: true, force: true });
  tempDirs.delete(d);
}

/** Regular files under dir, recursively (missing dir -> []). */
export function listFiles(dir) {
  const out = [];
  const walk = (d, depth) => {
    if (depth > 32) return;
    let ents;
    try { ents = fs.readdirSync(d, { withFileTypes: true }); } catch (e) {
      if (e.code === 'ENOENT') return;
      throw e;
    }
    for (const e of ents) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p, depth + 1);
      else if (e.isFile()) out.push(p);
    }
  };
  walk(dir, 0);
  return out;
}
/** The store's blobs of dataDir's server: the files under DATA/blobs, or
 *  on the S3 store of the suite (storeEnvFor) the bucket's keys. */
export const blobFiles = (dataDir) => (storeEnvFor(dataDir).ASSETD_STORE ? s3Keys(dataDir)
  : listFiles(path.join(dataDir, 'blobs')));
export const tmpFiles = (dataDir) => listFiles(path.join(dataDir, 'tmp'));

/** Peak RSS (VmHWM) of a live process in bytes. */
export function vmHWM(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(s);
  if (!m) throw new Error('no VmHWM in /proc/' + pid + '/status');
  return Number(m[1]) * 1024;
}

export function isAlive(pid) {
  try { process.kill(pid, 0); } catch { return false; }
  // a zombie still answers kill(0); look at the state
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch { return false; }
}

/** Pseudo-random bytes, fast and reproducible: AES-128-CTR keystream. */
export function prng(seed = randomBytes(16)) {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return (n) => cipher.update(Buffer.alloc(n));
}

// ---------------------------------------------------------------- processes

const liveProcs = new Set();
function reapAll() {
  for (const p of liveProcs) { try { p.kill('SIGKILL'); } catch { /* gone */ } }
  for (const d of tempDirs) { try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* */ } }
}
process.on('exit', reapAll);
// the test runner (or a user's ^C) may stop a file with a signal: clean up then too
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => { reapAll(); process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1)); });
}

/** Environment for a child: ours, minus any ASSETD_* server settings that
 *  would leak from the caller's shell into the test. */
function childEnv(extra = {}) {
  const env = { ...process.env };
  for (const k of ['ASSETD_LISTEN', 'ASSETD_DATA', 'ASSETD_MAX_UPLOAD', 'ASSETD_ACCESS_LOG', 'ASSETD_DB',
    'ASSETD_STORE', 'ASSETD_S3_ENDPOINT']) delete env[k];
  return { ...env, ...extra };
}

// PostgreSQL: with ASSETD_TEST_PG_URL (postgres://USER@HOST:PORT, a cluster
// run-e2e.sh starts: postgres.mjs), every data directory gets a database
// of its own, made on first use and named after the directory, so a test's
// server, its restarts and its CLI commands share one and no two tests do.
// The processes find it in ASSETD_DB.  Without the variable: SQLite in the
// data directory, as users run it by default.
export const PG_URL = process.env.ASSETD_TEST_PG_URL || '';
/** 24 hex digits that name a data directory (its database, its bucket). */
const dirTag = (dataDir) => createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 24);
const pgDatabases = new Set();
export function dbEnvFor(dataDir) {
  if (!PG_URL || !dataDir) return {};
  const name = `t_${dirTag(dataDir)}`;
  if (!pgDatabases.has(name)) {
    try {
      execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', `${PG_URL}/postgres`, '-c', `CREATE DATABASE ${name}`],
        { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30000 });
    } catch (e) {
      if (!/already exists/.test(String(e.stderr))) throw e;
    }
    pgDatabases.add(name);
  }
  return { ASSETD_DB: `${PG_URL}/${name}` };
}

// S3: with ASSETD_TEST_S3_URL (an s3rver the suite shares, with-services.mjs),
// every data directory also gets a bucket of its own on it, made on first
// use and named after the directory, as the store (ASSETD_STORE; s3rver
// checks no signature, so any secret goes).  A test that names its own
// store (--store, which beats the environment) keeps it, and a file about
// the disk store's own files keeps the disk store (pinDiskStore).
export const S3_URL = process.env.ASSETD_TEST_S3_URL || '';
let diskPinned = false;
/** For a test file about the disk store itself (its temp files, blobs,
 *  sweep): its servers keep the disk store in every suite, on PostgreSQL
 *  too.  Called once at the top of the file (one process per file). */
export function pinDiskStore() { diskPinned = true; }
const s3Buckets = new Set();
const bucketOf = (dataDir) => `t-${dirTag(dataDir)}`;
/** The keys in dataDir's bucket (at most 1,000: a test's). */
function s3Keys(dataDir) {
  const xml = execFileSync('curl', ['-sS', '--fail', '--max-time', '30', `${S3_URL}/${bucketOf(dataDir)}?list-type=2&max-keys=1000`],
    { encoding: 'utf8', timeout: 35000 });
  return [...xml.matchAll(/<Key>([^<]+)<\/Key>/g)].map((m) => m[1]);
}
export function storeEnvFor(dataDir) {
  if (!S3_URL || !dataDir || diskPinned) return {};
  const bucket = bucketOf(dataDir);
  if (!s3Buckets.has(bucket)) {
    // s3rver answers 200 for a new bucket and 409 for one it has: both do
    execFileSync('curl', ['-sS', '-o', '/dev/null', '-X', 'PUT', '--max-time', '30', `${S3_URL}/${bucket}`],
      { stdio: ['ignore', 'ignore', 'pipe'], timeout: 35000 });
    s3Buckets.add(bucket);
  }
  return {
    ASSETD_STORE: `s3://${bucket}/media`, ASSETD_S3_ENDPOINT: S3_URL,
    AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'suite-secret', AWS_SESSION_TOKEN: '',
  };
}

/** What a process on dataDir runs on in this suite: its database and store. */
function backendEnvFor(dataDir) {
  return { ...dbEnvFor(dataDir), ...storeEnvFor(dataDir) };
}

/** The data directory a CLI command names (--data DIR or ASSETD_DATA). */
function dataDirOf(args, env) {
  const i = args.indexOf('--data');
  return i >= 0 ? args[i + 1] : env.ASSETD_DATA;
}

/** Runs the assetd CLI to completion. -> {code, signal, stdout, stderr} */
export function runCli(args, { env = {}, timeoutMs = 15000, input } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(BIN, args, { env: childEnv({ ...backendEnvFor(dataDirOf(args, env)), ...env }), stdio: ['pipe', 'pipe', 'pipe'] });
    liveProcs.add(p);
    const out = [], err = [];
    p.stdout.on('data', (d) => out.push(d));
    p.stderr.on('data', (d) => err.push(d));
    const timer = setTimeout(() => { p.kill('SIGKILL'); }, timeoutMs * SLOW);
    p.on('error', (e) => { clearTimeout(timer); liveProcs.delete(p); reject(e); });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      liveProcs.delete(p);
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    p.stdin.on('error', () => {});
    p.stdin.end(input);
  });
}

export async function createKey(dataDir, name, owner) {
  const args = ['keys', 'create', '--data', dataDir, '--name', name];
  if (owner !== undefined) args.push('--owner', owner);
  const r = await runCli(args);
  if (r.code !== 0) throw new Error(`keys create failed (${r.code}): ${r.stderr}`);
  const token = r.stdout.trim();
  if (!TOKEN_RE.test(token)) throw new Error(`keys create printed ${JSON.stringify(r.stdout)}`);
  return token;
}

export async function listKeys(dataDir) {
  const r = await runCli(['keys', 'list', '--data', dataDir]);
  if (r.code !== 0) throw new Error(`keys list failed (${r.code}): ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.length > 0).map((l) => {
    const [id, name, owner, created, state, ...rest] = l.split('\t');
    return { id, name, owner, created, state, extra: rest, line: l };
  });
}

function tryJson(line) {
  try { const v = JSON.parse(line); return v && typeof v === 'object' ? v : null; } catch { return null; }
}

/**
 * Starts `assetd serve` on 127.0.0.1:0 and waits for its "listening" line.
 * -> {url, port, pid, token, dataDir, proc, stop(signal), cleanup(), stderrLines, stdoutLines,
 *     logs (parsed stderr JSON), accessLog (parsed stdout JSON), exited (promise)}
 * opts.dataDir: reuse a directory (not removed by cleanup); otherwise a temp dir is made and removed.
 * opts.useFlags=false: pass listen/data via env instead of flags.
 */
// Worker processes are off unless a test asks for them (`workers: N`), so
// the storage and HTTP tests see assets exactly as uploaded.
// opts.wrap: a command that execs the server in place (its pid stays the
// server's), e.g. ['prlimit', '--nofile=64:64', '--'].
export async function startServer({ dataDir, env = {}, args = [], listen = '127.0.0.1:0', useFlags = true, timeoutMs = 15000, workers = 0, wrap = [] } = {}) {
  const ownsDir = !dataDir;
  if (!dataDir) dataDir = makeTempDir();
  const argv = ['serve'];
  const extraEnv = { ...env };
  if (useFlags) argv.push('--listen', listen, '--data', dataDir, '--workers', String(workers));
  else { extraEnv.ASSETD_LISTEN = listen; extraEnv.ASSETD_DATA = dataDir; extraEnv.ASSETD_WORKERS = String(workers); }
  argv.push(...args);
  const procEnv = childEnv({ ...backendEnvFor(dataDir), ...extraEnv });
  const proc = wrap.length
    ? spawn(wrap[0], [...wrap.slice(1), BIN, ...argv], { env: procEnv, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(BIN, argv, { env: procEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  liveProcs.add(proc);
  const srv = {
    proc, pid: proc.pid, dataDir, ownsDir, token: null, port: 0, url: '',
    stderrLines: [], stdoutLines: [], logs: [], accessLog: [],
    exitInfo: null,
  };
  srv.exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => { srv.exitInfo = { code, signal }; liveProcs.delete(proc); resolve(srv.exitInfo); });
  });
  proc.on('error', () => {});
  const listeners = new Set();
  const notify = () => { for (const f of listeners) f(); };
  readline.createInterface({ input: proc.stderr }).on('line', (l) => {
    srv.stderrLines.push(l);
    const j = tryJson(l);
    if (j) srv.logs.push(j);
    notify();
  });
  readline.createInterface({ input: proc.stdout }).on('line', (l) => {
    srv.stdoutLines.push(l);
    const j = tryJson(l);
    if (j) srv.accessLog.push(j);
    notify();
  });

  /** Waits until pred(srv) is truthy, the process exits, or timeout. */
  srv.waitUntil = (pred, ms = 5000, what = 'log line') => new Promise((resolve, reject) => {
    const check = () => {
      let v;
      try { v = pred(srv); } catch (e) { done(); reject(e); return; }
      if (v) { done(); resolve(v); }
    };
    const timer = setTimeout(() => { done(); reject(new Error(`timed out waiting for ${what}; stderr:\n${srv.stderrLines.slice(-20).join('\n')}`)); }, ms * SLOW);
    const onExit = () => { setTimeout(() => { check(); if (listeners.has(check)) { done(); reject(new Error(`server exited (${JSON.stringify(srv.exitInfo)}) while waiting for ${what}; stderr:\n${srv.stderrLines.slice(-20).join('\n')}`)); } }, 50); };
    const done = () => { clearTimeout(timer); listeners.delete(check); };
    listeners.add(check);
    srv.exited.then(onExit);
    check();
  });

  srv.signalsSent = [];
  srv.stop = async (signal = 'SIGTERM', ms = 10000) => {
    if (srv.exitInfo) return srv.exitInfo;
    srv.signalsSent.push(signal);
    try { proc.kill(signal); } catch { /* gone */ }
    const r = await within(srv.exited, ms * SLOW);
    if (r) return r;
    srv.signalsSent.push('SIGKILL');
    try { proc.kill('SIGKILL'); } catch { /* gone */ }
    const r2 = await srv.exited;
    srv.timedOut = true;
    return { ...r2, timedOut: true };
  };
  /** Sends a signal without waiting (recorded for checkExit). */
  srv.signal = (sig) => { srv.signalsSent.push(sig); process.kill(proc.pid, sig); };
  srv.kill9 = async () => {
    if (!srv.exitInfo) { srv.signalsSent.push('SIGKILL'); try { proc.kill('SIGKILL'); } catch { /* */ } }
    return srv.exited;
  };
  /** Throws unless the server exited 0 (or was SIGKILLed on purpose). Catches
   *  crashes and sanitizer reports (ASan/UBSan make the exit code non-zero). */
  srv.checkExit = () => {
    const e = srv.exitInfo;
    if (!e || srv.signalsSent.includes('SIGKILL')) return;
    const tail = srv.stderrLines.slice(-40).join('\n');
    if (srv.signalsSent.length === 0) throw new Error(`assetd exited on its own (${JSON.stringify(e)}); stderr tail:\n${tail}`);
    if (e.code !== 0) throw new Error(`assetd exited ${JSON.stringify(e)} after ${srv.signalsSent.join(',')}; stderr tail:\n${tail}`);
  };
  srv.cleanup = async () => {
    try {
      const r = await srv.stop('SIGTERM', 10000);
      if (r.timedOut) throw new Error(`assetd did not exit within ${10 * SLOW} s of SIGTERM; stderr tail:\n${srv.stderrLines.slice(-20).join('\n')}`);
      srv.checkExit();
    } finally {
      if (ownsDir) removeDir(dataDir);
    }
  };
  srv.alive = () => !srv.exitInfo && isAlive(proc.pid);

  let listening;
  try {
    listening = await srv.waitUntil((s) => s.logs.find((j) => j.msg === 'listening'), timeoutMs, '"listening" log line');
  } catch (e) {
    await srv.cleanup().catch(() => {});
    throw e;
  }
  const m = /:(\d+)$/.exec(String(listening.addr || ''));
  if (!m || Number(m[1]) === 0) {
    await srv.cleanup().catch(() => {});
    throw new Error(`cannot parse port from listening line: ${JSON.stringify(listening)}`);
  }
  srv.port = Number(m[1]);
  srv.url = `http://127.0.0.1:${srv.port}`;
  const boot = srv.logs.find((j) => j.msg === 'bootstrap key created');
  if (boot && boot.token) srv.token = boot.token;
  else {
    try { srv.token = fs.readFileSync(path.join(dataDir, 'admin.key'), 'utf8').trim() || null; } catch { srv.token = null; }
  }
  return srv;
}

/** startServer + cleanup registered on the node:test context. */
/** /v1/events as SSE on srv (with srv.token, if any, as its key), the
 *  events parsed as frames arrive; `ended` once the server closed it. */
export function followEvents(srv, query = '', headers = {}) {
  const s = { events: [], ended: false, status: 0 };
  const auth = srv.token ? { authorization: `Bearer ${srv.token}` } : {};
  s.req = http.get(`${srv.url}/v1/events${query}`,
    { headers: { accept: 'text/event-stream', ...auth, ...headers } }, (res) => {
      s.status = res.statusCode;
      let buf = '';
      res.setEncoding('utf8');
      res.on('error', () => {});
      res.on('close', () => { s.ended = true; });
      res.on('data', (d) => {
        buf += d;
        for (let i; (i = buf.indexOf('\n\n')) >= 0; buf = buf.slice(i + 2)) {
          const line = buf.slice(0, i).split('\n').find((l) => l.startsWith('data: '));
          if (line) s.events.push(JSON.parse(line.slice(6)));
        }
      });
    });
  s.req.on('error', () => { s.ended = true; });
  s.close = () => s.req.destroy();
  return s;
}

export async function serverFor(t, opts) {
  const srv = await startServer(opts);
  t.after(() => srv.cleanup());
  return srv;
}

// ---------------------------------------------------------------- curl

let curlSeq = 0;
let curlTmpDir = null;
const curlTmp = () => (curlTmpDir ??= makeTempDir('assetd-e2e-curl-'));

function parseHeaderBlocks(raw) {
  // Each response (100 Continue, redirects, final) is a block ending in an empty line.
  const blocks = raw.split(/\r?\n\r?\n/).map((b) => b.trim()).filter((b) => /^HTTP\//.test(b));
  const last = blocks[blocks.length - 1];
  if (!last) return { status: 0, headers: {}, headerList: [], statusLine: '' };
  const lines = last.split(/\r?\n/);
  const statusLine = lines[0];
  const status = Number(/^HTTP\/[\d.]+\s+(\d{3})/.exec(statusLine)?.[1] || 0);
  const headers = {};
  const headerList = [];
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i <= 0) continue;
    const k = l.slice(0, i).trim().toLowerCase();
    const v = l.slice(i + 1).trim();
    headerList.push([k, v]);
    headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
  }
  return { status, headers, headerList, statusLine };
}

function decorate(res) {
  Object.defineProperty(res, 'text', { get() { return res.body.toString('utf8'); } });
  Object.defineProperty(res, 'json', {
    get() {
      try { return JSON.parse(res.body.toString('utf8')); } catch {
        throw new Error(`response is not JSON (status ${res.status}): ${res.body.toString('utf8').slice(0, 500)}`);
      }
    },
  });
  return res;
}

/**
 * Runs the real curl binary. Headers are captured with -D (latin1, so raw
 * bytes survive), the body from stdout as a Buffer.
 * -> {status, headers (lower-case keys), headerList, body, text, json, exitCode, stderr}
 */
export function curl(args, { input, timeoutMs = 60000 } = {}) {
  const hdr = path.join(curlTmp(), `h${process.pid}-${++curlSeq}`);
  const argv = ['-q', '-sS', '--noproxy', '*', '--max-time', String(Math.ceil(timeoutMs * SLOW / 1000)), '-D', hdr, ...args];
  return new Promise((resolve, reject) => {
    const p = spawn('curl', argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [], err = [];
    p.stdout.on('data', (d) => out.push(d));
    p.stderr.on('data', (d) => err.push(d));
    p.on('error', reject);
    p.on('close', (code) => {
      let raw = '';
      try { raw = fs.readFileSync(hdr, 'latin1'); fs.unlinkSync(hdr); } catch { /* no headers */ }
      const h = parseHeaderBlocks(raw);
      resolve(decorate({ ...h, rawHeaders: raw, body: Buffer.concat(out), exitCode: code, stderr: Buffer.concat(err).toString() }));
    });
    p.stdin.on('error', () => {});
    if (input !== undefined) p.stdin.end(input); else p.stdin.end();
  });
}

const auth = (token) => (token ? ['-H', `Authorization: Bearer ${token}`] : []);

/** curl against a server: api(srv, 'GET', '/v1/assets', {token, headers:[], args:[], input}) */
export function api(srv, method, urlPath, { token = srv.token, headers = [], args = [], input, timeoutMs } = {}) {
  const a = [];
  if (method === 'HEAD') a.push('--head');
  else if (method !== 'GET') a.push('-X', method);
  for (const h of headers) a.push('-H', h);
  a.push(...auth(token), ...args, srv.url + urlPath);
  return curl(a, { input, timeoutMs });
}

/**
 * Uploads with curl.
 *   multipart (default): -F file=@-;filename=NAME;type=TYPE  (or @path when `file` is given)
 *   raw: --data-binary with Content-Type TYPE and ?filename=NAME
 */
export function upload(srv, { data, file, filename = 'file.bin', contentType = 'application/octet-stream', raw = false, token = srv.token, query = '', extraArgs = [], timeoutMs } = {}) {
  const a = ['-X', 'POST', ...auth(token), ...extraArgs];
  let input;
  if (raw) {
    a.push('-H', `Content-Type: ${contentType}`, '--data-binary', file ? `@${file}` : '@-');
    if (!file) input = data;
    const q = [];
    if (filename !== null) q.push(`filename=${encodeURIComponent(filename)}`);
    if (query) q.push(query);
    a.push(`${srv.url}/v1/assets${q.length ? '?' + q.join('&') : ''}`);
  } else {
    a.push('-F', `file=@${file || '-'};filename=${filename};type=${contentType}`);
    if (!file) input = data;
    a.push(`${srv.url}/v1/assets${query ? '?' + query : ''}`);
  }
  return curl(a, { input, timeoutMs });
}

/** Hand-built multipart body. parts: [{name, filename?, contentType?, data, headers?}] */
export function multipartBody(parts, boundary = '----assetdE2E' + randomBytes(8).toString('hex'), { close = true } = {}) {
  const chunks = [];
  for (const p of parts) {
    let h = `--${boundary}\r\n`;
    if (p.rawHeaders !== undefined) h += p.rawHeaders;
    else {
      h += `Content-Disposition: form-data; name="${p.name}"`;
      if (p.filename !== undefined) h += `; filename="${p.filename}"`;
      h += '\r\n';
      if (p.contentType) h += `Content-Type: ${p.contentType}\r\n`;
    }
    h += '\r\n';
    chunks.push(Buffer.from(h, 'utf8'), Buffer.from(p.data ?? ''), Buffer.from('\r\n'));
  }
  if (close) chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), boundary, contentType: `multipart/form-data; boundary=${boundary}` };
}

/** POSTs a prebuilt body with curl (Content-Type given verbatim). */
export function postBody(srv, body, contentType, { token = srv.token, query = '' } = {}) {
  const a = ['-X', 'POST', ...auth(token), '--data-binary', '@-'];
  if (contentType !== null) a.push('-H', `Content-Type: ${contentType}`);
  a.push(`${srv.url}/v1/assets${query ? '?' + query : ''}`);
  return curl(a, { input: body });
}

// ---------------------------------------------------------------- node:http / net

/**
 * One request over node:http on a fresh connection (agent: false).
 * body: Buffer | string | undefined. -> {status, headers, body, json, text}
 */
export function request(srv, { method = 'GET', path: p = '/', headers = {}, body, token = srv.token, timeoutMs = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    if (token) h.authorization = `Bearer ${token}`;
    if (body !== undefined && h['content-length'] === undefined && h['transfer-encoding'] === undefined) h['content-length'] = Buffer.byteLength(body);
    const req = http.request({ host: '127.0.0.1', port: srv.port, method, path: p, headers: h, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => { clearTimeout(timer); resolve(decorate({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) })); });
      res.on('error', (e) => { clearTimeout(timer); reject(e); });
    });
    const timer = setTimeout(() => req.destroy(new Error(`request ${method} ${p} timed out`)), timeoutMs * SLOW);
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    req.end(body);
  });
}

/** Raw upload via node:http (no curl process): fast path for bulk uploads. */
export function uploadRaw(srv, data, { filename = 'f.bin', contentType = 'application/octet-stream', token = srv.token } = {}) {
  return request(srv, { method: 'POST', path: `/v1/assets?filename=${encodeURIComponent(filename)}`, headers: { 'content-type': contentType }, body: data, token });
}

/**
 * Writes raw bytes on a fresh TCP connection and collects what comes back
 * until the server closes, `timeoutMs` passes, or `idleMs` of silence after
 * a response started. -> {data: Buffer, text, closed, reset, timedOut, status}
 */
export function rawExchange(port, payload, { timeoutMs = 5000, idleMs = 500, endWrite = false } = {}) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const chunks = [];
    let closed = false, reset = false, timedOut = false, idleTimer = null;
    const finish = () => {
      clearTimeout(timer); clearTimeout(idleTimer);
      s.destroy();
      const data = Buffer.concat(chunks);
      const text = data.toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ data, text, closed, reset, timedOut, status: m ? Number(m[1]) : 0 });
    };
    const timer = setTimeout(() => { timedOut = true; finish(); }, timeoutMs * SLOW);
    s.on('data', (d) => {
      chunks.push(d);
      clearTimeout(idleTimer);
      idleTimer = setTimeout(finish, idleMs * SLOW);
    });
    s.on('end', () => { closed = true; finish(); });
    s.on('close', () => { closed = true; finish(); });
    s.on('error', (e) => { if (e.code === 'ECONNRESET' || e.code === 'EPIPE') reset = true; closed = true; finish(); });
    s.on('connect', () => {
      const list = Array.isArray(payload) ? payload : [payload];
      for (const c of list) s.write(c);
      if (endWrite) s.end();
    });
  });
}

/** GET /healthz with a short deadline; true iff 200. */
export async function healthy(srv) {
  try {
    const r = await request(srv, { path: '/healthz', token: null, timeoutMs: 3000 });
    return r.status === 200;
  } catch { return false; }
}

// ---------------------------------------------------------------- assertions


/** Asserts a JSON error response {"error":{"code","message"}}. `code` may be a string or array of accepted codes. */
export function assertError(res, status, code, label = '') {
  const ctx = `${label ? label + ': ' : ''}${res.status} ${res.body.toString('utf8').slice(0, 300)}`;
  assert.equal(res.status, status, `expected HTTP ${status}, got ${ctx}`);
  const ct = res.headers['content-type'] || '';
  assert.match(ct, /^application\/json\b/i, `error Content-Type must be application/json, got ${JSON.stringify(ct)}`);
  const j = res.json;
  assert.ok(j && typeof j.error === 'object' && j.error !== null, `error body must be {"error":{...}}: ${ctx}`);
  assert.equal(typeof j.error.code, 'string');
  assert.match(j.error.code, /^[a-z][a-z0-9_]*$/, 'error code must be snake_case');
  if (code !== undefined) {
    const ok = Array.isArray(code) ? code.includes(j.error.code) : j.error.code === code;
    assert.ok(ok, `${label ? label + ': ' : ''}expected error code ${JSON.stringify(code)}, got ${JSON.stringify(j.error.code)}`);
  }
  assert.equal(typeof j.error.message, 'string');
  assert.ok(j.error.message.length > 0, 'error message must not be empty');
  return j.error;
}

/** Asserts the full asset JSON shape. */
export function assertAsset(a, expect = {}) {
  assert.equal(typeof a, 'object');
  assert.match(a.id, ID_RE, 'id: 22 base64url chars');
  const raw = Buffer.from(a.id, 'base64url');
  assert.equal(raw.length, 16, 'id must encode exactly 128 bits');
  assert.equal(raw.toString('base64url'), a.id, 'id must be canonical base64url of 16 bytes');
  assert.ok(['image', 'pdf', 'presentation', 'video', 'other'].includes(a.kind), `kind ${a.kind}`);
  assert.equal(a.status, expect.status ?? 'uploaded');
  assert.equal(typeof a.filename, 'string');
  assert.equal(typeof a.content_type, 'string');
  assert.ok(Number.isInteger(a.size) && a.size >= 0, `size ${a.size}`);
  assert.match(a.sha256, SHA_RE);
  assert.match(a.created, TS_RE);
  assert.match(a.updated, TS_RE);
  assert.ok(Math.abs(Date.parse(a.created) - Date.now()) < 10 * 60 * 1000, `created ${a.created} is not now`);
  assert.ok(a.updated >= a.created, 'updated >= created');
  assert.deepEqual(a.renditions, []);
  assert.equal(a.url, `/v1/assets/${a.id}/content`);
  for (const [k, v] of Object.entries(expect)) assert.deepEqual(a[k], v, `asset.${k}`);
  return a;
}

// ---------------------------------------------------------------- metrics

/** Prometheus text -> [{name, labels, value}] */
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    // label values may contain '}' (route="/v1/assets/{id}"): match quoted strings as units
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[^"}]|"(?:[^"\\]|\\.)*")*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const lm of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}
export function metricSum(metrics, name, filter = () => true) {
  return metrics.filter((m) => m.name === name && filter(m.labels)).reduce((s, m) => s + m.value, 0);
}
export async function scrape(srv) {
  const r = await request(srv, { path: '/metrics', token: null });
  assert.equal(r.status, 200);
  return { res: r, metrics: parseMetrics(r.text) };
}

// ---------------------------------------------------------------- zip (for presentation sniffing)

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
/** A stored (uncompressed) zip of [[name, Buffer|string], ...]. */
export function storedZip(entries) {
  const locals = [], centrals = [];
  let offset = 0;
  for (const [name, d] of entries) {
    const data = Buffer.from(d);
    const nm = Buffer.from(name);
    const crc = crc32(data);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0); lh.writeUInt16LE(10, 4); lh.writeUInt16LE(0, 6); lh.writeUInt16LE(0, 8);
    lh.writeUInt32LE(0, 10); lh.writeUInt32LE(crc, 14); lh.writeUInt32LE(data.length, 18); lh.writeUInt32LE(data.length, 22);
    lh.writeUInt16LE(nm.length, 26); lh.writeUInt16LE(0, 28);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0); ch.writeUInt16LE(20, 4); ch.writeUInt16LE(10, 6); ch.writeUInt16LE(0, 8); ch.writeUInt16LE(0, 10);
    ch.writeUInt32LE(0, 12); ch.writeUInt32LE(crc, 16); ch.writeUInt32LE(data.length, 20); ch.writeUInt32LE(data.length, 24);
    ch.writeUInt16LE(nm.length, 28); ch.writeUInt32LE(offset, 42);
    locals.push(lh, nm, data);
    centrals.push(ch, nm);
    offset += 30 + nm.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(entries.length, 8); end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12); end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}
export const TINY_ODP = () => storedZip([
  ['mimetype', 'application/vnd.oasis.opendocument.presentation'],
  ['content.xml', '<?xml version="1.0"?><office:document-content/>'],
  ['META-INF/manifest.xml', '<?xml version="1.0"?><manifest:manifest/>'],
]);
