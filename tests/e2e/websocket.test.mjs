// Live events over WebSocket (npm `ws`): order, replay, token auth,
// 2,000 listeners on one broadcast, slow consumers, shutdown.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import WebSocket from 'ws';
import {
  CORPUS, SANITIZED, SLOW, TEST_TIMEOUT as T, TEXT, startServer, api, upload, uploadRaw, waitFor, createKey, scrape, metricSum,
} from './lib.mjs';

const PHOTO = path.join(CORPUS, 'photos', '30_orig_RainDrops_1920x1200.jpg');

/** Opens a WebSocket to /v1/events; collects parsed messages. */
function listen(srv, query = '', { token = srv.token, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  const ws = new WebSocket(`${srv.url.replace('http', 'ws')}/v1/events${query}`, { headers: h });
  const messages = [];
  const result = { ws, messages, closeCode: null, status: null };
  result.open = new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('unexpected-response', (req, res) => { result.status = res.statusCode; res.resume(); reject(Object.assign(new Error(`HTTP ${res.statusCode} for ${query}`), { status: res.statusCode })); });
    ws.once('error', reject);
  });
  result.closed = new Promise((resolve) => ws.once('close', (code) => { result.closeCode = code; resolve(code); }));
  ws.on('message', (data) => messages.push(JSON.parse(data.toString())));
  ws.on('error', () => {});
  result.types = (assetId) => messages.filter((m) => !assetId || m.asset_id === assetId).map((m) => m.type);
  result.until = (pred, what = 'messages') => waitFor(() => pred(messages), { timeoutMs: 20000 * SLOW, intervalMs: 20, what });
  return result;
}

let srv;
// Two renditions, so exactly one job.progress (after the first) is certain:
// the worker reports progress at most every PROGRESS_EVERY_MS.
before(async () => {
  srv = await startServer({ workers: 1, args: ['--max-connections', '6000', '--renditions', 'thumb:256:jpeg:80,preview:1024:webp:80'] });
});
after(async () => { await srv?.stop(); });

test('subscribed before an upload: created -> processing -> progress -> ready, as JSON text frames', { timeout: T }, async () => {
  const l = listen(srv);
  await l.open;
  const r = await upload(srv, { file: PHOTO, filename: 'ws.jpg' });
  const id = r.json.id;
  await l.until(() => l.types(id).includes('asset.ready'), 'asset.ready');
  assert.deepEqual(l.types(id), ['asset.created', 'asset.processing', 'job.progress', 'asset.ready']);
  for (const m of l.messages) {
    assert.deepEqual(Object.keys(m).sort(), ['asset_id', 'at', 'data', 'id', 'type']);
  }
  const ready = l.messages.find((m) => m.type === 'asset.ready');
  assert.equal(ready.data.status, 'ready');
  assert.equal(ready.data.renditions.length, 2);
  l.ws.close(1000);
  assert.equal(await l.closed, 1000);
});

test('reconnecting with since gets exactly the missed events; token auth; errors before the upgrade', { timeout: T }, async () => {
  const first = listen(srv);
  await first.open;
  const a = await upload(srv, { data: TEXT, filename: 'a.txt' });
  await first.until(() => first.types(a.json.id).length === 1);
  const cursor = first.messages.at(-1).id;
  first.ws.close();
  await first.closed;
  const missed = [];
  for (let i = 0; i < 5; i++) missed.push((await upload(srv, { data: TEXT, filename: `m${i}.txt` })).json.id);

  const tok = await api(srv, 'POST', '/v1/events/token');
  const again = listen(srv, `?since=${cursor}&token=${encodeURIComponent(tok.json.token)}`, { token: null });
  await again.open;
  await again.until(() => again.messages.length >= 5, 'the replay');
  const live = await upload(srv, { data: TEXT, filename: 'live.txt' });
  await again.until(() => again.types(live.json.id).length === 1, 'live after the replay');
  assert.deepEqual(again.messages.map((m) => m.asset_id), [...missed, live.json.id], 'exactly the missed ones, then live');
  assert.equal(again.messages[0].id, cursor + 1);
  again.ws.close();

  const bob = await createKey(srv.dataDir, 'bob', 'bob');
  const cases = [
    ['', { token: null }, 401],
    ['?token=forged.token', { token: null }, 401],
    [`?asset=${a.json.id}`, { token: bob }, 404],
    ['?since=x', {}, 400],
  ];
  for (const [query, opts, status] of cases) {
    await assert.rejects(listen(srv, query, opts).open, (e) => e.status === status, query);
  }
  // bob's stream stays silent while alice uploads: once bob's own upload
  // reaches him, anything of alice's would have come first (one ordered log).
  const quiet = listen(srv, '', { token: bob });
  await quiet.open;
  const mine = await upload(srv, { data: TEXT, filename: 'alice-only.txt' });
  const watcher = listen(srv, `?asset=${mine.json.id}`);
  await watcher.open;
  await watcher.until(() => watcher.messages.length >= 1, 'snapshot');
  assert.equal(watcher.messages[0].type, 'snapshot');
  const his = await upload(srv, { data: TEXT, filename: 'bob-marker.txt', token: bob });
  await quiet.until(() => quiet.types(his.json.id).length >= 1, "bob's own event");
  assert.deepEqual(quiet.messages.map((m) => m.asset_id), [his.json.id], 'bob saw only his own event');
  quiet.ws.close(); watcher.ws.close();
});

