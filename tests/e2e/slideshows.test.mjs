// The original slideshow API: upload, public JSON, control by token,
// WebSocket listeners (late joiners get the current slide first).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import WebSocket from 'ws';
import { CORPUS, SANITIZED, SLOW, TEST_TIMEOUT as T, TEXT, startServer, api, curl, waitFor, createKey } from './lib.mjs';

const DECK = path.join(CORPUS, 'pdf', 'slides_context_bachotex2018_45p.pdf');
let srv;
before(async () => { srv = await startServer({ workers: 1 }); });
after(async () => { await srv?.stop(); });

function uploadShow(file, token = srv.token) {
  return curl(['-X', 'POST', ...(token ? ['-H', `Authorization: Bearer ${token}`] : []), '-F', `file=@${file}`, `${srv.url}/api/v1/slideshow/upload`]);
}

function control(id, body, token) {
  return curl(['-X', 'POST', ...(token ? ['-H', `Authorization: Bearer ${token}`] : []), '--data-binary', '@-', `${srv.url}/api/v1/slideshow/${id}/control`], { input: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)) });
}

const show = async (id) => (await api(srv, 'GET', `/api/v1/slideshow/${id}.json`, { token: null }));

function listen(id, alias = 'listen') {
  const ws = new WebSocket(`${srv.url.replace('http', 'ws')}/api/v1/slideshow/${id}/${alias}`);
  const messages = [];
  ws.on('message', (d) => messages.push(JSON.parse(d.toString())));
  ws.on('error', () => {});
  const open = new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('unexpected-response', (req, res) => { res.resume(); reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })); });
    ws.once('error', reject);
  });
  return { ws, messages, open };
}

let deck;   // {id, token}, READY after the first test

