// The image pipeline end to end: upload -> worker processes -> thumbnails.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  CORPUS, SANITIZED, SLOW, TEST_TIMEOUT as T, startServer, api, upload, waitFor, createKey, runCli,
  pngBomb,
} from './lib.mjs';

let srv;
before(async () => { srv = await startServer({ workers: 2, args: ['--job-lease', '2'] }); });
after(async () => { await srv?.stop(); });

async function assetOf(id) { return (await api(srv, 'GET', `/v1/assets/${id}`)).json; }

async function settled(id, s = srv, ms = 60000) {
  let a;
  await waitFor(async () => {
    a = (await api(s, 'GET', `/v1/assets/${id}`)).json;
    return a.status === 'ready' || a.status === 'failed';
  }, { timeoutMs: ms * SLOW, intervalMs: 100, what: `asset ${id} to settle` });
  return a;
}

function jpegSof(buf) {
  // Walk the JPEG markers to the first SOFn: height, width, components.
  let i = 2;
  while (i < buf.length) {
    const marker = buf[i + 1];
    const len = buf.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
      return { height: buf.readUInt16BE(i + 5), width: buf.readUInt16BE(i + 7), components: buf[i + 9] };
    }
    i += 2 + len;
  }
  return null;
}

function jpegSize(buf) {
  const sof = jpegSof(buf);
  return sof && { width: sof.width, height: sof.height };
}

// Under ASan every decode is many times slower: one image of each format.
const allImages = ['photos', 'png', 'webp_heic'].flatMap((d) =>
  fs.readdirSync(path.join(CORPUS, d)).map((f) => path.join(d, f)));
const corpusImages = SANITIZED
  ? allImages.filter((f) => /^(photos\/30_|png\/arc_|webp_heic\/)/.test(f))
  : allImages;

test('every corpus image ends ready with thumb (JPEG, 256) and preview (WebP, 1024)', { timeout: T * 4 }, async () => {
  assert.ok(corpusImages.length >= (SANITIZED ? 6 : 38), `corpus has ${corpusImages.length} images`);
  const ids = [];
  for (const f of corpusImages) {
    const r = await upload(srv, { file: path.join(CORPUS, f), filename: path.basename(f) });
    assert.equal(r.status, 201, `${f}: ${r.text}`);
    assert.equal(r.json.kind, 'image', f);
    ids.push([f, r.json.id]);
  }
  for (const [f, id] of ids) {
    const a = await settled(id, srv, 120000);
    assert.equal(a.status, 'ready', `${f}: ${JSON.stringify(a.error)}`);
    const { width, height } = a.meta;
    const m = f.match(/(\d+)x(\d+)/);
    assert.deepEqual([width, height], [Number(m[1]), Number(m[2])], `${f} meta`);
    const byName = Object.fromEntries(a.renditions.map((x) => [x.name, x]));
    for (const [name, edge, type] of [['thumb', 256, 'image/jpeg'], ['preview', 1024, 'image/webp']]) {
      const x = byName[name];
      assert.ok(x, `${f}: no ${name}`);
      assert.equal(x.content_type, type);
      assert.equal(Math.max(x.width, x.height), Math.min(edge, Math.max(width, height)), `${f} ${name} longest edge`);
      // aspect ratio kept within a pixel
      assert.ok(Math.abs(x.width / x.height - width / height) < 0.02 + 1 / Math.min(x.width, x.height), `${f} ${name} aspect`);
      const body = (await api(srv, 'GET', x.url)).body;
      assert.equal(body.length, x.size, `${f} ${name} bytes`);
      if (type === 'image/jpeg') {
        assert.deepEqual(jpegSize(body), { width: x.width, height: x.height }, `${f} thumb is the JPEG it claims`);
        assert.ok(!body.includes(Buffer.from('Exif\0\0')), `${f}: EXIF left in the thumbnail`);
      } else {
        assert.equal(body.subarray(8, 12).toString(), 'WEBP');
      }
    }
  }
});

