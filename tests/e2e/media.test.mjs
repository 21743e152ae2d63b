// Real media from the shared corpus (<repo>/../shared/corpus): the kind and
// content type come from sniffing, and the bytes round-trip exactly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { CORPUS, startServer, upload, api, sha256File, assertAsset } from './lib.mjs';
import { TEST_TIMEOUT as T } from './lib.mjs';

const CASES = [
  ['photos/01_Path_6000x4000.jpg', 'image', 'image/jpeg'],
  ['pdf/slides_context_bachotex2018_45p.pdf', 'pdf', 'application/pdf'],
  ['png/arc_alpha_2140x1200.png', 'image', 'image/png'],
  ['video/clip_1080p30_30s.mp4', 'video', 'video/mp4'],
];

let srv;
before(async () => {
  assert.ok(fs.existsSync(CORPUS), `corpus not found at ${CORPUS}`);
  srv = await startServer({ args: ['--max-upload', '100M'] });
});
after(() => srv?.cleanup());

/** Streams a download and hashes it (no buffering of big files). */
function downloadSha(s, p) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: s.port, path: p, agent: false, headers: { authorization: `Bearer ${s.token}` } }, (res) => {
      const h = createHash('sha256');
      let n = 0;
      res.on('data', (d) => { h.update(d); n += d.length; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, sha: h.digest('hex'), size: n }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

for (const [rel, kind, ct] of CASES) {
  for (const mode of ['multipart', 'raw']) {
    test(`${rel} (${mode}) -> kind ${kind}, ${ct}`, { timeout: T }, async () => {
      const file = path.join(CORPUS, rel);
      const want = await sha256File(file);
      const size = fs.statSync(file).size;
      // lie about the type and the name: the server must sniff
      const r = await upload(srv, { file, filename: `upload-${path.basename(rel)}.dat`, contentType: 'application/octet-stream', raw: mode === 'raw' });
      assert.equal(r.status, 201, r.text);
      const a = assertAsset(r.json, { kind, size, sha256: want });
      assert.match(a.content_type, new RegExp(`^${ct.replace('/', '\\/')}$`));
      const dl = await downloadSha(srv, a.url);
      assert.equal(dl.status, 200);
      assert.equal(dl.size, size);
      assert.equal(dl.sha, want);
      assert.equal(dl.headers['content-type'], ct);
      assert.equal(dl.headers.etag, `"${want}"`);
    });
  }
}

test('kind filter over the corpus uploads', { timeout: T }, async () => {
  const l = await api(srv, 'GET', '/v1/assets?kind=video');
  assert.equal(l.status, 200);
  assert.ok(l.json.items.length >= 1 && l.json.items.every((i) => i.kind === 'video' && i.content_type === 'video/mp4'));
  const img = await api(srv, 'GET', '/v1/assets?kind=image');
  assert.ok(img.json.items.length >= 4 && img.json.items.every((i) => i.kind === 'image'));
});

test('range request into the video', { timeout: T }, async () => {
  const l = await api(srv, 'GET', '/v1/assets?kind=video&limit=1');
  const a = l.json.items[0];
  const r = await api(srv, 'GET', a.url, { headers: ['Range: bytes=-1024'] });
  assert.equal(r.status, 206);
  assert.equal(r.body.length, 1024);
  const fd = fs.openSync(path.join(CORPUS, 'video/clip_1080p30_30s.mp4'), 'r');
  const buf = Buffer.alloc(1024);
  fs.readSync(fd, buf, 0, 1024, a.size - 1024);
  fs.closeSync(fd);
  assert.ok(r.body.equals(buf));
  assert.equal(r.headers['content-range'], `bytes ${a.size - 1024}-${a.size - 1}/${a.size}`);
});
