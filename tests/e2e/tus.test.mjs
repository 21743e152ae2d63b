// Resumable uploads (tus 1.0, /v1/tus) on the disk store: tus-js-client in
// node for what a client does (plain, chunked, parallel, resumed, terminated),
// curl for every protocol error, and the durability claims: a second writer
// is refused while one writes, and after kill -9 mid-PATCH the offset is no
// more than what was stored and the resumed upload has the right SHA-256.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  TUS, OCTETS, b64, digest, idOf, tusUpload, head, create, patch, slowPatch, assertAsset,
  settledOffset,
} from './tuslib.mjs';
import {
  TEST_TIMEOUT as T, serverFor, startServer, api, waitFor, assertError, sha256, runCli,
  scrape, metricSum,
  pinDiskStore,
} from './lib.mjs';

// tus on the disk store, down to its files (tus_s3.test.mjs is tus on S3):
// this file's servers keep the disk store in every suite.
pinDiskStore();

const partFile = (srv, id) => path.join(srv.dataDir, 'tus', `${id}.part`);
const partSize = (srv, id) => { try { return fs.statSync(partFile(srv, id)).size; } catch { return -1; } };

/** How the finished uploads' SHA-256 was had: kept running, or read back. */
async function hashes(srv) {
  const { metrics } = await scrape(srv);
  const of = (hash) => metricSum(metrics, 'assetd_tus_completions_total', (l) => l.hash === hash);
  return { running: of('running'), reread: of('reread') };
}

/** assertAsset, and the upload's file is gone: it became the blob. */
async function assertAssetOf(srv, url, data, filename) {
  const a = await assertAsset(srv, url, data, filename);
  assert.equal(partSize(srv, a.id), -1, 'the upload file became the blob');
  return a;
}

test('tus-js-client: plain, chunked and parallel (concatenation) uploads become assets', { timeout: T }, async (t) => {
  const srv = await serverFor(t);
  const plain = randomBytes(100 * 1024);
  await assertAssetOf(srv, await tusUpload(srv, plain), plain);

  const chunked = randomBytes(300 * 1024 + 7);
  let chunks = 0;
  const url = await tusUpload(srv, chunked, { chunkSize: 64 * 1024 }, { onChunkComplete: () => chunks++ });
  assert.equal(chunks, 5, 'five PATCHes of at most 64 KiB');
  await assertAssetOf(srv, url, chunked);

  const parallel = randomBytes(500 * 1024 + 3);
  const final = await tusUpload(srv, parallel, { parallelUploads: 3,
    metadata: { filename: 'par.bin', filetype: 'application/octet-stream' } });
  await assertAssetOf(srv, final, parallel, 'par.bin');
  const h = await head(srv, final);
  assert.match(h.headers['upload-concat'], /^final;\/v1\/tus\/[\w-]{22} \/v1\/tus\/[\w-]{22} \/v1\/tus\/[\w-]{22}$/);
  for (const part of h.headers['upload-concat'].slice(6).split(' ')) {
    assertError(await api(srv, 'DELETE', part, { headers: [TUS] }), 404, 'not_found', 'a part after concatenation');
  }
});

test('tus-js-client: an aborted upload resumes where the server says', { timeout: T }, async (t) => {
  const srv = await serverFor(t);
  const data = randomBytes(1024 * 1024);
  let first;
  await new Promise((resolve, reject) => {
    tusUpload(srv, data, { chunkSize: 256 * 1024 }, {
      created: (up) => { first = up; },
      onChunkComplete: (up, size, accepted) => { if (accepted >= 512 * 1024) { up.abort().then(resolve, reject); } },
    }).then(() => reject(new Error('the upload finished before the abort')), reject);
  });
  // At least the two chunks acknowledged; more if the next PATCH had begun
  // (a cut-off PATCH keeps what arrived).
  const offset = await settledOffset(srv, new URL(first.url).pathname);
  assert.ok(offset >= 512 * 1024, `offset ${offset}`);
  let firstProgress = null;
  const url = await tusUpload(srv, data, { chunkSize: 256 * 1024, uploadUrl: first.url },
    { onProgress: (up, sent) => { firstProgress ??= sent; } });
  assert.equal(url, first.url);
  assert.ok(firstProgress >= offset, `resumed at the offset, not at 0 (first progress ${firstProgress})`);
  await assertAssetOf(srv, url, data);
});

