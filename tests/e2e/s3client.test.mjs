// The S3 client (src/store/s3_client.h) against real servers: build/s3-test
// (tests/s3/s3_test.c; build/s3-test-asan under sanitizers) runs the same
// client calls against
//   - s3rver behind startS3Proxy, which checks each request's signature and
//     its canonical form (s3rver checks none) and injects 503s and a cut GET;
//   - moto_server in authentication mode, which checks signatures as AWS
//     does (skipped where moto_server is not installed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { REPO, SANITIZED, TEST_TIMEOUT } from './lib.mjs';
import { closedPort, motoPath, S3RVER_ACCESS_KEY, startMoto, startS3Proxy, startS3rver } from './s3servers.mjs';

const BIN = path.join(REPO, 'build', SANITIZED ? 's3-test-asan' : 's3-test');
const ACCESS = S3RVER_ACCESS_KEY, SECRET = 'assetd/s3+test-secret';

function s3Test(prefixes, env) {
  return new Promise((resolve, reject) => {
    const p = spawn(BIN, prefixes, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ code, signal, out }));
  });
}

const bucket = () => 'assetd-' + randomBytes(6).toString('hex');

test('S3 client against s3rver behind a signature-checking, fault-injecting proxy', { timeout: TEST_TIMEOUT * 2 }, async (t) => {
  const s3 = await startS3rver(t);
  const proxy = await startS3Proxy(t, { target: s3.endpoint, accessKey: ACCESS, secretKey: SECRET });
  const r = await s3Test(['basic_', 'keys_', 'multipart_', 'auth_', 'retry_503', 'retry_cut'], {
    S3_ENDPOINT: proxy.endpoint, S3_BUCKET: bucket(), AWS_ACCESS_KEY_ID: ACCESS, AWS_SECRET_ACCESS_KEY: SECRET,
    AWS_SESSION_TOKEN: '', S3_SERVER: 's3rver',
  });
  assert.equal(r.code, 0, r.out);

  // Only the wrong-secret test's request failed the signature check.
  const bad = proxy.log.filter((e) => e.problem);
  assert.equal(bad.length, 1, JSON.stringify(bad.map((e) => [e.method, e.url, e.problem])));
  assert.match(bad[0].url, /\/auth\/x$/);
  assert.equal(bad[0].problem, 'signature does not match');
  // The canonical forms libcurl 7.88 needs, as they went on the wire.
  assert.ok(proxy.log.some((e) => e.method === 'POST' && /\?uploads=$/.test(e.url)), 'POST ?uploads=');
  assert.ok(proxy.log.some((e) => e.method === 'PUT' && /\?partNumber=1&uploadId=/.test(e.url)), 'sorted part query');
  assert.ok(proxy.log.some((e) => e.url.includes('/enc/with%20space')), 'encoded space');
  assert.ok(proxy.log.some((e) => e.url.includes('/enc/plus%2Bsign')), 'encoded +');
  assert.ok(proxy.log.some((e) => e.method === 'PUT' && e.headers['x-amz-content-sha256'] === 'UNSIGNED-PAYLOAD'), 'streamed put');
  for (const e of proxy.log) assert.match(e.headers.authorization, /\/us-east-1\/s3\/aws4_request/);
  // The cut GET was resumed from where it stopped, pinned to the ETag.
  const gets = proxy.log.filter((e) => e.method === 'GET' && e.url.endsWith('/retry/cutget'));
  assert.equal(gets.length, 2);
  const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1].headers.range)?.[1]);
  assert.ok(resumedAt > 0 && resumedAt <= Math.floor((1048576 + 3) / 2), gets[1].headers.range);
  assert.match(gets[1].headers['if-match'], /^"[0-9a-f]{32}"$/);
  // A request given up after 503s was tried max_attempts times.
  assert.equal(proxy.log.filter((e) => e.url.endsWith('/retry/fail503always')).length, 3);
  // With 3 parts in flight, the refused part 2 failed the stream, which
  // waited for its parts, then aborted the upload (and completed nothing).
  const mp = proxy.log.filter((e) => e.url.includes('/retry/mp-fail503part2'));
  assert.equal(mp.filter((e) => e.method === 'PUT' && /partNumber=2&/.test(e.url)).length, 2);
  assert.ok(mp.some((e) => e.method === 'PUT' && /partNumber=3&/.test(e.url)), 'part 3 went while part 2 was refused');
  const aborts = mp.filter((e) => e.method === 'DELETE' && /\?uploadId=/.test(e.url));
  assert.equal(aborts.length, 1, JSON.stringify(mp.map((e) => [e.method, e.url, e.status])));
  assert.ok(mp.every((e) => e.method !== 'PUT' || mp.indexOf(e) < mp.indexOf(aborts[0])), 'the abort came after every part');
  assert.ok(!mp.some((e) => e.method === 'POST' && /\?uploadId=/.test(e.url)), 'no completion');
});

test('S3 client against moto_server checking signatures', { skip: motoPath() ? false : 'no moto_server', timeout: TEST_TIMEOUT * 3 }, async (t) => {
  const moto = await startMoto(t);
  const r = await s3Test(['basic_', 'keys_', 'multipart_', 'auth_'], {
    S3_ENDPOINT: moto.endpoint, S3_BUCKET: bucket(), AWS_ACCESS_KEY_ID: moto.accessKey,
    AWS_SECRET_ACCESS_KEY: moto.secretKey, AWS_SESSION_TOKEN: '', S3_SERVER: 'moto',
  });
  assert.equal(r.code, 0, r.out);
});

test('S3 client: a refused connection is retried, then fails', { timeout: TEST_TIMEOUT }, async () => {
  const port = await closedPort();
  const r = await s3Test(['retry_refused'], {
    S3_ENDPOINT: `http://127.0.0.1:${port}`, S3_BUCKET: 'b', AWS_ACCESS_KEY_ID: ACCESS, AWS_SECRET_ACCESS_KEY: SECRET,
  });
  assert.equal(r.code, 0, r.out);
});
