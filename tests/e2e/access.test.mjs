// The access sweep: every route of src/api/routes.c, read from the table
// itself so that a new route cannot be forgotten, is checked for
//   - no key, a revoked key, a made-up key -> 401 (routes that need a key,
//     and those that check a key or a token themselves: SELF_AUTH);
//   - another owner's ids -> 404 not_found, never 403 and never their data;
//   - hostile ids and names (traversal, NUL, %-junk, over-long, invalid
//     UTF-8) -> a 4xx JSON error, never a 2xx or a 5xx.
// A route with a path parameter this file does not know fails the sweep
// until FIXTURES says what to put there.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  REPO, TEST_TIMEOUT as T, startServer, createKey, listKeys, runCli, request, upload, api,
  waitFor, TINY_PNG, multipartBody,
  S3_URL,
} from './lib.mjs';

/* Routes the table marks public because they authenticate themselves: a
 * key, or instead a play link's ?token= (src/api/play.c; play.test.mjs
 * checks the tokens).  Without either, they are key routes like the rest. */
const SELF_AUTH = ['GET /v1/assets/{id}/renditions/{name}', 'GET /v1/assets/{id}/manifest.json'];

/** [{method, pattern, auth, body}] from the route table (body: it reads one). */
function routeTable() {
  const src = fs.readFileSync(path.join(REPO, 'src', 'api', 'routes.c'), 'utf8');
  return [...src.matchAll(/^\s*\{"([A-Z]+)", "(\/[^"]*)", (true|false),\s*(\w+),\s*(\w+)/gm)]
    .map((m) => ({ method: m[1], pattern: m[2], body: m[5] !== 'NULL',
      auth: m[3] === 'true' || SELF_AUTH.includes(`${m[1]} ${m[2]}`) }));
}

let srv, alice, bob, revoked;
const ids = {};

before(async () => {
  // A broker nobody listens on: runs are accepted (and fail later), so the
  // run routes are swept like the rest.
  srv = await startServer({ workers: 1, env: { ASSETD_AMQP_URL: 'amqp://guest:guest@127.0.0.1:1/%2f' } });
  alice = await createKey(srv.dataDir, 'alice', 'alice');
  bob = await createKey(srv.dataDir, 'bob', 'bob');
  revoked = await createKey(srv.dataDir, 'gone', 'alice');
  const k = (await listKeys(srv.dataDir)).find((x) => x.name === 'gone');
  const r = await runCli(['keys', 'revoke', '--data', srv.dataDir, k.id]);
  assert.equal(r.code, 0, r.stderr);
  // Alice's things, one of each kind a route names.
  const up = await upload(srv, { data: TINY_PNG, filename: 'dot.png', contentType: 'image/png', token: alice });
  assert.equal(up.status, 201, up.text);
  ids.asset = up.json.id;
  await waitFor(async () => (await api(srv, 'GET', `/v1/jobs?asset=${ids.asset}`, { token: alice })).json?.items?.length > 0,
    { what: 'the image job' });
  ids.job = (await api(srv, 'GET', `/v1/jobs?asset=${ids.asset}`, { token: alice })).json.items[0].id;
  const signed = await request(srv, { method: 'POST', path: '/v1/uploads', token: alice,
    headers: { 'content-type': 'application/json' }, body: JSON.stringify({ filename: 'a.bin', size: 5 }) });
  assert.equal(signed.status, 201, signed.text);
  ids.upload = signed.json.id;
  const tus = await request(srv, { method: 'POST', path: '/v1/tus', token: alice,
    headers: { 'tus-resumable': '1.0.0', 'upload-length': '5' } });
  assert.equal(tus.status, 201, tus.text);
  ids.tus = tus.headers.location.split('/').pop();
  const hook = await request(srv, { method: 'POST', path: '/v1/webhooks', token: alice,
    headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: 'https://example.com/h', events: ['asset.created'] }) });
  assert.equal(hook.status, 201, hook.text);
  ids.webhook = hook.json.id;
  const form = multipartBody([{ name: 'file', filename: 'p.csv', contentType: 'text/csv', data: 'A B,a@example.com\n' }]);
  const run = await request(srv, { method: 'POST', path: '/v1/runs', token: alice,
    headers: { 'content-type': form.contentType }, body: form.body });
  assert.equal(run.status, 202, run.text);
  ids.run = run.json.id;
});
after(() => srv?.cleanup());

/* What to put in each path parameter, by route: Alice's thing for the
 * owner checks (null: the route is public, or names no owned thing). */
