// runs_amqplib.mjs — bench/runs.sh's publish-with-confirms reference: npm
// amqplib's ConfirmChannel publishing the CSV's rows to a durable queue,
// persistent, with a window of WINDOW unconfirmed messages (publish WINDOW,
// then waitForConfirms, amqplib's documented idiom), as assetd's runs do.
//
//   node bench/runs_amqplib.mjs URL QUEUE BODIES [WINDOW]
//
// BODIES: one message body per line (runs_reference.py bodies), read
// before the clock starts.  Prints one JSON line:
//   {"connect": s, "publish": s, "total": s, "sent": n}
// total = connect + publish: from amqplib.connect() (TCP, AMQP handshake,
// confirm.select, queue declare) to the last confirmation, the span of
// assetd's started -> published.  The queue is deleted afterwards.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const amqplib = createRequire(path.join(repo, 'tests', 'package.json'))('amqplib');

const [url, queue, bodiesFile, windowArg] = process.argv.slice(2);
if (!url || !queue || !bodiesFile) {
  console.error('usage: runs_amqplib.mjs URL QUEUE BODIES [WINDOW]');
  process.exit(2);
}
const WINDOW = Number(windowArg || 512);
const bodies = readFileSync(bodiesFile, 'utf8').split('\n').filter((l) => l).map((l) => Buffer.from(l));

const t0 = performance.now();
const conn = await amqplib.connect(url);
const ch = await conn.createConfirmChannel();
await ch.assertQueue(queue, { durable: true });
const t1 = performance.now();
let nacked = 0;
for (let i = 0; i < bodies.length; i++) {
  // message_id = the row's line, as assetd sends it
  ch.sendToQueue(queue, bodies[i], { persistent: true, messageId: String(i + 1) }, (err) => { if (err) nacked++; });
  if ((i + 1) % WINDOW === 0 || i + 1 === bodies.length) await ch.waitForConfirms();
}
const t2 = performance.now();
await ch.deleteQueue(queue);
await conn.close();
console.log(JSON.stringify({
  connect: (t1 - t0) / 1000, publish: (t2 - t1) / 1000, total: (t2 - t0) / 1000,
  sent: bodies.length - nacked,
}));
