// Malformed input never crashes the server. After each case the process
// must be alive and /healthz must answer 200.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  startServer, api, postBody, rawExchange, multipartBody, assertError, healthy, sleep, SLOW, tmpFiles, waitFor,
} from './lib.mjs';
import { TEST_TIMEOUT as T } from './lib.mjs';

let srv;
before(async () => { srv = await startServer({ args: ['--max-upload', '10M'] }); });
after(() => srv?.cleanup());

async function stillFine(label) {
  assert.ok(srv.alive(), `${label}: server process died (${JSON.stringify(srv.exitInfo)}); stderr tail:\n${srv.stderrLines.slice(-10).join('\n')}`);
  assert.ok(await healthy(srv), `${label}: /healthz did not answer 200`);
}

const auth = () => `Authorization: Bearer ${srv.token}\r\n`;

// Waits until no upload is in progress on the server (its temp files are
// gone); if one stays, says which (size, age) and what the server counts.
async function noUploadLeft(label) {
  try {
    await waitFor(() => tmpFiles(srv.dataDir).length === 0, { what: `tmp/ empty after "${label}"` });
  } catch (e) {
    const now = Date.now();
    const left = tmpFiles(srv.dataDir).map((f) => {
      const st = fs.statSync(f, { throwIfNoEntry: false });
      return st ? `${path.basename(f)}: ${st.size} bytes, written ${Math.round(now - st.mtimeMs)} ms ago` : `${path.basename(f)}: gone`;
    });
    const m = await api(srv, 'GET', '/metrics');
    const conns = m.text.split('\n').filter((l) => l.startsWith('assetd_http_open_connections'));
    throw new Error(`${e.message}; left: ${left.join('; ')}; ${conns.join('; ')}`);
  }
}

test('raw TCP garbage', { timeout: T }, async () => {
  for (let i = 0; i < 5; i++) {
    const r = await rawExchange(srv.port, randomBytes(4096), { timeoutMs: 3000, endWrite: i % 2 === 0 });
    assert.ok(r.status === 0 || (r.status >= 400 && r.status < 500), `garbage got ${r.status}`);
    await stillFine(`garbage #${i}`);
  }
  // binary zeros, a lone CRLF storm, and an immediate close
  for (const p of [Buffer.alloc(10000), Buffer.from('\r\n'.repeat(5000)), Buffer.alloc(0)]) {
    await rawExchange(srv.port, p, { timeoutMs: 3000, endWrite: true });
    await stillFine('binary/CRLF/empty');
  }
});

test('invalid request lines -> 400 (or close), never a 2xx/5xx', { timeout: T }, async () => {
  const lines = [
    'GARBAGE\r\n\r\n',
    'GET\r\n\r\n',
    'GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n',
    'GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n',
    'GET /healthz HTTPS/1.1\r\nHost: x\r\n\r\n',
    '\x00\x01\x02 / HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /he\x00althz HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET  HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /healthz HTTP/1.1\r\nNo colon header\r\n\r\n',
  ];
  for (const l of lines) {
    const r = await rawExchange(srv.port, l, { timeoutMs: 3000 });
    const ok = r.status === 0 || (r.status >= 400 && r.status < 500) || r.status === 501 || r.status === 505;
    assert.ok(ok, `${JSON.stringify(l)} got ${r.status}: ${JSON.stringify(r.text.slice(0, 200))}`);
    await stillFine(JSON.stringify(l));
  }
});

