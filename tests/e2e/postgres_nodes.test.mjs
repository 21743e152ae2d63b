// PostgreSQL scale-out (issue #14): several processes on one database and
// one S3 bucket, each with a data directory of its own.  Two serve
// processes (A, B; --workers 0) and two `assetd worker` processes (W1, W2)
// share one database (ASSETD_DB) and one s3rver bucket.  Runs in the suite
// on PostgreSQL (ASSETD_TEST_PG_URL); skipped on SQLite, where one process
// owns a data directory and none of this can happen.
//
// 1. A slideshow controlled through A moves listeners on B (WebSocket and SSE).
// 2. A webhook registered once is delivered once per event, not once per
//    serve process: uploads through A and B, each event's delivery arrives
//    once, and the deliveries API agrees.
// 3. A worker killed (SIGKILL, a crash point) in the middle of a job: its
//    lease runs out and the other worker finishes the job; nothing lost.
// 4. serve A killed (SIGKILL) with clients on it: an SSE client resuming on B
//    with Last-Event-ID, and a WebSocket client with ?since=, get exactly
//    what they missed; A restarted (same directory, same database) serves
//    and replays from the client's cursor again, and its start-up sweep of
//    the shared bucket leaves an upload B has in flight alone.
// 5. Housekeeping run by both at once (each serve's start, then every
//    minute): expired tus uploads are removed once each (one log line, one
//    count, across processes), finished jobs and deliveries past
//    --history-retention go and the counts the processes log add up to
//    what there was.
import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import http from 'node:http';
import readline from 'node:readline';
import WebSocket from 'ws';
import { keysUnder, s3Setup } from './s3servers.mjs';
import { TUS, create, patch } from './tuslib.mjs';
import {
  BIN, PG_URL, SANITIZED, SLOW, TEST_TIMEOUT as T, api, curl, dbEnvFor, makeTempDir, metricSum,
  removeDir, scrape, sha256, startServer, upload, waitFor, within, gradientPng,
  followEvents,
} from './lib.mjs';

const ONLY_PG = PG_URL ? false : 'the suite on PostgreSQL runs it (ASSETD_TEST_PG_URL)';
const LEASE_S = 3;   // --job-lease of the workers: a killed worker's job comes back within seconds

// ---------------------------------------------------------------- helpers

/** psql against the shared database. */
function psql(db, sql) {
  return execFileSync('psql', ['-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-d', db.ASSETD_DB, '-c', sql],
    { encoding: 'utf8', timeout: 30000 }).trim();
}

/** A WebSocket on srv's urlPath: JSON messages as they arrive. */
function wsOpen(srv, urlPath, { token = srv.token } = {}) {
  const ws = new WebSocket(`${srv.url.replace('http', 'ws')}${urlPath}`,
    token ? { headers: { authorization: `Bearer ${token}` } } : {});
  const c = { ws, messages: [], closed: false };
  ws.on('message', (d) => c.messages.push(JSON.parse(d.toString())));
  ws.on('error', () => {});
  ws.on('close', () => { c.closed = true; });
  c.open = new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('unexpected-response', (req, res) => { res.resume(); reject(new Error(`HTTP ${res.statusCode}`)); });
    ws.once('error', reject);
  });
  return c;
}

/** A PDF of n pages, each with a filled rectangle (poppler renders it). */
function makePdf(n) {
  const objs = ['<< /Type /Catalog /Pages 2 0 R >>',
    `<< /Type /Pages /Kids [${Array.from({ length: n }, (_, i) => `${3 + 2 * i} 0 R`).join(' ')}] /Count ${n} >>`];
  for (let i = 0; i < n; i++) {
    const content = `0.${i + 2} 0.3 0.6 rg ${40 + 30 * i} 40 200 120 re f`;
    objs.push(`<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 300] /Contents ${4 + 2 * i} 0 R >>`,
      `<< /Length ${content.length} >>\nstream\n${content}\nendstream`);
  }
  let out = '%PDF-1.4\n';
  const offsets = [];
  objs.forEach((o, i) => { offsets.push(out.length); out += `${i + 1} 0 obj\n${o}\nendobj\n`; });
  const xref = out.length;
  out += `xref\n0 ${objs.length + 1}\n0000000000 65535 f \n`;
  for (const off of offsets) out += `${String(off).padStart(10, '0')} 00000 n \n`;
  out += `trailer\n<< /Size ${objs.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}


/** A webhook receiver that answers 200 to everything and keeps what came. */
async function receiver() {
  const got = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      got.push({ id: req.headers['webhook-id'], body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      res.writeHead(200);
      res.end('ok');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { got, url: `http://127.0.0.1:${server.address().port}/hook`, close: () => { server.closeAllConnections(); server.close(); } };
}

