// Live events over Server-Sent Events: order, replay, snapshot, filters,
// auth and owner isolation, restarts.  (The WebSocket transport has its own
// file; both share the hub.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import fs from 'node:fs';
import crypto from 'node:crypto';
import {
  CORPUS, SLOW, TEST_TIMEOUT as T, TEXT, startServer, api, upload, waitFor, createKey, sleep, makeTempDir, removeDir,
} from './lib.mjs';

const PHOTO = path.join(CORPUS, 'photos', '30_orig_RainDrops_1920x1200.jpg');

/** An SSE connection parsed into events as they arrive. */
export function sse(srv, query = '', { token = srv.token, headers = {} } = {}) {
  const events = [];
  const h = { accept: 'text/event-stream', ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  let res, req;
  const ready = new Promise((resolve, reject) => {
    req = http.get(`${srv.url}/v1/events${query}`, { headers: h }, (r) => {
      res = r;
      let buf = '';
      r.setEncoding('utf8');
      r.on('data', (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = {};
          for (const line of block.split('\n')) {
            const m = line.match(/^(id|event|data): (.*)$/);
            if (m) ev[m[1]] = m[2];
          }
          if (ev.data) events.push({ ...ev, json: JSON.parse(ev.data) });
        }
      });
      r.on('error', () => {});
      resolve(r);
    });
    req.on('error', reject);
  });
  return {
    events, ready,
    get status() { return res?.statusCode; },
    get ended() { return res?.complete || res?.destroyed; },
    close() { req.destroy(); },
    types(assetId) { return events.filter((e) => !assetId || e.json.asset_id === assetId).map((e) => e.json.type); },
    async until(pred, what = 'events') {
      await waitFor(() => pred(events), { timeoutMs: 20000 * SLOW, intervalMs: 20, what });
    },
  };
}

let srv;
// Two renditions, so exactly one job.progress (after the first) is certain:
// the worker reports progress at most every PROGRESS_EVERY_MS.
const TWO_RENDITIONS = ['--renditions', 'thumb:256:jpeg:80,preview:1024:webp:80'];
before(async () => { srv = await startServer({ workers: 1, args: TWO_RENDITIONS }); });
after(async () => { await srv?.stop(); });

test('a subscriber sees created -> processing -> ready in order, with the asset JSON', { timeout: T }, async () => {
  const s = sse(srv);
  await s.ready;
  assert.equal(s.status, 200);
  const r = await upload(srv, { file: PHOTO, filename: 'rain.jpg' });
  assert.equal(r.status, 201, r.text);
  const id = r.json.id;
  await s.until(() => s.types(id).includes('asset.ready'), 'asset.ready');
  // Two renditions: progress is reported after the first (0.5), the end by ready.
  assert.deepEqual(s.types(id), ['asset.created', 'asset.processing', 'job.progress', 'asset.ready']);
  const progress = s.events.find((e) => e.json.type === 'job.progress' && e.json.asset_id === id).json;
  assert.equal(progress.data.progress, 0.5);
  assert.equal(progress.data.type, 'image');
  assert.match(progress.data.job_id, /^[A-Za-z0-9_-]{22}$/);
  const mine = s.events.filter((e) => e.json.asset_id === id && e.json.type.startsWith('asset.'));
  for (const e of mine) {
    assert.equal(String(e.json.id), e.id, 'SSE id is the event id');
    assert.equal(e.event, e.json.type);
    assert.equal(e.json.data.id, id);
    assert.match(e.json.at, /^\d{4}-\d\d-\d\dT/);
  }
  assert.ok(mine[0].json.id < mine[1].json.id && mine[1].json.id < mine[2].json.id);
  assert.equal(mine[2].json.data.status, 'ready');
  assert.equal(mine[2].json.data.renditions.length, 2);
  s.close();
});

