// Asset events on RabbitMQ (--events-amqp-exchange): every event of the log
// on a durable topic exchange, routing key = type, the /v1/events JSON as
// body, persistent, confirmed, from a durable cursor — so a broker outage
// delays events and never drops or reorders them.  The suite's shared
// broker (rabbitmq.mjs) serves the file, under names of its own (other files
// use it at the same time); the outage test stops and starts a node of its
// own.  amqplib is the consumer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import amqplib from 'amqplib';
import path from 'node:path';
import {
  CORPUS, SLOW, TEST_TIMEOUT as T, TEXT, TS_RE, startServer, upload, waitFor, scrape, metricSum,
  request, runCli,
} from './lib.mjs';
import { startRabbit } from './rabbitmq.mjs';

// The shared node outlives the file (both suites use it): names unique to this process.
const TAG = `t${process.pid}`;
const EXCHANGE = `assetd.events.${TAG}`;
const QUEUES = ['all-events', 'outage', 'retries', 'full'].map((q) => `${q}.${TAG}`);
const [Q_ALL, Q_OUTAGE, Q_RETRIES, Q_FULL] = QUEUES;
const PHOTO = path.join(CORPUS, 'photos', '30_orig_RainDrops_1920x1200.jpg');
let mq, ownMq;   // ownMq: the outage test's
before(async () => { mq = await startRabbit(); });
after(async () => {
  await ownMq?.destroy();
  if (mq?.shared) {   // what the file declared on the shared node
    const conn = await amqplib.connect(mq.url);
    conn.on('error', () => {});
    const ch = await conn.createChannel();
    for (const q of QUEUES) await ch.deleteQueue(q);
    await ch.deleteExchange(EXCHANGE);
    await conn.close();
  }
  await mq?.destroy();
});

/** A durable queue bound to the exchange with `#`, consumed (and acked) into msgs. */
async function consumer(queue, broker = mq) {
  const conn = await amqplib.connect(broker.url);
  conn.on('error', () => {});   // a broker stop closes it; the tests reconnect
  const ch = await conn.createChannel();
  await ch.assertExchange(EXCHANGE, 'topic', { durable: true });
  await ch.assertQueue(queue, { durable: true });
  await ch.bindQueue(queue, EXCHANGE, '#');
  const msgs = [];
  await ch.consume(queue, (m) => {
    msgs.push({
      key: m.fields.routingKey, redelivered: m.fields.redelivered, id: m.properties.messageId,
      mode: m.properties.deliveryMode, type: m.properties.contentType, raw: m.content.toString('utf8'),
      json: JSON.parse(m.content.toString('utf8')),
    });
    ch.ack(m);
  });
  return { msgs, close: () => conn.close().catch(() => {}) };
}

const amqpArgs = (url = mq.url) => ['--amqp-url', url, '--events-amqp-exchange', EXCHANGE];
const metric = async (srv, name) => metricSum((await scrape(srv)).metrics, name);
const noSecret = (srv, secret) => {
  for (const l of [...srv.stderrLines, ...srv.stdoutLines]) assert.ok(!l.includes(secret), `a log line has the password: ${l}`);
};

test('every event of an upload is on the exchange: in order, once, routing key = type, persistent JSON', { timeout: T }, async (t) => {
  t.diagnostic(mq.shared ? 'the shared rabbitmq-server' : `private rabbitmq-server started in ${mq.startMs} ms`);
  const c = await consumer(Q_ALL);
  t.after(c.close);
  // Two renditions: exactly one job.progress (as events.test.mjs).
  const srv = await startServer({ workers: 1, args: [...amqpArgs(), '--renditions', 'thumb:256:jpeg:80,preview:1024:webp:80'] });
  t.after(() => srv.cleanup());
  const r = await upload(srv, { file: PHOTO, filename: 'rain.jpg' });
  assert.equal(r.status, 201, r.text);
  const id = r.json.id;
  const mine = () => c.msgs.filter((m) => m.json.asset_id === id);
  await waitFor(() => mine().some((m) => m.key === 'asset.ready'), { timeoutMs: 30000 * SLOW, what: 'asset.ready on the queue' });
  assert.deepEqual(mine().map((m) => m.key), ['asset.created', 'asset.processing', 'job.progress', 'asset.ready']);
  let last = 0;
  for (const m of c.msgs) {
    assert.equal(m.key, m.json.type, 'routing key = event type');
    assert.equal(m.id, String(m.json.id), 'message_id = event id');
    assert.ok(m.json.id > last, 'ids strictly increase: in order, no duplicates');
    last = m.json.id;
    assert.equal(m.mode, 2, 'persistent');
    assert.equal(m.type, 'application/json');
    assert.equal(m.redelivered, false);
    // the shape /v1/events serves, keys in its order
    assert.deepEqual(Object.keys(m.json), ['id', 'type', 'asset_id', 'at', 'data']);
    assert.match(m.json.at, TS_RE);
  }
  const ready = mine().at(-1).json;
  assert.equal(ready.data.id, id);
  assert.equal(ready.data.status, 'ready');
  await waitFor(async () => await metric(srv, 'assetd_amqp_events_lag') === 0, { what: 'lag 0' });
  assert.ok(await metric(srv, 'assetd_amqp_events_published_total') >= 4);
  assert.equal(await metric(srv, 'assetd_amqp_events_failures_total'), 0);
  assert.equal(await metric(srv, 'assetd_amqp_events_connected'), 1);
  noSecret(srv, 'guest:guest');
});

