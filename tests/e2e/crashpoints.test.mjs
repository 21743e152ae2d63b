// Crash points (src/util/fault.h): for each named durable step, a server
// started with ASSETD_FAULT=POINT runs the flow that reaches it and the
// process that gets there kills itself with SIGKILL, exactly as kill -9
// would.  The test checks it died by SIGKILL (so the point was reached) and
// what the point leaves on disk, then starts serve again on the same data
// directory without the fault and checks the invariants:
//   - every asset the API lists has its bytes (download = the uploaded
//     SHA-256), and an upload the client never heard of is whole or absent;
//   - once the start-up sweep ran, no blob exists without its asset and no
//     temp file is left;
//   - a `since=0` reader sees every event once, ids strictly increasing, and
//     each asset's asset.created (and asset.ready) exactly once;
//   - every job ends succeeded (retried when its worker died);
//   - every webhook event reached the receiver at least once;
// and that the server still takes and processes a new upload.
// A point in serve kills serve (the client sees its connection drop); a
// point in a worker kills the worker (serve logs it and restarts it; the
// `worker:` prefix keeps serve itself unarmed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  CORPUS, TEST_TIMEOUT as T, TINY_PNG, TEXT, api, blobFiles, listFiles, makeTempDir, removeDir,
  curl, sha256, startServer, tmpFiles, upload, waitFor,
  pinDiskStore, gradientPng,
} from './lib.mjs';
import { TUS, create, head, patch } from './tuslib.mjs';
import { keysUnder, s3Setup } from './s3servers.mjs';
import { startRabbit } from './rabbitmq.mjs';

// About the disk store's own files (temp files, blobs, the sweep): its
// servers keep the disk store in every suite, on PostgreSQL too.
pinDiskStore();

// The upload each restarted server must take and process.
const AFTER = gradientPng(320, 200);
// Short leases: a killed worker's job and a killed PATCH's upload come back
// within seconds instead of the default 30.
const ARGS = ['--job-lease', '3', '--tus-lease', '1', '--webhook-allow-local', '1', '--webhook-retry-ms', '300'];

/** A data directory for one case, removed after it. */
function caseDir(t) {
  const d = makeTempDir('assetd-crash-');
  t.after(() => removeDir(d));
  return d;
}

/** A server armed with a crash point. */
async function armed(t, dataDir, point, { workers = 0, args = [], env = {} } = {}) {
  const s = await startServer({ dataDir, workers, args: [...ARGS, ...args], env: { ...env, ASSETD_FAULT: point } });
  t.after(() => s.kill9());   // a case that failed half-way leaves no server behind
  // Logged at start by each armed process (a worker's after serve's "listening").
  await s.waitUntil((x) => x.logs.find((j) => j.msg === 'crash point armed'), 10000, `${point} armed`);
  return s;
}

/** Serve reached its point: it died by SIGKILL, on its own. */
async function diedAtPoint(s, point) {
  const e = await waitFor(() => s.exitInfo, { timeoutMs: 20000, what: `serve to die at ${point}` });
  assert.equal(s.signalsSent.length, 0, 'nobody but the crash point killed it');
  assert.equal(e.signal, 'SIGKILL', `serve died at ${point} by SIGKILL, not ${JSON.stringify(e)}`);
}

/** A worker reached its point: serve saw it die by SIGKILL (and restarts it). */
async function workerDied(s, point) {
  await s.waitUntil((x) => x.logs.find((j) => j.msg === 'worker exited; restarting' && j.status === 'signal 9'),
    20000, `a worker to die at ${point}`);
  assert.ok(s.alive(), 'serve outlives its worker');
}

/** No sanitizer report from serve or its workers (a SIGKILL leaves none). */
function noSanitizerReport(s) {
  const bad = s.stderrLines.filter((l) => /Sanitizer|runtime error:/.test(l));
  assert.deepEqual(bad, [], 'sanitizer reports');
}

/** Stops a server that was not killed, and checks it exited cleanly. */
async function stopClean(s) {
  const r = await s.stop();
  assert.ok(!r.timedOut, 'serve stopped on SIGTERM');
  s.checkExit();
  noSanitizerReport(s);
}