test('tus-js-client: termination removes the upload and its bytes', { timeout: T }, async (t) => {
  const srv = await serverFor(t);
  const data = randomBytes(512 * 1024);
  let up;
  await new Promise((resolve, reject) => {
    tusUpload(srv, data, { chunkSize: 128 * 1024 }, {
      created: (u) => { up = u; },
      onChunkComplete: (u) => { u.abort(true).then(resolve, reject); },
    }).catch(reject);
  });
  assert.equal((await head(srv, up.url)).status, 404, 'HEAD after termination');
  assert.equal(partSize(srv, idOf(up.url)), -1, 'the bytes are gone');
});

test('checksum: a mismatch answers 460 and discards the chunk; sha1 and sha256 verify', { timeout: T }, async (t) => {
  const srv = await serverFor(t);
  const before = await hashes(srv);
  const where = await create(srv, 10);
  assertError(await patch(srv, where, 0, 'hello', [`Upload-Checksum: sha256 ${digest('sha256', 'other')}`]), 460, 'checksum_mismatch');
  assert.equal((await api(srv, 'HEAD', where, { headers: [TUS] })).headers['upload-offset'], '0');
  const ok = await patch(srv, where, 0, 'hello', [`Upload-Checksum: sha1 ${digest('sha1', 'hello')}`]);
  assert.equal(ok.status, 204, ok.text);
  assert.equal(ok.headers['upload-offset'], '5');
  const done = await patch(srv, where, 5, 'world', [`Upload-Checksum: sha256 ${digest('sha256', 'world')}`]);
  assert.equal(done.status, 204, done.text);
  assert.ok(done.headers['asset-id']);
  const a = await api(srv, 'GET', `/v1/assets/${done.headers['asset-id']}`);
  assert.equal(a.json.sha256, sha256(Buffer.from('helloworld')));
  assert.deepEqual(await hashes(srv), { ...before, running: before.running + 1 },
    'kept running over the PATCHes, the refused chunk left out');
  assertError(await patch(srv, await create(srv, 3), 0, 'abc', ['Upload-Checksum: md5 AAAA']), 400, 'checksum_algorithm');
  assertError(await patch(srv, await create(srv, 3), 0, 'abc', ['Upload-Checksum: sha1 !!']), 400, 'invalid_checksum');
});

