// Remote services that misbehave (issue #15): S3, a webhook target and
// RabbitMQ, each behind a fault proxy (faultproxy.mjs) that answers 500/503,
// resets, stalls or trickles.  For each fault: the request, delivery or
// publish is retried with backoff and bounded in time (measured, with
// generous bounds), a fault that lasts ends in a clear failure (the JSON
// error code, the delivery's state, the run's error), the server keeps
// answering other requests meanwhile, and once the proxy passes again
// nothing is lost: assets that got 201 read back byte for byte, webhooks
// arrive at least once, every row of a run is confirmed and stored.
//
// The bounds come from the code: an S3 call makes at most 5 attempts within
// 30 s, an attempt slower than 1 KiB/s for --s3-stall-timeout fails (3 s
// here, 30 by default: s3_client.h); a
// webhook attempt lasts at most --webhook-timeout; a run connects 4 times
// over ~3.5 s, each connect and RPC bounded by 5 s (queue/runs.c,
// run_task.h).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  CORPUS, SLOW, TEST_TIMEOUT as T, TEXT, api, request, serverFor, sha256, upload,
  waitFor, makeTempDir, removeDir, curl,
} from './lib.mjs';
import { startFaultProxy } from './faultproxy.mjs';
import { makeBucket, startS3rver, S3RVER_ACCESS_KEY } from './s3servers.mjs';
import { startRabbit } from './rabbitmq.mjs';

const timed = async (p) => { const t0 = Date.now(); const r = await p; return [r, Date.now() - t0]; };

/** Requests that need no remote service answer at once meanwhile. */
async function stillServing(srv, assetId) {
  const [h, ms] = await timed(request(srv, { path: '/healthz', token: null, timeoutMs: 10000 }));
  assert.equal(h.status, 200);
  assert.ok(ms < 3000 * SLOW, `/healthz took ${ms} ms`);
  if (assetId) {
    const [a, ams] = await timed(request(srv, { path: `/v1/assets/${assetId}`, timeoutMs: 10000 }));
    assert.equal(a.status, 200, a.text);
    assert.ok(ams < 3000 * SLOW, `an asset's JSON took ${ams} ms`);
  }
}

// ------------------------------------------------------------------ S3

