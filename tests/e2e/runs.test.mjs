// CSV runs (/v1/runs, issue #13): the rows of a `Full Name,e-mail` CSV
// published to RabbitMQ with confirms and stored by the built-in consumer
// (in the worker processes) in the owner's people table, with a report.
// The suite's broker (rabbitmq.mjs: shared with other files; the queues are
// assetd.run.<run id>) and one server serve the file; tests that break
// things start their own server, and the one that stops the broker its own
// node.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import amqplib from 'amqplib';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  CORPUS, SLOW, TEST_TIMEOUT as T, TINY_PNG, api, createKey, makeTempDir, removeDir,
  startServer, waitFor, curl,
} from './lib.mjs';
import { startRabbit } from './rabbitmq.mjs';

const PEOPLE = path.join(CORPUS, 'csv', 'people_11273.csv');
const EDGE = path.join(CORPUS, 'csv', 'edge_cases.csv');
let mq, srv, ownMq;
before(async () => {
  mq = await startRabbit();
  srv = await startServer({ workers: 1, args: ['--amqp-url', mq.url] });
});
after(async () => {
  await srv?.cleanup();
  await ownMq?.destroy();
  await mq?.destroy();
});

/** POST /v1/runs with form fields; file: a path, or {data, name, type}. */
function startRun(s, { file, fields = {}, token = s.token } = {}) {
  const args = ['-X', 'POST', '-H', `Authorization: Bearer ${token}`];
  let input;
  if (typeof file === 'string') args.push('-F', `file=@${file};type=text/csv`);
  else if (file) {
    args.push('-F', `file=@-;filename=${file.name || 'data.csv'};type=${file.type || 'text/csv'}`);
    input = file.data;
  }
  for (const [k, v] of Object.entries(fields)) args.push('-F', `${k}=${v}`);
  args.push(`${s.url}/v1/runs`);
  return curl(args, { input });
}

async function finished(s, id, { token = s.token, timeoutMs = 60000 } = {}) {
  let run;
  await waitFor(async () => {
    run = (await api(s, 'GET', `/v1/runs/${id}`, { token })).json;
    return run.state === 'succeeded' || run.state === 'failed';
  }, { timeoutMs: timeoutMs * SLOW, intervalMs: 100, what: `run ${id} finished` });
  return run;
}

/** Whether the broker still has the queue (a passive declare). */
async function queueExists(name, url = mq.url) {
  const conn = await amqplib.connect(url);
  conn.on('error', () => {});
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    try { await ch.checkQueue(name); return true; } catch { return false; }
  } finally { await conn.close().catch(() => {}); }
}

async function people(s, token = s.token) {
  const all = [];
  let after = '';
  for (;;) {
    const r = await api(s, 'GET', `/v1/people?limit=1000${after ? `&after=${encodeURIComponent(after)}` : ''}`, { token });
    assert.equal(r.status, 200, r.text);
    all.push(...r.json.people);
    if (!r.json.next_after) return { rows: all, count: r.json.count };
    after = r.json.next_after;
  }
}

for (const mode of ['live', 'batch']) {
  test(`people_11273.csv in ${mode} mode: sent 11,273, received 11,273, saved 11,000, table 11,000; the queue is gone`, { timeout: T }, async (t) => {
    const r = await startRun(srv, { file: PEOPLE, fields: { mode, timeout: '0', clear: 'true' } });
    assert.equal(r.status, 202, r.text);
    assert.match(r.headers.location, /^\/v1\/runs\/[A-Za-z0-9_-]{22}$/);
    assert.equal(r.json.mode, mode);
    const run = await finished(srv, r.json.id);
    assert.equal(run.state, 'succeeded', JSON.stringify(run.error));
    assert.deepEqual(run.counts, { read: 11273, skipped: 0, sent: 11273, nacked: 0, received: 11273, saved: 11000, duplicates: 273 });
    assert.equal(run.table_count, 11000);
    assert.equal(await queueExists(run.queue), false, 'the run deleted its queue');
    const rep = await api(srv, 'GET', `/v1/runs/${run.id}/report`);
    assert.equal(rep.status, 200);
    assert.deepEqual(rep.json.skipped_lines, []);
    assert.ok(rep.json.rates.sent_per_second > 0);
    t.diagnostic(`${mode}: ${Math.round(rep.json.rates.received_per_second)} rows/s end to end, ` +
      `${Math.round(rep.json.rates.sent_per_second)} confirmed publishes/s`);
  });
}

