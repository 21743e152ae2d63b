// with-services.mjs — runs a command beside the services every test file
// under it shares: one private RabbitMQ node (rabbitmq.mjs) and one private
// PostgreSQL cluster (postgres.mjs), started together:
//
//   node tests/e2e/with-services.mjs CMD [ARGS...]
//
// CMD runs with ASSETD_TEST_AMQP_URL (the node) and ASSETD_TEST_PG_CLUSTER
// (the cluster: a suite that should run on PostgreSQL passes it on as
// ASSETD_TEST_PG_URL, see scripts/run-e2e.sh; lib.mjs then gives each data
// directory a database of its own).  Both are destroyed when CMD ends,
// whatever its status, which is ours.  A signal (Ctrl-C, make or CI
// stopping us) goes on to CMD and the services go once CMD has ended; a
// second signal destroys them at once.  Should we die anyway, rabbitmq.mjs
// and postgres.mjs kill theirs on exit.
import { spawn } from 'node:child_process';
import os from 'node:os';
import { startRabbit } from './rabbitmq.mjs';
import { startPostgres } from './postgres.mjs';

const [cmd, ...args] = process.argv.slice(2);
if (!cmd) {
  console.error('usage: node tests/e2e/with-services.mjs CMD [ARGS...]');
  process.exit(2);
}

let mq = null, pg = null, child = null, signalled = null;
async function finish(code) {
  try {
    await Promise.allSettled([mq?.destroy(), pg?.destroy()]);
  } finally { process.exit(code); }
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  // lib.mjs (under rabbitmq.mjs) exits at once on a signal, which suits a
  // test file; here CMD must end first, so its handlers go.
  process.removeAllListeners(sig);
  process.on(sig, () => {
    if (signalled) finish(128 + os.constants.signals[sig]);   // a second one: no more waiting
    signalled = sig;
    if (child) child.kill(sig);
  });
}

const t0 = Date.now();
const [rabbit, postgres] = await Promise.allSettled([startRabbit({ own: true }), startPostgres()]);
mq = rabbit.value ?? null;
pg = postgres.value ?? null;
for (const r of [rabbit, postgres]) {
  if (r.status === 'rejected') {
    console.error(`with-services: ${r.reason.message}`);
    await finish(1);
  }
}
if (signalled) await finish(128 + os.constants.signals[signalled]);
console.log(`== shared services for the suite: rabbitmq-server and postgresql, started in ${Date.now() - t0} ms`);
child = spawn(cmd, args, {
  stdio: 'inherit',
  env: { ...process.env, ASSETD_TEST_AMQP_URL: mq.url, ASSETD_TEST_PG_CLUSTER: pg.url },
});
child.on('error', (e) => { console.error(`with-services: ${cmd}: ${e.message}`); finish(127); });
child.on('exit', (code, signal) => finish(code ?? 128 + os.constants.signals[signal]));