test('since= and Last-Event-ID replay exactly the missed events, then go live', { timeout: T }, async () => {
  const first = sse(srv);
  await first.ready;
  const a = await upload(srv, { data: TEXT, filename: 'a.txt' });
  await first.until(() => first.types(a.json.id).length === 1);
  const cursor = Number(first.events.at(-1).id);
  first.close();
  // Missed while away: one more upload and a delete.
  const b = await upload(srv, { data: TEXT, filename: 'b.txt' });
  assert.equal((await api(srv, 'DELETE', `/v1/assets/${a.json.id}`)).status, 204);
  for (const how of ['query', 'header']) {
    const s = how === 'query' ? sse(srv, `?since=${cursor}`) : sse(srv, '', { headers: { 'last-event-id': String(cursor) } });
    await s.ready;
    await s.until(() => s.events.length >= 2, 'replay');
    const c = await upload(srv, { data: TEXT, filename: `c-${how}.txt` });
    await s.until(() => s.types(c.json.id).includes('asset.created'), 'live after replay');
    const got = s.events.map((e) => [e.json.type, e.json.asset_id]);
    assert.deepEqual(got.slice(0, 2), [['asset.created', b.json.id], ['asset.deleted', a.json.id]], how);
    const ids = s.events.map((e) => e.json.id);
    assert.deepEqual(ids, [...new Set(ids)].sort((x, y) => x - y), `${how}: increasing, no duplicate`);
    assert.ok(ids[0] === cursor + 1, `${how}: no gap after since`);
    s.close();
  }
});

test('?asset= starts with a snapshot whose id is a valid cursor; types= filters', { timeout: T }, async () => {
  const r = await upload(srv, { file: PHOTO, filename: 'snap.jpg' });
  const id = r.json.id;
  await waitFor(async () => (await api(srv, 'GET', `/v1/assets/${id}`)).json.status === 'ready', { timeoutMs: 30000 * SLOW });
  const s = sse(srv, `?asset=${id}`);
  await s.ready;
  await s.until(() => s.events.length >= 1, 'snapshot');
  const snap = s.events[0].json;
  assert.equal(snap.type, 'snapshot');
  assert.equal(snap.data.status, 'ready');
  assert.ok(snap.id >= 3);
  const other = await upload(srv, { data: TEXT, filename: 'other.txt' });
  assert.equal((await api(srv, 'DELETE', `/v1/assets/${id}`)).status, 204);
  await s.until(() => s.types().includes('asset.deleted'), 'delete event');
  assert.ok(!s.types(other.json.id).length, 'only the subscribed asset');
  assert.ok(s.events[1].json.id > snap.id);
  s.close();

  // Two uploads and deletes: by the second delete, any other type the
  // filter let through would have arrived (events come in order).
  const only = sse(srv, '?types=asset.deleted');
  await only.ready;
  const x = await upload(srv, { data: TEXT, filename: 'x.txt' });
  await api(srv, 'DELETE', `/v1/assets/${x.json.id}`);
  const y = await upload(srv, { data: TEXT, filename: 'y.txt' });
  await api(srv, 'DELETE', `/v1/assets/${y.json.id}`);
  await only.until(() => only.types(y.json.id).length >= 1, 'the second delete');
  assert.deepEqual(only.events.map((e) => [e.json.type, e.json.asset_id]),
    [['asset.deleted', x.json.id], ['asset.deleted', y.json.id]]);
  only.close();
});

test('auth: API key or signed token; owners never see each other; bad requests are JSON errors', { timeout: T }, async () => {
  const bobKey = await createKey(srv.dataDir, 'bob', 'bob');
  const bob = sse(srv, '', { token: bobKey });
  await bob.ready;
  const alice = sse(srv);
  await alice.ready;
  const mine = await upload(srv, { data: TEXT, filename: 'alice.txt' });
  await alice.until(() => alice.types(mine.json.id).length === 1);
  // Once bob's own upload reaches him, alice's would have come first.
  const his = await upload(srv, { data: TEXT, filename: 'bob.txt', token: bobKey });
  await bob.until(() => bob.types(his.json.id).length === 1, "bob's own event");
  assert.deepEqual(bob.events.map((e) => e.json.asset_id), [his.json.id], 'bob saw alice\'s event');
  assert.ok(!alice.types(his.json.id).length, 'alice saw bob\'s event');
  bob.close(); alice.close();

  // Browser path: a token in the URL, no header.
  const tok = await api(srv, 'POST', '/v1/events/token?ttl=60');
  assert.equal(tok.status, 201, tok.text);
  assert.ok(Date.parse(tok.json.expires) > Date.now());
  const viaToken = sse(srv, `?token=${encodeURIComponent(tok.json.token)}`, { token: null });
  await viaToken.ready;
  assert.equal(viaToken.status, 200);
  const t2 = await upload(srv, { data: TEXT, filename: 'tok.txt' });
  await viaToken.until(() => viaToken.types(t2.json.id).length === 1);
  viaToken.close();

  const cases = [
    ['', { token: null }, 401, 'unauthorized'],
    [`?token=${tok.json.token.slice(0, -2)}xx`, { token: null }, 401, 'unauthorized'],
    ['', { token: 'ak_' + 'x'.repeat(43) }, 401, 'unauthorized'],
    [`?asset=${mine.json.id}`, { token: bobKey }, 404, 'not_found'],
    ['?asset=nope', {}, 404, 'not_found'],
    ['?since=-1', {}, 400, 'invalid_parameter'],
    ['?types=' + Array(10).fill('a').join(','), {}, 400, 'invalid_parameter'],
  ];
  for (const [q, opts, status, code] of cases) {
    const r = await api(srv, 'GET', `/v1/events${q}`, { token: opts.token === undefined ? srv.token : opts.token, headers: ['Accept: text/event-stream'] });
    assert.equal(r.status, status, `${q}: ${r.text}`);
    assert.equal(r.json.error.code, code, q);
  }
  const plain = await api(srv, 'GET', '/v1/events');
  assert.equal(plain.status, 406);
  assert.equal((await api(srv, 'POST', '/v1/events/token?ttl=99999')).status, 400);
  assert.equal((await api(srv, 'POST', '/v1/events/token', { token: null })).status, 401);
});