test('edge_cases.csv: 12 sent, 6 skipped with their lines, 10 saved, every name stored byte for byte', { timeout: T }, async () => {
  const key = await createKey(srv.dataDir, 'edge', 'edge-owner');
  const r = await startRun(srv, { file: EDGE, fields: { mode: 'batch', timeout: '0' }, token: key });
  assert.equal(r.status, 202, r.text);
  const run = await finished(srv, r.json.id, { token: key });
  assert.equal(run.state, 'succeeded', JSON.stringify(run.error));
  assert.deepEqual(run.counts, { read: 18, skipped: 6, sent: 12, nacked: 0, received: 12, saved: 10, duplicates: 2 });
  assert.equal(run.table_count, 10);
  const rep = (await api(srv, 'GET', `/v1/runs/${run.id}/report`, { token: key })).json;
  // the malformed rows' lines: "only-one-field", "a,b,c", the empty line,
  // "x,y,z,w", "just,two,but,four", and the unterminated quote that ends
  // the file (line 19: "Multi\nLine" spans lines 13 and 14)
  assert.deepEqual(rep.skipped_lines, [2, 4, 6, 8, 10, 19]);
  const { rows, count } = await people(srv, key);
  assert.equal(count, 10);
  const byMail = Object.fromEntries(rows.map((p) => [p.mail, p.name]));
  assert.equal(byMail['ann.oneil@example.com'], "Ann O'Neil", 'the first row of an e-mail wins');
  assert.equal(byMail['jane.doe@example.com'], 'Doe, Jane');
  assert.equal(byMail['bobby@example.com'], 'Bob "Bobby" Tables');
  assert.equal(byMail['zoe@example.com'], 'Zoë Ångström');
  assert.equal(byMail['drop@example.com'], "Robert'); DROP TABLE people;--");
  assert.equal(byMail['empty.name@example.com'], '');
  assert.equal(byMail['multi@example.com'], 'Multi\nLine');
  assert.equal(byMail['trail@example.com'], 'Trailing Space ');
  assert.equal(byMail['tab@example.com'], 'Tab\tName');
  assert.equal(byMail['last@example.com'], 'Last Good');
  // The HTML report keeps the original's lines.
  const html = await api(srv, 'GET', `/v1/runs/${run.id}/report`, { token: key, headers: ['Accept: text/html'] });
  assert.equal(html.status, 200);
  assert.match(html.headers['content-type'], /^text\/html/);
  for (const line of ['Rows sent', 'Received', 'Saved', 'Database count', run.queue]) assert.ok(html.text.includes(line), line);
});

