// Webhooks: Standard Webhooks signatures, retries with backoff, delivery
// log, disabling after sustained failure, target policy, owner scoping.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import crypto from 'node:crypto';
import dns from 'node:dns/promises';
import os from 'node:os';
import {
  SLOW, TEST_TIMEOUT as T, TEXT, startServer, api, upload, waitFor, createKey, sleep,
} from './lib.mjs';

/** A receiver that answers with the next status of `plan` (then the last). */
async function receiver(plan) {
  const got = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      res.writeHead(plan[Math.min(got.length - 1, plan.length - 1)]);
      res.end('ok');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { got, url: `http://127.0.0.1:${server.address().port}/hook`, close: () => server.close() };
}

function verify(secret, h, body) {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const mac = crypto.createHmac('sha256', key).update(`${h['webhook-id']}.${h['webhook-timestamp']}.${body}`).digest('base64');
  return h['webhook-signature'].split(' ').includes(`v1,${mac}`);
}

function hook(srv, body, token = srv.token) {
  return api(srv, 'POST', '/v1/webhooks', { token, headers: ['Content-Type: application/json'], args: ['--data-binary', '@-'], input: typeof body === 'string' ? body : JSON.stringify(body) });
}

test('a host name that resolves to loopback is refused at connect time, after DNS', { timeout: T }, async (t) => {
  // Debian maps the machine's own name to 127.0.x.1 in /etc/hosts.
  const name = os.hostname();
  const { address } = await dns.lookup(name, { family: 4 }).catch(() => ({}));
  if (!address?.startsWith('127.')) return t.skip(`${name} does not resolve to loopback here`);
  const strict = await startServer();
  servers.push(strict);
  const sneaky = await hook(strict, { url: `http://${name}:9/x`, events: ['asset.created'] });
  assert.equal(sneaky.status, 201, sneaky.text);
  await upload(strict, { data: TEXT, filename: 'y.txt' });
  let d;
  await waitFor(async () => {
    d = (await api(strict, 'GET', `/v1/webhooks/${sneaky.json.id}/deliveries`)).json.items[0];
    return d?.attempts >= 1;
  }, { timeoutMs: 10000 * SLOW, what: 'a refused attempt' });
  assert.equal(d.last_error, 'the target address is loopback or link-local');
  assert.equal(d.last_status, null);
});

const servers = [];
after(async () => { for (const s of servers) await s.stop(); });
async function server(args = []) {
  const s = await startServer({ args: ['--webhook-allow-local', '1', '--webhook-retry-ms', '300', ...args] });
  servers.push(s);
  return s;
}

