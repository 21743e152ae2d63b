// Authentication on every /v1 route, and owner isolation.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  startServer, createKey, api, upload, request, assertError, sha256, TOKEN_RE,
} from './lib.mjs';
import { TEST_TIMEOUT as T } from './lib.mjs';

let srv, alice, alice2, bob, assetA, assetB;
const dataA = randomBytes(5000);
const dataB = randomBytes(3000);

before(async () => {
  srv = await startServer();
  alice = await createKey(srv.dataDir, 'alice-laptop', 'alice');
  alice2 = await createKey(srv.dataDir, 'alice-phone', 'alice');
  bob = await createKey(srv.dataDir, 'bob');
  const a = await upload(srv, { data: dataA, token: alice, filename: 'a.bin' });
  assert.equal(a.status, 201, a.text);
  assetA = a.json;
  const b = await upload(srv, { data: dataB, token: bob, filename: 'b.bin' });
  assert.equal(b.status, 201, b.text);
  assetB = b.json;
});
after(() => srv?.cleanup());

const routes = () => [
  ['GET', '/v1/assets'],
  ['POST', '/v1/assets'],
  ['GET', `/v1/assets/${assetA.id}`],
  ['GET', `/v1/assets/${assetA.id}/content`],
  ['HEAD', `/v1/assets/${assetA.id}/content`],
  ['DELETE', `/v1/assets/${assetA.id}`],
  ['GET', '/v1/assets/AAAAAAAAAAAAAAAAAAAAAA'],
];

const badAuth = () => [
  ['no Authorization header', null],
  ['garbage bearer', 'Bearer garbage'],
  ['well-formed unknown token', `Bearer ak_${randomBytes(32).toString('base64url')}`],
  ['empty bearer', 'Bearer '],
  ['Basic scheme', `Basic ${Buffer.from('alice:' + alice).toString('base64')}`],
  ['token without scheme', alice],
  ['valid token with a trailing char', `Bearer ${alice}x`],
  ['valid token truncated', `Bearer ${alice.slice(0, -1)}`],
];

test('bootstrap and created tokens have the documented format', () => {
  for (const t of [srv.token, alice, alice2, bob]) assert.match(t, TOKEN_RE);
});

test('every /v1 route rejects missing or bad credentials with 401 unauthorized', { timeout: T }, async () => {
  for (const [label, hdr] of badAuth()) {
    for (const [method, p] of routes()) {
      const headers = hdr === null ? {} : { authorization: hdr };
      const body = method === 'POST' ? Buffer.from('data') : undefined;
      if (method === 'POST') headers['content-type'] = 'application/octet-stream';
      const r = await request(srv, { method, path: p, headers, token: null, body });
      if (method === 'HEAD') {
        assert.equal(r.status, 401, `${label}: ${method} ${p}`);
        assert.equal(r.body.length, 0);
      } else {
        assertError(r, 401, 'unauthorized');
      }
    }
  }
  // nothing was deleted or created by the rejected requests
  const g = await api(srv, 'GET', `/v1/assets/${assetA.id}`, { token: alice });
  assert.equal(g.status, 200, 'asset must survive unauthenticated DELETEs');
  const l = await api(srv, 'GET', '/v1/assets', { token: alice });
  assert.deepEqual(l.json.items.map((i) => i.id), [assetA.id], 'rejected POSTs must not create assets');
});

test('401 also via curl, with X-Request-Id', { timeout: T }, async () => {
  const r = await api(srv, 'GET', '/v1/assets', { token: null });
  assertError(r, 401, 'unauthorized');
  assert.ok(r.headers['x-request-id']);
});

test('health, readiness and metrics need no auth', { timeout: T }, async () => {
  for (const p of ['/healthz', '/readyz', '/metrics']) {
    const r = await api(srv, 'GET', p, { token: null });
    assert.equal(r.status, 200, `${p}: ${r.status} ${r.text.slice(0, 200)}`);
  }
});

