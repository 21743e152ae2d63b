// Image profiles: an upload names the set of renditions its image gets
// (?profile= on POST /v1/assets, `profile` in a signed upload's JSON, in a
// tus upload's Upload-Metadata): `avatar` four square PNGs, `cover` the
// videos' five 16:9 sizes, never upscaled, and the default the server's
// --renditions.  The profile is the asset's (a column), so whichever
// worker runs the job, whenever, renders the same set.  Images are made
// here with vips; sizes are checked by decoding what the server sends.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  SLOW, TEST_TIMEOUT as T, TEXT, makeTempDir, removeDir, startServer, api, upload, curl,
  waitFor, assertError,
} from './lib.mjs';

let srv, dir;
const img = {};
let seq = 0;

before(async () => {
  dir = makeTempDir('assetd-profiles-');
  const make = (name, w, h) => {
    img[name] = path.join(dir, `${name}.${name === 'big' ? 'jpg' : 'png'}`);
    execFileSync('vips', ['gaussnoise', img[name], String(w), String(h)], { timeout: 30000 });
  };
  make('big', 2000, 1500);     // 4:3, larger than every box
  make('wide', 600, 400);      // smaller than cover_large and cover_medium
  make('tiny', 100, 80);       // smaller than avatar_256 and _128
  srv = await startServer({ workers: 2 });
});
after(async () => {
  await srv?.cleanup();
  if (dir) removeDir(dir);
});

async function settled(id, s = srv) {
  let a;
  await waitFor(async () => {
    a = (await api(s, 'GET', `/v1/assets/${id}`)).json;
    return a.status === 'ready' || a.status === 'failed';
  }, { timeoutMs: 60000 * SLOW, intervalMs: 100, what: `asset ${id} to settle` });
  return a;
}

// What the server sends for a rendition, decoded by vips: its real size
// and format, whatever the JSON says.
async function decoded(url, s = srv) {
  const r = await api(s, 'GET', url);
  assert.equal(r.status, 200, `${url}: ${r.text}`);
  const f = path.join(dir, `rendition-${++seq}`);
  fs.writeFileSync(f, r.body);
  const m = /: (\d+)x(\d+) .*\b(\w+)load/.exec(execFileSync('vipsheader', [f]).toString());
  assert.ok(m, `vips reads ${url}`);
  return { width: Number(m[1]), height: Number(m[2]), format: m[3], type: r.headers['content-type'] };
}

async function uploaded(file, query, name = path.basename(file)) {
  const r = await upload(srv, { file, filename: name, query });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

async function checkAvatars(a, source) {
  assert.equal(a.status, 'ready', JSON.stringify(a.error));
  assert.equal(a.profile, 'avatar');
  assert.deepEqual(a.renditions.map((r) => r.name), ['avatar_256', 'avatar_128', 'avatar_64', 'avatar_32']);
  for (const r of a.renditions) {
    const box = Number(r.name.slice(7));
    // square, never upscaled: the box, or the source's short side
    const side = Math.min(box, source.width, source.height);
    assert.deepEqual([r.width, r.height, r.content_type], [side, side, 'image/png'], r.name);
    const got = await decoded(r.url);
    assert.deepEqual([got.width, got.height, got.format, got.type], [side, side, 'png', 'image/png'], r.name);
  }
}

test('avatar: four square PNGs, centre-cropped, never upscaled', { timeout: T }, async () => {
  const big = await uploaded(img.big, 'profile=avatar');
  assert.equal(big.profile, 'avatar');
  await checkAvatars(await settled(big.id), { width: 2000, height: 1500 });
  const tiny = await uploaded(img.tiny, 'profile=avatar');
  await checkAvatars(await settled(tiny.id), { width: 100, height: 80 });
});

const COVERS = { cover_large: [1280, 720], cover_medium: [640, 360], cover_small: [480, 270], cover_tiny: [320, 180], cover_nano: [160, 90] };

test('cover: the five 16:9 JPEG sizes, never upscaled', { timeout: T }, async () => {
  const big = await settled((await uploaded(img.big, 'profile=cover')).id);
  assert.equal(big.status, 'ready', JSON.stringify(big.error));
  assert.equal(big.profile, 'cover');
  assert.deepEqual(big.renditions.map((r) => r.name), Object.keys(COVERS));
  for (const r of big.renditions) {
    const got = await decoded(r.url);
    assert.deepEqual([got.width, got.height, got.format], [...COVERS[r.name], 'jpeg'], r.name);
    assert.deepEqual([r.width, r.height, r.content_type], [...COVERS[r.name], 'image/jpeg']);
  }
  // 600x400: its largest 16:9 part is 600x338; the boxes above it get that
  const wide = await settled((await uploaded(img.wide, 'profile=cover')).id);
  assert.equal(wide.status, 'ready', JSON.stringify(wide.error));
  const expect = { cover_large: [600, 338], cover_medium: [600, 338], cover_small: [480, 270], cover_tiny: [320, 180], cover_nano: [160, 90] };
  for (const r of wide.renditions) {
    const got = await decoded(r.url);
    assert.deepEqual([got.width, got.height], expect[r.name], r.name);
    assert.deepEqual([r.width, r.height], expect[r.name], r.name);
  }
});

test('the default profile is the configured renditions; other kinds show no profile', { timeout: T }, async () => {
  for (const q of ['', 'profile=default']) {
    const a = await settled((await uploaded(img.wide, q)).id);
    assert.equal(a.profile, 'default', q);
    assert.deepEqual(a.renditions.map((r) => r.name), ['thumb', 'preview', 'fit640'], q);
  }
  const text = await upload(srv, { data: TEXT, filename: 'notes.txt', contentType: 'text/plain' });
  assert.equal(text.json.profile, null);
});

test('an unknown profile is a 400 before the body is read, on every upload route', { timeout: T }, async () => {
  const before = (await api(srv, 'GET', '/v1/assets?limit=1000')).json.items.length;
  for (const raw of [true, false]) {
    const r = await upload(srv, { file: img.tiny, filename: 'x.png', raw, query: 'profile=thumbnail' });
    const e = assertError(r, 400, 'unknown_profile', raw ? 'raw' : 'multipart');
    assert.match(e.message, /default, cover or avatar/);
  }
  assertError(await upload(srv, { file: img.tiny, raw: true, query: 'profile=AVATAR' }), 400, 'unknown_profile');
  const signed = await api(srv, 'POST', '/v1/uploads', { headers: ['Content-Type: application/json'], args: ['--data-binary', '@-'],
    input: JSON.stringify({ filename: 'x.png', size: 10, profile: 'square' }) });
  assertError(signed, 400, 'unknown_profile', 'signed upload');
  const notString = await api(srv, 'POST', '/v1/uploads', { headers: ['Content-Type: application/json'], args: ['--data-binary', '@-'],
    input: JSON.stringify({ filename: 'x.png', size: 10, profile: 7 }) });
  assertError(notString, 400, 'invalid_upload', 'a profile that is not a string');
  const tus = await api(srv, 'POST', '/v1/tus/', { headers: ['Tus-Resumable: 1.0.0', 'Upload-Length: 10',
    `Upload-Metadata: filename ${Buffer.from('x.png').toString('base64')},profile ${Buffer.from('huge').toString('base64')}`] });
  assertError(tus, 400, 'unknown_profile', 'tus');
  assert.equal((await api(srv, 'GET', '/v1/assets?limit=1000')).json.items.length, before, 'no asset was made');
});

test('a profile claims an image: other bytes fail as unsupported_format at once', { timeout: T }, async () => {
  const r = await upload(srv, { data: TEXT, filename: 'avatar.bin', query: 'profile=avatar' });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.status, 'failed');
  assert.equal(r.json.error.code, 'unsupported_format');
  assert.match(r.json.error.message, /avatar profile is for images/);
  assert.equal(r.json.profile, 'avatar');
  const jobs = (await api(srv, 'GET', `/v1/jobs?asset=${r.json.id}`)).json.items;
  assert.deepEqual(jobs, [], 'no job for it');
});

