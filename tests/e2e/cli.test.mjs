// CLI: version, --help, unknown commands/flags, bootstrap key, keys create/list/revoke,
// env equivalents of the serve flags, access log destinations, log format.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  REPO, SANITIZED, TOKEN_RE, TS_RE, runCli, startServer, serverFor, makeTempDir, removeDir,
  createKey, listKeys, api, upload, request, assertError, waitFor, sleep,
} from './lib.mjs';
import { TEST_TIMEOUT as T, SLOW, PG_URL } from './lib.mjs';

test('version prints "assetd <VERSION>"', { timeout: T }, async () => {
  const r = await runCli(['version']);
  assert.equal(r.code, 0, r.stderr);
  const want = fs.readFileSync(path.join(REPO, 'VERSION'), 'utf8').trim();
  assert.equal(r.stdout.trim(), `assetd ${want}`);
  assert.equal(r.stdout.split('\n').filter(Boolean).length, 1, 'exactly one line');
});

for (const argv of [['--help'], ['serve', '--help'], ['keys', '--help'],
  ['keys', 'create', '--help'], ['keys', 'list', '--help'], ['keys', 'revoke', '--help'], ['version', '--help']]) {
  test(`assetd ${argv.join(' ')} exits 0 and prints usage on stdout`, { timeout: T }, async () => {
    const r = await runCli(argv);
    assert.equal(r.code, 0, `exit ${r.code}; stderr: ${r.stderr}`);
    assert.match(r.stdout, /usage/i, `stdout should contain usage, got stdout=${JSON.stringify(r.stdout)} stderr=${JSON.stringify(r.stderr)}`);
  });
}

test('serve --help documents its flags, and the README table has every one of them', { timeout: T }, async () => {
  const r = await runCli(['serve', '--help']);
  for (const f of ['--listen', '--data', '--max-upload', '--access-log']) assert.ok(r.stdout.includes(f), `serve --help lacks ${f}`);
  const flags = [...r.stdout.matchAll(/^ {2}(--[a-z-]+)/gm)].map((m) => m[1]);
  assert.ok(flags.length >= 20, `read only ${flags.length} flags from serve --help`);
  const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const envs = [...r.stdout.matchAll(/env (ASSETD_[A-Z_]+)/g)].map((m) => m[1]);
  assert.equal(envs.length, flags.length, 'one environment variable per flag');
  for (const f of flags) assert.ok(readme.includes(`| \`${f}`), `README's configuration table lacks ${f}`);
  for (const e of envs) assert.ok(readme.includes(e), `README lacks ${e}`);
});

for (const argv of [['frobnicate'], ['serve', '--bogus-flag'], ['keys', 'frobnicate'],
  ['keys', 'create', '--bogus-flag', 'x'], ['keys', 'list', '--bogus-flag'], ['version', '--bogus-flag'], ['--bogus-flag']]) {
  test(`assetd ${argv.join(' ')} exits 2`, { timeout: T }, async () => {
    const d = makeTempDir();
    try {
      // keep any command that might start doing work pointed at a temp dir
      const r = await runCli(argv, { env: { ASSETD_DATA: d, ASSETD_LISTEN: '127.0.0.1:0' }, timeoutMs: 10000 });
      assert.equal(r.signal, null, `killed by ${r.signal} (did it start serving?)`);
      assert.equal(r.code, 2, `exit ${r.code}; stdout=${r.stdout} stderr=${r.stderr}`);
    } finally { removeDir(d); }
  });
}

test('serve with an invalid --max-upload fails instead of serving', { timeout: T }, async () => {
  const d = makeTempDir();
  try {
    for (const bad of ['10Q', 'abc', '-5', '']) {
      const r = await runCli(['serve', '--listen', '127.0.0.1:0', '--data', d, '--max-upload', bad], { timeoutMs: 5000 });
      assert.equal(r.signal, null, `--max-upload ${JSON.stringify(bad)}: server kept running`);
      assert.notEqual(r.code, 0, `--max-upload ${JSON.stringify(bad)} exited 0`);
    }
  } finally { removeDir(d); }
});

