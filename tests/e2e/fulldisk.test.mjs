// A full disk: the data directory on a small private filesystem (tmpfs,
// mounted here; needs root, as `make test` runs in CI), filled to the brim
// by a file of ours.  Uploads of every kind then answer 507
// insufficient_storage and keep nothing partial, reads go on, and uploads
// work again once the space returns.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  TEST_TIMEOUT as T, makeTempDir, removeDir, startServer, request, uploadRaw, sha256,
  tmpFiles, blobFiles,
  pinDiskStore,
} from './lib.mjs';

// About the data directory's own disk filling up: its servers keep the
// disk store in every suite, on PostgreSQL too.
pinDiskStore();

const MIB = 1024 * 1024;
let dir, mnt, srv, mounted = false, why = '';

before(async () => {
  dir = makeTempDir('assetd-fulldisk-');
  mnt = path.join(dir, 'fs');
  fs.mkdirSync(mnt);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m,mode=0700', 'tmpfs', mnt], { stdio: 'pipe' });
    mounted = true;
  } catch (e) {
    why = `cannot mount a small filesystem here (${String(e.stderr || e.message).trim()})`;
    return;
  }
  srv = await startServer({ dataDir: path.join(mnt, 'data') });
});
after(async () => {
  await srv?.cleanup();
  if (mounted) execFileSync('umount', [mnt]);
  if (dir) removeDir(dir);
});

/** Fills the filesystem with one file until ENOSPC; returns its path. */
function fill() {
  const filler = path.join(mnt, 'filler');
  const fd = fs.openSync(filler, 'w');
  const chunk = Buffer.alloc(256 * 1024, 7);
  try { for (;;) fs.writeSync(fd, chunk); } catch (e) { assert.equal(e.code, 'ENOSPC'); }
  try { for (;;) fs.writeSync(fd, chunk, 0, 4096); } catch (e) { assert.equal(e.code, 'ENOSPC'); }
  fs.closeSync(fd);
  return filler;
}

function assertFull(r, what) {
  assert.equal(r.status, 507, `${what}: ${r.status} ${r.text}`);
  assert.equal(r.json?.error?.code, 'insufficient_storage', `${what}: ${r.text}`);
}

test('a full disk: 507 insufficient_storage for every upload, nothing partial kept, reads go on, uploads resume with the space', { timeout: T }, async (t) => {
  if (!mounted) { t.skip(why); return; }
  const kept = randomBytes(2 * MIB);
  const a = await uploadRaw(srv, kept, { filename: 'kept.bin' });
  assert.equal(a.status, 201, a.text);
  const blobsBefore = blobFiles(srv.dataDir).length;

  const big = randomBytes(3 * MIB);
  // made before the disk fills: each is a row in the database, on the same disk
  // a signed upload, straight to the store; a tus upload
  const signed = await request(srv, { method: 'POST', path: '/v1/uploads', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ filename: 's.bin', size: big.length }) });
  assert.equal(signed.status, 201, signed.text);
  const u = new URL(signed.json.put.url);
  const tus = await request(srv, { method: 'POST', path: '/v1/tus', headers: { 'tus-resumable': '1.0.0', 'upload-length': String(big.length) } });
  assert.equal(tus.status, 201, tus.text);
  const where = new URL(tus.headers.location).pathname;

  const filler = fill();
  assertFull(await uploadRaw(srv, big, { filename: 'big.bin' }), 'POST /v1/assets');
  assertFull(await request(srv, { method: 'POST', path: '/v1/assets', headers: { 'content-type': 'multipart/form-data; boundary=assetd-full' },
    body: Buffer.concat([Buffer.from('--assetd-full\r\nContent-Disposition: form-data; name="file"; filename="m.bin"\r\n\r\n'), big, Buffer.from('\r\n--assetd-full--\r\n')]) }),
  'POST /v1/assets (multipart)');
  assertFull(await request(srv, { method: 'PUT', path: u.pathname + u.search, body: big, token: null }),
    'PUT to a signed upload URL');
  // tus: the PATCH is refused, the offset stays, the upload can be ended
  const patch = await request(srv, { method: 'PATCH', path: where, body: big,
    headers: { 'tus-resumable': '1.0.0', 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' } });
  assertFull(patch, 'PATCH /v1/tus/{id}');
  assert.equal((await request(srv, { method: 'HEAD', path: where, headers: { 'tus-resumable': '1.0.0' } })).headers['upload-offset'], '0');

  assert.deepEqual(tmpFiles(srv.dataDir), [], 'no temporary file kept');
  assert.equal(blobFiles(srv.dataDir).length, blobsBefore, 'no blob kept');
  assert.equal((await request(srv, { path: '/v1/assets' })).json.items.length, 1, 'no asset made');
  // reads go on
  const got = await request(srv, { path: `/v1/assets/${a.json.id}/content` });
  assert.equal(got.status, 200);
  assert.equal(sha256(got.body), sha256(kept));
  assert.equal((await request(srv, { path: '/readyz', token: null })).status, 200);

  fs.unlinkSync(filler);   // the space returns
  assert.equal((await request(srv, { method: 'DELETE', path: where, headers: { 'tus-resumable': '1.0.0' } })).status, 204);
  const again = await uploadRaw(srv, big, { filename: 'again.bin' });
  assert.equal(again.status, 201, again.text);
  assert.equal(again.json.sha256, sha256(big));
});
