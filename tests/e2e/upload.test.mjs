// POST /v1/assets: multipart and raw bodies, asset JSON, sniffing, filename
// sanitising, multipart errors, upload limits.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import {
  startServer, serverFor, api, upload, postBody, request, rawExchange, multipartBody,
  assertError, assertAsset, sha256, tmpFiles, blobFiles, waitFor, prng,
  TINY_JPEG, TINY_PNG, TINY_PDF, TEXT, TINY_ODP, ID_RE,
} from './lib.mjs';
import { TEST_TIMEOUT as T } from './lib.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(() => srv?.cleanup());

test('multipart upload: 201, Location, full asset JSON, readable back', { timeout: T }, async () => {
  const data = randomBytes(10000);
  const before = Date.now();
  const r = await upload(srv, { data, filename: 'blob.bin', contentType: 'application/octet-stream' });
  assert.equal(r.status, 201, r.text);
  assert.match(r.headers['content-type'] || '', /^application\/json/);
  const a = assertAsset(r.json, {
    kind: 'other', status: 'uploaded', filename: 'blob.bin', size: data.length, sha256: sha256(data),
    content_type: 'application/octet-stream',
  });
  assert.equal(r.headers.location, `/v1/assets/${a.id}`);
  assert.ok(Date.parse(a.created) >= before - 2000 && Date.parse(a.created) <= Date.now() + 2000, `created ${a.created} not now`);
  assert.equal(a.created, a.updated);
  const g = await api(srv, 'GET', r.headers.location);
  assert.equal(g.status, 200);
  assert.deepEqual(g.json, a, 'GET returns the same asset JSON as the upload');
  const c = await api(srv, 'GET', a.url);
  assert.equal(c.status, 200);
  assert.ok(c.body.equals(data), 'content differs');
});

test('raw upload: name from ?filename=, default "upload"', { timeout: T }, async () => {
  const data = randomBytes(777);
  const r = await upload(srv, { data, raw: true, filename: 'raw name.dat', contentType: 'application/x-whatever' });
  assert.equal(r.status, 201, r.text);
  assertAsset(r.json, { filename: 'raw name.dat', size: 777, sha256: sha256(data), kind: 'other' });
  assert.equal(r.headers.location, `/v1/assets/${r.json.id}`);
  const r2 = await upload(srv, { data, raw: true, filename: null });
  assert.equal(r2.status, 201, r2.text);
  assert.equal(r2.json.filename, 'upload');
  assert.notEqual(r2.json.id, r.json.id, 'same bytes, two uploads, two ids');
  assert.equal(r2.json.sha256, r.json.sha256);
});

test('ids are 128-bit, unique and unpredictable-looking', { timeout: T }, async () => {
  const ids = new Set();
  for (let i = 0; i < 20; i++) {
    const r = await request(srv, { method: 'POST', path: '/v1/assets?filename=x', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from('same') });
    assert.equal(r.status, 201);
    assert.match(r.json.id, ID_RE);
    assert.equal(Buffer.from(r.json.id, 'base64url').length, 16);
    ids.add(r.json.id);
  }
  assert.equal(ids.size, 20);
  // no shared long prefix (a counter or timestamp would share one)
  const arr = [...ids].sort();
  let maxPrefix = 0;
  for (let i = 1; i < arr.length; i++) {
    let k = 0;
    while (k < 22 && arr[i][k] === arr[i - 1][k]) k++;
    maxPrefix = Math.max(maxPrefix, k);
  }
  assert.ok(maxPrefix < 8, `ids share a ${maxPrefix}-char prefix: ${arr.join(' ')}`);
});

test('type is sniffed from bytes: JPEG sent as text/plain x.txt is an image', { timeout: T }, async () => {
  for (const raw of [false, true]) {
    const r = await upload(srv, { data: TINY_JPEG, filename: 'x.txt', contentType: 'text/plain', raw });
    assert.equal(r.status, 201, r.text);
    assertAsset(r.json, { kind: 'image', content_type: 'image/jpeg', filename: 'x.txt', size: TINY_JPEG.length });
    const c = await api(srv, 'GET', r.json.url);
    assert.equal(c.headers['content-type'], 'image/jpeg', 'content served with sniffed type');
  }
});

test('type is sniffed from bytes: text named evil.jpg sent as image/jpeg is other (and failed: not an image)', { timeout: T }, async () => {
  for (const raw of [false, true]) {
    const r = await upload(srv, { data: TEXT, filename: 'evil.jpg', contentType: 'image/jpeg', raw });
    assert.equal(r.status, 201, r.text);
    assertAsset(r.json, { kind: 'other', filename: 'evil.jpg', status: 'failed' });
    assert.equal(r.json.error.code, 'unsupported_format');
    assert.match(r.json.content_type, /^text\/plain\b/);
    const c = await api(srv, 'GET', r.json.url);
    assert.match(c.headers['content-type'] || '', /^text\/plain\b/);
    assert.notEqual(c.headers['content-type'], 'image/jpeg');
  }
});