/** The restart: serve on the same data directory, no fault. */
async function restart(t, dataDir, { args = [], env = {}, workers = 1 } = {}) {
  const s = await startServer({ dataDir, workers, args: [...ARGS, ...args], env });
  t.after(async () => { await s.cleanup(); noSanitizerReport(s); });
  assert.ok(!s.logs.some((j) => j.msg === 'crash point armed'));
  return s;
}

/** Every event from since=0 until pred(events) holds (SSE, ids only). */
async function eventLog(srv, pred, what) {
  const events = [];
  const req = http.get(`${srv.url}/v1/events?since=0`, {
    headers: { accept: 'text/event-stream', authorization: `Bearer ${srv.token}` },
  }, (res) => {
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const ev = {};
        for (const line of buf.slice(0, i).split('\n')) {
          const m = line.match(/^(id|event|data): (.*)$/);
          if (m) ev[m[1]] = m[2];
        }
        buf = buf.slice(i + 2);
        if (ev.id && ev.data) events.push({ id: Number(ev.id), ...JSON.parse(ev.data) });
      }
    });
    res.on('error', () => {});
  });
  req.on('error', () => {});
  try {
    await waitFor(() => pred(events), { timeoutMs: 20000, intervalMs: 20, what });
  } finally {
    req.destroy();
  }
  return events;
}

const listAssets = async (srv) => {
  const r = await api(srv, 'GET', '/v1/assets?limit=100');
  assert.equal(r.status, 200, r.text);
  return r.json.items;
};
const listJobs = async (srv) => {
  const r = await api(srv, 'GET', '/v1/jobs?limit=100');
  assert.equal(r.status, 200, r.text);
  return r.json.items;
};
const TERMINAL = new Set(['succeeded', 'failed', 'dead']);
const idOfBlob = (f) => path.basename(f).split('.')[0];

/**
 * The invariants, on the restarted server.  sent: the SHA-256s of every
 * upload the client started (whether or not it got an answer).
 * -> {assets, jobs, events}
 */
async function checkInvariants(srv, sent, { disk = true } = {}) {
  // Then a new upload goes through and is processed: the server works.
  const fresh = await upload(srv, { data: AFTER, filename: 'after.png', raw: true, contentType: 'image/png' });
  assert.equal(fresh.status, 201, fresh.text);
  sent.add(fresh.json.sha256);

  // Every job ends; none failed.
  const jobs = await waitFor(async () => {
    const js = await listJobs(srv);
    return js.length > 0 && js.every((j) => TERMINAL.has(j.state)) && js;
  }, { timeoutMs: 30000, intervalMs: 100, what: 'every job to end' });
  for (const j of jobs) assert.equal(j.state, 'succeeded', `job ${JSON.stringify(j)}`);

  // Every asset listed has exactly the bytes of an upload.
  const assets = await listAssets(srv);
  assert.ok(assets.some((a) => a.id === fresh.json.id));
  for (const a of assets) {
    assert.ok(sent.has(a.sha256), `asset ${a.id}'s sha256 is an upload's`);
    const got = await api(srv, 'GET', `/v1/assets/${a.id}/content`);
    assert.equal(got.status, 200, `asset ${a.id} has its bytes`);
    assert.equal(sha256(got.body), a.sha256, `asset ${a.id}'s bytes`);
    if (a.kind === 'image') {
      assert.equal(a.status, 'ready', JSON.stringify(a));
      for (const r of a.renditions) {
        const rb = await api(srv, 'GET', r.url);
        assert.equal(rb.status, 200, `${a.id}'s ${r.name}`);
        assert.equal(rb.body.length, r.size);
      }
    }
  }

  // No bytes without an asset, no temp file left (the sweep ran at start).
  if (disk) {
    const ids = new Set(assets.map((a) => a.id));
    for (const f of blobFiles(srv.dataDir)) assert.ok(ids.has(idOfBlob(f)), `blob ${f} has an asset`);
    for (const a of assets) assert.ok(fs.existsSync(blobPath(srv.dataDir, a.id)), `asset ${a.id}'s blob`);
    assert.deepEqual(tmpFiles(srv.dataDir), [], 'no temp file left');
    assert.deepEqual(listFiles(path.join(srv.dataDir, 'tus')), [], 'no tus file left');
  }

  // A since=0 reader sees each event once, in order; each asset's
  // creation once and, for an image, its readiness once.
  const isImage = (a) => a.kind === 'image';
  const events = await eventLog(srv, (evs) => assets.every((a) =>
    evs.some((e) => e.type === 'asset.created' && e.asset_id === a.id) &&
    (!isImage(a) || evs.some((e) => e.type === 'asset.ready' && e.asset_id === a.id))), 'every asset\'s events');
  for (let i = 1; i < events.length; i++) assert.ok(events[i].id > events[i - 1].id, `event ids increase: ${events.map((e) => e.id)}`);
  for (const a of assets) {
    const of = (type) => events.filter((e) => e.type === type && e.asset_id === a.id).length;
    assert.equal(of('asset.created'), 1, `${a.id}: asset.created once`);
    if (isImage(a)) assert.equal(of('asset.ready'), 1, `${a.id}: asset.ready once`);
  }
  return { assets, jobs, events };
}

