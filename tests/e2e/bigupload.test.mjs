// A 1 GiB streamed upload (64 MiB under ASan) generated on the fly and sent
// chunked: the returned sha256 matches, and the server's peak RSS stays
// under 64 MB (not checked under ASan). Set ASSETD_E2E_SKIP_BIG=1 to skip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash } from 'node:crypto';
import { serverFor, prng, vmHWM, SANITIZED, request, blobFiles } from './lib.mjs';

const SIZE = SANITIZED ? 64 * 1024 * 1024 : 1024 * 1024 * 1024;
const RSS_LIMIT = 64 * 1024 * 1024;
const skip = process.env.ASSETD_E2E_SKIP_BIG === '1' ? 'ASSETD_E2E_SKIP_BIG=1' : false;

function streamUpload(srv, size) {
  return new Promise((resolve, reject) => {
    const gen = prng();
    const hash = createHash('sha256');
    const CHUNK = 1024 * 1024;
    let sent = 0;
    const req = http.request({
      host: '127.0.0.1', port: srv.port, method: 'POST', path: '/v1/assets?filename=big.bin', agent: false,
      headers: { authorization: `Bearer ${srv.token}`, 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body, sent, sha: hash.digest('hex') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(600000, () => req.destroy(new Error('upload timed out')));
    const pump = () => {
      while (sent < size) {
        const n = Math.min(CHUNK, size - sent);
        const b = gen(n);
        hash.update(b);
        sent += n;
        if (!req.write(b)) { req.once('drain', pump); return; }
      }
      req.end();
    };
    pump();
  });
}

function streamDownloadSha(srv, p) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: srv.port, path: p, agent: false, headers: { authorization: `Bearer ${srv.token}` } }, (res) => {
      const h = createHash('sha256');
      let n = 0;
      res.on('data', (d) => { h.update(d); n += d.length; });
      res.on('end', () => resolve({ status: res.statusCode, sha: h.digest('hex'), size: n }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

test(`streamed ${SIZE / 1024 / 1024} MiB chunked upload: sha256 matches, peak RSS < 64 MB`, { skip, timeout: 900000 }, async (t) => {
  const srv = await serverFor(t, { args: ['--max-upload', '2G'] });
  const t0 = Date.now();
  const r = await streamUpload(srv, SIZE);
  const secs = (Date.now() - t0) / 1000;
  assert.equal(r.status, 201, r.body);
  const a = JSON.parse(r.body);
  assert.equal(a.size, SIZE);
  assert.equal(a.sha256, r.sha, 'server sha256 differs from the one computed while sending');
  const hwm = vmHWM(srv.pid);
  t.diagnostic(`upload ${secs.toFixed(1)} s (${(SIZE / 1048576 / secs).toFixed(0)} MiB/s), VmHWM ${(hwm / 1048576).toFixed(1)} MiB`);
  if (!SANITIZED) assert.ok(hwm < RSS_LIMIT, `peak RSS after upload ${(hwm / 1048576).toFixed(1)} MiB >= 64 MB`);
  assert.equal(blobFiles(srv.dataDir).length, 1);
  // read it back, streamed
  const d = await streamDownloadSha(srv, a.url);
  assert.equal(d.status, 200);
  assert.equal(d.size, SIZE);
  assert.equal(d.sha, r.sha);
  const hwm2 = vmHWM(srv.pid);
  t.diagnostic(`VmHWM after download ${(hwm2 / 1048576).toFixed(1)} MiB`);
  if (!SANITIZED) assert.ok(hwm2 < RSS_LIMIT, `peak RSS after download ${(hwm2 / 1048576).toFixed(1)} MiB >= 64 MB`);
  const range = await request(srv, { path: a.url, headers: { range: `bytes=${SIZE - 16}-` } });
  assert.equal(range.status, 206);
  assert.equal(range.body.length, 16);
});