test('upload: 200 with the original fields; PENDING -> READY with one slide per page', { timeout: T * 2 }, async () => {
  const r = await uploadShow(DECK);
  assert.equal(r.status, 200, r.text);
  const j = r.json;
  assert.match(j.id, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(j.status, 'PENDING');
  assert.equal(j.current, 0);
  assert.match(j.created, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d -0000$/);
  assert.deepEqual(j.slides, []);
  assert.equal(j._links.self.href, `${srv.url}/api/v1/slideshow/${j.id}.json`);
  assert.match(j.control_token, /^ct_[A-Za-z0-9_-]{43}$/);
  deck = { id: j.id, token: j.control_token };
  let s;
  await waitFor(async () => { s = (await show(j.id)).json; return s.status === 'READY' || s.status === 'ERROR'; },
    { timeoutMs: 60000 * SLOW, intervalMs: 200, what: 'READY' });
  assert.equal(s.status, 'READY', JSON.stringify(s));
  assert.equal(s.slides.length, 45);
  assert.equal(s.slides[1], `${srv.url}/api/v1/slideshow/${j.id}/slide/002.jpg`);
  assert.equal(s.control_token, undefined, 'the token is only in the upload answer');
  assert.equal(s._links.websocket.href, `${srv.url.replace('http', 'ws')}/api/v1/slideshow/${j.id}/listen`);
  const slide = await curl([s.slides[44]]);
  assert.equal(slide.status, 200);
  assert.equal(slide.headers['content-type'], 'image/jpeg');
  // The same slideshow is an asset on /v1, its slides as renditions.
  const a = (await api(srv, 'GET', `/v1/assets/${j.id}`)).json;
  assert.equal(a.kind, 'pdf');
  assert.equal(a.renditions.length, 90);
});

test('upload rules: a key is needed, one file part, documents only', { timeout: T }, async () => {
  assert.equal((await uploadShow(DECK, null)).status, 401);
  const txt = path.join(srv.dataDir, 'notes.txt');
  (await import('node:fs')).writeFileSync(txt, TEXT);
  const r = await uploadShow(txt);
  assert.equal(r.status, 415, r.text);
  assert.equal(r.json.error.code, 'unsupported_media_type');
  const raw = await curl(['-X', 'POST', '-H', `Authorization: Bearer ${srv.token}`, '--data-binary', `@${DECK}`, `${srv.url}/api/v1/slideshow/upload`]);
  assert.equal(raw.status, 400);
  assert.equal(raw.json.error.code, 'invalid_multipart');
});

test('control: validation, tokens, statuses', { timeout: T }, async () => {
  const { id, token } = deck;
  const ok = await control(id, { current: 3 }, token);
  assert.equal(ok.status, 200, ok.text);
  assert.deepEqual(Object.keys(ok.json).sort(), ['current', 'id', 'updated']);
  assert.equal(ok.json.current, 3);
  assert.equal((await show(id)).json.current, 3);
  const cases = [
    [{ current: -1 }, token, 400], [{ current: 45 }, token, 400], [{ current: 1.5 }, token, 400],
    [{ current: '2' }, token, 400], ['not json', token, 400], [{ current: 2 }, 'ct_wrong', 403],
    [{ current: 2 }, null, 401],
  ];
  for (const [body, tok, status] of cases) {
    const r = await control(id, body, tok);
    assert.equal(r.status, status, `${JSON.stringify(body)} ${tok}: ${r.text}`);
    assert.ok(r.json.error.code, 'JSON error');
  }
  assert.equal((await control('AAAAAAAAAAAAAAAAAAAAAA', { current: 1 }, token)).status, 404);
  // The owner's API key works; another owner's does not.
  assert.equal((await control(id, { current: 4 }, srv.token)).status, 200);
  const bob = await createKey(srv.dataDir, 'bob', 'bob');
  assert.equal((await control(id, { current: 5 }, bob)).status, 403);
});

test('control before the slides exist: 409', { timeout: T }, async () => {
  const idle = await startServer({ workers: 0 });   // nothing renders: it stays PENDING
  try {
    const up = await curl(['-X', 'POST', '-H', `Authorization: Bearer ${idle.token}`, '-F', `file=@${DECK}`, `${idle.url}/api/v1/slideshow/upload`]);
    assert.equal(up.json.status, 'PENDING');
    const r = await curl(['-X', 'POST', '-H', `Authorization: Bearer ${up.json.control_token}`, '--data-binary', '{"current":0}', `${idle.url}/api/v1/slideshow/${up.json.id}/control`]);
    assert.equal(r.status, 409, r.text);
    assert.equal(r.json.error.code, 'not_ready');
  } finally { await idle.stop(); }
});

test('listeners: current state on connect, then every change in order; late joiners; unknown id 404', { timeout: T * 2 }, async () => {
  const { id, token } = deck;
  assert.equal((await control(id, { current: 7 }, token)).status, 200);
  const N = SANITIZED ? 200 : 1000;
  const listeners = [];
  for (let i = 0; i < N; i += 100) {
    const batch = Array.from({ length: Math.min(100, N - i) }, (_, k) => listen(id, (i + k) % 2 ? 'updates' : 'listen'));
    await Promise.all(batch.map((l) => l.open));
    listeners.push(...batch);
  }
  await waitFor(() => listeners.every((l) => l.messages.length >= 1), { timeoutMs: 20000 * SLOW, what: 'the current state' });
  for (const l of listeners) assert.equal(l.messages[0].current, 7, 'connect: the current slide first');
  const sequence = [8, 9, 10, 2, 44];
  for (const n of sequence) assert.equal((await control(id, { current: n }, token)).status, 200);
  await waitFor(() => listeners.every((l) => l.messages.length >= 1 + sequence.length),
    { timeoutMs: 30000 * SLOW, what: () => `every listener to get ${sequence.length} changes` });
  for (const l of listeners) {
    assert.deepEqual(l.messages.slice(1).map((m) => m.current), sequence, 'in order, none missing');
    assert.deepEqual(Object.keys(l.messages[1]).sort(), ['current', 'id', 'updated']);
  }
  for (const l of listeners) l.ws.terminate();
  // A late joiner sees the current slide at once.
  const late = listen(id);
  await late.open;
  await waitFor(() => late.messages.length >= 1);
  assert.equal(late.messages[0].current, 44);
  late.ws.close();
  await assert.rejects(listen('AAAAAAAAAAAAAAAAAAAAAA').open, (e) => e.status === 404);
  // Control changes are events in the owner's log too.
  const ev = await curl(['-N', '--max-time', '2', '-H', `Authorization: Bearer ${srv.token}`, '-H', 'Accept: text/event-stream', `${srv.url}/v1/events?since=0&types=slideshow.control`]);
  assert.match(ev.text, /event: slideshow\.control/);
});
