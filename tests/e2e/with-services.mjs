// with-services.mjs — runs a command beside the services every test file
// under it shares: one private RabbitMQ node (rabbitmq.mjs) and one private
// PostgreSQL cluster (postgres.mjs) and one s3rver, started together:
//
//   node tests/e2e/with-services.mjs CMD [ARGS...]
//
// CMD runs with ASSETD_TEST_AMQP_URL (the node), ASSETD_TEST_PG_CLUSTER
// and ASSETD_TEST_S3_CLUSTER (the cluster and the s3rver: a suite that
// should run on PostgreSQL + S3 passes them on as ASSETD_TEST_PG_URL and
// ASSETD_TEST_S3_URL, see scripts/run-e2e.sh; lib.mjs then gives each data
// directory a database and a bucket of its own).  Both are destroyed when CMD ends,
// whatever its status, which is ours.  A signal (Ctrl-C, make or CI
// stopping us) goes on to CMD and the services go once CMD has ended; a
// second signal destroys them at once.  Should we die anyway, rabbitmq.mjs
// and postgres.mjs kill theirs on exit.
import { spawn } from 'node:child_process';
import os from 'node:os';
import { startRabbit } from './rabbitmq.mjs';
import { startPostgres } from './postgres.mjs';
import { startS3rver } from './s3servers.mjs';

const [cmd, ...args] = process.argv.slice(2);
if (!cmd) {
  console.error('usage: node tests/e2e/with-services.mjs CMD [ARGS...]');
  process.exit(2);
}

let mq = null, pg = null, s3 = null, child = null, signalled = null;
async function finish(code) {
  try {
    await Promise.allSettled([mq?.destroy(), pg?.destroy(), s3?.stop()]);
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
const [rabbit, postgres, s3rver] = await Promise.allSettled([startRabbit({ own: true }), startPostgres(), startS3rver()]);
mq = rabbit.value ?? null;
pg = postgres.value ?? null;
s3 = s3rver.value ?? null;
for (const r of [rabbit, postgres, s3rver]) {
  if (r.status === 'rejected') {
    console.error(`with-services: ${r.reason.message}`);
    await finish(1);
  }
}
if (signalled) await finish(128 + os.constants.signals[signalled]);
console.log(`== shared services for the suite: rabbitmq-server, postgresql and s3rver, started in ${Date.now() - t0} ms`);
child = spawn(cmd, args, {
  stdio: 'inherit',
  env: { ...process.env, ASSETD_TEST_AMQP_URL: mq.url, ASSETD_TEST_PG_CLUSTER: pg.url, ASSETD_TEST_S3_CLUSTER: s3.endpoint },
});
child.on('error', (e) => { console.error(`with-services: ${cmd}: ${e.message}`); finish(127); });
child.on('exit', (code, signal) => finish(code ?? 128 + os.constants.signals[signal]));
