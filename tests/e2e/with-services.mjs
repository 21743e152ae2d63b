// with-rabbit.mjs — runs a command beside one private RabbitMQ node that
// every test file under it shares (rabbitmq.mjs):
//
//   node tests/e2e/with-rabbit.mjs CMD [ARGS...]
//
// The node starts first; CMD runs with ASSETD_TEST_AMQP_URL set to it; the
// node is destroyed when CMD ends, whatever its status, which is ours.  A
// signal (Ctrl-C, make or CI stopping us) goes on to CMD and the node goes
// once CMD has ended; a second signal destroys the node at once.  Should we
// die anyway, rabbitmq.mjs kills the node on exit.
import { spawn } from 'node:child_process';
import os from 'node:os';
import { startRabbit } from './rabbitmq.mjs';

const [cmd, ...args] = process.argv.slice(2);
if (!cmd) {
  console.error('usage: node tests/e2e/with-rabbit.mjs CMD [ARGS...]');
  process.exit(2);
}

let mq = null, child = null, signalled = null;
async function finish(code) {
  try { await mq?.destroy(); } finally { process.exit(code); }
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

try {
  mq = await startRabbit({ own: true });
} catch (e) {
  console.error(`with-rabbit: ${e.message}`);
  process.exit(1);
}
if (signalled) await finish(128 + os.constants.signals[signalled]);
console.log(`== one shared rabbitmq-server for the suite: started in ${mq.startMs} ms`);
child = spawn(cmd, args, { stdio: 'inherit', env: { ...process.env, ASSETD_TEST_AMQP_URL: mq.url } });
child.on('error', (e) => { console.error(`with-rabbit: ${cmd}: ${e.message}`); finish(127); });
child.on('exit', (code, signal) => finish(code ?? 128 + os.constants.signals[signal]));