test('bad input is refused before anything is stored, published or cleared', { timeout: T }, async () => {
  const key = await createKey(srv.dataDir, 'bad', 'bad-owner');
  // one row in the table, which no refused run may clear
  const seed = await startRun(srv, { file: { data: 'Keep Me,keep@example.com\n' }, fields: { timeout: '0' }, token: key });
  assert.equal(seed.status, 202, seed.text);
  assert.equal((await finished(srv, seed.json.id, { token: key })).table_count, 1);
  const assetsBefore = (await api(srv, 'GET', '/v1/assets', { token: key })).json.items.length;
  const cases = [
    [{ file: EDGE, fields: { mode: 'stream', clear: '1' } }, 400, 'invalid_setting', /Wrong mode supplied, options are `live` and `batch`/],
    [{ file: EDGE, fields: { timeout: 'abc', clear: '1' } }, 400, 'invalid_setting', /Wrong timeout value supplied, timeout must be an int/],
    [{ file: EDGE, fields: { timeout: '-1', clear: '1' } }, 400, 'invalid_setting', /timeout must be an int/],
    [{ file: EDGE, fields: { timeout: '1.5', clear: '1' } }, 400, 'invalid_setting', /timeout must be an int/],
    [{ file: EDGE, fields: { clear: 'maybe' } }, 400, 'invalid_setting', /clear/],
    [{ fields: { mode: 'live', clear: '1' } }, 400, 'missing_file', /Please supply a csv file to process/],
    [{ file: { data: TINY_PNG, name: 'x.csv', type: 'text/csv' }, fields: { clear: '1' } }, 415, 'not_csv', /not text/],
    [{ file: { data: '' }, fields: { clear: '1' } }, 415, 'not_csv', /empty/],
    [{ fields: { asset_id: 'AAAAAAAAAAAAAAAAAAAAAA', clear: '1' } }, 404, 'not_found', /no such asset/],
  ];
  for (const [req, status, code, message] of cases) {
    const r = await startRun(srv, { ...req, token: key });
    assert.equal(r.status, status, `${JSON.stringify(req.fields)}: ${r.text}`);
    assert.equal(r.json.error.code, code);
    assert.match(r.json.error.message, message);
  }
  assert.equal((await people(srv, key)).count, 1, 'nothing cleared');
  assert.equal((await api(srv, 'GET', '/v1/assets', { token: key })).json.items.length, assetsBefore, 'no asset kept');
  assert.equal((await api(srv, 'GET', '/v1/runs', { token: key })).json.runs.length, 1, 'no run made');
  // Another owner sees none of it.
  assert.equal((await api(srv, 'GET', `/v1/runs/${seed.json.id}`)).status, 404);
  assert.equal((await api(srv, 'GET', '/v1/runs', {})).json.runs.some((x) => x.id === seed.json.id), false);
});

test('a run on an uploaded CSV (asset_id), and two runs at once', { timeout: T }, async () => {
  const key = await createKey(srv.dataDir, 'two', 'two-owner');
  const up = await curl(['-X', 'POST', '-H', `Authorization: Bearer ${key}`, '-F', `file=@${EDGE};type=text/csv`, `${srv.url}/v1/assets`]);
  assert.equal(up.status, 201, up.text);
  const a = await startRun(srv, { fields: { asset_id: up.json.id, timeout: '1', mode: 'live' }, token: key });
  const b = await startRun(srv, { file: PEOPLE, fields: { timeout: '1', mode: 'batch' }, token: key });
  assert.equal(a.status, 202, a.text);
  assert.equal(b.status, 202, b.text);
  assert.equal(a.json.asset_id, up.json.id);
  const [ra, rb] = await Promise.all([finished(srv, a.json.id, { token: key }), finished(srv, b.json.id, { token: key })]);
  assert.equal(ra.state, 'succeeded');
  assert.equal(rb.state, 'succeeded');
  assert.equal(ra.counts.sent, 12);
  assert.equal(rb.counts.sent, 11273);
  assert.equal(ra.counts.received + rb.counts.received, 11273 + 12);
  // one table: each e-mail saved once, whichever run stored it first
  assert.equal(ra.counts.saved + rb.counts.saved, 10 + 11000);
  assert.equal((await people(srv, key)).count, 11010);
  const list = (await api(srv, 'GET', '/v1/runs', { token: key })).json.runs.map((x) => x.id);
  assert.deepEqual(list.slice(0, 2).sort(), [a.json.id, b.json.id].sort());
});

test('the idle timeout: the consumer stops that long after the last message', { timeout: T }, async () => {
  const r = await startRun(srv, { file: EDGE, fields: { mode: 'live', timeout: '3' } });
  const run = await finished(srv, r.json.id);
  assert.equal(run.state, 'succeeded');
  const idle = Date.parse(run.finished) - Date.parse(run.last_message);
  assert.ok(idle >= 3000, `finished ${idle} ms after the last message`);
  assert.ok(idle < 3000 + 5000 * SLOW, `finished ${idle} ms after the last message`);
});