test('protocol errors: 412, 415, 409, 404, 413, 400s, 401; OPTIONS and CORS', { timeout: T }, async (t) => {
  const srv = await serverFor(t, { args: ['--max-upload', '1M', '--cors-origins', 'http://page.test, http://other.test'] });
  const noVersion = await api(srv, 'POST', '/v1/tus', { headers: ['Upload-Length: 5'] });
  assertError(noVersion, 412, 'unsupported_version');
  assert.equal(noVersion.headers['tus-version'], '1.0.0');
  assertError(await api(srv, 'POST', '/v1/tus', { headers: ['Tus-Resumable: 0.2.2', 'Upload-Length: 5'] }), 412, 'unsupported_version');
  assertError(await api(srv, 'POST', '/v1/tus', { headers: [TUS, 'Upload-Length: 5'], token: null }), 401, 'unauthorized');
  assertError(await api(srv, 'POST', '/v1/tus', { headers: [TUS] }), 400, 'invalid_length');
  assertError(await api(srv, 'POST', '/v1/tus', { headers: [TUS, 'Upload-Length: 5', 'Upload-Defer-Length: 1'] }), 400, 'invalid_length');
  assertError(await api(srv, 'POST', '/v1/tus', { headers: [TUS, 'Upload-Length: -1'] }), 400, 'invalid_length');
  assertError(await api(srv, 'POST', '/v1/tus', { headers: [TUS, `Upload-Length: ${2 * 1024 * 1024}`] }), 413, 'payload_too_large');
  assertError(await api(srv, 'POST', '/v1/tus', { headers: [TUS, 'Upload-Length: 5', 'Upload-Metadata: filename !!!'] }), 400, 'invalid_metadata');
  assertError(await api(srv, 'POST', '/v1/tus', { headers: [TUS, 'Upload-Concat: final;/v1/tus/nope'] }), 400, 'invalid_concat');
  assertError(await api(srv, 'POST', '/v1/tus', { headers: [TUS, 'Upload-Concat: whole', 'Upload-Length: 5'] }), 400, 'invalid_concat');

  const where = await create(srv, 5, [`Upload-Metadata: filename ${b64('a.txt')},filetype ${b64('text/plain')},empty`]);
  assertError(await api(srv, 'PATCH', where, { headers: [TUS, 'Content-Type: text/plain', 'Upload-Offset: 0'],
    args: ['--data-binary', 'hi'] }), 415, 'unsupported_media_type');
  assert.equal((await patch(srv, where, 0, 'hello')).status, 204);
  const wrong = await patch(srv, await create(srv, 5), 3, 'lo');
  assertError(wrong, 409, 'offset_mismatch');
  assert.equal(wrong.headers['upload-offset'], '0');
  assertError(await patch(srv, await create(srv, 5), 0, 'hello!'), 413, 'payload_too_large');
  assertError(await api(srv, 'PATCH', await create(srv, 5), { headers: [TUS, OCTETS, 'Upload-Offset: x'], args: ['--data-binary', 'a'] }), 400, 'invalid_offset');
  assertError(await patch(srv, '/v1/tus/AAAAAAAAAAAAAAAAAAAAAA', 0, 'a'), 404, 'not_found');
  assert.equal((await api(srv, 'HEAD', '/v1/tus/AAAAAAAAAAAAAAAAAAAAAA', { headers: [TUS] })).status, 404);
  assertError(await patch(srv, where, 5, 'x'), 409, 'upload_complete');

  // OPTIONS: capabilities, no key; CORS only for the configured origins.
  const opt = await api(srv, 'OPTIONS', '/v1/tus/', { token: null, headers: ['Origin: http://other.test', 'Access-Control-Request-Method: PATCH', 'Access-Control-Request-Headers: upload-offset'] });
  assert.equal(opt.status, 204);
  assert.equal(opt.headers['tus-version'], '1.0.0');
  assert.equal(opt.headers['tus-max-size'], String(1024 * 1024));
  assert.match(opt.headers['tus-extension'], /creation-with-upload/);
  assert.match(opt.headers['tus-checksum-algorithm'], /sha256/);
  assert.equal(opt.headers['access-control-allow-origin'], 'http://other.test');
  assert.match(opt.headers['access-control-allow-methods'], /PATCH/);
  assert.match(opt.headers['access-control-allow-headers'], /Upload-Offset/);
  const exposed = await api(srv, 'HEAD', where, { headers: [TUS, 'Origin: http://page.test'] });
  for (const h of ['Location', 'Upload-Offset', 'Upload-Length', 'Upload-Expires', 'Tus-Resumable']) {
    assert.match(exposed.headers['access-control-expose-headers'], new RegExp(`\\b${h}\\b`));
  }
  const stranger = await api(srv, 'OPTIONS', '/v1/tus/', { token: null, headers: ['Origin: http://evil.test', 'Access-Control-Request-Method: PATCH'] });
  assert.equal(stranger.headers['access-control-allow-origin'], undefined);
});

test('creation-with-upload and creation-defer-length', { timeout: T }, async (t) => {
  const srv = await serverFor(t);
  const r = await api(srv, 'POST', '/v1/tus', { headers: [TUS, OCTETS, 'Upload-Length: 11'], args: ['--data-binary', '@-'], input: 'hello ' });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.headers['upload-offset'], '6');
  const where = new URL(r.headers.location).pathname;
  assert.equal((await patch(srv, where, 6, 'world')).status, 204);
  assert.equal((await api(srv, 'HEAD', where, { headers: [TUS] })).headers['asset-id'], idOf(where));

  const d = await api(srv, 'POST', '/v1/tus', { headers: [TUS, 'Upload-Defer-Length: 1'] });
  assert.equal(d.status, 201, d.text);
  const dw = new URL(d.headers.location).pathname;
  assert.equal((await api(srv, 'HEAD', dw, { headers: [TUS] })).headers['upload-defer-length'], '1');
  assert.equal((await patch(srv, dw, 0, 'abc')).status, 204);
  const last = await patch(srv, dw, 3, 'de', ['Upload-Length: 5']);
  assert.equal(last.status, 204, last.text);
  assert.ok(last.headers['asset-id']);

  const empty = await api(srv, 'POST', '/v1/tus', { headers: [TUS, 'Upload-Length: 0'] });
  assert.equal(empty.status, 201);
  assert.ok(empty.headers['asset-id'], 'an empty upload is complete at once');
});

