// A database locked from outside (issue #15, "Fault injection / Resources"):
// another program holds SQLite's one write lock on DATA/assetd.db while the
// server runs.  In WAL mode readers take no lock a writer holds, so reads go
// on; a write waits for the lock up to the connection's busy timeout (10 s,
// src/db/sqlite.c) and then answers 503 database_unavailable, keeping
// nothing (no row, no blob); a lock shorter than that is waited out and the
// upload succeeds; a worker whose claim met the lock claims again after it.
// The holder is the sqlite3 shell, one transaction open on its stdin.
// The file takes about 12 s: one upload waits out the whole busy timeout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import readline from 'node:readline';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  TEST_TIMEOUT as T, BIN, startServer, request, uploadRaw, sha256, tmpFiles, blobFiles,
  assertError, waitFor, TINY_PNG,
} from './lib.mjs';
import { PG_URL } from './lib.mjs';

const SQLITE_ONLY = PG_URL ? 'a lock on the SQLite file (the run on PostgreSQL has none)' : false;

const BUSY_TIMEOUT_MS = 10000;   // sqlite3_busy_timeout in lite_open (src/db/sqlite.c)
let srv;
const children = new Set();

before(async () => { if (!SQLITE_ONLY) srv = await startServer(); });
after(async () => {
  for (const p of children) p.kill('SIGKILL');
  await srv?.cleanup();
});

/** Spawns a child whose lines (stdout and stderr) are collected; until(re)
 *  resolves on the first line matching re, rejects if the child exits first. */
function child(cmd, args) {
  const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(p);
  const lines = [], waiters = new Set();
  let exit = null;
  const exited = new Promise((resolve) => p.on('exit', (code, signal) => {
    exit = { code, signal }; children.delete(p);
    for (const w of waiters) w();
    resolve(exit);
  }));
  for (const s of [p.stdout, p.stderr]) {
    readline.createInterface({ input: s }).on('line', (l) => { lines.push(l); for (const w of waiters) w(); });
  }
  const until = (re, what) => new Promise((resolve, reject) => {
    const check = () => {
      const l = lines.find((x) => re.test(x));
      if (l !== undefined) { waiters.delete(check); resolve(l); }
      else if (exit) { waiters.delete(check); reject(new Error(`${cmd} exited ${JSON.stringify(exit)} before ${what}:\n${lines.join('\n')}`)); }
    };
    waiters.add(check);
    check();
  });
  return { p, lines, until, exited };
}

/** Takes SQLite's write lock on the server's database from another process
 *  (BEGIN IMMEDIATE, a table created but not committed) and keeps it until
 *  release() rolls it back. */
async function holdWriteLock() {
  const sh = child('sqlite3', ['-batch', path.join(srv.dataDir, 'assetd.db')]);
  sh.p.stdin.write('.bail on\n.timeout 10000\nBEGIN IMMEDIATE;\nCREATE TABLE dblock_held (x);\nSELECT \'locked\';\n');
  await sh.until(/^locked$/, 'the lock was taken');
  return {
    async release() {
      sh.p.stdin.end('ROLLBACK;\nSELECT \'released\';\n');
      await sh.until(/^released$/, 'the lock was released');
      assert.deepEqual(await sh.exited, { code: 0, signal: null });
    },
  };
}

const assetCount = async () => (await request(srv, { path: '/v1/assets' })).json.items.length;