test('without --amqp-url the run routes answer 503 and say what to configure', { timeout: T }, async (t) => {
  const s = await startServer({});
  t.after(() => s.cleanup());
  const r = await startRun(s, { file: EDGE });
  assert.equal(r.status, 503);
  assert.equal(r.json.error.code, 'amqp_not_configured');
  assert.match(r.json.error.message, /--amqp-url/);
});

test('a broker that is down: the run fails with a clear reason, the password in no log or error', { timeout: T }, async (t) => {
  // in the environment, as an operator keeps a secret off the command line
  const url = 'amqp://guest:s3cret-pass@127.0.0.1:1/%2f';
  const s = await startServer({ workers: 1, env: { ASSETD_AMQP_URL: url }, args: ['--max-upload', '2K'] });
  t.after(() => s.cleanup());
  // a CSV over the upload limit: refused before anything is stored
  const big = await startRun(s, { file: { data: 'A Name,a@example.com\n'.repeat(300) }, fields: { timeout: '0' } });
  assert.equal(big.status, 413, big.text);
  assert.equal(big.json.error.code, 'payload_too_large');
  assert.equal((await api(s, 'GET', '/v1/runs')).json.runs.length, 0);
  const r = await startRun(s, { file: EDGE, fields: { timeout: '0' } });
  assert.equal(r.status, 202, r.text);
  const run = await finished(s, r.json.id);
  assert.equal(run.state, 'failed');
  assert.equal(run.error.code, 'broker_unavailable');
  assert.match(run.error.message, /cannot reach RabbitMQ/);
  for (const l of [...s.stderrLines, ...s.stdoutLines, JSON.stringify(run)]) assert.ok(!l.includes('s3cret-pass'), l);
  const ps = execFileSync('ps', ['-eo', 'args']).toString();
  assert.ok(!ps.includes('s3cret-pass'), 'no process has the password on its command line (serve gives it to its workers in their environment)');
});

test('cancel: a running run stops as failed (cancelled) and its queue goes; a finished one answers 409', { timeout: T }, async () => {
  const r = await startRun(srv, { file: EDGE, fields: { mode: 'live', timeout: '60' } });
  await waitFor(async () => (await api(srv, 'GET', `/v1/runs/${r.json.id}`)).json.state === 'consuming', { timeoutMs: 20000 * SLOW });
  const c = await api(srv, 'POST', `/v1/runs/${r.json.id}/cancel`);
  assert.equal(c.status, 202, c.text);
  const run = await finished(srv, r.json.id);
  assert.equal(run.state, 'failed');
  assert.equal(run.error.code, 'cancelled');
  assert.equal(await queueExists(run.queue), false);
  assert.equal((await api(srv, 'POST', `/v1/runs/${r.json.id}/cancel`)).status, 409);
});

test('kill -9 of the worker mid-run: another takes the run over and every count is exact', { timeout: T * 2 }, async (t) => {
  const dir = makeTempDir('assetd-runs-');
  t.after(() => removeDir(dir));
  // 60,000 rows, 30,000 distinct e-mails: long enough to be killed mid-publish
  const lines = [];
  for (let i = 0; i < 60000; i++) lines.push(`Person ${i},p${i % 30000}@example.com`);
  const csv = path.join(dir, 'big.csv');
  fs.writeFileSync(csv, lines.join('\n') + '\n');
  const s = await startServer({ workers: 1, args: ['--amqp-url', mq.url, '--job-lease', '2'] });
  t.after(() => s.cleanup());
  const r = await startRun(s, { file: csv, fields: { mode: 'live', timeout: '1', clear: '1' } });
  assert.equal(r.status, 202, r.text);
  let mid;
  await waitFor(async () => {
    mid = (await api(s, 'GET', `/v1/runs/${r.json.id}`)).json;
    return mid.counts.sent > 0 || mid.state !== 'publishing' && mid.state !== 'queued';
  }, { timeoutMs: 30000 * SLOW, intervalMs: 20 });
  const pids = execFileSync('ps', ['-o', 'pid=', '--ppid', String(s.pid)]).toString().split('\n').map(Number).filter(Boolean);
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  t.diagnostic(`killed the worker at ${mid.state}, sent ${mid.counts.sent}, received ${mid.counts.received}`);
  const run = await finished(s, r.json.id, { timeoutMs: 120000 });
  assert.equal(run.state, 'succeeded', JSON.stringify(run.error));
  assert.deepEqual(run.counts, { read: 60000, skipped: 0, sent: 60000, nacked: 0, received: 60000, saved: 30000, duplicates: 30000 });
  assert.equal(run.table_count, 30000);
  assert.equal(await queueExists(run.queue), false);
});

