// PostgreSQL (--db): what only a shared database can show.  Runs in the
// suite on PostgreSQL (ASSETD_TEST_PG_URL, scripts/run-e2e.sh); on SQLite
// it is skipped, and the rest of the suite covers the same features there.
//
// - Processes that start together on a new database migrate it once.
// - A database whose schema is newer than the binary is refused at start.
// - Two serve processes and two separately started workers, each with a
//   data directory of its own, on one database and one S3 bucket (s3rver):
//   an upload through A is processed by a worker and seen on B's event
//   stream; the workers claim each job once (SKIP LOCKED claims); uploads through both, at once, reach a `since` reader on B
//   each exactly once and in id order (the event log's commit order); B
//   verifies the URL token A signed (the secret is in the database).
// Processes share a database by naming it (ASSETD_DB), not by sharing a
// data directory (one serve per directory).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { s3Setup } from './s3servers.mjs';
import path from 'node:path';
import {
  BIN, PG_URL, REPO, SLOW, TEST_TIMEOUT as T, TINY_PNG, api, dbEnvFor, makeTempDir, metricSum, removeDir,
  scrape, startServer, upload, waitFor,
  followEvents,
} from './lib.mjs';

const ONLY_PG = PG_URL ? false : 'the suite on PostgreSQL runs it (ASSETD_TEST_PG_URL)';

/** psql against the data directory's database. */
function psql(dataDir, sql) {
  return execFileSync('psql', ['-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-d', dbEnvFor(dataDir).ASSETD_DB, '-c', sql],
    { encoding: 'utf8', timeout: 30000 }).trim();
}

test('processes starting together on a new database migrate it once; a newer schema is refused', { timeout: T, skip: ONLY_PG }, async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const db = dbEnvFor(dir);
  const servers = await Promise.all([0, 1, 2].map(() => startServer({ env: db })));
  t.after(() => Promise.all(servers.map((s) => s.cleanup())));
  assert.equal(psql(dir, 'SELECT count(*) || \',\' || max(version) FROM schema_version'), '18,18');
  // one of them made the first key, in the one database: each one's key works on all
  const made = servers.filter((s) => s.token);
  assert.equal(made.length, 1, 'one bootstrap key');
  assert.equal(psql(dir, 'SELECT count(*) FROM api_keys'), '1');
  for (const s of servers) assert.equal((await api(s, 'GET', '/v1/assets', { token: made[0].token })).status, 200);
  await Promise.all(servers.map((s) => s.stop()));
  psql(dir, 'INSERT INTO schema_version (version) VALUES (19)');
  const r = await new Promise((resolve) => {
    const p = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data', dir, '--workers', '0'],
      { env: { ...process.env, ...db }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code) => resolve({ code, err }));
  });
  assert.notEqual(r.code, 0);
  assert.match(r.err, /made by a newer assetd/);
  assert.equal(psql(dir, 'SELECT max(version) FROM schema_version'), '19', 'nothing migrated down');
});

test('the queue\'s batch calls on PostgreSQL: four consumers beside a producer claim 32 at a time and complete each batch in one fenced statement; every job done once', { timeout: T, skip: ONLY_PG }, async (t) => {
  // build/bench-queue (bench/queue_bench.c) drives db_job_claim_many and
  // db_job_complete_many, which the product's one-job workers do not batch;
  // it fails unless every completion found its job still its own.
  const dir = makeTempDir('assetd-pgqueue-');
  t.after(() => removeDir(dir));
  const out = execFileSync(path.join(REPO, 'build', 'bench-queue'), [dir, '--db', dbEnvFor(dir).ASSETD_DB, '--jobs', '3000',
    '--consumers', '4', '--enqueue-batch', '100', '--claim-batch', '32'], { timeout: 120000 * SLOW }).toString();
  assert.match(out, /jobs_per_s=\d+/);
  assert.equal(psql(dir, "SELECT count(*) || ',' || count(*) FILTER (WHERE state = 2 AND attempts = 1 AND progress = 1 AND finished <> '') FROM jobs"),
    '3000,3000', 'each job claimed once and completed');
});