test('absurdly long header -> 431/400/close', { timeout: T }, async () => {
  // 64 KiB is big but legal: any well-formed answer is fine
  const mid = await rawExchange(srv.port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`, { timeoutMs: 10000 });
  assert.ok([0, 200, 400, 431].includes(mid.status), `64 KiB header -> ${mid.status}`);
  await stillFine('64 KiB header');
  for (const size of [1024 * 1024, 8 * 1024 * 1024]) {
    const req = `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(size)}\r\n\r\n`;
    const r = await rawExchange(srv.port, req, { timeoutMs: 10000 });
    assert.ok([0, 400, 413, 431].includes(r.status), `header of ${size} bytes -> ${r.status}`);
    assert.ok(r.status !== 0 || r.closed || r.reset, `header of ${size} bytes: no answer and no close (timedOut=${r.timedOut})`);
    await stillFine(`long header ${size}`);
  }
  // many headers
  let many = 'GET /healthz HTTP/1.1\r\nHost: x\r\n';
  for (let i = 0; i < 20000; i++) many += `X-H${i}: v\r\n`;
  const r = await rawExchange(srv.port, many + '\r\n', { timeoutMs: 10000 });
  assert.ok([0, 200, 400, 413, 431].includes(r.status), `20000 headers -> ${r.status}`);
  await stillFine('many headers');
  // absurdly long URL
  const u = await rawExchange(srv.port, `GET /${'x'.repeat(2 * 1024 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`, { timeoutMs: 10000 });
  assert.ok([0, 400, 404, 414, 431].includes(u.status), `long URL -> ${u.status}`);
  await stillFine('long url');
});

test('bad Content-Length values', { timeout: T }, async () => {
  const cls = ['abc', '-1', '1.5', '0x10', '99999999999999999999999', '1 2', '', '+5', '18446744073709551615', '18446744073709551616'];
  for (const cl of cls) {
    const req = `POST /v1/assets HTTP/1.1\r\nHost: x\r\n${auth()}Content-Type: application/octet-stream\r\nContent-Length: ${cl}\r\nConnection: close\r\n\r\nhello`;
    const r = await rawExchange(srv.port, req, { timeoutMs: 5000 });
    assert.ok([0, 400, 411, 413].includes(r.status), `Content-Length: ${JSON.stringify(cl)} -> ${r.status} ${r.text.slice(0, 200)}`);
    await stillFine(`CL ${cl}`);
  }
});

test('conflicting duplicate Content-Length headers -> 400 (RFC 9112 §6.3)', { timeout: T }, async () => {
  const dup = `POST /v1/assets HTTP/1.1\r\nHost: x\r\n${auth()}Content-Type: application/octet-stream\r\nContent-Length: 5\r\nContent-Length: 7\r\nConnection: close\r\n\r\nhello!!`;
  const r1 = await rawExchange(srv.port, dup, { timeoutMs: 5000 });
  assert.ok([0, 400].includes(r1.status), `conflicting Content-Length -> ${r1.status}`);
  await stillFine('dup CL');
});

test('Content-Length together with Transfer-Encoding, short bodies, bad chunking', { timeout: T }, async () => {
  const te = `POST /v1/assets HTTP/1.1\r\nHost: x\r\n${auth()}Content-Type: application/octet-stream\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n`;
  const r2 = await rawExchange(srv.port, te, { timeoutMs: 5000 });
  assert.ok(r2.status === 0 || r2.status === 400 || (r2.status === 201 && /"size":5\b/.test(r2.text)), `CL+TE -> ${r2.status} ${r2.text.slice(-200)}`);
  await stillFine('CL+TE');
  // Content-Length larger than the body actually sent, then close
  const short = `POST /v1/assets HTTP/1.1\r\nHost: x\r\n${auth()}Content-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\nonly this`;
  await rawExchange(srv.port, short, { timeoutMs: 2000, endWrite: true });
  await stillFine('short body');
  // bad chunked encodings
  for (const body of ['zz\r\nhello\r\n0\r\n\r\n', '5\r\nhelloXX\r\n0\r\n\r\n', 'fffffffffffffffffff\r\nx\r\n', '-1\r\nx\r\n0\r\n\r\n']) {
    const req = `POST /v1/assets HTTP/1.1\r\nHost: x\r\n${auth()}Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body}`;
    const r = await rawExchange(srv.port, req, { timeoutMs: 5000 });
    assert.ok([0, 400, 413].includes(r.status), `chunked ${JSON.stringify(body)} -> ${r.status} ${r.text.slice(0, 200)}`);
    await stillFine(`chunked ${body}`);
  }
  const l = await api(srv, 'GET', '/v1/assets?limit=1000');
  for (const it of l.json.items) assert.ok(it.size === 5, `unexpected asset from a malformed request: ${JSON.stringify(it)}`);
  await noUploadLeft('malformed framing');
});

test('multipart with broken boundaries and headers -> 400, never 201/5xx', { timeout: T }, async () => {
  const data = randomBytes(2000);
  const good = multipartBody([{ name: 'file', filename: 'a.bin', data }], 'GOODBOUNDARY');
  const cases = [
    ['declared boundary never appears', good.body, 'multipart/form-data; boundary=OTHERBOUNDARY'],
    ['empty boundary', good.body, 'multipart/form-data; boundary='],
    // libmicrohttpd takes it for an empty boundary, and stored this when it
    // came in one piece (calling it malformed when chunked)
    ['quoted empty boundary', Buffer.from('--\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nabc\r\n----\r\n'), 'multipart/form-data; boundary=""'],
    ['quoted boundary unterminated', good.body, 'multipart/form-data; boundary="GOODBOUNDARY'],
    ['part without blank line after headers', Buffer.from('--GOODBOUNDARY\r\nContent-Disposition: form-data; name="file"; filename="a"\r\nabc--GOODBOUNDARY--\r\n'), good.contentType],
    ['part without Content-Disposition', Buffer.from('--GOODBOUNDARY\r\nContent-Type: text/plain\r\n\r\nabc\r\n--GOODBOUNDARY--\r\n'), good.contentType],
    ['closing boundary only', Buffer.from('--GOODBOUNDARY--\r\n'), good.contentType],
    ['garbage body', randomBytes(3000), good.contentType],
    ['boundary without leading dashes', Buffer.from('GOODBOUNDARY\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nabc\r\nGOODBOUNDARY--\r\n'), good.contentType],
    ['endless part headers', Buffer.from('--GOODBOUNDARY\r\n' + 'X-A: b\r\n'.repeat(100000)), good.contentType],
    ['unterminated header line', Buffer.from('--GOODBOUNDARY\r\nContent-Disposition: form-data; name="file"; filename="a"'), good.contentType],
    ['unquoted weird disposition', Buffer.from('--GOODBOUNDARY\r\nContent-Disposition: form-data; name=\r\n\r\nabc\r\n--GOODBOUNDARY--\r\n'), good.contentType],
  ];
  for (const [label, body, ct] of cases) {
    const r = await postBody(srv, body, ct);
    assert.ok(r.status !== 0, `${label}: no response (curl: ${r.stderr})`);
    assert.equal(r.status, 400, `${label}: got ${r.status} ${r.text.slice(0, 200)}`);
    assertError(r, 400);
    await stillFine(label);
    await noUploadLeft(label);
  }
  // unusual but arguably valid: 201 or 400/413 are fine, crashing is not
  const lenient = [
    ['boundary over 70 chars', multipartBody([{ name: 'file', filename: 'a', data }], 'b'.repeat(200)).body, `multipart/form-data; boundary=${'b'.repeat(200)}`],
    ['huge part header', Buffer.from(`--GOODBOUNDARY\r\nContent-Disposition: form-data; name="file"; filename="${'a'.repeat(1024 * 1024)}"\r\n\r\nabc\r\n--GOODBOUNDARY--\r\n`), good.contentType],
    ['preamble and epilogue', Buffer.concat([Buffer.from('preamble text\r\n'), good.body, Buffer.from('epilogue')]), good.contentType],
  ];
  for (const [label, body, ct] of lenient) {
    const r = await postBody(srv, body, ct);
    assert.ok([201, 400, 413].includes(r.status), `${label}: got ${r.status} ${r.text.slice(0, 200)}`);
    if (r.status === 201) assert.ok(Buffer.byteLength(r.json.filename) <= 255);
    else assertError(r, r.status);
    await stillFine(label);
    await noUploadLeft(label);
  }
  // the 'multipart' media type spelled differently is still multipart
  const r = await postBody(srv, good.body, 'Multipart/Form-Data; boundary=GOODBOUNDARY');
  assert.equal(r.status, 201, `case-insensitive media type: ${r.status} ${r.text}`);
  assert.equal(r.json.sha256, (await import('./lib.mjs')).sha256(data));
  const q = await postBody(srv, good.body, 'multipart/form-data; boundary="GOODBOUNDARY"');
  assert.equal(q.status, 201, `quoted boundary: ${q.status} ${q.text}`);
  await noUploadLeft('failed multiparts');
});

test('weird paths and queries', { timeout: T }, async () => {
  const paths = ['/v1/assets?limit=%00', '/v1/assets?cursor=%ff%fe', '/v1/assets?kind=%00image', '/v1/assets?limit=5&limit=6',
    '/v1/assets/%2e%2e/%2e%2e/admin.key', '/v1/assets/' + '%'.repeat(10), '/v1//assets', '//healthz', '/v1/assets/../../healthz',
    '/v1/assets?filename=' + 'x'.repeat(100000)];
  for (const p of paths) {
    const r = await rawExchange(srv.port, `GET ${p} HTTP/1.1\r\nHost: x\r\n${auth()}Connection: close\r\n\r\n`, { timeoutMs: 5000 });
    assert.ok(r.status === 0 || r.status < 500, `${p.slice(0, 60)} -> ${r.status}`);
    assert.ok(!/ak_[A-Za-z0-9_-]{43}/.test(r.text), 'a response leaked a token');
    await stillFine(p.slice(0, 60));
  }
  // the admin key file is never served through a traversal
  const r = await rawExchange(srv.port, `GET /v1/assets/..%2F..%2Fadmin.key/content HTTP/1.1\r\nHost: x\r\n${auth()}Connection: close\r\n\r\n`);
  assert.ok(!r.text.includes(srv.token), 'admin.key served');
});

test('many query parameters get a prompt answer, not a silent stall', { timeout: T }, async () => {
  for (const n of [2000, 5000]) {
    const p = '/v1/assets?' + 'a=b&'.repeat(n);
    const t0 = Date.now();
    const r = await rawExchange(srv.port, `GET ${p} HTTP/1.1\r\nHost: x\r\n${auth()}Connection: close\r\n\r\n`, { timeoutMs: 5000 });
    assert.ok([200, 400, 414, 431].includes(r.status),
      `${n} query parameters (${p.length}-byte URL): status ${r.status}, timedOut=${r.timedOut}, closed=${r.closed} after ${Date.now() - t0} ms`);
    await stillFine(`${n} params`);
  }
});

test('slow and idle clients do not block others', { timeout: T }, async () => {
  const socks = [];
  try {
    for (let i = 0; i < 30; i++) {
      const s = net.connect({ host: '127.0.0.1', port: srv.port });
      s.on('error', () => {});
      socks.push(s);
      s.write('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ');   // never finishes its headers
    }
    await sleep(200);
    const t0 = Date.now();
    for (let i = 0; i < 5; i++) assert.ok(await healthy(srv), 'healthz blocked by slow clients');
    assert.ok(Date.now() - t0 < 3000 * SLOW, `5 healthz took ${Date.now() - t0} ms with 30 slow clients`);
    // a real upload still works too
    const up = await postBody(srv, Buffer.from('ok'), 'application/octet-stream');
    assert.equal(up.status, 201);
  } finally {
    for (const s of socks) s.destroy();
  }
  await stillFine('slow clients');
});

// libmicrohttpd 0.9.75 can miss a FIN that arrives with the last bytes it
// reads; the connection would then stay open until the header deadline
// (60 s here).  The watchdog closes it once it sees the peer gone
// (http/timeouts.c): within about two seconds.
test('a client that sends its request and closes its side sees the close soon', { timeout: T }, async () => {
  const own = await startServer({ args: ['--header-timeout', '60'] });
  try {
    for (let i = 0; i < 60; i++) {
      const t0 = Date.now();
      const r = await rawExchange(own.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n',
        { endWrite: true, timeoutMs: 5000, idleMs: 60000 });
      assert.equal(r.status, 200);
      assert.ok(r.closed && !r.timedOut, `attempt ${i}: the connection was still open after ${Date.now() - t0} ms`);
    }
  } finally {
    await own.cleanup();
  }
});

test('pipelined requests are answered in order', { timeout: T }, async () => {
  const one = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
  const r = await rawExchange(srv.port, one.repeat(5) + 'GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { timeoutMs: 5000 });
  const statuses = [...r.text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 404]);
});

test('JSON error bodies for errors produced before routing', { timeout: T }, async () => {
  // an unauthenticated POST with a too-large declared body: 401 or 413, JSON either way
  const r = await rawExchange(srv.port, 'POST /v1/assets HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\n', { timeoutMs: 5000 });
  assert.ok([401, 413].includes(r.status), `${r.status}`);
  const body = r.text.slice(r.text.indexOf('\r\n\r\n') + 4);
  assert.match(body, /"error"\s*:\s*\{/, `not a JSON error body: ${body.slice(0, 200)}`);
  await stillFine('unauth big');
});