test('EXIF orientation 6 gives a portrait thumbnail, and no EXIF (GPS) survives', { timeout: T }, async () => {
  const src = fs.readFileSync(path.join(CORPUS, 'photos', '30_orig_RainDrops_1920x1200.jpg'));
  // APP1 "Exif" with a little-endian TIFF IFD holding Orientation (0x0112) = 6
  // and a GPS IFD pointer (0x8825) to an IFD with GPSLatitudeRef = 'N'.
  const tiff = Buffer.alloc(8 + 2 + 2 * 12 + 4 + 2 + 12 + 4);
  tiff.write('II', 0); tiff.writeUInt16LE(42, 2); tiff.writeUInt32LE(8, 4);
  tiff.writeUInt16LE(2, 8);
  tiff.writeUInt16LE(0x0112, 10); tiff.writeUInt16LE(3, 12); tiff.writeUInt32LE(1, 14); tiff.writeUInt16LE(6, 18);
  const gpsAt = 8 + 2 + 24 + 4;
  tiff.writeUInt16LE(0x8825, 22); tiff.writeUInt16LE(4, 24); tiff.writeUInt32LE(1, 26); tiff.writeUInt32LE(gpsAt, 30);
  tiff.writeUInt32LE(0, 34);
  tiff.writeUInt16LE(1, gpsAt);
  tiff.writeUInt16LE(0x0001, gpsAt + 2); tiff.writeUInt16LE(2, gpsAt + 4); tiff.writeUInt32LE(2, gpsAt + 6); tiff.write('N\0', gpsAt + 10);
  const payload = Buffer.concat([Buffer.from('Exif\0\0'), tiff]);
  const app1 = Buffer.alloc(4); app1.writeUInt16BE(0xffe1, 0); app1.writeUInt16BE(payload.length + 2, 2);
  const rotated = Buffer.concat([src.subarray(0, 2), app1, payload, src.subarray(2)]);
  const r = await upload(srv, { data: rotated, filename: 'rotated.jpg' });
  assert.equal(r.status, 201, r.text);
  const a = await settled(r.json.id);
  assert.equal(a.status, 'ready', JSON.stringify(a.error));
  const thumb = a.renditions.find((x) => x.name === 'thumb');
  assert.ok(thumb.height > thumb.width, `thumb is ${thumb.width}x${thumb.height}, expected portrait`);
  const body = (await api(srv, 'GET', thumb.url)).body;
  assert.deepEqual(jpegSize(body), { width: thumb.width, height: thumb.height });
  assert.ok(!body.includes(Buffer.from('Exif\0\0')), 'EXIF (with its GPS IFD) left in the thumbnail');
});



test('bad images fail with the right code and the server stays up', { timeout: T }, async () => {
  const bomb = pngBomb();   // declares 50000x50000
  const jpeg = fs.readFileSync(path.join(CORPUS, 'photos', '12_Kite_4000x3000.jpg'));
  const truncated = jpeg.subarray(0, Math.floor(jpeg.length / 2));
  const cases = [['bomb.png', bomb, 'image_too_large'], ['half.jpg', truncated, 'corrupt_input']];
  for (const [name, data, code] of cases) {
    const r = await upload(srv, { data, filename: name });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.kind, 'image', name);
    const a = await settled(r.json.id);
    assert.equal(a.status, 'failed', `${name}: ${a.status}`);
    assert.equal(a.error.code, code, `${name}: ${JSON.stringify(a.error)}`);
    assert.deepEqual(a.renditions, []);
    const jobs = (await api(srv, 'GET', `/v1/jobs?asset=${a.id}`)).json.items;
    assert.equal(jobs.length, 1);
    assert.equal(jobs[0].state, 'failed', 'no retry when retrying cannot help');
    assert.equal(jobs[0].attempts, 1);
    assert.equal(jobs[0].error.code, code);
  }
  assert.equal((await api(srv, 'GET', '/healthz')).status, 200);
});

test('bytes that only claim to be an image fail unsupported_format, without a job', { timeout: T }, async () => {
  const random = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 251));
  const claims = [
    ['random bytes named .jpg', { data: random, filename: 'holiday.jpg' }],
    ['text declared image/png (multipart)', { data: Buffer.from('just text\n'), filename: 'x', contentType: 'image/png' }],
    ['text declared image/webp (raw)', { data: Buffer.from('just text\n'), filename: 'x', contentType: 'image/webp', raw: true }],
  ];
  for (const [what, opts] of claims) {
    const r = await upload(srv, opts);
    assert.equal(r.status, 201, `${what}: ${r.text}`);
    assert.equal(r.json.status, 'failed', what);
    assert.notEqual(r.json.kind, 'image', what);
    assert.equal(r.json.error.code, 'unsupported_format', what);
    assert.match(r.json.error.message, /claims to be an image/);
    assert.deepEqual((await api(srv, 'GET', `/v1/jobs?asset=${r.json.id}`)).json.items, [], what);
    assert.equal((await assetOf(r.json.id)).status, 'failed', what);
  }
  // Without an image claim the same bytes are a plain file, stored as is.
  const plain = await upload(srv, { data: random, filename: 'blob.bin' });
  assert.equal(plain.json.status, 'uploaded');
  assert.equal(plain.json.error, null);

  // Really an image, but one assetd does not decode (BMP): the worker says so.
  const bmp = Buffer.alloc(58);
  bmp.write('BM', 0); bmp.writeUInt32LE(58, 2); bmp.writeUInt32LE(54, 10); bmp.writeUInt32LE(40, 14);
  bmp.writeInt32LE(1, 18); bmp.writeInt32LE(1, 22); bmp.writeUInt16LE(1, 26); bmp.writeUInt16LE(24, 28);
  bmp.writeUInt32LE(4, 34);
  const b = await upload(srv, { data: bmp, filename: 'dot.bmp' });
  assert.equal(b.json.kind, 'image', b.text);
  const a = await settled(b.json.id);
  assert.equal(a.status, 'failed');
  assert.equal(a.error.code, 'unsupported_format', JSON.stringify(a.error));
});