const blobPath = (dataDir, key) => path.join(dataDir, 'blobs', key.slice(0, 2), key);

/** curl saw the connection drop before any final answer (a 100 Continue may have come). */
const noAnswer = (r) => r.exitCode !== 0 && (r.status === 0 || r.status === 100);

/** An upload the crash may cut. */
const uploadImage = (s, data = TINY_PNG) => upload(s, { data, filename: 'crash.png', raw: true, contentType: 'image/png' });

// ------------------------------------------------------------ serve: an upload

test('an ASSETD_FAULT that names no point (or no command) arms nothing, with a warning', { timeout: T }, async (t) => {
  for (const value of ['blob.writen', 'blob.written@0', 'sevre:blob.written']) {
    const s = await startServer({ env: { ASSETD_FAULT: value } });
    t.after(() => s.cleanup());
    assert.ok(s.logs.some((j) => j.level === 'warn' && /ASSETD_FAULT names no/.test(j.msg)), `${value}: warned`);
    assert.ok(!s.logs.some((j) => j.msg === 'crash point armed'), `${value}: not armed`);
    const r = await upload(s, { data: TEXT, filename: 'fine.txt', raw: true });
    assert.equal(r.status, 201, `${value}: ${r.text}`);
    await s.cleanup();
  }
});


test('serve:blob.written / blob.synced: the temp file is whole, no blob, no row; restarted: nothing is kept', { timeout: T }, async (t) => {
  for (const point of ['serve:blob.written', 'serve:blob.synced']) {
    const dir = caseDir(t);
    const s = await armed(t, dir, point);
    const data = randomBytes(64 * 1024);   // no image: nothing would process it anyway
    const r = await upload(s, { data, filename: 'lost.bin', raw: true });
    assert.ok(noAnswer(r), `${point}: the client got no answer (${r.status})`);
    await diedAtPoint(s, point);
    const tmp = tmpFiles(dir);
    assert.equal(tmp.length, 1, `${point}: one temp file`);
    assert.equal(fs.statSync(tmp[0]).size, data.length, `${point}: the temp file holds every byte`);
    assert.deepEqual(blobFiles(dir), [], `${point}: no blob yet`);
    const s2 = await restart(t, dir);
    assert.deepEqual(await listAssets(s2), [], `${point}: no asset`);
    const { assets } = await checkInvariants(s2, new Set([sha256(data)]));
    assert.equal(assets.length, 1, 'only the upload after the restart');
    await s2.cleanup();
  }
});

test('serve:blob.renamed: the blob is published but has no row; the start-up sweep removes it', { timeout: T }, async (t) => {
  const dir = caseDir(t);
  const s = await armed(t, dir, 'serve:blob.renamed');
  const r = await uploadImage(s);
  assert.ok(noAnswer(r), `no answer (${r.status})`);
  await diedAtPoint(s, 'blob.renamed');
  assert.deepEqual(tmpFiles(dir), [], 'renamed: no temp file');
  const blobs = blobFiles(dir);
  assert.equal(blobs.length, 1, 'the blob is there');
  assert.equal(sha256(fs.readFileSync(blobs[0])), sha256(TINY_PNG), 'whole');
  const s2 = await restart(t, dir);
  assert.ok(!fs.existsSync(blobs[0]), 'swept at start: bytes without an asset');
  assert.deepEqual(await listAssets(s2), []);
  await checkInvariants(s2, new Set([sha256(TINY_PNG)]));
});