/** Whether the queue was declared with x-expires = ms: a declare with other
 *  arguments is refused (406), one with the same is a no-op.  (amqplib's
 *  checkQueue cannot read a queue's arguments.) */
async function queueExpires(name, ms, url) {
  const conn = await amqplib.connect(url);
  conn.on('error', () => {});
  const declare = async (args) => {
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    try { await ch.assertQueue(name, { durable: true, ...args }); await ch.close(); return 'ok'; } catch (e) { return e.message; }
  };
  try { return { same: await declare({ expires: ms }), without: await declare({}) }; } finally { await conn.close().catch(() => {}); }
}

test('the broker stopped in the middle of a run, and before one: both runs fail with a clear reason; back, a run succeeds', { timeout: 3 * T }, async (t) => {
  ownMq = await startRabbit({ own: true });   // it stops the broker: a node of its own
  const dir = makeTempDir('assetd-runs-');
  t.after(() => removeDir(dir));
  // 100,000 rows: long enough to be stopped mid-publish
  const ROWS = 100000;
  const lines = [];
  for (let i = 0; i < ROWS; i++) lines.push(`Person ${i},p${i}@example.com`);
  const csv = path.join(dir, 'big.csv');
  fs.writeFileSync(csv, lines.join('\n') + '\n');
  const s = await startServer({ workers: 1, args: ['--amqp-url', ownMq.url] });
  t.after(() => s.cleanup());

  // (b) stopped mid-publish.  Batch mode: only the publisher is connected.
  const r = await startRun(s, { file: csv, fields: { mode: 'batch', timeout: '0' } });
  assert.equal(r.status, 202, r.text);
  let mid;
  await waitFor(async () => {
    mid = (await api(s, 'GET', `/v1/runs/${r.json.id}`)).json;
    return mid.counts.sent > 0 || mid.state !== 'publishing' && mid.state !== 'queued';
  }, { timeoutMs: 30000 * SLOW, intervalMs: 20, what: 'the first confirmed rows' });
  assert.equal(mid.state, 'publishing', JSON.stringify(mid));
  // The run's queue outlives a run that cannot delete it (the broker gone)
  // only until x-expires (RUN_QUEUE_EXPIRES_MS, src/core/run.h): read here,
  // while it surely exists (a broker killed right after the declaration
  // may come back without it).
  const exp = await queueExpires(mid.queue, 60 * 60 * 1000, ownMq.url);
  assert.equal(exp.same, 'ok', 'declared with x-expires of an hour');
  assert.match(exp.without, /PRECONDITION_FAILED.*x-expires/);
  const stopped = Date.now();
  // Killed, not shut down: a shutdown takes seconds on a loaded machine, time
  // enough for the whole CSV to go out before the connection drops.
  await ownMq.kill();
  const lost = await finished(s, r.json.id);
  t.diagnostic(`stopped at ${mid.counts.sent} sent; the run failed ${Date.now() - stopped} ms after the stop began ` +
    `(${lost.counts.sent} sent): ${lost.error?.code}: ${lost.error?.message}`);
  assert.equal(lost.state, 'failed');
  // The publisher reconnects (RECONNECTS) and each connect tries 4 times
  // (~3.5 s): a broker that stays down is broker_unavailable; one that
  // takes it and drops it again each time, broker_lost.
  assert.ok(['broker_unavailable', 'broker_lost'].includes(lost.error.code), JSON.stringify(lost.error));
  assert.match(lost.error.message, /^(cannot reach RabbitMQ|the connection to RabbitMQ failed 4 times): ./);
  assert.ok(lost.counts.sent > 0 && lost.counts.sent < ROWS, `stopped mid-publish: ${lost.counts.sent} sent`);
  assert.ok(s.logs.some((j) => j.msg === 'run publisher lost its connection' && j.run === r.json.id), 'the lost connection is logged');

  // (a) stopped before the run.
  const r2 = await startRun(s, { file: EDGE, fields: { mode: 'live', timeout: '0' } });
  assert.equal(r2.status, 202, r2.text);
  const down = await finished(s, r2.json.id);
  assert.equal(down.state, 'failed');
  assert.equal(down.error.code, 'broker_unavailable');
  assert.match(down.error.message, /^cannot reach RabbitMQ: ./);
  assert.equal(down.counts.sent, 0);
  for (const l of [...s.stderrLines, ...s.stdoutLines, JSON.stringify(lost), JSON.stringify(down)]) {
    assert.ok(!l.includes('guest:guest'), `the password in: ${l}`);
  }

  // Back: a new run succeeds on the same server.
  t.diagnostic(`rabbitmq-server restarted in ${await ownMq.start()} ms`);
  const r3 = await startRun(s, { file: EDGE, fields: { mode: 'live', timeout: '0' } });
  assert.equal(r3.status, 202, r3.text);
  const back = await finished(s, r3.json.id);
  assert.equal(back.state, 'succeeded', JSON.stringify(back.error));
  assert.equal(back.counts.sent, 12);
  assert.equal(back.counts.received, 12);
  assert.equal(await queueExists(back.queue, ownMq.url), false);
  // The run that never connected never made a queue.  The failed run's is
  // back only if the killed broker had written its declaration; either
  // way it goes by itself (x-expires, checked above).
  assert.equal(await queueExists(down.queue, ownMq.url), false);
  assert.equal(lost.queue, mid.queue);
});