test('tus and signed uploads carry their profile to the asset', { timeout: T }, async () => {
  const bytes = fs.readFileSync(img.big);
  const meta = (o) => Object.entries(o).map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`).join(',');
  const tus = await api(srv, 'POST', '/v1/tus/', { headers: ['Tus-Resumable: 1.0.0', `Upload-Length: ${bytes.length}`,
    'Content-Type: application/offset+octet-stream', `Upload-Metadata: ${meta({ filename: 'me.jpg', profile: 'avatar' })}`],
  args: ['--data-binary', '@-'], input: bytes });
  assert.equal(tus.status, 201, tus.text);
  const head = await api(srv, 'HEAD', new URL(tus.headers.location, srv.url).pathname, { headers: ['Tus-Resumable: 1.0.0'] });
  const id = head.headers['asset-id'];
  assert.ok(id, 'the upload is an asset');
  await checkAvatars(await settled(id), { width: 2000, height: 1500 });

  const sign = await api(srv, 'POST', '/v1/uploads', { headers: ['Content-Type: application/json'], args: ['--data-binary', '@-'],
    input: JSON.stringify({ filename: 'banner.jpg', size: bytes.length, profile: 'cover' }) });
  assert.equal(sign.status, 201, sign.text);
  assert.equal(sign.json.profile, 'cover');
  const put = await curl(['-X', 'PUT', '--data-binary', '@-', sign.json.put.url], { input: bytes });
  assert.ok(put.status < 300, put.text);
  const done = await api(srv, 'POST', `/v1/uploads/${sign.json.id}/complete`);
  assert.equal(done.status, 201, done.text);
  assert.equal(done.json.profile, 'cover');
  const a = await settled(done.json.id);
  assert.deepEqual(a.renditions.map((r) => [r.name, r.width, r.height]), Object.entries(COVERS).map(([n, s]) => [n, ...s]));
});

test('the profile is the asset\'s: a worker started later renders the same set', { timeout: T }, async () => {
  const data = makeTempDir('assetd-profiles-later-');
  try {
    const idle = await startServer({ dataDir: data, workers: 0 });
    const r = await upload(idle, { file: img.big, filename: 'later.jpg', query: 'profile=avatar' });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.status, 'uploaded');
    await idle.cleanup();
    const busy = await startServer({ dataDir: data, workers: 1 });
    try {
      const a = await settled(r.json.id, busy);
      assert.equal(a.status, 'ready', JSON.stringify(a.error));
      assert.deepEqual(a.renditions.map((x) => [x.name, x.width, x.height, x.content_type]),
        [256, 128, 64, 32].map((n) => [`avatar_${n}`, n, n, 'image/png']));
    } finally {
      await busy.cleanup();
    }
  } finally {
    removeDir(data);
  }
});