test('configured renditions: sizes, formats, cover crop; CMYK comes out as 3-channel sRGB', { timeout: T }, async (t) => {
  const s = await startServer({ workers: 1, args: ['--renditions', 'square:200:png:80:cover,small:300:jpeg:70'] });
  t.after(() => s.stop());
  const photo = path.join(CORPUS, 'photos', fs.readdirSync(path.join(CORPUS, 'photos')).find((f) => f.startsWith('30_')));
  const cmyk = path.join(s.dataDir, 'cmyk.jpg');
  execFileSync('vips', ['colourspace', photo, cmyk, 'cmyk']);
  assert.equal(jpegSof(fs.readFileSync(cmyk)).components, 4, 'the test input is CMYK');
  for (const file of [photo, cmyk]) {
    const r = await upload(s, { file, filename: path.basename(file) });
    assert.equal(r.status, 201, r.text);
    const a = await settled(r.json.id, s);
    assert.equal(a.status, 'ready', JSON.stringify(a.error));
    assert.deepEqual(a.meta, { width: 1920, height: 1200 });
    const byName = Object.fromEntries(a.renditions.map((x) => [x.name, x]));
    assert.deepEqual(Object.keys(byName).sort(), ['small', 'square']);
    assert.equal(byName.square.content_type, 'image/png');
    assert.deepEqual([byName.square.width, byName.square.height], [200, 200], 'cover fills the square');
    assert.equal(byName.small.content_type, 'image/jpeg');
    assert.deepEqual([byName.small.width, byName.small.height], [300, 188]);
    const small = await api(s, 'GET', byName.small.url);
    assert.equal(small.status, 200);
    const sof = jpegSof(small.body);
    assert.deepEqual([sof.width, sof.height, sof.components], [300, 188, 3], `${file}: converted to sRGB`);
    assert.equal((await api(s, 'GET', `/v1/assets/${a.id}/renditions/thumb`)).status, 404, 'defaults replaced');
  }
  const bad = await runCli(['serve', '--data', s.dataDir, '--renditions', 'x:10:gif']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /format must be jpeg, webp, png or source/);
});

function workerPids(server) {
  try {
    const out = execFileSync('ps', ['-o', 'pid=', '--ppid', String(server.pid)]).toString();
    return out.split('\n').map((x) => Number(x.trim())).filter(Boolean);
  } catch {
    return [];   // ps exits 1 when the supervisor is between restarts
  }
}

test('kill -9 of the workers mid-job: the job is retried and the asset ends ready', { timeout: T }, async (t) => {
  const s = await startServer({ workers: 1, args: ['--job-lease', '2'] });
  t.after(() => s.stop());
  const r = await upload(s, { file: path.join(CORPUS, 'photos', '01_Path_6000x4000.jpg'), filename: 'big.jpg' });
  assert.equal(r.status, 201);
  await waitFor(async () => (await api(s, 'GET', `/v1/assets/${r.json.id}`)).json.status === 'processing',
    { timeoutMs: 20000 * SLOW, intervalMs: 5, what: 'processing' });
  for (const pid of workerPids(s)) process.kill(pid, 'SIGKILL');
  const a = await settled(r.json.id, s);
  assert.equal(a.status, 'ready', JSON.stringify(a.error));
  const job = (await api(s, 'GET', `/v1/jobs?asset=${r.json.id}`)).json.items[0];
  assert.equal(job.state, 'succeeded');
  assert.ok(job.attempts >= 2, `attempts ${job.attempts}: the killed attempt must count`);
  assert.equal((await api(s, 'GET', '/healthz')).status, 200);
});