/** A PATCH whose body is sent in two parts; the second only when told. */
test('a PATCH its client cuts off keeps what arrived, unless it carries a checksum', { timeout: T }, async (t) => {
  const srv = await serverFor(t);
  const before = await hashes(srv);
  const data = randomBytes(400000);
  const where = await create(srv, data.length);
  const cut = slowPatch(srv, where, 0, data.length);
  cut.req.write(data.subarray(0, 150000));
  await waitFor(() => partSize(srv, idOf(where)) === 150000, { what: 'the first bytes on disk' });
  cut.req.destroy();
  assert.equal(await settledOffset(srv, where), 150000, 'what arrived is kept');
  // With a checksum nothing of a cut-off chunk can be verified: none is kept.
  const sum = slowPatch(srv, where, 150000, 100000, { 'upload-checksum': `sha256 ${digest('sha256', data.subarray(150000, 250000))}` });
  sum.req.write(data.subarray(150000, 200000));
  await waitFor(() => partSize(srv, idOf(where)) === 200000, { what: 'the checksummed bytes on disk' });
  sum.req.destroy();
  assert.equal(await settledOffset(srv, where), 150000, 'a checksummed chunk is all or nothing');
  assert.equal((await patch(srv, where, 150000, data.subarray(150000))).status, 204);
  const a = await api(srv, 'GET', `/v1/assets/${idOf(where)}`);
  assert.equal(a.json.sha256, sha256(data));
  assert.deepEqual(await hashes(srv), { ...before, running: before.running + 1 },
    'the hash ran on over the kept bytes and past the dropped chunk');
});

test('one writer at a time: a second PATCH while one runs gets 423', { timeout: T }, async (t) => {
  const srv = await serverFor(t);
  const where = await create(srv, 200000);
  const data = randomBytes(200000);
  const first = slowPatch(srv, where, 0, data.length);
  first.req.write(data.subarray(0, 100000));
  // The first holds the lease once its bytes reach the file.
  await waitFor(() => partSize(srv, idOf(where)) === 100000, { what: 'the first PATCH\'s bytes on disk' });
  assertError(await patch(srv, where, 0, 'x'), 423, 'locked');
  assertError(await api(srv, 'DELETE', where, { headers: [TUS] }), 423, 'locked');
  first.req.end(data.subarray(100000));
  assert.equal((await first.done).statusCode, 204);
  const h = await api(srv, 'HEAD', where, { headers: [TUS] });
  assert.equal(h.headers['asset-id'], idOf(where));
  const a = await api(srv, 'GET', `/v1/assets/${idOf(where)}`);
  assert.equal(a.json.sha256, sha256(data), 'never interleaved');
});

test('expiry: an upload not written for --tus-expiry answers 410', { timeout: T }, async (t) => {
  const srv = await serverFor(t, { args: ['--tus-expiry', '1'] });
  const where = await create(srv, 5);
  const h = await api(srv, 'HEAD', where, { headers: [TUS] });
  assert.ok(Date.parse(h.headers['upload-expires']) > 0, h.headers['upload-expires']);
  await waitFor(async () => (await api(srv, 'HEAD', where, { headers: [TUS] })).status === 410,
    { timeoutMs: 10000, intervalMs: 200, what: 'the upload to expire' });
  assertError(await patch(srv, where, 0, 'hello'), 410, 'upload_expired');
});

