// 50 parallel uploads of distinct random bodies (256 KiB – 2 MiB): all 201,
// all intact; parallel downloads and deletes do not interfere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { serverFor, request, sha256, blobFiles, waitFor } from './lib.mjs';

test('50 parallel uploads, all 201 and intact', { timeout: 120000 }, async (t) => {
  const srv = await serverFor(t);
  const bodies = Array.from({ length: 50 }, () => randomBytes(randomInt(256 * 1024, 2 * 1024 * 1024 + 1)));
  const results = await Promise.all(bodies.map((b, i) => request(srv, {
    method: 'POST', path: `/v1/assets?filename=p${i}.bin`, headers: { 'content-type': 'application/octet-stream' }, body: b, timeoutMs: 60000,
  }).catch((e) => ({ status: 0, error: e.message }))));
  const bad = results.map((r, i) => [i, r.status, r.error]).filter(([, s]) => s !== 201);
  assert.deepEqual(bad, [], 'uploads that did not return 201');
  const assets = results.map((r) => r.json);
  assert.equal(new Set(assets.map((a) => a.id)).size, 50, 'ids must be unique');
  for (const [i, a] of assets.entries()) {
    assert.equal(a.size, bodies[i].length, `#${i} size`);
    assert.equal(a.sha256, sha256(bodies[i]), `#${i} sha256`);
    assert.equal(a.filename, `p${i}.bin`);
  }
  // parallel downloads, compared by sha256
  const dls = await Promise.all(assets.map((a) => request(srv, { path: a.url, timeoutMs: 60000 })));
  for (const [i, d] of dls.entries()) {
    assert.equal(d.status, 200, `download #${i}`);
    assert.equal(sha256(d.body), sha256(bodies[i]), `download #${i} differs`);
  }
  const l = await request(srv, { path: '/v1/assets?limit=1000' });
  assert.equal(l.json.items.length, 50);
  assert.equal(blobFiles(srv.dataDir).length, 50);
  // parallel deletes
  const dels = await Promise.all(assets.slice(0, 25).map((a) => request(srv, { method: 'DELETE', path: `/v1/assets/${a.id}` })));
  assert.ok(dels.every((d) => d.status === 204), `deletes: ${dels.map((d) => d.status)}`);
  await waitFor(() => blobFiles(srv.dataDir).length === 25, { what: '25 blobs left' });
  const l2 = await request(srv, { path: '/v1/assets?limit=1000' });
  assert.deepEqual(new Set(l2.json.items.map((i) => i.id)), new Set(assets.slice(25).map((a) => a.id)));
});

test('parallel uploads via multipart while listing and downloading', { timeout: 120000 }, async (t) => {
  const srv = await serverFor(t);
  const seed = randomBytes(300000);
  const first = await request(srv, { method: 'POST', path: '/v1/assets?filename=seed', headers: { 'content-type': 'application/octet-stream' }, body: seed });
  assert.equal(first.status, 201);
  const { multipartBody } = await import('./lib.mjs');
  const jobs = [];
  const bodies = [];
  for (let i = 0; i < 20; i++) {
    const b = randomBytes(randomInt(1000, 500000));
    bodies.push(b);
    const mp = multipartBody([{ name: 'file', filename: `m${i}`, data: b }]);
    jobs.push(request(srv, { method: 'POST', path: '/v1/assets', headers: { 'content-type': mp.contentType }, body: mp.body }));
    jobs.push(request(srv, { path: '/v1/assets?limit=5' }));
    jobs.push(request(srv, { path: first.json.url }));
  }
  const res = await Promise.all(jobs);
  for (let i = 0; i < 20; i++) {
    const up = res[3 * i], ls = res[3 * i + 1], dl = res[3 * i + 2];
    assert.equal(up.status, 201, up.text);
    assert.equal(up.json.sha256, sha256(bodies[i]));
    assert.equal(ls.status, 200);
    assert.equal(dl.status, 200);
    assert.ok(dl.body.equals(seed));
  }
});