test('a signed delivery is retried after a 500 and stops after a 200', { timeout: T }, async () => {
  const srv = await server();
  const rx = await receiver([500, 200]);
  try {
    const made = await hook(srv, { url: rx.url, events: ['asset.created'] });
    assert.equal(made.status, 201, made.text);
    assert.match(made.json.id, /^wh_/);
    assert.match(made.json.secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    assert.deepEqual(made.json.events, ['asset.created']);
    const a = await upload(srv, { data: TEXT, filename: 'hooked.txt' });
    await waitFor(() => rx.got.length >= 2, { timeoutMs: 15000 * SLOW, what: 'a retry after the 500' });
    // The 200 is recorded as delivered: from then on no retry is scheduled.
    await waitFor(async () => (await api(srv, 'GET', `/v1/webhooks/${made.json.id}/deliveries`)).json.items[0]?.state === 'delivered',
      { what: 'the delivery recorded as delivered' });
    assert.equal(rx.got.length, 2, 'no delivery after the 200');
    const [first, second] = rx.got;
    for (const r of rx.got) {
      assert.ok(verify(made.json.secret, r.headers, r.body), 'webhook-signature verifies');
      assert.equal(r.headers['content-type'], 'application/json');
      assert.ok(Math.abs(Number(r.headers['webhook-timestamp']) - Date.now() / 1000) < 60);
    }
    assert.equal(first.headers['webhook-id'], second.headers['webhook-id'], 'same id on a retry');
    assert.equal(first.body, second.body, 'same body on a retry');
    assert.ok(second.at - first.at >= 250, 'backoff between attempts');
    const payload = JSON.parse(first.body);
    assert.equal(payload.type, 'asset.created');
    assert.equal(payload.data.id, a.json.id);
    assert.match(payload.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // A wrong secret does not verify (the check above can fail).
    assert.ok(!verify('whsec_' + Buffer.alloc(32).toString('base64'), first.headers, first.body));

    const d = await api(srv, 'GET', `/v1/webhooks/${made.json.id}/deliveries`);
    assert.equal(d.status, 200);
    assert.equal(d.json.items.length, 1);
    const item = d.json.items[0];
    assert.equal(item.id, first.headers['webhook-id']);
    assert.equal(item.state, 'delivered');
    assert.equal(item.attempts, 2);
    assert.equal(item.last_status, 200);
    assert.equal(item.type, 'asset.created');
    assert.ok(item.finished);
  } finally { rx.close(); }
});

test('only subscribed types are delivered; events before registration are not', { timeout: T }, async () => {
  const srv = await server();
  const rx = await receiver([204]);
  try {
    await upload(srv, { data: TEXT, filename: 'before.txt' });
    const made = await hook(srv, { url: rx.url, events: ['asset.deleted'] });
    const a = await upload(srv, { data: TEXT, filename: 'x.txt' });
    assert.equal((await api(srv, 'DELETE', `/v1/assets/${a.json.id}`)).status, 204);
    await waitFor(() => rx.got.length >= 1, { timeoutMs: 10000 * SLOW, what: 'the delete delivery' });
    // Deliveries are made from the event log in order: once the delete's
    // exists, the earlier upload's event was considered too.  One, then.
    assert.equal((await api(srv, 'GET', `/v1/webhooks/${made.json.id}/deliveries`)).json.items.length, 1);
    assert.deepEqual(rx.got.map((r) => JSON.parse(r.body).type), ['asset.deleted']);
    assert.equal(JSON.parse(rx.got[0].body).data.id, a.json.id);
    assert.equal((await api(srv, 'GET', `/v1/webhooks/${made.json.id}/deliveries`)).json.items[0].state, 'delivered');
  } finally { rx.close(); }
});

test('sustained failure: the delivery fails after the retry window and the endpoint is disabled', { timeout: T }, async () => {
  const srv = await server(['--webhook-retry-window', '1']);
  const rx = await receiver([500]);
  try {
    const made = await hook(srv, { url: rx.url, events: ['asset.created'] });
    await upload(srv, { data: TEXT, filename: 'doomed.txt' });
    let w;
    await waitFor(async () => { w = (await api(srv, 'GET', `/v1/webhooks/${made.json.id}`)).json; return w.disabled; },
      { timeoutMs: 15000 * SLOW, what: 'the endpoint to be disabled' });
    assert.match(w.disabled_reason, /HTTP 500/);
    assert.equal(w.secret, undefined, 'the secret is shown only at creation');
    const d = (await api(srv, 'GET', `/v1/webhooks/${made.json.id}/deliveries`)).json.items[0];
    assert.equal(d.state, 'failed');
    assert.ok(d.attempts >= 2, `attempts ${d.attempts}`);
    assert.equal(d.last_status, 500);
    assert.equal(d.last_error, 'HTTP 500');
    const seen = rx.got.length;
    await upload(srv, { data: TEXT, filename: 'after-disable.txt' });
    await sleep(1000);
    assert.equal(rx.got.length, seen, 'a disabled endpoint gets nothing');
  } finally { rx.close(); }
});

test('targets: loopback refused unless allowed; validation; owner scoping; delete', { timeout: T }, async () => {
  const strict = await startServer();
  servers.push(strict);
  for (const url of ['http://127.0.0.1:9/x', 'http://localhost/x', 'http://[::1]/x', 'http://169.254.169.254/latest']) {
    const r = await hook(strict, { url, events: ['asset.ready'] });
    assert.equal(r.status, 422, url);
    assert.equal(r.json.error.code, 'invalid_webhook');
  }
  // Found by a black-box run: a trailing dot and Debian's IPv6 aliases passed.
  for (const url of ['http://127.1:9/x', 'http://[::ffff:127.0.0.1]/x', 'http://0.0.0.0/x',
    'http://localhost./x', 'http://LOCALHOST../x', 'http://ip6-localhost/x', 'http://ip6-loopback:80/x',
    'http://a.localhost./x', 'http://2130706433/x', 'http://0x7f.1/x']) {
    assert.equal((await hook(strict, { url, events: ['asset.ready'] })).status, 422, url);
  }
  const bad = [
    ['{"url":', 400, 'invalid_json'],
    ['[]', 400, 'invalid_json'],
    [{ url: 'ftp://example.com/x', events: ['asset.ready'] }, 422, 'invalid_webhook'],
    [{ url: 'https://example.com/x', events: [] }, 422, 'invalid_webhook'],
    [{ url: 'https://example.com/x', events: ['asset.exploded'] }, 422, 'invalid_webhook'],
    [{ events: ['asset.ready'] }, 422, 'invalid_webhook'],
  ];
  for (const [body, status, code] of bad) {
    const r = await hook(strict, body);
    assert.equal(r.status, status, `${JSON.stringify(body)}: ${r.text}`);
    assert.equal(r.json.error.code, code);
  }
  const ok = await hook(strict, { url: 'https://example.com/x', events: ['asset.ready', 'asset.failed'] });
  assert.equal(ok.status, 201, ok.text);
  const bob = await createKey(strict.dataDir, 'bob', 'bob');
  assert.equal((await api(strict, 'GET', `/v1/webhooks/${ok.json.id}`, { token: bob })).status, 404);
  assert.equal((await api(strict, 'DELETE', `/v1/webhooks/${ok.json.id}`, { token: bob })).status, 404);
  assert.equal((await api(strict, 'GET', '/v1/webhooks', { token: bob })).json.items.length, 0);
  const mine = (await api(strict, 'GET', '/v1/webhooks')).json.items.map((x) => x.id);
  assert.ok(mine.includes(ok.json.id));
  assert.equal((await api(strict, 'DELETE', `/v1/webhooks/${ok.json.id}`)).status, 204);
  assert.equal((await api(strict, 'GET', `/v1/webhooks/${ok.json.id}`)).status, 404);
  assert.equal((await api(strict, 'GET', `/v1/webhooks/${ok.json.id}/deliveries`)).status, 404);
});