test('HTML disguised as a PNG is not typed image/png, and is served with nosniff', { timeout: T }, async () => {
  const html = Buffer.from('<!DOCTYPE html><html><head><script>alert(1)</script></head><body>x</body></html>\n');
  const r = await upload(srv, { data: html, filename: 'a.png', contentType: 'image/png', raw: true });
  assert.equal(r.status, 201);
  assert.equal(r.json.kind, 'other');
  assert.notEqual(r.json.content_type, 'image/png');
  const c = await api(srv, 'GET', r.json.url);
  assert.equal(c.headers['x-content-type-options'], 'nosniff');
});

test('kinds: png image, pdf, presentation (ODP), octet-stream other', { timeout: T }, async () => {
  const cases = [
    [TINY_PNG, 'image', 'image/png'],
    [TINY_PDF, 'pdf', 'application/pdf'],
    [TINY_ODP(), 'presentation', 'application/vnd.oasis.opendocument.presentation'],
    [randomBytes(4096), 'other', 'application/octet-stream'],
  ];
  for (const [data, kind, ct] of cases) {
    const r = await upload(srv, { data, filename: 'noext', contentType: 'application/octet-stream' });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.kind, kind, `${ct}: kind`);
    assert.equal(r.json.content_type, ct);
  }
});

test('filenames are sanitised', { timeout: T }, async () => {
  const cases = [
    ['../../etc/passwd', 'passwd'],
    ['/abs/path/file.txt', 'file.txt'],
    ['C:\\Users\\x\\photo.jpg', 'photo.jpg'],
    ['a\x01b\x7fc\x1f.txt', 'abc.txt'],
    ['line\r\nbreak.txt', 'linebreak.txt'],
    ['tab\there.txt', 'tabhere.txt'],
    ['résumé 履歴書.pdf', 'résumé 履歴書.pdf'],
    ['..', 'upload'],
  ];
  for (const [given, want] of cases) {
    const r = await upload(srv, { data: Buffer.from('x'), raw: true, filename: given });
    assert.equal(r.status, 201, `raw ${JSON.stringify(given)}: ${r.text}`);
    assert.equal(r.json.filename, want, `raw ?filename=${JSON.stringify(given)}`);
  }
  for (const [given, want] of cases) {
    if (/[\r\n"]/.test(given)) continue;  // not representable in a quoted multipart filename
    const mp = multipartBody([{ name: 'file', filename: given, contentType: 'text/plain', data: 'x' }]);
    const r = await postBody(srv, Buffer.concat([mp.body]), mp.contentType);
    assert.equal(r.status, 201, `multipart ${JSON.stringify(given)}: ${r.text}`);
    assert.equal(r.json.filename, want, `multipart filename=${JSON.stringify(given)}`);
  }
  // very long names are cut, still valid UTF-8
  const long = 'é'.repeat(400) + '.txt';
  const r = await upload(srv, { data: Buffer.from('x'), raw: true, filename: long });
  assert.equal(r.status, 201);
  assert.ok(Buffer.byteLength(r.json.filename) <= 255, `filename ${Buffer.byteLength(r.json.filename)} bytes`);
  assert.ok(!r.json.filename.includes('\ufffd'), 'cut in the middle of a UTF-8 sequence');
});

test('multipart: other fields are ignored, file part found among them', { timeout: T }, async () => {
  const data = randomBytes(3000);
  const mp = multipartBody([
    { name: 'title', data: 'my title' },
    { name: 'file', filename: 'real.bin', contentType: 'application/octet-stream', data },
    { name: 'description', data: 'more text\r\n--not-a-boundary' },
  ]);
  const r = await postBody(srv, mp.body, mp.contentType);
  assert.equal(r.status, 201, r.text);
  assertAsset(r.json, { filename: 'real.bin', size: data.length, sha256: sha256(data) });
  // via curl -F too
  const r2 = await curlForm(data);
  assert.equal(r2.status, 201, r2.text);
  assert.equal(r2.json.sha256, sha256(data));
});

async function curlForm(data) {
  const { curl } = await import('./lib.mjs');
  return curl(['-X', 'POST', '-H', `Authorization: Bearer ${srv.token}`, '-F', 'note=hello', '-F', 'file=@-;filename=f.bin', '-F', 'other=1', `${srv.url}/v1/assets`], { input: data });
}

test('multipart: file bytes that look like CRLF and dashes survive', { timeout: T }, async () => {
  const data = Buffer.concat([Buffer.from('\r\n--\r\n--x\r\n\r\n'), randomBytes(1000), Buffer.from('\r\n--')]);
  const mp = multipartBody([{ name: 'file', filename: 'tricky.bin', data }]);
  const r = await postBody(srv, mp.body, mp.contentType);
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.size, data.length);
  assert.equal(r.json.sha256, sha256(data));
});

test('multipart errors: no boundary, no file part, two file parts, truncated', { timeout: T }, async () => {
  const mp = multipartBody([{ name: 'file', filename: 'a.txt', data: 'hello' }]);
  assertError(await postBody(srv, mp.body, 'multipart/form-data'), 400, 'invalid_multipart');

  const noFile = multipartBody([{ name: 'title', data: 'x' }, { name: 'notfile', filename: 'a.txt', data: 'y' }]);
  assertError(await postBody(srv, noFile.body, noFile.contentType), 400, 'missing_file');

  const two = multipartBody([
    { name: 'file', filename: 'a.txt', data: 'one' },
    { name: 'file', filename: 'b.txt', data: 'two' },
  ]);
  assertError(await postBody(srv, two.body, two.contentType), 400, 'multiple_files');

  const full = multipartBody([{ name: 'file', filename: 'a.bin', data: randomBytes(5000) }]);
  const truncated = full.body.subarray(0, full.body.length - 2000);
  assertError(await postBody(srv, truncated, full.contentType), 400, 'invalid_multipart');

  const noClose = multipartBody([{ name: 'file', filename: 'a.bin', data: randomBytes(100) }], undefined, { close: false });
  assertError(await postBody(srv, noClose.body, noClose.contentType), 400, 'invalid_multipart');

  const empty = multipartBody([]);
  const r = await postBody(srv, Buffer.alloc(0), empty.contentType);
  assert.equal(r.status, 400);
  assertError(r, 400, ['invalid_multipart', 'missing_file']);
});

// RFC 2046 allows 1-70 characters; libmicrohttpd's parser needs at least 2,
// so a 1-character boundary is a documented 400 (docs/architecture.md).
test('multipart: one-character boundary is a clear 400, not a crash or a hang', { timeout: T }, async () => {
  const mp = multipartBody([{ name: 'file', filename: 'b.bin', data: randomBytes(50) }], 'B');
  assertError(await postBody(srv, mp.body, mp.contentType), 400, 'invalid_multipart', 'boundary B');
});

test('multipart: every legal boundary of 2-70 chars, quoted specials, is accepted', { timeout: T }, async () => {
  for (const b of ['ab', 'x'.repeat(70), "a'()+_,-./:=?", 'with space']) {
    const data = randomBytes(500);
    const mp = multipartBody([{ name: 'file', filename: 'b.bin', data }], b);
    const ct = /[ '()+,/:=?]/.test(b) ? `multipart/form-data; boundary="${b}"` : mp.contentType;
    const r = await postBody(srv, mp.body, ct);
    assert.equal(r.status, 201, `boundary ${JSON.stringify(b)}: ${r.status} ${r.text}`);
    assert.equal(r.json.sha256, sha256(data));
  }
});

test('failed uploads leave no asset, no blob and no temp file', { timeout: T }, async (t) => {
  const s = await serverFor(t, { args: ['--max-upload', '64K'] });
  const two = multipartBody([
    { name: 'file', filename: 'a.txt', data: randomBytes(20000) },
    { name: 'file', filename: 'b.txt', data: randomBytes(20000) },
  ]);
  assert.equal((await postBody(s, two.body, two.contentType)).status, 400);
  const full = multipartBody([{ name: 'file', filename: 'a.bin', data: randomBytes(30000) }]);
  assert.equal((await postBody(s, full.body.subarray(0, 20000), full.contentType)).status, 400);
  assert.equal((await upload(s, { data: randomBytes(70000), raw: true })).status, 413);
  assert.equal((await upload(s, { data: randomBytes(70000) })).status, 413);
  const l = await api(s, 'GET', '/v1/assets');
  assert.deepEqual(l.json.items, []);
  await waitFor(() => tmpFiles(s.dataDir).length === 0 && blobFiles(s.dataDir).length === 0, { what: 'tmp/ and blobs/ empty' });
});

test('--max-upload: exact limit accepted, one byte more is 413 payload_too_large', { timeout: T }, async (t) => {
  const s = await serverFor(t, { args: ['--max-upload', '512K'] });
  const ok = await upload(s, { data: randomBytes(512 * 1024), raw: true });
  assert.equal(ok.status, 201, ok.text);
  assert.equal(ok.json.size, 512 * 1024);
  assertError(await upload(s, { data: randomBytes(512 * 1024 + 1), raw: true }), 413, 'payload_too_large');
  // multipart: the file part alone is over the limit
  assertError(await upload(s, { data: randomBytes(600 * 1024) }), 413, 'payload_too_large');

  const s2 = await serverFor(t, { args: ['--max-upload', '1000'] });
  assert.equal((await upload(s2, { data: randomBytes(1000), raw: true })).status, 201);
  assertError(await upload(s2, { data: randomBytes(1001), raw: true }), 413, 'payload_too_large');
});

test('413 is decided from Content-Length before the body is read', { timeout: T }, async (t) => {
  const s = await serverFor(t, { args: ['--max-upload', '1M'] });
  // Declare 10 GiB, send nothing: the answer must come without the body.
  const req = `POST /v1/assets?filename=big HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.token}\r\n` +
    'Content-Type: application/octet-stream\r\nContent-Length: 10737418240\r\n\r\n';
  const r = await rawExchange(s.port, req, { timeoutMs: 5000 });
  assert.equal(r.status, 413, `got ${JSON.stringify(r.text.slice(0, 300))} timedOut=${r.timedOut}`);
  assert.match(r.text, /payload_too_large/);
  // same with Expect: 100-continue: no 100 Continue, straight 413
  const req2 = req.replace('\r\n\r\n', '\r\nExpect: 100-continue\r\n\r\n');
  const r2 = await rawExchange(s.port, req2, { timeoutMs: 5000 });
  assert.equal(r2.status, 413, `got ${JSON.stringify(r2.text.slice(0, 300))}`);
  // multipart with an over-limit Content-Length too
  const req3 = req.replace('application/octet-stream', 'multipart/form-data; boundary=xyz');
  const r3 = await rawExchange(s.port, req3, { timeoutMs: 5000 });
  assert.equal(r3.status, 413, `got ${JSON.stringify(r3.text.slice(0, 300))}`);
  assert.ok(s.alive());
});

test('chunked uploads are counted and cut off at --max-upload', { timeout: T }, async (t) => {
  const s = await serverFor(t, { args: ['--max-upload', '1M'] });
  // small chunked upload is fine
  const small = randomBytes(100000);
  const ok = await chunkedUpload(s, small.length, () => small, 100000);
  assert.equal(ok.status, 201, ok.body);
  assert.equal(JSON.parse(ok.body).sha256, sha256(small));
  // 8 MiB chunked against a 1 MiB limit
  const gen = prng();
  const res = await chunkedUpload(s, 8 * 1024 * 1024, gen, 64 * 1024);
  assert.equal(res.status, 413, `got ${res.status} ${res.body} (${res.error})`);
  assert.match(res.body, /payload_too_large/);
  // curl -H 'Transfer-Encoding: chunked'
  const { curl } = await import('./lib.mjs');
  const c = await curl(['-X', 'POST', '-H', `Authorization: Bearer ${s.token}`, '-H', 'Transfer-Encoding: chunked',
    '-H', 'Content-Type: application/octet-stream', '--data-binary', '@-', `${s.url}/v1/assets`], { input: randomBytes(2 * 1024 * 1024) });
  assert.equal(c.status, 413, `curl chunked: ${c.status} ${c.text} ${c.stderr}`);
  const l = await api(s, 'GET', '/v1/assets');
  assert.equal(l.json.items.length, 1, 'only the small upload exists');
  await waitFor(() => tmpFiles(s.dataDir).length === 0, { what: 'tmp/ empty after cut-off uploads' });
  assert.equal(blobFiles(s.dataDir).length, 1);
  assert.ok(s.alive());
});

/** Streams `total` bytes chunked; stops writing once a response arrives. */
function chunkedUpload(s, total, gen, chunk) {
  return new Promise((resolve) => {
    let sent = 0, done = false, body = '', status = 0;
    const finish = (error) => { if (done) return; done = true; clearTimeout(timer); resolve({ status, body, sent, error: error?.message }); };
    const req = http.request({
      host: '127.0.0.1', port: s.port, method: 'POST', path: '/v1/assets?filename=chunked', agent: false,
      headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
    }, (res) => {
      status = res.statusCode;
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => finish());
      res.on('error', (e) => finish(e));
    });
    const timer = setTimeout(() => { req.destroy(); finish(new Error('timeout')); }, 30000);
    req.on('error', (e) => { setTimeout(() => finish(status ? undefined : e), 300); });
    const pump = () => {
      while (!done && !status && sent < total) {
        const n = Math.min(chunk, total - sent);
        sent += n;
        if (!req.write(gen(n))) { req.once('drain', pump); return; }
      }
      if (sent >= total && !status) req.end();
    };
    pump();
  });
}