test('another owner gets 404 not_found on every route', { timeout: T }, async () => {
  const id = assetA.id;
  assertError(await api(srv, 'GET', `/v1/assets/${id}`, { token: bob }), 404, 'not_found');
  assertError(await api(srv, 'GET', `/v1/assets/${id}/content`, { token: bob }), 404, 'not_found');
  assertError(await api(srv, 'GET', `/v1/assets/${id}/content`, { token: bob, headers: ['Range: bytes=0-9'] }), 404, 'not_found');
  assertError(await api(srv, 'GET', `/v1/assets/${id}/content`, { token: bob, headers: [`If-None-Match: "${assetA.sha256}"`] }), 404, 'not_found');
  const h = await api(srv, 'HEAD', `/v1/assets/${id}/content`, { token: bob });
  assert.equal(h.status, 404);
  assert.equal(h.headers.etag, undefined, 'HEAD 404 must not leak the ETag');
  assertError(await api(srv, 'DELETE', `/v1/assets/${id}`, { token: bob }), 404, 'not_found');
  // still there for alice, intact
  const c = await api(srv, 'GET', `/v1/assets/${id}/content`, { token: alice });
  assert.equal(c.status, 200);
  assert.equal(sha256(c.body), sha256(dataA));
});

test('the 404 for a foreign asset is indistinguishable from an unknown id', { timeout: T }, async () => {
  const foreign = await api(srv, 'GET', `/v1/assets/${assetA.id}`, { token: bob });
  const unknown = await api(srv, 'GET', '/v1/assets/AAAAAAAAAAAAAAAAAAAAAA', { token: bob });
  assert.equal(foreign.status, unknown.status);
  assert.equal(foreign.json.error.code, unknown.json.error.code);
});

test('listings are per owner; keys of the same owner share assets', { timeout: T }, async () => {
  const la = await api(srv, 'GET', '/v1/assets', { token: alice });
  const la2 = await api(srv, 'GET', '/v1/assets', { token: alice2 });
  const lb = await api(srv, 'GET', '/v1/assets', { token: bob });
  const ladmin = await api(srv, 'GET', '/v1/assets', { token: srv.token });
  assert.deepEqual(la.json.items.map((i) => i.id), [assetA.id]);
  assert.deepEqual(la2.json.items.map((i) => i.id), [assetA.id]);
  assert.deepEqual(lb.json.items.map((i) => i.id), [assetB.id]);
  assert.ok(!ladmin.json.items.some((i) => i.id === assetA.id || i.id === assetB.id), 'admin key owner must not see other owners\' assets');
  for (const kind of ['other']) {
    const f = await api(srv, 'GET', `/v1/assets?kind=${kind}`, { token: bob });
    assert.ok(!f.json.items.some((i) => i.id === assetA.id), 'kind filter leaks foreign assets');
  }
  // alice's second key reads content
  const c = await api(srv, 'GET', `/v1/assets/${assetA.id}/content`, { token: alice2 });
  assert.equal(c.status, 200);
  assert.ok(c.body.equals(dataA));
});

test('a foreign cursor does not reveal other owners\' assets', { timeout: T }, async () => {
  // upload a few for alice, take a cursor, and use it with bob's key
  for (let i = 0; i < 3; i++) assert.equal((await upload(srv, { data: randomBytes(100), token: alice })).status, 201);
  const p1 = await api(srv, 'GET', '/v1/assets?limit=1', { token: alice });
  assert.equal(p1.status, 200);
  const cur = p1.json.next_cursor;
  assert.equal(typeof cur, 'string');
  const r = await api(srv, 'GET', `/v1/assets?limit=100&cursor=${encodeURIComponent(cur)}`, { token: bob });
  if (r.status === 200) {
    for (const it of r.json.items) assert.equal(it.id, assetB.id, 'bob saw a foreign asset through a cursor');
  } else {
    assertError(r, 400, 'invalid_cursor');
  }
});

test('delete by the owner\'s other key works; then both keys get 404', { timeout: T }, async () => {
  const up = await upload(srv, { data: randomBytes(200), token: alice });
  assert.equal(up.status, 201);
  const d = await api(srv, 'DELETE', `/v1/assets/${up.json.id}`, { token: alice2 });
  assert.equal(d.status, 204, d.text);
  assertError(await api(srv, 'GET', `/v1/assets/${up.json.id}`, { token: alice }), 404, 'not_found');
  assertError(await api(srv, 'GET', `/v1/assets/${up.json.id}`, { token: alice2 }), 404, 'not_found');
});

test('a key created without --owner shares assets with keys given that name as owner', { timeout: T }, async () => {
  const bob2 = await createKey(srv.dataDir, 'bob-ci', 'bob');
  const l = await api(srv, 'GET', '/v1/assets', { token: bob2 });
  assert.ok(l.json.items.some((i) => i.id === assetB.id), 'bob-ci (owner bob) must see the asset of key "bob" (owner defaulted to bob)');
  const c = await api(srv, 'GET', `/v1/assets/${assetB.id}/content`, { token: bob2 });
  assert.ok(c.body.equals(dataB));
});
