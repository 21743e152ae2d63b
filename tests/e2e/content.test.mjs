// GET/HEAD /v1/assets/{id}/content, conditional and range requests,
// Content-Disposition; GET and DELETE of assets.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  startServer, api, upload, request, rawExchange, assertError, sha256, blobFiles, waitFor, TINY_JPEG,
} from './lib.mjs';
import { TEST_TIMEOUT as T } from './lib.mjs';

let srv, data, asset;
const SIZE = 100000;

before(async () => {
  srv = await startServer();
  // Random bytes behind a fixed prefix that no libmagic rule knows: random
  // bytes alone sometimes start with a magic number ("MZ" -> x-dosexec).
  data = Buffer.concat([Buffer.from('\x00\xffASSETD-TEST\x01', 'latin1'), randomBytes(SIZE - 14)]);
  const r = await upload(srv, { data, filename: 'data.bin' });
  assert.equal(r.status, 201, r.text);
  asset = r.json;
});
after(() => srv?.cleanup());

const contentPath = () => `/v1/assets/${asset.id}/content`;

test('GET content: exact bytes and the documented headers', { timeout: T }, async () => {
  const r = await api(srv, 'GET', contentPath());
  assert.equal(r.status, 200);
  assert.ok(r.body.equals(data), 'body differs from upload');
  assert.equal(r.headers.etag, `"${sha256(data)}"`);
  assert.equal(r.headers['accept-ranges'], 'bytes');
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
  assert.equal(r.headers['content-type'], 'application/octet-stream');
  assert.equal(Number(r.headers['content-length']), SIZE);
  assert.ok(r.headers['content-disposition'], 'Content-Disposition missing');
  assert.match(r.headers['content-disposition'], /filename="data\.bin"/);
  assert.ok(r.headers['x-request-id']);
});