test('gc removes uploads past Upload-Expires with their bytes, never a finished one', { timeout: T }, async (t) => {
  const srv = await serverFor(t, { args: ['--tus-expiry', '1'] });
  // Left half-written: 3 of 5 bytes on disk.
  const stale = await create(srv, 5);
  assert.equal((await patch(srv, stale, 0, 'abc')).status, 204);
  // Finished: its bytes are an asset's now, whatever its expiry says.
  const done = await create(srv, 4);
  assert.equal((await patch(srv, done, 0, 'done')).status, 204);
  assert.equal(partSize(srv, idOf(stale)), 3);
  await waitFor(async () => (await api(srv, 'HEAD', stale, { headers: [TUS] })).status === 410,
    { timeoutMs: 10000, intervalMs: 200, what: 'the upload to expire' });
  await srv.stop();
  // Bytes no row names (a crash between a row's removal and its file's):
  // removed once an hour old, not before; never under a live id.
  const hourAgo = new Date(Date.now() - 3700 * 1000);
  const orphan = partFile(srv, 'orphanorphanorphan0001');
  const young = partFile(srv, 'orphanorphanorphan0002');
  fs.writeFileSync(orphan, 'left');
  fs.utimesSync(orphan, hourAgo, hourAgo);
  fs.writeFileSync(young, 'left');
  fs.writeFileSync(partFile(srv, idOf(done)), 'live');
  fs.utimesSync(partFile(srv, idOf(done)), hourAgo, hourAgo);
  const gc = await runCli(['gc', '--data', srv.dataDir]);
  assert.equal(gc.code, 0, gc.stderr);
  assert.match(gc.stdout, /removed 1 expired tus uploads/);
  assert.match(gc.stdout, /removed 1 abandoned tus uploads no row names/);
  assert.equal(partSize(srv, idOf(stale)), -1, 'the bytes are gone');
  assert.ok(!fs.existsSync(orphan), 'an hour-old orphan is removed');
  assert.ok(fs.existsSync(young), 'a recent one stays: a writer may hold it');
  assert.equal(partSize(srv, idOf(done)), 4, 'bytes under an asset\'s id stay');
  const again = await serverFor(t, { dataDir: srv.dataDir });
  assert.equal((await api(again, 'HEAD', stale, { headers: [TUS] })).status, 404);
  const asset = await api(again, 'GET', `/v1/assets/${idOf(done)}/content`);
  assert.equal(asset.status, 200);
  assert.equal(asset.body.toString(), 'done');
});

test('serve removes expired uploads itself (at start and every minute) and counts them', { timeout: T }, async (t) => {
  const srv = await serverFor(t, { args: ['--tus-expiry', '1'] });
  const stale = await create(srv, 5);
  assert.equal((await patch(srv, stale, 0, 'ab')).status, 204);
  await waitFor(async () => (await api(srv, 'HEAD', stale, { headers: [TUS] })).status === 410,
    { timeoutMs: 10000, intervalMs: 200, what: 'the upload to expire' });
  await srv.stop();
  const again = await serverFor(t, { dataDir: srv.dataDir, args: ['--tus-expiry', '1'] });
  assert.equal(partSize(again, idOf(stale)), -1, 'removed before serving');
  const m = (await api(again, 'GET', '/metrics', { token: null })).text;
  assert.match(m, /^assetd_gc_removed_total\{kind="tus"\} 1$/m);
  assert.match(m, /^assetd_gc_removed_total\{kind="signed_upload"\} 0$/m);
  assert.match(m, /^assetd_gc_removed_total\{kind="tus_orphan"\} 0$/m);
});

test('kill -9 mid-PATCH: HEAD says no more than was stored; the resumed upload is right', { timeout: T * 2 }, async (t) => {
  const args = ['--tus-lease', '1'];
  const first = await startServer({ args });
  let srv = first;
  t.after(async () => { if (srv !== first) await srv.cleanup(); await first.cleanup(); });
  const dataDir = srv.dataDir;
  const data = randomBytes(1024 * 1024);
  const where = await create(srv, data.length, [`Upload-Metadata: filename ${b64('data.bin')}`]);
  assert.equal((await patch(srv, where, 0, data.subarray(0, 256 * 1024))).status, 204);
  const p = slowPatch(srv, where, 256 * 1024, data.length - 256 * 1024);
  p.req.write(data.subarray(256 * 1024, 600 * 1024));
  await waitFor(() => partSize(srv, idOf(where)) === 600 * 1024, { what: 'uncommitted bytes on disk' });
  await srv.kill9();
  p.req.destroy();
  srv = await startServer({ dataDir, args });
  const h = await api(srv, 'HEAD', where, { headers: [TUS] });
  assert.equal(h.status, 200);
  assert.ok(Number(h.headers['upload-offset']) <= partSize(srv, idOf(where)));
  assert.equal(h.headers['upload-offset'], String(256 * 1024), 'only the acknowledged bytes count');
  // The dead writer's lease runs out (--tus-lease 1); tus-js-client retries 423.
  const url = await tusUpload(srv, data, { uploadUrl: `${srv.url}${where}`, retryDelays: [200, 400, 800, 1000, 1000, 2000] });
  await assertAssetOf(srv, url, data);
  assert.deepEqual(await hashes(srv), { running: 0, reread: 1 }, 'a restart breaks the chain: read back');
});