// ---------------------------------------------------------------- the original pages

/** POST /simulate/ as the original's clients did: the file as `input_file`,
 *  timeout and mode in the query string. */
function simulate(s, { file, query = '', fields = {}, token = s.token, accept } = {}) {
  const args = ['-X', 'POST'];
  if (token) args.push('-H', `Authorization: Bearer ${token}`);
  if (accept) args.push('-H', `Accept: ${accept}`);
  if (file) args.push('-F', `input_file=@${file};type=text/csv`);
  for (const [k, v] of Object.entries(fields)) args.push('-F', `${k}=${v}`);
  if (!file && !Object.keys(fields).length) args.push('-F', 'nothing=here');
  args.push(`${s.url}/simulate/${query ? `?${query}` : ''}`);
  return curl(args, { timeoutMs: 120000 });
}

test('POST /simulate/ answers with the report page when the run has ended, and the original messages with a 4xx/5xx', { timeout: T }, async (t) => {
  const key = await createKey(srv.dataDir, 'sim', 'sim-owner');
  const r = await simulate(srv, { file: EDGE, query: 'timeout=0&mode=batch', token: key });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers['content-type'], /^text\/html/);
  const cell = (label) => new RegExp(`<th>${label}</th><td>([^<]*)</td>`).exec(r.text)?.[1];
  assert.equal(cell('Rows sent'), '12');
  assert.equal(cell('Received'), '12');
  assert.equal(cell('Saved'), '10');
  assert.equal(cell('Database count'), '10');
  assert.equal(cell('Mode'), 'batch');
  assert.match(cell('Session'), /^assetd\.run\.[A-Za-z0-9_-]{22}$/);
  // the run is a run like any other
  const runs = (await api(srv, 'GET', '/v1/runs', { token: key })).json.runs;
  assert.equal(runs.length, 1);
  assert.equal(runs[0].state, 'succeeded');
  // form fields work as well as the query string; JSON on request
  const j = await simulate(srv, { file: EDGE, fields: { timeout: '0', mode: 'live' }, token: key, accept: 'application/json' });
  assert.equal(j.status, 200, j.text);
  assert.equal(j.json.mode, 'live');
  assert.equal(j.json.counts.duplicates, 12, 'the table had every e-mail already');
  const errors = [
    [{ query: 'timeout=0' }, 400, 'Please supply a csv file to process'],
    [{ file: EDGE, query: 'mode=stream' }, 400, 'Wrong mode supplied, options are `live` and `batch`'],
    [{ file: EDGE, query: 'timeout=soon' }, 400, 'Wrong timeout value supplied, timeout must be an int'],
  ];
  for (const [req, status, message] of errors) {
    const e = await simulate(srv, { ...req, token: key });
    assert.equal(e.status, status, `${JSON.stringify(req)}: ${e.text}`);
    assert.match(e.headers['content-type'], /^text\/html/);
    assert.ok(e.text.includes(message.replaceAll('`', '`')), `${message} in ${e.text}`);
  }
  assert.equal((await simulate(srv, { file: EDGE, token: null })).status, 401);
  // RabbitMQ not configured, and unreachable
  const none = await startServer({});
  t.after(() => none.cleanup());
  const nc = await simulate(none, { file: EDGE });
  assert.equal(nc.status, 503);
  assert.match(nc.text, /RabbitMQ is not configured/);
  const dead = await startServer({ workers: 1, env: { ASSETD_AMQP_URL: 'amqp://guest:guest@127.0.0.1:1/%2f' } });
  t.after(() => dead.cleanup());
  const un = await simulate(dead, { file: EDGE, query: 'timeout=0' });
  assert.equal(un.status, 503, un.text);
  assert.match(un.text, /cannot reach RabbitMQ/);
});

