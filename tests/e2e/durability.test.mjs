// Durability: restarts keep everything; SIGKILL mid-upload leaves nothing
// behind; SIGKILL right after a 201 loses nothing; aborted clients are cleaned up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  startServer, serverFor, makeTempDir, removeDir, api, upload, uploadRaw, request, sha256,
  tmpFiles, blobFiles, waitFor, sleep, TINY_JPEG, TINY_PDF, SLOW,
  pinDiskStore,
} from './lib.mjs';
import { TEST_TIMEOUT as T } from './lib.mjs';

// About the disk store's own files (temp files, blobs, the sweep): its
// servers keep the disk store in every suite, on PostgreSQL too.
pinDiskStore();

/** Begins a streamed upload that sends `sent` bytes and then stalls. */
/** Bytes of uploads in progress: the temp files' sizes. */
const tmpBytes = (dir) => tmpFiles(dir).reduce((n, f) => { try { return n + fs.statSync(f).size; } catch { return n; } }, 0);

function stalledUpload(s, { mode, declared = 10 * 1024 * 1024, sent = 1024 * 1024 }) {
  const headers = { authorization: `Bearer ${s.token}` };
  let prefix = Buffer.alloc(0);
  if (mode === 'multipart') {
    const b = 'stallboundary' + randomBytes(6).toString('hex');
    headers['content-type'] = `multipart/form-data; boundary=${b}`;
    prefix = Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="file"; filename="stall.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`);
    headers['content-length'] = declared;
  } else if (mode === 'chunked') {
    headers['content-type'] = 'application/octet-stream';
    headers['transfer-encoding'] = 'chunked';
  } else {
    headers['content-type'] = 'application/octet-stream';
    headers['content-length'] = declared;
  }
  const req = http.request({ host: '127.0.0.1', port: s.port, method: 'POST', path: '/v1/assets?filename=stall.bin', headers, agent: false });
  const outcome = new Promise((resolve) => {
    req.on('response', (res) => { res.resume(); resolve({ status: res.statusCode }); });
    req.on('error', (e) => resolve({ error: e.code || e.message }));
  });
  req.write(prefix);
  for (let i = 0; i < sent / 65536; i++) req.write(randomBytes(65536));
  return { req, outcome };
}

async function assertCleanAfterRestart(dir, token, expectIds) {
  const s = await startServer({ dataDir: dir });
  try {
    const l = await api(s, 'GET', '/v1/assets?limit=1000', { token });
    assert.equal(l.status, 200, l.text);
    assert.deepEqual(l.json.items.map((i) => i.id).sort(), [...expectIds].sort(), 'listing after restart');
    await waitFor(() => tmpFiles(dir).length === 0, { what: `no files in ${dir}/tmp (found: ${tmpFiles(dir).join(', ')})` });
    assert.equal(blobFiles(dir).length, expectIds.length, `blob files without rows: ${blobFiles(dir).join(', ')}`);
    for (const id of expectIds) {
      const c = await api(s, 'GET', `/v1/assets/${id}/content`, { token });
      assert.equal(c.status, 200);
      assert.equal(sha256(c.body), c.headers.etag.replace(/"/g, ''));
    }
  } finally {
    await s.cleanup();
  }
}

test('restart keeps everything: listing, metadata, content, keys', { timeout: T }, async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const s1 = await startServer({ dataDir: dir });
  const bodies = [randomBytes(300000), TINY_JPEG, TINY_PDF, randomBytes(1)];
  const assets = [];
  for (const [i, b] of bodies.entries()) {
    const r = await upload(s1, { data: b, filename: `f${i}`, raw: i % 2 === 1 });
    assert.equal(r.status, 201, r.text);
    assets.push(r.json);
  }
  const before = (await api(s1, 'GET', '/v1/assets')).json;
  const ex = await s1.stop();
  assert.equal(ex.code, 0);
  const s2 = await serverFor(t, { dataDir: dir });
  assert.equal(s2.token, s1.token);
  const after = (await api(s2, 'GET', '/v1/assets')).json;
  assert.deepEqual(after, before, 'listing must be identical after restart');
  for (const [i, a] of assets.entries()) {
    const g = await api(s2, 'GET', `/v1/assets/${a.id}`);
    assert.deepEqual(g.json, a);
    const c = await api(s2, 'GET', a.url);
    assert.equal(c.status, 200);
    assert.equal(sha256(c.body), sha256(bodies[i]));
    assert.equal(sha256(c.body), a.sha256);
  }
});

test('SIGKILL right after 201 loses nothing', { timeout: T }, async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const s1 = await startServer({ dataDir: dir });
  const ids = [];
  for (let i = 0; i < 5; i++) {
    const r = await uploadRaw(s1, randomBytes(50000 + i));
    assert.equal(r.status, 201);
    ids.push(r.json.id);
  }
  await s1.kill9();
  await assertCleanAfterRestart(dir, s1.token, ids);
});