test('a job whose worker dies on every attempt ends dead; POST retry requeues it', { timeout: T }, async (t) => {
  // A crash point (util/fault.h): every worker is killed right after claiming a job.
  const s = await startServer({ workers: 1, args: ['--job-lease', '1'], env: { ASSETD_FAULT: 'job.claimed' } });
  const r = await upload(s, { file: path.join(CORPUS, 'photos', '12_Kite_4000x3000.jpg'), filename: 'doomed.jpg' });
  let job;
  await waitFor(async () => {
    job = (await api(s, 'GET', `/v1/jobs?asset=${r.json.id}`)).json.items[0];
    return job.state === 'dead';
  }, { timeoutMs: 30000 * SLOW, intervalMs: 100, what: 'the job to die' });
  assert.equal(job.error.code, 'worker_lost');
  assert.equal(job.attempts, job.max_attempts);
  const a = (await api(s, 'GET', `/v1/assets/${r.json.id}`)).json;
  assert.equal(a.status, 'failed');
  assert.equal(a.error.code, 'worker_lost');
  assert.equal((await api(s, 'GET', '/healthz')).status, 200, 'the server outlives its workers');
  await s.stop();
  // The cause is gone (a fixed build): the operator retries the dead job.
  const s2 = await startServer({ dataDir: s.dataDir, workers: 1, args: ['--job-lease', '1'] });
  t.after(() => s2.stop());
  const retry = await api(s2, 'POST', `/v1/jobs/${job.id}/retry`);
  assert.equal(retry.status, 200, retry.text);
  assert.equal(retry.json.state, 'queued');
  assert.equal((await settled(r.json.id, s2)).status, 'ready');
  const again = await api(s2, 'POST', `/v1/jobs/${job.id}/retry`);
  assert.equal(again.status, 409);
  assert.equal(again.json.error.code, 'not_retryable');
});

test('finished jobs past --history-retention are trimmed; the asset keeps its renditions', { timeout: T }, async (t) => {
  const s = await startServer({ workers: 1 });
  const r = await upload(s, { file: path.join(CORPUS, 'png', 'arc_alpha_2140x1200.png'), filename: 'old.png' });
  assert.equal((await settled(r.json.id, s)).status, 'ready');
  const job = (await api(s, 'GET', `/v1/jobs?asset=${r.json.id}`)).json.items[0];
  assert.equal(job.state, 'succeeded');
  await s.stop();
  await new Promise((res) => setTimeout(res, 1500));
  // serve trims at start-up (then once a minute): the job is over 1 s old.
  const s2 = await startServer({ dataDir: s.dataDir, workers: 0, args: ['--history-retention', '1'] });
  t.after(() => s2.stop());
  assert.equal((await api(s2, 'GET', `/v1/jobs/${job.id}`)).status, 404);
  assert.deepEqual((await api(s2, 'GET', `/v1/jobs?asset=${r.json.id}`)).json.items, []);
  const a = (await api(s2, 'GET', `/v1/assets/${r.json.id}`)).json;
  assert.equal(a.status, 'ready');
  assert.ok(a.renditions.length >= 2);
  assert.ok(s2.stderrLines.some((l) => l.includes('"history trimmed"') && l.includes('"jobs":"1"')),
    'the trim is logged');
});

test('jobs are owner-scoped and validated', { timeout: T }, async () => {
  const r = await upload(srv, { file: path.join(CORPUS, 'png', 'arc_alpha_2140x1200.png'), filename: 'a.png' });
  const job = (await api(srv, 'GET', `/v1/jobs?asset=${r.json.id}`)).json.items[0];
  assert.equal((await api(srv, 'GET', `/v1/jobs/${job.id}`)).json.asset_id, r.json.id);
  assert.equal((await api(srv, 'GET', `/v1/jobs/${job.id}`, { token: 'ak_' + 'x'.repeat(43) })).status, 401);
  const stranger = await createKey(srv.dataDir, 'stranger', 'someone-else');
  assert.equal((await api(srv, 'GET', `/v1/jobs/${job.id}`, { token: stranger })).status, 404);
  assert.deepEqual((await api(srv, 'GET', `/v1/jobs?asset=${r.json.id}`, { token: stranger })).json.items, []);
  assert.equal((await api(srv, 'POST', `/v1/jobs/${job.id}/retry`, { token: stranger })).status, 404);
  assert.equal((await api(srv, 'GET', '/v1/jobs?state=bogus')).status, 400);
  assert.equal((await api(srv, 'GET', '/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA')).status, 404);
  await settled(r.json.id);
});