test('the /publish page: the original form, sent with the gallery\'s key, shows the report', { timeout: T }, async (t) => {
  const { launchBrowser, openPage, waitInPage } = await import('./browser.mjs');
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const key = await createKey(srv.dataDir, 'page', 'page-owner');
  const { page, assertClean } = await openPage(t, browser, `${srv.url}/publish`,
    { init: `localStorage.setItem('assetd.key', ${JSON.stringify(key)})` });
  assert.equal(await page.locator('#key-form').isHidden(), true, 'the gallery\'s key is used');
  await page.fill('#timeout', '0');
  await page.selectOption('#mode', 'batch');
  await page.check('#clear');
  await page.setInputFiles('#input_file', EDGE);
  await page.click('#send');
  await waitInPage(page, 'the report', () => !document.getElementById('result').hidden, undefined, 60000);
  const report = Object.fromEntries(await page.$$eval('#report tr', (trs) => trs.map((tr) => [tr.cells[0]?.textContent ?? tr.querySelector('th').textContent, tr.querySelector('td').textContent])));
  assert.equal(report['Rows sent'], '12');
  assert.equal(report['Received'], '12');
  assert.equal(report['Saved'], '10');
  assert.equal(report['Database count'], '10');
  assert.equal(report['Skipped lines'], '2, 4, 6, 8, 10, 19');
  // without a file: the original's message, shown as text
  await page.setInputFiles('#input_file', []);
  await page.click('#send');
  await waitInPage(page, 'the message', () => document.getElementById('message').textContent.includes('Please supply a csv file to process'));
  await assertClean([/400 \(Bad Request\)/]);
});

// ---------------------------------------------------------------- the consumer protocol

/** GET /consumer/<what>/?query, as promise-pub's client called its consumer. */
const consumer = (s, what, query = '', token = s.token) => api(s, 'GET', `/consumer/${what}/${query ? `?${query}` : ''}`, { token });

/** Publishes rows to a session's queue as promise-pub did: {"name","mail"}, no message id. */
async function publishRows(uuid, rows) {
  const conn = await amqplib.connect(mq.url);
  try {
    const ch = await conn.createConfirmChannel();
    for (const [name, mail] of rows) ch.sendToQueue(uuid, Buffer.from(JSON.stringify({ name, mail })));
    await ch.waitForConfirms();
  } finally { await conn.close().catch(() => {}); }
}