test('2,000 concurrent WebSocket clients all receive one broadcast', { timeout: T * 2 }, async () => {
  const N = SANITIZED ? 500 : 2000;
  const clients = [];
  for (let i = 0; i < N; i += 100) {
    const batch = Array.from({ length: Math.min(100, N - i) }, () => listen(srv, '?types=asset.created'));
    await Promise.all(batch.map((c) => c.open));
    clients.push(...batch);
  }
  const r = await upload(srv, { data: TEXT, filename: 'broadcast.txt' });
  await waitFor(() => clients.every((c) => c.messages.some((m) => m.asset_id === r.json.id)),
    { timeoutMs: 30000 * SLOW, intervalMs: 50, what: () => `all ${N} clients to get the event (${clients.filter((c) => c.messages.some((m) => m.asset_id === r.json.id)).length} did)` });
  for (const c of clients) c.ws.terminate();
  await Promise.all(clients.map((c) => c.closed));
});

test('a client that never reads is disconnected (1013) and server memory stays bounded', { timeout: T * 3 }, async () => {
  // 64 KiB: small enough to fill quickly, big enough that the healthy
  // client below keeps up even on a loaded machine.  The server keeps the
  // 1013 close frame queued for --ws-close-grace while the client does not
  // read: longer than this test may run, so however slow the machine, the
  // client reads again within it.
  const grace = String(Math.ceil((T * 3) / 1000));
  const s = await startServer({ args: ['--stream-queue', '64K', '--ws-close-grace', grace] });
  try {
    // A raw socket that completes the handshake and then never reads.
    const sock = net.connect(s.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write(`GET /v1/events HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer ${s.token}\r\n\r\n`);
    const head = await new Promise((r) => sock.once('data', (d) => r(d.toString('latin1'))));
    assert.match(head, /^HTTP\/1\.1 101 /);
    sock.pause();
    const reader = listen(s);   // a healthy client alongside
    await reader.open;
    const rssBefore = rss(s.pid);
    const long = 'x'.repeat(200);
    let sent = 0;
    // Each upload is one event of ~900 bytes; the kernel's socket buffers
    // take some (up to ~4 MiB) before the server's own 64 KiB queue fills.
    // The client sends an unsolicited pong (a heartbeat, RFC 6455 5.5.3)
    // after each batch: a client the server hears nothing from is dropped
    // after ping_interval + pong_timeout (40 s) without a close frame, and a
    // loaded machine may take longer than that to fill the buffers.
    const heartbeat = Buffer.from([0x8a, 0x80, 1, 2, 3, 4]);
    const deadline = Date.now() + T * 2;   // a rate bound only: the test's timeout is T * 3
    while (Date.now() < deadline && (await dropped(s)) === 0) {
      await Promise.all(Array.from({ length: 25 }, (_, i) => uploadRaw(s, TEXT, { filename: `${long}${sent + i}.txt` })));
      sent += 25;
      sock.write(heartbeat);
    }
    assert.ok(await dropped(s) >= 1, `the slow client was not cut off after ${sent} events`);
    // The healthy client got everything, and memory did not follow the backlog.
    await reader.until(() => reader.messages.length >= sent, 'the healthy client');
    assert.equal(reader.closeCode, null, 'the healthy client was cut off too');
    assert.equal(await dropped(s), 1);
    const grown = rss(s.pid) - rssBefore;
    // AddressSanitizer keeps freed memory in quarantine (256 MiB by default).
    const bound = (SANITIZED ? 320 : 32) * 1024;
    assert.ok(grown < bound, `server RSS grew ${grown} KiB over ${sent} events`);
    // Reading now drains what the kernel held, then the close frame: 1013.
    assert.equal(await readUntilClose(sock), 1013, 'close code 1013 (try again later)');
    sock.destroy();
    reader.ws.close();
  } finally { await s.stop(); }
});

test('SIGTERM closes WebSockets with 1001', { timeout: T }, async () => {
  const s = await startServer();
  const l = listen(s);
  await l.open;
  await s.stop();
  assert.equal(await l.closed, 1001);
});

function rss(pid) {
  return Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
}

async function dropped(s) {
  return metricSum((await scrape(s)).metrics, 'assetd_event_subscribers_dropped_total');
}

/** Resumes sock and reads until a close frame is complete or the server
 *  closes the connection (the test's own timeout bounds the wait).
 *  -> the close frame's status code, or null if none came. */
function readUntilClose(sock) {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const done = (code) => { sock.removeAllListeners('data'); resolve(code); };
    sock.on('data', (d) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      // Consume complete frames; stop at the close frame.
      for (;;) {
        const f = parseFrame(buf);
        if (!f) break;
        buf = buf.subarray(f.size);
        if (f.opcode === 8) { done(f.code); return; }
      }
    });
    sock.on('close', () => done(null));
    sock.on('end', () => done(null));
    sock.resume();
  });
}

/** One complete unmasked server frame at the start of buf, or null. */
function parseFrame(buf) {
  if (buf.length < 2) return null;
  let len = buf[1] & 0x7f, off = 2;
  if (len === 126) { if (buf.length < 4) return null; len = buf.readUInt16BE(2); off = 4; }
  else if (len === 127) { if (buf.length < 10) return null; len = Number(buf.readBigUInt64BE(2)); off = 10; }
  if (buf.length < off + len) return null;
  const opcode = buf[0] & 0x0f;
  return { opcode, size: off + len, code: opcode === 8 && len >= 2 ? buf.readUInt16BE(off) : null };
}