test('first start creates a bootstrap key; later starts do not', { timeout: T }, async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const s1 = await startServer({ dataDir: dir });
  let boot;
  try {
    boot = s1.logs.find((j) => j.msg === 'bootstrap key created');
    assert.ok(boot, `no "bootstrap key created" line; stderr:\n${s1.stderrLines.join('\n')}`);
    assert.match(boot.token, TOKEN_RE);
    const keyFile = path.join(dir, 'admin.key');
    assert.equal(fs.readFileSync(keyFile, 'utf8'), boot.token + '\n');
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600, 'admin.key must be mode 0600');
    const r = await api(s1, 'GET', '/v1/assets', { token: boot.token });
    assert.equal(r.status, 200, r.text);
  } finally {
    const ex = await s1.stop();
    assert.equal(ex.code, 0, `SIGTERM exit: ${JSON.stringify(ex)}`);
  }
  const s2 = await startServer({ dataDir: dir });
  try {
    assert.equal(s2.logs.find((j) => j.msg === 'bootstrap key created'), undefined, 'second start created another bootstrap key');
    assert.equal(fs.readFileSync(path.join(dir, 'admin.key'), 'utf8'), boot.token + '\n', 'admin.key changed on restart');
    const r = await api(s2, 'GET', '/v1/assets', { token: boot.token });
    assert.equal(r.status, 200, 'bootstrap token must survive restart');
  } finally { await s2.stop(); }
  const keys = await listKeys(dir);
  assert.equal(keys.length, 1, `expected exactly one key, got:\n${keys.map((k) => k.line).join('\n')}`);
});

test('no bootstrap key when keys already exist', { timeout: T }, async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const tok = await createKey(dir, 'first');
  const s = await startServer({ dataDir: dir });
  try {
    assert.equal(s.logs.find((j) => j.msg === 'bootstrap key created'), undefined);
    assert.equal(fs.existsSync(path.join(dir, 'admin.key')), false, 'admin.key written although keys existed');
    assert.equal((await api(s, 'GET', '/v1/assets', { token: tok })).status, 200);
  } finally { await s.stop(); }
});

test('keys create prints only the token; keys list shows it; owner defaults to name', { timeout: T }, async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const r = await runCli(['keys', 'create', '--data', dir, '--name', 'alice']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ak_[A-Za-z0-9_-]{43}\n?$/, `stdout must be only the token line: ${JSON.stringify(r.stdout)}`);
  const tokA = r.stdout.trim();
  const tokB = await createKey(dir, 'bob-laptop', 'bob');
  assert.notEqual(tokA, tokB);
  const keys = await listKeys(dir);
  assert.equal(keys.length, 2, keys.map((k) => k.line).join('\n'));
  const a = keys.find((k) => k.name === 'alice');
  const b = keys.find((k) => k.name === 'bob-laptop');
  assert.ok(a && b, keys.map((k) => k.line).join('\n'));
  for (const k of keys) {
    assert.equal(k.extra.length, 0, `5 tab-separated fields expected: ${JSON.stringify(k.line)}`);
    assert.ok(k.id && !/\s/.test(k.id), `id: ${JSON.stringify(k.id)}`);
    assert.match(k.created, TS_RE, `created: ${k.created}`);
    assert.equal(k.state, 'active');
    assert.ok(!k.line.includes(tokA) && !k.line.includes(tokB), 'keys list must not print tokens');
  }
  assert.notEqual(a.id, b.id);
  assert.equal(a.owner, 'alice');
  assert.equal(b.owner, 'bob');
});

test('keys revoke takes effect on a running server (401) and shows as revoked', { timeout: T }, async (t) => {
  const srv = await serverFor(t);
  const tok = await createKey(srv.dataDir, 'temp', 'carol');
  const other = await createKey(srv.dataDir, 'keep', 'carol');
  assert.equal((await api(srv, 'GET', '/v1/assets', { token: tok })).status, 200, 'key created while serving must work');
  const up = await upload(srv, { data: Buffer.from('carol data'), token: tok });
  assert.equal(up.status, 201, up.text);
  const k = (await listKeys(srv.dataDir)).find((x) => x.name === 'temp');
  const r = await runCli(['keys', 'revoke', '--data', srv.dataDir, k.id]);
  assert.equal(r.code, 0, r.stderr);
  const after = (await listKeys(srv.dataDir)).find((x) => x.id === k.id);
  assert.equal(after.state, 'revoked');
  // The server trusts a verified key for --key-cache-ms (default 1000 ms), so
  // a revocation must bite within that window (plus scheduling slack).
  const deadline = Date.now() + 1000 + 2000 * SLOW;
  let status;
  while ((status = (await api(srv, 'GET', '/v1/assets', { token: tok })).status) === 200 && Date.now() < deadline) {
    await sleep(50);
  }
  assert.equal(status, 401, 'revoked key still accepted after the key cache window');
  assertError(await api(srv, 'GET', '/v1/assets', { token: tok }), 401, 'unauthorized');
  assertError(await api(srv, 'GET', `/v1/assets/${up.json.id}`, { token: tok }), 401, 'unauthorized');
  assertError(await upload(srv, { data: Buffer.from('x'), token: tok }), 401, 'unauthorized');
  // the other key of the same owner is unaffected and still sees the asset
  const g = await api(srv, 'GET', `/v1/assets/${up.json.id}`, { token: other });
  assert.equal(g.status, 200);
  // revoked key stays revoked across restart
  await srv.stop();
  const s2 = await serverFor(t, { dataDir: srv.dataDir });
  assertError(await api(s2, 'GET', '/v1/assets', { token: tok }), 401, 'unauthorized');
});