test('S3: 500/503, resets, stalls and a trickle are retried and bounded, then storage_failed; nothing that got 201 is lost', { timeout: 3 * T }, async (t) => {
  const s3 = await startS3rver(t);
  const bucket = await makeBucket(s3.endpoint);
  const fp = await startFaultProxy(t, { target: s3.endpoint });
  const env = { AWS_ACCESS_KEY_ID: S3RVER_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: 'fault/secret', AWS_SESSION_TOKEN: '' };
  // Two HTTP threads: a handler that waited on S3 in one would show.
  const STALL_S = 3;   // > the /readyz probe's 2 s, so the two are told apart
  const srv = await serverFor(t, { env, args: ['--store', `s3://${bucket}/media`, '--s3-endpoint', fp.url, '--http-threads', '2',
    '--s3-stall-timeout', String(STALL_S)] });
  const kept = [];
  const put = async (size, label) => {
    const data = randomBytes(size);
    const r = await request(srv, { method: 'POST', path: `/v1/assets?filename=${label}.bin`, body: data, timeoutMs: 120000 });
    if (r.status === 201) kept.push({ id: r.json.id, data, label });
    return r;
  };
  const first = await put(50000, 'first');
  assert.equal(first.status, 201, first.text);

  // Transient: the first connections fail, a retry gets through.
  for (const [mode, o] of [['status', { status: 503, times: 2 }], ['status', { status: 500, times: 2 }], ['reset', { times: 2 }]]) {
    const before = fp.accepted;
    fp.setMode(mode, o);
    const [r, ms] = await timed(put(60000, `${mode}${o.status || ''}`));
    assert.equal(r.status, 201, `${mode} ${o.status || ''}: ${r.text}`);
    assert.ok(fp.accepted - before >= 3, `${mode}: retried (${fp.accepted - before} connections)`);
    t.diagnostic(`${mode} ${o.status || ''} x2 then pass: 201 in ${ms} ms over ${fp.accepted - before} connections`);
  }
  // A multipart upload (over 8 MiB) whose parts meet 503s.
  fp.setMode('status', { status: 503, times: 3 });
  const big = await put(9 * 1024 * 1024 + 7, 'multipart');
  assert.equal(big.status, 201, big.text);

  // Lasting: 5 attempts over a bounded backoff, then 507 (upload) / 502
  // (download) storage_failed; the rest of the server answers meanwhile.
  for (const [mode, o] of [['status', { status: 503 }], ['status', { status: 500 }], ['reset', {}]]) {
    fp.setMode(mode, o);
    const before = fp.accepted;
    const [r, ms] = await timed(put(40000, 'doomed'));
    assert.equal(r.status, 507, r.text);
    assert.equal(r.json.error.code, 'storage_failed');
    assert.ok(ms < 30000 * SLOW, `${mode}: failed after ${ms} ms`);
    const attempts = fp.accepted - before;
    assert.ok(attempts >= 3 && attempts <= 12, `${mode}: ${attempts} connections`);
    const [g, gms] = await timed(request(srv, { path: `/v1/assets/${first.json.id}/content` }));
    assert.equal(g.status, 502, `${mode}: ${g.status} ${g.text}`);
    assert.equal(g.json.error.code, 'storage_failed');
    await stillServing(srv, first.json.id);
    const ready = await request(srv, { path: '/readyz', token: null });
    assert.equal(ready.status, 503, ready.text);
    t.diagnostic(`${mode} ${o.status || ''} lasting: 507 after ${ms} ms, ${attempts} connections; ` +
      `download 502 after ${gms} ms; upload message: ${r.json.error.message}`);
  }

  // Stalled: S3 accepts and never answers.  An upload and a download wait
  // on it at once, each attempt cut after --s3-stall-timeout without
  // 1 KiB/s, then retried; readiness probes, more than the server's two HTTP threads,
  // answer 503 within their 2 s bound, and the rest keeps answering.
  // (Regression: /readyz ran S3's retried HEAD on the HTTP thread, 30 s
  // per probe; the connections that thread held waited, and those whose
  // request had not been read were cut by the header timeout.)
  fp.setMode('stall');
  const stallFrom = fp.events.length;
  const t0 = Date.now();
  const settle = (p) => p.then((r) => ({ r, ms: Date.now() - t0 }), (e) => ({ e, ms: Date.now() - t0 }));
  // A small body: libcurl's speed is an average over its last ~5 s, so an
  // attempt that sent a larger body at once is held that much longer.
  const up = settle(put(512, 'stalled'));
  const down = settle(request(srv, { path: `/v1/assets/${first.json.id}/content`, timeoutMs: 120000 }));
  await waitFor(() => fp.open() >= 2, { timeoutMs: 10000, what: 'requests stalled on S3' });
  for (let round = 0; round < 2; round++) {
    const t1 = Date.now();
    const probes = await Promise.all(Array.from({ length: 6 }, () => settle(request(srv, { path: '/readyz', token: null, timeoutMs: 60000 }))));
    for (const p of probes) assert.equal(p.r?.status, 503, p.e?.message || p.r.text);
    const ms = Date.now() - t1;
    assert.ok(ms < 10000 * SLOW, `six probes took ${ms} ms`);
    await stillServing(srv, first.json.id);
    const list = await request(srv, { path: '/v1/assets?limit=5', timeoutMs: 10000 });
    assert.equal(list.status, 200);
    t.diagnostic(`stalled: six /readyz answered 503 in ${ms} ms`);
  }
  const [u, d] = [await up, await down];
  t.diagnostic(`stalled: upload ${u.r?.status} after ${u.ms} ms, download ${d.r?.status} after ${d.ms} ms`);
  assert.equal(u.r?.status, 507, u.e?.message || u.r.text);
  assert.equal(u.r.json.error.code, 'storage_failed');
  assert.equal(d.r?.status, 502, d.e?.message || d.r.text);
  assert.equal(d.r.json.error.code, 'storage_failed');
  for (const x of [u, d]) assert.ok(x.ms < (30 + STALL_S + 10) * 1000 * SLOW, `bounded: ${x.ms} ms`);
  // Each stalled attempt was cut at the stall timeout (not the default
  // 30 s) and retried: the upload's and the download's attempts are the
  // connections held past the probes' 2 s.
  const held = fp.events.slice(stallFrom).filter((c) => c.mode === 'stall' && c.closed).map((c) => c.closed - c.at);
  const attempts = held.filter((ms) => ms >= STALL_S * 1000 - 300);
  t.diagnostic(`stalled: connections held ${held.join(', ')} ms`);
  assert.ok(attempts.length >= 4, `stalled attempts retried: ${attempts.length}`);
  for (const ms of held) assert.ok(ms < (STALL_S + 3) * 1000 * SLOW, `a stalled attempt held ${ms} ms`);

  // A trickle (32 KiB/s each way) is slow, not broken: it succeeds.
  fp.setMode('slow', { rate: 32 * 1024 });
  const [slowUp, slowMs] = await timed(put(96 * 1024, 'slow'));
  assert.equal(slowUp.status, 201, slowUp.text);
  t.diagnostic(`slow 32 KiB/s: a 96 KiB upload took ${slowMs} ms`);
  await stillServing(srv, first.json.id);

  // Back: every asset that got its 201 reads back whole; uploads work.
  fp.setMode('pass');
  const after = await put(20000, 'after');
  assert.equal(after.status, 201, after.text);
  assert.deepEqual(kept.map((k) => k.label), ['first', 'status503', 'status500', 'reset', 'multipart', 'slow', 'after']);
  for (const k of kept) {
    const g = await request(srv, { path: `/v1/assets/${k.id}/content`, timeoutMs: 60000 });
    assert.equal(g.status, 200, `${k.label}: ${g.text}`);
    assert.equal(sha256(g.body), sha256(k.data), `${k.label}: the same bytes`);
  }
  assert.equal((await request(srv, { path: '/readyz', token: null })).status, 200);
  const listed = (await api(srv, 'GET', '/v1/assets?limit=100')).json.items.map((a) => a.id).sort();
  assert.deepEqual(listed, kept.map((k) => k.id).sort(), 'no asset without its bytes, none lost');
});