test('a broker outage: 50 uploads while it is down all arrive once, in order, after it is back; a server started meanwhile serves', { timeout: 3 * T }, async (t) => {
  // It stops the broker: a node of its own (destroyed in after(), when the servers are gone).
  ownMq = await startRabbit({ own: true });
  t.diagnostic(`private rabbitmq-server started in ${ownMq.startMs} ms`);
  const srv = await startServer({ args: amqpArgs(ownMq.url) });
  t.after(() => srv.cleanup());
  let c = await consumer(Q_OUTAGE, ownMq);
  const warm = await upload(srv, { data: TEXT, filename: 'warm.txt' });
  await waitFor(() => c.msgs.some((m) => m.json.asset_id === warm.json.id), { timeoutMs: 20000 * SLOW, what: 'the first event' });
  // Everything confirmed before the stop, so nothing can be sent twice.
  await waitFor(async () => await metric(srv, 'assetd_amqp_events_lag') === 0, { what: 'lag 0' });
  await c.close();

  await ownMq.stop();
  await waitFor(async () => await metric(srv, 'assetd_amqp_events_connected') === 0, { timeoutMs: 10000 * SLOW, what: 'the server to see the broker gone' });
  // A server started while the broker is down starts, serves and keeps its events.
  const late = await startServer({ args: amqpArgs(ownMq.url) });
  t.after(() => late.cleanup());
  const lateUpload = await upload(late, { data: TEXT, filename: 'late.txt' });
  assert.equal(lateUpload.status, 201, lateUpload.text);

  const ids = [];
  for (let i = 0; i < 50; i++) {
    const r = await upload(srv, { data: Buffer.from(`outage ${i}\n`), filename: `o${i}.txt` });
    assert.equal(r.status, 201, r.text);
    ids.push(r.json.id);
  }
  assert.equal((await request(srv, { path: '/readyz', token: null })).status, 200, 'ready without the broker');
  assert.ok(await metric(srv, 'assetd_amqp_events_lag') >= 50, 'the 50 events wait');
  assert.ok(await metric(srv, 'assetd_amqp_events_failures_total') >= 1, 'the outage is counted');

  t.diagnostic(`rabbitmq-server restarted in ${await ownMq.start()} ms`);
  c = await consumer(Q_OUTAGE, ownMq);
  t.after(c.close);
  const created = () => c.msgs.filter((m) => m.key === 'asset.created' && ids.includes(m.json.asset_id));
  await waitFor(() => created().length >= 50, { timeoutMs: 60000 * SLOW, what: 'the 50 asset.created' });
  await waitFor(async () => await metric(srv, 'assetd_amqp_events_lag') === 0, { timeoutMs: 10000 * SLOW, what: 'lag 0' });
  assert.deepEqual(created().map((m) => m.json.asset_id), ids, 'all 50, once each, in upload order');
  assert.ok(c.msgs.every((m) => !m.redelivered));
  // Ids are per server (each has its own event log): the order is srv's.
  // The late server reconnects on its own schedule, before or after srv.
  const seen = c.msgs.filter((m) => m.json.asset_id !== lateUpload.json.id).map((m) => m.json.id);
  assert.deepEqual(seen, [...seen].sort((a, b) => a - b), 'in id order');
  // The late server's event came too, once it could connect.
  await waitFor(() => c.msgs.some((m) => m.json.asset_id === lateUpload.json.id), { timeoutMs: 60000 * SLOW, what: "the late server's event" });
});