test('the original consumer protocol: create, publish, process (batch and live), getSession, remove, list', { timeout: T }, async () => {
  const key = await createKey(srv.dataDir, 'proto', 'proto-owner');
  const health = await consumer(srv, 'health', '', null);
  assert.equal(health.status, 200);
  assert.equal(health.text, 'OK');
  // batch: everything published first, then /process/ blocks until the queue is done
  const created = await consumer(srv, 'create', '', key);
  assert.equal(created.status, 200, created.text);
  const uuid = created.json.uuid;
  assert.match(uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(created.json.ended, '0001-01-01T00:00:00Z');
  assert.equal(created.json.checksum, 0);
  assert.equal(await queueExists(uuid), true, 'the queue is there before /process/');
  await publishRows(uuid, [["Ann O'Neil", 'ann@example.com'], ['Bob', 'bob@example.com'], ['Ann Again', 'ann@example.com']]);
  const t0 = Date.now();
  const proc = await consumer(srv, 'process', `uuid=${uuid}&timeout=1&mode=batch`, key);
  assert.equal(proc.status, 200, proc.text);
  assert.equal(proc.text, 'OK');
  assert.ok(Date.now() - t0 >= 1000, 'batch mode answers once the queue is done (after the timeout)');
  const got = await consumer(srv, 'getSession', `uuid=${uuid}`, key);
  assert.equal(got.status, 200, got.text);
  assert.equal(got.json.checksum, 3);
  assert.equal(got.json.saved, 2);
  assert.equal(got.json.duplicates, 1);
  assert.notEqual(got.json.ended, '0001-01-01T00:00:00Z');
  assert.equal((await people(srv, key)).rows.find((p) => p.mail === 'ann@example.com').name, "Ann O'Neil");
  assert.ok(Object.keys((await consumer(srv, 'list', '', key)).json.sessions).includes(uuid));
  const removed = await consumer(srv, 'remove', `uuid=${uuid}`, key);
  assert.equal(removed.status, 200, removed.text);
  assert.equal(removed.json.uuid, uuid);
  assert.deepEqual((await consumer(srv, 'list', '', key)).json.sessions, {});
  assert.equal((await consumer(srv, 'getSession', `uuid=${uuid}`, key)).text, 'Not a valid uuid');
  assert.equal(await queueExists(uuid), false);
  // live: /process/ answers at once and the consumer stores rows as they come
  const live = (await consumer(srv, 'create', '', key)).json.uuid;
  const lp = await consumer(srv, 'process', `uuid=${live}&timeout=2&mode=live`, key);
  assert.equal(lp.text, 'OK');
  await publishRows(live, [['Cy', 'cy@example.com'], ['Di', 'di@example.com']]);
  await waitFor(async () => (await consumer(srv, 'getSession', `uuid=${live}`, key)).json.checksum === 2, { timeoutMs: 20000 * SLOW });
  // /remove/ of a session still processing waits for it, as the original did
  const lr = await consumer(srv, 'remove', `uuid=${live}`, key);
  assert.equal(lr.status, 200, lr.text);
  assert.equal(lr.json.saved, 2);
  assert.equal(lr.json.state, 'succeeded');
  // the original's answers to what it could not use
  assert.equal((await consumer(srv, 'getSession', '', key)).text, 'Please supply a uuid');
  assert.equal((await consumer(srv, 'getSession', '', key)).status, 400);
  assert.equal((await consumer(srv, 'process', 'uuid=nope', key)).text, 'Not a valid uuid');
  const other = (await consumer(srv, 'create', '', key)).json.uuid;
  const wrong = await consumer(srv, 'process', `uuid=${other}&mode=stream`, key);
  assert.equal(wrong.status, 400);
  assert.equal(wrong.text, 'Wrong mode supplied, mode should be `batch` or `live`');
  assert.equal((await consumer(srv, 'getSession', `uuid=${other}`)).status, 404, 'another owner\'s session is unknown');
  assert.equal((await consumer(srv, 'create', '', null)).status, 401);
  const gone = await consumer(srv, 'remove', `uuid=${other}`, key);
  assert.equal(gone.status, 200, gone.text);
  assert.equal(gone.json.state, 'succeeded');
  assert.equal(await queueExists(other), false, 'a session never processed: its queue goes with /remove/');
});