// ------------------------------------------------------------------ webhooks

/** A receiver that answers 200 and keeps every delivery. */
async function receiver(t) {
  const got = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      got.push({ id: req.headers['webhook-id'], body: JSON.parse(Buffer.concat(chunks).toString('utf8')), at: Date.now() });
      res.end('ok');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => { server.closeAllConnections(); server.close(r); }));
  return { got, url: `http://127.0.0.1:${server.address().port}/hook` };
}

const hook = (srv, url) => api(srv, 'POST', '/v1/webhooks', {
  headers: ['Content-Type: application/json'], args: ['--data-binary', '@-'],
  input: JSON.stringify({ url, events: ['asset.created'] }),
});
const deliveries = async (srv, id) => (await api(srv, 'GET', `/v1/webhooks/${id}/deliveries`)).json.items;

test('webhooks: 500/503, resets, stalls and a trickle are retried with growing backoff, each attempt bounded; all delivered after; a lasting fault disables the endpoint', { timeout: 2 * T }, async (t) => {
  const rx = await receiver(t);
  const fp = await startFaultProxy(t, { target: rx.url });
  const TIMEOUT_S = 1;
  const srv = await serverFor(t, { args: ['--webhook-allow-local', '1', '--webhook-retry-ms', '200', '--webhook-timeout', String(TIMEOUT_S)] });
  const faulty = await hook(srv, `${fp.url}/hook`);
  assert.equal(faulty.status, 201, faulty.text);
  // A healthy endpoint beside it: one slow target must not hold the others.
  const rx2 = await receiver(t);
  const healthy = await hook(srv, rx2.url);
  assert.equal(healthy.status, 201, healthy.text);

  const cases = [
    ['status', { status: 500, times: 3 }], ['status', { status: 503, times: 3 }],
    ['reset', { times: 3 }], ['stall', { times: 2 }], ['slow', { rate: 4096 }],
  ];
  for (const [mode, o] of cases) {
    const label = `${mode}${o.status || ''}`;
    // Keep-alive connections from the last case would take the new mode
    // too (a stall does): cut them, so each attempt is one new connection.
    fp.cut();
    const firstConn = fp.events.length;
    fp.setMode(mode, o);
    const up = await upload(srv, { data: TEXT, filename: `${label}.txt` });
    assert.equal(up.status, 201, up.text);
    const id = up.json.id;
    const via = (r) => r.got.filter((g) => g.body.data.id === id);
    await waitFor(() => via(rx2).length >= 1, { timeoutMs: 10000, what: `${label}: the healthy endpoint's delivery` });
    const healthyAt = via(rx2)[0].at;
    await waitFor(() => via(rx).length >= 1, { timeoutMs: 30000, what: `${label}: the delivery through the fault` });
    let d;
    await waitFor(async () => { d = (await deliveries(srv, faulty.json.id)).find((x) => x.state === 'delivered' && via(rx)[0].id === x.id); return d; },
      { timeoutMs: 10000, what: `${label}: recorded as delivered` });
    const conns = fp.events.slice(firstConn);
    if (o.times) {
      assert.equal(d.attempts, o.times + 1, `${label}: ${JSON.stringify(d)}`);
      // Backoff: the gaps between attempts grow (200 ms x 2^n after each).
      const starts = conns.map((c) => c.at);
      for (let i = 1; i < starts.length; i++) assert.ok(starts[i] - starts[i - 1] >= 150, `${label}: attempt ${i} came ${starts[i] - starts[i - 1]} ms after`);
    } else {
      assert.equal(d.attempts, 1, `${label}: a slow answer is no failure`);
    }
    if (mode === 'stall') {
      for (const c of conns.filter((x) => x.mode === 'stall')) {
        const held = c.closed - c.at;
        assert.ok(c.closed && held >= TIMEOUT_S * 1000 - 100 && held < (TIMEOUT_S * 1000 + 3000) * SLOW, `a stalled attempt held ${held} ms`);
      }
      // The dispatcher sends to other endpoints while one stalls.
      assert.ok(healthyAt < conns[0].at + TIMEOUT_S * 1000, 'the healthy endpoint did not wait for the stalled one');
    }
    t.diagnostic(`${label}: delivered after ${d.attempts} attempts, ${via(rx)[0].at - conns[0].at} ms after the first`);
  }

  // An outage: five events while every attempt is reset; all arrive after.
  fp.setMode('reset');
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push((await upload(srv, { data: TEXT, filename: `outage${i}.txt` })).json.id);
  await waitFor(async () => {
    // the earlier deliveries are all delivered: the pending ones are these
    const pending = (await deliveries(srv, faulty.json.id)).filter((x) => x.state === 'pending');
    return pending.length === 5 && pending.every((x) => x.attempts >= 2);
  }, { timeoutMs: 20000, what: 'five deliveries failing twice' });
  await stillServing(srv, ids[0]);
  fp.setMode('pass');
  await waitFor(() => ids.every((id) => rx.got.some((g) => g.body.data.id === id)), { timeoutMs: 30000, what: 'every delivery after the outage' });

  // Lasting: a short retry window on a server of its own; the delivery
  // fails and the endpoint is disabled, in bounded time.
  const fp2 = await startFaultProxy(t, { target: rx.url });
  fp2.setMode('stall');
  const s2 = await serverFor(t, { args: ['--webhook-allow-local', '1', '--webhook-retry-ms', '200', '--webhook-timeout', '1', '--webhook-retry-window', '2'] });
  const doomed = await hook(s2, `${fp2.url}/hook`);
  const [, ms] = await timed((async () => {
    await upload(s2, { data: TEXT, filename: 'doomed.txt' });
    await waitFor(async () => (await api(s2, 'GET', `/v1/webhooks/${doomed.json.id}`)).json.disabled, { timeoutMs: 20000, what: 'the endpoint disabled' });
  })());
  const w = (await api(s2, 'GET', `/v1/webhooks/${doomed.json.id}`)).json;
  const dd = (await deliveries(s2, doomed.json.id))[0];
  assert.equal(dd.state, 'failed');
  assert.ok(dd.attempts >= 2, `attempts ${dd.attempts}`);
  assert.equal(dd.last_status, null);
  assert.match(dd.last_error, /time|Timeout/i);
  assert.match(w.disabled_reason, /retry window/);
  assert.ok(ms < 15000 * SLOW, `disabled after ${ms} ms`);
  t.diagnostic(`stalled for good: disabled after ${ms} ms, ${dd.attempts} attempts, last_error ${dd.last_error}`);
});