test('replay survives a restart; trimmed history says replay.incomplete', { timeout: T }, async () => {
  const dataDir = makeTempDir();
  try {
    let s1 = await startServer({ dataDir });
    const a = await upload(s1, { data: TEXT, filename: 'before-restart.txt' });
    const token = s1.token;
    await s1.stop();
    s1 = await startServer({ dataDir });
    const s = sse(s1, '?since=0', { token });
    await s.ready;
    await s.until(() => s.events.length >= 1);
    assert.equal(s.events[0].json.asset_id, a.json.id);
    assert.equal(s.events[0].json.id, 1);
    s.close();
    await s1.stop();
    await sleep(1100);
    // Events older than 1 s are trimmed at start-up.
    const s2 = await startServer({ dataDir, args: ['--event-retention', '1'] });
    const r = sse(s2, '?since=0', { token });
    await r.ready;
    const b = await upload(s2, { data: TEXT, filename: 'after-trim.txt', token });
    await r.until(() => r.types(b.json.id).length === 1);
    assert.equal(r.events[0].json.type, 'replay.incomplete');
    assert.equal(r.events[0].json.since, 0);
    assert.ok(r.events[0].json.oldest > 1);
    assert.equal(r.events[0].id, undefined, 'no id: it is not an event of the log');
    r.close();
    await s2.stop();
  } finally {
    removeDir(dataDir);
  }
});

test('the token secret lives in the database: DATA/secret from an older assetd is adopted, and tokens still verify once it is gone', { timeout: T }, async () => {
  const dataDir = makeTempDir();
  try {
    const old = crypto.randomBytes(32);
    fs.writeFileSync(path.join(dataDir, 'secret'), old, { mode: 0o600 });
    let s1 = await startServer({ dataDir });
    const tok = await api(s1, 'POST', '/v1/events/token?ttl=300');
    assert.equal(tok.status, 201, tok.text);
    // token = b64url(payload) "." b64url(HMAC-SHA256(secret, payload))
    const [payload, mac] = tok.json.token.split('.');
    assert.equal(mac, crypto.createHmac('sha256', old).update(Buffer.from(payload, 'base64url')).digest('base64url'),
      'signed with the secret the older assetd left');
    const key = s1.token;
    await s1.stop();
    fs.rmSync(path.join(dataDir, 'secret'));
    s1 = await startServer({ dataDir });
    const s = sse(s1, `?token=${encodeURIComponent(tok.json.token)}`, { token: null });
    await s.ready;
    assert.equal(s.status, 200, 'the token made before the restart, with no file left');
    s.close();
    const again = await api(s1, 'POST', '/v1/events/token?ttl=300', { token: key });
    assert.equal(again.json.token.split('.')[1],
      crypto.createHmac('sha256', old).update(Buffer.from(again.json.token.split('.')[0], 'base64url')).digest('base64url'));
    assert.ok(!fs.existsSync(path.join(dataDir, 'secret')), 'no file made again');
    await s1.stop();
  } finally {
    removeDir(dataDir);
  }
});

test('a stream ends cleanly on SIGTERM (the server does not wait for it)', { timeout: T }, async () => {
  // A shutdown timeout far beyond the stop's own limit: had the server
  // waited for the stream, stop() would have had to SIGKILL it.
  const s0 = await startServer({ args: ['--shutdown-timeout', '3600'] });
  const s = sse(s0);
  await s.ready;
  const r = await s0.stop('SIGTERM', 60000);
  assert.ok(!r.timedOut, 'the server waited for the open stream');
  assert.equal(r.code, 0);
  await waitFor(() => s.ended, { what: 'stream end' });
});
