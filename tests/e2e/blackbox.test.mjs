// Defects a black-box run found against the ASan build (hardening issue),
// each kept as a regression test: the exact hostile input it used.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, api, rawExchange, assertError, healthy, upload, TINY_PNG,
} from './lib.mjs';
import { TEST_TIMEOUT as T } from './lib.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(() => srv?.cleanup());

// Splits a raw HTTP answer into status, headers and the JSON body.
function parseRaw(r) {
  const text = r.data.toString('utf8');
  const [head, ...rest] = text.split('\r\n\r\n');
  const headers = {};
  for (const line of head.split('\r\n').slice(1)) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  let json = null;
  try { json = JSON.parse(rest.join('\r\n\r\n')); } catch { /* not JSON */ }
  return { status: r.status, headers, json, body: Buffer.from(rest.join('\r\n\r\n')) };
}

test('a method with invalid UTF-8 gets a JSON 405 or 404 that echoes it safely, never a 500', { timeout: T }, async () => {
  for (const target of ['/healthz', '/v1/assets', '/nowhere']) {
    const req = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(` ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)]);
    const r = parseRaw(await rawExchange(srv.port, req, { endWrite: false }));
    assert.ok(r.status === 405 || r.status === 404 || r.status === 400, `${target}: got ${r.status}`);
    assertError(r, r.status, undefined, target);
    if (r.status === 405) assert.match(r.json.error.message, /\uFFFD\uFFFD is not allowed here/);
  }
  assert.ok(await healthy(srv));
});

test('a rendition name with invalid UTF-8 is a JSON 404, not a 500', { timeout: T }, async () => {
  const up = await upload(srv, { data: TINY_PNG, filename: 'a.png', contentType: 'image/png' });
  assert.equal(up.status, 201, up.text);
  const r = await api(srv, 'GET', `/v1/assets/${up.json.id}/renditions/%ff%fe`);
  assert.equal(r.status, 404, r.text);
  assert.equal(r.json.error.code, 'not_found');
  assert.match(r.json.error.message, /\uFFFD\uFFFD/);
});

test('limit is validated the same way on every list route', { timeout: T }, async () => {
  const { json: hook } = await api(srv, 'GET', '/v1/webhooks');
  assert.ok(Array.isArray(hook.items));
  const routes = ['/v1/assets', '/v1/jobs', '/v1/webhooks'];
  for (const route of routes) {
    for (const bad of ['abc', '-1', '1e9', '0x10', '99999999999999999999', '0', '', '%2B1', '1.5']) {
      const r = await api(srv, 'GET', `${route}?limit=${bad}`);
      assert.equal(r.status, 400, `${route}?limit=${bad}: ${r.status} ${r.text}`);
      assert.equal(r.json.error.code, 'invalid_parameter');
    }
    assert.equal((await api(srv, 'GET', `${route}?limit=1`)).status, 200, route);
  }
  // The deliveries of a webhook the caller owns: the limit is checked too.
  const made = await api(srv, 'POST', '/v1/webhooks', { headers: ['Content-Type: application/json'], args: ['--data-binary', '@-'], input: JSON.stringify({ url: 'https://example.com/hook', events: ['asset.ready'] }) });
  assert.equal(made.status, 201, made.text);
  const base = `/v1/webhooks/${made.json.id}/deliveries`;
  for (const bad of ['abc', '-1', '1e9', '0x10', '99999999999999999999', '101']) {
    const r = await api(srv, 'GET', `${base}?limit=${bad}`);
    assert.equal(r.status, 400, `${base}?limit=${bad}: ${r.text}`);
  }
  assert.equal((await api(srv, 'GET', `${base}?limit=5`)).status, 200);
  assert.equal((await api(srv, 'GET', '/v1/jobs?asset=not-an-id')).status, 400);
  // Jobs and webhooks honour the limit.
  await upload(srv, { data: TINY_PNG, filename: 'b.png', contentType: 'image/png' });
  await upload(srv, { data: TINY_PNG, filename: 'c.png', contentType: 'image/png' });
  const jobs = await api(srv, 'GET', '/v1/jobs?limit=1');
  assert.equal(jobs.json.items.length, 1, jobs.text);
});

test('a NUL byte in a header (Authorization: Bearer KEY\\0) is a 400, never a cut-off key', { timeout: T }, async () => {
  const head = (auth) => Buffer.concat([Buffer.from(`GET /v1/assets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${srv.token}`), auth, Buffer.from('\r\nConnection: close\r\n\r\n')]);
  for (const tail of [Buffer.from([0]), Buffer.from([0, 0x41, 0x42]), Buffer.from('\0junk')]) {
    const r = parseRaw(await rawExchange(srv.port, head(tail)));
    assert.equal(r.status, 400, `tail ${tail.toString('hex')}: ${r.status} ${r.body}`);
    assertError(r, 400, 'bad_request');
  }
  // The same request without the NUL is served: the key itself is fine.
  const ok = parseRaw(await rawExchange(srv.port, head(Buffer.alloc(0))));
  assert.equal(ok.status, 200);
  // A NUL elsewhere in a header, and in a body-carrying request.
  const other = parseRaw(await rawExchange(srv.port, Buffer.from(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Thing: a\0b\r\nConnection: close\r\n\r\n`)));
  assert.equal(other.status, 400);
  const post = parseRaw(await rawExchange(srv.port, Buffer.from(`POST /v1/assets?filename=a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${srv.token}\0\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc`)));
  assert.equal(post.status, 400);
  assert.ok(await healthy(srv));
});
