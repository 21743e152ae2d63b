// rabbitmq.mjs — a private RabbitMQ node for tests: Debian's
// rabbitmq-server run directly (no service manager), as its own Erlang node
// on free 127.0.0.1 ports, with every file it writes (Mnesia, logs, the
// Erlang cookie under HOME) in a temporary directory removed by destroy().
//
//   const mq = await startRabbit();   // in before(): the shared node, or 5-15 s
//   mq.url                            // amqp://guest:guest@127.0.0.1:PORT/%2f
//   await mq.destroy()                // in after(): shut down, epmd too, dir removed
//   const own = await startRabbit({ own: true })
//   await own.stop(); await own.start() // an outage: same node, same data
//
// One node for the whole suite.  A start costs 10-15 s and ~6 s of CPU, so
// `make e2e` starts one (with-services.mjs) and hands its URL down in
// ASSETD_TEST_AMQP_URL; startRabbit() then answers with a handle on it whose
// destroy() does nothing and whose stop()/start() throw: a test that takes
// the broker down asks for its own node ({ own: true }), as does a file run
// by hand without the variable.  Files on the shared node keep out of each
// other's way by their names: runs use assetd.run.<run id>, and
// amqp_events.test.mjs suffixes its exchange and queues with its pid.
//
// Why these variables: RABBITMQ_NODENAME is unique per process and start, so
// two test files (or helpers) never meet on one epmd; ERL_EPMD_PORT gives
// the node a private epmd, so `epmd -kill` ends ours and nobody else's;
// RABBITMQ_NODE_PORT + 20000 is the node's distribution port (Erlang's
// default), so both must be free; HOME holds the cookie rabbitmqctl needs.
// Readiness is `rabbitmqctl await_startup`, which waits for the boot to
// finish (`ping` answers before the AMQP listener is up).  Guest may log in
// from 127.0.0.1, which is where everything listens.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { makeTempDir, removeDir, SLOW, within } from './lib.mjs';

const SBIN = '/usr/lib/rabbitmq/bin';
let seq = 0;

/** Whether nothing listens on 127.0.0.1:port (nor on the wildcard). */
function portFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '0.0.0.0', () => s.close(() => resolve(true)));
  });
}

/** A port p <= 45535 with p and p + 20000 free, and another free port for epmd. */
async function freePorts() {
  for (let i = 0; i < 200; i++) {
    const p = 20000 + Math.floor(Math.random() * 25535);
    const epmd = 10000 + Math.floor(Math.random() * 9999);
    if (await portFree(p) && await portFree(p + 20000) && await portFree(epmd)) return { port: p, epmd };
  }
  throw new Error('no free ports for RabbitMQ');
}

// Brokers still running when the process exits are killed hard.
const live = new Set();
process.on('exit', () => { for (const b of live) b.killNow(); });

/** The node of ASSETD_TEST_AMQP_URL, as startRabbit() answers it. */
function sharedRabbit(url) {
  const u = new URL(url);
  const refuse = async () => { throw new Error('the shared RabbitMQ node cannot be stopped: startRabbit({ own: true })'); };
  return { url, port: Number(u.port) || 5672, node: null, dir: null, startMs: 0, shared: true,
    start: refuse, stop: refuse, async destroy() {}, killNow() {} };
}

export async function startRabbit({ own = false } = {}) {
  if (process.env.ASSETD_TEST_AMQP_URL && !own) return sharedRabbit(process.env.ASSETD_TEST_AMQP_URL);
  const dir = makeTempDir('assetd-rabbit-');
  const { port, epmd } = await freePorts();
  const node = `assetd-test-${process.pid}-${++seq}@localhost`;
  fs.writeFileSync(path.join(dir, 'enabled_plugins'), '[].\n');   // no management plugin: faster
  const env = {
    ...process.env,
    HOME: dir,
    RABBITMQ_NODENAME: node,
    RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: path.join(dir, 'log'),
    RABBITMQ_PID_FILE: path.join(dir, 'rabbit.pid'),
    RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq'),          // none: the defaults
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    ERL_EPMD_PORT: String(epmd),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    ERL_CRASH_DUMP: path.join(dir, 'erl_crash.dump'),   // never in the caller's working directory
    // the distribution port on loopback too, not on every interface
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
  };
  let proc = null, exited = null, output = '';
  const ctl = (args, timeoutMs) => new Promise((resolve) => {
    const p = spawn(path.join(SBIN, 'rabbitmqctl'), ['-n', node, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });

  const broker = {
    url: `amqp://guest:guest@127.0.0.1:${port}/%2f`, port, node, dir, startMs: 0, shared: false,
    /** Starts the node (again, on the same data) and waits until it serves AMQP. */
    async start() {
      const t0 = Date.now();
      output = '';
      proc = spawn(path.join(SBIN, 'rabbitmq-server'), [], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      live.add(broker);
      exited = new Promise((r) => proc.on('exit', (code) => { live.delete(broker); r(code); }));
      proc.stdout.on('data', (d) => { output += d; });
      proc.stderr.on('data', (d) => { output += d; });
      // await_startup answers "nodedown" until the node has registered with
      // epmd: `wait PIDFILE` first waits for that (the node writes the file
      // early in its boot), then await_startup for the boot to finish.
      const w = await ctl(['wait', '--timeout', String(60 * SLOW), env.RABBITMQ_PID_FILE], 70000 * SLOW);
      const r = w.code === 0 ? await ctl(['--timeout', String(60 * SLOW), 'await_startup'], 70000 * SLOW) : w;
      if (r.code !== 0) {
        const code = await within(exited, 10);
        throw new Error(`rabbitmq-server did not start (await_startup ${r.code}, server ${code}):\n${r.out}\n${output.slice(-3000)}`);
      }
      broker.startMs = Date.now() - t0;
      return broker.startMs;
    },
    /** Shuts the node down and waits for its process to end; the data stays. */
    async stop() {
      if (!proc) return;
      await ctl(['shutdown'], 60000 * SLOW);
      if (await within(exited, 30000 * SLOW) === undefined) broker.killNow();
      await exited;
      proc = null;
      fs.rmSync(env.RABBITMQ_PID_FILE, { force: true });   // start()'s wait must see the new one
    },
    /** Kills the node at once (SIGKILL, a crash: connections drop now, where
     *  stop() lets it take seconds) and waits for its process to end; the
     *  data stays, start() boots it again. */
    async kill() {
      if (!proc) return;
      broker.killNow();
      await exited;
      proc = null;
      fs.rmSync(env.RABBITMQ_PID_FILE, { force: true });
    },
    /** stop(), then the private epmd, then the directory. */
    async destroy() {
      try { await broker.stop(); } finally {
        spawnSync('epmd', ['-kill'], { env, timeout: 10000 });
        removeDir(dir);
      }
    },
    killNow() {
      if (proc && proc.exitCode === null) { try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* gone */ } }
      spawnSync('epmd', ['-kill'], { env, timeout: 5000 });
    },
  };
  try { await broker.start(); } catch (e) {
    broker.killNow();
    await within(exited, 10000);   // before its directory goes
    removeDir(dir);
    throw e;
  }
  return broker;
}