test('serve:db.committed@2 and serve:event.appended: the row, event and job committed, no reply; restarted: the asset is whole and processed', { timeout: T }, async (t) => {
  // In a fresh data directory serve's first commit is the bootstrap key,
  // its second the upload's transaction.
  for (const point of ['serve:db.committed@2', 'serve:event.appended']) {
    const dir = caseDir(t);
    const s = await armed(t, dir, point);
    const r = await uploadImage(s);
    assert.ok(noAnswer(r), `${point}: the client got no answer (${r.status})`);
    await diedAtPoint(s, point);
    assert.equal(blobFiles(dir).length, 1, `${point}: the blob`);
    const s2 = await restart(t, dir);
    const before = await listAssets(s2);
    assert.equal(before.length, 1, `${point}: the committed asset is there though the client never heard of it`);
    const { assets, jobs } = await checkInvariants(s2, new Set([sha256(TINY_PNG)]));
    assert.equal(assets.length, 2);
    assert.equal(jobs.length, 2, 'its job was committed with it and ran');
    await s2.cleanup();
  }
});

// ------------------------------------------------------------ workers

test('worker:job.claimed and worker:db.committed@1: the job is retried after its lease and succeeds', { timeout: T * 2 }, async (t) => {
  // A worker's first COMMIT is asset.processing's: its claim is a statement
  // alone (db_job_claim_many), no transaction.
  for (const point of ['worker:job.claimed', 'worker:db.committed@1']) {
    const dir = caseDir(t);
    const s = await armed(t, dir, point, { workers: 1 });
    const r = await uploadImage(s);
    assert.equal(r.status, 201, r.text);
    await workerDied(s, point);
    const [job] = await listJobs(s);
    assert.equal(job.state, 'running', `${point}: the claim stands until its lease ends`);
    await stopClean(s);
    const s2 = await restart(t, dir);
    const { jobs, events } = await checkInvariants(s2, new Set([sha256(TINY_PNG)]));
    const retried = jobs.find((j) => j.id === job.id);
    assert.ok(retried.attempts >= 2, `${point}: the killed attempt counts (${retried.attempts})`);
    const processing = events.filter((e) => e.type === 'asset.processing' && e.asset_id === r.json.id).length;
    if (point.includes('db.committed')) assert.ok(processing >= 2, `${point}: processing committed by both attempts`);
    await s2.cleanup();
  }
});

test('worker:rendition.stored: a rendition is on disk before its row; the retry replaces it', { timeout: T }, async (t) => {
  const dir = caseDir(t);
  const s = await armed(t, dir, 'worker:rendition.stored', { workers: 1 });
  const r = await uploadImage(s);
  assert.equal(r.status, 201, r.text);
  await workerDied(s, 'rendition.stored');
  const a = (await api(s, 'GET', `/v1/assets/${r.json.id}`)).json;
  assert.equal(a.status, 'processing');
  assert.deepEqual(a.renditions, []);
  const rend = blobFiles(dir).filter((f) => path.basename(f).startsWith(`${r.json.id}.`));
  assert.equal(rend.length, 1, 'one rendition stored, not recorded');
  await stopClean(s);
  const s2 = await restart(t, dir);
  const { jobs } = await checkInvariants(s2, new Set([sha256(TINY_PNG)]));
  assert.ok(jobs.find((j) => j.asset_id === r.json.id).attempts >= 2);
});