const FIXTURES = {
  '/v1/assets/{id}': { id: () => ids.asset },
  '/v1/assets/{id}/content': { id: () => ids.asset },
  '/v1/assets/{id}/renditions/{name}': { id: () => ids.asset, name: () => 'thumb' },
  '/v1/assets/{id}/links': { id: () => ids.asset },
  '/v1/assets/{id}/manifest.json': { id: () => ids.asset },
  '/v1/assets/{id}/slideshow': { id: () => ids.asset },
  '/v1/assets/{id}/cover': { id: () => ids.asset },
  '/v1/uploads/{id}': { id: () => ids.upload },
  '/v1/uploads/{id}/complete': { id: () => ids.upload },
  '/v1/tus/{id}': { id: () => ids.tus },
  '/v1/jobs/{id}': { id: () => ids.job },
  '/v1/jobs/{id}/retry': { id: () => ids.job },
  '/v1/webhooks/{id}': { id: () => ids.webhook },
  '/v1/webhooks/{id}/deliveries': { id: () => ids.webhook },
  '/v1/runs/{id}': { id: () => ids.run },
  '/v1/runs/{id}/report': { id: () => ids.run },
  '/v1/runs/{id}/cancel': { id: () => ids.run },
  // Public routes: a signature, a slideshow's public id or a file name
  // decides, not a key; only the hostile-input sweep applies.
  '/v1/store/{key}': null,
  '/api/v1/slideshow/{file}': null,
  '/api/v1/slideshow/{id}/slide/{file}': null,
  '/api/v1/slideshow/{id}/control': null,
  '/api/v1/slideshow/{id}/listen': null,
  '/api/v1/slideshow/{id}/updates': null,
  '/present/{id}': null,
  '/watch/{id}': null,
  '/play/{id}': null,
};