test('a write lock held past the busy timeout: reads go on, an upload answers 503 database_unavailable after the timeout and keeps nothing; a worker that met the lock claims its job after it', { timeout: T, skip: SQLITE_ONLY }, async (t) => {
  const kept = randomBytes(256 * 1024);
  const a = await uploadRaw(srv, kept, { filename: 'kept.bin' });
  assert.equal(a.status, 201, a.text);
  // an image whose job waits for a worker: the server runs none (workers: 0)
  const img = await uploadRaw(srv, TINY_PNG, { filename: 'tiny.png', contentType: 'image/png' });
  assert.equal(img.status, 201, img.text);
  assert.equal(img.json.status, 'uploaded');
  const before = { assets: await assetCount(), blobs: blobFiles(srv.dataDir).length };

  const lock = await holdWriteLock();
  let worker;
  try {
    // a worker started now finds the job due (a read) and meets the lock on its claim
    worker = child(BIN, ['worker', '--data', srv.dataDir]);
    // reads: no waiting for the writer (a wait would last the busy timeout)
    for (const p of ['/v1/assets', `/v1/assets/${a.json.id}`, `/v1/assets/${a.json.id}/content`, '/readyz']) {
      const t0 = Date.now();
      const r = await request(srv, { path: p, token: p === '/readyz' ? null : srv.token });
      const ms = Date.now() - t0;
      assert.equal(r.status, 200, `GET ${p} under the lock: ${r.status} ${r.text}`);
      assert.ok(ms < BUSY_TIMEOUT_MS, `GET ${p} took ${ms} ms: it waited for the lock`);
      t.diagnostic(`GET ${p} under the lock: ${r.status} in ${ms} ms`);
    }
    assert.equal((await request(srv, { path: `/v1/assets/${a.json.id}/content` })).body.equals(kept), true);

    // a write waits the busy timeout out, then a clear JSON 503 — while the lock is still held
    const t0 = Date.now();
    const up = await uploadRaw(srv, randomBytes(1024 * 1024), { filename: 'refused.bin' });
    const waited = Date.now() - t0;
    assertError(up, 503, 'database_unavailable', 'POST /v1/assets under the lock');
    t.diagnostic(`POST /v1/assets under the lock: ${up.status} ${up.json.error.code} after ${waited} ms`);
    assert.ok(waited >= BUSY_TIMEOUT_MS - 500, `answered after ${waited} ms: it did not wait for the lock`);
    assert.ok(srv.logs.some((j) => j.msg === 'sqlite error' && /locked/.test(j.error)), 'the server logs why');
    await worker.until(/"msg":"sqlite error".*locked/, 'the worker met the lock');
  } finally {
    await lock.release();
  }

  // nothing partial: no asset, no blob, no temp file
  assert.equal(await assetCount(), before.assets, 'no asset made');
  assert.equal(blobFiles(srv.dataDir).length, before.blobs, 'no blob kept');
  assert.deepEqual(tmpFiles(srv.dataDir), [], 'no temporary file kept');
  // the worker lived through it and now runs the job
  await waitFor(async () => (await request(srv, { path: `/v1/assets/${img.json.id}` })).json.status === 'ready',
    { timeoutMs: 15000, what: 'the image processed after the lock' });
  assert.equal(worker.p.exitCode, null, 'the worker is still running');
  worker.p.kill('SIGTERM');
  assert.deepEqual(await worker.exited, { code: 0, signal: null }, worker.lines.join('\n'));
});

test('a lock shorter than the busy timeout is waited out: the upload succeeds', { timeout: T, skip: SQLITE_ONLY }, async (t) => {
  const body = randomBytes(512 * 1024);
  const lock = await holdWriteLock();
  let releasedAt = 0;
  // the lock lasts 1 s from the request's start (the fault's length, not a wait for
  // an event); the answer can only come once it is gone: the commit needs it
  const t0 = Date.now();
  const pending = uploadRaw(srv, body, { filename: 'waited.bin' });
  const releasing = new Promise((resolve, reject) => setTimeout(() => {
    releasedAt = Date.now();
    lock.release().then(resolve, reject);
  }, 1000));
  const up = await pending;
  const answered = Date.now();
  await releasing;
  assert.equal(up.status, 201, up.text);
  assert.equal(up.json.sha256, sha256(body));
  assert.ok(releasedAt > 0 && answered >= releasedAt, `answered ${releasedAt - answered} ms before the lock was released`);
  t.diagnostic(`POST /v1/assets under a 1 s lock: ${up.status} after ${answered - t0} ms, ${answered - releasedAt} ms after the release`);
});

test('after the lock: uploads work again and the server never restarted', { timeout: T, skip: SQLITE_ONLY }, async () => {
  const body = randomBytes(64 * 1024);
  const up = await uploadRaw(srv, body, { filename: 'after.bin' });
  assert.equal(up.status, 201, up.text);
  const got = await request(srv, { path: `/v1/assets/${up.json.id}/content` });
  assert.equal(sha256(got.body), sha256(body));
  assert.ok(srv.alive(), 'the same server process');
  assert.equal(srv.logs.filter((j) => j.msg === 'listening').length, 1, 'started once');
});