test('worker:event.appended: asset.ready committed, the hub never poked; a since reader sees it once', { timeout: T }, async (t) => {
  const dir = caseDir(t);
  const s = await armed(t, dir, 'worker:event.appended', { workers: 1 });
  const r = await uploadImage(s);
  assert.equal(r.status, 201, r.text);
  await workerDied(s, 'event.appended');
  const a = (await api(s, 'GET', `/v1/assets/${r.json.id}`)).json;
  assert.equal(a.status, 'ready', 'the outcome was committed');
  await stopClean(s);
  const s2 = await restart(t, dir);
  const { jobs } = await checkInvariants(s2, new Set([sha256(TINY_PNG)]));
  assert.equal(jobs.find((j) => j.asset_id === r.json.id).attempts, 1, 'not run again');
});

// ------------------------------------------------------------ webhooks

test('serve:webhook.sent: the target has the event, the log does not; it stays due, later events go out', { timeout: T }, async (t) => {
  const got = [];
  const rx = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => { got.push(JSON.parse(Buffer.concat(chunks).toString('utf8'))); res.end('ok'); });
  });
  await new Promise((r) => rx.listen(0, '127.0.0.1', r));
  t.after(() => rx.close());
  const url = `http://127.0.0.1:${rx.address().port}/hook`;
  const dir = caseDir(t);
  const s = await armed(t, dir, 'serve:webhook.sent');
  const made = await api(s, 'POST', '/v1/webhooks', { headers: ['Content-Type: application/json'], args: ['--data-binary', '@-'],
    input: JSON.stringify({ url, events: ['asset.created'] }) });
  assert.equal(made.status, 201, made.text);
  await upload(s, { data: TEXT, filename: 'hooked.txt', raw: true });   // the answer may be cut
  await diedAtPoint(s, 'webhook.sent');
  assert.equal(got.length, 1, 'the target answered 200 before the kill');
  const s2 = await restart(t, dir);
  const d = (await api(s2, 'GET', `/v1/webhooks/${made.json.id}/deliveries`)).json.items;
  assert.equal(d.length, 1);
  // Not recorded as delivered: sent again when its lease (timeout + 30 s)
  // ends.  The resend is not waited for here; webhooks.test.mjs covers retries.
  assert.equal(d[0].state, 'pending', 'not recorded as delivered: it will be sent again (at least once)');
  assert.ok(d[0].next_attempt, 'and it has a next attempt');
  const { assets } = await checkInvariants(s2, new Set([sha256(TEXT)]));
  // Every asset's asset.created reached the target at least once (the one
  // the kill cut off is due again once its lease ends: a duplicate, never a loss).
  await waitFor(() => assets.every((a) => got.some((e) => e.type === 'asset.created' && e.data.id === a.id)),
    { timeoutMs: 20000, intervalMs: 100, what: 'every asset.created delivered' });
});

// ------------------------------------------------------------ tus

test('serve:tus.offset_recorded: a PATCH\'s offset is durable though unacknowledged; the client resumes from HEAD', { timeout: T }, async (t) => {
  const data = randomBytes(300 * 1024);
  const half = 100 * 1024;
  for (const point of ['serve:tus.offset_recorded', 'serve:tus.offset_recorded@2']) {
    const dir = caseDir(t);
    const s = await armed(t, dir, point);
    const where = await create(s, data.length);
    const first = await patch(s, where, 0, data.subarray(0, half));
    let at = half;
    if (point.endsWith('@2')) {
      assert.equal(first.status, 204, first.text);
      const last = await patch(s, where, half, data.subarray(half));
      assert.ok(noAnswer(last), `the last PATCH got no answer (${last.status})`);
      at = data.length;
    } else assert.ok(noAnswer(first), `the PATCH got no answer (${first.status})`);
    await diedAtPoint(s, point);
    const s2 = await restart(t, dir);
    const h = await api(s2, 'HEAD', where, { headers: [TUS] });
    assert.equal(h.status, 200);
    assert.equal(h.headers['upload-offset'], String(at), `${point}: the recorded offset`);
    if (at < data.length) {
      const rest = await patch(s2, where, at, data.subarray(at));
      assert.equal(rest.status, 204, rest.text);
    }
    // Completed by the PATCH, or (all bytes recorded, no asset) by a HEAD
    // once the dead writer's lease ran out.
    const id = await waitFor(async () => (await head(s2, `${s2.url}${where}`)).headers['asset-id'],
      { timeoutMs: 15000, intervalMs: 200, what: 'the upload completed' });
    const a = (await api(s2, 'GET', `/v1/assets/${id}`)).json;
    assert.equal(a.sha256, sha256(data));
    await checkInvariants(s2, new Set([sha256(data)]));
    await s2.cleanup();
  }
});