const params = (pattern) => [...pattern.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
const fill = (pattern, values) => pattern.replace(/\{(\w+)\}/g, (_, p) => values[p]);

/** What a request to the route needs besides the path (tus headers, a body). */
function extras(method, pattern) {
  const headers = {};
  let body;
  if (pattern.startsWith('/v1/tus')) headers['tus-resumable'] = '1.0.0';
  if (method === 'PATCH') {
    headers['content-type'] = 'application/offset+octet-stream';
    headers['upload-offset'] = '0';
    body = 'hello';
  } else if (method === 'POST' || method === 'PUT') {
    headers['content-type'] = 'application/json';
    body = '{}';
  }
  return { headers, body };
}

/* The original APIs (/api/...) keep their own error shapes (open-table's
 * {"data":"bad request"}): JSON, but not ours. */
function assertJsonError(r, what, statuses) {
  assert.ok(statuses.includes(r.status), `${what}: ${r.status} ${r.text?.slice(0, 200)}`);
  if (r.status >= 400 && r.method !== 'HEAD' && r.body?.length) {
    // The original publisher's form target answers pages, errors too.
    if (what.includes(' /simulate/')) {
      assert.match(r.headers['content-type'] || '', /^text\/html/, `${what}: an error page`);
      return;
    }
    const legacy = what.includes(' /api/');
    assert.ok(legacy ? r.json && typeof r.json === 'object' : r.json?.error?.code,
      `${what}: a JSON error, got ${r.text?.slice(0, 200)}`);
  }
}

test('every route with a path parameter is known to the sweep', () => {
  const table = routeTable().map((r) => `${r.method} ${r.pattern}`);
  assert.deepEqual(SELF_AUTH.filter((r) => !table.includes(r)), [], 'SELF_AUTH names routes that are gone');
  const unknown = routeTable().filter((r) => params(r.pattern).length && !(r.pattern in FIXTURES));
  assert.deepEqual(unknown.map((r) => `${r.method} ${r.pattern}`), [], 'add them to FIXTURES');
});

test('every route that needs a key refuses none, a revoked one and a made-up one with 401', { timeout: T }, async () => {
  const bad = [['no key', null], ['revoked', revoked], ['made up', `ak_${'x'.repeat(43)}`]];
  for (const { method, pattern, auth } of routeTable().filter((r) => r.auth)) {
    const values = {};
    for (const p of params(pattern)) values[p] = FIXTURES[pattern]?.[p]?.() ?? 'AAAAAAAAAAAAAAAAAAAAAA';
    const where = fill(pattern, values);
    for (const [label, token] of bad) {
      const { headers, body } = extras(method, pattern);
      const r = await request(srv, { method, path: where, headers, body, token });
      assert.equal(r.status, 401, `${label}: ${method} ${where}: ${r.status} ${r.text?.slice(0, 200)}`);
      if (method !== 'HEAD') assert.equal(r.json?.error?.code, 'unauthorized', `${method} ${where}`);
    }
  }
  // Nothing of Alice's changed.
  assert.equal((await api(srv, 'GET', `/v1/assets/${ids.asset}`, { token: alice })).status, 200);
  assert.equal((await api(srv, 'GET', `/v1/webhooks/${ids.webhook}`, { token: alice })).status, 200);
});

test('another owner\'s ids get 404 on every route that names one, never 403 or data', { timeout: T }, async () => {
  let checked = 0;
  for (const { method, pattern } of routeTable()) {
    const fx = FIXTURES[pattern];
    if (!fx || method === 'OPTIONS') continue;   /* capabilities: the same for any id */
    const values = Object.fromEntries(Object.entries(fx).map(([k, f]) => [k, f()]));
    const where = fill(pattern, values);
    const { headers, body } = extras(method, pattern);
    const r = await request(srv, { method, path: where, headers, body, token: bob });
    assert.equal(r.status, 404, `bob: ${method} ${where}: ${r.status} ${r.text?.slice(0, 200)}`);
    if (method !== 'HEAD') assert.equal(r.json?.error?.code, 'not_found', `${method} ${where}`);
    const leaked = [ids.asset, ids.upload, ids.tus, ids.job, ids.webhook].filter((id) => r.text?.includes(id) && !where.includes(id));
    assert.deepEqual(leaked, [], `${method} ${where} names Alice's things`);
    checked++;
  }
  assert.ok(checked >= 15, `${checked} owner checks`);
  // Still Alice's, untouched: Bob's DELETEs, retries and completes did nothing.
  assert.equal((await api(srv, 'GET', `/v1/assets/${ids.asset}`, { token: alice })).status, 200);
  assert.equal((await api(srv, 'GET', `/v1/webhooks/${ids.webhook}`, { token: alice })).status, 200);
  const tus = await request(srv, { method: 'HEAD', path: `/v1/tus/${ids.tus}`, token: alice, headers: { 'tus-resumable': '1.0.0' } });
  assert.equal(tus.status, 200);
  assert.equal(tus.headers['upload-offset'], '0');
});

test('hostile ids and names get a 4xx JSON error on every route, never a 2xx or a 5xx', { timeout: T }, async () => {
  const hostile = ['..', '..%2F..%2Fetc%2Fpasswd', '%2e%2e', 'a%00b', '%ff%fe', 'x'.repeat(300),
    'AAAAAAAAAAAAAAAAAAAAA%2F', '%25%25', 'thumb%0d%0aX-Evil:%201'];
  for (const { method, pattern, auth } of routeTable()) {
    const names = params(pattern);
    if (!names.length || method === 'OPTIONS') continue;
    for (const p of names) {
      for (const bad of hostile) {
        const values = {};
        for (const q of names) values[q] = q === p ? bad : FIXTURES[pattern]?.[q]?.() ?? 'AAAAAAAAAAAAAAAAAAAAAA';
        const where = fill(pattern, values);
        const { headers, body } = extras(method, pattern);
        const r = await request(srv, { method, path: where, headers, body, token: auth ? alice : null });
        r.method = method;
        assertJsonError(r, `${method} ${where}`, [400, 403, 404, 405, 409, 412, 414, 416]);
        assert.ok(!("x-evil" in r.headers), `${method} ${where}: header injection`);
      }
    }
  }
});

test('a malformed body gets a 4xx JSON error on every route that takes one, never a 2xx or a 5xx', { timeout: T }, async () => {
  const junk = [
    ['application/json', '{"unterminated'],
    ['application/json', '[1,2,3]'],
    ['application/json', '{"filename":"\u0000","size":-1}'],
    ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="file"\r\n\r\nno end'],
    ['text/plain', '\u00ff\u00fe garbage'],
  ];
  // Routes whose body is a file: any bytes are a valid one (raw uploads
  // take their type from Content-Type or sniff it).
  const anyBytes = ['POST /v1/assets', 'PUT /v1/store/{key}'];
  const routes = routeTable().filter((r) => r.body && !anyBytes.includes(`${r.method} ${r.pattern}`));
  assert.ok(routes.length >= 10, `${routes.length} routes read a body`);
  for (const { method, pattern, auth } of routes) {
    const values = {};
    for (const p of params(pattern)) values[p] = FIXTURES[pattern]?.[p]?.() ?? 'AAAAAAAAAAAAAAAAAAAAAA';
    const where = fill(pattern, values);
    for (const [type, body] of junk) {
      const headers = { 'content-type': type };
      if (pattern.startsWith('/v1/tus')) Object.assign(headers, { 'tus-resumable': '1.0.0', 'upload-offset': '0' });
      const r = await request(srv, { method, path: where, headers, body, token: auth ? alice : null });
      assertJsonError(r, `${method} ${where} (${type})`, [400, 403, 404, 409, 411, 412, 413, 415, 422]);
    }
  }
  // the image and the CSV of the run made in before()
  assert.equal((await api(srv, 'GET', '/v1/assets', { token: alice })).json.items.length, 2, 'nothing was created');
});

/* Routes that answer with a stream, not a document (SSE, WebSocket):
 * their headers are websocket.test.mjs's and events.test.mjs's. */
const STREAMS = ['/v1/events', '/api/v1/slideshow/{id}/listen', '/api/v1/slideshow/{id}/updates', '/api/images/live'];

test('security headers: every HTML page has the CSP (frame-ancestors), nosniff and no-referrer; every file served has nosniff; user bytes are sandboxed', { timeout: T }, async () => {
  await waitFor(async () => (await api(srv, 'GET', `/v1/assets/${ids.asset}`, { token: alice })).json?.status === 'ready',
    { what: 'the image ready (its renditions are files to check)' });
  const checked = { page: [], file: [], user: [] };
  for (const { method, pattern } of routeTable()) {
    if (method !== 'GET' || STREAMS.includes(pattern)) continue;
    const values = {};
    for (const p of params(pattern)) values[p] = FIXTURES[pattern]?.[p]?.() ?? ids.asset;
    const r = await request(srv, { path: fill(pattern, values), token: alice });
    const type = r.headers['content-type'] || '';
    const what = `GET ${pattern} (${r.status} ${type})`;
    if (r.status !== 200 || type.startsWith('application/json') || type.startsWith('text/plain')) continue;
    assert.equal(r.headers['x-content-type-options'], 'nosniff', what);
    if (type.startsWith('text/html')) {
      const csp = r.headers['content-security-policy'] || '';
      for (const d of ["default-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"])
        assert.ok(csp.includes(d), `${what}: CSP has ${d}: ${csp}`);
      assert.equal(r.headers['referrer-policy'], 'no-referrer', what);
      checked.page.push(pattern);
    } else if (pattern.startsWith('/v1/assets/')) {
      // an owner's bytes, on our origin: never a document that runs script
      assert.equal(r.headers['content-security-policy'], "default-src 'none'; sandbox", what);
      assert.match(r.headers['content-disposition'] || '', /^(inline|attachment)/, what);
      checked.user.push(pattern);
    } else {
      checked.file.push(pattern);
    }
  }
  // the same bytes through a signed link (GET /v1/store/{key}, no key)
  const link = await request(srv, { method: 'POST', path: `/v1/assets/${ids.asset}/links`, token: alice,
    headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(link.status, 201, link.text);
  const u = new URL(link.json.url);
  // on the S3 store (the suite on PostgreSQL + S3) the link is the bucket's
  // presigned URL, and its headers are the bucket's (s3store.test.mjs)
  assert.equal(u.origin === new URL(srv.url).origin, !S3_URL, link.json.url);
  if (!S3_URL) {
    const signed = await request(srv, { path: u.pathname + u.search, token: null });
    assert.equal(signed.status, 200, signed.text);
    assert.equal(signed.headers['x-content-type-options'], 'nosniff');
    assert.equal(signed.headers['content-security-policy'], "default-src 'none'; sandbox");
    assert.match(signed.headers['content-disposition'] || '', /^(inline|attachment)/);
  }
  assert.deepEqual(checked.page.sort(), ['/', '/play/{id}', '/present/{id}', '/publish', '/watch/{id}'], 'every page was checked');
  // Pages a handler builds, with user text in them: a run's report, the
  // form target's error page.
  const report = await request(srv, { path: `/v1/runs/${ids.run}/report`, token: alice, headers: { accept: 'text/html' } });
  const simulated = await request(srv, { method: 'POST', path: '/simulate/', token: alice, headers: { 'content-type': 'text/plain' }, body: 'x' });
  for (const [what, r, status] of [['report', report, 200], ['simulate', simulated, 400]]) {
    assert.equal(r.status, status, `${what}: ${r.text}`);
    assert.match(r.headers['content-type'], /^text\/html/, what);
    assert.ok((r.headers['content-security-policy'] || '').includes("frame-ancestors 'none'"), what);
    assert.equal(r.headers['x-content-type-options'], 'nosniff', what);
    assert.equal(r.headers['referrer-policy'], 'no-referrer', what);
  }
  assert.deepEqual(checked.user.sort(), ['/v1/assets/{id}/content', '/v1/assets/{id}/renditions/{name}']);
  assert.ok(checked.file.length >= 8, `scripts and styles: ${checked.file}`);
});