test('keys revoke of an unknown id fails', { timeout: T }, async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  await createKey(dir, 'x');
  const r = await runCli(['keys', 'revoke', '--data', dir, 'no-such-key-id']);
  assert.notEqual(r.code, 0, `exit 0; stdout=${r.stdout}`);
  assert.equal((await listKeys(dir))[0].state, 'active');
});

test('raw tokens never appear in the SQLite files', { timeout: T, skip: PG_URL && 'SQLite files: the run on PostgreSQL has none' }, async (t) => {
  const srv = await serverFor(t);
  const t1 = await createKey(srv.dataDir, 'n1');
  const t2 = await createKey(srv.dataDir, 'n2', 'o2');
  for (const tok of [srv.token, t1, t2]) assert.equal((await api(srv, 'GET', '/v1/assets', { token: tok })).status, 200);
  assert.equal((await upload(srv, { data: Buffer.from('abc'), token: t1 })).status, 201);
  const check = () => {
    const files = fs.readdirSync(srv.dataDir).filter((f) => f.startsWith('assetd.db'));
    assert.ok(files.includes('assetd.db'), `no assetd.db in ${fs.readdirSync(srv.dataDir)}`);
    for (const f of files) {
      const bytes = fs.readFileSync(path.join(srv.dataDir, f));
      for (const tok of [srv.token, t1, t2]) {
        assert.equal(bytes.indexOf(tok), -1, `token found in ${f}`);
        assert.equal(bytes.indexOf(tok.slice(3)), -1, `token body found in ${f}`);
        assert.equal(bytes.indexOf(Buffer.from(tok.slice(3), 'base64url')), -1, `decoded token bytes found in ${f}`);
      }
    }
  };
  check();              // while running (WAL may hold the rows)
  await srv.stop();
  check();              // after checkpoint on shutdown
});

test('env equivalents: ASSETD_LISTEN, ASSETD_DATA, ASSETD_MAX_UPLOAD', { timeout: T }, async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const srv = await startServer({ dataDir: dir, useFlags: false, env: { ASSETD_MAX_UPLOAD: '1K' } });
  t.after(() => srv.cleanup());
  assert.ok(fs.existsSync(path.join(dir, 'admin.key')), 'ASSETD_DATA not used');
  assert.match(srv.token, TOKEN_RE);
  assert.equal((await upload(srv, { data: Buffer.alloc(1024, 1), raw: true })).status, 201);
  assertError(await upload(srv, { data: Buffer.alloc(1025, 1), raw: true }), 413, 'payload_too_large');
});

test('flags win over env', { timeout: T }, async (t) => {
  const dir = makeTempDir();
  const decoy = makeTempDir();
  t.after(() => { removeDir(dir); removeDir(decoy); });
  const srv = await startServer({ dataDir: dir, env: { ASSETD_DATA: decoy, ASSETD_MAX_UPLOAD: '1K' }, args: ['--max-upload', '4K'] });
  t.after(() => srv.cleanup());
  assert.ok(fs.existsSync(path.join(dir, 'admin.key')));
  assert.ok(!fs.existsSync(path.join(decoy, 'admin.key')), 'env ASSETD_DATA used although --data was given');
  assert.equal((await upload(srv, { data: Buffer.alloc(4096, 1), raw: true })).status, 201);
  assertError(await upload(srv, { data: Buffer.alloc(4097, 1), raw: true }), 413, 'payload_too_large');
});