// ------------------------------------------------------------ S3

test('serve:s3.part_uploaded: a multipart upload cut after a part leaves no object and no asset', { timeout: T }, async (t) => {
  const { server, proxy, bucket, env, args } = await s3Setup(t);
  const dir = caseDir(t);
  const s = await armed(t, dir, 'serve:s3.part_uploaded', { env, args });
  const data = randomBytes(9 * 1024 * 1024);   // an 8 MiB part, then the rest as the last
  const r = await upload(s, { data, filename: 'big.bin', raw: true });
  assert.ok(noAnswer(r), `the client got no answer (${r.status})`);
  await diedAtPoint(s, 's3.part_uploaded');
  // Parts go up in parallel: the point fires when S3 acknowledged the first.
  assert.ok(proxy.log.some((e) => e.method === 'PUT' && /[?&]partNumber=\d+&/.test(e.url) && e.status === 200),
    `a part was uploaded: ${proxy.log.map((e) => `${e.method} ${e.url} ${e.status}`).join(', ')}`);
  assert.deepEqual(await keysUnder(server.endpoint, bucket, 'media/'), [], 'no object: S3 shows it whole or not at all');
  const s2 = await restart(t, dir, { env, args });
  assert.deepEqual(await listAssets(s2), []);
  const { assets } = await checkInvariants(s2, new Set([sha256(data)]), { disk: false });
  const keys = await keysUnder(server.endpoint, bucket, 'media/');
  for (const k of keys) assert.ok(assets.some((a) => k.startsWith(`media/${a.id}`)), `object ${k} has an asset`);
  // And the same bytes go up whole after the restart.
  const again = await upload(s2, { data, filename: 'big.bin', raw: true });
  assert.equal(again.status, 201, again.text);
  assert.equal(sha256((await api(s2, 'GET', `/v1/assets/${again.json.id}/content`)).body), sha256(data));
});

// ------------------------------------------------------------ CSV runs

test('worker:run.confirmed: the broker has the rows, the cursor does not; the run resumes and every count is exact', { timeout: T * 2 }, async (t) => {
  const mq = await startRabbit();   // the suite's shared node, or one of our own
  t.after(() => mq.destroy());
  const amqp = ['--amqp-url', mq.url];
  const csv = path.join(CORPUS, 'csv', 'people_11273.csv');
  const dir = caseDir(t);
  const s = await armed(t, dir, 'worker:run.confirmed', { workers: 1, args: amqp });
  const r = await curl(['-X', 'POST', '-H', `Authorization: Bearer ${s.token}`, '-F', `file=@${csv};type=text/csv`,
    '-F', 'mode=live', '-F', 'timeout=1', '-F', 'clear=true', `${s.url}/v1/runs`]);
  assert.equal(r.status, 202, r.text);
  await workerDied(s, 'run.confirmed');
  const mid = (await api(s, 'GET', `/v1/runs/${r.json.id}`)).json;
  assert.equal(mid.counts.sent, 0, 'the confirmation was never recorded');
  await stopClean(s);
  const s2 = await restart(t, dir, { args: amqp });
  let run;
  await waitFor(async () => {
    run = (await api(s2, 'GET', `/v1/runs/${r.json.id}`)).json;
    return run.state === 'succeeded' || run.state === 'failed';
  }, { timeoutMs: 90000, intervalMs: 200, what: 'the run to finish' });
  assert.equal(run.state, 'succeeded', JSON.stringify(run.error));
  // Published again from the cursor (at least once); the consumer drops
  // the lines it stored, so the counts are exact.
  assert.deepEqual(run.counts, { read: 11273, skipped: 0, sent: 11273, nacked: 0, received: 11273, saved: 11000, duplicates: 273 });
  assert.equal(run.table_count, 11000);
  await checkInvariants(s2, new Set([sha256(fs.readFileSync(csv))]));
});