// ------------------------------------------------------------------ RabbitMQ

const EDGE = path.join(CORPUS, 'csv', 'edge_cases.csv');

function startRun(s, file, fields) {
  const args = ['-X', 'POST', '-H', `Authorization: Bearer ${s.token}`, '-F', `file=@${file};type=text/csv`];
  for (const [k, v] of Object.entries(fields)) args.push('-F', `${k}=${v}`);
  args.push(`${s.url}/v1/runs`);
  return curl(args);
}

async function finished(s, id, timeoutMs = 90000) {
  let run;
  await waitFor(async () => {
    run = (await api(s, 'GET', `/v1/runs/${id}`)).json;
    return run.state === 'succeeded' || run.state === 'failed';
  }, { timeoutMs, intervalMs: 100, what: `run ${id} finished` });
  return run;
}

test('RabbitMQ: a run\'s connections reset, stalled or slowed are retried and bounded, a lasting fault fails the run clearly, a cut mid-run loses no row', { timeout: 3 * T }, async (t) => {
  // The suite's node (ASSETD_TEST_AMQP_URL), or one of our own: the proxy
  // makes the faults, so the shared node is never stopped.
  const mq = await startRabbit();
  t.after(() => mq.destroy());
  const fp = await startFaultProxy(t, { target: `127.0.0.1:${mq.port}` });
  const url = `amqp://guest:guest@127.0.0.1:${fp.port}/%2f`;
  const srv = await serverFor(t, { workers: 1, args: ['--amqp-url', url] });
  const dir = makeTempDir('assetd-faults-');
  t.after(() => removeDir(dir));
  const ROWS = 30000;
  const csv = path.join(dir, 'rows.csv');
  fs.writeFileSync(csv, Array.from({ length: ROWS }, (_, i) => `Person ${i},p${i}@example.com`).join('\n') + '\n');

  // Transient: the first connections are reset; the connects are retried.
  fp.setMode('reset', { times: 2 });
  let r = await startRun(srv, EDGE, { mode: 'live', timeout: '0' });
  assert.equal(r.status, 202, r.text);
  let run = await finished(srv, r.json.id);
  assert.equal(run.state, 'succeeded', JSON.stringify(run.error));
  assert.equal(run.counts.sent, 12);
  assert.equal(run.counts.received, 12);

  // A trickle: slow, not broken.
  fp.setMode('slow', { rate: 16 * 1024 });
  r = await startRun(srv, EDGE, { mode: 'batch', timeout: '0' });
  run = await finished(srv, r.json.id);
  assert.equal(run.state, 'succeeded', JSON.stringify(run.error));
  assert.equal(run.counts.received, 12);

  // Stalled: the first two connections accepted and never answered; each
  // is given up at the 5 s bound and the next connect gets through.  (A
  // lasting stall is four such connects and 3.5 s of backoff, ~25 s, then
  // broker_unavailable as the lasting reset below: not waited for here.)
  fp.setMode('stall', { times: 2 });
  const stallFrom = fp.events.length;
  r = await startRun(srv, EDGE, { mode: 'batch', timeout: '0' });
  run = await finished(srv, r.json.id);
  assert.equal(run.state, 'succeeded', JSON.stringify(run.error));
  assert.equal(run.counts.received, 12);
  const stalled = fp.events.slice(stallFrom).filter((c) => c.mode === 'stall');
  assert.equal(stalled.length, 2);
  for (const c of stalled) {
    const held = c.closed - c.at;
    assert.ok(c.closed && held >= 4500 && held < 8000 * SLOW, `a stalled connect held ${held} ms`);
  }
  t.diagnostic(`stall x2 then pass: connects held ${stalled.map((c) => c.closed - c.at).join(', ')} ms, run succeeded`);

  // Lasting: every connection reset: the run fails broker_unavailable after
  // its bounded connects.
  for (const mode of ['reset']) {
    fp.setMode(mode);
    const before = fp.accepted;
    const [res, ms] = await timed((async () => {
      const x = await startRun(srv, EDGE, { mode: 'batch', timeout: '0' });
      assert.equal(x.status, 202, x.text);
      await waitFor(() => fp.accepted > before, { timeoutMs: 10000, what: 'a connect' });
      await stillServing(srv);
      assert.equal((await api(srv, 'GET', `/v1/runs/${x.json.id}`)).status, 200);
      return finished(srv, x.json.id);
    })());
    assert.equal(res.state, 'failed');
    assert.equal(res.error.code, 'broker_unavailable', JSON.stringify(res.error));
    assert.match(res.error.message, /^cannot reach RabbitMQ: ./);
    const connects = fp.accepted - before;
    assert.ok(connects >= 2 && connects <= 8, `${mode}: ${connects} connects`);
    // 4 connects and 3.5 s of backoff.
    assert.ok(ms < 15000 * SLOW, `${mode}: failed after ${ms} ms`);
    t.diagnostic(`${mode} lasting: broker_unavailable after ${ms} ms, ${connects} connects: ${res.error.message}`);
  }

  // Cut mid-run (both sides, twice), and stalled for a moment: the
  // publisher resumes from its cursor, the consumer drops what it stored:
  // every row is sent, received and saved exactly once.
  fp.setMode('pass');
  r = await startRun(srv, csv, { mode: 'live', timeout: '0', clear: 'true' });
  assert.equal(r.status, 202, r.text);
  const sentBy = async (n) => waitFor(async () => {
    const x = (await api(srv, 'GET', `/v1/runs/${r.json.id}`)).json;
    return x.counts.sent >= n || x.state === 'succeeded' || x.state === 'failed' ? x : null;
  }, { timeoutMs: 60000, intervalMs: 20, what: `${n} rows sent` });
  let mid = await sentBy(1);
  assert.equal(mid.state, 'publishing', `cut before the end: ${JSON.stringify(mid)}`);
  fp.cut();
  mid = await sentBy(mid.counts.sent + 1);
  fp.setMode('stall');
  const stalledAt = Date.now();
  // the fault's length, not a synchronisation
  await waitFor(() => Date.now() - stalledAt > 1500, { timeoutMs: 3000, intervalMs: 100, what: 'a moment of stall' });
  fp.setMode('pass');
  run = await finished(srv, r.json.id);
  t.diagnostic(`cut at ${mid.counts.sent} rows and stalled: ${run.state} ${JSON.stringify(run.counts)}`);
  assert.equal(run.state, 'succeeded', JSON.stringify(run.error));
  assert.deepEqual(run.counts, { read: ROWS, skipped: 0, sent: ROWS, nacked: 0, received: ROWS, saved: ROWS, duplicates: 0 });
  assert.equal(run.table_count, ROWS);
  assert.ok(srv.logs.some((j) => j.msg === 'run publisher lost its connection' && j.run === r.json.id), 'the cut was seen');
});
