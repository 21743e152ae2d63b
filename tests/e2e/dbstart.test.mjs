// A database that cannot be trusted is refused at start, with a clear
// reason, by every command that opens it (serve, worker, gc, keys) — never
// served from: a file made by a newer assetd (its schema unknown to this
// binary), a damaged page, and a file that is no database at all.  The
// healthy copy beside them still starts, so the refusals are about the
// damage and nothing else.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  TEST_TIMEOUT as T, makeTempDir, removeDir, startServer, uploadRaw, runCli, request,
} from './lib.mjs';
import { PG_URL } from './lib.mjs';

const SQLITE_ONLY = PG_URL ? 'the SQLite file itself (the run on PostgreSQL has none)' : false;

let dir, healthy;

before(async () => {
  if (SQLITE_ONLY) return;
  dir = makeTempDir('assetd-dbstart-');
  healthy = path.join(dir, 'healthy');
  const srv = await startServer({ dataDir: healthy });
  assert.equal((await uploadRaw(srv, Buffer.from('some bytes'))).status, 201);
  await srv.cleanup();   // a clean stop: the WAL is folded into assetd.db
  for (const f of fs.readdirSync(healthy)) assert.ok(!f.startsWith('assetd.db-wal') || fs.statSync(path.join(healthy, f)).size === 0, f);
});
after(() => dir && removeDir(dir));

/** A copy of the healthy data dir, its assetd.db changed by edit(bytes). */
function copyWith(name, edit) {
  const to = path.join(dir, name);
  fs.cpSync(healthy, to, { recursive: true });
  const db = path.join(to, 'assetd.db');
  const bytes = fs.readFileSync(db);
  fs.writeFileSync(db, edit(bytes));
  for (const f of ['assetd.db-wal', 'assetd.db-shm']) fs.rmSync(path.join(to, f), { force: true });
  return to;
}

async function assertRefused(data, reason) {
  const serve = await runCli(['serve', '--listen', '127.0.0.1:0', '--data', data, '--workers', '0']);
  assert.equal(serve.code, 1, `serve must refuse: ${serve.stderr}`);
  assert.match(serve.stderr, reason);
  assert.doesNotMatch(serve.stderr, /"msg":"listening"/);
  const gc = await runCli(['gc', '--data', data]);
  assert.notEqual(gc.code, 0, `gc must refuse: ${gc.stderr}`);
  assert.match(gc.stderr, reason);
}

test('a database made by a newer assetd is refused, not migrated down or served', { timeout: T, skip: SQLITE_ONLY }, async () => {
  // PRAGMA user_version: 4 bytes, big-endian, at offset 60 of the header
  const newer = copyWith('newer', (b) => { b.writeUInt32BE(9999, 60); return b; });
  await assertRefused(newer, /made by a newer assetd/);
  assert.equal(fs.readFileSync(path.join(newer, 'assetd.db')).readUInt32BE(60), 9999, 'left as it was');
});

test('a damaged database page is found at start and refused', { timeout: T, skip: SQLITE_ONLY }, async () => {
  const damaged = copyWith('damaged', (b) => {
    const pageSize = b.readUInt16BE(16) === 1 ? 65536 : b.readUInt16BE(16);
    assert.ok(b.length >= 3 * pageSize, 'the database has a few pages');
    b.fill(0xa5, pageSize, pageSize + 512);   // page 2: a table's b-tree page
    return b;
  });
  await assertRefused(damaged, /database is damaged/);
});

test('a file that is no database is refused', { timeout: T, skip: SQLITE_ONLY }, async () => {
  const junk = copyWith('junk', () => Buffer.from('not a database, just text\n'.repeat(200)));
  await assertRefused(junk, /cannot open|not a database/);
});

test('the healthy copy starts and serves its asset', { timeout: T, skip: SQLITE_ONLY }, async () => {
  const srv = await startServer({ dataDir: healthy });
  try {
    const r = await request(srv, { path: '/v1/assets' });
    assert.equal(r.status, 200);
    assert.equal(r.json.items.length, 1);
  } finally {
    await srv.cleanup();
  }
});