test('a nack or a closed channel is counted and retried: events go again, first arrivals stay in order', { timeout: 2 * T }, async (t) => {
  const srv = await startServer({ args: amqpArgs() });
  t.after(() => srv.cleanup());
  const c = await consumer(Q_RETRIES);
  t.after(c.close);
  const conn = await amqplib.connect(mq.url);
  conn.on('error', () => {});
  t.after(() => conn.close().catch(() => {}));
  const ch = await conn.createChannel();
  const failures = () => metric(srv, 'assetd_amqp_events_failures_total');
  const warned = (text) => srv.logs.some((j) => j.msg?.startsWith('amqp: connection lost') && j.error?.includes(text));

  // A queue that holds one message and refuses the next: RabbitMQ nacks it.
  await ch.assertQueue(Q_FULL, { durable: true, maxLength: 1, overflow: 'reject-publish' });
  await ch.bindQueue(Q_FULL, EXCHANGE, 'asset.created');
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push((await upload(srv, { data: TEXT, filename: `n${i}.txt` })).json.id);
  await srv.waitUntil(() => warned('refused (nack)'), 20000, 'a nack');
  assert.ok(await failures() >= 1);
  assert.ok(await metric(srv, 'assetd_amqp_events_lag') >= 1, 'the refused event is not past the cursor');
  await ch.deleteQueue(Q_FULL);

  // The exchange deleted under the publisher: the broker closes its channel
  // (404) on the next publish; the reconnect declares the exchange again.
  await waitFor(async () => await metric(srv, 'assetd_amqp_events_lag') === 0, { timeoutMs: 40000 * SLOW, what: 'the nacked events published' });
  await ch.deleteExchange(EXCHANGE);
  ids.push((await upload(srv, { data: TEXT, filename: 'gone.txt' })).json.id);
  await srv.waitUntil(() => warned('404'), 20000, 'the channel closed with 404');
  await waitFor(async () => await metric(srv, 'assetd_amqp_events_connected') === 1 && await metric(srv, 'assetd_amqp_events_lag') === 0, { timeoutMs: 40000 * SLOW, what: 'reconnected, nothing left' });

  // At least once, in order: the first arrival of each event follows id order.
  const first = [];
  for (const m of c.msgs) if (!first.some((f) => f.json.id === m.json.id)) first.push(m);
  const firstIds = first.map((m) => m.json.id);
  assert.deepEqual(firstIds, [...firstIds].sort((a, b) => a - b));
  // The 3 before the deletion reached the queue (its binding died with the exchange).
  assert.deepEqual(first.filter((m) => m.key === 'asset.created').map((m) => m.json.asset_id), ids.slice(0, 3));
  noSecret(srv, 'guest:guest');
});

test('credentials never reach logs or errors; bad settings stop the server before it serves', { timeout: T }, async (t) => {
  const secret = 'Wr0ngPassw0rd-xyz';
  const srv = await startServer({ args: amqpArgs(`amqp://guest:${secret}@127.0.0.1:${mq.port}/%2f`) });
  t.after(() => srv.cleanup());
  await upload(srv, { data: TEXT, filename: 'x.txt' });
  const refused = await srv.waitUntil((s) => s.logs.find((j) => j.msg?.startsWith('amqp: cannot connect')), 20000, 'a refused login');
  assert.equal(refused.url, `amqp://guest:***@127.0.0.1:${mq.port}/%2F`);
  assert.ok(await metric(srv, 'assetd_amqp_events_failures_total') >= 1);
  // the refusal logged may be the attempt made at start, before the
  // upload's events: the lag counts them once the publisher has read them
  await waitFor(async () => await metric(srv, 'assetd_amqp_events_lag') >= 1,
    { timeoutMs: 20000 * SLOW, what: 'the unpublished events counted as lag' });
  noSecret(srv, secret);

  for (const [args, want] of [
    [['--amqp-url', `http://guest:${secret}@host/`], /--amqp-url: the AMQP URL does not parse/],
    [['--amqp-url', `amqps://guest:${secret}@host/`], /amqps:\/\/ \(TLS\) is not supported/],
    [['--amqp-url', `amqp://guest:${secret}@host:99999/`], /--amqp-url/],
    [['--amqp-url', `amqp://guest:${secret}@${'h'.repeat(600)}/`], /--amqp-url \(too long\)/],
    [['--events-amqp-exchange', 'x'], /needs --amqp-url/],
    [['--amqp-url', mq.url, '--events-amqp-exchange', 'amq.topic'], /must be up to 127 letters/],
  ]) {
    const r = await runCli(['serve', '--listen', '127.0.0.1:0', '--data', '/nonexistent/never', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, want);
    assert.ok(!r.stderr.includes(secret) && !r.stdout.includes(secret), r.stderr);
  }
});

test('without --events-amqp-exchange nothing changes: no amqp series on /metrics', { timeout: T }, async (t) => {
  const srv = await startServer();
  t.after(() => srv.cleanup());
  const { res } = await scrape(srv);
  assert.doesNotMatch(res.text, /assetd_amqp_/);
});