for (const mode of ['raw', 'chunked', 'multipart']) {
  test(`SIGKILL during a ${mode} upload leaves no asset, no temp file, no orphan blob`, { timeout: T }, async (t) => {
    const dir = makeTempDir();
    t.after(() => removeDir(dir));
    const s1 = await startServer({ dataDir: dir });
    // two complete assets that must survive
    const keep = [];
    for (let i = 0; i < 2; i++) keep.push((await uploadRaw(s1, randomBytes(10000))).json.id);
    const { req, outcome } = stalledUpload(s1, { mode });
    t.after(() => req.destroy());
    // Killed once the server has written some of the body: a partial file.
    await waitFor(() => tmpBytes(dir) > 0, { what: 'partial upload on disk' });
    const st = await Promise.race([outcome, sleep(10).then(() => null)]);
    assert.equal(st, null, `the stalled upload must still be in flight, got ${JSON.stringify(st)}`);
    await s1.kill9();
    req.destroy();
    await assertCleanAfterRestart(dir, s1.token, keep);
  });
}

test('SIGKILL during an upload into an empty store: listing empty after restart', { timeout: T }, async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const s1 = await startServer({ dataDir: dir });
  const { req } = stalledUpload(s1, { mode: 'raw', declared: 50 * 1024 * 1024, sent: 4 * 1024 * 1024 });
  t.after(() => req.destroy());
  await waitFor(() => tmpBytes(dir) > 0, { what: 'partial upload on disk' });
  await s1.kill9();
  req.destroy();
  await assertCleanAfterRestart(dir, s1.token, []);
});

test('client aborting mid-upload: server stays up and cleans the temp file', { timeout: T }, async (t) => {
  const s = await serverFor(t);
  for (const mode of ['raw', 'chunked', 'multipart']) {
    const { req, outcome } = stalledUpload(s, { mode });
    await waitFor(() => tmpBytes(s.dataDir) > 0, { what: `the ${mode} upload's temp file` });
    req.destroy();
    await outcome;
  }
  await waitFor(() => tmpFiles(s.dataDir).length === 0, { timeoutMs: 10000, what: 'temp files of aborted uploads removed' });
  assert.equal(blobFiles(s.dataDir).length, 0);
  assert.deepEqual((await api(s, 'GET', '/v1/assets')).json.items, []);
  assert.equal((await api(s, 'GET', '/healthz')).status, 200);
  // and it still takes uploads
  const r = await uploadRaw(s, randomBytes(1000));
  assert.equal(r.status, 201);
});

test('content is durable across many restarts (WAL + checkpoint)', { timeout: T }, async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const ids = [];
  let token;
  for (let round = 0; round < 3; round++) {
    const s = await startServer({ dataDir: dir });
    token = s.token;
    const r = await uploadRaw(s, randomBytes(2000));
    assert.equal(r.status, 201);
    ids.push(r.json.id);
    if (round === 1) await s.kill9(); else assert.equal((await s.stop()).code, 0);
  }
  await assertCleanAfterRestart(dir, token, ids);
});

test('start-up sweep removes stray temp files and blobs without a row', { timeout: T }, async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const s1 = await startServer({ dataDir: dir });
  const keep = await uploadRaw(s1, randomBytes(3000));
  assert.equal(keep.status, 201);
  assert.equal((await s1.stop()).code, 0);
  const [blob] = blobFiles(dir);
  assert.ok(blob && path.basename(blob) === keep.json.id, `blob layout: ${blobFiles(dir)}`);
  // an orphan in the same fan-out directory, one in a new one, and a stray temp file
  const orphan1 = path.join(path.dirname(blob), keep.json.id.slice(0, 2) + randomBytes(15).toString('base64url').slice(0, 20));
  const id2 = randomBytes(16).toString('base64url');
  fs.mkdirSync(path.join(dir, 'blobs', id2.slice(0, 2)), { recursive: true });
  const orphan2 = path.join(dir, 'blobs', id2.slice(0, 2), id2);
  const stray = path.join(dir, 'tmp', 'stray' + randomBytes(4).toString('hex') + '.part');
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  for (const f of [orphan1, orphan2, stray]) fs.writeFileSync(f, randomBytes(100));
  await assertCleanAfterRestart(dir, s1.token, [keep.json.id]);
  for (const f of [orphan1, orphan2, stray]) assert.equal(fs.existsSync(f), false, `${f} survived the sweep`);
});
