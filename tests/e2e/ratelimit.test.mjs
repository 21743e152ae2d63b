// --rate-limit: each API key may start N uploads or signatures per minute
// (N at once, then one every 60/N s); past it, 429 rate_limited with
// Retry-After, per key, on every route that creates an upload or signs a URL
// (POST /v1/assets, tus creation, POST /v1/uploads, links, CSV runs, the
// original APIs), never on reads.  Off by default.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  TEST_TIMEOUT as T, serverFor, api, upload, assertError, createKey, waitFor,
} from './lib.mjs';

/* One token back every 10 s: the burst's 6 requests (and the refusals
 * after them) must go out before one comes back, however loaded the
 * machine (with 20, a token every 3 s, a loaded CI machine earned one back
 * before the burst was spent). */
const N = 6;
const sign = (srv, filename) => api(srv, 'POST', '/v1/uploads', {
  headers: ['Content-Type: application/json'], args: ['--data-binary', '@-'],
  input: JSON.stringify({ filename, size: 10 }) });

test('--rate-limit: a key past its uploads and signatures per minute gets 429 with Retry-After', { timeout: T }, async (t) => {
  // a broker nobody listens on: runs are accepted (and fail later), so
  // their creation counts against the key like an upload
  const srv = await serverFor(t, { args: ['--rate-limit', String(N)], env: { ASSETD_AMQP_URL: 'amqp://guest:guest@127.0.0.1:1/%2f' } });
  for (let i = 0; i < N - 2; i++) {
    const r = await upload(srv, { data: Buffer.from(`file ${i}`), filename: `f${i}.txt` });
    assert.equal(r.status, 201, `upload ${i}: ${r.text}`);
  }
  const signed = await sign(srv, 'a.bin');
  assert.equal(signed.status, 201, signed.text);
  const tus = await api(srv, 'POST', '/v1/tus', { headers: ['Tus-Resumable: 1.0.0', 'Upload-Length: 5'] });
  assert.equal(tus.status, 201, tus.text);
  // The burst is spent: every kind of start is refused.
  const refused = await upload(srv, { data: Buffer.from('one too many') });
  assertError(refused, 429, 'rate_limited');
  const after = Number(refused.headers['retry-after']);
  assert.ok(after >= 1 && after <= 60 / N, `Retry-After: ${refused.headers['retry-after']}`);
  assertError(await sign(srv, 'b.bin'), 429, 'rate_limited');
  const tus429 = await api(srv, 'POST', '/v1/tus', { headers: ['Tus-Resumable: 1.0.0', 'Upload-Length: 5'] });
  assertError(tus429, 429, 'rate_limited');
  assert.equal(tus429.headers['tus-resumable'], '1.0.0');
  const run = await api(srv, 'POST', '/v1/runs', { args: ['-F', 'file=@-;filename=p.csv;type=text/csv'], input: 'A B,a@example.com\n' });
  assertError(run, 429, 'rate_limited');
  // Reads are never limited.
  for (let i = 0; i < 5; i++) assert.equal((await api(srv, 'GET', '/v1/assets')).status, 200);
  // Another key has its own allowance.
  const other = await createKey(srv.dataDir, 'other', 'someone-else');
  const theirs = await upload(srv, { data: Buffer.from('mine'), token: other });
  assert.equal(theirs.status, 201, theirs.text);
  // After Retry-After, one more is allowed (and only one).
  await waitFor(async () => (await upload(srv, { data: Buffer.from('later') })).status === 201,
    { timeoutMs: (after + 3) * 1000, intervalMs: 500, what: 'a token earned back' });
  assertError(await upload(srv, { data: Buffer.from('again') }), 429, 'rate_limited');
});

test('without --rate-limit nothing is limited', { timeout: T }, async (t) => {
  const srv = await serverFor(t);
  for (let i = 0; i < 30; i++) {
    const r = await sign(srv, `x${i}.bin`);
    assert.equal(r.status, 201, r.text);
  }
});