/** A proxy in front of the S3 endpoint that, once armed, holds the answer
 *  to the next single PUT of a blob (the object exists in the bucket; its
 *  uploader has not heard so yet) until release(). */
async function holdingProxy(target) {
  const tu = new URL(target);
  const h = { armed: false };
  let gate = Promise.resolve();
  const server = http.createServer((req, res) => {
    const up = http.request({ host: tu.hostname, port: tu.port, method: req.method, path: req.url, headers: req.headers, agent: false }, (ur) => {
      const pass = () => { res.writeHead(ur.statusCode, ur.headers); ur.pipe(res); };
      if (!(h.armed && req.method === 'PUT' && /\/media\/[A-Za-z0-9_-]{22}$/.test(req.url) && ur.statusCode === 200)) return pass();
      h.armed = false;
      h.onHeld(req.url);
      gate.then(pass);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  h.endpoint = `http://127.0.0.1:${server.address().port}`;
  /** Arms the hold: resolves with the held PUT's path once the bucket has the object. */
  h.arm = () => {
    let open;
    gate = new Promise((r) => { open = r; });
    h.release = () => open();
    h.armed = true;
    return new Promise((r) => { h.onHeld = r; });
  };
  h.close = () => { h.release?.(); server.closeAllConnections(); server.close(); };
  return h;
}

/** `assetd worker` on its own data directory: {proc, lines, exited, stop()}. */
function startWorker(dir, env, args, extraEnv = {}) {
  const proc = spawn(BIN, ['worker', '--data', dir, '--job-lease', String(LEASE_S), ...args],
    { env: { ...process.env, ...env, ...extraEnv }, stdio: ['ignore', 'ignore', 'pipe'] });
  const w = { proc, lines: [], exitInfo: null };
  readline.createInterface({ input: proc.stderr }).on('line', (l) => w.lines.push(l));
  w.exited = new Promise((r) => proc.on('exit', (code, signal) => { w.exitInfo = { code, signal }; r(w.exitInfo); }));
  w.stop = async () => {
    if (w.exitInfo) return w.exitInfo;
    proc.kill('SIGTERM');
    if (await within(w.exited, 20000 * SLOW)) return w.exitInfo;
    proc.kill('SIGKILL');
    return w.exited;
  };
  return w;
}

const logsOf = (servers, msg) => servers.flatMap((s) => s.logs.filter((j) => j.msg === msg));
const noErrors = (s) => s.logs.filter((j) => j.level === 'error');

// ---------------------------------------------------------------- the cluster

describe('two serve processes and two workers on one database and one bucket', { skip: ONLY_PG }, () => {
  let a, b, w1, w2, s3, shared, hold, serveArgs, bArgs, hookRx;
  const dirs = {};
  const retired = [];   // serve processes that were stopped (their logs still count)

  before(async () => {
    for (const k of ['a', 'b', 'w1', 'w2']) dirs[k] = makeTempDir();
    // s3Setup registers its servers' stop on a test context: give it one
    const ctx = { cleanups: [], after(f) { this.cleanups.push(f); } };
    dirs.ctx = ctx;
    s3 = await s3Setup(ctx);
    shared = { ...s3.env, ...dbEnvFor(dirs.a) };
    hold = await holdingProxy(s3.proxy.endpoint);
    serveArgs = [...s3.args, '--webhook-allow-local', '1', '--webhook-retry-ms', '300', '--tus-expiry', '3'];
    // B reaches the bucket through the holding proxy (the same bucket)
    bArgs = serveArgs.map((x) => (x === s3.proxy.endpoint ? hold.endpoint : x));
    a = await startServer({ dataDir: dirs.a, env: shared, args: serveArgs });
    b = await startServer({ dataDir: dirs.b, env: shared, args: bArgs });
    b.token = a.token;   // A made the database's first key
    w1 = startWorker(dirs.w1, shared, s3.args);
    w2 = startWorker(dirs.w2, shared, s3.args);
  });

  after(async () => {
    const results = await Promise.allSettled([a?.stop(), b?.stop(), w1?.stop(), w2?.stop()]);
    hold?.close();
    hookRx?.close();
    for (const f of dirs.ctx?.cleanups.reverse() ?? []) await f();
    for (const k of ['a', 'b', 'w1', 'w2']) removeDir(dirs[k]);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
    // clean exits: a sanitizer report makes the exit code non-zero
    for (const s of [a, b]) s?.checkExit();
    for (const w of [w1, w2]) if (w && w.exitInfo.signal !== 'SIGKILL') assert.equal(w.exitInfo.code, 0, w.lines.slice(-20).join('\n'));
  });

  test('1. a slideshow controlled through A moves listeners connected to B (WebSocket and SSE)', { timeout: T * 2 }, async () => {
    const up = await curl(['-X', 'POST', '-H', `Authorization: Bearer ${a.token}`, '-F', 'file=@-;filename=deck.pdf;type=application/pdf',
      `${a.url}/api/v1/slideshow/upload`], { input: makePdf(3) });
    assert.equal(up.status, 200, up.text);
    const { id, control_token: token } = up.json;
    let s;
    await waitFor(async () => { s = (await api(b, 'GET', `/api/v1/slideshow/${id}.json`, { token: null })).json; return s.status === 'READY' || s.status === 'ERROR'; },
      { timeoutMs: 60000, intervalMs: 200, what: 'the deck rendered by a worker, seen on B' });
    assert.equal(s.status, 'READY', JSON.stringify(s));
    assert.equal(s.slides.length, 3);

    const listeners = [wsOpen(b, `/api/v1/slideshow/${id}/listen`, { token: null }), wsOpen(b, `/api/v1/slideshow/${id}/updates`, { token: null })];
    await Promise.all(listeners.map((l) => l.open));
    await waitFor(() => listeners.every((l) => l.messages.length >= 1), { what: 'the current slide on connect' });
    for (const l of listeners) assert.equal(l.messages[0].current, 0);
    const sse = followEvents(b, `?asset=${id}&types=slideshow.control`);
    await waitFor(() => sse.events.length >= 1, { what: 'the SSE snapshot on B' });
    const sequence = [2, 1, 0, 2];
    for (const n of sequence) {
      const r = await curl(['-X', 'POST', '-H', `Authorization: Bearer ${token}`, '--data-binary', '@-', `${a.url}/api/v1/slideshow/${id}/control`],
        { input: Buffer.from(JSON.stringify({ current: n })) });
      assert.equal(r.status, 200, r.text);
    }
    await waitFor(() => listeners.every((l) => l.messages.length >= 1 + sequence.length),
      { timeoutMs: 20000, what: 'every change on B\'s WebSocket listeners' });
    for (const l of listeners) assert.deepEqual(l.messages.slice(1).map((m) => m.current), sequence, 'in order, none missing');
    const controls = () => sse.events.filter((e) => e.type === 'slideshow.control');
    await waitFor(() => controls().length >= sequence.length, { timeoutMs: 20000, what: 'every change on B\'s SSE stream' });
    assert.deepEqual(controls().map((e) => e.data.current), sequence);
    assert.equal((await api(b, 'GET', `/api/v1/slideshow/${id}.json`, { token: null })).json.current, 2);
    sse.close();
    for (const l of listeners) l.ws.terminate();
  });

  test('2. a webhook registered once is delivered once per event, whichever process took the upload', { timeout: T * 2 }, async () => {
    const rx = await receiver();
    try {
      const made = await api(a, 'POST', '/v1/webhooks', { headers: ['Content-Type: application/json'], args: ['--data-binary', '@-'],
        input: JSON.stringify({ url: rx.url, events: ['asset.created'] }) });
      assert.equal(made.status, 201, made.text);
      const hookId = made.json.id;
      const ids = [];
      const writer = async (srv, n) => {
        for (let i = 0; i < n; i++) {
          const r = await upload(srv, { data: Buffer.from(`hooked ${srv.port} ${i}\n`), filename: `h${i}.txt` });
          assert.equal(r.status, 201, r.text);
          ids.push(r.json.id);
        }
      };
      await Promise.all([writer(a, 8), writer(b, 8), writer(a, 8), writer(b, 8)]);
      // every delivery recorded as delivered: no process will send it again
      let items;
      await waitFor(async () => {
        items = (await api(b, 'GET', `/v1/webhooks/${hookId}/deliveries`)).json.items;
        return items.length >= ids.length && items.every((d) => d.state === 'delivered');
      }, { timeoutMs: 30000, intervalMs: 200, what: () => 'every delivery delivered' });
      // then one more upload: its delivery comes after anything still in flight
      const last = await upload(b, { data: Buffer.from('the last one\n'), filename: 'last.txt' });
      ids.push(last.json.id);
      await waitFor(() => rx.got.some((g) => g.body.data.id === last.json.id), { timeoutMs: 20000, what: 'the last delivery' });
      await waitFor(async () => {
        items = (await api(b, 'GET', `/v1/webhooks/${hookId}/deliveries`)).json.items;
        return items.every((d) => d.state === 'delivered');
      }, { timeoutMs: 20000, what: 'the last delivery recorded' });

      const created = psql(shared, `SELECT id FROM events WHERE type = 'asset.created' AND asset_id IN (${ids.map((x) => `'${x}'`).join(',')}) ORDER BY id`)
        .split('\n').map(Number);
      assert.equal(created.length, ids.length, 'one asset.created per upload');
      // the deliveries API: one per event, each sent once
      assert.equal(items.length, ids.length, 'one delivery per event, not one per serve process');
      assert.deepEqual(items.map((d) => d.event_id).sort((x, y) => x - y), created);
      for (const d of items) assert.equal(d.attempts, 1, `${d.id} sent ${d.attempts} times`);
      // the receiver: each event once, each delivery id once
      assert.equal(rx.got.length, ids.length, `received ${rx.got.length} for ${ids.length} events`);
      assert.deepEqual(rx.got.map((g) => g.body.data.id).sort(), [...ids].sort());
      assert.deepEqual(rx.got.map((g) => g.id).sort(), items.map((d) => d.id).sort());
    } finally { hookRx = rx; }
  });

  test('3. a worker killed in the middle of a job: its lease runs out and the other worker finishes it', { timeout: T * 2 }, async () => {
    // W2 is held still while W1, armed to die after a job's first rendition
    // is stored, claims the job; then W2 goes on and must take it over.
    await w1.stop();
    w2.proc.kill('SIGSTOP');
    let id;
    try {
      w1 = startWorker(dirs.w1, shared, s3.args, { ASSETD_FAULT: 'worker:rendition.stored' });
      const png = gradientPng(640, 480);
      const r = await upload(a, { data: png, filename: 'g.png', contentType: 'image/png' });
      assert.equal(r.status, 201, r.text);
      id = r.json.id;
      const died = await within(w1.exited, 60000 * SLOW);
      assert.deepEqual(died, { code: null, signal: 'SIGKILL' }, 'W1 died at the crash point');
      const job = (await api(a, 'GET', `/v1/jobs?asset=${id}`)).json.items[0];
      assert.equal(job.state, 'running', 'the dead worker\'s job is still leased');
      assert.equal(job.attempts, 1);
    } finally { w2.proc.kill('SIGCONT'); }
    // W2 takes the job once the lease has run out and finishes it
    let asset;
    await waitFor(async () => { asset = (await api(b, 'GET', `/v1/assets/${id}`)).json; return asset.status === 'ready' || asset.status === 'failed'; },
      { timeoutMs: (LEASE_S + 30) * 1000, intervalMs: 200, what: 'the job finished by W2' });
    assert.equal(asset.status, 'ready', JSON.stringify(asset.error));
    const job = (await api(a, 'GET', `/v1/jobs?asset=${id}`)).json.items;
    assert.equal(job.length, 1);
    assert.equal(job[0].state, 'succeeded');
    assert.equal(job[0].attempts, 2, 'the killed attempt counts');
    assert.deepEqual(asset.renditions.map((x) => x.name).sort(), ['fit640', 'preview', 'thumb']);
    for (const rend of asset.renditions) {
      const got = await api(a, 'GET', rend.url);
      assert.equal(got.status, 200, `${rend.name}: ${got.status}`);
      assert.ok(got.body.length > 0);
    }
    assert.equal(psql(shared, `SELECT count(*) FROM events WHERE asset_id = '${id}' AND type = 'asset.ready'`), '1', 'asset.ready once');
    // W1 back, unarmed
    w1 = startWorker(dirs.w1, shared, s3.args);
  });

  test('4. serve A killed with clients on it: they resume on B and on the restarted A with exactly what they missed', { timeout: T * 2 }, async () => {
    const start = Number(psql(shared, 'SELECT coalesce(max(id), 0) FROM events'));
    const all = followEvents(b, `?since=${start}`);   // the reference: every event from here on
    const onA = followEvents(a, `?since=${start}`);
    const wsA = wsOpen(a, `/v1/events?since=${start}`);
    await wsA.open;
    const ids = [];
    const put = async (srv, tag) => {
      const r = await upload(srv, { data: Buffer.from(`${tag}\n`), filename: `${tag}.txt` });
      assert.equal(r.status, 201, r.text);
      ids.push(r.json.id);
      return r.json.id;
    };
    const createdOf = (s, id) => s.events.some((e) => e.type === 'asset.created' && e.asset_id === id);
    for (let i = 0; i < 3; i++) await put(b, `before${i}`);
    await waitFor(() => ids.every((id) => createdOf(onA, id) && wsA.messages.some((m) => m.asset_id === id)),
      { timeoutMs: 20000, what: 'B\'s uploads on A\'s clients' });
    await a.kill9();
    retired.push(a);
    await waitFor(() => onA.ended && wsA.closed, { what: 'A\'s clients cut off' });
    const lastSse = onA.events.at(-1).id;
    const lastWs = wsA.messages.at(-1).id;
    for (let i = 0; i < 4; i++) await put(b, `during${i}`);
    await waitFor(() => ids.every((id) => createdOf(all, id)), { timeoutMs: 20000, what: 'every upload on the reference reader' });

    // the SSE client resumes on B with Last-Event-ID, the WebSocket client with ?since=
    const sseB = followEvents(b, '', { 'last-event-id': String(lastSse) });
    const wsB = wsOpen(b, `/v1/events?since=${lastWs}`);
    await wsB.open;
    const missed = (x) => all.events.filter((e) => e.id > x).map((e) => e.id);
    await waitFor(() => sseB.events.length >= missed(lastSse).length && wsB.messages.length >= missed(lastWs).length,
      { timeoutMs: 20000, what: 'the replays on B' });
    assert.deepEqual(sseB.events.map((e) => e.id), missed(lastSse), 'SSE on B: exactly what was missed, in order');
    assert.deepEqual(wsB.messages.map((m) => m.id), missed(lastWs), 'WebSocket on B: exactly what was missed, in order');
    sseB.close();
    wsB.ws.terminate();

    // A starts again on its directory and the database while B has an upload
    // whose object is in the bucket and whose row is not committed yet: A's
    // start-up sweep must leave it alone.
    const held = hold.arm();
    const racing = upload(b, { data: Buffer.from('in flight while A starts\n'), filename: 'flight.txt' });
    await held;
    a = await startServer({ dataDir: dirs.a, env: shared, args: serveArgs });
    await a.waitUntil((s) => s.logs.find((j) => j.msg === 'recovery sweep done'), 5000, 'the sweep');
    hold.release();
    const flight = await racing;
    assert.equal(flight.status, 201, `${flight.text}\n${b.stderrLines.slice(-8).join('\n')}`);
    ids.push(flight.json.id);
    assert.deepEqual(logsOf([a], 'removed leftover object'), [], 'A\'s sweep removed nothing of B\'s');
    for (const srv of [a, b]) {
      const got = await api(srv, 'GET', `/v1/assets/${flight.json.id}/content`);
      assert.equal(got.status, 200, `the in-flight upload's bytes on ${srv === a ? 'A' : 'B'}: ${got.text}`);
      assert.equal(got.text, 'in flight while A starts\n');
    }
    // the clients come back to A from where they are
    const mark = all.events.at(-1).id;
    await put(b, 'after');
    await waitFor(() => createdOf(all, ids.at(-1)), { what: 'the last upload on the reference reader' });
    const sseA = followEvents(a, '', { 'last-event-id': String(lastSse) });
    const wsA2 = wsOpen(a, `/v1/events?since=${mark}`);
    await wsA2.open;
    await waitFor(() => sseA.events.length >= missed(lastSse).length && wsA2.messages.length >= missed(mark).length,
      { timeoutMs: 20000, what: 'the replays on the restarted A' });
    assert.deepEqual(sseA.events.map((e) => e.id), missed(lastSse), 'SSE on A again: from its cursor');
    assert.deepEqual(wsA2.messages.map((m) => m.id), missed(mark), 'WebSocket on A again: from its cursor');
    // and A goes live again: a new upload through A reaches both
    const own = await put(a, 'on A');
    await waitFor(() => createdOf(sseA, own) && createdOf(all, own), { timeoutMs: 20000, what: 'an upload through A, live' });
    for (const x of [all, sseA]) {
      const seen = x.events.map((e) => e.id);
      assert.deepEqual(seen, [...seen].sort((p, q) => p - q), 'ids increase');
      assert.equal(new Set(seen).size, seen.length, 'each once');
    }
    all.close();
    sseA.close();
    wsA2.ws.terminate();
    // every asset of this test has its bytes
    for (const id of ids) assert.equal((await api(b, 'GET', `/v1/assets/${id}/content`)).status, 200, id);
  });

  test('5. housekeeping in both processes at once: expired tus uploads go once each; history past retention goes, counted once', { timeout: T * 2 }, async () => {
    const N = 40;
    const made = [];
    for (let i = 0; i < N; i++) {
      const srv = i % 2 ? a : b;
      const where = await create(srv, 1000);
      assert.equal((await patch(srv, where, 0, Buffer.alloc(100, i))).status, 204);
      made.push(where);
    }
    // --tus-expiry 3: wait until every one is past it
    await waitFor(async () => (await Promise.all(made.map((u) => api(a, 'HEAD', u, { headers: [TUS] }))))
      .every((r) => r.status === 410 || r.status === 404), { timeoutMs: 30000, intervalMs: 500, what: 'every tus upload expired' });
    const jobs = Number(psql(shared, 'SELECT count(*) FROM jobs WHERE state IN (2, 3, 4)'));
    const deliveries = Number(psql(shared, 'SELECT count(*) FROM webhook_deliveries WHERE state != 0'));
    assert.ok(jobs >= 2 && deliveries >= 33, `history to trim: ${jobs} jobs, ${deliveries} deliveries`);

    // both restart at once, with a history retention of 1 s: each trims and
    // collects before serving
    await Promise.all([a.stop(), b.stop()]);
    a.checkExit();
    b.checkExit();
    retired.push(a, b);
    [a, b] = await Promise.all([
      startServer({ dataDir: dirs.a, env: shared, args: [...serveArgs, '--history-retention', '1'] }),
      startServer({ dataDir: dirs.b, env: shared, args: [...bArgs, '--history-retention', '1'] }),
    ]);
    b.token = a.token;

    const removed = logsOf([...retired, a, b], 'expired tus upload removed').map((j) => j.upload).sort();
    assert.deepEqual(removed, made.map((u) => u.split('/').pop()).sort(), 'each expired upload removed once, by one process');
    let gc = 0;
    for (const s of [a, b]) gc += metricSum((await scrape(s)).metrics, 'assetd_gc_removed_total', (l) => l.kind === 'tus');
    assert.equal(gc, logsOf([a, b], 'expired tus upload removed').length, 'the counters agree with what was removed');
    assert.equal(psql(shared, 'SELECT count(*) FROM tus_uploads'), '0');
    assert.deepEqual(await keysUnder(s3.server.endpoint, s3.bucket, 'media/tus/'), [], 'no checkpoint left');

    const trimmed = logsOf([a, b], 'history trimmed');
    assert.equal(trimmed.reduce((n, j) => n + Number(j.jobs), 0), jobs, 'finished jobs trimmed, counted once');
    assert.equal(trimmed.reduce((n, j) => n + Number(j.deliveries), 0), deliveries, 'deliveries trimmed, counted once');
    assert.equal(psql(shared, 'SELECT count(*) FROM jobs WHERE state IN (2, 3, 4)'), '0');
    assert.equal(psql(shared, 'SELECT count(*) FROM webhook_deliveries'), '0');
    // s3rver has no AbortMultipartUpload (405; S3 has it): once per upload,
    // by the one process collecting it, and no other error
    const aborts = [...retired, a, b].flatMap(noErrors).filter((j) => j.msg === 'resumable upload: cannot abort' && /^S3 405 /.test(j.error));
    assert.equal(new Set(aborts.map((j) => j.key)).size, aborts.length, 'each upload\'s bytes removed by one process');
    for (const s of [...retired, a, b]) assert.deepEqual(noErrors(s).filter((j) => !aborts.includes(j)), [], 'no errors logged');
    // and the pair still works: an upload through B, processed, seen on A
    const r = await upload(b, { data: gradientPng(64, 48), filename: 'again.png', contentType: 'image/png' });
    assert.equal(r.status, 201, r.text);
    await waitFor(async () => (await api(a, 'GET', `/v1/assets/${r.json.id}`)).json.status === 'ready',
      { timeoutMs: 30000, what: 'processed after the restarts' });
    assert.equal(sha256((await api(a, 'GET', `/v1/assets/${r.json.id}/content`)).body), r.json.sha256);
  });
});