test('stderr logs are JSON lines with ts, level, msg', { timeout: T }, async (t) => {
  const srv = await serverFor(t);
  await api(srv, 'GET', '/healthz');
  await srv.stop();
  assert.ok(srv.stderrLines.length >= 2);
  for (const l of srv.stderrLines) {
    if (SANITIZED && !l.startsWith('{')) continue;
    let j;
    assert.doesNotThrow(() => { j = JSON.parse(l); }, `stderr line is not JSON: ${l}`);
    assert.match(j.ts, TS_RE, l);
    assert.ok(['debug', 'info', 'warn', 'error'].includes(j.level), l);
    assert.equal(typeof j.msg, 'string', l);
  }
  const listening = srv.logs.find((j) => j.msg === 'listening');
  assert.equal(listening.addr, `127.0.0.1:${srv.port}`);
});

test('access log on stdout: one JSON line per request with all fields', { timeout: T }, async (t) => {
  const srv = await serverFor(t);
  const data = Buffer.alloc(3000, 7);
  const up = await upload(srv, { data, raw: true, filename: 'a.bin' });
  assert.equal(up.status, 201);
  const miss = await api(srv, 'GET', '/v1/assets/AAAAAAAAAAAAAAAAAAAAAA');
  assert.equal(miss.status, 404);
  const line = await srv.waitUntil((s) => s.accessLog.find((j) => j.request_id === up.headers['x-request-id']), 5000, 'access log line for the upload');
  for (const f of ['ts', 'request_id', 'method', 'path', 'route', 'status', 'bytes_in', 'bytes_out', 'duration_ms', 'remote']) {
    assert.ok(f in line, `access log lacks ${f}: ${JSON.stringify(line)}`);
  }
  assert.match(line.ts, TS_RE);
  assert.equal(line.method, 'POST');
  assert.equal(line.path, '/v1/assets');
  assert.equal(line.status, 201);
  assert.ok(line.bytes_in >= data.length, `bytes_in ${line.bytes_in} < ${data.length}`);
  assert.ok(line.bytes_out > 0);
  assert.equal(typeof line.duration_ms, 'number');
  assert.ok(line.duration_ms >= 0);
  assert.match(String(line.remote), /^127\.0\.0\.1(:\d+)?$/);
  const l404 = await srv.waitUntil((s) => s.accessLog.find((j) => j.request_id === miss.headers['x-request-id']), 5000, 'access log line for the 404');
  assert.equal(l404.status, 404);
  assert.equal(l404.method, 'GET');
  assert.ok(!JSON.stringify(srv.accessLog).includes(srv.token), 'access log must not contain the token');
  // every stdout line is JSON
  for (const l of srv.stdoutLines) assert.doesNotThrow(() => JSON.parse(l), `stdout line is not JSON: ${l}`);
});

test('--access-log off writes nothing to stdout; --access-log PATH writes the file', { timeout: T }, async (t) => {
  const off = await serverFor(t, { args: ['--access-log', 'off'] });
  await api(off, 'GET', '/healthz');
  await api(off, 'GET', '/v1/assets');
  await sleep(300);
  assert.deepEqual(off.stdoutLines, []);

  const logDir = makeTempDir();
  t.after(() => removeDir(logDir));
  const file = path.join(logDir, 'access.log');
  const onFile = await serverFor(t, { args: ['--access-log', file] });
  const r = await api(onFile, 'GET', '/healthz');
  const rid = r.headers['x-request-id'];
  const line = await waitFor(() => {
    let txt = '';
    try { txt = fs.readFileSync(file, 'utf8'); } catch { return null; }
    return txt.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((j) => j.request_id === rid);
  }, { what: 'access log line in file' });
  assert.equal(line.path, '/healthz');
  assert.equal(line.status, 200);
  assert.deepEqual(onFile.stdoutLines, []);

  const envOff = await serverFor(t, { env: { ASSETD_ACCESS_LOG: 'off' } });
  await api(envOff, 'GET', '/healthz');
  await sleep(300);
  assert.deepEqual(envOff.stdoutLines, [], 'ASSETD_ACCESS_LOG=off ignored');
});

test('SIGTERM on an idle server exits 0 promptly', { timeout: T }, async (t) => {
  const srv = await serverFor(t);
  await api(srv, 'GET', '/healthz');
  const t0 = Date.now();
  const ex = await srv.stop('SIGTERM', 10000);
  assert.equal(ex.timedOut, undefined, 'did not exit within 10 s of SIGTERM');
  assert.equal(ex.code, 0, JSON.stringify(ex));
  assert.ok(Date.now() - t0 < 5000 * (SANITIZED ? 4 : 1), `took ${Date.now() - t0} ms`);
});