test('HEAD content: same headers as GET, Content-Length, no body', { timeout: T }, async () => {
  const g = await api(srv, 'GET', contentPath());
  const h = await api(srv, 'HEAD', contentPath());
  assert.equal(h.status, 200);
  for (const k of ['etag', 'accept-ranges', 'x-content-type-options', 'content-type', 'content-length', 'content-disposition']) {
    assert.equal(h.headers[k], g.headers[k], `HEAD header ${k}`);
  }
  assert.equal(Number(h.headers['content-length']), SIZE);
  // on the wire: nothing after the header block, and the connection is reusable
  const req = `HEAD ${contentPath()} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${srv.token}\r\n\r\n` +
    `GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;
  const raw = await rawExchange(srv.port, req, { timeoutMs: 5000 });
  assert.equal(raw.status, 200, raw.text.slice(0, 200));
  const firstEnd = raw.text.indexOf('\r\n\r\n');
  assert.ok(firstEnd > 0);
  const rest = raw.text.slice(firstEnd + 4);
  assert.match(rest, /^HTTP\/1\.1 200/, `bytes after the HEAD response headers are not the next response: ${JSON.stringify(rest.slice(0, 80))}`);
});

test('If-None-Match: matching ETag -> 304 without body; other ETag -> 200', { timeout: T }, async () => {
  const etag = `"${asset.sha256}"`;
  const r = await api(srv, 'GET', contentPath(), { headers: [`If-None-Match: ${etag}`] });
  assert.equal(r.status, 304);
  assert.equal(r.body.length, 0);
  assert.equal(r.headers.etag, etag);
  assert.ok(r.headers['x-request-id']);
  const r2 = await api(srv, 'GET', contentPath(), { headers: ['If-None-Match: "0000"'] });
  assert.equal(r2.status, 200);
  assert.ok(r2.body.equals(data));
  const h = await api(srv, 'HEAD', contentPath(), { headers: [`If-None-Match: ${etag}`] });
  assert.equal(h.status, 304);
});

test('If-None-Match: list, weak and * forms (RFC 9110 weak comparison)', { timeout: T }, async () => {
  const etag = `"${asset.sha256}"`;
  for (const v of [`"abc", ${etag}`, `W/${etag}`, '*']) {
    const r = await api(srv, 'GET', contentPath(), { headers: [`If-None-Match: ${v}`] });
    assert.equal(r.status, 304, `If-None-Match: ${v}`);
  }
  const r = await api(srv, 'GET', contentPath(), { headers: [`If-None-Match: "${asset.sha256.slice(0, 63)}"`] });
  assert.equal(r.status, 200, 'prefix of the ETag must not match');
});

test('Range: a-b, a-, -n -> 206 with Content-Range and the exact slice', { timeout: T }, async () => {
  const cases = [
    ['bytes=0-99', 0, 99],
    ['bytes=0-0', 0, 0],
    ['bytes=1000-1999', 1000, 1999],
    ['bytes=99000-', 99000, SIZE - 1],
    ['bytes=-500', SIZE - 500, SIZE - 1],
    ['bytes=99990-200000', 99990, SIZE - 1],
    ['bytes=-200000', 0, SIZE - 1],
    [`bytes=${SIZE - 1}-`, SIZE - 1, SIZE - 1],
  ];
  for (const [range, a, b] of cases) {
    const r = await api(srv, 'GET', contentPath(), { headers: [`Range: ${range}`] });
    assert.equal(r.status, 206, `${range}: status ${r.status}`);
    assert.equal(r.headers['content-range'], `bytes ${a}-${b}/${SIZE}`, range);
    assert.equal(Number(r.headers['content-length']), b - a + 1, `${range}: Content-Length`);
    assert.ok(r.body.equals(data.subarray(a, b + 1)), `${range}: wrong bytes`);
    assert.equal(r.headers.etag, `"${asset.sha256}"`);
  }
});

test('Range past the end -> 416 with Content-Range: bytes */size', { timeout: T }, async () => {
  for (const range of [`bytes=${SIZE}-`, `bytes=${SIZE}-${SIZE + 10}`, 'bytes=999999999-']) {
    const r = await api(srv, 'GET', contentPath(), { headers: [`Range: ${range}`] });
    assert.equal(r.status, 416, `${range}: ${r.status}`);
    assert.equal(r.headers['content-range'], `bytes */${SIZE}`, range);
  }
});

test('Range that is not understood is ignored (200, full body)', { timeout: T }, async () => {
  for (const range of ['items=0-5', 'bytes=abc', 'bytes=5-1', 'bytes=', 'bytes=--5', 'bytes=1-2-3', 'bytes=0-1,5-6']) {
    const r = await api(srv, 'GET', contentPath(), { headers: [`Range: ${range}`] });
    if (range.includes(',') && r.status === 206) continue;   // multipart/byteranges would be allowed too
    assert.equal(r.status, 200, `${range}: ${r.status}`);
    assert.ok(r.body.equals(data), `${range}: full body expected`);
  }
  // overflowing positions: ignored or unsatisfiable, never a wrong slice
  for (const range of ['bytes=18446744073709551616-', 'bytes=0-18446744073709551616', 'bytes=-18446744073709551616']) {
    const r = await api(srv, 'GET', contentPath(), { headers: [`Range: ${range}`] });
    assert.ok([200, 206, 416].includes(r.status), `${range}: ${r.status}`);
    if (r.status === 200) assert.ok(r.body.equals(data));
    if (r.status === 206) assert.ok(r.body.equals(data), `${range}: a 206 here must be the whole body`);
  }
  assert.equal((await api(srv, 'GET', '/healthz')).status, 200);
});

test('HEAD with Range mirrors GET', { timeout: T }, async () => {
  const r = await api(srv, 'HEAD', contentPath(), { headers: ['Range: bytes=10-19'] });
  assert.equal(r.status, 206);
  assert.equal(r.headers['content-range'], `bytes 10-19/${SIZE}`);
  assert.equal(Number(r.headers['content-length']), 10);
});

test('Content-Type of content is the sniffed one', { timeout: T }, async () => {
  const up = await upload(srv, { data: TINY_JPEG, filename: 'pic.txt', contentType: 'text/plain' });
  const r = await api(srv, 'GET', up.json.url);
  assert.equal(r.headers['content-type'], 'image/jpeg');
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
  assert.ok(r.body.equals(TINY_JPEG));
});

function dispositionParts(v) {
  assert.ok(v, 'Content-Disposition missing');
  const ascii = /filename="((?:[^"\\]|\\.)*)"/.exec(v);
  const ext = /filename\*=UTF-8''([^;\s]+)/i.exec(v);
  return { ascii: ascii ? ascii[1] : null, ext: ext ? decodeURIComponent(ext[1]) : null };
}

test('Content-Disposition: safe ASCII fallback, filename* for non-ASCII', { timeout: T }, async () => {
  const cases = [
    ['résumé 履歴書.pdf', true],
    ['quote"in"name.txt', false],
    ['semi;colon,comma.txt', false],
    ['percent%41.txt', false],
    ['plain.txt', false],
  ];
  for (const [name, nonAscii] of cases) {
    const up = await upload(srv, { data: Buffer.from('x'), raw: true, filename: name });
    assert.equal(up.status, 201, up.text);
    assert.equal(up.json.filename, name);
    const r = await api(srv, 'GET', up.json.url);
    const raw = r.headerList.filter(([k]) => k === 'content-disposition').map(([, v]) => v);
    assert.equal(raw.length, 1, 'exactly one Content-Disposition');
    const v = raw[0];
    // the header is read as latin1: any byte >= 0x80 means raw non-ASCII on the wire
    assert.ok(/^[\x20-\x7e]*$/.test(v), `Content-Disposition must be printable ASCII: ${JSON.stringify(v)}`);
    assert.match(v, /^(inline|attachment)\s*;/);
    const { ascii, ext } = dispositionParts(v);
    assert.ok(ascii !== null, `no filename="..." in ${v}`);
    assert.ok(!/["\\\r\n]/.test(ascii), `fallback has quote/backslash/CR/LF: ${JSON.stringify(ascii)}`);
    assert.ok(ascii.length > 0);
    if (nonAscii) {
      assert.equal(ext, name, `filename* must decode to the name: ${v}`);
    } else if (ext !== null) {
      assert.equal(ext, name);
    }
    if (!nonAscii && !/["%]/.test(name)) assert.equal(ascii, name, 'plain ASCII names are kept as they are');
  }
});

test('GET /v1/assets/{id} for unknown and malformed ids -> 404 not_found', { timeout: T }, async () => {
  for (const id of ['AAAAAAAAAAAAAAAAAAAAAA', 'short', 'x'.repeat(200), '..%2F..%2Fadmin.key', 'a%20b', 'AAAAAAAAAAAAAAAAAAAAAA%2F']) {
    assertError(await api(srv, 'GET', `/v1/assets/${id}`), 404, 'not_found', `GET /v1/assets/${id}`);
    assertError(await api(srv, 'GET', `/v1/assets/${id}/content`), 404, 'not_found', `GET /v1/assets/${id}/content`);
    assertError(await api(srv, 'DELETE', `/v1/assets/${id}`), 404, 'not_found', `DELETE /v1/assets/${id}`);
    assert.equal((await api(srv, 'HEAD', `/v1/assets/${id}/content`)).status, 404, `HEAD /v1/assets/${id}/content`);
  }
  // the real asset is untouched by all that
  assert.equal((await api(srv, 'GET', `/v1/assets/${asset.id}`)).status, 200);
});

test('an id with an encoded NUL or slash is not found, not re-routed to the listing', { timeout: T }, async () => {
  for (const id of ['%00', '%2F', `${asset.id}%00`, `%00${asset.id}`]) {
    assertError(await api(srv, 'GET', `/v1/assets/${id}`), 404, 'not_found', `GET /v1/assets/${id}`);
    assertError(await api(srv, 'GET', `/v1/assets/${id}/content`), 404, 'not_found', `GET /v1/assets/${id}/content`);
  }
  assertError(await api(srv, 'DELETE', `/v1/assets/${asset.id}%00`), 404, 'not_found', `DELETE /v1/assets/${asset.id}%00`);
  assert.equal((await api(srv, 'GET', `/v1/assets/${asset.id}`)).status, 200, 'asset must survive');
});

test('DELETE: 204, then 404 everywhere, blob gone, second delete 404', { timeout: T }, async () => {
  const keep = await upload(srv, { data: randomBytes(1000) });
  const gone = await upload(srv, { data: randomBytes(2000) });
  assert.equal(gone.status, 201);
  const blobsBefore = blobFiles(srv.dataDir).length;
  const d = await api(srv, 'DELETE', `/v1/assets/${gone.json.id}`);
  assert.equal(d.status, 204, d.text);
  assert.equal(d.body.length, 0);
  assert.ok(d.headers['x-request-id']);
  assertError(await api(srv, 'GET', `/v1/assets/${gone.json.id}`), 404, 'not_found');
  assertError(await api(srv, 'GET', `/v1/assets/${gone.json.id}/content`), 404, 'not_found');
  assert.equal((await api(srv, 'HEAD', `/v1/assets/${gone.json.id}/content`)).status, 404);
  await waitFor(() => blobFiles(srv.dataDir).length === blobsBefore - 1, { what: 'blob file removed' });
  assertError(await api(srv, 'DELETE', `/v1/assets/${gone.json.id}`), 404, 'not_found');
  const l = await api(srv, 'GET', '/v1/assets?limit=1000');
  assert.ok(!l.json.items.some((i) => i.id === gone.json.id), 'deleted asset still listed');
  assert.ok(l.json.items.some((i) => i.id === keep.json.id));
  assert.equal((await api(srv, 'GET', keep.json.url)).status, 200);
});

test('deleting while a download is streaming does not break the download or the server', { timeout: T }, async () => {
  const big = randomBytes(8 * 1024 * 1024);
  const up = await upload(srv, { data: big, raw: true });
  assert.equal(up.status, 201);
  const dl = request(srv, { path: up.json.url });
  const del = await api(srv, 'DELETE', `/v1/assets/${up.json.id}`);
  assert.equal(del.status, 204);
  let res;
  try { res = await dl; } catch { res = null; }
  if (res && res.status === 200) assert.ok(res.body.equals(big), 'a download that completes must be intact');
  assert.equal((await api(srv, 'GET', '/healthz')).status, 200);
  assert.ok(srv.alive());
});

test('same content uploaded twice: deleting one keeps the other readable', { timeout: T }, async () => {
  const same = randomBytes(4096);
  const a = await upload(srv, { data: same });
  const b = await upload(srv, { data: same });
  assert.equal(a.json.sha256, b.json.sha256);
  assert.equal((await api(srv, 'DELETE', `/v1/assets/${a.json.id}`)).status, 204);
  const r = await api(srv, 'GET', b.json.url);
  assert.equal(r.status, 200);
  assert.ok(r.body.equals(same));
});