test('two serve processes and two workers on one database: processed by a worker, seen on B; each job claimed once; concurrent writers reach a since reader once each, in order', { timeout: T * 2, skip: ONLY_PG }, async (t) => {
  const dirs = [makeTempDir(), makeTempDir()];
  t.after(() => dirs.forEach(removeDir));
  const { env, args } = await s3Setup(t);
  const shared = { ...env, ...dbEnvFor(dirs[0]) };
  const a = await startServer({ env: shared, args });
  t.after(() => a.cleanup());
  const b = await startServer({ env: shared, args });
  t.after(() => b.cleanup());
  b.token = a.token;   // A made the database's first key
  // two workers, each its own data directory, claiming from one queue
  dirs.push(makeTempDir());
  for (const dir of dirs.slice(1)) {
    const worker = spawn(BIN, ['worker', '--data', dir, ...args], { env: { ...process.env, ...shared }, stdio: 'ignore' });
    t.after(() => worker.kill('SIGKILL'));
  }

  // each hub hears the others' commits from the database (LISTEN), and
  // /metrics says so, with its pool
  for (const s of [a, b]) {
    const { metrics } = await scrape(s);
    assert.equal(metricSum(metrics, 'assetd_db_listening'), 1);
    assert.ok(metricSum(metrics, 'assetd_db_connections', (l) => l.state === 'open') >= 1);
  }
  // a URL token signed by A verifies on B: one secret, in the database
  const tok = await api(a, 'POST', '/v1/events/token?ttl=300');
  assert.equal(tok.status, 201, tok.text);
  const onB = followEvents({ ...b, token: null }, `?since=0&token=${encodeURIComponent(tok.json.token)}`);
  t.after(() => onB.close());
  const first = await upload(a, { data: TINY_PNG, filename: 'a.png' });
  assert.equal(first.status, 201, first.text);
  await waitFor(() => onB.events.some((e) => e.asset_id === first.json.id && e.type === 'asset.ready'),
    { timeoutMs: 30000 * SLOW, what: 'asset.ready on B for an upload through A, processed by the worker' });

  // 60 uploads through A and B at once, 6 at a time each; every other one
  // an image, which makes a job
  const ids = [], images = [];
  const writer = async (srv, n) => {
    for (let i = 0; i < n; i++) {
      const r = await upload(srv, i % 2 ? { data: TINY_PNG, filename: `t${i}.png` }
        : { data: Buffer.from(`${srv.port} ${i}\n`), filename: `t${i}.txt` });
      assert.equal(r.status, 201, r.text);
      ids.push(r.json.id);
      if (i % 2) images.push(r.json.id);
    }
  };
  await Promise.all([a, b, a, b, a, b].map((s) => writer(s, 10)));
  await waitFor(() => ids.every((id) => onB.events.some((e) => e.asset_id === id && e.type === 'asset.created')),
    { timeoutMs: 30000 * SLOW, what: 'every upload\'s asset.created on B' });
  // the two workers claimed each job once (FOR UPDATE SKIP LOCKED), and did them all
  await waitFor(() => images.every((id) => onB.events.some((e) => e.asset_id === id && e.type === 'asset.ready')),
    { timeoutMs: 60000 * SLOW, what: 'every image ready' });
  assert.equal(psql(dirs[0], 'SELECT count(*) FROM jobs'), '31');
  assert.equal(psql(dirs[0], 'SELECT count(*) FROM jobs WHERE state != 2 OR attempts != 1'), '0', 'each job claimed once, done');
  const seen = onB.events.map((e) => e.id);
  assert.deepEqual(seen, [...seen].sort((x, y) => x - y), 'in id order');
  assert.equal(new Set(seen).size, seen.length, 'each once');
  // a reader starting from the middle sees exactly the tail
  const mid = seen[Math.floor(seen.length / 2)];
  const tail = followEvents(a, `?since=${mid}`);
  t.after(() => tail.close());
  const expected = seen.filter((id) => id > mid);
  await waitFor(() => tail.events.length >= expected.length, { timeoutMs: 10000 * SLOW, what: 'the tail on A' });
  assert.deepEqual(tail.events.slice(0, expected.length).map((e) => e.id), expected);
  // the asset list agrees across processes
  const list = (await api(b, 'GET', '/v1/assets?limit=100')).json.items.map((x) => x.id);
  for (const id of ids) assert.ok(list.includes(id), id);
});
